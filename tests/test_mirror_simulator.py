"""Tests of the ``xvol mirror`` teaching simulator (xvol.reference.mirror.mirror_simulator): it
echoes its parameters, is a function of its seed, and its answers are the reference's state."""

from __future__ import annotations

import argparse
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xvol.cli import main
from xvol.errors import InvalidArgumentError
from xvol.reference.mirror import mirror_simulator
from xvol.reference.mirror.mirror_simulator import (
    Parameters,
    Simulation,
    presented,
    report,
    show_files,
    simulate,
)
from xvol.reference.mirror.resync import PRESERVED_MANIFEST
from xvol.reference.mirror.site import changed_paths, snapshot_files

VS, XV = "vs1", "xv"


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(["mirror", *argv]) == 0
    return capsys.readouterr().out


def _answers(sim: Simulation, start: str) -> list[str]:
    """The answers of the events whose text starts with ``start``, in order."""
    return [a for e in sim.events if e.text.startswith(start) for a in e.answers]


@pytest.fixture(scope="module")
def default_sim() -> Simulation:
    return simulate(Parameters(seed=1))


def test_parameters_are_echoed_first_and_questions_come_without_answers(
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = _run(capsys, "-s", "3", "-n", "4", "-D", "1")
    assert out.startswith("ARG seed 3\nARG ops 4\nARG interval 2\nARG cut percent 25\n")
    assert "ARG data constituents 1" in out and "ARG compute False" in out
    assert "which snapshot does it send" in out and "Run with -c to see the answers." in out
    assert "blocks\n" not in out and "common base:" not in out  # no answer leaks out


def test_same_seed_same_output_and_other_seeds_other_scenarios(
    capsys: pytest.CaptureFixture[str], default_sim: Simulation
) -> None:
    first = _run(capsys, "-s", "1", "-c")
    assert first == "\n".join(report(default_sim, True)) + "\n"  # same seed, other process state
    assert _run(capsys, "-s", "1", "-c") == first
    timeline = [e.text for e in default_sim.events]
    assert timeline != [e.text for e in simulate(Parameters(seed=2)).events]


def test_the_printed_answers_are_the_reference_state_at_the_end(default_sim: Simulation) -> None:
    sim = default_sim
    a, b = sim.a, sim.b
    assert sim.disaster and sim.plan is not None and sim.resync is not None
    out = "\n".join(report(sim, True))
    exported = sim.resync.update.snapshot
    # A is now the read-only mirror of B, redirected to the snapshot the resync sent
    assert a.redirects[(VS, XV)] == exported.snapshot_id
    assert a.files(VS, XV) == b.files(VS, XV)  # every write acknowledged at B is at A
    assert f"A's clients see {exported.name} (read-only): {show_files(b.files(VS, XV))}" in out
    sent = re.search(rf"sends {re.escape(exported.name)}: (\d+) blocks", out)
    assert sent is not None and int(sent.group(1)) == sim.resync.update.records_sent
    # the dry run's lists, against the sites: B's changes since the common base ...
    plan = sim.plan
    assert plan.common is not None
    assert f"common base: {plan.common.name}" in out
    base = snapshot_files(b.open_snapshot(VS, XV, plan.common.snapshot_id))
    assert list(plan.source_changes) == changed_paths(base, b.files(VS, XV))
    # ... and A's divergent files: the preserved volume holds each as the dry run showed it
    assert sim.resync.preserved is not None
    kept = snapshot_files(a.open_snapshot(VS, sim.resync.preserved, "preserved"))
    kept.pop(PRESERVED_MANIFEST)
    discard = _answers(sim, "resync dry run")[1].removeprefix("A would discard: ").split()
    assert show_files(kept).split() == [p for p in discard if "@" in p]
    assert f"preserved in {sim.resync.preserved}: {show_files(kept)}" in out
    check = _answers(sim, "resync")[-1]
    assert check.endswith("equal") and exported.name in check


def test_a_cut_update_keeps_the_exported_snapshot_and_the_next_resumes_its_target() -> None:
    sim = simulate(Parameters(seed=2, ops=6, interval=1, cut=100, disaster=0))
    co, b = sim.coordinator, sim.b
    group = co.tables.group(VS, XV)
    # every update was cut: B still presents the baseline, and every retry kept one target
    assert b.jobs.get(VS, XV, group.exported or 0).name == "mirror.B.1"
    cuts = [e for e in sim.events if "fails part-way" in e.text]
    assert len(cuts) == 6
    assert all(e.answers[-1] == cuts[0].answers[-1] for e in cuts)
    assert cuts[0].answers[-1].startswith("B's clients see mirror.B.1 (read-only)")
    assert group.pending is not None and sim.written[group.pending] == cuts[0].number
    assert all(f"it resumed {group.pending}" in e.answers[0] for e in cuts[1:])
    lag = sim.events[-1]
    assert lag.text.startswith("no disaster") and group.pending in lag.answers[1]


def test_an_uncut_update_answers_what_the_coordinator_sent() -> None:
    sim = simulate(Parameters(seed=0, ops=2, interval=1, cut=0, disaster=0))
    updates = [e for e in sim.events if e.text == "update"]
    assert len(updates) == 2
    b = sim.b
    newest = b.snapshots(VS, XV)[-1]
    assert b.redirects[(VS, XV)] == newest.snapshot_id
    assert updates[-1].answers[0].startswith(f"sends {newest.name}, taken at A now")
    assert updates[-1].answers[-1] == f"B's clients see {presented(b)}"
    assert presented(b).endswith(show_files(sim.a.files(VS, XV)))  # nothing written since


def test_resync_none_stops_after_the_dry_run_and_discard_preserves_nothing() -> None:
    dry = simulate(Parameters(seed=3, ops=2, after=2, resync="none"))
    assert dry.plan is not None and dry.resync is None
    assert dry.events[-1].text.startswith("resync dry run")
    assert (VS, XV) not in dry.a.redirects  # the dry run changed nothing at A
    gone = simulate(Parameters(seed=3, ops=2, after=2, resync="discard"))
    assert gone.resync is not None and gone.resync.preserved is None
    assert gone.a.files(VS, XV) == gone.b.files(VS, XV)


@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), cut=st.sampled_from([0, 50, 100]))
def test_whatever_the_seed_a_cut_never_moves_what_b_shows_and_resync_loses_no_write(
    seed: int, cut: int
) -> None:
    sim = simulate(Parameters(seed=seed, ops=4, interval=1, cut=cut, after=2))
    shown = ""
    for event in sim.events:
        seen = [a for a in event.answers if a.startswith("B's clients see")]
        if "part-way" in event.text:
            assert seen == [shown]  # the previous snapshot, whole
        if seen:
            shown = seen[-1]
    assert sim.a.files(VS, XV) == sim.b.files(VS, XV)


def test_bad_arguments_are_typed_errors_that_print_nothing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    parser = argparse.ArgumentParser()
    mirror_simulator.configure_parser(parser)
    for argv in (["-u", "0"], ["-x", "101"], ["-d", "-1"], ["-D", "5"], ["-r", "maybe"]):
        with pytest.raises(InvalidArgumentError):
            mirror_simulator.run(parser.parse_args(argv))
        assert capsys.readouterr().out == ""
    assert main(["mirror", "-n", "-2"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "-n (operations at A) must be in 0..40" in captured.err
