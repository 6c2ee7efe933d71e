"""E7b verification-time: the quick grid runs; z3 proves the seed protocol on every instance; the
explicit engine exhausts small instances, flags the ones over its state budget instead of running
on, and agrees with z3 (same refuted properties, same shortest counterexamples under the bug);
solver queries are counted exactly; a contradiction can never become a number."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import z3

from xvol.errors import InvalidArgumentError
from xvol.experiments import registry
from xvol.experiments.bench.verify import ParametricProof
from xvol.experiments.framework import (
    MACRO_NAME,
    Scalar,
    draw_figure,
    run_experiment,
    save_figure,
)
from xvol.experiments.verification_time import (
    BREAKS,
    BUG,
    EXPERIMENT,
    NO_BUG,
    QUICK_BUDGET,
    check_verdicts,
    counted_queries,
    engine_disagreements,
    parametric_record,
    point,
    quoted_numbers,
)
from xvol.model.check import Obligation, Verdict
from xvol.model.fence import PROPERTIES
from xvol.model.trace import EngineDisagreement


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    where = tmp_path_factory.mktemp("e7b")
    run_experiment(EXPERIMENT, where, quick=True, executor="serial", command=["test"])
    yield where


@pytest.fixture(scope="module")
def frame(out: Path) -> pd.DataFrame:
    results = pd.read_csv(out / "verification-time.csv", keep_default_na=False)
    return results.merge(pd.read_csv(out / "verification-time.timings.csv"))


def _rows(frame: pd.DataFrame, engine: str, bug: str = NO_BUG) -> pd.DataFrame:
    return frame[(frame["engine"] == engine) & (frame["bug"] == bug)]


def test_experiment_is_registered_and_every_quick_point_yields_one_row(
    frame: pd.DataFrame,
) -> None:
    assert registry.get("verification-time") is EXPERIMENT
    assert len(frame) == len(EXPERIMENT.quick)
    assert set(frame["engine"]) == {"z3", "explicit"}
    assert set(frame["bug"]) == {NO_BUG, BUG}


def test_z3_proves_every_property_of_the_seed_protocol_on_every_fixed_instance(
    frame: pd.DataFrame,
) -> None:
    rows = _rows(frame, "z3")
    assert len(rows) >= 2
    assert (rows["verdict"] == "proved").all()
    assert (rows["proved"] == len(PROPERTIES)).all()
    assert (rows["refuted"] == "-").all() and (rows["shortest_cex"] == -1).all()
    # the inferred invariant proves everything, so no BMC unrolling was needed; the proof needs
    # at least the initiation, one preservation and one implication query per property
    assert (rows["depth"] == 0).all()
    assert (rows["invariant_conjuncts"] >= 1).all()
    assert (rows["queries"] >= 2 + len(PROPERTIES)).all()
    assert (rows["states"] == 0).all() and (~rows["budget_exceeded"].astype(bool)).all()


def test_explicit_engine_exhausts_small_instances_and_flags_the_budget_instead_of_running_on(
    frame: pd.DataFrame,
) -> None:
    rows = _rows(frame, "explicit")
    done = rows[~rows["budget_exceeded"].astype(bool)]
    over = rows[rows["budget_exceeded"].astype(bool)]
    assert len(done) >= 1 and len(over) >= 1
    assert (done["verdict"] == "proved").all() and (done["proved"] == len(PROPERTIES)).all()
    # every reachable state but the initial one is entered by an explored edge
    assert (done["edges"] >= done["states"] - 1).all()
    # stopped at the end of the level in which it passed the budget: over it, never run on
    assert (over["verdict"] == "budget exceeded").all()
    assert (over["bounded"] == len(PROPERTIES)).all() and (over["violated"] == 0).all()
    assert (over["states"] > over["max_states"]).all()
    assert (rows["max_states"] == QUICK_BUDGET).all() and (rows["queries"] == 0).all()
    # the smallest instance fits; more data constituents or more clients do not
    smallest = done[(done["n"] == 1) & (done["clients"] == 1)]
    assert len(smallest) == 1
    assert (over["states"] > int(smallest["states"].iloc[0])).all()
    assert set(zip(over["n"], over["clients"], strict=True)) >= {(2, 1), (1, 2)}


def test_both_engines_refute_exactly_what_the_bug_breaks_with_equal_shortest_counterexamples(
    frame: pd.DataFrame,
) -> None:
    z3_rows, explicit = _rows(frame, "z3", BUG), _rows(frame, "explicit", BUG)
    assert len(z3_rows) == len(explicit) == 1
    for rows in (z3_rows, explicit):
        row = rows.iloc[0]
        refuted = {item.split("@")[0] for item in str(row["refuted"]).split()}
        assert refuted == set(BREAKS[BUG])
        assert row["violated"] == len(BREAKS[BUG]) and row["verdict"] == "violated"
        # the shortest way to end the job with a volume still fenced: fence it, fail, delete
        # the group (3 steps); the other properties keep holding
        assert row["shortest_cex"] == 3
    assert z3_rows.iloc[0]["refuted"] == explicit.iloc[0]["refuted"]
    assert z3_rows.iloc[0]["depth"] >= z3_rows.iloc[0]["shortest_cex"]
    assert engine_disagreements(frame) == []


def test_disagreeing_engines_are_reported_and_never_quoted(frame: pd.DataFrame) -> None:
    broken = frame.copy()
    explicit_bug = (broken["engine"] == "explicit") & (broken["bug"] == BUG)
    broken.loc[explicit_bug, "refuted"] = "unfence-on-failure@4"
    problems = engine_disagreements(broken)
    assert len(problems) == 1 and "explicit refutes" in problems[0]
    with pytest.raises(EngineDisagreement, match="engines disagree"):
        quoted_numbers(broken)


def test_check_verdicts_rejects_every_kind_of_contradiction() -> None:
    proved = dict.fromkeys(PROPERTIES, Verdict.PROVED)
    check_verdicts(proved, complete=True, bug=NO_BUG, where="ok")
    with pytest.raises(EngineDisagreement, match="which the protocol keeps"):
        check_verdicts(
            {**proved, "integrity": Verdict.VIOLATED}, complete=False, bug=NO_BUG, where="x"
        )
    with pytest.raises(EngineDisagreement, match="which the bug"):
        check_verdicts(proved, complete=False, bug=BUG, where="x")
    with pytest.raises(EngineDisagreement, match="left 'integrity' bounded"):
        check_verdicts(
            {**proved, "integrity": Verdict.BOUNDED}, complete=True, bug=NO_BUG, where="x"
        )
    bounded = dict.fromkeys(PROPERTIES, Verdict.BOUNDED)
    check_verdicts(bounded, complete=False, bug=BUG, where="a budget is not a contradiction")


def test_counted_queries_counts_every_check_and_restores_the_solver() -> None:
    original = z3.Solver.check
    x = z3.Int("x")
    with counted_queries() as count:
        solver = z3.Solver()
        solver.add(x > 1)
        assert solver.check() == z3.sat
        assert solver.check(x < 0) == z3.unsat
    assert count[0] == 2 and z3.Solver.check is original
    with pytest.raises(RuntimeError), counted_queries():
        raise RuntimeError("inside")
    assert z3.Solver.check is original


def test_parametric_record_is_proved_only_when_every_obligation_is_valid() -> None:
    valid = Obligation("preserve", "a", "valid")
    implications = {p: Obligation("implies", None, "valid") for p in PROPERTIES}
    proof = ParametricProof(3, ("i1", "i2"), True, 0.1, (valid, valid), 0.1, implications)
    record = parametric_record(proof, 11)
    assert record["verdict"] == "proved" and record["proved"] == len(PROPERTIES)
    assert record["queries"] == 11 and record["invariant_conjuncts"] == 2
    weak = {**implications, "integrity": Obligation("implies", None, "fails")}
    record = parametric_record(ParametricProof(3, ("i1",), True, 0.1, (valid,), 0.1, weak), 0)
    assert record["bounded"] == 1 and record["proved"] == len(PROPERTIES) - 1
    assert record["verdict"] == "bounded"
    record = parametric_record(ParametricProof(3, (), False, 0.1, (), 0.1, implications), 0)
    assert record["verdict"] == "unknown" and record["unknown"] == len(PROPERTIES)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"engine": "spin"}, "unknown engine"),
        ({"bug": "off-by-one"}, "unknown bug toggle"),
        ({"engine": "explicit", "max_states": 0}, "max_states >= 1"),
        ({"engine": "z3-parametric", "n": 2}, "any n"),
    ],
)
def test_bad_points_are_rejected_with_a_typed_error(
    params: dict[str, Scalar], message: str
) -> None:
    base: dict[str, Scalar] = {"engine": "z3", "bug": NO_BUG, "n": 0, "clients": 0}
    base |= {"objects": 0, "max_states": 0}
    with pytest.raises(InvalidArgumentError, match=message):
        point({**base, **params}, 0)


def test_points_are_deterministic_but_for_seconds_and_timings_are_separate(
    frame: pd.DataFrame, out: Path
) -> None:
    assert "seconds" not in pd.read_csv(out / "verification-time.csv").columns
    assert (frame["seconds"] > 0).all()
    for engine, bug, budget in (("explicit", BUG, QUICK_BUDGET), ("z3", NO_BUG, 0)):
        params = {"engine": engine, "bug": bug, "n": 1, "clients": 1, "objects": 1}
        params |= {"max_states": budget}
        again = {k: v for k, v in point(params, 0)[0].items() if k != "seconds"}
        row = frame[
            (frame["engine"] == engine)
            & (frame["bug"] == bug)
            & (frame["n"] == 1)
            & (frame["clients"] == 1)
        ].iloc[0]
        assert {k: row[k] for k in again} == again


def test_figures_are_written_and_the_states_figure_is_byte_identical(
    frame: pd.DataFrame, out: Path, tmp_path: Path
) -> None:
    for spec in EXPERIMENT.figures:
        assert (out / f"{spec.name}.png").is_file() and (out / f"{spec.name}.pdf").is_file()
    assert [s.name for s in EXPERIMENT.figures if s.paper] == [
        "verification-time-n",
        "verification-time-clients",
    ]
    states = next(s for s in EXPERIMENT.figures if s.name == "verification-states")
    assert states.deterministic
    save_figure(draw_figure(states, frame), tmp_path / states.name)
    assert (tmp_path / "verification-states.png").read_bytes() == (
        out / "verification-states.png"
    ).read_bytes()


def test_paper_numbers_quote_the_quick_grid(frame: pd.DataFrame) -> None:
    numbers = quoted_numbers(frame)
    assert all(MACRO_NAME.match(name) and name.startswith("ESevenB") for name in numbers)
    assert 3 <= len(numbers) <= 8
    assert numbers["ESevenBParamSeconds"] == "n/a"  # the quick grid has no parameterised proof
    assert numbers["ESevenBExplicitBudget"] == "5{,}000"
    assert numbers["ESevenBExplicitMaxN"] == "1"
    assert numbers["ESevenBZThreeMaxN"] == "2"
    assert float(numbers["ESevenBZThreeSecondsMaxN"]) > 0
