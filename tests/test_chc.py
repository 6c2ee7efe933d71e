"""The CHC engine (xvol.model.chc): Spacer's answers, believed only after their checks."""

from __future__ import annotations

import pytest
import z3
from hypothesis import given, settings
from hypothesis import strategies as st

from xvol.errors import InvalidArgumentError
from xvol.model import chc, toys
from xvol.model.check import Limits, Result, Verdict, bmc
from xvol.model.concrete import ConcreteSystem
from xvol.model.fence import Bug, FenceConfig, FenceInstance, fence_system
from xvol.model.logic import Instance, eq, le, lit
from xvol.vocabulary import seed_fence_order

EMPTY = Instance({})
SMALL = {"objects": 1, "clients": 1, "present": 1}


def _seed(n: int = 1) -> Instance:
    return FenceInstance(n, seed_fence_order(n), **SMALL).instance()


def _valid(result: Result) -> bool:
    return bool(result.obligations) and all(o.outcome == "valid" for o in result.obligations)


def test_spacer_proves_the_bounded_counter_and_its_invariant_passes_every_recheck() -> None:
    system = toys.counter(5, 5)
    result = chc.prove(system, EMPTY, "below")
    assert result.verdict is Verdict.PROVED
    assert result.engine == "chc" and result.method == chc.PROVED
    assert result.invariant and _valid(result)
    kinds = [(o.kind, o.action) for o in result.obligations]
    assert kinds == [("init", None), ("preserve", "inc"), ("preserve", "reset"), ("implies", None)]


def test_spacer_proves_mutual_exclusion_of_the_atomic_mutex_on_three_processes() -> None:
    result = chc.prove(toys.mutex(atomic=True), toys.processes(3), "mutual-exclusion")
    assert result.verdict is Verdict.PROVED and _valid(result)
    # the invariant reads by entry and enum value, not by index
    assert any("pc(p1)" in c and "crit" in c for c in result.invariant)


def test_fence_seed_configuration_is_proved_with_every_obligation_rechecked() -> None:
    system = fence_system(FenceConfig())
    results = chc.prove_all(system, _seed(), ["unfence-on-failure", "no-lost-request"])
    for result in results.values():
        assert result.verdict is Verdict.PROVED, result.detail
        # init, one preservation query per action, the implication
        assert len(result.obligations) == 2 + len(system.actions) and _valid(result)
        assert result.invariant


def test_a_bug_toggle_is_refuted_with_a_replayed_shortest_counterexample() -> None:
    system = fence_system(FenceConfig(bugs=frozenset([Bug.NO_UNFENCE_ON_FAILURE])))
    result = chc.prove(system, _seed(), "unfence-on-failure")
    assert result.verdict is Verdict.VIOLATED and result.method == chc.VIOLATED
    cex = result.counterexample
    assert cex is not None and result.depth == cex.length
    # fence a volume, fail, delete the group: the run BMC finds, at the same depth
    assert [s.action for s in cex.steps] == ["fence", "fail", "delete-group"]
    shortest = bmc(system, _seed(), ["unfence-on-failure"], 5)["unfence-on-failure"]
    assert shortest.depth == result.depth
    concrete = ConcreteSystem(system, _seed())
    end = concrete.run([(s.action, dict(s.params)) for s in cex.steps])
    assert end is not None and not concrete.holds(end, "unfence-on-failure")


def test_the_check_then_set_mutex_is_refuted_in_four_steps() -> None:
    result = chc.prove(toys.mutex(atomic=False), toys.processes(2), "mutual-exclusion")
    assert result.verdict is Verdict.VIOLATED and result.depth == 4
    assert result.counterexample is not None
    assert sorted(s.action for s in result.counterexample.steps) == [
        "check",
        "check",
        "enter",
        "enter",
    ]


@settings(max_examples=12, deadline=None)
@given(bound=st.integers(0, 6), claimed=st.integers(0, 6))
def test_spacer_agrees_with_bmc_on_every_small_counter(bound: int, claimed: int) -> None:
    result = chc.prove(toys.counter(bound, claimed), EMPTY, "below")
    if claimed >= bound:
        assert result.verdict is Verdict.PROVED and _valid(result)
    else:
        assert result.verdict is Verdict.VIOLATED and result.depth == claimed + 1


