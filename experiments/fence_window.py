"""E5, fence window: what a consistent snapshot costs the clients of an expandable volume.

The seed takes a snapshot of an expandable volume by starting a **consistency group** and laying a
**logical fence** on each member "first for the namespace, then for the OLS store, followed by the
data constituent volumes"; client requests that reach a fenced volume are *excluded and handled
after the snapshot* (deferred), and the volumes are unfenced in the opposite order. "The fence is
applied in a serial manner", so the time the namespace stays fenced grows with the number of data
constituents. The fence model (``xvol verify --suite fence``) derives that the data constituents
need no order among themselves: with held fences, ``NS < OLS < {DC1 | ... | DCn}`` keeps every
property the seed's serial order keeps (integrity, both availabilities, no lost request, unfence on
failure), while rolling fences (capture and unfence each volume right after its fence) break
integrity and availability for every order. This experiment measures what those choices cost:
for ``n`` data constituents, serial or parallel data-constituent fencing, and held or rolling
fences, how long client steps wait at fenced volumes and how much client throughput drops while
the snapshot is taken.

**One point** builds a cluster of :data:`NODES` nodes with an expandable volume of ``n`` data
constituents (round-robin over the nodes), starts ``clients`` closed-loop clients (each through
the N-module of its own node, each on its own objects: creates, rewrites, named reads, deletes and
migrations in a seeded mix, with exponential think times), lets them run alone for
:data:`BASELINE_S` of simulated time, then takes ``snapshots`` consistent snapshots,
:data:`GAP_S` apart, with the real snapshot job manager and coordinator
(:class:`~xvol.reference.snapshots.snapshot_coordinator.SnapshotJob`), stepping clients and
protocol together through the real interleaving driver
(:class:`~xvol.reference.snapshots.interleave.Interleaving`) and the volume's step scheduler. The
interleaving is chosen by a SimPy clock instead of a seeded coin: whoever is due next moves.

What is **measured on the reference** (deterministic for a seed): the protocol's steps and their
order (``job.enabled()`` decides what may run; a round takes every step enabled at its start; with
held fences the reference captures stage by stage, so serial fencing also captures serially, and
a rolling parallel stage is fenced, captured and unfenced as three rounds), the gate decisions
(which client step was deferred, at which volume, behind which fence, and when it resumed, as
DEFER and RESUME events in the driver's trace), the outcome of every client operation and every
byte it read, the integrity of every snapshot read back through the snapshot access layer, and the
cost of every call: the simulated seconds by which the cluster fabric's clock
(:class:`~xvol.reference.cluster.cf.LatencyModel`: 2 us per LPC, 100 us plus bytes at 1.25 GB/s
per RPC) advanced while the call ran, i.e. the CF messages it really sent. Which client steps
meet a fence depends on the interleaving, which the cost model below chooses; given the
interleaving, the reference alone decides what is deferred and what the snapshot holds.

What is **derived from the cost model** (documented here, applied by the SimPy processes):

* a call takes effect at the instant it is issued (a fence closes its gate, a capture takes the
  per-volume snapshot, an unfence opens the gate and wakes the steps deferred there); its cost is
  how long the caller then waits before its next call;
* the reference's UNFENCE opens the gate without a CF message: the experiment charges it the
  round trip of a real ping from the M-host to the volume's owner (sent on the fabric, measured);
* the coordinator sends a round's steps on one *lane per owner node* (COMMIT and DELETE_GROUP on
  the M-host's lane): a lane's steps go one after another, lanes overlap in time, and the next
  round starts when every lane is done. With the seed's serial order each round is one step; a
  parallel data stage of ``n`` constituents on :data:`NODES` nodes takes about ``n / NODES``
  round trips instead of ``n``;
* a client thinks for an exponential time (mean :data:`THINK_S`) between operations, then holds
  for each step's cost (its submission's too: locks, placement reads, preflight pings); a
  deferred step waits for its volume's unfence;
* the baseline throughput is the clients' finished operations per simulated second while no
  snapshot job runs (before the first job and between jobs); the window throughput counts the
  operations that finish between the first fence and the last unfence.

Columns derived from the cost model: every ``*_s`` and ``*_per_s`` column and the ratios built
from them; counts of events and violations are measured. Each point checks, and raises
:class:`~xvol.errors.IntegrityError` instead of reporting a number, that: every deferred step
resumed exactly once, after the unfence of its volume, and no step ran on a fenced volume; every
operation finished, having run each of its steps exactly once; every read returned the bytes last
written; the live volume ends equal to the clients' own record and referentially whole; every held
snapshot is referentially whole and each object in it holds a version its client wrote; with held
fences no named request is *stranded* (admitted by the namespace, then deferred at a volume that
was fenced before it began: the seed's request that "will not be serviced properly", the model's
named availability). A rolling snapshot that breaks integrity, or strands requests, is *not* an
error: it is what the model predicts, and the point reports the counts (``integrity_violations``,
``stranded_named``).

Uses: simpy, the reference (cluster, repository scheduler, snapshot coordinator, interleaving,
snapshot access layer), :mod:`xvol.experiments.framework`; matplotlib and pandas only inside the
figure and number functions. Wall-clock time fills only the timing column ``elapsed_s``.
"""

from __future__ import annotations

import itertools
import math
import random
import time
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import simpy

