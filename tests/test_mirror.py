"""Tests of the mirror/failover/resync model (xvol.model.mirror) and its suite's verdict logic.

The correct protocol is safe in every reachable state of a small instance and its candidate
invariant is inductive for any number of volumes; each bug breaks exactly the properties the
suite expects, with a shortest counterexample of a known length that both engines find; the
counterexamples are mirror-action traces that survive a JSON round trip.
"""

from __future__ import annotations

import pytest

from xvol.errors import InvalidArgumentError
from xvol.model.check import Verdict, bmc, check_invariant
from xvol.model.concrete import ConcreteSystem
from xvol.model.explicit import explore
from xvol.model.mirror import (
    EXPECTED_VIOLATIONS,
    PROPERTIES,
    Bug,
    MirrorConfig,
    MirrorInstance,
    config_json,
    mirror_system,
    variant,
    variants,
)
from xvol.model.trace import minimise
from xvol.verification.suite_mirror import SuiteSettings
from xvol.vocabulary import Action, Trace

SMALL = MirrorInstance(n=1, missing=1)

# shortest counterexample lengths at n = 1, missing = 1 (both engines)
SHORTEST: dict[str, dict[str, int]] = {
    "per-volume-common": {"redirect-consistent": 8},
    "skip-rollback": {"resync-identical": 8},
    "skip-resize": {"failover-consistent": 5, "redirect-consistent": 4},
    "no-redirect": {"redirect-consistent": 2},
    "no-reverse": {"failover-consistent": 8, "no-lost-destination-write": 9},
    "no-confirm": {"relationship-before-transfer": 3},
    "preserve-off": {"preserve-keeps-divergent": 6},
}

MIRROR_ACTIONS = {
    Action.SNAPSHOT,
    Action.SOURCE_WRITE,
    Action.RESIZE,
    Action.CREATE_RELATIONSHIP,
    Action.TRANSFER,
    Action.PUBLISH,
    Action.DISASTER,
    Action.FAILOVER,
    Action.DESTINATION_WRITE,
    Action.PRIMARY_RETURN,
    Action.COMMON_SNAPSHOT,
    Action.PRESERVE,
    Action.ROLLBACK,
    Action.REVERSE,
    Action.NOTIFY,
}


def test_every_variant_has_an_expectation_and_a_known_shortest_run() -> None:
    assert set(variants()) == set(EXPECTED_VIOLATIONS)
    for name, expected in EXPECTED_VIOLATIONS.items():
        assert expected == set(SHORTEST.get(name, {}))
        assert expected <= set(PROPERTIES)


def test_correct_protocol_is_safe_in_every_reachable_state_of_a_small_instance() -> None:
    system = mirror_system()
    found = explore(system, SMALL.instance(), PROPERTIES, keep_graph=True)
    assert found.complete
    assert all(r.verdict is Verdict.PROVED for r in found.results.values())
    # the exploration reaches the end of a resync: the proof is not vacuous
    concrete = ConcreteSystem(system, SMALL.instance())
    mode = concrete.state_symbol("mode")
    assert any(concrete.evaluate(mode(), s) == "synced" for s in found.graph.nodes)


def test_candidate_invariant_of_correct_protocol_is_inductive_for_every_size() -> None:
    system = mirror_system()
    names = {i.name for i in system.invariants}
    assert set(PROPERTIES) <= names  # so the implication obligation covers every property
    obligations = check_invariant(system, None, "redirect-consistent", system.invariants)
    assert [o.kind for o in obligations].count("preserve") == len(system.actions)
    assert all(o.outcome == "valid" for o in obligations), [
        o.describe("redirect-consistent") for o in obligations if o.outcome != "valid"
    ]


@pytest.mark.parametrize("name", sorted(SHORTEST))
def test_each_bug_violates_exactly_its_properties_with_shortest_runs_both_engines_agree(
    name: str,
) -> None:
    system = mirror_system(variant(name))
    expected = SHORTEST[name]
    depth = max(expected.values())
    z3 = bmc(system, SMALL.instance(), PROPERTIES, depth)
    for prop in PROPERTIES:
        if prop in expected:
            assert z3[prop].verdict is Verdict.VIOLATED
            assert z3[prop].counterexample is not None
            assert z3[prop].counterexample.length == expected[prop]
        else:
            assert z3[prop].verdict is Verdict.BOUNDED
    explicit = explore(system, SMALL.instance(), sorted(expected))
    for prop, length in expected.items():
        cex = explicit.results[prop].counterexample
        assert cex is not None and cex.length == length


def test_a_counterexample_is_a_mirror_trace_that_survives_a_json_round_trip() -> None:
    config = variant("no-reverse")
    system = mirror_system(config)
    result = bmc(system, SMALL.instance(), ["no-lost-destination-write"], 9)
    raw = result["no-lost-destination-write"].counterexample
    assert raw is not None
    cex = minimise(ConcreteSystem(system, SMALL.instance()), raw)
    trace = cex.to_trace("mirror", config_json(config, SMALL))
    again = Trace.loads(trace.dumps())
    assert again == Trace.from_json(trace.to_json())
    assert again.steps == trace.steps and again.violated == "no-lost-destination-write"
    assert again.config["bugs"] == ["no-reverse"] and again.config["n"] == 1
    assert {s.action for s in again.steps} <= MIRROR_ACTIONS
    actions = [s.action for s in again.steps]
    assert actions.index(Action.FAILOVER) < actions.index(Action.DESTINATION_WRITE)
    assert actions[-1] is Action.TRANSFER and again.steps[-1].args["source"] == "A"


def test_skip_resize_is_harmless_when_the_destination_already_matches() -> None:
    same_size = MirrorInstance(n=1, missing=0)
    found = explore(mirror_system(variant("skip-resize")), same_size.instance(), PROPERTIES)
    assert found.complete
    assert all(r.verdict is Verdict.PROVED for r in found.results.values())


def test_bad_configurations_raise_typed_errors() -> None:
    with pytest.raises(InvalidArgumentError):
        MirrorInstance(n=0)
    with pytest.raises(InvalidArgumentError):
        MirrorInstance(n=1, missing=2)
    with pytest.raises(InvalidArgumentError):
        MirrorConfig(snapshots=0)
    with pytest.raises(InvalidArgumentError):
        variant("no-such-bug")
    with pytest.raises(InvalidArgumentError):
        SuiteSettings(variants=("no-such-bug",))
    assert variant("preserve-off").name == "preserve-off"
    assert MirrorConfig(bugs=frozenset({Bug.NO_CONFIRM, Bug.NO_REDIRECT})).name == (
        "no-confirm+no-redirect"
    )
