"""The per-volume snapshot service on every node: create, list, delete and restore a member
volume's snapshots over CF; read a snapshot through the member store's own code, read-only; a
deleted snapshot (or a later one reusing its ID) is reported missing, never read in its place;
a node that does not answer raises UnavailableError."""

from __future__ import annotations

import pytest

from xvol.errors import InvalidArgumentError, UnavailableError
from xvol.reference.cluster.cluster import Cluster
from xvol.reference.cluster.storage import AggregateStorage
from xvol.reference.repository.constituent import object_path
from xvol.reference.snapshots.volume_snapshots import (
    SERVICE,
    ReadOnlySnapshotError,
    SnapshotDataMissingError,
    SnapshotFiles,
    VolumeSnapshots,
    install,
)


def _cluster() -> Cluster:
    cluster = Cluster(
        2,
        seed=1,
        storage_factory=lambda n: AggregateStorage.memory(
            n, level="4", data_disks=2, blocks_per_disk=1024
        ),
    )
    mhost = cluster.mhost()
    mhost.create_vserver("vs1", ["root"])
    mhost.create_expandable_volume("vs1", "xv", data_constituents=1, volume_blocks=256)
    return cluster


def test_the_service_creates_lists_reads_restores_and_deletes_per_volume_snapshots() -> None:
    cluster = _cluster()
    xv = cluster.expandable("vs1")
    handle = xv.create("/a", b"before")
    calls = VolumeSnapshots(cluster, "node2", "vs1", "xv")
    sid, snap_uuid = calls.create("vs1.xv.DC1", "one")
    assert [s["name"] for s in calls.list("vs1.xv.DC1")] == ["one"]
    xv.replace("/a", b"after!")
    _, data = calls.read("vs1.xv.DC1", sid, "read", {"goid": handle.goid, "offset": 0, "size": 99})
    assert data == b"before"
    _, live = calls.read("vs1.xv.DC1", 0, "read", {"goid": handle.goid, "offset": 0, "size": 99})
    assert live == b"after!"
    ino = calls.inode("vs1.xv.DC1", sid, object_path(handle.goid), snap_uuid)
    assert calls.read_inode("vs1.xv.DC1", sid, ino, 2, 3, snap_uuid) == (6, b"for")
    calls.restore("vs1.xv.DC1", sid, snap_uuid)
    assert xv.read("/a") == b"before"
    calls.delete("vs1.xv.DC1", sid, snap_uuid)
    assert calls.list("vs1.xv.DC1") == []
    with pytest.raises(SnapshotDataMissingError):
        calls.read("vs1.xv.DC1", sid, "goids", {}, snap_uuid)
    calls.create("vs1.xv.DC1", "two")  # reuses the small ID under a new UUID
    with pytest.raises(SnapshotDataMissingError):
        calls.read("vs1.xv.DC1", sid, "goids", {}, snap_uuid)
    with pytest.raises(SnapshotDataMissingError):
        calls.restore("vs1.xv.DC1", sid, snap_uuid)


def test_snapshot_files_and_reads_refuse_every_change() -> None:
    cluster = _cluster()
    calls = VolumeSnapshots(cluster, "node1", "vs1", "xv")
    sid, _ = calls.create("vs1.xv.OLS", "s")
    for method in ("insert", "remove", "checkpoint"):
        with pytest.raises(ReadOnlySnapshotError):
            calls.read("vs1.xv.OLS", sid, method, {"goid": 1, "location_id": 1, "policy_id": 0})
    volume = cluster.mounted("vs1", "xv", "OLS").files.volume  # type: ignore[attr-defined]
    files = SnapshotFiles(volume.view(sid), "s")
    assert files.exists("/ols.table") and not files.stat("/ols.table").is_dir
    for change in (files.mkdir, files.create, files.unlink, files.rmdir):
        with pytest.raises(ReadOnlySnapshotError):
            change("/x")
    with pytest.raises(ReadOnlySnapshotError):
        files.checkpoint()
    with pytest.raises(ReadOnlySnapshotError):
        files.write("/ols.table", 0, b"x")


def test_bad_requests_and_nodes_that_do_not_answer_are_typed_errors() -> None:
    cluster = _cluster()
    install(cluster)
    install(cluster)  # idempotent
    assert all(SERVICE in node.services for node in cluster.nodes.values())
    calls = VolumeSnapshots(cluster, "node1", "vs1", "xv")
    with pytest.raises(InvalidArgumentError):
        calls.read("vs1.xv.NS", 300, "walk", {})
    with pytest.raises(InvalidArgumentError):
        calls._call("vs1.xv.NS", "explode", {})
    owner = cluster.member_location("vs1", "xv", "DC1")[0]
    cluster.set_node_down(owner)
    with pytest.raises(UnavailableError):
        calls.create("vs1.xv.DC1", "s")
    cluster.set_node_down(owner, False)
    assert calls.create("vs1.xv.DC1", "s")[0] == 1
