"""Tests of the write-anywhere volume (xvol.reference.volume.volume): file operations, errors that
leave state unchanged, persistence in blocks, snapshots, and crash consistency under SIGKILL."""

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
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
)

from xvol.errors import (
    AlreadyExistsError,
    IntegrityError,
    InvalidArgumentError,
    NotFoundError,
    OutOfSpaceError,
    PermissionDeniedError,
    StateError,
    XvolError,
)
from xvol.reference.storage.aggregate import Aggregate
from xvol.reference.storage.block import BLOCK_SIZE, BlockNumbers, Blocks, VolumeSpace
from xvol.reference.volume.layout import MAX_SNAPSHOTS, FileType
from xvol.reference.volume.volume import (
    ROOT,
    Credential,
    DirectoryNotEmptyError,
    FileTooLargeError,
    IsDirectoryError,
    NotDirectoryError,
    ReadOnlyVolumeError,
    TooManySnapshotsError,
    Volume,
)
from xvol.reference.volume.volume_simulator import block_roles

# --------------------------------------------------------------------------------------------
# Block spaces for the tests: in memory, and file-backed with a checksum per block
# --------------------------------------------------------------------------------------------


class MemorySpace:
    """A VolumeSpace in memory. ``fail_after`` makes the n-th later write raise (a device fault)."""

    def __init__(self, name: str, block_count: int, limit: int | None = None) -> None:
        self._name = name
        self.data = np.zeros((block_count, BLOCK_SIZE), dtype=np.uint8)
        self.limit = limit
        self.fail_after: int | None = None

    @property
    def name(self) -> str:
        return self._name

    @property
    def block_count(self) -> int:
        return len(self.data)

    def _check(self, numbers: BlockNumbers) -> None:
        if len(numbers) and (numbers.min() < 0 or numbers.max() >= len(self.data)):
            raise InvalidArgumentError("block number out of range")

    def _fault(self) -> None:
        if self.fail_after is not None:
            if self.fail_after == 0:
                from xvol.errors import DeviceError

                raise DeviceError("injected write fault")
            self.fail_after -= 1

    def read_block(self, number: int) -> bytes:
        self._check(np.array([number]))
        return self.data[number].tobytes()

    def write_block(self, number: int, data: bytes) -> None:
        self._check(np.array([number]))
        self._fault()
        self.data[number] = np.frombuffer(data, np.uint8)

    def read_blocks(self, numbers: BlockNumbers) -> Blocks:
        self._check(numbers)
        return self.data[numbers]

    def write_blocks(self, numbers: BlockNumbers, data: Blocks) -> None:
        self._check(numbers)
        self._fault()
        self.data[numbers] = data

    def resize(self, block_count: int) -> None:
        if self.limit is not None and block_count > self.limit:
            raise OutOfSpaceError("aggregate full")
        grown = np.zeros((block_count, BLOCK_SIZE), dtype=np.uint8)
        keep = min(block_count, len(self.data))
        grown[:keep] = self.data[:keep]
        self.data = grown


class FileSpace:
    """A file-backed VolumeSpace: blocks in one file, a CRC-32 per block in another, written data
    first; a block whose CRC does not match raises IntegrityError (a torn write)."""

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
        if not 0 <= number < self._count:
            raise InvalidArgumentError("block number out of range")
        data = os.pread(self._data, BLOCK_SIZE, number * BLOCK_SIZE)
        stored = int.from_bytes(os.pread(self._sums, 4, number * 4), "little")
        if zlib.crc32(data) != stored and (stored or any(data)):
            raise IntegrityError(f"block {number} fails its checksum")
        return data

    def write_block(self, number: int, data: bytes) -> None:
        if not 0 <= number < self._count:
            raise InvalidArgumentError("block number out of range")
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


# --------------------------------------------------------------------------------------------
# A plain model of a file system: path -> bytes (files) or None (directories)
# --------------------------------------------------------------------------------------------


