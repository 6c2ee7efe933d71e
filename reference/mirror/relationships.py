"""The mirroring coordinator's tables in the destination's replicated database.

Three tables, all stored in the destination cluster's RDB (so every M-host of that cluster sees
them and they survive a node restart):

* the **destination volume table** (seed: "the mapped volume identifiers may be stored as part of
  destination volume data structure"): destination volume ID -> member name and the source
  volume ID it mirrors (:class:`DestinationVolume`). Invariant: each destination member volume
  of a mirrored expandable volume maps to exactly one source member of the same name.
* the **relationship table** (seed: mirroring data structure, fields A-J), one row per member
  volume (:class:`Relationship`): A destination cluster, B destination expandable volume,
  C destination repository, D destination vserver, E source cluster, F source expandable
  volume, G source repository, H source vserver, I the kind of relationship (a mirror), J the
  configuration (:class:`MirrorConfig`: schedule, allowed clients, throttle, retention). Each
  row also names its member and both volume IDs. Invariant: a row exists for a member before
  the first block of that member is transferred ("create or confirm relationships").
* the **mirror groups** (:class:`MirrorGroup`), one row per mirrored expandable volume: the
  state of the mirror as a whole (``mirrored`` or ``broken``), the exported snapshot (newest
  complete on every volume; the N-module's redirect), the update in flight (its target
  snapshot, so a cut update resumes the same target, and whether it is an in-place baseline),
  and the counters copied from the source.

Life cycle: :meth:`MirrorTables.save_group` at ``initialize`` -> rows confirmed and added at
each update -> state ``broken`` at failover -> at resync the rows of the new destination are
written (reversed) and the old destination's group is removed; or, once broken, the mirror is
deleted (:meth:`~.coordinator.MirroringCoordinator.delete`) and its rows go.

Snapshot holds. A live relationship *holds* its common base snapshot at the source and at the
destination (:class:`~.site.SnapshotHold`, the tag :func:`mirror_holder` names the relationship),
so that neither site can delete the snapshot the next update starts from. The holds follow the
group: placed on the target when an update starts, moved to the new exported snapshot when it
commits, kept through a failover (the exported snapshot is the common base a resync needs),
released by the resync that reverses the relationship and by the deletion of the mirror.

Uses: the cluster's RDB; errors.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from xvol.errors import InvalidArgumentError, NotFoundError
from xvol.reference.cluster.cluster import Cluster

DEST_VOLUME_TABLE = "mirror-dest-volumes"
RELATIONSHIP_TABLE = "mirror-relationships"
GROUP_TABLE = "mirror-groups"
MIRROR = "mirror"
"""Field I: the kind of every relationship here."""


class MirrorState(StrEnum):
    """State of a mirrored expandable volume at its destination."""

    MIRRORED = "mirrored"  # read-only, redirected to the exported snapshot
    BROKEN = "broken"  # failed over: read-write


class UnknownRelationshipError(NotFoundError):
    """No mirror relationship for that destination expandable volume."""


DEFAULT_RETAIN = 2
"""Snapshots the mirror took that a relationship keeps by default at both sites: the exported
one (the common base of the next update) and the one before it. Like the default policies of
snapshot-mirroring products, which keep one or two mirror-created snapshots, it bounds a
scheduled mirror's snapshots however long it runs (a volume holds at most 255)."""


def mirror_holder(
    source_cluster: str,
    source_vserver: str,
    source_volume: str,
    dest_cluster: str,
    dest_vserver: str,
    dest_volume: str,
) -> str:
    """The hold tag of the mirror relationship from ``source_cluster``'s
    ``source_vserver``/``source_volume`` to ``dest_cluster``'s ``dest_vserver``/``dest_volume``
    (the same tag at both sites)."""
    return (
        f"mirror {source_cluster}:{source_vserver}/{source_volume} -> "
        f"{dest_cluster}:{dest_vserver}/{dest_volume}"
    )


