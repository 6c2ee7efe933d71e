"""Restoring a whole expandable volume: every member goes back to its per-volume snapshot under
fences; a partial or invalid snapshot, a half-done operation or a node that does not answer is
refused with a typed error and nothing changes; operations waiting at their first step run on the
restored volume afterwards."""

from __future__ import annotations

import pytest

from xvol.errors import NotFoundError, StateError, UnavailableError
from xvol.reference.cluster.cluster import Cluster
from xvol.reference.cluster.storage import AggregateStorage
from xvol.reference.snapshots.snapshot_coordinator import SnapshotJobManager
from xvol.reference.snapshots.snapshot_restore import SnapshotUnusableError, restore
from xvol.reference.snapshots.volume_snapshots import VolumeSnapshots
from xvol.vocabulary import Action, OperationKind, StepKind


def _cluster(nodes: int = 3, dcs: int = 2) -> Cluster:
    cluster = Cluster(
        nodes,
        seed=5,
        storage_factory=lambda n: AggregateStorage.memory(
            n, level="4", data_disks=2, blocks_per_disk=1024
        ),
    )
    mhost = cluster.mhost()
    mhost.create_vserver("vs1", ["root"])
    mhost.create_expandable_volume("vs1", "xv", data_constituents=dcs, volume_blocks=256)
    return cluster


def test_restore_brings_every_member_back_under_fences() -> None:
    cluster = _cluster()
    xv = cluster.expandable("vs1")
    handles = {f"/f{i}": xv.create(f"/f{i}", bytes([i]) * 50) for i in range(4)}
    manager = SnapshotJobManager(cluster)
    manager.create("vs1", "xv", "s")
    xv.replace("/f0", b"changed")
    xv.delete("/f1")
    xv.migrate(handles["/f2"], 1 + handles["/f2"].location_id % 2)
    xv.create("/later", b"new")
    result = restore(cluster, "vs1", "xv", "s")
    assert result.members == ("NS", "OLS", "DC1", "DC2")
    actions = [(e.step.action, e.step.args["volume"]) for e in result.events]
    assert actions == [
        *[(Action.FENCE, m) for m in ("NS", "OLS", "DC1", "DC2")],
        *[(Action.UNFENCE, m) for m in ("DC2", "DC1", "OLS", "NS")],
    ]
    for i in range(4):
        assert xv.read(f"/f{i}") == bytes([i]) * 50
    with pytest.raises(NotFoundError):
        xv.read("/later")
    assert xv.check_references().ok
    assert all(xv.gate(m).is_open for m in xv.members)
    calls = VolumeSnapshots(cluster, "node1", "vs1", "xv")
    assert all(len(calls.list(v.volume_id)) == 1 for v in manager.get("vs1", "xv", "s").volumes)
    xv.create("/after", b"ok")  # the restored volume takes new objects (no GOID reuse)
    assert xv.check_references().ok


def test_partial_and_invalid_snapshots_are_refused_and_nothing_changes() -> None:
    cluster = _cluster()
    xv = cluster.expandable("vs1")
    xv.create("/a", b"1")
    manager = SnapshotJobManager(cluster)
    partial = manager.create("vs1", "xv", "p")
    invalid = manager.create("vs1", "xv", "i")
    calls = VolumeSnapshots(cluster, "node1", "vs1", "xv")
    calls.delete(partial.member("DC1").volume_id, partial.member("DC1").sid)
    calls.delete(invalid.member("NS").volume_id, invalid.member("NS").sid)
    xv.replace("/a", b"2")
    with pytest.raises(SnapshotUnusableError, match="partial"):
        restore(cluster, "vs1", "xv", "p")
    with pytest.raises(SnapshotUnusableError, match="invalid"):
        restore(cluster, "vs1", "xv", "i")
    fresh = manager.create("vs1", "xv", "before-growth")
    cluster.mhost().add_data_constituent("vs1", "xv")
    with pytest.raises(SnapshotUnusableError, match="DC3"):
        restore(cluster, "vs1", "xv", fresh.snapshot_id)
    assert xv.read("/a") == b"2" and all(xv.gate(m).is_open for m in xv.members)


def test_a_half_done_operation_is_refused_and_a_waiting_one_runs_after() -> None:
    cluster = _cluster()
    xv = cluster.expandable("vs1")
    xv.create("/a", b"old")
    SnapshotJobManager(cluster).create("vs1", "xv", "s")
    xv.replace("/a", b"new")
    xv.submit(OperationKind.CREATE, xv.op_create("/half", b"h"), op_id="half")
    xv.scheduler.run_script([("half", StepKind.DATA_WRITE)])
    with pytest.raises(StateError, match="half done"):
        restore(cluster, "vs1", "xv", "s")
    xv.run_pending()
    xv.submit(OperationKind.CREATE, xv.op_create("/waiting", b"w"), op_id="waiting")
    restore(cluster, "vs1", "xv", "s")
    assert xv.read("/a") == b"old"
    xv.run_pending()
    assert xv.read("/waiting") == b"w" and xv.check_references().ok


def test_a_node_that_does_not_answer_refuses_the_restore_and_changes_nothing() -> None:
    cluster = _cluster()
    xv = cluster.expandable("vs1")
    xv.create("/a", b"old")
    SnapshotJobManager(cluster, "node1").create("vs1", "xv", "s")
    xv.replace("/a", b"new")
    cluster.set_node_down("node3")
    with pytest.raises(UnavailableError):
        restore(cluster, "vs1", "xv", "s", node="node1")
    cluster.set_node_down("node3", False)
    assert xv.read("/a") == b"new" and all(xv.gate(m).is_open for m in xv.members)
