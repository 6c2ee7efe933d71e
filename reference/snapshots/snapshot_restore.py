"""Restoring a whole expandable volume to one of its consistent snapshots.

The seed's resync begins with "the source InfiniteVol is restored to the common snapshot": every
member volume goes back to its own per-volume snapshot of that expandable-volume snapshot, so
namespace, OLS and data constituents agree again as they did at snapshot time. :func:`restore`
does this on the M-host:

1. the snapshot must be **valid** now (:class:`SnapshotUnusableError` for a partial or invalid
   one: restoring it would leave names without data, or lose the objects of a constituent added
   since), and no client operation may be *half done* (one that has run some steps; restoring
   under it would undo its first steps and keep its last) - operations waiting at their first
   step are fine: they run on the restored volume;
2. every owner must answer (else :class:`xvol.errors.UnavailableError`, nothing changed);
3. the members are **fenced** in the seed's order (client steps that reach them are deferred,
   not lost), each member first keeps an *undo* per-volume snapshot of its present state and is
   then restored to its per-volume snapshot; if any restore fails, the members already restored
   go back to their undo snapshots, so the expandable volume is restored whole or not at all;
4. the undo snapshots are deleted and the members unfenced in reverse order.

Uses: the cluster, the snapshot table, the per-volume snapshot service, the consistency group of
the coordinator; the vocabulary and errors.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from xvol.errors import NotFoundError, StateError, UnavailableError, XvolError
from xvol.reference.cluster.cluster import Cluster
from xvol.reference.cluster.rdb import read_expandable
from xvol.reference.snapshots.snapshot_coordinator import (
    ConsistencyGroup,
    ProtocolEvent,
    member_fence_order,
)
from xvol.reference.snapshots.snapshot_table import (
    SnapshotRecord,
    SnapshotState,
    SnapshotTable,
    snapshot_state_of,
)
from xvol.reference.snapshots.volume_snapshots import VolumeSnapshots
from xvol.vocabulary import Action, FenceMode, TraceStep


class SnapshotUnusableError(StateError):
    """The snapshot is partial (data missing) or invalid (namespace missing): refused."""


@dataclass(frozen=True)
class RestoreResult:
    """What a restore did: the snapshot restored, the members restored in order, and the
    fence/unfence events with simulated times."""

    record: SnapshotRecord
    members: tuple[str, ...]
    events: tuple[ProtocolEvent, ...]


def restore(
    cluster: Cluster, vserver: str, volume: str, ref: str | int, *, node: str | None = None
) -> RestoreResult:
    """Restore every member of ``vserver``/``volume`` to snapshot ``ref`` (name or ID), from
    the M-host of ``node`` (see the module text)."""
    node = node or cluster.any_up_node()
    table = SnapshotTable(cluster, node)
    record = table.get(vserver, volume, ref)
    missing = table.missing(record)
    state = snapshot_state_of(missing)
    if state is not SnapshotState.VALID:
        raise SnapshotUnusableError(
            f"snapshot {record.name!r} is {state.value} ({', '.join(missing)} missing): "
            "only a valid snapshot can be restored"
        )
    xv = cluster.expandable(vserver, volume)
    busy = [r.op_id for r in xv.scheduler.unfinished() if r.steps_run]
    if busy:
        raise StateError(
            f"{len(busy)} client operations are half done ({', '.join(busy[:5])}): "
            "let them finish (run the scheduler) before restoring"
        )
    members = {
        m.name: m.volume_id
        for m in read_expandable(cluster.node(node).rdb, vserver, volume).members
    }
    calls = VolumeSnapshots(cluster, node, vserver, volume)
    for volume_id in members.values():
        calls.ping(volume_id)
    order = member_fence_order(members)
    group = ConsistencyGroup(members, order, FenceMode.HELD, xv)
    events: list[ProtocolEvent] = []

    def event(action: Action, member: str) -> None:
        events.append(
            ProtocolEvent(cluster.fabric.clock.now, TraceStep(action, {"volume": member}))
        )

    sequence = [m for stage in order for m in sorted(stage)]
    undo: dict[str, tuple[int, str]] = {}
    restored: list[str] = []
    try:
        for member in sequence:
            group.fence(member)
            event(Action.FENCE, member)
        for member in sequence:
            entry = record.member(member)
            undo[member] = calls.create(members[member], f"restore-undo.{record.snapshot_id}")
            calls.restore(entry.volume_id, entry.sid, entry.uuid)
            restored.append(member)
    except XvolError:
        for member in reversed(restored):
            sid, snap_uuid = undo[member]
            calls.restore(members[member], sid, snap_uuid)
        raise
    finally:
        for member, (sid, snap_uuid) in undo.items():
            with contextlib.suppress(UnavailableError, NotFoundError):
                calls.delete(members[member], sid, snap_uuid)
        for member in reversed(sequence):
            if member in group.fenced():
                group.unfence(member)
                event(Action.UNFENCE, member)
    return RestoreResult(record, tuple(restored), tuple(events))
