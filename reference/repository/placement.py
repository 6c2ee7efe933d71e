"""Placement policies: which data constituent a new (or migrating) object goes to.

The seed's management subsystem places and migrates data objects by policy ("which logical
container a given data object should be placed in, migrated from or to"); every object carries a
policy ID in its handle and OLS record. A :class:`Placement` chooses among the data constituents
that accept new objects (not those being drained for removal):

* ``round-robin``: spread objects evenly, by GOID serial (stateless, so the same GOIDs land on
  the same constituents in every run);
* ``free-space``: the constituent with the most free bytes (ties to the lowest number);
* ``by-policy``: the policy table maps a policy ID to the constituents allowed for it (round-robin
  within them); a policy ID the table does not know is refused.

In every strategy, a policy ID listed in the policy table restricts the candidates to its
constituents.

Uses: handles, errors; the standard library.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from enum import StrEnum

from xvol.errors import InvalidArgumentError, OutOfSpaceError, StateError
from xvol.reference.repository.handles import goid_serial


class PlacementStrategy(StrEnum):
    """How :class:`Placement` picks among candidate data constituents."""

    ROUND_ROBIN = "round-robin"
    FREE_SPACE = "free-space"
    BY_POLICY = "by-policy"


class Placement:
    """A placement strategy with its policy table (policy ID -> allowed constituent numbers)."""

    def __init__(
        self,
        strategy: PlacementStrategy | str = PlacementStrategy.ROUND_ROBIN,
        policies: Mapping[int, Sequence[int]] | None = None,
    ) -> None:
        try:
            self.strategy = PlacementStrategy(strategy)
        except ValueError:
            raise InvalidArgumentError(
                f"unknown placement {strategy!r}: use one of "
                f"{', '.join(s.value for s in PlacementStrategy)}"
            ) from None
        self.policies = {int(k): tuple(sorted(set(v))) for k, v in (policies or {}).items()}

    def candidates(self, policy_id: int, accepting: Sequence[int]) -> list[int]:
        """The constituents an object of ``policy_id`` may be placed on."""
        if not accepting:
            raise StateError("no data constituent accepts new objects")
        allowed = self.policies.get(policy_id)
        if allowed is None:
            if self.strategy is PlacementStrategy.BY_POLICY and policy_id != 0:
                raise InvalidArgumentError(f"no placement rule for policy ID {policy_id}")
            return sorted(accepting)
        chosen = sorted(set(allowed) & set(accepting))
        if not chosen:
            raise StateError(
                f"no data constituent allowed for policy ID {policy_id} accepts objects"
            )
        return chosen

    def choose(
        self,
        goid: int,
        policy_id: int,
        accepting: Sequence[int],
        free_bytes: Callable[[int], int],
        *,
        exclude: int | None = None,
    ) -> int:
        """The constituent number for object ``goid``; ``free_bytes(k)`` is asked only by the
        free-space strategy; ``exclude`` (a constituent being drained) is never chosen."""
        options = [k for k in self.candidates(policy_id, accepting) if k != exclude]
        if not options:
            raise StateError("no other data constituent can take this object")
        if self.strategy is PlacementStrategy.FREE_SPACE:
            free = {k: free_bytes(k) for k in options}
            best = max(options, key=lambda k: (free[k], -k))
            if free[best] <= 0:
                raise OutOfSpaceError("every candidate data constituent is full")
            return best
        return options[goid_serial(goid) % len(options)]
