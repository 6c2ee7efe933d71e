"""Tests of the mirror suite (xvol.verification.suite_mirror): its registry entry point and
its verdict logic (which cells match their expectation, when the two engines agree)."""

from __future__ import annotations

from xvol.model import chc
from xvol.model.check import Verdict
from xvol.model.mirror import EXPECTED_VIOLATIONS
from xvol.verification import suite_mirror
from xvol.verification.suite_mirror import Agreement, ChcAgreement, MirrorCell
from xvol.verification.suites import SilentProgress, SuiteOptions, available
from xvol.vocabulary import Trace


def test_quick_run_through_the_registry_matches_every_expectation() -> None:
    assert "mirror" in available()
    report = suite_mirror.run(SuiteOptions(quick=True, workers=1), SilentProgress())
    assert report.name == "mirror" and report.failures == []
    assert report.statements and all(s.holds for s in report.statements)
    variants = suite_mirror.QUICK.variants
    # properties x engines (n = 1), and the CHC engine's sample
    assert len(report.cells) == len(variants) * 6 * 2 + len(suite_mirror.QUICK.chc)
    assert sum(c.engine == "chc" for c in report.cells) == len(suite_mirror.QUICK.chc)
    assert any("CHC engine" in s.text for s in report.statements)
    for c in report.cells:
        broken = EXPECTED_VIOLATIONS[c.config["variant"]]
        assert c.expected == ("violated" if c.prop in broken else "proved")
        assert (c.verdict == "violated") == (c.prop in broken)
        if c.verdict == "violated":
            assert c.trace is not None
            trace = Trace.from_json(c.trace)
            assert trace.violated == c.prop and trace.system == "mirror"
            assert trace.config["variant"] == c.config["variant"]


def _cell(
    engine: str, verdict: Verdict, depth: int, expected: str = "violated", method: str = "test"
) -> MirrorCell:
    return MirrorCell(
        "no-redirect", "redirect-consistent", engine, 1, 1, expected, verdict, depth, 0.0, method
    )


def test_suite_cells_match_expectations_and_engines_must_agree() -> None:
    assert _cell("z3", Verdict.VIOLATED, 2).ok
    assert not _cell("z3", Verdict.BOUNDED, 10).ok  # bounded never confirms a violation
    assert _cell("z3", Verdict.BOUNDED, 10, "holds").ok
    assert not _cell("z3", Verdict.UNKNOWN, 3, "holds").ok
    # z3 stopped at depth 3, explicit found a 5-step run: consistent; at 7 it would disagree
    short = Agreement(
        "v", "p", 1, _cell("z3", Verdict.BOUNDED, 3), _cell("explicit", Verdict.VIOLATED, 5)
    )
    assert short.agree
    late = Agreement(
        "v", "p", 1, _cell("z3", Verdict.BOUNDED, 7), _cell("explicit", Verdict.VIOLATED, 5)
    )
    assert not late.agree
    both = Agreement(
        "v",
        "p",
        1,
        _cell("z3", Verdict.PROVED, 10, "holds"),
        _cell("explicit", Verdict.PROVED, 24, "holds"),
    )
    assert both.agree


def test_chc_cells_must_not_contradict_the_other_engines() -> None:
    refuted = _cell("z3", Verdict.VIOLATED, 2)
    assert ChcAgreement(_cell("chc", Verdict.VIOLATED, 2), refuted).agree
    assert ChcAgreement(_cell("chc", Verdict.VIOLATED, 3), refuted).agree  # need not be shortest
    assert not ChcAgreement(_cell("chc", Verdict.VIOLATED, 1), refuted).agree  # below shortest
    assert not ChcAgreement(_cell("chc", Verdict.PROVED, 0, "holds"), refuted).agree
    bounded = _cell("z3", Verdict.BOUNDED, 5, "holds")
    assert not ChcAgreement(_cell("chc", Verdict.VIOLATED, 4), bounded).agree
    assert ChcAgreement(_cell("chc", Verdict.UNKNOWN, 0), refuted).agree


def test_chc_giving_up_is_no_mismatch_but_a_rejected_answer_is() -> None:
    assert _cell("chc", Verdict.UNKNOWN, 0, method=chc.GAVE_UP).ok
    assert not _cell("chc", Verdict.UNKNOWN, 0, method=chc.REJECTED).ok
    assert not _cell("chc", Verdict.PROVED, 0).ok  # expected violated
