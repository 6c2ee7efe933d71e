"""The namespace volume: the directory tree whose entries point to redirector files.

The seed breaks the tie between path names and storage locations: "each directory entry includes
a path name and a pointer [that] points to a stub file or a redirector file", and "a redirector
file maintains an object locator of the data object", either the GOID or the whole multilevel
object handle. The redirector files live in the namespace volume itself. Mapping a path to its
GOID, and the GOID to its location through the OLS, mimics a file-system hierarchy while keeping
objects free to move: a migration changes no path and no GOID. The seed's alternative keeps the
GOID *in the directory entry* itself, with no redirector file.

The volume holds ``/namespace`` (a record of the mode and repository) and the tree under
``/root``. Three :class:`LocatorMode` s lay the tree out:

* ``redirector-goid`` (default): user path ``/a/b`` is volume path ``/root/a/b``; a directory is
  a directory, an object is a redirector file of :data:`REDIRECTOR_BYTES` bytes holding the magic
  ``XRDR`` and the GOID;
* ``redirector-handle``: the same, with the redirector also holding the location and policy IDs
  of the handle (a hint: the N-module tries the fast path with it first);
* ``entry-goid``: directories are named ``+<name>`` and an object's entry is an empty file named
  ``<goid:16 hex>=<name>``: the GOID is part of the directory entry. Finding a name scans its
  directory.

Invariants: a name appears at most once per directory (as a directory or an object, never
both); every object entry carries exactly one GOID; the namespace never stores data bytes.

Uses: the file interface of :mod:`xvol.reference.repository.files`, paths, handles, errors.
"""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from xvol.errors import (
    AlreadyExistsError,
    IntegrityError,
    InvalidArgumentError,
    NotFoundError,
    StateError,
)
from xvol.reference.repository.files import FileSystem, Reply, dispatch, int_arg, str_arg
from xvol.reference.repository.handles import MAX_U32
from xvol.reference.repository.paths import is_within, normalise, split_path
from xvol.reference.volume.volume import (
    DirectoryNotEmptyError,
    IsDirectoryError,
    NotDirectoryError,
)


class LocatorMode(StrEnum):
    """Where the namespace keeps an object's locator (see the module text)."""

    REDIRECTOR_GOID = "redirector-goid"
    REDIRECTOR_HANDLE = "redirector-handle"
    ENTRY_GOID = "entry-goid"


REDIRECTOR = struct.Struct(">4sB3xQII")  # magic, has-hint, GOID, location ID, policy ID
REDIRECTOR_BYTES = REDIRECTOR.size
REDIRECTOR_MAGIC = b"XRDR"
_ENTRY = re.compile(r"([0-9a-f]{16})=(.+)", re.DOTALL)


@dataclass(frozen=True)
class Locator:
    """An object locator from the namespace: the GOID, and a location hint when the mode keeps
    the whole handle (``None`` otherwise)."""

    goid: int
    location_id: int | None = None
    policy_id: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"goid": self.goid, "location_id": self.location_id, "policy_id": self.policy_id}

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> Locator:
        loc, pol = data.get("location_id"), data.get("policy_id")
        return Locator(
            int(data["goid"]), None if loc is None else int(loc), None if pol is None else int(pol)
        )


@dataclass(frozen=True)
class Entry:
    """One directory entry as readdir reports it."""

    name: str
    is_dir: bool
    goid: int | None

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "is_dir": self.is_dir, "goid": self.goid}

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> Entry:
        goid = data.get("goid")
        return Entry(str(data["name"]), bool(data["is_dir"]), None if goid is None else int(goid))


def user_path(mode: LocatorMode, volume_path: str, is_dir: bool) -> str | None:
    """The user path that namespace volume path ``volume_path`` (a directory when ``is_dir``,
    else an object's entry) stands for under ``mode``, or None when it stands for none (the
    ``/namespace`` record, or a name the mode never makes). The inverse of the layout above."""
    parts = volume_path.split("/")[1:]
    if not parts or parts[0] != "root":
        return None
    names = parts[1:]
    if not names:
        return "/" if is_dir else None
    if mode is LocatorMode.ENTRY_GOID:
        dirs = names if is_dir else names[:-1]
        if not all(d.startswith("+") and len(d) > 1 for d in dirs):
            return None
        names = [d[1:] for d in dirs]
        if not is_dir:
            match = _ENTRY.fullmatch(parts[-1])
            if match is None:
                return None
            names.append(match.group(2))
    return "/" + "/".join(names)


