"""``xvol bench verify``: how verification time grows with n and with the number of clients.

Measures, in one run, on the fence model's seed configuration (held fences, write-ahead
steps, NS < OLS < DC1 < ... < DCn): the z3 engine on fixed instances (Houdini-inferred
invariant, re-checked) against n and against the number of concurrent client slots; the
parameterised proofs (valid for every n and every number of clients: the inference they
share, then each property's own proof, whose target is at most 1 s);
and the explicit-state engine against the same axes, under a state cap and a time budget per
instance, to show where it stops scaling. Ratios are against the smallest instance of each
series, measured in the same run. The measuring functions (:func:`z3_fixed`,
:func:`explicit_run`, :func:`parametric_proof` (one invariant for every property, as the
experiment records it), :func:`parametric_proofs`) are shared with the experiment
:mod:`xvol.experiments.verification_time`. Uses :mod:`xvol.model` and rich.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table

from xvol.errors import InvalidArgumentError
from xvol.model.check import (
    EveryN,
    Limits,
    Obligation,
    Result,
    check_implies,
    check_inductive,
    houdini,
    prove_every_n,
    verify,
)
from xvol.model.explicit import Exploration, explore
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


def z3_fixed(
    n: int,
    clients: int,
    objects: int,
    *,
    present: int,
    timeout_ms: int,
    depth: int = 4,
    config: FenceConfig | None = None,
) -> dict[str, Result]:
    """The z3 engine on one fixed instance of the fence model in the seed order (Houdini over
    the model's candidate invariants, re-checked; then BMC up to ``depth``): one result per
    property; ``config`` defaults to the seed's (held, write-ahead, no bugs)."""
    system = fence_system(config or FenceConfig())
    inst = FenceInstance(
        n, seed_fence_order(n), objects=objects, clients=clients, present=present
    ).instance()
    return verify(
        system,
        inst,
        PROPERTIES,
        depth=depth,
        candidates=system.invariants,
        limits=Limits(timeout_ms=timeout_ms),
    )


def explicit_run(
    n: int,
    clients: int,
    objects: int,
    *,
    present: int,
    max_states: int,
    time_budget: float | None = None,
    config: FenceConfig | None = None,
) -> Exploration:
    """The explicit-state engine on the same instance, stopped at ``max_states`` states (and
    at ``time_budget`` seconds when given: a machine-dependent limit)."""
    system = fence_system(config or FenceConfig())
    inst = FenceInstance(
        n, seed_fence_order(n), objects=objects, clients=clients, present=present
    ).instance()
    return explore(system, inst, PROPERTIES, max_states=max_states, time_budget=time_budget)


@dataclass(frozen=True)
class ParametricProof:
    """The seed configuration proved for every n and every number of clients and objects:
    the Houdini-inferred invariant (``survivors`` of ``candidates``), its re-check (init and
    one obligation per action) and one implication per property, with their times."""

    candidates: int
    survivors: tuple[str, ...]
    decided: bool
    houdini_seconds: float
    obligations: tuple[Obligation, ...]
    recheck_seconds: float
    implications: dict[str, Obligation]

    @property
    def proved(self) -> bool:
        """Whether every query was decided and every obligation is valid."""
        return self.decided and all(
            o.outcome == "valid" for o in (*self.obligations, *self.implications.values())
        )


def parametric_proof(timeout_ms: int = 60_000) -> ParametricProof:
    """Infer, re-check and apply the seed configuration's parameterised invariant."""
    system = fence_system(FenceConfig(), seed_order=True)
    limits = Limits(timeout_ms=timeout_ms)
    start = time.perf_counter()
    survivors, decided = houdini(system, None, system.invariants, limits)
    inferred = time.perf_counter() - start
    start = time.perf_counter()
    obligations = check_inductive(system, None, survivors, limits)
    rechecked = time.perf_counter() - start
    implications = {p: check_implies(system, None, survivors, p, limits) for p in PROPERTIES}
    return ParametricProof(
        len(system.invariants),
        tuple(i.name for i in survivors),
        decided,
        inferred,
        tuple(obligations),
        rechecked,
        implications,
    )


def parametric_proofs(timeout_ms: int = 60_000) -> EveryN:
    """The seed configuration proved for every n, one proof per property
    (:func:`xvol.model.check.prove_every_n`: candidates inferred by Houdini on the n = 1 seed
    instance, each property's own invariant selected and re-checked; a result's ``seconds``
    is its proof)."""
    system = fence_system(FenceConfig(), seed_order=True)
    small = FenceInstance(1, seed_fence_order(1), objects=1, clients=1, present=1)
    return prove_every_n(
        system, PROPERTIES, system.invariants, small.instance(), Limits(timeout_ms=timeout_ms)
    )


def _z3(n: int, clients: int, objects: int, timeout_ms: int) -> tuple[float, str]:
    start = time.perf_counter()
    results = z3_fixed(n, clients, objects, present=objects, timeout_ms=timeout_ms)
    verdicts = {r.verdict.value for r in results.values()}
    return time.perf_counter() - start, "/".join(sorted(verdicts))


def _explicit(
    n: int, clients: int, objects: int, cap: float, states: int
) -> tuple[float, int, str]:
    x = explicit_run(n, clients, objects, present=1, max_states=states, time_budget=cap)
    verdicts = {r.verdict.value for r in x.results.values()}
    return x.seconds, x.states, "/".join(sorted(verdicts)) + ("" if x.complete else " (capped)")


def run(args: argparse.Namespace) -> int:
    """Run the benchmark and print its table."""
    if args.time_cap <= 0 or args.max_states < 1:
        raise InvalidArgumentError(
            f"--time-cap must be > 0 s and --max-states >= 1, got {args.time_cap} and "
            f"{args.max_states}"
        )
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
    every = parametric_proofs()
    table.add_row(
        "z3 parametric: inference (Houdini on n=1, shared)",
        "any",
        "any",
        "any",
        "-",
        f"{len(every.candidates)} candidates" if every.decided else "undecided",
        f"{every.inference:.2f}",
        "",
    )
    for p, r in every.results.items():
        table.add_row(
            f"z3 parametric: proof of {p} ({len(r.invariant)} conjuncts)",
            "any",
            "any",
            "any",
            "-",
            r.verdict.value,
            f"{r.seconds:.2f}",
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