def test_a_tiny_timeout_is_reported_as_unknown_never_as_a_verdict() -> None:
    result = chc.prove(fence_system(FenceConfig()), _seed(), "integrity", Limits(timeout_ms=50))
    assert result.verdict is Verdict.UNKNOWN and result.method == chc.GAVE_UP
    assert "canceled" in result.detail and result.counterexample is None
    assert not result.invariant


def test_a_wrong_invariant_fails_the_recheck_naming_the_action_and_conjunct() -> None:
    system = toys.counter(5, 3)
    horn = chc.Horn(system, EMPTY)
    x = system.state[0]
    zero = horn.formula(eq(x(), lit(0)))
    obligations = chc.recheck(horn, "below", zero)
    by_action = {o.action: o for o in obligations if o.kind == "preserve"}
    assert by_action["inc"].outcome == "fails" and by_action["inc"].failing == ("#1 x = 0",)
    assert by_action["reset"].outcome == "valid"
    # inductive, but too weak for the property
    weak = chc.recheck(horn, "below", horn.formula(le(x(), lit(5))))
    assert [o.outcome for o in weak] == ["valid", "valid", "valid", "fails"]


def test_a_forged_safe_answer_is_an_engine_disagreement_not_a_proof() -> None:
    system = toys.counter(5, 3)  # unsafe: x reaches 4
    horn = chc.Horn(system, EMPTY)
    concrete = ConcreteSystem(system, EMPTY)
    x = system.state[0]
    forged = chc.Answer("safe", 0.0, invariant=horn.formula(le(x(), lit(3))))
    result = chc.conclude(horn, concrete, "below", forged)
    assert result.verdict is Verdict.UNKNOWN and result.method == chc.REJECTED
    assert result.detail.startswith("engine disagreement")
    assert "preserved by action 'inc': fails" in result.detail


def test_a_forged_derivation_that_does_not_replay_is_an_engine_disagreement() -> None:
    system = toys.counter(5, 3)
    horn = chc.Horn(system, EMPTY)
    concrete = ConcreteSystem(system, EMPTY)
    jump = chc.Answer("unsafe", 0.0, states=((0,), (4,)))  # no single step goes 0 -> 4
    result = chc.conclude(horn, concrete, "below", jump)
    assert result.verdict is Verdict.UNKNOWN and result.method == chc.REJECTED
    assert "does not replay" in result.detail
    short = chc.Answer("unsafe", 0.0, states=((0,), (1,)))  # replays, but 1 <= 3 holds
    assert chc.conclude(horn, concrete, "below", short).method == chc.REJECTED
    real = chc.Answer("unsafe", 0.0, states=((0,), (1,), (2,), (3,), (4,)))
    assert chc.conclude(horn, concrete, "below", real).verdict is Verdict.VIOLATED


def test_enum_comparisons_are_shown_as_the_values_they_allow() -> None:
    system = toys.mutex(atomic=False)
    horn = chc.Horn(system, toys.processes(2))
    pc1 = horn.pre[0]  # pc(p1): idle, checked, crit as 0, 1, 2
    assert horn.show(pc1 <= 1) == "pc(p1) != crit"
    assert horn.show(z3.Not(pc1 >= 1)) == "pc(p1) = idle"
    assert horn.show(z3.And(pc1 == 0, horn.pre[2])) == "pc(p1) = idle & locked"
    fence = chc.Horn(fence_system(FenceConfig()), _seed())
    kind = next(c for c in fence.pre if str(c) == "kind(c1)")  # six operation kinds
    assert fence.show(kind <= 2) == "kind(c1) in {create, write, delete}"
    pc, dpc = (next(c for c in fence.pre if str(c) == name) for name in ("pc(c1)", "dpc(c1)"))
    assert fence.show(pc + -1 * dpc <= 0) == "(pc(c1) - dpc(c1)) <= 0"


def test_unknown_property_is_a_typed_error() -> None:
    with pytest.raises(InvalidArgumentError, match="no property"):
        chc.prove(toys.counter(5, 5), EMPTY, "above")
