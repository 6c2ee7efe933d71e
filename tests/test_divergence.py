"""Tests of the dry run's change finder (reference/mirror/divergence.py): over random client
operations (creates, writes, truncates, deletes, renames, directories, migrations, rewrites of
the same bytes, a constituent added), in every namespace layout, the diff finds exactly the files
and directories that reading everything finds, against the live volume and against a later
snapshot, and reads only the files that may differ."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xvol.errors import InvalidArgumentError, XvolError
from xvol.reference.cluster.cluster import Cluster
from xvol.reference.mirror.divergence import (
    Divergence,
    active_files,
    divergence,
    site_digests,
    snapshot_files,
)
from xvol.reference.mirror.site import Site
from xvol.reference.repository.namespace import LocatorMode

VS, XV = "vs1", "xv"
DIRS = ("/", "/d", "/d/e", "/g")
NAMES = ("a", "b", "c")
OPS = ("create", "create", "write", "replace", "same", "recreate", "truncate", "delete")
OPS += ("rename", "rename", "mkdir", "rmdir", "migrate", "grow")


def make_site(mode: LocatorMode = LocatorMode.REDIRECTOR_GOID, seed: int = 1) -> Site:
    cluster = Cluster(2, seed=seed)
    mhost = cluster.mhost()
    mhost.create_vserver(VS)
    mhost.create_expandable_volume(VS, XV, data_constituents=2, locator=mode, volume_blocks=512)
    return Site("A", cluster)


def client_ops(site: Site, rng: random.Random, count: int) -> None:
    """``count`` random client operations (refused ones change nothing)."""
    xv = site.cluster.expandable(VS, XV)
    for _ in range(count):
        path = rng.choice(DIRS).rstrip("/") + "/" + rng.choice(NAMES)
        op = rng.choice(OPS)
        try:
            if op == "create":
                xv.create(path, rng.randbytes(rng.randrange(0, 6000)))
            elif op == "write":
                xv.write(path, rng.randrange(0, 5000), rng.randbytes(rng.randrange(1, 3000)))
            elif op == "replace":
                xv.replace(path, rng.randbytes(rng.randrange(0, 3000)))
            elif op == "same":  # rewrite the very same bytes: a change the diff sees, not real
                xv.replace(path, xv.read(path))
            elif op == "recreate":  # a new object with the old bytes at the same path
                data = xv.read(path)
                xv.delete(path)
                xv.create(path, data)
            elif op == "truncate":
                xv.truncate(path, rng.randrange(0, 4000))
            elif op == "delete":
                xv.delete(path)
            elif op == "rename":
                name = rng.choice(NAMES) + rng.choice(["", "2"])  # onto a freed name too
                xv.rename(path, rng.choice(DIRS).rstrip("/") + "/" + name)
            elif op == "mkdir":
                xv.mkdir(path)
            elif op == "rmdir":
                xv.rmdir(path)
            elif op == "migrate":
                handle = xv.stat(path).handle
                if handle is not None:
                    xv.migrate(handle, 1 + handle.location_id % len(xv.data_constituents()))
            elif len(xv.data_constituents()) < 3:  # grow: a constituent added, an object on it
                site.cluster.mhost().add_data_constituent(VS, XV)
                xv.create(path, rng.randbytes(500), location=3)
        except XvolError:
            pass


def same_answer(diff: Divergence, scan: Divergence) -> None:
    assert (diff.files, diff.made_dirs) == (scan.files, scan.made_dirs)


@settings(max_examples=25, deadline=None)
@given(
    st.integers(0, 10**6),
    st.integers(0, 20),
    st.integers(0, 20),
    st.sampled_from(list(LocatorMode)),
)
def test_the_diff_finds_exactly_what_reading_everything_finds(
    seed: int, before: int, after: int, mode: LocatorMode
) -> None:
    rng = random.Random(seed)
    site = make_site(mode, seed % 7)
    client_ops(site, rng, before)
    since = site.snapshot(VS, XV, "since")
    client_ops(site, rng, after)
    later = site.snapshot(VS, XV, "later")
    client_ops(site, rng, after // 2)
    for target in (None, later):
        diff = divergence(site, VS, XV, since, target)
        scan = divergence(site, VS, XV, since, target, method="scan")
        same_answer(diff, scan)
        assert diff.files_read <= scan.files_read


def test_only_the_changed_files_are_read_not_the_whole_volume() -> None:
    site = make_site()
    xv = site.cluster.expandable(VS, XV)
    xv.mkdir("/docs")
    for i in range(120):
        xv.create(f"/docs/f{i:03d}", bytes([i]) * 2000)
    since = site.snapshot(VS, XV, "since")
    xv.write("/docs/f005", 0, b"changed")
    xv.replace("/docs/f006", xv.read("/docs/f006"))  # same bytes: read, not listed
    xv.delete("/docs/f007")
    xv.create("/new", b"new")
    xv.mkdir("/made")
    diff = divergence(site, VS, XV, since)
    scan = divergence(site, VS, XV, since, method="scan")
    same_answer(diff, scan)
    assert diff.files == ("/docs/f005", "/docs/f007", "/new") and diff.made_dirs == ("/made",)
    assert diff.files_read <= 2 * 3 + 1 < scan.files_read == 120 + 120
    assert diff.bytes_read < scan.bytes_read // 20


def test_a_snapshot_to_itself_has_no_changes_and_reads_nothing() -> None:
    site = make_site()
    site.cluster.expandable(VS, XV).create("/x", b"x")
    since = site.snapshot(VS, XV, "since")
    found = divergence(site, VS, XV, since, since)
    assert found.files == found.made_dirs == () and found.files_read == 0


def test_the_full_readers_and_digests_agree_with_the_files() -> None:
    site = make_site()
    xv = site.cluster.expandable(VS, XV)
    xv.mkdir("/d")
    xv.create("/d/x", b"x")
    xv.create("/y", b"")
    row = site.snapshot(VS, XV, "s")
    files = active_files(site.cluster, VS, XV)
    assert files == snapshot_files(site.open_snapshot(VS, XV, "s")) == {"/d/x": b"x", "/y": b""}
    digests, dirs = site_digests(site, VS, XV)
    assert set(digests) == set(files) and dirs == {"/d"}
    assert site_digests(site, VS, XV, row) == (digests, dirs)
    assert digests["/d/x"] != digests["/y"]


def test_an_unknown_method_is_refused() -> None:
    site = make_site()
    since = site.snapshot(VS, XV, "s")
    with pytest.raises(InvalidArgumentError, match="diff or scan"):
        divergence(site, VS, XV, since, method="guess")  # type: ignore[arg-type]


@pytest.mark.parametrize("mode", list(LocatorMode))
def test_a_name_that_now_names_another_unchanged_object_is_found(mode: LocatorMode) -> None:
    site = make_site(mode)
    xv = site.cluster.expandable(VS, XV)
    xv.create("/a", b"object A")
    xv.create("/b", b"object B")
    since = site.snapshot(VS, XV, "since")
    xv.delete("/a")
    xv.rename("/b", "/a")  # /a now names B, whose bytes and constituent file are unchanged
    found = divergence(site, VS, XV, since)
    assert found.files == ("/a", "/b")
    same_answer(found, divergence(site, VS, XV, since, method="scan"))


def test_a_member_removed_since_the_snapshot_falls_back_to_reading_everything() -> None:
    site = make_site()
    xv = site.cluster.expandable(VS, XV)
    xv.create("/on-dc2", b"two", location=2)
    since = site.snapshot(VS, XV, "since")
    site.cluster.mhost().remove_data_constituent(VS, XV, 1)  # it held no object
    xv.create("/later", b"later")
    found = divergence(site, VS, XV, since)
    assert found.method == "scan" and found.files == ("/later",)
    same_answer(found, divergence(site, VS, XV, since, method="scan"))
