"""Tests of experiments/bench/raid.py (`xvol bench raid`) on a tiny size: it runs end to end,
checks its reconstructions, and prints every figure and ratio (no timing assertions)."""

from __future__ import annotations

import numpy as np
import pytest

from xvol.cli import main
from xvol.experiments.bench.raid import bench_dp, bench_single


def test_bench_prints_all_rows_and_the_zfec_ratio(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "raid", "--size", "1", "--repeats", "1", "--data-disks", "4"]) == 0
    out = capsys.readouterr().out
    for label in ("memcpy", "RAID-DP p=5", "RAID-5", "RAID-4", "zfec RS k=4 m=6"):
        assert label in out
    assert "RAID-DP encode / zfec encode =" in out


def test_bench_kernels_report_positive_throughput() -> None:
    rng = np.random.default_rng(0)
    rows = bench_dp(rng, 6, 1 << 20, 1) + bench_single(rng, "5", 6, 1 << 20, 1, 4)
    assert [m.operation for m in rows] == [
        "full-stripe encode",
        "reconstruct 2 data disks",
        "full-stripe encode",
        "reconstruct 1 data disk",
    ]
    assert all(m.gb_per_s > 0 and m.data_bytes > 0 for m in rows)
