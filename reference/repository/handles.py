"""Multilevel object handles: the identity of a data object and a hint of where it lives.

The seed's content repository hands every created data object a *multilevel object handle*. Its
first level is the **global object ID** (GOID), a system-generated number permanently attached to
the object; its second level is a *hint*: the **location ID** (here: the number ``k`` of the data
constituent ``DC<k>`` that holds the object) and the **policy ID** of the object. A client that
keeps the handle takes the *fast path* (straight to the data constituent named by the location
ID); when the object has moved, the location is *stale*, the server takes the *slow path* through
the object location store and returns a fresh handle with the same GOID.

A GOID is 64 bits: the upper 16 name the repository (one expandable volume, numbered by the
cluster), the lower 48 are a serial allocated in ranges from the replicated database, so GOIDs are
unique cluster-wide and never reused. A handle travels as text,
``<goid:16 hex>-<location:8 hex>-<policy:8 hex>-<mac:16 hex>``, whose MAC (keyed BLAKE2b over the
three fields, with the repository's secret key) lets the server detect forged or altered handles
before it touches any volume.

Uses: the standard library (hashlib, hmac) and :mod:`xvol.errors`.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

from xvol.errors import InvalidArgumentError, NotFoundError, PermissionDeniedError

REPOSITORY_BITS = 16
SERIAL_BITS = 48
MAX_REPOSITORY = (1 << REPOSITORY_BITS) - 1
MAX_SERIAL = (1 << SERIAL_BITS) - 1
MAX_U32 = (1 << 32) - 1
MAC_BYTES = 8


class MalformedHandleError(InvalidArgumentError):
    """A handle or GOID is not well formed (wrong length, characters or field range)."""


class ForgedHandleError(PermissionDeniedError):
    """A handle's MAC does not match: it was forged or altered, and is refused."""


class ForeignObjectError(PermissionDeniedError):
    """A handle or GOID belongs to another repository (another vserver's expandable volume)."""


class UnknownObjectError(NotFoundError):
    """No object with this GOID exists (never created, or deleted)."""


def make_goid(repository: int, serial: int) -> int:
    """The GOID of object ``serial`` of ``repository``; both must be in range."""
    if not 1 <= repository <= MAX_REPOSITORY:
        raise InvalidArgumentError(f"repository number must be in 1..{MAX_REPOSITORY}")
    if not 1 <= serial <= MAX_SERIAL:
        raise InvalidArgumentError(f"object serial must be in 1..{MAX_SERIAL}")
    return (repository << SERIAL_BITS) | serial


def goid_repository(goid: int) -> int:
    """The repository number a GOID was allocated in."""
    return goid >> SERIAL_BITS


def goid_serial(goid: int) -> int:
    """The per-repository serial of a GOID."""
    return goid & MAX_SERIAL


def format_goid(goid: int) -> str:
    """A GOID as the 16 hex digits that URLs and traces use."""
    return f"{goid:016x}"


_GOID_TEXT = re.compile(r"[0-9a-f]{16}")


def parse_goid(text: str) -> int:
    """The GOID spelled by ``text`` (16 lower-case hex digits); :class:`MalformedHandleError`
    otherwise."""
    if not isinstance(text, str) or not _GOID_TEXT.fullmatch(text):
        raise MalformedHandleError(f"a global object ID is 16 lower-case hex digits, got {text!r}")
    goid = int(text, 16)
    if goid_serial(goid) == 0 or goid_repository(goid) == 0:
        raise MalformedHandleError(f"{text!r} is not a valid global object ID")
    return goid


