"""Conformance replay: a fence-model trace run on the reference implementation.

The model (:mod:`xvol.model.fence`) and the reference (:mod:`xvol.reference`) meet only in the
shared vocabulary: a model counterexample is a :class:`~xvol.vocabulary.Trace` of BEGIN, STEP,
DEFER, RESUME and snapshot-protocol actions (FENCE, CAPTURE, UNFENCE, FAIL, COMMIT,
DELETE_GROUP: the seed's consistency group and logical fence). :func:`replay_trace` builds a
small cluster with the trace's configuration (``n`` data constituents, the step discipline of
the expandable volume, the fence order and fence mode of the snapshot job), pre-creates the
objects the model's initial state holds, and drives the reference one trace entry at a time
through :class:`~xvol.reference.snapshots.interleave.Interleaving`:

* BEGIN submits a real client operation (create -> ``op_create`` on the named location,
  write -> ``op_write``, delete -> ``op_delete``, migrate -> ``op_migrate`` by GOID,
  read-named -> ``op_read`` by path, read-raw -> ``op_read_object`` by GOID, the OLS slow
  path). The model's client *slots* are reused: the k-th BEGIN on slot ``c1`` becomes the
  reference operation ``c1.k``;
* STEP, DEFER and RESUME move that operation by one step: the reference's gates (the logical
  fences) decide whether the step runs or is deferred (a deferred I/O request);
* protocol actions step the snapshot job.

Then the reference is judged on its own evidence, the event log of the interleaving and the
snapshot it produced, for every property of the model:

* ``integrity``: the job is run to its end (protocol steps only, no further client step, so
  what the trace captured stays captured) and the committed snapshot is walked namespace ->
  OLS -> data (:func:`~xvol.reference.snapshots.snapshot_access.integrity_violations`);
* ``named-availability`` / ``raw-availability``: an operation whose first step ran on the
  namespace (resp. the OLS) while a volume later on its path was fenced, and which was then
  deferred (a DEFER event);
* ``no-lost-request``: no step of an operation ran twice, and once the group is deleted no
  operation waits at a closed gate;
* ``unfence-on-failure``: once the group is deleted, no volume is fenced and every gate is open.

The model's protocol bugs are injected by this replay only (:func:`replay_with_bugs`; the
reference's code has no bug toggle): ``no-unfence-on-failure`` deletes a failed job's group
without its unfence steps, ``retry-deferred`` runs a stale queued request's D-module request a
second time.

Each replay is *reproduced* (the violated property is violated on the reference), *not
reproduced*, or *not replayable* (the trace uses something the reference cannot express: an
unknown bug toggle, a duplicate run of a stale queued request without the ``retry-deferred``
bug, an unknown operation), with the reason; a safe trace must leave every property intact.
Where the reference's event sequence departs from the model's (a step ran where the model
deferred it, or the reverse), the first difference is recorded. Uses the reference (cluster,
repository, snapshots), the vocabulary and errors; never the model (it takes traces as data).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from xvol.errors import InvalidArgumentError, XvolError
from xvol.reference.cluster.cluster import Cluster
from xvol.reference.cluster.storage import AggregateStorage
from xvol.reference.repository.expandable import ExpandableVolume
from xvol.reference.repository.steps import OpState
from xvol.reference.snapshots.interleave import Interleaving
from xvol.reference.snapshots.snapshot_access import SnapshotAccessLayer, integrity_violations
from xvol.reference.snapshots.snapshot_coordinator import (
    Phase,
    ProtocolStep,
    SnapshotJobManager,
)
from xvol.vocabulary import (
    NAMESPACE_VOLUME,
    OLS_VOLUME,
    STEP_ROLE,
    Action,
    FenceMode,
    FenceOrder,
    OperationKind,
    StepDiscipline,
    StepKind,
    Trace,
    TraceStep,
    VolumeRole,
    operation_steps,
    role_of,
)

FENCE_BUGS = frozenset({"no-unfence-on-failure", "retry-deferred"})
"""The fence model's protocol bugs this replay can inject (:func:`replay_with_bugs`)."""
PROPERTIES = (
    "integrity",
    "named-availability",
    "raw-availability",
    "no-lost-request",
    "unfence-on-failure",
)
VSERVER = "vs1"
VOLUME = "xv"
SNAPSHOT = "conformance"


