"""E6 growing-volume: the quick grid runs; every update resizes the destination to the source's
members; each added constituent costs one empty-member baseline and every member a fixed share
of each update; under a throttle above the change rate the lag stays within the schedule, below
it the lag grows; the CSV and figures are deterministic; a wrong mirror never becomes a number."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from xvol.errors import IntegrityError, InvalidArgumentError
from xvol.experiments import growing_volume as e6
from xvol.experiments import registry
from xvol.experiments.framework import run_experiment
from xvol.reference.mirror.site import Site


@pytest.fixture(scope="module")
def quick_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    first, second = tmp_path_factory.mktemp("e6-1"), tmp_path_factory.mktemp("e6-2")
    for out in (first, second):
        run_experiment(e6.EXPERIMENT, out, quick=True, executor="serial", command=["test"])
    yield first, second


@pytest.fixture(scope="module")
def frame(quick_runs: tuple[Path, Path]) -> pd.DataFrame:
    return pd.read_csv(quick_runs[0] / "growing-volume.csv")


def _grow(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame["scenario"] == "grow"].sort_values("index")


def _steady(frame: pd.DataFrame, throttle: float) -> pd.DataFrame:
    rows = frame[(frame["scenario"] == "steady") & (frame["throttle_kib_s"] == throttle)]
    return rows.sort_values("index")


def test_experiment_is_registered_and_runs_both_scenarios(frame: pd.DataFrame) -> None:
    assert registry.get("growing-volume") is e6.EXPERIMENT
    assert set(frame["scenario"]) == set(e6.SCENARIOS)
    steps = int(_grow(frame)["steps"].iloc[0])
    assert len(_grow(frame)) == 2 * steps


def test_every_update_resizes_the_destination_to_the_sources_members(frame: pd.DataFrame) -> None:
    rows = _grow(frame)
    start = e6.GROW_START_CONSTITUENTS
    for step in range(1, int(rows["steps"].iloc[0]) + 1):
        growth, write = rows.iloc[2 * step - 2], rows.iloc[2 * step - 1]
        assert (growth["phase"], write["phase"]) == ("grow", "write")
        assert growth["data_constituents"] == write["data_constituents"] == start + step
        assert growth["members"] == growth["data_constituents"] + 2  # plus namespace and OLS
        assert (growth["added"], write["added"]) == (1, 0)
        assert write["written_bytes"] == e6.GROW_WRITE_BYTES and growth["written_bytes"] == 0


def test_an_added_constituent_costs_one_empty_baseline_and_each_member_a_fixed_share(
    frame: pd.DataFrame,
) -> None:
    rows = _grow(frame)
    growth = rows[rows["phase"] == "grow"]
    writes = rows[rows["phase"] == "write"]
    assert growth["new_member_records"].nunique() == 1  # every new member is the same empty FS
    assert (growth["new_member_bytes"] > growth["idle_member_bytes"]).all()
    assert ((growth["other_member_bytes"] - growth["idle_member_bytes"]).abs() <= 16).all()
    assert (writes["new_member_bytes"] == 0).all()
    # every extra member adds the same per-update cost: the bytes grow by one member's share
    for part in (growth, writes):
        steps = part["update_bytes"].diff().dropna()
        share = part["idle_member_bytes"].iloc[1:]
        assert (steps > 0).all()
        assert ((steps - share).abs() < 0.25 * share + 4096).all()
    assert (writes["update_bytes"] > e6.GROW_WRITE_BYTES).all()


def test_update_time_follows_the_throttle(frame: pd.DataFrame) -> None:
    rows = _grow(frame)
    rate = rows["throttle_kib_s"] * 1024
    assert (rows["update_s"] * rate >= 0.75 * rows["update_bytes"]).all()
    assert (rows["update_s"] <= 1.5 * rows["update_bytes"] / rate + 0.5).all()


def test_lag_stays_within_the_schedule_above_the_change_rate_and_grows_below(
    frame: pd.DataFrame,
) -> None:
    throttles = sorted(frame[frame["scenario"] == "steady"]["throttle_kib_s"].unique())
    low, high = _steady(frame, throttles[0]), _steady(frame, throttles[-1])
    assert throttles[0] < e6.WRITE_KIB_S < throttles[-1]
    # fast enough: every update starts on its tick and commits before the next one
    assert (high["update_s"] < e6.SCHEDULE_S).all()
    assert (high["started_s"] / e6.SCHEDULE_S).round(6).tolist() == list(range(1, len(high) + 1))
    assert (high["lag_before_s"] <= 2 * e6.SCHEDULE_S).all()
    # too slow: each update carries more than the last, takes longer, and the lag grows
    assert low["update_records"].is_monotonic_increasing and low["update_s"].is_monotonic_increasing
    assert low["lag_before_s"].is_monotonic_increasing
    assert low["lag_before_s"].iloc[-1] > 2 * e6.SCHEDULE_S
    assert low["lag_at_horizon_s"].iloc[0] > high["lag_at_horizon_s"].iloc[0]
    for rows in (low, high):
        assert (rows["lag_after_s"] == rows["update_s"]).all()
        assert rows["exported_s"].is_monotonic_increasing
        assert (rows["final_behind_snapshots"] == 1).all()
        written = rows["horizon_written_bytes"].iloc[0]
        assert written == e6.WRITE_KIB_S * 1024 * rows["horizon_s"].iloc[0] / e6.WRITE_EVERY_S


def test_csv_figures_and_numbers_are_deterministic(quick_runs: tuple[Path, Path]) -> None:
    first, second = quick_runs
    names = ["growing-volume.csv"] + [
        f"{spec.name}.{ext}" for spec in e6.EXPERIMENT.figures for ext in ("png", "pdf")
    ]
    for name in names:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    numbers = e6.numbers(pd.read_csv(first / "growing-volume.csv"))
    assert set(numbers) == {
        "ESixWriteRateKiB",
        "ESixBytesPerAddedConstituentKiB",
        "ESixBytesPerMemberPerUpdateKiB",
        "ESixWireRateKiB",
        "ESixBoundedFromKiB",
        "ESixLowestThrottleKiB",
        "ESixLagLowestThrottleS",
        "ESixLagHighestThrottleS",
        "ESixThrottleBurstFactor",
    }
    assert numbers["ESixBoundedFromKiB"] == "256"  # of the quick grid's 48 and 256 KiB/s
    assert float(numbers["ESixLagLowestThrottleS"]) > float(numbers["ESixLagHighestThrottleS"])
    assert float(numbers["ESixWireRateKiB"]) > e6.WRITE_KIB_S  # metadata rides along


def test_bad_points_are_refused() -> None:
    base: dict[str, Any] = {"scenario": "grow", "throttle_kib_s": 64, "steps": 1, "horizon_s": 0}
    with pytest.raises(InvalidArgumentError, match="unknown scenario"):
        e6.point({**base, "scenario": "shrink"}, 0)
    with pytest.raises(InvalidArgumentError, match="throttle"):
        e6.point({**base, "throttle_kib_s": 0}, 0)
    with pytest.raises(InvalidArgumentError, match="steps"):
        e6.point({**base, "steps": 0}, 0)
    with pytest.raises(InvalidArgumentError, match="horizon"):
        e6.point({**base, "scenario": "steady", "steps": 0, "horizon_s": 1}, 0)


def test_a_mirror_that_hides_a_file_raises_instead_of_being_measured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    honest = Site.open_snapshot

    class Hiding:
        """A snapshot view of the destination that leaves out its last file."""

        def __init__(self, view: Any) -> None:
            self.view = view

        def walk(self) -> list[tuple[str, int]]:
            return list(self.view.walk())[:-1]

    def open_snapshot(self: Site, vserver: str, volume: str, ref: str | int) -> Any:
        view = honest(self, vserver, volume, ref)
        return Hiding(view) if self.name == "B" else view

    monkeypatch.setattr(Site, "open_snapshot", open_snapshot)
    with pytest.raises(IntegrityError, match="listing"):
        e6.point({"scenario": "grow", "throttle_kib_s": 256, "steps": 1, "horizon_s": 0}, 0)
