"""Block-level diff between snapshots of a volume, and its apply on another volume.

This is the volume half of block replication (seed: the source snapshot or an update is
transferred to the remote location using the block replication protocol). A *diff* from snapshot
``base`` to snapshot ``target`` lists the volume blocks that ``target`` references and ``base``
does not. Because the volume writes anywhere, a block both reference holds the same bytes in both
(it cannot have been overwritten while ``base`` held it), so writing exactly those blocks into a
copy of ``base`` turns it into a copy of ``target``: blocks, files and snapshot UUID alike.

Three ways to find the blocks, all with the same answer (the tests check it):

* :func:`diff_snapshots` with ``method="birth"`` (the default, as ZFS does): walk ``target``'s
  tree from its fsinfo root and descend only into pointers whose birth CP is newer than
  ``base``'s CP; a subtree born earlier is shared with ``base`` and skipped whole. The cost is
  proportional to the changed blocks (times the tree depth), not to the volume size. When the
  birth numbers cannot be trusted (``target``'s lineage was restored from a snapshot after
  ``base``, or ``base`` is newer than ``target``) the walk descends everywhere: still correct,
  cost proportional to the file system's metadata.
* ``method="maps"`` (as SnapMirror does): ``target``'s allocation map AND NOT ``base``'s, one
  bit per block, held in memory.
* :func:`full_scan_diff`, the baseline (rsync-like): read and checksum every in-use block of both
  images and compare block by block.

A diff without ``base`` (a *baseline*) lists every block ``target`` references. Each diff also
reports the blocks ``base`` holds and ``target`` does not (``freed``, from the allocation maps).

The records stream as :class:`BlockBatch` es (numpy arrays of block numbers, bytes and
checksums) in ascending block-number order, after a :class:`DiffHeader` that carries what the
destination needs to commit. :class:`ApplySession` writes them into a destination volume,
verifies every checksum (:class:`~xvol.errors.IntegrityError`, nothing committed), and commits
the result atomically as a snapshot with the source's UUID, name and CP number.

Record checksums (:func:`record_checksums`). Each record carries two 64-bit values: the block's
*content sum* (the position-weighted code of :mod:`xvol.reference.storage.checksum`, which the
disks store too) and the same sum mixed with the record's block number, so the destination
detects both damaged bytes and a record delivered under another block number. The source does not
compute the content sums a second time: its space hands up the sums its disks verified while
reading (:func:`~xvol.reference.storage.checksum.read_summed`). The destination computes them
once from the bytes it received, compares, and hands the same sums down with the write
(:func:`~xvol.reference.storage.checksum.write_summed`), so its disks store their checksums
without reading the batch again. One checksum pass at each end, and every byte verified at
both.

Resuming an interrupted transfer. The destination writes a record only into a block that no
committed root of the destination references (checked per batch; the source's allocator never
hands out a block that ``base`` holds, and the destination holds nothing outside its snapshots).
A record for a block the destination already references is accepted only if that block holds the
same bytes (after a restore on the source, the target may share blocks with an older common
snapshot) and is then not rewritten; otherwise the batch fails with
:class:`~xvol.errors.StateError`. So the writes are idempotent, and a crash or an exception
mid-stream leaves the destination at its previous snapshot. Records arrive in ascending order, so
the session's progress is one small :class:`ApplyCheckpoint` (last block number applied, records
applied, an order-independent running digest of the block numbers). :meth:`ApplySession.resume`
continues from a checkpoint with the source's ``diff.batches(start_after=checkpoint.cursor)``:
committed blocks are never re-sent. A later layer persists the checkpoint once the space has
made the batch durable.

Uses: numpy, :mod:`.layout`, :mod:`.volume` (its snapshot records and allocation maps),
:mod:`xvol.reference.storage` (block spaces and content sums).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from xvol.errors import (
    AlreadyExistsError,
    IntegrityError,
    InvalidArgumentError,
    NotFoundError,
    StateError,
)
from xvol.reference.storage.block import BLOCK_SIZE, BlockNumbers, Blocks, VolumeSpace
from xvol.reference.storage.checksum import (
    content_sums,
    mix_numbers,
    read_summed,
    write_summed,
)
from xvol.reference.volume.layout import (
    FIRST_DATA_BLOCK,
    NDIRECT,
    POINTERS_PER_BLOCK,
    FileType,
    FsInfo,
    Pointers,
    SnapshotRecord,
    block_checksums,
    inode_pointers,
    inode_types,
)
from xvol.reference.volume.volume import (
    SnapshotInfo,
    SnapshotRef,
    TooManySnapshotsError,
    Volume,
)

DEFAULT_BATCH_BLOCKS = 1024
Checksums = npt.NDArray[np.uint64]
"""``(k, 2)`` checksums, one pair per record (see :func:`record_checksums`)."""

# --------------------------------------------------------------------------------------------
# Records of a diff stream
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DiffHeader:
    """What a destination needs besides the blocks: which snapshots the diff joins, where the
    target's root is, how big the source volume is, and how many records (with what digest of
    their block numbers) make the stream complete."""

    volume_uuid: uuid.UUID
    volume_name: str
    base: SnapshotInfo | None
    target: SnapshotInfo
    target_fsinfo: int
    block_count: int
    record_count: int
    numbers_digest: int


def record_checksums(
    numbers: BlockNumbers,
    content: npt.NDArray[np.uint64],
    mixed: npt.NDArray[np.uint64] | None = None,
) -> Checksums:
    """The ``(k, 2)`` checksums of records for blocks ``numbers`` whose content sums are
    ``content``: the content sum, and the content sum mixed with the block number (``mixed``:
    ``mix_numbers(numbers)`` when the caller has it already)."""
    out = np.empty((len(numbers), 2), dtype=np.uint64)
    out[:, 0] = content
    out[:, 1] = content ^ (mix_numbers(numbers) if mixed is None else mixed)
    return out


@dataclass(frozen=True)
class BlockBatch:
    """A batch of diff records: ``numbers[i]`` gets ``data[i]``, whose checksums are
    ``checksums[i]`` (:func:`record_checksums`)."""

    numbers: BlockNumbers
    data: Blocks
    checksums: Checksums


def numbers_digest(numbers: BlockNumbers, start: int = 0) -> int:
    """Order-independent 64-bit digest of block numbers (a sum of splitmix64 mixes, the same
    mixes as :func:`~xvol.reference.storage.checksum.mix_numbers`), resumable:
    ``numbers_digest(b, numbers_digest(a)) == numbers_digest(concat(a, b))``."""
    return _mixes_digest(mix_numbers(numbers), start)


def _mixes_digest(mixed: npt.NDArray[np.uint64], start: int) -> int:
    """:func:`numbers_digest` from the numbers' mixes."""
    total = int(mixed.sum(dtype=np.uint64)) if len(mixed) else 0
    return (start + total) % (1 << 64)