class Outcome(StrEnum):
    """What a replay showed."""

    REPRODUCED = "reproduced"  # the trace's violated property is violated on the reference
    NOT_REPRODUCED = "not-reproduced"  # it is not (a mismatch between model and reference)
    SAFE = "safe"  # a safe trace: every property holds on the reference too
    BROKEN = "broken"  # a safe trace breaks a property on the reference
    NOT_REPLAYABLE = "not-replayable"  # the reference cannot express the trace
    PREVENTED = "prevented"  # an injected bug: a defence of the reference stops it (named)


@dataclass
class Replay:
    """The result of one replay. ``violations`` maps each property broken on the reference to
    the evidence; ``divergence`` is the first entry where the reference's events differ from
    the trace's (``None`` when they agree step for step); ``events`` is the reference's log;
    ``prevented_by`` names the reference's defence that stopped an injected bug (outcome
    ``prevented``, mirror traces only)."""

    trace: Trace
    outcome: Outcome
    reason: str = ""
    violations: dict[str, list[str]] = field(default_factory=dict)
    divergence: str | None = None
    events: list[TraceStep] = field(default_factory=list)
    prevented_by: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome.value,
            "violated": self.trace.violated,
            "reason": self.reason,
            "violations": self.violations,
            "divergence": self.divergence,
            "prevented_by": self.prevented_by,
            "events": [e.to_json() for e in self.events],
        }


class NotReplayableError(InvalidArgumentError):
    """The trace uses something the reference cannot express (the message says what)."""


# --------------------------------------------------------------------------------------------
# Preparing a trace: configuration, slot renaming
# --------------------------------------------------------------------------------------------


def _order(value: Any) -> FenceOrder:
    return tuple(frozenset([x] if isinstance(x, str) else x) for x in value)


def rename_slots(trace: Trace) -> Trace:
    """The trace with each model client slot's k-th operation named ``<slot>.<k>`` (the model
    reuses a slot for successive operations; the reference's operation IDs are unique).
    Raises :class:`NotReplayableError` for a client step of a slot with no operation, or a
    stale-queue RESUME (no step: the model's duplicate run of a request whose operation moved
    on, which the reference's scheduler cannot do) unless the trace's ``retry-deferred`` bug
    is injected: then the entry is marked ``stale``."""
    retry = "retry-deferred" in (trace.config.get("bugs") or [])
    count: dict[str, int] = {}
    current: dict[str, str] = {}
    steps = []
    for i, step in enumerate(trace.steps, 1):
        args = dict(step.args)
        if step.action is Action.BEGIN:
            slot = str(args["op"])
            count[slot] = count.get(slot, 0) + 1
            current[slot] = args["op"] = f"{slot}.{count[slot]}"
        elif step.action in (Action.STEP, Action.DEFER, Action.RESUME):
            slot = str(args.get("op"))
            if "step" not in args and retry and step.action is Action.RESUME:
                args["stale"] = True
            elif "step" not in args:
                raise NotReplayableError(
                    f"entry {i} {step}: a stale queued request runs again (a duplicate); the "
                    "reference's scheduler keeps one pending step per operation"
                )
            if slot not in current:
                raise NotReplayableError(f"entry {i} {step}: slot {slot} has no operation")
            args["op"] = current[slot]
        steps.append(TraceStep(step.action, args))
    return Trace(trace.system, trace.config, tuple(steps), trace.violated)


