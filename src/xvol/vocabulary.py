"""The shared vocabulary: the words the reference stack and the state model both speak.

The reference implementation (``xvol.reference``) and the z3 model (``xvol.model``) never import
each other. They meet here, on the floor of the house: volume roles and names, the client steps
an operation is made of (the seed's create = data write, OLS insert, namespace link), the two step
disciplines, fence orders and modes, the protocol actions of snapshots and mirroring, and the
trace format in which the model hands a counterexample to ``xvol.verification`` for replay on the
reference. This module imports nothing of the kit and nothing outside the standard library.

Seed concepts: consistency group, logical fence (fence the namespace, then the OLS store, then the
data constituent volumes; unfence in the reverse order), deferred I/O requests, stub (redirector)
files, object location store.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from xvol.errors import InvalidArgumentError

# --------------------------------------------------------------------------------------------
# Volumes of an expandable volume
# --------------------------------------------------------------------------------------------


class VolumeRole(StrEnum):
    """What a member volume of an expandable volume holds."""

    NAMESPACE = "namespace"  # directory tree with redirector (stub) files
    OLS = "ols"  # object location store: global object ID -> location ID, policy ID
    DATA = "data"  # data constituent volume: the objects' bytes


NAMESPACE_VOLUME = "NS"
OLS_VOLUME = "OLS"


def data_volume_name(index: int) -> str:
    """Name of the ``index``-th data constituent (1-based), as traces and reports spell it."""
    if index < 1:
        raise InvalidArgumentError(f"data constituent index must be >= 1, got {index}")
    return f"DC{index}"


def volume_names(data_constituents: int) -> tuple[str, ...]:
    """All member volume names of an expandable volume with ``data_constituents`` data volumes,
    in the seed's fence order: namespace, OLS, then DC1..DCn."""
    if data_constituents < 1:
        raise InvalidArgumentError(f"need at least one data constituent, got {data_constituents}")
    return (
        NAMESPACE_VOLUME,
        OLS_VOLUME,
        *(data_volume_name(i) for i in range(1, data_constituents + 1)),
    )


def role_of(volume: str) -> VolumeRole:
    """The role of a volume given its trace name (``NS``, ``OLS`` or ``DC<k>``)."""
    if volume == NAMESPACE_VOLUME:
        return VolumeRole.NAMESPACE
    if volume == OLS_VOLUME:
        return VolumeRole.OLS
    if volume.startswith("DC") and volume[2:].isdigit() and int(volume[2:]) >= 1:
        return VolumeRole.DATA
    raise InvalidArgumentError(f"unknown volume name {volume!r}: expected NS, OLS or DC<k>")


# --------------------------------------------------------------------------------------------
# Client operations as step sequences
# --------------------------------------------------------------------------------------------


class StepKind(StrEnum):
    """One step of a client operation. Each step touches exactly one member volume."""

    DATA_WRITE = "data-write"  # write the object's bytes on its data constituent
    DATA_READ = "data-read"  # read the object's bytes from its data constituent
    DATA_COPY = "data-copy"  # migrate: write a copy on the target data constituent
    DATA_REMOVE = "data-remove"  # remove the object's bytes from a data constituent
    OLS_INSERT = "ols-insert"  # record global object ID -> location
    OLS_LOOKUP = "ols-lookup"  # slow path: resolve a global object ID to its location
    OLS_UPDATE = "ols-update"  # migrate: point the global object ID at the new location
    OLS_REMOVE = "ols-remove"  # forget the global object ID
    NAMESPACE_LINK = "namespace-link"  # create the directory entry and its redirector file
    NAMESPACE_LOOKUP = "namespace-lookup"  # resolve a path to its redirector
    NAMESPACE_UNLINK = "namespace-unlink"  # remove the directory entry and its redirector


STEP_ROLE: Mapping[StepKind, VolumeRole] = {
    StepKind.DATA_WRITE: VolumeRole.DATA,
    StepKind.DATA_READ: VolumeRole.DATA,
    StepKind.DATA_COPY: VolumeRole.DATA,
    StepKind.DATA_REMOVE: VolumeRole.DATA,
    StepKind.OLS_INSERT: VolumeRole.OLS,
    StepKind.OLS_LOOKUP: VolumeRole.OLS,
    StepKind.OLS_UPDATE: VolumeRole.OLS,
    StepKind.OLS_REMOVE: VolumeRole.OLS,
    StepKind.NAMESPACE_LINK: VolumeRole.NAMESPACE,
    StepKind.NAMESPACE_LOOKUP: VolumeRole.NAMESPACE,
    StepKind.NAMESPACE_UNLINK: VolumeRole.NAMESPACE,
}


