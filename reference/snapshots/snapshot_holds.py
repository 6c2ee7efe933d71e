"""Snapshot holds: tags that pin an expandable-volume snapshot and its per-volume snapshots.

A *hold* keeps a snapshot from being deleted, as ``zfs hold`` does, or as a product marks busy a
snapshot its mirror owns. In the seed the mirroring coordinator transfers "from the common
snapshot" at both locations; that common snapshot (one row of the snapshot data structure,
fields A-G, over per-volume snapshots Sn, Sols, Sd1..SdN) must survive until the next transfer,
so a mirror relationship holds it at both sites; users may hold snapshots too.

Structure. One RDB table, :data:`HOLDS_TABLE`, key ``<vserver>/<volume>/<snapshot ID>/
<holder>``, one :class:`SnapshotHold` per (snapshot, holder). A hold also records the per-volume
snapshots of its row (volume ID and UUID of each member's copy: fields E and F), because rows
never change once published, and so the D-module that owns a member volume can refuse to
delete a held copy from its own RDB replica without reading the snapshot table.

Invariant (enforced where every delete passes, so that no path can break it):

* :meth:`~.snapshot_coordinator.SnapshotJobManager.delete` (every job manager: a site's, the
  web service's, an experiment's) refuses to delete a held expandable-volume snapshot;
* the D-module's ``snapshot`` service (:mod:`.volume_snapshots`) refuses to delete a per-volume
  snapshot that is a member of a held expandable-volume snapshot, whoever asks (the M-host, a
  coordinator dropping strays, a rollback, a test poking a data constituent);

both with :class:`SnapshotHeldError`, naming the snapshot and its holders, and change nothing.
Life cycle of a hold: placed (:meth:`~.snapshot_coordinator.SnapshotJobManager.hold`, or a
mirror's ``set_holds``) -> the snapshot cannot be deleted -> released by its holder (a mirror
releases its holds when it moves its base, is deleted, or is reversed by a resync) -> the
snapshot can be deleted again.

Uses: the cluster's RDB (replicas, commits), errors. (It reads snapshot table rows only as
values handed to it, so that the per-volume snapshot service below the table can use it.)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from xvol.errors import InvalidArgumentError, StateError
from xvol.reference.cluster.rdb import RDBReplica

if TYPE_CHECKING:
    from xvol.reference.snapshots.snapshot_table import SnapshotRecord

HOLDS_TABLE = "snapshot-holds"
"""RDB table of holds, key ``<vserver>/<volume>/<snapshot ID>/<holder>``."""


class SnapshotHeldError(StateError):
    """A held snapshot was to be deleted: refused, nothing changed. ``snapshot`` is its name
    and ``holders`` the tags that hold it (both empty when the error crossed a CF link, which
    carries the message only; the message names them)."""

    def __init__(self, message: str, snapshot: str = "", holders: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.snapshot = snapshot
        self.holders = holders


@dataclass(frozen=True)
class SnapshotHold:
    """``holder`` holds snapshot ``name`` (ID ``snapshot_id``) of ``vserver``/``volume``, and
    with it the per-volume snapshots ``members``: (volume ID, snapshot UUID) of each member."""

    vserver: str
    volume: str
    snapshot_id: int
    name: str
    holder: str
    members: tuple[tuple[str, str], ...] = ()

    @property
    def key(self) -> str:
        return f"{self.vserver}/{self.volume}/{self.snapshot_id}/{self.holder}"

    @staticmethod
    def of(record: SnapshotRecord, holder: str) -> SnapshotHold:
        """The hold of ``holder`` on snapshot table row ``record``."""
        check_holder(holder)
        return SnapshotHold(
            record.vserver,
            record.volume,
            record.snapshot_id,
            record.name,
            holder,
            tuple((v.volume_id, v.uuid) for v in record.volumes),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "vserver": self.vserver,
            "volume": self.volume,
            "snapshot_id": self.snapshot_id,
            "name": self.name,
            "holder": self.holder,
            "members": [list(m) for m in self.members],
        }

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> SnapshotHold:
        return SnapshotHold(
            str(data["vserver"]),
            str(data["volume"]),
            int(data["snapshot_id"]),
            str(data["name"]),
            str(data["holder"]),
            tuple((str(v), str(u)) for v, u in data.get("members", ())),
        )


def check_holder(holder: str) -> str:
    """``holder`` if it can tag a hold (a non-blank string), else :class:`InvalidArgumentError`."""
    if not isinstance(holder, str) or not holder.strip():
        raise InvalidArgumentError("a hold needs a non-empty holder tag")
    return holder


# --------------------------------------------------------------------------------------------
# Reading holds
# --------------------------------------------------------------------------------------------


def holds_in(replica: RDBReplica, vserver: str, volume: str) -> list[SnapshotHold]:
    """Every hold on ``vserver``/``volume``'s snapshots in ``replica``, by snapshot ID then
    holder."""
    prefix = f"{vserver}/{volume}/"
    found = [
        SnapshotHold.from_json(data)
        for key, data in replica.items(HOLDS_TABLE)
        if key.startswith(prefix)
    ]
    return sorted(found, key=lambda h: (h.snapshot_id, h.holder))


def member_holds(replica: RDBReplica, volume_id: str, snapshot_uuid: str) -> list[SnapshotHold]:
    """The holds whose snapshot has per-volume snapshot ``snapshot_uuid`` of volume
    ``volume_id`` as a member (what the D-module asks before deleting it)."""
    return sorted(
        (
            hold
            for _key, data in replica.items(HOLDS_TABLE)
            if (hold := SnapshotHold.from_json(data)).members
            and (volume_id, snapshot_uuid) in hold.members
        ),
        key=lambda h: (h.vserver, h.volume, h.snapshot_id, h.holder),
    )


# --------------------------------------------------------------------------------------------
# Refusing
# --------------------------------------------------------------------------------------------


def held_error(
    holds: Iterable[SnapshotHold], name: str, where: str = "", member: str = ""
) -> SnapshotHeldError:
    """The error that refuses to delete snapshot ``name`` held by ``holds`` (non-empty, all on
    that snapshot); ``where`` (e.g. ``"site A"``) and ``member`` (the per-volume snapshot asked
    for, when it is one member's copy) are named in the message when given."""
    found = list(holds)
    holders = tuple(h.holder for h in found)
    first = found[0]
    at = f" at {where}" if where else ""
    what = f"snapshot {name!r} (ID {first.snapshot_id}) of {first.vserver}/{first.volume}{at}"
    if member:
        what = f"{member} is a member of {what}, which"
    return SnapshotHeldError(
        f"{what} is held by {'; '.join(holders)}: it cannot be deleted; release the hold first "
        "(a mirror releases its holds when it is deleted or reversed by a resync)",
        name,
        holders,
    )


def refuse_held(holds: Iterable[SnapshotHold], record: SnapshotRecord, where: str = "") -> None:
    """:class:`SnapshotHeldError` if any of ``holds`` holds ``record`` (``where``: the site or
    cluster named in the message)."""
    mine = [h for h in holds if h.snapshot_id == record.snapshot_id]
    if mine:
        raise held_error(mine, record.name, where)


def refuse_member_held(
    replica: RDBReplica, volume_id: str, sid: int, snapshot_uuid: str, where: str = ""
) -> None:
    """:class:`SnapshotHeldError` if per-volume snapshot ``sid`` (UUID ``snapshot_uuid``) of
    volume ``volume_id`` is a member of a held expandable-volume snapshot."""
    found = member_holds(replica, volume_id, snapshot_uuid)
    if found:
        first = found[0]
        same = [
            h
            for h in found
            if (h.vserver, h.volume, h.snapshot_id)
            == (first.vserver, first.volume, first.snapshot_id)
        ]
        member = f"per-volume snapshot {sid} of volume {volume_id!r}"
        raise held_error(same, first.name, where, member)


__all__ = [
    "HOLDS_TABLE",
    "SnapshotHeldError",
    "SnapshotHold",
    "check_holder",
    "held_error",
    "holds_in",
    "member_holds",
    "refuse_held",
    "refuse_member_held",
]
