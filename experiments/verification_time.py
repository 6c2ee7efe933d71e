"""E7b, verification time: how the cost of checking the fence protocol grows with the number of
data constituents and with the number of concurrent client operations, for both engines.

The seed takes a consistent snapshot of an expandable volume by starting a **consistency group**
and laying a **logical fence** "first for the namespace, then for the OLS store followed by the
data constituent volumes A-N"; requests that reach a fenced volume are excluded and handled after
the snapshot (deferred), and the volumes are unfenced in the opposite order, even when the
snapshot fails. The fence model (:mod:`xvol.model.fence`) states five properties of that protocol
(snapshot referential integrity, named- and raw-access availability, no lost deferred request,
unfence on failure); this experiment measures what it costs to establish them, on the seed's
configuration (held fences, the seed's write-ahead step order, ``NS < OLS < DC1 < ... < DCn``):

* ``z3``: the z3 engine on one fixed instance (``n`` data constituents, ``clients`` concurrent
  client slots, ``objects`` objects of which one exists initially): Houdini prunes the model's
  candidate invariants to an inductive one, re-checked obligation by obligation; a property it
  does not imply goes to bounded model checking by iterative deepening (shortest counterexample
  first) up to :data:`BMC_DEPTH` steps;
* ``explicit``: the explicit-state engine (networkx, breadth first) on the same instance, under a
  deterministic **state budget** ``max_states``: an exploration that reaches it stops at the end
  of the breadth-first level it is in (so it may overshoot by part of one level) and is reported
  as ``budget exceeded``, never run to the end;
* ``z3-parametric``: the parameterised proof, valid for every ``n`` and every number of clients
  and objects at once (domain sorts uninterpreted, ``n`` symbolic; ``n``, ``clients`` and
  ``objects`` are 0 in its row to mean "any").

A bug toggle (:data:`BUG`, a failed snapshot deletes the consistency group without unfencing)
times the counterexample search: both engines must refute exactly the properties it breaks, with
shortest counterexamples of the same length.

Deterministic columns: the verdicts (per-property counts and a summary), which properties were
refuted and in how many steps, the depth searched, the states and edges the explicit engine
explored, the number of z3 solver queries (every ``check`` call, counted by
:func:`counted_queries`) and the size of the inferred invariant. The wall-clock ``seconds`` is the
one timing column. Each point checks what it measured and raises
:class:`~xvol.model.trace.EngineDisagreement` rather than report a contradiction (a property the
seed protocol keeps reported violated, or one the bug breaks reported proved); every
counterexample is replayed on the concrete interpreter by the engines themselves.
:func:`engine_disagreements` compares the two engines across points (the tests and
:func:`quoted_numbers` use it). The solver seed is the suites' (0), so that the times compare
with ``xvol verify``; nothing else is random. One caveat: the verdicts are deterministic as long
as no query reaches the per-query timeout (:data:`TIMEOUT_MS`, generous for that reason); a
Houdini query that does leaves the invariant undecided, and the fixed-instance engine then reports
``bounded`` or ``unknown`` after BMC. The z3 series stops at n = 32: n = 64 takes about a minute
of CPU on its own.

Uses :mod:`xvol.model` (public functions only), the measuring functions of
:mod:`xvol.experiments.bench.verify` (shared with ``xvol bench verify``), z3 (to count queries)
and :mod:`xvol.experiments.framework`; matplotlib and pandas only inside the figure functions.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import z3

from xvol.errors import InvalidArgumentError
from xvol.experiments.bench.verify import (
    ParametricProof,
    explicit_run,
    parametric_proof,
    z3_fixed,
)
from xvol.experiments.framework import Experiment, FigureSpec, Params, Record
from xvol.model.check import Result, Verdict
from xvol.model.fence import PROPERTIES, Bug, FenceConfig
from xvol.model.trace import EngineDisagreement

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

# ---------------------------------------------------------------------------------------------
# Engines, the bug toggle, and the grids.

ENGINES = ("z3", "explicit", "z3-parametric")
"""The engine column's values, in legend order."""