class BlockDiff:
    """A computed diff: its header, the sorted block numbers to send, the blocks freed."""

    def __init__(
        self,
        volume: Volume,
        header: DiffHeader,
        numbers: BlockNumbers,
        freed: Callable[[], BlockNumbers],
    ) -> None:
        self._space: VolumeSpace = volume.space
        self.header = header
        self.numbers = numbers
        """Block numbers the target references and the base does not, ascending."""
        self._freed = freed
        self._freed_numbers: BlockNumbers | None = None

    @property
    def freed(self) -> BlockNumbers:
        """Block numbers the base references and the target does not, ascending (computed on
        first use from the two allocation maps: one bit per volume block)."""
        if self._freed_numbers is None:
            self._freed_numbers = self._freed()
        return self._freed_numbers

    def batches(
        self, batch_blocks: int = DEFAULT_BATCH_BLOCKS, *, start_after: int = -1
    ) -> Iterator[BlockBatch]:
        """The records, read from the source's space in batches, skipping block numbers up to
        and including ``start_after`` (to resume a transfer)."""
        if batch_blocks < 1:
            raise InvalidArgumentError(f"batch_blocks must be >= 1, got {batch_blocks}")
        first = int(np.searchsorted(self.numbers, start_after, side="right"))
        for lo in range(first, len(self.numbers), batch_blocks):
            numbers = self.numbers[lo : lo + batch_blocks]
            data, content = read_summed(self._space, numbers)
            yield BlockBatch(numbers, data, record_checksums(numbers, content))


