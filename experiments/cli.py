"""The xvol experiment command: list the registered experiments, or run one of them.

``xvol experiment list`` prints each experiment's name, title, what it measures and the number of
points in its quick and full grids. ``xvol experiment run NAME`` runs one experiment's grid (full
by default, ``--quick`` for a few seconds) on local processes, in-process (``--executor serial``)
or on a Dask cluster (``--executor dask --scheduler tcp://HOST:8786``), writes the tidy CSV, its
JSON sidecar and the figures into ``--out`` (default ``out/experiments/NAME/``) and ends with a
table of what was written where.

Uses: :mod:`xvol.experiments.registry`, :mod:`xvol.experiments.framework`, rich.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from xvol.errors import InvalidArgumentError
from xvol.experiments import registry
from xvol.experiments.framework import EXECUTOR_KINDS, RunResult, run_experiment
from xvol.outputs import writable_folder


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Add the ``list`` and ``run`` subcommands to ``parser``."""
    actions = parser.add_subparsers(title="actions", metavar="ACTION")
    listing = actions.add_parser("list", help="list the experiments and their grid sizes")
    listing.set_defaults(_experiment_action="list")
    run = actions.add_parser(
        "run",
        help="run one experiment: CSV + JSON sidecar + figures",
        description="Run one experiment's parameter grid and write a tidy CSV, its JSON "
        "provenance sidecar and the figures (PNG and PDF).",
    )
    run.add_argument("name", help="experiment name (see `xvol experiment list`)")
    run.add_argument("--quick", action="store_true", help="the small grid (seconds)")
    run.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output folder (default: out/experiments/NAME/)",
    )
    run.add_argument(
        "--executor",
        choices=EXECUTOR_KINDS,
        default="local",
        help="where points run: local processes (default), serial in-process, or a dask cluster",
    )
    run.add_argument("--scheduler", default=None, help="dask scheduler address (with dask)")
    run.add_argument("--workers", type=int, default=None, help="local processes (default: CPUs)")
    run.add_argument("--seed", type=int, default=None, help="base seed (default: the experiment's)")
    run.set_defaults(_experiment_action="run")
    parser.set_defaults(_experiment_action=None)


def run(args: argparse.Namespace) -> int:
    """Carry out ``xvol experiment list`` or ``xvol experiment run``; the exit status."""
    console = Console()
    action = args._experiment_action
    if action == "list":
        return _list(console)
    if action == "run":
        return _run(console, args)
    print("usage: xvol experiment {list,run} ...", file=sys.stderr)
    return 2


def _list(console: Console) -> int:
    table = Table(title="experiments", title_justify="left")
    table.add_column("name", no_wrap=True)
    table.add_column("title")
    table.add_column("measures")
    table.add_column("quick", justify="right")
    table.add_column("full", justify="right")
    for experiment in registry.experiments():
        table.add_row(
            experiment.name,
            experiment.title,
            experiment.measures,
            str(len(experiment.quick)),
            str(len(experiment.full)),
        )
    console.print(table)
    return 0


def _run(console: Console, args: argparse.Namespace) -> int:
    experiment = registry.get(args.name)
    if args.executor == "dask" and args.scheduler is None:
        raise InvalidArgumentError("--executor dask needs --scheduler ADDRESS")
    if args.workers is not None and args.workers < 1:
        raise InvalidArgumentError(f"--workers must be at least 1, not {args.workers}")
    out_dir: Path = args.out if args.out is not None else registry.DEFAULT_OUT_ROOT / args.name
    writable_folder(out_dir, "--out")
    grid = "quick" if args.quick else "full"
    points = len(experiment.grid_for(args.quick))
    console.print(
        f"[bold]{experiment.name}[/bold]: {experiment.title} — {grid} grid, {points} points, "
        f"executor {args.executor}"
    )
    result = run_experiment(
        experiment,
        out_dir,
        quick=args.quick,
        seed=args.seed,
        executor=args.executor,
        workers=args.workers,
        scheduler=args.scheduler,
        progress=console.is_terminal,
    )
    console.print(_written(result))
    return 0


def _written(result: RunResult) -> Table:
    """The closing table: each file written (in the folder named in the title), what it holds."""
    folder = result.csv.parent
    title = f"{result.experiment.name}: {len(result.frame)} rows written to {folder}/"
    table = Table(title=title, title_justify="left")
    table.add_column("file", overflow="fold")
    table.add_column("holds")
    table.add_row(result.csv.name, "tidy results (deterministic columns)")
    if result.timings_csv is not None:
        table.add_row(result.timings_csv.name, "wall-clock timings (vary run to run)")
    table.add_row(result.sidecar.name, "provenance: commit, versions, seed, grid, command")
    varying = {s.name for s in result.experiment.figures if not s.deterministic}
    paper = {s.name for s in result.experiment.figures if s.paper}
    for name, (png, pdf) in result.figures.items():
        notes = [
            note
            for flag, note in ((name in paper, "paper"), (name in varying, "plots timings"))
            if flag
        ]
        suffix = f" ({', '.join(notes)})" if notes else ""
        table.add_row(f"{png.name}\n{pdf.name}", f"figure{suffix}")
    return table
