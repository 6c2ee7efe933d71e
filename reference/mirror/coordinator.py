"""The mirroring coordinator: initialize, update, failover, verify and delete an
expandable-volume mirror.

The seed's mirroring coordinator runs on the M-host of the *destination* (remote) cluster and
reaches the primary only through the source proxy (:class:`~.site.SourceProxy`) over a
:class:`~.link.Link`. One update follows the seed's blocks, in this order:

1. **list the source volumes** and **retrieve the source information** (fields E-H) with one
   :class:`~.site.VolumeListRequest`;
2. pick the **target snapshot**: a named one, the target of an update that was cut (so it is
   resumed, not restarted), or a new consistent snapshot the proxy takes at the source (the
   snapshot job manager's fences make it consistent across all members);
3. **hold** the target and the common base (the exported snapshot) at the source
   (:class:`~.site.HoldSnapshotsRequest`, tagged with the relationship), so that neither can
   be deleted there while the update runs; a base the source no longer holds intact stops an
   incremental update here with :class:`BaseSnapshotLostError`, before anything changes here
   (a baseline does not need the base; it keeps it held if the source still has it, since a
   failover before the baseline commits leaves the base as the common snapshot);
4. **resize** the destination to match: a data constituent added at the source since the last
   update is created at the destination (:class:`CountMismatchError` when resizing is refused);
5. **assign source IDs** to the destination volumes and **update the destination volume table**;
   **create or confirm** one relationship (fields A-J) per member volume, before its transfer;
6. **transfer** the target snapshot per member volume with the block replication protocol
   (:class:`~.replication.BlockReplicator`: block diff from the common per-volume snapshot,
   checksums verified at the destination, checkpoint after every batch, atomic commit per
   volume). A destination member is read-only to clients (the N-module refuses writes), so
   whatever its live file system holds beyond its newest snapshot is a leftover of the mirror
   itself (a member that committed an abandoned target, a restore) and is rolled back;
7. **copy the configuration** (vserver, volume, snapshot ID, volume count, name, allowed
   clients, valid, volume list, timestamp) into the destination's **snapshot table**;
8. **notify the N-module**: its redirect moves to the new snapshot; the relationship's hold at
   the destination moves to it, and then at the source (the previous base is released);
9. **prune** (config J ``retain``, :data:`~.relationships.DEFAULT_RETAIN` by default): older
   snapshots the mirror itself took are deleted at both sites, never the exported one (the next
   update's common base), never one someone else holds, never a user's snapshot.

The blocks are steps of their own (``_missing``, ``_resize``, ``_confirm`` with
``_relationship_row``, ``_begin_target``,
``_transfer_member``, ``_received``, ``_destination_record``, ``_publish``): :meth:`_update`
runs them in the order above, and the conformance replay of the mirror model
(:mod:`xvol.verification.conformance_mirror`) drives the same functions one by one, in the
model's order, so the replay exercises this code and does not restate it.

In-place baseline (``update(..., baseline=True)``, also the way back when the source lost the
common base). Every member is sent whole again while the destination keeps serving its
exported snapshot: a member that holds snapshots receives into a hidden *staging volume* on
its own node's aggregate (``<member volume ID>.baseline``, as a received stream lands in a
hidden clone before it replaces a file system), checkpointed and resumed like any transfer (the
group row remembers that the unfinished update is a baseline). Only when every member has the
target does one local step, taking no link time, swap it in: the relationship's holds and
every old snapshot of the destination are dropped, each staged member is copied into its
member volume by a local block transfer (checksums verified), the staging volumes are
destroyed, and the new snapshot is published. A cut baseline therefore leaves the old replica
whole and readable; the swap needs room for a second copy of each member on its node.

Snapshot holds (:class:`~.site.SnapshotHold`). A live relationship holds its common base at
both sites, so neither site can delete it (:class:`~.site.SnapshotHeldError`): every snapshot
job manager of the cluster, the D-modules' per-volume snapshot deletes of its member copies
and the proxy's pruning refuse (the snapshots layer enforces holds). The holds survive a
failover on purpose: the exported snapshot is the common base a later resync needs. A resync
releases the holds of the relationship it reverses (:mod:`.resync`);
:meth:`MirroringCoordinator.delete` releases them when a broken mirror is deleted.

Config J's ``schedule`` is run by :meth:`MirroringCoordinator.run_schedule`: an update every
``schedule`` seconds of the link's time, a cut attempt recorded and resumed at the next tick.

Atomicity across volumes. A member's commit changes its active file system at once, so during
an update some members hold the new snapshot and others the old: the active file system is a
mix. Clients never see it: a destination's N-module redirects every read to the *exported*
snapshot (the newest one complete on every volume, recorded in the snapshot table), and that
moves only at step 8. A cut link (:class:`~.link.LinkError`) at any point leaves the exported
snapshot intact; the group row remembers the target, the replicator's checkpoints remember the
blocks, and the next update resumes both.

Failover (:meth:`MirroringCoordinator.failover`, the seed's break): every member is restored to
the exported snapshot (all or nothing, :func:`~xvol.reference.snapshots.snapshot_restore.restore`),
per-volume snapshots and staging volumes of an unfinished transfer are dropped, the redirect is
removed, and the volume becomes read-write; GOID and snapshot-ID counters were copied from the
source at each update, so new objects and snapshots never collide with the source's.

Verification (:meth:`MirroringCoordinator.verify`): one expandable-volume snapshot compared at
both sites per member by leaf digests (replication's ``verify``), plus its configuration.

Uses: :mod:`.site`, :mod:`.relationships`, :mod:`.link`, :mod:`.replication`, the cluster
(RDB, M-host, a node's storage for staging volumes) and snapshots layers, errors and vocabulary.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace

from xvol.errors import (
    AlreadyExistsError,
    IntegrityError,
    NotFoundError,
    StateError,
)
from xvol.reference.cluster.cf import CFRequest
from xvol.reference.cluster.cluster import RDBGoids
from xvol.reference.cluster.rdb import (
    COUNTERS,
    VLDB,
    VOLUME_TABLE,
    ExpandableRecord,
    counter_value,
    read_location,
)
from xvol.reference.mirror.link import DirectLink, Link, LinkError, Process, run_sync
from xvol.reference.mirror.relationships import (
    MIRROR,
    MirrorConfig,
    MirrorGroup,
    MirrorState,
    MirrorTables,
    Relationship,
)
from xvol.reference.mirror.replication import (
    BlockReplicator,
    CheckpointStore,
    MemoryCheckpointStore,
    ReplicationSource,
    TransferProgress,
    TransferResult,
    VerifyReport,
)
from xvol.reference.mirror.site import (
    MIRROR_SNAPSHOT_PREFIX,
    HoldSnapshotsRequest,
    HoldsReply,
    Pruned,
    PruneSnapshotsRequest,
    Site,
    SnapshotHold,
    SnapshotListReply,
    SnapshotListRequest,
    SnapshotReply,
    TakeSnapshotRequest,
    VolumeListReply,
    VolumeListRequest,
    refuse_held,
)
from xvol.reference.repository.expandable import MemberInfo
from xvol.reference.repository.files import VolumeFiles
from xvol.reference.snapshots.snapshot_restore import restore
from xvol.reference.snapshots.snapshot_table import SnapshotRecord, VolumeSnapshot
from xvol.reference.snapshots.volume_snapshots import VolumeSnapshots
from xvol.reference.volume.volume import Volume
from xvol.vocabulary import VolumeRole


class CountMismatchError(StateError):
    """The source has member volumes the destination lacks and resizing was refused."""


class MirrorBrokenError(StateError):
    """The mirror is broken (failed over): updates need a resync first."""


class UnknownSnapshotError(NotFoundError):
    """No snapshot of that name at the source."""


class BaseSnapshotLostError(NotFoundError):
    """The source no longer holds the mirror's common base intact: an incremental update is
    impossible; re-baseline in place (``update(..., baseline=True)``) or resync."""


@dataclass(frozen=True)
class MemberTransfer:
    """One member's part of an update: records in its diff, sent now, skipped by a resume,
    wire bytes; ``skipped`` when it already held the target (a resumed update)."""

    member: str
    records: int
    records_sent: int
    records_resumed: int
    wire_bytes: int
    skipped: bool = False


@dataclass(frozen=True)
class UpdateResult:
    """A finished update: the destination's new snapshot row, the members created by the
    resize, each member's transfer, and the simulated seconds it took."""

    snapshot: SnapshotRecord
    added: tuple[str, ...]
    members: tuple[MemberTransfer, ...]
    seconds: float
    pruned: tuple[str, ...] = ()
    """Snapshots the mirror took earlier and deleted at both sites (config J ``retain``)."""
    baseline: bool = False
    """An in-place baseline replaced the destination's snapshots (see the module text)."""
    replaced: tuple[str, ...] = ()
    """The destination's snapshots the in-place baseline replaced (deleted there)."""

    @property
    def records_sent(self) -> int:
        return sum(m.records_sent for m in self.members)

    @property
    def wire_bytes(self) -> int:
        return sum(m.wire_bytes for m in self.members)


