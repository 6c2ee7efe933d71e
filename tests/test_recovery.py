"""E4 recovery: the quick grid runs every family; the data a disaster loses is exactly the writes
after the exported update started; a failover restores every member and drops what a cut update
committed, with work linear in the members; a delta resync sends a fraction of a new baseline,
which sends every block; preserving keeps the old primary's divergent data and discarding keeps
none; the CSV and figures are deterministic; the paper numbers are there."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd
import pytest

from xvol.errors import InvalidArgumentError
from xvol.experiments import registry
from xvol.experiments.framework import (
    RunResult,
    derive_seed,
    draw_figure,
    run_experiment,
    save_figure,
)
from xvol.experiments.recovery import (
    BASE_FILES,
    CHUNK_BYTES,
    EXPERIMENT,
    NODES,
    NUMBER_KEYS,
    QUICK,
    WRITE_BYTES,
    WRITE_PERIOD_S,
    divergent_writes,
    numbers,
    point,
    rto_point,
)
from xvol.reference.storage.block import BLOCK_SIZE


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    out = tmp_path_factory.mktemp("e4")
    return run_experiment(EXPERIMENT, out, quick=True, executor="serial", command=["test"])


@pytest.fixture(scope="module")
def frame(run: RunResult) -> pd.DataFrame:
    return pd.read_csv(run.csv)


def _rows(frame: pd.DataFrame, scenario: str) -> pd.DataFrame:
    rows = frame[frame["scenario"] == scenario]
    assert len(rows) > 0, scenario
    return rows


def test_experiment_is_registered_and_every_family_is_measured(frame: pd.DataFrame) -> None:
    assert registry.get("recovery") is EXPERIMENT
    assert len(frame) == len(QUICK)
    assert set(frame["scenario"]) == {"rpo", "rto", "resync"}


def test_a_disaster_loses_exactly_the_writes_after_the_exported_update_started(
    frame: pd.DataFrame,
) -> None:
    for row in _rows(frame, "rpo").itertuples():
        times = [(k + 0.5) * WRITE_PERIOD_S for k in range(10_000)]
        acked = [t for t in times if t <= row.disaster_s]
        assert row.writes_acked == len(acked)
        assert row.writes_lost == sum(t > row.recovery_point_s for t in acked)
        assert row.kib_lost == row.writes_lost * WRITE_BYTES / 1024
        assert row.recovery_point_s % row.interval_s == 0  # updates start on schedule
        assert row.interval_s <= row.disaster_s < 2 * row.interval_s
        # the exported update finished before the disaster; an update in flight at the
        # disaster leaves the one before it exported: at most one interval plus its run time
        assert row.rpo_s >= row.exported_update_s
        if row.update_cut:
            assert row.rpo_s == pytest.approx(row.interval_s + row.inflight_s)
        else:
            assert row.rpo_s < row.interval_s and row.inflight_s == 0


def test_failover_restores_every_member_and_drops_what_a_cut_update_committed(
    frame: pd.DataFrame,
) -> None:
    rows = _rows(frame, "rto")
    assert set(rows["failover_case"]) == {"idle", "mid-update"}
    for row in rows.itertuples():
        assert row.members == row.data_constituents + 2  # namespace, OLS, data constituents
        assert row.members_restored == row.snapshot_restores == row.members
        # one commit (the mirror is broken), one message per replica; after a cut update one
        # more: the counters the cut update's source handed out (never reused at the new primary)
        commits = 1 if row.failover_case == "idle" else 2
        assert row.rdb_messages == commits * NODES
        assert row.failover_ms > 0
        assert row.cf_messages == row.volume_ops + row.rdb_messages + row.pings  # all counted
        if row.failover_case == "idle":
            assert row.members_committed == 0
            assert row.snapshot_deletes == row.members
        else:  # the members that had committed the cut update lose that per-volume snapshot
            assert 0 < row.members_committed < row.members
            assert row.snapshot_deletes == row.members + row.members_committed


def test_failover_work_per_member_is_constant_so_it_grows_linearly(frame: pd.DataFrame) -> None:
    one = frame[(frame["failover_case"] == "idle") & (frame["data_constituents"] == 1)].iloc[0]
    params = {**QUICK[0], "scenario": "rto", "interval_s": 0, "trial": 0}
    params |= {"data_constituents": 3, "failover_case": "idle"}
    three = rto_point(params, derive_seed("recovery", params, 0))
    members = (int(one["members"]), int(three["members"]))
    # per member: a ping, a stray sweep's listing, an undo snapshot, the restore, and more
    per_volume = [int(one["volume_ops"]), int(three["volume_ops"])]
    assert per_volume[0] * members[1] == per_volume[1] * members[0]
    per_member = (int(three["cf_messages"]) - int(one["cf_messages"])) / (members[1] - members[0])
    assert per_member == (per_volume[1] + int(three["pings"])) / members[1]
    assert float(three["failover_ms"]) > float(one["failover_ms"])


def test_a_delta_resync_sends_a_fraction_of_a_baseline_which_sends_every_block(
    frame: pd.DataFrame,
) -> None:
    rows = _rows(frame, "resync")
    delta = rows[rows["resync_mode"] == "delta"].iloc[0]
    baseline = rows[rows["resync_mode"] == "baseline"].iloc[0]
    assert delta["divergence_kib"] == baseline["divergence_kib"]
    assert baseline["common_snapshot"] == "-" and delta["common_snapshot"] != "-"
    assert baseline["records_sent"] == baseline["full_transfer_blocks"]
    assert delta["records_sent"] < delta["full_transfer_blocks"]
    # the delta carries at least the blocks the new source's clients wrote
    assert int(delta["records_sent"]) >= int(delta["divergence_kib"]) * 1024 // BLOCK_SIZE
    assert baseline["wire_kib"] > 5 * delta["wire_kib"]
    for row in rows.itertuples():
        assert row.transfer_kib * 1024 >= row.records_sent * BLOCK_SIZE  # data plus framing
        assert row.wire_kib >= row.transfer_kib and row.resync_s > 0
        assert row.split_brain  # both sides wrote after the failover
    # the dry run lists what the old primary loses: its own writes since the common snapshot;
    # without one (a baseline), every file whose contents differ from the other site's: its
    # own writes and the base files the other site rewrote, never a file both hold alike
    written = {p for p, _s in divergent_writes("a", int(delta["divergence_kib"]))}
    rewritten = {p for p, _s in divergent_writes("b", int(delta["divergence_kib"]))}
    assert delta["discarded_paths"] == len(written)
    differing = written | {p for p in rewritten if p.startswith("/base")}
    assert baseline["discarded_paths"] == len(differing) > 0


def test_preserve_keeps_the_divergent_data_and_discard_keeps_nothing(frame: pd.DataFrame) -> None:
    rows = _rows(frame, "resync")
    kept = rows[rows["preserve"] == "on"]
    gone = rows[rows["preserve"] == "off"]
    assert len(kept) > 0 and len(gone) > 0
    for row in kept.itertuples():
        if row.resync_mode == "delta":  # exactly the old primary's divergent files, as last written
            final = dict(divergent_writes("a", int(row.divergence_kib)))
            assert row.preserved_kib * 1024 == sum(final.values())
        assert row.preserved_files == row.discarded_paths
        assert row.preserved_blocks * BLOCK_SIZE >= row.preserved_kib * 1024
        assert row.preserved_snapshots == 3  # a new volume: namespace, OLS, one constituent
    for column in ("preserved_files", "preserved_kib", "preserved_blocks", "preserved_snapshots"):
        assert (gone[column] == 0).all()


def test_divergent_writes_split_into_chunks_alternating_replace_and_create() -> None:
    writes = divergent_writes("a", 200)
    assert sum(size for _p, size in writes) == 200 * 1024
    assert [size for _p, size in writes] == [CHUNK_BYTES] * 3 + [200 * 1024 - 3 * CHUNK_BYTES]
    assert [p for p, _s in writes] == ["/base0", "/a-new-1", "/base1", "/a-new-3"]
    assert [p for p, _s in divergent_writes("b", 200)][::2] == [
        f"/base{BASE_FILES - 1}",
        f"/base{BASE_FILES - 2}",
    ]
    assert divergent_writes("b", 0) == []
    with pytest.raises(InvalidArgumentError):
        divergent_writes("c", 4)
    with pytest.raises(InvalidArgumentError):
        divergent_writes("a", -1)


def test_bad_parameters_are_typed_errors() -> None:
    rpo = dict(QUICK[0])
    with pytest.raises(InvalidArgumentError, match="multiple"):
        point(rpo | {"interval_s": WRITE_PERIOD_S + 1}, 1)
    with pytest.raises(InvalidArgumentError, match="trial"):
        point(rpo | {"trial": 99}, 1)
    with pytest.raises(InvalidArgumentError, match="unknown scenario"):
        point(rpo | {"scenario": "nope"}, 1)


def test_csv_rows_and_figures_are_the_same_in_a_second_run(
    run: RunResult, frame: pd.DataFrame, tmp_path: Path
) -> None:
    cheap = (QUICK[0], next(p for p in QUICK if p["failover_case"] == "idle"))
    again = run_experiment(
        dataclasses.replace(EXPERIMENT, quick=cheap, figures=()),
        tmp_path,
        quick=True,
        executor="serial",
        command=["test"],
    )
    second = pd.read_csv(again.csv)
    names = list(EXPERIMENT.parameters)
    first = frame.merge(second[names], on=names)[second.columns]
    pd.testing.assert_frame_equal(first.reset_index(drop=True), second)
    assert "elapsed_s" not in frame.columns
    # the figures plot no timing column: drawn again from the same frame, the bytes are equal
    spec = next(s for s in EXPERIMENT.figures if s.name == "recovery-rto")
    png, pdf = save_figure(draw_figure(spec, run.frame), tmp_path / spec.name)
    assert (png.read_bytes(), pdf.read_bytes()) == tuple(
        p.read_bytes() for p in run.figures[spec.name]
    )


def test_paper_numbers_quote_the_frame(run: RunResult, frame: pd.DataFrame) -> None:
    quoted = dict(run.numbers)
    growth = {"EFourFailoverMsPerConstituent", "EFourFailoverMessagesPerConstituent"}
    assert set(quoted) == set(NUMBER_KEYS) - growth  # the quick grid has one idle count
    rpo = _rows(frame, "rpo")
    longest = rpo[rpo["interval_s"] == rpo["interval_s"].max()]
    assert float(quoted["EFourRpoLongestIntervalS"]) == pytest.approx(
        longest["rpo_s"].mean(), abs=0.5
    )
    resync = _rows(frame, "resync")
    ratio = (
        resync[resync["resync_mode"] == "baseline"]["wire_kib"].iloc[0]
        / resync[resync["resync_mode"] == "delta"]["wire_kib"].iloc[0]
    )
    assert float(quoted["EFourBaselineOverDelta"]) == pytest.approx(ratio, abs=0.05)
    # with two idle counts the growth numbers appear: the least-squares slope per constituent
    idle = frame[frame["failover_case"] == "idle"].copy()
    bigger = idle.assign(
        data_constituents=idle["data_constituents"] + 2,
        failover_ms=idle["failover_ms"] + 1.0,
        cf_messages=idle["cf_messages"] + 12,
    )
    grown = numbers(pd.concat([frame, bigger], ignore_index=True))
    assert set(grown) == set(NUMBER_KEYS)
    assert grown["EFourFailoverMsPerConstituent"] == "0.500"
    assert grown["EFourFailoverMessagesPerConstituent"] == "6.0"
