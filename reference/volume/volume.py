"""A write-anywhere volume: a POSIX-like file system with consistency points and snapshots, kept
entirely in the blocks of one :class:`~xvol.reference.storage.block.VolumeSpace`.

This is the seed's *volume* managed by a *write anywhere file system*: files and directories are
inodes (128-byte records with ownership, permissions, size, type and block locations) in an inode
file; directories are specially formatted files of names and inode numbers; the allocation map
is a file too. Nothing is ever written over a block the last consistency point references.

Layers of this file, bottom up:

* paths and credentials: parsing, permission checks (root bypasses them);
* :class:`_FileSystem`: one file system tree (the active one or a snapshot's) and its caches:
  decoded inodes, pointer trees (:class:`~.tree.BlockTree`), directory contents;
* :class:`Volume`: the life cycle of the active file system. Operations change only memory
  ("dirty" blocks). :meth:`Volume.consistency_point` gives every dirty block a new block number,
  writes it, writes the new roots bottom-up (indirect blocks, inode file, fsinfo, allocation
  map) and then switches the root atomically by writing the alternate superblock region. A
  process killed at any moment therefore reopens at its last consistency point (CP).
* snapshots: a snapshot is the fsinfo pointer of one CP kept in the superblock's snapshot table
  (seed: a point-in-time image made "virtually by using a pointer"); its blocks stay allocated
  while the active file system moves on. Snapshot ID 0 names the active file system, 1..255 the
  snapshots, as in the seed's snapshot access layer.

Consistency-point policy: every public operation is atomic with respect to CPs (a CP never
happens inside one). After an operation, a CP runs automatically when more than
``auto_cp_blocks`` data blocks are dirty; :meth:`Volume.sync` (= :meth:`Volume.consistency_point`)
commits everything buffered; snapshot creation, snapshot restore and resizing take a CP of their
own; snapshot deletion commits only the snapshot table. A crash loses the operations after the
last CP and nothing else.

If writing a CP fails (a device error from the space), the volume drops its buffered changes and
reloads its last committed CP, exactly as after a crash, and re-raises the error.

Uses: numpy, :mod:`.layout`, :mod:`.tree`, the VolumeSpace protocol (never disks or RAID).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

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
from xvol.reference.storage.block import BLOCK_SIZE, Blocks, VolumeSpace
from xvol.reference.volume.layout import (
    FIRST_DATA_BLOCK,
    FLAG_READ_ONLY,
    INODE_SIZE,
    INODES_PER_BLOCK,
    MAX_FILE_BLOCKS,
    MAX_NAME_BYTES,
    MAX_SNAPSHOT_NAME_BYTES,
    MAX_SNAPSHOTS,
    MAX_VOLUME_NAME_BYTES,
    POINTERS_PER_BLOCK,
    REGION_BLOCKS,
    REGION_STARTS,
    ROOT_INODE,
    FileType,
    FsInfo,
    Inode,
    Region,
    SnapshotRecord,
    decode_directory_block,
    dirent_size,
    encode_directory_block,
)
from xvol.reference.volume.tree import Allocator, BlockTree, unpack_map

MAX_FILE_SIZE = MAX_FILE_BLOCKS * BLOCK_SIZE
DEFAULT_AUTO_CP_BLOCKS = 8192
"""Dirty data blocks (32 MiB) after which an operation ends with an automatic CP."""
_OP_OVERHEAD = 16
"""Blocks reserved for the metadata one namespace operation may dirty."""

# --------------------------------------------------------------------------------------------
# Typed errors of this layer
# --------------------------------------------------------------------------------------------


class IsDirectoryError(InvalidArgumentError):
    """A file operation named a directory."""


class NotDirectoryError(InvalidArgumentError):
    """A path component or a directory operation named a regular file."""


class DirectoryNotEmptyError(StateError):
    """rmdir, or rename onto a directory, that still has entries."""


class FileTooLargeError(InvalidArgumentError):
    """A write or truncate beyond the largest size an inode maps (``MAX_FILE_SIZE``)."""


class TooManySnapshotsError(OutOfSpaceError):
    """The volume already holds 255 snapshots."""


class ReadOnlyVolumeError(PermissionDeniedError):
    """A change requested on a read-only volume (a mirror destination) or a snapshot view."""


# --------------------------------------------------------------------------------------------
# Records handed to callers
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Credential:
    """Who asks: user ID, primary group ID and supplementary groups. UID 0 is root."""

    uid: int
    gid: int
    groups: frozenset[int] = frozenset()


ROOT = Credential(0, 0)


@dataclass(frozen=True)
class Stat:
    """What ``stat`` returns: the inode's fields."""

    ino: int
    type: FileType
    mode: int
    uid: int
    gid: int
    nlink: int
    size: int
    generation: int


@dataclass(frozen=True)
class DirEntry:
    """One directory entry."""

    name: str
    ino: int
    type: FileType


@dataclass(frozen=True)
class SnapshotInfo:
    """A snapshot: small ID (1..255), UUID, name and the CP number it froze."""

    sid: int
    uuid: uuid.UUID
    name: str
    cp: int


@dataclass(frozen=True)
class SpaceUsage:
    """Where a volume's blocks are: ``active`` (the active file system), ``snapshot_only``
    (held only by snapshots), ``pending`` (freed since the last CP), ``free``, ``reserved``
    (the two superblock regions); they sum to ``total``."""

    total: int
    active: int
    snapshot_only: int
    pending: int
    free: int
    reserved: int


SnapshotRef = str | int | uuid.UUID
"""A snapshot named by its name, its small ID or its UUID."""

_PERM_READ, _PERM_WRITE, _PERM_EXEC = 4, 2, 1


# --------------------------------------------------------------------------------------------
# Paths and permissions
# --------------------------------------------------------------------------------------------


def split_path(path: str) -> list[bytes]:
    """The components of an absolute path (``[]`` for ``/``); :class:`InvalidArgumentError` for a
    relative path, an empty component, ``.``/``..``, a NUL, or a name over 255 bytes."""
    if not isinstance(path, str) or not path.startswith("/"):
        raise InvalidArgumentError(f"path must be an absolute string, got {path!r}")
    if path == "/":
        return []
    parts = path[1:].split("/")
    out = []
    for part in parts:
        out.append(check_name(part, path))
    return out


def check_name(name: str, path: str = "") -> bytes:
    """The UTF-8 bytes of a valid directory-entry name."""
    raw = name.encode("utf-8", errors="strict")
    where = f" in path {path!r}" if path else ""
    if not raw or name in (".", ".."):
        raise InvalidArgumentError(f"empty, '.' or '..' name{where}")
    if b"\0" in raw or b"/" in raw:
        raise InvalidArgumentError(f"name {name!r}{where} contains NUL or '/'")
    if len(raw) > MAX_NAME_BYTES:
        raise InvalidArgumentError(f"name{where} is {len(raw)} bytes; the limit is 255")
    return raw


def _check_access(inode: Inode, cred: Credential, want: int, what: str) -> None:
    """Raise :class:`PermissionDeniedError` unless ``cred`` has the ``want`` bits on ``inode``."""
    if cred.uid == 0:
        return
    if cred.uid == inode.uid:
        bits = (inode.mode >> 6) & 7
    elif inode.gid == cred.gid or inode.gid in cred.groups:
        bits = (inode.mode >> 3) & 7
    else:
        bits = inode.mode & 7
    if bits & want != want:
        raise PermissionDeniedError(f"uid {cred.uid} may not {what} (mode {inode.mode:o})")


# --------------------------------------------------------------------------------------------
# Directories in memory
# --------------------------------------------------------------------------------------------


