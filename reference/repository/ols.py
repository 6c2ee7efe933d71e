"""The object location store (OLS): global object ID -> location ID and policy ID.

The seed's object location subsystem "stores and provides valid location IDs and other
information such as policy IDs of data objects based on their global object IDs", reliably, in
an OLS store volume; the slow path consults it whenever a client has only a GOID or a stale
location. Because the GOIDs of one repository are serials handed out in increasing ranges, the
mapping is stored *compactly* as one dense table file in the OLS volume, ``/ols.table``:

* record 0 is the header: the magic word ``XOLS``, a format version and the repository number;
* record ``s`` (``s >= 1``) describes the object whose GOID has serial ``s``: a used byte,
  the location ID (the data constituent number ``k``), the policy ID and a generation that
  counts the record's updates. An all-zero record is a free slot (never created, or removed).

Each record is :data:`RECORD_BYTES` bytes at offset ``s * RECORD_BYTES``, so a lookup, insert,
update or remove reads or writes one record of one block. Invariant: a used record exists for a
GOID exactly while the object exists (between the create's OLS insert and the delete's OLS
remove), and its location names the data constituent that holds the object's bytes.

Uses: the file interface of :mod:`xvol.reference.repository.files`, handles, errors.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from xvol.errors import AlreadyExistsError, IntegrityError, InvalidArgumentError, NotFoundError
from xvol.reference.repository.files import FileSystem, Reply, dispatch, int_arg
from xvol.reference.repository.handles import (
    MAX_U32,
    UnknownObjectError,
    goid_repository,
    goid_serial,
    make_goid,
)

TABLE = "/ols.table"
RECORD = struct.Struct(">B3xIII")  # used, location ID, policy ID, generation
RECORD_BYTES = RECORD.size
HEADER = struct.Struct(">4sII")  # magic, format version, repository
MAGIC = b"XOLS"
SCAN_CHUNK = 4096 * 16


@dataclass(frozen=True)
class Location:
    """Where an object lives and by which policy: the OLS's answer for one GOID."""

    goid: int
    location_id: int
    policy_id: int
    generation: int

    def to_json(self) -> dict[str, int]:
        return {
            "goid": self.goid,
            "location_id": self.location_id,
            "policy_id": self.policy_id,
            "generation": self.generation,
        }

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> Location:
        return Location(
            int(data["goid"]),
            int(data["location_id"]),
            int(data["policy_id"]),
            int(data["generation"]),
        )