class Model:
    """What the volume should hold. Methods mirror the volume's operations and raise the same
    typed errors, in the same order of checks."""

    def __init__(self) -> None:
        self.entries: dict[str, bytes | None] = {"/": None}

    def copy(self) -> Model:
        out = Model()
        out.entries = dict(self.entries)
        return out

    def _parent(self, path: str) -> str:
        parent = path.rsplit("/", 1)[0]
        return parent or "/"

    def _resolve_dir(self, path: str) -> None:
        parts = [p for p in path.split("/") if p]
        at = ""
        for part in parts:
            at += "/" + part
            if at not in self.entries:
                raise NotFoundError(at)
            if self.entries[at] is not None:
                raise NotDirectoryError(at)

    def _resolve(self, path: str) -> None:
        self._resolve_dir(self._parent(path))
        if path not in self.entries:
            raise NotFoundError(path)

    def make(self, path: str, directory: bool) -> None:
        self._resolve_dir(self._parent(path))
        if path in self.entries:
            raise AlreadyExistsError(path)
        self.entries[path] = None if directory else b""

    def _file(self, path: str) -> bytes:
        self._resolve(path)
        data = self.entries[path]
        if data is None:
            raise IsDirectoryError(path)
        return data

    def write(self, path: str, offset: int, data: bytes) -> None:
        old = self._file(path)
        if not data:
            return
        grown = old.ljust(offset + len(data), b"\0")
        self.entries[path] = grown[:offset] + data + grown[offset + len(data) :]

    def truncate(self, path: str, size: int) -> None:
        old = self._file(path)
        self.entries[path] = old[:size].ljust(size, b"\0")

    def unlink(self, path: str) -> None:
        self._resolve_dir(self._parent(path))
        if path not in self.entries:
            raise NotFoundError(path)
        if self.entries[path] is None:
            raise IsDirectoryError(path)
        del self.entries[path]

    def _children(self, path: str) -> list[str]:
        prefix = path.rstrip("/") + "/"
        return [p for p in self.entries if p.startswith(prefix) and p != path]

    def rmdir(self, path: str) -> None:
        self._resolve_dir(self._parent(path))
        if path not in self.entries:
            raise NotFoundError(path)
        if self.entries[path] is not None:
            raise NotDirectoryError(path)
        if self._children(path):
            raise DirectoryNotEmptyError(path)
        del self.entries[path]

    def rename(self, src: str, dst: str) -> None:
        self._resolve_dir(self._parent(src))
        self._resolve_dir(self._parent(dst))
        if src not in self.entries:
            raise NotFoundError(src)
        if src == dst:
            return
        is_dir = self.entries[src] is None
        if is_dir and dst.startswith(src + "/"):
            raise InvalidArgumentError("into itself")
        if dst in self.entries:
            target_dir = self.entries[dst] is None
            if is_dir and not target_dir:
                raise NotDirectoryError(dst)
            if not is_dir and target_dir:
                raise IsDirectoryError(dst)
            if target_dir and self._children(dst):
                raise DirectoryNotEmptyError(dst)
            del self.entries[dst]
        moved = {p: v for p, v in self.entries.items() if p == src or p.startswith(src + "/")}
        for p in moved:
            del self.entries[p]
        for p, v in moved.items():
            self.entries[dst + p[len(src) :]] = v


def image(view: Volume | object) -> dict[str, bytes | None]:
    """Every path of a volume or snapshot view with its contents (None for directories)."""
    out: dict[str, bytes | None] = {}
    for path, stat in view.walk():  # type: ignore[attr-defined]
        out[path] = None if stat.type == FileType.DIRECTORY else view.read_file(path)  # type: ignore[attr-defined]
    return out


def expect_same_error(model_call: object, volume_call: object) -> None:
    """Run the model operation; the volume must succeed or fail with the same error class."""
    try:
        model_call()  # type: ignore[operator]
    except XvolError as exc:
        with pytest.raises(type(exc)):
            volume_call()  # type: ignore[operator]
        return
    volume_call()  # type: ignore[operator]


# --------------------------------------------------------------------------------------------
# Hypothesis: the volume against the model, with snapshots, restores, CPs and crashes
# --------------------------------------------------------------------------------------------

NAMES = ["a", "b", "x"]
PATHS = st.lists(st.sampled_from(NAMES), min_size=1, max_size=2).map(lambda p: "/" + "/".join(p))
SNAP_NAMES = st.sampled_from(["s1", "s2", "s3", "s4"])


