"""E2 change-detection: the quick grid runs, the three diffs agree and find exactly the
overwritten blocks, what each reads matches what its algorithm must read (the birth walk only
metadata on paths to changed blocks, the map diff no block at all, the full scan every in-use
block of both snapshots), rows are deterministic, and a wrong diff can never become a number."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from xvol.errors import IntegrityError, InvalidArgumentError
from xvol.experiments import change_detection as e2
from xvol.experiments import registry
from xvol.experiments.change_detection import (
    EXPERIMENT,
    METHODS,
    WORKLOADS,
    CountingSpace,
    build_volume,
    changed_count,
    counting,
    find,
    new_homes,
    point,
    sweeps,
    tree_image,
)
from xvol.experiments.framework import derive_seed, run_experiment
from xvol.reference.volume.diff import BlockDiff
from xvol.reference.volume.diff import diff_snapshots as honest


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    out = tmp_path_factory.mktemp("e2")
    run_experiment(EXPERIMENT, out, quick=True, executor="serial", command=["test"])
    yield out


@pytest.fixture(scope="module")
def frame(run_dir: Path) -> pd.DataFrame:
    return pd.read_csv(run_dir / "change-detection.csv")


def _method(frame: pd.DataFrame, method: str) -> pd.DataFrame:
    return frame[frame["method"] == method]


def test_registered_and_each_point_measures_three_methods_on_two_workloads(
    frame: pd.DataFrame,
) -> None:
    assert registry.get("change-detection") is EXPERIMENT
    assert len(frame) == len(EXPERIMENT.quick) * len(WORKLOADS) * len(METHODS)
    groups = frame.groupby(["data_blocks", "change_pct", "workload"])
    assert all(sorted(part["method"]) == sorted(METHODS) for _key, part in groups)


def test_all_methods_find_the_same_blocks_and_exactly_the_overwritten_data(
    frame: pd.DataFrame,
) -> None:
    groups = frame.groupby(["data_blocks", "change_pct", "workload"])
    for _key, part in groups:
        assert part["records"].nunique() == 1
        assert part["data_records"].nunique() == 1
    expected = []
    for size, pct, workload in zip(
        frame["data_blocks"], frame["change_pct"], frame["workload"], strict=True
    ):
        run = 8 if workload == "8-blk" else 1
        expected.append(changed_count(int(size), float(pct)) // run * run)
    assert frame["changed_blocks"].tolist() == expected
    assert (frame["data_records"] == frame["changed_blocks"]).all()
    assert (frame["metadata_records"] == frame["records"] - frame["data_records"]).all()
    assert (frame["metadata_records"] > 0).all()  # at least a new fsinfo per snapshot


def test_full_scan_reads_every_in_use_block_of_both_snapshots(frame: pd.DataFrame) -> None:
    scan = _method(frame, "full-scan")
    assert (scan["data_blocks_read"] == 2 * scan["data_blocks"]).all()
    assert (scan["blocks_read"] == scan["metadata_blocks_read"] + scan["data_blocks_read"]).all()
    assert (scan["map_bits_read"] == 2 * scan["volume_blocks"]).all()
    # each snapshot's inode file holds the root directory and one inode per file
    assert (scan["inodes_visited"] == 2 * (scan["files"] + 1)).all()


def test_birth_walk_reads_only_metadata_born_after_the_base(frame: pd.DataFrame) -> None:
    birth = _method(frame, "birth")
    assert (birth["data_blocks_read"] == 0).all()
    assert (birth["blocks_read"] > 0).all()
    # it reads the fsinfo, inode-file and indirect blocks among the records (never the map
    # blocks), and looks up each block it reached in the base map: all of them are records
    assert (birth["blocks_read"] <= birth["metadata_records"]).all()
    assert (birth["map_bits_read"] == birth["records"]).all()


def test_map_diff_reads_no_block_and_scans_two_whole_maps(frame: pd.DataFrame) -> None:
    maps = _method(frame, "maps")
    assert (maps["blocks_read"] == 0).all()
    assert (maps["map_bits_read"] == 2 * maps["volume_blocks"]).all()
    assert (maps["map_blocks_scanned"] == maps["map_bits_read"] / 32768).all()


def test_scan_cost_grows_with_size_and_birth_cost_with_the_changes(frame: pd.DataFrame) -> None:
    sizes = frame[(frame["change_pct"] == 1.0) & (frame["workload"] == "8-blk")]
    small, large = sorted(sizes["data_blocks"].unique())[:: len(sizes["data_blocks"].unique()) - 1]
    scan = _method(sizes, "full-scan").set_index("data_blocks")["blocks_read"]
    assert scan[large] / scan[small] >= 0.95 * large / small
    rates = frame[(frame["data_blocks"] == e2.QUICK_RATE_SIZE) & (frame["workload"] == "8-blk")]
    birth = _method(rates, "birth").sort_values("change_pct")["blocks_read"].tolist()
    assert birth == sorted(birth) and birth[-1] > birth[0]
    speedup = _method(rates, "full-scan").sort_values("change_pct")[
        "blocks_read"
    ].to_numpy() / np.array(birth)
    assert speedup[0] > speedup[-1] > 1  # the walk's advantage shrinks as more changes


def test_csv_rows_are_reproduced_by_rerunning_a_point(frame: pd.DataFrame) -> None:
    params = dict(EXPERIMENT.quick[0])
    seed = derive_seed(EXPERIMENT.name, params, EXPERIMENT.default_seed)
    rows = pd.DataFrame(point(params, seed)).drop(columns=list(EXPERIMENT.timing_columns))
    chosen = frame[
        (frame["data_blocks"] == params["data_blocks"])
        & (frame["change_pct"] == params["change_pct"])
    ]
    assert (chosen["seed"] == seed).all()
    mine = chosen[rows.columns].sort_values(["workload", "method"]).reset_index(drop=True)
    again = rows.sort_values(["workload", "method"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(mine, again, check_dtype=False)


def test_timings_live_apart_and_figures_and_numbers_are_written(
    run_dir: Path, frame: pd.DataFrame
) -> None:
    assert not {"find_s", "stream_s"} & set(frame.columns)
    timings = pd.read_csv(run_dir / "change-detection.timings.csv")
    assert {"workload", "method", "find_s", "stream_s"} <= set(timings.columns)
    for stem in ("change-detection-io", "change-detection-time"):
        assert (run_dir / f"{stem}.png").stat().st_size > 0
    assert EXPERIMENT.paper_numbers is not None
    numbers = EXPERIMENT.paper_numbers(frame)
    assert set(numbers) == {
        "ETwoLargestBlocks",
        "ETwoSmallestBlocks",
        "ETwoScanOverBirthReads",
        "ETwoBirthReadsGrowth",
        "ETwoScanReadsGrowth",
        "ETwoBirthReadsPerChangedBlock",
        "ETwoScanOverBirthReadsLowRate",
        "ETwoScanOverBirthReadsHighRate",
    }
    assert numbers["ETwoLargestBlocks"] == "4{,}000"
    assert int(numbers["ETwoScanOverBirthReads"]) > 100


def test_sweeps_merge_the_shared_point_once() -> None:
    points = sweeps((10, 20), (0.5, 1.0), at_rate=1.0, at_size=20)
    assert [(p["data_blocks"], p["change_pct"]) for p in points] == [
        (10, 1.0),
        (20, 0.5),
        (20, 1.0),
    ]


def test_the_independent_tree_walk_sees_exactly_the_overwritten_blocks_move() -> None:
    built = build_volume(600, 5.0, 64, seed=3)
    assert {len(v) for v in built.changed.values()} == {changed_count(600, 5.0) // 8 * 8, 30}
    images = {name: tree_image(built.volume, name) for name in ("base", "target", "scattered")}
    assert len(images["base"].data) == 600 and len(images["base"].files) == 10
    for workload, base, target in WORKLOADS:
        homes = new_homes(images[base], images[target])
        assert len(homes) == len(built.changed[workload])
        assert not set(homes.tolist()) & set(images[base].data.tolist())
        for method in METHODS:
            numbers = find(built.volume, method, base, target).numbers
            assert set(homes.tolist()) <= set(numbers.tolist())


def test_counting_restores_the_volume_and_refuses_writes() -> None:
    built = build_volume(64, 10.0, 16, seed=1)
    volume = built.volume
    space = volume.space
    with pytest.raises(KeyError), counting(volume) as (counted, _maps):
        assert volume.space is counted
        with pytest.raises(IntegrityError, match="must not write"):
            counted.write_blocks(np.array([20]), np.zeros((1, 4096), np.uint8))
        raise KeyError("leave the block early")
    assert volume.space is space
    assert "_snapshot_map" not in vars(volume) and "_snapshot_holds" not in vars(volume)
    assert isinstance(counted, CountingSpace) and len(counted.numbers_read()) == 0


def test_bad_build_arguments_and_methods_are_typed_errors() -> None:
    with pytest.raises(InvalidArgumentError):
        build_volume(100, 1.0, 300, seed=0)  # a file the single indirect block cannot map
    with pytest.raises(InvalidArgumentError):
        build_volume(100, 20.0, 16, seed=0)
    built = build_volume(32, 10.0, 16, seed=0)
    with pytest.raises(InvalidArgumentError, match="unknown method"):
        find(built.volume, "rsync", "base", "target")


def test_a_diff_that_misses_a_block_raises_instead_of_being_counted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def lossy(*args: Any, **kwargs: Any) -> BlockDiff:
        diff = honest(*args, **kwargs)
        diff.numbers = diff.numbers[:-1]
        return diff

    monkeypatch.setattr("xvol.experiments.change_detection.diff_snapshots", lossy)
    with pytest.raises(IntegrityError):
        point({"data_blocks": 256, "change_pct": 5.0, "file_blocks": 64}, 2)
