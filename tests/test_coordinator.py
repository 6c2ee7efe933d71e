"""Tests of the mirroring coordinator: initialize, update, redirect, cut and resume, resize,
failover, verification, typed errors, holds on the common base, the in-place baseline, deleting
a mirror, retention by default, calls in flight at a cut (reference/mirror/coordinator.py)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import numpy as np
import pytest

from xvol.errors import AlreadyExistsError, NotFoundError, StateError
from xvol.reference.mirror.coordinator import (
    BaseSnapshotLostError,
    CountMismatchError,
    MirrorBrokenError,
    MirroringCoordinator,
    UnknownSnapshotError,
)
from xvol.reference.mirror.link import LinkError, Message
from xvol.reference.mirror.relationships import (
    DEFAULT_RETAIN,
    MirrorConfig,
    MirrorState,
    UnknownRelationshipError,
    mirror_holder,
)
from xvol.reference.mirror.site import (
    ReadOnlyMirrorError,
    Site,
    SitePair,
    SnapshotHeldError,
    build_site,
)
from xvol.reference.snapshots.snapshot_coordinator import SnapshotJobManager
from xvol.reference.snapshots.volume_snapshots import VolumeSnapshots

VS, XV = "vs1", "xv"


def make_pair(
    *, bandwidth: float = 20e6, files: int = 6, size: int = 20000
) -> tuple[SitePair, MirroringCoordinator]:
    primary = build_site("A", seed=1, data_constituents=2)
    remote = build_site("B", seed=2, volume=None)
    pair = SitePair(primary, remote, bandwidth=bandwidth)
    for i in range(files):
        primary.write(VS, XV, f"/f{i}", bytes([i + 1]) * size)
    return pair, MirroringCoordinator(remote, pair.link("B", "A"))


def test_initialize_reproduces_the_source_snapshot_and_verifies_equal() -> None:
    pair, co = make_pair()
    a, b = pair.site("A"), pair.site("B")
    result = pair.run(co.initialize(VS, XV))
    source_view = a.open_snapshot(VS, XV, result.snapshot.name)
    assert b.files(VS, XV) == {p: source_view.read(p) for p, _g in source_view.walk()}
    assert b.files(VS, XV) == a.files(VS, XV)
    report = pair.run(co.verify(VS, XV))
    assert report.equal
    assert {m for m, _r in report.reports} == {"NS", "OLS", "DC1", "DC2"}
    # one relationship (fields A-J) per member, and the destination volume table maps IDs
    rels = co.tables.relationships(VS, XV)
    assert [r.member for r in rels] == ["DC1", "DC2", "NS", "OLS"]
    assert all(
        r.source_cluster == "A" and r.dest_cluster == "B" and r.kind == "mirror" for r in rels
    )
    mapping = {d.volume_id: d.source_volume_id for d in co.tables.destination_volumes()}
    assert mapping == {r.dest_volume_id: r.source_volume_id for r in rels}


def _referenced_blocks(site: Site, snapshot: str) -> int:
    """Blocks the per-volume snapshots of ``snapshot`` reference, over every member."""
    total = 0
    for entry in site.jobs.get(VS, XV, snapshot).volumes:
        volume = site.volume(VS, XV, entry.member)
        total += int(volume._snapshot_map(volume.snapshot_info(uuid.UUID(entry.uuid)).sid).sum())
    return total


def test_verify_says_how_many_blocks_it_covered_equal_or_not() -> None:
    pair, co = make_pair()
    b = pair.site("B")
    name = pair.run(co.initialize(VS, XV)).snapshot.name
    covered = _referenced_blocks(b, name)
    equal = pair.run(co.verify(VS, XV))
    assert equal.equal and equal.differing_blocks == 0
    assert equal.blocks_compared == covered == _referenced_blocks(pair.site("A"), name) > 0
    # damage one block of DC1's replica behind the volume's back: found, and the same coverage
    entry = b.jobs.get(VS, XV, name).member("DC1")
    volume = b.volume(VS, XV, "DC1")
    used = np.flatnonzero(volume._snapshot_map(volume.snapshot_info(uuid.UUID(entry.uuid)).sid))
    victim = np.array([used[-1]], dtype=np.int64)
    block = volume.space.read_blocks(victim).copy()
    block[0, 100] ^= 0xFF
    volume.space.write_blocks(victim, block)
    damaged = pair.run(co.verify(VS, XV))
    assert not damaged.equal and damaged.differing_blocks == 1
    assert damaged.blocks_compared == covered
    assert dict(damaged.reports)["DC1"].differing_blocks.tolist() == victim.tolist()


def test_update_sends_only_changed_blocks_and_matches_the_new_snapshot() -> None:
    pair, co = make_pair()
    a, b = pair.site("A"), pair.site("B")
    first = pair.run(co.initialize(VS, XV))
    a.write(VS, XV, "/f1", b"changed")
    a.write(VS, XV, "/new", b"new file")
    second = pair.run(co.update(VS, XV))
    assert second.records_sent < first.records_sent
    assert b.read(VS, XV, "/f1") == b"changed"
    assert b.files(VS, XV) == a.files(VS, XV)
    assert pair.run(co.verify(VS, XV)).equal
    assert b.jobs.get(VS, XV, second.snapshot.name).snapshot_id == second.snapshot.snapshot_id


def test_reads_during_an_update_see_one_whole_snapshot_never_a_mix() -> None:
    pair, co = make_pair(bandwidth=2e6)
    a, b = pair.site("A"), pair.site("B")
    pair.run(co.initialize(VS, XV))
    old = b.files(VS, XV)
    for i in range(6):
        a.write(VS, XV, f"/f{i}", bytes([100 + i]) * 20000)
    new = a.files(VS, XV)
    process = pair.env.process(co.update(VS, XV))
    states = set()
    mixed_active = False
    committed: list[str] = []
    while process.is_alive:
        pair.env.step()
        newest = [b.volume(VS, XV, m.name).snapshots()[-1].name for m in b.members(VS, XV)]
        if newest == committed:
            continue  # no member committed since the last read
        committed = newest
        seen = b.files(VS, XV)
        assert seen in (old, new)
        states.add(seen == new)
        # the live file systems of the members do go through a mix: the redirect hides it
        mixed_active |= len(set(newest)) > 1
    assert states == {False, True}
    assert mixed_active
    assert b.files(VS, XV) == new


def test_a_cut_update_leaves_the_previous_snapshot_and_resumes_without_resending() -> None:
    pair, co = make_pair(bandwidth=5e6, size=60000)
    a, b = pair.site("A"), pair.site("B")
    pair.run(co.initialize(VS, XV))
    before = b.files(VS, XV)
    for i in range(6):
        a.write(VS, XV, f"/f{i}", bytes([50 + i]) * 60000)
    pair.disaster(after_bytes=200_000)
    with pytest.raises(LinkError):
        pair.run(co.update(VS, XV))
    assert b.files(VS, XV) == before
    pending = co.tables.group(VS, XV).pending
    assert pending is not None
    pair.reconnect()
    a.write(VS, XV, "/late", b"written after the cut")
    result = pair.run(co.update(VS, XV))
    assert result.snapshot.name == pending  # the same target, resumed
    assert (
        sum(m.records_resumed for m in result.members) + sum(m.skipped for m in result.members) > 0
    )
    view = a.open_snapshot(VS, XV, pending)
    assert b.files(VS, XV) == {p: view.read(p) for p, _g in view.walk()}
    assert pair.run(co.verify(VS, XV)).equal
    pair.run(co.update(VS, XV))
    assert b.read(VS, XV, "/late") == b"written after the cut"


def test_a_constituent_added_at_the_source_is_created_at_the_destination() -> None:
    pair, co = make_pair()
    a, b = pair.site("A"), pair.site("B")
    pair.run(co.initialize(VS, XV))
    a.cluster.mhost().add_data_constituent(VS, XV)
    a.cluster.expandable(VS, XV).create("/on-dc3", b"3" * 9000, location=3)
    with pytest.raises(CountMismatchError):
        pair.run(co.update(VS, XV, resize=False))
    assert [m.name for m in b.members(VS, XV)] == ["NS", "OLS", "DC1", "DC2"]
    result = pair.run(co.update(VS, XV))
    assert result.added == ("DC3",)
    assert [m.name for m in b.members(VS, XV)] == ["NS", "OLS", "DC1", "DC2", "DC3"]
    assert co.tables.relationship(VS, XV, "DC3") is not None
    assert b.read(VS, XV, "/on-dc3") == b"3" * 9000
    assert pair.run(co.verify(VS, XV)).equal


def test_failover_presents_one_consistent_snapshot_and_accepts_writes() -> None:
    pair, co = make_pair(bandwidth=5e6, size=60000)
    a, b = pair.site("A"), pair.site("B")
    pair.run(co.initialize(VS, XV))
    exported = b.files(VS, XV)
    with pytest.raises(ReadOnlyMirrorError):
        b.write(VS, XV, "/x", b"no")
    for i in range(6):
        a.write(VS, XV, f"/f{i}", bytes([70 + i]) * 60000)
    a.cluster.mhost().add_data_constituent(VS, XV)
    pair.disaster(after_bytes=250_000)  # the disaster strikes mid-update
    with pytest.raises(LinkError):
        pair.run(co.update(VS, XV))
    assert len(b.members(VS, XV)) == 5  # the resize ran before the cut
    result = co.failover(VS, XV)
    assert len(b.members(VS, XV)) == 4  # the constituent of the unfinished update is gone
    assert co.tables.group(VS, XV).state is MirrorState.BROKEN
    assert b.files(VS, XV) == exported  # live volume == the exported snapshot, on every member
    assert b.cluster.expandable(VS, XV).check_references().ok
    assert set(result.members) == {v.member for v in result.snapshot.volumes}
    b.write(VS, XV, "/after-failover", b"acknowledged")
    assert b.read(VS, XV, "/after-failover") == b"acknowledged"
    with pytest.raises(MirrorBrokenError):
        pair.run(co.update(VS, XV))
    with pytest.raises(MirrorBrokenError):
        co.failover(VS, XV)


def test_bad_names_and_states_give_typed_errors_and_change_nothing() -> None:
    pair, co = make_pair()
    b = pair.site("B")
    with pytest.raises(UnknownRelationshipError):
        pair.run(co.update(VS, "nope"))
    with pytest.raises(UnknownRelationshipError):
        co.failover(VS, XV)
    with pytest.raises(UnknownSnapshotError):
        pair.run(co.initialize(VS, XV, snapshot="no-such-snapshot"))
    assert not co.tables.has_group(VS, XV) and not b.has_volume(VS, XV)
    pair.run(co.initialize(VS, XV, config=MirrorConfig(throttle=1e7)))
    version = b.cluster.replica().version
    with pytest.raises(UnknownSnapshotError):
        pair.run(co.update(VS, XV, "no-such-snapshot"))
    assert b.cluster.replica().version == version
    with pytest.raises(AlreadyExistsError):
        pair.run(co.initialize(VS, XV))


def test_failover_before_any_complete_snapshot_is_refused() -> None:
    pair, co = make_pair(bandwidth=5e6)
    b = pair.site("B")
    pair.disaster(after_bytes=100_000)
    with pytest.raises(LinkError):
        pair.run(co.initialize(VS, XV))
    with pytest.raises(StateError):
        b.read(VS, XV, "/f0")  # a mirror with nothing complete has nothing to read
    with pytest.raises(StateError):
        co.failover(VS, XV)
    assert co.tables.group(VS, XV).state is MirrorState.MIRRORED
    pair.reconnect()
    pair.run(co.update(VS, XV))
    assert b.files(VS, XV) == pair.site("A").files(VS, XV)


def test_config_j_throttle_and_allowed_clients_reach_the_channels_and_table() -> None:
    pair, co = make_pair()
    b = pair.site("B")
    config = MirrorConfig(schedule=60.0, allowed_clients=frozenset({"root"}), throttle=4e6)
    result = pair.run(co.initialize(VS, XV, config=config))
    assert result.snapshot.allowed_clients == frozenset({"root"})
    rel = co.tables.relationships(VS, XV)[0]
    assert rel.config == config
    assert co.link.channel(rel.channel).throttle == 4e6
    assert b.jobs.get(VS, XV, result.snapshot.name).allowed_clients == frozenset({"root"})


def test_lag_counts_source_snapshots_and_blocks_not_yet_mirrored() -> None:
    pair, co = make_pair()
    a = pair.site("A")
    pair.run(co.initialize(VS, XV))
    assert pair.run(co.lag(VS, XV)).behind == ()
    a.write(VS, XV, "/f0", b"z" * 30000)
    a.snapshot(VS, XV, "user-1")
    lag = pair.run(co.lag(VS, XV))
    assert lag.behind == ("user-1",) and lag.newest == "user-1" and lag.blocks > 0
    pair.run(co.update(VS, XV))
    assert pair.run(co.lag(VS, XV)).blocks == 0


def test_retain_prunes_older_mirror_snapshots_at_both_sites_but_never_user_snapshots() -> None:
    pair, co = make_pair()
    a, b = pair.site("A"), pair.site("B")
    a.snapshot(VS, XV, "user-kept")
    pair.run(co.initialize(VS, XV, config=MirrorConfig(retain=2)))
    pruned: list[str] = []
    for i in range(3):
        a.write(VS, XV, f"/g{i}", b"more" * 100)
        pruned += pair.run(co.update(VS, XV)).pruned
    names_a = [r.name for r in a.snapshots(VS, XV)]
    names_b = [r.name for r in b.snapshots(VS, XV)]
    mirror_a = [n for n in names_a if n.startswith("mirror.")]
    mirror_b = [n for n in names_b if n.startswith("mirror.")]
    assert mirror_a == mirror_b and len(mirror_b) == 2
    assert len(pruned) == 2 and not set(pruned) & set(names_a + names_b)
    assert "user-kept" in names_a  # a user snapshot is never pruned
    exported = co.tables.group(VS, XV).exported
    assert any(r.snapshot_id == exported for r in b.snapshots(VS, XV))
    a.write(VS, XV, "/after", b"incremental from the kept base")
    after = pair.run(co.update(VS, XV))
    assert after.records_sent < 20 and b.files(VS, XV) == a.files(VS, XV)


def test_the_proxy_refuses_to_prune_a_snapshot_the_mirror_did_not_take() -> None:
    from xvol.errors import InvalidArgumentError
    from xvol.reference.mirror.site import PruneSnapshotsRequest

    pair, co = make_pair()
    a = pair.site("A")
    a.snapshot(VS, XV, "precious")
    with pytest.raises(InvalidArgumentError, match="did not take"):
        pair.run(co.link.channel("proxy").request(PruneSnapshotsRequest(VS, XV, ("precious",))))
    assert "precious" in [r.name for r in a.snapshots(VS, XV)]


def test_the_schedule_updates_every_interval_and_resumes_after_a_cut() -> None:
    pair, co = make_pair(bandwidth=1e6)
    a, b = pair.site("A"), pair.site("B")
    pair.run(co.initialize(VS, XV, config=MirrorConfig(schedule=60.0)))
    start = pair.now

    def writer() -> Iterator[object]:
        for i in range(5):
            yield pair.env.timeout(50.0)
            a.write(VS, XV, f"/s{i}", bytes([i]) * 30000)
            if i == 2:
                pair.disaster(after_bytes=20_000)
            if i == 3:
                pair.reconnect()

    pair.env.process(writer())
    runs = pair.run(co.run_schedule(VS, XV, until=start + 300.0))
    assert [round(r.started - start) for r in runs] == [60, 120, 180, 240, 300]
    outcomes = [r.outcome for r in runs]
    assert "cut" in outcomes and outcomes[-1] == "updated"
    assert all(r.snapshot is None for r in runs if r.outcome == "cut")
    assert all(r.started < r.finished for r in runs)
    assert b.files(VS, XV) == a.files(VS, XV)  # the last write (t=250) went with t=300
    assert pair.run(co.verify(VS, XV)).equal


def test_a_schedule_needs_a_configured_interval() -> None:
    pair, co = make_pair()
    pair.run(co.initialize(VS, XV))
    with pytest.raises(StateError, match="no schedule"):
        pair.run(co.run_schedule(VS, XV, until=100.0))


def test_lag_reports_the_age_of_the_exported_data_in_link_seconds() -> None:
    pair, co = make_pair()
    a = pair.site("A")
    pair.run(co.initialize(VS, XV))
    taken = pair.now
    pair.env.run(until=pair.now + 30.0)
    a.snapshot(VS, XV, "newer")
    lag = pair.run(co.lag(VS, XV))
    assert lag.behind == ("newer",)
    assert lag.seconds is not None and 30.0 <= lag.seconds <= pair.now - taken + 1.0
    pair.run(co.update(VS, XV))
    assert pair.run(co.lag(VS, XV)).seconds is not None


def test_after_a_cut_no_request_runs_at_the_source_later_and_the_update_resumes() -> None:
    """Calls in flight at a cut (a window of batch requests): once the update fails, nothing
    it sent executes at the source later, even when the link comes back at that instant; the
    next update resumes from the checkpoints."""
    primary = build_site("A", seed=1, data_constituents=2)
    remote = build_site("B", seed=2, volume=None)
    pair = SitePair(primary, remote, bandwidth=2e6)
    for i in range(4):
        primary.write(VS, XV, f"/f{i}", bytes([i + 1]) * 200_000)
    co = MirroringCoordinator(remote, pair.link("B", "A"), batch_blocks=32)
    pair.run(co.initialize(VS, XV))
    before = remote.files(VS, XV)
    for i in range(4):
        primary.write(VS, XV, f"/f{i}", bytes([50 + i]) * 200_000)
    proxy = pair.proxies["A"]
    handled: list[float] = []
    answer = proxy.handle

    def logged(request: Message) -> Message:
        handled.append(pair.now)
        return answer(request)

    proxy.handle = logged  # type: ignore[method-assign]
    pair.disaster(after_bytes=300_000)
    with pytest.raises(LinkError):
        pair.run(co.update(VS, XV))
    failed_at = pair.now
    pair.reconnect()
    pair.env.run(until=failed_at + 10.0)
    assert handled and max(handled) <= failed_at  # nothing ran at A after B gave up
    assert pair.links[("B", "A")].stats.resets >= 1
    assert remote.files(VS, XV) == before
    pending = co.tables.group(VS, XV).pending
    result = pair.run(co.update(VS, XV))
    assert result.snapshot.name == pending
    assert sum(m.records_resumed for m in result.members) > 0
    assert remote.files(VS, XV) == primary.files(VS, XV)
    assert pair.run(co.verify(VS, XV)).equal


HOLDER = mirror_holder("A", VS, XV, "B", VS, XV)


def staging_volumes(site: Site) -> list[str]:
    """Staging volumes of in-place baselines on the site's nodes."""
    return [
        v
        for node in site.cluster.nodes.values()
        for v in node.dmodule.storage.volume_ids()
        if v.endswith(".baseline")
    ]


