"""``xvol bench verify``'s measurements on the smallest instance (no timing assertions)."""

from __future__ import annotations

from xvol.experiments.bench.verify import _explicit, _z3


def test_smallest_instances_are_proved_by_both_engines() -> None:
    seconds, verdicts = _z3(1, 1, 1, 20_000)
    assert verdicts == "proved" and seconds > 0
    seconds, states, verdicts = _explicit(1, 1, 1, 60.0, 100_000)
    assert verdicts == "proved" and states > 100
