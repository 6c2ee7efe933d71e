"""Client operations as step sequences, member-volume gates, and the step scheduler.

The seed's client operations cross several member volumes of an expandable volume: a create
writes the object's bytes on a data constituent, inserts its location in the object location
store and links its name in the namespace; a delete unlinks, removes the location, removes the
bytes. Here each operation is a Python *generator* that yields one request at a time:

* a :class:`Step` names its kind (:class:`xvol.vocabulary.StepKind`), the one member volume it
  touches (``NS``, ``OLS`` or ``DC<k>``), and a callable that makes exactly one call to that
  volume; the scheduler runs it and sends the result back into the generator (or throws the typed
  error into it, so that the operation can undo its earlier steps);
* an :class:`Acquire` asks for per-object locks (paths, GOIDs), so that two operations on the
  same object never interleave (a migration copying an object while a write lands on it would
  lose the write); it is not a step and touches no volume. Locks are taken paths first, GOIDs
  second, and held until the operation ends, so there is no deadlock.

Every member volume has a :class:`Gate` the scheduler consults before each step on it. The gate
is open by default; a closed gate *defers* the step: the operation waits, its step neither runs
nor is lost, and it runs (``RESUME``) once the gate admits it again. Fences of consistent
snapshots are gates that close in the seed's order.

The :class:`Scheduler` interleaves the steps of many submitted operations, either by a seeded
random choice, or as scripted by a list of ``(operation ID, step kind)`` pairs, and records what
happened as a vocabulary :class:`~xvol.vocabulary.Trace` (BEGIN, STEP, DEFER, RESUME).
Invariant: each yielded step runs at most once, and a step whose gate is closed runs zero times
until the gate admits it.

Uses: the shared vocabulary and errors; the standard library.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Generator, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

from xvol.errors import InvalidArgumentError, NotFoundError, StateError, UnavailableError, XvolError
from xvol.vocabulary import Action, StepKind, Trace, TraceStep

T = TypeVar("T")


@dataclass(frozen=True)
class Step:
    """One step: ``run`` makes exactly one call to member volume ``volume``."""

    kind: StepKind
    volume: str
    run: Callable[[], Any] = field(compare=False, repr=False)


@dataclass(frozen=True)
class Acquire:
    """A request for the per-object locks ``keys`` (e.g. ``path:/a/b``, ``goid:...``)."""

    keys: frozenset[str]


Request = Step | Acquire
Op = Generator[Request, Any, T]
"""A client operation: yields steps and lock requests, returns its result."""


class OperationDeferred(StateError):
    """The operation could not finish now: a step waits at a closed gate, for a lock, or for a
    node that does not answer. It stays submitted and completes when the scheduler runs again."""

    def __init__(self, message: str, op_id: str = "") -> None:
        super().__init__(message)
        self.op_id = op_id


class OpState(StrEnum):
    """Life cycle of a submitted operation: READY -> (DEFERRED | WAITING)* -> DONE | FAILED."""

    READY = "ready"  # its next step may run
    DEFERRED = "deferred"  # its next step's gate is closed, or its node does not answer
    WAITING = "waiting"  # it waits for a lock
    DONE = "done"
    FAILED = "failed"


@dataclass(eq=False)
class OperationRecord:
    """A submitted operation and what it has done so far."""

    op_id: str
    kind: str
    label: str
    generator: Op[Any] = field(repr=False)
    state: OpState = OpState.READY
    next_request: Request | None = None
    result: Any = None
    error: XvolError | None = None
    steps_run: list[tuple[StepKind, str]] = field(default_factory=list)
    deferrals: int = 0
    unavailable: bool = False
    submitted: int = 0  # the scheduler's submission counter when it began (orders operations)

    @property
    def finished(self) -> bool:
        return self.state in (OpState.DONE, OpState.FAILED)

    @property
    def next_step(self) -> Step | None:
        return self.next_request if isinstance(self.next_request, Step) else None

    def outcome(self) -> Any:
        """The result of a finished operation, or its error raised again."""
        if self.state is OpState.FAILED and self.error is not None:
            raise self.error
        if self.state is not OpState.DONE:
            raise OperationDeferred(f"operation {self.op_id} has not finished", self.op_id)
        return self.result


class Gate:
    """A member volume's admission hook. Open by default; :meth:`admits` is what the scheduler
    asks before a step on the volume (subclasses, such as fences, may decide per operation)."""

    def __init__(self, volume: str) -> None:
        self.volume = volume
        self._open = True

    @property
    def is_open(self) -> bool:
        return self._open

    def close(self) -> None:
        """Defer every later step on this volume until :meth:`open`."""
        self._open = False

    def open(self) -> None:
        """Admit steps again (deferred ones run when the scheduler next runs)."""
        self._open = True

    def admits(self, record: OperationRecord, step: Step) -> bool:
        """Whether ``step`` of ``record`` may run now."""
        return self._open


@dataclass
class SchedulerCounters:
    """What the scheduler has done."""

    submitted: int = 0
    steps: int = 0
    deferrals: int = 0
    resumes: int = 0
    completed: int = 0
    failed: int = 0


class Scheduler:
    """Runs submitted operations by interleaving their steps (see the module text).

    ``gate_for(volume)`` returns the gate of a member volume. Finished operations stay in
    ``records`` for inspection until :meth:`forget` is called.
    """

    def __init__(self, gate_for: Callable[[str], Gate], *, seed: int = 0) -> None:
        self.gate_for = gate_for
        self.rng = random.Random(seed)
        self.records: dict[str, OperationRecord] = {}
        self.locks: dict[str, str] = {}  # key -> op id
        self.events: list[TraceStep] = []
        self.counters = SchedulerCounters()
        self._serial = 0

    # -- submission ---------------------------------------------------------------------------

    def submit(
        self, kind: str, op: Op[Any], *, op_id: str | None = None, label: str = ""
    ) -> OperationRecord:
        """Register ``op`` and advance it to its first step (taking any locks it asks for)."""
        self._serial += 1
        op_id = op_id or f"op{self._serial}"
        if op_id in self.records:
            raise InvalidArgumentError(f"operation ID {op_id!r} is in use")
        record = OperationRecord(op_id, str(kind), label, op, submitted=self._serial)
        self.records[op_id] = record
        self.counters.submitted += 1
        self.events.append(
            TraceStep(Action.BEGIN, {"op": op_id, "kind": str(kind), "object": label})
        )
        self._advance(record, None, None)
        return record

    def forget(self, op_id: str) -> None:
        """Drop a finished operation's record."""
        record = self._record(op_id)
        if not record.finished:
            raise StateError(f"operation {op_id} has not finished")
        del self.records[op_id]

    def _record(self, op_id: str) -> OperationRecord:
        try:
            return self.records[op_id]
        except KeyError:
            raise NotFoundError(f"no operation {op_id!r}") from None

    # -- the generator protocol ---------------------------------------------------------------

    def _advance(self, record: OperationRecord, value: Any, error: XvolError | None) -> None:
        """Send ``value`` (or throw ``error``) into the generator and run it to its next step,
        granting lock requests on the way."""
        while True:
            try:
                if error is not None:
                    request = record.generator.throw(error)
                    error = None
                else:
                    request = record.generator.send(value)
            except StopIteration as stop:
                self._finish(record, OpState.DONE, result=stop.value)
                return
            except XvolError as exc:
                self._finish(record, OpState.FAILED, error=exc)
                return
            value = None
            record.next_request = request
            if isinstance(request, Acquire):
                if not self._try_lock(record, request):
                    record.state = OpState.WAITING
                    return
                continue
            if record.state is not OpState.DEFERRED:
                record.state = OpState.READY
            return

    def _try_lock(self, record: OperationRecord, request: Acquire) -> bool:
        if any(self.locks.get(k, record.op_id) != record.op_id for k in request.keys):
            return False
        for key in request.keys:
            self.locks[key] = record.op_id
        return True

    def _finish(
        self,
        record: OperationRecord,
        state: OpState,
        *,
        result: Any = None,
        error: XvolError | None = None,
    ) -> None:
        record.state, record.result, record.error = state, result, error
        record.next_request = None
        for key in [k for k, owner in self.locks.items() if owner == record.op_id]:
            del self.locks[key]
        if state is OpState.DONE:
            self.counters.completed += 1
        else:
            self.counters.failed += 1
        self._wake_waiters()

    def _wake_waiters(self) -> None:
        for other in list(self.records.values()):
            waiting = other.state is OpState.WAITING and isinstance(other.next_request, Acquire)
            if waiting and self._try_lock(other, other.next_request):  # type: ignore[arg-type]
                other.state = OpState.READY
                self._advance(other, None, None)

    # -- running steps ------------------------------------------------------------------------

    def admitted(self, record: OperationRecord) -> bool:
        """Whether ``record``'s next step may run now (gate open, node not known down)."""
        step = record.next_step
        if step is None or record.finished or record.state is OpState.WAITING:
            return False
        if record.unavailable:
            return False
        return self.gate_for(step.volume).admits(record, step)

    def run_step(self, op_id: str) -> TraceStep | None:
        """Try the next step of operation ``op_id``: run it (STEP or RESUME), or defer it at a
        closed gate (DEFER, once); returns the event recorded, if any."""
        record = self._record(op_id)
        step = record.next_step
        if step is None or record.finished or record.state is OpState.WAITING:
            return None
        args: dict[str, str | int | bool] = {
            "op": record.op_id,
            "step": step.kind.value,
            "volume": step.volume,
        }
        if not self.gate_for(step.volume).admits(record, step):
            if record.state is OpState.DEFERRED:
                return None
            record.state = OpState.DEFERRED
            record.deferrals += 1
            self.counters.deferrals += 1
            event = TraceStep(Action.DEFER, args)
            self.events.append(event)
            return event
        try:
            value = step.run()
        except UnavailableError:
            record.unavailable = True
            if record.state is not OpState.DEFERRED:
                record.state = OpState.DEFERRED
                record.deferrals += 1
                self.counters.deferrals += 1
                event = TraceStep(Action.DEFER, {**args, "reason": "unavailable"})
                self.events.append(event)
                return event
            return None
        except XvolError as exc:
            return self._after_step(record, step, args, None, exc)
        return self._after_step(record, step, args, value, None)

    def _after_step(
        self,
        record: OperationRecord,
        step: Step,
        args: dict[str, str | int | bool],
        value: Any,
        error: XvolError | None,
    ) -> TraceStep:
        resumed = record.state is OpState.DEFERRED
        event = TraceStep(Action.RESUME if resumed else Action.STEP, args)
        self.events.append(event)
        self.counters.steps += 1
        if resumed:
            self.counters.resumes += 1
        record.state = OpState.READY
        record.steps_run.append((step.kind, step.volume))
        self._advance(record, value, error)
        return event

    def abandon(self, op_id: str, error: XvolError) -> None:
        """End an unfinished operation with ``error`` without running its remaining steps (for a
        caller that must not wait, when the operation has changed nothing yet)."""
        record = self._record(op_id)
        if record.finished:
            return
        record.generator.close()
        self._finish(record, OpState.FAILED, error=error)

    def retry_unavailable(self) -> None:
        """Let operations that met a node that did not answer try again (call after a node is
        back up)."""
        for record in self.records.values():
            record.unavailable = False

    def unfinished(self) -> list[OperationRecord]:
        """Operations submitted and not yet finished, in submission order."""
        return [r for r in self.records.values() if not r.finished]

    def runnable(self) -> list[OperationRecord]:
        """Unfinished operations whose next step may run now."""
        return [r for r in self.unfinished() if self.admitted(r)]

    def run_random(self, max_steps: int | None = None) -> int:
        """Run steps of runnable operations chosen by the seeded generator until none is
        runnable (or ``max_steps``); returns how many steps ran. Closed gates record their
        deferrals on the way."""
        ran = 0
        while max_steps is None or ran < max_steps:
            for record in self.unfinished():
                step = record.next_step
                if (
                    step is not None
                    and not record.unavailable
                    and record.state is OpState.READY
                    and not self.gate_for(step.volume).admits(record, step)
                ):
                    self.run_step(record.op_id)  # records the DEFER
            candidates = self.runnable()
            if not candidates:
                break
            chosen = candidates[self.rng.randrange(len(candidates))]
            event = self.run_step(chosen.op_id)
            if event is not None and event.action in (Action.STEP, Action.RESUME):
                ran += 1
        return ran

    def run_script(self, script: Iterable[tuple[str, StepKind | str]]) -> list[TraceStep]:
        """Run the scripted interleaving: for each ``(op ID, step kind)``, that operation's next
        step must be of that kind; it runs, or is deferred if its gate is closed. Raises
        :class:`InvalidArgumentError` at the first entry that does not match (steps before it
        have run)."""
        events: list[TraceStep] = []
        for op_id, kind in script:
            record = self._record(op_id)
            step = record.next_step
            if step is None or step.kind != StepKind(kind):
                have = "none" if step is None else step.kind.value
                raise InvalidArgumentError(
                    f"script expects {op_id} to take step {StepKind(kind).value}, "
                    f"its next is {have}"
                )
            event = self.run_step(op_id)
            if event is not None:
                events.append(event)
        return events

    def replay(self, trace: Trace) -> list[TraceStep]:
        """Replay the STEP and RESUME events of a vocabulary trace for operations that are
        already submitted under the same IDs (BEGIN, DEFER and other actions are skipped: gates
        decide deferrals here)."""
        script = [
            (str(s.args["op"]), StepKind(str(s.args["step"])))
            for s in trace.steps
            if s.action in (Action.STEP, Action.RESUME)
        ]
        return self.run_script(script)

    def run_op(self, op_id: str) -> OperationRecord:
        """Run one operation's steps back to back until it finishes or cannot go on."""
        record = self._record(op_id)
        while not record.finished and self.admitted(record):
            self.run_step(op_id)
        if not record.finished and record.next_step is not None and not record.unavailable:
            self.run_step(op_id)  # records the DEFER at a closed gate
        return record

    def trace(self, config: Mapping[str, Any] | None = None) -> Trace:
        """What ran so far, as a vocabulary trace."""
        return Trace(system="repository", config=dict(config or {}), steps=tuple(self.events))
