"""The explicit-state engine: exhaustive proofs, shortest counterexamples, state caps."""

from __future__ import annotations

from xvol.model import toys
from xvol.model.check import Verdict, bmc
from xvol.model.explicit import explore
from xvol.model.logic import Instance


def test_explicit_engine_proves_the_atomic_mutex_for_three_processes() -> None:
    x = explore(toys.mutex(atomic=True), toys.processes(3), ["mutual-exclusion"])
    assert x.complete
    assert x.results["mutual-exclusion"].verdict is Verdict.PROVED
    assert x.states == 4  # all idle, or exactly one in the critical section


def test_explicit_and_z3_agree_on_counterexample_length() -> None:
    system = toys.mutex(atomic=False)
    x = explore(system, toys.processes(2), ["mutual-exclusion"])
    z = bmc(system, toys.processes(2), ["mutual-exclusion"], 8)
    assert x.results["mutual-exclusion"].depth == z["mutual-exclusion"].depth == 4


def test_state_cap_gives_bounded_not_proved() -> None:
    x = explore(toys.counter(1000, 1000), Instance({}), ["below"], max_states=50)
    assert not x.complete
    assert x.results["below"].verdict is Verdict.BOUNDED