from xvol.errors import IntegrityError, InvalidArgumentError
from xvol.experiments.framework import Experiment, FigureSpec, Params, Record, grid
from xvol.reference.cluster.cluster import Cluster
from xvol.reference.cluster.storage import AggregateStorage
from xvol.reference.repository.expandable import ExpandableVolume
from xvol.reference.repository.files import MemberAccess
from xvol.reference.repository.handles import ObjectHandle
from xvol.reference.repository.steps import Op, OperationRecord, OpState
from xvol.reference.snapshots.interleave import Interleaving
from xvol.reference.snapshots.snapshot_access import SnapshotAccessLayer, integrity_violations
from xvol.reference.snapshots.snapshot_coordinator import (
    Phase,
    ProtocolStep,
    SnapshotJob,
    SnapshotJobManager,
    member_fence_order,
)
from xvol.reference.snapshots.volume_snapshots import VolumeSnapshots
from xvol.vocabulary import (
    NAMESPACE_VOLUME,
    Action,
    FenceMode,
    OperationKind,
    StepKind,
    TraceStep,
    VolumeRole,
    format_fence_order,
    role_of,
)

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

# --------------------------------------------------------------------------------------------
# The setting: cluster shape, client behaviour, timeline
# --------------------------------------------------------------------------------------------

NODES = 4
"""Cluster nodes; members are placed round-robin (NS on node1, OLS on node2, DC1 on node3, ...)
and the M-host that runs the snapshot coordinator is node1."""

VSERVER, VOLUME = "vs1", "xv"

THINK_S = 400e-6
"""Mean client think time between two operations (exponential), simulated seconds."""

BASELINE_S = 3e-3
"""Client-only time before the first snapshot."""

WARMUP_S = 1e-3
"""The start of the run left out of the baseline throughput (every client starts thinking at
time 0, so the first operations finish late)."""

GAP_S = 2e-3
"""Client-only time between the end of one snapshot job and the start of the next (long enough
for every deferred operation to finish first)."""

MAX_OBJECTS = 4
"""Objects a client keeps at most (it deletes one when it has this many)."""

OBJECT_BYTES = (64, 512)
"""Size range of the objects' contents (uniform, bytes)."""

OPERATION_MIX: tuple[tuple[OperationKind, float], ...] = (
    (OperationKind.READ_NAMED, 0.35),
    (OperationKind.WRITE, 0.25),
    (OperationKind.CREATE, 0.15),
    (OperationKind.DELETE, 0.10),
    (OperationKind.MIGRATE, 0.15),
)
"""Weights of a client's next operation when it owns objects (with none, it creates; with one
data constituent there is nowhere to migrate, and a migration becomes a rewrite)."""

FENCINGS = ("serial", "parallel")
"""``serial``: the seed's order NS < OLS < DC1 < ... < DCn; ``parallel``: NS < OLS < {DC1 | ... |
DCn} (the weakest order the fence model proves safe)."""

MHOST_LANE = "mhost"
"""The coordinator's lane for steps that name no member (COMMIT, DELETE_GROUP)."""

VOLUME_BLOCKS = 256
"""Blocks of each member volume (1 MiB): room for the clients' objects and a few snapshots."""


def _storage(node: str) -> AggregateStorage:
    """Each node's storage: a small RAID-4 aggregate on memory disks."""
    return AggregateStorage.memory(node, level="4", data_disks=2, blocks_per_disk=4096)


# --------------------------------------------------------------------------------------------
# What one snapshot cost
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SnapshotMeasure:
    """The client-visible cost of one consistent snapshot (seconds are simulated seconds).

    ``window_s`` runs from the first fence to the last unfence, i.e. while some member's gate is
    closed; ``job_s`` from the job's start to the end of DELETE_GROUP. Deferral statistics are
    over the client steps deferred during this job; the window throughput counts the client
    operations that finished within the window."""

    snapshot: int
    order: str
    rounds: int
    protocol_steps: int
    job_s: float
    window_s: float
    ns_fenced_s: float
    deferred_steps: int
    deferred_ns: int
    deferred_ols: int
    deferred_dc: int
    mid_operation_deferrals: int
    stranded_named: int
    mean_deferred_s: float
    max_deferred_s: float
    total_deferred_s: float
    blocked_fraction: float
    window_ops: int
    window_ops_per_s: float
    baseline_ops_per_s: float
    throughput_ratio: float
    snapshot_objects: int
    integrity_violations: int


@dataclass
class _Client:
    """One client: its seeded choices, its N-module, and its own record of its objects: the
    bytes each path holds now, every version a path ever held (a snapshot may show any of them)
    and the latest handle. Paths are never reused, and no other client touches them."""

    number: int
    rng: random.Random
    access: MemberAccess
    current: dict[str, bytes] = field(default_factory=dict)
    history: dict[str, list[bytes]] = field(default_factory=dict)
    handles: dict[str, ObjectHandle] = field(default_factory=dict)
    made: int = 0
    ops: int = 0


@dataclass(frozen=True)
class _Intent:
    """A client operation about to be submitted: what it does to which path, with which bytes."""

    kind: OperationKind
    path: str
    data: bytes | None
    op: Op[Any]


@dataclass(frozen=True)
class _ProtocolCall:
    """One protocol step as it ran: took effect at ``issued``, its lane went on at ``done``."""

    step: ProtocolStep
    issued: float
    done: float


@dataclass
class _Job:
    """One snapshot job on the simulated clock: when it started and ended, its rounds and the
    protocol steps it took."""

    number: int
    job: SnapshotJob
    started: float
    ended: float = 0.0
    rounds: int = 0
    calls: list[_ProtocolCall] = field(default_factory=list)

    def issued(self, action: Action, volume: str) -> float:
        """When the protocol step ``action`` on ``volume`` took effect."""
        for call in self.calls:
            if call.step.action is action and call.step.volume == volume:
                return call.issued
        raise IntegrityError(f"E5: snapshot {self.number} never took {action.value}({volume})")


# --------------------------------------------------------------------------------------------
# The simulation: clients and coordinator on one SimPy clock, driving the real reference
# --------------------------------------------------------------------------------------------


