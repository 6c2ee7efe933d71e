"""Tests of reference/storage/aggregate.py: volume spaces carved from RAID groups, free-space
accounting, growth by RAID groups, and file-backed aggregates that reopen in a new process,
also after a kill in the middle of a metadata update; runs of blocks across extents and RAID
groups read and write with their content sums."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xvol.errors import (
    AlreadyExistsError,
    DataLossError,
    InvalidArgumentError,
    NotFoundError,
    OutOfSpaceError,
)
from xvol.reference.storage.aggregate import Aggregate
from xvol.reference.storage.block import BLOCK_SIZE, VolumeSpace
from xvol.reference.storage.checksum import content_sums


def _data(seed: int, count: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, BLOCK_SIZE), dtype=np.uint8)


def _small() -> Aggregate:
    return Aggregate.create_in_memory("dp", data_disks=4, blocks_per_disk=64, metadata_blocks=2)


def test_spaces_implement_the_volume_space_protocol() -> None:
    aggregate = _small()
    space: VolumeSpace = aggregate.create_space("vol0", 10)
    assert space.name == "vol0" and space.block_count == 10
    assert aggregate.spaces() == ("vol0",)
    assert aggregate.space("vol0") is space


def test_new_spaces_read_zeros_and_return_written_bytes() -> None:
    aggregate = _small()
    space = aggregate.create_space("v", 40)
    assert not space.read_blocks(np.arange(40, dtype=np.int64)).any()
    data = _data(1, 40)
    space.write_blocks(np.arange(40, dtype=np.int64), data)
    assert np.array_equal(space.read_blocks(np.arange(40, dtype=np.int64)[::-1]), data[::-1])
    assert space.read_block(7) == data[7].tobytes()


@settings(max_examples=20, deadline=None)
@given(
    ops=st.lists(
        st.tuples(
            st.sampled_from(["create", "resize", "delete"]), st.integers(0, 3), st.integers(0, 120)
        ),
        max_size=12,
    )
)
def test_free_space_accounting_and_contents_survive_any_sequence_of_operations(
    ops: list[tuple[str, int, int]],
) -> None:
    aggregate = _small()
    model: dict[str, np.ndarray] = {}
    for op, which, size in ops:
        name = f"s{which}"
        before = (aggregate.free_blocks, aggregate.generation, aggregate.spaces())
        try:
            if op == "create":
                aggregate.create_space(name, size)
                model[name] = np.zeros((size, BLOCK_SIZE), dtype=np.uint8)
            elif op == "resize":
                aggregate.space(name).resize(size)
                old = model[name]
                grown = np.zeros((size, BLOCK_SIZE), dtype=np.uint8)
                grown[: min(size, len(old))] = old[:size]
                model[name] = grown
            else:
                aggregate.delete_space(name)
                del model[name]
        except (OutOfSpaceError, NotFoundError, AlreadyExistsError):
            assert (aggregate.free_blocks, aggregate.generation, aggregate.spaces()) == before
            continue
        if name in model and len(model[name]):
            fresh = _data(size + which, len(model[name]))
            aggregate.space(name).write_blocks(np.arange(len(fresh), dtype=np.int64), fresh)
            model[name] = fresh
        assert aggregate.spaces() == tuple(sorted(model))
        used = sum(len(v) for v in model.values())
        assert aggregate.used_blocks == used
        assert aggregate.free_blocks == aggregate.block_count - aggregate.reserved_blocks - used
        for key, expected in model.items():
            got = aggregate.space(key).read_blocks(np.arange(len(expected), dtype=np.int64))
            assert np.array_equal(got, expected)


def test_full_aggregate_raises_out_of_space_and_changes_nothing() -> None:
    aggregate = _small()
    aggregate.create_space("a", aggregate.free_blocks - 5)
    space = aggregate.space("a")
    before = (aggregate.free_blocks, aggregate.generation, space.extents)
    with pytest.raises(OutOfSpaceError):
        aggregate.create_space("b", 6)
    with pytest.raises(OutOfSpaceError):
        space.resize(space.block_count + 6)
    assert (aggregate.free_blocks, aggregate.generation, space.extents) == before
    assert aggregate.spaces() == ("a",)


def test_growing_by_a_raid_group_adds_free_space() -> None:
    aggregate = _small()
    aggregate.create_space("a", aggregate.free_blocks)
    assert aggregate.free_blocks == 0
    group = aggregate.add_raid_group()
    assert aggregate.free_blocks == group.block_count
    aggregate.space("a").resize(aggregate.space("a").block_count + 10)
    assert aggregate.free_blocks == group.block_count - 10


def test_shrink_gives_tail_blocks_back_zeroed() -> None:
    aggregate = _small()
    space = aggregate.create_space("a", 50)
    space.write_blocks(np.arange(50, dtype=np.int64), _data(3, 50))
    free = aggregate.free_blocks
    space.resize(20)
    assert aggregate.free_blocks == free + 30
    other = aggregate.create_space("b", 30)
    assert not other.read_blocks(np.arange(30, dtype=np.int64)).any()


def test_bad_requests_are_typed_errors() -> None:
    aggregate = _small()
    aggregate.create_space("a", 1)
    with pytest.raises(AlreadyExistsError):
        aggregate.create_space("a", 1)
    with pytest.raises(NotFoundError):
        aggregate.space("missing")
    with pytest.raises(InvalidArgumentError):
        aggregate.create_space("", 1)
    with pytest.raises(InvalidArgumentError):
        aggregate.space("a").read_block(1)
    with pytest.raises(InvalidArgumentError):
        aggregate.write_block(0, bytes(BLOCK_SIZE))  # the reserved metadata area


def test_volume_data_survives_disk_failures_and_replacement() -> None:
    aggregate = _small()
    space = aggregate.create_space("a", 100)
    data = _data(4, 100)
    space.write_blocks(np.arange(100, dtype=np.int64), data)
    group = aggregate.raid_groups[0]
    group.disks[0].fail()
    group.disks[3].fail()
    assert np.array_equal(space.read_blocks(np.arange(100, dtype=np.int64)), data)
    reports = aggregate.replace_disks(0, (3, 0))  # both in one pass
    assert [r.disk_index for r in reports] == [0, 3]
    assert group.failed_disks == ()
    assert all(report.parity_mismatches == () for report in aggregate.scrub())
    group.disks[1].fail()
    assert aggregate.replace_disk(0, 1).disk_index == 1
    assert np.array_equal(space.read_blocks(np.arange(100, dtype=np.int64)), data)


_CHECK = """
import sys, numpy as np
from xvol.reference.storage.aggregate import Aggregate
a = Aggregate.open(sys.argv[1])
expected = np.load(sys.argv[2])
ok = a.spaces() == ("alpha", "beta") and np.array_equal(
    a.space("alpha").read_blocks(np.arange(len(expected))), expected)
