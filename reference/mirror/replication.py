"""The block replication protocol for one volume: baseline and incremental transfers over a
link, checked, checkpointed, resumable, with progress, lag and replica verification.

In the seed, a snapshot of the expandable volume at the primary location is transferred to the
remote location "using a block replication protocol ... that replicates information ... on a
block by block basis", one mirroring relationship per member volume (namespace, OLS store, data
constituents), driven by the mirroring coordinator at the destination through the source proxy.
This module is that protocol for ONE relationship; the coordinator (a later layer) runs one
:class:`BlockReplicator` per member volume, all sharing one :class:`~.link.Link`.

The two sides and their messages (every request is idempotent, so the link may retransmit it):

* the source side, :class:`ReplicationSource` (an :class:`~.link.Endpoint`), serves the volumes
  of the primary site by name: :class:`OpenTransfer` computes the block diff (a baseline when
  the destination holds no snapshot) with :func:`~xvol.reference.volume.diff.diff_snapshots` and
  answers its :class:`~xvol.reference.volume.diff.DiffHeader`; :class:`FetchBatch` reads records
  ``[position, position + count)`` of that diff (block numbers, bytes, checksums computed at the
  source); :class:`StatusRequest` tells how far a destination snapshot is behind the newest
  source snapshot; :class:`DigestRequest` and :class:`LeafRequest` serve replica verification.
* the destination side, :class:`BlockReplicator`, owns one destination volume (a replica) and
  one channel. :meth:`BlockReplicator.transfer` opens the diff from the destination's newest
  snapshot (the common snapshot; none: baseline) to a source snapshot, keeps up to ``window``
  batch requests in flight, applies the batches in order through an
  :class:`~xvol.reference.volume.diff.ApplySession` (which re-verifies every checksum:
  :class:`~xvol.errors.IntegrityError` on a mismatch, nothing of that batch written), saves a
  :class:`TransferCheckpoint` after every applied batch, and commits atomically as the new
  destination snapshot. Until the commit the destination's snapshots and active file system
  are untouched, so a cut link, a corrupt batch or a crash leaves it at its previous snapshot,
  readable. A transfer that ends early cancels the batch requests it still has in flight
  (:meth:`~.link.Pending.cancel`; a cut resets them all, see :mod:`.link`), so none of its
  requests runs at the source after it failed.

Resume. A checkpoint (cursor = last block number applied, records applied, digest of their block
numbers, plus the diff's identity: base, target, record count, digest of all block numbers) is
stored in a :class:`CheckpointStore` (in memory, or one JSON file per relationship written by
atomic rename). The next :meth:`~BlockReplicator.transfer` of the same relationship finds it and,
if the source still produces the same diff, asks only for records after the cursor: committed
blocks are never sent again. The checkpoint is "durable enough" in this model: it is saved after
the destination space accepted the batch's blocks (memory spaces and aggregates store them at
once); a real system must flush those blocks before persisting the checkpoint.

Progress and lag (what users of DR systems ask for): :meth:`BlockReplicator.progress` gives
records and bytes done and total, the rate of this attempt and the ETA at that rate (simulated
time; on a link without a clock both are None); :meth:`BlockReplicator.lag` gives how far the
destination's newest snapshot is behind the source's newest, in CPs, blocks/bytes to send, and
simulated seconds (the age, at the source, of the destination's newest snapshot).

Verification: :meth:`BlockReplicator.verify` compares one snapshot at both sites without moving
its bytes. Each site checksums the blocks the snapshot references (its allocation map) and
folds them into one BLAKE2b digest per *leaf* (``leaf_blocks`` consecutive block numbers: their
numbers and checksums); the destination fetches the source's leaf digests (16 bytes per leaf),
then only for differing leaves the per-block checksums, and reports exactly the differing blocks
(a block present at one site only counts as differing) and how many blocks the comparison
covered (every block the snapshot references at either site, equal or not).

Uses: numpy, hashlib, json, :mod:`.link`, :mod:`xvol.reference.volume` (volume, diff and its
record checksums), :mod:`xvol.reference.storage.checksum` (content sums), :mod:`xvol.errors`.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal, Protocol

import numpy as np
import numpy.typing as npt

from xvol.errors import (
    IntegrityError,
    InvalidArgumentError,
    NotFoundError,
)
from xvol.reference.mirror.link import Channel, Message, Pending, Process, wire_types
from xvol.reference.storage.block import BLOCK_SIZE, BlockNumbers
from xvol.reference.storage.checksum import read_summed
from xvol.reference.volume.diff import (
    ApplyCheckpoint,
    ApplySession,
    BlockBatch,
    BlockDiff,
    DiffHeader,
    diff_snapshots,
    record_checksums,
)
from xvol.reference.volume.volume import SnapshotInfo, SnapshotRef, Volume

DEFAULT_BATCH_BLOCKS = 1024
"""Records per :class:`FetchBatch` (4 MiB of block data)."""
DEFAULT_WINDOW = 4
"""Batch requests a transfer keeps in flight (hides the link's round-trip latency)."""
DEFAULT_LEAF_BLOCKS = 1024
"""Block numbers per verification leaf."""
RECORD_BYTES = BLOCK_SIZE + 8 + 16
"""Wire bytes of one diff record: block number, data, two 64-bit checksums."""
_INFO_BYTES = 128
"""Wire bytes of a snapshot description (UUID, name, CP, ID)."""

Checksums = npt.NDArray[np.uint64]

# --------------------------------------------------------------------------------------------
# Messages of the protocol
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OpenTransfer(Message):
    """Destination -> source: start (or resume) the diff ``base`` -> ``target`` of volume
    ``volume`` (``base`` None: a baseline; ``target`` None: the newest source snapshot), from
    the first record after block number ``start_after``."""

    volume: str
    base: uuid.UUID | None
    target: SnapshotRef | None
    start_after: int = -1


@dataclass(frozen=True)
class TransferOpened(Message):
    """Source -> destination: the diff's header and the position of the first record after
    ``start_after`` (records before it are not sent again)."""

    header: DiffHeader
    first: int

    def payload_size(self) -> int:
        """Two snapshot descriptions and the volume name."""
        return 2 * _INFO_BYTES + len(self.header.volume_name.encode())


@dataclass(frozen=True)
class FetchBatch(Message):
    """Destination -> source: records ``[position, position + count)`` of the diff
    ``base`` -> ``target`` of ``volume``."""

    volume: str
    base: uuid.UUID | None
    target: uuid.UUID
    position: int
    count: int


@dataclass(frozen=True)
class BatchReply(Message):
    """Source -> destination: the records starting at ``position``."""

    position: int
    batch: BlockBatch

    def payload_size(self) -> int:
        """Block numbers, data and checksums of every record."""
        return len(self.batch.numbers) * RECORD_BYTES


@dataclass(frozen=True)
class StatusRequest(Message):
    """Destination -> source: the newest snapshot of ``volume`` and how far snapshot ``since``
    (the destination's newest; None: none yet) is behind it."""

    volume: str
    since: uuid.UUID | None


@dataclass(frozen=True)
class StatusReply(Message):
    """Source -> destination: the newest source snapshot, the blocks a transfer from ``since``
    to it would send, and the source-side creation times of both snapshots (when known)."""

    newest: SnapshotInfo | None
    behind_blocks: int
    newest_time: float | None
    since_time: float | None

    def payload_size(self) -> int:
        """One snapshot description."""
        return _INFO_BYTES


@dataclass(frozen=True)
class DigestRequest(Message):
    """Destination -> source: the leaf digests of snapshot ``snapshot`` of ``volume``."""

    volume: str
    snapshot: uuid.UUID
    leaf_blocks: int


@dataclass(frozen=True)
class DigestReply(Message):
    """Source -> destination: the source volume's block count and one 16-byte digest per leaf
    (``digests``: ``(leaves, 16)`` uint8)."""

    block_count: int
    digests: npt.NDArray[np.uint8]

    def payload_size(self) -> int:
        """16 bytes per leaf."""
        return int(self.digests.size)


@dataclass(frozen=True)
class LeafRequest(Message):
    """Destination -> source: the per-block checksums of the given leaves."""

    volume: str
    snapshot: uuid.UUID
    leaf_blocks: int
    leaves: npt.NDArray[np.int64]

    def payload_size(self) -> int:
        """8 bytes per leaf index."""
        return 8 * len(self.leaves)


@dataclass(frozen=True)
class LeafReply(Message):
    """Source -> destination: block numbers the snapshot references in those leaves, and
    their checksums."""

    numbers: BlockNumbers
    checksums: Checksums

    def payload_size(self) -> int:
        """24 bytes per block."""
        return 24 * len(self.numbers)


wire_types(
    OpenTransfer,
    TransferOpened,
    FetchBatch,
    BatchReply,
    StatusRequest,
    StatusReply,
    DigestRequest,
    DigestReply,
    LeafRequest,
    LeafReply,
    DiffHeader,
    BlockBatch,
    SnapshotInfo,
)

# --------------------------------------------------------------------------------------------
# Snapshot digests for verification (used by both sides)
# --------------------------------------------------------------------------------------------


def snapshot_checksums(
    volume: Volume, snapshot: SnapshotRef, *, step: int = 4096
) -> tuple[BlockNumbers, Checksums]:
    """The block numbers snapshot ``snapshot`` references (ascending) and their ``(k, 2)``
    record checksums (:func:`~xvol.reference.volume.diff.record_checksums`), read from the
    volume's space (every read verified below, its content sums handed up)."""
    record = volume._record(snapshot)
    numbers = np.flatnonzero(volume._snapshot_map(record.sid)).astype(np.int64)
    sums = np.empty((len(numbers), 2), dtype=np.uint64)
    for lo in range(0, len(numbers), step):
        chunk = numbers[lo : lo + step]
        _, content = read_summed(volume.space, chunk)
        sums[lo : lo + len(chunk)] = record_checksums(chunk, content)
    return numbers, sums


def leaf_digests(
    numbers: BlockNumbers, checksums: Checksums, leaf_blocks: int, leaves: int
) -> npt.NDArray[np.uint8]:
    """``(leaves, 16)`` BLAKE2b digests: leaf ``i`` covers block numbers
    ``[i * leaf_blocks, (i + 1) * leaf_blocks)`` and hashes the numbers and checksums there."""
    if leaf_blocks < 1:
        raise InvalidArgumentError(f"leaf_blocks must be >= 1, got {leaf_blocks}")
    bounds = np.searchsorted(numbers, np.arange(leaves + 1, dtype=np.int64) * leaf_blocks)
    raw_numbers = numbers.astype("<i8")
    raw_sums = checksums.astype("<u8")
    out = np.empty((leaves, 16), dtype=np.uint8)
    for i in range(leaves):
        lo, hi = int(bounds[i]), int(bounds[i + 1])
        digest = hashlib.blake2b(digest_size=16)
        digest.update(raw_numbers[lo:hi].tobytes())
        digest.update(raw_sums[lo:hi].tobytes())
        out[i] = np.frombuffer(digest.digest(), dtype=np.uint8)
    return out


def _leaf_count(block_count: int, leaf_blocks: int) -> int:
    return -(-block_count // leaf_blocks)


def _in_leaves(
    numbers: BlockNumbers, leaf_blocks: int, leaves: npt.NDArray[np.int64]
) -> npt.NDArray[np.bool_]:
    """Which positions of ``numbers`` lie in one of ``leaves`` (a boolean mask)."""
    mask: npt.NDArray[np.bool_] = np.isin(numbers // leaf_blocks, leaves)
    return mask


# --------------------------------------------------------------------------------------------
# The source side
# --------------------------------------------------------------------------------------------


class ReplicationSource:
    """The primary site's endpoint of the block replication protocol: serves diffs, status and
    digests of the volumes it is given, by name.

    It caches the last few computed diffs (``cache_diffs``) so that batches of one transfer do
    not recompute it; an evicted diff is recomputed on demand (diffs are deterministic). It
    remembers when snapshots were taken (:meth:`create_snapshot` or :meth:`note_snapshot`),
    for the lag in seconds.
    """

    def __init__(
        self,
        volumes: Mapping[str, Volume],
        *,
        clock: Callable[[], float] | None = None,
        cache_diffs: int = 8,
    ) -> None:
        self.volumes: dict[str, Volume] = dict(volumes)
        self.clock = clock
        self.snapshot_times: dict[uuid.UUID, float] = {}
        self.records_served = 0
        """Diff records read and sent (retransmissions included)."""
        self._cache: OrderedDict[tuple[str, uuid.UUID | None, uuid.UUID], BlockDiff] = OrderedDict()
        self._cache_size = cache_diffs

    # -- the primary site's side of snapshot bookkeeping ------------------------------------

    def create_snapshot(self, volume: str, name: str) -> SnapshotInfo:
        """Take snapshot ``name`` of ``volume`` and remember the clock's time for it."""
        info = self._volume(volume).create_snapshot(name)
        if self.clock is not None:
            self.snapshot_times[info.uuid] = self.clock()
        return info

    def note_snapshot(self, info: SnapshotInfo, at: float) -> None:
        """Remember that snapshot ``info`` was taken at time ``at`` (taken by another layer)."""
        self.snapshot_times[info.uuid] = at

    # -- requests ----------------------------------------------------------------------------

    def handle(self, request: Message) -> Message:
        """Answer one protocol request (typed errors for unknown volumes or snapshots)."""
        if isinstance(request, FetchBatch):
            return self._fetch(request)
        if isinstance(request, OpenTransfer):
            return self._open(request)
        if isinstance(request, StatusRequest):
            return self._status(request)
        if isinstance(request, DigestRequest):
            return self._digests(request)
        if isinstance(request, LeafRequest):
            return self._leaves(request)
        raise InvalidArgumentError(f"the source does not serve {type(request).__name__}")

    def _volume(self, name: str) -> Volume:
        found = self.volumes.get(name)
        if found is None:
            raise NotFoundError(f"the source site has no volume {name!r}")
        return found

    def _diff(self, volume: str, base: uuid.UUID | None, target: uuid.UUID) -> BlockDiff:
        key = (volume, base, target)
        found = self._cache.get(key)
        if found is not None:
            self._cache.move_to_end(key)
            return found
        source = self._volume(volume)
        if base is not None:
            try:
                source.snapshot_info(base)
            except NotFoundError:
                raise NotFoundError(
                    f"source volume {volume!r} no longer holds the common snapshot {base}; "
                    "the relationship needs a new baseline (for a mirror: "
                    "MirroringCoordinator.update(vserver, volume, baseline=True)) or a resync"
                ) from None
        diff = diff_snapshots(source, base, target)
        self._cache[key] = diff
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return diff

    def _open(self, request: OpenTransfer) -> TransferOpened:
        source = self._volume(request.volume)
        if request.target is None:
            snapshots = source.snapshots()
            if not snapshots:
                raise NotFoundError(f"source volume {request.volume!r} has no snapshot to send")
            target = snapshots[-1]
        else:
            target = source.snapshot_info(request.target)
        if request.base == target.uuid:
            raise InvalidArgumentError(
                f"the destination already holds {target.name!r}, the newest source snapshot"
            )
        diff = self._diff(request.volume, request.base, target.uuid)
        first = int(np.searchsorted(diff.numbers, request.start_after, side="right"))
        return TransferOpened(diff.header, first)

    def _fetch(self, request: FetchBatch) -> BatchReply:
        diff = self._diff(request.volume, request.base, request.target)
        total = len(diff.numbers)
        if not (0 <= request.position < total and request.count >= 1):
            raise InvalidArgumentError(
                f"records [{request.position}, +{request.count}) outside a {total}-record diff"
            )
        after = int(diff.numbers[request.position - 1]) if request.position else -1
        batch = next(diff.batches(request.count, start_after=after))
        self.records_served += len(batch.numbers)
        return BatchReply(request.position, batch)

    def _status(self, request: StatusRequest) -> StatusReply:
        source = self._volume(request.volume)
        snapshots = source.snapshots()
        if not snapshots:
            return StatusReply(None, 0, None, None)
        newest = snapshots[-1]
        since = request.since
        if since is not None and not any(s.uuid == since for s in snapshots):
            since = None  # the common snapshot is gone: everything is behind
        behind = 0
        if since != newest.uuid:
            behind = len(diff_snapshots(source, since, newest.uuid).numbers)
        return StatusReply(
            newest,
            behind,
            self.snapshot_times.get(newest.uuid),
            None if request.since is None else self.snapshot_times.get(request.since),
        )

    def _digests(self, request: DigestRequest) -> DigestReply:
        source = self._volume(request.volume)
        numbers, sums = snapshot_checksums(source, request.snapshot)
        leaves = _leaf_count(source.block_count, request.leaf_blocks)
        return DigestReply(
            source.block_count, leaf_digests(numbers, sums, request.leaf_blocks, leaves)
        )

    def _leaves(self, request: LeafRequest) -> LeafReply:
        numbers, sums = snapshot_checksums(self._volume(request.volume), request.snapshot)
        keep = _in_leaves(numbers, request.leaf_blocks, request.leaves)
        return LeafReply(numbers[keep], sums[keep])


# --------------------------------------------------------------------------------------------
# Checkpoints at the destination
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TransferCheckpoint:
    """What a destination keeps to resume a transfer: which diff (base, target, its record
    count and block-number digest) and how far the apply got."""

    relationship: str
    base: uuid.UUID | None
    target: uuid.UUID
    target_name: str
    record_count: int
    numbers_digest: int
    apply: ApplyCheckpoint

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict."""
        return {
            "relationship": self.relationship,
            "base": None if self.base is None else str(self.base),
            "target": str(self.target),
            "target_name": self.target_name,
            "record_count": self.record_count,
            "numbers_digest": self.numbers_digest,
            "cursor": self.apply.cursor,
            "applied": self.apply.applied,
            "digest": self.apply.digest,
        }

    @staticmethod
    def from_json(raw: Mapping[str, object]) -> TransferCheckpoint:
        """The checkpoint a :meth:`to_json` dict describes."""
        target = uuid.UUID(str(raw["target"]))
        base = raw["base"]
        return TransferCheckpoint(
            str(raw["relationship"]),
            None if base is None else uuid.UUID(str(base)),
            target,
            str(raw["target_name"]),
            _int(raw["record_count"]),
            _int(raw["numbers_digest"]),
            ApplyCheckpoint(target, _int(raw["cursor"]), _int(raw["applied"]), _int(raw["digest"])),
        )


def _int(value: object) -> int:
    if not isinstance(value, int):
        raise IntegrityError(f"checkpoint field holds {value!r}, not an integer")
    return value


class CheckpointStore(Protocol):
    """Where a destination keeps one :class:`TransferCheckpoint` per relationship."""

    def load(self, relationship: str) -> TransferCheckpoint | None:
        """The stored checkpoint, or None."""
        ...

    def save(self, checkpoint: TransferCheckpoint) -> None:
        """Replace the relationship's checkpoint (atomically)."""
        ...

    def clear(self, relationship: str) -> None:
        """Forget the relationship's checkpoint (no error if none)."""
        ...


class MemoryCheckpointStore:
    """Checkpoints in a dict: survive a cut link, not a crash of the destination process."""

    def __init__(self) -> None:
        self.saved: dict[str, TransferCheckpoint] = {}
        self.saves = 0

    def load(self, relationship: str) -> TransferCheckpoint | None:
        """The stored checkpoint, or None."""
        return self.saved.get(relationship)

    def save(self, checkpoint: TransferCheckpoint) -> None:
        """Replace the relationship's checkpoint."""
        self.saved[checkpoint.relationship] = checkpoint
        self.saves += 1

    def clear(self, relationship: str) -> None:
        """Forget the relationship's checkpoint."""
        self.saved.pop(relationship, None)


class FileCheckpointStore:
    """One JSON file per relationship in ``directory``, replaced by atomic rename (a crash
    leaves the old or the new checkpoint, never a torn one)."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)

    def _path(self, relationship: str) -> Path:
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in relationship)
        return self.directory / f"{safe}.checkpoint.json"

    def load(self, relationship: str) -> TransferCheckpoint | None:
        """The stored checkpoint, or None; :class:`IntegrityError` if the file is damaged."""
        path = self._path(relationship)
        if not path.exists():
            return None
        try:
            raw = json.loads(path.read_text())
            return TransferCheckpoint.from_json(raw)
        except (ValueError, KeyError, TypeError) as exc:
            raise IntegrityError(f"checkpoint file {path} is damaged: {exc}") from exc

    def save(self, checkpoint: TransferCheckpoint) -> None:
        """Write the checkpoint to a temporary file, flush it, and rename it into place."""
        path = self._path(checkpoint.relationship)
        temporary = path.with_suffix(".tmp")
        with open(temporary, "w") as out:
            json.dump(checkpoint.to_json(), out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)

    def clear(self, relationship: str) -> None:
        """Delete the relationship's checkpoint file."""
        self._path(relationship).unlink(missing_ok=True)


# --------------------------------------------------------------------------------------------
# Progress, lag, results
# --------------------------------------------------------------------------------------------

TransferState = Literal["idle", "running", "done", "failed"]


@dataclass(frozen=True)
class TransferProgress:
    """A transfer's progress at time ``now`` (link time; seconds).

    Invariants: ``bytes_done == records_done * BLOCK_SIZE``, ``bytes_total == records_total *
    BLOCK_SIZE``, ``records_resumed <= records_done <= records_total``; ``rate`` (block-data
    bytes per second of this attempt, the resumed records excluded) and ``eta`` (``(bytes_total
    - bytes_done) / rate``) are None when the link has no clock or no time has passed.
    """

    relationship: str
    state: TransferState
    target: SnapshotInfo | None
    records_total: int
    records_done: int
    records_resumed: int
    wire_bytes: int
    started: float
    now: float
    error: str | None = None

    @property
    def bytes_total(self) -> int:
        """Block data the transfer moves in all (resumed records included)."""
        return self.records_total * BLOCK_SIZE

    @property
    def bytes_done(self) -> int:
        """Block data applied at the destination so far."""
        return self.records_done * BLOCK_SIZE

    @property
    def fraction(self) -> float:
        """Share of the records applied (1.0 for an empty diff)."""
        return 1.0 if self.records_total == 0 else self.records_done / self.records_total

    @property
    def elapsed(self) -> float:
        """Seconds since this attempt started."""
        return self.now - self.started

    @property
    def rate(self) -> float | None:
        """Block-data bytes per second of this attempt (None without time)."""
        if self.elapsed <= 0:
            return None
        return (self.records_done - self.records_resumed) * BLOCK_SIZE / self.elapsed

    @property
    def eta(self) -> float | None:
        """Seconds to the end at the current rate (0.0 when done; None when unknown)."""
        if self.records_done == self.records_total:
            return 0.0
        rate = self.rate
        if rate is None or rate == 0:
            return None
        return (self.bytes_total - self.bytes_done) / rate


@dataclass(frozen=True)
class Lag:
    """How far a destination is behind its source: the newest snapshot at each site, CPs
    between them, records (and their bytes) a transfer would send, and the age in seconds of
    the destination's newest snapshot at the source (None when unknown or no clock)."""

    source_newest: SnapshotInfo | None
    dest_newest: SnapshotInfo | None
    cps: int
    blocks: int
    seconds: float | None

    @property
    def bytes(self) -> int:
        """Block data a transfer would send."""
        return self.blocks * BLOCK_SIZE


@dataclass(frozen=True)
class TransferResult:
    """A finished transfer: the snapshot committed at the destination, the base it started
    from, records in the diff, records sent in this attempt, records a resume skipped, wire
    bytes and link seconds of this attempt."""

    snapshot: SnapshotInfo
    base: SnapshotInfo | None
    records: int
    records_sent: int
    records_resumed: int
    wire_bytes: int
    seconds: float


@dataclass(frozen=True)
class VerifyReport:
    """The comparison of one snapshot at both sites: leaves compared, leaves and blocks that
    differ (``differing_blocks`` ascending), the blocks the comparison covered, and the wire
    bytes it cost.

    ``blocks_compared`` counts every block the snapshot references at either site (the union of
    both allocation maps): each was checksummed at its site and folded into a leaf digest that
    was compared, so it says how much the verification covered whether or not the replica is
    equal. ``blocks_rechecked`` counts the blocks of differing leaves whose per-block checksums
    crossed the link and were compared one by one (0 when the replica is equal)."""

    snapshot: SnapshotInfo
    leaf_blocks: int
    leaves: int
    differing_leaves: tuple[int, ...]
    differing_blocks: BlockNumbers
    blocks_compared: int
    wire_bytes: int
    blocks_rechecked: int = 0

    @property
    def equal(self) -> bool:
        """Whether the replica equals the source's snapshot."""
        return not self.differing_leaves


# --------------------------------------------------------------------------------------------
# The destination side
# --------------------------------------------------------------------------------------------


class BlockReplicator:
    """The destination side of one mirroring relationship: source volume ``source_volume``
    (by name, at the other end of ``channel``) -> destination volume ``dest``.

    Life cycle: construct once per relationship -> :meth:`transfer` as often as the schedule
    says (each returns after committing one snapshot, or raises leaving ``dest`` at its
    previous snapshot and a checkpoint for the next attempt) -> :meth:`verify` / :meth:`lag` at
    any time between transfers. Methods returning a :data:`~.link.Process` are generators: run
    them with ``env.process(...)`` on a simulated link or :func:`~.link.run_sync` otherwise.
    """

    def __init__(
        self,
        channel: Channel,
        source_volume: str,
        dest: Volume,
        *,
        checkpoints: CheckpointStore | None = None,
        batch_blocks: int = DEFAULT_BATCH_BLOCKS,
        window: int = DEFAULT_WINDOW,
        on_progress: Callable[[TransferProgress], None] | None = None,
    ) -> None:
        if batch_blocks < 1 or window < 1:
            raise InvalidArgumentError(
                f"batch_blocks and window must be >= 1, got {batch_blocks} and {window}"
            )
        self.channel = channel
        self.source_volume = source_volume
        self.dest = dest
        self.checkpoints: CheckpointStore = checkpoints or MemoryCheckpointStore()
        self.batch_blocks = batch_blocks
        self.window = window
        self.on_progress = on_progress
        self._progress = TransferProgress(channel.name, "idle", None, 0, 0, 0, 0, 0.0, 0.0)
        self._start_bytes = channel.stats.bytes

    @property
    def relationship(self) -> str:
        """The relationship's name (its channel's)."""
        return self.channel.name

    def newest_snapshot(self) -> SnapshotInfo | None:
        """The destination's newest snapshot (highest CP), the base of the next transfer."""
        snapshots = self.dest.snapshots()
        return snapshots[-1] if snapshots else None

    # -- progress ------------------------------------------------------------------------------

    def progress(self) -> TransferProgress:
        """The current (or last) transfer's progress, as of now."""
        return replace(self._progress, now=self.channel.now())

    def _publish(self, progress: TransferProgress) -> None:
        """Record ``progress`` (stamped with the link's time and wire bytes) and pass it on."""
        self._progress = replace(
            progress,
            now=self.channel.now(),
            wire_bytes=self.channel.stats.bytes - self._start_bytes,
        )
        if self.on_progress is not None:
            self.on_progress(self._progress)

    # -- one transfer ----------------------------------------------------------------------------

    def transfer(
        self, target: SnapshotRef | None = None, *, rollback: bool = False
    ) -> Process[TransferResult]:
        """Bring ``dest`` to source snapshot ``target`` (None: the newest; when an interrupted
        transfer left a checkpoint, None continues that one), incrementally from the
        destination's newest snapshot, or as a baseline when it has none. ``rollback``
        discards destination changes made since its newest snapshot (see ApplySession)."""
        channel, rel = self.channel, self.relationship
        start_time = channel.now()
        self._start_bytes = channel.stats.bytes
        base = self.newest_snapshot()
        base_uuid = None if base is None else base.uuid
        stored = self._usable_checkpoint(target, base_uuid)
        self._publish(TransferProgress(rel, "running", None, 0, 0, 0, 0, start_time, start_time))
        try:
            opened: TransferOpened | None = None
            if stored is not None:
                try:
                    opened = yield from self._open(base_uuid, stored.target, stored.apply.cursor)
                except NotFoundError:
                    opened = None  # the source deleted that snapshot: start over
                if opened is not None and not _matches(stored, opened):
                    opened = None
                if opened is None:
                    self.checkpoints.clear(rel)
                    stored = None
            if opened is None:
                opened = yield from self._open(base_uuid, target, -1)
            header = opened.header
            if stored is not None:
                session = ApplySession.resume(self.dest, header, stored.apply)
            else:
                session = ApplySession(self.dest, header, rollback=rollback)
            resumed = opened.first
            self._publish(
                replace(
                    self._progress,
                    target=header.target,
                    records_total=header.record_count,
                    records_done=resumed,
                    records_resumed=resumed,
                )
            )
            yield from self._receive(session, header, opened.first)
            snapshot = session.commit()
        except Exception as exc:
            self._publish(replace(self._progress, state="failed", error=str(exc)))
            raise
        self.checkpoints.clear(rel)
        self._publish(replace(self._progress, state="done"))
        wire = self._progress.wire_bytes
        return TransferResult(
            snapshot,
            header.base,
            header.record_count,
            header.record_count - resumed,
            resumed,
            wire,
            channel.now() - start_time,
        )

    def _usable_checkpoint(
        self, target: SnapshotRef | None, base: uuid.UUID | None
    ) -> TransferCheckpoint | None:
        """The stored checkpoint if it continues a transfer from ``base`` to ``target``;
        a stale one is dropped."""
        stored = self.checkpoints.load(self.relationship)
        if stored is None:
            return None
        held = {s.uuid for s in self.dest.snapshots()}
        wanted = target is None or target in (stored.target, stored.target_name)
        if stored.base != base or stored.target in held or not wanted:
            self.checkpoints.clear(self.relationship)
            return None
        return stored

    def _open(
        self, base: uuid.UUID | None, target: SnapshotRef | None, start_after: int
    ) -> Process[TransferOpened]:
        reply = yield from self.channel.request(
            OpenTransfer(self.source_volume, base, target, start_after)
        )
        if not isinstance(reply, TransferOpened):
            raise IntegrityError(f"expected TransferOpened, got {type(reply).__name__}")
        if (reply.header.base is None and base is not None) or (
            reply.header.base is not None and reply.header.base.uuid != base
        ):
            raise IntegrityError("the source answered a diff from another base snapshot")
        return reply

    def _receive(self, session: ApplySession, header: DiffHeader, first: int) -> Process[None]:
        """Fetch records ``[first, record_count)`` with up to ``window`` requests in flight,
        apply them in order and checkpoint after every batch. Whatever way it ends, no request
        of it is left in flight (those not awaited are cancelled)."""
        in_flight: deque[tuple[int, int, Pending]] = deque()
        try:
            yield from self._fetch_and_apply(session, header, in_flight, first)
        finally:
            for _at, _count, pending in in_flight:  # left early: nothing of ours runs later
                pending.cancel()

    def _fetch_and_apply(
        self,
        session: ApplySession,
        header: DiffHeader,
        in_flight: deque[tuple[int, int, Pending]],
        position: int,
    ) -> Process[None]:
        """The loop of :meth:`_receive`; ``in_flight`` is shared so that the caller can cancel
        what is left when this loop raises."""
        total = header.record_count
        base = None if header.base is None else header.base.uuid
        while in_flight or position < total:
            while len(in_flight) < self.window and position < total:
                count = min(self.batch_blocks, total - position)
                request = FetchBatch(self.source_volume, base, header.target.uuid, position, count)
                in_flight.append((position, count, self.channel.start(request)))
                position += count
            at, count, pending = in_flight.popleft()
            reply = yield from pending.result()
            if (
                not isinstance(reply, BatchReply)
                or reply.position != at
                or len(reply.batch.numbers) != count
            ):
                raise IntegrityError(f"batch reply for records [{at}, +{count}) is malformed")
            session.write(reply.batch)
            done = session.checkpoint()
            self.checkpoints.save(
                TransferCheckpoint(
                    self.relationship,
                    base,
                    header.target.uuid,
                    header.target.name,
                    total,
                    header.numbers_digest,
                    done,
                )
            )
            self._publish(replace(self._progress, records_done=done.applied))

    # -- lag ---------------------------------------------------------------------------------------

    def lag(self) -> Process[Lag]:
        """How far the destination's newest snapshot is behind the source's newest."""
        mine = self.newest_snapshot()
        reply = yield from self.channel.request(
            StatusRequest(self.source_volume, None if mine is None else mine.uuid)
        )
        if not isinstance(reply, StatusReply):
            raise IntegrityError(f"expected StatusReply, got {type(reply).__name__}")
        newest = reply.newest
        cps = 0 if newest is None else newest.cp - (0 if mine is None else mine.cp)
        seconds = None
        if self.channel.link.timed and reply.since_time is not None:
            seconds = self.channel.now() - reply.since_time
        return Lag(newest, mine, max(cps, 0), reply.behind_blocks, seconds)

    # -- verification --------------------------------------------------------------------------

    def verify(
        self, snapshot: SnapshotRef | None = None, *, leaf_blocks: int = DEFAULT_LEAF_BLOCKS
    ) -> Process[VerifyReport]:
        """Compare destination snapshot ``snapshot`` (None: the newest) with the source's
        snapshot of the same UUID by leaf digests, then per-block checksums of differing
        leaves only; reports the differing blocks."""
        if leaf_blocks < 1:
            raise InvalidArgumentError(f"leaf_blocks must be >= 1, got {leaf_blocks}")
        info = self.newest_snapshot() if snapshot is None else self.dest.snapshot_info(snapshot)
        if info is None:
            raise NotFoundError(f"destination {self.dest.name!r} holds no snapshot to verify")
        start_bytes = self.channel.stats.bytes
        numbers, sums = snapshot_checksums(self.dest, info.uuid)
        reply = yield from self.channel.request(
            DigestRequest(self.source_volume, info.uuid, leaf_blocks)
        )
        if not isinstance(reply, DigestReply):
            raise IntegrityError(f"expected DigestReply, got {type(reply).__name__}")
        leaves = max(
            _leaf_count(self.dest.block_count, leaf_blocks),
            _leaf_count(reply.block_count, leaf_blocks),
        )
        mine = leaf_digests(numbers, sums, leaf_blocks, leaves)
        theirs = leaf_digests(numbers[:0], sums[:0], leaf_blocks, leaves)  # empty leaves
        theirs[: len(reply.digests)] = reply.digests
        differing = np.flatnonzero((mine != theirs).any(axis=1)).astype(np.int64)
        blocks: BlockNumbers = np.zeros(0, dtype=np.int64)
        rechecked = 0
        keep = np.zeros(len(numbers), dtype=bool)
        if len(differing):
            detail = yield from self.channel.request(
                LeafRequest(self.source_volume, info.uuid, leaf_blocks, differing)
            )
            if not isinstance(detail, LeafReply):
                raise IntegrityError(f"expected LeafReply, got {type(detail).__name__}")
            keep = _in_leaves(numbers, leaf_blocks, differing)
            blocks, rechecked = _differing_blocks(
                numbers[keep], sums[keep], detail.numbers, detail.checksums
            )
        # equal leaves hold the same block numbers at both sites; differing ones the union
        covered = int(len(numbers) - keep.sum()) + rechecked
        return VerifyReport(
            info,
            leaf_blocks,
            leaves,
            tuple(int(i) for i in differing),
            blocks,
            covered,
            self.channel.stats.bytes - start_bytes,
            rechecked,
        )


def _matches(stored: TransferCheckpoint, opened: TransferOpened) -> bool:
    """Whether the source's diff is the one the checkpoint was taken in."""
    header = opened.header
    return (
        header.target.uuid == stored.target
        and header.record_count == stored.record_count
        and header.numbers_digest == stored.numbers_digest
        and opened.first == stored.apply.applied
    )


def _differing_blocks(
    mine: BlockNumbers, my_sums: Checksums, theirs: BlockNumbers, their_sums: Checksums
) -> tuple[BlockNumbers, int]:
    """Block numbers present at one side only, or at both with different checksums; and how
    many distinct blocks were compared."""
    union = np.union1d(mine, theirs)
    at_mine, at_theirs = np.searchsorted(union, mine), np.searchsorted(union, theirs)
    in_mine = np.zeros(len(union), dtype=bool)
    in_theirs = np.zeros(len(union), dtype=bool)
    in_mine[at_mine] = True
    in_theirs[at_theirs] = True
    a = np.zeros((len(union), 2), dtype=np.uint64)
    b = np.zeros((len(union), 2), dtype=np.uint64)
    a[at_mine] = my_sums
    b[at_theirs] = their_sums
    differ: BlockNumbers = union[(in_mine != in_theirs) | (a != b).any(axis=1)]
    return differ, len(union)


__all__ = [
    "DEFAULT_BATCH_BLOCKS",
    "DEFAULT_LEAF_BLOCKS",
    "DEFAULT_WINDOW",
    "RECORD_BYTES",
    "BatchReply",
    "BlockReplicator",
    "CheckpointStore",
    "DigestReply",
    "DigestRequest",
    "FetchBatch",
    "FileCheckpointStore",
    "Lag",
    "LeafReply",
    "LeafRequest",
    "MemoryCheckpointStore",
    "OpenTransfer",
    "ReplicationSource",
    "StatusReply",
    "StatusRequest",
    "TransferCheckpoint",
    "TransferOpened",
    "TransferProgress",
    "TransferResult",
    "VerifyReport",
    "leaf_digests",
    "snapshot_checksums",
]