class OperationKind(StrEnum):
    """Client operations of the expandable volume."""

    CREATE = "create"
    WRITE = "write"
    DELETE = "delete"
    MIGRATE = "migrate"
    READ_NAMED = "read-named"  # by path: namespace -> OLS (slow path) -> data
    READ_RAW = "read-raw"  # by global object ID: OLS -> data


class StepDiscipline(StrEnum):
    """In which order an operation's steps touch the volumes.

    ``WRITE_AHEAD`` is the seed's: an object's data and location exist before any name points to
    it, and a name disappears before what it points to. ``NAMESPACE_FIRST`` links the name first
    (and unlinks it last): the variant whose snapshots can hold dangling names.
    """

    WRITE_AHEAD = "write-ahead"
    NAMESPACE_FIRST = "namespace-first"


_WRITE_AHEAD_STEPS: Mapping[OperationKind, tuple[StepKind, ...]] = {
    OperationKind.CREATE: (StepKind.DATA_WRITE, StepKind.OLS_INSERT, StepKind.NAMESPACE_LINK),
    OperationKind.WRITE: (StepKind.NAMESPACE_LOOKUP, StepKind.OLS_LOOKUP, StepKind.DATA_WRITE),
    OperationKind.DELETE: (StepKind.NAMESPACE_UNLINK, StepKind.OLS_REMOVE, StepKind.DATA_REMOVE),
    OperationKind.MIGRATE: (StepKind.DATA_COPY, StepKind.OLS_UPDATE, StepKind.DATA_REMOVE),
    OperationKind.READ_NAMED: (StepKind.NAMESPACE_LOOKUP, StepKind.OLS_LOOKUP, StepKind.DATA_READ),
    OperationKind.READ_RAW: (StepKind.OLS_LOOKUP, StepKind.DATA_READ),
}

_NAMESPACE_FIRST_STEPS: Mapping[OperationKind, tuple[StepKind, ...]] = {
    **_WRITE_AHEAD_STEPS,
    OperationKind.CREATE: (StepKind.NAMESPACE_LINK, StepKind.OLS_INSERT, StepKind.DATA_WRITE),
    OperationKind.DELETE: (StepKind.DATA_REMOVE, StepKind.OLS_REMOVE, StepKind.NAMESPACE_UNLINK),
}


def operation_steps(
    operation: OperationKind, discipline: StepDiscipline = StepDiscipline.WRITE_AHEAD
) -> tuple[StepKind, ...]:
    """The step sequence of ``operation`` under ``discipline``: the data both the reference's
    scheduler and the model's client actions are driven by."""
    table = (
        _WRITE_AHEAD_STEPS if discipline is StepDiscipline.WRITE_AHEAD else _NAMESPACE_FIRST_STEPS
    )
    return table[OperationKind(operation)]


# --------------------------------------------------------------------------------------------
# Consistent snapshots: fence orders and modes
# --------------------------------------------------------------------------------------------


class FenceMode(StrEnum):
    """How long fences are held during a consistent snapshot.

    ``HELD``: the consistency group keeps every fence until every volume is captured, then
    unfences in reverse order (the seed's). ``ROLLING``: each volume is captured and unfenced right
    after its own fence.
    """

    HELD = "held"
    ROLLING = "rolling"


FenceOrder = tuple[frozenset[str], ...]
"""A fence order as a sequence of stages; the volumes of one stage are fenced in parallel (in
any interleaving), and every volume of a stage before any of the next."""


def serial_order(volumes: Iterable[str]) -> FenceOrder:
    """A total fence order: one volume per stage."""
    return tuple(frozenset([v]) for v in volumes)


def seed_fence_order(data_constituents: int, *, parallel_data: bool = False) -> FenceOrder:
    """The seed's order: namespace, then OLS, then the data constituents (serially, or as one
    parallel stage when ``parallel_data``)."""
    names = volume_names(data_constituents)
    if parallel_data:
        return (frozenset([NAMESPACE_VOLUME]), frozenset([OLS_VOLUME]), frozenset(names[2:]))
    return serial_order(names)


def check_fence_order(order: FenceOrder, volumes: Sequence[str]) -> None:
    """Raise :class:`InvalidArgumentError` unless ``order`` fences every volume exactly once."""
    seen: list[str] = [v for stage in order for v in stage]
    if any(not stage for stage in order):
        raise InvalidArgumentError("a fence order stage is empty")
    if sorted(seen) != sorted(volumes) or len(seen) != len(set(seen)):
        raise InvalidArgumentError(
            f"fence order {format_fence_order(order)} must name each of {list(volumes)} once"
        )


def format_fence_order(order: FenceOrder) -> str:
    """``NS < OLS < {DC1 | DC2}``: stages separated by ``<``, parallel volumes by ``|``."""
    parts = []
    for stage in order:
        names = sorted(stage, key=_volume_sort_key)
        parts.append(names[0] if len(names) == 1 else "{" + " | ".join(names) + "}")
    return " < ".join(parts)


