"""Reports: JSON records and Markdown."""

from __future__ import annotations

import json
from pathlib import Path

from xvol.verification.report import markdown, write_json
from xvol.verification.suites import Cell, Statement, SuiteReport


def test_json_and_markdown_carry_every_cell_and_statement(tmp_path: Path) -> None:
    cell = Cell(
        "fence",
        "integrity",
        {
            "n": 2,
            "order": ["NS", ["DC1", "DC2"], "OLS"],
            "mode": "held",
            "discipline": "write-ahead",
        },
        "z3",
        "proved",
        None,
        0.5,
        method="houdini",
        invariant=["a"],
    )
    rep = SuiteReport(
        "fence", [cell], [Statement("fence", "integrity", "any order", True, 1)], [], 1.0
    )
    path = tmp_path / "r.json"
    write_json([rep], path)
    data = json.loads(path.read_text())
    assert data[0]["verdict"] == "proved" and data[0]["depth"] is None
    text = markdown([rep])
    assert "NS < {DC1|DC2} < OLS" in text and "any order" in text


def test_config_text_names_a_mirror_variant_not_a_fence_order() -> None:
    from xvol.verification.report import config_text

    text = config_text({"variant": "skip-resize", "n": 2, "missing": 1, "bugs": ["skip-resize"]})
    assert text == "n=2 missing=1 skip-resize"
    fence = config_text({"n": 2, "order": ["NS", "OLS", "DC1", "DC2"], "mode": "held"})
    assert fence.startswith("n=2 NS < OLS < DC1 < DC2 held")


def test_markdown_lists_the_chc_cells_with_invariant_and_recheck() -> None:
    config = {"n": 1, "order": ["NS", "OLS", "DC1"], "mode": "held", "discipline": "write-ahead"}
    obligations = [
        {"kind": k, "action": a, "outcome": "valid", "failing": [], "seconds": 0.0}
        for k, a in (("init", None), ("preserve", "fence"), ("implies", None))
    ]
    cell = Cell(
        "fence",
        "unfence-on-failure",
        config,
        "chc",
        "proved",
        None,
        0.3,
        method="spacer+recheck",
        invariant=["!ended | status(NS) != fenced"],
        obligations=obligations,
        detail="Spacer's invariant",
    )
    text = markdown([SuiteReport("fence", [cell], [], [], 1.0)])
    assert "### CHC engine (Spacer) cross-check" in text
    assert "invariant: !ended | status(NS) != fenced" in text
    assert "re-check: 3 plain-solver obligations (init, 1 actions" in text


def test_markdown_lists_the_parameterised_proofs_whatever_their_method_is_called() -> None:
    obligations = [
        {"kind": k, "action": a, "outcome": "valid", "failing": [], "seconds": 0.0}
        for k, a in (("init", None), ("preserve", "fence"), ("preserve", "capture"))
    ]
    cell = Cell(
        "fence",
        "integrity",
        {"n": "every", "mode": "held", "discipline": "write-ahead"},
        "z3",
        "proved",
        None,
        0.8,
        method="parametric-cone",
        invariant=["a", "b"],
        obligations=obligations,
        detail="for every n",
    )
    text = markdown([SuiteReport("fence", [cell], [], [], 1.0)])
    assert "### Parameterised proofs" in text
    assert "re-check: 3 obligations (1 init, 2 preserve); not valid: none" in text