def test_the_common_base_is_held_at_both_sites_and_the_hold_moves_with_each_update() -> None:
    pair, co = make_pair()
    a, b = pair.site("A"), pair.site("B")
    first = pair.run(co.initialize(VS, XV)).snapshot.name
    assert [(h.name, h.holder) for h in a.holds(VS, XV)] == [(first, HOLDER)]
    assert [(h.name, h.holder) for h in b.holds(VS, XV)] == [(first, HOLDER)]
    version = a.cluster.replica().version
    for delete in (a.delete_snapshot, a.jobs.delete, b.delete_snapshot):
        with pytest.raises(SnapshotHeldError, match=re.escape(HOLDER)) as info:
            delete(VS, XV, first)
        assert info.value.snapshot == first and info.value.holders == (HOLDER,)
    assert a.cluster.replica().version == version
    a.write(VS, XV, "/f1", b"changed")
    second = pair.run(co.update(VS, XV)).snapshot.name
    assert [h.name for h in a.holds(VS, XV)] == [second] == [h.name for h in b.holds(VS, XV)]
    a.delete_snapshot(VS, XV, first)  # the previous base is released at the source
    a.write(VS, XV, "/f2", b"changed too")
    third = pair.run(co.update(VS, XV))
    assert third.records_sent < 30 and b.files(VS, XV) == a.files(VS, XV)


