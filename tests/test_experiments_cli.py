"""The ``xvol experiment`` command: listing, running into a folder, the closing table, and typed
errors for bad names and bad executor options."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from xvol.cli import main
from xvol.experiments import registry


def test_list_shows_every_registered_experiment_with_grid_sizes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["experiment", "list"]) == 0
    out = capsys.readouterr().out
    experiments = registry.experiments()
    assert experiments, "the registry is empty"
    for experiment in experiments:
        assert experiment.name in out
        assert str(len(experiment.quick)) in out
        assert str(len(experiment.full)) in out


def test_run_quick_with_seed_writes_csv_sidecar_and_figures_and_lists_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name = "raid-reconstruction"
    out = tmp_path / "e7a"
    args = ["experiment", "run", name, "--quick", "--executor", "serial", "--seed", "5"]
    assert main([*args, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    experiment = registry.get(name)
    expected = [f"{name}.csv", f"{name}.json"] + [
        f"{spec.name}.{ext}" for spec in experiment.figures for ext in ("png", "pdf")
    ]
    for file in expected:
        assert (out / file).is_file(), file
        assert file in printed.replace("\n", "")
    meta = json.loads((out / f"{name}.json").read_text())
    assert meta["grid"] == "quick"
    assert meta["executor"] == "serial"
    assert meta["seed"] == 5
    assert len(meta["points"]) == len(experiment.quick)


def test_unknown_experiment_is_a_one_line_error_naming_the_known_ones(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["experiment", "run", "no-such-thing", "--quick"]) == 2
    err = capsys.readouterr().err
    assert "no-such-thing" in err and "raid-reconstruction" in err


def test_dask_without_scheduler_and_bad_worker_count_are_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["experiment", "run", "raid-reconstruction", "--quick", "--out", str(tmp_path)]
    assert main([*base, "--executor", "dask"]) == 2
    assert "--scheduler" in capsys.readouterr().err
    assert main([*base, "--workers", "0"]) == 2
    captured = capsys.readouterr()
    assert "at least 1" in captured.err and "points" not in captured.out  # before any work
    assert not any(tmp_path.iterdir())


def test_experiment_without_action_prints_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["experiment"]) == 2
    assert "list" in capsys.readouterr().err
