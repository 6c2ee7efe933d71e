"""The snapshot table: expandable-volume snapshots as single logical objects, in the RDB.

The seed's *snapshot data structure* has fields A-G: (A) the vserver, (B) the expandable volume,
(C) the overall snapshot's name, (D) its identifier, (E) the snapshot identifier of each member
volume's snapshot and (F) the volume each belongs to, (G) a timestamp. One row presents the
per-volume snapshots of many volumes on many nodes "as a single logical entity" with its own
name and identifier. Here a row is a :class:`SnapshotRecord`, kept in the replicated database
(table ``snapshot-table``, key ``<vserver>/<volume>/<id:010d>``) so that it survives node
restarts and every node's replica can answer for it. Besides A-G a row keeps who may read the
snapshot (``allowed_clients``; ``None``: every user of the vserver), the fence order and mode
the coordinator used, and each member's capture time.

Snapshot identifiers (field D) come from a per-volume counter in the RDB (``snapshot-id/<vs>/
<volume>``), start at 1 and are never reused; names are unique per expandable volume.

**State is computed, never stored** (:func:`snapshot_state`): from what exists now,

* ``invalid``: the namespace's (or the OLS's) per-volume snapshot is missing: no name can be
  resolved;
* ``partial``: data is missing: a data constituent listed in the row lost its per-volume
  snapshot (deleted, or the constituent was removed), or a data constituent that is a member now
  has none (it was added after the snapshot);
* ``valid``: every member, then and now, has its per-volume snapshot.

The N-module keeps a cache of the table (:class:`SnapshotCache`): the coordinator uploads each
new row to the caches after commit (seed: "that information is then uploaded to a cache of N
Blade"); a cache is also refilled from its node's replica whenever that replica has moved on.

Uses: the cluster's RDB, the per-volume snapshot service; the vocabulary and errors.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from xvol.errors import AlreadyExistsError, InvalidArgumentError, NotFoundError
from xvol.reference.cluster.cluster import Cluster
from xvol.reference.cluster.rdb import COUNTERS, RDBReplica, counter_value, read_expandable
from xvol.reference.snapshots.volume_snapshots import SnapshotDataMissingError, VolumeSnapshots
from xvol.vocabulary import (
    NAMESPACE_VOLUME,
    OLS_VOLUME,
    FenceMode,
    FenceOrder,
    VolumeRole,
    format_fence_order,
    role_of,
)

SNAPSHOT_TABLE = "snapshot-table"
MAX_SNAPSHOT_ID = (1 << 32) - 1


class SnapshotState(StrEnum):
    """What an expandable-volume snapshot is worth now (see the module text)."""

    VALID = "valid"
    PARTIAL = "partial"  # data missing
    INVALID = "invalid"  # namespace (or OLS) missing


@dataclass(frozen=True)
class VolumeSnapshot:
    """Fields E and F of one member: its per-volume snapshot ID (and UUID, which tells a
    deleted snapshot from a later one reusing its ID), the member and its volume ID, and when it
    was captured (simulated seconds)."""

    member: str
    volume_id: str
    sid: int
    uuid: str
    captured_at: float

    def to_json(self) -> dict[str, Any]:
        return {
            "member": self.member,
            "volume_id": self.volume_id,
            "sid": self.sid,
            "uuid": self.uuid,
            "captured_at": self.captured_at,
        }

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> VolumeSnapshot:
        return VolumeSnapshot(
            str(data["member"]),
            str(data["volume_id"]),
            int(data["sid"]),
            str(data["uuid"]),
            float(data["captured_at"]),
        )


@dataclass(frozen=True)
class SnapshotRecord:
    """One row of the snapshot table: fields A (vserver), B (volume), C (name), D
    (snapshot_id), E/F (volumes), G (timestamp: when the last member was captured), plus the
    readers allowed, and how it was taken."""

    vserver: str
    volume: str
    name: str
    snapshot_id: int
    volumes: tuple[VolumeSnapshot, ...]
    timestamp: float
    allowed_clients: frozenset[str] | None = None
    fence_order: str = ""
    fence_mode: str = FenceMode.HELD.value

    @property
    def key(self) -> str:
        return snapshot_key(self.vserver, self.volume, self.snapshot_id)

    def member(self, name: str) -> VolumeSnapshot:
        """The per-volume snapshot of member ``name``; :class:`SnapshotDataMissingError` if the
        snapshot has none."""
        for entry in self.volumes:
            if entry.member == name:
                return entry
        raise SnapshotDataMissingError(
            f"snapshot {self.name!r} of {self.vserver}/{self.volume} has no copy of {name}"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "vserver": self.vserver,
            "volume": self.volume,
            "name": self.name,
            "snapshot_id": self.snapshot_id,
            "volumes": [v.to_json() for v in self.volumes],
            "timestamp": self.timestamp,
            "allowed_clients": None
            if self.allowed_clients is None
            else sorted(self.allowed_clients),
            "fence_order": self.fence_order,
            "fence_mode": self.fence_mode,
        }

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> SnapshotRecord:
        clients = data.get("allowed_clients")
        return SnapshotRecord(
            vserver=str(data["vserver"]),
            volume=str(data["volume"]),
            name=str(data["name"]),
            snapshot_id=int(data["snapshot_id"]),
            volumes=tuple(VolumeSnapshot.from_json(v) for v in data["volumes"]),
            timestamp=float(data["timestamp"]),
            allowed_clients=None if clients is None else frozenset(str(c) for c in clients),
            fence_order=str(data.get("fence_order", "")),
            fence_mode=str(data.get("fence_mode", FenceMode.HELD.value)),
        )


def snapshot_key(vserver: str, volume: str, snapshot_id: int) -> str:
    """The RDB key of a snapshot table row."""
    return f"{vserver}/{volume}/{snapshot_id:010d}"


def _id_counter(vserver: str, volume: str) -> str:
    return f"snapshot-id/{vserver}/{volume}"


def check_snapshot_name(name: str) -> str:
    """``name`` if it can name an expandable-volume snapshot (1..64 printable characters, no
    ``/``), else :class:`InvalidArgumentError`."""
    if (
        not isinstance(name, str)
        or not 1 <= len(name.encode()) <= 64
        or "/" in name
        or not name.isprintable()
        or name.isdigit()
    ):
        raise InvalidArgumentError(
            f"a snapshot name is 1..64 printable bytes without '/' and not all digits: {name!r}"
        )
    return name


# --------------------------------------------------------------------------------------------
# Reading and writing the table
# --------------------------------------------------------------------------------------------


def records(replica: RDBReplica, vserver: str, volume: str) -> list[SnapshotRecord]:
    """Every row of one expandable volume in ``replica``, by snapshot ID."""
    prefix = f"{vserver}/{volume}/"
    return [
        SnapshotRecord.from_json(data)
        for key, data in replica.items(SNAPSHOT_TABLE)
        if key.startswith(prefix)
    ]


def find(replica: RDBReplica, vserver: str, volume: str, ref: str | int) -> SnapshotRecord:
    """The row named by ``ref`` (its name, or its snapshot ID as an int)."""
    for record in records(replica, vserver, volume):
        if (isinstance(ref, int) and record.snapshot_id == ref) or record.name == ref:
            return record
    raise NotFoundError(f"{vserver}/{volume} has no snapshot {ref!r}")


class SnapshotTable:
    """The snapshot table as the M-host of ``node`` reads and writes it."""

    def __init__(self, cluster: Cluster, node: str) -> None:
        self.cluster = cluster
        self.node = node

    def _replica(self) -> RDBReplica:
        return self.cluster.node(self.node).rdb

    def records(self, vserver: str, volume: str) -> list[SnapshotRecord]:
        """Every snapshot of one expandable volume, by ID."""
        read_expandable(self._replica(), vserver, volume)
        return records(self._replica(), vserver, volume)

    def get(self, vserver: str, volume: str, ref: str | int) -> SnapshotRecord:
        """The snapshot named by ``ref`` (name or ID)."""
        return find(self._replica(), vserver, volume, ref)

    def reserve(self, vserver: str, volume: str, name: str) -> int:
        """A fresh snapshot ID for new snapshot ``name`` (committed to the RDB counter at once,
        so an ID is never handed out twice); :class:`AlreadyExistsError` if the name is taken."""
        check_snapshot_name(name)
        read_expandable(self._replica(), vserver, volume)
        if any(r.name == name for r in records(self._replica(), vserver, volume)):
            raise AlreadyExistsError(f"{vserver}/{volume} already has a snapshot {name!r}")
        key = _id_counter(vserver, volume)
        sid = counter_value(self._replica(), key)
        if sid > MAX_SNAPSHOT_ID:
            raise InvalidArgumentError(f"{vserver}/{volume} has used every snapshot ID")
        self.cluster.rdb.commit(self.node, [(COUNTERS, key, sid + 1)])
        return sid

    def publish(self, record: SnapshotRecord) -> None:
        """Write a committed snapshot's row (the consistency group's commit)."""
        if any(
            r.name == record.name for r in records(self._replica(), record.vserver, record.volume)
        ):
            raise AlreadyExistsError(
                f"{record.vserver}/{record.volume} already has a snapshot {record.name!r}"
            )
        self.cluster.rdb.commit(self.node, [(SNAPSHOT_TABLE, record.key, record.to_json())])

    def remove(self, record: SnapshotRecord) -> None:
        """Delete a row (its per-volume snapshots are the caller's business)."""
        self.cluster.rdb.commit(self.node, [(SNAPSHOT_TABLE, record.key, None)])

    def state(self, record: SnapshotRecord) -> SnapshotState:
        """The snapshot's state now (see :func:`snapshot_state`)."""
        return snapshot_state(self.cluster, self.node, record)

    def missing(self, record: SnapshotRecord) -> list[str]:
        """The members whose per-volume snapshot is missing now (see the module text)."""
        return missing_members(self.cluster, self.node, record)


def missing_members(cluster: Cluster, node: str, record: SnapshotRecord) -> list[str]:
    """Members of the snapshot (then or now) without their per-volume snapshot, asking each
    owner over CF. A member whose node does not answer counts as present: its snapshot is
    not known to be lost (:class:`xvol.errors.UnavailableError` is not raised here)."""
    from xvol.errors import UnavailableError

    replica = cluster.node(node).rdb
    current = {m.name: m for m in read_expandable(replica, record.vserver, record.volume).members}
    calls = VolumeSnapshots(cluster, node, record.vserver, record.volume)
    missing: list[str] = []
    for entry in record.volumes:
        member = current.get(entry.member)
        if member is None or member.volume_id != entry.volume_id:
            missing.append(entry.member)
            continue
        try:
            present = calls.list(entry.volume_id)
        except UnavailableError:
            continue
        if not any(s["sid"] == entry.sid and s["uuid"] == entry.uuid for s in present):
            missing.append(entry.member)
    recorded = {v.member for v in record.volumes}
    missing.extend(
        name for name, m in current.items() if m.role is VolumeRole.DATA and name not in recorded
    )
    return sorted(set(missing), key=_member_order)


def snapshot_state_of(missing: Sequence[str]) -> SnapshotState:
    """The state given the missing members."""
    if any(m in (NAMESPACE_VOLUME, OLS_VOLUME) for m in missing):
        return SnapshotState.INVALID
    if missing:
        return SnapshotState.PARTIAL
    return SnapshotState.VALID


def snapshot_state(cluster: Cluster, node: str, record: SnapshotRecord) -> SnapshotState:
    """Valid, partial (data missing) or invalid (namespace or OLS missing), from what exists."""
    return snapshot_state_of(missing_members(cluster, node, record))


def _member_order(name: str) -> tuple[int, int]:
    role = role_of(name)
    if role is VolumeRole.NAMESPACE:
        return (0, 0)
    if role is VolumeRole.OLS:
        return (1, 0)
    return (2, int(name[2:]))


def describe_order(order: FenceOrder) -> str:
    """The fence order as the table records it."""
    return format_fence_order(order)


# --------------------------------------------------------------------------------------------
# The N-module's cache
# --------------------------------------------------------------------------------------------


class SnapshotCache:
    """One N-module's cache of the snapshot table. Invariant: answers equal what the node's
    RDB replica holds at the version the cache last saw; a read after the replica moved on
    refills the cache first."""

    def __init__(self, cluster: Cluster, node: str) -> None:
        self.cluster = cluster
        self.node = node
        self.version = -1
        self.rows: dict[tuple[str, str], dict[int, SnapshotRecord]] = {}
        self.hits = 0
        self.refills = 0
        self.uploads = 0

    def upload(self, record: SnapshotRecord) -> None:
        """The coordinator's notification of a new (or deleted: ``drop``) row."""
        self.uploads += 1
        self.rows.setdefault((record.vserver, record.volume), {})[record.snapshot_id] = record

    def drop(self, record: SnapshotRecord) -> None:
        """Forget a deleted row."""
        self.rows.get((record.vserver, record.volume), {}).pop(record.snapshot_id, None)

    def _fresh(self) -> None:
        replica = self.cluster.node(self.node).rdb
        if replica.version == self.version:
            self.hits += 1
            return
        self.refills += 1
        self.rows = {}
        for _key, data in replica.items(SNAPSHOT_TABLE):
            record = SnapshotRecord.from_json(data)
            self.rows.setdefault((record.vserver, record.volume), {})[record.snapshot_id] = record
        self.version = replica.version

    def lookup(self, vserver: str, volume: str, ref: str | int) -> SnapshotRecord:
        """The row named by ``ref`` (name or ID)."""
        self._fresh()
        rows = self.rows.get((vserver, volume), {})
        if isinstance(ref, int) and not isinstance(ref, bool) and ref in rows:
            return rows[ref]
        for record in rows.values():
            if record.name == ref:
                return record
        raise NotFoundError(f"{vserver}/{volume} has no snapshot {ref!r}")

    def list(self, vserver: str, volume: str) -> list[SnapshotRecord]:
        """Every cached row of one expandable volume, by ID."""
        self._fresh()
        return [r for _, r in sorted(self.rows.get((vserver, volume), {}).items())]