def test_the_mirror_hold_refuses_every_delete_path_at_both_sites_not_only_the_sites() -> None:
    pair, co = make_pair()
    first = pair.run(co.initialize(VS, XV)).snapshot.name
    for site in (pair.site("A"), pair.site("B")):
        copies = {
            m.volume_id: [s.uuid for s in site.volume(VS, XV, m.name).snapshots()]
            for m in site.members(VS, XV)
        }
        # another job manager (the web service's, an experiment's) of the same cluster
        with pytest.raises(SnapshotHeldError, match=re.escape(HOLDER)):
            SnapshotJobManager(site.cluster).delete(VS, XV, first)
        # a per-volume delete of any member's copy (a data constituent's, the namespace's)
        calls = VolumeSnapshots(site.cluster, site.cluster.any_up_node(), VS, XV)
        for entry in site.jobs.get(VS, XV, first).volumes:
            with pytest.raises(SnapshotHeldError, match=re.escape(HOLDER)) as info:
                calls.delete(entry.volume_id, entry.sid, entry.uuid)
            assert info.value.holders == (HOLDER,)
        assert [r.name for r in site.snapshots(VS, XV)] == [first]
        assert {
            m.volume_id: [s.uuid for s in site.volume(VS, XV, m.name).snapshots()]
            for m in site.members(VS, XV)
        } == copies
    a = pair.site("A")
    a.write(VS, XV, "/f1", b"changed")
    pair.run(co.update(VS, XV))  # the hold moved on: the old base goes through any path
    SnapshotJobManager(a.cluster).delete(VS, XV, first)
    assert first not in [r.name for r in a.snapshots(VS, XV)]


