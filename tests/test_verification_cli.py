"""``xvol verify --quick``: runs end to end and writes JSON records of the documented schema."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from xvol.cli import main

VERDICTS = {"proved", "violated", "bounded", "unknown"}


def test_verify_quick_writes_schema_conforming_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "verify.json"
    md = tmp_path / "verify.md"
    status = main(
        [
            "verify",
            "--suite",
            "fence",
            "--quick",
            "--workers",
            "1",
            "--json",
            str(out),
            "--markdown",
            str(md),
            "--explain",
            "integrity",
        ]
    )
    assert status == 0
    records = json.loads(out.read_text())
    assert records
    engines = set()
    for r in records:
        assert {"suite", "property", "config", "engine", "verdict", "depth", "seconds"} <= set(r)
        assert r["suite"] == "fence" and r["verdict"] in VERDICTS
        assert r["engine"] in {"z3", "explicit", "chc"}
        cfg = r["config"]
        assert cfg["mode"] in {"held", "rolling"}
        assert cfg["discipline"] in {"write-ahead", "namespace-first"}
        assert all(isinstance(x, str | list) for x in cfg["order"])
        if r["verdict"] == "violated":
            assert r["trace"]["violated"] == r["property"]
            assert r["trace"]["steps"]
        engines.add(r["engine"])
    assert engines == {"z3", "explicit", "chc"}
    assert "counterexample to 'integrity'" in capsys.readouterr().out
    text = md.read_text()
    assert "# xvol verify" in text and "### CHC engine (Spacer) cross-check" in text


def test_unknown_suite_is_rejected_by_the_parser() -> None:
    with pytest.raises(SystemExit):
        main(["verify", "--suite", "mirror-that-does-not-exist"])