class FenceWindowSimulation:
    """One grid point (see the module text). Life cycle: built (cluster, expandable volume,
    clients), then :meth:`run` once: clients and coordinator move on the SimPy clock until the
    last snapshot is taken and every client operation has finished; then every check runs and
    the measures of each snapshot come back. Not reusable.

    Invariants while running: the fabric clock only advances inside a call made by exactly one
    SimPy process (SimPy runs one process at a time), so the advance around a call is that call's
    cost; ``opened[v]`` is the event that fires at the next unfence of member ``v``."""

    def __init__(
        self,
        data_constituents: int,
        fencing: str,
        mode: str,
        clients: int,
        snapshots: int,
        seed: int,
    ) -> None:
        if not 1 <= data_constituents <= 256:
            raise InvalidArgumentError("an expandable volume has 1..256 data constituents")
        if fencing not in FENCINGS:
            raise InvalidArgumentError(f"fencing is one of {FENCINGS}, not {fencing!r}")
        if clients < 1 or snapshots < 1:
            raise InvalidArgumentError("a point needs at least one client and one snapshot")
        if mode not in {m.value for m in FenceMode}:
            raise InvalidArgumentError(f"mode is held or rolling, not {mode!r}")
        self.dcs = data_constituents
        self.mode = FenceMode(mode)
        self.snapshots = snapshots
        rng = random.Random(seed)
        self.cluster = Cluster(NODES, seed=seed, storage_factory=_storage)
        mhost = self.cluster.mhost("node1")
        mhost.create_vserver(VSERVER, ["root"])
        mhost.create_expandable_volume(
            VSERVER, VOLUME, data_constituents=data_constituents, volume_blocks=VOLUME_BLOCKS
        )
        self.xv: ExpandableVolume = self.cluster.expandable(VSERVER, VOLUME)
        self.clock = self.cluster.fabric.clock
        self.manager = SnapshotJobManager(self.cluster, "node1")
        self.pinger = VolumeSnapshots(self.cluster, "node1", VSERVER, VOLUME)
        where = {m: self.cluster.member_location(VSERVER, VOLUME, m) for m in self.xv.members}
        self.owner = {m: node for m, (node, _) in where.items()}
        self.volume_id = {m: vid for m, (_, vid) in where.items()}
        self.order = member_fence_order(self.xv.members, parallel_data=fencing == "parallel")
        self.clients = [
            _Client(
                c,
                random.Random(rng.getrandbits(63)),
                self.cluster.node(f"node{c % NODES + 1}").nmodule.access(VSERVER, VOLUME),
            )
            for c in range(clients)
        ]
        self.env = simpy.Environment()
        self.driver = Interleaving(self.xv)  # its job is set while a snapshot is being taken
        self.times: list[float] = []  # the simulated time of each event in driver.events
        self.opened: dict[str, Any] = {m: self.env.event() for m in self.xv.members}
        self.completions: list[float] = []  # when each client operation finished
        self.jobs: list[_Job] = []
        self.stopping = False
        self.started = False

    # -- helpers ------------------------------------------------------------------------------

    def _log(self, event: TraceStep | None) -> TraceStep | None:
        """Stamp the event the driver just appended with the simulated time."""
        if event is not None:
            self.times.append(self.env.now)
        return event

    def _cost(self, before: float) -> float:
        """Simulated seconds the fabric clock advanced since ``before``: the CF messages of the
        call just made."""
        return max(0.0, self.clock.now - before)

    # -- clients ------------------------------------------------------------------------------

    def _choose(self, client: _Client) -> _Intent:
        """The client's next operation (seeded), as a generator ready to submit."""
        rng, xv, access = client.rng, self.xv, client.access
        owned = sorted(client.current)
        kind: OperationKind
        if not owned:
            kind = OperationKind.CREATE
        elif len(owned) >= MAX_OBJECTS:
            kind = OperationKind.DELETE
        else:
            kinds, weights = zip(*OPERATION_MIX, strict=True)
            kind = rng.choices(kinds, weights)[0]
        if kind is OperationKind.MIGRATE and self.dcs == 1:
            kind = OperationKind.WRITE
        if kind is OperationKind.CREATE:
            client.made += 1
            path = f"/c{client.number}-{client.made}"
            data = rng.randbytes(rng.randint(*OBJECT_BYTES))
            location = rng.randint(1, self.dcs)
            return _Intent(
                kind, path, data, xv.op_create(path, data, access=access, location=location)
            )
        path = owned[rng.randrange(len(owned))]
        if kind is OperationKind.WRITE:
            data = rng.randbytes(rng.randint(*OBJECT_BYTES))
            return _Intent(kind, path, data, xv.op_replace(path, data, access=access))
        if kind is OperationKind.READ_NAMED:
            return _Intent(kind, path, None, xv.op_read(path, access=access))
        if kind is OperationKind.DELETE:
            return _Intent(kind, path, None, xv.op_delete(path, access=access))
        handle = client.handles[path]
        target = rng.choice([k for k in range(1, self.dcs + 1) if k != handle.location_id])
        return _Intent(kind, path, None, xv.op_migrate(handle, target, access=access))

    def _settle(self, client: _Client, intent: _Intent, record: OperationRecord) -> None:
        """Check a finished operation's outcome against the client's record, then update it."""
        if record.state is not OpState.DONE:
            raise IntegrityError(f"E5: {record.op_id} ({intent.kind}) failed: {record.error}")
        path, result = intent.path, record.result
        if intent.kind in (OperationKind.CREATE, OperationKind.WRITE):
            assert intent.data is not None
            client.current[path] = intent.data
            client.history.setdefault(path, []).append(intent.data)
            client.handles[path] = result
        elif intent.kind is OperationKind.READ_NAMED:
            data, handle = result
            if data != client.current[path]:
                raise IntegrityError(f"E5: {record.op_id} read wrong bytes from {path}")
            client.handles[path] = handle
        elif intent.kind is OperationKind.DELETE:
            del client.current[path], client.handles[path]
        else:  # migrate: same object, new location
            if result.goid != client.handles[path].goid:
                raise IntegrityError(f"E5: {record.op_id} moved {path} to another object")
            client.handles[path] = result

    def _client(self, client: _Client) -> Generator[Any, Any, None]:
        """A closed-loop client: think, submit one operation, move it step by step (waiting out
        each step's cost, and each deferral until its volume's unfence), check it; again until
        the last snapshot is taken."""
        env = self.env
        while True:
            yield env.timeout(client.rng.expovariate(1.0 / THINK_S))
            if self.stopping:
                return
            intent = self._choose(client)
            client.ops += 1
            op_id = f"c{client.number}.{client.ops}"
            before = self.clock.now
            self.xv.submit(intent.kind, intent.op, op_id=op_id, label=intent.path)
            record = self.xv.scheduler.records[op_id]
            yield env.timeout(self._cost(before))  # locks, placement reads, preflight pings
            while not record.finished:
                before = self.clock.now
                event = self._log(self.driver.client_step(op_id))
                if event is None:
                    raise IntegrityError(f"E5: {op_id} cannot move ({record.state.value})")
                if event.action is Action.DEFER:
                    if "reason" in event.args:
                        raise IntegrityError(f"E5: {op_id} deferred: {event.args['reason']}")
                    yield self.opened[str(event.args["volume"])]
                    continue
                yield env.timeout(self._cost(before))
            self._settle(client, intent, record)
            self.completions.append(env.now)

    # -- the coordinator ----------------------------------------------------------------------

    def _lane(self, job: _Job, steps: Sequence[ProtocolStep]) -> Generator[Any, Any, None]:
        """One lane of a round: its steps one after another, each waiting out its cost. An
        UNFENCE is charged a real ping to the owner and wakes the steps deferred there."""
        for step in steps:
            issued, before = self.env.now, self.clock.now
            event = self._log(self.driver.protocol_step(step))
            assert event is not None
            if event.action is Action.FAIL:
                raise IntegrityError(f"E5: snapshot {job.number} failed at {step}: {event.args}")
            if step.action is Action.UNFENCE:
                assert step.volume is not None
                self.pinger.ping(self.volume_id[step.volume])
                woken, self.opened[step.volume] = self.opened[step.volume], self.env.event()
                woken.succeed()
            cost = self._cost(before)
            job.calls.append(_ProtocolCall(step, issued, issued + cost))
            yield self.env.timeout(cost)

    def _snapshot(self, number: int) -> Generator[Any, Any, None]:
        """Take snapshot ``s<number>``: rounds of every protocol step enabled at the round's
        start, one lane per owner node, until the consistency group is deleted."""
        before, started = self.clock.now, self.env.now
        job = self.manager.start(VSERVER, VOLUME, f"s{number}", order=self.order, mode=self.mode)
        record = _Job(number, job, started)
        self.jobs.append(record)
        self.driver.job = job
        yield self.env.timeout(self._cost(before))  # reserve the ID, start the group
        while not job.ended:
            lanes: dict[str, list[ProtocolStep]] = {}
            for step in job.enabled():
                lane = MHOST_LANE if step.volume is None else self.owner[step.volume]
                lanes.setdefault(lane, []).append(step)
            record.rounds += 1
            yield self.env.all_of(
                [self.env.process(self._lane(record, lanes[lane])) for lane in sorted(lanes)]
            )
        record.ended = self.env.now
        self.driver.job = None
        if job.phase is not Phase.COMMITTED:
            raise IntegrityError(f"E5: snapshot {number} did not commit: {job.reason}")

    def _coordinator(self) -> Generator[Any, Any, None]:
        yield self.env.timeout(BASELINE_S)
        for number in range(1, self.snapshots + 1):
            if number > 1:
                yield self.env.timeout(GAP_S)
            yield from self._snapshot(number)
        self.stopping = True

    # -- running ------------------------------------------------------------------------------

    def run(self) -> list[SnapshotMeasure]:
        """Run the point (see the class text); the measures of each snapshot, in order."""
        if self.started:
            raise InvalidArgumentError("a fence-window simulation runs once")
        self.started = True
        processes = [self.env.process(self._client(c)) for c in self.clients]
        processes.append(self.env.process(self._coordinator()))
        self.env.run(until=self.env.all_of(processes))
        self._check_protocol()
        self._check_client_steps()
        self._check_live_volume()
        return [self._measure(job) for job in self.jobs]

    # -- checks -------------------------------------------------------------------------------

    def _check_protocol(self) -> None:
        """Each job fenced, captured and unfenced every member once, in its order's stages
        (HELD: unfenced in reverse stage order), and left every gate open."""
        stage = {v: i for i, members in enumerate(self.order) for v in members}
        for record in self.jobs:
            for action in (Action.FENCE, Action.CAPTURE, Action.UNFENCE):
                taken = [c.step.volume for c in record.calls if c.step.action is action]
                if sorted(str(v) for v in taken) != sorted(self.xv.members):
                    raise IntegrityError(f"E5: snapshot {record.number}: {action.value} {taken}")
                ranks = [stage[str(v)] for v in taken]
                expected = sorted(
                    ranks, reverse=action is Action.UNFENCE and self.mode is FenceMode.HELD
                )
                if ranks != expected:
                    raise IntegrityError(
                        f"E5: snapshot {record.number}: {action.value} out of order: {taken}"
                    )
        if not all(self.xv.gate(m).is_open for m in self.xv.members):
            raise IntegrityError("E5: a member is still fenced after the last snapshot")

    def _fenced_spans(self) -> dict[str, list[tuple[int, int]]]:
        """Per member, the (FENCE, UNFENCE) event indices of each job in the driver's trace."""
        spans: dict[str, list[tuple[int, int]]] = {m: [] for m in self.xv.members}
        fenced_at: dict[str, int] = {}
        for i, event in enumerate(self.driver.events):
            if event.action is Action.FENCE:
                fenced_at[str(event.args["volume"])] = i
            elif event.action is Action.UNFENCE:
                volume = str(event.args["volume"])
                spans[volume].append((fenced_at.pop(volume), i))
        return spans

    def _check_client_steps(self) -> None:
        """No client step ran on a fenced member; every deferral happened behind a fence and
        resumed exactly once, as the operation's next event, after that fence's unfence; every
        operation ran each of its steps exactly once (the trace equals its record)."""
        spans = self._fenced_spans()
        events = self.driver.events
        by_op: dict[str, list[int]] = {}
        for i, event in enumerate(events):
            if event.action in (Action.STEP, Action.DEFER, Action.RESUME):
                by_op.setdefault(str(event.args["op"]), []).append(i)
        for i, event in enumerate(events):
            if event.action not in (Action.STEP, Action.RESUME, Action.DEFER):
                continue
            volume = str(event.args["volume"])
            inside = [s for s in spans[volume] if s[0] < i < s[1]]
            if event.action is not Action.DEFER and inside:
                raise IntegrityError(f"E5: {event} ran while {volume} was fenced")
            if event.action is Action.DEFER and not inside:
                raise IntegrityError(f"E5: {event} was deferred while {volume} was open")
        for op_id, indices in by_op.items():
            record = self.xv.scheduler.records[op_id]
            if not record.finished:
                raise IntegrityError(f"E5: {op_id} never finished")
            ran = [
                (StepKind(str(events[i].args["step"])), str(events[i].args["volume"]))
                for i in indices
                if events[i].action is not Action.DEFER
            ]
            if ran != record.steps_run:
                raise IntegrityError(f"E5: {op_id} ran {ran}, its record says {record.steps_run}")
            for a, b in itertools.pairwise(indices):
                if events[a].action is Action.DEFER:
                    resumed = events[b]
                    same = all(resumed.args[k] == events[a].args[k] for k in ("step", "volume"))
                    if resumed.action is not Action.RESUME or not same:
                        raise IntegrityError(f"E5: deferred {events[a]} was followed by {resumed}")
                    volume = str(events[a].args["volume"])
                    span = next(s for s in spans[volume] if s[0] < a < s[1])
                    if b < span[1]:
                        raise IntegrityError(f"E5: {resumed} before the unfence of {volume}")
            if events[indices[-1]].action is Action.DEFER:
                raise IntegrityError(f"E5: {op_id}'s deferred step never resumed")
        counters = self.xv.scheduler.counters
        if counters.deferrals != counters.resumes or self.xv.scheduler.unfinished():
            raise IntegrityError(f"E5: deferrals and resumes differ: {counters}")

    def _check_live_volume(self) -> None:
        """The live volume holds exactly the clients' objects, with their last bytes, and is
        referentially whole."""
        expected = {p: d for c in self.clients for p, d in c.current.items()}
        names = sorted("/" + e.name for e in self.xv.readdir("/"))
        if names != sorted(expected):
            raise IntegrityError(
                f"E5: the live volume names {names}, clients expect {sorted(expected)}"
            )
        for path, data in expected.items():
            if self.xv.read(path) != data:
                raise IntegrityError(f"E5: {path} does not hold its last bytes")
        if not self.xv.check_references().ok:
            raise IntegrityError("E5: the live volume is not referentially whole")

    def _check_snapshot(self, number: int) -> tuple[int, int]:
        """Read snapshot ``s<number>`` back: (objects named in it, integrity violations). A held
        snapshot must be whole, and each object in a whole snapshot must hold a version its
        client wrote; a broken rolling snapshot is reported, not raised."""
        view = SnapshotAccessLayer(self.cluster, "node1").open(VSERVER, VOLUME, f"s{number}")
        violations = integrity_violations(view.check_references())
        if violations and self.mode is FenceMode.HELD:
            raise IntegrityError(f"E5: held snapshot s{number} is broken: {violations[:3]}")
        history = {p: v for c in self.clients for p, v in c.history.items()}
        named = view.walk()
        if not violations:
            for path, _goid in named:
                if view.read(path) not in history.get(path, []):
                    raise IntegrityError(f"E5: s{number} holds bytes never written to {path}")
        return len(named), len(violations)

    # -- measures -----------------------------------------------------------------------------

    def _baseline_ops_per_s(self) -> float:
        """Client operations finished per simulated second while no snapshot job ran: before
        the first job (after the warm-up) and in the gaps between jobs."""
        quiet = [(WARMUP_S, self.jobs[0].started)]
        quiet += [(a.ended, b.started) for a, b in itertools.pairwise(self.jobs)]
        finished = sum(any(a <= t < b for a, b in quiet) for t in self.completions)
        return finished / sum(b - a for a, b in quiet)

    def _measure(self, record: _Job) -> SnapshotMeasure:
        """The measures of one snapshot (see :class:`SnapshotMeasure`)."""
        events, times = self.driver.events, self.times
        fences = [c.issued for c in record.calls if c.step.action is Action.FENCE]
        unfences = [c.issued for c in record.calls if c.step.action is Action.UNFENCE]
        start, end = min(fences), max(unfences)
        window = end - start
        ns_fenced = record.issued(Action.UNFENCE, "NS") - record.issued(Action.FENCE, "NS")
        deferred: list[tuple[float, float]] = []
        roles = {VolumeRole.NAMESPACE: 0, VolumeRole.OLS: 0, VolumeRole.DATA: 0}
        mid_operation = stranded = 0
        spans = self._fenced_spans()
        admitted: dict[str, tuple[int, str]] = {}  # op -> (index, volume) of its first step
        for i, event in enumerate(events):
            op = str(event.args.get("op", ""))
            if event.action in (Action.STEP, Action.RESUME):
                admitted.setdefault(op, (i, str(event.args["volume"])))
            if event.action is not Action.DEFER or not record.started <= times[i] <= record.ended:
                continue
            volume = str(event.args["volume"])
            if op in admitted:
                mid_operation += 1
                first, where = admitted[op]
                if where == NAMESPACE_VOLUME and any(a < first < b for a, b in spans[volume]):
                    stranded += 1
            resumed = next(
                times[j]
                for j in range(i + 1, len(events))
                if events[j].action is Action.RESUME and events[j].args["op"] == op
            )
            deferred.append((times[i], resumed))
            roles[role_of(volume)] += 1
        if stranded and self.mode is FenceMode.HELD:
            raise IntegrityError(
                f"E5: snapshot {record.number}: {stranded} named requests admitted by the "
                "namespace were deferred at a volume fenced before they began"
            )
        waits = [b - a for a, b in deferred]
        blocked = sum(max(0.0, min(b, end) - max(a, start)) for a, b in deferred)
        window_ops = sum(start <= t < end for t in self.completions)
        baseline = self._baseline_ops_per_s()
        objects, violations = self._check_snapshot(record.number)
        return SnapshotMeasure(
            snapshot=record.number,
            order=format_fence_order(self.order),
            rounds=record.rounds,
            protocol_steps=len(record.calls),
            job_s=record.ended - record.started,
            window_s=window,
            ns_fenced_s=ns_fenced,
            deferred_steps=len(deferred),
            deferred_ns=roles[VolumeRole.NAMESPACE],
            deferred_ols=roles[VolumeRole.OLS],
            deferred_dc=roles[VolumeRole.DATA],
            mid_operation_deferrals=mid_operation,
            stranded_named=stranded,
            mean_deferred_s=sum(waits) / len(waits) if waits else 0.0,
            max_deferred_s=max(waits, default=0.0),
            total_deferred_s=sum(waits),
            blocked_fraction=blocked / (len(self.clients) * window),
            window_ops=window_ops,
            window_ops_per_s=window_ops / window,
            baseline_ops_per_s=baseline,
            throughput_ratio=(window_ops / window) / baseline if baseline else 0.0,
            snapshot_objects=objects,
            integrity_violations=violations,
        )


