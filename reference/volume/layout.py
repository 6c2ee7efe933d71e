"""On-block formats of a write-anywhere volume: superblock regions, fsinfo roots, inodes, block
pointers, indirect blocks, directory blocks and allocation bitmaps.

Everything a volume knows lives in its own 4 KiB logical blocks (seed: volume block numbers, VBN),
so a block-for-block copy of a volume is the same volume. This module only turns records into
bytes and back; it never touches a block space. The layers above it are :mod:`.tree` (one file's
pointer tree in memory), :mod:`.volume` (the file system, consistency points, snapshots) and
:mod:`.diff` (block-level diff and apply).

Block map of a volume (block numbers are volume block numbers)::

    0 .. 8     superblock region A  (header block + 8 snapshot-table blocks)
    9 .. 17    superblock region B  (the same; A and B alternate, the newest valid one wins)
    18 ..      write-anywhere blocks: fsinfo roots, inode file, directories, file data,
               indirect blocks, allocation-map file; never overwritten while referenced

A *superblock region* names the volume (UUID, name), the newest consistency point (CP) number, the
active file system's root (a pointer to an *fsinfo* block) and the snapshot table (up to 255
snapshots, each a pointer to the fsinfo block of the CP it froze: the seed's snapshot made
"virtually by using a pointer"). A checksum over the whole region makes a torn region write
detectable; the older region then stays in force, which is what makes a consistency point atomic.

An *fsinfo* block roots one file system tree: it embeds the inode of the inode file and the inode
of the allocation-map file. A *block pointer* is 16 bytes: the volume block number (0 = hole) and
the number of the CP that wrote the pointer's target (its birth CP, as in ZFS), which is what lets
a diff skip every subtree born before its base snapshot.

Uses: numpy, hashlib, struct, uuid and :mod:`xvol.errors`.
"""

from __future__ import annotations

import hashlib
import struct
import uuid
from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np
import numpy.typing as npt

from xvol.errors import IntegrityError, InvalidArgumentError
from xvol.reference.storage.block import BLOCK_SIZE, Blocks

# --------------------------------------------------------------------------------------------
# Geometry
# --------------------------------------------------------------------------------------------

REGION_BLOCKS = 9
"""Blocks in one superblock region: a header block and eight snapshot-table blocks."""
REGION_STARTS = (0, REGION_BLOCKS)
"""First block of superblock region A and of region B."""
FIRST_DATA_BLOCK = 2 * REGION_BLOCKS
"""The lowest block number the write-anywhere allocator may hand out."""

POINTER_SIZE = 16
POINTERS_PER_BLOCK = BLOCK_SIZE // POINTER_SIZE  # 256
NDIRECT = 4
"""Direct pointers in an inode; then one single-indirect and one double-indirect pointer."""
MAX_FILE_BLOCKS = NDIRECT + POINTERS_PER_BLOCK + POINTERS_PER_BLOCK * POINTERS_PER_BLOCK
"""65 796 blocks (about 257 MiB): the largest file an inode can map."""
L1_COUNT = 1 + POINTERS_PER_BLOCK
"""Indirect (level-1) blocks of a full file: the single-indirect one and 256 under the double."""

INODE_SIZE = 128
INODES_PER_BLOCK = BLOCK_SIZE // INODE_SIZE  # 32
ROOT_INODE = 1
"""Inode number of the root directory. Inode 0 is never used (0 means "no inode")."""

BITS_PER_MAP_BLOCK = BLOCK_SIZE * 8
"""Blocks whose allocation bit one allocation-map block holds."""

MAX_NAME_BYTES = 255
MAX_SNAPSHOTS = 255
MAX_SNAPSHOT_NAME_BYTES = 80
MAX_VOLUME_NAME_BYTES = 255

_REGION_MAGIC = b"XVOLSB01"
_FSINFO_MAGIC = b"XVOLFS01"
_FORMAT_VERSION = 1
_CHECKSUM_BYTES = 32


def region_blocks(region: int) -> range:
    """Block numbers of superblock region 0 (A) or 1 (B)."""
    return range(REGION_STARTS[region], REGION_STARTS[region] + REGION_BLOCKS)


# --------------------------------------------------------------------------------------------
# Block pointers and indirect blocks
# --------------------------------------------------------------------------------------------

Pointers = npt.NDArray[np.int64]
"""An ``(n, 2)`` array of block pointers: column 0 the block number (0 = hole), column 1 the
birth CP."""


