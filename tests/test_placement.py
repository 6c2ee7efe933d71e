"""Placement: round-robin spreads by GOID, free space picks the emptiest constituent, policies
restrict the candidates, drained constituents are never chosen."""

from __future__ import annotations

import pytest

from xvol.errors import InvalidArgumentError, OutOfSpaceError, StateError
from xvol.reference.repository.handles import make_goid
from xvol.reference.repository.placement import Placement, PlacementStrategy


def test_round_robin_spreads_evenly_and_deterministically() -> None:
    placement = Placement()
    chosen = [placement.choose(make_goid(1, s), 0, [1, 2, 3], lambda k: 0) for s in range(1, 10)]
    assert sorted(chosen) == [1, 1, 1, 2, 2, 2, 3, 3, 3]
    again = [placement.choose(make_goid(1, s), 0, [1, 2, 3], lambda k: 0) for s in range(1, 10)]
    assert chosen == again


def test_free_space_picks_the_emptiest_and_refuses_when_all_are_full() -> None:
    placement = Placement(PlacementStrategy.FREE_SPACE)
    free = {1: 10, 2: 30, 3: 30}
    assert placement.choose(make_goid(1, 1), 0, [1, 2, 3], free.__getitem__) == 2
    assert placement.choose(make_goid(1, 1), 0, [1, 2, 3], free.__getitem__, exclude=2) == 3
    with pytest.raises(OutOfSpaceError):
        placement.choose(make_goid(1, 1), 0, [1, 2], lambda k: 0)


def test_policies_restrict_candidates() -> None:
    placement = Placement(PlacementStrategy.BY_POLICY, {4: [2, 3]})
    assert {placement.choose(make_goid(1, s), 4, [1, 2, 3], lambda k: 1) for s in range(1, 9)} == {
        2,
        3,
    }
    with pytest.raises(InvalidArgumentError):
        placement.choose(make_goid(1, 1), 5, [1, 2, 3], lambda k: 1)
    with pytest.raises(StateError):
        placement.choose(make_goid(1, 1), 4, [1], lambda k: 1)
    with pytest.raises(StateError):
        Placement().choose(make_goid(1, 1), 0, [], lambda k: 1)
    with pytest.raises(InvalidArgumentError):
        Placement("nearest")