# --------------------------------------------------------------------------------------------
# The reference under the trace's configuration
# --------------------------------------------------------------------------------------------


@dataclass
class Setup:
    """A cluster with one expandable volume ``xv`` (``n`` data constituents, the discipline),
    the initial objects, a started snapshot job and the interleaving driving both. ``goids``
    maps model object names to the GOIDs of their current incarnation."""

    cluster: Cluster
    xv: ExpandableVolume
    run: Interleaving
    goids: dict[str, int]
    creates: dict[str, str] = field(default_factory=dict)  # create op ID -> model object
    paths: dict[str, list[str]] = field(default_factory=dict)  # op ID -> volumes of its steps
    bugs: frozenset[str] = frozenset()  # protocol bugs this replay injects (FENCE_BUGS)


def build(config: Mapping[str, Any], *, seed: int = 0) -> Setup:
    """The reference under ``config`` (a fence-trace config record). The model's initial
    objects ``o1..o<present>`` exist as files ``/o<i>`` on ``DC<1 + (i-1) mod n>`` (the
    model's ``home``)."""
    bugs = frozenset(str(b) for b in config.get("bugs") or [])
    if bugs - FENCE_BUGS:
        raise NotReplayableError(
            f"protocol bug toggles {sorted(bugs - FENCE_BUGS)} have no replay injection here"
        )
    n = int(config["n"])
    cluster = Cluster(
        2,
        seed=seed,
        storage_factory=lambda k: AggregateStorage.memory(
            k, level="4", data_disks=2, blocks_per_disk=1024
        ),
    )
    mhost = cluster.mhost()
    mhost.create_vserver(VSERVER, ["root"])
    mhost.create_expandable_volume(
        VSERVER,
        VOLUME,
        data_constituents=n,
        volume_blocks=256,
        discipline=StepDiscipline(config["discipline"]),
    )
    xv = cluster.expandable(VSERVER)
    goids: dict[str, int] = {}
    for i in range(int(config.get("present", 0))):
        name = f"o{i + 1}"
        handle = xv.create(f"/{name}", name.encode(), location=1 + i % n)
        goids[name] = handle.goid
    order = _order(config["order"])
    job = SnapshotJobManager(cluster).start(
        VSERVER, VOLUME, SNAPSHOT, order=order, mode=FenceMode(config["mode"])
    )
    return Setup(cluster, xv, Interleaving(xv, job, seed=seed), goids, bugs=bugs)


def begin_operation(setup: Setup, step: TraceStep) -> None:
    """Submit the reference operation a model BEGIN names."""
    xv = setup.xv
    op = str(step.args["op"])
    obj = str(step.args["object"])
    path = f"/{obj}"
    try:
        kind = OperationKind(str(step.args["kind"]))
    except ValueError as exc:
        raise NotReplayableError(f"unknown operation kind in {step}") from exc
    _settle_creates(setup)
    setup.paths[op] = _planned_path(setup, kind, obj, str(step.args.get("location", "")))
    if kind is OperationKind.CREATE:
        location = int(str(step.args["location"])[2:])
        xv.submit(kind, xv.op_create(path, obj.encode(), location=location), op_id=op)
        setup.creates[op] = obj
    elif kind is OperationKind.WRITE:
        xv.submit(kind, xv.op_write(path, 0, b"w"), op_id=op)
    elif kind is OperationKind.DELETE:
        xv.submit(kind, xv.op_delete(path), op_id=op)
    elif kind is OperationKind.READ_NAMED:
        xv.submit(kind, xv.op_read(path), op_id=op)
    else:
        if obj not in setup.goids:
            raise NotReplayableError(f"{step}: the reference knows no GOID for {obj} yet")
        goid = setup.goids[obj]
        if kind is OperationKind.MIGRATE:
            to = int(str(step.args["location"])[2:])
            xv.submit(kind, xv.op_migrate(goid, to), op_id=op)
        else:
            xv.submit(kind, xv.op_read_object(goid), op_id=op)


