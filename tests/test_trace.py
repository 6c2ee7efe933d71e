"""Counterexamples: replay, disagreement detection, minimisation, rendering, JSON."""

from __future__ import annotations

import pytest

from xvol.errors import InvalidArgumentError
from xvol.model import toys
from xvol.model.concrete import ConcreteSystem
from xvol.model.trace import EngineDisagreement, minimise, replay


def test_replay_rejects_a_run_that_does_not_violate() -> None:
    concrete = ConcreteSystem(toys.mutex(atomic=False), toys.processes(2))
    with pytest.raises(EngineDisagreement, match="property true"):
        replay(concrete, "mutual-exclusion", [("check", {"p": "p1"})], engine="test")
    with pytest.raises(EngineDisagreement, match="not enabled"):
        replay(concrete, "mutual-exclusion", [("enter", {"p": "p1"})], engine="test")


def test_minimise_drops_irrelevant_steps() -> None:
    concrete = ConcreteSystem(toys.mutex(atomic=False), toys.processes(3))
    run = [
        ("check", {"p": "p1"}),
        ("check", {"p": "p3"}),
        ("check", {"p": "p2"}),
        ("enter", {"p": "p1"}),
        ("enter", {"p": "p2"}),
    ]
    cex = replay(concrete, "mutual-exclusion", run, engine="test")
    small = minimise(concrete, cex)
    assert small.length == 4
    assert "check(p=p3)" not in small.render()


def test_render_and_json_show_actions_and_changes() -> None:
    concrete = ConcreteSystem(toys.mutex(atomic=False), toys.processes(2))
    run = [
        ("check", {"p": "p1"}),
        ("check", {"p": "p2"}),
        ("enter", {"p": "p1"}),
        ("enter", {"p": "p2"}),
    ]
    cex = replay(concrete, "mutual-exclusion", run, engine="test")
    text = cex.render()
    assert "4. enter(p=p2)" in text and "pc(p2): checked -> crit" in text
    assert cex.to_json()["steps"][2]["changes"] == [
        "pc(p1): checked -> crit",
        "locked: false -> true",
    ]
    with pytest.raises(InvalidArgumentError, match="not a protocol action"):
        cex.to_trace("mutex", {})
