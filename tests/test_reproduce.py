"""``xvol reproduce --quick``: runs the suites and the experiments and reports what it wrote."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from xvol.cli import main


def test_quick_reproduce_writes_reports_results_and_paper_figures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, figures = tmp_path / "out", tmp_path / "figures"
    status = main(["reproduce", "--quick", "--out", str(out), "--paper-figures", str(figures)])
    assert status == 0
    records = json.loads((out / "verify" / "verify.json").read_text())
    assert {r["suite"] for r in records} >= {"fence", "mirror"}
    assert (out / "experiments" / "raid-reconstruction" / "raid-reconstruction.csv").is_file()
    copied = sorted(p.name for p in figures.iterdir())
    assert copied and all(name.endswith((".png", ".pdf")) for name in copied)
    printed = capsys.readouterr().out
    assert "verify.json" in printed and "paper figure" in printed


def test_reproduce_rejects_zero_workers(tmp_path: Path) -> None:
    assert main(["reproduce", "--quick", "--workers", "0", "--out", str(tmp_path)]) == 2
    assert not (tmp_path / "verify").exists()