def measure(
    data_constituents: int,
    fencing: str,
    mode: str,
    *,
    clients: int = 4,
    snapshots: int = 1,
    seed: int = 0,
) -> list[SnapshotMeasure]:
    """Run one fence-window point (see :class:`FenceWindowSimulation`); one measure per
    snapshot. Raises :class:`IntegrityError` if any check fails."""
    return FenceWindowSimulation(data_constituents, fencing, mode, clients, snapshots, seed).run()


# --------------------------------------------------------------------------------------------
# The experiment: grid point, figures, quoted numbers
# --------------------------------------------------------------------------------------------


def point(params: Params, seed: int) -> list[Record]:
    """Measure one point: one row per snapshot."""
    began = time.perf_counter()
    measures = measure(
        int(params["data_constituents"]),
        str(params["fencing"]),
        str(params["mode"]),
        clients=int(params["clients"]),
        snapshots=int(params["snapshots"]),
        seed=seed,
    )
    elapsed = time.perf_counter() - began
    rows: list[Record] = []
    for m in measures:
        row: Record = {k: v for k, v in vars(m).items()}
        row["elapsed_s"] = elapsed
        rows.append(row)
    return rows


SERIES: tuple[tuple[str, str], ...] = (
    ("held", "serial"),
    ("held", "parallel"),
    ("rolling", "serial"),
    ("rolling", "parallel"),
)
"""Every (mode, fencing) line of the figures, in legend order; each keeps one colour."""