@dataclass(frozen=True, order=True)
class ObjectHandle:
    """The seed's multilevel object handle: GOID (first level), location ID and policy ID (the
    hint). Invariant: all three fields are in range (checked on construction); the GOID never
    changes for the life of the object, the location ID changes when the object migrates."""

    goid: int
    location_id: int
    policy_id: int

    def __post_init__(self) -> None:
        if not isinstance(self.goid, int) or not 0 < self.goid < (1 << 64):
            raise MalformedHandleError(f"GOID out of range: {self.goid!r}")
        if goid_repository(self.goid) == 0 or goid_serial(self.goid) == 0:
            raise MalformedHandleError(f"GOID {self.goid:#x} has an empty repository or serial")
        for name in ("location_id", "policy_id"):
            value = getattr(self, name)
            if not isinstance(value, int) or not 0 <= value <= MAX_U32:
                raise MalformedHandleError(f"{name} out of range: {value!r}")

    @property
    def repository(self) -> int:
        """The repository number carried in the GOID."""
        return goid_repository(self.goid)

    def with_location(self, location_id: int, policy_id: int) -> ObjectHandle:
        """The same object's handle with a fresh hint."""
        return ObjectHandle(self.goid, location_id, policy_id)


_HANDLE_TEXT = re.compile(r"([0-9a-f]{16})-([0-9a-f]{8})-([0-9a-f]{8})-([0-9a-f]{16})")


class HandleCodec:
    """Encodes and checks handles of one repository with its secret key.

    Life cycle: made once per expandable volume from the key the replicated database keeps for
    it; immutable afterwards. ``decode`` refuses, in this order: text that is not a handle
    (:class:`MalformedHandleError`), a handle of another repository
    (:class:`ForeignObjectError`), and a handle whose MAC does not match
    (:class:`ForgedHandleError`).
    """

    def __init__(self, repository: int, key: bytes) -> None:
        if not 1 <= repository <= MAX_REPOSITORY:
            raise InvalidArgumentError(f"repository number must be in 1..{MAX_REPOSITORY}")
        if len(key) < 16:
            raise InvalidArgumentError("a handle key needs at least 16 bytes")
        self.repository = repository
        self._key = bytes(key)

    @staticmethod
    def derive_key(seed: int, repository: int) -> bytes:
        """A deterministic 32-byte key for ``repository`` in a cluster made with ``seed``."""
        material = f"xvol-handle-key:{seed}:{repository}".encode()
        return hashlib.blake2b(material, digest_size=32).digest()

    def _mac(self, goid: int, location_id: int, policy_id: int) -> str:
        body = f"{goid:016x}-{location_id:08x}-{policy_id:08x}".encode()
        return hashlib.blake2b(body, key=self._key, digest_size=MAC_BYTES).hexdigest()

    def encode(self, handle: ObjectHandle) -> str:
        """The handle as text with its MAC; the handle must belong to this repository."""
        self.check_goid(handle.goid)
        mac = self._mac(handle.goid, handle.location_id, handle.policy_id)
        return f"{handle.goid:016x}-{handle.location_id:08x}-{handle.policy_id:08x}-{mac}"

    def decode(self, text: str) -> ObjectHandle:
        """The handle spelled by ``text``, after checking its form, repository and MAC."""
        match = _HANDLE_TEXT.fullmatch(text) if isinstance(text, str) else None
        if match is None:
            raise MalformedHandleError(
                "an object handle is <goid:16 hex>-<location:8 hex>-<policy:8 hex>-<mac:16 hex>"
            )
        goid, location_id, policy_id = (int(match.group(i), 16) for i in (1, 2, 3))
        handle = ObjectHandle(goid, location_id, policy_id)
        self.check_goid(goid)
        if not hmac.compare_digest(self._mac(goid, location_id, policy_id), match.group(4)):
            raise ForgedHandleError("object handle MAC does not match: forged or altered handle")
        return handle

    def check_goid(self, goid: int) -> None:
        """Raise :class:`ForeignObjectError` unless ``goid`` was allocated in this repository."""
        if goid_repository(goid) != self.repository:
            raise ForeignObjectError(
                f"object {goid:016x} belongs to another repository, not to this expandable volume"
            )
