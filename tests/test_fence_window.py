"""E5 fence-window: the quick grid runs on the real snapshot coordinator, its protocol rounds and
fence windows are what the fence order and mode dictate (parallel data-constituent fencing
shortens held windows, held fences keep the namespace fenced for the whole window, a rolling
deferral never outlasts one volume's fence), every held snapshot is whole, a point measures the
same for the same seed, the quoted numbers come from the frame, and the point's checks turn a
step that slipped past a fence, a resumed step run twice, a lost write or a broken held snapshot
into an IntegrityError instead of a number."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from xvol.errors import IntegrityError, InvalidArgumentError
from xvol.experiments import fence_window
from xvol.experiments.fence_window import (
    EXPERIMENT,
    FenceWindowSimulation,
    SnapshotMeasure,
    point,
    quoted_numbers,
)
from xvol.experiments.framework import RunResult, run_experiment
from xvol.experiments.registry import get
from xvol.vocabulary import Action, TraceStep

RPC_S = 100e-6  # the fabric's default RPC round trip (LatencyModel.rpc_seconds)


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    out = tmp_path_factory.mktemp("e5")
    return run_experiment(EXPERIMENT, out, quick=True, executor="serial", command=["test"])


@pytest.fixture(scope="module")
def frame(result: RunResult) -> pd.DataFrame:
    return pd.read_csv(result.csv)


@pytest.fixture(scope="module")
def held_run() -> Iterator[tuple[FenceWindowSimulation, list[SnapshotMeasure]]]:
    simulation = FenceWindowSimulation(2, "serial", "held", clients=3, snapshots=1, seed=5)
    measures = simulation.run()
    yield simulation, measures


def _rows(frame: pd.DataFrame, mode: str, fencing: str) -> pd.DataFrame:
    return frame[(frame["mode"] == mode) & (frame["fencing"] == fencing)].sort_values(
        "data_constituents"
    )


# --------------------------------------------------------------------------------------------
# The quick grid against what the protocol dictates
# --------------------------------------------------------------------------------------------


def test_experiment_is_registered_and_each_point_yields_one_row_per_snapshot(
    result: RunResult, frame: pd.DataFrame
) -> None:
    assert get("fence-window") is EXPERIMENT
    keys = ["data_constituents", "fencing", "mode", "clients"]
    assert len(frame.groupby(keys)) == len(EXPERIMENT.quick)
    assert (
        frame.groupby(keys)["snapshot"].count() == frame.groupby(keys)["snapshots"].first()
    ).all()
    assert {p.name for p in result.paper_figures} == {
        "fence-window-deferred.png",
        "fence-window-deferred.pdf",
    }
    assert all(p.exists() for p in result.files)


def test_rounds_follow_the_fence_order_serial_one_step_each_parallel_one_stage_each(
    frame: pd.DataFrame,
) -> None:
    n = frame["data_constituents"]
    steps = 3 * (n + 2) + 2  # fence, capture, unfence per member; commit; delete-group
    assert (frame["protocol_steps"] == steps).all()
    serial = frame["fencing"] == "serial"
    assert (frame.loc[serial, "rounds"] == steps[serial]).all()
    assert (frame.loc[~serial, "rounds"] == 3 * 3 + 2).all()  # NS, OLS, all DCs: 3 stages
    assert (
        frame.loc[serial, "order"]
        == [" < ".join(["NS", "OLS", *(f"DC{k}" for k in range(1, m + 1))]) for m in n[serial]]
    ).all()


def test_parallel_fencing_shortens_the_held_window_and_serial_grows_with_n(
    frame: pd.DataFrame,
) -> None:
    serial = _rows(frame, "held", "serial").set_index("data_constituents")["window_s"]
    parallel = _rows(frame, "held", "parallel").set_index("data_constituents")["window_s"]
    assert serial.is_monotonic_increasing and serial.iloc[-1] > serial.iloc[0]
    for n, window in parallel.items():
        assert window < serial[n]
    # members go round-robin over 4 nodes: DC3 shares node1 with the M-host (LPC), DC4 is on
    # node2, so going from 2 to 4 adds at least one RPC each to fence, capture and unfence DC4
    assert serial[4] - serial[2] >= 3 * RPC_S


def test_held_fences_keep_the_namespace_fenced_for_the_whole_window(frame: pd.DataFrame) -> None:
    held = frame[frame["mode"] == "held"]
    assert (held["ns_fenced_s"] == held["window_s"]).all()
    assert (held["integrity_violations"] == 0).all()
    assert (held["stranded_named"] == 0).all()
    assert (held["max_deferred_s"] <= held["window_s"] + 1e-12).all()


def test_a_serial_rolling_deferral_never_outlasts_one_volumes_fence(frame: pd.DataFrame) -> None:
    rolling = frame[frame["mode"] == "rolling"]
    one_fence = 2 * RPC_S * 1.05  # a volume is fenced for its fence and capture round trips
    assert (rolling["ns_fenced_s"] <= one_fence).all()
    assert (rolling["window_s"] > rolling["ns_fenced_s"]).all()
    serial = rolling[rolling["fencing"] == "serial"]
    assert (serial["max_deferred_s"] <= one_fence).all()
    # a parallel stage is fenced, captured and unfenced together: a wait lasts at most the window
    assert (rolling["max_deferred_s"] <= rolling["window_s"]).all()


def test_rolling_fences_break_what_the_model_says_they_break(frame: pd.DataFrame) -> None:
    # the fence model refutes integrity and named availability for rolling fences; the
    # clock-driven interleavings of the quick grid meet both (deterministic for the seed)
    rolling = frame[frame["mode"] == "rolling"]
    assert rolling["stranded_named"].sum() > 0
    assert rolling["integrity_violations"].sum() > 0


def test_deferral_counts_and_times_add_up(frame: pd.DataFrame) -> None:
    by_role = frame["deferred_ns"] + frame["deferred_ols"] + frame["deferred_dc"]
    assert (frame["deferred_steps"] == by_role).all()
    assert (frame["mid_operation_deferrals"] <= frame["deferred_steps"]).all()
    assert (frame["stranded_named"] <= frame["mid_operation_deferrals"]).all()
    mean_times_count = frame["mean_deferred_s"] * frame["deferred_steps"]
    assert (abs(mean_times_count - frame["total_deferred_s"]) < 1e-12).all()
    assert ((frame["blocked_fraction"] >= 0) & (frame["blocked_fraction"] <= 1)).all()
    assert (frame["baseline_ops_per_s"] > 0).all()
    ratio = frame["window_ops_per_s"] / frame["baseline_ops_per_s"]
    assert (abs(ratio - frame["throughput_ratio"]) < 1e-9).all()
    assert frame["deferred_steps"].sum() > 0  # the quick grid does defer client steps


def test_a_point_measures_what_the_csv_holds_for_its_seed(frame: pd.DataFrame) -> None:
    params = {
        "data_constituents": 2,
        "fencing": "parallel",
        "mode": "rolling",
        "clients": 2,
        "snapshots": 1,
    }
    chosen = frame
    for name, value in params.items():
        chosen = chosen[chosen[name] == value]
    (seed,) = chosen["seed"].unique()
    again = point(params, int(seed))
    (row,) = chosen.to_dict("records")
    (measured,) = again
    for column, value in measured.items():
        if isinstance(value, float) and column != "elapsed_s":
            assert row[column] == pytest.approx(value, rel=1e-12, abs=0.0), column
        elif column != "elapsed_s":
            assert row[column] == value, column
    other = point(params, int(seed) + 1)[0]
    assert {k: v for k, v in other.items() if k != "elapsed_s"} != {
        k: v for k, v in measured.items() if k != "elapsed_s"
    }  # the seed drives the clients


def test_quoted_numbers_are_macros_computed_from_the_frame(
    result: RunResult, frame: pd.DataFrame
) -> None:
    numbers = quoted_numbers(frame)
    assert numbers == dict(result.numbers)
    assert all(name.startswith("EFive") and name.isalpha() for name in numbers)
    assert numbers["EFiveLargestN"] == "4"

    def mean_wait(fencing: str) -> float:
        rows = _rows(frame, "held", fencing)
        rows = rows[rows["data_constituents"] == 4]
        return float(rows["total_deferred_s"].sum() / rows["deferred_steps"].sum())

    serial, parallel = mean_wait("serial"), mean_wait("parallel")
    assert numbers["EFiveHeldSerialDeferredMs"] == f"{serial * 1e3:.2f}"
    assert numbers["EFiveHeldParallelDeferredMs"] == f"{parallel * 1e3:.2f}"
    assert numbers["EFiveSerialOverParallel"] == f"{serial / parallel:.1f}"
    held = frame[frame["mode"] == "held"]
    assert numbers["EFiveHeldSnapshots"] == str(len(held))
    assert int(numbers["EFiveRollingBroken"]) <= int(numbers["EFiveRollingSnapshots"])


# --------------------------------------------------------------------------------------------
# The checks: a wrong result raises instead of becoming a number
# --------------------------------------------------------------------------------------------


def test_a_held_run_passes_its_checks_and_defers_behind_the_namespace_fence(
    held_run: tuple[FenceWindowSimulation, list[SnapshotMeasure]],
) -> None:
    simulation, measures = held_run
    (measure,) = measures
    assert measure.integrity_violations == 0 and measure.snapshot_objects >= 0
    events = simulation.driver.events
    deferred = [e for e in events if e.action is Action.DEFER]
    resumed = [e for e in events if e.action is Action.RESUME]
    assert len(deferred) == len(resumed) == measure.deferred_steps
    fences = [str(e.args["volume"]) for e in events if e.action is Action.FENCE]
    unfences = [str(e.args["volume"]) for e in events if e.action is Action.UNFENCE]
    assert fences == ["NS", "OLS", "DC1", "DC2"] and unfences == fences[::-1]


def test_a_step_that_ran_on_a_fenced_volume_is_caught(
    held_run: tuple[FenceWindowSimulation, list[SnapshotMeasure]],
) -> None:
    simulation, _ = held_run
    events = simulation.driver.events
    at = next(i for i, e in enumerate(events) if e.action is Action.FENCE) + 1
    fake = TraceStep(Action.STEP, {"op": "c0.1", "step": "namespace-lookup", "volume": "NS"})
    events.insert(at, fake)
    try:
        with pytest.raises(IntegrityError, match="ran while NS was fenced"):
            simulation._check_client_steps()
    finally:
        events.remove(fake)
    simulation._check_client_steps()  # the real trace is clean


def test_a_deferred_step_that_runs_twice_is_caught(
    held_run: tuple[FenceWindowSimulation, list[SnapshotMeasure]],
) -> None:
    simulation, _ = held_run
    events = simulation.driver.events
    resume = next(e for e in events if e.action is Action.RESUME)
    events.append(resume)
    try:
        with pytest.raises(IntegrityError):
            simulation._check_client_steps()
    finally:
        events.pop()


def test_a_lost_write_is_caught_by_the_live_volume_check(
    held_run: tuple[FenceWindowSimulation, list[SnapshotMeasure]],
) -> None:
    simulation, _ = held_run
    client = next(c for c in simulation.clients if c.current)
    path = sorted(client.current)[0]
    kept = client.current[path]
    client.current[path] = kept + b"lost"
    try:
        with pytest.raises(IntegrityError, match="last bytes"):
            simulation._check_live_volume()
    finally:
        client.current[path] = kept


def test_a_broken_held_snapshot_raises_and_a_broken_rolling_one_is_counted(
    held_run: tuple[FenceWindowSimulation, list[SnapshotMeasure]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    simulation, _ = held_run
    monkeypatch.setattr(fence_window, "integrity_violations", lambda report: ["dangling name /x"])
    with pytest.raises(IntegrityError, match="held snapshot s1 is broken"):
        simulation._check_snapshot(1)
    monkeypatch.setattr(simulation, "mode", fence_window.FenceMode.ROLLING)
    assert simulation._check_snapshot(1)[1] == 1


def test_bad_parameters_raise_typed_errors_and_a_simulation_runs_once(
    held_run: tuple[FenceWindowSimulation, list[SnapshotMeasure]],
) -> None:
    with pytest.raises(InvalidArgumentError, match="data constituents"):
        FenceWindowSimulation(0, "serial", "held", 1, 1, 0)
    with pytest.raises(InvalidArgumentError, match="fencing"):
        FenceWindowSimulation(1, "diagonal", "held", 1, 1, 0)
    with pytest.raises(InvalidArgumentError, match="at least one client"):
        FenceWindowSimulation(1, "serial", "held", 0, 1, 0)
    with pytest.raises(InvalidArgumentError, match="held or rolling"):
        FenceWindowSimulation(1, "serial", "sometimes", 1, 1, 0)
    with pytest.raises(InvalidArgumentError, match="runs once"):
        held_run[0].run()


def test_figures_are_written_for_the_quick_grid(result: RunResult, tmp_path: Path) -> None:
    for name, (png, pdf) in result.figures.items():
        assert name.startswith("fence-window-")
        assert png.stat().st_size > 10_000 and pdf.stat().st_size > 5_000
