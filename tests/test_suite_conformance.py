"""The conformance suite in ``--quick``: it runs, every sampled counterexample reproduces on the
reference, the safe runs stay safe, and its records have the schema of the other suites."""

from __future__ import annotations

import json

from xvol.verification import suite_conformance
from xvol.verification.suites import SilentProgress, SuiteOptions, available

VERDICTS = {"proved", "violated", "bounded", "unknown"}
FENCE_PROPERTIES = {
    "integrity",
    "named-availability",
    "raw-availability",
    "no-lost-request",
    "unfence-on-failure",
}


def test_the_suite_is_registered() -> None:
    assert "conformance" in available()


def test_quick_conformance_reproduces_every_sampled_violation_and_keeps_safe_runs_safe() -> None:
    report = suite_conformance.run(SuiteOptions(quick=True, workers=1), SilentProgress())
    assert report.name == "conformance" and not report.failures
    assert all(s.holds for s in report.statements)
    assert any("mirror" in n for n in report.notes)
    replays = [c for c in report.cells if c.method == "replay-counterexample"]
    safe = [c for c in report.cells if c.method == "replay-safe-run"]
    # a representative per (property, mode, discipline) the sample refutes, incl. integrity
    # under rolling fences and under the namespace-first discipline
    seen = {(c.prop, c.config["mode"], c.config["discipline"]) for c in replays}
    assert ("integrity", "rolling", "write-ahead") in seen
    assert ("integrity", "held", "namespace-first") in seen
    for mode in ("held", "rolling"):
        for discipline in ("write-ahead", "namespace-first"):
            for prop in ("named-availability", "raw-availability"):
                assert (prop, mode, discipline) in seen
    assert all(c.verdict == "violated" == c.expected for c in replays)
    assert safe and all(c.verdict == "bounded" == c.expected for c in safe)
    for c in report.cells:
        record = json.loads(json.dumps(c.to_json()))
        assert {"suite", "property", "config", "engine", "verdict", "depth", "seconds"} <= set(
            record
        )
        assert record["suite"] == "conformance" and record["engine"] == "reference"
        assert record["verdict"] in VERDICTS and record["property"] in FENCE_PROPERTIES
        cfg = record["config"]
        assert cfg["mode"] in {"held", "rolling"}
        assert cfg["discipline"] in {"write-ahead", "namespace-first"}
        assert set(cfg["order"]) <= {"NS", "OLS", "DC1", "DC2"} or any(
            isinstance(x, list) for x in cfg["order"]
        )
        if record["verdict"] == "violated":
            assert record["trace"]["violated"] == record["property"] or "sample" in cfg
