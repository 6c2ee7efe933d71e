"""The conformance suite: model counterexamples and safe model runs replayed on the reference.

What it replays:

1. **the fence model's counterexamples**: when ``xvol verify`` ran the fence suite before it
   (``SuiteOptions.earlier``), exactly the counterexamples that suite reported (z3's for every
   violated cell of the n = 2 matrix, the explicit engine's, the protocol-bug cells'); run on its
   own, it finds them itself: for every order of the matrix (24 total orders and the parallel
   ones, both fence modes, both step disciplines) and the two protocol-bug cells, a
   breadth-first search of the model's states bounded at the fence suite's
   :data:`~xvol.verification.suite_fence.DEPTH` (the fence suite fails if any shortest
   counterexample were deeper: its engines would disagree), which yields a shortest
   counterexample per violated property; in ``--quick`` one order per (mode, discipline), the
   seed's reversed. The protocol bugs are injected by the replay
   (:func:`~xvol.verification.conformance.replay_with_bugs`);
2. **the mirror model's counterexamples**: likewise the mirror suite's when it ran before
   (and, when none of those has a size the reference can build, e.g. its quick run at n = 1,
   also its own search), otherwise, per variant (each bug toggle and ``preserve-off``) and
   size ``n`` in 1, 2, a breadth-first search for the properties the variant is expected to
   break (it stops at the shortest counterexamples); each is minimised as the mirror suite
   minimises its own;
3. **safe runs**: seeded random runs of the fence model in the seed configuration and of the
   correct mirror model (n = 2), every state of which satisfies every property in the model.

Each trace runs on the reference through :func:`xvol.verification.conformance.replay_trace`
(fence) or :func:`xvol.verification.conformance_mirror.replay_mirror_trace` (mirror). A fence
counterexample must reproduce (its property broken on the reference, the reference taking the
model's steps); a safe run must stay safe. A mirror counterexample of a bug toggle must end as
:data:`MIRROR_EXPECTED` says: reproduced, or *prevented* by the named defence of the reference
(a lower layer that refuses or neutralises the injected bug); anything else is a failure, so a
defence that disappears shows up here. Traces the reference cannot express are counted and
listed with their reasons.

Speed. Fence counterexamples whose replays cannot differ are replayed once: the same steps on
the same instance, mode and discipline, under orders that agree on every stage the trace
reaches (the reference's job then enables the same protocol steps, and the run to the end
captures the end state whatever the remaining order); each trace still gets its own cell,
judged on the shared replay. The searches and the replays run in ``SuiteOptions.workers``
processes.

Every replay gives cells with engine ``reference``: a counterexample one cell for its property
(``violated`` when reproduced; ``bounded`` when the property held along the trace on the
reference, ``unknown`` when not replayable), a safe run one per property. Uses the model (to
produce traces), the fence and mirror suites' public settings, the conformance replays and the
registry's records.
"""

from __future__ import annotations

import itertools
import json
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from xvol.errors import StateError
from xvol.model.concrete import ConcreteSystem, State
from xvol.model.explicit import explore
from xvol.model.fence import (
    PROPERTIES,
    Bug,
    FenceConfig,
    FenceInstance,
    config_json,
    fence_system,
    order_from_json,
    order_to_json,
)
from xvol.model.logic import Instance, System
from xvol.model.mirror import (
    EXPECTED_VIOLATIONS,
    MirrorConfig,
    MirrorInstance,
    mirror_system,
    variant,
    variants,
)
from xvol.model.mirror import PROPERTIES as MIRROR_PROPERTIES
from xvol.model.mirror import config_json as mirror_config_json
from xvol.model.trace import Counterexample, minimise, replay
from xvol.verification.conformance import Outcome, Replay, reclassify, replay_trace
from xvol.verification.conformance_mirror import (
    FAILOVER_DROPS_UNFINISHED,
    REPLICATION_BASE_CHECK,
    TARGET_ALREADY_HELD,
    TRANSFER_ROLLS_BACK,
    replay_mirror_trace,
)
from xvol.verification.suite_fence import DEPTH, MATRIX
from xvol.verification.suites import Cell, Progress, Statement, SuiteOptions, SuiteReport
from xvol.vocabulary import (
    Action,
    FenceMode,
    StepDiscipline,
    Trace,
    TraceStep,
    seed_fence_order,
    serial_order,
    volume_names,
)

