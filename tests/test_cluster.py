"""The cluster: the volume table and VLDB follow every membership change, CF calls are LPC on the
owning node and RPC elsewhere, a node marked down fails new operations without changing anything
and stalls in-flight ones until it is back, a restarted node rebuilds its RDB replica and its
volumes from what they persisted, policies and vservers keep objects where they belong."""

from __future__ import annotations

import pytest

from xvol.errors import InvalidArgumentError, NotFoundError, StateError, UnavailableError
from xvol.reference.cluster.cluster import Cluster, build_cluster
from xvol.reference.cluster.rdb import VLDB
from xvol.reference.cluster.storage import AggregateStorage
from xvol.reference.repository.handles import ForeignObjectError
from xvol.reference.repository.steps import OpState
from xvol.vocabulary import VolumeRole


def _storage(node: str) -> AggregateStorage:
    return AggregateStorage.memory(node, blocks_per_disk=1024)


def _cluster(nodes: int = 3, dcs: int = 2, **kwargs: object) -> Cluster:
    return build_cluster(
        nodes=nodes,
        data_constituents=dcs,
        seed=4,
        volume_blocks=256,
        storage_factory=_storage,
        **kwargs,
    )  # type: ignore[arg-type]


def _node_of(cluster: Cluster, volume_id: str) -> str:
    return str(cluster.replica().get(VLDB, volume_id)["node"])


def test_volume_table_and_vldb_follow_additions_and_removals() -> None:
    cluster = _cluster()
    rows = cluster.volume_table()
    assert [(vs, xv, m.name, m.role) for vs, xv, m in rows] == [
        ("vs1", "xv", "NS", VolumeRole.NAMESPACE),
        ("vs1", "xv", "OLS", VolumeRole.OLS),
        ("vs1", "xv", "DC1", VolumeRole.DATA),
        ("vs1", "xv", "DC2", VolumeRole.DATA),
    ]
    assert {_node_of(cluster, m.volume_id) for _, _, m in rows} == {"node1", "node2", "node3"}
    node, volume_id = cluster.member_location("vs1", "xv", "OLS")
    assert (node, volume_id) == (_node_of(cluster, "vs1.xv.OLS"), "vs1.xv.OLS")
    assert cluster.mounted("vs1", "xv", "OLS").role is VolumeRole.OLS
    mhost = cluster.mhost()
    k = mhost.add_data_constituent("vs1", "xv", node="node3")
    assert k == 3 and _node_of(cluster, "vs1.xv.DC3") == "node3"
    assert "vs1.xv.DC3" in cluster.node("node3").dmodule.volumes
    xv = cluster.expandable("vs1")
    handles = [xv.create(f"/f{i}", bytes([i]) * 100) for i in range(6)]
    assert 3 in {h.location_id for h in handles}
    moved = mhost.remove_data_constituent("vs1", "xv", 3, migrate=True)
    assert moved == sum(1 for h in handles if h.location_id == 3)
    assert cluster.replica().get(VLDB, "vs1.xv.DC3") is None
    assert "vs1.xv.DC3" not in cluster.node("node3").dmodule.volumes
    assert "vs1.xv.DC3" not in cluster.node("node3").storage.volume_ids()  # type: ignore[attr-defined]
    assert [m.name for _, _, m in cluster.volume_table()] == ["NS", "OLS", "DC1", "DC2"]
    assert all(xv.read(f"/f{i}") == bytes([i]) * 100 for i in range(6))
    assert mhost.add_data_constituent("vs1", "xv") == 4  # numbers are never reused
    assert cluster.rdb.consistent()


def test_removal_refusals_change_nothing() -> None:
    cluster = _cluster(dcs=2)
    xv = cluster.expandable("vs1")
    handle = xv.create("/a", b"x")
    table = cluster.volume_table()
    with pytest.raises(StateError):
        cluster.mhost().remove_data_constituent("vs1", "xv", handle.location_id)
    with pytest.raises(InvalidArgumentError):
        cluster.mhost().remove_data_constituent("vs1", "xv", 0)
    with pytest.raises(NotFoundError):
        cluster.mhost().remove_data_constituent("vs1", "xv", 9)
    assert cluster.volume_table() == table
    other = 1 if handle.location_id == 2 else 2
    cluster.mhost().remove_data_constituent("vs1", "xv", other)
    with pytest.raises(StateError):
        cluster.mhost().remove_data_constituent("vs1", "xv", handle.location_id, migrate=True)
    assert xv.read("/a") == b"x"