@dataclass(frozen=True)
class ScheduledUpdate:
    """One attempt of a scheduled update: when it started and ended (link time; an update
    takes effect, the redirect moving, when it ends), ``updated`` or ``cut``, the snapshot it
    exported, its wire bytes, and the link error of a cut attempt."""

    started: float
    finished: float
    outcome: str
    snapshot: str | None
    wire_bytes: int
    error: str = ""


@dataclass(frozen=True)
class MirrorDeleted:
    """A deleted mirror: the relationship's holds released at the source (empty when the
    source was not asked) and here."""

    source_released: tuple[SnapshotHold, ...]
    released: tuple[SnapshotHold, ...]


@dataclass
class _Staging:
    """A hidden volume that receives one member's in-place baseline: on ``node``'s storage,
    named ``volume_id``. Life cycle: made by the first staged attempt -> receives (and resumes)
    the target -> copied into the member and destroyed at the swap, or destroyed when the
    baseline is abandoned (failover, delete, another target)."""

    node: str
    volume_id: str
    volume: Volume


def _staging_channel(rel: Relationship) -> str:
    """The channel (and checkpoint) name of ``rel``'s in-place baseline."""
    return f"{rel.channel}#baseline"


@dataclass(frozen=True)
class FailoverResult:
    """The snapshot the destination presents after a break, and the members restored."""

    snapshot: SnapshotRecord
    members: tuple[str, ...]


@dataclass(frozen=True)
class MirrorLag:
    """Lag of a mirror: the exported snapshot ID, the newest source snapshot, the source
    snapshots newer than the exported one, the blocks the members are behind, and the age in
    seconds of the oldest member copy the destination holds (the link's time now minus when
    the source took it; None when the link has no clock or the time is unknown)."""

    exported: int | None
    newest: str | None
    behind: tuple[str, ...]
    blocks: int
    seconds: float | None = None


@dataclass(frozen=True)
class MirrorVerifyResult:
    """Replica verification of one expandable-volume snapshot: per-member reports and the
    configuration fields that differ. ``blocks_compared`` is how many blocks the leaf digests
    covered over every member (so a user sees the verification did its work, equal or not)
    and ``differing_blocks`` how many of them differ."""

    snapshot: str
    reports: tuple[tuple[str, VerifyReport], ...]
    config_differences: tuple[str, ...]

    @property
    def equal(self) -> bool:
        return not self.config_differences and all(r.equal for _m, r in self.reports)

    @property
    def blocks_compared(self) -> int:
        return sum(r.blocks_compared for _m, r in self.reports)

    @property
    def differing_blocks(self) -> int:
        return sum(len(r.differing_blocks) for _m, r in self.reports)

    @property
    def wire_bytes(self) -> int:
        return sum(r.wire_bytes for _m, r in self.reports)


