"""The conformance suite: model counterexamples and safe model runs replayed on the reference.

What it runs:

1. the fence model's counterexamples: every violated (property, mode, discipline, order) cell
   of the n = 2 matrix (all 24 total orders and the parallel orders of
   :mod:`xvol.verification.suite_fence`, both modes, both disciplines), computed with that
   suite's own work units on its explicit-state engine (breadth first: shortest
   counterexamples, of the same length as z3's, which the fence suite checks); in ``--quick``
   one order per (mode, discipline), the seed's reversed, whose violations give a
   representative per (property, mode, discipline). The protocol-bug cells are
   included too (full run only): their traces cannot be replayed (the reference has no bug
   toggles) and are counted;
2. each trace replayed on the reference (:func:`xvol.verification.conformance.replay_trace`):
   the violated property must be violated there too, under the same configuration;
3. a sample of safe traces: seeded random runs of the model in the seed configuration (held
   fences, write-ahead discipline, NS < OLS < DC1 < DC2) on the concrete interpreter, every
   state of which satisfies every property in the model; replayed on the reference, every
   property must stay intact.

Every replay is one or more cells with engine ``reference``: a counterexample gives a cell for
its property (``violated`` when reproduced; ``bounded`` when the reference holds it along the
trace, a failure; ``unknown`` when not replayable, with the reason); a safe trace gives a cell
per property (``bounded``: it held along this run; ``violated``: a failure). A replay whose
event sequence departs from the model's is a failure too. Uses the model (to produce traces),
:mod:`xvol.verification.suite_fence`'s work units and :mod:`xvol.verification.conformance`.
"""

from __future__ import annotations

import random
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from xvol.errors import StateError
from xvol.model.concrete import ConcreteSystem
from xvol.model.fence import (
    PROPERTIES,
    Bug,
    FenceConfig,
    FenceInstance,
    config_json,
    fence_system,
    order_to_json,
)
from xvol.verification.conformance import Outcome, Replay, replay_trace
from xvol.verification.suite_fence import (
    MATRIX,
    _explicit,
    _families,
    _parallel_orders,
    _total_orders,
)
from xvol.verification.suites import Cell, Progress, Statement, SuiteOptions, SuiteReport
from xvol.vocabulary import (
    Action,
    Trace,
    TraceStep,
    seed_fence_order,
    serial_order,
)

NAME = "conformance"
DESCRIPTION = "fence-model counterexamples and safe runs replayed on the reference"

SAFE_TRACES = {True: 4, False: 24}  # quick, full
SAFE_LENGTH = 40  # steps per random model run
SAFE_SHAPE = {"objects": 2, "clients": 2, "present": 1}


# --------------------------------------------------------------------------------------------
# Traces from the model
# --------------------------------------------------------------------------------------------


def _quick_orders() -> list[list[Any]]:
    """The seed's order reversed: it violates integrity under rolling fences and under the
    namespace-first discipline, and both availability properties in every (mode,
    discipline)."""
    return [order_to_json(serial_order(["DC2", "DC1", "OLS", "NS"]))]


def counterexample_tasks(quick: bool) -> list[tuple[str, Any, tuple[Any, ...]]]:
    """The fence suite's work units whose violated cells carry the traces to replay."""
    tasks: list[tuple[str, Any, tuple[Any, ...]]] = []
    orders = (
        _quick_orders()
        if quick
        else [order_to_json(o) for o in (*_total_orders(), *_parallel_orders())]
    )
    for m, d in _families():
        for o in orders:
            tasks.append((f"explicit {m}/{d}", _explicit, (m.value, d.value, o, 2, MATRIX, [])))
    if quick:
        return tasks
    seed = order_to_json(seed_fence_order(2))
    for bug in Bug:
        args = ("held", "write-ahead", seed, 2, MATRIX, [bug.value])
        tasks.append((f"explicit bug {bug.value}", _explicit, args))
    return tasks


def safe_traces(count: int, seed: int, length: int = SAFE_LENGTH) -> list[Trace]:
    """``count`` seeded random runs of the model in the seed configuration (n = 2), each of
    ``length`` steps or until nothing is enabled; every state of each is checked to satisfy
    every property in the model (a run that reaches a violation raises :class:`StateError`:
    the seed configuration is proved safe, so that would be a model bug)."""
    config = FenceConfig()
    inst = FenceInstance(2, seed_fence_order(2), **SAFE_SHAPE)
    concrete = ConcreteSystem(fence_system(config), inst.instance())
    cfg = config_json(config, inst)
    rng = random.Random(seed)
    traces = []
    for _ in range(count):
        state = concrete.initial()
        steps: list[TraceStep] = []
        for _ in range(length):
            moves = list(concrete.successors(state))
            if not moves:
                break
            step, state = moves[rng.randrange(len(moves))]
            steps.append(TraceStep(Action(step.label), dict(step.args)))
            broken = [p for p in PROPERTIES if not concrete.holds(state, p)]
            if broken:
                raise StateError(f"the seed configuration violates {broken} in the model")
        traces.append(Trace("fence", cfg, tuple(steps), None))
    return traces


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