# --------------------------------------------------------------------------------------------
# Finding the changed blocks
# --------------------------------------------------------------------------------------------

DiffMethod = Literal["birth", "maps"]


def diff_snapshots(
    volume: Volume,
    base: SnapshotRef | None,
    target: SnapshotRef,
    *,
    method: DiffMethod = "birth",
) -> BlockDiff:
    """The blocks snapshot ``target`` references and snapshot ``base`` (None: a baseline) does
    not, found by birth-CP tree walk (``"birth"``) or by allocation maps (``"maps"``)."""
    target_record = volume._record(target)
    base_record = None if base is None else volume._record(base)
    if method == "maps":
        target_map = volume._snapshot_map(target_record.sid)
        if base_record is not None:
            target_map &= ~volume._snapshot_map(base_record.sid)
        numbers = np.flatnonzero(target_map).astype(np.int64)
    elif method == "birth":
        info = FsInfo.decode(volume.space.read_block(target_record.fsinfo_vbn))
        threshold = -1
        if (
            base_record is not None
            and base_record.cp < target_record.cp
            and info.last_restore_cp <= base_record.cp
        ):
            threshold = base_record.cp
        visited = _walk_born_after(volume.space, target_record.fsinfo_vbn, info, threshold)
        if base_record is not None:
            visited = visited[~volume._snapshot_holds(base_record.sid, visited)]
        numbers = visited
    else:
        raise InvalidArgumentError(f"unknown diff method {method!r}: use 'birth' or 'maps'")
    header = _header(volume, base_record, target_record, numbers)
    return BlockDiff(volume, header, numbers, lambda: _freed(volume, base_record, target_record))


def _freed(volume: Volume, base: SnapshotRecord | None, target: SnapshotRecord) -> BlockNumbers:
    if base is None:
        return np.zeros(0, dtype=np.int64)
    gone = volume._snapshot_map(base.sid) & ~volume._snapshot_map(target.sid)
    return np.flatnonzero(gone).astype(np.int64)


def _header(
    volume: Volume,
    base: SnapshotRecord | None,
    target: SnapshotRecord,
    numbers: BlockNumbers,
) -> DiffHeader:
    return DiffHeader(
        volume.uuid,
        volume.name,
        None if base is None else volume.snapshot_info(base.sid),
        volume.snapshot_info(target.sid),
        target.fsinfo_vbn,
        volume.block_count,
        len(numbers),
        numbers_digest(numbers),
    )


def _walk_born_after(
    space: VolumeSpace, fsinfo_vbn: int, info: FsInfo, threshold: int
) -> BlockNumbers:
    """Every block of the tree rooted at ``fsinfo_vbn`` reachable through pointers born after
    CP ``threshold`` (the fsinfo block itself included), sorted and unique."""
    found: list[BlockNumbers] = [np.array([fsinfo_vbn], dtype=np.int64)]
    roots = np.stack([info.inode_file.pointers, info.map_file.pointers])
    meta, owners, data = _walk_roots(space, roots, threshold)
    found.append(meta)
    found.append(data)  # inode-file blocks (owner 0) and map-file blocks (owner 1)
    inode_blocks = data[owners == 0]
    step = 4096
    for lo in range(0, len(inode_blocks), step):
        blocks = space.read_blocks(inode_blocks[lo : lo + step])
        files = []
        for block in blocks:
            types = inode_types(block)
            live = types != FileType.FREE
            if live.any():
                files.append(inode_pointers(block)[live])
        if files:
            file_meta, _, file_data = _walk_roots(space, np.concatenate(files), threshold)
            found.append(file_meta)
            found.append(file_data)
    out: BlockNumbers = np.sort(np.concatenate(found))  # sort + mask: np.unique hashes, slower
    keep = out != 0
    keep[1:] &= out[1:] != out[:-1]
    nonzero: BlockNumbers = out[keep]
    return nonzero