def test_calls_to_volumes_on_the_entry_node_are_lpc_and_others_rpc() -> None:
    cluster = _cluster(nodes=2, dcs=2)
    xv = cluster.expandable("vs1")
    handle = xv.create("/a", b"x")
    dc_node = _node_of(cluster, f"vs1.xv.DC{handle.location_id}")
    for entry in ("node1", "node2"):
        access = cluster.node(entry).nmodule.access("vs1", "xv")
        before = cluster.fabric.counters.snapshot()
        xv.run("read", xv.op_read_object(handle, access=access))  # fast path: one data call
        after = cluster.fabric.counters.snapshot()
        kind = "lpc_messages" if entry == dc_node else "rpc_messages"
        assert after[kind] == before[kind] + 1
    assert cluster.fabric.clock.now > 0


def test_a_node_marked_down_fails_new_operations_and_changes_nothing() -> None:
    cluster = _cluster(nodes=3, dcs=3)
    xv = cluster.expandable("vs1")
    xv.create("/keep", b"k")
    ols_node = _node_of(cluster, "vs1.xv.OLS")
    cluster.set_node_down(ols_node)
    for attempt in (
        lambda: xv.create("/new", b"n"),
        lambda: xv.delete("/keep"),
        lambda: xv.read("/keep"),
    ):
        with pytest.raises(UnavailableError):
            attempt()
    cluster.set_node_down(ols_node, False)
    assert xv.read("/keep") == b"k"
    assert xv.check_references().names == 1 and xv.check_references().ok


def test_an_in_flight_operation_waits_for_a_node_and_then_completes() -> None:
    cluster = _cluster(nodes=3, dcs=3)
    xv = cluster.expandable("vs1")
    op = xv.submit("create", xv.op_create("/a", b"x"))  # preflight passed: all nodes answer
    ns_node = _node_of(cluster, "vs1.xv.NS")
    xv.scheduler.run_step(op)  # data write
    xv.scheduler.run_step(op)  # OLS insert
    cluster.set_node_down(ns_node)
    xv.run_pending()
    assert xv.scheduler.records[op].state is OpState.DEFERRED
    cluster.set_node_down(ns_node, False)
    xv.run_pending()
    assert xv.scheduler.records[op].state is OpState.DONE
    assert xv.read("/a") == b"x" and xv.check_references().ok


def test_a_restarted_node_rebuilds_its_replica_and_volumes_and_catches_up() -> None:
    cluster = _cluster(nodes=3, dcs=3)
    xv = cluster.expandable("vs1")
    for i in range(5):
        xv.create(f"/f{i}", bytes([i]) * 3000)
    cluster.set_node_down("node2")
    cluster.mhost().set_users("vs1", ["root", "bob"])  # node2 misses this commit
    assert cluster.node("node2").rdb.version < cluster.node("node1").rdb.version
    cluster.restart_node("node2")
    assert cluster.rdb.consistent()
    assert cluster.node("node2").rdb.state() == cluster.node("node1").rdb.state()
    assert all(xv.read(f"/f{i}") == bytes([i]) * 3000 for i in range(5))
    assert xv.check_references().ok


def test_policies_pin_objects_and_enforcement_migrates_them() -> None:
    cluster = _cluster(nodes=2, dcs=3)
    xv = cluster.expandable("vs1")
    handles = [xv.create(f"/p{i}", b"p", policy_id=7) for i in range(6)]
    assert {h.location_id for h in handles} == {1, 2, 3}
    cluster.mhost().set_policy("vs1", "xv", 7, [2])
    assert cluster.mhost().enforce_policies("vs1", "xv") == 4
    assert {xv.locate(h.goid).location_id for h in handles} == {2}
    assert xv.create("/p-new", b"", policy_id=7).location_id == 2
    with pytest.raises(InvalidArgumentError):
        cluster.mhost().set_policy("vs1", "xv", 8, [9])


def test_vservers_are_separate_namespaces_and_security_domains() -> None:
    cluster = _cluster(nodes=2, dcs=2, vservers=("vs1", "vs2"))
    one, two = cluster.expandable("vs1"), cluster.expandable("vs2")
    handle = one.create("/same-name", b"one")
    two.create("/same-name", b"two")
    assert (one.read("/same-name"), two.read("/same-name")) == (b"one", b"two")
    assert one.repository != two.repository
    with pytest.raises(ForeignObjectError):
        two.read_object(handle.goid)
    with pytest.raises(ForeignObjectError):
        two.read_object(one.codec.encode(handle))
    with pytest.raises(NotFoundError):
        cluster.expandable("vs3")
    assert cluster.vserver("vs2").root_volume == "xv"
