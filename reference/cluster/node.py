"""A cluster node: N-module, D-module, M-host and an instance of the replicated database.

The seed's node has three modules: the **N-module** connects clients and hosts the presentation
layer, the **D-module** serves the data of the volumes it owns, and the **M-host** runs
management (here: the management subsystem of :mod:`xvol.reference.cluster.cluster`, which acts
through CF messages to the D-modules). Each node also holds an instance of the **RDB**.

* :class:`DModule` owns the member volumes on this node's storage: for each volume ID it keeps
  the volume and the member store over it (a namespace, an OLS or a data constituent) and
  executes CF requests on them. It also answers management requests to create, open (after a
  restart) and destroy member volumes.
* :class:`NModule` turns member names (``NS``, ``OLS``, ``DC<k>``) into CF calls: volume table
  (from the node's own RDB replica) -> volume ID -> VLDB -> owning node -> LPC or RPC.
  :class:`CFMemberAccess` is that path as a :class:`~xvol.reference.repository.files.MemberAccess`.
* :class:`Node` ties them to the fabric: its endpoint decodes frames and dispatches by service
  (``dmodule``, ``rdb``, ``ping``).

Uses: the CF protocol, the RDB, the repository's stores, the node's storage
(:class:`NodeStorage`); the vocabulary and errors.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from xvol.errors import AlreadyExistsError, InvalidArgumentError, NotFoundError
from xvol.reference.cluster.cf import CFClient, CFReply, CFRequest, Transport, serve_frame
from xvol.reference.cluster.rdb import RDBReplica, read_expandable, read_location
from xvol.reference.repository.constituent import DataConstituent
from xvol.reference.repository.files import FileSystem, MemberService, Reply
from xvol.reference.repository.namespace import LocatorMode, NamespaceVolume
from xvol.reference.repository.ols import ObjectLocationStore
from xvol.vocabulary import VolumeRole, role_of


class NodeStorage(Protocol):
    """The storage a node's D-module keeps its volumes on (an aggregate of RAID groups)."""

    @property
    def aggregate_name(self) -> str:
        """The name the VLDB records for this storage."""
        ...

    def create_volume(self, volume_id: str, blocks: int) -> FileSystem:
        """Make an empty volume of ``blocks`` blocks named ``volume_id``."""
        ...

    def open_volume(self, volume_id: str) -> FileSystem:
        """Open the volume made before under ``volume_id`` (after a restart)."""
        ...

    def destroy_volume(self, volume_id: str) -> None:
        """Delete the volume and give its blocks back."""
        ...

    def volume_ids(self) -> list[str]:
        """The volumes on this storage."""
        ...


class VolumeNotHereError(NotFoundError):
    """A request reached a D-module that does not own the volume it names."""


@dataclass
class MountedVolume:
    """A member volume owned by a D-module: its file system and its member store."""

    volume_id: str
    role: VolumeRole
    files: FileSystem
    service: MemberService