@dataclass(frozen=True)
class MirrorConfig:
    """Field J: how often to update (simulated seconds; None: on demand, see
    :meth:`~.coordinator.MirroringCoordinator.run_schedule`), who may read the mirrored
    snapshots (None: the vserver's users), the throttle in bytes/s (None: none), and how many
    of the snapshots the mirror itself took (``mirror.<site>.<n>``) to keep at both sites
    (default :data:`DEFAULT_RETAIN`; None: keep all, explicitly; the exported one, the common
    base of the next update, is always kept, and so is any snapshot held by someone else; user
    snapshots are never pruned)."""

    schedule: float | None = None
    allowed_clients: frozenset[str] | None = None
    throttle: float | None = None
    retain: int | None = DEFAULT_RETAIN

    def __post_init__(self) -> None:
        if self.schedule is not None and self.schedule <= 0:
            raise InvalidArgumentError(f"schedule must be > 0 seconds, got {self.schedule}")
        if self.throttle is not None and self.throttle <= 0:
            raise InvalidArgumentError(f"throttle must be > 0 bytes/s, got {self.throttle}")
        if self.retain is not None and self.retain < 1:
            raise InvalidArgumentError(
                f"retain must be >= 1 (the common base is always kept), got {self.retain}"
            )

    def to_json(self) -> dict[str, Any]:
        return {
            "schedule": self.schedule,
            "allowed_clients": None
            if self.allowed_clients is None
            else sorted(self.allowed_clients),
            "throttle": self.throttle,
            "retain": self.retain,
        }

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> MirrorConfig:
        clients = data.get("allowed_clients")
        return MirrorConfig(
            data.get("schedule"),
            None if clients is None else frozenset(str(c) for c in clients),
            data.get("throttle"),
            data.get("retain", DEFAULT_RETAIN),
        )


@dataclass(frozen=True)
class DestinationVolume:
    """One row of the destination volume table."""

    volume_id: str
    member: str
    source_volume_id: str
    source_cluster: str


@dataclass(frozen=True)
class Relationship:
    """One row of the relationship table (fields A-J, see the module text)."""

    dest_cluster: str  # A
    dest_volume: str  # B
    dest_repository: int  # C
    dest_vserver: str  # D
    source_cluster: str  # E
    source_volume: str  # F
    source_repository: int  # G
    source_vserver: str  # H
    kind: str  # I
    config: MirrorConfig  # J
    member: str
    source_volume_id: str
    dest_volume_id: str

    @property
    def key(self) -> str:
        return f"{self.dest_vserver}/{self.dest_volume}/{self.member}"

    @property
    def channel(self) -> str:
        """The link channel (and checkpoint) name of this relationship."""
        source = f"{self.source_cluster}:{self.source_volume_id}"
        return f"{source}->{self.dest_cluster}:{self.dest_volume_id}"

    def to_json(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items() if k != "config"}
        data["config"] = self.config.to_json()
        return data

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> Relationship:
        fields = {k: v for k, v in data.items() if k != "config"}
        return Relationship(config=MirrorConfig.from_json(data["config"]), **fields)


@dataclass(frozen=True)
class MirrorGroup:
    """The mirror of one expandable volume as a whole (see the module text)."""

    vserver: str
    volume: str
    source_cluster: str
    source_vserver: str
    source_volume: str
    state: MirrorState = MirrorState.MIRRORED
    exported: int | None = None
    """Snapshot ID the destination presents (complete on every volume)."""
    pending: str | None = None
    """Name of the source snapshot an unfinished update is transferring."""
    rebaseline: bool = False
    """The unfinished update is an in-place baseline (the next update resumes it as one)."""
    goid_counter: int = 1
    snapshot_counter: int = 1
    config: MirrorConfig = field(default_factory=MirrorConfig)

    @property
    def key(self) -> str:
        return f"{self.vserver}/{self.volume}"

    def holder(self, dest_cluster: str) -> str:
        """The hold tag of this mirror, whose destination is cluster ``dest_cluster``."""
        return mirror_holder(
            self.source_cluster,
            self.source_vserver,
            self.source_volume,
            dest_cluster,
            self.vserver,
            self.volume,
        )

    def to_json(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items() if k != "config"}
        data["state"] = self.state.value
        data["config"] = self.config.to_json()
        return data

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> MirrorGroup:
        fields = {k: v for k, v in data.items() if k not in ("config", "state")}
        return MirrorGroup(
            state=MirrorState(data["state"]),
            config=MirrorConfig.from_json(data["config"]),
            **fields,
        )


