"""The experiment framework: a parameter grid in, a tidy CSV, a provenance sidecar and figures out.

An *experiment* measures the reference stack over a grid of parameter points. It is one module
that declares an :class:`Experiment` record: its grids (``quick`` for a few seconds, ``full`` for
the paper), a pure function ``point(params, seed) -> list[Record]`` that measures one point, and
figure functions that draw a :class:`pandas.DataFrame` into a :class:`matplotlib.figure.Figure`.
The runner (:func:`run_experiment`) does everything else, in this order:

1. derive one seed per point from the experiment name, the point's parameters and the base seed
   (:func:`derive_seed`), never from the order in which workers finish;
2. run the points on a :mod:`concurrent.futures` executor (:func:`open_executor`: in-process
   serial, local processes, or a Dask distributed cluster) with a rich progress bar;
3. gather the records in grid order into one tidy frame (one row per observation, one column per
   variable, parameter columns first), sorted by its deterministic columns;
4. write ``<name>.csv`` (deterministic columns only, ``index=False``), ``<name>.timings.csv``
   (parameters, seed and key columns, then the wall-clock *timing columns*, which vary run to
   run; it joins the results CSV on those identifying columns) and
   ``<name>.json`` (the sidecar: git commit, dirty flag, package versions, Python version, seed,
   grid, command line, quick or full, column meanings);
5. draw each figure under one fixed style and save it as PNG and PDF with the time stamps and
   software tags removed, so that a figure that does not plot timing columns is byte-identical
   from run to run.

A minimal experiment module (then add its name to :data:`xvol.experiments.registry.MODULES`)::

    def point(params: Params, seed: int) -> list[Record]:
        rng = numpy.random.default_rng(seed)            # every random choice from the seed
        ...                                             # build, measure, check the result
        return [{"operation": "rebuild", "disk_reads": reads, "elapsed_s": seconds}]

    def reads(frame: pd.DataFrame) -> Figure:
        from matplotlib.figure import Figure            # heavy import inside (see below)
        figure = Figure(); axes = figure.add_subplot(); ...; return figure

    EXPERIMENT = Experiment(
        name="my-experiment", title="...", measures="...",
        quick=grid({"level": ["RAID-5"], "disks": [4]}),
        full=grid({"level": ["RAID-4", "RAID-5"], "disks": [2, 4, 8]}),
        point=point,
        columns={"level": "...", "disks": "...", "operation": "...", "disk_reads": "...",
                 "elapsed_s": "..."},                   # every column, with its meaning
        figures=(FigureSpec("my-reads", reads, paper=True),),
        keys=("operation",), timing_columns=("elapsed_s",),
    )

The life cycle of an :class:`Experiment` is static: it is built once at import of its module and
never changes. A point function must be a module-level function (workers in other processes and
on other machines import it by name), must not read the wall clock except to fill timing columns,
and must draw every random choice from its ``seed`` argument.

Uses: the standard library, pandas, matplotlib (object API only, never pyplot, so that no
global figure state is touched), rich, and :mod:`distributed` only when the Dask executor is
asked for. Workers import this module and the experiment's module by name, so the heavy libraries
(pandas, matplotlib, rich) are imported inside the functions that need them, and experiment
modules should do the same in their figure functions: a spawned worker then starts in a fraction
of a second. Imports nothing of the kit but :mod:`xvol.errors`.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import hashlib
import importlib.metadata
import itertools
import json
import multiprocessing
import numbers
import platform
import re
import shlex
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal, ParamSpec, TypeVar

from xvol.errors import InvalidArgumentError, XvolError

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

# --------------------------------------------------------------------------------------------
# Records, parameters and grids
# --------------------------------------------------------------------------------------------

Scalar = int | float | str | bool
"""A value a CSV cell can hold without loss: every parameter and every measured value is one."""

Params = Mapping[str, Scalar]
"""One point of a grid: parameter name -> value."""

Record = dict[str, Scalar]
"""One observation measured at a point; the runner adds the point's parameters and seed to it."""

PointFunction = Callable[[Params, int], list[Record]]
"""``point(params, seed) -> records``: measures one grid point; pure but for timing columns."""

FigureFunction = Callable[["pd.DataFrame"], "Figure"]
"""``draw(frame) -> figure``: draws the whole tidy frame (timing columns included)."""

