"""``xvol reproduce --quick``: runs the suites and the experiments and reports what it wrote."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from xvol.cli import main
from xvol.paper import macros_used

PAPER_DIR = Path(__file__).resolve().parent.parent / "paper"


def test_quick_reproduce_writes_reports_results_and_paper_figures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, paper = tmp_path / "out", tmp_path / "paper"
    figures = paper / "figures"
    status = main(["reproduce", "--quick", "--out", str(out), "--paper", str(paper)])
    assert status == 0
    records = json.loads((out / "verify" / "verify.json").read_text())
    assert {r["suite"] for r in records} >= {"fence", "mirror"}
    assert (out / "experiments" / "raid-reconstruction" / "raid-reconstruction.csv").is_file()
    copied = sorted(p.name for p in figures.iterdir())
    assert copied and all(name.endswith((".png", ".pdf")) for name in copied)
    printed = capsys.readouterr().out
    assert "verify.json" in printed and "paper figure" in printed
    numbers = (paper / "generated" / "numbers.tex").read_text()
    defined = set(re.findall(r"\\newcommand\{\\([A-Za-z]+)\}", numbers))
    source = "".join(
        p.read_text() for p in sorted(PAPER_DIR.rglob("*.tex")) if p.parent.name != "generated"
    )
    assert macros_used(source) <= defined, "the paper quotes numbers nobody generates"
    assert "\\VerifyCells" in numbers


def test_reproduce_rejects_zero_workers(tmp_path: Path) -> None:
    assert main(["reproduce", "--quick", "--workers", "0", "--out", str(tmp_path)]) == 2
    assert not (tmp_path / "verify").exists()


def test_reproduce_refuses_a_paper_folder_it_cannot_write_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the paper folder should be")
    out = tmp_path / "out"
    assert main(["reproduce", "--quick", "--out", str(out), "--paper", str(blocker)]) == 2
    assert "cannot write to" in capsys.readouterr().err
    assert not (out / "verify").exists()  # no suite ran