_LABELS = {
    ("held", "serial"): "held, serial DCs (the seed's)",
    ("held", "parallel"): "held, parallel DCs (proved safe)",
    ("rolling", "serial"): "rolling, serial DCs (unsafe)",
    ("rolling", "parallel"): "rolling, parallel DCs (unsafe)",
}


def _series(frame: pd.DataFrame, mode: str, fencing: str) -> pd.DataFrame:
    """The rows of one (mode, fencing) line."""
    return frame[(frame["mode"] == mode) & (frame["fencing"] == fencing)]


def _weighted_mean_deferred(rows: pd.DataFrame) -> float:
    """Mean simulated seconds a deferred step waited, over every deferred step of ``rows``."""
    steps = int(rows["deferred_steps"].sum())
    return float(rows["total_deferred_s"].sum()) / steps if steps else 0.0


def _per_n(frame: pd.DataFrame, mode: str, fencing: str, value: str) -> pd.Series:
    """``value`` against data constituents for one line (mean over snapshots; deferred time is
    weighted by deferred steps)."""
    rows = _series(frame, mode, fencing)
    by_n = rows.groupby("data_constituents")
    if value == "mean_deferred_s":
        steps = by_n["deferred_steps"].sum()
        return (by_n["total_deferred_s"].sum() / steps.where(steps > 0)).fillna(0.0)
    return by_n[value].mean()