NumbersFunction = Callable[["pd.DataFrame"], Mapping[str, str]]
"""``numbers(frame) -> {macro: text}``: the figures the paper's text quotes from this experiment.

Each key is a LaTeX macro name (ASCII letters only, e.g. ``EOneBlockDiffRatio``) and each value
the already formatted text the macro expands to (e.g. ``"12.5"``, ``"3.1\\,MiB"``). ``xvol
reproduce`` writes every experiment's numbers into ``paper/generated/numbers.tex`` as
``\\newcommand{\\EOneBlockDiffRatio}{12.5}``, so the paper never types a measured number by hand.
Quote only deterministic columns unless the text says the number is a timing of one run.
"""

MACRO_NAME = re.compile(r"^[A-Za-z]+$")
"""What a LaTeX macro name may be: letters only (digits and underscores end a control word)."""

SEED_COLUMN = "seed"
"""The column that holds each point's derived seed, so that any row can be re-measured alone."""


class ExperimentError(XvolError):
    """An experiment broke its own declaration (an undeclared column, a parameter overwritten by a
    record, a column of mixed types); a bug in the experiment module, reported by name."""


def grid(
    axes: Mapping[str, Sequence[Scalar]],
    where: Callable[[Params], bool] | None = None,
) -> tuple[Params, ...]:
    """The cartesian product of ``axes`` (last axis varies fastest), keeping points ``where`` holds.

    Raises :class:`InvalidArgumentError` for an empty axis or an empty result.
    """
    for name, values in axes.items():
        if len(values) == 0:
            raise InvalidArgumentError(f"grid axis {name!r} has no values")
    names = list(axes)
    points: list[Params] = []
    for combo in itertools.product(*(axes[name] for name in names)):
        point = dict(zip(names, combo, strict=True))
        if where is None or where(point):
            points.append(point)
    if not points:
        raise InvalidArgumentError(f"grid over {names} is empty after filtering")
    return tuple(points)


