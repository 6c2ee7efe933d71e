"""Tests of block-level diff and apply (xvol.reference.volume.diff): the birth-walk diff equals
the allocation-map diff and the full-scan diff; applying baseline and incremental diffs reproduces
snapshots bit for bit on another space; bad streams, interruptions and kills commit nothing."""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xvol.errors import (
    AlreadyExistsError,
    IntegrityError,
    InvalidArgumentError,
    NotFoundError,
    OutOfSpaceError,
    StateError,
)
from xvol.reference.storage.aggregate import Aggregate
from xvol.reference.storage.block import BLOCK_SIZE, BlockNumbers, Blocks, VolumeSpace
from xvol.reference.storage.checksum import content_sums
from xvol.reference.volume.diff import (
    ApplySession,
    BlockBatch,
    apply_diff,
    diff_snapshots,
    full_scan_diff,
    numbers_digest,
    replicate,
)
from xvol.reference.volume.layout import FileType
from xvol.reference.volume.volume import FileSystemView, Volume


class MemorySpace:
    """A VolumeSpace in memory (test double for an aggregate's space)."""

    def __init__(self, name: str, block_count: int) -> None:
        self._name = name
        self.data = np.zeros((block_count, BLOCK_SIZE), dtype=np.uint8)
        self.writes = 0

    @property
    def name(self) -> str:
        return self._name

    @property
    def block_count(self) -> int:
        return len(self.data)

    def read_block(self, number: int) -> bytes:
        return self.data[number].tobytes()

    def write_block(self, number: int, data: bytes) -> None:
        self.writes += 1
        self.data[number] = np.frombuffer(data, np.uint8)

    def read_blocks(self, numbers: BlockNumbers) -> Blocks:
        return self.data[numbers]

    def write_blocks(self, numbers: BlockNumbers, data: Blocks) -> None:
        self.writes += len(numbers)
        self.data[numbers] = data

    def resize(self, block_count: int) -> None:
        grown = np.zeros((block_count, BLOCK_SIZE), dtype=np.uint8)
        keep = min(block_count, len(self.data))
        grown[:keep] = self.data[:keep]
        self.data = grown


class FileSpace:
    """A file-backed VolumeSpace with a CRC-32 per block (torn blocks raise IntegrityError)."""

    def __init__(self, path: Path, block_count: int) -> None:
        self.path = path
        self._data = os.open(path, os.O_RDWR | os.O_CREAT)
        self._sums = os.open(str(path) + ".crc", os.O_RDWR | os.O_CREAT)
        if os.fstat(self._data).st_size < block_count * BLOCK_SIZE:
            os.ftruncate(self._data, block_count * BLOCK_SIZE)
            os.ftruncate(self._sums, block_count * 4)
        self._count = os.fstat(self._data).st_size // BLOCK_SIZE

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def block_count(self) -> int:
        return self._count

    def read_block(self, number: int) -> bytes:
        data = os.pread(self._data, BLOCK_SIZE, number * BLOCK_SIZE)
        stored = int.from_bytes(os.pread(self._sums, 4, number * 4), "little")
        if zlib.crc32(data) != stored and (stored or any(data)):
            raise IntegrityError(f"block {number} fails its checksum")
        return data

    def write_block(self, number: int, data: bytes) -> None:
        os.pwrite(self._data, data, number * BLOCK_SIZE)
        os.pwrite(self._sums, zlib.crc32(data).to_bytes(4, "little"), number * 4)

    def read_blocks(self, numbers: BlockNumbers) -> Blocks:
        out = np.zeros((len(numbers), BLOCK_SIZE), dtype=np.uint8)
        for i, number in enumerate(numbers):
            out[i] = np.frombuffer(self.read_block(int(number)), np.uint8)
        return out

    def write_blocks(self, numbers: BlockNumbers, data: Blocks) -> None:
        for number, row in zip(numbers, data, strict=True):
            self.write_block(int(number), row.tobytes())

    def resize(self, block_count: int) -> None:
        os.ftruncate(self._data, block_count * BLOCK_SIZE)
        os.ftruncate(self._sums, block_count * 4)
        self._count = block_count


