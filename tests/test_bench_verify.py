"""``xvol bench verify``'s measurements on the smallest instance (no timing assertions)."""

from __future__ import annotations

import pytest

from xvol.cli import main
from xvol.experiments.bench.verify import _explicit, _z3


def test_smallest_instances_are_proved_by_both_engines() -> None:
    seconds, verdicts = _z3(1, 1, 1, 20_000)
    assert verdicts == "proved" and seconds > 0
    seconds, states, verdicts = _explicit(1, 1, 1, 60.0, 100_000)
    assert verdicts == "proved" and states > 100


def test_a_non_positive_time_cap_or_state_cap_is_refused_before_any_work(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["bench", "verify", "--quick", "--time-cap", "0"]) == 2
    assert main(["bench", "verify", "--quick", "--max-states", "0"]) == 2
    captured = capsys.readouterr()
    assert captured.err.count("--time-cap must be > 0") == 2 and "seconds" not in captured.out