NAME = "conformance"
DESCRIPTION = "fence- and mirror-model counterexamples and safe runs replayed on the reference"

SAFE_TRACES = {True: 4, False: 24}  # fence safe runs: quick, full
SAFE_LENGTH = 40  # steps per random model run
SAFE_SHAPE = {"objects": 2, "clients": 2, "present": 1}
MIRROR_SAFE_TRACES = {True: 2, False: 8}
SAFE_BATCH = 6  # fence safe runs per work unit
REPLAY_BATCH = 12  # fence counterexample replays per work unit
MIRROR_SIZES = {True: (2,), False: (1, 2)}
MIRROR_MISSING = 1
MIRROR_SAFE_N = 2

REPRODUCED = "reproduced"
MIRROR_EXPECTED: dict[str, tuple[str, ...]] = {
    "no-redirect": (REPRODUCED,),
    "no-confirm": (REPRODUCED,),
    "skip-resize": (REPRODUCED,),
    "preserve-off": (REPRODUCED,),
    "per-volume-common": (FAILOVER_DROPS_UNFINISHED,),
    "skip-rollback": (REPLICATION_BASE_CHECK, TRANSFER_ROLLS_BACK),
    "no-reverse": (TARGET_ALREADY_HELD,),
}
"""Per mirror variant, how its counterexamples may end on the reference (n >= 2): reproduced,
or prevented by one of the named defences (see :mod:`xvol.verification.conformance_mirror`):
``skip-rollback`` meets the replication base check when the old primary kept a snapshot the
new source lacks, and the transfer's own rollback when it only changed its active file
system."""

DEFENCES = {
    FAILOVER_DROPS_UNFINISHED: "failover deletes the per-volume snapshots an unfinished transfer "
    "committed (MirroringCoordinator.failover -> _drop_strays), so no member holds a snapshot "
    "newer than the presented one and a per-volume common snapshot is the whole-volume one",
    REPLICATION_BASE_CHECK: "the block replication protocol diffs from the destination's newest "
    "per-volume snapshot, which the new source must hold: the unrestored old primary's is "
    "unknown there (ReplicationSource: NotFoundError), so nothing is applied",
    TARGET_ALREADY_HELD: "a transfer identifies snapshots by UUID: the old direction would send "
    "B a snapshot it already holds, which the update skips, so B keeps its newer image",
    TRANSFER_ROLLS_BACK: "the update's transfer rolls a destination member back to its newest "
    "snapshot before applying (BlockReplicator.transfer(rollback=True)), so the unrestored old "
    "primary's changes are discarded, never merged into the received image",
}

T = TypeVar("T")


# --------------------------------------------------------------------------------------------
# Counterexamples from the model
# --------------------------------------------------------------------------------------------


def shortest_counterexamples(
    system: System, instance: Instance, props: Sequence[str], depth: int
) -> dict[str, Counterexample]:
    """Breadth-first search of the reachable states, ``depth`` steps at most, stopping once
    every property in ``props`` is refuted: a shortest counterexample per property violated
    within ``depth`` (the order of :func:`xvol.model.explicit.explore`, so the same runs)."""
    concrete = ConcreteSystem(system, instance)
    init = concrete.initial()
    parent: dict[State, tuple[State, str, tuple[tuple[str, Any], ...]] | None] = {init: None}
    found: dict[str, State] = {}
    pending = list(props)

    def judge(state: State) -> None:
        for p in list(pending):
            if not concrete.holds(state, p):
                found[p] = state
                pending.remove(p)

    judge(init)
    frontier, level = [init], 0
    while frontier and pending and level < depth:
        following: list[State] = []
        for state in frontier:
            for compiled, env, nxt in concrete.moves(state):
                if nxt in parent:
                    continue
                parent[nxt] = (state, compiled.action.name, compiled.params_of(env))
                following.append(nxt)
                judge(nxt)
        frontier, level = following, level + 1
    out: dict[str, Counterexample] = {}
    for p, state in found.items():
        run = []
        while (link := parent[state]) is not None:
            state, action, params = link
            run.append((action, dict(params)))
        run.reverse()
        out[p] = replay(concrete, p, run, engine="explicit")
    return out