def _planned_path(setup: Setup, kind: OperationKind, obj: str, target: str) -> list[str]:
    """The volumes the operation's steps will touch, in order, as the reference stands when it
    begins: a data step goes to the create's or the migration's target, else to the object's
    location in the OLS (left out when the object has none: the operation will fail)."""
    home = None
    if obj in setup.goids:
        try:
            home = f"DC{setup.xv.locate(setup.goids[obj]).location_id}"
        except XvolError:
            home = None
    path = []
    for k in operation_steps(kind, setup.xv.discipline):
        role = STEP_ROLE[k]
        if role is VolumeRole.NAMESPACE:
            path.append(NAMESPACE_VOLUME)
        elif role is VolumeRole.OLS:
            path.append(OLS_VOLUME)
        elif kind is OperationKind.CREATE or (
            kind is OperationKind.MIGRATE and k is StepKind.DATA_COPY
        ):
            path.append(target)
        elif home is not None:
            path.append(home)
    return path


def _settle_creates(setup: Setup) -> None:
    """Record the GOIDs of finished creates (the model locks an object while an operation on
    it runs, so a create has returned before any raw access to its object begins)."""
    for op, obj in setup.creates.items():
        record = setup.xv.scheduler.records.get(op)
        if record is not None and record.state is OpState.DONE:
            setup.goids[obj] = record.result.goid


# --------------------------------------------------------------------------------------------
# Judging the reference by its own evidence
# --------------------------------------------------------------------------------------------


def availability_violations(setup: Setup, events: list[TraceStep]) -> dict[str, list[str]]:
    """Per availability property, the operations admitted by the namespace (named access) or
    the OLS (raw access) while a volume later on their path (a step they took later, or one
    still ahead of them) was fenced, and then deferred."""
    fenced: set[str] = set()
    first: dict[str, tuple[int, str, frozenset[str]]] = {}  # op -> (index, volume, fenced)
    later: dict[str, list[tuple[int, TraceStep]]] = {}
    for i, e in enumerate(events):
        if e.action is Action.FENCE:
            fenced.add(str(e.args["volume"]))
        elif e.action is Action.UNFENCE:
            fenced.discard(str(e.args["volume"]))
        elif e.action in (Action.STEP, Action.DEFER, Action.RESUME):
            op = str(e.args["op"])
            if op not in first:
                if e.action is Action.STEP:
                    first[op] = (i, str(e.args["volume"]), frozenset(fenced))
                else:  # deferred at its first step: not admitted
                    first[op] = (i, "", frozenset())
            else:
                later.setdefault(op, []).append((i, e))
    found: dict[str, list[str]] = {}
    for op, (_, entry, fenced_then) in first.items():
        if not entry:
            continue
        path = {str(e.args["volume"]) for _, e in later.get(op, [])}
        path |= set(setup.paths.get(op, [])[1:])  # the steps it has not taken yet
        record = setup.xv.scheduler.records.get(op)
        if record is not None and record.next_step is not None:
            path.add(record.next_step.volume)
        blocked = path & fenced_then
        deferred = [e for _, e in later.get(op, []) if e.action is Action.DEFER]
        if not blocked or not deferred:
            continue
        role = role_of(entry)
        prop = {VolumeRole.NAMESPACE: "named-availability", VolumeRole.OLS: "raw-availability"}
        if role in prop:
            found.setdefault(prop[role], []).append(
                f"{op} admitted by {entry} while {sorted(blocked)} fenced, then {deferred[0]}"
            )
    return found