a.create_space("gamma", 3); a.close()
sys.exit(0 if ok else 1)
"""


def test_file_backed_aggregate_reopens_in_a_new_process(tmp_path: Path) -> None:
    root = tmp_path / "aggr"
    aggregate = Aggregate.create(root, "5", data_disks=3, blocks_per_disk=64, metadata_blocks=2)
    data = _data(5, 30)
    aggregate.create_space("alpha", 30).write_blocks(np.arange(30, dtype=np.int64), data)
    aggregate.create_space("beta", 7)
    aggregate.add_raid_group()
    aggregate.close()
    np.save(tmp_path / "expected.npy", data)
    subprocess.run(
        [sys.executable, "-c", _CHECK, str(root), str(tmp_path / "expected.npy")], check=True
    )
    reopened = Aggregate.open(root)
    assert reopened.spaces() == ("alpha", "beta", "gamma")
    assert len(reopened.raid_groups) == 2
    with pytest.raises(AlreadyExistsError):
        Aggregate.create(root)


_KILLED = """
import os, sys, numpy as np
from xvol.reference.storage import aggregate as module
from xvol.reference.storage.aggregate import Aggregate
a = Aggregate.open(sys.argv[1])
real = a._physical_write
def torn(numbers, data):   # the new copy's header lands, its payload does not; then die
    block = data[:1].copy(); block[0, 56:] = 0
    real(numbers[:1], block); os._exit(9)