def fence_counterexamples(
    mode: str, discipline: str, order: list[Any], n: int, shape: dict[str, int], bugs: list[str]
) -> list[dict[str, Any]]:
    """The shortest counterexamples of one fence-matrix cell, as trace JSON (a work unit)."""
    config = FenceConfig(
        FenceMode(mode), StepDiscipline(discipline), frozenset(Bug(b) for b in bugs)
    )
    inst = FenceInstance(n, order_from_json(order), **shape)
    found = shortest_counterexamples(fence_system(config), inst.instance(), PROPERTIES, DEPTH)
    cfg = config_json(config, inst)
    return [found[p].to_trace("fence", cfg).to_json() for p in PROPERTIES if p in found]


def _quick_orders() -> list[list[Any]]:
    """The seed's order reversed: it violates integrity under rolling fences and under the
    namespace-first discipline, and both availability properties in every (mode,
    discipline)."""
    return [order_to_json(serial_order(["DC2", "DC1", "OLS", "NS"]))]


def matrix_orders() -> list[list[Any]]:
    """The fence orders of the n = 2 matrix (as the fence suite runs them): every total order
    of NS, OLS, DC1, DC2, and five with parallel stages."""
    ns, ols, dc1, dc2 = (frozenset([v]) for v in volume_names(2))
    parallel = [
        seed_fence_order(2, parallel_data=True),  # NS < OLS < {DC1 | DC2}
        (ns, ols | dc1 | dc2),
        (ns | ols, dc1 | dc2),
        (ns | ols | dc1 | dc2,),
        (dc1 | dc2, ols, ns),
    ]
    total = [serial_order(p) for p in itertools.permutations(volume_names(2))]
    return [order_to_json(o) for o in (*total, *parallel)]


def fence_units(quick: bool) -> list[tuple[str, Callable[..., Any], tuple[Any, ...]]]:
    """The searches for fence counterexamples: one per cell (quick: the reversed seed order
    per mode and discipline; full: every matrix order, and the protocol-bug cells)."""
    units: list[tuple[str, Callable[..., Any], tuple[Any, ...]]] = []
    orders = _quick_orders() if quick else matrix_orders()
    for m in FenceMode:
        for d in StepDiscipline:
            for o in orders:
                args: tuple[Any, ...] = (m.value, d.value, o, 2, MATRIX, [])
                units.append((f"fence {m}/{d}", fence_counterexamples, args))
    if not quick:
        seed = order_to_json(seed_fence_order(2))
        for bug in Bug:
            args = ("held", "write-ahead", seed, 2, MATRIX, [bug.value])
            units.append((f"fence bug {bug.value}", fence_counterexamples, args))
    return units


def mirror_counterexamples(name: str, n: int, missing: int) -> list[dict[str, Any]]:
    """The shortest counterexamples of mirror variant ``name`` on ``n`` data constituents for
    each property it is expected to break, minimised, as trace JSON (a work unit)."""
    config = variant(name)
    inst = MirrorInstance(n, missing)
    system = mirror_system(config)
    props = sorted(EXPECTED_VIOLATIONS[name])
    found = explore(system, inst.instance(), props)
    concrete = ConcreteSystem(system, inst.instance())
    cfg = mirror_config_json(config, inst)
    out = []
    for p in props:
        cex = found.results[p].counterexample
        if cex is not None:
            out.append(minimise(concrete, cex, engine="explicit").to_trace("mirror", cfg).to_json())
    return out


def mirror_units(quick: bool) -> list[tuple[str, Callable[..., Any], tuple[Any, ...]]]:
    """The searches for mirror counterexamples: each variant that breaks something, per size."""
    return [
        (f"mirror {name}", mirror_counterexamples, (name, n, MIRROR_MISSING))
        for name in variants()
        if EXPECTED_VIOLATIONS[name]
        for n in MIRROR_SIZES[quick]
    ]


def safe_traces(count: int, seed: int, length: int = SAFE_LENGTH) -> list[Trace]:
    """``count`` random runs of the fence model in the seed configuration (n = 2), run ``k``
    seeded with ``seed + k``, each of ``length`` steps or until nothing is enabled; every state
    of each is checked to satisfy every property in the model (a run that reaches a violation
    raises :class:`StateError`: the seed configuration is proved safe, so that would be a model
    bug)."""
    config = FenceConfig()
    inst = FenceInstance(2, seed_fence_order(2), **SAFE_SHAPE)
    concrete = ConcreteSystem(fence_system(config), inst.instance())
    cfg = config_json(config, inst)
    return _random_runs(concrete, PROPERTIES, "fence", cfg, count, seed, length)


