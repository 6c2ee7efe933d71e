"""Tests of reference/storage/disk.py: memory and file disks store checksummed blocks, count
I/O, inject faults as typed errors, and file disks survive a new process."""

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
    DeviceError,
    IntegrityError,
    InvalidArgumentError,
    StateError,
)
from xvol.reference.storage.block import BLOCK_SIZE, BlockSpace
from xvol.reference.storage.checksum import content_sums
from xvol.reference.storage.disk import (
    ChecksumMismatchError,
    Disk,
    DiskFailedError,
    FileDisk,
    LatentSectorError,
    MemoryDisk,
)


def _data(seed: int, count: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, BLOCK_SIZE), dtype=np.uint8)


@pytest.fixture(params=["memory", "file"])
def disk(request: pytest.FixtureRequest, tmp_path: Path) -> Disk:
    if request.param == "memory":
        return MemoryDisk("d0", 64)
    return FileDisk.create(tmp_path / "d0.disk", "d0", 64)


def test_disks_implement_the_block_space_protocol(disk: Disk) -> None:
    space: BlockSpace = disk
    assert space.block_count == 64


def test_unwritten_blocks_read_as_zeros(disk: Disk) -> None:
    assert disk.read_block(63) == bytes(BLOCK_SIZE)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), numbers=st.lists(st.integers(0, 63), max_size=20))
def test_reads_return_the_last_written_bytes(seed: int, numbers: list[int]) -> None:
    disk = MemoryDisk("d", 64)
    data = _data(seed, len(numbers))
    disk.write_blocks(np.array(numbers, dtype=np.int64), data)
    expected = {n: data[i] for i, n in enumerate(numbers)}
    for n, block in expected.items():
        assert disk.read_block(n) == block.tobytes()


def test_counters_count_blocks_and_bytes(disk: Disk) -> None:
    disk.write_blocks(np.arange(4, dtype=np.int64), _data(1, 4))
    disk.read_blocks(np.arange(3, dtype=np.int64))
    assert (disk.counters.writes, disk.counters.reads) == (4, 3)
    assert disk.counters.bytes_written == 4 * BLOCK_SIZE
    assert disk.counters.bytes_read == 3 * BLOCK_SIZE


def test_fail_stop_disk_raises_a_device_error_naming_it(disk: Disk) -> None:
    disk.fail()
    with pytest.raises(DiskFailedError, match="d0") as info:
        disk.read_block(0)
    assert isinstance(info.value, DeviceError)
    with pytest.raises(DiskFailedError):
        disk.write_block(0, bytes(BLOCK_SIZE))


def test_latent_error_raises_on_read_and_clears_on_write(disk: Disk) -> None:
    disk.inject_latent_error(5)
    with pytest.raises(LatentSectorError) as info:
        disk.read_blocks(np.arange(8, dtype=np.int64))
    assert info.value.blocks == [5] and isinstance(info.value, DeviceError)
    _, bad = disk.read_blocks_tolerant(np.arange(8, dtype=np.int64))
    assert bad.tolist() == [i == 5 for i in range(8)]
    disk.write_block(5, b"\x01" * BLOCK_SIZE)
    assert disk.read_block(5) == b"\x01" * BLOCK_SIZE


def test_bit_flip_is_caught_by_the_checksum_and_never_returned(disk: Disk) -> None:
    disk.write_block(9, b"\xaa" * BLOCK_SIZE)
    disk.flip_bit(9, 12345)
    with pytest.raises(ChecksumMismatchError) as info:
        disk.read_block(9)
    assert isinstance(info.value, IntegrityError) and info.value.blocks == [9]
    data, bad = disk.read_blocks_tolerant(np.array([9], dtype=np.int64))
    assert bad[0] and not data.any()


