"""The object location store: one fixed-size record per GOID in a dense table file, insert /
lookup / update / remove / scan, and the table survives reopening from blocks."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xvol.errors import AlreadyExistsError, InvalidArgumentError
from xvol.reference.repository.files import VolumeFiles
from xvol.reference.repository.handles import UnknownObjectError, make_goid
from xvol.reference.repository.ols import RECORD_BYTES, TABLE, ObjectLocationStore
from xvol.reference.storage.aggregate import Aggregate
from xvol.reference.volume.volume import Volume


def _ols() -> tuple[ObjectLocationStore, Aggregate]:
    aggregate = Aggregate.create_in_memory("4", 3, 1024)
    files = VolumeFiles(Volume.create(aggregate.create_space("ols", 256), "ols"))
    return ObjectLocationStore.format(files, 9), aggregate


def test_records_live_at_their_serials_offset_and_are_updated_in_place() -> None:
    ols, aggregate = _ols()
    goid = make_goid(9, 100)
    assert ols.insert(goid, 2, 7).generation == 1
    assert ols.files.stat(TABLE).size == 101 * RECORD_BYTES
    with pytest.raises(AlreadyExistsError):
        ols.insert(goid, 3, 7)
    assert ols.update(goid, 3, 7, expect_location=2).generation == 2
    with pytest.raises(InvalidArgumentError):
        ols.update(goid, 1, 7, expect_location=2)
    assert (ols.lookup(goid).location_id, ols.lookup(goid).policy_id) == (3, 7)
    ols.files.checkpoint()
    again = ObjectLocationStore.open(VolumeFiles(Volume.open(aggregate.space("ols"))))
    assert again.repository == 9 and again.lookup(goid).location_id == 3
    assert ols.remove(goid).location_id == 3
    with pytest.raises(UnknownObjectError):
        ols.lookup(goid)
    with pytest.raises(InvalidArgumentError):
        ols.lookup(make_goid(8, 1))


@settings(max_examples=25, deadline=None)
@given(
    st.dictionaries(
        st.integers(1, 3000), st.tuples(st.integers(1, 9), st.integers(0, 3)), max_size=30
    )
)
def test_scan_returns_exactly_the_live_records(records: dict[int, tuple[int, int]]) -> None:
    ols, _ = _ols()
    for serial, (location, policy) in records.items():
        ols.insert(make_goid(9, serial), location, policy)
    removed = sorted(records)[::3]
    for serial in removed:
        ols.remove(make_goid(9, serial))
    scanned = {(loc.goid, loc.location_id, loc.policy_id) for loc in ols.scan()}
    assert scanned == {
        (make_goid(9, s), loc, pol) for s, (loc, pol) in records.items() if s not in removed
    }
