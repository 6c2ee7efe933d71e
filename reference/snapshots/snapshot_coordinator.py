"""The snapshot job manager and the snapshot coordinator: consistent snapshots, step by step.

The seed's flow, all on the M-host: the **snapshot job manager** takes a request (vserver,
expandable volume, snapshot name) and creates a job; the **snapshot coordinator** reads the
volume table (fields A-C) for the members, starts a **consistency group** over them, and lays a
**logical fence** on each, "first for the namespace, then for the OLS store, followed by the
data constituent volumes". A fenced volume keeps what it held when the fence was made, and
requests that reach it afterwards are *excluded and handled after the snapshot*: here a fence
closes the member's :class:`~xvol.reference.repository.steps.Gate`, so client steps that reach
it are deferred by the scheduler (never dropped) and run once it opens. Then every member's
per-volume snapshot is taken, the group commits (the snapshot table row is written and uploaded
to the N-modules' caches), the volumes are unfenced "in the order opposite to the order in which
[they] were fenced", and the group is deleted. "Even if the snapshot operation is not a success
the volumes are still unfenced."

The protocol is an explicit state machine (:class:`SnapshotJob`) so that a driver can put
client steps between any two of its steps (:mod:`xvol.reference.snapshots.interleave`):
:meth:`SnapshotJob.enabled` lists the :class:`ProtocolStep` s allowed now, :meth:`SnapshotJob.
run_step` takes one. Its life cycle, for a fence order of stages ``S1 < S2 < ...`` (volumes of
one stage in any interleaving):

=========  =================================================================================
HELD       FENCE every volume stage by stage; CAPTURE each (stage order); COMMIT; UNFENCE in
           reverse stage order; DELETE_GROUP   (the seed's)
ROLLING    per stage: FENCE, CAPTURE and UNFENCE each volume (the next stage starts when the
           stage's volumes are all unfenced); COMMIT; DELETE_GROUP
failure    FAIL at any step before COMMIT (injected with :meth:`SnapshotJob.fail`, or because a
           fence, a per-volume snapshot or the commit raised); then UNFENCE every fenced volume
           in reverse stage order; DELETE_GROUP discards the per-volume snapshots taken
=========  =================================================================================

Invariants: a volume is fenced at most once per job; after DELETE_GROUP no volume of the group
is fenced; the snapshot table gets a row only at COMMIT, so a failed job publishes nothing. On
failure the per-volume snapshots already taken are **deleted** (not kept and marked invalid); one
whose node does not answer is recorded in the RDB's ``snapshot-orphans`` table and deleted by
:meth:`SnapshotJobManager.cleanup` once the node is back. Every step is recorded as a vocabulary
:class:`~xvol.vocabulary.TraceStep` with the cluster's simulated time (:class:`ProtocolEvent`),
and the job's record (fence order with times, outcome) is kept in the RDB (``snapshot-jobs``).

Fence orders are data: the default is the seed's, built from the expandable volume's *current*
members (after removals data constituent numbers need not be contiguous); any order that names
every member once is accepted, including parallel stages.

Deleting a snapshot (:meth:`SnapshotJobManager.delete`) honours snapshot holds
(:mod:`.snapshot_holds`): a held snapshot is refused with
:class:`~.snapshot_holds.SnapshotHeldError` before anything changes, whichever job manager is
asked; the per-volume snapshot service refuses a held snapshot's member copies the same way.

Uses: the cluster (RDB, CF, expandable volumes and their gates), the snapshot table, the
per-volume snapshot service, snapshot holds; the vocabulary and errors.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from xvol.errors import (
    InvalidArgumentError,
    NotFoundError,
    StateError,
    UnavailableError,
    XvolError,
)
from xvol.reference.cluster.cluster import Cluster
from xvol.reference.cluster.rdb import COUNTERS, counter_value, read_expandable
from xvol.reference.repository.expandable import ExpandableVolume
from xvol.reference.snapshots.snapshot_holds import (
    HOLDS_TABLE,
    SnapshotHold,
    check_holder,
    holds_in,
    refuse_held,
)
from xvol.reference.snapshots.snapshot_table import (
    SnapshotCache,
    SnapshotRecord,
    SnapshotState,
    SnapshotTable,
    VolumeSnapshot,
    describe_order,
)
from xvol.reference.snapshots.volume_snapshots import VolumeSnapshots, install
from xvol.vocabulary import (
    NAMESPACE_VOLUME,
    OLS_VOLUME,
    Action,
    FenceMode,
    FenceOrder,
    Trace,
    TraceStep,
    check_fence_order,
    serial_order,
)

JOBS_TABLE = "snapshot-jobs"
ORPHANS_TABLE = "snapshot-orphans"
PROTOCOL_ACTIONS = frozenset(
    {Action.FENCE, Action.CAPTURE, Action.UNFENCE, Action.COMMIT, Action.FAIL, Action.DELETE_GROUP}
)


class SnapshotFailedError(StateError):
    """The consistent snapshot failed; every volume was unfenced and nothing was published."""


# --------------------------------------------------------------------------------------------
# Fence orders from the members
# --------------------------------------------------------------------------------------------


def member_fence_order(
    members: Iterable[str], *, parallel_data: bool = False, data_first: bool = False
) -> FenceOrder:
    """The seed's fence order over the actual members (``NS``, ``OLS``, the ``DC<k>`` by
    number): NS < OLS < DCs, the DCs serially or as one parallel stage. ``data_first`` gives
    the reverse order of roles (DCs < OLS < NS), a variant for experiments."""
    data = sorted((m for m in members if m.startswith("DC")), key=lambda m: int(m[2:]))
    data_stages: FenceOrder = (frozenset(data),) if parallel_data else serial_order(data)
    ns, ols = frozenset([NAMESPACE_VOLUME]), frozenset([OLS_VOLUME])
    if data_first:
        return (*data_stages, ols, ns)
    return (ns, ols, *data_stages)


# --------------------------------------------------------------------------------------------
# Protocol steps and events
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProtocolStep:
    """One step of the snapshot protocol: an action (FENCE, CAPTURE, UNFENCE on ``volume``;
    COMMIT, FAIL, DELETE_GROUP with ``volume=None``)."""

    action: Action
    volume: str | None = None

    def __post_init__(self) -> None:
        if self.action not in PROTOCOL_ACTIONS:
            raise InvalidArgumentError(f"{self.action} is not a snapshot protocol action")
        needs_volume = self.action in (Action.FENCE, Action.CAPTURE, Action.UNFENCE)
        if needs_volume != (self.volume is not None) and self.action is not Action.FAIL:
            raise InvalidArgumentError(f"protocol step {self.action} with volume {self.volume!r}")

    def __str__(self) -> str:
        return f"{self.action.value}({self.volume or ''})"

    @staticmethod
    def from_trace(step: TraceStep) -> ProtocolStep:
        """The protocol step a trace step names."""
        volume = step.args.get("volume")
        if step.action in (Action.COMMIT, Action.DELETE_GROUP):
            volume = None
        return ProtocolStep(step.action, None if volume is None else str(volume))


@dataclass(frozen=True)
class ProtocolEvent:
    """What one protocol step did, with the cluster's simulated time (seconds)."""

    time: float
    step: TraceStep


