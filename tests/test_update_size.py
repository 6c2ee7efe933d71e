"""E1 update-size: the quick grid runs through the real mirroring stack, every update verifies,
the byte counts obey what block replication and a file-level diff must send, the curves have the
expected shape, the rows are deterministic, and a mirror that does not verify is never counted."""

from __future__ import annotations

import dataclasses
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from xvol.errors import IntegrityError, InvalidArgumentError
from xvol.experiments import registry
from xvol.experiments.framework import derive_seed, run_experiment
from xvol.experiments.update_size import (
    APPEND_BYTES,
    CREATE_BLOCKS,
    EXPERIMENT,
    WORKLOADS,
    file_level_diff,
    make_trace,
    point,
    updates_for,
)
from xvol.reference.mirror.coordinator import MirroringCoordinator
from xvol.reference.mirror.replication import RECORD_BYTES
from xvol.reference.storage.block import BLOCK_SIZE


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    out = tmp_path_factory.mktemp("e1")
    run_experiment(EXPERIMENT, out, quick=True, executor="serial", command=["test"])
    yield out


@pytest.fixture(scope="module")
def frame(run_dir: Path) -> pd.DataFrame:
    return pd.read_csv(run_dir / "update-size.csv")


def _row(frame: pd.DataFrame, workload: str, interval: int) -> pd.Series:
    rows = frame[(frame["workload"] == workload) & (frame["interval_s"] == interval)]
    assert len(rows) == 1
    return rows.iloc[0]


def test_registered_and_every_quick_point_ran_its_verified_updates(frame: pd.DataFrame) -> None:
    assert registry.get("update-size") is EXPERIMENT
    assert len(frame) == len(EXPERIMENT.quick)
    assert set(frame["workload"]) == set(WORKLOADS)
    expected = [
        updates_for(float(i), float(w))
        for i, w in zip(frame["interval_s"], frame["window_s"], strict=True)
    ]
    assert frame["updates"].tolist() == expected
    assert (frame["verified_updates"] == frame["updates"]).all()
    assert (frame["hours"] == frame["updates"] * frame["interval_s"] / 3600).all()


def test_byte_columns_follow_the_block_records_and_the_wire_adds_checksums(
    frame: pd.DataFrame,
) -> None:
    assert (frame["block_payload_bytes"] == frame["block_records"] * BLOCK_SIZE).all()
    assert (frame["replication_wire_bytes"] >= frame["block_records"] * RECORD_BYTES).all()
    assert (frame["link_bytes"] > frame["replication_wire_bytes"]).all()
    floor = frame["updates"] * frame["empty_update_records"] * BLOCK_SIZE
    assert (frame["block_above_floor_bytes"] == frame["block_payload_bytes"] - floor).all()


def test_each_update_sends_its_surviving_written_blocks_plus_fsinfo_and_map_per_member(
    frame: pd.DataFrame,
) -> None:
    # an empty update sends exactly a new fsinfo block and allocation-map block per member
    # volume (NS, OLS, DC1, DC2); data blocks written in a window and still live come on top
    assert (frame["empty_update_records"] == 2 * 4).all()
    lower = frame["surviving_blocks_written"] + frame["updates"] * frame["empty_update_records"]
    assert (frame["block_records"] >= lower).all()


def test_client_bytes_match_the_workload_definitions(frame: pd.DataFrame) -> None:
    over = frame[frame["workload"] == "overwrite"]
    assert (over["written_bytes"] == over["writes"] * BLOCK_SIZE).all()
    assert (over["creates"] + over["deletes"] == 0).all()
    append = frame[frame["workload"] == "append"]
    assert (append["written_bytes"] == append["writes"] * APPEND_BYTES).all()
    churn = frame[frame["workload"] == "create-delete"]
    assert (churn["written_bytes"] == churn["creates"] * CREATE_BLOCKS * BLOCK_SIZE).all()
    assert (churn["writes"] == 0).all()
    assert (frame["ops"] == frame["creates"] + frame["writes"] + frame["deletes"]).all()


def test_file_level_diff_sends_changed_files_whole_and_deleted_files_as_names(
    frame: pd.DataFrame,
) -> None:
    over = frame[frame["workload"] == "overwrite"]
    whole = over["file_blocks"] * BLOCK_SIZE + len("/f000")
    assert (over["file_level_bytes"] == over["files_changed"] * whole).all()
    assert (over["files_deleted"] == 0).all()
    churn = frame[frame["workload"] == "create-delete"]
    name = len("/c00000")
    expected = churn["files_changed"] * (CREATE_BLOCKS * BLOCK_SIZE + name)
    assert (churn["file_level_bytes"] == expected + churn["files_deleted"] * name).all()
    append = frame[frame["workload"] == "append"]
    assert (append["file_level_bytes"] > append["files_changed"] * append["file_blocks"]).all()


def test_longer_intervals_coalesce_overwrites_and_block_level_beats_file_level(
    frame: pd.DataFrame,
) -> None:
    short, long = _row(frame, "overwrite", 300), _row(frame, "overwrite", 1800)
    assert long["block_per_hour"] < short["block_per_hour"]
    assert long["block_over_written"] < short["block_over_written"]
    # partial overwrites and appends: a file-level diff resends whole files
    for workload in ("overwrite", "append"):
        assert (frame[frame["workload"] == workload]["file_over_block"] > 1).all()
    # create/delete: new files go whole either way; block level adds namespace/OLS metadata
    assert (frame[frame["workload"] == "create-delete"]["file_over_block"] < 1).all()


