"""Data constituents: objects by GOID in bucket files, stale locations reported as such, and the
record that names the constituent survives reopening from blocks."""

from __future__ import annotations

import pytest

from xvol.errors import AlreadyExistsError, InvalidArgumentError, StateError
from xvol.reference.repository.constituent import (
    DataConstituent,
    StaleLocationError,
    ensure_empty,
    object_path,
)
from xvol.reference.repository.files import VolumeFiles
from xvol.reference.repository.handles import make_goid
from xvol.reference.storage.aggregate import Aggregate
from xvol.reference.volume.volume import Volume


def _dc() -> tuple[DataConstituent, Aggregate]:
    aggregate = Aggregate.create_in_memory("4", 3, 1024)
    files = VolumeFiles(Volume.create(aggregate.create_space("dc", 256), "dc"))
    return DataConstituent.format(files, 3, 5), aggregate


def test_objects_are_stored_read_written_truncated_and_removed_by_goid() -> None:
    dc, _ = _dc()
    goid = make_goid(5, 42)
    dc.put(goid, b"hello")
    assert dc.read(goid, 0, 100) == b"hello" and dc.size(goid) == 5
    assert dc.write(goid, 7, b"!") == 8
    assert dc.read(goid, 4, 10) == b"o\x00\x00!"
    dc.truncate(goid, 2)
    assert dc.read(goid, 0, 10) == b"he" and dc.read(goid, 5, 1) == b""
    dc.replace(goid, b"HELLO!")
    assert dc.read(goid, 0, 10) == b"HELLO!"
    dc.replace(goid, b"he")
    assert dc.goids() == [goid] and dc.contains(goid)
    assert object_path(goid).endswith(f"{goid:016x}")
    with pytest.raises(AlreadyExistsError):
        dc.put(goid, b"again")
    dc.remove(goid)
    with pytest.raises(StaleLocationError):
        dc.read(goid, 0, 1)
    with pytest.raises(InvalidArgumentError):
        dc.put(make_goid(6, 1), b"other repository")


def test_serve_checks_arguments_and_reopening_finds_the_constituent() -> None:
    dc, aggregate = _dc()
    goid = make_goid(5, 1)
    assert dc.serve("put", {"goid": goid}, b"abc") == (3, b"")
    assert dc.serve("read", {"goid": goid, "offset": 1, "size": 5}, b"") == (3, b"bc")
    with pytest.raises(InvalidArgumentError):
        dc.serve("read", {"goid": goid, "offset": -1, "size": 5}, b"")
    with pytest.raises(InvalidArgumentError):
        dc.serve("explode", {}, b"")
    dc.files.checkpoint()
    again = DataConstituent.open(VolumeFiles(Volume.open(aggregate.space("dc"))))
    assert (again.number, again.repository, again.goids()) == (3, 5, [goid])
    with pytest.raises(StateError):
        ensure_empty(again.goids(), 3)
    ensure_empty([], 3)
