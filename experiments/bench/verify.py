"""``xvol bench verify``: how verification time grows with n and with the number of clients.

Measures, in one run, on the fence model's seed configuration (held fences, write-ahead
steps, NS < OLS < DC1 < ... < DCn): the z3 engine on fixed instances (Houdini-inferred
invariant, re-checked) against n and against the number of concurrent client slots; the
parameterised proofs (one query per property, valid for every n and every number of clients);
and the explicit-state engine against the same axes, under a state cap and a time budget per
instance, to show where it stops scaling. Ratios are against the smallest instance of each
series, measured in the same run. Uses :mod:`xvol.model` and rich.
"""

from __future__ import annotations

import argparse
import time

from rich.console import Console
from rich.table import Table

from xvol.model.check import Limits, check_implies, check_inductive, houdini, verify
from xvol.model.explicit import explore
from xvol.model.fence import PROPERTIES, FenceConfig, FenceInstance, fence_system
from xvol.vocabulary import seed_fence_order


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help="small instances only")
    parser.add_argument(
        "--time-cap",
        type=float,
        default=20.0,
        help="seconds per explicit-engine instance (default 20)",
    )
    parser.add_argument(
        "--max-states",
        type=int,
        default=300_000,
        help="state cap per explicit-engine instance (default 300000)",
    )


def _z3(n: int, clients: int, objects: int, timeout_ms: int) -> tuple[float, str]:
    system = fence_system(FenceConfig())
    inst = FenceInstance(
        n, seed_fence_order(n), objects=objects, clients=clients, present=objects
    ).instance()
    start = time.perf_counter()
    results = verify(
        system,
        inst,
        PROPERTIES,
        depth=4,
        candidates=system.invariants,
        limits=Limits(timeout_ms=timeout_ms),
    )
    verdicts = {r.verdict.value for r in results.values()}
    return time.perf_counter() - start, "/".join(sorted(verdicts))


def _explicit(
    n: int, clients: int, objects: int, cap: float, states: int
) -> tuple[float, int, str]:
    system = fence_system(FenceConfig())
    inst = FenceInstance(
        n, seed_fence_order(n), objects=objects, clients=clients, present=1
    ).instance()
    x = explore(system, inst, PROPERTIES, max_states=states, time_budget=cap)
    verdicts = {r.verdict.value for r in x.results.values()}
    return x.seconds, x.states, "/".join(sorted(verdicts)) + ("" if x.complete else " (capped)")


def run(args: argparse.Namespace) -> int:
    console = Console()
    console.print(
        f"xvol bench verify: quick={args.quick} time-cap={args.time_cap}s "
        f"max-states={args.max_states}"
    )
    table = Table(title="fence model, seed configuration (held, write-ahead): verification time")
    for col in ("engine", "n", "clients", "objects", "states", "verdicts", "seconds", "x first"):
        table.add_column(col, justify="left" if col in ("engine", "verdicts") else "right")
    timeout = int(args.time_cap * 1000)
    ns = (1, 2, 4) if args.quick else (1, 2, 4, 8, 16, 32, 64)
    series: list[tuple[int, int, int]] = [(n, 1, 1) for n in ns]
    series += [(2, c, 2) for c in ((1, 2) if args.quick else (1, 2, 3, 4))]
    base: float | None = None
    for i, (n, c, o) in enumerate(series):
        if i == len(ns):
            base = None
        seconds, verdicts = _z3(n, c, o, timeout)
        base = base or seconds
        table.add_row(
            "z3 fixed instance",
            str(n),
            str(c),
            str(o),
            "-",
            verdicts,
            f"{seconds:.2f}",
            f"{seconds / base:.1f}",
        )
    system = fence_system(FenceConfig(), seed_order=True)
    limits = Limits(timeout_ms=60_000)
    start = time.perf_counter()
    survivors, decided = houdini(system, None, system.invariants, limits)
    inferred = time.perf_counter() - start
    start = time.perf_counter()
    base_obligations = check_inductive(system, None, survivors, limits)
    rechecked = time.perf_counter() - start
    valid = all(o.outcome == "valid" for o in base_obligations)
    table.add_row(
        "z3 parametric: Houdini",
        "any",
        "any",
        "any",
        "-",
        "decided" if decided else "unknown",
        f"{inferred:.2f}",
        "",
    )
    table.add_row(
        f"z3 parametric: re-check ({len(base_obligations)} obligations)",
        "any",
        "any",
        "any",
        "-",
        "valid" if valid else "NOT valid",
        f"{rechecked:.2f}",
        "",
    )
    for p in PROPERTIES:
        ob = check_implies(system, None, survivors, p, limits)
        table.add_row(
            f"z3 parametric: implies {p}",
            "any",
            "any",
            "any",
            "-",
            ob.outcome,
            f"{ob.seconds:.2f}",
            "",
        )
    base = None
    shapes = [(1, 1, 1), (2, 1, 1), (3, 1, 1), (2, 2, 1), (2, 2, 2), (3, 2, 2)]
    if args.quick:
        shapes = shapes[:2]
    for n, c, o in shapes:
        seconds, states, verdicts = _explicit(n, c, o, args.time_cap, args.max_states)
        base = base or seconds
        table.add_row(
            "explicit",
            str(n),
            str(c),
            str(o),
            str(states),
            verdicts,
            f"{seconds:.2f}",
            f"{seconds / base:.1f}",
        )
    console.print(table)
    return 0