def image(view: Volume | FileSystemView) -> dict[str, bytes | None]:
    out: dict[str, bytes | None] = {}
    for path, stat in view.walk():
        out[path] = None if stat.type == FileType.DIRECTORY else view.read_file(path)
    return out


def random_history(seed: int, steps: int, blocks: int = 4000) -> Volume:
    """A volume after a seeded history of writes, truncates, unlinks, renames, snapshots,
    snapshot deletes and restores."""
    rng = random.Random(seed)
    vol = Volume.create(MemorySpace(f"src{seed}", blocks), "src", auto_cp_blocks=50)
    vol.mkdir("/d")
    serial = 0
    for _ in range(steps):
        files = sorted(p for p, s in vol.walk() if s.type == FileType.REGULAR)
        kind = rng.random()
        if kind < 0.45 or not files:
            path = rng.choice(["/f", "/g", "/d/h", "/d/i", "/big"])
            vol.create_file(path, exist_ok=True)
            size = rng.choice([100, 5000, 40_000, 300 * BLOCK_SIZE])
            vol.write(path, rng.randint(0, 50_000), rng.randbytes(size))
        elif kind < 0.55:
            vol.truncate(rng.choice(files), rng.randint(0, 60_000))
        elif kind < 0.62:
            vol.unlink(rng.choice(files))
        elif kind < 0.68:
            vol.rename(rng.choice(files), rng.choice(["/r1", "/d/r2"]))
        elif kind < 0.85:
            serial += 1
            vol.create_snapshot(f"s{serial}")
        elif kind < 0.93 and len(vol.snapshots()) > 2:
            vol.delete_snapshot(rng.choice(vol.snapshots()).sid)
        elif vol.snapshots():
            vol.restore_snapshot(rng.choice(vol.snapshots()).sid)
    serial += 1
    vol.create_snapshot(f"s{serial}")
    return vol


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000))
def test_birth_walk_diff_equals_map_diff_and_full_scan_for_every_snapshot_pair(seed: int) -> None:
    vol = random_history(seed, 40)
    names = [s.name for s in vol.snapshots()]
    pairs = [(None, t) for t in names] + [(b, t) for b in names for t in names if b != t]
    for base, target in pairs:
        walk = diff_snapshots(vol, base, target)
        maps = diff_snapshots(vol, base, target, method="maps")
        scan = full_scan_diff(vol, base, target)
        assert np.array_equal(walk.numbers, maps.numbers), (base, target)
        assert np.array_equal(walk.numbers, scan.numbers), (base, target)
        assert np.array_equal(walk.freed, scan.freed), (base, target)
        assert walk.header.record_count == len(walk.numbers)


def test_birth_walk_visits_only_changed_blocks_of_a_large_file() -> None:
    vol = Volume.create(MemorySpace("big", 80_000), "big")
    vol.create_file("/big")
    vol.write_blocks("/big", 0, np.zeros((60_000, BLOCK_SIZE), np.uint8))
    vol.create_snapshot("a")
    vol.write("/big", 12345 * BLOCK_SIZE, b"changed")
    vol.create_snapshot("b")
    reads_before = 0
    space = vol.space
    assert isinstance(space, MemorySpace)
    counted: list[int] = []
    original = space.read_blocks

    def counting(numbers: BlockNumbers) -> Blocks:
        counted.append(len(numbers))
        return original(numbers)

    space.read_blocks = counting  # type: ignore[method-assign]
    diff = diff_snapshots(vol, "a", "b")
    # fsinfo, inode block, inode file's map, double indirect, one indirect, one data block
    assert len(diff.numbers) <= 8
    assert sum(counted) - reads_before <= 8


def check_replica(source: Volume, dest: Volume) -> None:
    """Every snapshot of ``dest`` is bit-for-bit the source's: same UUID, same blocks."""
    for info in dest.snapshots():
        src = source.snapshot_info(info.uuid)
        assert (src.name, src.cp) == (info.name, info.cp)
        src_map = source._snapshot_map(source._record(info.uuid).sid)
        dst_map = dest._snapshot_map(info.sid)[: len(src_map)]
        assert np.array_equal(src_map, dst_map)
        numbers = np.flatnonzero(src_map)
        assert np.array_equal(source.space.read_blocks(numbers), dest.space.read_blocks(numbers))
        assert image(source.snapshot(info.uuid)) == image(dest.snapshot(info.uuid))