def counterexample_cell(r: Replay, seconds: float) -> Cell:
    """The cell of a replayed counterexample (see the module text)."""
    assert r.trace.violated is not None
    verdict = {
        Outcome.REPRODUCED: "violated",
        Outcome.NOT_REPRODUCED: "bounded",
        Outcome.NOT_REPLAYABLE: "unknown",
    }[r.outcome]
    return Cell(
        suite=NAME,
        prop=r.trace.violated,
        config=dict(r.trace.config),
        engine="reference",
        verdict=verdict,
        depth=len(r.trace.steps),
        seconds=seconds,
        method="replay-counterexample",
        expected=None if r.outcome is Outcome.NOT_REPLAYABLE else "violated",
        trace=r.trace.to_json(),
        detail=_detail(r),
    )


def safe_cells(r: Replay, seconds: float, index: int) -> list[Cell]:
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
            seconds=seconds / len(PROPERTIES),
            method="replay-safe-run",
            expected="bounded",
            trace=r.trace.to_json() if p in r.violations else None,
            detail=_detail(r),
        )
        for p in PROPERTIES
    ]


# --------------------------------------------------------------------------------------------
# The suite
# --------------------------------------------------------------------------------------------


def run(options: SuiteOptions, progress: Progress) -> SuiteReport:
    """Run the suite; see the module docstring."""
    start = time.perf_counter()
    tasks = counterexample_tasks(options.quick)
    n_safe = SAFE_TRACES[options.quick]
    progress.start(len(tasks) + 2, NAME)
    model_cells: list[Cell] = []
    if options.workers > 1:
        with ProcessPoolExecutor(max_workers=options.workers) as pool:
            futures = [(label, pool.submit(fn, *args)) for label, fn, args in tasks]
            for label, f in futures:
                model_cells.extend(f.result())
                progress.advance(label)
    else:
        for label, fn, args in tasks:
            model_cells.extend(fn(*args))
            progress.advance(label)
    traces = [Trace.from_json(c.trace) for c in model_cells if c.trace is not None]
    cells: list[Cell] = []
    failures: list[str] = []
    replays: list[Replay] = []
    for trace in traces:
        begin = time.perf_counter()
        r = replay_trace(trace, seed=options.seed)
        replays.append(r)
        cells.append(counterexample_cell(r, time.perf_counter() - begin))
        where = _where(trace)
        if r.outcome is Outcome.NOT_REPRODUCED:
            failures.append(f"{trace.violated} at {where} does not reproduce: {_detail(r)}")
        elif r.outcome is Outcome.REPRODUCED and r.divergence:
            failures.append(f"{trace.violated} at {where}: {r.divergence}")
    progress.advance("counterexamples replayed")
    safe = safe_traces(n_safe, options.seed)
    safe_replays = []
    for i, trace in enumerate(safe):
        begin = time.perf_counter()
        r = replay_trace(trace, seed=options.seed + i)
        safe_replays.append(r)
        cells.extend(safe_cells(r, time.perf_counter() - begin, i))
        if r.outcome is not Outcome.SAFE:
            failures.append(f"safe run {i} ({_where(trace)}): {_detail(r)}")
        elif r.divergence:
            failures.append(f"safe run {i}: {r.divergence}")
    progress.advance("safe runs replayed")
    counts = {o: sum(r.outcome is o for r in replays) for o in Outcome}
    unreplayable = [r for r in replays if r.outcome is Outcome.NOT_REPLAYABLE]
    statements = [
        Statement(
            NAME,
            "*",
            f"every fence-model counterexample that the reference can express reproduces there: "
            f"{counts[Outcome.REPRODUCED]} reproduced, {counts[Outcome.NOT_REPRODUCED]} not "
            f"reproduced, {counts[Outcome.NOT_REPLAYABLE]} not replayable "
            f"(of {len(replays)})",
            counts[Outcome.NOT_REPRODUCED] == 0,
            len(replays),
            "; ".join(sorted({r.reason for r in unreplayable})),
        ),
        Statement(
            NAME,
            "*",
            f"{len(safe)} random runs of the seed configuration ({SAFE_LENGTH} steps each at "
            f"most, {sum(len(t.steps) for t in safe)} steps in all) stay safe on the reference: "
            f"{sum(r.outcome is Outcome.SAFE for r in safe_replays)} safe",
            all(r.outcome is Outcome.SAFE for r in safe_replays),
            len(safe) * len(PROPERTIES),
        ),
        Statement(
            NAME,
            "*",
            "the reference takes the same steps as the model (every deferral where the model "
            "defers, every step where it steps) on every replayable trace",
            not any(r.divergence for r in [*replays, *safe_replays]),
            len(replays) + len(safe_replays) - len(unreplayable),
        ),
    ]
    notes = [
        "counterexamples: "
        + (
            "the explicit engine's on the reversed seed order per mode and discipline"
            if options.quick
            else "the explicit engine's for every violated cell of the n = 2 matrix (24 total "
            "orders and 5 parallel ones x 2 modes x 2 disciplines)"
        )
        + (
            ""
            if options.quick
            else ", plus the protocol-bug cells, which the reference cannot express (no bug "
            "toggles)"
        ),
        f"safe runs: {len(safe)} seeded random runs of the model, seed configuration, n = 2, "
        f"{SAFE_SHAPE['objects']} objects, {SAFE_SHAPE['clients']} client slots",
        "the mirror model's traces are not replayed yet: no driver maps their actions onto the "
        "reference's mirroring coordinator (reference/mirror/)",
    ]
    return SuiteReport(NAME, cells, statements, failures, time.perf_counter() - start, notes)


def _where(trace: Trace) -> str:
    c = trace.config
    bugs = f" bugs {c['bugs']}" if c.get("bugs") else ""
    return f"n={c.get('n')} {c.get('order')} {c.get('mode')}/{c.get('discipline')}{bugs}"