def request_violations(setup: Setup, events: list[TraceStep]) -> dict[str, list[str]]:
    """``no-lost-request`` and ``unfence-on-failure`` as the reference shows them: steps run
    twice, requests waiting at a closed gate after the group is deleted, volumes still fenced
    (or gates closed) after it."""
    found: dict[str, list[str]] = {}
    runs: dict[str, list[str]] = {}
    for e in events:
        if e.action in (Action.STEP, Action.RESUME):
            runs.setdefault(str(e.args["op"]), []).append(str(e.args["step"]))
    discipline = setup.xv.discipline
    for op, ran in runs.items():
        record = setup.xv.scheduler.records.get(op)
        if record is None:
            continue
        steps = [k.value for k in operation_steps(OperationKind(record.kind), discipline)]
        if ran != steps[: len(ran)]:  # a step ran twice, or out of its operation's order
            found.setdefault("no-lost-request", []).append(
                f"{op}: ran {ran}, its steps are {steps}"
            )
    if any(e.action is Action.DELETE_GROUP for e in events):
        job = setup.run.job
        assert job is not None
        for record in setup.xv.scheduler.unfinished():
            step = record.next_step
            if (
                record.state is OpState.DEFERRED
                and step is not None
                and not setup.xv.gate(step.volume).is_open
            ):
                found.setdefault("no-lost-request", []).append(
                    f"{record.op_id} waits at fenced {step.volume} after the group ended"
                )
        still = job.group.fenced()
        closed = sorted(v for v in setup.xv.members if not setup.xv.gate(v).is_open)
        if still or closed:
            found.setdefault("unfence-on-failure", []).append(
                f"after delete-group: fenced {sorted(still)}, closed gates {closed}"
            )
    return found


def replay_with_bugs(setup: Setup, trace: Trace) -> None:
    """Replay a renamed trace entry by entry, injecting the configuration's protocol bugs with
    the reference's own primitives (test-only; the reference's code path has no bug toggle):

    * ``no-unfence-on-failure``: a DELETE_GROUP of a failed job is taken at once (the job's
      delete-group step), without the unfence steps the reference's job takes first, so its
      fences (closed gates) stay;
    * ``retry-deferred``: a stale queued request (a RESUME entry marked ``stale``) runs the
      operation's last step again: the same D-module request, executed a second time.

    Raises :class:`InvalidArgumentError` (through the interleaving) at an entry the reference
    cannot take."""
    run, job = setup.run, setup.run.job
    assert job is not None
    last: dict[str, Any] = {}  # op -> the step object it ran last
    for step in trace.steps:
        if step.action is Action.BEGIN:
            begin_operation(setup, step)
        elif step.action in (Action.STEP, Action.DEFER, Action.RESUME):
            op = str(step.args["op"])
            if step.args.get("stale"):
                if op not in last:
                    raise NotReplayableError(f"{step}: {op} has run no step to retry")
                again = last[op]
                again.run()
                run.events.append(
                    TraceStep(
                        Action.RESUME, {"op": op, "step": again.kind.value, "volume": again.volume}
                    )
                )
                continue
            record = setup.xv.scheduler.records.get(op)
            pending = None if record is None else record.next_step
            moved = run.run_script([(op, StepKind(str(step.args["step"])))])
            if pending is not None and moved and moved[-1].action is not Action.DEFER:
                last[op] = pending
        elif (
            step.action is Action.DELETE_GROUP
            and "no-unfence-on-failure" in setup.bugs
            and job.phase is Phase.FAILED
            and not job.ended
        ):
            run.events.append(job._delete_group().step)
        else:
            run.run_script([ProtocolStep.from_trace(step)])


def integrity_after(setup: Setup) -> list[str]:
    """Run the job to its end (protocol steps only) and walk its snapshot, if it committed."""
    run = setup.run
    while run.protocol_steps():
        run.protocol_step()
    job = run.job
    assert job is not None
    if job.record is None:
        return []
    view = SnapshotAccessLayer(setup.cluster, setup.cluster.any_up_node()).open(
        VSERVER, VOLUME, SNAPSHOT
    )
    return integrity_violations(view.check_references())