def _aggregate_space(name: str, blocks: int) -> VolumeSpace:
    aggregate = Aggregate.create_in_memory("dp", 4, 1200, name=f"{name}-aggr")
    return aggregate.create_space(name, blocks)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), on_aggregate=st.booleans())
def test_baseline_then_incrementals_reproduce_snapshots_on_another_space(
    seed: int, on_aggregate: bool
) -> None:
    rng = random.Random(seed)
    space = _aggregate_space if on_aggregate else MemorySpace
    source = Volume.create(space("src", 3000), "src")
    dest = Volume.create(space("dst", 100), "dst", replica=True)
    previous = None
    for round_no in range(5):
        for _ in range(rng.randint(1, 5)):
            path = rng.choice(["/a", "/b", "/c"])
            source.create_file(path, exist_ok=True)
            source.write(path, rng.randint(0, 30_000), rng.randbytes(rng.randint(1, 20_000)))
        if rng.random() < 0.3 and source.exists("/b"):
            source.unlink("/b")
        name = f"t{round_no}"
        source.create_snapshot(name)
        replicate(source, dest, previous, name)
        previous = name
        check_replica(source, dest)
    reopened = Volume.open(dest.space)
    check_replica(source, reopened)
    assert image(reopened) == image(source.snapshot(previous))


def test_replication_after_a_source_restore_resends_nothing_the_destination_holds() -> None:
    source = Volume.create(MemorySpace("src", 3000), "src")
    dest = Volume.create(MemorySpace("dst", 100), "dst", replica=True)
    source.write_file("/f", b"one" * 5000)
    source.create_snapshot("s1")
    replicate(source, dest, None, "s1")
    source.write_file("/f", b"two" * 5000)
    source.create_snapshot("s2")
    replicate(source, dest, "s1", "s2")
    source.restore_snapshot("s1")
    source.write_file("/g", b"new")
    source.create_snapshot("s3")
    replicate(source, dest, "s2", "s3")
    check_replica(source, dest)
    assert Volume.open(dest.space).read_file("/f") == b"one" * 5000


def _two_volumes() -> tuple[Volume, Volume]:
    source = Volume.create(MemorySpace("src", 2000), "src")
    source.mkdir("/d")
    source.write_file("/d/f", bytes(range(256)) * 300)
    source.create_snapshot("base")
    dest = Volume.create(MemorySpace("dst", 100), "dst", replica=True)
    replicate(source, dest, None, "base")
    source.write("/d/f", 5000, b"X" * 30_000)
    source.write_file("/g", b"g" * 10_000)
    source.create_snapshot("next")
    return source, dest


def _dest_state(dest: Volume) -> tuple[object, ...]:
    reopened = Volume.open(dest.space)
    return (reopened.snapshots(), image(reopened), reopened.cp, dest.snapshots())


def test_a_corrupted_record_raises_integrity_error_and_commits_nothing() -> None:
    source, dest = _two_volumes()
    diff = diff_snapshots(source, "base", "next")
    before = _dest_state(dest)
    batches = list(diff.batches(4))
    bad = batches[1]
    data = bad.data.copy()
    data[2, 17] ^= 1
    session = ApplySession(dest, diff.header)
    session.write(batches[0])
    with pytest.raises(IntegrityError):
        session.write(BlockBatch(bad.numbers, data, bad.checksums))
    with pytest.raises(IntegrityError):
        session.commit()  # incomplete
    assert _dest_state(dest) == before


def test_an_interrupted_apply_leaves_the_previous_snapshot_and_resumes_from_its_checkpoint() -> (
    None
):
    source, dest = _two_volumes()
    diff = diff_snapshots(source, "base", "next")
    before = _dest_state(dest)
    session = ApplySession(dest, diff.header)
    sent = 0
    for batch in diff.batches(3):
        if sent >= len(diff.numbers) // 2:
            break  # the link drops
        session.write(batch)
        sent += len(batch.numbers)
    checkpoint = session.checkpoint()
    assert checkpoint.applied == sent and _dest_state(dest) == before
    # The destination restarts from its blocks; the source re-sends only what is missing.
    dest = Volume.open(dest.space)
    resumed = ApplySession.resume(dest, diff.header, checkpoint)
    rest = list(diff.batches(3, start_after=checkpoint.cursor))
    assert sum(len(b.numbers) for b in rest) == len(diff.numbers) - sent
    for batch in rest:
        resumed.write(batch)
    info = resumed.commit()
    assert info.uuid == source.snapshot_info("next").uuid
    check_replica(source, dest)


