"""The experiment registry: every listed module declares a valid experiment under a unique name,
lookup by name fails with a typed error, and run_all (what `xvol reproduce` calls) runs them all
and names the paper figures."""

from __future__ import annotations

from pathlib import Path

import pytest

from xvol.errors import NotFoundError
from xvol.experiments import registry
from xvol.experiments.framework import Experiment, ExperimentError


def test_every_registered_module_declares_a_valid_experiment_with_a_unique_name() -> None:
    experiments = registry.experiments()
    assert len(experiments) == len(registry.MODULES)
    assert all(isinstance(e, Experiment) for e in experiments)
    names = [e.name for e in experiments]
    assert len(set(names)) == len(names)
    for experiment in experiments:
        experiment.validate()
        assert registry.get(experiment.name) is experiment


def test_unknown_name_is_not_found_and_names_the_known_experiments() -> None:
    with pytest.raises(NotFoundError, match="raid-reconstruction"):
        registry.get("no-such-experiment")


def test_module_without_an_experiment_is_an_experiment_error() -> None:
    with pytest.raises(ExperimentError, match="declares no EXPERIMENT"):
        registry.load("xvol.errors")


def test_run_all_runs_every_experiment_into_its_folder_and_lists_paper_figures(
    tmp_path: Path,
) -> None:
    results = registry.run_all(tmp_path, quick=True, executor="serial", command=["test"])
    assert [r.experiment.name for r in results] == [e.name for e in registry.experiments()]
    for result in results:
        assert result.csv.parent == tmp_path / result.experiment.name
        assert all(path.is_file() for path in result.files)
        marked = [spec.name for spec in result.experiment.figures if spec.paper]
        assert sorted(p.stem for p in result.paper_figures) == sorted(marked * 2)
        assert {p.suffix for p in result.paper_figures} <= {".png", ".pdf"}
