"""The NAS interface of the presentation layer: a POSIX-like file API over a vserver's namespace.

The seed's presentation layer "provides two or more independent interfaces for accessing stored
data, e.g. a conventional NAS interface and a Web Service interface"; the NAS interface "provides
a file system like interface to the content repository". A :class:`NasClient` is one user's
session on one vserver, entering the cluster through one node's N-module (so its requests to
member volumes on that node are LPCs and the others RPCs). Every call checks, against the node's
RDB replica, that the vserver admits the user (the vserver's security domain), then runs one
operation of the vserver's expandable volume to its end. Paths are the vserver's: ``/`` is the
root of its namespace, and no path can climb out of it.

Files opened with :meth:`NasClient.open` are :class:`NasFile` s with a position; they keep the
object's handle and use it for the fast path, falling back to the slow path (and refreshing the
handle) after a migration. :meth:`NasClient.snapshot` opens one of the vserver's consistent
snapshots as a read-only :class:`~xvol.reference.snapshots.snapshot_access.SnapshotView` (the
seed's snapshot access layer).

Uses: the cluster (vservers, N-modules, expandable volumes), the repository's operations and
the snapshot access layer.
"""

from __future__ import annotations

from xvol.errors import AlreadyExistsError, InvalidArgumentError, PermissionDeniedError
from xvol.reference.cluster.cluster import Cluster
from xvol.reference.cluster.node import CFMemberAccess
from xvol.reference.repository.constituent import MAX_OBJECT_BYTES
from xvol.reference.repository.expandable import ExpandableVolume, ObjectStat
from xvol.reference.repository.handles import ObjectHandle
from xvol.reference.repository.namespace import Entry
from xvol.reference.repository.paths import normalise
from xvol.reference.snapshots.snapshot_access import SnapshotAccessLayer, SnapshotView
from xvol.vocabulary import OperationKind

OPEN_MODES = ("r", "r+", "w", "w+", "a", "x")