class Phase(StrEnum):
    """The job's phase: RUNNING -> COMMITTED | FAILED; ``ended`` once the group is deleted."""

    RUNNING = "running"
    COMMITTED = "committed"
    FAILED = "failed"


class VolumeStatus(StrEnum):
    """A member's fence status in the group: IDLE -> FENCED -> RELEASED."""

    IDLE = "idle"
    FENCED = "fenced"
    RELEASED = "released"


# --------------------------------------------------------------------------------------------
# The consistency group and the job
# --------------------------------------------------------------------------------------------


@dataclass
class ConsistencyGroup:
    """The volumes of one snapshot job, their fence order and their fence status.

    ``gates`` closes and opens the members' gates on the expandable volume. Invariant: a
    member's gate is closed exactly while its status is FENCED."""

    members: dict[str, str]  # member name -> volume ID
    order: FenceOrder
    mode: FenceMode
    xv: ExpandableVolume
    status: dict[str, VolumeStatus] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_fence_order(self.order, list(self.members))
        self.status = {m: VolumeStatus.IDLE for m in self.members}

    def stage_of(self, volume: str) -> int:
        for i, stage in enumerate(self.order):
            if volume in stage:
                return i
        raise NotFoundError(f"{volume} is not in the consistency group")

    def fence(self, volume: str) -> None:
        gate = self.xv.gate(volume)
        if not gate.is_open:
            raise StateError(f"{volume} is fenced already (another consistency group or restore)")
        gate.close()
        self.status[volume] = VolumeStatus.FENCED

    def unfence(self, volume: str) -> None:
        self.xv.gate(volume).open()
        self.status[volume] = VolumeStatus.RELEASED

    def fenced(self) -> list[str]:
        return [m for m, s in self.status.items() if s is VolumeStatus.FENCED]