def derive_seed(experiment: str, params: Params, base_seed: int) -> int:
    """A 63-bit seed that depends only on the experiment name, the point and the base seed.

    Stable across processes, machines and Python versions (SHA-256 of a canonical JSON text; never
    the salted built-in ``hash``), so a point measures the same whichever worker runs it.
    """
    canonical = json.dumps(
        {"experiment": experiment, "params": dict(sorted(params.items())), "seed": base_seed},
        sort_keys=True,
        separators=(",", ":"),
    )
    digest = hashlib.sha256(canonical.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") >> 1


# --------------------------------------------------------------------------------------------
# Experiment declarations
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FigureSpec:
    """One figure of an experiment.

    ``name`` is the file stem (``<name>.png``, ``<name>.pdf``). ``deterministic`` is False when the
    figure plots timing columns (its bytes then vary run to run). ``paper`` marks figures that
    ``xvol reproduce`` copies into ``paper/figures/``.
    """

    name: str
    draw: FigureFunction
    deterministic: bool = True
    paper: bool = False


@dataclass(frozen=True)
class Experiment:
    """The declaration of one experiment; built once by its module, immutable afterwards.

    Invariants (checked by :meth:`validate`): every grid point of ``quick`` and ``full`` has the
    same parameter names, in the same order; ``columns`` documents every parameter, every measured
    column and every timing column. ``keys`` are the record columns that, with the parameters,
    identify one row (e.g. ``operation`` when a point yields one row per operation); the runner
    checks that they do, and they join the timings CSV to the results CSV.
    """

    name: str
    title: str
    measures: str
    quick: tuple[Params, ...]
    full: tuple[Params, ...]
    point: PointFunction
    columns: Mapping[str, str]
    figures: tuple[FigureSpec, ...] = ()
    keys: tuple[str, ...] = ()
    timing_columns: tuple[str, ...] = ()
    default_seed: int = 0
    paper_numbers: NumbersFunction | None = None

    def validate(self) -> None:
        """Raise :class:`ExperimentError` if the declaration breaks an invariant above."""
        if not self.quick or not self.full:
            raise ExperimentError(
                f"experiment {self.name!r}: quick and full grids must be non-empty"
            )
        names = list(self.quick[0])
        for point in (*self.quick, *self.full):
            if list(point) != names:
                raise ExperimentError(
                    f"experiment {self.name!r}: grid point {dict(point)} does not have the "
                    f"parameters {names} in that order"
                )
        declared = (*names, *self.keys, *self.timing_columns)
        undocumented = [n for n in declared if n not in self.columns]
        if undocumented:
            raise ExperimentError(
                f"experiment {self.name!r}: columns not documented: {undocumented}"
            )
        if SEED_COLUMN in names:
            raise ExperimentError(f"experiment {self.name!r}: {SEED_COLUMN!r} is not a parameter")
        stems = [f.name for f in self.figures]
        if len(set(stems)) != len(stems):
            raise ExperimentError(f"experiment {self.name!r}: duplicate figure names {stems}")

    @property
    def parameters(self) -> tuple[str, ...]:
        """The parameter names, in grid order."""
        return tuple(self.quick[0])

    def grid_for(self, quick: bool) -> tuple[Params, ...]:
        """The quick or the full grid."""
        return self.quick if quick else self.full


# --------------------------------------------------------------------------------------------
# Executors: where the points run
# --------------------------------------------------------------------------------------------

_P = ParamSpec("_P")
_T = TypeVar("_T")

ExecutorKind = Literal["serial", "local", "dask"]
EXECUTOR_KINDS: tuple[ExecutorKind, ...] = ("local", "serial", "dask")


class SerialExecutor(concurrent.futures.Executor):
    """Runs each submitted call at once in the calling process: for debugging and for tests.

    ``submit`` returns an already-completed future (holding the result or the exception).
    """

    def submit(
        self, fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs
    ) -> concurrent.futures.Future[_T]:
        future: concurrent.futures.Future[_T] = concurrent.futures.Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as exc:  # handed to the caller through the future
            future.set_exception(exc)
        return future


@contextlib.contextmanager
def open_executor(
    kind: str = "local",
    *,
    workers: int | None = None,
    scheduler: str | None = None,
) -> Iterator[concurrent.futures.Executor]:
    """An executor of the given kind, shut down on exit.

    ``local``: a process pool of ``workers`` processes (default: one per CPU), started with the
    ``spawn`` method: each worker imports the experiment's module by name, as a Dask worker on
    another machine does, and never inherits the parent's threads or state. ``serial``: in
    the calling process. ``dask``: the executor of a :class:`distributed.Client` connected to the
    scheduler at ``scheduler`` (e.g. ``tcp://10.0.0.5:8786``); ``workers`` must then be unset (the
    cluster owns its workers). Raises :class:`InvalidArgumentError` for a bad combination.
    """
    if kind not in EXECUTOR_KINDS:
        raise InvalidArgumentError(f"unknown executor {kind!r}; choose one of {EXECUTOR_KINDS}")
    if workers is not None and workers < 1:
        raise InvalidArgumentError(f"--workers must be at least 1, not {workers}")
    if kind != "dask" and scheduler is not None:
        raise InvalidArgumentError("a scheduler address is only used with the dask executor")
    if kind == "serial":
        with SerialExecutor() as serial:
            yield serial
    elif kind == "local":
        context = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
            yield pool
    else:
        if scheduler is None:
            raise InvalidArgumentError("the dask executor needs --scheduler ADDRESS")
        if workers is not None:
            raise InvalidArgumentError("--workers does not apply to dask: the cluster owns them")
        try:
            import distributed
        except ImportError as exc:
            raise InvalidArgumentError(
                "the dask executor needs the 'dask' extra: pip install -e '.[dask]'"
            ) from exc
        client = distributed.Client(scheduler, set_as_default=False)  # type: ignore[no-untyped-call]
        with client, client.get_executor(pure=False) as executor:  # type: ignore[no-untyped-call]
            yield executor


# --------------------------------------------------------------------------------------------
# Running the grid
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PointTask:
    """What a worker needs to measure points of one experiment: picklable by reference (the point
    function is module-level), so it travels to processes and Dask workers without the figures."""

    experiment: str
    point: PointFunction
    columns: Mapping[str, str]

    @classmethod
    def of(cls, experiment: Experiment) -> PointTask:
        """The task for ``experiment``; :class:`ExperimentError` if its point function cannot be
        imported by name in another process."""
        module = getattr(experiment.point, "__module__", None)
        qualname = getattr(experiment.point, "__qualname__", "")
        if module in (None, "__main__") or "<" in qualname:
            raise ExperimentError(
                f"experiment {experiment.name!r}: the point function must be a module-level "
                "function of an importable module"
            )
        return cls(experiment.name, experiment.point, dict(experiment.columns))


def measure_point(task: PointTask, params: Params, base_seed: int) -> list[Record]:
    """The records of one point, each with the point's parameters and seed prepended.

    This is what workers run. Raises :class:`ExperimentError` when a record overwrites a parameter
    with a different value or has a column the experiment does not document.
    """
    seed = derive_seed(task.experiment, params, base_seed)
    rows: list[Record] = []
    for record in task.point(params, seed):
        for key, value in record.items():
            if key in params and params[key] != value:
                raise ExperimentError(
                    f"experiment {task.experiment!r}: record sets parameter {key!r} to {value!r} "
                    f"at point {dict(params)}"
                )
            if key not in task.columns or key == SEED_COLUMN:
                raise ExperimentError(
                    f"experiment {task.experiment!r}: record column {key!r} is not documented"
                )
        rows.append({**params, SEED_COLUMN: seed, **record})
    return rows


def collect(
    experiment: Experiment,
    points: Sequence[Params],
    base_seed: int,
    executor: concurrent.futures.Executor,
    *,
    progress: bool = False,
) -> pd.DataFrame:
    """Measure every point on ``executor`` and return the tidy, sorted frame.

    Records are gathered in grid order whatever order the workers finish in; the frame is sorted
    by its deterministic columns (parameters first) with a stable sort and a fresh index.
    """
    task = PointTask.of(experiment)
    futures = [executor.submit(measure_point, task, dict(p), base_seed) for p in points]
    with _progress_bar(experiment.name, len(futures), enabled=progress) as advance:
        for done in concurrent.futures.as_completed(futures):
            done.result()  # raise a worker's error at once
            advance()
    rows = [row for future in futures for row in future.result()]
    return tidy_frame(experiment, rows)


def tidy_frame(experiment: Experiment, rows: Sequence[Record]) -> pd.DataFrame:
    """Rows -> a frame: parameter columns, the seed, then measured columns in first-seen order;
    sorted by all but the timing columns. Raises :class:`ExperimentError` on a mixed-type column
    or when the parameters and keys do not identify each row."""
    order: dict[str, None] = dict.fromkeys((*experiment.parameters, SEED_COLUMN))
    for row in rows:
        order.update(dict.fromkeys(row))
    columns = list(order)
    import pandas as pd

    frame = pd.DataFrame.from_records(list(rows), columns=columns)
    for column in columns:
        kinds = {_kind(row[column]) for row in rows if column in row}
        if len(kinds) > 1 or "other" in kinds:
            raise ExperimentError(
                f"experiment {experiment.name!r}: column {column!r} holds {sorted(kinds)} values; "
                "a column holds numbers, strings or booleans, one kind only"
            )
    identity = [*experiment.parameters, *experiment.keys]
    missing = [c for c in experiment.keys if c not in frame.columns]
    if missing or frame.duplicated(identity).any():
        raise ExperimentError(
            f"experiment {experiment.name!r}: parameters and keys {identity} do not identify "
            f"each row (missing key columns: {missing})"
        )
    order_by = [c for c in columns if c not in experiment.timing_columns]
    frame = frame.sort_values(by=order_by, kind="mergesort", na_position="last")
    return frame.reset_index(drop=True)


def _kind(value: object) -> str:
    """``bool``, ``number`` (any int or float, numpy's included), ``str`` or ``other``."""
    if isinstance(value, (bool, *_numpy_bool_types())):
        return "bool"
    if isinstance(value, numbers.Real):
        return "number"
    return "str" if isinstance(value, str) else "other"


def _numpy_bool_types() -> tuple[type, ...]:
    """numpy's boolean scalar type when numpy is loaded (it is not a ``bool`` subclass)."""
    numpy = sys.modules.get("numpy")
    return (numpy.bool_,) if numpy is not None else ()


@contextlib.contextmanager
def _progress_bar(label: str, total: int, *, enabled: bool) -> Iterator[Callable[[], None]]:
    """A rich progress bar over ``total`` points; yields the function that advances it by one."""
    if not enabled:
        yield lambda: None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, transient=False) as bar:
        task = bar.add_task(label, total=total)
        yield lambda: bar.advance(task)


