"""Per-volume snapshots of member volumes, served by the D-module that owns each volume.

A consistent snapshot of an expandable volume is made of one *per-volume* snapshot of each member
volume (the seed's Sn, Sols, Sd1..SdN), each an ordinary write-anywhere snapshot of that volume
(:meth:`xvol.reference.volume.volume.Volume.create_snapshot`, IDs 1..255; ID 0 is the active
file system). The M-host's snapshot coordinator and the N-module's snapshot access layer reach
them, like every other volume request, as CF messages to the owning node: this module is the
``snapshot`` service a node serves (:class:`SnapshotService`, installed on every node by
:func:`install`) and the caller's side of it (:class:`VolumeSnapshots`).

The service's methods, each on one volume ID:

=================  ===========================================================================
``create``         take a per-volume snapshot ``name``; returns ``{sid, uuid, cp}``
``delete``         delete per-volume snapshot ``sid`` (if its UUID is still ``uuid``), refused
                   with :class:`~.snapshot_holds.SnapshotHeldError` while it is a member of a
                   held expandable-volume snapshot (the node's RDB replica says)
``list``           the per-volume snapshots ``[{sid, uuid, name, cp}]``
``restore``        make the active file system snapshot ``sid`` again (commits a CP)
``read``           run one *read* method of the member store (namespace ``lookup``/``readdir``/
                   ``stat``/``walk``, OLS ``lookup``/``scan``, data ``read``/``size``/``goids``)
                   on snapshot ``sid`` (0: the active file system as of its last CP)
``inode``          the inode number of ``path`` in snapshot ``sid``
``read-inode``     bytes of inode ``ino`` in snapshot ``sid``: the seed's data handle (snapshot
                   ID, volume ID, inode) served by the D-module
=================  ===========================================================================

Reads of a snapshot go through :class:`SnapshotFiles`, a read-only
:class:`~xvol.reference.repository.files.FileSystem` over a snapshot view: the member stores'
own code (namespace, OLS, data constituent) reads the snapshot exactly as it reads the active
file system, and any method that would change it raises :class:`ReadOnlySnapshotError`.

Uses: the cluster (nodes, CF, RDB replicas), the repository's member stores and file interface,
the volume layer's snapshots, the snapshot holds (:mod:`.snapshot_holds`); the vocabulary and
errors.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from xvol.errors import InvalidArgumentError, NotFoundError, PermissionDeniedError, StateError
from xvol.reference.cluster.cf import CFReply, CFRequest
from xvol.reference.cluster.cluster import Cluster
from xvol.reference.cluster.node import MountedVolume, Node, VolumeNotHereError
from xvol.reference.repository.constituent import DataConstituent
from xvol.reference.repository.files import FileStat, MemberService, Reply, VolumeFiles
from xvol.reference.repository.namespace import NamespaceVolume
from xvol.reference.repository.ols import ObjectLocationStore
from xvol.reference.snapshots.snapshot_holds import (
    SnapshotHeldError,
    member_holds,
    refuse_member_held,
)
from xvol.reference.volume.layout import FileType
from xvol.reference.volume.volume import FileSystemView, Volume
from xvol.vocabulary import VolumeRole

SERVICE = "snapshot"


class ReadOnlySnapshotError(PermissionDeniedError):
    """A snapshot is a read-only point-in-time image: it cannot be written."""


class SnapshotDataMissingError(NotFoundError):
    """The snapshot holds no copy of the data asked for: a per-volume snapshot is gone (or its
    ID now names a later snapshot), or a member has none (a partial snapshot's missing data)."""


# --------------------------------------------------------------------------------------------
# A read-only file system over a snapshot view
# --------------------------------------------------------------------------------------------


class SnapshotFiles:
    """The :class:`FileSystem` of one snapshot (or of the active file system at its last CP):
    reads as the volume does, every change refused with :class:`ReadOnlySnapshotError`."""

    def __init__(self, view: FileSystemView, what: str) -> None:
        self.view = view
        self.what = what

    def _refuse(self, *_: object) -> None:
        raise ReadOnlySnapshotError(f"{self.what} is a snapshot: it is read-only")

    mkdir = create = unlink = rmdir = _refuse

    def write(self, path: str, offset: int, data: bytes) -> None:
        self._refuse()

    def truncate(self, path: str, size: int) -> None:
        self._refuse()

    def rename(self, source: str, target: str) -> None:
        self._refuse()

    def checkpoint(self) -> None:
        self._refuse()

    def read(self, path: str, offset: int, size: int) -> bytes:
        return self.view.read(path, offset, size)

    def readdir(self, path: str) -> list[str]:
        return [entry.name for entry in self.view.readdir(path)]

    def stat(self, path: str) -> FileStat:
        info = self.view.stat(path)
        return FileStat(info.type == FileType.DIRECTORY, info.size)

    def exists(self, path: str) -> bool:
        return self.view.exists(path)

    def free_bytes(self) -> int:
        return 0


def open_store(role: VolumeRole, files: SnapshotFiles) -> MemberService:
    """The member store of ``role`` laid out on a snapshot's files."""
    if role is VolumeRole.NAMESPACE:
        return NamespaceVolume.open(files)
    if role is VolumeRole.OLS:
        return ObjectLocationStore.open(files)
    return DataConstituent.open(files)


# --------------------------------------------------------------------------------------------
# The D-module side: the node's snapshot service
# --------------------------------------------------------------------------------------------


def _volume_of(mounted: MountedVolume) -> Volume:
    if not isinstance(mounted.files, VolumeFiles):
        raise StateError(f"volume {mounted.volume_id!r} is not a write-anywhere volume")
    return mounted.files.volume


def _check_present(volume: Volume, volume_id: str, sid: int, snapshot_uuid: Any) -> None:
    """Raise :class:`SnapshotDataMissingError` unless snapshot ``sid`` exists (and carries
    ``snapshot_uuid``, when given)."""
    present = [s for s in volume.snapshots() if s.sid == sid]
    if not present or (snapshot_uuid is not None and str(present[0].uuid) != snapshot_uuid):
        raise SnapshotDataMissingError(f"volume {volume_id!r} no longer has snapshot {sid}")


def _int(args: Mapping[str, Any], name: str, low: int, high: int) -> int:
    value = args.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidArgumentError(f"argument {name} must be an integer in {low}..{high}")
    return value


class SnapshotService:
    """The ``snapshot`` CF service of one node, over the volumes its D-module owns.

    Stores opened over a snapshot are cached by (volume ID, snapshot ID, snapshot UUID): a
    snapshot never changes, and a deleted one's ID, reused later, carries a new UUID."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.requests = 0
        self._stores: dict[tuple[str, int, uuid.UUID], MemberService] = {}

    def __call__(self, request: CFRequest) -> CFReply:
        self.requests += 1
        mounted = self.node.dmodule.volumes.get(request.volume)
        if mounted is None:
            raise VolumeNotHereError(f"volume {request.volume!r} is not on node {self.node.name}")
        volume = _volume_of(mounted)
        args = request.args
        method = request.method
        if method == "create":
            name = args.get("name")
            if not isinstance(name, str):
                raise InvalidArgumentError("a per-volume snapshot needs a name")
            info = volume.create_snapshot(name)
            return CFReply(result={"sid": info.sid, "uuid": str(info.uuid), "cp": info.cp})
        if method == "list":
            return CFReply(
                result=[
                    {"sid": s.sid, "uuid": str(s.uuid), "name": s.name, "cp": s.cp}
                    for s in volume.snapshots()
                ]
            )
        if method == "delete":
            sid = _int(args, "sid", 1, 255)
            _check_present(volume, request.volume, sid, args.get("uuid"))
            snapshot_uuid = str(volume.snapshot_info(sid).uuid)
            refuse_member_held(self.node.rdb, request.volume, sid, snapshot_uuid)
            volume.delete_snapshot(sid)
            return CFReply(result=None)
        if method == "restore":
            sid = _int(args, "sid", 1, 255)
            _check_present(volume, request.volume, sid, args.get("uuid"))
            volume.restore_snapshot(sid)
            return CFReply(result=None)
        sid = _int(args, "sid", 0, 255)
        if sid:
            _check_present(volume, request.volume, sid, args.get("uuid"))
        view = volume.view(sid)
        if method == "inode":
            path = args.get("path")
            if not isinstance(path, str):
                raise InvalidArgumentError("argument path must be a string")
            return CFReply(result=view.stat(path).ino)
        if method == "read-inode":
            ino = _int(args, "ino", 1, (1 << 32) - 1)
            offset = _int(args, "offset", 0, 1 << 40)
            size = _int(args, "size", 0, 1 << 40)
            stat = view.stat_inode(ino)
            if stat.type == FileType.DIRECTORY:
                raise InvalidArgumentError(f"inode {ino} is a directory")
            size = max(0, min(size, stat.size - offset))
            data = view.read_inode(ino, offset, size) if size else b""
            return CFReply(result=stat.size, payload=data)
        if method == "read":
            store = self._store(mounted, volume, sid, view)
            inner = args.get("method")
            inner_args = args.get("args", {})
            if not isinstance(inner, str) or not isinstance(inner_args, Mapping):
                raise InvalidArgumentError("read needs a store method and its arguments")
            if inner in store.mutating or inner == "checkpoint":
                raise ReadOnlySnapshotError(
                    f"snapshot {sid} of {request.volume!r} is read-only: {inner!r} changes it"
                )
            result, payload = store.serve(inner, inner_args, b"")
            return CFReply(result=result, payload=payload)
        raise InvalidArgumentError(f"the snapshot service has no method {method!r}")

    def _store(
        self, mounted: MountedVolume, volume: Volume, sid: int, view: FileSystemView
    ) -> MemberService:
        if sid == 0:
            return open_store(mounted.role, SnapshotFiles(view, mounted.volume_id))
        key = (mounted.volume_id, sid, volume.snapshot_info(sid).uuid)
        store = self._stores.get(key)
        if store is None:
            files = SnapshotFiles(view, f"snapshot {sid} of {mounted.volume_id}")
            store = self._stores[key] = open_store(mounted.role, files)
        return store


def install(cluster: Cluster) -> None:
    """Install the snapshot service on every node of ``cluster`` (once; later calls keep it)."""
    for node in cluster.nodes.values():
        if SERVICE not in node.services:
            node.services[SERVICE] = SnapshotService(node)


# --------------------------------------------------------------------------------------------
# The caller's side
# --------------------------------------------------------------------------------------------


class VolumeSnapshots:
    """Per-volume snapshot requests sent from ``node`` (an M-host or an N-module) to the nodes
    that own the member volumes of expandable volume ``name`` of ``vserver``. Every call reads
    the owner from the node's RDB replica (volume table -> VLDB) and may raise
    :class:`xvol.errors.UnavailableError` (the owner does not answer; nothing changed)."""

    def __init__(self, cluster: Cluster, node: str, vserver: str, name: str) -> None:
        install(cluster)
        self.cluster = cluster
        self.node = node
        self.vserver = vserver
        self.name = name

    def _call(self, volume_id: str, method: str, args: Mapping[str, Any]) -> tuple[Any, bytes]:
        from xvol.reference.cluster.rdb import read_location

        owner = read_location(self.cluster.node(self.node).rdb, volume_id).node
        reply = self.cluster.node(self.node).cf.call(
            owner, CFRequest(SERVICE, volume_id, method, dict(args))
        )
        return reply.result, reply.payload

    def ping(self, volume_id: str) -> str:
        """Ask the owner of ``volume_id`` to answer; returns its node name."""
        from xvol.reference.cluster.rdb import read_location

        owner = read_location(self.cluster.node(self.node).rdb, volume_id).node
        self.cluster.node(self.node).cf.call(owner, CFRequest("ping", "", "ping"))
        return owner

    def create(self, volume_id: str, name: str) -> tuple[int, str]:
        """Take per-volume snapshot ``name`` of ``volume_id``; returns (sid, uuid)."""
        result, _ = self._call(volume_id, "create", {"name": name})
        return int(result["sid"]), str(result["uuid"])

    def delete(self, volume_id: str, sid: int, snapshot_uuid: str | None = None) -> None:
        """Delete per-volume snapshot ``sid`` (only if it still carries ``snapshot_uuid``);
        :class:`~.snapshot_holds.SnapshotHeldError` (holders named) if it is a member of a
        held expandable-volume snapshot."""
        args: dict[str, Any] = {"sid": sid}
        if snapshot_uuid is not None:
            args["uuid"] = snapshot_uuid
        try:
            self._call(volume_id, "delete", args)
        except SnapshotHeldError as refused:  # the message crossed CF; add the holders again
            if snapshot_uuid is None:
                found = [s["uuid"] for s in self.list(volume_id) if s["sid"] == sid]
                snapshot_uuid = str(found[0]) if found else ""
            holds = member_holds(self.cluster.node(self.node).rdb, volume_id, snapshot_uuid)
            if not holds or refused.holders:
                raise
            raise SnapshotHeldError(
                str(refused), holds[0].name, tuple(h.holder for h in holds)
            ) from None

    def restore(self, volume_id: str, sid: int, snapshot_uuid: str | None = None) -> None:
        """Restore ``volume_id``'s active file system to its per-volume snapshot ``sid``."""
        args: dict[str, Any] = {"sid": sid}
        if snapshot_uuid is not None:
            args["uuid"] = snapshot_uuid
        self._call(volume_id, "restore", args)

    def list(self, volume_id: str) -> list[dict[str, Any]]:
        """The per-volume snapshots of ``volume_id``."""
        result, _ = self._call(volume_id, "list", {})
        return list(result)

    def read(
        self,
        volume_id: str,
        sid: int,
        method: str,
        args: Mapping[str, Any],
        snapshot_uuid: str | None = None,
    ) -> Reply:
        """Run read method ``method`` of the member store on snapshot ``sid`` (which must still
        carry ``snapshot_uuid``, if given)."""
        return self._call(
            volume_id,
            "read",
            _with_uuid({"sid": sid, "method": method, "args": dict(args)}, snapshot_uuid),
        )

    def inode(self, volume_id: str, sid: int, path: str, snapshot_uuid: str | None = None) -> int:
        """The inode number of volume path ``path`` in snapshot ``sid``."""
        result, _ = self._call(
            volume_id, "inode", _with_uuid({"sid": sid, "path": path}, snapshot_uuid)
        )
        return int(result)

    def read_inode(
        self,
        volume_id: str,
        sid: int,
        ino: int,
        offset: int,
        size: int,
        snapshot_uuid: str | None = None,
    ) -> tuple[int, bytes]:
        """(file size, bytes) of inode ``ino`` in snapshot ``sid`` of ``volume_id``."""
        args = {"sid": sid, "ino": ino, "offset": offset, "size": size}
        result, payload = self._call(volume_id, "read-inode", _with_uuid(args, snapshot_uuid))
        return int(result), payload


def _with_uuid(args: dict[str, Any], snapshot_uuid: str | None) -> dict[str, Any]:
    if snapshot_uuid is not None:
        args["uuid"] = snapshot_uuid
    return args