class SnapshotJob:
    """One consistent snapshot in progress: the protocol as a state machine (module text).

    Made by :meth:`SnapshotCoordinator.begin`. ``on_commit`` is called with the published row
    (the N-module cache upload)."""

    def __init__(
        self,
        cluster: Cluster,
        node: str,
        job_id: str,
        vserver: str,
        volume: str,
        name: str,
        snapshot_id: int,
        group: ConsistencyGroup,
        *,
        allowed_clients: frozenset[str] | None = None,
        on_commit: Callable[[SnapshotRecord], None] | None = None,
    ) -> None:
        self.cluster = cluster
        self.node = node
        self.job_id = job_id
        self.vserver = vserver
        self.volume = volume
        self.name = name
        self.snapshot_id = snapshot_id
        self.group = group
        self.allowed_clients = allowed_clients
        self.on_commit = on_commit
        self.phase = Phase.RUNNING
        self.ended = False
        self.captured: dict[str, VolumeSnapshot] = {}
        self.events: list[ProtocolEvent] = []
        self.reason: str | None = None
        self.record: SnapshotRecord | None = None
        self.orphans: list[VolumeSnapshot] = []
        self.calls = VolumeSnapshots(cluster, node, vserver, volume)
        self.table = SnapshotTable(cluster, node)

    # -- what may happen next -----------------------------------------------------------------

    @property
    def mode(self) -> FenceMode:
        return self.group.mode

    @property
    def order(self) -> FenceOrder:
        return self.group.order

    def volume_snapshot_name(self) -> str:
        """The name of this job's per-volume snapshots (unique: it carries the snapshot ID)."""
        return f"x{self.snapshot_id}.{self.name}"[:80]

    def enabled(self) -> list[ProtocolStep]:
        """The protocol steps allowed now (FAIL, always allowed while running, is not listed)."""
        if self.ended:
            return []
        status, order = self.group.status, self.order
        if self.phase is Phase.RUNNING:
            if self.mode is FenceMode.HELD:
                for stage in order:
                    idle = sorted(v for v in stage if status[v] is VolumeStatus.IDLE)
                    if idle:
                        return [ProtocolStep(Action.FENCE, v) for v in idle]
                for stage in order:
                    todo = sorted(v for v in stage if v not in self.captured)
                    if todo:
                        return [ProtocolStep(Action.CAPTURE, v) for v in todo]
                return [ProtocolStep(Action.COMMIT)]
            for stage in order:
                if all(status[v] is VolumeStatus.RELEASED for v in stage):
                    continue
                steps = []
                for v in sorted(stage):
                    if status[v] is VolumeStatus.IDLE:
                        steps.append(ProtocolStep(Action.FENCE, v))
                    elif status[v] is VolumeStatus.FENCED:
                        captured = v in self.captured
                        steps.append(
                            ProtocolStep(Action.UNFENCE if captured else Action.CAPTURE, v)
                        )
                return steps
            return [ProtocolStep(Action.COMMIT)]
        for stage in reversed(order):
            fenced = sorted(v for v in stage if status[v] is VolumeStatus.FENCED)
            if fenced:
                return [ProtocolStep(Action.UNFENCE, v) for v in fenced]
        return [ProtocolStep(Action.DELETE_GROUP)]

    # -- taking steps -------------------------------------------------------------------------

    def _now(self) -> float:
        return self.cluster.fabric.clock.now

    def _event(self, action: Action, **args: str | int | bool) -> ProtocolEvent:
        event = ProtocolEvent(self._now(), TraceStep(action, dict(args)))
        self.events.append(event)
        return event

    def run_step(self, step: ProtocolStep | None = None) -> ProtocolEvent:
        """Take ``step`` (default: the first enabled one). A step that is not enabled raises
        :class:`InvalidArgumentError` and changes nothing; a fence, capture or commit that
        raises fails the job instead (the FAIL event is returned)."""
        if step is None:
            choices = self.enabled()
            if not choices:
                raise StateError(f"snapshot job {self.job_id} has ended")
            step = choices[0]
        if step.action is Action.FAIL:
            if self.phase is not Phase.RUNNING:
                raise InvalidArgumentError(f"job {self.job_id} is {self.phase}: it cannot fail")
            return self.fail("injected", step.volume)
        if step not in self.enabled():
            allowed = ", ".join(str(s) for s in self.enabled()) or "nothing"
            raise InvalidArgumentError(
                f"snapshot job {self.job_id} cannot take {step} now (allowed: {allowed})"
            )
        volume = step.volume
        if step.action is Action.FENCE:
            assert volume is not None
            try:
                self.calls.ping(self.group.members[volume])  # the owner acknowledges the fence
                self.group.fence(volume)
            except XvolError as exc:
                return self.fail(f"{type(exc).__name__}: {exc}", volume)
            return self._event(Action.FENCE, volume=volume)
        if step.action is Action.CAPTURE:
            assert volume is not None
            volume_id = self.group.members[volume]
            try:
                sid, snap_uuid = self.calls.create(volume_id, self.volume_snapshot_name())
            except XvolError as exc:
                return self.fail(f"{type(exc).__name__}: {exc}", volume)
            self.captured[volume] = VolumeSnapshot(volume, volume_id, sid, snap_uuid, self._now())
            return self._event(Action.CAPTURE, volume=volume, sid=sid)
        if step.action is Action.UNFENCE:
            assert volume is not None
            self.group.unfence(volume)
            return self._event(Action.UNFENCE, volume=volume)
        if step.action is Action.COMMIT:
            return self._commit()
        return self._delete_group()

    def fail(self, reason: str = "injected", volume: str | None = None) -> ProtocolEvent:
        """Fail the snapshot now (only while running): what follows unfences every fenced
        volume in reverse order and discards the per-volume snapshots taken."""
        if self.phase is not Phase.RUNNING:
            raise StateError(f"job {self.job_id} is {self.phase}: it cannot fail")
        self.phase = Phase.FAILED
        self.reason = reason
        args: dict[str, str | int | bool] = {"reason": reason}
        if volume is not None:
            args["volume"] = volume
        return self._event(Action.FAIL, **args)

    def _commit(self) -> ProtocolEvent:
        members = self.group.members
        record = SnapshotRecord(
            vserver=self.vserver,
            volume=self.volume,
            name=self.name,
            snapshot_id=self.snapshot_id,
            volumes=tuple(self.captured[m] for m in members),
            timestamp=max(v.captured_at for v in self.captured.values()),
            allowed_clients=self.allowed_clients,
            fence_order=describe_order(self.order),
            fence_mode=self.mode.value,
        )
        try:
            self.table.publish(record)
        except XvolError as exc:
            return self.fail(f"{type(exc).__name__}: {exc}")
        self.phase = Phase.COMMITTED
        self.record = record
        if self.on_commit is not None:
            self.on_commit(record)
        return self._event(Action.COMMIT, snapshot=self.snapshot_id)

    def _delete_group(self) -> ProtocolEvent:
        if self.phase is Phase.FAILED:
            for taken in self.captured.values():
                try:
                    self.calls.delete(taken.volume_id, taken.sid, taken.uuid)
                except UnavailableError:
                    self.orphans.append(taken)
                except NotFoundError:
                    pass
        self.ended = True
        event = self._event(Action.DELETE_GROUP)
        self._record_job()
        return event

    def _record_job(self) -> None:
        """Keep the job's outcome, fence timeline and orphans in the RDB (best effort: without
        a majority the job stays recorded only here)."""
        changes: list[tuple[str, str, Any]] = [
            (JOBS_TABLE, f"{self.vserver}/{self.volume}/{self.job_id}", self.to_json())
        ]
        for orphan in self.orphans:
            key = f"{orphan.volume_id}/{orphan.sid}/{orphan.uuid}"
            changes.append((ORPHANS_TABLE, key, orphan.to_json()))
        with contextlib.suppress(UnavailableError):
            self.cluster.rdb.commit(self.node, changes)

    # -- running and reporting ----------------------------------------------------------------

    def run_to_end(self) -> SnapshotRecord | None:
        """Take the first enabled step until the group is deleted; the published row, or
        ``None`` if the snapshot failed."""
        while not self.ended:
            self.run_step()
        return self.record

    def trace(self) -> Trace:
        """The protocol's steps as a vocabulary trace."""
        return Trace(
            system="fence",
            config={
                "order": describe_order(self.order),
                "mode": self.mode.value,
                "volumes": sorted(self.group.members),
            },
            steps=tuple(e.step for e in self.events),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "job": self.job_id,
            "vserver": self.vserver,
            "volume": self.volume,
            "name": self.name,
            "snapshot_id": self.snapshot_id,
            "phase": self.phase.value,
            "ended": self.ended,
            "reason": self.reason,
            "fence_order": describe_order(self.order),
            "fence_mode": self.mode.value,
            "events": [
                [e.step.action.value, str(e.step.args.get("volume", "")), e.time]
                for e in self.events
            ],
        }