# --------------------------------------------------------------------------------------------
# Deterministic figures
# --------------------------------------------------------------------------------------------

FIGURE_STYLE: dict[str, object] = {
    "figure.figsize": (6.4, 4.0),
    "figure.dpi": 100,
    "savefig.dpi": 150,
    "font.family": "DejaVu Sans",
    "font.size": 9.0,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.frameon": False,
    "lines.linewidth": 1.5,
    "lines.markersize": 5.0,
    "pdf.fonttype": 42,
    "svg.hashsalt": "xvol",
    "path.simplify": True,
}
"""The one style every experiment figure is drawn and saved under (fonts shipped with
matplotlib, so the bytes do not depend on the fonts installed on the machine)."""

PNG_METADATA: dict[str, str | None] = {"Software": None}
PDF_METADATA: dict[str, str | None] = {"CreationDate": None, "ModDate": None, "Producer": None}


def draw_figure(spec: FigureSpec, frame: pd.DataFrame) -> Figure:
    """Draw ``spec`` under :data:`FIGURE_STYLE`."""
    import matplotlib

    with matplotlib.rc_context(FIGURE_STYLE):  # type: ignore[arg-type]
        return spec.draw(frame)


def save_figure(figure: Figure, stem: Path) -> tuple[Path, Path]:
    """Save ``figure`` as ``stem.png`` and ``stem.pdf`` without time stamps or tool versions;
    return the two paths."""
    import matplotlib

    png, pdf = stem.with_suffix(".png"), stem.with_suffix(".pdf")
    with matplotlib.rc_context(FIGURE_STYLE):  # type: ignore[arg-type]
        figure.savefig(png, format="png", metadata=PNG_METADATA)
        figure.savefig(pdf, format="pdf", metadata=PDF_METADATA)
    return png, pdf