class VolumeMachine(RuleBasedStateMachine):
    """Random file operations, snapshots, restores, deletes of snapshots, CPs and simulated
    crashes (reopen without sync); the volume must always equal the model."""

    snapshots = Bundle("snapshots")

    def _space(self) -> VolumeSpace:
        return MemorySpace("machine", 1200)

    def __init__(self) -> None:
        super().__init__()
        self.space = self._space()
        self.vol = Volume.create(self.space, "machine", auto_cp_blocks=40)
        self.model = Model()
        self.committed = self.model.copy()
        self.snaps: dict[str, Model] = {}

    def _do(self, model_call: object, volume_call: object) -> None:
        before = self.vol.cp
        expect_same_error(model_call, volume_call)
        if self.vol.cp != before:
            self.committed = self.model.copy()

    @rule(path=PATHS, directory=st.booleans())
    def make(self, path: str, directory: bool) -> None:
        call = self.vol.mkdir if directory else self.vol.create_file
        self._do(lambda: self.model.make(path, directory), lambda: call(path))

    @rule(
        path=PATHS,
        offset=st.integers(0, 20_000),
        size=st.integers(0, 9000),
        fill=st.integers(1, 255),
    )
    def write(self, path: str, offset: int, size: int, fill: int) -> None:
        data = bytes((fill + i) % 256 for i in range(size))
        self._do(
            lambda: self.model.write(path, offset, data),
            lambda: self.vol.write(path, offset, data),
        )

    @rule(path=PATHS, size=st.integers(0, 25_000))
    def truncate(self, path: str, size: int) -> None:
        self._do(lambda: self.model.truncate(path, size), lambda: self.vol.truncate(path, size))

    @rule(path=PATHS)
    def unlink(self, path: str) -> None:
        self._do(lambda: self.model.unlink(path), lambda: self.vol.unlink(path))

    @rule(path=PATHS)
    def rmdir(self, path: str) -> None:
        self._do(lambda: self.model.rmdir(path), lambda: self.vol.rmdir(path))

    @rule(src=PATHS, dst=PATHS)
    def rename(self, src: str, dst: str) -> None:
        self._do(lambda: self.model.rename(src, dst), lambda: self.vol.rename(src, dst))

    @rule()
    def consistency_point(self) -> None:
        self.vol.consistency_point()
        self.committed = self.model.copy()
        # Everything in blocks: the allocation maps are exactly the trees' blocks.
        tree = set(block_roles(self.vol, self.vol._region.active_vbn))
        assert tree == set(np.flatnonzero(self.vol._alloc.used).tolist())
        for info in self.vol.snapshots():
            held = set(block_roles(self.vol, self.vol._record(info.sid).fsinfo_vbn))
            assert held == set(np.flatnonzero(self.vol._snapshot_map(info.sid)).tolist())

    @rule()
    def crash(self) -> None:
        self.vol = Volume.open(self.space, auto_cp_blocks=40)
        self.model = self.committed.copy()

    @precondition(lambda self: len(self.snaps) < 3)
    @rule(target=snapshots, name=SNAP_NAMES)
    def snapshot(self, name: str) -> str:
        if name in self.snaps:
            with pytest.raises(AlreadyExistsError):
                self.vol.create_snapshot(name)
            return name
        self.vol.create_snapshot(name)
        self.snaps[name] = self.model.copy()
        self.committed = self.model.copy()
        return name

    @rule(name=snapshots)
    def delete_snapshot(self, name: str) -> None:
        if name not in self.snaps:
            with pytest.raises(NotFoundError):
                self.vol.delete_snapshot(name)
            return
        self.vol.delete_snapshot(name)
        del self.snaps[name]

    @rule(name=snapshots)
    def restore(self, name: str) -> None:
        if name not in self.snaps:
            with pytest.raises(NotFoundError):
                self.vol.restore_snapshot(name)
            return
        self.vol.restore_snapshot(name)
        self.model = self.snaps[name].copy()
        self.committed = self.model.copy()

    @invariant()
    def active_equals_model(self) -> None:
        assert image(self.vol) == self.model.entries

    @invariant()
    def snapshots_equal_their_models(self) -> None:
        assert {s.name for s in self.vol.snapshots()} == set(self.snaps)
        for name, model in self.snaps.items():
            assert image(self.vol.snapshot(name)) == model.entries

    @invariant()
    def allocation_accounts_for_every_block(self) -> None:
        usage = self.vol.usage()
        assert usage.reserved == 18
        assert usage.active + usage.snapshot_only + usage.pending + usage.free + 18 == usage.total


