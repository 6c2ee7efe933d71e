"""The registry of experiments: which modules declare one, how to find one by name, how to run all.

Each experiment module declares one :class:`~xvol.experiments.framework.Experiment` as the module
attribute ``EXPERIMENT``; :data:`MODULES` lists those modules in the order ``xvol experiment list``
shows them and :func:`run_all` runs them. Modules are imported on first use, so importing the
registry is cheap. :func:`run_all` is what ``xvol reproduce`` calls: it runs every registered
experiment into ``<out_root>/<name>/`` and returns the results, whose
:attr:`~xvol.experiments.framework.RunResult.paper_figures` are the files to copy into
``paper/figures/``.

Uses: :mod:`xvol.experiments.framework`, :mod:`importlib`.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from pathlib import Path

from xvol.errors import NotFoundError
from xvol.experiments.framework import Experiment, ExperimentError, RunResult, run_experiment

MODULES: tuple[str, ...] = (
    "xvol.experiments.update_size",
    "xvol.experiments.change_detection",
    "xvol.experiments.interrupted_transfer",
    "xvol.experiments.recovery",
    "xvol.experiments.fence_window",
    "xvol.experiments.growing_volume",
    "xvol.experiments.raid_reconstruction",
    "xvol.experiments.verification_time",
)
"""Modules that declare an ``EXPERIMENT``, in listing order."""

DEFAULT_OUT_ROOT = Path("out") / "experiments"
"""Where runs go unless told otherwise: ``out/experiments/<name>/`` (``out/`` is git-ignored)."""


def load(module: str) -> Experiment:
    """The experiment declared by ``module``; :class:`ExperimentError` if it declares none."""
    found = getattr(importlib.import_module(module), "EXPERIMENT", None)
    if not isinstance(found, Experiment):
        raise ExperimentError(f"module {module!r} declares no EXPERIMENT")
    found.validate()
    return found


def experiments() -> tuple[Experiment, ...]:
    """Every registered experiment, in :data:`MODULES` order."""
    return tuple(load(module) for module in MODULES)


def get(name: str) -> Experiment:
    """The registered experiment called ``name``; :class:`NotFoundError` names the known ones."""
    known = experiments()
    for experiment in known:
        if experiment.name == name:
            return experiment
    names = ", ".join(e.name for e in known)
    raise NotFoundError(f"no experiment named {name!r}; known experiments: {names}")


def run_all(
    out_root: Path = DEFAULT_OUT_ROOT,
    *,
    quick: bool = False,
    seed: int | None = None,
    executor: str = "local",
    workers: int | None = None,
    scheduler: str | None = None,
    progress: bool = False,
    command: Sequence[str] | None = None,
) -> list[RunResult]:
    """Run every registered experiment into ``out_root/<name>/``; the results in registry order.

    ``reproduce`` copies ``[p for r in run_all(...) for p in r.paper_figures]`` to the paper.
    """
    return [
        run_experiment(
            experiment,
            out_root / experiment.name,
            quick=quick,
            seed=seed,
            executor=executor,
            workers=workers,
            scheduler=scheduler,
            progress=progress,
            command=command,
        )
        for experiment in experiments()
    ]