class MirrorTables:
    """The three tables as the M-host of one cluster reads and writes them."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster

    def _commit(self, changes: list[tuple[str, str, Any]]) -> None:
        if changes:
            self.cluster.rdb.commit(self.cluster.any_up_node(), changes)

    def _items(self, table: str) -> list[tuple[str, Any]]:
        return self.cluster.replica().items(table)

    # -- groups ------------------------------------------------------------------------------

    def group(self, vserver: str, volume: str) -> MirrorGroup:
        """The mirror of ``vserver``/``volume``; :class:`UnknownRelationshipError` if none."""
        data = self.cluster.replica().get(GROUP_TABLE, f"{vserver}/{volume}")
        if data is None:
            raise UnknownRelationshipError(
                f"no mirror relationship has destination {vserver}/{volume} on this cluster"
            )
        return MirrorGroup.from_json(data)

    def has_group(self, vserver: str, volume: str) -> bool:
        return self.cluster.replica().get(GROUP_TABLE, f"{vserver}/{volume}") is not None

    def save_group(self, group: MirrorGroup) -> None:
        self._commit([(GROUP_TABLE, group.key, group.to_json())])

    def update_group(self, group: MirrorGroup, **changes: Any) -> MirrorGroup:
        """Write ``group`` with ``changes`` applied; returns the new row."""
        new = replace(group, **changes)
        self.save_group(new)
        return new

    def remove_group(self, vserver: str, volume: str) -> None:
        """Forget the mirror of ``vserver``/``volume`` and its relationships (after a reverse)."""
        changes: list[tuple[str, str, Any]] = [(GROUP_TABLE, f"{vserver}/{volume}", None)]
        for rel in self.relationships(vserver, volume):
            changes.append((RELATIONSHIP_TABLE, rel.key, None))
            changes.append((DEST_VOLUME_TABLE, rel.dest_volume_id, None))
        self._commit(changes)

    # -- relationships and the destination volume table ----------------------------------------

    def relationships(self, vserver: str, volume: str) -> list[Relationship]:
        """Rows of one destination expandable volume, by member key."""
        prefix = f"{vserver}/{volume}/"
        return sorted(
            (
                Relationship.from_json(d)
                for k, d in self._items(RELATIONSHIP_TABLE)
                if k.startswith(prefix)
            ),
            key=lambda r: r.key,
        )

    def relationship(self, vserver: str, volume: str, member: str) -> Relationship | None:
        data = self.cluster.replica().get(RELATIONSHIP_TABLE, f"{vserver}/{volume}/{member}")
        return None if data is None else Relationship.from_json(data)

    def add_relationships(self, rows: list[Relationship]) -> None:
        """Create relationships and their destination volume table rows in one commit."""
        changes: list[tuple[str, str, Any]] = []
        for rel in rows:
            changes.append((RELATIONSHIP_TABLE, rel.key, rel.to_json()))
            mapping = DestinationVolume(
                rel.dest_volume_id, rel.member, rel.source_volume_id, rel.source_cluster
            )
            changes.append((DEST_VOLUME_TABLE, rel.dest_volume_id, dict(mapping.__dict__)))
        self._commit(changes)

    def remove_relationship(self, vserver: str, volume: str, member: str) -> None:
        """Forget one member's relationship (its destination volume was removed)."""
        found = self.relationship(vserver, volume, member)
        if found is not None:
            self._commit(
                [
                    (RELATIONSHIP_TABLE, found.key, None),
                    (DEST_VOLUME_TABLE, found.dest_volume_id, None),
                ]
            )

    def destination_volumes(self) -> list[DestinationVolume]:
        """Every row of the destination volume table."""
        return [DestinationVolume(**d) for _k, d in self._items(DEST_VOLUME_TABLE)]


__all__ = [
    "DEFAULT_RETAIN",
    "DEST_VOLUME_TABLE",
    "GROUP_TABLE",
    "MIRROR",
    "RELATIONSHIP_TABLE",
    "DestinationVolume",
    "MirrorConfig",
    "MirrorGroup",
    "MirrorState",
    "MirrorTables",
    "Relationship",
    "UnknownRelationshipError",
    "mirror_holder",
]