def _volume_sort_key(volume: str) -> tuple[int, int]:
    role = role_of(volume)
    if role is VolumeRole.NAMESPACE:
        return (0, 0)
    if role is VolumeRole.OLS:
        return (1, 0)
    return (2, int(volume[2:]))


# --------------------------------------------------------------------------------------------
# Protocol actions
# --------------------------------------------------------------------------------------------


class Action(StrEnum):
    """Labelled actions of the protocols. A model trace is a sequence of these with arguments;
    the reference replays the same sequence."""

    # client operations, one step at a time
    BEGIN = "begin"  # args: op, kind (OperationKind), object
    STEP = "step"  # args: op, step (StepKind), volume
    DEFER = "defer"  # a step reached a fenced volume and waits; args: op, step, volume
    RESUME = "resume"  # a deferred step runs after unfence; args: op, step, volume
    # consistent snapshot (consistency group)
    FENCE = "fence"  # args: volume
    CAPTURE = "capture"  # per-volume snapshot; args: volume
    UNFENCE = "unfence"  # args: volume
    FAIL = "fail"  # the snapshot fails; args: volume (where), reason
    COMMIT = "commit"  # the expandable-volume snapshot is published
    DELETE_GROUP = "delete-group"  # the consistency group is deleted: the snapshot job ends
    # mirroring, failover, resync
    CREATE_RELATIONSHIP = "create-relationship"  # args: volume
    RESIZE = "resize"  # destination gets the source's member volumes; args: site, count
    TRANSFER = "transfer"  # one volume's snapshot reaches the destination; args: volume, snapshot
    PUBLISH = "publish"  # destination snapshot table + N-module redirect; args: snapshot
    SNAPSHOT = "snapshot"  # a consistent snapshot of every member volume; args: site, snapshot
    SOURCE_WRITE = "source-write"  # args: volume
    DISASTER = "disaster"  # the primary site is lost
    FAILOVER = "failover"  # break: destination becomes read-write
    DESTINATION_WRITE = "destination-write"  # args: volume
    PRIMARY_RETURN = "primary-return"
    COMMON_SNAPSHOT = "common-snapshot"  # resync picks the base both sites hold; args: snapshot
    PRESERVE = "preserve"  # keep the old primary's divergent data in a snapshot
    ROLLBACK = "rollback"  # revert the old primary to the common snapshot; args: snapshot
    REVERSE = "reverse"  # reverse the relationships' direction
    NOTIFY = "notify"  # N-module told of the new snapshot / direction


@dataclass(frozen=True)
class TraceStep:
    """One labelled step of a trace: the action and its arguments (JSON scalars only)."""

    action: Action
    args: Mapping[str, str | int | bool] = field(default_factory=dict)

    def __str__(self) -> str:
        rendered = ", ".join(f"{k}={v}" for k, v in self.args.items())
        return f"{self.action.value}({rendered})"

    def to_json(self) -> dict[str, Any]:
        return {"action": self.action.value, "args": dict(self.args)}

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> TraceStep:
        try:
            action = Action(data["action"])
        except (KeyError, ValueError) as exc:
            raise InvalidArgumentError(f"trace step has no valid action: {data!r}") from exc
        args = data.get("args", {})
        if not isinstance(args, Mapping) or not all(
            isinstance(v, str | int | bool) for v in args.values()
        ):
            raise InvalidArgumentError(f"trace step arguments must be JSON scalars: {args!r}")
        return TraceStep(action, dict(args))


@dataclass(frozen=True)
class Trace:
    """A run of one protocol under one configuration, as the model reports it and the reference
    replays it. ``violated`` names the property the trace refutes, or is ``None`` for a safe
    trace."""

    system: str  # "fence" or "mirror"
    config: Mapping[str, Any]
    steps: tuple[TraceStep, ...]
    violated: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "system": self.system,
            "config": dict(self.config),
            "violated": self.violated,
            "steps": [s.to_json() for s in self.steps],
        }

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, sort_keys=True)

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> Trace:
        try:
            return Trace(
                system=str(data["system"]),
                config=dict(data["config"]),
                steps=tuple(TraceStep.from_json(s) for s in data["steps"]),
                violated=data.get("violated"),
            )
        except (KeyError, TypeError) as exc:
            raise InvalidArgumentError(f"not a trace: missing or malformed field ({exc})") from exc

    @staticmethod
    def loads(text: str) -> Trace:
        try:
            return Trace.from_json(json.loads(text))
        except json.JSONDecodeError as exc:
            raise InvalidArgumentError(f"trace is not valid JSON: {exc}") from exc