def _expressible(config: Mapping[str, Any]) -> Callable[[list[TraceStep], TraceStep], bool]:
    """Whether the reference can take a mirror step after a prefix: it cannot write at B to a
    data constituent that the snapshot B presents lacks (its failover removes such a member;
    the model keeps it, empty). The presented snapshot is ``g0``, with the original members,
    or one the source took with all of them."""
    originals = set(volume_names(int(config["n"]))[: 2 + int(config["n"]) - int(config["missing"])])

    def ok(prefix: list[TraceStep], step: TraceStep) -> bool:
        if step.action is not Action.DESTINATION_WRITE:
            return True
        shown = next((s.args.get("snapshot") for s in prefix if s.action is Action.FAILOVER), None)
        return shown != "g0" or str(step.args.get("volume")) in originals

    return ok


def mirror_safe_traces(count: int, seed: int, length: int = SAFE_LENGTH) -> list[Trace]:
    """``count`` random runs of the correct mirror model (n = 2, one constituent added after the
    baseline), run ``k`` seeded with ``seed + k``, restricted to steps the reference can express
    (:func:`_expressible`); every state of each satisfies every property in the model."""
    config = MirrorConfig()
    inst = MirrorInstance(MIRROR_SAFE_N, MIRROR_MISSING)
    concrete = ConcreteSystem(mirror_system(config), inst.instance())
    cfg = mirror_config_json(config, inst)
    return _random_runs(
        concrete, MIRROR_PROPERTIES, "mirror", cfg, count, seed, length, _expressible(cfg)
    )


def _random_runs(
    concrete: ConcreteSystem,
    props: Sequence[str],
    system: str,
    cfg: dict[str, Any],
    count: int,
    seed: int,
    length: int,
    allowed: Callable[[list[TraceStep], TraceStep], bool] | None = None,
) -> list[Trace]:
    traces = []
    for k in range(count):
        rng = random.Random(seed + k)
        state = concrete.initial()
        steps: list[TraceStep] = []
        for _ in range(length):
            moves = [
                (TraceStep(Action(s.label), dict(s.args)), nxt)
                for s, nxt in concrete.successors(state)
            ]
            if allowed is not None:
                moves = [(s, nxt) for s, nxt in moves if allowed(steps, s)]
            if not moves:
                break
            step, state = moves[rng.randrange(len(moves))]
            steps.append(step)
            broken = [p for p in props if not concrete.holds(state, p)]
            if broken:
                raise StateError(f"a correct {system} configuration violates {broken} in the model")
        traces.append(Trace(system, cfg, tuple(steps), None))
    return traces


# --------------------------------------------------------------------------------------------
# Replaying, once per group of traces whose replays cannot differ
# --------------------------------------------------------------------------------------------


def replay_key(trace: Trace) -> str:
    """Traces with equal keys replay alike (module text): a fence trace's key is its steps and
    configuration, of the order only the stages its protocol steps reach; a mirror trace's
    is the whole trace."""
    if trace.system != "fence" or "order" not in trace.config:
        return json.dumps(trace.to_json(), sort_keys=True)
    order = [[x] if isinstance(x, str) else sorted(x) for x in trace.config["order"]]
    stage = {v: i for i, st in enumerate(order) for v in st}
    reached = [
        stage.get(str(s.args["volume"]), len(order))
        for s in trace.steps
        if s.action in (Action.FENCE, Action.CAPTURE, Action.UNFENCE, Action.FAIL)
        and "volume" in s.args
    ]
    config = {k: v for k, v in trace.config.items() if k != "order"}
    prefix = order[: max(reached) + 1] if reached else []
    steps = [s.to_json() for s in trace.steps]
    return json.dumps([config, prefix, steps], sort_keys=True)


@dataclass(frozen=True)
class Job:
    """One replay to run: the trace, its seed."""

    trace: Trace
    seed: int


def replay_jobs(jobs: Sequence[Job]) -> list[tuple[Replay, float]]:
    """Replay each job's trace on the reference (a work unit); with the seconds each took."""
    out = []
    for job in jobs:
        begin = time.perf_counter()
        if job.trace.system == "mirror":
            r = replay_mirror_trace(job.trace, seed=job.seed)
        else:
            r = replay_trace(job.trace, seed=job.seed)
        out.append((r, time.perf_counter() - begin))
    return out


