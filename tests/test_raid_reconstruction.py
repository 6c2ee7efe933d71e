"""E7a raid-reconstruction: the quick grid runs, its I/O counts match what RAID-4/5 and RDP theory
predict for rebuilds and degraded reads, its CSV and I/O figure are deterministic, and a wrong
read can never become a number."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from xvol.errors import IntegrityError, InvalidArgumentError
from xvol.experiments import registry
from xvol.experiments.framework import run_experiment
from xvol.experiments.raid_reconstruction import EXPERIMENT, FAILURES, failed_slots, point
from xvol.reference.storage.block import BLOCK_SIZE
from xvol.reference.storage.raid import RaidGroup, smallest_prime_at_least


@pytest.fixture(scope="module")
def quick_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    first, second = tmp_path_factory.mktemp("e7a-1"), tmp_path_factory.mktemp("e7a-2")
    for out in (first, second):
        run_experiment(EXPERIMENT, out, quick=True, executor="serial", command=["test"])
    yield first, second


@pytest.fixture(scope="module")
def frame(quick_runs: tuple[Path, Path]) -> pd.DataFrame:
    return pd.read_csv(quick_runs[0] / "raid-reconstruction.csv")


def _rows(frame: pd.DataFrame, operation: str) -> pd.DataFrame:
    return frame[frame["operation"] == operation]


def _prime(data_disks: int) -> int:
    return smallest_prime_at_least(data_disks + 1)


def test_experiment_is_registered_and_every_quick_point_yields_its_operations(
    frame: pd.DataFrame,
) -> None:
    assert registry.get("raid-reconstruction") is EXPERIMENT
    assert len(frame.groupby(["level", "data_disks", "failure"])) == len(EXPERIMENT.quick)
    for (_level, _d, failure), part in frame.groupby(["level", "data_disks", "failure"]):
        expected = {"read-all", "read-random", "rebuild"}
        if "data" in str(failure).split("+") or failure == "any":  # a data block is lost
            expected.add("read-lost")
        assert set(part["operation"]) == expected


def test_degraded_batch_read_touches_each_surviving_block_once(frame: pd.DataFrame) -> None:
    rows = _rows(frame, "read-all")
    assert (rows["disk_reads"] == rows["blocks"]).all()
    assert (rows["disk_writes"] == 0).all()


def test_raid4_and_raid5_rebuild_reads_d_blocks_per_stripe(frame: pd.DataFrame) -> None:
    rows = _rows(frame, "rebuild")
    rows = rows[rows["level"].isin(["RAID-4", "RAID-5"])]
    assert len(rows) > 0
    assert (rows["disk_reads"] == rows["data_disks"] * rows["blocks_per_disk"]).all()
    assert (rows["disk_writes"] == rows["blocks_per_disk"]).all()
    assert (rows["blocks"] == rows["blocks_per_disk"]).all()


def test_rdp_rebuilds_any_two_disks_reading_d_per_row_and_diagonal_parity_alone_d_plus_one(
    frame: pd.DataFrame,
) -> None:
    # One pass over the survivors: each codeword is read once and all its lost cells are solved
    # together, so two failures cost the D surviving cells of each row, the optimum (Corbett et
    # al.); only the diagonal-parity column alone needs D + 1, the data cells and the row-parity
    # cell of each row, because RDP's diagonals run through the row-parity column.
    expected_per_row = {
        "data": "D",
        "row-parity": "D",
        "diagonal-parity": "D+1",
        "data+data": "D",
        "data+row-parity": "D",
        "data+diagonal-parity": "D",
        "row-parity+diagonal-parity": "D",
    }
    rows = _rows(frame, "rebuild")
    rows = rows[rows["level"] == "RAID-DP"]
    assert set(rows["failure"]) == set(expected_per_row)
    for row in rows.itertuples():
        d = int(row.data_disks)
        per_row = d if expected_per_row[str(row.failure)] == "D" else d + 1
        assert row.disk_reads == per_row * row.blocks_per_disk, row
        assert row.disk_writes == row.failed * row.blocks_per_disk
        assert row.rows == _prime(d) - 1


def test_degraded_single_block_read_costs_d_or_a_whole_rdp_codeword(frame: pd.DataFrame) -> None:
    # One lost cell in a row is rebuilt from its row: D reads. RDP with two data columns (or a data
    # column and the row parity) gone must chain through the diagonals: the D surviving cells of
    # every one of the p-1 rows of the codeword.
    rows = _rows(frame, "read-lost")
    assert len(rows) > 0
    for row in rows.itertuples():
        d = int(row.data_disks)
        two_columns = row.level == "RAID-DP" and row.failure in ("data+data", "data+row-parity")
        expected = d * (_prime(d) - 1) if two_columns else d
        assert row.reads_per_block == expected, row
        assert row.disk_reads == expected * row.blocks


def test_random_single_reads_cost_between_one_and_a_lost_block_read(frame: pd.DataFrame) -> None:
    random_rows = _rows(frame, "read-random")
    assert (random_rows["reads_per_block"] >= 1).all()
    cap = random_rows["data_disks"] * (random_rows["data_disks"].map(_prime) - 1)
    assert (random_rows["reads_per_block"] <= cap).all()
    parity_only = random_rows["failure"].isin(["parity", "row-parity", "diagonal-parity"])
    assert (random_rows[parity_only]["reads_per_block"] == 1).all()


def test_byte_columns_are_block_counts_times_the_block_size(frame: pd.DataFrame) -> None:
    assert (frame["bytes_read"] == frame["disk_reads"] * BLOCK_SIZE).all()
    assert (frame["bytes_written"] == frame["disk_writes"] * BLOCK_SIZE).all()


def test_csv_and_io_figure_are_byte_identical_across_runs_timings_are_separate(
    quick_runs: tuple[Path, Path],
) -> None:
    first, second = quick_runs
    for name in ("raid-reconstruction.csv", "raid-reconstruction-io.png"):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    assert (first / "raid-reconstruction-io.pdf").read_bytes() == (
        second / "raid-reconstruction-io.pdf"
    ).read_bytes()
    assert "elapsed_s" not in pd.read_csv(first / "raid-reconstruction.csv").columns
    timings = pd.read_csv(first / "raid-reconstruction.timings.csv")
    assert {"operation", "elapsed_s", "mib_per_s"} <= set(timings.columns)
    assert (timings["elapsed_s"] >= 0).all()


def test_failed_slots_follow_the_failure_set_and_the_seed() -> None:
    rng = np.random.default_rng(1)
    assert failed_slots("RAID-DP", 4, "row-parity+diagonal-parity", rng) == [4, 5]
    assert failed_slots("RAID-4", 4, "parity", rng) == [4]
    pair = failed_slots("RAID-DP", 4, "data+data", rng)
    assert len(set(pair)) == 2 and all(0 <= s < 4 for s in pair)
    mixed = failed_slots("RAID-DP", 4, "data+diagonal-parity", rng)
    assert mixed[1] == 5 and 0 <= mixed[0] < 4
    assert 0 <= failed_slots("RAID-5", 3, "any", rng)[0] <= 3
    same = [failed_slots("RAID-DP", 8, "data+data", np.random.default_rng(9)) for _ in range(2)]
    assert same[0] == same[1]
    for level, failures in FAILURES.items():
        assert len(failures) == len(set(failures)), level


def test_failed_slots_rejects_unknown_or_impossible_failure_sets() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(InvalidArgumentError, match="no failure set"):
        failed_slots("RAID-5", 4, "data+data", rng)
    with pytest.raises(InvalidArgumentError, match="needs 2 data disks"):
        failed_slots("RAID-DP", 1, "data+data", rng)


def test_point_is_deterministic_in_its_seed_but_for_timings() -> None:
    params = {"level": "RAID-DP", "data_disks": 3, "failure": "data+data"}
    params |= {"disk_blocks": 8, "samples": 3}
    timing = list(EXPERIMENT.timing_columns)
    runs = [pd.DataFrame(point(params, 11)).drop(columns=timing) for _ in range(2)]
    pd.testing.assert_frame_equal(runs[0], runs[1])


def test_a_wrong_degraded_read_raises_instead_of_being_counted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    honest = RaidGroup.read_blocks

    def corrupting(self: RaidGroup, numbers: np.ndarray) -> np.ndarray:
        out = honest(self, numbers).copy()
        if self.failed_disks:
            out[0, 0] ^= 1
        return out

    monkeypatch.setattr(RaidGroup, "read_blocks", corrupting)
    params = {"level": "RAID-5", "data_disks": 2, "failure": "any"}
    params |= {"disk_blocks": 4, "samples": 2}
    with pytest.raises(IntegrityError, match="wrong bytes"):
        point(params, 3)


def test_quoted_numbers_match_the_theory_at_the_largest_group(frame: pd.DataFrame) -> None:
    numbers = EXPERIMENT.paper_numbers(frame) if EXPERIMENT.paper_numbers else {}
    largest = int(numbers["ESevenALargestD"])
    assert largest == frame["data_disks"].max()
    assert float(numbers["ESevenARebuildOneReads"]) == largest
    assert float(numbers["ESevenALostReadOneFailed"]) == largest
    assert float(numbers["ESevenALostReadTwoFailed"]) == largest * (_prime(largest) - 1)
    assert float(numbers["ESevenAReadAllMax"]) == 1.0
