"""Tests of reference/storage/raid_simulator.py (`xvol raid`): it echoes its parameters, shows
the layout, is deterministic per seed, and -c reports I/O counted on a real RAID group."""

from __future__ import annotations

import re

import pytest

from xvol.cli import main
from xvol.errors import InvalidArgumentError
from xvol.reference.storage.raid_simulator import configure_parser, run


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(["raid", *argv]) == 0
    return capsys.readouterr().out


def test_parameters_are_echoed_first(capsys: pytest.CaptureFixture[str]) -> None:
    out = _run(capsys, "-s", "3", "-L", "4", "-D", "3")
    assert out.splitlines()[0] == "ARG seed 3"
    assert "ARG level 4" in out and "Compute the answers with -c." in out


def test_dp_with_seven_data_disks_explains_p_eleven(capsys: pytest.CaptureFixture[str]) -> None:
    out = _run(capsys, "-L", "dp", "-D", "7", "-c")
    assert "p = 11 (the smallest prime >= D+1 = 8)" in out
    assert "3 missing one(s) are virtual" in out
    assert "total I/Os: 5" in out  # 5 single-block reads, no failures: one I/O each


def test_same_seed_same_output(capsys: pytest.CaptureFixture[str]) -> None:
    first = _run(capsys, "-s", "7", "-w", "50", "-c")
    second = _run(capsys, "-s", "7", "-w", "50", "-c")
    assert first == second
    assert first != _run(capsys, "-s", "8", "-w", "50", "-c")


def test_raid5_small_write_costs_four_ios_read_modify_write(
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = _run(capsys, "-L", "5", "-D", "4", "-w", "100", "-n", "3", "-c")
    assert out.count("-> 4 I/Os") == 3
    assert out.count("1 subtractive (read-modify-write)") == 3


def test_failed_disk_reads_are_rebuilt_and_verified(capsys: pytest.CaptureFixture[str]) -> None:
    out = _run(capsys, "-L", "dp", "-D", "4", "-F", "0,1", "-n", "20", "-c")
    assert "rebuilt from redundancy" in out
    assert "DATA LOSS" not in out
    assert out.count("data verified") == 20
    totals = re.search(r"per-disk totals: disk0 0r/0w, disk1 0r/0w", out)
    assert totals is not None


def test_beyond_tolerance_reports_data_loss(capsys: pytest.CaptureFixture[str]) -> None:
    out = _run(capsys, "-L", "5", "-D", "3", "-F", "0,1", "-n", "20", "-c")
    assert "DATA LOSS" in out and "sim.d0" in out


def test_bad_options_are_typed_errors() -> None:
    import argparse

    parser = argparse.ArgumentParser()
    configure_parser(parser)
    with pytest.raises(InvalidArgumentError):
        run(parser.parse_args(["-F", "9"]))
    with pytest.raises(InvalidArgumentError):
        run(parser.parse_args(["-L", "dp", "-D", "7", "-p", "7"]))
    with pytest.raises(InvalidArgumentError):
        run(parser.parse_args(["-w", "150"]))
