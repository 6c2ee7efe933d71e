"""The z3 engine on toy systems with known answers."""

from __future__ import annotations

from xvol.model import toys
from xvol.model.check import (
    CtiPool,
    Limits,
    Step,
    Verdict,
    bmc,
    bmc_family,
    check_combined,
    check_invariant,
    houdini,
    houdini_step,
    k_induction,
    prove_every_n,
    verify,
)
from xvol.model.concrete import ConcreteSystem
from xvol.model.fence import PROPERTIES as FENCE_PROPERTIES
from xvol.model.fence import FenceConfig, FenceInstance, fence_system
from xvol.model.logic import Instance, System
from xvol.vocabulary import FenceMode, serial_order

SMALL = {"objects": 1, "clients": 1, "present": 1}

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


def test_every_n_proof_gives_each_property_its_own_rechecked_invariant() -> None:
    system = toys.mutex(atomic=True)
    found = prove_every_n(system, ["mutual-exclusion"], system.invariants, toys.processes(2))
    assert found.decided and "unlocked" not in found.candidates
    r = found.results["mutual-exclusion"]
    assert r.verdict is Verdict.PROVED and r.method == "parametric"
    assert {"mutual-exclusion", "crit-holds-lock"} <= set(r.invariant)
    kinds = [o.kind for o in r.obligations]
    assert kinds[0] == "init" and kinds[-1] == "implies"
    assert len(r.obligations) == len(system.actions) + 2
    assert all(o.outcome == "valid" for o in r.obligations)


def test_every_n_proof_is_not_given_to_an_unsafe_protocol() -> None:
    system = toys.mutex(atomic=False)
    found = prove_every_n(system, ["mutual-exclusion"], system.invariants, toys.processes(2))
    assert found.results["mutual-exclusion"].verdict is not Verdict.PROVED


def _fence_family() -> tuple[System, list[Instance]]:
    system = fence_system(FenceConfig(mode=FenceMode.ROLLING))
    orders = [serial_order(p) for p in (["NS", "OLS", "DC1"], ["DC1", "OLS", "NS"])]
    return system, [FenceInstance(1, o, **SMALL).instance() for o in orders]


def test_family_bmc_finds_the_same_shortest_counterexamples_as_one_instance_at_a_time() -> None:
    system, instances = _fence_family()
    together = bmc_family(system, instances, FENCE_PROPERTIES, 8, vary=("stage",))
    for inst, results in zip(instances, together, strict=True):
        alone = bmc(system, inst, FENCE_PROPERTIES, 8)
        for p in FENCE_PROPERTIES:
            assert (results[p].verdict, results[p].depth) == (alone[p].verdict, alone[p].depth)
            if results[p].counterexample is not None:
                assert results[p].counterexample.length == results[p].depth
        assert any(r.verdict is Verdict.VIOLATED for r in results.values())


def test_asserting_proved_invariants_on_every_step_keeps_the_shortest_depths() -> None:
    system, instances = _fence_family()
    invariants = [houdini(system, inst, system.invariants)[0] for inst in instances]
    plain = bmc_family(system, instances, FENCE_PROPERTIES, 8, vary=("stage",))
    strong = bmc_family(
        system, instances, FENCE_PROPERTIES, 8, vary=("stage",), invariants_of=invariants
    )
    for a, b in zip(plain, strong, strict=True):
        assert {p: (r.verdict, r.depth) for p, r in a.items()} == {
            p: (r.verdict, r.depth) for p, r in b.items()
        }


def test_houdini_with_shared_counterexamples_to_induction_keeps_the_largest_invariant() -> None:
    system, instances = _fence_family()
    step = Step(system, instances[0], Limits(), ("stage",))
    pool = CtiPool()
    for inst in instances:
        step.use(inst)
        shared, _ = houdini_step(step, system.invariants, pool, ConcreteSystem(system, inst))
        own, _ = houdini(system, inst, system.invariants)
        assert [i.name for i in shared] == [i.name for i in own]
    assert pool.found  # the second instance was offered the first one's
