"""Interleaving client steps with the snapshot protocol: seeded, scripted, or from a trace.

A consistent snapshot is only interesting while clients run: a fence lands between two steps of
a create, a migration's OLS update waits at a fenced OLS, a delete's unlink is already in the
namespace snapshot when the OLS is fenced. :class:`Interleaving` drives one expandable volume's
:class:`~xvol.reference.repository.steps.Scheduler` (the client operations submitted to it) and
one :class:`~xvol.reference.snapshots.snapshot_coordinator.SnapshotJob` together, one step at a
time, in one of three ways:

* :meth:`Interleaving.run_random`: a seeded choice among every enabled protocol step and every
  client operation that can move (run its next step, or record its DEFER at a closed gate, or
  RESUME after its gate opened), until nothing can move;
* :meth:`Interleaving.run_script`: a list of :class:`ProtocolStep` s and ``(operation ID, step
  kind)`` pairs, e.g. ``[FENCE NS, ("op3", "data-write"), FENCE OLS, ...]``;
* :meth:`Interleaving.replay`: a vocabulary :class:`~xvol.vocabulary.Trace` (as the model
  reports a counterexample): STEP, DEFER and RESUME drive client operations submitted under the
  trace's operation IDs, FENCE/CAPTURE/UNFENCE/COMMIT/FAIL/DELETE_GROUP drive the job; BEGIN
  calls a caller-supplied hook that submits the operation.

Every event, client or protocol, is appended to :attr:`Interleaving.events` in the order it
happened. Invariant (from the scheduler): each client step runs at most once, and a step at a
closed gate runs zero times until the gate opens.

Uses: the repository's scheduler, the snapshot coordinator; the vocabulary and errors.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any

from xvol.errors import InvalidArgumentError
from xvol.reference.repository.expandable import ExpandableVolume
from xvol.reference.repository.steps import OperationRecord, OpState
from xvol.reference.snapshots.snapshot_coordinator import (
    PROTOCOL_ACTIONS,
    ProtocolStep,
    SnapshotJob,
)
from xvol.vocabulary import Action, StepKind, Trace, TraceStep

ScriptItem = ProtocolStep | tuple[str, StepKind | str]
"""One entry of a script: a protocol step, or ``(operation ID, step kind)`` for a client."""


class Interleaving:
    """Client operations of ``xv`` and the snapshot ``job`` (optional), stepped together."""

    def __init__(
        self,
        xv: ExpandableVolume,
        job: SnapshotJob | None = None,
        *,
        seed: int = 0,
        protocol_weight: float = 0.5,
    ) -> None:
        if not 0.0 <= protocol_weight <= 1.0:
            raise InvalidArgumentError("protocol_weight must be within 0..1")
        self.xv = xv
        self.job = job
        self.rng = random.Random(seed)
        self.protocol_weight = protocol_weight
        self.events: list[TraceStep] = []

    # -- what can move ------------------------------------------------------------------------

    def movable(self) -> list[OperationRecord]:
        """Client operations whose next step would run, resume, or record its deferral now."""
        scheduler = self.xv.scheduler
        found = []
        for record in scheduler.unfinished():
            if record.next_step is None or record.state is OpState.WAITING or record.unavailable:
                continue
            if scheduler.admitted(record) or record.state is OpState.READY:
                found.append(record)
        return found

    def protocol_steps(self) -> list[ProtocolStep]:
        """The protocol steps enabled now."""
        return [] if self.job is None else self.job.enabled()

    # -- moving -------------------------------------------------------------------------------

    def client_step(self, op_id: str) -> TraceStep | None:
        """Move client operation ``op_id`` by one step (STEP, RESUME or DEFER)."""
        event = self.xv.scheduler.run_step(op_id)
        if event is not None:
            self.events.append(event)
        return event

    def protocol_step(self, step: ProtocolStep | None = None) -> TraceStep:
        """Take one protocol step (default: the first enabled)."""
        if self.job is None:
            raise InvalidArgumentError("this interleaving has no snapshot job")
        event = self.job.run_step(step).step
        self.events.append(event)
        return event

    def run_random(self, max_events: int | None = None) -> list[TraceStep]:
        """Seeded interleaving until nothing can move (or ``max_events`` events); returns the
        events of this call."""
        start = len(self.events)
        while max_events is None or len(self.events) - start < max_events:
            clients = self.movable()
            protocol = self.protocol_steps()
            if not clients and not protocol:
                break
            use_protocol = bool(protocol) and (
                not clients or self.rng.random() < self.protocol_weight
            )
            if use_protocol:
                self.protocol_step(protocol[self.rng.randrange(len(protocol))])
            else:
                self.client_step(clients[self.rng.randrange(len(clients))].op_id)
        return self.events[start:]

    def finish(self) -> list[TraceStep]:
        """Run the job to its end, then every client operation as far as it can go (seeded)."""
        start = len(self.events)
        while self.protocol_steps():
            self.protocol_step()
        self.run_random()
        return self.events[start:]

    def run_script(self, script: Sequence[ScriptItem]) -> list[TraceStep]:
        """Run ``script`` in order. A client entry's operation must have a next step of that
        kind (it runs, resumes, or is deferred); a protocol entry must be enabled.
        :class:`InvalidArgumentError` at the first entry that does not fit (earlier entries
        have run)."""
        start = len(self.events)
        for item in script:
            if isinstance(item, ProtocolStep):
                self.protocol_step(item)
                continue
            op_id, kind = item
            record = self.xv.scheduler.records.get(op_id)
            step = None if record is None else record.next_step
            if step is None or step.kind != StepKind(kind):
                have = "none" if step is None else step.kind.value
                raise InvalidArgumentError(
                    f"script expects {op_id} to take step {StepKind(kind).value}, "
                    f"its next is {have}"
                )
            self.client_step(op_id)
        return self.events[start:]

    def replay(
        self, trace: Trace, begin: Callable[[TraceStep], Any] | None = None
    ) -> list[TraceStep]:
        """Replay a vocabulary trace (see the module text); CAPTURE ``sid`` and other extra
        arguments are ignored. A DEFER entry moves its operation like a STEP entry: the gates
        decide whether the step runs or is deferred, so comparing :attr:`events` with the
        trace shows whether the reference deferred where the trace did."""
        script: list[ScriptItem] = []
        for step in trace.steps:
            if step.action is Action.BEGIN:
                if script:
                    self.run_script(script)
                    script = []
                if begin is not None:
                    begin(step)
                continue
            if step.action in (Action.STEP, Action.RESUME, Action.DEFER):
                script.append((str(step.args["op"]), StepKind(str(step.args["step"]))))
            elif step.action in PROTOCOL_ACTIONS:
                script.append(ProtocolStep.from_trace(step))
            else:
                raise InvalidArgumentError(f"cannot replay {step.action.value} on a snapshot job")
        return self.run_script(script)

    def trace(self, config: dict[str, Any] | None = None) -> Trace:
        """Everything that happened, client and protocol, as one vocabulary trace."""
        return Trace(system="fence", config=dict(config or {}), steps=tuple(self.events))