# --------------------------------------------------------------------------------------------
# Provenance
# --------------------------------------------------------------------------------------------

TRACKED_PACKAGES = ("numpy", "pandas", "matplotlib", "z3-solver", "rich", "xvol")


def git_state(where: Path) -> tuple[str, bool | None]:
    """``(commit, dirty)`` of the checkout holding ``where``; ``("unknown", None)`` without git."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=where,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown", None
    return head, bool(status.strip())


def package_versions(names: Sequence[str] = TRACKED_PACKAGES) -> dict[str, str]:
    """Installed version of each named distribution (``"not installed"`` when absent)."""
    versions: dict[str, str] = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


# --------------------------------------------------------------------------------------------
# One run, end to end
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunResult:
    """What one run produced: the frame (timing columns included) and every file written."""

    experiment: Experiment
    frame: pd.DataFrame
    csv: Path
    sidecar: Path
    timings_csv: Path | None
    figures: Mapping[str, tuple[Path, Path]] = field(default_factory=dict)
    numbers: Mapping[str, str] = field(default_factory=dict)

    @property
    def files(self) -> tuple[Path, ...]:
        """Every file written, data first, then figures in declaration order."""
        data = (self.csv, *((self.timings_csv,) if self.timings_csv else ()), self.sidecar)
        return data + tuple(p for pair in self.figures.values() for p in pair)

    @property
    def paper_figures(self) -> tuple[Path, ...]:
        """The figure files marked for the paper (PNG and PDF of each)."""
        marked = {spec.name for spec in self.experiment.figures if spec.paper}
        return tuple(p for name, pair in self.figures.items() if name in marked for p in pair)


def run_experiment(
    experiment: Experiment,
    out_dir: Path,
    *,
    quick: bool = False,
    seed: int | None = None,
    executor: str = "local",
    workers: int | None = None,
    scheduler: str | None = None,
    progress: bool = False,
    command: Sequence[str] | None = None,
) -> RunResult:
    """Run ``experiment`` over its quick or full grid and write its CSVs, sidecar and figures into
    ``out_dir`` (created if needed). ``seed`` defaults to the experiment's ``default_seed``."""
    experiment.validate()
    base_seed = experiment.default_seed if seed is None else seed
    points = experiment.grid_for(quick)
    with open_executor(executor, workers=workers, scheduler=scheduler) as pool:
        frame = collect(experiment, points, base_seed, pool, progress=progress)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / experiment.name
    csv = stem.with_suffix(".csv")
    timing = [c for c in experiment.timing_columns if c in frame.columns]
    frame.drop(columns=timing).to_csv(csv, index=False)
    timings_csv: Path | None = None
    if timing:
        timings_csv = out_dir / f"{experiment.name}.timings.csv"
        identity = [*experiment.parameters, SEED_COLUMN, *experiment.keys]
        frame[[*identity, *timing]].to_csv(timings_csv, index=False)
    figures: dict[str, tuple[Path, Path]] = {}
    for spec in experiment.figures:
        figure = draw_figure(spec, frame)
        figures[spec.name] = save_figure(figure, out_dir / spec.name)
    numbers = paper_numbers(experiment, frame)
    sidecar = stem.with_suffix(".json")
    meta = sidecar_fields(
        experiment,
        points,
        quick=quick,
        base_seed=base_seed,
        executor=executor,
        command=[Path(sys.argv[0]).name, *sys.argv[1:]] if command is None else command,
        frame=frame,
        figures=figures,
        csv=csv,
        timings_csv=timings_csv,
        numbers=numbers,
    )
    sidecar.write_text(json.dumps(meta, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    return RunResult(experiment, frame, csv, sidecar, timings_csv, figures, numbers)


def paper_numbers(experiment: Experiment, frame: pd.DataFrame) -> dict[str, str]:
    """The experiment's quoted numbers for this frame; :class:`ExperimentError` on a bad macro."""
    if experiment.paper_numbers is None:
        return {}
    numbers = dict(experiment.paper_numbers(frame))
    for name, text in numbers.items():
        if not MACRO_NAME.match(name):
            raise ExperimentError(
                f"experiment {experiment.name!r}: number name {name!r} is not a LaTeX macro "
                "name (letters only)"
            )
        if not isinstance(text, str):
            raise ExperimentError(
                f"experiment {experiment.name!r}: number {name!r} must be formatted text, "
                f"got {type(text).__name__}"
            )
    return numbers


def sidecar_fields(
    experiment: Experiment,
    points: Sequence[Params],
    *,
    quick: bool,
    base_seed: int,
    executor: str,
    command: Sequence[str],
    frame: pd.DataFrame,
    figures: Mapping[str, tuple[Path, Path]],
    csv: Path,
    timings_csv: Path | None,
    numbers: Mapping[str, str] | None = None,
) -> dict[str, object]:
    """The provenance record written next to the CSV (JSON-ready)."""
    commit, dirty = git_state(Path(__file__).resolve().parent)
    packages = list(TRACKED_PACKAGES)
    if executor == "dask":
        packages += ["dask", "distributed"]
    timing = [c for c in experiment.timing_columns if c in frame.columns]
    deterministic = [c for c in frame.columns if c not in timing]
    return {
        "experiment": experiment.name,
        "title": experiment.title,
        "measures": experiment.measures,
        "grid": "quick" if quick else "full",
        "seed": base_seed,
        "seed_derivation": "per point: sha256 of canonical JSON {experiment, params, seed}, "
        "first 8 bytes big-endian, shifted right by one (63 bits)",
        "parameters": list(experiment.parameters),
        "keys": list(experiment.keys),
        "points": [dict(p) for p in points],
        "rows": len(frame),
        "command": shlex.join(command),
        "executor": executor,
        "git_commit": commit,
        "git_dirty": dirty,
        "python": platform.python_version(),
        "packages": package_versions(packages),
        "files": {
            "csv": csv.name,
            "timings_csv": None if timings_csv is None else timings_csv.name,
            "figures": {name: [p.name for p in pair] for name, pair in figures.items()},
        },
        "columns": {c: experiment.columns.get(c, "") for c in frame.columns if c != SEED_COLUMN}
        | {SEED_COLUMN: "seed of this point, derived from the experiment, params and base seed"},
        "deterministic_columns": deterministic,
        "timing_columns": timing,
        "timing_note": (
            "timing columns are wall-clock measurements: they vary run to run and live only in "
            "the timings CSV (joined to the results CSV on parameters, seed and keys); every other "
            "column is identical for the same commit and seed"
            if timing
            else "no timing columns: every column is identical for the same commit and seed"
        ),
        "nondeterministic_figures": [s.name for s in experiment.figures if not s.deterministic],
        "paper_numbers": dict(numbers or {}),
    }
