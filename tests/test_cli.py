"""The ``xvol`` command: every listed subcommand builds and answers --help; errors are typed."""

from __future__ import annotations

import pytest

from xvol import __version__
from xvol.cli import BENCHMARKS, COMMANDS, build_parser, main


def test_version_is_printed(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.strip() == f"xvol {__version__}"


@pytest.mark.parametrize(
    "words", [[c.name] for c in COMMANDS] + [["bench", b.name] for b in BENCHMARKS]
)
def test_every_subcommand_answers_help(
    words: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stop:
        main([*words, "--help"])
    assert stop.value.code == 0
    assert "usage: xvol " + " ".join(words) in capsys.readouterr().out


def test_no_subcommand_prints_usage_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage: xvol" in capsys.readouterr().err


def test_a_typed_error_ends_with_one_line_and_status_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["experiment", "run", "no-such-experiment", "--quick"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("xvol: error: ") and "no-such-experiment" in err


def test_subcommand_names_are_unique() -> None:
    names = [c.name for c in COMMANDS]
    assert len(names) == len(set(names)) and "bench" not in names
    assert build_parser().prog == "xvol"
