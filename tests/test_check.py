"""The z3 engine on toy systems with known answers."""

from __future__ import annotations

from xvol.model import toys
from xvol.model.check import (
    Verdict,
    bmc,
    check_combined,
    check_invariant,
    houdini,
    k_induction,
    verify,
)
from xvol.model.logic import Instance

EMPTY = Instance({})


def test_bmc_finds_the_shortest_counterexample_of_a_bounded_counter() -> None:
    result = bmc(toys.counter(5, 3), EMPTY, ["below"], 10)["below"]
    assert result.verdict is Verdict.VIOLATED
    assert result.depth == 4
    assert result.counterexample is not None
    assert [s.action for s in result.counterexample.steps] == ["inc"] * 4


def test_bmc_reports_bounded_when_the_property_holds() -> None:
    result = bmc(toys.counter(5, 5), EMPTY, ["below"], 6)["below"]
    assert result.verdict is Verdict.BOUNDED
    assert result.depth == 6


def test_houdini_drops_wrong_candidates_and_proves_the_counter() -> None:
    system = toys.counter(5, 5)
    result = verify(system, EMPTY, ["below"], depth=3, candidates=system.invariants)["below"]
    assert result.verdict is Verdict.PROVED
    assert "zero" not in result.invariant
    assert all(o.outcome == "valid" for o in result.obligations)


def test_k_induction_needs_k_two_for_the_cycle() -> None:
    assert k_induction(toys.cycle(), EMPTY, "not-five", 1).outcome == "fails"
    assert k_induction(toys.cycle(), EMPTY, "not-five", 2).outcome == "valid"
    result = verify(toys.cycle(), EMPTY, ["not-five"], depth=3, k_max=3)["not-five"]
    assert result.verdict is Verdict.PROVED
    assert result.method == "2-induction"


def test_mutex_check_then_set_violates_mutual_exclusion_in_four_steps() -> None:
    result = bmc(toys.mutex(atomic=False), toys.processes(2), ["mutual-exclusion"], 8)
    cex = result["mutual-exclusion"].counterexample
    assert cex is not None and cex.length == 4


def test_parametric_mutex_proof_holds_for_any_number_of_processes() -> None:
    system = toys.mutex(atomic=True)
    survivors, decided = houdini(system, None, system.invariants)
    assert decided
    names = {i.name for i in survivors}
    assert {"mutual-exclusion", "crit-holds-lock"} <= names and "unlocked" not in names
    obligations = check_invariant(system, None, "mutual-exclusion", survivors)
    assert all(o.outcome == "valid" for o in obligations)
    assert check_combined(system, None, "mutual-exclusion", survivors).outcome == "valid"


def test_recheck_catches_a_wrong_invariant_and_names_the_action() -> None:
    system = toys.mutex(atomic=True)
    only_property = [i for i in system.invariants if i.name == "mutual-exclusion"]
    obligations = check_invariant(system, None, "mutual-exclusion", only_property)
    failing = [o for o in obligations if o.outcome == "fails"]
    assert [(o.kind, o.action, o.failing) for o in failing] == [
        ("preserve", "acquire", ("mutual-exclusion",))
    ]
    assert "preserved by action 'acquire': fails" in failing[0].describe("mutual-exclusion")
    assert check_combined(system, None, "mutual-exclusion", only_property).outcome == "fails"