def test_bad_arguments_raise_and_change_nothing(disk: Disk) -> None:
    with pytest.raises(InvalidArgumentError):
        disk.read_block(64)
    with pytest.raises(InvalidArgumentError):
        disk.write_block(0, b"x")
    with pytest.raises(InvalidArgumentError):
        disk.write_blocks(np.array([0, 70]), _data(0, 2))
    assert disk.read_block(0) == bytes(BLOCK_SIZE)
    assert disk.counters.writes == 0


def test_file_disk_survives_a_new_process(tmp_path: Path) -> None:
    path = tmp_path / "p.disk"
    disk = FileDisk.create(path, "persistent", 32)
    data = _data(7, 32)
    disk.write_blocks(np.arange(32, dtype=np.int64), data)
    disk.close()
    np.save(tmp_path / "expected.npy", data)
    script = (
        "import numpy as np, sys\n"
        "from xvol.reference.storage.disk import FileDisk\n"
        f"d = FileDisk.open({str(path)!r})\n"
        f"expected = np.load({str(tmp_path / 'expected.npy')!r})\n"
        "ok = np.array_equal(d.read_blocks(np.arange(32)), expected)\n"
        "d.write_block(3, bytes([7]) * 4096); d.close()\n"
        "sys.exit(0 if ok and d.name == 'persistent' else 1)\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True)
    reopened = FileDisk.open(path)
    assert reopened.read_block(3) == bytes([7]) * 4096
    assert reopened.read_block(4) == data[4].tobytes()


def test_file_disk_refuses_overwrite_and_foreign_files(tmp_path: Path) -> None:
    FileDisk.create(tmp_path / "a.disk", "a", 4).close()
    with pytest.raises(AlreadyExistsError):
        FileDisk.create(tmp_path / "a.disk", "a", 4)
    (tmp_path / "junk").write_bytes(b"not a disk" * 1000)
    with pytest.raises(InvalidArgumentError):
        FileDisk.open(tmp_path / "junk")


def test_closed_file_disk_refuses_io(tmp_path: Path) -> None:
    disk = FileDisk.create(tmp_path / "c.disk", "c", 4)
    disk.close()
    with pytest.raises(StateError):
        disk.read_block(0)


def test_summed_reads_and_writes_agree_with_the_plain_ones(disk: Disk) -> None:
    data = _data(11, 12)
    numbers = np.array([3, 4, 5, 6, 40, 41, 9, 10, 11, 12, 13, 60], dtype=np.int64)
    disk.write_blocks_summed(numbers, data, content_sums(data))
    checksums = disk.stored_checksums(numbers)
    disk.write_blocks(numbers, data)
    assert np.array_equal(disk.stored_checksums(numbers), checksums)
    out, sums = disk.read_blocks_summed(numbers)
    assert np.array_equal(out, data) and np.array_equal(sums, content_sums(data))
    with pytest.raises(InvalidArgumentError):
        disk.write_blocks_summed(numbers, data, content_sums(data)[:-1])


def test_a_run_is_read_as_a_read_only_view_and_checked(disk: Disk) -> None:
    data = _data(12, 8)
    disk.write_blocks(np.arange(20, 28, dtype=np.int64), data)
    view, sums, bad = disk.read_run(20, 8)
    assert np.array_equal(view, data) and not bad.any()
    assert np.array_equal(sums, content_sums(data))
    with pytest.raises(ValueError):
        view[0, 0] = 1  # a view of the stored blocks: never writable
    disk.flip_bit(23, 7)
    _, _, bad = disk.read_run(20, 8)
    assert bad.tolist() == [False, False, False, True, False, False, False, False]
    with pytest.raises(InvalidArgumentError):
        disk.read_run(60, 8)


def test_prefault_keeps_the_contents() -> None:
    disk = MemoryDisk("d", 16)
    data = _data(13, 16)
    disk.write_blocks(np.arange(16, dtype=np.int64), data)
    disk.prefault()
    assert np.array_equal(disk.read_blocks(np.arange(16, dtype=np.int64)), data)
