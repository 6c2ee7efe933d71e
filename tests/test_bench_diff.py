"""Tests of ``xvol bench diff`` (xvol.experiments.bench.diff) at toy sizes: the three diffs
agree, the table and the target ratios are printed."""

from __future__ import annotations

import argparse

import pytest

from xvol.errors import InvalidArgumentError
from xvol.experiments.bench import diff as bench


def test_measure_reports_both_workloads_with_agreeing_diffs() -> None:
    rows = bench.measure_all((4000,), changed=160, seed=1, repeats=2, progress=lambda _: None)
    assert [r.workload for r in rows] == ["8-blk", "1-blk"]
    clustered, scattered = rows
    assert clustered.records >= 160 and scattered.records >= 160
    assert clustered.full_scan is not None and scattered.full_scan is None
    assert min(clustered.birth, clustered.maps, scattered.birth) > 0


def test_quick_run_prints_the_table_and_ratios(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bench, "QUICK_SIZES", (2000, 6000))
    parser = argparse.ArgumentParser()
    bench.configure_parser(parser)
    assert bench.run(parser.parse_args(["--quick", "--changed", "80", "--repeats", "1"])) == 0
    out = capsys.readouterr().out
    assert "6,000" in out and "full scan / birth walk" in out and "birth walk (8-blk)" in out
    with pytest.raises(InvalidArgumentError):
        bench.run(parser.parse_args(["--quick", "--changed", "5000"]))