@dataclass
class _Directory:
    """The decoded blocks of one directory. Invariant: ``blocks[i]`` is exactly what directory
    block ``i`` holds (or will hold at the next CP); ``index`` maps each name to its block."""

    blocks: list[dict[bytes, tuple[int, int]]]
    index: dict[bytes, int] = field(default_factory=dict)
    room: list[int] = field(default_factory=list)

    @classmethod
    def decode(cls, raw: Blocks) -> _Directory:
        """The directory stored in ``raw`` (its blocks in order)."""
        blocks = [decode_directory_block(row.tobytes()) for row in raw]
        out = cls(blocks)
        for i, entries in enumerate(blocks):
            out.room.append(BLOCK_SIZE - sum(dirent_size(n) for n in entries))
            for name in entries:
                out.index[name] = i
        return out

    def lookup(self, name: bytes) -> tuple[int, int] | None:
        """(inode, type) of ``name``, or None."""
        at = self.index.get(name)
        return None if at is None else self.blocks[at][name]

    def slot_for(self, name: bytes) -> int:
        """The block a new entry ``name`` goes to (``len(blocks)`` means a new block)."""
        need = dirent_size(name)
        for i, room in enumerate(self.room):
            if room >= need:
                return i
        return len(self.blocks)

    def add(self, name: bytes, ino: int, kind: int) -> int:
        """Insert an entry; returns the block it changed."""
        at = self.slot_for(name)
        if at == len(self.blocks):
            self.blocks.append({})
            self.room.append(BLOCK_SIZE)
        self.blocks[at][name] = (ino, kind)
        self.room[at] -= dirent_size(name)
        self.index[name] = at
        return at

    def remove(self, name: bytes) -> int:
        """Delete an entry; returns the block it changed."""
        at = self.index.pop(name)
        del self.blocks[at][name]
        self.room[at] += dirent_size(name)
        return at

    def encode(self, at: int) -> npt.NDArray[np.uint8]:
        """Directory block ``at`` as bytes."""
        return np.frombuffer(encode_directory_block(self.blocks[at]), dtype=np.uint8)


# --------------------------------------------------------------------------------------------
# One file system tree and its caches
# --------------------------------------------------------------------------------------------