def _member_order(name: str) -> tuple[int, int]:
    if name == "NS":
        return (0, 0)
    if name == "OLS":
        return (1, 0)
    return (2, int(name[2:]) if name[2:].isdigit() else 0)


class MirroringCoordinator:
    """The mirroring coordinator of destination site ``site``, reaching the source over
    ``link`` (see the module text). Its processes run under SimPy (``SitePair.run``)."""

    def __init__(
        self,
        site: Site,
        link: Link,
        *,
        checkpoints: CheckpointStore | None = None,
        batch_blocks: int = 64,
        window: int = 4,
        on_progress: Callable[[TransferProgress], None] | None = None,
    ) -> None:
        self.site = site
        self.link = link
        self.tables = MirrorTables(site.cluster)
        self.checkpoints: CheckpointStore = checkpoints or MemoryCheckpointStore()
        self.batch_blocks = batch_blocks
        self.window = window
        self.on_progress = on_progress
        self._staging: dict[tuple[str, str, str], _Staging] = {}
        """(vserver, volume, member) -> the staging volume of an unfinished in-place baseline."""

    # -- initialize ------------------------------------------------------------------------------

    def initialize(
        self,
        vserver: str,
        volume: str,
        *,
        source_vserver: str | None = None,
        source_volume: str | None = None,
        config: MirrorConfig | None = None,
        snapshot: str | None = None,
    ) -> Process[UpdateResult]:
        """Create the mirror of the source's ``source_vserver``/``source_volume`` (default: the
        same names) as ``vserver``/``volume`` here and transfer its first snapshot (a baseline).
        The destination volume is created with the source's repository number (GOIDs are
        global) unless it exists already with that number."""
        source_vserver = source_vserver or vserver
        source_volume = source_volume or volume
        if self.tables.has_group(vserver, volume):
            raise AlreadyExistsError(f"{vserver}/{volume} already is a mirror destination")
        listing = yield from self._list(source_vserver, source_volume)
        if snapshot is not None:
            yield from self._named(source_vserver, source_volume, snapshot)  # typed error early
        self._prepare_destination(vserver, volume, listing.record)
        group = MirrorGroup(
            vserver,
            volume,
            listing.cluster,
            source_vserver,
            source_volume,
            config=config or MirrorConfig(),
        )
        self.tables.save_group(group)
        self.site.redirects[(vserver, volume)] = None
        result = yield from self._update(group, snapshot, resize=True)
        return result

    def _prepare_destination(self, vserver: str, volume: str, source: ExpandableRecord) -> None:
        """Create the destination expandable volume (same repository number, same number of
        data constituents, same member size), or check the existing one can receive."""
        site = self.site
        if site.has_volume(vserver, volume):
            mine = site.record(vserver, volume)
            if mine.repository != source.repository:
                raise StateError(
                    f"{vserver}/{volume} here has repository {mine.repository}, the source "
                    f"{source.repository}: GOIDs would not resolve; use a new volume name"
                )
            return
        replica = site.cluster.replica()
        if counter_value(replica, "repository") > source.repository:
            raise StateError(
                f"repository {source.repository} is already used on cluster {site.name}: "
                "the mirror cannot keep the source's GOIDs"
            )
        site.cluster.rdb.commit(
            site.cluster.any_up_node(), [(COUNTERS, "repository", source.repository)]
        )
        data = sum(1 for m in source.members if m.role is VolumeRole.DATA)
        site.cluster.mhost().create_expandable_volume(
            vserver, volume, data_constituents=data, volume_blocks=source.volume_blocks
        )

    # -- update ------------------------------------------------------------------------------------

    def update(
        self,
        vserver: str,
        volume: str,
        snapshot: str | None = None,
        *,
        resize: bool = True,
        baseline: bool = False,
    ) -> Process[UpdateResult]:
        """Bring the mirror ``vserver``/``volume`` to source snapshot ``snapshot`` (None: the
        target of a cut update, else a new consistent snapshot taken now). ``baseline``: send
        every block again, in place (see the module text), even if the common base exists; a
        cut baseline is resumed as one by the next update."""
        group = self.tables.group(vserver, volume)
        if group.state is MirrorState.BROKEN:
            raise MirrorBrokenError(
                f"the mirror {vserver}/{volume} is broken (failed over): resync it first"
            )
        result = yield from self._update(group, snapshot, resize=resize, baseline=baseline)
        return result

    def _list(self, vserver: str, volume: str) -> Process[VolumeListReply]:
        reply = yield from self.link.channel("proxy").request(VolumeListRequest(vserver, volume))
        if not isinstance(reply, VolumeListReply):
            raise IntegrityError(f"expected VolumeListReply, got {type(reply).__name__}")
        return reply

    def _snapshots(self, vserver: str, volume: str) -> Process[SnapshotListReply]:
        reply = yield from self.link.channel("proxy").request(SnapshotListRequest(vserver, volume))
        if not isinstance(reply, SnapshotListReply):
            raise IntegrityError(f"expected SnapshotListReply, got {type(reply).__name__}")
        return reply

    def _named(self, vserver: str, volume: str, name: str) -> Process[SnapshotRecord]:
        listing = yield from self._snapshots(vserver, volume)
        for row in listing.records:
            if row.name == name:
                if row.snapshot_id not in listing.valid:
                    raise StateError(
                        f"source snapshot {name!r} is not intact (a member's copy is "
                        "missing): it cannot be mirrored"
                    )
                return row
        raise UnknownSnapshotError(f"the source {vserver}/{volume} has no snapshot {name!r}")

    def _target(
        self, group: MirrorGroup, snapshot: str | None, listing: VolumeListReply
    ) -> Process[SnapshotRecord]:
        """The snapshot this update sends (see the module text, step 2)."""
        vs, vol = group.source_vserver, group.source_volume
        if snapshot is not None:
            row = yield from self._named(vs, vol, snapshot)
            return row
        if group.pending is not None:
            rows = yield from self._snapshots(vs, vol)
            members = {m.name for m in listing.record.members}
            for row in rows.records:
                if (
                    row.name == group.pending
                    and row.snapshot_id in rows.valid
                    and {v.member for v in row.volumes} == members
                ):
                    return row
        name = f"{MIRROR_SNAPSHOT_PREFIX}{self.site.name}.{listing.snapshot_counter}"
        reply = yield from self.link.channel("proxy").request(TakeSnapshotRequest(vs, vol, name))
        if not isinstance(reply, SnapshotReply):
            raise IntegrityError(f"expected SnapshotReply, got {type(reply).__name__}")
        return reply.record

    def _hold_source(self, group: MirrorGroup, ids: tuple[int, ...]) -> Process[HoldsReply]:
        """Make the relationship's holds at the source exactly snapshots ``ids``."""
        reply = yield from self.link.channel("proxy").request(
            HoldSnapshotsRequest(
                group.source_vserver, group.source_volume, group.holder(self.site.name), ids
            )
        )
        if not isinstance(reply, HoldsReply):
            raise IntegrityError(f"expected HoldsReply, got {type(reply).__name__}")
        return reply

    def _lost_base(self, group: MirrorGroup) -> BaseSnapshotLostError:
        """The error of an update whose common base the source no longer holds."""
        vs, vol = group.vserver, group.volume
        name = str(group.exported)
        for row in self.site.snapshots(vs, vol):
            if row.snapshot_id == group.exported:
                name = row.name
        return BaseSnapshotLostError(
            f"the source {group.source_vserver}/{group.source_volume} no longer holds snapshot "
            f"{name!r} intact, the common base of the mirror {vs}/{vol} (deleted at the source "
            "after its hold was released, or a member's copy is gone); re-baseline in place "
            f"with MirroringCoordinator.update({vs!r}, {vol!r}, baseline=True) (the destination "
            f"keeps serving {name!r} until the new baseline commits), or resync"
        )

    def _update(
        self, group: MirrorGroup, snapshot: str | None, *, resize: bool, baseline: bool = False
    ) -> Process[UpdateResult]:
        site, start = self.site, self.link.now()
        vs, vol = group.vserver, group.volume
        baseline = baseline or group.rebaseline
        staged = baseline and any(
            site.volume(vs, vol, m.name).snapshots() for m in site.members(vs, vol)
        )
        if staged:  # the swap drops every snapshot here: refuse now if someone else holds one
            self._refuse_foreign_holds(group)
        # Blocks: list source volumes, retrieve source information.
        listing = yield from self._list(group.source_vserver, group.source_volume)
        source_members = sorted(listing.record.members, key=lambda m: _member_order(m.name))
        mine = {m.name for m in site.members(vs, vol)}
        missing = self._missing(vs, vol, listing)
        extra = sorted(mine - {m.name for m in source_members})
        if extra:
            raise StateError(
                f"the destination has members the source no longer has ({', '.join(extra)}): "
                "a removed constituent cannot be mirrored; create a new mirror"
            )
        if missing and not resize:
            raise CountMismatchError(
                f"the source has {len(source_members)} member volumes, the destination "
                f"{len(mine)} (missing {', '.join(missing)}); update with resize to match"
            )
        target = yield from self._target(group, snapshot, listing)
        listing = yield from self._list(group.source_vserver, group.source_volume)  # counters now
        absent = [
            m.name for m in source_members if m.name not in {v.member for v in target.volumes}
        ]
        if absent:
            raise StateError(f"source snapshot {target.name!r} lacks {', '.join(absent)}")
        # Hold the target and the common base at the source for the length of the update (a
        # baseline does not need the base, but a failover before it commits would: kept if
        # the source still has it).
        base = group.exported
        wanted = (target.snapshot_id,) if base is None else (base, target.snapshot_id)
        held = yield from self._hold_source(group, wanted)
        if target.snapshot_id in held.missing:
            raise StateError(
                f"source snapshot {target.name!r} is no longer intact at the source; update again"
            )
        if base is not None and base in held.missing and not baseline:
            raise self._lost_base(group)
        # Block: resize the destination to match (create the new member volumes).
        added = self._resize(vs, vol, missing, listing.record.volume_blocks)
        # Blocks: assign source IDs, update the destination volume table, create or confirm
        # one relationship per member volume.
        relationships = self._confirm(group, listing)
        group = self._begin_target(group, target, listing, staged=staged)
        # Block: transfer the snapshot, per member volume (staged: into staging volumes).
        transfers: list[MemberTransfer] = []
        for rel in relationships:
            result = yield from self._transfer_member(rel, group.config, target, staged=staged)
            if result is None:
                transfers.append(MemberTransfer(rel.member, 0, 0, 0, 0, skipped=True))
            else:
                transfers.append(
                    MemberTransfer(
                        rel.member,
                        result.records,
                        result.records_sent,
                        result.records_resumed,
                        result.wire_bytes,
                    )
                )
        replaced = self._swap_in(group, target, relationships) if staged else ()
        received = [self._received(rel, target) for rel in relationships]
        # Blocks: copy the configuration, update the snapshot table, notify the N-module.
        record = self._destination_record(group, target, received)
        self._publish(record, group)
        held = yield from self._hold_source(group, (record.snapshot_id,))  # old base released
        pruned = yield from self._prune(group, held.holds, replaced)
        return UpdateResult(
            record,
            added,
            tuple(transfers),
            self.link.now() - start,
            pruned,
            baseline=staged,
            replaced=replaced,
        )

    # -- the update's blocks, as steps (the conformance replay drives them one by one) ----------

    def _missing(self, vserver: str, volume: str, listing: VolumeListReply) -> list[str]:
        """The source's members (``listing``) the destination lacks, in member order: what
        the resize block creates."""
        mine = {m.name for m in self.site.members(vserver, volume)}
        ordered = sorted(listing.record.members, key=lambda m: _member_order(m.name))
        return [m.name for m in ordered if m.name not in mine]

    def _begin_target(
        self,
        group: MirrorGroup,
        target: SnapshotRecord,
        listing: VolumeListReply,
        *,
        staged: bool = False,
    ) -> MirrorGroup:
        """Record ``target`` as the update in flight (``staged``: as an in-place baseline) with
        the source's counters (never lowered), and drop the destination's stray per-volume
        snapshots other than the target's; returns the group row as saved."""
        group = self.tables.update_group(
            group,
            pending=target.name,
            rebaseline=staged,
            goid_counter=max(group.goid_counter, listing.goid_counter),
            snapshot_counter=max(group.snapshot_counter, listing.snapshot_counter),
        )
        self._drop_strays(group.vserver, group.volume, keep={v.uuid for v in target.volumes})
        return group

    def _transfer_member(
        self,
        rel: Relationship,
        config: MirrorConfig,
        target: SnapshotRecord,
        *,
        staged: bool = False,
    ) -> Process[TransferResult | None]:
        """Bring ``rel``'s member to its copy in source snapshot ``target`` by block
        replication (``staged`` and the member holds snapshots: into its staging volume);
        None when it holds that copy already."""
        want = target.member(rel.member).uuid
        dest = self.site.volume(rel.dest_vserver, rel.dest_volume, rel.member)
        held_here = {str(s.uuid) for s in dest.snapshots()}
        if want in held_here:
            return None
        if staged and held_here:
            result = yield from self._stage(rel, config, want)
            return result
        replicated = yield from self._replicator(rel, config).transfer(
            uuid.UUID(want), rollback=True
        )
        return replicated

    def _received(self, rel: Relationship, target: SnapshotRecord) -> VolumeSnapshot:
        """Fields E and F of ``rel``'s member in the destination's copy of ``target``: its own
        per-volume snapshot ID, the source's UUID and capture time."""
        want = target.member(rel.member)
        volume = self.site.volume(rel.dest_vserver, rel.dest_volume, rel.member)
        info = volume.snapshot_info(uuid.UUID(want.uuid))
        return VolumeSnapshot(rel.member, rel.dest_volume_id, info.sid, want.uuid, want.captured_at)

    def _destination_record(
        self, group: MirrorGroup, target: SnapshotRecord, received: list[VolumeSnapshot]
    ) -> SnapshotRecord:
        """The destination's snapshot table row of ``target`` (the copied configuration: ID,
        name, timestamp, fence order and mode, allowed clients unless config J sets them) over
        the per-volume snapshots ``received``."""
        return SnapshotRecord(
            group.vserver,
            group.volume,
            target.name,
            target.snapshot_id,
            tuple(received),
            target.timestamp,
            group.config.allowed_clients
            if group.config.allowed_clients is not None
            else target.allowed_clients,
            target.fence_order,
            target.fence_mode,
        )

    # -- the in-place baseline -------------------------------------------------------------------

    def _refuse_foreign_holds(self, group: MirrorGroup) -> None:
        """:class:`~.site.SnapshotHeldError` if a holder other than this relationship holds a
        snapshot of the destination (an in-place baseline would have to delete it)."""
        site, vs, vol = self.site, group.vserver, group.volume
        mine = group.holder(site.name)
        foreign = [h for h in site.holds(vs, vol) if h.holder != mine]
        for row in site.snapshots(vs, vol):
            refuse_held(site.name, foreign, row)

    def _stage(
        self, rel: Relationship, config: MirrorConfig, target: str
    ) -> Process[TransferResult | None]:
        """Receive snapshot ``target`` (UUID) of ``rel``'s source volume whole into the member's
        staging volume (made on first use, resumed after a cut); None if it holds it already."""
        key = (rel.dest_vserver, rel.dest_volume, rel.member)
        staging = self._staging.get(key)
        if staging is not None:
            held = {str(s.uuid) for s in staging.volume.snapshots()}
            if target in held:
                return None
            if held:  # a baseline of another target: start over
                self._destroy_staging(key, rel)
                staging = None
        if staging is None:
            staging = self._make_staging(rel)
            self._staging[key] = staging
        replicator = BlockReplicator(
            self.link.channel(_staging_channel(rel), throttle=config.throttle),
            rel.source_volume_id,
            staging.volume,
            checkpoints=self.checkpoints,
            batch_blocks=self.batch_blocks,
            window=self.window,
            on_progress=self.on_progress,
        )
        result = yield from replicator.transfer(uuid.UUID(target), rollback=True)
        return result

    def _make_staging(self, rel: Relationship) -> _Staging:
        """A fresh staging volume for ``rel`` on its member's node (a leftover of an earlier
        coordinator is destroyed first, and its checkpoint forgotten)."""
        cluster = self.site.cluster
        node = read_location(cluster.replica(), rel.dest_volume_id).node
        storage = cluster.node(node).dmodule.storage
        volume_id = f"{rel.dest_volume_id}.baseline"
        if volume_id in storage.volume_ids():
            storage.destroy_volume(volume_id)
        self.checkpoints.clear(_staging_channel(rel))
        blocks = self.site.volume(rel.dest_vserver, rel.dest_volume, rel.member).block_count
        files = storage.create_volume(volume_id, blocks)
        if not isinstance(files, VolumeFiles):
            storage.destroy_volume(volume_id)
            raise StateError(f"node {node} cannot stage a block volume for {rel.member}")
        return _Staging(node, volume_id, files.volume)

    def _destroy_staging(self, key: tuple[str, str, str], rel: Relationship | None) -> None:
        """Destroy the staging volume of ``key`` (if any) and forget its checkpoint."""
        staging = self._staging.pop(key, None)
        if staging is not None:
            self.site.cluster.node(staging.node).dmodule.storage.destroy_volume(staging.volume_id)
        if rel is not None:
            self.checkpoints.clear(_staging_channel(rel))

    def _discard_staging(self, vserver: str, volume: str) -> None:
        """Abandon an unfinished in-place baseline of ``vserver``/``volume``."""
        rels = {r.member: r for r in self.tables.relationships(vserver, volume)}
        for key in [k for k in self._staging if k[:2] == (vserver, volume)]:
            self._destroy_staging(key, rels.get(key[2]))
        for rel in rels.values():
            self.checkpoints.clear(_staging_channel(rel))

    def _swap_in(
        self, group: MirrorGroup, target: SnapshotRecord, relationships: list[Relationship]
    ) -> tuple[str, ...]:
        """Install a staged baseline in one local step (no link time passes, so no client read
        and no link event falls inside it): drop this relationship's holds and every snapshot
        of the destination, copy each staged member into its member volume by a local block
        transfer, destroy the staging volumes. Returns the names of the snapshots replaced."""
        site, vs, vol = self.site, group.vserver, group.volume
        self._refuse_foreign_holds(group)  # a user may have placed one during the transfer
        site.release(vs, vol, group.holder(site.name))
        replaced = site.snapshots(vs, vol)
        for row in replaced:
            site.jobs.delete(vs, vol, row.snapshot_id)
        keep = {v.uuid for v in target.volumes}
        calls = VolumeSnapshots(site.cluster, site.cluster.any_up_node(), vs, vol)
        for rel in relationships:
            for snap in calls.list(rel.dest_volume_id):
                if snap["uuid"] not in keep:
                    calls.delete(rel.dest_volume_id, int(snap["sid"]), str(snap["uuid"]))
        for rel in relationships:
            key = (vs, vol, rel.member)
            staging = self._staging.get(key)
            if staging is None:
                continue  # received directly (it had no snapshot) or held the target already
            local = DirectLink(ReplicationSource({staging.volume_id: staging.volume}))
            copier = BlockReplicator(
                local.channel("baseline"),
                staging.volume_id,
                site.volume(vs, vol, rel.member),
                checkpoints=MemoryCheckpointStore(),
            )
            run_sync(copier.transfer(uuid.UUID(target.member(rel.member).uuid), rollback=True))
            self._destroy_staging(key, rel)
        return tuple(row.name for row in replaced)

    def _resize(
        self, vserver: str, volume: str, missing: list[str], blocks: int
    ) -> tuple[str, ...]:
        """Create the destination members the source has and the destination lacks."""
        site = self.site
        mhost = site.cluster.mhost()
        for name in missing:
            record = site.record(vserver, volume)
            k = int(name[2:])
            if record.next_constituent != k:
                # the source's number was free here (a constituent created by a cut update
                # and removed at failover): hand out that number next, as the source did
                record = replace(record, next_constituent=k)
                site.cluster.rdb.commit(
                    site.cluster.any_up_node(), [(VOLUME_TABLE, record.key, record.to_json())]
                )
            mhost.add_data_constituent(vserver, volume, volume_blocks=blocks)
        return tuple(missing)

    def _confirm(self, group: MirrorGroup, listing: VolumeListReply) -> list[Relationship]:
        """Create the missing relationships (and destination volume table rows); return every
        relationship, in member order."""
        vs, vol = group.vserver, group.volume
        rows: list[Relationship] = []
        new: list[Relationship] = []
        for source in sorted(listing.record.members, key=lambda m: _member_order(m.name)):
            found = self.tables.relationship(vs, vol, source.name)
            if found is None or found.source_volume_id != source.volume_id:
                found = self._relationship_row(group, listing, source.name)
                new.append(found)
            rows.append(found)
        self.tables.add_relationships(new)
        return rows

    def _relationship_row(
        self, group: MirrorGroup, listing: VolumeListReply, member: str
    ) -> Relationship:
        """The relationship row (fields A-J) of ``member``: source (``listing``) -> here."""
        record = self.site.record(group.vserver, group.volume)
        return Relationship(
            self.site.name,
            group.volume,
            record.repository,
            group.vserver,
            listing.cluster,
            group.source_volume,
            listing.record.repository,
            group.source_vserver,
            MIRROR,
            group.config,
            member,
            listing.record.member(member).volume_id,
            record.member(member).volume_id,
        )

    def _replicator(self, rel: Relationship, config: MirrorConfig) -> BlockReplicator:
        channel = self.link.channel(rel.channel, throttle=config.throttle)
        return BlockReplicator(
            channel,
            rel.source_volume_id,
            self.site.volume(rel.dest_vserver, rel.dest_volume, rel.member),
            checkpoints=self.checkpoints,
            batch_blocks=self.batch_blocks,
            window=self.window,
            on_progress=self.on_progress,
        )

    def _publish(self, record: SnapshotRecord, group: MirrorGroup) -> None:
        """Copy the configuration into the snapshot table, raise the counters, notify the
        N-modules (their redirect moves to ``record``) and move the relationship's hold here to
        ``record``."""
        site = self.site
        table = site.jobs.table
        if not any(
            r.snapshot_id == record.snapshot_id
            for r in table.records(record.vserver, record.volume)
        ):
            table.publish(record)
        repository = site.record(record.vserver, record.volume).repository
        site.raise_counter(f"goid/{repository}", group.goid_counter)
        site.raise_counter(
            f"snapshot-id/{record.vserver}/{record.volume}",
            max(group.snapshot_counter, record.snapshot_id + 1),
        )
        for cache in site.jobs.caches.values():
            cache.upload(record)
        site.redirects[(record.vserver, record.volume)] = record.snapshot_id
        site.set_holds(
            record.vserver, record.volume, group.holder(site.name), (record.snapshot_id,)
        )
        self.tables.update_group(group, exported=record.snapshot_id, pending=None, rebaseline=False)

    def _prune(
        self, group: MirrorGroup, source_holds: tuple[SnapshotHold, ...], replaced: tuple[str, ...]
    ) -> Process[tuple[str, ...]]:
        """Apply config J's ``retain``: delete, here and at the source, the snapshots this mirror
        took (``mirror.<this site>.<n>``) beyond the newest ``retain``, and those an in-place
        baseline ``replaced`` here. The newest is the exported snapshot and the common base of
        the next update, so it always stays; a snapshot another holder holds at either site
        stays (until released); user snapshots are never touched. Returns the names deleted."""
        retain = group.config.retain
        if retain is None:
            return ()
        vs, vol = group.vserver, group.volume
        group = self.tables.group(vs, vol)  # as published (exported moved)
        prefix = f"{MIRROR_SNAPSHOT_PREFIX}{self.site.name}."
        ours = sorted(
            (r for r in self.site.snapshots(vs, vol) if r.name.startswith(prefix)),
            key=lambda r: r.snapshot_id,
        )
        if ours and ours[-1].snapshot_id != group.exported and group.exported is not None:
            return ()  # the exported snapshot is not ours (a named update): keep everything
        holder = group.holder(self.site.name)
        pinned = {h.name for h in (*source_holds, *self.site.holds(vs, vol)) if h.holder != holder}
        candidates = [r.name for r in ours[: max(0, len(ours) - retain)]]
        candidates += [n for n in replaced if n.startswith(prefix)]
        doomed = tuple(dict.fromkeys(n for n in candidates if n not in pinned))
        if not doomed:
            return ()
        reply = yield from self.link.channel("proxy").request(
            PruneSnapshotsRequest(group.source_vserver, group.source_volume, doomed)
        )
        if not isinstance(reply, Pruned):
            raise IntegrityError(f"expected Pruned, got {type(reply).__name__}")
        here = {r.name for r in ours}
        for name in doomed:
            if name in here:
                self.site.jobs.delete(vs, vol, name)
        return doomed

    # -- the schedule (config J) -------------------------------------------------------------------

    def run_schedule(
        self, vserver: str, volume: str, *, until: float
    ) -> Process[tuple[ScheduledUpdate, ...]]:
        """Update ``vserver``/``volume`` every ``schedule`` seconds of the link's time (config
        J) until time ``until``. A cut update is recorded, not raised: the next tick resumes
        it. The schedule stops early when the mirror is broken (failed over). Every attempt is
        returned in order."""
        group = self.tables.group(vserver, volume)
        every = group.config.schedule
        if every is None:
            raise StateError(f"the mirror {vserver}/{volume} has no schedule (config J)")
        if not self.link.timed:
            raise StateError("a schedule needs a link with a clock (a simulated link)")
        runs: list[ScheduledUpdate] = []
        tick = self.link.now()
        while tick + every <= until:
            tick += every
            yield from self.link.wait(tick - self.link.now())
            if self.tables.group(vserver, volume).state is MirrorState.BROKEN:
                break
            started = self.link.now()
            try:
                result = yield from self.update(vserver, volume)
            except LinkError as error:
                runs.append(ScheduledUpdate(started, self.link.now(), "cut", None, 0, str(error)))
                continue
            runs.append(
                ScheduledUpdate(
                    started, self.link.now(), "updated", result.snapshot.name, result.wire_bytes
                )
            )
            tick = max(tick, self.link.now() - every)  # an overrun starts the next at once
        return tuple(runs)

    def _drop_strays(self, vserver: str, volume: str, keep: set[str]) -> int:
        """Delete per-volume snapshots the snapshot table does not list (left by a transfer
        that was abandoned), except those in ``keep``; returns how many went."""
        site = self.site
        listed = {v.uuid for r in site.snapshots(vserver, volume) for v in r.volumes} | keep
        calls = VolumeSnapshots(site.cluster, site.cluster.any_up_node(), vserver, volume)
        dropped = 0
        for member in site.members(vserver, volume):
            for snap in calls.list(member.volume_id):
                if snap["uuid"] not in listed:
                    calls.delete(member.volume_id, int(snap["sid"]), str(snap["uuid"]))
                    dropped += 1
        return dropped

    # -- failover --------------------------------------------------------------------------------

    def failover(self, vserver: str, volume: str) -> FailoverResult:
        """Break the mirror: the destination becomes read-write, presenting its exported
        snapshot on every member (see the module text)."""
        group = self.tables.group(vserver, volume)
        if group.state is MirrorState.BROKEN:
            raise MirrorBrokenError(f"the mirror {vserver}/{volume} is already broken")
        if group.exported is None:
            raise StateError(
                f"the mirror {vserver}/{volume} has received no complete snapshot: nothing "
                "to fail over to"
            )
        site = self.site
        for rel in self.tables.relationships(vserver, volume):
            self.checkpoints.clear(rel.channel)
        self._discard_staging(vserver, volume)
        exported = site.jobs.get(vserver, volume, group.exported)
        self._drop_strays(vserver, volume, keep=set())
        members = self.restore_exported(vserver, volume, exported)
        xv = site.cluster.expandable(vserver, volume)
        # the source's counters as the last update saw them, even one that was cut: objects and
        # snapshots made here from now on never reuse an ID the source has handed out
        site.raise_counters(
            {
                f"goid/{xv.repository}": group.goid_counter,
                f"snapshot-id/{vserver}/{volume}": group.snapshot_counter,
            }
        )
        xv.goids = RDBGoids(site.cluster, xv.repository)
        site.redirects.pop((vserver, volume), None)
        self.tables.update_group(group, state=MirrorState.BROKEN, pending=None, rebaseline=False)
        return FailoverResult(exported, members)

    # -- deleting a mirror -----------------------------------------------------------------------

    def delete(
        self, vserver: str, volume: str, *, release_source: bool = True
    ) -> Process[MirrorDeleted]:
        """Delete the broken mirror ``vserver``/``volume``: its relationships, its destination
        volume table rows and group go, and its snapshot holds are released here and (unless
        ``release_source`` is False, for a source that is gone for good) at the source first,
        so a :class:`~.link.LinkError` there changes nothing here. A mirror that is not broken
        is refused (:class:`StateError`): fail it over first, so that its volume is read-write
        on a whole snapshot. The snapshots themselves stay at both sites."""
        group = self.tables.group(vserver, volume)
        if group.state is not MirrorState.BROKEN:
            raise StateError(
                f"the mirror {vserver}/{volume} is not broken: fail it over before deleting it "
                "(its volume must be read-write on a whole snapshot first)"
            )
        source: tuple[SnapshotHold, ...] = ()
        if release_source:
            reply = yield from self._hold_source(group, ())
            source = reply.released
        here = self.site.release(vserver, volume, group.holder(self.site.name))
        for rel in self.tables.relationships(vserver, volume):
            self.checkpoints.clear(rel.channel)
        self._discard_staging(vserver, volume)
        self.tables.remove_group(vserver, volume)
        self.site.redirects.pop((vserver, volume), None)
        return MirrorDeleted(source, here)

    def restore_exported(
        self, vserver: str, volume: str, exported: SnapshotRecord
    ) -> tuple[str, ...]:
        """Restore every member to ``exported``. Members a cut update (or a resize after the
        snapshot) created (the resize ran,
        the snapshot that includes them never became complete) are restored-around: the
        recorded members go back first, then the new ones (empty in ``exported``'s OLS) are
        removed, so the volume is exactly the exported snapshot."""
        site = self.site
        recorded = {v.member for v in exported.volumes}
        added = [m for m in site.members(vserver, volume) if m.name not in recorded]
        if not added:
            return restore(site.cluster, vserver, volume, exported.snapshot_id).members
        calls = VolumeSnapshots(site.cluster, site.cluster.any_up_node(), vserver, volume)
        for entry in sorted(exported.volumes, key=lambda v: _member_order(v.member)):
            calls.restore(entry.volume_id, entry.sid, entry.uuid)
        mhost = site.cluster.mhost()
        xv = site.cluster.expandable(vserver, volume)
        for member in added:
            k = int(member.name[2:])
            if site.volume(vserver, volume, member.name).has_active:
                for goid in xv.objects_on(k):  # named by no restored OLS record: unreachable
                    xv.access.call(member.name, "remove", {"goid": goid})
                mhost.remove_data_constituent(vserver, volume, k)
            else:
                self._remove_unformatted(vserver, volume, member.name)
            self.tables.remove_relationship(vserver, volume, member.name)
        return tuple(sorted(recorded, key=_member_order))

    def _remove_unformatted(self, vserver: str, volume: str, member: str) -> None:
        """Remove member ``member`` whose baseline transfer was cut (it has no file system yet,
        so it holds no object): its volume table and VLDB rows go, then its volume."""
        cluster = self.site.cluster
        record = self.site.record(vserver, volume)
        gone = record.member(member)
        node = read_location(cluster.replica(), gone.volume_id).node
        new = replace(record, members=tuple(m for m in record.members if m.name != member))
        origin = cluster.any_up_node()
        cluster.rdb.commit(
            origin, [(VLDB, gone.volume_id, None), (VOLUME_TABLE, new.key, new.to_json())]
        )
        xv = cluster.expandable(vserver, volume)
        xv.set_members([MemberInfo(m.name, m.role, m.accepting) for m in new.members])
        xv.gates.pop(member, None)
        cluster.node(origin).cf.call(node, CFRequest("dmodule", gone.volume_id, "admin-destroy"))

    # -- lag ---------------------------------------------------------------------------------------

    def lag(self, vserver: str, volume: str) -> Process[MirrorLag]:
        """How far the exported snapshot is behind the source: snapshots taken at the source
        since, and blocks each member's next transfer would send (to its newest source
        snapshot)."""
        group = self.tables.group(vserver, volume)
        rows = yield from self._snapshots(group.source_vserver, group.source_volume)
        exported = group.exported
        newer = [r.name for r in rows.records if exported is None or r.snapshot_id > exported]
        blocks = 0
        ages: list[float | None] = []
        for rel in self.tables.relationships(vserver, volume):
            member_lag = yield from self._replicator(rel, group.config).lag()
            blocks += member_lag.blocks
            ages.append(member_lag.seconds)
        newest = rows.records[-1].name if rows.records else None
        known = [a for a in ages if a is not None]
        seconds = max(known) if known and len(known) == len(ages) else None
        return MirrorLag(exported, newest, tuple(newer), blocks, seconds)

    # -- verification ------------------------------------------------------------------------------

    def verify(
        self, vserver: str, volume: str, snapshot: str | int | None = None
    ) -> Process[MirrorVerifyResult]:
        """Compare snapshot ``snapshot`` (name or ID; None: the exported one) here and at the
        source: every member by leaf digests, and the configuration rows."""
        group = self.tables.group(vserver, volume)
        ref: str | int | None = group.exported if snapshot is None else snapshot
        if ref is None:
            raise StateError(f"the mirror {vserver}/{volume} has no snapshot to verify")
        mine = self.site.jobs.get(vserver, volume, ref)
        rows = yield from self._snapshots(group.source_vserver, group.source_volume)
        theirs = next((r for r in rows.records if r.name == mine.name), None)
        differences: list[str] = []
        if theirs is None:
            differences.append(f"the source has no snapshot {mine.name!r}")
        else:
            if theirs.snapshot_id != mine.snapshot_id:
                differences.append("snapshot ID")
            if theirs.timestamp != mine.timestamp:
                differences.append("timestamp")
            if {v.member: v.uuid for v in theirs.volumes} != {
                v.member: v.uuid for v in mine.volumes
            }:
                differences.append("volume list")
        reports: list[tuple[str, VerifyReport]] = []
        rels = {r.member: r for r in self.tables.relationships(vserver, volume)}
        for entry in sorted(mine.volumes, key=lambda v: _member_order(v.member)):
            rel = rels.get(entry.member)
            if rel is None:
                differences.append(f"{entry.member} has no relationship here")
                continue
            report = yield from self._replicator(rel, group.config).verify(uuid.UUID(entry.uuid))
            reports.append((entry.member, report))
        return MirrorVerifyResult(mine.name, tuple(reports), tuple(differences))


__all__ = [
    "BaseSnapshotLostError",
    "CountMismatchError",
    "FailoverResult",
    "MemberTransfer",
    "MirrorBrokenError",
    "MirrorDeleted",
    "MirrorLag",
    "MirrorVerifyResult",
    "MirroringCoordinator",
    "ScheduledUpdate",
    "UnknownSnapshotError",
    "UpdateResult",
]
