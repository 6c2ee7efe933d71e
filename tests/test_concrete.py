"""The concrete interpreter: successors, execution, state changes."""

from __future__ import annotations

from xvol.model import toys
from xvol.model.concrete import ConcreteSystem


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