a._physical_write = torn
a.create_space("doomed", 5)
"""


def test_kill_during_a_metadata_update_keeps_the_previous_table(tmp_path: Path) -> None:
    root = tmp_path / "aggr"
    aggregate = Aggregate.create(root, "dp", data_disks=3, blocks_per_disk=64, metadata_blocks=2)
    aggregate.create_space("kept", 9).write_block(0, b"k" * BLOCK_SIZE)
    aggregate.close()
    result = subprocess.run([sys.executable, "-c", _KILLED, str(root)], check=False)
    assert result.returncode == 9
    reopened = Aggregate.open(root)
    assert reopened.spaces() == ("kept",)
    assert reopened.space("kept").read_block(0) == b"k" * BLOCK_SIZE
    reopened.create_space("after", 4)  # and it keeps working
    assert reopened.spaces() == ("after", "kept")


def test_blocks_of_a_deleted_space_read_as_zeros_in_the_next_space_after_reopen(
    tmp_path: Path,
) -> None:
    root = tmp_path / "aggr"
    aggregate = Aggregate.create(root, "4", data_disks=2, blocks_per_disk=64, metadata_blocks=1)
    space = aggregate.create_space("old", 60)
    space.write_blocks(np.arange(60, dtype=np.int64), _data(9, 60))
    aggregate.delete_space("old")
    aggregate.close()
    reopened = Aggregate.open(root)
    fresh = reopened.create_space("new", 80)
    assert not fresh.read_blocks(np.arange(80, dtype=np.int64)).any()


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    runs=st.lists(st.tuples(st.integers(0, 85), st.integers(1, 50)), min_size=1, max_size=3),
    summed=st.booleans(),
)
def test_runs_across_extents_and_raid_groups_read_back_with_their_sums(
    seed: int, runs: list[tuple[int, int]], summed: bool
) -> None:
    aggregate = Aggregate.create_in_memory("4", 4, 16, metadata_blocks=2)  # 64 blocks a group
    aggregate.add_raid_group()
    space = aggregate.create_space("a", 20)
    aggregate.create_space("b", 15)
    aggregate.create_space("c", 10)
    aggregate.delete_space("b")
    space.resize(90)  # takes b's 15 blocks (merged with a's extent), then blocks after c
    assert space.extents == [(4, 35), (49, 55)]  # the second one runs into RAID group 1 at 64
    assert aggregate.locate(49)[0] == 0 and aggregate.locate(103)[0] == 1
    expected = _data(seed, 90)
    space.write_blocks(np.arange(90, dtype=np.int64), expected)
    new = _data(seed + 1, 90)
    for start, length in runs:
        numbers = np.arange(start, min(start + length, 90), dtype=np.int64)
        if summed:
            space.write_blocks_summed(numbers, new[numbers], content_sums(new[numbers]))
        else:
            space.write_blocks(numbers, new[numbers])
        expected[numbers] = new[numbers]
    for numbers in (np.arange(90, dtype=np.int64), np.arange(89, -1, -3, dtype=np.int64)):
        out, sums = space.read_blocks_summed(numbers)
        assert np.array_equal(out, expected[numbers])
        assert np.array_equal(sums, content_sums(expected[numbers]))
    for report in aggregate.scrub(repair=False):
        assert report.repaired == () and report.parity_mismatches == ()


def test_replacing_disks_of_a_file_backed_aggregate_persists_or_leaves_nothing(
    tmp_path: Path,
) -> None:
    root = tmp_path / "aggr"
    aggregate = Aggregate.create(root, "dp", data_disks=3, blocks_per_disk=32, metadata_blocks=2)
    data = _data(8, 40)
    aggregate.create_space("a", 40).write_blocks(np.arange(40, dtype=np.int64), data)
    group = aggregate.raid_groups[0]
    for slot in (0, 1, 2):
        group.disks[slot].fail()
    files = sorted(p.name for p in root.iterdir())
    with pytest.raises(DataLossError):
        aggregate.replace_disks(0, (0, 1, 2))  # beyond RAID-DP: nothing may change
    assert sorted(p.name for p in root.iterdir()) == files
    with pytest.raises(InvalidArgumentError):
        aggregate.replace_disks(0, (1, 1))
    group.disks[2]._failed = False  # the third disk comes back (it only lost its cable)
    aggregate.replace_disks(0, (1, 0))
    aggregate.close()
    reopened = Aggregate.open(root)
    assert reopened.raid_groups[0].failed_disks == ()
    assert np.array_equal(reopened.space("a").read_blocks(np.arange(40, dtype=np.int64)), data)