def safe_runs(system: str, seed: int, count: int) -> list[tuple[Replay, float]]:
    """Random runs ``seed .. seed + count - 1`` of the fence or the correct mirror model, each
    replayed with its own seed (a work unit)."""
    make = safe_traces if system == "fence" else mirror_safe_traces
    return replay_jobs([Job(t, seed + k) for k, t in enumerate(make(count, seed))])


# --------------------------------------------------------------------------------------------
# Cells
# --------------------------------------------------------------------------------------------


def _detail(r: Replay) -> str:
    parts = [r.outcome.value]
    if r.reason:
        parts.append(r.reason)
    for prop, found in sorted(r.violations.items()):
        parts.append(f"{prop}: {found[0]}")
    if r.divergence:
        parts.append(f"diverges: {r.divergence}")
    return "; ".join(parts)


def expected_outcome(trace: Trace) -> tuple[str, ...]:
    """What a counterexample may end as: ``reproduced``, or one of a mirror variant's
    defences."""
    if trace.system == "mirror":
        return MIRROR_EXPECTED.get(str(trace.config.get("variant")), (REPRODUCED,))
    return (REPRODUCED,)


def counterexample_cell(r: Replay, seconds: float) -> Cell:
    """The cell of a replayed counterexample (see the module text)."""
    assert r.trace.violated is not None
    verdict = {
        Outcome.REPRODUCED: "violated",
        Outcome.NOT_REPRODUCED: "bounded",
        Outcome.PREVENTED: "bounded",
        Outcome.NOT_REPLAYABLE: "unknown",
    }[r.outcome]
    reproduce = REPRODUCED in expected_outcome(r.trace)
    return Cell(
        suite=NAME,
        prop=r.trace.violated,
        config=dict(r.trace.config),
        engine="reference",
        verdict=verdict,
        depth=len(r.trace.steps),
        seconds=seconds,
        method="replay-counterexample",
        expected=None
        if r.outcome is Outcome.NOT_REPLAYABLE
        else ("violated" if reproduce else "bounded"),
        trace=r.trace.to_json(),
        detail=_detail(r),
    )


def safe_cells(r: Replay, seconds: float, index: int, props: Sequence[str]) -> list[Cell]:
    """One cell per property of a replayed safe trace."""
    config = {**r.trace.config, "sample": index}
    return [
        Cell(
            suite=NAME,
            prop=p,
            config=config,
            engine="reference",
            verdict="violated" if p in r.violations else "bounded",
            depth=len(r.trace.steps),
            seconds=seconds / len(props),
            method="replay-safe-run",
            expected="bounded",
            trace=r.trace.to_json() if p in r.violations else None,
            detail=_detail(r),
        )
        for p in props
    ]


def meets_expectation(r: Replay) -> bool:
    """Whether a replayed counterexample ended as :func:`expected_outcome` says (a trace the
    reference cannot express meets no expectation and is listed instead)."""
    want = expected_outcome(r.trace)
    if REPRODUCED in want:
        return r.outcome is Outcome.REPRODUCED and r.divergence is None
    return r.outcome is Outcome.PREVENTED and r.prevented_by.split(":")[0] in want


# --------------------------------------------------------------------------------------------
# The suite
# --------------------------------------------------------------------------------------------


def earlier_traces(earlier: Iterable[SuiteReport], suite: str) -> list[Trace] | None:
    """The counterexamples suite ``suite`` reported in this run, if it ran (None otherwise)."""
    for report in earlier:
        if report.name == suite:
            return [Trace.from_json(c.trace) for c in report.cells if c.trace is not None]
    return None


def _expressible_size(trace: Trace) -> bool:
    """Whether a mirror trace's instance has an original data constituent (the reference
    needs one; the model's n = 1 instance with one constituent added has none)."""
    return int(trace.config.get("n", 0)) - int(trace.config.get("missing", 1)) >= 1


class _Inline(Executor):
    """Runs submitted work at once, in this process (``workers == 1``)."""

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        future: Future[T] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # handed to the caller through the future
            future.set_exception(exc)
        return future