def _slots(size: int) -> int:
    return -(-size // BLOCK_SIZE)


class _FileSystem:
    """One file system tree: rooted at an fsinfo block, cached in memory.

    For a snapshot the tree is read-only and every cache is a plain copy of what blocks hold. For
    the active file system, the caches also hold the changes since the last CP: ``dirty_inodes``
    (inodes to write into the inode file) and the trees in ``dirty_trees`` (files with dirty
    blocks). ``fsinfo_vbn`` is the committed fsinfo block this state derives from (0 if none).
    """

    def __init__(self, space: VolumeSpace, info: FsInfo, fsinfo_vbn: int) -> None:
        self.space = space
        self.info = info
        self.fsinfo_vbn = fsinfo_vbn
        self.ifile = BlockTree.load(space, info.inode_file.pointers, _slots(info.inode_file.size))
        self.map_tree = BlockTree.load(space, info.map_file.pointers, _slots(info.map_file.size))
        self.inodes: dict[int, Inode] = {}
        self.trees: dict[int, BlockTree] = {}
        self.dirs: dict[int, _Directory] = {}
        self.dirty_inodes: set[int] = set()
        self.dirty_trees: set[int] = set()

    @classmethod
    def at(cls, space: VolumeSpace, vbn: int) -> _FileSystem:
        """The file system whose fsinfo block is ``vbn``."""
        return cls(space, FsInfo.decode(space.read_block(vbn)), vbn)

    # -- inodes --------------------------------------------------------------------------

    @property
    def inode_capacity(self) -> int:
        """Inode slots the inode file holds now."""
        return self.ifile.slots * INODES_PER_BLOCK

    def inode(self, ino: int) -> Inode:
        """The inode ``ino`` as the file system holds it now (the cached object)."""
        cached = self.inodes.get(ino)
        if cached is not None:
            return cached
        if not 0 < ino < self.inode_capacity:
            raise NotFoundError(f"inode {ino} does not exist")
        block = self.ifile.block(self.space, ino // INODES_PER_BLOCK).tobytes()
        first = (ino // INODES_PER_BLOCK) * INODES_PER_BLOCK
        for i in range(INODES_PER_BLOCK):
            if first + i not in self.inodes:
                self.inodes[first + i] = Inode.decode(block[i * INODE_SIZE : (i + 1) * INODE_SIZE])
        return self.inodes[ino]

    def tree(self, ino: int) -> BlockTree:
        """The pointer tree of file ``ino``."""
        tree = self.trees.get(ino)
        if tree is None:
            inode = self.inode(ino)
            tree = BlockTree.load(self.space, inode.pointers, _slots(inode.size))
            self.trees[ino] = tree
        return tree

    def directory(self, ino: int) -> _Directory:
        """The decoded directory ``ino``."""
        found = self.dirs.get(ino)
        if found is None:
            tree = self.tree(ino)
            found = _Directory.decode(tree.read(self.space, 0, tree.slots))
            self.dirs[ino] = found
        return found

    # -- path resolution (with permission checks) --------------------------------------------

    def resolve(self, parts: list[bytes], cred: Credential) -> int:
        """Inode number of the path ``parts``: needs search (x) permission on every directory
        on the way."""
        ino = ROOT_INODE
        for depth, name in enumerate(parts):
            inode = self.inode(ino)
            if inode.type != FileType.DIRECTORY:
                raise NotDirectoryError(f"{_show(parts[:depth])} is not a directory")
            _check_access(inode, cred, _PERM_EXEC, f"search {_show(parts[:depth])}")
            found = self.directory(ino).lookup(name)
            if found is None:
                raise NotFoundError(f"{_show(parts[: depth + 1])} does not exist")
            ino = found[0]
        return ino

    def resolve_dir(self, parts: list[bytes], cred: Credential) -> int:
        """Inode number of the directory ``parts`` (:class:`NotDirectoryError` otherwise)."""
        ino = self.resolve(parts, cred)
        if self.inode(ino).type != FileType.DIRECTORY:
            raise NotDirectoryError(f"{_show(parts)} is not a directory")
        return ino

    # -- read operations shared by the active file system and snapshots ---------------------

    def stat(self, ino: int) -> Stat:
        """The :class:`Stat` of inode ``ino``."""
        inode = self.inode(ino)
        return Stat(
            ino,
            inode.type,
            inode.mode,
            inode.uid,
            inode.gid,
            inode.nlink,
            inode.size,
            inode.generation,
        )

    def read(self, ino: int, offset: int, length: int) -> bytes:
        """Up to ``length`` bytes of regular file ``ino`` from ``offset`` (short at the end)."""
        inode = self.inode(ino)
        end = min(inode.size, offset + length)
        if end <= offset:
            return b""
        first = offset // BLOCK_SIZE
        count = _slots(end) - first
        raw = self.tree(ino).read(self.space, first, count).reshape(-1)
        start = offset - first * BLOCK_SIZE
        return raw[start : start + end - offset].tobytes()

    def readdir(self, ino: int) -> list[DirEntry]:
        """Entries of directory ``ino``, sorted by name."""
        out = []
        for entries in self.directory(ino).blocks:
            for name, (child, kind) in entries.items():
                out.append(DirEntry(name.decode(), child, FileType(kind)))
        return sorted(out, key=lambda e: e.name)


def _show(parts: list[bytes]) -> str:
    return "/" + "/".join(p.decode() for p in parts)


def _op_read(fs: _FileSystem, path: str, offset: int, length: int, cred: Credential) -> bytes:
    if offset < 0 or length < 0:
        raise InvalidArgumentError(f"offset and length must be >= 0, got {offset}, {length}")
    parts = split_path(path)
    ino = fs.resolve(parts, cred)
    inode = fs.inode(ino)
    if inode.type == FileType.DIRECTORY:
        raise IsDirectoryError(f"{path} is a directory")
    _check_access(inode, cred, _PERM_READ, f"read {path}")
    return fs.read(ino, offset, length)


def _op_inode(fs: _FileSystem, ino: int, generation: int | None) -> Inode:
    """The live inode ``ino``; :class:`NotFoundError` if it is free or (a stale handle) its
    generation is not ``generation``."""
    if not isinstance(ino, int) or ino < 1:
        raise InvalidArgumentError(f"inode number must be >= 1, got {ino!r}")
    inode = fs.inode(ino)
    if inode.type == FileType.FREE or (generation is not None and inode.generation != generation):
        raise NotFoundError(f"inode {ino} (generation {generation}) does not exist: stale handle")
    return inode


def _op_read_inode(
    fs: _FileSystem, ino: int, offset: int, length: int, generation: int | None, cred: Credential
) -> bytes:
    if offset < 0 or length < 0:
        raise InvalidArgumentError(f"offset and length must be >= 0, got {offset}, {length}")
    inode = _op_inode(fs, ino, generation)
    if inode.type == FileType.DIRECTORY:
        raise IsDirectoryError(f"inode {ino} is a directory")
    _check_access(inode, cred, _PERM_READ, f"read inode {ino}")
    return fs.read(ino, offset, length)


def _op_readdir(fs: _FileSystem, path: str, cred: Credential) -> list[DirEntry]:
    parts = split_path(path)
    ino = fs.resolve_dir(parts, cred)
    _check_access(fs.inode(ino), cred, _PERM_READ, f"list {path}")
    return fs.readdir(ino)


def _op_exists(fs: _FileSystem, path: str, cred: Credential) -> bool:
    try:
        fs.resolve(split_path(path), cred)
    except (NotFoundError, NotDirectoryError):
        return False
    return True


class FileSystemView:
    """A read-only view of one file system tree: a snapshot (or the active file system as of
    its last CP). Same read operations and permission checks as :class:`Volume`."""

    def __init__(self, fs: _FileSystem, info: SnapshotInfo | None) -> None:
        self._fs = fs
        self.snapshot = info
        """The snapshot viewed (None: the active file system at its last CP)."""

    def read(self, path: str, offset: int, length: int, cred: Credential = ROOT) -> bytes:
        """Up to ``length`` bytes of the file at ``path`` from ``offset``."""
        return _op_read(self._fs, path, offset, length, cred)

    def read_file(self, path: str, cred: Credential = ROOT) -> bytes:
        """The whole file at ``path``."""
        return _op_read(self._fs, path, 0, MAX_FILE_SIZE, cred)

    def readdir(self, path: str, cred: Credential = ROOT) -> list[DirEntry]:
        """Entries of the directory at ``path``, sorted by name."""
        return _op_readdir(self._fs, path, cred)

    def stat(self, path: str, cred: Credential = ROOT) -> Stat:
        """The inode fields of ``path``."""
        return self._fs.stat(self._fs.resolve(split_path(path), cred))

    def exists(self, path: str, cred: Credential = ROOT) -> bool:
        """Whether ``path`` names a file or directory."""
        return _op_exists(self._fs, path, cred)

    def walk(self, path: str = "/") -> Iterator[tuple[str, Stat]]:
        """Every path under ``path`` (itself first) with its stat, depth first, sorted (as root)."""
        yield from _walk(self._fs, path)

    def read_inode(
        self,
        ino: int,
        offset: int,
        length: int,
        generation: int | None = None,
        cred: Credential = ROOT,
    ) -> bytes:
        """Read by file handle (inode number and generation, as the seed's handles carry)."""
        return _op_read_inode(self._fs, ino, offset, length, generation, cred)

    def stat_inode(self, ino: int, generation: int | None = None) -> Stat:
        """The stat of a file handle's inode."""
        _op_inode(self._fs, ino, generation)
        return self._fs.stat(ino)


def _walk(fs: _FileSystem, path: str) -> Iterator[tuple[str, Stat]]:
    ino = fs.resolve(split_path(path), ROOT)
    stat = fs.stat(ino)
    yield path, stat
    if stat.type == FileType.DIRECTORY:
        for entry in fs.readdir(ino):
            yield from _walk(fs, path.rstrip("/") + "/" + entry.name)


# --------------------------------------------------------------------------------------------
# The volume
# --------------------------------------------------------------------------------------------


class Volume:
    """A write-anywhere volume on one :class:`VolumeSpace`.

    Life cycle: :meth:`create` formats a space (or :meth:`open` reads one) -> file operations
    change the active file system in memory -> CPs write the changes anywhere and switch the
    root -> snapshots freeze CPs. The object caches what the blocks hold; two ``Volume`` objects
    must never be open on one space at once.
    """

    # -- creating and opening ------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        space: VolumeSpace,
        name: str,
        *,
        volume_uuid: uuid.UUID | None = None,
        replica: bool = False,
        auto_cp_blocks: int = DEFAULT_AUTO_CP_BLOCKS,
    ) -> Volume:
        """Format ``space`` as a new, empty volume and commit its first CP.

        ``volume_uuid`` defaults to a UUID derived from ``name`` and the space's name, so runs are
        reproducible; pass one (e.g. from a seeded RNG) whenever two volumes could share both
        names, because snapshot UUIDs derive from the volume UUID and the CP number. A
        ``replica`` volume is a mirror destination: it has no active file system until a
        baseline is applied and refuses changes until :meth:`make_writable`.
        """
        raw_name = name.encode()
        if not raw_name or len(raw_name) > MAX_VOLUME_NAME_BYTES:
            raise InvalidArgumentError(f"volume name must be 1..255 bytes, got {name!r}")
        if space.block_count < FIRST_DATA_BLOCK + 8:
            raise InvalidArgumentError(
                f"a volume needs at least {FIRST_DATA_BLOCK + 8} blocks, space has "
                f"{space.block_count}"
            )
        if volume_uuid is None:
            volume_uuid = uuid.uuid5(uuid.NAMESPACE_URL, f"xvol:volume:{space.name}:{name}")
        zero = np.zeros((2 * REGION_BLOCKS, BLOCK_SIZE), dtype=np.uint8)
        space.write_blocks(np.arange(2 * REGION_BLOCKS, dtype=np.int64), zero)
        region = Region(
            generation=0,
            cp=0,
            block_count=space.block_count,
            volume_uuid=volume_uuid,
            name=name,
            flags=FLAG_READ_ONLY if replica else 0,
            active_vbn=0,
            active_birth=0,
            snapshots=(),
        )
        volume = cls(space, region, auto_cp_blocks)
        if replica:
            volume._write_region()
            return volume
        empty = Inode()
        info = FsInfo(0, 0, 1, ROOT_INODE + 1, space.block_count, empty, empty.copy())
        fs = _FileSystem(space, info, 0)
        volume._fs = fs
        fs.ifile.resize_slots(1, volume._alloc.free)
        fs.ifile.put(0, np.zeros(BLOCK_SIZE, np.uint8))
        info.inode_file.size = BLOCK_SIZE
        root = fs.inode(ROOT_INODE)
        root.type, root.mode, root.nlink = FileType.DIRECTORY, 0o755, 2
        root.generation = info.next_generation
        info.next_generation += 1
        fs.dirty_inodes.add(ROOT_INODE)
        volume._alloc.changed.update(range(volume._alloc.map_blocks))
        volume._commit(force=True)
        return volume

    @classmethod
    def open(cls, space: VolumeSpace, *, auto_cp_blocks: int = DEFAULT_AUTO_CP_BLOCKS) -> Volume:
        """The volume on ``space`` as of its last committed CP.

        :class:`IntegrityError` if neither superblock region is valid (not a volume, or both
        damaged)."""
        return cls(space, _newest_region(space), auto_cp_blocks)

    def __init__(self, space: VolumeSpace, region: Region, auto_cp_blocks: int) -> None:
        """Load the state ``region`` describes (use :meth:`create` or :meth:`open`)."""
        if auto_cp_blocks < 1:
            raise InvalidArgumentError(f"auto_cp_blocks must be >= 1, got {auto_cp_blocks}")
        self.space = space
        self.auto_cp_blocks = auto_cp_blocks
        self._load(region)

    def _load(self, region: Region) -> None:
        if self.space.block_count < region.block_count:
            raise IntegrityError(
                f"space has {self.space.block_count} blocks, the volume recorded "
                f"{region.block_count}: the space was shrunk under the volume"
            )
        self._region = region
        self._alloc = Allocator(self.space.block_count)
        self._fs: _FileSystem | None = None
        if region.active_vbn:
            self._fs = _FileSystem.at(self.space, region.active_vbn)
            self._alloc.used = self._map_of(self._fs)
        self._snapshots: list[SnapshotRecord] = list(region.snapshots)
        self._snapshot_maps: dict[int, npt.NDArray[np.uint8]] = {}
        for record in self._snapshots:
            fs = _FileSystem.at(self.space, record.fsinfo_vbn)
            self._snapshot_maps[record.sid] = np.packbits(self._map_of(fs))
        self._recompute_held()

    def _map_of(self, fs: _FileSystem) -> npt.NDArray[np.bool_]:
        """The allocation map stored in ``fs``'s map file, sized to the space."""
        raw = fs.map_tree.read(self.space, 0, fs.map_tree.slots)
        return unpack_map(raw, self.space.block_count)

    def _recompute_held(self) -> None:
        count = self.space.block_count
        if self._snapshot_maps:
            union = _union(list(self._snapshot_maps.values()), count)
            self._alloc.held = np.unpackbits(union, count=count).astype(bool)
        else:
            self._alloc.held = np.zeros(count, dtype=bool)
        self._alloc._free_count = None

    def _reload(self) -> None:
        """Drop everything in memory and load the last committed CP (as after a crash)."""
        self._load(_newest_region(self.space))

    # -- identity and state ----------------------------------------------------------------------

    @property
    def uuid(self) -> uuid.UUID:
        """The volume's stable identity, stored in the superblock."""
        return self._region.volume_uuid

    @property
    def name(self) -> str:
        """The volume's name, stored in the superblock."""
        return self._region.name

    @property
    def cp(self) -> int:
        """Number of the newest committed CP (the highest CP number the volume has used)."""
        return self._region.cp

    @property
    def block_count(self) -> int:
        """Volume blocks (the logical block space's size)."""
        return self._alloc.block_count

    @property
    def read_only(self) -> bool:
        """Whether the volume refuses changes (a mirror destination)."""
        return bool(self._region.flags & FLAG_READ_ONLY)

    @property
    def has_active(self) -> bool:
        """Whether the volume has an active file system (a fresh replica has none)."""
        return self._fs is not None

    @property
    def dirty_blocks(self) -> int:
        """Data blocks changed since the last CP."""
        fs = self._fs
        if fs is None:
            return 0
        return sum(len(fs.trees[i].dirty) for i in fs.dirty_trees if i in fs.trees)

    def usage(self) -> SpaceUsage:
        """Where the volume's blocks are."""
        alloc = self._alloc
        active = int(alloc.used.sum())
        snapshot_only = int((alloc.held & ~alloc.used).sum())
        pending = int((alloc.pending & ~alloc.used & ~alloc.held).sum())
        free = alloc.free_count()
        return SpaceUsage(
            alloc.block_count,
            active,
            snapshot_only,
            pending,
            free,
            alloc.block_count - active - snapshot_only - pending - free,
        )

    def _active(self) -> _FileSystem:
        if self._fs is None:
            raise StateError(
                f"volume {self.name!r} has no active file system yet (a replica awaiting its "
                "baseline transfer)"
            )
        return self._fs

    def _writable(self) -> _FileSystem:
        if self.read_only:
            raise ReadOnlyVolumeError(
                f"volume {self.name!r} is read-only (a mirror destination); make_writable() first"
            )
        return self._active()

    # -- space reservation and automatic CPs -----------------------------------------------------

    def _cp_bound(self) -> int:
        """Upper bound on the blocks the next CP allocates."""
        fs = self._fs
        bound = 1  # fsinfo
        maps = self._alloc.map_blocks
        bound += maps + maps // POINTERS_PER_BLOCK + 3
        if fs is not None:
            bound += sum(fs.trees[i].dirty_bound() for i in fs.dirty_trees if i in fs.trees)
            bound += fs.ifile.dirty_bound() + len(fs.dirty_inodes) + 3
        return bound

    def _reserve(self, blocks: int) -> None:
        """Make sure the next CP can still write after an operation that dirties up to
        ``blocks`` more blocks; commits a CP first if that frees enough, else
        :class:`OutOfSpaceError` (nothing changed)."""
        need = self._cp_bound() + blocks
        if need <= self._alloc.free_count():
            return
        alloc = self._alloc
        releasable = int((alloc.pending & ~alloc.used & ~alloc.held).sum())
        if releasable and need <= alloc.free_count() + releasable:
            self._commit(force=False)  # frees the pending blocks; the files do not change
            need = self._cp_bound() + blocks
            if need <= self._alloc.free_count():
                return
        raise OutOfSpaceError(
            f"volume {self.name!r} needs {need} free blocks for this change, has "
            f"{self._alloc.free_count()}; grow the volume or delete snapshots"
        )

    def _after_change(self) -> None:
        if self.dirty_blocks > self.auto_cp_blocks:
            self._commit(force=False)

    # -- file operations (the API the layers above build on) -------------------------------------

    def mkdir(self, path: str, mode: int = 0o755, cred: Credential = ROOT) -> int:
        """Make directory ``path`` owned by ``cred``; returns its inode number."""
        return self._make(path, FileType.DIRECTORY, mode, cred)

    def create_file(
        self, path: str, mode: int = 0o644, cred: Credential = ROOT, *, exist_ok: bool = False
    ) -> int:
        """Create empty regular file ``path`` owned by ``cred``; returns its inode number. An
        existing file is an :class:`AlreadyExistsError` unless ``exist_ok`` (then it is kept)."""
        if exist_ok:
            fs = self._writable()
            try:
                ino = fs.resolve(split_path(path), cred)
            except NotFoundError:
                pass
            else:
                if fs.inode(ino).type != FileType.REGULAR:
                    raise IsDirectoryError(f"{path} is a directory")
                return ino
        return self._make(path, FileType.REGULAR, mode, cred)

    def _make(self, path: str, kind: FileType, mode: int, cred: Credential) -> int:
        fs = self._writable()
        if not 0 <= mode <= 0o7777:
            raise InvalidArgumentError(f"mode must be within 0..0o7777, got {mode:o}")
        parts = split_path(path)
        if not parts:
            raise AlreadyExistsError("/ exists")
        parent = fs.resolve_dir(parts[:-1], cred)
        _check_access(fs.inode(parent), cred, _PERM_WRITE | _PERM_EXEC, f"create in {path}")
        if fs.directory(parent).lookup(parts[-1]) is not None:
            raise AlreadyExistsError(f"{path} exists")
        self._reserve(_OP_OVERHEAD)
        ino = self._new_inode(fs)
        inode = fs.inode(ino)
        inode.type, inode.mode, inode.uid, inode.gid = kind, mode, cred.uid, cred.gid
        inode.nlink = 2 if kind == FileType.DIRECTORY else 1
        inode.size = 0
        inode.generation = fs.info.next_generation
        fs.info.next_generation += 1
        fs.trees[ino] = BlockTree(0)
        fs.dirty_inodes.add(ino)
        if kind == FileType.DIRECTORY:
            fs.dirs[ino] = _Directory([])
            fs.inode(parent).nlink += 1
            fs.dirty_inodes.add(parent)
        self._link(fs, parent, parts[-1], ino, kind)
        self._after_change()
        return ino

    def _new_inode(self, fs: _FileSystem) -> int:
        """A free inode number (growing the inode file by a block if it is full)."""
        ino = max(fs.info.inode_hint, ROOT_INODE + 1)
        while ino < fs.inode_capacity:
            if fs.inode(ino).type == FileType.FREE:
                fs.info.inode_hint = ino + 1
                return ino
            ino += 1
        if fs.ifile.slots >= MAX_FILE_BLOCKS:
            raise OutOfSpaceError(f"volume {self.name!r} has no free inode left")
        block = fs.ifile.slots
        fs.ifile.resize_slots(block + 1, self._alloc.free)
        fs.ifile.put(block, np.zeros(BLOCK_SIZE, np.uint8))
        fs.info.inode_file.size = fs.ifile.slots * BLOCK_SIZE
        fs.info.inode_hint = ino + 1
        return ino

    def _link(self, fs: _FileSystem, parent: int, name: bytes, ino: int, kind: FileType) -> None:
        """Add entry ``name -> ino`` to directory ``parent`` (in memory)."""
        directory = fs.directory(parent)
        at = directory.add(name, ino, int(kind))
        self._store_dir_block(fs, parent, directory, at)

    def _unlink_entry(self, fs: _FileSystem, parent: int, name: bytes) -> None:
        directory = fs.directory(parent)
        at = directory.remove(name)
        self._store_dir_block(fs, parent, directory, at)

    def _store_dir_block(
        self, fs: _FileSystem, parent: int, directory: _Directory, at: int
    ) -> None:
        tree = fs.tree(parent)
        inode = fs.inode(parent)
        # Trailing empty blocks are dropped so that the directory shrinks as it empties.
        while directory.blocks and not directory.blocks[-1]:
            directory.blocks.pop()
            directory.room.pop()
        slots = len(directory.blocks)
        if slots != tree.slots:
            tree.resize_slots(slots, self._alloc.free)
            inode.size = slots * BLOCK_SIZE
            fs.dirty_inodes.add(parent)
        if at < slots:
            tree.put(at, directory.encode(at))
        fs.dirty_trees.add(parent)

    def _file(self, fs: _FileSystem, path: str, cred: Credential, want: int, what: str) -> int:
        ino = fs.resolve(split_path(path), cred)
        inode = fs.inode(ino)
        if inode.type == FileType.DIRECTORY:
            raise IsDirectoryError(f"{path} is a directory")
        _check_access(inode, cred, want, f"{what} {path}")
        return ino

    def write(self, path: str, offset: int, data: bytes, cred: Credential = ROOT) -> int:
        """Write ``data`` into the regular file ``path`` at ``offset`` (extending it, with holes
        if ``offset`` is past the end); returns the bytes written."""
        fs = self._writable()
        if offset < 0:
            raise InvalidArgumentError(f"offset must be >= 0, got {offset}")
        if offset + len(data) > MAX_FILE_SIZE:
            raise FileTooLargeError(f"write past the largest file size {MAX_FILE_SIZE}")
        ino = self._file(fs, path, cred, _PERM_WRITE, "write")
        if not data:
            return 0
        first = offset // BLOCK_SIZE
        count = _slots(offset + len(data)) - first
        self._reserve(count + count // POINTERS_PER_BLOCK + _OP_OVERHEAD)
        tree = fs.tree(ino)
        buf = np.zeros((count, BLOCK_SIZE), dtype=np.uint8)
        if offset % BLOCK_SIZE:
            buf[0] = tree.block(self.space, first)
        end = offset + len(data)
        if end % BLOCK_SIZE and (count > 1 or not offset % BLOCK_SIZE):
            buf[-1] = tree.block(self.space, first + count - 1)
        start = offset - first * BLOCK_SIZE
        buf.reshape(-1)[start : start + len(data)] = np.frombuffer(data, dtype=np.uint8)
        self._put(fs, ino, tree, first, buf, end)
        self._after_change()
        return len(data)

    def write_blocks(
        self, path: str, first_block: int, blocks: Blocks, cred: Credential = ROOT
    ) -> None:
        """Bulk write: whole blocks ``blocks`` (shape ``(k, BLOCK_SIZE)``) into file ``path``
        from block ``first_block`` on. The array is kept by reference until the next CP: the
        caller must not change it."""
        fs = self._writable()
        if blocks.ndim != 2 or blocks.shape[1] != BLOCK_SIZE or blocks.dtype != np.uint8:
            raise InvalidArgumentError(
                f"blocks must be uint8 (k, {BLOCK_SIZE}), got {blocks.shape}"
            )
        if first_block < 0 or first_block + len(blocks) > MAX_FILE_BLOCKS:
            raise FileTooLargeError(f"blocks {first_block}..+{len(blocks)} exceed a file's map")
        ino = self._file(fs, path, cred, _PERM_WRITE, "write")
        if len(blocks) == 0:
            return
        self._reserve(len(blocks) + len(blocks) // POINTERS_PER_BLOCK + _OP_OVERHEAD)
        tree = fs.tree(ino)
        end = (first_block + len(blocks)) * BLOCK_SIZE
        self._put(fs, ino, tree, first_block, blocks, end)
        self._after_change()

    def _put(
        self, fs: _FileSystem, ino: int, tree: BlockTree, first: int, blocks: Blocks, end: int
    ) -> None:
        inode = fs.inode(ino)
        if end > inode.size:
            tree.resize_slots(max(tree.slots, _slots(end)), self._alloc.free)
            inode.size = end
            fs.dirty_inodes.add(ino)
        tree.put_many(first, blocks)
        fs.dirty_trees.add(ino)

    def read(self, path: str, offset: int, length: int, cred: Credential = ROOT) -> bytes:
        """Up to ``length`` bytes of the file at ``path`` from ``offset`` (fewer at its end)."""
        return _op_read(self._active(), path, offset, length, cred)

    def read_file(self, path: str, cred: Credential = ROOT) -> bytes:
        """The whole file at ``path``."""
        return _op_read(self._active(), path, 0, MAX_FILE_SIZE, cred)

    def write_file(
        self, path: str, data: bytes, mode: int = 0o644, cred: Credential = ROOT
    ) -> None:
        """Create or replace the contents of the regular file ``path`` with ``data``."""
        self.create_file(path, mode, cred, exist_ok=True)
        self.truncate(path, 0, cred)
        self.write(path, 0, data, cred)

    def truncate(self, path: str, size: int, cred: Credential = ROOT) -> None:
        """Set the size of the regular file ``path``: shrinking frees the blocks past the end,
        growing adds a hole."""
        fs = self._writable()
        if size < 0 or size > MAX_FILE_SIZE:
            raise FileTooLargeError(f"size must be within 0..{MAX_FILE_SIZE}, got {size}")
        ino = self._file(fs, path, cred, _PERM_WRITE, "truncate")
        inode = fs.inode(ino)
        if size == inode.size:
            return
        self._reserve(_OP_OVERHEAD)
        tree = fs.tree(ino)
        if size < inode.size:
            tree.resize_slots(_slots(size), self._alloc.free)
            tail = size % BLOCK_SIZE
            last = size // BLOCK_SIZE
            if tail and (last in tree.dirty or tree.vbn[last]):
                block = tree.block(self.space, last).copy()
                block[tail:] = 0
                tree.put(last, block)
        else:
            tree.resize_slots(_slots(size), self._alloc.free)
        inode.size = size
        fs.dirty_inodes.add(ino)
        fs.dirty_trees.add(ino)
        self._after_change()

    def unlink(self, path: str, cred: Credential = ROOT) -> None:
        """Remove the regular file ``path`` and free its blocks."""
        fs = self._writable()
        parts = split_path(path)
        if not parts:
            raise IsDirectoryError("/ is a directory")
        parent = fs.resolve_dir(parts[:-1], cred)
        _check_access(fs.inode(parent), cred, _PERM_WRITE | _PERM_EXEC, f"unlink {path}")
        found = fs.directory(parent).lookup(parts[-1])
        if found is None:
            raise NotFoundError(f"{path} does not exist")
        if found[1] == FileType.DIRECTORY:
            raise IsDirectoryError(f"{path} is a directory; use rmdir")
        self._reserve(_OP_OVERHEAD)
        self._unlink_entry(fs, parent, parts[-1])
        self._drop_inode(fs, found[0])
        self._after_change()

    def rmdir(self, path: str, cred: Credential = ROOT) -> None:
        """Remove the empty directory ``path``."""
        fs = self._writable()
        parts = split_path(path)
        if not parts:
            raise InvalidArgumentError("cannot remove /")
        parent = fs.resolve_dir(parts[:-1], cred)
        _check_access(fs.inode(parent), cred, _PERM_WRITE | _PERM_EXEC, f"rmdir {path}")
        found = fs.directory(parent).lookup(parts[-1])
        if found is None:
            raise NotFoundError(f"{path} does not exist")
        if found[1] != FileType.DIRECTORY:
            raise NotDirectoryError(f"{path} is not a directory")
        if fs.directory(found[0]).index:
            raise DirectoryNotEmptyError(f"{path} is not empty")
        self._reserve(_OP_OVERHEAD)
        self._unlink_entry(fs, parent, parts[-1])
        fs.inode(parent).nlink -= 1
        fs.dirty_inodes.add(parent)
        self._drop_inode(fs, found[0])
        self._after_change()

    def _drop_inode(self, fs: _FileSystem, ino: int) -> None:
        """Free inode ``ino`` and all its blocks (in memory; committed at the next CP)."""
        fs.tree(ino).free_all(self._alloc.free)
        fs.trees.pop(ino, None)
        fs.dirs.pop(ino, None)
        fs.dirty_trees.discard(ino)
        fs.inodes[ino] = Inode()
        fs.dirty_inodes.add(ino)
        fs.info.inode_hint = min(fs.info.inode_hint, ino)

    def rename(self, src: str, dst: str, cred: Credential = ROOT) -> None:
        """Move ``src`` to ``dst`` as POSIX rename(2) does: an existing ``dst`` is replaced (a
        file by a file, an empty directory by a directory); renaming onto itself does nothing;
        a directory cannot move into its own subtree."""
        fs = self._writable()
        src_parts, dst_parts = split_path(src), split_path(dst)
        if not src_parts or not dst_parts:
            raise InvalidArgumentError("cannot rename / or onto /")
        src_parent = fs.resolve_dir(src_parts[:-1], cred)
        dst_parent = fs.resolve_dir(dst_parts[:-1], cred)
        for parent, path in ((src_parent, src), (dst_parent, dst)):
            _check_access(fs.inode(parent), cred, _PERM_WRITE | _PERM_EXEC, f"rename {path}")
        found = fs.directory(src_parent).lookup(src_parts[-1])
        if found is None:
            raise NotFoundError(f"{src} does not exist")
        ino, kind = found
        if src_parts == dst_parts:
            return
        if kind == FileType.DIRECTORY and dst_parts[: len(src_parts)] == src_parts:
            raise InvalidArgumentError(f"cannot move directory {src} into itself ({dst})")
        target = fs.directory(dst_parent).lookup(dst_parts[-1])
        if target is not None:
            if target[0] == ino:
                return
            if kind == FileType.DIRECTORY and target[1] != FileType.DIRECTORY:
                raise NotDirectoryError(f"cannot replace file {dst} by directory {src}")
            if kind != FileType.DIRECTORY and target[1] == FileType.DIRECTORY:
                raise IsDirectoryError(f"cannot replace directory {dst} by file {src}")
            if target[1] == FileType.DIRECTORY and fs.directory(target[0]).index:
                raise DirectoryNotEmptyError(f"{dst} is not empty")
        self._reserve(2 * _OP_OVERHEAD)
        if target is not None:
            self._unlink_entry(fs, dst_parent, dst_parts[-1])
            if target[1] == FileType.DIRECTORY:
                fs.inode(dst_parent).nlink -= 1
                fs.dirty_inodes.add(dst_parent)
            self._drop_inode(fs, target[0])
        self._unlink_entry(fs, src_parent, src_parts[-1])
        self._link(fs, dst_parent, dst_parts[-1], ino, FileType(kind))
        if kind == FileType.DIRECTORY and src_parent != dst_parent:
            fs.inode(src_parent).nlink -= 1
            fs.inode(dst_parent).nlink += 1
            fs.dirty_inodes.update((src_parent, dst_parent))
        self._after_change()

    def readdir(self, path: str, cred: Credential = ROOT) -> list[DirEntry]:
        """Entries of the directory ``path``, sorted by name (needs read permission)."""
        return _op_readdir(self._active(), path, cred)

    def stat(self, path: str, cred: Credential = ROOT) -> Stat:
        """The inode fields of ``path``."""
        fs = self._active()
        return fs.stat(fs.resolve(split_path(path), cred))

    def exists(self, path: str, cred: Credential = ROOT) -> bool:
        """Whether ``path`` names a file or directory (permission errors still raise)."""
        return _op_exists(self._active(), path, cred)

    def walk(self, path: str = "/") -> Iterator[tuple[str, Stat]]:
        """Every path under ``path`` (itself first) with its stat, depth first, sorted."""
        yield from _walk(self._active(), path)

    def read_inode(
        self,
        ino: int,
        offset: int,
        length: int,
        generation: int | None = None,
        cred: Credential = ROOT,
    ) -> bytes:
        """Read by file handle: inode ``ino`` (and, if given, its ``generation``, so that a
        handle to a deleted and reused inode is stale: :class:`NotFoundError`)."""
        return _op_read_inode(self._active(), ino, offset, length, generation, cred)

    def stat_inode(self, ino: int, generation: int | None = None) -> Stat:
        """The stat of a file handle's inode."""
        fs = self._active()
        _op_inode(fs, ino, generation)
        return fs.stat(ino)

    def chmod(self, path: str, mode: int, cred: Credential = ROOT) -> None:
        """Set the permission bits of ``path`` (its owner or root only)."""
        fs = self._writable()
        if not 0 <= mode <= 0o7777:
            raise InvalidArgumentError(f"mode must be within 0..0o7777, got {mode:o}")
        ino = fs.resolve(split_path(path), cred)
        inode = fs.inode(ino)
        if cred.uid not in (0, inode.uid):
            raise PermissionDeniedError(f"uid {cred.uid} does not own {path}")
        self._reserve(_OP_OVERHEAD)
        inode.mode = mode
        fs.dirty_inodes.add(ino)

    def chown(self, path: str, uid: int, gid: int, cred: Credential = ROOT) -> None:
        """Set the owner and group of ``path`` (root only)."""
        fs = self._writable()
        if not (0 <= uid < 2**32 and 0 <= gid < 2**32):
            raise InvalidArgumentError(f"uid and gid must fit in 32 bits, got {uid}, {gid}")
        ino = fs.resolve(split_path(path), cred)
        if cred.uid != 0:
            raise PermissionDeniedError(f"only root may chown {path}")
        self._reserve(_OP_OVERHEAD)
        inode = fs.inode(ino)
        inode.uid, inode.gid = uid, gid
        fs.dirty_inodes.add(ino)

    # -- consistency points ------------------------------------------------------------------

    def consistency_point(self) -> int:
        """Write every buffered change anywhere and switch the root atomically; returns the
        committed CP number (unchanged if nothing was buffered)."""
        if self._fs is not None and (
            self._fs.dirty_trees or self._fs.dirty_inodes or self._fs.ifile.is_dirty
        ):
            self._commit(force=False)
        return self.cp

    sync = consistency_point

    def _commit(
        self,
        *,
        force: bool,
        new_snapshot: str | None = None,
        restore: bool = False,
        block_count: int | None = None,
    ) -> None:
        """Run one CP: assign and write every dirty block, a new fsinfo and the allocation map,
        then the alternate superblock region. ``force`` only documents that the caller wants a
        CP even with nothing dirty (every call commits); ``new_snapshot`` names a snapshot of
        this CP; ``restore`` marks the tree as restored at this CP."""
        fs = self._fs
        if fs is None:
            raise StateError("no active file system to commit")
        alloc = self._alloc
        cp = self.cp + 1
        try:
            self._write_trees(fs, cp)
            old_fsinfo = fs.fsinfo_vbn
            if old_fsinfo:
                alloc.free(np.array([old_fsinfo], dtype=np.int64))
            fsinfo_vbn = int(alloc.allocate(1)[0])
            self._write_map(fs, cp)
            fs.info.cp = cp
            fs.info.block_count = alloc.block_count
            if restore:
                fs.info.last_restore_cp = cp
            self.space.write_block(fsinfo_vbn, fs.info.encode())
            snapshots = list(self._snapshots)
            if new_snapshot is not None:
                record = SnapshotRecord(
                    self._free_sid(),
                    uuid.uuid5(self.uuid, f"snapshot:{cp}"),
                    new_snapshot,
                    cp,
                    fsinfo_vbn,
                    cp,
                )
                snapshots.append(record)
            self._write_region(
                cp=cp,
                active=(fsinfo_vbn, cp),
                snapshots=tuple(snapshots),
                block_count=block_count,
            )
        except XvolError:
            self._reload()
            raise
        fs.fsinfo_vbn = fsinfo_vbn
        self._snapshots = snapshots
        alloc.committed()
        if new_snapshot is not None:
            self._snapshot_maps[snapshots[-1].sid] = np.packbits(alloc.used)
            alloc.held |= alloc.used
            alloc._free_count = None

    def _write_trees(self, fs: _FileSystem, cp: int) -> None:
        """Assign new blocks to every dirty file and write them, then the changed inodes into
        the inode file and the inode file's changed blocks."""
        alloc = self._alloc
        for ino in sorted(fs.dirty_trees):
            tree = fs.trees[ino]
            tree.assign(cp, alloc.allocate, alloc.free)
            fs.inode(ino).pointers = tree.pointers()
            fs.dirty_inodes.add(ino)
            self._write_all(tree)
        fs.dirty_trees = set()
        by_block: dict[int, list[int]] = {}
        for ino in fs.dirty_inodes:
            by_block.setdefault(ino // INODES_PER_BLOCK, []).append(ino)
        for block_no, inos in sorted(by_block.items()):
            block = fs.ifile.block(self.space, block_no).copy()
            for ino in inos:
                at = (ino % INODES_PER_BLOCK) * INODE_SIZE
                block[at : at + INODE_SIZE] = np.frombuffer(fs.inodes[ino].encode(), np.uint8)
            fs.ifile.put(block_no, block)
        fs.dirty_inodes = set()
        fs.ifile.assign(cp, alloc.allocate, alloc.free)
        fs.info.inode_file.pointers = fs.ifile.pointers()
        fs.info.inode_file.size = fs.ifile.slots * BLOCK_SIZE
        self._write_all(fs.ifile)

    def _write_map(self, fs: _FileSystem, cp: int) -> None:
        """Write the allocation map: every map block whose bits changed gets a new block, which
        changes more bits, until nothing new changes (a fixpoint reached in a few rounds)."""
        alloc = self._alloc
        tree = fs.map_tree
        if tree.slots != alloc.map_blocks:
            tree.resize_slots(alloc.map_blocks, alloc.free)
        done: set[int] = set()
        while True:
            new = {b for b in alloc.changed if b < alloc.map_blocks} - done
            if not new:
                break
            for index in new:
                tree.put(index, np.zeros(BLOCK_SIZE, np.uint8))
            done |= new
            tree.assign(cp, alloc.allocate, alloc.free)
        tree.assign(cp, alloc.allocate, alloc.free)  # settles indirect blocks after shrinking
        for index in done:
            tree.dirty[index] = alloc.map_block(index)
        fs.info.map_file.pointers = tree.pointers()
        fs.info.map_file.size = tree.slots * BLOCK_SIZE
        self._write_all(tree)

    def _write_all(self, tree: BlockTree) -> None:
        for numbers, data in tree.collect():
            self.space.write_blocks(numbers, data)

    def _write_region(
        self,
        *,
        cp: int | None = None,
        active: tuple[int, int] | None = None,
        snapshots: tuple[SnapshotRecord, ...] | None = None,
        block_count: int | None = None,
        flags: int | None = None,
    ) -> None:
        """Commit: write the alternate superblock region (the atomic switch)."""
        old = self._region
        region = Region(
            generation=old.generation + 1,
            cp=old.cp if cp is None else cp,
            block_count=self._alloc.block_count if block_count is None else block_count,
            volume_uuid=old.volume_uuid,
            name=old.name,
            flags=old.flags if flags is None else flags,
            active_vbn=old.active_vbn if active is None else active[0],
            active_birth=old.active_birth if active is None else active[1],
            snapshots=tuple(self._snapshots) if snapshots is None else snapshots,
        )
        start = REGION_STARTS[region.generation % 2]
        numbers = np.arange(start, start + REGION_BLOCKS, dtype=np.int64)
        self.space.write_blocks(numbers, region.encode())
        self._region = region

    def make_writable(self) -> None:
        """Clear the read-only flag (break a mirror: the destination becomes a normal volume)."""
        self._active()
        if self.read_only:
            self._write_region(flags=self._region.flags & ~FLAG_READ_ONLY)

    def set_read_only(self) -> None:
        """Set the read-only flag (the volume becomes a mirror destination); buffered changes are
        committed first."""
        self.consistency_point()
        if not self.read_only:
            self._write_region(flags=self._region.flags | FLAG_READ_ONLY)

    # -- resizing ----------------------------------------------------------------------------

    def resize(self, block_count: int) -> None:
        """Grow or shrink the volume's logical block space to ``block_count`` blocks (the space
        resizes too). Shrinking moves the active file system's blocks past the new end below it
        (one CP) and then cuts the tail (another CP); a block a snapshot holds past the new end
        is a :class:`StateError`, too little room an :class:`OutOfSpaceError` (nothing changed
        in either case)."""
        if block_count < FIRST_DATA_BLOCK + 8:
            raise InvalidArgumentError(f"a volume needs at least {FIRST_DATA_BLOCK + 8} blocks")
        old = self._alloc.block_count
        if block_count == old:
            return
        if block_count > old:
            self.space.resize(block_count)
            self._alloc.resize(block_count)
            if self._fs is not None:
                self._reserve(0)
                self._commit(force=True)
            else:
                self._write_region()
            return
        alloc = self._alloc
        held = alloc.held[block_count:]
        if held.any():
            first = block_count + int(np.flatnonzero(held)[0])
            raise StateError(
                f"cannot shrink {self.name!r} to {block_count} blocks: snapshot-held block "
                f"{first} lies past the new end; delete the snapshots that hold it"
            )
        if self._fs is not None:
            taken = alloc.used | alloc.held | alloc.pending
            free_below = int((~taken[FIRST_DATA_BLOCK:block_count]).sum())
            moving = int(alloc.used[block_count:].sum())
            if self._cp_bound() + moving > free_below:
                raise OutOfSpaceError(
                    f"too few free blocks below {block_count} to shrink {self.name!r}"
                )
            self._evacuate(self._fs, block_count)
            alloc.limit = block_count
            try:
                self._commit(force=True)
            finally:
                alloc.limit = None
            if alloc.used[block_count:].any():
                raise StateError(f"could not move every block of {self.name!r} below {block_count}")
        alloc.resize(block_count)
        for sid in list(self._snapshot_maps):
            bits = np.unpackbits(self._snapshot_maps[sid], count=old)[:block_count]
            self._snapshot_maps[sid] = np.packbits(bits)
        if self._fs is not None:
            self._commit(force=True, block_count=block_count)
        else:
            self._write_region(block_count=block_count)
        self.space.resize(block_count)

    def _evacuate(self, fs: _FileSystem, end: int) -> None:
        """Dirty every active block at or past ``end`` so that the next CP rewrites it below
        (data, indirect, inode-file and map blocks; the fsinfo moves at every CP anyway)."""

        def move(tree: BlockTree) -> bool:
            moved = False
            for fbn in np.flatnonzero(tree.vbn[: tree.slots] >= end).tolist():
                tree.put(fbn, tree.block(self.space, fbn).copy())
                moved = True
            for j in np.flatnonzero(tree.l1_vbn >= end).tolist():
                tree.dirty_l1.add(j)
                moved = True
            if tree.l2_vbn >= end:
                tree.dirty_l2 = True
                moved = True
            return moved

        for ino in range(ROOT_INODE, fs.inode_capacity):
            if fs.inode(ino).type != FileType.FREE and move(fs.tree(ino)):
                fs.dirty_trees.add(ino)
        move(fs.ifile)
        self._alloc.changed.update(
            np.flatnonzero(fs.map_tree.vbn[: fs.map_tree.slots] >= end).tolist()
        )
        if fs.map_tree.l1_vbn.max() >= end or fs.map_tree.l2_vbn >= end:
            move(fs.map_tree)

    # -- snapshots ---------------------------------------------------------------------------

    def snapshots(self) -> list[SnapshotInfo]:
        """Every snapshot, oldest (lowest CP) first."""
        return [_info(r) for r in sorted(self._snapshots, key=lambda r: r.cp)]

    def _find(self, ref: SnapshotRef) -> SnapshotRecord:
        for record in self._snapshots:
            if isinstance(ref, uuid.UUID):
                hit = record.uuid == ref
            elif isinstance(ref, bool):
                hit = False
            elif isinstance(ref, int):
                hit = record.sid == ref
            else:
                hit = record.name == ref
            if hit:
                return record
        raise NotFoundError(f"volume {self.name!r} has no snapshot {ref!r}")

    def snapshot_info(self, ref: SnapshotRef) -> SnapshotInfo:
        """The snapshot named by ``ref`` (name, small ID or UUID)."""
        return _info(self._find(ref))

    def _free_sid(self) -> int:
        taken = {r.sid for r in self._snapshots}
        for sid in range(1, MAX_SNAPSHOTS + 1):
            if sid not in taken:
                return sid
        raise TooManySnapshotsError(f"volume {self.name!r} holds {MAX_SNAPSHOTS} snapshots")

    def create_snapshot(self, name: str) -> SnapshotInfo:
        """Take a CP and keep it as snapshot ``name``; returns it."""
        self._writable()
        raw = name.encode() if isinstance(name, str) else b""
        if not raw or len(raw) > MAX_SNAPSHOT_NAME_BYTES or "\0" in name:
            raise InvalidArgumentError(f"snapshot name must be 1..80 bytes, got {name!r}")
        if any(r.name == name for r in self._snapshots):
            raise AlreadyExistsError(f"volume {self.name!r} already has snapshot {name!r}")
        self._free_sid()
        self._reserve(0)
        self._commit(force=True, new_snapshot=name)
        return _info(self._snapshots[-1])

    def delete_snapshot(self, ref: SnapshotRef) -> None:
        """Delete a snapshot; blocks only it held become free once the table is committed."""
        record = self._find(ref)
        remaining = tuple(r for r in self._snapshots if r.sid != record.sid)
        self._write_region(snapshots=remaining)
        self._snapshots = list(remaining)
        del self._snapshot_maps[record.sid]
        self._recompute_held()

    def snapshot(self, ref: SnapshotRef) -> FileSystemView:
        """A read-only view of a snapshot's files."""
        record = self._find(ref)
        return FileSystemView(_FileSystem.at(self.space, record.fsinfo_vbn), _info(record))

    def view(self, sid: int) -> FileSystemView:
        """The view the seed's snapshot access layer names by ID: 0 is the active file system
        as of its last CP, 1..255 a snapshot."""
        if sid == 0:
            if not self._region.active_vbn:
                raise StateError(f"volume {self.name!r} has no active file system yet")
            return FileSystemView(_FileSystem.at(self.space, self._region.active_vbn), None)
        if not 1 <= sid <= MAX_SNAPSHOTS:
            raise InvalidArgumentError(f"snapshot ID must be within 0..255, got {sid}")
        return self.snapshot(sid)

    def restore_snapshot(self, ref: SnapshotRef) -> None:
        """Make the active file system the snapshot's image again (buffered changes are dropped;
        changes since the snapshot are freed unless other snapshots hold them). Commits a CP."""
        record = self._find(ref)
        if self.read_only:
            raise ReadOnlyVolumeError(f"volume {self.name!r} is read-only")
        maps = self._alloc.map_blocks
        need = maps + maps // POINTERS_PER_BLOCK + 4
        if need > self._alloc.free_count():
            raise OutOfSpaceError(f"volume {self.name!r} needs {need} free blocks to restore")
        old_used = self._alloc.used
        self._install_active(record.fsinfo_vbn, old_used)
        self._commit(force=True, restore=True)

    def _install_active(self, fsinfo_vbn: int, old_used: npt.NDArray[np.bool_]) -> None:
        """Make the tree at ``fsinfo_vbn`` (a snapshot's) the in-memory active file system: its
        map becomes the active map and the old active blocks become pending frees."""
        fs = _FileSystem.at(self.space, fsinfo_vbn)
        alloc = self._alloc
        used = unpack_map(fs.map_tree.read(self.space, 0, fs.map_tree.slots), alloc.block_count)
        alloc.pending |= old_used & ~used
        alloc.used = used
        alloc.changed = set()
        if fs.map_tree.slots != alloc.map_blocks:
            alloc.changed.update(range(min(fs.map_tree.slots, alloc.map_blocks), alloc.map_blocks))
            if fs.map_tree.slots:
                alloc.changed.add(min(fs.map_tree.slots, alloc.map_blocks) - 1)
        alloc._free_count = None
        self._fs = fs

    def snapshot_exclusive_blocks(self, ref: SnapshotRef) -> int:
        """Blocks only this snapshot holds: what deleting it would free."""
        record = self._find(ref)
        count = self._alloc.block_count
        own = np.unpackbits(self._snapshot_maps[record.sid], count=count).astype(bool)
        others = [m for sid, m in self._snapshot_maps.items() if sid != record.sid]
        if others:
            union = np.unpackbits(_union(others, count), count=count).astype(bool)
        else:
            union = np.zeros(count, dtype=bool)
        return int((own & ~union & ~self._alloc.used).sum())

    # -- helpers for xvol.reference.volume.diff (block-level diff and apply) and .changes --------

    def _record(self, ref: SnapshotRef) -> SnapshotRecord:
        return self._find(ref)

    def _tree(self, ref: SnapshotRef | None) -> _FileSystem:
        """A fresh read-only tree of snapshot ``ref`` (None: the active file system as of its
        last CP), sharing no cache with the volume's own."""
        if ref is None:
            if not self._region.active_vbn:
                raise StateError(f"volume {self.name!r} has no active file system yet")
            return _FileSystem.at(self.space, self._region.active_vbn)
        return _FileSystem.at(self.space, self._find(ref).fsinfo_vbn)

    def _snapshot_map(self, sid: int) -> npt.NDArray[np.bool_]:
        """The allocation map of snapshot ``sid``: exactly the blocks its tree references."""
        return np.unpackbits(self._snapshot_maps[sid], count=self._alloc.block_count).astype(bool)

    def _snapshot_holds(self, sid: int, numbers: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
        """Whether snapshot ``sid`` holds each of ``numbers`` (cost proportional to
        ``len(numbers)``, read from the packed map)."""
        packed = self._snapshot_maps[sid]
        byte = numbers >> 3
        inside = byte < len(packed)
        out = np.zeros(len(numbers), dtype=bool)
        bits = packed[byte[inside]] >> (7 - (numbers[inside] & 7)).astype(np.uint8)
        out[inside] = (bits & 1).astype(bool)
        return out

    def _has_buffered_changes(self) -> bool:
        fs = self._fs
        return fs is not None and bool(fs.dirty_trees or fs.dirty_inodes or fs.ifile.is_dirty)

    def _active_outside_snapshots(self) -> bool:
        """Whether the active file system references a block no snapshot holds."""
        alloc = self._alloc
        return bool((alloc.used & ~alloc.held).any() or alloc.pending.any())

    def _blocks_in_use(self, numbers: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
        """Which of ``numbers`` a committed root (or the next CP's frees) still references."""
        alloc = self._alloc
        return alloc.used[numbers] | alloc.held[numbers] | alloc.pending[numbers]

    def _rollback_active(self, base: SnapshotRecord | None) -> None:
        """Commit the active file system back to exactly snapshot ``base`` (sharing its root
        block), or to none at all; the active-only blocks become free."""
        if self._has_buffered_changes():
            raise StateError(f"volume {self.name!r} has uncommitted changes")
        count = self._alloc.block_count
        if base is None:
            self._write_region(active=(0, 0))
            self._fs = None
            self._alloc.used = np.zeros(count, dtype=bool)
        else:
            self._write_region(active=(base.fsinfo_vbn, base.fsinfo_birth))
            self._fs = _FileSystem.at(self.space, base.fsinfo_vbn)
            self._alloc.used = self._snapshot_map(base.sid)
        self._alloc.committed()

    def _commit_received(self, target: SnapshotInfo, fsinfo_vbn: int) -> SnapshotInfo:
        """Commit a received tree rooted at ``fsinfo_vbn`` as snapshot ``target`` (same UUID,
        name and CP; its small ID too when free here) and make it the active file system."""
        fs = _FileSystem.at(self.space, fsinfo_vbn)
        if fs.info.cp != target.cp:
            raise IntegrityError(
                f"received root is CP {fs.info.cp}, the stream announced CP {target.cp}"
            )
        used = self._map_of(fs)
        taken = {r.sid for r in self._snapshots}
        sid = target.sid if target.sid not in taken else self._free_sid()
        record = SnapshotRecord(sid, target.uuid, target.name, target.cp, fsinfo_vbn, target.cp)
        snapshots = (*self._snapshots, record)
        self._write_region(
            cp=max(self.cp, target.cp), active=(fsinfo_vbn, target.cp), snapshots=snapshots
        )
        self._snapshots = list(snapshots)
        self._fs = fs
        self._alloc.used = used
        self._alloc.committed()
        self._snapshot_maps[sid] = np.packbits(used)
        self._recompute_held()
        return _info(record)


def _union(packed: list[npt.NDArray[np.uint8]], bits: int) -> npt.NDArray[np.uint8]:
    """OR of packed bitmaps of possibly different lengths, as ``bits`` bits packed."""
    out = np.zeros(-(-bits // 8), dtype=np.uint8)
    for bitmap in packed:
        keep = min(len(bitmap), len(out))
        out[:keep] |= bitmap[:keep]
    return out


def _info(record: SnapshotRecord) -> SnapshotInfo:
    return SnapshotInfo(record.sid, record.uuid, record.name, record.cp)


def _newest_region(space: VolumeSpace) -> Region:
    """The valid superblock region with the highest generation."""
    if space.block_count < FIRST_DATA_BLOCK:
        raise IntegrityError(f"space {space.name!r} is too small to hold a volume")
    found = []
    for start in REGION_STARTS:
        try:
            blocks = space.read_blocks(np.arange(start, start + REGION_BLOCKS, dtype=np.int64))
            found.append(Region.decode(blocks))
        except XvolError:
            continue
    if not found:
        raise IntegrityError(
            f"space {space.name!r} holds no valid volume superblock (not formatted, or both "
            "superblock regions damaged)"
        )
    return max(found, key=lambda r: r.generation)
