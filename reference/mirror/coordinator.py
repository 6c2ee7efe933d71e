"""The mirroring coordinator: initialize, update, failover and verify an expandable-volume mirror.

The seed's mirroring coordinator runs on the M-host of the *destination* (remote) cluster and
reaches the primary only through the source proxy (:class:`~.site.SourceProxy`) over a
:class:`~.link.Link`. One update follows the seed's blocks, in this order:

1. **list the source volumes** and **retrieve the source information** (fields E-H) with one
   :class:`~.site.VolumeListRequest`;
2. pick the **target snapshot**: a named one, the target of an update that was cut (so it is
   resumed, not restarted), or a new consistent snapshot the proxy takes at the source (the
   snapshot job manager's fences make it consistent across all members);
3. **resize** the destination to match: a data constituent added at the source since the last
   update is created at the destination (:class:`CountMismatchError` when resizing is refused);
4. **assign source IDs** to the destination volumes and **update the destination volume table**;
   **create or confirm** one relationship (fields A-J) per member volume, before its transfer;
5. **transfer** the target snapshot per member volume with the block replication protocol
   (:class:`~.replication.BlockReplicator`: block diff from the common per-volume snapshot,
   checksums verified at the destination, checkpoint after every batch, atomic commit per
   volume). A destination member is read-only to clients (the N-module refuses writes), so
   whatever its live file system holds beyond its newest snapshot is a leftover of the mirror
   itself (a member that committed an abandoned target, a restore) and is rolled back;
6. **copy the configuration** (vserver, volume, snapshot ID, volume count, name, allowed
   clients, valid, volume list, timestamp) into the destination's **snapshot table**;
7. **notify the N-module**: its redirect moves to the new snapshot;
8. **prune** (config J ``retain``, off by default): older snapshots the mirror itself took are
   deleted at both sites, never the exported one (the next update's common base) and never a
   user's snapshot.

Config J's ``schedule`` is run by :meth:`MirroringCoordinator.run_schedule`: an update every
``schedule`` seconds of the link's time, a cut attempt recorded and resumed at the next tick.

Atomicity across volumes. A member's commit changes its active file system at once, so during
an update some members hold the new snapshot and others the old: the active file system is a
mix. Clients never see it: a destination's N-module redirects every read to the *exported*
snapshot (the newest one complete on every volume, recorded in the snapshot table), and that
moves only at step 7. A cut link (:class:`~.link.LinkError`) at any point leaves the exported
snapshot intact; the group row remembers the target, the replicator's checkpoints remember the
blocks, and the next update resumes both.

Failover (:meth:`MirroringCoordinator.failover`, the seed's break): every member is restored to
the exported snapshot (all or nothing, :func:`~xvol.reference.snapshots.snapshot_restore.restore`),
per-volume snapshots of an unfinished transfer are dropped, the redirect is removed, and the
volume becomes read-write; GOID and snapshot-ID counters were copied from the source at each
update, so new objects and snapshots never collide with the source's.

Verification (:meth:`MirroringCoordinator.verify`): one expandable-volume snapshot compared at
both sites per member by leaf digests (replication's ``verify``), plus its configuration.

Uses: :mod:`.site`, :mod:`.relationships`, :mod:`.link`, :mod:`.replication`, the cluster and
snapshots layers, errors and vocabulary.
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
from xvol.reference.mirror.link import Link, LinkError, Process
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
    TransferProgress,
    VerifyReport,
)
from xvol.reference.mirror.site import (
    MIRROR_SNAPSHOT_PREFIX,
    Pruned,
    PruneSnapshotsRequest,
    Site,
    SnapshotListReply,
    SnapshotListRequest,
    SnapshotReply,
    TakeSnapshotRequest,
    VolumeListReply,
    VolumeListRequest,
)
from xvol.reference.repository.expandable import MemberInfo
from xvol.reference.snapshots.snapshot_restore import restore
from xvol.reference.snapshots.snapshot_table import SnapshotRecord, VolumeSnapshot
from xvol.reference.snapshots.volume_snapshots import VolumeSnapshots
from xvol.vocabulary import VolumeRole


class CountMismatchError(StateError):
    """The source has member volumes the destination lacks and resizing was refused."""


class MirrorBrokenError(StateError):
    """The mirror is broken (failed over): updates need a resync first."""


class UnknownSnapshotError(NotFoundError):
    """No snapshot of that name at the source."""


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
    configuration fields that differ."""

    snapshot: str
    reports: tuple[tuple[str, VerifyReport], ...]
    config_differences: tuple[str, ...]

    @property
    def equal(self) -> bool:
        return not self.config_differences and all(r.equal for _m, r in self.reports)

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
        self, vserver: str, volume: str, snapshot: str | None = None, *, resize: bool = True
    ) -> Process[UpdateResult]:
        """Bring the mirror ``vserver``/``volume`` to source snapshot ``snapshot`` (None: the
        target of a cut update, else a new consistent snapshot taken now)."""
        group = self.tables.group(vserver, volume)
        if group.state is MirrorState.BROKEN:
            raise MirrorBrokenError(
                f"the mirror {vserver}/{volume} is broken (failed over): resync it first"
            )
        result = yield from self._update(group, snapshot, resize=resize)
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

    def _update(
        self, group: MirrorGroup, snapshot: str | None, *, resize: bool
    ) -> Process[UpdateResult]:
        site, start = self.site, self.link.now()
        vs, vol = group.vserver, group.volume
        # Blocks: list source volumes, retrieve source information.
        listing = yield from self._list(group.source_vserver, group.source_volume)
        source_members = sorted(listing.record.members, key=lambda m: _member_order(m.name))
        mine = {m.name for m in site.members(vs, vol)}
        missing = [m.name for m in source_members if m.name not in mine]
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
        # Block: resize the destination to match (create the new member volumes).
        added = self._resize(vs, vol, missing, listing.record.volume_blocks)
        # Blocks: assign source IDs, update the destination volume table, create or confirm
        # one relationship per member volume.
        relationships = self._confirm(group, listing)
        group = self.tables.update_group(
            group,
            pending=target.name,
            goid_counter=max(group.goid_counter, listing.goid_counter),
            snapshot_counter=max(group.snapshot_counter, listing.snapshot_counter),
        )
        self._drop_strays(vs, vol, keep={v.uuid for v in target.volumes})
        # Block: transfer the snapshot, per member volume.
        transfers: list[MemberTransfer] = []
        received: list[VolumeSnapshot] = []
        for rel in relationships:
            want = target.member(rel.member)
            dest = site.volume(vs, vol, rel.member)
            held = {str(s.uuid): s for s in dest.snapshots()}
            if want.uuid in held:
                transfers.append(MemberTransfer(rel.member, 0, 0, 0, 0, skipped=True))
                info = held[want.uuid]
            else:
                replicator = self._replicator(rel, group.config)
                result = yield from replicator.transfer(uuid.UUID(want.uuid), rollback=True)
                info = result.snapshot
                transfers.append(
                    MemberTransfer(
                        rel.member,
                        result.records,
                        result.records_sent,
                        result.records_resumed,
                        result.wire_bytes,
                    )
                )
            received.append(
                VolumeSnapshot(
                    rel.member, rel.dest_volume_id, info.sid, want.uuid, want.captured_at
                )
            )
        # Blocks: copy the configuration, update the snapshot table, notify the N-module.
        record = SnapshotRecord(
            vs,
            vol,
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
        self._publish(record, group)
        pruned = yield from self._prune(group)
        return UpdateResult(record, added, tuple(transfers), self.link.now() - start, pruned)

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
        vs, vol, site = group.vserver, group.volume, self.site
        record = site.record(vs, vol)
        by_name = {m.name: m for m in record.members}
        rows: list[Relationship] = []
        new: list[Relationship] = []
        for source in sorted(listing.record.members, key=lambda m: _member_order(m.name)):
            found = self.tables.relationship(vs, vol, source.name)
            if found is None or found.source_volume_id != source.volume_id:
                found = Relationship(
                    site.name,
                    vol,
                    record.repository,
                    vs,
                    listing.cluster,
                    group.source_volume,
                    listing.record.repository,
                    group.source_vserver,
                    MIRROR,
                    group.config,
                    source.name,
                    source.volume_id,
                    by_name[source.name].volume_id,
                )
                new.append(found)
            rows.append(found)
        self.tables.add_relationships(new)
        return rows

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
        N-modules (their redirect moves to ``record``)."""
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
        self.tables.update_group(group, exported=record.snapshot_id, pending=None)

    def _prune(self, group: MirrorGroup) -> Process[tuple[str, ...]]:
        """Apply config J's ``retain``: delete, here and at the source, the snapshots this mirror
        took (``mirror.<this site>.<n>``) beyond the newest ``retain``. The newest is the
        exported snapshot and the common base of the next update, so it always stays; user
        snapshots are never touched. Returns the names deleted."""
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
        doomed = tuple(r.name for r in ours[: max(0, len(ours) - retain)])
        if not doomed:
            return ()
        reply = yield from self.link.channel("proxy").request(
            PruneSnapshotsRequest(group.source_vserver, group.source_volume, doomed)
        )
        if not isinstance(reply, Pruned):
            raise IntegrityError(f"expected Pruned, got {type(reply).__name__}")
        for name in doomed:
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
        exported = site.jobs.get(vserver, volume, group.exported)
        self._drop_strays(vserver, volume, keep=set())
        members = self.restore_exported(vserver, volume, exported)
        xv = site.cluster.expandable(vserver, volume)
        xv.goids = RDBGoids(site.cluster, xv.repository)
        site.redirects.pop((vserver, volume), None)
        self.tables.update_group(group, state=MirrorState.BROKEN, pending=None)
        return FailoverResult(exported, members)

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
    "CountMismatchError",
    "FailoverResult",
    "MemberTransfer",
    "MirrorBrokenError",
    "MirrorLag",
    "MirrorVerifyResult",
    "MirroringCoordinator",
    "ScheduledUpdate",
    "UnknownSnapshotError",
    "UpdateResult",
]