class NamespaceVolume:
    """The namespace of one expandable volume over the namespace volume (see the module text)."""

    mutating = frozenset({"link", "relink", "unlink", "mkdir", "rmdir", "rename"})

    def __init__(self, files: FileSystem, mode: LocatorMode, repository: int) -> None:
        self.files = files
        self.mode = mode
        self.repository = repository

    @classmethod
    def format(cls, files: FileSystem, mode: LocatorMode, repository: int) -> NamespaceVolume:
        """Lay out an empty namespace (just the root directory) on an empty volume."""
        if files.exists("/namespace"):
            raise AlreadyExistsError("this volume already holds a namespace")
        files.mkdir("/root")
        files.create("/namespace")
        files.write(
            "/namespace", 0, json.dumps({"mode": mode.value, "repository": repository}).encode()
        )
        files.checkpoint()
        return cls(files, mode, repository)

    @classmethod
    def open(cls, files: FileSystem) -> NamespaceVolume:
        """The namespace laid out on ``files`` before."""
        if not files.exists("/namespace"):
            raise NotFoundError("this volume holds no namespace")
        record = json.loads(files.read("/namespace", 0, files.stat("/namespace").size))
        return cls(files, LocatorMode(record["mode"]), int(record["repository"]))

    # -- path resolution ----------------------------------------------------------------------

    def _dir_path(self, parts: tuple[str, ...]) -> str:
        """The volume path of directory ``parts``, checking each level is a directory."""
        path = "/root"
        for depth, name in enumerate(parts):
            child = f"{path}/+{name}" if self.mode is LocatorMode.ENTRY_GOID else f"{path}/{name}"
            if not self.files.exists(child):
                if self._find_object(path, name) is not None:
                    raise NotDirectoryError(
                        f"{'/' + '/'.join(parts[: depth + 1])} is an object, not a directory"
                    )
                raise NotFoundError(f"no directory {'/' + '/'.join(parts[: depth + 1])}")
            if not self.files.stat(child).is_dir:
                raise NotDirectoryError(
                    f"{'/' + '/'.join(parts[: depth + 1])} is an object, not a directory"
                )
            path = child
        return path

    def _find_object(self, dir_path: str, name: str) -> str | None:
        """The volume path of object entry ``name`` in directory ``dir_path``, if any."""
        if self.mode is LocatorMode.ENTRY_GOID:
            suffix = "=" + name
            for entry in self.files.readdir(dir_path):
                if entry.endswith(suffix) and _ENTRY.fullmatch(entry) and entry[17:] == name:
                    return f"{dir_path}/{entry}"
            return None
        path = f"{dir_path}/{name}"
        if self.files.exists(path) and not self.files.stat(path).is_dir:
            return path
        return None

    def _name_taken(self, dir_path: str, name: str) -> bool:
        if self.mode is LocatorMode.ENTRY_GOID:
            return self.files.exists(f"{dir_path}/+{name}") or (
                self._find_object(dir_path, name) is not None
            )
        return self.files.exists(f"{dir_path}/{name}")

    def _object_path(self, path: str) -> str:
        parts = split_path(path)
        if not parts:
            raise IsDirectoryError("/ is a directory, not an object")
        parent = self._dir_path(parts[:-1])
        found = self._find_object(parent, parts[-1])
        if found is None:
            if self._name_taken(parent, parts[-1]):
                raise IsDirectoryError(f"{normalise(path)} is a directory, not an object")
            raise NotFoundError(f"no object {normalise(path)}")
        return found

    def _read_locator(self, volume_path: str) -> Locator:
        if self.mode is LocatorMode.ENTRY_GOID:
            match = _ENTRY.fullmatch(volume_path.rsplit("/", 1)[1])
            if match is None:
                raise IntegrityError(f"namespace entry {volume_path!r} carries no GOID")
            return Locator(int(match.group(1), 16))
        raw = self.files.read(volume_path, 0, REDIRECTOR_BYTES)
        if len(raw) != REDIRECTOR_BYTES:
            raise IntegrityError(f"redirector {volume_path!r} is truncated")
        magic, has_hint, goid, location_id, policy_id = REDIRECTOR.unpack(raw)
        if magic != REDIRECTOR_MAGIC:
            raise IntegrityError(f"redirector {volume_path!r} is damaged")
        if has_hint:
            return Locator(goid, location_id, policy_id)
        return Locator(goid)

    def _redirector(self, locator: Locator) -> bytes:
        if self.mode is LocatorMode.REDIRECTOR_HANDLE and locator.location_id is not None:
            return REDIRECTOR.pack(
                REDIRECTOR_MAGIC, 1, locator.goid, locator.location_id, locator.policy_id or 0
            )
        return REDIRECTOR.pack(REDIRECTOR_MAGIC, 0, locator.goid, 0, 0)

    # -- operations ---------------------------------------------------------------------------

    def lookup(self, path: str) -> Locator:
        """The locator of the object at ``path`` (NAMESPACE_LOOKUP)."""
        return self._read_locator(self._object_path(path))

    def link(self, path: str, locator: Locator) -> None:
        """Create the entry (and redirector) of a new object at ``path`` (NAMESPACE_LINK)."""
        parts = split_path(path)
        if not parts:
            raise AlreadyExistsError("/ exists")
        parent = self._dir_path(parts[:-1])
        name = parts[-1]
        if self._name_taken(parent, name):
            raise AlreadyExistsError(f"{normalise(path)} exists")
        if self.mode is LocatorMode.ENTRY_GOID:
            self.files.create(f"{parent}/{locator.goid:016x}={name}")
            return
        target = f"{parent}/{name}"
        self.files.create(target)
        self.files.write(target, 0, self._redirector(locator))

    def relink(self, path: str, locator: Locator) -> None:
        """Refresh the hint of the object at ``path`` (same GOID; redirector-handle mode)."""
        volume_path = self._object_path(path)
        if self._read_locator(volume_path).goid != locator.goid:
            raise StateError(f"{normalise(path)} now names another object")
        if self.mode is not LocatorMode.ENTRY_GOID:
            self.files.write(volume_path, 0, self._redirector(locator))

    def unlink(self, path: str) -> Locator:
        """Remove the object entry at ``path`` and return its locator (NAMESPACE_UNLINK)."""
        volume_path = self._object_path(path)
        locator = self._read_locator(volume_path)
        self.files.unlink(volume_path)
        return locator

    def mkdir(self, path: str) -> None:
        """Create directory ``path``; its parent must exist."""
        parts = split_path(path)
        if not parts:
            raise AlreadyExistsError("/ exists")
        parent = self._dir_path(parts[:-1])
        if self._name_taken(parent, parts[-1]):
            raise AlreadyExistsError(f"{normalise(path)} exists")
        prefix = "+" if self.mode is LocatorMode.ENTRY_GOID else ""
        self.files.mkdir(f"{parent}/{prefix}{parts[-1]}")

    def rmdir(self, path: str) -> None:
        """Remove the empty directory ``path``."""
        parts = split_path(path)
        if not parts:
            raise InvalidArgumentError("the root directory cannot be removed")
        volume_path = self._dir_path(parts)
        if self.files.readdir(volume_path):
            raise DirectoryNotEmptyError(f"directory {normalise(path)} is not empty")
        self.files.rmdir(volume_path)

    def readdir(self, path: str) -> list[Entry]:
        """The entries of directory ``path``, sorted by name."""
        volume_path = self._dir_path(split_path(path))
        entries = []
        for raw in self.files.readdir(volume_path):
            if self.mode is LocatorMode.ENTRY_GOID:
                if raw.startswith("+"):
                    entries.append(Entry(raw[1:], True, None))
                else:
                    entries.append(Entry(raw[17:], False, int(raw[:16], 16)))
                continue
            child = f"{volume_path}/{raw}"
            if self.files.stat(child).is_dir:
                entries.append(Entry(raw, True, None))
            else:
                entries.append(Entry(raw, False, self._read_locator(child).goid))
        return sorted(entries, key=lambda e: e.name)

    def stat(self, path: str) -> Entry:
        """The entry at ``path`` (the root is a directory named ``/``)."""
        parts = split_path(path)
        if not parts:
            return Entry("/", True, None)
        parent = self._dir_path(parts[:-1])
        found = self._find_object(parent, parts[-1])
        if found is not None:
            return Entry(parts[-1], False, self._read_locator(found).goid)
        if self._name_taken(parent, parts[-1]):
            return Entry(parts[-1], True, None)
        raise NotFoundError(f"no such file or directory: {normalise(path)}")

    def rename(self, source: str, target: str) -> None:
        """Move the entry at ``source`` to ``target`` (which must not exist), atomically in the
        namespace volume; objects keep their GOID and redirector."""
        src, dst = split_path(source), split_path(target)
        if not src or not dst:
            raise InvalidArgumentError("the root directory cannot be renamed or replaced")
        src_parent = self._dir_path(src[:-1])
        dst_parent = self._dir_path(dst[:-1])
        entry = self.stat(source)
        if entry.is_dir and is_within(normalise(target), normalise(source)):
            raise InvalidArgumentError(f"cannot move {normalise(source)} into itself")
        if self._name_taken(dst_parent, dst[-1]):
            raise AlreadyExistsError(f"{normalise(target)} exists")
        if self.mode is LocatorMode.ENTRY_GOID:
            if entry.is_dir:
                old, new = f"{src_parent}/+{src[-1]}", f"{dst_parent}/+{dst[-1]}"
            else:
                old = f"{src_parent}/{entry.goid:016x}={src[-1]}"
                new = f"{dst_parent}/{entry.goid:016x}={dst[-1]}"
        else:
            old, new = f"{src_parent}/{src[-1]}", f"{dst_parent}/{dst[-1]}"
        self.files.rename(old, new)

    def walk(self) -> list[tuple[str, int]]:
        """Every object in the tree as ``(path, GOID)``, sorted by path."""
        found: list[tuple[str, int]] = []
        stack = ["/"]
        while stack:
            directory = stack.pop()
            for entry in self.readdir(directory):
                child = directory.rstrip("/") + "/" + entry.name
                if entry.is_dir:
                    stack.append(child)
                elif entry.goid is not None:
                    found.append((child, entry.goid))
        return sorted(found)

    # -- the D-module's service ---------------------------------------------------------------

    def serve(self, method: str, args: Mapping[str, Any], payload: bytes) -> Reply:
        """Execute one CF request on the namespace."""

        def locator_arg(a: Mapping[str, Any]) -> Locator:
            loc, pol = a.get("location_id"), a.get("policy_id")
            return Locator(
                int_arg(a, "goid"),
                None if loc is None else int_arg(a, "location_id", 0, MAX_U32),
                None if pol is None else int_arg(a, "policy_id", 0, MAX_U32),
            )

        def lookup(a: Mapping[str, Any], p: bytes) -> Reply:
            return self.lookup(str_arg(a, "path")).to_json(), b""

        def link(a: Mapping[str, Any], p: bytes) -> Reply:
            self.link(str_arg(a, "path"), locator_arg(a))
            return None, b""

        def relink(a: Mapping[str, Any], p: bytes) -> Reply:
            self.relink(str_arg(a, "path"), locator_arg(a))
            return None, b""

        def unlink(a: Mapping[str, Any], p: bytes) -> Reply:
            return self.unlink(str_arg(a, "path")).to_json(), b""

        def mkdir(a: Mapping[str, Any], p: bytes) -> Reply:
            self.mkdir(str_arg(a, "path"))
            return None, b""

        def rmdir(a: Mapping[str, Any], p: bytes) -> Reply:
            self.rmdir(str_arg(a, "path"))
            return None, b""

        def readdir(a: Mapping[str, Any], p: bytes) -> Reply:
            return [e.to_json() for e in self.readdir(str_arg(a, "path"))], b""

        def stat(a: Mapping[str, Any], p: bytes) -> Reply:
            return self.stat(str_arg(a, "path")).to_json(), b""

        def rename(a: Mapping[str, Any], p: bytes) -> Reply:
            self.rename(str_arg(a, "source"), str_arg(a, "target"))
            return None, b""

        def walk(a: Mapping[str, Any], p: bytes) -> Reply:
            return [[path, goid] for path, goid in self.walk()], b""

        def checkpoint(a: Mapping[str, Any], p: bytes) -> Reply:
            self.files.checkpoint()
            return None, b""

        table = {
            "lookup": lookup,
            "link": link,
            "relink": relink,
            "unlink": unlink,
            "mkdir": mkdir,
            "rmdir": rmdir,
            "readdir": readdir,
            "stat": stat,
            "rename": rename,
            "walk": walk,
            "checkpoint": checkpoint,
        }
        return dispatch(table, method, args, payload, "NS")
