"""``xvol reproduce``: regenerate every result the kit produces, in one command.

It runs, in order: the verification suites (``xvol verify``: JSON and Markdown reports), every
registered experiment (``xvol experiment run``: tidy CSV, JSON sidecar, figures), copies the
figures marked for the paper into ``paper/figures/``, writes ``paper/generated/numbers.tex`` and
``paper/generated/verdicts.tex`` (:mod:`xvol.paper`), and builds ``paper/xvol.pdf`` when latexmk
is installed. It ends with a table of what was produced where and exits non-zero if any suite
reports a failure or the paper does not build. ``--quick`` runs the small grids and the quick
suites (a few minutes); ``make reproduce`` runs the full version.

This module sits on the roof of the house, beside :mod:`xvol.cli`: it may import every half.
"""

from __future__ import annotations

import argparse
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from xvol.errors import InvalidArgumentError
from xvol.outputs import writable_folder

if TYPE_CHECKING:
    from xvol.verification.suites import SuiteReport


@dataclass(frozen=True)
class Product:
    """One file the run produced and what it holds."""

    path: Path
    holds: str


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Options of ``xvol reproduce``."""
    parser.add_argument("--quick", action="store_true", help="small grids and quick suites")
    parser.add_argument(
        "--out", type=Path, default=Path("out"), help="output folder (default: out/)"
    )
    parser.add_argument(
        "--paper",
        type=Path,
        default=Path("paper"),
        help="the paper folder: figures/ and generated/ are written there and xvol.tex is "
        "built when latexmk is installed (default: paper/)",
    )
    parser.add_argument(
        "--no-pdf", action="store_true", help="write the paper's inputs but do not run LaTeX"
    )
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--seed", type=int, default=None, help="base seed of the experiments")


class _Bar:
    """Adapts a rich progress bar to the suites' progress protocol."""

    def __init__(self, progress: Progress, label: str) -> None:
        self.progress = progress
        self.task = progress.add_task(label, total=1)

    def start(self, total: int, label: str) -> None:
        self.progress.update(self.task, total=total, description=label)

    def advance(self, label: str, amount: int = 1) -> None:
        self.progress.update(self.task, advance=amount, description=label)


def run_suites(
    out: Path, *, quick: bool, workers: int, console: Console
) -> tuple[list[Product], list[SuiteReport]]:
    """Run every verification suite; the report files and the reports."""
    from xvol.verification import report
    from xvol.verification.suites import SuiteOptions, available, load, run_order

    options = SuiteOptions(quick=quick, workers=workers)
    reports: list[SuiteReport] = []
    with Progress(
        TextColumn("{task.description:<40}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        for name in run_order(available()):
            run = load(name).run
            reports.append(
                run(replace(options, earlier=tuple(reports)), _Bar(bar, f"verify {name}"))
            )
    out.mkdir(parents=True, exist_ok=True)
    json_path, markdown_path = out / "verify.json", out / "verify.md"
    report.write_json(reports, json_path)
    report.write_markdown(reports, markdown_path)
    cells = sum(len(r.cells) for r in reports)
    products = [
        Product(json_path, f"verification records: {cells} cells of {len(reports)} suites"),
        Product(markdown_path, "verification report: verdicts and derived statements"),
    ]
    return products, reports


def run_experiments(
    out: Path, paper_figures: Path, *, quick: bool, workers: int, seed: int | None
) -> tuple[list[Product], dict[str, Mapping[str, str]]]:
    """Run every registered experiment and copy its paper figures; the files produced and
    each experiment's quoted numbers."""
    from xvol.experiments import registry

    results = registry.run_all(
        out, quick=quick, seed=seed, workers=workers, progress=True, command=["xvol", "reproduce"]
    )
    products: list[Product] = []
    for result in results:
        name = result.experiment.name
        products.append(Product(result.csv, f"{name}: tidy results"))
        products.append(Product(result.sidecar, f"{name}: provenance sidecar"))
        for png, pdf in result.figures.values():
            products.append(Product(png, f"{name}: figure"))
            products.append(Product(pdf, f"{name}: figure"))
    paper_figures.mkdir(parents=True, exist_ok=True)
    for figure in (p for r in results for p in r.paper_figures):
        target = paper_figures / figure.name
        shutil.copyfile(figure, target)
        products.append(Product(target, "paper figure (copy)"))
    return products, {r.experiment.name: r.numbers for r in results}


def write_paper(
    paper_dir: Path,
    numbers: Mapping[str, Mapping[str, str]],
    reports: Sequence[SuiteReport],
    *,
    quick: bool,
    pdf: bool,
    console: Console,
) -> tuple[list[Product], list[str]]:
    """Write the paper's generated inputs and build its PDF when asked and possible; the files
    produced and the failures (a LaTeX error is one)."""
    from xvol import paper

    generated = paper.write_generated(paper_dir, numbers, reports, quick=quick)
    products = [
        Product(generated.numbers, f"paper numbers: {generated.macros} macros"),
        Product(generated.verdicts, "paper verdict table"),
    ]
    if not pdf:
        return products, []
    if not (paper_dir / paper.PAPER_SOURCE).is_file():
        console.print(f"no paper source in {paper_dir}: PDF not built")
        return products, []
    missing = paper.latexmk_missing_reason()
    if missing:
        console.print(f"PDF not built: {missing}")
        return products, []
    try:
        built = paper.build_pdf(paper_dir)
    except paper.PaperBuildError as error:
        return products, [str(error)]
    return [*products, Product(built, "the paper (PDF)")], []


def run(args: argparse.Namespace) -> int:
    """Carry out ``xvol reproduce``; exit status 1 if a suite reports a failure."""
    if args.workers < 1:
        raise InvalidArgumentError(f"--workers must be >= 1, got {args.workers}")
    writable_folder(args.out, "--out")  # before minutes of work, not after them
    for folder in (args.paper / "figures", args.paper / "generated"):
        writable_folder(folder, "--paper")
    console = Console()
    mode = "quick" if args.quick else "full"
    console.print(f"[bold]xvol reproduce[/bold] ({mode}): suites, experiments, figures")
    products, reports = run_suites(
        args.out / "verify", quick=args.quick, workers=args.workers, console=console
    )
    failures = [f for r in reports for f in r.failures]
    experiment_products, numbers = run_experiments(
        args.out / "experiments",
        args.paper / "figures",
        quick=args.quick,
        workers=args.workers,
        seed=args.seed,
    )
    products += experiment_products
    paper_products, paper_failures = write_paper(
        args.paper, numbers, reports, quick=args.quick, pdf=not args.no_pdf, console=console
    )
    products += paper_products
    failures += paper_failures
    table = Table(title=f"produced {len(products)} files", title_justify="left")
    table.add_column("file", overflow="fold")
    table.add_column("holds")
    for product in products:
        table.add_row(str(product.path), product.holds)
    console.print(table)
    for failure in failures:
        console.print(f"[red]FAILURE[/red] {failure}")
    return 1 if failures else 0