def test_a_cut_update_holds_both_its_base_and_its_target_at_the_source() -> None:
    pair, co = make_pair(bandwidth=5e6, size=60000)
    a = pair.site("A")
    base = pair.run(co.initialize(VS, XV)).snapshot.name
    for i in range(6):
        a.write(VS, XV, f"/f{i}", bytes([50 + i]) * 60000)
    pair.disaster(after_bytes=200_000)
    with pytest.raises(LinkError):
        pair.run(co.update(VS, XV))
    pending = co.tables.group(VS, XV).pending
    assert pending is not None
    assert {h.name for h in a.holds(VS, XV)} == {base, pending}
    with pytest.raises(SnapshotHeldError):
        a.delete_snapshot(VS, XV, pending)
    pair.reconnect()
    pair.run(co.update(VS, XV))
    assert [h.name for h in a.holds(VS, XV)] == [pending]


def test_a_lost_base_stops_the_update_and_an_in_place_baseline_keeps_serving_until_it_commits() -> (
    None
):
    pair, co = make_pair(bandwidth=5e6, size=60000)
    a, b = pair.site("A"), pair.site("B")
    first = pair.run(co.initialize(VS, XV)).snapshot.name
    a.write(VS, XV, "/f0", b"after the base was lost")
    a.release(VS, XV, HOLDER)  # an administrator insists: the common base goes at the source
    a.delete_snapshot(VS, XV, first)
    serving, version = b.files(VS, XV), b.cluster.replica().version
    with pytest.raises(
        BaseSnapshotLostError, match=r"update\('vs1', 'xv', baseline=True\)"
    ) as lost:
        pair.run(co.update(VS, XV))
    assert isinstance(lost.value, NotFoundError) and repr(first) in str(lost.value)
    assert b.cluster.replica().version == version and b.files(VS, XV) == serving
    process = pair.env.process(co.update(VS, XV, baseline=True))
    steps, served_old = 0, 0
    while process.is_alive:
        pair.env.step()
        steps += 1
        if steps % 10 == 0:
            seen = b.files(VS, XV)
            assert seen in (serving, a.files(VS, XV))  # one whole snapshot, never a mix
            served_old += seen == serving
    assert served_old > 0
    result = process.value
    assert result.baseline and result.replaced == (first,)
    assert result.records_sent == sum(m.records for m in result.members) > 0
    assert b.files(VS, XV) == a.files(VS, XV) and pair.run(co.verify(VS, XV)).equal
    assert [r.name for r in b.snapshots(VS, XV)] == [result.snapshot.name]
    assert [h.name for h in b.holds(VS, XV)] == [result.snapshot.name]
    assert staging_volumes(b) == [] and not co.tables.group(VS, XV).rebaseline
    a.write(VS, XV, "/f1", b"incremental again")
    assert pair.run(co.update(VS, XV)).records_sent < 30
    assert b.files(VS, XV) == a.files(VS, XV)


