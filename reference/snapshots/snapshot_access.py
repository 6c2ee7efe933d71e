"""The snapshot access layer: a whole expandable-volume snapshot read through one object.

A user sees an expandable-volume snapshot as a single object and never the per-volume
snapshots under it. The seed's snapshot access layer (on the N-module, answering from its cache
of the snapshot table) turns a client's request into a handle the owning D-module can serve:

1. the request carries a **snapshot ID** (field D of the snapshot table), a **namespace ID**
   (the namespace volume) and an **inode** (the redirector, or stub, file in the namespace's
   snapshot): :class:`SnapshotRequest`;
2. the stub names the object (its GOID and, in ``redirector-handle`` mode, a data constituent
   hint); the OLS *of the same snapshot* gives its data constituent ``DC<k>``;
3. "the active file system identifier as stored in the stub file" (0) is **replaced by the data
   constituent's snapshot identifier** from the snapshot table (field E of ``DC<k>``), giving
   a :class:`DataHandle` (snapshot ID, volume ID, inode number) for the D-module of ``DC<k>``,
   which returns the snapshot's data.

:class:`SnapshotView` is the single object a client holds: reads by path and by global object
ID, directory listings, stat, a referential-integrity check of the whole snapshot, and nothing
else: every write raises :class:`ReadOnlySnapshotError`. A view checks the vserver's users and
the snapshot's allowed clients when it is opened. A per-volume snapshot that is gone (or whose
ID now names a later snapshot: every request carries the UUID) yields
:class:`SnapshotDataMissingError` (a partial snapshot's missing data), never other data.

Uses: the cluster (RDB, CF), the repository's namespace/OLS/constituent formats, the snapshot
table and its N-module cache, the per-volume snapshot service; the vocabulary and errors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from xvol.errors import (
    IntegrityError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
)
from xvol.reference.cluster.cluster import Cluster
from xvol.reference.cluster.rdb import read_expandable, read_vserver
from xvol.reference.repository.constituent import MAX_OBJECT_BYTES, object_path
from xvol.reference.repository.expandable import ReferenceReport
from xvol.reference.repository.namespace import (
    REDIRECTOR,
    REDIRECTOR_BYTES,
    REDIRECTOR_MAGIC,
    Entry,
    LocatorMode,
)
from xvol.reference.repository.ols import Location
from xvol.reference.repository.paths import normalise
from xvol.reference.snapshots.snapshot_table import (
    SnapshotCache,
    SnapshotRecord,
    SnapshotState,
    VolumeSnapshot,
    snapshot_state,
)
from xvol.reference.snapshots.volume_snapshots import (
    ReadOnlySnapshotError,
    SnapshotDataMissingError,
    VolumeSnapshots,
)
from xvol.vocabulary import NAMESPACE_VOLUME, OLS_VOLUME, data_volume_name


@dataclass(frozen=True)
class SnapshotRequest:
    """The seed's initial file handle into a snapshot: snapshot ID (field D), namespace
    volume ID, and the inode of the object's stub (redirector) file in the namespace's
    snapshot."""

    snapshot_id: int
    namespace_id: str
    inode: int


@dataclass(frozen=True)
class DataHandle:
    """What the D-module of a data constituent serves: the constituent's own snapshot ID (in
    place of the active file system's 0), its volume ID and the object file's inode; plus the
    GOID and member name for reports."""

    sid: int
    volume_id: str
    inode: int
    goid: int
    member: str


@dataclass(frozen=True)
class SnapshotStat:
    """A path in a snapshot: a directory, or an object with its GOID and size."""

    path: str
    is_dir: bool
    size: int
    goid: int | None


class SnapshotAccessLayer:
    """The snapshot access layer of ``node``'s N-module, answering from ``cache``."""

    def __init__(self, cluster: Cluster, node: str, cache: SnapshotCache | None = None) -> None:
        self.cluster = cluster
        self.node = node
        self.cache = cache or SnapshotCache(cluster, node)
        self.translations = 0  # requests turned into data handles

    def open(self, vserver: str, volume: str, ref: str | int, user: str = "root") -> SnapshotView:
        """The snapshot ``ref`` (name or ID) of ``vserver``/``volume`` as one read-only object,
        for ``user`` (who must be admitted by the vserver and the snapshot)."""
        replica = self.cluster.node(self.node).rdb
        vs = read_vserver(replica, vserver)
        if user not in vs.users:
            raise PermissionDeniedError(f"user {user!r} may not access vserver {vserver!r}")
        record = self.cache.lookup(vserver, volume, ref)
        if record.allowed_clients is not None and user not in record.allowed_clients:
            raise PermissionDeniedError(f"user {user!r} may not read snapshot {record.name!r}")
        mode = LocatorMode(read_expandable(replica, vserver, volume).locator)
        return SnapshotView(self, record, mode)


