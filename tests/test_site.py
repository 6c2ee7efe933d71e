"""Tests of sites, snapshot holds, the source proxy and the site pair
(reference/mirror/site.py)."""

from __future__ import annotations

import pytest

from xvol.errors import InvalidArgumentError, NotFoundError, StateError
from xvol.reference.mirror.link import DirectLink, run_sync
from xvol.reference.mirror.site import (
    ChangesReply,
    ChangesRequest,
    HoldSnapshotsRequest,
    HoldsReply,
    MirrorRoleReply,
    MirrorRoleRequest,
    Pruned,
    PruneSnapshotsRequest,
    ReadOnlyMirrorError,
    SitePair,
    SnapshotHeldError,
    SnapshotListReply,
    SnapshotListRequest,
    SnapshotReply,
    SourceProxy,
    TakeSnapshotRequest,
    VolumeListReply,
    VolumeListRequest,
    build_site,
    changed_paths,
)


def test_the_proxy_lists_volumes_snapshots_and_changes_of_its_site() -> None:
    site = build_site("A", seed=3, data_constituents=2)
    site.write("vs1", "xv", "/a", b"one")
    channel = DirectLink(SourceProxy(site)).channel("proxy")
    listing = run_sync(channel.request(VolumeListRequest("vs1", "xv")))
    assert isinstance(listing, VolumeListReply)
    assert listing.cluster == "A"
    assert [m.name for m in listing.record.members] == ["NS", "OLS", "DC1", "DC2"]
    taken = run_sync(channel.request(TakeSnapshotRequest("vs1", "xv", "s1")))
    again = run_sync(channel.request(TakeSnapshotRequest("vs1", "xv", "s1")))
    assert isinstance(taken, SnapshotReply) and isinstance(again, SnapshotReply)
    assert taken.record == again.record  # idempotent for retransmissions
    rows = run_sync(channel.request(SnapshotListRequest("vs1", "xv")))
    assert isinstance(rows, SnapshotListReply) and rows.valid == {taken.record.snapshot_id}
    site.write("vs1", "xv", "/a", b"two")
    site.write("vs1", "xv", "/b", b"new")
    changes = run_sync(channel.request(ChangesRequest("vs1", "xv", taken.record.snapshot_id, None)))
    assert isinstance(changes, ChangesReply) and changes.paths == ("/a", "/b")
    role = run_sync(channel.request(MirrorRoleRequest("vs1", "xv")))
    assert isinstance(role, MirrorRoleReply) and role.state is None


def test_the_proxy_answers_bad_names_with_typed_errors() -> None:
    site = build_site("A", seed=3, data_constituents=1)
    channel = DirectLink(SourceProxy(site)).channel("proxy")
    with pytest.raises(NotFoundError):
        run_sync(channel.request(VolumeListRequest("vs1", "nope")))
    with pytest.raises(NotFoundError):
        run_sync(channel.request(ChangesRequest("vs1", "xv", None, 99)))


def test_a_site_redirected_to_a_snapshot_reads_it_and_refuses_writes() -> None:
    site = build_site("A", seed=3, data_constituents=1)
    site.write("vs1", "xv", "/a", b"old")
    record = site.snapshot("vs1", "xv", "s1")
    site.write("vs1", "xv", "/a", b"new")
    site.redirects[("vs1", "xv")] = record.snapshot_id
    assert site.read("vs1", "xv", "/a") == b"old"
    assert site.files("vs1", "xv") == {"/a": b"old"}
    with pytest.raises(ReadOnlyMirrorError):
        site.write("vs1", "xv", "/a", b"x")
    with pytest.raises(ReadOnlyMirrorError):
        site.delete("vs1", "xv", "/a")
    site.redirects[("vs1", "xv")] = None
    with pytest.raises(StateError):
        site.read("vs1", "xv", "/a")
    del site.redirects[("vs1", "xv")]
    assert site.read("vs1", "xv", "/a") == b"new"


def test_site_pair_names_links_and_cuts_both_directions() -> None:
    a = build_site("A", seed=1, data_constituents=1)
    b = build_site("B", seed=2, volume=None)
    with pytest.raises(InvalidArgumentError):
        SitePair(a, build_site("A", seed=5, volume=None))
    pair = SitePair(a, b)
    with pytest.raises(NotFoundError):
        pair.site("C")
    with pytest.raises(NotFoundError):
        pair.link("A", "C")
    pair.disaster()
    assert all(link.is_down for link in pair.links.values())
    pair.reconnect()
    assert not any(link.is_down for link in pair.links.values())


def test_changed_paths_lists_created_modified_and_deleted() -> None:
    assert changed_paths({"/a": b"1", "/b": b"2"}, {"/b": b"3", "/c": b"4"}) == ["/a", "/b", "/c"]