def test_a_cut_in_place_baseline_leaves_the_old_replica_and_the_next_update_resumes_it() -> None:
    pair, co = make_pair(bandwidth=5e6, size=60000)
    a, b = pair.site("A"), pair.site("B")
    first = pair.run(co.initialize(VS, XV)).snapshot.name
    for i in range(6):
        a.write(VS, XV, f"/f{i}", bytes([90 + i]) * 60000)
    before = b.files(VS, XV)
    pair.disaster(after_bytes=400_000)
    with pytest.raises(LinkError):
        pair.run(co.update(VS, XV, baseline=True))
    assert b.files(VS, XV) == before and [r.name for r in b.snapshots(VS, XV)] == [first]
    assert co.tables.group(VS, XV).rebaseline and staging_volumes(b)
    pair.reconnect()
    result = pair.run(co.update(VS, XV))  # a plain update resumes the baseline as one
    assert result.baseline and result.replaced == (first,)
    assert sum(m.records_resumed for m in result.members) + sum(m.skipped for m in result.members)
    assert b.files(VS, XV) == a.files(VS, XV) and pair.run(co.verify(VS, XV)).equal
    assert staging_volumes(b) == []


def test_failover_during_an_in_place_baseline_drops_the_staging_and_keeps_the_holds() -> None:
    pair, co = make_pair(bandwidth=5e6, size=60000)
    a, b = pair.site("A"), pair.site("B")
    first = pair.run(co.initialize(VS, XV)).snapshot.name
    exported = b.files(VS, XV)
    for i in range(6):
        a.write(VS, XV, f"/f{i}", bytes([20 + i]) * 60000)
    pair.disaster(after_bytes=400_000)
    with pytest.raises(LinkError):
        pair.run(co.update(VS, XV, baseline=True))
    co.failover(VS, XV)
    assert b.files(VS, XV) == exported and staging_volumes(b) == []
    assert [h.name for h in b.holds(VS, XV)] == [first]  # the resync's common base
    assert first in {h.name for h in a.holds(VS, XV)}
    done = pair.run(co.delete(VS, XV, release_source=False))  # the source is gone for good
    assert done.source_released == () and [h.name for h in done.released] == [first]
    assert first in {h.name for h in a.holds(VS, XV)}  # A's administrator releases it there
    assert not co.tables.has_group(VS, XV) and b.holds(VS, XV) == []