def _walk_roots(
    space: VolumeSpace, roots: Pointers, threshold: int
) -> tuple[BlockNumbers, npt.NDArray[np.int64], BlockNumbers]:
    """Walk the pointer trees of many inodes at once (``roots``: ``(n, 6, 2)``), level by level
    with one batch read per level, keeping only pointers born after ``threshold``. Returns the
    indirect blocks visited, and the data blocks reached with the index of the root of each."""
    meta: list[BlockNumbers] = []
    reached: list[tuple[npt.NDArray[np.int64], Pointers]] = []

    def born(
        owners: npt.NDArray[np.int64], ptrs: Pointers
    ) -> tuple[npt.NDArray[np.int64], Pointers]:
        keep = (ptrs[:, 0] != 0) & (ptrs[:, 1] > threshold)
        return owners[keep], ptrs[keep]

    def expand(
        owners: npt.NDArray[np.int64], ptrs: Pointers
    ) -> tuple[npt.NDArray[np.int64], Pointers]:
        owners, ptrs = born(owners, ptrs)
        meta.append(ptrs[:, 0])
        if len(ptrs) == 0:
            return owners, np.zeros((0, 2), np.int64)
        raw = space.read_blocks(ptrs[:, 0])
        children = raw.view(np.int64).reshape(len(ptrs) * POINTERS_PER_BLOCK, 2)
        return born(np.repeat(owners, POINTERS_PER_BLOCK), children)

    owners = np.arange(len(roots), dtype=np.int64)
    reached.append(born(np.repeat(owners, NDIRECT), roots[:, :NDIRECT].reshape(-1, 2)))
    reached.append(expand(owners, roots[:, NDIRECT]))
    reached.append(expand(*expand(owners, roots[:, NDIRECT + 1])))
    data_owners = np.concatenate([o for o, _ in reached])
    data = np.concatenate([p[:, 0] for _, p in reached])
    return (np.concatenate(meta) if meta else np.zeros(0, np.int64)), data_owners, data


def full_scan_diff(
    volume: Volume, base: SnapshotRef | None, target: SnapshotRef, *, batch_blocks: int = 4096
) -> BlockDiff:
    """The baseline diff: checksum every in-use block of both snapshot images (their allocation
    maps say which) and keep the target's blocks that the base lacks or holds differently."""
    target_record = volume._record(target)
    base_record = None if base is None else volume._record(base)
    target_map = volume._snapshot_map(target_record.sid)
    base_map = (
        np.zeros_like(target_map) if base_record is None else volume._snapshot_map(base_record.sid)
    )
    base_sums = _checksum_all(volume.space, np.flatnonzero(base_map), batch_blocks)
    target_blocks = np.flatnonzero(target_map).astype(np.int64)
    target_sums = _checksum_all(volume.space, target_blocks, batch_blocks)
    base_lookup = np.zeros((len(target_map), 2), dtype=np.uint64)
    base_lookup[np.flatnonzero(base_map)] = base_sums
    in_base = base_map[target_blocks]
    same = in_base & (base_lookup[target_blocks] == target_sums).all(axis=1)
    numbers = target_blocks[~same]
    header = _header(volume, base_record, target_record, numbers)
    return BlockDiff(volume, header, numbers, lambda: _freed(volume, base_record, target_record))