# --------------------------------------------------------------------------------------------
# The coordinator and the job manager
# --------------------------------------------------------------------------------------------


class SnapshotCoordinator:
    """The snapshot coordinator of the M-host on ``node``."""

    def __init__(self, cluster: Cluster, node: str) -> None:
        install(cluster)
        self.cluster = cluster
        self.node = node

    def begin(
        self,
        job_id: str,
        vserver: str,
        volume: str,
        name: str,
        snapshot_id: int,
        *,
        order: FenceOrder | None = None,
        mode: FenceMode = FenceMode.HELD,
        allowed_clients: frozenset[str] | None = None,
        on_commit: Callable[[SnapshotRecord], None] | None = None,
    ) -> SnapshotJob:
        """Read the volume table and start a consistency group over every member volume."""
        record = read_expandable(self.cluster.node(self.node).rdb, vserver, volume)
        members = {m.name: m.volume_id for m in record.members}
        order = member_fence_order(members) if order is None else order
        xv = self.cluster.expandable(vserver, volume)
        group = ConsistencyGroup(members, order, FenceMode(mode), xv)
        closed = [m for m in members if not xv.gate(m).is_open]
        if closed:
            raise StateError(f"{', '.join(closed)} fenced already: another snapshot or restore")
        return SnapshotJob(
            self.cluster,
            self.node,
            job_id,
            vserver,
            volume,
            name,
            snapshot_id,
            group,
            allowed_clients=allowed_clients,
            on_commit=on_commit,
        )