class NasClient:
    """One user's NAS session on ``vserver`` through ``node``'s N-module."""

    def __init__(
        self, cluster: Cluster, vserver: str, user: str = "root", node: str | None = None
    ) -> None:
        self.cluster = cluster
        self.vserver = vserver
        self.user = user
        self.node = node or cluster.any_up_node()
        cluster.node(self.node)
        self._check_access()
        self._snapshots: SnapshotAccessLayer | None = None

    def _check_access(self) -> tuple[ExpandableVolume, CFMemberAccess]:
        record = self.cluster.vserver(self.vserver)
        if self.user not in record.users:
            raise PermissionDeniedError(
                f"user {self.user!r} may not access vserver {self.vserver!r}"
            )
        xv = self.cluster.expandable(self.vserver)
        return xv, self.cluster.node(self.node).nmodule.access(self.vserver, xv.name)

    # -- whole-object calls -------------------------------------------------------------------

    def create(self, path: str, data: bytes = b"", policy_id: int = 0) -> ObjectHandle:
        """Create a new object (it must not exist); returns its handle."""
        xv, access = self._check_access()
        return xv.run(OperationKind.CREATE, xv.op_create(path, data, policy_id, access), path)

    def read(self, path: str, offset: int = 0, size: int | None = None) -> bytes:
        """Up to ``size`` bytes (default: all) of the object at ``path`` from ``offset``."""
        xv, access = self._check_access()
        data, _ = xv.run(
            OperationKind.READ_NAMED,
            xv.op_read(path, offset, MAX_OBJECT_BYTES - offset if size is None else size, access),
            path,
        )
        return data

    def write(self, path: str, data: bytes, offset: int = 0) -> ObjectHandle:
        """Write into the existing object at ``path``."""
        xv, access = self._check_access()
        return xv.run(OperationKind.WRITE, xv.op_write(path, offset, data, access), path)

    def replace(self, path: str, data: bytes) -> ObjectHandle:
        """Make the existing object at ``path`` hold exactly ``data``."""
        xv, access = self._check_access()
        return xv.run(OperationKind.WRITE, xv.op_replace(path, data, access), path)

    def truncate(self, path: str, size: int) -> ObjectHandle:
        """Cut or extend the object at ``path`` to ``size`` bytes."""
        xv, access = self._check_access()
        return xv.run("truncate", xv.op_truncate(path, size, access), path)

    def unlink(self, path: str) -> int:
        """Delete the object at ``path``; returns its GOID."""
        xv, access = self._check_access()
        return xv.run(OperationKind.DELETE, xv.op_delete(path, access), path)

    def rename(self, source: str, target: str) -> None:
        """Move an entry; its objects keep their GOIDs and locations."""
        xv, access = self._check_access()
        xv.run("rename", xv.op_rename(source, target, access), source)

    def mkdir(self, path: str) -> None:
        """Create a directory."""
        xv, access = self._check_access()
        xv.run("mkdir", xv.op_mkdir(path, access), path)

    def rmdir(self, path: str) -> None:
        """Remove an empty directory."""
        xv, access = self._check_access()
        xv.run("rmdir", xv.op_rmdir(path, access), path)

    def readdir(self, path: str = "/") -> list[Entry]:
        """The entries of a directory, sorted by name."""
        xv, access = self._check_access()
        return xv.run("readdir", xv.op_readdir(path, access), path)

    def stat(self, path: str) -> ObjectStat:
        """A directory, or an object with its size and handle."""
        xv, access = self._check_access()
        return xv.run("stat", xv.op_stat(path, access), path)

    def read_object(
        self, handle: ObjectHandle | str | int, offset: int = 0, size: int | None = None
    ) -> tuple[bytes, ObjectHandle]:
        """Raw access by handle (text or object) or GOID; returns bytes and a fresh handle."""
        xv, access = self._check_access()
        return xv.run(
            OperationKind.READ_RAW,
            xv.op_read_object(
                handle, offset, MAX_OBJECT_BYTES - offset if size is None else size, access
            ),
            "raw",
        )

    def read_named(
        self, path: str, offset: int = 0, size: int | None = None
    ) -> tuple[bytes, ObjectHandle]:
        """Named read that also returns the object's (fresh) handle."""
        xv, access = self._check_access()
        return xv.run(
            OperationKind.READ_NAMED,
            xv.op_read(path, offset, MAX_OBJECT_BYTES - offset if size is None else size, access),
            path,
        )

    def write_object(
        self, handle: ObjectHandle | str | int, offset: int, data: bytes
    ) -> ObjectHandle:
        """Raw write by handle or GOID; returns a fresh handle."""
        xv, access = self._check_access()
        return xv.run(OperationKind.WRITE, xv.op_write_object(handle, offset, data, access), "raw")

    def stat_object(self, handle: ObjectHandle | str | int) -> tuple[int, ObjectHandle]:
        """Raw stat: size and fresh handle."""
        xv, access = self._check_access()
        return xv.run("stat", xv.op_stat_object(handle, access), "raw")

    def migrate(self, handle: ObjectHandle | str | int, target: int) -> ObjectHandle:
        """Move an object of this vserver to ``DC<target>`` (transparent to its names)."""
        xv, access = self._check_access()
        return xv.run(OperationKind.MIGRATE, xv.op_migrate(handle, target, access), "migrate")

    def snapshot(self, ref: str | int) -> SnapshotView:
        """The vserver's consistent snapshot ``ref`` (name or ID) as one read-only object,
        through this node's snapshot access layer (and its cache of the snapshot table)."""
        xv, _ = self._check_access()
        if self._snapshots is None:
            self._snapshots = SnapshotAccessLayer(self.cluster, self.node)
        return self._snapshots.open(self.vserver, xv.name, ref, self.user)

    def handle_text(self, handle: ObjectHandle) -> str:
        """The handle as the signed text clients keep."""
        xv, _ = self._check_access()
        return xv.codec.encode(handle)

    # -- open files -----------------------------------------------------------------------------

    def open(self, path: str, mode: str = "r", policy_id: int = 0) -> NasFile:
        """Open ``path``: ``r`` (read), ``r+`` (read/write), ``w``/``w+`` (create or truncate),
        ``a`` (append, creating), ``x`` (create, must not exist)."""
        if mode not in OPEN_MODES:
            raise InvalidArgumentError(f"open mode must be one of {', '.join(OPEN_MODES)}")
        path = normalise(path)
        handle: ObjectHandle
        if mode == "x":
            handle = self.create(path, b"", policy_id)
        elif mode in ("w", "w+", "a"):
            try:
                handle = self.create(path, b"", policy_id)
            except AlreadyExistsError:
                info = self.stat(path)
                if info.is_dir or info.handle is None:
                    raise InvalidArgumentError(f"{path} is a directory") from None
                handle = self.truncate(path, 0) if mode != "a" else info.handle
        else:
            info = self.stat(path)
            if info.is_dir or info.handle is None:
                raise InvalidArgumentError(f"{path} is a directory, not a file")
            handle = info.handle
        nas_file = NasFile(self, path, handle, writable=mode != "r")
        if mode == "a":
            nas_file.seek(self.stat(path).size)
        return nas_file


class NasFile:
    """An open file: a path, a cached handle (fast path) and a position."""

    def __init__(
        self, client: NasClient, path: str, handle: ObjectHandle, *, writable: bool
    ) -> None:
        self.client = client
        self.path = path
        self.handle = handle
        self.writable = writable
        self.position = 0
        self.closed = False

    def _check(self) -> tuple[ExpandableVolume, CFMemberAccess]:
        if self.closed:
            raise InvalidArgumentError(f"{self.path} is closed")
        return self.client._check_access()

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes (all if negative) from the position, through the handle."""
        xv, access = self._check()
        want = MAX_OBJECT_BYTES - self.position if size < 0 else size
        data, self.handle = xv.run(
            OperationKind.READ_RAW,
            xv.op_read_object(self.handle, self.position, want, access),
            self.path,
        )
        self.position += len(data)
        return data

    def write(self, data: bytes) -> int:
        """Write at the position, through the handle; returns bytes written."""
        xv, access = self._check()
        if not self.writable:
            raise PermissionDeniedError(f"{self.path} is open read-only")
        self.handle = xv.run(
            OperationKind.WRITE,
            xv.op_write_object(self.handle, self.position, data, access),
            self.path,
        )
        self.position += len(data)
        return len(data)

    def seek(self, position: int) -> int:
        """Move the position (>= 0)."""
        if isinstance(position, bool) or not isinstance(position, int) or position < 0:
            raise InvalidArgumentError("a file position is an integer >= 0")
        self.position = position
        return position

    def close(self) -> None:
        """Close the file (later calls are refused)."""
        self.closed = True

    def __enter__(self) -> NasFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
