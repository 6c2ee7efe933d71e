"""Tests of the resync after failover: common snapshot, dry run, preserve, rollback, reverse,
resize, transfer, fail back, new baseline, forced baseline, holds (reference/mirror/resync.py)."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xvol.errors import StateError, XvolError
from xvol.reference.mirror.coordinator import MirroringCoordinator
from xvol.reference.mirror.link import LinkError
from xvol.reference.mirror.relationships import MirrorState, mirror_holder
from xvol.reference.mirror.resync import (
    PRESERVED_MANIFEST,
    NoCommonSnapshotError,
    Resync,
    common_snapshot,
)
from xvol.reference.mirror.site import (
    ReadOnlyMirrorError,
    Site,
    SitePair,
    SnapshotHeldError,
    build_site,
    snapshot_files,
)

VS, XV = "vs1", "xv"


def failed_over_pair() -> tuple[SitePair, MirroringCoordinator]:
    """A mirrored A -> B, two updates, divergent writes at A, a disaster, failover, writes
    and a new constituent at B, then the link back."""
    a = build_site("A", seed=1, data_constituents=2)
    b = build_site("B", seed=2, volume=None)
    pair = SitePair(a, b)
    for i in range(5):
        a.write(VS, XV, f"/f{i}", bytes([i + 1]) * 12000)
    co = MirroringCoordinator(b, pair.link("B", "A"))
    pair.run(co.initialize(VS, XV))
    a.write(VS, XV, "/f0", b"A after the first update")
    pair.run(co.update(VS, XV))
    a.write(VS, XV, "/f1", b"A divergent")
    a.write(VS, XV, "/a-only", b"only at A")
    a.delete(VS, XV, "/f4")
    pair.disaster()
    co.failover(VS, XV)
    b.write(VS, XV, "/f2", b"B wrote this")
    b.write(VS, XV, "/b-only", b"only at B")
    b.cluster.mhost().add_data_constituent(VS, XV)
    b.cluster.expandable(VS, XV).create("/on-new-dc", b"n" * 5000, location=3)
    pair.reconnect()
    return pair, co


def test_dry_run_lists_exactly_what_would_be_discarded_and_changes_nothing() -> None:
    pair, _ = failed_over_pair()
    a = pair.site("A")
    resync = Resync(MirroringCoordinator(a, pair.link("A", "B")), VS, XV)
    version = a.cluster.replica().version
    files = a.files(VS, XV)
    plan = pair.run(resync.plan())
    assert plan.common is not None
    common = a.open_snapshot(VS, XV, plan.common.snapshot_id)
    base = {p: common.read(p) for p, _g in common.walk()}
    expected = sorted(p for p in set(base) | set(files) if base.get(p) != files.get(p))
    assert list(plan.discarded_paths) == expected == ["/a-only", "/f1", "/f4"]
    assert list(plan.source_changes) == ["/b-only", "/f2", "/on-new-dc"]
    assert plan.split_brain and plan.resize == ("DC3",)
    assert a.cluster.replica().version == version and a.files(VS, XV) == files


def test_resync_keeps_every_acknowledged_write_preserves_divergent_data_and_verifies() -> None:
    pair, _ = failed_over_pair()
    a, b = pair.site("A"), pair.site("B")
    acknowledged = b.files(VS, XV)
    co_a = MirroringCoordinator(a, pair.link("A", "B"))
    result = pair.run(Resync(co_a, VS, XV).run())
    assert a.files(VS, XV) == acknowledged  # nothing acknowledged at B is lost
    assert result.update.added == ("DC3",)
    assert [m.name for m in a.members(VS, XV)] == ["NS", "OLS", "DC1", "DC2", "DC3"]
    assert result.preserved is not None
    kept = a.open_snapshot(VS, result.preserved, "preserved")
    assert kept.read("/f1") == b"A divergent" and kept.read("/a-only") == b"only at A"
    assert b"deleted /f4" in kept.read(PRESERVED_MANIFEST)
    assert pair.run(co_a.verify(VS, XV)).equal
    # relationships reversed: A is the destination now, B holds none
    assert {r.source_cluster for r in co_a.tables.relationships(VS, XV)} == {"B"}
    assert not MirroringCoordinator(b, pair.link("B", "A")).tables.has_group(VS, XV)
    with pytest.raises(ReadOnlyMirrorError):
        a.write(VS, XV, "/x", b"A is a mirror now")
    b.write(VS, XV, "/later", b"mirrored back")
    pair.run(co_a.update(VS, XV))
    assert a.read(VS, XV, "/later") == b"mirrored back"


def test_fail_back_is_the_same_resync_in_the_other_direction() -> None:
    pair, _ = failed_over_pair()
    a, b = pair.site("A"), pair.site("B")
    co_a = MirroringCoordinator(a, pair.link("A", "B"))
    pair.run(Resync(co_a, VS, XV).run())
    co_a.failover(VS, XV)
    a.write(VS, XV, "/home", b"back home")
    co_b = MirroringCoordinator(b, pair.link("B", "A"))
    result = pair.run(Resync(co_b, VS, XV).run())
    assert result.preserved is None and result.plan.discarded_paths == ()
    assert b.files(VS, XV) == a.files(VS, XV)
    assert pair.run(co_b.verify(VS, XV)).equal
    assert co_b.tables.group(VS, XV).state is MirrorState.MIRRORED


def test_discard_needs_an_explicit_choice_and_then_preserves_nothing() -> None:
    pair, _ = failed_over_pair()
    a = pair.site("A")
    result = pair.run(
        Resync(MirroringCoordinator(a, pair.link("A", "B")), VS, XV).run(discard=True)
    )
    assert result.preserved is None
    assert not a.has_volume(VS, f"{XV}-preserved-1")
    assert result.plan.discarded_paths == ("/a-only", "/f1", "/f4")


def test_a_missing_common_snapshot_is_a_typed_error_and_baseline_works() -> None:
    pair, _ = failed_over_pair()
    a, b = pair.site("A"), pair.site("B")
    common = a.snapshots(VS, XV)[-1]
    with pytest.raises(SnapshotHeldError):  # the broken mirror still holds its common base
        a.delete_snapshot(VS, XV, common.name)
    a.release(VS, XV, mirror_holder("A", VS, XV, "B", VS, XV))  # an administrator insists
    for row in a.snapshots(VS, XV):
        a.jobs.delete(VS, XV, row.name)  # the common snapshot is deleted at the old primary
    co_a = MirroringCoordinator(a, pair.link("A", "B"))
    version = a.cluster.replica().version
    with pytest.raises(NoCommonSnapshotError, match="baseline=True"):
        pair.run(Resync(co_a, VS, XV).run())
    assert a.cluster.replica().version == version
    result = pair.run(Resync(co_a, VS, XV).run(baseline=True))
    assert result.plan.common is None
    assert a.files(VS, XV) == b.files(VS, XV)
    assert result.preserved is not None
    assert pair.run(co_a.verify(VS, XV)).equal


def test_resync_from_a_site_that_is_still_a_mirror_is_refused() -> None:
    a = build_site("A", seed=1, data_constituents=1)
    b = build_site("B", seed=2, volume=None)
    pair = SitePair(a, b)
    a.write(VS, XV, "/f", b"x")
    co = MirroringCoordinator(b, pair.link("B", "A"))
    pair.run(co.initialize(VS, XV))
    with pytest.raises(StateError, match="fail it over"):
        pair.run(Resync(MirroringCoordinator(a, pair.link("A", "B")), VS, XV).plan())


def test_common_snapshot_is_one_snapshot_for_the_whole_volume() -> None:
    pair, _ = failed_over_pair()
    a, b = pair.site("A"), pair.site("B")
    mine, theirs = a.intact_snapshots(VS, XV), b.intact_snapshots(VS, XV)
    common = common_snapshot(mine, theirs)
    assert common is not None and common.name == theirs[-1].name
    # one member's copy differing makes that snapshot not common at all
    tampered = [r for r in theirs if r.snapshot_id != common.snapshot_id]
    assert common_snapshot(mine, tampered) is None or common_snapshot(mine, tampered) != common


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000))
def test_random_schedules_keep_the_mirror_consistent_and_lose_no_acknowledged_write(
    seed: int,
) -> None:
    rng = random.Random(seed)
    a = build_site("A", seed=1, data_constituents=1)
    b = build_site("B", seed=2, volume=None)
    pair = SitePair(a, b, bandwidth=4e6)
    primary, mirror = a, b
    a.write(VS, XV, "/seed", b"s")
    co = MirroringCoordinator(b, pair.link("B", "A"))
    pair.run(co.initialize(VS, XV))
    for step in range(7):
        action = rng.choice(
            ["write", "write", "snapshot", "update", "cut-update", "disaster", "grow"]
        )
        if action == "write":
            primary.write(VS, XV, f"/w{rng.randrange(4)}", bytes([step]) * rng.randrange(1, 9000))
        elif action == "snapshot":
            primary.snapshot(VS, XV, f"user-{step}")
        elif action == "grow" and len(primary.members(VS, XV)) < 4:
            primary.cluster.mhost().add_data_constituent(VS, XV)
        elif action in ("update", "cut-update"):
            exported = mirror.files(VS, XV)
            if action == "cut-update":
                pair.disaster(after_bytes=rng.randrange(1000, 60000))
            try:
                pair.run(co.update(VS, XV))
            except LinkError:
                assert mirror.files(VS, XV) == exported  # the previous snapshot is intact
            pair.reconnect()
        elif action == "disaster":
            pair.disaster()
            co.failover(VS, XV)
            assert mirror.cluster.expandable(VS, XV).check_references().ok
            mirror.write(VS, XV, f"/acked{step}", b"acknowledged at the new primary")
            acknowledged = mirror.files(VS, XV)
            pair.reconnect()
            co = MirroringCoordinator(primary, pair.link(primary.name, mirror.name))
            result = pair.run(Resync(co, VS, XV).run())
            assert primary.files(VS, XV) == acknowledged
            if result.preserved is not None:
                assert primary.open_snapshot(VS, result.preserved, "preserved").read(
                    PRESERVED_MANIFEST
                )
            primary, mirror = mirror, primary
        result_verify = None
        if co.tables.group(VS, XV).exported is not None:
            result_verify = pair.run(co.verify(VS, XV))
            assert result_verify.equal
    sent = pair.run(co.update(VS, XV))  # may finish a cut update's target first
    view = primary.open_snapshot(VS, XV, sent.snapshot.name)
    assert mirror.files(VS, XV) == {p: view.read(p) for p, _g in view.walk()}
    pair.run(co.update(VS, XV))
    assert mirror.files(VS, XV) == primary.files(VS, XV)


def test_an_empty_directory_made_at_the_old_primary_is_listed_and_preserved() -> None:
    a = build_site("A", seed=1, data_constituents=1)
    b = build_site("B", seed=2, volume=None)
    pair = SitePair(a, b)
    a.write(VS, XV, "/f", b"base")
    pair.run(MirroringCoordinator(b, pair.link("B", "A")).initialize(VS, XV))
    xv = a.cluster.expandable(VS, XV)
    xv.mkdir("/empty-at-a")
    xv.mkdir("/full-at-a")
    a.write(VS, XV, "/full-at-a/file", b"x")
    pair.disaster()
    MirroringCoordinator(b, pair.link("B", "A")).failover(VS, XV)
    pair.reconnect()
    resync = Resync(MirroringCoordinator(a, pair.link("A", "B")), VS, XV)
    plan = pair.run(resync.plan())
    assert list(plan.discarded_paths) == ["/empty-at-a/", "/full-at-a/file"]
    result = pair.run(resync.run())
    assert result.preserved is not None
    kept = a.open_snapshot(VS, result.preserved, "preserved")
    assert {e.name for e in kept.readdir("/")} >= {"empty-at-a", "full-at-a"}
    assert b"kept directory /empty-at-a/" in kept.read(PRESERVED_MANIFEST)
    assert not any(e.name == "empty-at-a" for e in xv.readdir("/"))  # rolled back


def test_a_resync_moves_the_holds_from_the_reversed_relationship_to_the_new_one() -> None:
    pair, _ = failed_over_pair()
    a, b = pair.site("A"), pair.site("B")
    old = mirror_holder("A", VS, XV, "B", VS, XV)
    assert {h.holder for h in a.holds(VS, XV)} == {old} == {h.holder for h in b.holds(VS, XV)}
    co_a = MirroringCoordinator(a, pair.link("A", "B"))
    resync = Resync(co_a, VS, XV)
    plan = pair.run(resync.plan())
    assert plan.released and {h.holder for h in plan.released} == {old} and plan.held == ()
    result = pair.run(resync.run())
    new = mirror_holder("B", VS, XV, "A", VS, XV)
    exported = result.update.snapshot.name
    assert [(h.name, h.holder) for h in a.holds(VS, XV)] == [(exported, new)]
    assert [(h.name, h.holder) for h in b.holds(VS, XV)] == [(exported, new)]
    with pytest.raises(SnapshotHeldError):
        b.delete_snapshot(VS, XV, exported)  # B is the source now and keeps A's base


def test_a_snapshot_someone_else_holds_stops_the_resync_before_anything_changes() -> None:
    pair, _ = failed_over_pair()
    a = pair.site("A")
    co_a = MirroringCoordinator(a, pair.link("A", "B"))
    a.snapshot(VS, XV, "legal-hold")  # taken at A after the failover: B lacks it
    a.hold(VS, XV, "legal-hold", "legal")
    plan = pair.run(Resync(co_a, VS, XV).plan())
    assert "legal-hold" in plan.discarded_snapshots
    assert [(h.name, h.holder) for h in plan.held] == [("legal-hold", "legal")]
    version, files = a.cluster.replica().version, a.files(VS, XV)
    with pytest.raises(SnapshotHeldError, match="legal"):
        pair.run(Resync(co_a, VS, XV).run())
    assert a.cluster.replica().version == version and a.files(VS, XV) == files
    a.release(VS, XV, "legal")
    assert pair.run(Resync(co_a, VS, XV).run()).update.snapshot is not None


def test_a_forced_baseline_resends_everything_preserves_and_serves_the_common_snapshot() -> None:
    pair, _ = failed_over_pair()
    a, b = pair.site("A"), pair.site("B")
    co_a = MirroringCoordinator(a, pair.link("A", "B"))
    resync = Resync(co_a, VS, XV)
    plan = pair.run(resync.plan(force_baseline=True))
    assert plan.baseline and plan.common is not None
    assert set(plan.discarded_snapshots) == {r.name for r in a.snapshots(VS, XV)}
    assert plan.discarded_paths == ("/a-only", "/f1", "/f4")  # divergence since the common one
    common = snapshot_files(a.open_snapshot(VS, XV, plan.common.snapshot_id))
    pair.disaster(after_bytes=150_000)  # the baseline is cut mid-way
    with pytest.raises(LinkError):
        pair.run(resync.run(force_baseline=True))
    assert a.files(VS, XV) == common  # A serves the common snapshot while the baseline streams
    assert co_a.tables.group(VS, XV).rebaseline
    pair.reconnect()
    result = pair.run(co_a.update(VS, XV))  # resumes the baseline
    assert result.baseline and plan.common.name in result.replaced
    assert a.files(VS, XV) == b.files(VS, XV) and pair.run(co_a.verify(VS, XV)).equal
    preserved = [vol for vs, vol, _m in a.cluster.volume_table() if "preserved" in vol]
    kept = a.open_snapshot(VS, preserved[0], "preserved")
    assert kept.read("/f1") == b"A divergent" and kept.read("/a-only") == b"only at A"


def test_a_forced_baseline_resync_runs_to_the_end_in_one_go() -> None:
    pair, _ = failed_over_pair()
    a, b = pair.site("A"), pair.site("B")
    co_a = MirroringCoordinator(a, pair.link("A", "B"))
    result = pair.run(Resync(co_a, VS, XV).run(force_baseline=True, discard=True))
    assert result.plan.baseline and result.update.baseline and result.preserved is None
    assert result.update.records_sent == sum(m.records for m in result.update.members)
    assert a.files(VS, XV) == b.files(VS, XV) and pair.run(co_a.verify(VS, XV)).equal
    assert [r.name for r in a.snapshots(VS, XV)] == [result.update.snapshot.name]


def diverge(site: Site, rng: random.Random, count: int) -> None:
    """``count`` random client writes at ``site``: new, changed, same-bytes, deleted, renamed
    (onto freed names too), migrated files and new directories (refused ones change nothing)."""
    xv = site.cluster.expandable(VS, XV)
    for step in range(count):
        path = rng.choice(["/", "/d/"]) + rng.choice(["f0", "f1", "f2", "n"])
        op = rng.choice(["create", "write", "same", "delete", "rename", "mkdir", "migrate"])
        try:
            if op == "create":
                xv.create(path, bytes([step]) * rng.randrange(1, 7000))
            elif op == "write":
                xv.write(path, rng.randrange(0, 4000), rng.randbytes(rng.randrange(1, 2000)))
            elif op == "same":
                xv.replace(path, xv.read(path))
            elif op == "delete":
                xv.delete(path)
            elif op == "rename":
                xv.rename(path, rng.choice(["/", "/d/"]) + rng.choice(["f0", "f1", "m"]))
            elif op == "mkdir":
                xv.mkdir(rng.choice(["/d", "/e", "/d/g"]))
            else:
                handle = xv.stat(path).handle
                if handle is not None:
                    xv.migrate(handle, 1 + handle.location_id % 2)
        except XvolError:
            pass


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10**6), at_a=st.integers(0, 14), at_b=st.integers(0, 14))
def test_the_dry_run_that_reads_only_changes_equals_the_full_read_plan(
    seed: int, at_a: int, at_b: int
) -> None:
    rng = random.Random(seed)
    a = build_site("A", seed=1, data_constituents=2)
    b = build_site("B", seed=2, volume=None)
    pair = SitePair(a, b)
    a.cluster.expandable(VS, XV).mkdir("/d")
    for name in ("/f0", "/f1", "/d/f0", "/d/f2"):
        a.write(VS, XV, name, name.encode() * 300)
    co_b = MirroringCoordinator(b, pair.link("B", "A"))
    pair.run(co_b.initialize(VS, XV))
    diverge(a, rng, at_a // 2)
    pair.run(co_b.update(VS, XV))
    diverge(a, rng, at_a)
    pair.disaster()
    co_b.failover(VS, XV)
    diverge(b, rng, at_b)
    if rng.random() < 0.3:
        b.cluster.mhost().add_data_constituent(VS, XV)
        b.cluster.expandable(VS, XV).create("/on-dc3", b"3" * 900, location=3)
    pair.reconnect()
    resync = Resync(MirroringCoordinator(a, pair.link("A", "B")), VS, XV)
    fast = pair.run(resync.plan())
    full = pair.run(resync.plan(method="scan"))
    assert fast == full  # every list, the split brain and the conflicts alike
    common = a.open_snapshot(VS, XV, full.common.snapshot_id)  # type: ignore[union-attr]
    base = snapshot_files(common)
    here, there = a.files(VS, XV), b.files(VS, XV)
    assert {p for p in fast.discarded_paths if not p.endswith("/")} == {
        p for p in set(base) | set(here) if base.get(p) != here.get(p)
    }
    assert set(fast.source_changes) == {
        p for p in set(base) | set(there) if base.get(p) != there.get(p)
    }


def test_without_a_common_snapshot_only_paths_whose_contents_differ_are_listed() -> None:
    a = build_site("A", seed=1, data_constituents=2)
    b = build_site("B", seed=2, volume=None)
    pair = SitePair(a, b)
    for i in range(6):
        a.write(VS, XV, f"/same{i}", bytes([i]) * 5000)
    a.write(VS, XV, "/both", b"as mirrored")
    a.cluster.expandable(VS, XV).mkdir("/shared-dir")
    co_b = MirroringCoordinator(b, pair.link("B", "A"))
    pair.run(co_b.initialize(VS, XV))
    pair.disaster()
    co_b.failover(VS, XV)
    a.write(VS, XV, "/both", b"A's version")
    a.write(VS, XV, "/a-only", b"only at A")
    a.cluster.expandable(VS, XV).mkdir("/a-dir")
    b.write(VS, XV, "/both", b"B's version")
    b.write(VS, XV, "/b-only", b"only at B")
    a.release(VS, XV, mirror_holder("A", VS, XV, "B", VS, XV))
    for row in a.snapshots(VS, XV):  # no common snapshot any more
        a.jobs.delete(VS, XV, row.name)
    pair.reconnect()
    co_a = MirroringCoordinator(a, pair.link("A", "B"))
    plan = pair.run(Resync(co_a, VS, XV).plan(baseline=True))
    assert plan.common is None and plan.baseline
    # identical files (same bytes at both sites) are neither discarded nor conflicting
    assert plan.discarded_paths == ("/a-dir/", "/a-only", "/both")
    assert plan.source_changes == ("/b-only", "/both")
    assert plan.conflicting_paths == ("/both",) and plan.split_brain
    assert pair.run(Resync(co_a, VS, XV).plan(baseline=True, method="scan")) == plan
    acknowledged = b.files(VS, XV)
    result = pair.run(Resync(co_a, VS, XV).run(baseline=True))
    assert a.files(VS, XV) == acknowledged
    assert result.preserved is not None
    kept = a.open_snapshot(VS, result.preserved, "preserved")
    assert kept.read("/both") == b"A's version" and kept.read("/a-only") == b"only at A"
    assert {p for p, _g in kept.walk()} == {"/both", "/a-only", PRESERVED_MANIFEST}


def test_a_user_hold_on_an_older_shared_snapshot_survives_the_resync_whole() -> None:
    a = build_site("A", seed=1, data_constituents=2)
    b = build_site("B", seed=2, volume=None)
    pair = SitePair(a, b)
    a.write(VS, XV, "/f", b"first")
    co_b = MirroringCoordinator(b, pair.link("B", "A"))
    older = pair.run(co_b.initialize(VS, XV)).snapshot.name
    a.write(VS, XV, "/f", b"second")
    pair.run(co_b.update(VS, XV))
    a.hold(VS, XV, older, "backup")  # shared by both sites, older than the common base
    pair.disaster()
    co_b.failover(VS, XV)
    b.write(VS, XV, "/g", b"written at B")
    pair.reconnect()
    co_a = MirroringCoordinator(a, pair.link("A", "B"))
    result = pair.run(Resync(co_a, VS, XV).run())
    assert older not in result.plan.discarded_snapshots and result.plan.held == ()
    assert a.files(VS, XV) == b.files(VS, XV)
    assert [h.holder for h in a.holds(VS, XV, older)] == ["backup"]
    row = a.jobs.get(VS, XV, older)
    assert a.jobs.table.missing(row) == []  # every member's copy is still there
    assert a.open_snapshot(VS, XV, older).read("/f") == b"first"
