"""Tests of ``xvol bench transfer`` (xvol.experiments.bench.transfer) at toy sizes: each update
row, on both substrates, is measured with consistent figures (the replicas verify inside), and
the quick run prints both tables and the ratios."""

from __future__ import annotations

import argparse

import pytest

from xvol.errors import InvalidArgumentError
from xvol.experiments.bench import transfer as bench


def test_measure_reports_three_growing_updates_with_positive_timings() -> None:
    rows = bench.measure(
        2, bandwidth=50e6, latency=0.001, batch_blocks=64, seed=1, progress=lambda _: None
    )
    assert [(r.substrate, r.fraction) for r in rows] == [
        (s, f) for s in bench.SUBSTRATES for f in bench.FRACTIONS
    ]
    for substrate in bench.SUBSTRATES:
        records = [r.records for r in rows if r.substrate == substrate]
        assert records == sorted(records) and records[-1] >= 512  # 2 MiB all rewritten
    # the same seeded updates on both substrates send the same records
    assert [r.records for r in rows[:3]] == [r.records for r in rows[3:]]
    for row in rows:
        assert min(row.direct, row.memcpy, row.sim, row.read, row.write) > 0
        assert row.wire_bytes > row.bytes  # data plus numbers, checksums and headers
        # the simulated time is at least the data over the link's bandwidth
        assert row.sim >= row.bytes / 50e6


def test_quick_run_prints_the_tables_and_ratios(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    bench.configure_parser(parser)
    assert bench.run(parser.parse_args(["--quick"])) == 0
    out = capsys.readouterr().out
    assert "memcpy" in out and "where the in-process time goes" in out
    assert "in-process update of 100% on RAID-4 spaces" in out and "plain" in out
    with pytest.raises(InvalidArgumentError):
        bench.run(parser.parse_args(["--quick", "--bandwidth", "0"]))