VolumeMachine.TestCase.settings = settings(
    max_examples=50,
    stateful_step_count=35,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_volume_matches_model_through_snapshots_restores_and_crashes = VolumeMachine.TestCase


class AggregateVolumeMachine(VolumeMachine):
    """The same machine on a space of an in-memory RAID-DP aggregate (the real layer below)."""

    def _space(self) -> VolumeSpace:
        aggregate = Aggregate.create_in_memory("dp", 4, 400)
        return aggregate.create_space("machine", 1200)


AggregateVolumeMachine.TestCase.settings = settings(
    max_examples=10,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_volume_on_an_aggregate_space_matches_model = AggregateVolumeMachine.TestCase


# --------------------------------------------------------------------------------------------
# Plain tests
# --------------------------------------------------------------------------------------------


def _volume(blocks: int = 2000, **kwargs: int) -> tuple[MemorySpace, Volume]:
    space = MemorySpace("vol", blocks)
    return space, Volume.create(space, "vol", **kwargs)


def test_files_directories_and_stat_roundtrip() -> None:
    _, vol = _volume()
    vol.mkdir("/docs", 0o750)
    vol.create_file("/docs/a.txt")
    vol.write("/docs/a.txt", 0, b"hello")
    vol.write("/docs/a.txt", 10_000, b"tail")
    data = vol.read_file("/docs/a.txt")
    assert data == b"hello" + b"\0" * 9995 + b"tail"
    assert vol.read("/docs/a.txt", 3, 4) == b"lo\0\0"
    assert vol.read("/docs/a.txt", 20_000, 5) == b""
    stat = vol.stat("/docs/a.txt")
    assert (stat.type, stat.size, stat.nlink, stat.mode) == (FileType.REGULAR, 10_004, 1, 0o644)
    assert vol.stat("/docs").nlink == 2 and vol.stat("/").nlink == 3
    assert [e.name for e in vol.readdir("/")] == ["docs"]
    assert vol.exists("/docs/a.txt") and not vol.exists("/docs/b") and not vol.exists("/no/x")


def test_file_handles_read_by_inode_and_go_stale_when_the_inode_is_reused() -> None:
    _, vol = _volume()
    vol.write_file("/a", b"first")
    stat = vol.stat("/a")
    assert vol.read_inode(stat.ino, 0, 5, stat.generation) == b"first"
    vol.create_snapshot("s")
    vol.unlink("/a")
    vol.write_file("/b", b"second")
    assert vol.stat("/b").ino == stat.ino  # the inode number is reused ...
    with pytest.raises(NotFoundError):
        vol.read_inode(stat.ino, 0, 5, stat.generation)  # ... so the old handle is stale
    assert vol.snapshot("s").read_inode(stat.ino, 0, 5, stat.generation) == b"first"
    assert vol.snapshot("s").stat_inode(stat.ino).size == 5
    with pytest.raises(InvalidArgumentError):
        vol.read_inode(0, 0, 1)


def test_largest_file_maps_through_the_double_indirect_block() -> None:
    _, vol = _volume(blocks=400)
    vol.create_file("/big")
    last = 65_795 * BLOCK_SIZE
    vol.write("/big", last, b"end")
    vol.write("/big", 300 * BLOCK_SIZE, b"mid")
    vol.sync()
    reopened = Volume.open(vol.space)
    assert reopened.read("/big", last, 3) == b"end"
    assert reopened.read("/big", 300 * BLOCK_SIZE, 3) == b"mid"
    with pytest.raises(FileTooLargeError):
        reopened.write("/big", last + BLOCK_SIZE, b"x")


def test_directory_with_many_entries_spans_blocks_and_shrinks_when_emptied() -> None:
    _, vol = _volume(blocks=3000)
    vol.mkdir("/d")
    names = [f"{'n' * 200}{i:04d}" for i in range(60)]
    for name in names:
        vol.create_file(f"/d/{name}")
    assert vol.stat("/d").size > BLOCK_SIZE
    vol.sync()
    assert [e.name for e in Volume.open(vol.space).readdir("/d")] == sorted(names)
    for name in names:
        vol.unlink(f"/d/{name}")
    assert vol.stat("/d").size == 0
    vol.rmdir("/d")
    assert vol.readdir("/") == []


def test_rename_replaces_a_file_and_moves_directories() -> None:
    _, vol = _volume()
    vol.mkdir("/a")
    vol.mkdir("/b")
    vol.write_file("/a/f", b"one")
    vol.write_file("/b/g", b"two")
    vol.rename("/a/f", "/b/g")
    assert vol.read_file("/b/g") == b"one" and not vol.exists("/a/f")
    vol.rename("/b", "/a/b")
    assert vol.read_file("/a/b/g") == b"one"
    assert vol.stat("/a").nlink == 3 and vol.stat("/").nlink == 3
    with pytest.raises(InvalidArgumentError):
        vol.rename("/a", "/a/b/c")


def _state(vol: Volume) -> tuple[object, ...]:
    return (image(vol), vol.usage(), vol.snapshots(), vol.cp)


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda v: v.mkdir("relative"), InvalidArgumentError),
        (lambda v: v.mkdir("/a//b"), InvalidArgumentError),
        (lambda v: v.create_file("/" + "n" * 256), InvalidArgumentError),
        (lambda v: v.create_file("/a/\0x"), InvalidArgumentError),
        (lambda v: v.create_file("/d/.."), InvalidArgumentError),
        (lambda v: v.read("/missing", 0, 1), NotFoundError),
        (lambda v: v.write("/d/f/x", 0, b"1"), NotDirectoryError),
        (lambda v: v.write("/d", 0, b"1"), IsDirectoryError),
        (lambda v: v.write("/d/f", -1, b"1"), InvalidArgumentError),
        (lambda v: v.unlink("/d"), IsDirectoryError),
        (lambda v: v.rmdir("/d"), DirectoryNotEmptyError),
        (lambda v: v.rmdir("/d/f"), NotDirectoryError),
        (lambda v: v.rmdir("/"), InvalidArgumentError),
        (lambda v: v.rename("/d/f", "/d"), IsDirectoryError),
        (lambda v: v.rename("/nope", "/x"), NotFoundError),
        (lambda v: v.create_file("/d/f"), AlreadyExistsError),
        (lambda v: v.truncate("/d/f", -5), FileTooLargeError),
        (lambda v: v.create_snapshot(""), InvalidArgumentError),
        (lambda v: v.create_snapshot("s"), AlreadyExistsError),
        (lambda v: v.delete_snapshot("zzz"), NotFoundError),
        (lambda v: v.restore_snapshot(99), NotFoundError),
        (lambda v: v.snapshot("nope"), NotFoundError),
        (lambda v: v.view(256), InvalidArgumentError),
        (lambda v: v.write("/d/f", 0, b"x" * 4_000_000), OutOfSpaceError),
        (lambda v: v.resize(20), InvalidArgumentError),
        (lambda v: v.resize(26), StateError),
    ],
)
def test_bad_requests_raise_typed_errors_and_change_nothing(call: object, error: type) -> None:
    _, vol = _volume(blocks=600)
    vol.mkdir("/d")
    vol.write_file("/d/f", b"data" * 3000)
    vol.create_snapshot("s")
    vol.write("/d/f", 0, b"buffered")  # an uncommitted change must survive the failure too
    before = _state(vol)
    with pytest.raises(error):
        call(vol)  # type: ignore[operator]
    assert _state(vol) == before


