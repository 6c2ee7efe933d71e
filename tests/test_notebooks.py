"""The teaching notebooks (notebooks/*.py, jupytext percent format) run top to bottom: each is
executed as a script in a fresh interpreter, in an empty working directory, with matplotlib's Agg
backend and every outgoing socket connection refused, and must exit cleanly, print what it
teaches, and write no file. The notebooks' own ``assert`` lines state the kit's behaviour they
show, so a change in that behaviour fails here."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
EXPECTED = [
    "01_storage_and_raid.py",
    "02_volumes_and_snapshots.py",
    "03_namespace_ols_handles.py",
    "04_consistent_snapshots.py",
    "05_verification_with_z3.py",
    "06_mirroring_failover_resync.py",
    "07_reproducing_a_figure.py",
]

# Run the notebook with runpy after making every socket connection fail: no notebook may need
# the network.
_RUNNER = """
import runpy, socket, sys

def _refuse(*args, **kwargs):
    raise OSError("notebooks must not use the network")

socket.socket.connect = _refuse
socket.socket.connect_ex = _refuse
socket.create_connection = _refuse
runpy.run_path(sys.argv[1], run_name="__main__")
"""


def _notebooks() -> list[Path]:
    return sorted(NOTEBOOKS.glob("[0-9][0-9]_*.py"))


def test_every_planned_notebook_exists() -> None:
    assert [p.name for p in _notebooks()] == EXPECTED


@pytest.mark.parametrize("notebook", _notebooks(), ids=lambda p: p.stem)
def test_notebook_is_jupytext_percent_with_markdown_and_code_cells(notebook: Path) -> None:
    jupytext = pytest.importorskip("jupytext")
    cells = jupytext.read(notebook, fmt="py:percent").cells
    kinds = {cell.cell_type for cell in cells}
    assert kinds == {"markdown", "code"}, notebook.name
    assert cells[0].cell_type == "markdown" and cells[0].source.startswith("# "), notebook.name


@pytest.mark.parametrize("notebook", _notebooks(), ids=lambda p: p.stem)
def test_notebook_runs_top_to_bottom_offline_and_writes_no_file(
    notebook: Path, tmp_path: Path
) -> None:
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONHASHSEED": "0"}
    result = subprocess.run(
        [sys.executable, "-c", _RUNNER, str(notebook)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, f"{notebook.name} failed:\n{result.stdout}\n{result.stderr}"
    assert result.stdout.count("\n") >= 10, f"{notebook.name} printed almost nothing"
    assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == [], (
        f"{notebook.name} wrote files: {list(tmp_path.iterdir())}"
    )