class SnapshotJobManager:
    """The snapshot job manager of the M-host on ``node`` (default: the first node that
    answers), with the snapshot table, the N-modules' caches, snapshot holds and restore.
    ``where`` names the cluster in error messages (e.g. ``"site A"``; empty: not named)."""

    def __init__(self, cluster: Cluster, node: str | None = None, *, where: str = "") -> None:
        install(cluster)
        self.cluster = cluster
        self.where = where
        self.node = node or cluster.any_up_node()
        self.coordinator = SnapshotCoordinator(cluster, self.node)
        self.table = SnapshotTable(cluster, self.node)
        self.caches: dict[str, SnapshotCache] = {
            n: SnapshotCache(cluster, n) for n in cluster.nodes
        }

    # -- snapshot jobs ------------------------------------------------------------------------

    def start(
        self,
        vserver: str,
        volume: str,
        name: str,
        *,
        order: FenceOrder | None = None,
        mode: FenceMode = FenceMode.HELD,
        allowed_clients: Sequence[str] | None = None,
    ) -> SnapshotJob:
        """Create a job for snapshot ``name`` of ``vserver``/``volume`` and start its
        consistency group; step it with :meth:`SnapshotJob.run_step` (or an interleaving
        driver) or run it with :meth:`SnapshotJob.run_to_end`."""
        replica = self.cluster.node(self.node).rdb
        read_expandable(replica, vserver, volume)
        snapshot_id = self.table.reserve(vserver, volume, name)
        number = counter_value(replica, "snapshot-job")
        self.cluster.rdb.commit(self.node, [(COUNTERS, "snapshot-job", number + 1)])
        clients = None if allowed_clients is None else frozenset(allowed_clients)
        return self.coordinator.begin(
            f"job{number}",
            vserver,
            volume,
            name,
            snapshot_id,
            order=order,
            mode=mode,
            allowed_clients=clients,
            on_commit=self._upload,
        )

    def create(
        self,
        vserver: str,
        volume: str,
        name: str,
        *,
        order: FenceOrder | None = None,
        mode: FenceMode = FenceMode.HELD,
        allowed_clients: Sequence[str] | None = None,
    ) -> SnapshotRecord:
        """Take snapshot ``name`` now, protocol steps back to back; the published row, or
        :class:`SnapshotFailedError` (volumes unfenced, nothing published)."""
        job = self.start(
            vserver, volume, name, order=order, mode=mode, allowed_clients=allowed_clients
        )
        record = job.run_to_end()
        if record is None:
            raise SnapshotFailedError(
                f"snapshot {name!r} of {vserver}/{volume} failed: {job.reason}"
            )
        return record

    def _upload(self, record: SnapshotRecord) -> None:
        for node, cache in self.caches.items():
            if self.cluster.fabric.is_up(node):
                cache.upload(record)

    def jobs(self, vserver: str, volume: str) -> list[dict[str, Any]]:
        """The recorded jobs of one expandable volume."""
        prefix = f"{vserver}/{volume}/"
        replica = self.cluster.node(self.node).rdb
        return [data for key, data in replica.items(JOBS_TABLE) if key.startswith(prefix)]

    # -- the snapshot table -------------------------------------------------------------------

    def snapshots(self, vserver: str, volume: str) -> list[SnapshotRecord]:
        """The snapshots of one expandable volume, by ID."""
        return self.table.records(vserver, volume)

    def get(self, vserver: str, volume: str, ref: str | int) -> SnapshotRecord:
        """The snapshot named by ``ref`` (name or ID)."""
        return self.table.get(vserver, volume, ref)

    def state(self, record: SnapshotRecord) -> SnapshotState:
        """Valid, partial or invalid, from what exists now."""
        return self.table.state(record)

    def delete(self, vserver: str, volume: str, ref: str | int) -> SnapshotRecord:
        """Delete a snapshot: its row first (it is no longer published), then its per-volume
        snapshots; those whose node does not answer are recorded as orphans for
        :meth:`cleanup`. A held snapshot is refused with
        :class:`~.snapshot_holds.SnapshotHeldError` and nothing changes. Returns the row
        deleted."""
        record = self.get(vserver, volume, ref)
        refuse_held(self.holds(vserver, volume), record, self.where)
        self.table.remove(record)
        for cache in self.caches.values():
            cache.drop(record)
        calls = VolumeSnapshots(self.cluster, self.node, vserver, volume)
        orphans: list[tuple[str, str, Any]] = []
        for entry in record.volumes:
            try:
                calls.delete(entry.volume_id, entry.sid, entry.uuid)
            except UnavailableError:
                key = f"{entry.volume_id}/{entry.sid}/{entry.uuid}"
                orphans.append((ORPHANS_TABLE, key, entry.to_json()))
            except NotFoundError:
                pass  # already gone (deleted by hand, or its volume was removed)
        if orphans:
            self.cluster.rdb.commit(self.node, orphans)
        return record

    # -- holds (:mod:`.snapshot_holds`) ----------------------------------------------------------

    def holds(self, vserver: str, volume: str, ref: str | int | None = None) -> list[SnapshotHold]:
        """The holds on ``vserver``/``volume``'s snapshots (on snapshot ``ref`` only, given),
        by snapshot ID then holder."""
        found = holds_in(self.cluster.node(self._origin()).rdb, vserver, volume)
        if ref is None:
            return found
        sid = self.get(vserver, volume, ref).snapshot_id
        return [h for h in found if h.snapshot_id == sid]

    def hold(self, vserver: str, volume: str, ref: str | int, holder: str) -> SnapshotHold:
        """Let ``holder`` hold snapshot ``ref`` (idempotent); :class:`NotFoundError` if there
        is no such snapshot."""
        check_holder(holder)
        found = SnapshotHold.of(self.get(vserver, volume, ref), holder)
        self.cluster.rdb.commit(self._origin(), [(HOLDS_TABLE, found.key, found.to_json())])
        return found

    def release(
        self, vserver: str, volume: str, holder: str, ref: str | int | None = None
    ) -> tuple[SnapshotHold, ...]:
        """Take ``holder``'s hold off snapshot ``ref`` (:class:`NotFoundError` if it holds
        none there), or every hold of ``holder`` on the volume (``ref`` None; none is fine).
        Returns the holds released."""
        mine = [h for h in self.holds(vserver, volume) if h.holder == holder]
        if ref is not None:
            sid = self.get(vserver, volume, ref).snapshot_id
            mine = [h for h in mine if h.snapshot_id == sid]
            if not mine:
                where = f" at {self.where}" if self.where else ""
                raise NotFoundError(
                    f"{holder!r} holds no snapshot {ref!r} of {vserver}/{volume}{where}"
                )
        if mine:
            self.cluster.rdb.commit(self._origin(), [(HOLDS_TABLE, h.key, None) for h in mine])
        return tuple(mine)

    def _origin(self) -> str:
        """The node a hold is committed from: this M-host's, or (it is down) one that answers
        (a hold is placed or released even while the job manager's node is away)."""
        return self.node if self.cluster.fabric.is_up(self.node) else self.cluster.any_up_node()

    def orphans(self) -> list[VolumeSnapshot]:
        """Per-volume snapshots of failed jobs and deleted snapshots not yet deleted."""
        replica = self.cluster.node(self.node).rdb
        return [VolumeSnapshot.from_json(data) for _key, data in replica.items(ORPHANS_TABLE)]

    def cleanup(self) -> int:
        """Delete the orphaned per-volume snapshots whose nodes answer; returns how many went."""
        replica = self.cluster.node(self.node).rdb
        done: list[tuple[str, str, Any]] = []
        for key, data in replica.items(ORPHANS_TABLE):
            orphan = VolumeSnapshot.from_json(data)
            calls = VolumeSnapshots(self.cluster, self.node, "", "")
            try:
                calls.delete(orphan.volume_id, orphan.sid, orphan.uuid)
            except UnavailableError:
                continue
            except NotFoundError:
                pass
            done.append((ORPHANS_TABLE, key, None))
        if done:
            self.cluster.rdb.commit(self.node, done)
        return len(done)

    def cache(self, node: str) -> SnapshotCache:
        """The snapshot-table cache of ``node``'s N-module."""
        try:
            return self.caches[node]
        except KeyError:
            raise NotFoundError(f"no node {node!r}") from None