NO_BUG = "none"
BUG = Bug.NO_UNFENCE_ON_FAILURE.value
BREAKS: dict[str, frozenset[str]] = {
    NO_BUG: frozenset(),
    BUG: frozenset({"no-lost-request", "unfence-on-failure"}),
}
"""Bug toggle -> the properties it breaks (every other property keeps holding)."""

BMC_DEPTH = 8
"""Deepest z3 unrolling for properties the invariant does not prove: the bug's shortest
counterexamples take 3 and 5 steps."""

TIMEOUT_MS = 600_000
"""z3 timeout per query (wall clock): a safety net, not a limit. The largest query of the full
grid takes seconds of CPU, but z3 measures the timeout in wall-clock time, and at the suites'
60 s the four-client instance timed out on a machine loaded six-fold (an exhausted query is
``unknown``: the verdict would then depend on the machine's load)."""

QUICK_BUDGET = 5_000
FULL_BUDGET = 50_000
"""State budgets of the explicit engine: the quick grid's shows the flag at n = 2 already."""


def _points(
    engine: str, bug: str, shapes: Sequence[tuple[int, int, int]], max_states: int = 0
) -> tuple[Params, ...]:
    """Grid points for ``engine`` on each (n, clients, objects) shape."""
    return tuple(
        {"engine": engine, "bug": bug, "n": n, "clients": c, "objects": o, "max_states": max_states}
        for n, c, o in shapes
    )


def _n_series(ns: Sequence[int]) -> list[tuple[int, int, int]]:
    return [(n, 1, 1) for n in ns]


def _client_series(clients: Sequence[int]) -> list[tuple[int, int, int]]:
    """One data constituent, ``c`` clients on ``c`` objects (a client locks its object, so
    ``c`` operations can run at once)."""
    return [(1, c, c) for c in clients]


# quick: z3 with two clients alone would take 2 s of CPU; the explicit engine shows the clients axis
QUICK = (
    *_points("z3", NO_BUG, _n_series((1, 2))),
    *_points("explicit", NO_BUG, _n_series((1, 2)) + _client_series((2,)), QUICK_BUDGET),
    *_points("z3", BUG, _n_series((1,))),
    *_points("explicit", BUG, _n_series((1,)), QUICK_BUDGET),
)
# heaviest points first, so that a process pool ends evenly; z3 stops at n = 32 (see the module
# docstring; ``xvol bench verify`` still runs n = 64)
FULL = (
    *_points("z3-parametric", NO_BUG, [(0, 0, 0)]),
    *_points("z3", NO_BUG, _client_series((4, 3))),
    *_points("explicit", NO_BUG, _client_series((3, 2)), FULL_BUDGET),
    *_points("explicit", NO_BUG, _n_series((8, 4, 3, 2, 1)), FULL_BUDGET),
    *_points("z3", NO_BUG, _n_series((32, 16, 8, 4, 3, 2, 1)) + _client_series((2,))),
    *_points("z3", BUG, _n_series((2, 1))),
    *_points("explicit", BUG, _n_series((2, 1)), FULL_BUDGET),
)


# ---------------------------------------------------------------------------------------------
# Counting solver queries.


@contextmanager
def counted_queries() -> Iterator[list[int]]:
    """Count every z3 ``Solver.check`` call made inside the block (every query of every z3
    engine goes through one); yields a one-element list holding the running count. The method
    is restored on exit, whatever happens inside."""
    original = z3.Solver.check
    count = [0]

    def check(self: Any, *assumptions: Any) -> Any:
        count[0] += 1
        return original(self, *assumptions)

    z3.Solver.check = check
    try:
        yield count
    finally:
        z3.Solver.check = original


# ---------------------------------------------------------------------------------------------
# One point.