def test_a_held_snapshot_cannot_be_deleted_through_the_site_and_nothing_changes() -> None:
    site = build_site("A", seed=3, data_constituents=1)
    site.write("vs1", "xv", "/a", b"one")
    kept = site.snapshot("vs1", "xv", "kept")
    other = site.snapshot("vs1", "xv", "other")
    hold = site.hold("vs1", "xv", "kept", "backup job 7")
    assert site.hold("vs1", "xv", "kept", "backup job 7") == hold  # idempotent
    site.hold("vs1", "xv", kept.snapshot_id, "a second holder")
    assert [(h.name, h.holder) for h in site.holds("vs1", "xv")] == [
        ("kept", "a second holder"),
        ("kept", "backup job 7"),
    ]
    version = site.cluster.replica().version
    for delete in (site.delete_snapshot, site.jobs.delete):
        with pytest.raises(SnapshotHeldError, match=r"'kept'.*backup job 7") as info:
            delete("vs1", "xv", "kept")
        assert info.value.snapshot == "kept"
        assert set(info.value.holders) == {"backup job 7", "a second holder"}
    assert site.cluster.replica().version == version
    assert [r.name for r in site.snapshots("vs1", "xv")] == ["kept", "other"]
    site.delete_snapshot("vs1", "xv", other.name)  # not held: goes
    assert site.release("vs1", "xv", "backup job 7", "kept") == (hold,)
    with pytest.raises(NotFoundError):
        site.release("vs1", "xv", "backup job 7", "kept")
    assert len(site.release("vs1", "xv", "a second holder")) == 1
    assert site.release("vs1", "xv", "nobody") == ()
    site.delete_snapshot("vs1", "xv", "kept")
    assert site.snapshots("vs1", "xv") == [] and site.holds("vs1", "xv") == []
    with pytest.raises(InvalidArgumentError):
        site.hold("vs1", "xv", "x", " ")


def test_set_holds_holds_exactly_the_intact_snapshots_asked_for() -> None:
    site = build_site("A", seed=3, data_constituents=1)
    one = site.snapshot("vs1", "xv", "one")
    two = site.snapshot("vs1", "xv", "two")
    released, missing = site.set_holds("vs1", "xv", "tag", (one.snapshot_id, 99))
    assert released == () and missing == (99,)
    assert [h.name for h in site.holds("vs1", "xv")] == ["one"]
    released, missing = site.set_holds("vs1", "xv", "tag", (two.snapshot_id,))
    assert [h.name for h in released] == ["one"] and missing == ()
    assert [h.name for h in site.holds("vs1", "xv", "two")] == ["two"]
    assert site.holds("vs1", "xv", "one") == []
    released, _ = site.set_holds("vs1", "xv", "tag", ())
    assert [h.name for h in released] == ["two"] and site.holds("vs1", "xv") == []


def test_the_proxy_moves_holds_and_refuses_to_prune_a_held_snapshot() -> None:
    site = build_site("A", seed=3, data_constituents=1)
    channel = DirectLink(SourceProxy(site)).channel("proxy")
    first = run_sync(channel.request(TakeSnapshotRequest("vs1", "xv", "mirror.B.1")))
    second = run_sync(channel.request(TakeSnapshotRequest("vs1", "xv", "mirror.B.2")))
    assert isinstance(first, SnapshotReply) and isinstance(second, SnapshotReply)
    ids = (first.record.snapshot_id, second.record.snapshot_id)
    reply = run_sync(channel.request(HoldSnapshotsRequest("vs1", "xv", "m", ids)))
    assert isinstance(reply, HoldsReply) and [h.name for h in reply.holds] == [
        "mirror.B.1",
        "mirror.B.2",
    ]
    site.hold("vs1", "xv", "mirror.B.1", "user")
    reply = run_sync(channel.request(HoldSnapshotsRequest("vs1", "xv", "m", ids[1:])))
    assert isinstance(reply, HoldsReply)
    assert [(h.name, h.holder) for h in reply.released] == [("mirror.B.1", "m")]
    assert {(h.name, h.holder) for h in reply.holds} == {
        ("mirror.B.1", "user"),
        ("mirror.B.2", "m"),
    }
    listing = run_sync(channel.request(SnapshotListRequest("vs1", "xv")))
    assert isinstance(listing, SnapshotListReply) and listing.holds == reply.holds
    run_sync(channel.request(TakeSnapshotRequest("vs1", "xv", "mirror.B.3")))
    doomed = ("mirror.B.3", "mirror.B.1")
    with pytest.raises(SnapshotHeldError, match=r"mirror\.B\.1.*user"):
        run_sync(channel.request(PruneSnapshotsRequest("vs1", "xv", doomed)))
    names = ["mirror.B.1", "mirror.B.2", "mirror.B.3"]
    assert [r.name for r in site.snapshots("vs1", "xv")] == names  # all or nothing
    site.release("vs1", "xv", "user")
    pruned = run_sync(channel.request(PruneSnapshotsRequest("vs1", "xv", ("mirror.B.1",))))
    assert isinstance(pruned, Pruned) and pruned.names == ("mirror.B.1",)