class ObjectLocationStore:
    """The OLS table of one repository over the OLS volume (see the module text)."""

    mutating = frozenset({"insert", "update", "remove"})

    def __init__(self, files: FileSystem, repository: int) -> None:
        self.files = files
        self.repository = repository

    @classmethod
    def format(cls, files: FileSystem, repository: int) -> ObjectLocationStore:
        """Lay out an empty OLS table on an empty volume."""
        if files.exists(TABLE):
            raise AlreadyExistsError("this volume already holds an object location store")
        files.create(TABLE)
        header = HEADER.pack(MAGIC, 1, repository).ljust(RECORD_BYTES, b"\x00")
        files.write(TABLE, 0, header)
        files.checkpoint()
        return cls(files, repository)

    @classmethod
    def open(cls, files: FileSystem) -> ObjectLocationStore:
        """The OLS laid out on ``files`` before."""
        if not files.exists(TABLE):
            raise NotFoundError("this volume holds no object location store")
        magic, _version, repository = HEADER.unpack(files.read(TABLE, 0, HEADER.size))
        if magic != MAGIC:
            raise IntegrityError("the OLS table header is damaged")
        return cls(files, repository)

    # -- records ------------------------------------------------------------------------------

    def _offset(self, goid: int) -> int:
        if goid_repository(goid) != self.repository or goid_serial(goid) == 0:
            raise InvalidArgumentError(f"object {goid:016x} is not of repository {self.repository}")
        return goid_serial(goid) * RECORD_BYTES

    def _read(self, goid: int) -> tuple[int, int, int, int]:
        raw = self.files.read(TABLE, self._offset(goid), RECORD_BYTES)
        if len(raw) < RECORD_BYTES:
            return (0, 0, 0, 0)
        used, location_id, policy_id, generation = RECORD.unpack(raw)
        return used, location_id, policy_id, generation

    def _write(self, goid: int, location_id: int, policy_id: int, generation: int) -> None:
        self.files.write(
            TABLE, self._offset(goid), RECORD.pack(1, location_id, policy_id, generation)
        )

    def lookup(self, goid: int) -> Location:
        """The location of ``goid``; :class:`UnknownObjectError` if it has none."""
        used, location_id, policy_id, generation = self._read(goid)
        if not used:
            raise UnknownObjectError(f"no object with global object ID {goid:016x}")
        return Location(goid, location_id, policy_id, generation)

    def insert(self, goid: int, location_id: int, policy_id: int) -> Location:
        """Record a new object's location; :class:`AlreadyExistsError` if it has one."""
        _check_u32(location_id, policy_id)
        if self._read(goid)[0]:
            raise AlreadyExistsError(f"object {goid:016x} already has a location")
        self._write(goid, location_id, policy_id, 1)
        return Location(goid, location_id, policy_id, 1)

    def update(
        self, goid: int, location_id: int, policy_id: int, expect_location: int | None = None
    ) -> Location:
        """Point ``goid`` at a new location (a migration's OLS update). With
        ``expect_location`` the record must still name that location, else
        :class:`InvalidArgumentError` and nothing changes (a conditional update)."""
        _check_u32(location_id, policy_id)
        current = self.lookup(goid)
        if expect_location is not None and current.location_id != expect_location:
            raise InvalidArgumentError(
                f"object {goid:016x} is on DC{current.location_id}, not DC{expect_location}"
            )
        self._write(goid, location_id, policy_id, current.generation + 1)
        return Location(goid, location_id, policy_id, current.generation + 1)

    def remove(self, goid: int) -> Location:
        """Forget ``goid``; returns the location it had."""
        current = self.lookup(goid)
        self.files.write(TABLE, self._offset(goid), bytes(RECORD_BYTES))
        return current

    def scan(self) -> list[Location]:
        """Every used record, in GOID order."""
        size = self.files.stat(TABLE).size
        found: list[Location] = []
        offset = RECORD_BYTES
        while offset < size:
            chunk = self.files.read(TABLE, offset, min(SCAN_CHUNK, size - offset))
            for i in range(0, len(chunk) - RECORD_BYTES + 1, RECORD_BYTES):
                used, location_id, policy_id, generation = RECORD.unpack_from(chunk, i)
                if used:
                    serial = (offset + i) // RECORD_BYTES
                    goid = make_goid(self.repository, serial)
                    found.append(Location(goid, location_id, policy_id, generation))
            offset += len(chunk)
            if not chunk:
                break
        return found

    # -- the D-module's service ---------------------------------------------------------------

    def serve(self, method: str, args: Mapping[str, Any], payload: bytes) -> Reply:
        """Execute one CF request on the OLS."""

        def lookup(a: Mapping[str, Any], p: bytes) -> Reply:
            return self.lookup(int_arg(a, "goid")).to_json(), b""

        def insert(a: Mapping[str, Any], p: bytes) -> Reply:
            loc = self.insert(
                int_arg(a, "goid"),
                int_arg(a, "location_id", 0, MAX_U32),
                int_arg(a, "policy_id", 0, MAX_U32),
            )
            return loc.to_json(), b""

        def update(a: Mapping[str, Any], p: bytes) -> Reply:
            expect = a.get("expect_location")
            loc = self.update(
                int_arg(a, "goid"),
                int_arg(a, "location_id", 0, MAX_U32),
                int_arg(a, "policy_id", 0, MAX_U32),
                None if expect is None else int_arg(a, "expect_location", 0, MAX_U32),
            )
            return loc.to_json(), b""

        def remove(a: Mapping[str, Any], p: bytes) -> Reply:
            return self.remove(int_arg(a, "goid")).to_json(), b""

        def scan(a: Mapping[str, Any], p: bytes) -> Reply:
            return [loc.to_json() for loc in self.scan()], b""

        def checkpoint(a: Mapping[str, Any], p: bytes) -> Reply:
            self.files.checkpoint()
            return None, b""

        table = {
            "lookup": lookup,
            "insert": insert,
            "update": update,
            "remove": remove,
            "scan": scan,
            "checkpoint": checkpoint,
        }
        return dispatch(table, method, args, payload, "OLS")


def _check_u32(*values: int) -> None:
    if any(not 0 <= v <= MAX_U32 for v in values):
        raise InvalidArgumentError("location and policy IDs are 32-bit unsigned integers")