def _draw_lines(
    axes: Axes, frame: pd.DataFrame, value: str, scale: float, *, log: bool = False
) -> None:
    """One line per (mode, fencing): held solid, rolling dashed; a black ring where a rolling
    snapshot was broken. On a log scale, points of value 0 (no deferral) are left out."""
    from matplotlib.ticker import FuncFormatter, NullLocator

    ringed = False
    for i, (mode, fencing) in enumerate(SERIES):
        curve = _per_n(frame, mode, fencing, value)
        if log:
            curve = curve[curve > 0]
        if curve.empty:
            continue
        broken = (
            _series(frame, mode, fencing)
            .groupby("data_constituents")["integrity_violations"]
            .apply(lambda v: int((v > 0).sum()))
        )
        total = int(_series(frame, mode, fencing)["integrity_violations"].gt(0).sum())
        snaps = len(_series(frame, mode, fencing))
        label = _LABELS[(mode, fencing)]
        if mode == "rolling":
            label += f": {total} of {snaps} snapshots broken"
        style = "-" if mode == "held" else "--"
        xs = [int(x) for x in curve.index]
        ys = [float(y) * scale for y in curve]
        axes.plot(xs, ys, color=f"C{i}", linestyle=style, marker="o", label=label)
        bad = [(x, y) for x, y in zip(xs, ys, strict=True) if broken.get(x, 0) > 0]
        ring = "ringed: a snapshot at this n was broken" if not ringed else "_ring"
        ringed = ringed or bool(bad)
        if bad:
            axes.plot(
                [x for x, _ in bad],
                [y for _, y in bad],
                linestyle="none",
                marker="o",
                markersize=9,
                markerfacecolor="none",
                color="black",
                label=ring,
            )
    ns = sorted(int(n) for n in frame["data_constituents"].unique())
    axes.set_xscale("log", base=2)
    axes.set_xticks(ns, [str(n) for n in ns])
    axes.xaxis.set_minor_locator(NullLocator())
    axes.set_xlabel("data constituents n")
    if log:
        axes.set_yscale("log")
        axes.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        axes.yaxis.set_minor_formatter(FuncFormatter(_two_and_five))


