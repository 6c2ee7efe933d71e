"""Tests of the ``xvol volume`` teaching simulator (xvol.reference.volume.volume_simulator)."""

from __future__ import annotations

import argparse

import pytest

from xvol.errors import InvalidArgumentError
from xvol.reference.volume import volume_simulator
from xvol.reference.volume.diff import diff_snapshots


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    parser = argparse.ArgumentParser()
    volume_simulator.configure_parser(parser)
    assert volume_simulator.run(parser.parse_args(list(argv))) == 0
    return capsys.readouterr().out


def test_output_echoes_parameters_and_is_a_function_of_the_seed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    first = _run(capsys, "-s", "5", "-c")
    assert first.startswith("ARG seed 5\nARG ops 3\nARG cps 4\nARG blocks 128\nARG compute True")
    assert _run(capsys, "-s", "5", "-c") == first
    assert _run(capsys, "-s", "6", "-c") != first
    questions = _run(capsys, "-s", "5")
    assert "which blocks did this CP write" in questions and "wrote block" not in questions
    assert "wrote block" in first and "send block" in first


def test_later_cps_never_write_snapshot_blocks_and_the_diff_is_what_they_wrote() -> None:
    volume, records = volume_simulator.simulate(seed=11, operations=3, cps=4, blocks=160)
    for record in records:
        assert "fsinfo" in record.written.values()
    snapshot_blocks = {
        s.cp: set(volume_simulator.block_roles(volume, volume._record(s.sid).fsinfo_vbn))
        for s in volume.snapshots()
    }
    for cp, held in snapshot_blocks.items():
        for record in records:
            if record.cp > cp:
                # Write anywhere: no later CP writes over a block a snapshot references.
                assert not held & set(record.written)
    snap1, snap2 = volume.snapshots()[:2]
    between = set()
    for record in records:
        if snap1.cp < record.cp <= snap2.cp:
            between |= set(record.written)
    snap2_blocks = set(volume_simulator.block_roles(volume, volume._record(snap2.sid).fsinfo_vbn))
    diff = diff_snapshots(volume, snap1.name, snap2.name)
    assert set(diff.numbers.tolist()) == between & snap2_blocks


def test_too_small_parameters_are_rejected(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    volume_simulator.configure_parser(parser)
    with pytest.raises(InvalidArgumentError):
        volume_simulator.run(parser.parse_args(["-b", "10"]))
