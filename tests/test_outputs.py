"""Output paths are made ready before a command works, or refused with a typed error."""

from __future__ import annotations

from pathlib import Path

import pytest

from xvol.cli import main
from xvol.errors import InvalidArgumentError
from xvol.outputs import writable_file, writable_folder


def test_a_missing_folder_is_created_with_its_parents(tmp_path: Path) -> None:
    folder = tmp_path / "a" / "b"
    assert writable_folder(folder, "--out") == folder and folder.is_dir()
    assert writable_file(tmp_path / "c" / "report.json", "--json").parent.is_dir()


def test_a_file_in_the_way_and_a_folder_given_as_a_file_are_refused(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(InvalidArgumentError, match="--out: cannot write to"):
        writable_folder(blocker / "sub", "--out")
    with pytest.raises(InvalidArgumentError, match="is a folder, not a file"):
        writable_file(tmp_path, "--markdown")


def test_verify_checks_its_report_paths_and_property_before_any_suite_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["verify", "--quick", "--json", str(blocker / "r.json")]) == 2
    assert main(["verify", "--quick", "--markdown", str(tmp_path)]) == 2
    assert main(["verify", "--quick", "--explain", "no-such-property"]) == 2
    captured = capsys.readouterr()
    assert "cells" not in captured.out  # no suite ran
    assert captured.err.count("xvol: error:") == 3 and "integrity" in captured.err


def test_experiment_run_refuses_an_output_folder_it_cannot_make(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    args = ["experiment", "run", "raid-reconstruction", "--quick", "--out", str(blocker / "o")]
    assert main(args) == 2
    assert "--out: cannot write to" in capsys.readouterr().err
