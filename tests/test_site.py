"""Tests of sites, the source proxy and the site pair (reference/mirror/site.py)."""

from __future__ import annotations

import pytest

from xvol.errors import InvalidArgumentError, NotFoundError, StateError
from xvol.reference.mirror.link import DirectLink, run_sync
from xvol.reference.mirror.site import (
    ChangesReply,
    ChangesRequest,
    MirrorRoleReply,
    MirrorRoleRequest,
    ReadOnlyMirrorError,
    SitePair,
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