class SnapshotView:
    """One expandable-volume snapshot as a client reads it (see the module text)."""

    def __init__(self, layer: SnapshotAccessLayer, record: SnapshotRecord, mode: LocatorMode):
        self.layer = layer
        self.record = record
        self.mode = mode
        self.calls = VolumeSnapshots(layer.cluster, layer.node, record.vserver, record.volume)

    @property
    def name(self) -> str:
        return self.record.name

    @property
    def snapshot_id(self) -> int:
        return self.record.snapshot_id

    def state(self) -> SnapshotState:
        """Valid, partial or invalid, now."""
        return snapshot_state(self.layer.cluster, self.layer.node, self.record)

    # -- reaching the per-volume snapshots ----------------------------------------------------

    def _member(self, name: str) -> VolumeSnapshot:
        return self.record.member(name)

    def _read(self, member: str, method: str, args: dict[str, Any]) -> tuple[Any, bytes]:
        entry = self._member(member)
        return self.calls.read(entry.volume_id, entry.sid, method, args, entry.uuid)

    def _inode(self, member: str, path: str) -> int:
        entry = self._member(member)
        return self.calls.inode(entry.volume_id, entry.sid, path, entry.uuid)

    # -- the seed's translation ---------------------------------------------------------------

    def request_for(self, path: str) -> SnapshotRequest:
        """The initial handle of the object at ``path``: (snapshot ID, namespace ID, inode of
        its stub file in the namespace's snapshot). Needs a namespace with redirector files."""
        path = normalise(path)
        self._read(NAMESPACE_VOLUME, "lookup", {"path": path})  # an object, not a directory
        if self.mode is LocatorMode.ENTRY_GOID:
            raise InvalidArgumentError(
                "this namespace keeps GOIDs in directory entries (no stub files): "
                "name objects by path or by GOID"
            )
        ino = self._inode(NAMESPACE_VOLUME, "/root" + ("" if path == "/" else path))
        return SnapshotRequest(self.snapshot_id, self._member(NAMESPACE_VOLUME).volume_id, ino)

    def resolve(self, request: SnapshotRequest) -> DataHandle:
        """Translate a request into the data constituent's snapshot handle (module text)."""
        if request.snapshot_id != self.snapshot_id:
            raise InvalidArgumentError(
                f"request is for snapshot {request.snapshot_id}, this is {self.snapshot_id}"
            )
        ns = self._member(NAMESPACE_VOLUME)
        if request.namespace_id != ns.volume_id:
            raise InvalidArgumentError(f"namespace {request.namespace_id!r} is not {ns.volume_id}")
        size, stub = self.calls.read_inode(
            ns.volume_id, ns.sid, request.inode, 0, REDIRECTOR_BYTES, ns.uuid
        )
        if size != REDIRECTOR_BYTES or len(stub) != REDIRECTOR_BYTES:
            raise InvalidArgumentError(f"inode {request.inode} is not a stub (redirector) file")
        magic, has_hint, goid, hint, _policy = REDIRECTOR.unpack(stub)
        if magic != REDIRECTOR_MAGIC:
            raise IntegrityError(f"inode {request.inode} holds no valid redirector")
        self.layer.translations += 1
        if has_hint:
            member = data_volume_name(hint)
            try:
                return self._data_handle(goid, member)
            except NotFoundError:
                pass  # the hint is stale in this snapshot: take the slow path
        return self.handle_for_goid(goid)

    def handle_for_goid(self, goid: int) -> DataHandle:
        """The data handle of object ``goid``: the snapshot's OLS names its constituent."""
        raw, _ = self._read(OLS_VOLUME, "lookup", {"goid": goid})
        location = Location.from_json(raw)
        return self._data_handle(goid, data_volume_name(location.location_id))

    def _data_handle(self, goid: int, member: str) -> DataHandle:
        entry = self._member(member)
        ino = self._inode(member, object_path(goid))
        return DataHandle(entry.sid, entry.volume_id, ino, goid, member)

    def read_handle(
        self, handle: DataHandle, offset: int = 0, size: int = MAX_OBJECT_BYTES
    ) -> bytes:
        """Up to ``size`` bytes from ``offset`` of the object a data handle names."""
        entry = self._member(handle.member)
        if (entry.sid, entry.volume_id) != (handle.sid, handle.volume_id):
            raise InvalidArgumentError("the data handle is not of this snapshot")
        _check_range(offset, size)
        _, data = self.calls.read_inode(
            handle.volume_id, handle.sid, handle.inode, offset, size, entry.uuid
        )
        return data

    # -- what a client calls ------------------------------------------------------------------

    def read(self, path: str, offset: int = 0, size: int | None = None) -> bytes:
        """The object at ``path`` as it was in the snapshot (``size`` default: to its end)."""
        size = MAX_OBJECT_BYTES - offset if size is None else size
        if self.mode is LocatorMode.ENTRY_GOID:
            raw, _ = self._read(NAMESPACE_VOLUME, "lookup", {"path": normalise(path)})
            handle = self.handle_for_goid(int(raw["goid"]))
        else:
            handle = self.resolve(self.request_for(path))
        return self.read_handle(handle, offset, size)

    def read_object(self, goid: int, offset: int = 0, size: int | None = None) -> bytes:
        """The object ``goid`` as it was in the snapshot (raw access by global object ID)."""
        if isinstance(goid, bool) or not isinstance(goid, int):
            raise InvalidArgumentError("an object is named by its global object ID")
        size = MAX_OBJECT_BYTES - offset if size is None else size
        return self.read_handle(self.handle_for_goid(goid), offset, size)

    def readdir(self, path: str = "/") -> list[Entry]:
        """The entries of a directory in the snapshot."""
        raw, _ = self._read(NAMESPACE_VOLUME, "readdir", {"path": normalise(path)})
        return [Entry.from_json(e) for e in raw]

    def stat(self, path: str) -> SnapshotStat:
        """A directory, or an object with its GOID and size, in the snapshot."""
        path = normalise(path)
        raw, _ = self._read(NAMESPACE_VOLUME, "stat", {"path": path})
        entry = Entry.from_json(raw)
        if entry.is_dir or entry.goid is None:
            return SnapshotStat(path, True, 0, None)
        handle = self.handle_for_goid(entry.goid)
        size, _ = self.calls.read_inode(
            handle.volume_id, handle.sid, handle.inode, 0, 0, self._member(handle.member).uuid
        )
        return SnapshotStat(path, False, size, entry.goid)

    def walk(self) -> list[tuple[str, int]]:
        """Every object of the snapshot's namespace as (path, GOID), by path."""
        raw, _ = self._read(NAMESPACE_VOLUME, "walk", {})
        return [(str(p), int(g)) for p, g in raw]

    def locations(self) -> dict[int, Location]:
        """The snapshot's OLS: GOID -> location."""
        raw, _ = self._read(OLS_VOLUME, "scan", {})
        return {loc.goid: loc for loc in (Location.from_json(r) for r in raw)}

    def objects_on(self, member: str) -> list[int]:
        """The GOIDs data constituent ``member`` held in the snapshot."""
        raw, _ = self._read(member, "goids", {})
        return [int(g) for g in raw]

    def check_references(self) -> ReferenceReport:
        """Walk namespace -> OLS -> data *within the snapshot* and report every broken or
        missing reference (a data constituent whose per-volume snapshot is gone holds
        nothing)."""
        names = self.walk()
        ols = self.locations()
        stored: dict[int, set[int]] = {}
        for entry in self.record.volumes:
            if entry.member.startswith("DC"):
                try:
                    stored[int(entry.member[2:])] = set(self.objects_on(entry.member))
                except SnapshotDataMissingError:
                    continue
        named: dict[int, int] = {}
        for _, goid in names:
            named[goid] = named.get(goid, 0) + 1
        return ReferenceReport(
            len(names),
            len(ols),
            tuple((p, g) for p, g in names if g not in ols),
            tuple(
                (g, loc.location_id)
                for g, loc in sorted(ols.items())
                if g not in stored.get(loc.location_id, set())
            ),
            tuple(
                (g, k)
                for k, goids in sorted(stored.items())
                for g in sorted(goids)
                if g not in ols or ols[g].location_id != k
            ),
            tuple(g for g in sorted(ols) if g not in named),
            tuple(g for g, n in sorted(named.items()) if n > 1),
        )

    # -- read-only ----------------------------------------------------------------------------

    def _read_only(self, *_: object, **__: object) -> None:
        raise ReadOnlySnapshotError(f"snapshot {self.record.name!r} is read-only")

    write = create = replace = truncate = unlink = mkdir = rmdir = rename = migrate = _read_only


def integrity_violations(report: ReferenceReport) -> list[str]:
    """The referential-integrity breaks of a snapshot: names whose GOID has no OLS record, and
    OLS records whose data constituent (in the snapshot) lacks the object. Orphans and unnamed
    objects (in-flight creates, garbage of deletes) are not breaks."""
    found = [f"dangling name {p} -> {g:016x}" for p, g in report.dangling_names]
    found += [f"dangling location {g:016x} -> DC{k}" for g, k in report.dangling_locations]
    return found


def _check_range(offset: int, size: int) -> None:
    for value in (offset, size):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidArgumentError("offsets and sizes are integers >= 0")
    if offset + size > MAX_OBJECT_BYTES:
        raise InvalidArgumentError(f"offset and size must end within {MAX_OBJECT_BYTES} bytes")
