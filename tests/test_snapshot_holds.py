"""Snapshot holds are enforced where every delete passes (reference/snapshots/snapshot_holds.py):
any snapshot job manager refuses to delete a held expandable-volume snapshot, and the D-module's
per-volume snapshot service refuses to delete a member copy of a held snapshot, whoever asks;
both name the holders and change nothing; releasing the hold lets the delete through."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xvol.errors import InvalidArgumentError, NotFoundError
from xvol.reference.cluster.cf import CFRequest
from xvol.reference.cluster.cluster import Cluster
from xvol.reference.cluster.rdb import read_expandable, read_location
from xvol.reference.cluster.storage import AggregateStorage
from xvol.reference.snapshots.snapshot_coordinator import SnapshotJobManager
from xvol.reference.snapshots.snapshot_holds import (
    SnapshotHeldError,
    SnapshotHold,
    holds_in,
    member_holds,
)
from xvol.reference.snapshots.volume_snapshots import VolumeSnapshots


def _cluster(nodes: int = 2, dcs: int = 2) -> Cluster:
    cluster = Cluster(
        nodes,
        seed=7,
        storage_factory=lambda n: AggregateStorage.memory(
            n, level="4", data_disks=2, blocks_per_disk=1024
        ),
    )
    mhost = cluster.mhost()
    mhost.create_vserver("vs1", ["root"])
    mhost.create_expandable_volume("vs1", "xv", data_constituents=dcs, volume_blocks=256)
    cluster.expandable("vs1").create("/a", b"one")
    return cluster


def _per_volume(cluster: Cluster) -> dict[str, list[str]]:
    """Volume ID -> UUIDs of its per-volume snapshots."""
    calls = VolumeSnapshots(cluster, "node1", "vs1", "xv")
    members = read_expandable(cluster.replica(), "vs1", "xv").members
    return {m.volume_id: sorted(s["uuid"] for s in calls.list(m.volume_id)) for m in members}


def test_every_job_manager_refuses_to_delete_a_held_snapshot_and_changes_nothing() -> None:
    cluster = _cluster()
    placed = SnapshotJobManager(cluster)
    kept = placed.create("vs1", "xv", "kept")
    placed.hold("vs1", "xv", "kept", "backup job 7")
    before_rdb, before_copies = cluster.replica().version, _per_volume(cluster)
    for manager in (placed, SnapshotJobManager(cluster, "node2"), SnapshotJobManager(cluster)):
        with pytest.raises(SnapshotHeldError, match=r"'kept'.*held by backup job 7") as info:
            manager.delete("vs1", "xv", kept.snapshot_id)
        assert info.value.snapshot == "kept" and info.value.holders == ("backup job 7",)
    assert cluster.replica().version == before_rdb and _per_volume(cluster) == before_copies
    assert [r.name for r in placed.snapshots("vs1", "xv")] == ["kept"]
    assert placed.release("vs1", "xv", "backup job 7") == (SnapshotHold.of(kept, "backup job 7"),)
    SnapshotJobManager(cluster, "node2").delete("vs1", "xv", "kept")
    assert placed.snapshots("vs1", "xv") == [] and all(not u for u in _per_volume(cluster).values())


def test_a_member_copy_of_a_held_snapshot_cannot_be_deleted_per_volume() -> None:
    cluster = _cluster()
    manager = SnapshotJobManager(cluster)
    kept = manager.create("vs1", "xv", "kept")
    loose = manager.create("vs1", "xv", "loose")
    manager.hold("vs1", "xv", "kept", "mirror B")
    manager.hold("vs1", "xv", "kept", "user")
    calls = VolumeSnapshots(cluster, "node2", "vs1", "xv")
    before = _per_volume(cluster)
    for entry in kept.volumes:
        for snapshot_uuid in (entry.uuid, None):  # with and without the UUID check
            with pytest.raises(SnapshotHeldError, match=r"member of snapshot 'kept'") as info:
                calls.delete(entry.volume_id, entry.sid, snapshot_uuid)
            assert set(info.value.holders) == {"mirror B", "user"}
            assert info.value.snapshot == "kept"
    assert _per_volume(cluster) == before
    dc1 = loose.member("DC1")
    calls.delete(dc1.volume_id, dc1.sid, dc1.uuid)  # not held: goes
    assert dc1.uuid not in _per_volume(cluster)[dc1.volume_id]


def test_the_d_module_refuses_a_raw_cf_delete_of_a_held_member_copy() -> None:
    cluster = _cluster()
    manager = SnapshotJobManager(cluster)
    kept = manager.create("vs1", "xv", "kept")
    manager.hold("vs1", "xv", kept.snapshot_id, "pinned")
    entry = kept.member("DC2")
    owner = read_location(cluster.replica(), entry.volume_id).node
    service = cluster.node(owner).services["snapshot"]
    request = CFRequest("snapshot", entry.volume_id, "delete", {"sid": entry.sid})
    with pytest.raises(SnapshotHeldError, match="pinned"):
        service(request)
    assert entry.uuid in _per_volume(cluster)[entry.volume_id]
    assert member_holds(cluster.replica(), entry.volume_id, entry.uuid)[0].holder == "pinned"


def test_holds_need_a_snapshot_and_a_tag_and_round_trip_through_json() -> None:
    cluster = _cluster()
    manager = SnapshotJobManager(cluster)
    row = manager.create("vs1", "xv", "s")
    with pytest.raises(NotFoundError):
        manager.hold("vs1", "xv", "nope", "tag")
    with pytest.raises(InvalidArgumentError):
        manager.hold("vs1", "xv", "s", "  ")
    with pytest.raises(NotFoundError):
        manager.release("vs1", "xv", "tag", "s")
    hold = manager.hold("vs1", "xv", "s", "tag")
    assert manager.hold("vs1", "xv", "s", "tag") == hold  # idempotent
    assert SnapshotHold.from_json(hold.to_json()) == hold
    assert {v for v, _u in hold.members} == {v.volume_id for v in row.volumes}
    assert holds_in(cluster.replica(), "vs1", "xv") == [hold] == manager.holds("vs1", "xv", "s")


@settings(max_examples=12, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["hold", "release", "delete", "delete-copy"]),
            st.integers(0, 2),
            st.sampled_from(["a", "b"]),
        ),
        max_size=12,
    )
)
def test_a_snapshot_goes_exactly_when_no_hold_is_left_on_it(
    ops: list[tuple[str, int, str]],
) -> None:
    cluster = _cluster(dcs=1)
    manager = SnapshotJobManager(cluster)
    rows = [manager.create("vs1", "xv", f"s{i}") for i in range(3)]
    calls = VolumeSnapshots(cluster, "node1", "vs1", "xv")
    held: dict[str, set[str]] = {r.name: set() for r in rows}
    gone: set[str] = set()
    for op, which, holder in ops:
        row = rows[which]
        if row.name in gone:
            continue
        if op == "hold":
            manager.hold("vs1", "xv", row.name, holder)
            held[row.name].add(holder)
        elif op == "release":
            manager.release("vs1", "xv", holder)
            for tags in held.values():
                tags.discard(holder)
        elif op == "delete":
            if held[row.name]:
                with pytest.raises(SnapshotHeldError):
                    manager.delete("vs1", "xv", row.name)
            else:
                manager.delete("vs1", "xv", row.name)
                gone.add(row.name)
        else:
            entry = row.member("DC1")
            if held[row.name]:
                with pytest.raises(SnapshotHeldError):
                    calls.delete(entry.volume_id, entry.sid, entry.uuid)
    assert {r.name for r in manager.snapshots("vs1", "xv")} == {r.name for r in rows} - gone
    for row in rows:
        if held[row.name]:  # every copy of a held snapshot is still there
            assert manager.table.missing(row) == []


def test_a_hold_is_placed_and_released_while_the_managers_node_is_down() -> None:
    cluster = _cluster(nodes=3)
    manager = SnapshotJobManager(cluster, "node1")
    manager.create("vs1", "xv", "s")
    cluster.fabric.set_down("node1", True)
    other = SnapshotJobManager(cluster, "node2")
    hold = manager.hold("vs1", "xv", "s", "tag")  # committed through a node that answers
    assert other.holds("vs1", "xv") == [hold]
    with pytest.raises(SnapshotHeldError):
        other.delete("vs1", "xv", "s")
    assert manager.release("vs1", "xv", "tag") == (hold,)
    cluster.fabric.set_down("node1", False)
    other.delete("vs1", "xv", "s")