def _divergence(trace: Trace, events: list[TraceStep], *, retried: bool = False) -> str | None:
    """The first non-BEGIN entry of ``trace`` the reference's ``events`` do not match. With
    ``retried`` (the ``retry-deferred`` bug) a model STEP of a deferred operation, its retried
    request, matches the reference's RESUME of it."""
    steps = [s for s in trace.steps if s.action is not Action.BEGIN]
    client = {Action.STEP, Action.RESUME}
    for i, (want, got) in enumerate(zip(steps, events, strict=False), 1):
        keys = ("op", "step", "volume")
        same = want.action is got.action or (retried and {want.action, got.action} == client)
        if not same or any(
            k in want.args and str(want.args[k]) != str(got.args.get(k)) for k in keys
        ):
            return f"entry {i}: the model took {want}, the reference {got}"
    if len(events) < len(steps):
        return f"the reference stopped after {len(events)} of {len(steps)} entries"
    return None


# --------------------------------------------------------------------------------------------
# Replaying
# --------------------------------------------------------------------------------------------


def replay_trace(trace: Trace, *, seed: int = 0) -> Replay:
    """Replay a fence-model trace on the reference and judge it (module text)."""
    if trace.system != "fence":
        return Replay(
            trace,
            Outcome.NOT_REPLAYABLE,
            f"{trace.system!r} traces have no reference driver here (fence traces only)",
        )
    try:
        setup = build(trace.config, seed=seed)
        renamed = rename_slots(trace)
    except NotReplayableError as exc:
        return Replay(trace, Outcome.NOT_REPLAYABLE, str(exc))
    run = setup.run
    stopped = ""
    try:
        if setup.bugs:
            replay_with_bugs(setup, renamed)
        else:
            run.replay(renamed, lambda step: begin_operation(setup, step))
    except NotReplayableError as exc:
        return Replay(trace, Outcome.NOT_REPLAYABLE, str(exc), events=list(run.events))
    except XvolError as exc:
        stopped = f"replay stopped: {type(exc).__name__}: {exc}"
    events = list(run.events)
    violations = availability_violations(setup, events)
    for prop, found in request_violations(setup, events).items():
        violations.setdefault(prop, []).extend(found)
    if not stopped:
        broken = integrity_after(setup)
        if broken:
            violations["integrity"] = broken
    divergence = stopped or _divergence(renamed, events, retried="retry-deferred" in setup.bugs)
    if trace.violated is not None:
        ok = trace.violated in violations
        outcome = Outcome.REPRODUCED if ok else Outcome.NOT_REPRODUCED
        reason = "" if ok else f"{trace.violated} holds on the reference"
    else:
        outcome = Outcome.BROKEN if violations else Outcome.SAFE
        reason = "; ".join(sorted(violations)) if violations else ""
    if stopped:
        reason = f"{reason}; {stopped}" if reason else stopped
    return Replay(trace, outcome, reason, violations, divergence, events)


def reclassify(shared: Replay, trace: Trace) -> Replay:
    """The replay of ``trace`` judged on ``shared``, the replay of a trace with the same steps
    on the same instance (the suite replays such traces once): the same events and violations,
    the outcome for ``trace``'s own property."""
    if trace == shared.trace or shared.outcome is Outcome.NOT_REPLAYABLE:
        return Replay(
            trace,
            shared.outcome,
            shared.reason,
            shared.violations,
            shared.divergence,
            shared.events,
            shared.prevented_by,
        )
    if trace.violated is None:
        outcome = Outcome.BROKEN if shared.violations else Outcome.SAFE
        reason = "; ".join(sorted(shared.violations))
    elif trace.violated in shared.violations:
        outcome, reason = Outcome.REPRODUCED, ""
    else:
        outcome, reason = Outcome.NOT_REPRODUCED, f"{trace.violated} holds on the reference"
    return Replay(trace, outcome, reason, shared.violations, shared.divergence, shared.events)