def test_an_in_place_baseline_is_refused_while_someone_else_holds_a_destination_snapshot() -> None:
    pair, co = make_pair()
    a, b = pair.site("A"), pair.site("B")
    first = pair.run(co.initialize(VS, XV)).snapshot.name
    b.hold(VS, XV, first, "auditor")
    versions = (a.cluster.replica().version, b.cluster.replica().version)
    with pytest.raises(SnapshotHeldError, match="auditor"):
        pair.run(co.update(VS, XV, baseline=True))
    assert (a.cluster.replica().version, b.cluster.replica().version) == versions
    b.release(VS, XV, "auditor")
    assert pair.run(co.update(VS, XV, baseline=True)).replaced == (first,)


def test_deleting_a_broken_mirror_releases_its_holds_at_both_sites() -> None:
    pair, co = make_pair()
    a, b = pair.site("A"), pair.site("B")
    first = pair.run(co.initialize(VS, XV)).snapshot.name
    with pytest.raises(StateError, match="fail it over"):
        pair.run(co.delete(VS, XV))
    co.failover(VS, XV)
    assert [h.name for h in a.holds(VS, XV)] == [first] == [h.name for h in b.holds(VS, XV)]
    pair.disaster()
    version = b.cluster.replica().version
    with pytest.raises(LinkError):
        pair.run(co.delete(VS, XV))
    assert co.tables.has_group(VS, XV) and b.cluster.replica().version == version
    pair.reconnect()
    done = pair.run(co.delete(VS, XV))
    assert [h.name for h in done.source_released] == [first] == [h.name for h in done.released]
    assert a.holds(VS, XV) == [] == b.holds(VS, XV)
    assert co.tables.relationships(VS, XV) == [] and co.tables.destination_volumes() == []
    a.delete_snapshot(VS, XV, first)  # nothing holds it any more
    b.write(VS, XV, "/still-read-write", b"yes")
    with pytest.raises(UnknownRelationshipError):
        pair.run(co.delete(VS, XV))