def run(options: SuiteOptions, progress: Progress) -> SuiteReport:
    """Run the suite; see the module docstring."""
    start = time.perf_counter()
    fence_given = earlier_traces(options.earlier, "fence")
    mirror_given = earlier_traces(options.earlier, "mirror")
    units = []
    if fence_given is None:
        units += fence_units(options.quick)
    if mirror_given is None or not any(_expressible_size(t) for t in mirror_given):
        units += mirror_units(options.quick)  # the mirror suite's quick run has n = 1 only
    n_fence, n_mirror = SAFE_TRACES[options.quick], MIRROR_SAFE_TRACES[options.quick]
    safe_units = [("mirror", options.seed + k, 1) for k in range(n_mirror)]
    safe_units += [
        ("fence", options.seed + k, min(SAFE_BATCH, n_fence - k))
        for k in range(0, n_fence, SAFE_BATCH)
    ]
    progress.start(len(units) + len(safe_units) + 2, NAME)
    pool: Executor = (
        ProcessPoolExecutor(max_workers=options.workers) if options.workers > 1 else _Inline()
    )
    with pool:
        found = [(label, pool.submit(fn, *args)) for label, fn, args in units]
        safe_done = [(u, pool.submit(safe_runs, *u)) for u in safe_units]
        traces: list[Trace] = [*(fence_given or []), *(mirror_given or [])]
        for label, future in found:
            traces.extend(Trace.from_json(t) for t in future.result())
            progress.advance(label)
        groups: dict[str, list[Trace]] = {}
        for trace in traces:
            groups.setdefault(replay_key(trace), []).append(trace)
        # the mirror replays are the long ones: one per work unit, first; the rest in batches
        firsts = [g[0] for g in groups.values()]
        heavy = [[Job(t, options.seed)] for t in firsts if t.system == "mirror"]
        light = [Job(t, options.seed) for t in firsts if t.system != "mirror"]
        batches = heavy + [light[i : i + REPLAY_BATCH] for i in range(0, len(light), REPLAY_BATCH)]
        done = [pool.submit(replay_jobs, b) for b in batches]
        shared = {replay_key(r.trace): (r, seconds) for f in done for r, seconds in f.result()}
        progress.advance("counterexamples replayed")
        safe: list[tuple[Replay, float]] = []
        for unit, future in safe_done:
            safe.extend(future.result())
            progress.advance(f"safe {unit[0]} runs")
    replays: list[tuple[Replay, float]] = []
    for key, members in groups.items():
        r, seconds = shared[key]
        replays.extend((reclassify(r, t), seconds / len(members)) for t in members)
    report = _report(replays, safe, options, fence_given, mirror_given, len(groups))
    progress.advance("judged")
    report.seconds = time.perf_counter() - start
    return report


def _report(
    replays: list[tuple[Replay, float]],
    safe_done: list[tuple[Replay, float]],
    options: SuiteOptions,
    fence_given: list[Trace] | None,
    mirror_given: list[Trace] | None,
    distinct: int,
) -> SuiteReport:
    cells: list[Cell] = []
    failures: list[str] = []
    for r, seconds in replays:
        cells.append(counterexample_cell(r, seconds))
        if r.outcome is Outcome.NOT_REPLAYABLE:
            continue
        if not meets_expectation(r):
            failures.append(
                f"{r.trace.violated} at {_where(r.trace)}: expected "
                f"{' or '.join(expected_outcome(r.trace))}, got {_detail(r)}"
            )
    index: dict[str, int] = {}
    for r, seconds in safe_done:
        i = index[r.trace.system] = index.get(r.trace.system, -1) + 1
        props = PROPERTIES if r.trace.system == "fence" else MIRROR_PROPERTIES
        cells.extend(safe_cells(r, seconds, i, props))
        if r.outcome is Outcome.NOT_REPLAYABLE:
            continue
        if r.outcome is not Outcome.SAFE:
            failures.append(f"safe {r.trace.system} run {i} ({_where(r.trace)}): {_detail(r)}")
        elif r.divergence:
            failures.append(f"safe {r.trace.system} run {i}: {r.divergence}")
    statements = [
        *_counterexample_statements(replays),
        *_safe_statements(safe_done),
        Statement(
            NAME,
            "*",
            "the reference takes the same steps as the model (fence: every deferral where the "
            "model defers, every step where it steps; mirror: the snapshot it presents, its "
            "common snapshot, what it exports) on every replayable trace",
            not any(
                r.divergence
                for r, _ in [*replays, *safe_done]
                if r.outcome is not Outcome.NOT_REPLAYABLE
            ),
            sum(1 for r, _ in [*replays, *safe_done] if r.outcome is not Outcome.NOT_REPLAYABLE),
        ),
    ]
    where = {
        "fence": "the fence suite's run"
        if fence_given is not None
        else (
            "a bounded search here (the reversed seed order per mode and discipline)"
            if options.quick
            else f"a breadth-first search here to depth {DEPTH} for every order of the n = 2 "
            "matrix (24 total orders and 5 parallel ones x 2 modes x 2 disciplines) and the "
            "protocol-bug cells"
        ),
        "mirror": "the mirror suite's run"
        if mirror_given is not None and any(_expressible_size(t) for t in mirror_given)
        else f"a breadth-first search here per bug variant, n in {MIRROR_SIZES[options.quick]}"
        + (" (and the mirror suite's run)" if mirror_given else ""),
    }
    total = len(replays)
    notes = [
        f"fence counterexamples from {where['fence']}; mirror counterexamples from "
        f"{where['mirror']}",
        f"{total} counterexamples, {distinct} distinct replays (the others share one: same "
        "steps, instance, mode and discipline, orders equal on every stage the trace reaches)",
        f"safe runs: {SAFE_TRACES[options.quick]} seeded random runs of the fence model (seed "
        f"configuration, n = 2, {SAFE_SHAPE['objects']} objects, {SAFE_SHAPE['clients']} client "
        f"slots) and {MIRROR_SAFE_TRACES[options.quick]} of the correct mirror model (n = "
        f"{MIRROR_SAFE_N}, {MIRROR_MISSING} constituent added after the baseline)",
        "mirror bug toggles are injected by the replay only (conformance_mirror); the reference's "
        "production code has none",
        *(f"defence {k}: {v}" for k, v in DEFENCES.items()),
    ]
    return SuiteReport(NAME, cells, statements, failures, 0.0, notes)