def _checksum_all(space: VolumeSpace, numbers: npt.NDArray[np.intp], step: int) -> Checksums:
    out = np.zeros((len(numbers), 2), dtype=np.uint64)
    for lo in range(0, len(numbers), step):
        chunk = numbers[lo : lo + step].astype(np.int64)
        out[lo : lo + len(chunk)] = block_checksums(space.read_blocks(chunk))
    return out


# --------------------------------------------------------------------------------------------
# Applying a diff on a destination volume
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ApplyCheckpoint:
    """Progress of an apply: enough to resume it without re-sending committed blocks."""

    target_uuid: uuid.UUID
    cursor: int
    applied: int
    digest: int


class ApplySession:
    """Writes one diff stream into a destination volume and commits it as a snapshot.

    Life cycle: construct (validates and, with ``rollback``, first discards the destination's
    changes since its newest snapshot) -> :meth:`write` each batch, in order -> :meth:`commit`.
    Until the commit the destination's committed state is untouched.
    """

    def __init__(
        self,
        dest: Volume,
        header: DiffHeader,
        *,
        rollback: bool = False,
        checkpoint: ApplyCheckpoint | None = None,
    ) -> None:
        self.dest = dest
        self.header = header
        self._validate(rollback)
        if checkpoint is None:
            checkpoint = ApplyCheckpoint(header.target.uuid, -1, 0, 0)
        elif checkpoint.target_uuid != header.target.uuid:
            raise InvalidArgumentError("checkpoint belongs to another transfer")
        self._checkpoint = checkpoint

    @classmethod
    def resume(cls, dest: Volume, header: DiffHeader, checkpoint: ApplyCheckpoint) -> ApplySession:
        """A session that continues an interrupted one from ``checkpoint``; feed it
        ``diff.batches(start_after=checkpoint.cursor)``."""
        return cls(dest, header, checkpoint=checkpoint)

    def _validate(self, rollback: bool) -> None:
        dest, header = self.dest, self.header
        if dest._has_buffered_changes():
            raise StateError(f"volume {dest.name!r} has uncommitted changes; sync it first")
        known = {s.uuid: s for s in dest.snapshots()}
        if header.target.uuid in known:
            raise AlreadyExistsError(f"{dest.name!r} already holds snapshot {header.target.uuid}")
        if any(s.name == header.target.name for s in known.values()):
            raise AlreadyExistsError(f"{dest.name!r} has another snapshot {header.target.name!r}")
        if len(known) >= 255:
            raise TooManySnapshotsError(f"{dest.name!r} holds 255 snapshots")
        base_record = None
        if header.base is None:
            if known:
                raise StateError(
                    f"a baseline transfer needs a destination without snapshots; "
                    f"{dest.name!r} has {len(known)}"
                )
        else:
            if header.base.uuid not in known:
                raise NotFoundError(
                    f"{dest.name!r} lacks the common base snapshot {header.base.name!r} "
                    f"({header.base.uuid}); send a baseline first"
                )
            base_record = dest._record(header.base.uuid)
        if dest._active_outside_snapshots():
            if not rollback:
                raise StateError(
                    f"the active file system of {dest.name!r} changed since its newest "
                    "snapshot; pass rollback=True to discard those changes"
                )
            dest._rollback_active(base_record)
        if dest.block_count < header.block_count:
            dest.resize(header.block_count)

    def checkpoint(self) -> ApplyCheckpoint:
        """Progress so far (every batch :meth:`write` accepted)."""
        return self._checkpoint

    def write(self, batch: BlockBatch) -> None:
        """Verify and write one batch. :class:`IntegrityError` on a checksum mismatch and
        :class:`StateError` if a block is in use at the destination; nothing of the batch is
        written then."""
        numbers, data = batch.numbers, batch.data
        if data.shape != (len(numbers), BLOCK_SIZE) or batch.checksums.shape != (len(numbers), 2):
            raise InvalidArgumentError("batch arrays do not match in shape")
        if data.dtype != np.uint8:
            raise InvalidArgumentError(f"batch data must be uint8 bytes, got {data.dtype}")
        if len(numbers) == 0:
            return
        cursor = self._checkpoint.cursor
        if numbers[0] <= cursor or (len(numbers) > 1 and (np.diff(numbers) <= 0).any()):
            raise InvalidArgumentError("diff records must arrive in ascending block order")
        if numbers[0] < FIRST_DATA_BLOCK or numbers[-1] >= self.dest.block_count:
            raise InvalidArgumentError("diff record outside the destination's data blocks")
        content = content_sums(data)  # the one checksum pass at the destination
        mixed = mix_numbers(numbers)  # for the records' checksums and the checkpoint digest
        expected = record_checksums(numbers, content, mixed)
        bad = np.flatnonzero((expected != batch.checksums).any(axis=1))
        if len(bad):
            raise IntegrityError(
                f"diff record for block {int(numbers[bad[0]])} fails its checksum "
                f"({len(bad)} bad in this batch); nothing of the batch was written"
            )
        busy = np.flatnonzero(self.dest._blocks_in_use(numbers))
        if len(busy):
            # A block a destination root already references may only be sent again with the
            # bytes it holds (after a restore, the target shares blocks with an older common
            # snapshot); it is then left alone, never rewritten.
            _, held = read_summed(self.dest.space, numbers[busy])
            differ = held != content[busy]
            if differ.any():
                raise StateError(
                    f"block {int(numbers[busy[np.flatnonzero(differ)[0]]])} is in use on "
                    f"{self.dest.name!r} with other contents (the destination holds snapshots "
                    "the source deleted, or its own changes); delete them or roll back first"
                )
            fresh = np.ones(len(numbers), dtype=bool)
            fresh[busy] = False
            write_summed(self.dest.space, numbers[fresh], data[fresh], content[fresh])
        else:
            write_summed(self.dest.space, numbers, data, content)
        self._checkpoint = ApplyCheckpoint(
            self.header.target.uuid,
            int(numbers[-1]),
            self._checkpoint.applied + len(numbers),
            _mixes_digest(mixed, self._checkpoint.digest),
        )

    def commit(self) -> SnapshotInfo:
        """Check the stream was complete and switch the destination atomically to the target
        snapshot (its active file system becomes the snapshot's image)."""
        done = self._checkpoint
        if done.applied != self.header.record_count or done.digest != self.header.numbers_digest:
            raise IntegrityError(
                f"diff stream incomplete: {done.applied} of {self.header.record_count} records "
                "(or wrong block numbers); nothing committed"
            )
        return self.dest._commit_received(self.header.target, self.header.target_fsinfo)


def apply_diff(
    dest: Volume,
    header: DiffHeader,
    batches: Iterable[BlockBatch],
    *,
    rollback: bool = False,
) -> SnapshotInfo:
    """Apply a whole diff stream to ``dest`` and commit it; returns the new snapshot."""
    session = ApplySession(dest, header, rollback=rollback)
    for batch in batches:
        session.write(batch)
    return session.commit()


def replicate(
    source: Volume, dest: Volume, base: SnapshotRef | None, target: SnapshotRef
) -> SnapshotInfo:
    """Diff ``base`` -> ``target`` on ``source`` and apply it on ``dest`` (one transfer)."""
    diff = diff_snapshots(source, base, target)
    return apply_diff(dest, diff.header, diff.batches())


__all__ = [
    "ApplyCheckpoint",
    "ApplySession",
    "BlockBatch",
    "BlockDiff",
    "DiffHeader",
    "apply_diff",
    "diff_snapshots",
    "full_scan_diff",
    "numbers_digest",
    "record_checksums",
    "replicate",
]
