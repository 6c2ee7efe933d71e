"""The snapshot table: one row per expandable-volume snapshot with the seed's fields A-G, kept in
the replicated database (it survives node restarts), IDs never reused, names unique; the state
(valid, partial, invalid) is computed from what exists; the N-modules' caches follow the table."""

from __future__ import annotations

import pytest

from xvol.errors import AlreadyExistsError, InvalidArgumentError, NotFoundError
from xvol.reference.cluster.cluster import Cluster
from xvol.reference.cluster.storage import AggregateStorage
from xvol.reference.snapshots.snapshot_coordinator import SnapshotJobManager
from xvol.reference.snapshots.snapshot_table import (
    SNAPSHOT_TABLE,
    SnapshotRecord,
    SnapshotState,
    check_snapshot_name,
    records,
)
from xvol.reference.snapshots.volume_snapshots import VolumeSnapshots


def _cluster(nodes: int = 3, dcs: int = 2) -> Cluster:
    cluster = Cluster(
        nodes,
        seed=2,
        storage_factory=lambda n: AggregateStorage.memory(
            n, level="4", data_disks=2, blocks_per_disk=1024
        ),
    )
    mhost = cluster.mhost()
    mhost.create_vserver("vs1", ["root", "ann"])
    mhost.create_expandable_volume("vs1", "xv", data_constituents=dcs, volume_blocks=256)
    return cluster


def test_a_row_holds_fields_a_to_g_and_survives_restarting_every_node() -> None:
    cluster = _cluster()
    cluster.expandable("vs1").create("/a", b"x")
    manager = SnapshotJobManager(cluster)
    record = manager.create("vs1", "xv", "daily", allowed_clients=["ann"])
    assert (record.vserver, record.volume, record.name, record.snapshot_id) == (
        "vs1",
        "xv",
        "daily",
        1,
    )  # fields A, B, C, D
    assert [(v.member, v.volume_id) for v in record.volumes] == [
        ("NS", "vs1.xv.NS"),
        ("OLS", "vs1.xv.OLS"),
        ("DC1", "vs1.xv.DC1"),
        ("DC2", "vs1.xv.DC2"),
    ]  # field F
    assert all(v.sid == 1 for v in record.volumes)  # field E
    assert record.timestamp == max(v.captured_at for v in record.volumes) > 0  # field G
    assert record.allowed_clients == frozenset({"ann"}) and record.fence_mode == "held"
    assert SnapshotRecord.from_json(record.to_json()) == record
    for node in list(cluster.nodes):
        cluster.restart_node(node)
    for node in cluster.nodes:
        assert records(cluster.node(node).rdb, "vs1", "xv") == [record]
    assert manager.state(record) is SnapshotState.VALID


def test_ids_are_never_reused_and_names_are_unique_and_checked() -> None:
    cluster = _cluster(dcs=1)
    manager = SnapshotJobManager(cluster)
    first = manager.create("vs1", "xv", "a")
    manager.delete("vs1", "xv", "a")
    second = manager.create("vs1", "xv", "a")
    assert second.snapshot_id == first.snapshot_id + 1
    with pytest.raises(AlreadyExistsError):
        manager.create("vs1", "xv", "a")
    for bad in ("", "a/b", "x" * 65, "123", "tab\t"):
        with pytest.raises(InvalidArgumentError):
            check_snapshot_name(bad)
    assert [r.name for r in manager.snapshots("vs1", "xv")] == ["a"]
    assert manager.get("vs1", "xv", second.snapshot_id) == second
    with pytest.raises(NotFoundError):
        manager.get("vs1", "xv", "nope")


def test_deleting_a_snapshot_removes_its_row_and_its_per_volume_snapshots() -> None:
    cluster = _cluster(dcs=2)
    manager = SnapshotJobManager(cluster)
    record = manager.create("vs1", "xv", "a")
    manager.delete("vs1", "xv", "a")
    calls = VolumeSnapshots(cluster, "node1", "vs1", "xv")
    assert all(calls.list(v.volume_id) == [] for v in record.volumes)
    assert cluster.replica().get(SNAPSHOT_TABLE, record.key) is None


def test_state_is_partial_when_data_is_missing_and_invalid_when_the_namespace_is() -> None:
    cluster = _cluster(dcs=2)
    manager = SnapshotJobManager(cluster)
    calls = VolumeSnapshots(cluster, "node1", "vs1", "xv")
    a = manager.create("vs1", "xv", "a")
    b = manager.create("vs1", "xv", "b")
    c = manager.create("vs1", "xv", "c")
    assert [manager.state(r) for r in (a, b, c)] == [SnapshotState.VALID] * 3
    dc2 = b.member("DC2")
    calls.delete(dc2.volume_id, dc2.sid)  # one per-volume snapshot is deleted by hand
    ns = c.member("NS")
    calls.delete(ns.volume_id, ns.sid)
    assert manager.state(b) is SnapshotState.PARTIAL
    assert manager.state(c) is SnapshotState.INVALID
    assert manager.table.missing(b) == ["DC2"]
    cluster.mhost().add_data_constituent("vs1", "xv")  # DC3 has no copy of older snapshots
    assert manager.state(a) is SnapshotState.PARTIAL and manager.table.missing(a) == ["DC3"]
    d = manager.create("vs1", "xv", "d")
    assert manager.state(d) is SnapshotState.VALID and len(d.volumes) == 5


def test_a_removed_constituent_makes_older_snapshots_partial() -> None:
    cluster = _cluster(dcs=2)
    manager = SnapshotJobManager(cluster)
    record = manager.create("vs1", "xv", "a")
    cluster.mhost().remove_data_constituent("vs1", "xv", 2)
    assert manager.state(record) is SnapshotState.PARTIAL
    assert manager.table.missing(record) == ["DC2"]


def test_the_n_module_caches_follow_the_table_and_refill_when_the_replica_moves() -> None:
    cluster = _cluster(dcs=1)
    manager = SnapshotJobManager(cluster)
    cache = manager.cache("node2")
    record = manager.create("vs1", "xv", "a")
    assert cache.uploads == 1 and cache.lookup("vs1", "xv", "a") == record
    refills = cache.refills
    assert cache.lookup("vs1", "xv", record.snapshot_id) == record
    assert cache.refills == refills and cache.hits >= 1  # unchanged replica: no refill
    manager.delete("vs1", "xv", "a")
    with pytest.raises(NotFoundError):
        cache.lookup("vs1", "xv", "a")
    assert cache.list("vs1", "xv") == []
    with pytest.raises(NotFoundError):
        manager.cache("node9")