def test_permissions_are_checked_and_root_bypasses_them() -> None:
    _, vol = _volume()
    alice, bob = Credential(1000, 100), Credential(2000, 200)
    vol.mkdir("/home", 0o755)
    vol.mkdir("/home/alice", 0o700)
    vol.chown("/home/alice", 1000, 100)
    vol.create_file("/home/alice/notes", 0o640, alice)
    vol.write("/home/alice/notes", 0, b"secret", alice)
    before = _state(vol)
    with pytest.raises(PermissionDeniedError):
        vol.read("/home/alice/notes", 0, 6, bob)
    with pytest.raises(PermissionDeniedError):
        vol.create_file("/home/bob", 0o644, bob)
    with pytest.raises(PermissionDeniedError):
        vol.chown("/home/alice", 2000, 200, alice)
    with pytest.raises(PermissionDeniedError):
        vol.readdir("/home/alice", bob)
    assert _state(vol) == before
    assert vol.read_file("/home/alice/notes", ROOT) == b"secret"
    vol.chmod("/home/alice", 0o755, alice)
    assert vol.read("/home/alice/notes", 0, 6, Credential(3000, 100)) == b"secret"
    with pytest.raises(PermissionDeniedError):
        vol.write("/home/alice/notes", 0, b"x", Credential(3000, 100))
    assert vol.stat("/home/alice/notes").uid == 1000


