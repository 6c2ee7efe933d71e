"""Tests of ``xvol bench resync-plan`` (xvol.experiments.bench.resync_plan) at toy sizes: both
change finders plan the same resync, the diff reads only the changed files while the scan reads
every file at both sites, and the command prints its table and ratios."""

from __future__ import annotations

import argparse

import pytest

from xvol.errors import InvalidArgumentError
from xvol.experiments.bench import resync_plan as bench
from xvol.reference.mirror.resync import Resync


def test_both_finders_plan_the_same_resync_and_the_diff_reads_only_the_changes() -> None:
    rows, plan = bench.measure(40, 3000, 4, seed=2, repeats=1, progress=lambda _: None)
    scan, diff = rows
    assert (scan.method, diff.method) == ("scan", "diff")
    # 4 changes at each site: 2 written, 1 created, 1 deleted
    assert len(plan.discarded_paths) == len(plan.source_changes) == 4
    assert scan.files_read == 4 * 40  # both trees at both sites, every file
    assert diff.files_read <= 2 * 2 * 4  # each changed file, at most at both trees
    assert diff.bytes_read < scan.bytes_read // 5
    assert 0 < diff.disk_blocks < scan.disk_blocks


def test_the_scenario_changes_what_it_says_at_each_site() -> None:
    pair, resync = bench.build(30, 100, 3, seed=1)
    assert isinstance(resync, Resync)
    a, b = pair.site("A"), pair.site("B")
    assert "/d0/new-at-A" in a.files("vs1", "xv") and "/d0/new-at-B" in b.files("vs1", "xv")
    assert bench.disk_reads(a) > 0
    with pytest.raises(InvalidArgumentError):
        bench.build(5, 100, 3, seed=1)


def test_the_command_prints_the_table_and_ratios(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    bench.configure_parser(parser)
    args = ["--files", "24", "--size", "2000", "--changes", "3", "--repeats", "1"]
    assert bench.run(parser.parse_args(args)) == 0
    out = capsys.readouterr().out
    assert "scan / diff" in out and "names walked" in out and "the same plan" in out
    with pytest.raises(InvalidArgumentError):
        bench.run(parser.parse_args(["--changes", "1"]))
