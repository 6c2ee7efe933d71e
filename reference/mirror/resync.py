"""Resync after failover: the old primary becomes the mirror of the site that took over.

The seed's resync process, run by the mirroring coordinator of the *old primary* once it is
back (it becomes the destination; the site that failed over becomes the source):

1. find the **common snapshot**: the newest expandable-volume snapshot both sites hold with the
   same ID, name and per-volume snapshot UUIDs on every member, valid at both sites. There is
   one common snapshot for the whole expandable volume, never one per member volume (members
   rolled back to different snapshots would break namespace -> OLS -> data references);
2. the **dry run** (:class:`ResyncPlan`): what the old primary would lose - files created,
   modified or deleted there since the common snapshot and its snapshots the other site does
   not hold - and the files the other site changed since the common snapshot; changes on both
   sides are reported as **split brain**. Each site finds its changes with
   :mod:`.divergence`: from its member volumes' copy-on-write metadata, reading only the files
   that may differ (``plan(method="scan")`` reads every file; the plan is the same). Without a
   common snapshot (a baseline) the two sites compare every file by content digest
   (:class:`~.site.DigestsRequest`: hashes cross the link, not bytes): only paths whose
   contents differ are listed (this site's as discarded, the other's as changed there), so
   identical files are neither preserved nor reported as conflicts;
3. **preserve** (the default): the old primary's divergent files are copied into a new
   expandable volume ``<volume>-preserved-<n>`` at the old primary, with a ``/PRESERVED.txt``
   manifest, and a consistent snapshot of it is taken; ``discard=True`` skips this (the
   explicit choice to lose them);
4. **roll back**: the holds of the relationship being reversed are released here (the old
   primary held its common base as that mirror's source), the old primary's snapshots not held
   by the other site are deleted and every member is restored to the common snapshot (or, for
   a new baseline without one, every snapshot is deleted); from here its clients read the
   common snapshot (redirect) and cannot write. A snapshot the roll back would delete that
   someone else holds (a user, another mirror) stops the resync before anything changes
   (:class:`~.site.SnapshotHeldError`; the dry run lists such holds in ``held``);
5. **reverse** the relationships: the old primary's relationship table now names the other
   site as source; the other site forgets its broken mirror and releases that mirror's holds
   there (:class:`~.site.ReleaseMirrorRequest`);
6. **resize**, **transfer** a fresh consistent snapshot of the new source, **copy the
   configuration** and **notify** the N-module: the update of :mod:`.coordinator`, which
   places the new relationship's holds.

A missing common snapshot raises :class:`NoCommonSnapshotError`, which says that
``baseline=True`` re-sends everything (after preserving the old primary's files).
``force_baseline=True`` re-sends everything even when a common snapshot exists (for a common
snapshot one no longer trusts): the divergent files since the common snapshot are preserved as
usual (unless ``discard=True``), every snapshot of the old primary is replaced, and the transfer
is the coordinator's in-place baseline, so the old primary keeps serving the common snapshot
until the new baseline commits.

Uses: :mod:`.coordinator`, :mod:`.site`, :mod:`.divergence`, :mod:`.relationships`, the
snapshots layer, errors.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from xvol.errors import AlreadyExistsError, IntegrityError, StateError
from xvol.reference.cluster.cluster import RDBGoids
from xvol.reference.cluster.rdb import counter_value
from xvol.reference.mirror.coordinator import MirroringCoordinator, UpdateResult
from xvol.reference.mirror.divergence import (
    ChangeMethod,
    active_files,
    check_method,
    divergence,
    site_digests,
)
from xvol.reference.mirror.link import Process
from xvol.reference.mirror.relationships import (
    MirrorConfig,
    MirrorGroup,
    MirrorState,
    mirror_holder,
)
from xvol.reference.mirror.site import (
    ChangesReply,
    ChangesRequest,
    DigestsReply,
    DigestsRequest,
    MirrorRoleReply,
    MirrorRoleRequest,
    ReleaseMirrorRequest,
    Site,
    SnapshotHold,
    SnapshotListReply,
    refuse_held,
)
from xvol.reference.repository.expandable import ExpandableVolume
from xvol.reference.snapshots.snapshot_table import SnapshotRecord
from xvol.reference.snapshots.volume_snapshots import VolumeSnapshots

PRESERVED_MANIFEST = "/PRESERVED.txt"


class NoCommonSnapshotError(StateError):
    """The two sites hold no common valid snapshot: resync with ``baseline=True`` to re-send
    everything (the old primary's files are preserved first unless ``discard=True``)."""


@dataclass(frozen=True)
class ResyncPlan:
    """What a resync will do (the dry run): the common snapshot (None: there is none), the old
    primary's files that would be discarded and its snapshots that would be deleted, the
    new source's changed files, the members the old primary must create and those it must
    remove (created after the common snapshot, so empty in it), whether the transfer is a
    baseline, the holds the roll back releases and those that stop it."""

    common: SnapshotRecord | None
    discarded_paths: tuple[str, ...]
    discarded_snapshots: tuple[str, ...]
    source_changes: tuple[str, ...]
    resize: tuple[str, ...]
    remove: tuple[str, ...] = ()
    """Members this site created after the common snapshot (empty there): removed."""
    baseline: bool = False
    """Every block is sent again (no common snapshot, or a forced baseline)."""
    released: tuple[SnapshotHold, ...] = ()
    """Holds here of the relationship being reversed (this site was its source): released."""
    held: tuple[SnapshotHold, ...] = ()
    """Holds of others on snapshots the roll back would delete: the resync refuses."""

    @property
    def split_brain(self) -> bool:
        """Writes on both sides since the common snapshot."""
        return bool(self.discarded_paths) and bool(self.source_changes)

    @property
    def conflicting_paths(self) -> tuple[str, ...]:
        """Paths changed on both sides."""
        return tuple(sorted(set(self.discarded_paths) & set(self.source_changes)))


@dataclass(frozen=True)
class ResyncResult:
    """A finished resync: its plan, the preserved volume (None: nothing preserved) and the
    transfer that made the old primary a mirror of the new source."""

    plan: ResyncPlan
    preserved: str | None
    update: UpdateResult


def _same(a: SnapshotRecord, b: SnapshotRecord) -> bool:
    """Whether two rows describe the same expandable-volume snapshot."""
    return (
        a.snapshot_id == b.snapshot_id
        and a.name == b.name
        and {v.member: v.uuid for v in a.volumes} == {v.member: v.uuid for v in b.volumes}
    )


def common_snapshot(
    mine: list[SnapshotRecord], theirs: list[SnapshotRecord]
) -> SnapshotRecord | None:
    """The newest of ``mine`` that ``theirs`` also holds (both lists: valid rows only)."""
    found = [m for m in mine if any(_same(m, t) for t in theirs)]
    return max(found, key=lambda r: r.snapshot_id) if found else None


class Resync:
    """The resync of ``vserver``/``volume`` at ``site`` (the old primary) from the site at the
    other end of ``coordinator.link``, where the volume is ``source_vserver``/``source_volume``
    (default: the same names)."""

    def __init__(
        self,
        coordinator: MirroringCoordinator,
        vserver: str,
        volume: str,
        *,
        source_vserver: str | None = None,
        source_volume: str | None = None,
    ) -> None:
        self.coordinator = coordinator
        self.site: Site = coordinator.site
        self.vserver = vserver
        self.volume = volume
        self.source_vserver = source_vserver or vserver
        self.source_volume = source_volume or volume

    def _proxy(self) -> object:
        return self.coordinator.link.channel("proxy")

    # -- the dry run ---------------------------------------------------------------------------

    def plan(
        self, *, baseline: bool = False, force_baseline: bool = False, method: ChangeMethod = "diff"
    ) -> Process[ResyncPlan]:
        """The dry run: nothing changes at either site. :class:`NoCommonSnapshotError`
        without a common snapshot unless ``baseline``; ``force_baseline`` plans a baseline even
        when a common snapshot exists. ``method`` finds the changes since the common snapshot
        at both sites (:mod:`.divergence`: ``"diff"`` reads only the files that may differ,
        ``"scan"`` every file; the plan is the same)."""
        check_method(method)
        site, vs, vol = self.site, self.vserver, self.volume
        channel = self.coordinator.link.channel("proxy")
        role = yield from channel.request(
            MirrorRoleRequest(self.source_vserver, self.source_volume)
        )
        if not isinstance(role, MirrorRoleReply):
            raise IntegrityError(f"expected MirrorRoleReply, got {type(role).__name__}")
        if role.state == MirrorState.MIRRORED.value:
            raise StateError(
                f"{self.source_vserver}/{self.source_volume} at the other site is still a "
                "read-only mirror: fail it over before resyncing from it"
            )
        tables = self.coordinator.tables
        if tables.has_group(vs, vol) and tables.group(vs, vol).state is MirrorState.MIRRORED:
            raise StateError(f"{vs}/{vol} here is already a mirror destination")
        listing = yield from self.coordinator._list(self.source_vserver, self.source_volume)
        mine_members = {m.name for m in site.members(vs, vol)}
        theirs_members = {m.name for m in listing.record.members}
        extra = sorted(mine_members - theirs_members)
        rows = yield from self.coordinator._snapshots(self.source_vserver, self.source_volume)
        assert isinstance(rows, SnapshotListReply)
        theirs = [r for r in rows.records if r.snapshot_id in rows.valid]
        mine_all = site.snapshots(vs, vol)
        common = common_snapshot(site.intact_snapshots(vs, vol), theirs)
        if common is None and not (baseline or force_baseline):
            raise NoCommonSnapshotError(
                f"{vs}/{vol} here and {self.source_vserver}/{self.source_volume} there hold no "
                "common valid snapshot; resync with baseline=True to send everything again "
                "(this site's files are preserved first unless discard=True)"
            )
        if extra and (
            common is None or any(m in {v.member for v in common.volumes} for m in extra)
        ):
            raise StateError(
                f"{vs}/{vol} here has members the other site lacks ({', '.join(extra)}) and "
                "they are not new since the common snapshot; drain and remove them first"
            )
        if common is not None:
            # each site's changes since the common snapshot
            here = divergence(site, vs, vol, common, method=method)
            changed, made = list(here.files), set(here.made_dirs)
            reply = yield from channel.request(
                ChangesRequest(
                    self.source_vserver, self.source_volume, common.snapshot_id, None, method
                )
            )
            if not isinstance(reply, ChangesReply):
                raise IntegrityError(f"expected ChangesReply, got {type(reply).__name__}")
            source_changes = reply.paths
        else:
            # no common base: compare contents by digests; only paths that differ are listed
            reply = yield from channel.request(
                DigestsRequest(self.source_vserver, self.source_volume)
            )
            if not isinstance(reply, DigestsReply):
                raise IntegrityError(f"expected DigestsReply, got {type(reply).__name__}")
            mine, my_dirs = site_digests(site, vs, vol)
            other = dict(reply.files)
            changed = sorted(p for p, d in mine.items() if other.get(p) != d)
            source_changes = tuple(sorted(p for p, d in other.items() if mine.get(p) != d))
            made = my_dirs - set(reply.directories)
        # directories clients created here since the common snapshot (or that the other site
        # lacks) that no discarded file lies in (those are recreated around the kept files):
        # listed as "<path>/"
        discarded = sorted(
            [
                *changed,
                *(f"{d}/" for d in made if not any(p.startswith(f"{d}/") for p in changed)),
            ]
        )
        whole = force_baseline or common is None
        dropped = [r.name for r in mine_all if whole or not any(_same(r, t) for t in theirs)]
        # the relationship being reversed had this site as its source: its holds here go
        reversed_holder = mirror_holder(
            site.name, vs, vol, listing.cluster, self.source_vserver, self.source_volume
        )
        holds = site.holds(vs, vol)
        released = tuple(h for h in holds if h.holder == reversed_holder)
        held = tuple(h for h in holds if h.holder != reversed_holder and h.name in dropped)
        resize = sorted(theirs_members - mine_members)
        return ResyncPlan(
            common,
            tuple(discarded),
            tuple(dropped),
            tuple(source_changes),
            tuple(resize),
            tuple(extra),
            baseline=whole,
            released=released,
            held=held,
        )

    # -- the resync ------------------------------------------------------------------------------

    def run(
        self,
        *,
        discard: bool = False,
        baseline: bool = False,
        force_baseline: bool = False,
        config: MirrorConfig | None = None,
    ) -> Process[ResyncResult]:
        """Plan, preserve (unless ``discard``), roll back, reverse, transfer, notify (see the
        module text for ``baseline`` and ``force_baseline``)."""
        plan = yield from self.plan(baseline=baseline, force_baseline=force_baseline)
        site, vs, vol = self.site, self.vserver, self.volume
        if plan.held:  # before anything changes
            rows = {r.name: r for r in site.snapshots(vs, vol)}
            refuse_held(site.name, list(plan.held), rows[plan.held[0].name])
        preserved = None
        if plan.discarded_paths and not discard:
            preserved = self._preserve(plan)
        self._roll_back(plan)
        tables = self.coordinator.tables
        if tables.has_group(vs, vol):
            tables.remove_group(vs, vol)
        listing = yield from self.coordinator._list(self.source_vserver, self.source_volume)
        group = MirrorGroup(
            vs,
            vol,
            listing.cluster,
            self.source_vserver,
            self.source_volume,
            exported=None if plan.common is None else plan.common.snapshot_id,
            config=config or MirrorConfig(),
        )
        tables.save_group(group)
        site.redirects[(vs, vol)] = group.exported
        channel = self.coordinator.link.channel("proxy")
        yield from channel.request(ReleaseMirrorRequest(self.source_vserver, self.source_volume))
        update = yield from self.coordinator._update(
            group, None, resize=True, baseline=plan.baseline
        )
        xv = site.cluster.expandable(vs, vol)
        xv.goids = RDBGoids(site.cluster, xv.repository)
        return ResyncResult(plan, preserved, update)

    def _preserve(self, plan: ResyncPlan) -> str:
        """Copy this site's divergent files into a new expandable volume and snapshot it;
        returns its name."""
        site, vs, vol = self.site, self.vserver, self.volume
        record = site.record(vs, vol)
        number = counter_value(site.cluster.replica(), f"preserved/{vs}/{vol}")
        site.raise_counter(f"preserved/{vs}/{vol}", number + 1)
        name = f"{vol}-preserved-{number}"
        while site.has_volume(vs, name):
            number += 1
            name = f"{vol}-preserved-{number}"
        site.cluster.mhost().create_expandable_volume(
            vs, name, data_constituents=1, volume_blocks=record.volume_blocks
        )
        now = active_files(site.cluster, vs, vol)
        target = site.cluster.expandable(vs, name)
        lines = []
        for path in plan.discarded_paths:
            if path.endswith("/"):
                _make_directories(target, path)
                lines.append(f"kept directory {path}")
            elif path in now:
                _make_parents(target, path)
                target.create(path, now[path])
                lines.append(f"kept {path}")
            else:
                lines.append(f"deleted {path}")
        common = "none" if plan.common is None else plan.common.name
        header = f"divergent files of {vs}/{vol} at {site.name} since snapshot {common}\n"
        target.create(PRESERVED_MANIFEST, (header + "\n".join(lines) + "\n").encode())
        site.snapshot(vs, name, "preserved")
        return name

    def _roll_back(self, plan: ResyncPlan) -> None:
        """Release the reversed relationship's holds here, delete this site's snapshots the
        other site lacks and restore the common one (or drop every snapshot, for a baseline
        without one; a forced baseline keeps the common snapshot until the new baseline
        replaces it), and every other per-volume snapshot except those of snapshots still held
        (a user's hold on an older snapshot both sites share survives whole); clients are
        redirected from here on."""
        site, vs, vol = self.site, self.vserver, self.volume
        site.redirects[(vs, vol)] = None if plan.common is None else plan.common.snapshot_id
        for holder in sorted({h.holder for h in plan.released}):
            site.release(vs, vol, holder)
        for name in plan.discarded_snapshots:
            if plan.common is None or name != plan.common.name:
                site.jobs.delete(vs, vol, name)
        keep = set() if plan.common is None else {v.uuid for v in plan.common.volumes}
        # a snapshot someone still holds keeps its copies (one the roll back would delete
        # stopped the resync before anything changed: ``plan.held``)
        keep |= {u for h in site.holds(vs, vol) for _volume_id, u in h.members}
        calls = VolumeSnapshots(site.cluster, site.cluster.any_up_node(), vs, vol)
        for member in site.members(vs, vol):
            for snap in calls.list(member.volume_id):
                if snap["uuid"] not in keep:
                    calls.delete(member.volume_id, int(snap["sid"]), str(snap["uuid"]))
        if plan.common is not None:
            self.coordinator.restore_exported(vs, vol, plan.common)


def _make_directories(xv: ExpandableVolume, path: str) -> None:
    """Create directory ``path`` and every directory above it in expandable volume ``xv``."""
    parts = [p for p in path.split("/") if p]
    for i in range(1, len(parts) + 1):
        with contextlib.suppress(AlreadyExistsError):
            xv.mkdir("/" + "/".join(parts[:i]))


def _make_parents(xv: ExpandableVolume, path: str) -> None:
    """Create the directories above ``path`` in expandable volume ``xv``."""
    _make_directories(xv, path.rsplit("/", 1)[0])


__all__ = [
    "PRESERVED_MANIFEST",
    "NoCommonSnapshotError",
    "Resync",
    "ResyncPlan",
    "ResyncResult",
    "common_snapshot",
]