def decode_pointers(block: bytes | npt.NDArray[np.uint8]) -> Pointers:
    """The 256 pointers of an indirect block, as an ``(256, 2)`` int64 array."""
    raw = np.frombuffer(bytes(block) if isinstance(block, bytes) else block.tobytes(), dtype="<u8")
    return raw.reshape(POINTERS_PER_BLOCK, 2).astype(np.int64)


def encode_pointers(pointers: Pointers) -> bytes:
    """An indirect block holding ``pointers`` (at most 256; the rest of the block is holes)."""
    if len(pointers) > POINTERS_PER_BLOCK:
        raise InvalidArgumentError(f"an indirect block holds 256 pointers, not {len(pointers)}")
    out = np.zeros((POINTERS_PER_BLOCK, 2), dtype="<u8")
    out[: len(pointers)] = pointers
    return out.tobytes()


# --------------------------------------------------------------------------------------------
# Inodes: the 128-byte record of the seed (ownership, permissions, size, type, block locations)
# --------------------------------------------------------------------------------------------


class FileType(IntEnum):
    """The type field of an inode. ``FREE`` marks an unused inode slot."""

    FREE = 0
    REGULAR = 1
    DIRECTORY = 2


_INODE_HEAD = struct.Struct("<BBHIIIQQ")  # type, flags, mode, uid, gid, nlink, size, generation
assert _INODE_HEAD.size + (NDIRECT + 2) * POINTER_SIZE == INODE_SIZE


@dataclass
class Inode:
    """One inode, decoded. ``pointers`` is ``(6, 2)``: 4 direct, single indirect, double indirect.

    Invariant: a ``FREE`` inode is all zeros on its block; ``size`` bytes of data are mapped by the
    pointers (slots past the size are holes).
    """

    type: FileType = FileType.FREE
    mode: int = 0
    uid: int = 0
    gid: int = 0
    nlink: int = 0
    size: int = 0
    generation: int = 0
    pointers: Pointers = field(default_factory=lambda: np.zeros((NDIRECT + 2, 2), np.int64))

    def encode(self) -> bytes:
        """The 128 bytes of this inode."""
        head = _INODE_HEAD.pack(
            int(self.type), 0, self.mode, self.uid, self.gid, self.nlink, self.size, self.generation
        )
        return head + self.pointers.astype("<u8").tobytes()

    @classmethod
    def decode(cls, raw: bytes) -> Inode:
        """The inode stored in ``raw`` (128 bytes)."""
        kind, _flags, mode, uid, gid, nlink, size, generation = _INODE_HEAD.unpack_from(raw)
        try:
            file_type = FileType(kind)
        except ValueError as exc:
            raise IntegrityError(
                f"inode has unknown type {kind}: the inode file is damaged"
            ) from exc
        pointers = (
            np.frombuffer(raw[_INODE_HEAD.size : INODE_SIZE], dtype="<u8")
            .reshape(NDIRECT + 2, 2)
            .astype(np.int64)
        )
        return cls(file_type, mode, uid, gid, nlink, size, generation, pointers)

    def copy(self) -> Inode:
        """An independent copy (pointers included)."""
        return Inode(
            self.type,
            self.mode,
            self.uid,
            self.gid,
            self.nlink,
            self.size,
            self.generation,
            self.pointers.copy(),
        )


