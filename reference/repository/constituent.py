"""Data constituents: the single-node object stores of the distributed object store.

The seed's distributed object store is made of *data constituent volumes*, each an object store
implemented entirely within one node. A data constituent here is one volume holding:

* ``/constituent``: a small record naming the constituent (its number ``k`` of ``DC<k>``, which
  is also the *location ID* handles carry, and its repository number);
* ``/objects/<b>/<goid>``: one file per data object, named by its 16-hex-digit GOID under one of
  :data:`BUCKETS` bucket directories (``<b>`` = the low bits of the GOID, two hex digits), holding
  exactly the object's bytes.

The store has no namespace (seed: "the distributed object store has no namespace"): it knows an
object only by its GOID. An object absent from this constituent means the location a handle
names is *stale* (moved or deleted): :class:`StaleLocationError`, and the caller takes the slow
path through the object location store.

Uses: the file interface of :mod:`xvol.reference.repository.files`, handles, errors.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from xvol.errors import (
    AlreadyExistsError,
    InvalidArgumentError,
    NotFoundError,
    StateError,
    XvolError,
)
from xvol.reference.repository.files import FileSystem, Reply, dispatch, int_arg
from xvol.reference.repository.handles import goid_repository

BUCKETS = 16
MAX_OBJECT_BYTES = 1 << 28  # 256 MiB: below the volume's largest file


class StaleLocationError(NotFoundError):
    """The object is not (or no longer) on this data constituent: the location is stale."""


def object_path(goid: int) -> str:
    """Where object ``goid`` lives in a data constituent's volume."""
    return f"/objects/{goid % BUCKETS:02x}/{goid:016x}"


def object_goid(path: str) -> int | None:
    """The GOID whose object lives at volume path ``path`` (the inverse of
    :func:`object_path`), or None when ``path`` is no object's (the record, a bucket)."""
    parts = path.split("/")
    if len(parts) != 4 or parts[:2] != ["", "objects"] or len(parts[3]) != 16:
        return None
    try:
        goid = int(parts[3], 16)
    except ValueError:
        return None
    return goid if object_path(goid) == path else None


