"""The fence suite's reasoning: rules derived from cells, checked against other cells."""

from __future__ import annotations

import itertools

from xvol.model import chc
from xvol.verification.suite_fence import judge
from xvol.verification.suites import Cell


def _cell(
    order: list[object],
    verdict: str,
    prop: str = "named-availability",
    engine: str = "z3",
    depth: int | None = None,
    method: str = "",
) -> Cell:
    config = {
        "n": 2,
        "order": order,
        "objects": 1,
        "clients": 1,
        "present": 1,
        "mode": "held",
        "discipline": "write-ahead",
        "bugs": [],
    }
    return Cell("fence", prop, config, engine, verdict, depth, 0.0, method=method)


def _matrix(safe: object) -> list[Cell]:
    cells = []
    for p in itertools.permutations(["NS", "OLS", "DC1", "DC2"]):
        cells.append(_cell(list(p), "proved" if safe(p) else "violated", depth=4))  # type: ignore
    return cells


def test_rule_is_derived_as_the_pairs_every_safe_order_respects() -> None:
    cells = _matrix(lambda p: p[0] == "NS")
    statements, failures = judge(cells)
    text = next(s.text for s in statements if s.prop == "named-availability")
    assert "safe iff NS before DC1, NS before DC2, NS before OLS" in text
    assert "DC1|DC2" in text and "6/24" in text
    assert failures == []


def test_a_parallel_order_contradicting_the_rule_is_a_failure() -> None:
    cells = _matrix(lambda p: p[0] == "NS")
    cells.append(_cell(["NS", ["DC1", "DC2", "OLS"]], "violated"))  # predicted proved
    statements, failures = judge(cells)
    assert any("predicts proved" in f for f in failures)
    assert not next(s for s in statements if s.prop == "named-availability").holds


def test_engine_disagreement_on_counterexample_length_is_a_failure() -> None:
    cells = _matrix(lambda p: p[0] == "NS")
    cells.append(_cell(["OLS", "NS", "DC1", "DC2"], "violated", engine="explicit", depth=5))
    _, failures = judge(cells)
    assert any("engines disagree" in f for f in failures)


def test_a_rule_that_is_not_pairwise_is_reported() -> None:
    # safe exactly when NS is first or last: no set of pairs characterises that
    cells = _matrix(lambda p: p[0] == "NS" or p[-1] == "NS")
    _, failures = judge(cells)
    assert any("statement predicts" in f for f in failures)


def _chc_statement(cells: list[Cell]) -> tuple[str, bool, list[str]]:
    statements, failures = judge(cells)
    found = next(s for s in statements if "CHC engine" in s.text)
    return found.text, found.holds, failures


def test_chc_cells_that_agree_with_z3_are_counted_and_giving_up_is_no_failure() -> None:
    cells = _matrix(lambda p: p[0] == "NS")
    seed = ["NS", "OLS", "DC1", "DC2"]
    unsafe = ["OLS", "NS", "DC1", "DC2"]
    cells += [
        _cell(seed, "proved", engine="chc", method=chc.PROVED),
        _cell(unsafe, "violated", engine="chc", depth=6, method=chc.VIOLATED),  # longer: fine
        _cell(unsafe, "unknown", prop="integrity", engine="chc", method=chc.GAVE_UP),
        _cell(unsafe, "proved", prop="integrity"),  # its z3 twin
    ]
    text, holds, failures = _chc_statement(cells)
    assert holds and failures == []
    assert "all 3 sampled cells: 2 decided (1 proved, 1 violated" in text
    assert "1 left undecided" in text


def test_chc_contradicting_z3_or_failing_its_check_is_a_failure() -> None:
    cells = _matrix(lambda p: p[0] == "NS")
    unsafe = ["OLS", "NS", "DC1", "DC2"]
    cells.append(_cell(unsafe, "proved", engine="chc", method=chc.PROVED))  # z3: violated
    _, holds, failures = _chc_statement(cells)
    assert not holds and any("engines disagree" in f and "chc proved" in f for f in failures)
    cells[-1] = _cell(unsafe, "violated", engine="chc", depth=3, method=chc.VIOLATED)
    _, holds, failures = _chc_statement(cells)  # shorter than z3's shortest (4)
    assert not holds and any("chc violated (depth 3)" in f for f in failures)
    cells[-1] = _cell(unsafe, "unknown", engine="chc", method=chc.REJECTED)
    _, holds, failures = _chc_statement(cells)
    assert not holds and any("chc engine disagreement" in f for f in failures)