def test_a_block_copy_of_the_space_is_the_same_volume_with_its_snapshots() -> None:
    space, vol = _volume()
    vol.mkdir("/d")
    vol.write_file("/d/f", b"v1" * 5000)
    vol.create_snapshot("first")
    vol.write_file("/d/f", b"v2")
    vol.write_file("/g", b"g" * 100)
    vol.sync()
    copy = MemorySpace("elsewhere", space.block_count)
    copy.data[:] = space.data
    twin = Volume.open(copy)
    assert (twin.uuid, twin.name, twin.cp) == (vol.uuid, vol.name, vol.cp)
    assert image(twin) == image(vol)
    assert twin.snapshots() == vol.snapshots()
    assert image(twin.snapshot("first")) == image(vol.snapshot("first"))


def test_uncommitted_changes_vanish_on_reopen_and_committed_ones_stay() -> None:
    space, vol = _volume()
    vol.write_file("/kept", b"kept")
    vol.sync()
    vol.write_file("/lost", b"lost")
    vol.write("/kept", 0, b"KEPT")
    reopened = Volume.open(space)
    assert image(reopened) == {"/": None, "/kept": b"kept"}


def test_auto_cp_commits_after_enough_dirty_blocks() -> None:
    _, vol = _volume(blocks=3000, auto_cp_blocks=10)
    vol.create_file("/f")
    cp = vol.cp
    vol.write("/f", 0, b"x" * 5 * BLOCK_SIZE)
    assert vol.cp == cp
    vol.write("/f", 5 * BLOCK_SIZE, b"y" * 6 * BLOCK_SIZE)
    assert vol.cp == cp + 1 and vol.dirty_blocks == 0


def test_a_device_fault_during_a_cp_leaves_the_last_cp() -> None:
    space, vol = _volume()
    vol.write_file("/f", b"old")
    vol.sync()
    vol.write_file("/f", b"new" * 2000)
    space.fail_after = 2
    with pytest.raises(XvolError):
        vol.sync()
    space.fail_after = None
    assert vol.read_file("/f") == b"old"
    assert image(Volume.open(space)) == image(vol)


def test_snapshots_share_blocks_until_overwritten_and_account_exclusive_blocks() -> None:
    _, vol = _volume(blocks=3000)
    vol.write_file("/f", b"a" * 100 * BLOCK_SIZE)
    vol.create_snapshot("s")
    used = vol.usage().active
    assert vol.snapshot_exclusive_blocks("s") == 0
    vol.write("/f", 0, b"b" * 10 * BLOCK_SIZE)
    vol.sync()
    assert vol.usage().active <= used + 2
    exclusive = vol.snapshot_exclusive_blocks("s")
    assert 10 <= exclusive <= 14  # 10 data blocks plus old metadata blocks
    assert vol.snapshot("s").read("/f", 0, 1) == b"a"
    free = vol.usage().free
    vol.delete_snapshot("s")
    assert vol.usage().free == free + exclusive


