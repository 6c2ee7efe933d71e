"""What changed at one site since a snapshot: the change finder of the resync's dry run.

The seed's resync process compares each site with the *common snapshot* (the newest snapshot both
sites hold): the old primary's writes since it would be rolled back, the other site's are what
it sends. A dry run must list them exactly (every file whose bytes differ, created, modified or
deleted, and the directories created), and should cost what the changes cost, not what the
volume holds. This module answers at one site, for an expandable volume ``vserver``/``volume``,
from snapshot ``since`` to ``target`` (another snapshot, or the live volume), by one of two
methods with the same answer (the tests check it over random divergences):

* ``"scan"``, the baseline: read every file of both trees through the snapshot access layer and
  compare the bytes, and walk every directory of both (cost: the whole volume, twice);
* ``"diff"`` (the default): ask each member volume which of its files changed
  (:func:`~xvol.reference.volume.changes.changed_files`: copy-on-write inode-file blocks and
  directory blocks, never file data), then read only the user paths that may differ:

  1. the **namespace** volume's changed files are the redirectors (or, in ``entry-goid`` mode,
     the entries) created, deleted or rewritten: their user paths (created or deleted objects,
     a path that now names another object) and the directories created;
  2. each **data constituent**'s changed files are ``/objects/<b>/<goid>``: the objects written,
     created or removed there (a constituent added since ``since`` counts whole);
  3. the paths naming one of those objects in ``target``'s namespace (one walk of names and
     GOIDs, only when some object changed), plus the paths of step 1, are the *candidates*:
     each is read at both sides and kept if the bytes differ.

  The OLS is not consulted: an object's location changes only by a migration, whose copy
  creates the object's file on its new constituent (step 2 finds it); a path whose object,
  name and constituent file are all unchanged holds the same bytes. A ``since`` member whose
  volume is gone here (a removed constituent) makes the diff fall back to the scan (the answer
  says which method ran).

:func:`site_digests` serves the case without a common snapshot: the digest of every file (and
every directory), so two sites compare contents by hashes without moving bytes.

It also holds what reads a site's files in full (:func:`active_files`, :func:`snapshot_files`,
:func:`changed_paths`; :mod:`.site` re-exports them).

Uses: a site's volumes and snapshot views (:class:`~.site.Site`, by duck typing: the site module
imports this one), the cluster, the snapshot access layer, the repository's namespace and
constituent layouts, the volume layer's change finder, errors.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from xvol.errors import InvalidArgumentError
from xvol.reference.cluster.cluster import Cluster
from xvol.reference.repository.constituent import object_goid
from xvol.reference.repository.expandable import ExpandableVolume
from xvol.reference.repository.files import VolumeFiles
from xvol.reference.repository.namespace import NamespaceVolume, user_path
from xvol.reference.snapshots.snapshot_access import SnapshotView
from xvol.reference.snapshots.snapshot_table import SnapshotRecord
from xvol.reference.volume.changes import FileChanges, changed_files
from xvol.vocabulary import NAMESPACE_VOLUME, VolumeRole

if TYPE_CHECKING:  # the site module uses this one (its proxy answers with it)
    from xvol.reference.mirror.site import Site

ChangeMethod = Literal["diff", "scan"]
CHANGE_METHODS: tuple[ChangeMethod, ...] = ("diff", "scan")


# --------------------------------------------------------------------------------------------
# Files of a site, read in full
# --------------------------------------------------------------------------------------------


def active_files(cluster: Cluster, vserver: str, volume: str) -> dict[str, bytes]:
    """The files of the live expandable volume, path -> bytes."""
    xv = cluster.expandable(vserver, volume)
    raw, _ = xv.access.call(NAMESPACE_VOLUME, "walk", {})
    return {str(path): xv.read(str(path)) for path, _goid in raw}


def snapshot_files(view: SnapshotView) -> dict[str, bytes]:
    """The files of a snapshot view, path -> bytes."""
    return {path: view.read(path) for path, _goid in view.walk()}


def changed_paths(before: dict[str, bytes], after: dict[str, bytes]) -> list[str]:
    """Paths created, modified or deleted from ``before`` to ``after``, sorted."""
    return sorted(p for p in set(before) | set(after) if before.get(p) != after.get(p))


@dataclass(frozen=True)
class Divergence:
    """What changed at one site from snapshot ``since`` to the target: ``files``, the user paths
    whose bytes differ (created, modified or deleted, sorted: exactly what comparing every file
    of both trees gives), ``made_dirs``, the directories in the target and not in ``since``
    (sorted), and what finding them cost: file contents read (``files_read``, both sides
    counted, and their bytes), namespace paths walked, inode-file blocks and directories read."""

    files: tuple[str, ...]
    made_dirs: tuple[str, ...]
    method: ChangeMethod
    files_read: int = 0
    bytes_read: int = 0
    names_walked: int = 0
    inode_blocks_read: int = 0
    directories_read: int = 0


def check_method(method: str) -> ChangeMethod:
    """``method`` if it names a change finder, else :class:`InvalidArgumentError`."""
    if method not in CHANGE_METHODS:
        raise InvalidArgumentError(
            f"unknown change method {method!r}: use {' or '.join(CHANGE_METHODS)}"
        )
    return method


def divergence(
    site: Site,
    vserver: str,
    volume: str,
    since: SnapshotRecord,
    target: SnapshotRecord | None = None,
    *,
    method: ChangeMethod = "diff",
) -> Divergence:
    """The files and directories of ``vserver``/``volume`` at ``site`` that changed from
    snapshot ``since`` to snapshot ``target`` (None: the live volume), found by ``method``
    (see the module text). Reads only; nothing changes."""
    if check_method(method) == "scan":
        return _scan(site, vserver, volume, since, target)
    members = (
        {m.name: m.volume_id for m in site.members(vserver, volume)}
        if target is None
        else {v.member: v.volume_id for v in target.volumes}
    )
    if any(members.get(v.member) != v.volume_id for v in since.volumes):
        return _scan(site, vserver, volume, since, target)  # a member's volume is gone here
    return _diff(site, vserver, volume, since, target, members)


# --------------------------------------------------------------------------------------------
# The baseline: read everything
# --------------------------------------------------------------------------------------------


def _scan(
    site: Site, vserver: str, volume: str, since: SnapshotRecord, target: SnapshotRecord | None
) -> Divergence:
    before, before_dirs = tree_contents(site, vserver, volume, since)
    after, after_dirs = tree_contents(site, vserver, volume, target)
    made = after_dirs - before_dirs
    return Divergence(
        tuple(changed_paths(before, after)),
        tuple(sorted(made)),
        "scan",
        files_read=len(before) + len(after),
        bytes_read=sum(map(len, before.values())) + sum(map(len, after.values())),
        names_walked=len(before) + len(after),
    )


def tree_contents(
    site: Site, vserver: str, volume: str, target: SnapshotRecord | None
) -> tuple[dict[str, bytes], set[str]]:
    """(path -> bytes of every file, every directory) of snapshot ``target`` (None: the live
    volume), read in full."""
    if target is None:
        tree: ExpandableVolume | SnapshotView = site.cluster.expandable(vserver, volume)
        return active_files(site.cluster, vserver, volume), directories(tree)
    view = site.open_snapshot(vserver, volume, target.snapshot_id)
    return snapshot_files(view), directories(view)


def directories(tree: ExpandableVolume | SnapshotView) -> set[str]:
    """Every directory path under ``/`` of a live expandable volume or a snapshot view."""
    found: set[str] = set()
    stack = ["/"]
    while stack:
        directory = stack.pop()
        for entry in tree.readdir(directory):
            if entry.is_dir:
                path = directory.rstrip("/") + "/" + entry.name
                found.add(path)
                stack.append(path)
    return found


# --------------------------------------------------------------------------------------------
# The diff: ask the member volumes, read the candidates
# --------------------------------------------------------------------------------------------


def _diff(
    site: Site,
    vserver: str,
    volume: str,
    since: SnapshotRecord,
    target: SnapshotRecord | None,
    members: dict[str, str],
) -> Divergence:
    base = {v.member: uuid.UUID(v.uuid) for v in since.volumes}
    after_ref = None if target is None else {v.member: uuid.UUID(v.uuid) for v in target.volumes}

    def member_changes(name: str) -> FileChanges:
        return changed_files(
            site.volume(vserver, volume, name),
            base.get(name),
            None if after_ref is None else after_ref[name],
        )

    # 1. the namespace: paths whose entry changed, and the directories made
    ns = member_changes(NAMESPACE_VOLUME)
    mode = NamespaceVolume.open(VolumeFiles(site.volume(vserver, volume, NAMESPACE_VOLUME))).mode
    existed: dict[str, bool] = {}  # candidate -> whether it was an object in ``since``
    exists: dict[str, bool] = {}  # candidate -> whether it is an object in the target
    for kind, paths in (("created", ns.created), ("deleted", ns.deleted), ("both", ns.modified)):
        for path in paths:
            user = user_path(mode, path, False)
            if user is None:
                continue
            existed[user] = existed.get(user, False) or kind in ("deleted", "both")
            exists[user] = exists.get(user, False) or kind in ("created", "both")
    made = sorted(
        u for p in ns.created_dirs if (u := user_path(mode, p, True)) is not None and u != "/"
    )
    # 2. the data constituents: objects written, created or removed
    goids: set[int] = set()
    inode_blocks, dirs_read = ns.inode_blocks_read, ns.directories_read
    record = site.record(vserver, volume)
    roles = {m.name: m.role for m in record.members}
    for name in members:
        if roles.get(name, VolumeRole.DATA) is not VolumeRole.DATA:
            continue
        if target is None and not site.volume(vserver, volume, name).has_active:
            continue  # never formatted (a cut baseline of a new member): it holds no object
        found = member_changes(name)
        inode_blocks += found.inode_blocks_read
        dirs_read += found.directories_read
        goids.update(g for p in found.files if (g := object_goid(p)) is not None)
    # 3. the paths naming a changed object in the target's namespace
    walked = 0
    if goids:
        names = _walk(site, vserver, volume, target)
        walked = len(names)
        for path, goid in names:
            if goid in goids and path not in exists:
                existed[path] = True  # its entry is unchanged: the same object in ``since``
                exists[path] = True
    # read the candidates at both sides, keep those whose bytes differ
    before_view = site.open_snapshot(vserver, volume, since.snapshot_id)
    after_read = _reader(site, vserver, volume, target)
    files: list[str] = []
    reads = read_bytes = 0
    for path in sorted(exists):
        before = before_view.read(path) if existed[path] else None
        after = after_read(path) if exists[path] else None
        reads += (before is not None) + (after is not None)
        read_bytes += len(before or b"") + len(after or b"")
        if before != after:
            files.append(path)
    return Divergence(
        tuple(files),
        tuple(made),
        "diff",
        files_read=reads,
        bytes_read=read_bytes,
        names_walked=walked,
        inode_blocks_read=inode_blocks,
        directories_read=dirs_read,
    )


def _walk(
    site: Site, vserver: str, volume: str, target: SnapshotRecord | None
) -> list[tuple[str, int]]:
    """(path, GOID) of every object of the target's namespace (names only, no data)."""
    if target is None:
        xv = site.cluster.expandable(vserver, volume)
        raw, _ = xv.access.call(NAMESPACE_VOLUME, "walk", {})
        return [(str(path), int(goid)) for path, goid in raw]
    return [(p, g) for p, g in site.open_snapshot(vserver, volume, target.snapshot_id).walk()]