def point(params: Params, seed: int) -> list[Record]:
    """Run one engine on one instance (or the parameterised proof) and report its verdicts and
    cost; raise EngineDisagreement on a verdict that contradicts the model's known answer."""
    del seed  # nothing is random: the solver seed is fixed (see the module docstring)
    engine, bug = str(params["engine"]), str(params["bug"])
    n, clients, objects, budget = (
        int(params[k]) for k in ("n", "clients", "objects", "max_states")
    )
    if bug not in BREAKS:
        raise InvalidArgumentError(f"unknown bug toggle {bug!r}; choose one of {list(BREAKS)}")
    config = FenceConfig(bugs=frozenset() if bug == NO_BUG else frozenset({Bug(bug)}))
    if engine == "z3":
        with counted_queries() as queries:
            start = time.perf_counter()
            results = z3_fixed(
                n,
                clients,
                objects,
                present=1,
                timeout_ms=TIMEOUT_MS,
                depth=BMC_DEPTH,
                config=config,
            )
            seconds = time.perf_counter() - start
        searched = [r.depth for r in results.values() if r.method == "bmc" and r.depth is not None]
        verdicts = {p: r.verdict for p, r in results.items()}
        record = _summary(
            results,
            depth=max(searched, default=0),
            queries=queries[0],
            invariant=max((len(r.invariant) for r in results.values()), default=0),
        )
    elif engine == "explicit":
        if budget < 1:
            raise InvalidArgumentError(f"the explicit engine needs max_states >= 1, got {budget}")
        start = time.perf_counter()
        x = explicit_run(n, clients, objects, present=1, max_states=budget, config=config)
        seconds = time.perf_counter() - start
        capped = not x.complete and any(r.verdict is Verdict.BOUNDED for r in x.results.values())
        verdicts = {p: r.verdict for p, r in x.results.items()}
        record = _summary(x.results, depth=x.depth, states=x.states, edges=x.edges, capped=capped)
    elif engine == "z3-parametric":
        if bug != NO_BUG or (n, clients, objects, budget) != (0, 0, 0, 0):
            raise InvalidArgumentError("the parameterised proof is of the seed protocol, any n")
        with counted_queries() as queries:
            start = time.perf_counter()
            proof = parametric_proof(TIMEOUT_MS)
            seconds = time.perf_counter() - start
        verdicts = parametric_verdicts(proof)
        record = parametric_record(proof, queries[0])
    else:
        raise InvalidArgumentError(f"unknown engine {engine!r}; choose one of {ENGINES}")
    check_verdicts(
        verdicts,
        complete=engine == "explicit" and not record["budget_exceeded"],
        bug=bug,
        where=f"E7b {engine} at {dict(params)}",
    )
    return [{**record, "seconds": seconds}]


def _summary(
    results: Mapping[str, Result],
    *,
    depth: int,
    states: int = 0,
    edges: int = 0,
    queries: int = 0,
    invariant: int = 0,
    capped: bool = False,
) -> Record:
    """The deterministic columns of one engine run, from its per-property results."""
    verdicts = [results[p].verdict for p in PROPERTIES]
    refuted = {p: results[p].depth for p in PROPERTIES if results[p].verdict is Verdict.VIOLATED}
    steps = [d for d in refuted.values() if d is not None]
    return {
        "verdict": _overall(verdicts, capped),
        "proved": verdicts.count(Verdict.PROVED),
        "violated": verdicts.count(Verdict.VIOLATED),
        "bounded": verdicts.count(Verdict.BOUNDED),
        "unknown": verdicts.count(Verdict.UNKNOWN),
        "refuted": " ".join(f"{p}@{d}" for p, d in refuted.items()) or "-",
        "shortest_cex": min(steps, default=-1),
        "budget_exceeded": capped,
        "depth": depth,
        "states": states,
        "edges": edges,
        "queries": queries,
        "invariant_conjuncts": invariant,
    }


