"""E3 interrupted-transfer: the quick grid runs; resume re-sends only what was in flight at the
cut, a restart from zero re-sends the whole update, discarding checkpoints lies between; the
destination presents its previous snapshot whole through the cut; the CSV and the figure are
deterministic; a wrong mirror can never become a number."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from xvol.errors import IntegrityError, InvalidArgumentError
from xvol.experiments import interrupted_transfer as e3
from xvol.experiments import registry
from xvol.experiments.framework import run_experiment
from xvol.reference.mirror.replication import RECORD_BYTES


@pytest.fixture(scope="module")
def quick_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    first, second = tmp_path_factory.mktemp("e3-1"), tmp_path_factory.mktemp("e3-2")
    for out in (first, second):
        run_experiment(e3.EXPERIMENT, out, quick=True, executor="serial", command=["test"])
    yield first, second


@pytest.fixture(scope="module")
def frame(quick_runs: tuple[Path, Path]) -> pd.DataFrame:
    return pd.read_csv(quick_runs[0] / "interrupted-transfer.csv")


def _by_strategy(frame: pd.DataFrame) -> Iterator[dict[str, pd.Series]]:
    for _point, part in frame.groupby(["update_mib", "cut", "batch_blocks"]):
        yield {str(row["strategy"]): row for _i, row in part.iterrows()}


def test_experiment_is_registered_and_each_point_measures_every_strategy(
    frame: pd.DataFrame,
) -> None:
    assert registry.get("interrupted-transfer") is e3.EXPERIMENT
    assert len(frame) == len(e3.EXPERIMENT.quick) * len(e3.STRATEGIES)
    for rows in _by_strategy(frame):
        assert set(rows) == set(e3.STRATEGIES)


def test_each_cut_update_has_the_reference_updates_shape_and_was_cut_after_cut_bytes(
    frame: pd.DataFrame,
) -> None:
    assert (abs(frame["update_records"] - frame["transfer_records"]) <= 2).all()
    assert (frame["cut_bytes"] == (frame["cut"] * frame["transfer_bytes"]).round()).all()
    assert (frame["attempt_bytes"] > frame["cut_bytes"]).all()
    assert (frame["records_applied_at_cut"] < frame["update_records"]).all()


def test_resume_sends_every_record_once_and_restart_sends_the_whole_update_again(
    frame: pd.DataFrame,
) -> None:
    for rows in _by_strategy(frame):
        resume, member, restart = rows["resume"], rows["member-restart"], rows["restart"]
        # resume never re-sends an applied record: the retry sends exactly the rest
        assert resume["retry_records_sent"] == (
            resume["update_records"] - resume["records_applied_at_cut"]
        )
        assert resume["checkpoints_discarded"] == 0 and resume["volumes_discarded"] == 0
        # a restart from zero sends every record again and skips no member
        assert restart["retry_records_sent"] == restart["update_records"]
        assert restart["retry_members_skipped"] == 0 and restart["retry_records_resumed"] == 0
        assert restart["volumes_discarded"] == restart["members_committed_at_cut"]
        assert abs(restart["retry_bytes"] / restart["transfer_bytes"] - 1) < 0.02
        # discarding the checkpoints keeps the committed members only
        assert member["retry_records_resumed"] == 0
        assert resume["retry_records_sent"] <= member["retry_records_sent"]
        assert member["retry_records_sent"] <= restart["retry_records_sent"]


def test_restart_costs_about_one_plus_cut_and_resume_only_what_was_in_flight(
    frame: pd.DataFrame,
) -> None:
    for rows in _by_strategy(frame):
        resume, restart = rows["resume"], rows["restart"]
        assert restart["bytes_ratio"] >= 1 + restart["cut"]
        assert resume["total_bytes"] < restart["total_bytes"]
        assert resume["total_s"] < restart["total_s"]
        in_flight = resume["window"] * resume["batch_blocks"] * RECORD_BYTES
        assert resume["total_bytes"] - resume["transfer_bytes"] <= in_flight + 32 * 1024
        assert resume["total_s"] == pytest.approx(
            resume["attempt_s"] + resume["outage_s"] + resume["retry_s"], abs=0.2
        )


def test_clients_were_checked_at_every_member_commit_and_after_the_cut(
    frame: pd.DataFrame,
) -> None:
    assert (frame["checks_cut"] == frame["members_committed_at_cut"]).all()
    assert (
        frame["checks_retry"] >= frame["data_constituents"] + 2 - frame["retry_members_skipped"]
    ).all()
    assert (frame["blocks_checked"] > 0).all()


def test_csv_figure_and_numbers_are_deterministic(quick_runs: tuple[Path, Path]) -> None:
    first, second = quick_runs
    for name in (
        "interrupted-transfer.csv",
        "interrupted-transfer.png",
        "interrupted-transfer.pdf",
    ):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    numbers = e3.numbers(pd.read_csv(first / "interrupted-transfer.csv"))
    assert set(numbers) == {
        "EThreeUpdateMiB",
        "EThreeMaxCut",
        "EThreeResumeBytesRatio",
        "EThreeRestartBytesRatio",
        "EThreeBytesSavedPercent",
        "EThreeTimeRatio",
        "EThreeResumeOverheadMaxPercent",
        "EThreeMirrorChecks",
    }
    assert float(numbers["EThreeRestartBytesRatio"]) > float(numbers["EThreeResumeBytesRatio"])


def test_bad_points_are_refused_before_anything_runs() -> None:
    with pytest.raises(InvalidArgumentError, match="cut point"):
        e3.point({"update_mib": 1, "cut": 1.5, "batch_blocks": 16}, 0)
    with pytest.raises(InvalidArgumentError, match="batch_blocks"):
        e3.point({"update_mib": 1, "cut": 0.5, "batch_blocks": 0}, 0)


def test_a_mirror_whose_blocks_differ_raises_instead_of_being_measured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    honest = e3.snapshot_checksums
    calls: list[int] = []

    def flip_every_other(volume: object, snapshot: object) -> tuple[np.ndarray, np.ndarray]:
        calls.append(1)
        numbers, sums = honest(volume, snapshot)  # type: ignore[arg-type]
        if len(calls) % 2 == 1:  # check_presents asks the destination first, then the source
            sums = sums.copy()
            sums[0, 0] ^= np.uint64(1)
        return numbers, sums

    monkeypatch.setattr(e3, "snapshot_checksums", flip_every_other)
    with pytest.raises(IntegrityError, match="differs"):
        e3.point({"update_mib": 0.25, "cut": 0.5, "batch_blocks": 16}, 0)