def test_snapshot_ids_uuids_and_the_255_limit() -> None:
    _, vol = _volume(blocks=3000)
    vol.write_file("/f", b"0")
    for i in range(MAX_SNAPSHOTS):
        vol.write("/f", 0, bytes([i % 256]))
        vol.create_snapshot(f"s{i}")
    infos = vol.snapshots()
    assert [s.sid for s in infos] == list(range(1, 256))
    assert len({s.uuid for s in infos}) == 255
    before = _state(vol)
    with pytest.raises(TooManySnapshotsError):
        vol.create_snapshot("one-too-many")
    assert _state(vol) == before
    assert vol.view(17).read_file("/f") == bytes([16])
    assert vol.view(0).read_file("/f") == bytes([254])
    vol.delete_snapshot("s9")
    assert vol.create_snapshot("again").sid == 10
    reopened = Volume.open(vol.space)
    assert reopened.snapshot_info("again").uuid == vol.snapshot_info(10).uuid


def test_restore_returns_to_the_snapshot_and_frees_later_blocks() -> None:
    _, vol = _volume(blocks=3000)
    vol.write_file("/f", b"before")
    vol.create_snapshot("s")
    active = vol.usage().active
    vol.write_file("/g", b"g" * 50 * BLOCK_SIZE)
    vol.unlink("/f")
    vol.restore_snapshot("s")
    assert image(vol) == {"/": None, "/f": b"before"}
    assert vol.usage().active == active
    assert image(Volume.open(vol.space)) == image(vol)


def test_grow_and_shrink_keep_files() -> None:
    space, vol = _volume(blocks=200)
    space.limit = 5000
    vol.write_file("/f", b"x" * (75 * BLOCK_SIZE))
    with pytest.raises(OutOfSpaceError):
        vol.write("/f", 0, b"y" * 200 * BLOCK_SIZE)
    vol.resize(5000)
    vol.write("/f", 0, b"y" * 200 * BLOCK_SIZE)
    vol.sync()
    assert Volume.open(space).read("/f", 0, 2) == b"yy"
    vol.truncate("/f", 10)
    vol.resize(300)
    assert space.block_count == 300
    assert Volume.open(space).read_file("/f") == b"y" * 10
    with pytest.raises(OutOfSpaceError):
        vol.resize(6000)
    assert vol.block_count == 300


def test_replica_refuses_changes_until_made_writable() -> None:
    space = MemorySpace("r", 500)
    vol = Volume.create(space, "r", replica=True)
    assert vol.read_only and not vol.has_active
    with pytest.raises(StateError):
        vol.readdir("/")
    with pytest.raises(StateError):
        vol.view(0)
    reopened = Volume.open(space)
    assert reopened.read_only and reopened.snapshots() == []
    plain = Volume.create(MemorySpace("p", 500), "p")
    plain.set_read_only()
    with pytest.raises(ReadOnlyVolumeError):
        plain.create_file("/x")
    plain.make_writable()
    plain.create_file("/x")


def test_open_rejects_an_unformatted_space_and_survives_a_torn_superblock() -> None:
    with pytest.raises(IntegrityError):
        Volume.open(MemorySpace("blank", 100))
    space, vol = _volume()
    vol.write_file("/f", b"one")
    vol.sync()
    vol.write_file("/f", b"two")
    vol.sync()
    newest = vol._region.generation % 2  # the region just written
    space.data[newest * 9 + 3, 100] ^= 0xFF  # tear it
    assert Volume.open(space).read_file("/f") == b"one"


# --------------------------------------------------------------------------------------------
# Crash consistency: SIGKILL a writer at random moments on a file-backed space
# --------------------------------------------------------------------------------------------

_CRASH_BLOCKS = 3000