def _overall(verdicts: Sequence[Verdict], capped: bool) -> str:
    """One word for a row: ``violated`` if any property is, else ``unknown`` if the solver gave
    up on any, else ``budget exceeded`` (explicit engine stopped at its state budget), else
    ``bounded``, else ``proved``."""
    if Verdict.VIOLATED in verdicts:
        return "violated"
    if Verdict.UNKNOWN in verdicts:
        return "unknown"
    if capped:
        return "budget exceeded"
    return "bounded" if Verdict.BOUNDED in verdicts else "proved"


def parametric_verdicts(proof: ParametricProof) -> dict[str, Verdict]:
    """Per property: ``proved`` when every query was decided and the invariant's re-check and
    its implication are valid; ``unknown`` when a query was not decided; else ``bounded`` (not
    proved: the invariant is too weak)."""
    base = [o.outcome for o in proof.obligations]
    verdicts = {}
    for p in PROPERTIES:
        outcomes = [*base, proof.implications[p].outcome]
        if proof.decided and all(o == "valid" for o in outcomes):
            verdicts[p] = Verdict.PROVED
        elif not proof.decided or "unknown" in outcomes:
            verdicts[p] = Verdict.UNKNOWN
        else:
            verdicts[p] = Verdict.BOUNDED
    return verdicts


def parametric_record(proof: ParametricProof, queries: int) -> Record:
    """The deterministic columns of the parameterised proof (see :func:`parametric_verdicts`)."""
    verdicts = list(parametric_verdicts(proof).values())
    return {
        "verdict": _overall(verdicts, False),
        "proved": verdicts.count(Verdict.PROVED),
        "violated": 0,
        "bounded": verdicts.count(Verdict.BOUNDED),
        "unknown": verdicts.count(Verdict.UNKNOWN),
        "refuted": "-",
        "shortest_cex": -1,
        "budget_exceeded": False,
        "depth": 0,
        "states": 0,
        "edges": 0,
        "queries": queries,
        "invariant_conjuncts": len(proof.survivors),
    }


def check_verdicts(
    verdicts: Mapping[str, Verdict], *, complete: bool, bug: str, where: str
) -> None:
    """Raise EngineDisagreement if ``verdicts`` contradict what the model establishes: the seed
    protocol keeps every property (proved for every n by the parameterised proof) and the bug
    breaks exactly :data:`BREAKS` ``[bug]``, so no other property may be refuted and none of
    those proved; an exploration that exhausted its instance (``complete``) decides each."""
    broken = BREAKS[bug]
    for p in PROPERTIES:
        verdict = verdicts[p]
        if verdict is Verdict.VIOLATED and p not in broken:
            raise EngineDisagreement(f"{where}: refuted {p!r}, which the protocol keeps")
        if verdict is Verdict.PROVED and p in broken:
            raise EngineDisagreement(f"{where}: proved {p!r}, which the bug {bug!r} breaks")
        if complete and verdict not in (Verdict.PROVED, Verdict.VIOLATED):
            raise EngineDisagreement(f"{where}: a complete exploration left {p!r} {verdict}")


def engine_disagreements(frame: pd.DataFrame) -> list[str]:
    """Where the two engines contradict each other on the same instance: the explicit engine,
    when it exhausted the instance, must refute exactly what z3 refutes, in the same number of
    steps (both report shortest counterexamples; that it proves the rest is checked per point
    by :func:`check_verdicts`); within its budget it must not refute more than z3. Empty when
    they agree."""
    shape = ["bug", "n", "clients", "objects"]
    z3_rows = {tuple(r[shape]): r for _, r in frame[frame["engine"] == "z3"].iterrows()}
    problems = []
    for _, row in frame[frame["engine"] == "explicit"].iterrows():
        twin = z3_rows.get(tuple(row[shape]))
        if twin is None:
            continue
        where = f"bug {row['bug']}, n={row['n']}, clients={row['clients']}"
        if not row["budget_exceeded"] and row["refuted"] != twin["refuted"]:
            problems.append(f"{where}: explicit refutes {row['refuted']}, z3 {twin['refuted']}")
        if row["budget_exceeded"] and row["violated"] > twin["violated"]:
            problems.append(f"{where}: explicit refutes more than z3 within its budget")
    return problems


