"""The concrete interpreter: successors, execution, state changes."""

from __future__ import annotations

from unittest.mock import patch

import xvol.model.concrete as concrete_module
from xvol.model import toys
from xvol.model.concrete import ConcreteSystem
from xvol.model.explicit import explore
from xvol.model.fence import PROPERTIES, FenceConfig, FenceInstance, fence_system
from xvol.vocabulary import FenceMode, seed_fence_order


def test_successors_enumerate_every_enabled_action_and_parameter() -> None:
    concrete = ConcreteSystem(toys.mutex(atomic=True), toys.processes(2))
    steps = [s for s, _ in concrete.successors(concrete.initial())]
    assert [(s.action, s.params) for s in steps] == [
        ("acquire", (("p", "p1"),)),
        ("acquire", (("p", "p2"),)),
    ]


def test_disabled_action_returns_none_and_changes_are_listed() -> None:
    concrete = ConcreteSystem(toys.mutex(atomic=True), toys.processes(2))
    start = concrete.initial()
    assert concrete.execute(start, "release", {"p": "p1"}) is None
    after = concrete.execute(start, "acquire", {"p": "p2"})
    assert after is not None
    assert concrete.changes(start, after) == ["pc(p2): idle -> crit", "locked: false -> true"]
    assert concrete.holds(after, "mutual-exclusion")


def test_unrolled_generated_code_explores_the_same_graph_as_the_generic_code() -> None:
    # the fence model at n = 1: quantifiers, point updates and rows, unrolled (literal
    # arguments, folded constants) or evaluated generically (unrolling switched off)
    system = fence_system(FenceConfig(mode=FenceMode.ROLLING))
    inst = FenceInstance(1, seed_fence_order(1), objects=1, clients=1, present=1).instance()
    unrolled = explore(system, inst, PROPERTIES, keep_graph=True)
    with patch.object(concrete_module, "_UNROLL", 0):
        generic = explore(system, inst, PROPERTIES, keep_graph=True)
    assert unrolled.states == generic.states and unrolled.edges == generic.edges
    assert set(unrolled.graph.edges) == set(generic.graph.edges)
    for p in PROPERTIES:
        a, b = unrolled.results[p], generic.results[p]
        assert (a.verdict, a.depth) == (b.verdict, b.depth)
        if a.counterexample is not None and b.counterexample is not None:
            assert a.counterexample.steps == b.counterexample.steps  # same BFS order


def test_a_run_reaches_its_state_or_stops_at_a_disabled_step() -> None:
    concrete = ConcreteSystem(toys.mutex(atomic=True), toys.processes(2))
    end = concrete.run([("acquire", {"p": "p1"}), ("release", {"p": "p1"})])
    assert end == concrete.initial()
    assert concrete.run([("acquire", {"p": "p1"}), ("acquire", {"p": "p2"})]) is None
    assert concrete.violations(concrete.initial(), ["mutual-exclusion"]) == []