def _reader(
    site: Site, vserver: str, volume: str, target: SnapshotRecord | None
) -> Callable[[str], bytes]:
    """A function reading a file of the target (the live volume, or the snapshot's view)."""
    if target is None:
        xv = site.cluster.expandable(vserver, volume)
        return lambda path: xv.read(path)
    view = site.open_snapshot(vserver, volume, target.snapshot_id)
    return lambda path: view.read(path)


# --------------------------------------------------------------------------------------------
# Without a common snapshot: digests
# --------------------------------------------------------------------------------------------


def digest(data: bytes) -> str:
    """The short content hash the sites compare (BLAKE2b, 8 bytes, hex)."""
    return hashlib.blake2b(data, digest_size=8).hexdigest()


def site_digests(
    site: Site, vserver: str, volume: str, target: SnapshotRecord | None = None
) -> tuple[dict[str, str], set[str]]:
    """(path -> digest of every file, every directory) of ``vserver``/``volume`` at ``site``:
    snapshot ``target``, or the live volume (None)."""
    files, dirs = tree_contents(site, vserver, volume, target)
    return {p: digest(d) for p, d in sorted(files.items())}, dirs


__all__ = [
    "CHANGE_METHODS",
    "ChangeMethod",
    "Divergence",
    "active_files",
    "changed_paths",
    "check_method",
    "digest",
    "directories",
    "divergence",
    "site_digests",
    "snapshot_files",
    "tree_contents",
]