# ---------------------------------------------------------------------------------------------
# Figures: time against n and against clients (wall clock), states explored (deterministic).

_STYLE = {
    "z3": ("C0", "o", "z3, fixed instance (invariant + BMC)"),
    "explicit": ("C1", "s", "explicit-state (networkx BFS)"),
}


def _series(frame: pd.DataFrame, engine: str, bug: str, axis: str) -> pd.DataFrame:
    """The rows of one line: the n series (1 client, 1 object) or the clients series (n = 1,
    objects = clients), sorted along ``axis``."""
    rows = frame[(frame["engine"] == engine) & (frame["bug"] == bug)]
    if axis == "n":
        rows = rows[(rows["clients"] == 1) & (rows["objects"] == 1)]
    else:
        rows = rows[(rows["n"] == 1) & (rows["objects"] == rows["clients"])]
    return rows.sort_values(axis)


def _plot(axes: Axes, frame: pd.DataFrame, axis: str, column: str) -> None:
    """One line per engine (dotted for the bug toggle, triangles), hollow markers where the
    explicit engine exceeded its state budget (the point is where it stopped, not the end)."""
    hollow = False
    for bug in (NO_BUG, BUG):
        for engine, (color, marker, label) in _STYLE.items():
            rows = _series(frame, engine, bug, axis)
            if rows.empty or (column == "states" and engine != "explicit"):
                continue
            if bug != NO_BUG:
                label, marker = f"{label}, bug {bug} (counterexample search)", "^"
            axes.plot(
                rows[axis],
                rows[column],
                color=color,
                marker=marker,
                linestyle="-" if bug == NO_BUG else ":",
                label=label,
            )
            over = rows[rows["budget_exceeded"].astype(bool)]
            if not over.empty:
                hollow = True
                axes.plot(
                    over[axis],
                    over[column],
                    color=color,
                    marker=marker,
                    markerfacecolor="white",
                    linestyle="none",
                )
    if hollow:
        axes.plot(
            [],
            [],
            color="grey",
            marker="s",
            markerfacecolor="white",
            linestyle="none",
            label="hollow: explicit engine stopped at its state budget",
        )


def _parametric_line(axes: Axes, frame: pd.DataFrame) -> None:
    """The parameterised proof's time as a horizontal line (it covers every n and client count)."""
    rows = frame[frame["engine"] == "z3-parametric"]
    if not rows.empty:
        seconds = float(rows["seconds"].iloc[0])
        axes.axhline(
            seconds,
            color="C2",
            linestyle="--",
            label=f"z3, parameterised proof (every n, any clients): {seconds:.1f} s",
        )


def _decimal_log_axis(axes: Axes) -> None:
    """Log y axis labelled in plain decimals (0.5, 2, 10), minor ticks labelled only when the
    data span less than a decade."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    axes.set_yscale("log")
    plain = FuncFormatter(lambda v, _: f"{v:g}")
    axes.yaxis.set_major_formatter(plain)
    low, high = axes.get_ylim()
    axes.yaxis.set_minor_formatter(plain if high / low < 10 else NullFormatter())


def _time_figure(frame: pd.DataFrame, axis: str, xlabel: str, title: str) -> Figure:
    """Verification time against ``axis`` (log y; log x for n), one line per engine, the
    parameterised proof as a horizontal line, the legend below the axes."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.4, 5.0), layout="constrained")
    axes = figure.add_subplot()
    _plot(axes, frame, axis, "seconds")
    _parametric_line(axes, frame)
    if axis == "n":
        axes.set_xscale("log", base=2)
    values = sorted(int(v) for v in _shown(frame, axis))
    axes.set_xticks(values, [str(v) for v in values])
    axes.minorticks_off()
    _decimal_log_axis(axes)
    axes.set_xlabel(xlabel)
    axes.set_ylabel("time to verify all 5 properties (s, wall clock)")
    axes.set_title(title)
    figure.legend(loc="outside lower center", ncols=1, fontsize=7)
    return figure


