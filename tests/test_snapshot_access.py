"""The snapshot access layer: a request (snapshot ID, namespace ID, inode) becomes the data
constituent's snapshot handle with the active file system's ID 0 replaced by that constituent's
snapshot ID; a whole snapshot reads through one object, by path and by GOID, exactly as it was at
snapshot time; it cannot be written; missing data is a typed error, never other data."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xvol.errors import InvalidArgumentError, NotFoundError, PermissionDeniedError
from xvol.reference.cluster.cluster import Cluster
from xvol.reference.cluster.storage import AggregateStorage
from xvol.reference.repository.namespace import LocatorMode
from xvol.reference.snapshots.snapshot_access import SnapshotAccessLayer, SnapshotRequest
from xvol.reference.snapshots.snapshot_coordinator import SnapshotJobManager
from xvol.reference.snapshots.volume_snapshots import (
    ReadOnlySnapshotError,
    SnapshotDataMissingError,
    VolumeSnapshots,
)


def _cluster(locator: LocatorMode = LocatorMode.REDIRECTOR_GOID, dcs: int = 3) -> Cluster:
    cluster = Cluster(
        2,
        seed=3,
        storage_factory=lambda n: AggregateStorage.memory(
            n, level="4", data_disks=2, blocks_per_disk=1024
        ),
    )
    mhost = cluster.mhost()
    mhost.create_vserver("vs1", ["root", "ann", "bob"])
    mhost.create_expandable_volume(
        "vs1", "xv", data_constituents=dcs, volume_blocks=256, locator=locator
    )
    return cluster


def test_a_request_is_translated_to_the_data_constituents_snapshot_handle() -> None:
    cluster = _cluster()
    xv = cluster.expandable("vs1")
    xv.mkdir("/d")
    handle = xv.create("/d/a", b"hello", location=2)
    manager = SnapshotJobManager(cluster)
    manager.create("vs1", "xv", "first")
    record = manager.create("vs1", "xv", "second")  # per-volume IDs 2 on every member
    layer = SnapshotAccessLayer(cluster, "node2", manager.cache("node2"))
    view = layer.open("vs1", "xv", "second")
    request = view.request_for("/d/a")
    assert request.snapshot_id == record.snapshot_id and request.namespace_id == "vs1.xv.NS"
    data = view.resolve(request)
    assert (data.member, data.volume_id, data.goid) == ("DC2", "vs1.xv.DC2", handle.goid)
    assert data.sid == record.member("DC2").sid == 2  # not 0, the active file system
    assert view.read_handle(data) == b"hello" and layer.translations == 1
    with pytest.raises(InvalidArgumentError):
        view.resolve(SnapshotRequest(99, "vs1.xv.NS", request.inode))
    with pytest.raises(InvalidArgumentError):
        view.resolve(SnapshotRequest(request.snapshot_id, "vs1.xv.OLS", request.inode))
    with pytest.raises(InvalidArgumentError):
        view.request_for("/d")  # a directory has no stub


@settings(max_examples=5, deadline=None)
@given(seed=st.integers(0, 1000))
def test_reads_by_path_and_by_goid_equal_the_content_at_snapshot_time(seed: int) -> None:
    import random

    rng = random.Random(seed)
    cluster = _cluster()
    xv = cluster.expandable("vs1")
    content: dict[str, bytes] = {}
    for i in range(8):
        content[f"/f{i}"] = rng.randbytes(rng.randrange(0, 9000))
        xv.create(f"/f{i}", content[f"/f{i}"])
    manager = SnapshotJobManager(cluster)
    manager.create("vs1", "xv", "s")
    goids = {p: xv.stat(p).handle.goid for p in content}  # type: ignore[union-attr]
    for i in range(8):  # change everything after the snapshot
        action = rng.choice(["write", "delete", "migrate"])
        if action == "write":
            xv.replace(f"/f{i}", b"changed")
        elif action == "delete":
            xv.delete(f"/f{i}")
        else:
            location = xv.locate(goids[f"/f{i}"]).location_id
            xv.migrate(goids[f"/f{i}"], 1 + location % 3)
    xv.create("/new", b"later")
    view = SnapshotAccessLayer(cluster, "node1").open("vs1", "xv", "s")
    assert view.walk() == sorted((p, goids[p]) for p in content)
    for path, data in content.items():
        assert view.read(path) == data
        assert view.read_object(goids[path]) == data
        assert view.stat(path).size == len(data)
        if data:
            assert view.read(path, 1, 3) == data[1:4]
    assert [e.name for e in view.readdir("/")] == sorted(p[1:] for p in content)
    with pytest.raises(NotFoundError):
        view.read("/new")
    assert view.check_references().ok


def test_a_snapshot_is_read_only() -> None:
    cluster = _cluster(dcs=1)
    cluster.expandable("vs1").create("/a", b"x")
    SnapshotJobManager(cluster).create("vs1", "xv", "s")
    view = SnapshotAccessLayer(cluster, "node1").open("vs1", "xv", "s")
    for write in (view.write, view.create, view.unlink, view.mkdir, view.rename):
        with pytest.raises(ReadOnlySnapshotError):
            write("/a", b"y")
    ns = view.record.member("NS")
    calls = VolumeSnapshots(cluster, "node1", "vs1", "xv")
    with pytest.raises(ReadOnlySnapshotError):  # even straight at the D-module
        calls.read(ns.volume_id, ns.sid, "unlink", {"path": "/a"})
    assert view.read("/a") == b"x"


def test_only_admitted_users_and_allowed_clients_open_a_snapshot() -> None:
    cluster = _cluster(dcs=1)
    SnapshotJobManager(cluster).create("vs1", "xv", "s", allowed_clients=["ann"])
    layer = SnapshotAccessLayer(cluster, "node1")
    assert layer.open("vs1", "xv", "s", user="ann").name == "s"
    with pytest.raises(PermissionDeniedError):
        layer.open("vs1", "xv", "s", user="bob")
    with pytest.raises(PermissionDeniedError):
        layer.open("vs1", "xv", "s", user="eve")


def test_a_partial_snapshot_reads_what_it_holds_and_refuses_the_rest() -> None:
    cluster = _cluster(dcs=2)
    xv = cluster.expandable("vs1")
    xv.create("/one", b"1", location=1)
    xv.create("/two", b"2", location=2)
    record = SnapshotJobManager(cluster).create("vs1", "xv", "s")
    dc2 = record.member("DC2")
    calls = VolumeSnapshots(cluster, "node1", "vs1", "xv")
    calls.delete(dc2.volume_id, dc2.sid)
    calls.create(dc2.volume_id, "reuses-the-id")  # the same small ID, another snapshot
    view = SnapshotAccessLayer(cluster, "node1").open("vs1", "xv", "s")
    assert view.read("/one") == b"1"
    with pytest.raises(SnapshotDataMissingError):
        view.read("/two")
    assert view.state().value == "partial"
    report = view.check_references()
    assert report.dangling_locations and not report.dangling_names


def test_a_stale_hint_in_a_redirector_takes_the_snapshots_ols_path() -> None:
    cluster = _cluster(LocatorMode.REDIRECTOR_HANDLE, dcs=2)
    xv = cluster.expandable("vs1")
    handle = xv.create("/a", b"moved", location=1)
    xv.migrate(handle, 2)  # the redirector still hints DC1
    SnapshotJobManager(cluster).create("vs1", "xv", "s")
    view = SnapshotAccessLayer(cluster, "node1").open("vs1", "xv", "s")
    data = view.resolve(view.request_for("/a"))
    assert data.member == "DC2" and view.read("/a") == b"moved"


def test_entry_goid_namespaces_are_read_by_path_and_goid_without_stub_requests() -> None:
    cluster = _cluster(LocatorMode.ENTRY_GOID, dcs=1)
    xv = cluster.expandable("vs1")
    handle = xv.create("/a", b"entry")
    SnapshotJobManager(cluster).create("vs1", "xv", "s")
    view = SnapshotAccessLayer(cluster, "node1").open("vs1", "xv", "s")
    assert view.read("/a") == b"entry" and view.read_object(handle.goid) == b"entry"
    with pytest.raises(InvalidArgumentError, match="no stub files"):
        view.request_for("/a")
