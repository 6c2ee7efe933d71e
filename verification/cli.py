"""``xvol verify``: run the verification suites, print the verdicts, write the reports.

Shows progress (rich), then a table (property, configuration, engine, verdict, depth, time)
and the statements each suite derived; writes the JSON record list (``--json``) and a Markdown
report (``--markdown``); ``--explain PROPERTY`` prints a shortest counterexample step by step.
Exits 1 when any verdict differs from what its suite states (or the engines disagree), 0
otherwise. Uses rich and :mod:`xvol.verification`.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from xvol.errors import InvalidArgumentError
from xvol.outputs import writable_file
from xvol.verification import report
from xvol.verification.suites import Cell, SuiteOptions, SuiteReport, available, load, run_order


def configure_parser(parser: argparse.ArgumentParser) -> None:
    suites = available()
    parser.add_argument(
        "--suite", choices=[*suites, "all"], default="all", help="which suite to run (default: all)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a small subset in seconds (for tests and a first look)",
    )
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the JSON records")
    parser.add_argument("--markdown", type=Path, metavar="FILE", help="write a Markdown report")
    parser.add_argument(
        "--explain",
        metavar="PROPERTY",
        help="print a shortest counterexample of PROPERTY step by step",
    )
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument(
        "--all-cells", action="store_true", help="print every cell, not only the summary table"
    )


class _RichProgress:
    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task = progress.add_task("verify", total=1)

    def start(self, total: int, label: str) -> None:
        self.progress.update(self.task, total=total, description=label)

    def advance(self, label: str, amount: int = 1) -> None:
        self.progress.update(self.task, advance=amount, description=label)


def run(args: argparse.Namespace) -> int:
    if args.workers < 1:
        raise InvalidArgumentError(f"--workers must be >= 1, got {args.workers}")
    from xvol.model import fence, mirror  # the suites' properties (imported when run)

    known = (*fence.PROPERTIES, *mirror.PROPERTIES)
    if args.explain and args.explain not in known:
        raise InvalidArgumentError(
            f"no property {args.explain!r}; known: {', '.join(sorted(known))}"
        )
    for option, path in (("--json", args.json), ("--markdown", args.markdown)):
        if path is not None:
            writable_file(path, option)  # before the suites run, not after
    names = available() if args.suite == "all" else [args.suite]
    console = Console(stderr=False)
    options = SuiteOptions(quick=args.quick, workers=args.workers)
    reports: list[SuiteReport] = []
    with Progress(
        TextColumn("{task.description:<32}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        sink = _RichProgress(bar)
        for name in run_order(names):
            reports.append(load(name).run(replace(options, earlier=tuple(reports)), sink))
    _print(console, reports, every=args.all_cells)
    if args.json:
        report.write_json(reports, args.json)
        console.print(f"wrote {args.json}")
    if args.markdown:
        report.write_markdown(reports, args.markdown)
        console.print(f"wrote {args.markdown}")
    if args.explain:
        _explain(console, reports, args.explain)
    failures = [f for r in reports for f in r.failures]
    for f in failures:
        console.print(f"[red]FAILURE[/red] {f}")
    return 1 if failures else 0


def _print(console: Console, reports: Sequence[SuiteReport], *, every: bool) -> None:
    for r in reports:
        table = Table(title=f"suite {r.name}: {len(r.cells)} cells in {r.seconds:.1f} s")
        for col in ("property", "configuration", "engine", "verdict", "depth", "s"):
            table.add_column(col, justify="right" if col in ("depth", "s") else "left")
        shown = r.cells if every else _summary(r)
        for c in shown:
            colour = {"proved": "green", "violated": "red"}.get(c.verdict, "yellow")
            table.add_row(
                c.prop,
                report.config_text(c.config),
                c.engine,
                f"[{colour}]{c.verdict}[/{colour}]",
                "-" if c.depth is None else str(c.depth),
                f"{c.seconds:.2f}",
            )
        console.print(table)
        for s in r.statements:
            mark = "[green]holds[/green]" if s.holds else "[red]FAILS[/red]"
            console.print(f"- {s.text} — {mark} ({s.checked} cells)")


def _summary(r: SuiteReport) -> list[Cell]:
    """The seed order cells of every mode and discipline, and every cell off the n = 2
    matrix (scaling, parametric, broken protocols)."""
    seed = ["NS", "OLS", "DC1", "DC2"]
    return [
        c
        for c in r.cells
        if c.config.get("n") != 2 or c.config.get("order") == seed or c.config.get("bugs")
    ]


def _explain(console: Console, reports: Sequence[SuiteReport], prop: str) -> None:
    known = {c.prop for r in reports for c in r.cells}
    if prop not in known:
        raise InvalidArgumentError(f"no property {prop!r}; known: {', '.join(sorted(known))}")
    violated = [
        c
        for r in reports
        for c in r.cells
        if c.prop == prop and c.verdict == "violated" and c.rendered
    ]
    if not violated:
        proofs = [c for r in reports for c in r.cells if c.prop == prop and c.invariant]
        console.print(f"'{prop}' is not violated in any cell of this run.")
        if proofs:
            c = proofs[0]
            console.print(
                f"It is proved by an inductive invariant, e.g. for "
                f"{report.config_text(c.config)}: {', '.join(c.invariant)}"
            )
        return
    best = min(violated, key=lambda c: (c.depth or 0, c.engine != "z3"))
    console.print(
        f"[bold]{prop}[/bold] violated at {report.config_text(best.config)} ({best.engine} engine):"
    )
    console.print(best.rendered or "", markup=False, highlight=False)