def _shown(frame: pd.DataFrame, axis: str) -> list[int]:
    """The ``axis`` values the n or clients series hold (the parameterised proof's 0 excluded)."""
    values: set[int] = set()
    for engine in _STYLE:
        for bug in (NO_BUG, BUG):
            values |= {int(v) for v in _series(frame, engine, bug, axis)[axis]}
    return sorted(values)


def time_against_n(frame: pd.DataFrame) -> Figure:
    """Verification time against the number of data constituents n (log-log), per engine."""
    return _time_figure(
        frame,
        "n",
        "data constituents n (1 client, 1 object)",
        "Fence protocol (seed configuration): verification time against n",
    )


def time_against_clients(frame: pd.DataFrame) -> Figure:
    """Verification time against the number of concurrent client operations (log y)."""
    return _time_figure(
        frame,
        "clients",
        "concurrent client operations (n = 1, one object per client)",
        "Fence protocol (seed configuration): verification time against clients",
    )


def states_explored(frame: pd.DataFrame) -> Figure:
    """States the explicit engine explored against n and against clients (log y), with its
    state budget: the state-space growth behind its time."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(10.0, 4.6), layout="constrained")
    by_n, by_clients = figure.subplots(1, 2, sharey=True)
    budgets = sorted(
        int(b) for b in frame.loc[frame["engine"] == "explicit", "max_states"].unique()
    )
    for axes, axis, label in (
        (by_n, "n", "data constituents n (1 client, 1 object)"),
        (by_clients, "clients", "concurrent client operations (n = 1, one object each)"),
    ):
        _plot(axes, frame, axis, "states")
        for b in budgets:
            axes.axhline(b, color="grey", linestyle="--", linewidth=1.0)
        values = _shown(frame[frame["engine"] == "explicit"], axis)
        axes.set_xticks(values, [str(v) for v in values])
        axes.set_yscale("log")
        axes.set_xlabel(label)
    by_n.set_ylabel("reachable states explored")
    by_n.set_title("explicit engine: states against n")
    by_clients.set_title("explicit engine: states against clients")
    text = ", ".join(f"{b:,}" for b in budgets)
    by_n.plot([], [], color="grey", linestyle="--", linewidth=1.0, label=f"state budget ({text})")
    handles, labels = by_n.get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside lower center", ncols=2, fontsize=7)
    return figure


# ---------------------------------------------------------------------------------------------
# The numbers the paper quotes.


def quoted_numbers(frame: pd.DataFrame) -> dict[str, str]:
    """The paper's E7b numbers; raises EngineDisagreement if the engines contradict each other
    (a frame like that is never quoted). Numbers a grid did not measure read ``n/a``."""
    problems = engine_disagreements(frame)
    if problems:
        raise EngineDisagreement("E7b: the engines disagree: " + "; ".join(problems))
    numbers: dict[str, str] = {}
    parametric = frame[frame["engine"] == "z3-parametric"]
    numbers["ESevenBParamSeconds"] = (
        f"{float(parametric['seconds'].iloc[0]):.1f}" if not parametric.empty else "n/a"
    )
    numbers["ESevenBParamQueries"] = (
        str(int(parametric["queries"].iloc[0])) if not parametric.empty else "n/a"
    )
    explicit = _series(frame, "explicit", NO_BUG, "n")
    done = explicit[~explicit["budget_exceeded"].astype(bool)]
    budget = int(explicit["max_states"].max()) if not explicit.empty else 0
    numbers["ESevenBExplicitBudget"] = f"{budget:,}".replace(",", "{,}")
    numbers["ESevenBExplicitMaxN"] = str(int(done["n"].max())) if not done.empty else "n/a"
    numbers["ESevenBExplicitStateGrowth"] = _growth(done)
    z3_rows = _series(frame, "z3", NO_BUG, "n")
    if z3_rows.empty:
        numbers |= {k: "n/a" for k in ("ESevenBZThreeMaxN", "ESevenBZThreeSecondsMaxN")}
        numbers["ESevenBZThreeGrowth"] = "n/a"
    else:
        first, last = z3_rows.iloc[0], z3_rows.iloc[-1]
        numbers["ESevenBZThreeMaxN"] = str(int(last["n"]))
        numbers["ESevenBZThreeSecondsMaxN"] = f"{float(last['seconds']):.1f}"
        numbers["ESevenBZThreeGrowth"] = f"{float(last['seconds']) / float(first['seconds']):.0f}"
    return numbers


def _growth(done: pd.DataFrame) -> str:
    """Geometric-mean factor by which the explicit engine's state count grows per added data
    constituent, over consecutive complete explorations; ``n/a`` with fewer than two."""
    rows = done.sort_values("n")
    factors = [
        float(b["states"]) / float(a["states"])
        for (_, a), (_, b) in zip(rows.iterrows(), rows.iloc[1:].iterrows(), strict=False)
        if int(b["n"]) == int(a["n"]) + 1
    ]
    if not factors:
        return "n/a"
    return f"{math.exp(sum(math.log(f) for f in factors) / len(factors)):.1f}"


EXPERIMENT = Experiment(
    name="verification-time",
    title="E7b verification time against n and clients, both engines",
    measures="wall time, solver queries and explicit states to verify the fence protocol's seed "
    "configuration, against data constituents n and concurrent client operations",
    quick=QUICK,
    full=FULL,
    point=point,
    columns={
        "engine": "z3 (fixed instance: Houdini invariant, re-checked, then BMC), explicit "
        "(networkx breadth-first exploration) or z3-parametric (every n, any clients)",
        "bug": f"protocol bug toggle: {NO_BUG} (the seed protocol) or {BUG}",
        "n": "data constituents (0: any, for the parameterised proof)",
        "clients": "concurrent client operation slots (0: any)",
        "objects": "objects, of which the first exists initially (0: any)",
        "max_states": "explicit engine's state budget (0: not the explicit engine)",
        "verdict": "violated / unknown / budget exceeded / bounded / proved, over the 5 "
        "properties (the first that applies)",
        "proved": "properties proved",
        "violated": "properties refuted with a (replayed, shortest) counterexample",
        "bounded": "properties neither proved nor refuted within the depth or budget",
        "unknown": "properties on which z3 gave up",
        "refuted": "refuted properties as property@steps of the shortest counterexample, or -",
        "shortest_cex": "steps of the shortest counterexample over refuted properties, or -1",
        "budget_exceeded": "the explicit engine stopped at its state budget before exhausting "
        "the instance",
        "depth": "breadth-first levels finished (explicit); deepest BMC unrolling queried (z3; 0 "
        "when the invariant proved every property)",
        "states": "reachable states explored (explicit; 0 otherwise)",
        "edges": "transitions explored (explicit; 0 otherwise)",
        "queries": "z3 solver queries (check calls; 0 for the explicit engine)",
        "invariant_conjuncts": "conjuncts of the inferred inductive invariant (z3)",
        "seconds": "wall time of the engine run in seconds (varies run to run)",
    },
    figures=(
        FigureSpec("verification-time-n", time_against_n, deterministic=False, paper=True),
        FigureSpec(
            "verification-time-clients", time_against_clients, deterministic=False, paper=True
        ),
        FigureSpec("verification-states", states_explored),
    ),
    timing_columns=("seconds",),
    paper_numbers=quoted_numbers,
)