def _two_and_five(value: float, _position: int) -> str:
    """Minor tick labels of a log axis: only 2 and 5 times a power of ten (no crowding)."""
    if value <= 0:
        return ""
    leading = value / 10 ** math.floor(math.log10(value) + 1e-9)
    return f"{value:g}" if round(leading) in (2, 5) else ""


def _legend(figure: Figure, axes: Axes) -> None:
    """One legend for both panels, below them."""
    handles, labels = axes.get_legend_handles_labels()
    entries = sorted(zip(labels, handles, strict=True), key=lambda e: e[0].startswith("ringed"))
    figure.legend(
        [h for _, h in entries],
        [label for label, _ in entries],
        loc="outside lower center",
        ncols=2,
        fontsize=8,
    )


def deferred_and_throughput(frame: pd.DataFrame) -> Figure:
    """Two panels against n: mean time a deferred client step waited (log scale), and client
    throughput during the fence window relative to the baseline."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(10.0, 4.6), layout="constrained")
    waited, throughput = figure.subplots(1, 2)
    _draw_lines(waited, frame, "mean_deferred_s", 1e3, log=True)
    waited.set_ylabel("mean wait of a deferred client step (ms, simulated)")
    waited.set_title("client steps deferred at fenced volumes")
    _draw_lines(throughput, frame, "throughput_ratio", 100.0)
    throughput.set_ylabel("client ops/s during the fence window (% of baseline)")
    throughput.set_title("client throughput while some volume is fenced")
    throughput.set_ylim(bottom=0)
    _legend(figure, waited)
    figure.suptitle("E5 fence window: the client-visible cost of a consistent snapshot")
    return figure


def window_and_blocking(frame: pd.DataFrame) -> Figure:
    """Two panels against n: how long some member is fenced (the fence window) and the share
    of client time spent waiting at a fence during it."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(10.0, 4.6), layout="constrained")
    window, blocked = figure.subplots(1, 2)
    _draw_lines(window, frame, "window_s", 1e3, log=True)
    window.set_ylabel("fence window (ms, simulated)")
    window.set_title("first fence to last unfence")
    _draw_lines(blocked, frame, "blocked_fraction", 100.0)
    blocked.set_ylabel("client time blocked at a fence (% of window)")
    blocked.set_title("clients waiting during the window")
    blocked.set_ylim(0, 100)
    _legend(figure, window)
    figure.suptitle("E5 fence window: window length and client blocking")
    return figure