def _counterexample_statements(replays: list[tuple[Replay, float]]) -> list[Statement]:
    out = []
    for system in ("fence", "mirror"):
        mine = [r for r, _ in replays if r.trace.system == system]
        counts = {o: sum(r.outcome is o for r in mine) for o in Outcome}
        unreplayable = sorted({r.reason for r in mine if r.outcome is Outcome.NOT_REPLAYABLE})
        replayable = [r for r in mine if r.outcome is not Outcome.NOT_REPLAYABLE]
        prevented = sorted(
            {r.prevented_by.split(":")[0] for r in mine if r.outcome is Outcome.PREVENTED}
        )
        text = (
            f"every {system}-model counterexample the reference can express ends as expected: "
            f"{counts[Outcome.REPRODUCED]} reproduced, {counts[Outcome.PREVENTED]} prevented by "
            f"a defence of the reference{' (' + ', '.join(prevented) + ')' if prevented else ''}, "
            f"{counts[Outcome.NOT_REPRODUCED]} not reproduced, "
            f"{counts[Outcome.NOT_REPLAYABLE]} not replayable (of {len(mine)})"
        )
        out.append(
            Statement(
                NAME,
                "*",
                text,
                all(meets_expectation(r) for r in replayable),
                len(mine),
                "not replayable: " + "; ".join(unreplayable) if unreplayable else "",
            )
        )
    return out


def _safe_statements(done: list[tuple[Replay, float]]) -> list[Statement]:
    out = []
    for system, props in (("fence", PROPERTIES), ("mirror", MIRROR_PROPERTIES)):
        runs = [r for r, _ in done if r.trace.system == system]
        unreplayable = sorted({r.reason for r in runs if r.outcome is Outcome.NOT_REPLAYABLE})
        out.append(
            Statement(
                NAME,
                "*",
                f"{len(runs)} random runs of the {system} model ({SAFE_LENGTH} steps each at "
                f"most, {sum(len(r.trace.steps) for r in runs)} steps in all) stay safe on the "
                f"reference: {sum(r.outcome is Outcome.SAFE for r in runs)} safe, "
                f"{sum(r.outcome is Outcome.BROKEN for r in runs)} broken, "
                f"{sum(r.outcome is Outcome.NOT_REPLAYABLE for r in runs)} not replayable",
                all(r.outcome in (Outcome.SAFE, Outcome.NOT_REPLAYABLE) for r in runs),
                len(runs) * len(props),
                "; ".join(unreplayable),
            )
        )
    return out


def _where(trace: Trace) -> str:
    c = trace.config
    if trace.system == "mirror":
        return f"mirror {c.get('variant')} n={c.get('n')} missing={c.get('missing')}"
    bugs = f" bugs {c['bugs']}" if c.get("bugs") else ""
    return f"n={c.get('n')} {c.get('order')} {c.get('mode')}/{c.get('discipline')}{bugs}"