class DModule:
    """The D-module of one node. Invariant: ``volumes`` holds exactly the member volumes on this
    node's storage that the management layer created and has not destroyed."""

    def __init__(self, node: str, storage: NodeStorage) -> None:
        self.node = node
        self.storage = storage
        self.volumes: dict[str, MountedVolume] = {}
        self.requests = 0
        self.checkpoints = 0

    def serve(self, request: CFRequest) -> CFReply:
        """Execute a CF request on one of this node's volumes, or a management request."""
        self.requests += 1
        if request.method.startswith("admin-"):
            return self._admin(request)
        mounted = self.volumes.get(request.volume)
        if mounted is None:
            raise VolumeNotHereError(f"volume {request.volume!r} is not on node {self.node}")
        result, payload = mounted.service.serve(request.method, request.args, request.payload)
        if request.method in mounted.service.mutating:
            mounted.files.checkpoint()
            self.checkpoints += 1
        return CFReply(result=result, payload=payload)

    def _admin(self, request: CFRequest) -> CFReply:
        args = request.args
        if request.method == "admin-create":
            if request.volume in self.volumes:
                raise AlreadyExistsError(f"volume {request.volume!r} exists on {self.node}")
            files = self.storage.create_volume(request.volume, int(args["blocks"]))
            self._mount(request.volume, files, args, fresh=True)
            return CFReply(result=self.storage.aggregate_name)
        if request.method == "admin-destroy":
            if request.volume not in self.volumes:
                raise VolumeNotHereError(f"volume {request.volume!r} is not on node {self.node}")
            del self.volumes[request.volume]
            self.storage.destroy_volume(request.volume)
            return CFReply(result=None)
        raise InvalidArgumentError(f"unknown management request {request.method!r}")

    def _mount(
        self, volume_id: str, files: FileSystem, args: Mapping[str, Any], *, fresh: bool
    ) -> None:
        member = str(args["member"])
        role = role_of(member)
        repository = int(args["repository"])
        service: MemberService
        if role is VolumeRole.NAMESPACE:
            mode = LocatorMode(str(args.get("locator", LocatorMode.REDIRECTOR_GOID)))
            service = (
                NamespaceVolume.format(files, mode, repository)
                if fresh
                else NamespaceVolume.open(files)
            )
        elif role is VolumeRole.OLS:
            service = (
                ObjectLocationStore.format(files, repository)
                if fresh
                else ObjectLocationStore.open(files)
            )
        else:
            service = (
                DataConstituent.format(files, int(member[2:]), repository)
                if fresh
                else DataConstituent.open(files)
            )
        self.volumes[volume_id] = MountedVolume(volume_id, role, files, service)

    def remount(self, members: Mapping[str, Mapping[str, Any]]) -> None:
        """After a restart: reopen every volume on storage from its blocks (``members`` maps
        volume ID -> the arguments it was created with)."""
        self.volumes.clear()
        for volume_id in self.storage.volume_ids():
            if volume_id in members:
                files = self.storage.open_volume(volume_id)
                self._mount(volume_id, files, members[volume_id], fresh=False)


class CFMemberAccess:
    """Member access of one expandable volume through one node's N-module: names -> volume
    IDs (volume table) -> owning node (VLDB) -> CF call (LPC or RPC)."""

    def __init__(self, nmodule: NModule, vserver: str, name: str) -> None:
        self.nmodule = nmodule
        self.vserver = vserver
        self.name = name

    def _target(self, volume: str) -> tuple[str, str]:
        replica = self.nmodule.rdb
        record = read_expandable(replica, self.vserver, self.name)
        volume_id = record.member(volume).volume_id
        return volume_id, read_location(replica, volume_id).node

    def call(
        self, volume: str, method: str, args: Mapping[str, Any], payload: bytes = b""
    ) -> Reply:
        volume_id, node = self._target(volume)
        reply = self.nmodule.cf.call(node, CFRequest("dmodule", volume_id, method, args, payload))
        return reply.result, reply.payload

    def ping(self, volumes: Sequence[str]) -> None:
        for node in sorted({self._target(volume)[1] for volume in volumes}):
            self.nmodule.cf.call(node, CFRequest("ping", "", "ping"))


class NModule:
    """The N-module of one node: the presentation layer's way into the cluster."""

    def __init__(self, node: str, rdb: RDBReplica, cf: CFClient) -> None:
        self.node = node
        self.rdb = rdb
        self.cf = cf

    def access(self, vserver: str, name: str) -> CFMemberAccess:
        """Member access to expandable volume ``name`` of ``vserver`` from this node."""
        return CFMemberAccess(self, vserver, name)


class Node:
    """One node: its modules, its RDB replica and its endpoint on the fabric."""

    def __init__(self, name: str, storage: NodeStorage, transport: Transport) -> None:
        self.name = name
        self.storage = storage
        self.rdb = RDBReplica(name)
        self.cf = CFClient(name, transport)
        self.dmodule = DModule(name, storage)
        self.nmodule = NModule(name, self.rdb, self.cf)
        self.pings = 0
        self.services: dict[str, Callable[[CFRequest], CFReply]] = {}
        """Further services a layer above installs on this node (e.g. ``snapshot``), by name;
        they survive a restart, as the node's code does."""

    def endpoint(self, frame: bytes) -> bytes:
        """Decode a frame and dispatch it to the module it names."""
        return serve_frame(frame, self._dispatch)

    def _dispatch(self, request: CFRequest) -> CFReply:
        if request.service == "dmodule":
            return self.dmodule.serve(request)
        if request.service == "rdb":
            return self.rdb.serve(request)
        if request.service == "ping":
            self.pings += 1
            return CFReply(result=self.name)
        if request.service in self.services:
            return self.services[request.service](request)
        raise InvalidArgumentError(f"node {self.name} has no service {request.service!r}")