def test_a_record_delivered_under_another_block_number_fails_its_checksum() -> None:
    source, dest = _two_volumes()
    diff = diff_snapshots(source, "base", "next")
    before = _dest_state(dest)
    batch = next(diff.batches(1000))
    numbers = batch.numbers.copy()
    free = ~dest._blocks_in_use(np.arange(numbers[-1] + 1, dest.block_count, dtype=np.int64))
    numbers[-1] = numbers[-1] + 1 + int(np.flatnonzero(free)[0])  # still ascending, still free
    assert np.array_equal(batch.checksums[:, 0], content_sums(batch.data))
    with pytest.raises(IntegrityError, match="fails its checksum"):
        ApplySession(dest, diff.header).write(BlockBatch(numbers, batch.data, batch.checksums))
    assert _dest_state(dest) == before


@pytest.mark.parametrize(
    ("mutate", "error"),
    [
        ("reorder", InvalidArgumentError),
        ("checksum", IntegrityError),
        ("extra", IntegrityError),
    ],
)
def test_malformed_streams_are_rejected_before_commit(mutate: str, error: type) -> None:
    source, dest = _two_volumes()
    diff = diff_snapshots(source, "base", "next")
    before = _dest_state(dest)
    batches = list(diff.batches(1000))
    batch = batches[0]
    with pytest.raises(error):
        session = ApplySession(dest, diff.header)
        if mutate == "reorder":
            order = np.arange(len(batch.numbers))[::-1].copy()
            session.write(
                BlockBatch(batch.numbers[order], batch.data[order], batch.checksums[order])
            )
        elif mutate == "checksum":
            sums = batch.checksums.copy()
            sums[0, 0] += np.uint64(1)
            session.write(BlockBatch(batch.numbers, batch.data, sums))
        else:
            header = diff.header
            from dataclasses import replace

            session = ApplySession(dest, replace(header, record_count=header.record_count + 1))
            session.write(batch)
            session.commit()
    assert _dest_state(dest) == before


def test_apply_preconditions_are_typed_errors() -> None:
    source, dest = _two_volumes()
    nothing = Volume.create(MemorySpace("empty", 100), "empty", replica=True)
    incremental = diff_snapshots(source, "base", "next")
    with pytest.raises(NotFoundError):
        apply_diff(nothing, incremental.header, incremental.batches())
    baseline = diff_snapshots(source, None, "next")
    with pytest.raises(StateError):
        apply_diff(dest, baseline.header, baseline.batches())
    again = diff_snapshots(source, None, "base")
    with pytest.raises(AlreadyExistsError):
        apply_diff(dest, again.header, again.batches())
    # A destination changed since its snapshot needs an explicit rollback.
    dest.make_writable()
    dest.write_file("/local", b"mine")
    dest.sync()
    with pytest.raises(StateError):
        apply_diff(dest, incremental.header, incremental.batches())
    apply_diff(dest, incremental.header, incremental.batches(), rollback=True)
    assert not dest.exists("/local")
    check_replica(source, dest)


def test_a_destination_snapshot_the_source_deleted_blocks_reuse_until_deleted_there() -> None:
    source = Volume.create(MemorySpace("src", 300), "src")
    dest = Volume.create(MemorySpace("dst", 100), "dst", replica=True)
    source.write_file("/f", b"a" * 100 * BLOCK_SIZE)
    source.create_snapshot("s1")
    replicate(source, dest, None, "s1")
    source.write_file("/f", b"b" * 100 * BLOCK_SIZE)
    source.create_snapshot("s2")
    replicate(source, dest, "s1", "s2")
    source.delete_snapshot("s1")
    source.write_file("/f", b"c" * 120 * BLOCK_SIZE)  # reuses s1's blocks
    source.create_snapshot("s3")
    diff = diff_snapshots(source, "s2", "s3")
    before = _dest_state(dest)
    with pytest.raises(StateError):
        apply_diff(dest, diff.header, diff.batches())
    assert _dest_state(dest) == before
    dest.delete_snapshot("s1")
    apply_diff(dest, diff.header, diff.batches())
    check_replica(source, dest)


