"""The paper's generated inputs: numbers.tex defines each macro once and rejects clashes, the
verdict table escapes LaTeX, verification counts add up, and the paper builds when LaTeX is here."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from xvol import paper
from xvol.errors import InvalidArgumentError
from xvol.verification.suites import Cell, Statement, SuiteReport

PAPER_DIR = Path(__file__).resolve().parent.parent / "paper"


def _report() -> SuiteReport:
    cells = [
        Cell("fence", "integrity", {"n": 2}, "z3", "proved", 3, 0.5),
        Cell("fence", "integrity", {"n": 2}, "explicit", "violated", 4, 0.25),
        Cell("fence", "integrity", {"n": 2}, "z3", "violated", 4, 1.0),
    ]
    statements = [Statement("fence", "integrity", "NS < OLS & {DC1|DC2} is 100% safe_", True, 3)]
    return SuiteReport("fence", cells, statements, [], 1.75)


def test_numbers_tex_defines_every_macro_once_with_the_grid() -> None:
    text = paper.numbers_tex({"a": {"EOneX": "1.5"}, "b": {"ETwoY": "2"}}, grid="quick")
    assert "\\newcommand{\\XvolGrid}{quick}" in text
    assert text.count("\\newcommand{\\EOneX}{1.5}") == 1
    assert text.count("\\newcommand{\\ETwoY}{2}") == 1


def test_numbers_tex_rejects_a_macro_defined_by_two_sources() -> None:
    with pytest.raises(InvalidArgumentError, match=r"EOneX.*defined by both"):
        paper.numbers_tex({"a": {"EOneX": "1"}, "b": {"EOneX": "2"}}, grid="full")


def test_numbers_tex_rejects_a_malformed_macro_name() -> None:
    with pytest.raises(InvalidArgumentError, match="not a LaTeX macro name"):
        paper.numbers_tex({"a": {"E1x": "1"}}, grid="full")


def test_verification_numbers_count_cells_and_verdicts_per_suite() -> None:
    numbers = paper.verification_numbers([_report()])
    assert numbers["VerifyFenceCells"] == "3"
    assert numbers["VerifyFenceViolated"] == "2"
    assert numbers["VerifyFenceProved"] == "1"
    assert numbers["VerifyFenceStatementsHold"] == "1"
    assert numbers["VerifyCells"] == "3"
    assert numbers["VerifyChcCells"] == "0"
    assert all(paper.MACRO_NAME.match(name) for name in numbers)


def test_verification_numbers_count_the_chc_cells_by_verdict() -> None:
    report = _report()
    report.cells += [
        Cell("fence", "integrity", {"n": 1}, "chc", "proved", None, 0.1),
        Cell("fence", "integrity", {"n": 2}, "chc", "violated", 4, 0.1),
        Cell("fence", "integrity", {"n": 3}, "chc", "unknown", None, 0.1),
    ]
    numbers = paper.verification_numbers([report])
    assert numbers["VerifyChcCells"] == "3" and numbers["VerifyChcProved"] == "1"
    assert numbers["VerifyChcViolated"] == "1" and numbers["VerifyChcUnknown"] == "1"
    assert numbers["VerifyFenceCells"] == "6"


def test_verdict_table_escapes_latex_specials() -> None:
    table = paper.verdicts_tex([_report()])
    assert r"NS \textless{} OLS \& \{DC1\textbar{}DC2\} is 100\% safe\_" in table
    assert table.count(r"\\") >= 2


def test_write_generated_writes_both_files(tmp_path: Path) -> None:
    generated = paper.write_generated(tmp_path, {"e": {"EOneX": "7"}}, [_report()], quick=True)
    assert "\\EOneX" in generated.numbers.read_text()
    assert "integrity" in generated.verdicts.read_text()
    assert generated.macros > 1


def test_macros_used_finds_generated_number_macros_only() -> None:
    text = r"We saw \EOneRatio{} and \VerifyCells{} in \XvolGrid\ mode, \emph{x}."
    used = paper.macros_used(text)
    assert used == {"EOneRatio", "VerifyCells", "XvolGrid"}


def test_build_pdf_refuses_a_folder_without_the_paper(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="no paper source"):
        paper.build_pdf(tmp_path)


@pytest.mark.skipif(shutil.which("latexmk") is None, reason="LaTeX is not installed here")
def test_a_failing_latex_source_raises_with_the_log(tmp_path: Path) -> None:
    (tmp_path / paper.PAPER_SOURCE).write_text(
        "\\documentclass{article}\\begin{document}\\undefinedmacro\\end{document}\n"
    )
    with pytest.raises(paper.PaperBuildError, match="latexmk failed"):
        paper.build_pdf(tmp_path)


def test_the_paper_source_exists_and_inputs_the_generated_files() -> None:
    text = (PAPER_DIR / paper.PAPER_SOURCE).read_text()
    assert "generated/numbers" in text
    sections = "".join(p.read_text() for p in sorted(PAPER_DIR.glob("sections/*.tex")))
    assert "generated/verdicts" in text + sections
