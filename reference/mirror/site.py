"""Sites of a disaster-recovery pair and the source proxy that answers for the primary site.

In the seed the expandable volume of a *primary location* is mirrored to a *remote location*:
two clustered storage systems, each with its own M-host, RDB and N-modules. The mirroring
coordinator at the remote M-host never touches the primary's storage; it talks to a *source
proxy* that "formats information that is transmitted to and received from the primary location".

Structures, bottom up:

* :class:`Site`: one cluster (:class:`~xvol.reference.cluster.cluster.Cluster`) with a name (the
  cluster identifier of the relationship table's fields A and E), its snapshot job manager, and
  its N-module's *redirect* entries. Invariant: a site whose expandable volume is a mirror
  destination has a redirect entry for it; while it has one, client reads of the active file
  system are served from that snapshot (the seed's "active file system redirected to a
  snapshot" in the N-module cache) and client writes are refused (:class:`ReadOnlyMirrorError`).
  Life cycle: :func:`build_site` -> clients read and write -> the coordinator sets and clears
  redirects.
* snapshot **holds** (:class:`SnapshotHold`, in the site's RDB): a tag that pins one snapshot
  (as ``zfs hold`` does, or a snapshot a product marks busy because its mirror owns it). A
  mirror relationship holds its common base at both sites; users may hold snapshots too
  (:meth:`Site.hold`). The holds and their enforcement belong to the snapshots layer
  (:mod:`~xvol.reference.snapshots.snapshot_holds`; :class:`SnapshotHeldError` and
  :class:`SnapshotHold` are re-exported here): every snapshot job manager of the cluster (the
  site's ``site.jobs``, the web service's, any other) and the D-modules' per-volume snapshot
  service refuse to delete a held snapshot or a member copy of one, naming the snapshot and its
  holders, and change nothing; so do :meth:`Site.delete_snapshot` and the proxy's pruning.
  :meth:`Site.holds` lists them; :meth:`Site.release` takes one away.
* the proxy's messages (:class:`VolumeListRequest`, :class:`SnapshotListRequest`,
  :class:`TakeSnapshotRequest`, :class:`ChangesRequest`): the seed's blocks "obtain a list of
  volumes for the source", "retrieve source volume information" (fields E-H), "configuration
  information regarding the snapshot", plus taking the consistent snapshot an update sends and
  the paths changed since a snapshot (for the resync's split-brain report, found by
  :mod:`.divergence`) and, without a common snapshot, a digest of every file
  (:class:`DigestsRequest`);
  :class:`HoldSnapshotsRequest` moves a relationship's holds at the source, and
  :class:`PruneSnapshotsRequest` deletes the mirror's older snapshots there.
* :class:`SourceProxy`: the primary site's :class:`~xvol.reference.mirror.link.Endpoint`. It
  answers the messages above from its site and hands every block replication request to a
  :class:`~xvol.reference.mirror.replication.ReplicationSource` whose volumes are the site's
  member volumes by volume ID (refreshed on each request, so constituents added at the source
  are served at once).
* :class:`SitePair`: two sites on one SimPy environment, joined by one
  :class:`~xvol.reference.mirror.link.SimulatedLink` per direction (each ends at the other
  site's proxy). :meth:`SitePair.disaster` cuts both; :meth:`SitePair.reconnect` restores them.
  :meth:`SitePair.run` drives a coordinator process to its end in simulated time.

Uses: simpy, the cluster, the snapshots layer (job manager, table, access layer), the link and
replication modules of this package, errors and vocabulary.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

import simpy

from xvol.errors import (
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    StateError,
    UnavailableError,
)
from xvol.reference.cluster.cluster import Cluster
from xvol.reference.cluster.rdb import (
    COUNTERS,
    ExpandableRecord,
    MemberRecord,
    counter_value,
    read_expandable,
)
from xvol.reference.mirror.divergence import (
    ChangeMethod,
    active_files,
    changed_paths,
    check_method,
    digest,
    divergence,
    site_digests,
    snapshot_files,
)
from xvol.reference.mirror.link import Cut, Link, Message, SimulatedLink
from xvol.reference.mirror.relationships import MirrorState, MirrorTables
from xvol.reference.mirror.replication import ReplicationSource
from xvol.reference.repository.files import VolumeFiles
from xvol.reference.snapshots.snapshot_access import SnapshotAccessLayer, SnapshotView
from xvol.reference.snapshots.snapshot_coordinator import SnapshotJobManager
from xvol.reference.snapshots.snapshot_holds import (
    HOLDS_TABLE,
    SnapshotHeldError,
    SnapshotHold,
    check_holder,
    holds_in,
)
from xvol.reference.snapshots.snapshot_holds import refuse_held as _refuse_held
from xvol.reference.snapshots.snapshot_table import SnapshotRecord
from xvol.reference.volume.volume import Volume

T = TypeVar("T")


class ReadOnlyMirrorError(PermissionDeniedError):
    """A client wrote to an expandable volume that is a mirror destination (break it first)."""


# --------------------------------------------------------------------------------------------
# Snapshot holds (kept by the snapshots layer, :mod:`~xvol.reference.snapshots.snapshot_holds`)
# --------------------------------------------------------------------------------------------


def read_holds(cluster: Cluster, vserver: str, volume: str) -> list[SnapshotHold]:
    """Every hold on ``vserver``/``volume``'s snapshots in ``cluster``'s RDB, by snapshot ID
    then holder."""
    return holds_in(cluster.replica(), vserver, volume)


def refuse_held(site: str, holds: list[SnapshotHold], record: SnapshotRecord) -> None:
    """:class:`SnapshotHeldError` if ``holds`` hold ``record`` (at site ``site``)."""
    _refuse_held(holds, record, f"site {site}")


class HoldingJobManager(SnapshotJobManager):
    """The snapshot job manager of a site: the snapshots layer's (which refuses to delete a held
    snapshot with :class:`SnapshotHeldError`, changing nothing), naming the site in its
    errors."""

    def __init__(self, cluster: Cluster, site: str) -> None:
        super().__init__(cluster, where=f"site {site}")
        self.site = site


# --------------------------------------------------------------------------------------------
# A site
# --------------------------------------------------------------------------------------------


@dataclass
class Site:
    """One location: a cluster, its name, its snapshot job manager and its redirects."""

    name: str
    cluster: Cluster
    jobs: SnapshotJobManager = field(init=False)
    redirects: dict[tuple[str, str], int | None] = field(default_factory=dict)
    """(vserver, volume) -> snapshot ID the active file system is redirected to (None: a
    mirror destination that has received no snapshot yet)."""

    def __post_init__(self) -> None:
        self.jobs = HoldingJobManager(self.cluster, self.name)

    # -- the volume table --------------------------------------------------------------------

    def record(self, vserver: str, volume: str) -> ExpandableRecord:
        """The volume table row of ``vserver``/``volume`` (:class:`NotFoundError` if none)."""
        return read_expandable(self.cluster.replica(), vserver, volume)

    def has_volume(self, vserver: str, volume: str) -> bool:
        """Whether the site has that expandable volume."""
        try:
            self.record(vserver, volume)
        except NotFoundError:
            return False
        return True

    def members(self, vserver: str, volume: str) -> list[MemberRecord]:
        """The member volumes (namespace, OLS, data constituents) of an expandable volume."""
        return list(self.record(vserver, volume).members)

    def volume(self, vserver: str, volume: str, member: str) -> Volume:
        """The write-anywhere volume under member ``member``."""
        files = self.cluster.mounted(vserver, volume, member).files
        if not isinstance(files, VolumeFiles):
            raise StateError(f"member {member} of {vserver}/{volume} is not a block volume")
        return files.volume

    def volumes_by_id(self) -> dict[str, Volume]:
        """Every member volume of every expandable volume of the site, by volume ID."""
        out: dict[str, Volume] = {}
        for vserver, volume, member in self.cluster.volume_table():
            try:
                out[member.volume_id] = self.volume(vserver, volume, member.name)
            except (KeyError, NotFoundError, UnavailableError):
                continue
        return out

    # -- snapshots -----------------------------------------------------------------------------

    def snapshot(self, vserver: str, volume: str, name: str) -> SnapshotRecord:
        """Take a consistent snapshot of the expandable volume (fences, per-volume snapshots)."""
        return self.jobs.create(vserver, volume, name)

    def snapshots(self, vserver: str, volume: str) -> list[SnapshotRecord]:
        """Rows of the snapshot table, by snapshot ID."""
        return self.jobs.snapshots(vserver, volume)

    def delete_snapshot(self, vserver: str, volume: str, ref: str | int) -> SnapshotRecord:
        """Delete snapshot ``ref`` (name or ID); :class:`SnapshotHeldError` if it is held."""
        return self.jobs.delete(vserver, volume, ref)

    # -- holds -----------------------------------------------------------------------------------

    def holds(self, vserver: str, volume: str, ref: str | int | None = None) -> list[SnapshotHold]:
        """The holds on ``vserver``/``volume``'s snapshots (on snapshot ``ref`` only, given),
        by snapshot ID then holder."""
        return self.jobs.holds(vserver, volume, ref)

    def hold(self, vserver: str, volume: str, ref: str | int, holder: str) -> SnapshotHold:
        """Let ``holder`` hold snapshot ``ref`` (idempotent); :class:`NotFoundError` if there
        is no such snapshot."""
        return self.jobs.hold(vserver, volume, ref, holder)

    def release(
        self, vserver: str, volume: str, holder: str, ref: str | int | None = None
    ) -> tuple[SnapshotHold, ...]:
        """Take ``holder``'s hold off snapshot ``ref`` (:class:`NotFoundError` if it holds
        none there), or every hold of ``holder`` on the volume (``ref`` None; none is fine).
        Returns the holds released."""
        return self.jobs.release(vserver, volume, holder, ref)

    def set_holds(
        self, vserver: str, volume: str, holder: str, snapshot_ids: tuple[int, ...]
    ) -> tuple[tuple[SnapshotHold, ...], tuple[int, ...]]:
        """Make ``holder``'s holds on ``vserver``/``volume`` exactly the intact snapshots among
        ``snapshot_ids`` (one RDB commit; empty: release them all). Returns the holds released
        and the IDs not held because no intact snapshot has them."""
        check_holder(holder)
        intact = {r.snapshot_id: r for r in self.intact_snapshots(vserver, volume)}
        wanted = [
            SnapshotHold.of(intact[sid], holder)
            for sid in sorted(set(snapshot_ids))
            if sid in intact
        ]
        missing = tuple(sorted({sid for sid in snapshot_ids if sid not in intact}))
        mine = [h for h in read_holds(self.cluster, vserver, volume) if h.holder == holder]
        released = tuple(h for h in mine if h not in wanted)
        changes: list[tuple[str, str, Any]] = [(HOLDS_TABLE, h.key, None) for h in released]
        changes += [(HOLDS_TABLE, h.key, h.to_json()) for h in wanted if h not in mine]
        if changes:
            self.cluster.rdb.commit(self.cluster.any_up_node(), changes)
        return released, missing

    def intact_snapshots(self, vserver: str, volume: str) -> list[SnapshotRecord]:
        """Rows whose every recorded member still holds its per-volume snapshot (a snapshot
        taken before a constituent was added is *partial* in the snapshot table, yet intact:
        it can still be a mirror's common base)."""
        out = []
        for row in self.snapshots(vserver, volume):
            recorded = {v.member for v in row.volumes}
            if not recorded & set(self.jobs.table.missing(row)):
                out.append(row)
        return out

    # -- clients through the N-module ------------------------------------------------------------

    def write(self, vserver: str, volume: str, path: str, data: bytes) -> None:
        """Create or replace the file at ``path``; refused while the volume is a mirror."""
        if (vserver, volume) in self.redirects:
            raise ReadOnlyMirrorError(
                f"{vserver}/{volume} at site {self.name} is a read-only mirror destination; "
                "break the mirror (failover) before writing"
            )
        xv = self.cluster.expandable(vserver, volume)
        if self._exists(vserver, volume, path):
            xv.replace(path, data)
        else:
            xv.create(path, data)

    def delete(self, vserver: str, volume: str, path: str) -> None:
        """Delete the file at ``path``; refused while the volume is a mirror."""
        if (vserver, volume) in self.redirects:
            raise ReadOnlyMirrorError(f"{vserver}/{volume} at site {self.name} is read-only")
        self.cluster.expandable(vserver, volume).delete(path)

    def _exists(self, vserver: str, volume: str, path: str) -> bool:
        try:
            self.cluster.expandable(vserver, volume).stat(path)
        except NotFoundError:
            return False
        return True

    def read(self, vserver: str, volume: str, path: str) -> bytes:
        """Read ``path`` as a client sees it: from the redirect snapshot when there is one
        (the N-module replaces the active file system ID by the snapshot's), else live."""
        if (vserver, volume) not in self.redirects:
            return self.cluster.expandable(vserver, volume).read(path)
        return self.open_snapshot(vserver, volume, self._redirect(vserver, volume)).read(path)

    def _redirect(self, vserver: str, volume: str) -> int:
        sid = self.redirects[(vserver, volume)]
        if sid is None:
            raise StateError(
                f"{vserver}/{volume} at site {self.name} is a mirror that has no complete "
                "snapshot yet: nothing to read"
            )
        return sid

    def open_snapshot(self, vserver: str, volume: str, ref: str | int) -> SnapshotView:
        """A read-only view of snapshot ``ref`` (name or ID) through the snapshot access layer."""
        node = self.cluster.any_up_node()
        layer = SnapshotAccessLayer(self.cluster, node, self.jobs.cache(node))
        return layer.open(vserver, volume, ref)

    def files(self, vserver: str, volume: str) -> dict[str, bytes]:
        """Every file a client sees now, path -> bytes (redirect honoured)."""
        if (vserver, volume) in self.redirects:
            return snapshot_files(
                self.open_snapshot(vserver, volume, self._redirect(vserver, volume))
            )
        return active_files(self.cluster, vserver, volume)

    # -- counters a mirror copies --------------------------------------------------------------

    def goid_counter(self, repository: int) -> int:
        """The next unreserved GOID serial of ``repository``."""
        return counter_value(self.cluster.replica(), f"goid/{repository}")

    def raise_counter(self, key: str, value: int) -> None:
        """Move RDB counter ``key`` up to at least ``value`` (never down)."""
        self.raise_counters({key: value})

    def raise_counters(self, wanted: dict[str, int]) -> None:
        """Move every RDB counter ``key`` of ``wanted`` up to at least its value (never down),
        in one commit; no commit when none needs raising."""
        replica = self.cluster.replica()
        changes = [(COUNTERS, k, v) for k, v in wanted.items() if counter_value(replica, k) < v]
        if changes:
            self.cluster.rdb.commit(self.cluster.any_up_node(), changes)


def files_digest(files: dict[str, bytes]) -> dict[str, str]:
    """Path -> short content hash (what the dry run and split-brain reports compare)."""
    return {p: digest(d) for p, d in sorted(files.items())}


def build_site(
    name: str,
    *,
    seed: int = 0,
    nodes: int = 2,
    vserver: str = "vs1",
    volume: str | None = "xv",
    data_constituents: int = 2,
    volume_blocks: int = 1024,
) -> Site:
    """A site: a cluster of ``nodes`` nodes with vserver ``vserver`` and, unless ``volume`` is
    None, an expandable volume of ``data_constituents`` data constituents."""
    cluster = Cluster(nodes, seed=seed)
    mhost = cluster.mhost()
    mhost.create_vserver(vserver)
    if volume is not None:
        mhost.create_expandable_volume(
            vserver, volume, data_constituents=data_constituents, volume_blocks=volume_blocks
        )
    return Site(name, cluster)


# --------------------------------------------------------------------------------------------
# The source proxy's messages
# --------------------------------------------------------------------------------------------


def _json_size(value: Any) -> int:
    return len(json.dumps(value, sort_keys=True, default=str).encode())


@dataclass(frozen=True)
class VolumeListRequest(Message):
    """Destination -> source: the volume table row of ``vserver``/``volume`` (blocks: list the
    source volumes; retrieve source volume information)."""

    vserver: str
    volume: str


@dataclass(frozen=True)
class VolumeListReply(Message):
    """Source -> destination: the cluster's name, the volume table row and the RDB counters a
    destination must not fall behind (GOID serials, snapshot IDs)."""

    cluster: str
    record: ExpandableRecord
    goid_counter: int
    snapshot_counter: int

    def payload_size(self) -> int:
        """The row as JSON."""
        return _json_size(self.record.to_json())


@dataclass(frozen=True)
class SnapshotListRequest(Message):
    """Destination -> source: the snapshot table rows of ``vserver``/``volume``."""

    vserver: str
    volume: str


@dataclass(frozen=True)
class SnapshotListReply(Message):
    """Source -> destination: the rows (the configuration of every snapshot), which of them
    are intact now (``valid``: every recorded member's copy present) and the holds on them."""

    records: tuple[SnapshotRecord, ...]
    valid: frozenset[int]
    holds: tuple[SnapshotHold, ...] = ()

    def payload_size(self) -> int:
        """The rows and holds as JSON."""
        return _json_size([r.to_json() for r in self.records]) + _json_size(
            [h.to_json() for h in self.holds]
        )


@dataclass(frozen=True)
class TakeSnapshotRequest(Message):
    """Destination -> source: take consistent snapshot ``name`` (idempotent: an existing
    snapshot of that name is answered as is)."""

    vserver: str
    volume: str
    name: str


@dataclass(frozen=True)
class SnapshotReply(Message):
    """Source -> destination: one snapshot table row."""

    record: SnapshotRecord

    def payload_size(self) -> int:
        """The row as JSON."""
        return _json_size(self.record.to_json())


@dataclass(frozen=True)
class ChangesRequest(Message):
    """Destination -> source: files of snapshot ``target`` (ID; None: the active file system)
    that differ from snapshot ``since`` (ID; None: every file), found by ``method``
    (:mod:`.divergence`: ``"diff"`` reads only what may differ, ``"scan"`` every file)."""

    vserver: str
    volume: str
    since: int | None
    target: int | None
    method: ChangeMethod = "diff"


@dataclass(frozen=True)
class ChangesReply(Message):
    """Source -> destination: changed paths (created, modified or deleted), sorted, and how
    many file contents the source read to find them."""

    paths: tuple[str, ...]
    files_read: int = 0

    def payload_size(self) -> int:
        """The paths."""
        return sum(len(p.encode()) + 2 for p in self.paths) + 8


@dataclass(frozen=True)
class DigestsRequest(Message):
    """Destination -> source: a content digest of every file, and every directory, of snapshot
    ``target`` (ID; None: the active file system): two sites without a common snapshot compare
    contents by hashes, not bytes."""

    vserver: str
    volume: str
    target: int | None = None


@dataclass(frozen=True)
class DigestsReply(Message):
    """Source -> destination: (path, digest) of every file, sorted, and every directory."""

    files: tuple[tuple[str, str], ...]
    directories: tuple[str, ...]

    def payload_size(self) -> int:
        """The paths and 8-byte digests."""
        return sum(len(p.encode()) + 2 + 8 for p, _d in self.files) + sum(
            len(d.encode()) + 2 for d in self.directories
        )


@dataclass(frozen=True)
class MirrorRoleRequest(Message):
    """Destination -> source: is ``vserver``/``volume`` at the source itself a mirror
    destination, and in which state (a resync reverses only a broken mirror)."""

    vserver: str
    volume: str


@dataclass(frozen=True)
class MirrorRoleReply(Message):
    """Source -> destination: the mirror state there (None: not a mirror destination)."""

    state: str | None


@dataclass(frozen=True)
class ReleaseMirrorRequest(Message):
    """Destination -> source: forget the (broken) mirror of ``vserver``/``volume`` there: its
    relationships are reversed and now kept at the new destination, and its snapshot holds
    there are released. Idempotent."""

    vserver: str
    volume: str


@dataclass(frozen=True)
class Released(Message):
    """Source -> destination: the relationships there are gone."""

    relationships: int


@dataclass(frozen=True)
class PruneSnapshotsRequest(Message):
    """Destination -> source: delete the snapshots ``names`` that the mirror took (each named
    ``mirror.<site>.<n>``) and no longer needs. The proxy refuses any other name: a remote
    request never deletes a user's snapshot. Names already gone are ignored."""

    vserver: str
    volume: str
    names: tuple[str, ...]

    def payload_size(self) -> int:
        """The names."""
        return sum(len(n.encode()) + 2 for n in self.names)


@dataclass(frozen=True)
class Pruned(Message):
    """Source -> destination: the snapshots deleted."""

    names: tuple[str, ...]


@dataclass(frozen=True)
class HoldSnapshotsRequest(Message):
    """Destination -> source: make ``holder``'s holds on ``vserver``/``volume`` exactly the
    intact snapshots among ``snapshot_ids`` (empty: release them all). Idempotent."""

    vserver: str
    volume: str
    holder: str
    snapshot_ids: tuple[int, ...]

    def payload_size(self) -> int:
        """The tag and the IDs."""
        return len(self.holder.encode()) + 8 * len(self.snapshot_ids)


@dataclass(frozen=True)
class HoldsReply(Message):
    """Source -> destination: every hold on the volume now (all holders), the holds the
    request released, and the requested IDs it could not hold (no intact snapshot has them)."""

    holds: tuple[SnapshotHold, ...]
    released: tuple[SnapshotHold, ...]
    missing: tuple[int, ...]

    def payload_size(self) -> int:
        """The holds as JSON."""
        return _json_size([h.to_json() for h in (*self.holds, *self.released)])


MIRROR_SNAPSHOT_PREFIX = "mirror."
"""Names of the snapshots a mirroring coordinator takes: ``mirror.<destination site>.<n>``."""


class SourceProxy:
    """The primary site's endpoint (see the module text)."""

    def __init__(self, site: Site, *, clock: Any = None) -> None:
        self.site = site
        self.replication = ReplicationSource({}, clock=clock)
        self.requests = 0

    def handle(self, request: Message) -> Message:
        """Answer one request from a mirroring coordinator."""
        self.requests += 1
        site = self.site
        if isinstance(request, VolumeListRequest):
            record = site.record(request.vserver, request.volume)
            return VolumeListReply(
                site.name,
                record,
                site.goid_counter(record.repository),
                counter_value(
                    site.cluster.replica(), f"snapshot-id/{request.vserver}/{request.volume}"
                ),
            )
        if isinstance(request, SnapshotListRequest):
            rows = site.snapshots(request.vserver, request.volume)
            intact = site.intact_snapshots(request.vserver, request.volume)
            return SnapshotListReply(
                tuple(rows),
                frozenset(r.snapshot_id for r in intact),
                tuple(site.holds(request.vserver, request.volume)),
            )
        if isinstance(request, HoldSnapshotsRequest):
            released, missing = site.set_holds(
                request.vserver, request.volume, request.holder, request.snapshot_ids
            )
            return HoldsReply(tuple(site.holds(request.vserver, request.volume)), released, missing)
        if isinstance(request, TakeSnapshotRequest):
            for row in site.snapshots(request.vserver, request.volume):
                if row.name == request.name:
                    return SnapshotReply(row)
            taken = site.snapshot(request.vserver, request.volume, request.name)
            if self.replication.clock is not None:  # when each member's copy was taken
                now = self.replication.clock()
                for entry in taken.volumes:
                    self.replication.snapshot_times[uuid.UUID(entry.uuid)] = now
            return SnapshotReply(taken)
        if isinstance(request, ChangesRequest):
            vs, vol = request.vserver, request.volume
            target = None if request.target is None else site.jobs.get(vs, vol, request.target)
            if request.since is None:  # every file of the target
                files, _dirs = site_digests(site, vs, vol, target)
                return ChangesReply(tuple(files), len(files))
            since = site.jobs.get(vs, vol, request.since)
            found = divergence(site, vs, vol, since, target, method=check_method(request.method))
            return ChangesReply(found.files, found.files_read)
        if isinstance(request, DigestsRequest):
            vs, vol = request.vserver, request.volume
            target = None if request.target is None else site.jobs.get(vs, vol, request.target)
            files, dirs = site_digests(site, vs, vol, target)
            return DigestsReply(tuple(sorted(files.items())), tuple(sorted(dirs)))
        if isinstance(request, PruneSnapshotsRequest):
            foreign = [n for n in request.names if not n.startswith(MIRROR_SNAPSHOT_PREFIX)]
            if foreign:
                raise InvalidArgumentError(
                    f"refusing to prune snapshots the mirror did not take: {', '.join(foreign)}"
                )
            named = {r.name: r for r in site.snapshots(request.vserver, request.volume)}
            gone = tuple(n for n in request.names if n in named)
            holds = site.holds(request.vserver, request.volume)
            for name in gone:  # all or nothing: refuse before deleting any
                refuse_held(site.name, holds, named[name])
            for name in gone:
                site.jobs.delete(request.vserver, request.volume, name)
            return Pruned(gone)
        if isinstance(request, MirrorRoleRequest):
            tables = MirrorTables(site.cluster)
            if not tables.has_group(request.vserver, request.volume):
                return MirrorRoleReply(None)
            return MirrorRoleReply(tables.group(request.vserver, request.volume).state.value)
        if isinstance(request, ReleaseMirrorRequest):
            tables = MirrorTables(site.cluster)
            if not tables.has_group(request.vserver, request.volume):
                return Released(0)
            if tables.group(request.vserver, request.volume).state is not MirrorState.BROKEN:
                raise StateError(
                    f"{request.vserver}/{request.volume} at {site.name} is still a mirror "
                    "destination: fail it over before reversing"
                )
            group = tables.group(request.vserver, request.volume)
            count = len(tables.relationships(request.vserver, request.volume))
            tables.remove_group(request.vserver, request.volume)
            site.release(request.vserver, request.volume, group.holder(site.name))
            return Released(count)
        self.replication.volumes = site.volumes_by_id()
        return self.replication.handle(request)


# --------------------------------------------------------------------------------------------
# Two sites and their links
# --------------------------------------------------------------------------------------------


class SitePair:
    """Two sites on one SimPy environment with one simulated link per direction.

    ``links[(a, b)]`` is the link site ``a``'s coordinator uses to reach site ``b``'s proxy."""

    def __init__(
        self,
        primary: Site,
        remote: Site,
        *,
        bandwidth: float = 50e6,
        latency: float = 0.005,
        loss: float = 0.0,
        seed: int = 0,
    ) -> None:
        if primary.name == remote.name:
            raise InvalidArgumentError("the two sites need different names")
        self.env = simpy.Environment()
        self.sites = {primary.name: primary, remote.name: remote}
        self.proxies = {
            s.name: SourceProxy(s, clock=lambda: float(self.env.now)) for s in (primary, remote)
        }
        self.links: dict[tuple[str, str], SimulatedLink] = {}
        for i, (a, b) in enumerate(((primary, remote), (remote, primary))):
            self.links[(a.name, b.name)] = SimulatedLink(
                self.env,
                self.proxies[b.name],
                bandwidth,
                latency=latency,
                loss=loss,
                seed=seed * 2 + i,
                rto=0.05,
                max_retries=2,
            )

    def site(self, name: str) -> Site:
        """The site called ``name``."""
        try:
            return self.sites[name]
        except KeyError:
            raise NotFoundError(f"no site {name!r} (sites: {', '.join(self.sites)})") from None

    def link(self, caller: str, target: str) -> Link:
        """The link from site ``caller``'s coordinator to site ``target``'s proxy."""
        try:
            return self.links[(caller, target)]
        except KeyError:
            raise NotFoundError(f"no link from {caller!r} to {target!r}") from None

    def disaster(self, *, after_bytes: int | None = None, at_time: float | None = None) -> None:
        """Cut both links now, or (given) once ``after_bytes`` more bytes crossed the forward
        link or at simulated time ``at_time``."""
        for link in self.links.values():
            if after_bytes is None and at_time is None:
                link.cut_now()
            else:
                more = None if after_bytes is None else link.stats.bytes + after_bytes
                link.cut = Cut(at_time=at_time, after_bytes=more)

    def reconnect(self) -> None:
        """Bring both links back up."""
        for link in self.links.values():
            link.restore()

    def run(self, process: Generator[Any, Any, T]) -> T:
        """Run a coordinator process to its end in simulated time; re-raises its error."""
        proc = self.env.process(process)
        self.env.run(until=proc)
        return cast(T, proc.value)

    @property
    def now(self) -> float:
        """Simulated seconds."""
        return float(self.env.now)


__all__ = [
    "HOLDS_TABLE",
    "MIRROR_SNAPSHOT_PREFIX",
    "ChangesReply",
    "ChangesRequest",
    "DigestsReply",
    "DigestsRequest",
    "HoldSnapshotsRequest",
    "HoldingJobManager",
    "HoldsReply",
    "MirrorRoleReply",
    "MirrorRoleRequest",
    "PruneSnapshotsRequest",
    "Pruned",
    "ReadOnlyMirrorError",
    "ReleaseMirrorRequest",
    "Released",
    "Site",
    "SitePair",
    "SnapshotHeldError",
    "SnapshotHold",
    "SnapshotListReply",
    "SnapshotListRequest",
    "SnapshotReply",
    "SourceProxy",
    "TakeSnapshotRequest",
    "VolumeListReply",
    "VolumeListRequest",
    "active_files",
    "build_site",
    "changed_paths",
    "files_digest",
    "read_holds",
    "refuse_held",
    "snapshot_files",
]