def test_numbers_digest_is_resumable_and_order_independent() -> None:
    numbers = np.array([5, 90, 1234, 77777], dtype=np.int64)
    whole = numbers_digest(numbers)
    assert numbers_digest(numbers[2:], numbers_digest(numbers[:2])) == whole
    assert numbers_digest(numbers[::-1].copy()) == whole
    assert numbers_digest(np.array([5, 90, 1234, 77778], dtype=np.int64)) != whole


def test_apply_grows_a_smaller_destination() -> None:
    source = Volume.create(MemorySpace("src", 3000), "src")
    source.write_file("/f", b"z" * 1000 * BLOCK_SIZE)
    source.create_snapshot("s")
    dest = Volume.create(MemorySpace("dst", 100), "dst", replica=True)
    replicate(source, dest, None, "s")
    assert dest.block_count == 3000 and dest.space.block_count == 3000
    assert dest.read("/f", 999 * BLOCK_SIZE, 1) == b"z"


def test_apply_raises_out_of_space_when_the_destination_cannot_grow() -> None:
    source = Volume.create(MemorySpace("src", 3000), "src")
    source.write_file("/f", b"z")
    source.create_snapshot("s")

    class Capped(MemorySpace):
        def resize(self, block_count: int) -> None:
            raise OutOfSpaceError("aggregate full")

    dest = Volume.create(Capped("dst", 100), "dst", replica=True)
    diff = diff_snapshots(source, None, "s")
    with pytest.raises(OutOfSpaceError):
        apply_diff(dest, diff.header, diff.batches())
    assert dest.snapshots() == [] and dest.block_count == 100


# --------------------------------------------------------------------------------------------
# Kill the destination mid-apply
# --------------------------------------------------------------------------------------------


def _slow_apply(path: Path, source: Volume, base: str, target: str) -> None:
    dest = Volume.open(FileSpace(path, 100))
    diff = diff_snapshots(source, base, target)
    session = ApplySession(dest, diff.header)
    for batch in diff.batches(2):
        session.write(batch)
        time.sleep(0.002)
    session.commit()


def test_sigkill_mid_apply_leaves_the_previous_snapshot_and_a_restart_succeeds(
    tmp_path: Path,
) -> None:
    source = Volume.create(MemorySpace("src", 3000), "src")
    source.write_file("/f", b"1" * 200 * BLOCK_SIZE)
    source.create_snapshot("s1")
    path = tmp_path / "dest.img"
    dest = Volume.create(FileSpace(path, 100), "dst", replica=True)
    replicate(source, dest, None, "s1")
    source.write("/f", 0, b"2" * 150 * BLOCK_SIZE)
    source.create_snapshot("s2")
    rng = random.Random(3)
    context = multiprocessing.get_context("fork")
    for _ in range(4):
        child = context.Process(target=_slow_apply, args=(path, source, "s1", "s2"))
        child.start()
        time.sleep(rng.uniform(0.01, 0.08))
        os.kill(child.pid, signal.SIGKILL)  # type: ignore[arg-type]
        child.join()
        reopened = Volume.open(FileSpace(path, 100))
        names = [s.name for s in reopened.snapshots()]
        if names == ["s1", "s2"]:  # the child finished before the kill
            break
        assert names == ["s1"]
        assert reopened.read_file("/f") == b"1" * 200 * BLOCK_SIZE
    reopened = Volume.open(FileSpace(path, 100))
    if len(reopened.snapshots()) == 1:
        replicate(source, reopened, "s1", "s2")
    final = Volume.open(FileSpace(path, 100))
    assert final.read_file("/f") == b"2" * 150 * BLOCK_SIZE + b"1" * 50 * BLOCK_SIZE
    check_replica(source, final)
