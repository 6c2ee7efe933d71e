"""The file interface the repository needs from a volume, and the service-call convention.

Every member of an expandable volume (namespace volume, object location store, data constituent)
keeps *all* of its state as files in one write-anywhere volume
(:mod:`xvol.reference.volume`), so that a block-level copy of the volume reproduces it. This
module names the handful of file operations the repository uses (:class:`FileSystem`) and adapts
the volume layer's :class:`~xvol.reference.volume.Volume` to them (:class:`VolumeFiles`), so
that the stores above read as plain file-system code.

It also fixes how a member store is *called*: :class:`MemberService` is the D-module-side
object whose ``serve(method, args, payload)`` executes one request (this is what travels as a CF
message in the cluster), and :class:`MemberAccess` is what an expandable volume uses to reach
its members by name (``NS``, ``OLS``, ``DC<k>``): the cluster implements it over the CF
protocol; :class:`LocalMembers` implements it by direct calls for single-process use and tests.

Uses: the volume layer, :mod:`xvol.errors`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from xvol.errors import InvalidArgumentError, NotFoundError
from xvol.reference.storage.block import BLOCK_SIZE
from xvol.reference.volume.layout import FileType
from xvol.reference.volume.volume import Volume

Reply = tuple[Any, bytes]
"""What a member call returns: a JSON-able result and a binary payload."""


@dataclass(frozen=True)
class FileStat:
    """What the repository needs to know about a file or directory."""

    is_dir: bool
    size: int


class FileSystem(Protocol):
    """The file operations of one volume that the member stores use. Paths are absolute.
    Contract: each raises a typed :class:`xvol.errors.XvolError` on failure and then has
    changed nothing."""

    def mkdir(self, path: str) -> None: ...
    def create(self, path: str) -> None: ...
    def write(self, path: str, offset: int, data: bytes) -> None: ...
    def read(self, path: str, offset: int, size: int) -> bytes: ...
    def truncate(self, path: str, size: int) -> None: ...
    def unlink(self, path: str) -> None: ...
    def rmdir(self, path: str) -> None: ...
    def rename(self, source: str, target: str) -> None: ...
    def readdir(self, path: str) -> list[str]: ...
    def stat(self, path: str) -> FileStat: ...
    def exists(self, path: str) -> bool: ...
    def free_bytes(self) -> int: ...
    def checkpoint(self) -> None: ...


class VolumeFiles:
    """:class:`FileSystem` over a write-anywhere :class:`Volume` (as root). A checkpoint is a
    consistency point: after it, the volume's blocks hold everything done so far."""

    def __init__(self, volume: Volume) -> None:
        self.volume = volume

    def mkdir(self, path: str) -> None:
        self.volume.mkdir(path)

    def create(self, path: str) -> None:
        self.volume.create_file(path)

    def write(self, path: str, offset: int, data: bytes) -> None:
        self.volume.write(path, offset, bytes(data))

    def read(self, path: str, offset: int, size: int) -> bytes:
        return self.volume.read(path, offset, size)

    def truncate(self, path: str, size: int) -> None:
        self.volume.truncate(path, size)

    def unlink(self, path: str) -> None:
        self.volume.unlink(path)

    def rmdir(self, path: str) -> None:
        self.volume.rmdir(path)

    def rename(self, source: str, target: str) -> None:
        self.volume.rename(source, target)

    def readdir(self, path: str) -> list[str]:
        return [entry.name for entry in self.volume.readdir(path)]

    def stat(self, path: str) -> FileStat:
        info = self.volume.stat(path)
        return FileStat(info.type == FileType.DIRECTORY, info.size)

    def exists(self, path: str) -> bool:
        return self.volume.exists(path)

    def free_bytes(self) -> int:
        """Free bytes, counting blocks written since the last consistency point as used."""
        return max(0, self.volume.usage().free - self.volume.dirty_blocks) * BLOCK_SIZE

    def checkpoint(self) -> None:
        self.volume.consistency_point()


class MemberService(Protocol):
    """A member store as its D-module serves it. ``mutating`` names the methods that change the
    store: the D-module commits a consistency point after each of them, so an acknowledged step
    is in the volume's blocks (what a node restart or a block-level copy sees)."""

    mutating: frozenset[str]

    def serve(self, method: str, args: Mapping[str, Any], payload: bytes) -> Reply:
        """Execute one request; typed error and nothing changed on failure."""
        ...


class MemberAccess(Protocol):
    """How an expandable volume reaches its member volumes by name."""

    def call(
        self, volume: str, method: str, args: Mapping[str, Any], payload: bytes = b""
    ) -> Reply:
        """Run ``method`` on member ``volume``; :class:`xvol.errors.UnavailableError` if the
        node that owns it does not answer."""
        ...

    def ping(self, volumes: Sequence[str]) -> None:
        """Raise :class:`xvol.errors.UnavailableError` unless every member in ``volumes``
        answers (one message per node that owns any of them)."""
        ...


class LocalMembers:
    """:class:`MemberAccess` by direct calls to services in this process."""

    def __init__(self, services: Mapping[str, MemberService] | None = None) -> None:
        self.services: dict[str, MemberService] = dict(services or {})
        self.calls = 0

    def call(
        self, volume: str, method: str, args: Mapping[str, Any], payload: bytes = b""
    ) -> Reply:
        self.calls += 1
        return self._service(volume).serve(method, args, payload)

    def ping(self, volumes: Sequence[str]) -> None:
        for volume in volumes:
            self._service(volume)

    def _service(self, volume: str) -> MemberService:
        try:
            return self.services[volume]
        except KeyError:
            raise NotFoundError(f"no member volume {volume!r}") from None


def dispatch(
    table: Mapping[str, Callable[[Mapping[str, Any], bytes], Reply]],
    method: str,
    args: Mapping[str, Any],
    payload: bytes,
    what: str,
) -> Reply:
    """Run ``table[method]``; :class:`InvalidArgumentError` for an unknown method or bad args."""
    try:
        handler = table[method]
    except KeyError:
        raise InvalidArgumentError(f"{what} has no method {method!r}") from None
    try:
        return handler(args, payload)
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, InvalidArgumentError | NotFoundError):
            raise
        raise InvalidArgumentError(f"bad arguments for {what}.{method}: {exc!r}") from exc


def int_arg(args: Mapping[str, Any], name: str, low: int = 0, high: int = (1 << 64) - 1) -> int:
    """The integer argument ``name`` in ``low..high``."""
    value = args[name]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidArgumentError(f"argument {name} must be an integer in {low}..{high}")
    return value


def str_arg(args: Mapping[str, Any], name: str) -> str:
    """The string argument ``name``."""
    value = args[name]
    if not isinstance(value, str):
        raise InvalidArgumentError(f"argument {name} must be a string")
    return value