def test_retention_is_on_by_default_so_a_long_schedule_never_reaches_the_snapshot_limit() -> None:
    assert MirrorConfig().retain == DEFAULT_RETAIN
    a = build_site("A", seed=1, nodes=1, data_constituents=1, volume_blocks=128)
    b = build_site("B", seed=2, nodes=1, volume=None)
    pair = SitePair(a, b)
    a.write(VS, XV, "/f", b"x")
    co = MirroringCoordinator(b, pair.link("B", "A"))
    pair.run(co.initialize(VS, XV, config=MirrorConfig(schedule=60.0)))
    runs = pair.run(co.run_schedule(VS, XV, until=pair.now + 300 * 60.0 + 1.0))
    assert len(runs) == 300 and {r.outcome for r in runs} == {"updated"}  # > 255 snapshots
    for site in (a, b):
        assert len(site.snapshots(VS, XV)) == DEFAULT_RETAIN
        for member in site.members(VS, XV):
            assert len(site.volume(VS, XV, member.name).snapshots()) == DEFAULT_RETAIN
    assert b.files(VS, XV) == a.files(VS, XV)


def test_retain_none_keeps_every_snapshot_the_mirror_took() -> None:
    pair, co = make_pair()
    a, b = pair.site("A"), pair.site("B")
    pair.run(co.initialize(VS, XV, config=MirrorConfig(retain=None)))
    for i in range(3):
        a.write(VS, XV, f"/k{i}", b"keep")
        assert pair.run(co.update(VS, XV)).pruned == ()
    assert len(a.snapshots(VS, XV)) == len(b.snapshots(VS, XV)) == 4


