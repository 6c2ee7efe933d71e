"""Tests of ``xvol demo`` (reference/mirror/demo.py): the narrated scenario runs end to end,
its checks hold for several seeds, and the seed changes the schedule."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from xvol.cli import main
from xvol.reference.mirror.demo import run_demo


def quiet() -> Console:
    return Console(file=io.StringIO(), width=120)


def test_demo_runs_every_step_its_checks_hold_and_the_seed_changes_the_schedule() -> None:
    reports = [run_demo(seed, files=3, console=quiet()) for seed in (0, 7)]
    for report in reports:
        steps = [row[0] for row in report.rows]
        assert steps == [
            "write at A",
            "snapshot under writes",
            "initialize",
            "update",
            "disaster mid-update",
            "failover",
            "dry run",
            "resync",
            "verify",
        ]
        assert report.checks >= 10
        assert report.rows[-1][1] == "equal"
    assert reports[0].rows != reports[1].rows


def test_xvol_demo_command_prints_the_summary_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--seed", "5", "--files", "2"]) == 0
    out = capsys.readouterr().out
    assert "checks held" in out and "resync" in out and "verify" in out


def test_xvol_demo_rejects_a_bad_file_count(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--files", "0"]) == 2