class DataConstituent:
    """One data constituent's object store over its volume.

    Life cycle: :meth:`format` once on an empty volume (writes the record and the bucket
    directories), or :meth:`open` on a volume formatted before (checks the record). Invariant:
    every file under ``/objects`` is one object of this repository, named by its GOID.
    """

    mutating = frozenset({"put", "write", "truncate", "replace", "remove"})

    def __init__(self, files: FileSystem, number: int, repository: int) -> None:
        self.files = files
        self.number = number
        self.repository = repository

    @classmethod
    def format(cls, files: FileSystem, number: int, repository: int) -> DataConstituent:
        """Lay out an empty data constituent ``DC<number>`` on ``files``."""
        if files.exists("/constituent"):
            raise AlreadyExistsError("this volume already holds a data constituent")
        files.mkdir("/objects")
        for bucket in range(BUCKETS):
            files.mkdir(f"/objects/{bucket:02x}")
        record = json.dumps({"number": number, "repository": repository}).encode()
        files.create("/constituent")
        files.write("/constituent", 0, record)
        files.checkpoint()
        return cls(files, number, repository)

    @classmethod
    def open(cls, files: FileSystem) -> DataConstituent:
        """The data constituent already laid out on ``files``."""
        if not files.exists("/constituent"):
            raise NotFoundError("this volume holds no data constituent")
        raw = files.read("/constituent", 0, files.stat("/constituent").size)
        record = json.loads(raw)
        return cls(files, int(record["number"]), int(record["repository"]))

    # -- objects ------------------------------------------------------------------------------

    def _check(self, goid: int) -> str:
        if goid_repository(goid) != self.repository:
            raise InvalidArgumentError(f"object {goid:016x} is not of repository {self.repository}")
        return object_path(goid)

    def contains(self, goid: int) -> bool:
        """Whether object ``goid`` is stored here."""
        return self.files.exists(self._check(goid))

    def _existing(self, goid: int) -> str:
        path = self._check(goid)
        if not self.files.exists(path):
            raise StaleLocationError(
                f"object {goid:016x} is not on data constituent DC{self.number}"
            )
        return path

    def put(self, goid: int, data: bytes) -> None:
        """Store a new object; :class:`AlreadyExistsError` if it is here already."""
        path = self._check(goid)
        if len(data) > MAX_OBJECT_BYTES:
            raise InvalidArgumentError(f"an object holds at most {MAX_OBJECT_BYTES} bytes")
        if self.files.exists(path):
            raise AlreadyExistsError(f"object {goid:016x} is already on DC{self.number}")
        self.files.create(path)
        if data:
            try:
                self.files.write(path, 0, data)
            except XvolError:
                self.files.unlink(path)
                raise

    def write(self, goid: int, offset: int, data: bytes) -> int:
        """Write ``data`` at ``offset`` of an object here; returns its new size."""
        path = self._existing(goid)
        size = self.files.stat(path).size
        if offset + len(data) > MAX_OBJECT_BYTES:
            raise InvalidArgumentError(f"an object holds at most {MAX_OBJECT_BYTES} bytes")
        if data:
            self.files.write(path, offset, data)
        return max(size, offset + len(data))

    def read(self, goid: int, offset: int, size: int) -> bytes:
        """Up to ``size`` bytes of an object from ``offset`` (short at its end)."""
        path = self._existing(goid)
        length = self.files.stat(path).size
        if offset >= length or size == 0:
            return b""
        return self.files.read(path, offset, min(size, length - offset))

    def size(self, goid: int) -> int:
        """The object's size in bytes."""
        return self.files.stat(self._existing(goid)).size

    def truncate(self, goid: int, size: int) -> None:
        """Cut or extend (with zeros) an object here to ``size`` bytes."""
        if size > MAX_OBJECT_BYTES:
            raise InvalidArgumentError(f"an object holds at most {MAX_OBJECT_BYTES} bytes")
        self.files.truncate(self._existing(goid), size)

    def replace(self, goid: int, data: bytes) -> None:
        """Make the object's bytes exactly ``data`` (the write is checked for space before
        anything changes; the tail past ``len(data)`` is then cut)."""
        path = self._existing(goid)
        if len(data) > MAX_OBJECT_BYTES:
            raise InvalidArgumentError(f"an object holds at most {MAX_OBJECT_BYTES} bytes")
        if data:
            self.files.write(path, 0, data)
        if self.files.stat(path).size != len(data):
            self.files.truncate(path, len(data))

    def remove(self, goid: int) -> None:
        """Delete an object here."""
        self.files.unlink(self._existing(goid))

    def goids(self) -> list[int]:
        """Every object stored here, sorted."""
        found: list[int] = []
        for bucket in range(BUCKETS):
            found.extend(int(name, 16) for name in self.files.readdir(f"/objects/{bucket:02x}"))
        return sorted(found)

    # -- the D-module's service ---------------------------------------------------------------

    def serve(self, method: str, args: Mapping[str, Any], payload: bytes) -> Reply:
        """Execute one CF request on this constituent."""
        return dispatch(self._table, method, args, payload, f"DC{self.number}")

    @property
    def _table(self) -> dict[str, Any]:
        def put(a: Mapping[str, Any], p: bytes) -> Reply:
            self.put(int_arg(a, "goid"), p)
            return len(p), b""

        def write(a: Mapping[str, Any], p: bytes) -> Reply:
            return self.write(int_arg(a, "goid"), int_arg(a, "offset", 0, MAX_OBJECT_BYTES), p), b""

        def read(a: Mapping[str, Any], p: bytes) -> Reply:
            goid = int_arg(a, "goid")
            data = self.read(
                goid,
                int_arg(a, "offset", 0, MAX_OBJECT_BYTES),
                int_arg(a, "size", 0, MAX_OBJECT_BYTES),
            )
            return self.size(goid), data

        def size(a: Mapping[str, Any], p: bytes) -> Reply:
            return self.size(int_arg(a, "goid")), b""

        def replace(a: Mapping[str, Any], p: bytes) -> Reply:
            self.replace(int_arg(a, "goid"), p)
            return len(p), b""

        def truncate(a: Mapping[str, Any], p: bytes) -> Reply:
            self.truncate(int_arg(a, "goid"), int_arg(a, "size", 0, MAX_OBJECT_BYTES))
            return None, b""

        def remove(a: Mapping[str, Any], p: bytes) -> Reply:
            self.remove(int_arg(a, "goid"))
            return None, b""

        def contains(a: Mapping[str, Any], p: bytes) -> Reply:
            return self.contains(int_arg(a, "goid")), b""

        def goids(a: Mapping[str, Any], p: bytes) -> Reply:
            return self.goids(), b""

        def usage(a: Mapping[str, Any], p: bytes) -> Reply:
            return {"free_bytes": self.files.free_bytes(), "objects": len(self.goids())}, b""

        def checkpoint(a: Mapping[str, Any], p: bytes) -> Reply:
            self.files.checkpoint()
            return None, b""

        return {
            "put": put,
            "write": write,
            "read": read,
            "size": size,
            "truncate": truncate,
            "replace": replace,
            "remove": remove,
            "contains": contains,
            "goids": goids,
            "usage": usage,
            "checkpoint": checkpoint,
        }


def ensure_empty(goids: list[int], number: int) -> None:
    """Raise :class:`StateError` unless a constituent about to be removed holds no object."""
    if goids:
        raise StateError(
            f"data constituent DC{number} still holds {len(goids)} objects: migrate them away first"
        )