def test_after_a_cut_update_and_failover_new_ids_never_reuse_the_sources() -> None:
    """The cut update's target snapshot and the objects written before it got IDs at the
    source; snapshots and objects made at the destination after failover must not reuse them
    (a later resync matches snapshots by ID and UUIDs, objects by GOID)."""
    pair, co = make_pair(bandwidth=5e6, size=60000)
    a, b = pair.site("A"), pair.site("B")
    pair.run(co.initialize(VS, XV))
    for i in range(4):
        a.write(VS, XV, f"/new{i}", bytes([90 + i]) * 60000)
    pair.disaster(after_bytes=150_000)
    with pytest.raises(LinkError):
        pair.run(co.update(VS, XV))
    source_snapshots = a.intact_snapshots(VS, XV)
    newest = source_snapshots[-1]  # the cut update's target
    assert newest.snapshot_id != co.tables.group(VS, XV).exported
    source_goids = {goid for _path, goid in a.open_snapshot(VS, XV, newest.name).walk()}
    co.failover(VS, XV)
    b.write(VS, XV, "/written-at-b", b"acknowledged")
    b.snapshot(VS, XV, "after-failover")
    mine = [r for r in b.intact_snapshots(VS, XV) if r.name == "after-failover"]
    assert mine and mine[0].snapshot_id not in {r.snapshot_id for r in source_snapshots}
    goids = dict(b.open_snapshot(VS, XV, "after-failover").walk())
    assert goids["/written-at-b"] not in source_goids