def inode_types(block: bytes | npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """The type byte of each of the 32 inodes stored in an inode-file block."""
    raw = np.frombuffer(block, dtype=np.uint8) if isinstance(block, bytes) else block
    return raw.reshape(INODES_PER_BLOCK, INODE_SIZE)[:, 0].copy()


def inode_pointers(block: bytes | npt.NDArray[np.uint8]) -> Pointers:
    """The pointers of all 32 inodes of an inode-file block, as a ``(32, 6, 2)`` array."""
    raw = np.frombuffer(block, dtype=np.uint8) if isinstance(block, bytes) else block
    body = raw.reshape(INODES_PER_BLOCK, INODE_SIZE)[:, _INODE_HEAD.size :]
    return body.copy().view("<u8").reshape(INODES_PER_BLOCK, NDIRECT + 2, 2).astype(np.int64)


# --------------------------------------------------------------------------------------------
# fsinfo: the root block of one file system tree (the active one at a CP, or a snapshot's)
# --------------------------------------------------------------------------------------------

_FSINFO_HEAD = struct.Struct("<8sQQQQQ")  # magic, cp, last_restore_cp, next_gen, hint, blocks
_FSINFO_INODES_AT = 64


@dataclass
class FsInfo:
    """Root of one file system tree.

    ``cp`` is the CP that wrote it; ``last_restore_cp`` the newest CP at which this tree's lineage
    was restored from a snapshot (0 if never), which tells a diff when birth CP numbers may not be
    trusted; ``block_count`` is how many blocks the allocation map covers.
    """

    cp: int
    last_restore_cp: int
    next_generation: int
    inode_hint: int
    block_count: int
    inode_file: Inode
    map_file: Inode

    def encode(self) -> bytes:
        """The fsinfo block."""
        head = _FSINFO_HEAD.pack(
            _FSINFO_MAGIC,
            self.cp,
            self.last_restore_cp,
            self.next_generation,
            self.inode_hint,
            self.block_count,
        )
        body = head.ljust(_FSINFO_INODES_AT, b"\0") + self.inode_file.encode()
        body += self.map_file.encode()
        return body.ljust(BLOCK_SIZE, b"\0")

    @classmethod
    def decode(cls, raw: bytes) -> FsInfo:
        """The fsinfo stored in ``raw``; :class:`IntegrityError` if it is not an fsinfo block."""
        magic, cp, restore_cp, next_gen, hint, count = _FSINFO_HEAD.unpack_from(raw)
        if magic != _FSINFO_MAGIC:
            raise IntegrityError("block is not an fsinfo root: the volume tree is damaged")
        at = _FSINFO_INODES_AT
        return cls(
            cp,
            restore_cp,
            next_gen,
            hint,
            count,
            Inode.decode(raw[at : at + INODE_SIZE]),
            Inode.decode(raw[at + INODE_SIZE : at + 2 * INODE_SIZE]),
        )


# --------------------------------------------------------------------------------------------
# Superblock region: volume identity, newest CP, active root, snapshot table
# --------------------------------------------------------------------------------------------

FLAG_READ_ONLY = 1
"""Region flag: the volume refuses file system changes (a mirror destination)."""

_REGION_HEAD = struct.Struct("<8sIIQQQ16sQQIH")
_NAME_AT = 128
_SNAP_ENTRY = struct.Struct("<BB6x16sQQQ")
_SNAP_ENTRY_SIZE = 128
assert _SNAP_ENTRY.size + MAX_SNAPSHOT_NAME_BYTES <= _SNAP_ENTRY_SIZE
assert (REGION_BLOCKS - 1) * BLOCK_SIZE >= MAX_SNAPSHOTS * _SNAP_ENTRY_SIZE


@dataclass(frozen=True)
class SnapshotRecord:
    """One snapshot-table entry: small ID (1..255), UUID, name, the CP it froze and the pointer
    to that CP's fsinfo block."""

    sid: int
    uuid: uuid.UUID
    name: str
    cp: int
    fsinfo_vbn: int
    fsinfo_birth: int


@dataclass(frozen=True)
class Region:
    """A decoded superblock region. ``generation`` counts region writes (the newest valid region
    wins at open); ``cp`` is the highest CP number the volume has used; ``active_vbn == 0`` means
    the volume has no active file system (a mirror destination before its baseline)."""

    generation: int
    cp: int
    block_count: int
    volume_uuid: uuid.UUID
    name: str
    flags: int
    active_vbn: int
    active_birth: int
    snapshots: tuple[SnapshotRecord, ...]

    def encode(self) -> Blocks:
        """The region's ``REGION_BLOCKS`` blocks, checksum included."""
        out = np.zeros((REGION_BLOCKS, BLOCK_SIZE), dtype=np.uint8)
        name = self.name.encode()
        head = _REGION_HEAD.pack(
            _REGION_MAGIC,
            _FORMAT_VERSION,
            self.flags,
            self.generation,
            self.cp,
            self.block_count,
            self.volume_uuid.bytes,
            self.active_vbn,
            self.active_birth,
            len(self.snapshots),
            len(name),
        )
        flat = out.reshape(-1)
        flat[: len(head)] = np.frombuffer(head, np.uint8)
        flat[_NAME_AT : _NAME_AT + len(name)] = np.frombuffer(name, np.uint8)
        table = flat[BLOCK_SIZE:]
        for i, snap in enumerate(self.snapshots):
            snap_name = snap.name.encode()
            entry = _SNAP_ENTRY.pack(
                snap.sid,
                len(snap_name),
                snap.uuid.bytes,
                snap.cp,
                snap.fsinfo_vbn,
                snap.fsinfo_birth,
            )
            entry += snap_name
            start = i * _SNAP_ENTRY_SIZE
            table[start : start + len(entry)] = np.frombuffer(entry, np.uint8)
        flat[BLOCK_SIZE - _CHECKSUM_BYTES : BLOCK_SIZE] = np.frombuffer(
            _region_digest(out), np.uint8
        )
        return out

    @classmethod
    def decode(cls, blocks: Blocks) -> Region:
        """The region stored in ``blocks``; :class:`IntegrityError` if it is not a valid one."""
        flat = blocks.reshape(-1)
        stored = flat[BLOCK_SIZE - _CHECKSUM_BYTES : BLOCK_SIZE].tobytes()
        if stored != _region_digest(blocks):
            raise IntegrityError("superblock region checksum mismatch (torn or never written)")
        raw = flat.tobytes()
        (magic, version, flags, generation, cp, count, vol_uuid, active_vbn, active_birth, nsnap,
         name_len) = _REGION_HEAD.unpack_from(raw)  # fmt: skip
        if magic != _REGION_MAGIC or version != _FORMAT_VERSION:
            raise IntegrityError("superblock region has the wrong magic or format version")
        snapshots = []
        for i in range(nsnap):
            at = BLOCK_SIZE + i * _SNAP_ENTRY_SIZE
            sid, snap_name_len, snap_uuid, snap_cp, fs_vbn, fs_birth = _SNAP_ENTRY.unpack_from(
                raw, at
            )
            name_at = at + _SNAP_ENTRY.size
            snapshots.append(
                SnapshotRecord(
                    sid,
                    uuid.UUID(bytes=snap_uuid),
                    raw[name_at : name_at + snap_name_len].decode(),
                    snap_cp,
                    fs_vbn,
                    fs_birth,
                )
            )
        return cls(
            generation,
            cp,
            count,
            uuid.UUID(bytes=vol_uuid),
            raw[_NAME_AT : _NAME_AT + name_len].decode(),
            flags,
            active_vbn,
            active_birth,
            tuple(snapshots),
        )


def _region_digest(blocks: Blocks) -> bytes:
    flat = blocks.reshape(-1)
    hasher = hashlib.blake2b(digest_size=_CHECKSUM_BYTES)
    hasher.update(flat[: BLOCK_SIZE - _CHECKSUM_BYTES].tobytes())
    hasher.update(flat[BLOCK_SIZE:].tobytes())
    return hasher.digest()


# --------------------------------------------------------------------------------------------
# Directory blocks: entries (inode u32, type u8, name length u8, name) packed per block
# --------------------------------------------------------------------------------------------

_DIRENT_HEAD = struct.Struct("<IBB")
DIRENT_OVERHEAD = _DIRENT_HEAD.size


def dirent_size(name: bytes) -> int:
    """Bytes one directory entry with ``name`` takes in a directory block."""
    return DIRENT_OVERHEAD + len(name)


def encode_directory_block(entries: dict[bytes, tuple[int, int]]) -> bytes:
    """A directory block holding ``entries`` (name -> (inode, type)); they must fit."""
    parts = [
        _DIRENT_HEAD.pack(ino, kind, len(name)) + name for name, (ino, kind) in entries.items()
    ]
    raw = b"".join(parts)
    if len(raw) > BLOCK_SIZE:
        raise InvalidArgumentError("directory entries do not fit in one block")
    return raw.ljust(BLOCK_SIZE, b"\0")


def decode_directory_block(raw: bytes) -> dict[bytes, tuple[int, int]]:
    """The entries of a directory block (name -> (inode, type)), in stored order."""
    entries: dict[bytes, tuple[int, int]] = {}
    at = 0
    while at + DIRENT_OVERHEAD <= BLOCK_SIZE:
        ino, kind, length = _DIRENT_HEAD.unpack_from(raw, at)
        if ino == 0:
            break
        entries[raw[at + DIRENT_OVERHEAD : at + DIRENT_OVERHEAD + length]] = (ino, kind)
        at += DIRENT_OVERHEAD + length
    return entries


# --------------------------------------------------------------------------------------------
# Block checksums for transfers: a vectorised Fletcher-style pair per block
# --------------------------------------------------------------------------------------------

_WEIGHTS = np.arange(BLOCK_SIZE // 4, 0, -1, dtype=np.uint32)


def block_checksums(blocks: Blocks) -> npt.NDArray[np.uint64]:
    """A ``(k, 2)`` checksum per block: the sum of its 1024 little-endian 32-bit words and their
    position-weighted sum (Fletcher-style, exact in 64 bits). Detects every single-word change and
    every swap of two different words; computed for a whole batch in a few numpy passes."""
    words = np.ascontiguousarray(blocks).view("<u4")
    out = np.empty((len(blocks), 2), dtype=np.uint64)
    out[:, 0] = words.sum(axis=1, dtype=np.uint64)
    out[:, 1] = np.einsum("ij,j->i", words, _WEIGHTS, dtype=np.uint64)
    return out