def quoted_numbers(frame: pd.DataFrame) -> dict[str, str]:
    """What the paper quotes, at the largest n measured: the mean wait of a deferred step with
    serial and with parallel data-constituent fencing (held fences) and their ratio, the fence
    windows, the client time lost per snapshot, the throughput drop during the window, held
    against rolling (wait, and rolling's window throughput as % of baseline); over the whole
    grid, how many rolling snapshots were broken and how many named requests rolling fences
    stranded (held fences never break a snapshot or strand a request: the point raises)."""
    largest = int(frame["data_constituents"].max())
    at = frame[frame["data_constituents"] == largest]

    def rows(mode: str, fencing: str) -> pd.DataFrame:
        found = _series(at, mode, fencing)
        if found.empty:
            raise InvalidArgumentError(f"no {mode}/{fencing} rows at n={largest}")
        return found

    serial = _weighted_mean_deferred(rows("held", "serial"))
    parallel = _weighted_mean_deferred(rows("held", "parallel"))
    rolling = _weighted_mean_deferred(rows("rolling", "serial"))

    def drop(mode: str, fencing: str) -> str:
        return f"{100.0 * (1.0 - float(rows(mode, fencing)['throughput_ratio'].mean())):.0f}"

    def lost(fencing: str) -> str:
        return f"{float(rows('held', fencing)['total_deferred_s'].mean()) * 1e3:.1f}"

    def ratio(a: float, b: float) -> str:
        return f"{a / b:.1f}" if b > 0 else "n/a"

    rolling_rows = frame[frame["mode"] == "rolling"]
    held_rows = frame[frame["mode"] == "held"]
    return {
        "EFiveLargestN": str(largest),
        "EFiveHeldSerialDeferredMs": f"{serial * 1e3:.2f}",
        "EFiveHeldParallelDeferredMs": f"{parallel * 1e3:.2f}",
        "EFiveSerialOverParallel": ratio(serial, parallel),
        "EFiveHeldSerialWindowMs": f"{float(rows('held', 'serial')['window_s'].mean()) * 1e3:.2f}",
        "EFiveHeldParallelWindowMs": (
            f"{float(rows('held', 'parallel')['window_s'].mean()) * 1e3:.2f}"
        ),
        "EFiveHeldSerialLostClientMs": lost("serial"),
        "EFiveHeldParallelLostClientMs": lost("parallel"),
        "EFiveHeldSerialThroughputDrop": drop("held", "serial"),
        "EFiveHeldParallelThroughputDrop": drop("held", "parallel"),
        "EFiveRollingThroughputPct": (
            f"{100.0 * float(rows('rolling', 'serial')['throughput_ratio'].mean()):.0f}"
        ),
        "EFiveRollingDeferredMs": f"{rolling * 1e3:.3f}",
        "EFiveHeldOverRolling": ratio(serial, rolling),
        "EFiveRollingBroken": str(int((rolling_rows["integrity_violations"] > 0).sum())),
        "EFiveRollingStranded": str(int(rolling_rows["stranded_named"].sum())),
        "EFiveRollingSnapshots": str(len(rolling_rows)),
        "EFiveHeldSnapshots": str(len(held_rows)),
    }


def _quick_point(point: Params) -> bool:
    """A parallel stage of one data constituent is the serial order: measured once."""
    return not (point["fencing"] == "parallel" and point["data_constituents"] == 1)


QUICK = grid(
    {
        "data_constituents": [1, 2, 4],
        "fencing": list(FENCINGS),
        "mode": ["held", "rolling"],
        "clients": [2],
        "snapshots": [1],
    },
    where=_quick_point,
)
FULL = grid(
    {
        "data_constituents": [1, 2, 4, 8, 16, 32],
        "fencing": list(FENCINGS),
        "mode": ["held", "rolling"],
        "clients": [8],
        "snapshots": [3],
    },
    where=_quick_point,
)

EXPERIMENT = Experiment(
    name="fence-window",
    title="E5 fence window: deferred client steps and throughput during a consistent snapshot",
    measures="simulated wait of client steps deferred at fences and client throughput during "
    "the fence window against data constituents, serial vs parallel DC fencing, held vs rolling",
    quick=QUICK,
    full=FULL,
    point=point,
    columns={
        "data_constituents": "data constituents n of the expandable volume (NODES=4 nodes)",
        "fencing": "serial: NS < OLS < DC1 < ... < DCn (the seed's); parallel: NS < OLS < "
        "{DC1 | ... | DCn}",
        "mode": "held: fences kept until every volume is captured (the seed's); rolling: each "
        "volume captured and unfenced right after its fence",
        "clients": "closed-loop clients (exponential think time, mean THINK_S)",
        "snapshots": "consistent snapshots taken per point, GAP_S apart",
        "snapshot": "which snapshot of the point (1, 2, ...)",
        "order": "the fence order, as the reference formats it",
        "rounds": "coordinator rounds (each: every protocol step enabled at its start)",
        "protocol_steps": "protocol steps taken (fence, capture, unfence per member, commit, "
        "delete-group)",
        "job_s": "simulated seconds from the job's start to the end of delete-group",
        "window_s": "simulated seconds from the first fence to the last unfence",
        "ns_fenced_s": "simulated seconds the namespace volume was fenced",
        "deferred_steps": "client steps deferred at a fenced member (DEFER events)",
        "deferred_ns": "of which at the namespace volume",
        "deferred_ols": "of which at the OLS volume",
        "deferred_dc": "of which at a data constituent",
        "mid_operation_deferrals": "deferrals of operations that had already run a step",
        "stranded_named": "deferrals of named requests the namespace admitted while the volume "
        "they were deferred at was already fenced (the seed's unserviceable request; held: "
        "always 0, or the point fails)",
        "mean_deferred_s": "mean simulated seconds from a step's DEFER to its RESUME",
        "max_deferred_s": "longest such wait",
        "total_deferred_s": "sum of the waits (client-seconds lost to fences)",
        "blocked_fraction": "client time blocked at a fence during the window / (clients x "
        "window_s)",
        "window_ops": "client operations that finished during the window",
        "window_ops_per_s": "window_ops / window_s",
        "baseline_ops_per_s": "client operations finished per simulated second while no "
        "snapshot job ran (before the first, between jobs)",
        "throughput_ratio": "window_ops_per_s / baseline_ops_per_s",
        "snapshot_objects": "objects named in the snapshot",
        "integrity_violations": "dangling names and locations found reading the snapshot back "
        "(held: always 0, or the point fails)",
        "elapsed_s": "wall time of the whole point in seconds (varies run to run)",
    },
    figures=(
        FigureSpec("fence-window-deferred", deferred_and_throughput, paper=True),
        FigureSpec("fence-window-length", window_and_blocking),
    ),
    keys=("snapshot",),
    timing_columns=("elapsed_s",),
    default_seed=2012,
    paper_numbers=quoted_numbers,
)