def _run_epoch(model: Model, vol: Volume | None, seed: int, epoch: int) -> None:
    """One epoch of random operations, chosen from the model's state as it goes
    (deterministic), applied to the model and, when given, to the volume; it ends with a CP
    (every fourth epoch a snapshot, keeping at most three)."""
    rng = random.Random(seed * 100_003 + epoch)
    for _ in range(rng.randint(1, 6)):
        files = sorted(p for p, v in model.entries.items() if v is not None and p != "/epoch")
        kind = rng.random()
        if kind < 0.5 or not files:
            path = f"/d{rng.randint(0, 2)}/f{rng.randint(0, 7)}"
            offset = rng.randint(0, 20_000)
            data = rng.randbytes(rng.choice([10, 3000, 9000, 40_000]))
            if path not in model.entries:
                model.make(path, directory=False)
                if vol is not None:
                    vol.create_file(path)
            model.write(path, offset, data)
            if vol is not None:
                vol.write(path, offset, data)
        elif kind < 0.7:
            path, size = rng.choice(files), rng.randint(0, 30_000)
            model.truncate(path, size)
            if vol is not None:
                vol.truncate(path, size)
        elif kind < 0.85:
            path = rng.choice(files)
            model.unlink(path)
            if vol is not None:
                vol.unlink(path)
        else:
            src, dst = rng.choice(files), f"/d{rng.randint(0, 2)}/r{rng.randint(0, 5)}"
            model.rename(src, dst)
            if vol is not None:
                vol.rename(src, dst)
    model.entries["/epoch"] = str(epoch).encode()
    if vol is not None:
        vol.write_file("/epoch", str(epoch).encode())
        if epoch % 4:
            vol.sync()
        else:
            vol.create_snapshot(f"e{epoch}")
            if len(vol.snapshots()) > 3:
                vol.delete_snapshot(vol.snapshots()[0].sid)


def _crash_space(kind: str, root: Path, create: bool = False) -> VolumeSpace:
    """The volume's space for the crash test: a plain file-backed space, or a space of a
    file-backed aggregate (RAID-4 on file disks), reopened from its files each time."""
    if kind == "file":
        return FileSpace(root / "volume.img", _CRASH_BLOCKS)
    if create:
        aggregate = Aggregate.create(root / "aggr", "4", 3, _CRASH_BLOCKS // 3 + 64)
        return aggregate.create_space("vol", _CRASH_BLOCKS)
    return Aggregate.open(root / "aggr").space("vol")


def _writer(kind: str, root: Path, model: Model, seed: int, first_epoch: int) -> None:
    """Child process: run epochs forever (until killed)."""
    vol = Volume.open(_crash_space(kind, root), auto_cp_blocks=1_000_000)
    epoch = first_epoch
    while True:
        _run_epoch(model, vol, seed, epoch)
        epoch += 1


@pytest.mark.parametrize("kind", ["file", "aggregate"])
def test_sigkill_at_random_moments_always_reopens_at_a_consistency_point(
    kind: str, tmp_path: Path
) -> None:
    vol = Volume.create(_crash_space(kind, tmp_path, create=True), "crash")
    for d in range(3):
        vol.mkdir(f"/d{d}")
    vol.write_file("/epoch", b"0")
    vol.sync()
    model = Model()
    for d in range(3):
        model.make(f"/d{d}", directory=True)
    model.entries["/epoch"] = b"0"
    snapshots: dict[str, Model] = {}
    rng = random.Random(7)
    context = multiprocessing.get_context("fork")
    epoch = 1
    progressed = 0
    for round_no in range(14):
        child = context.Process(
            target=_writer, args=(kind, tmp_path, model.copy(), 7 + round_no, epoch)
        )
        child.start()
        time.sleep(rng.uniform(0.05, 0.4))
        os.kill(child.pid, signal.SIGKILL)  # type: ignore[arg-type]
        child.join()
        reopened = Volume.open(_crash_space(kind, tmp_path))
        reached = int(reopened.read_file("/epoch"))
        assert reached >= epoch - 1
        # Replay the child's epochs on the model, remembering the state after each.
        states = {epoch - 1: model.copy()}
        replay = model.copy()
        for e in range(epoch, reached + 1):
            _run_epoch(replay, None, 7 + round_no, e)
            states[e] = replay.copy()
        assert image(reopened) == states[reached].entries
        for e in range(epoch, reached + 1):
            if e % 4 == 0:
                snapshots[f"e{e}"] = states[e]
        for info in reopened.snapshots():
            assert image(reopened.snapshot(info.name)) == snapshots[info.name].entries
        progressed += reached - (epoch - 1)
        model = states[reached]
        epoch = reached + 1
    assert progressed > 0