def test_csv_rows_are_reproduced_by_rerunning_a_point(frame: pd.DataFrame) -> None:
    params = dict(EXPERIMENT.quick[0])
    seed = derive_seed(EXPERIMENT.name, params, EXPERIMENT.default_seed)
    again = point(params, seed)[0]
    row = _row(frame, str(params["workload"]), int(params["interval_s"]))
    assert int(row["seed"]) == seed
    for column, value in again.items():
        if column not in EXPERIMENT.timing_columns:
            assert row[column] == pytest.approx(value, rel=1e-12), column


def test_timings_are_separate_and_figures_and_numbers_are_written(run_dir: Path) -> None:
    assert "elapsed_s" not in pd.read_csv(run_dir / "update-size.csv").columns
    assert (pd.read_csv(run_dir / "update-size.timings.csv")["elapsed_s"] > 0).all()
    for stem in ("update-size-bytes", "update-size-ratio"):
        assert (run_dir / f"{stem}.png").stat().st_size > 0
        assert (run_dir / f"{stem}.pdf").stat().st_size > 0


def test_paper_numbers_name_the_quoted_ratios(frame: pd.DataFrame) -> None:
    assert EXPERIMENT.paper_numbers is not None
    numbers = EXPERIMENT.paper_numbers(frame)
    assert set(numbers) == {
        "EOneLongestInterval",
        "EOneOverwriteCoalescing",
        "EOneOverwriteFileOverBlock",
        "EOneOverwriteFileOverBlockMax",
        "EOneAppendFileOverBlock",
        "EOneCreateDeleteSentPercent",
        "EOneOverwriteShortAboveFixed",
        "EOneEmptyUpdateBlocks",
    }
    assert numbers["EOneLongestInterval"] == "30\\,min"
    assert numbers["EOneEmptyUpdateBlocks"] == "8"
    long = _row(frame, "overwrite", 1800)
    assert float(numbers["EOneOverwriteCoalescing"]) == pytest.approx(
        1 / long["block_over_written"], abs=0.05
    )


def test_traces_are_seeded_sorted_and_within_the_horizon() -> None:
    for workload in WORKLOADS:
        make = [
            make_trace(
                workload,
                files=3,
                file_blocks=4,
                per_hour=60,
                horizon=7200,
                rng=np.random.default_rng(4),
            )
            for _ in range(2)
        ]
        assert make[0] == make[1]
        times = [op.at for op in make[0].ops]
        assert times == sorted(times) and all(0 < t < 7200 for t in times)
        assert len(make[0].ops) > 0


def test_trace_ops_address_existing_files() -> None:
    rng = np.random.default_rng(7)
    over = make_trace("overwrite", files=3, file_blocks=4, per_hour=60, horizon=7200, rng=rng)
    for op in over.ops:
        assert op.kind == "write" and op.offset % BLOCK_SIZE == 0
        assert op.offset < 4 * BLOCK_SIZE and len(op.data) == BLOCK_SIZE
    churn = make_trace("create-delete", files=1, file_blocks=1, per_hour=30, horizon=9000, rng=rng)
    alive = {op.path for op in churn.setup}
    for op in churn.ops:
        if op.kind == "create":
            assert op.path not in alive
            alive.add(op.path)
        else:
            assert op.kind == "delete" and op.path in alive
            alive.remove(op.path)


def test_bad_trace_and_interval_arguments_are_typed_errors() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(InvalidArgumentError, match="unknown workload"):
        make_trace("random", files=1, file_blocks=1, per_hour=1, horizon=10, rng=rng)
    with pytest.raises(InvalidArgumentError):
        make_trace("append", files=0, file_blocks=1, per_hour=1, horizon=10, rng=rng)
    with pytest.raises(InvalidArgumentError):
        updates_for(0, 600)
    assert updates_for(60, 600) == 10 and updates_for(3600, 600) == 1 and updates_for(700, 600) == 1


def test_file_level_diff_counts_created_changed_and_deleted_files() -> None:
    before = {"/a": b"1" * 10, "/b": b"2" * 10, "/gone": b"3"}
    after = {"/a": b"1" * 10, "/b": b"x" * 12, "/new": b"4" * 5}
    diff = file_level_diff(before, after)
    assert (diff.changed, diff.deleted) == (2, 1)
    assert diff.bytes == (2 + 12) + (4 + 5) + len("/gone")


def test_a_mirror_that_does_not_verify_raises_instead_of_being_counted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    honest = MirroringCoordinator.verify

    def lying(self: MirroringCoordinator, *args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
        result = yield from honest(self, *args, **kwargs)
        return dataclasses.replace(result, config_differences=("timestamp",))

    monkeypatch.setattr(MirroringCoordinator, "verify", lying)
    params = dict(EXPERIMENT.quick[0])
    with pytest.raises(IntegrityError, match="verify equal"):
        point(params, 1)
