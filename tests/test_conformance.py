"""Conformance replay: the fence model's counterexamples reproduce on the reference under the
same configuration (rolling fences, the namespace-first discipline, a reversed fence order),
safe model runs stay safe there, and traces the reference cannot express are refused with a
reason, never judged."""

from __future__ import annotations

from typing import Any

import pytest

from xvol.verification.conformance import (
    NotReplayableError,
    Outcome,
    begin_operation,
    build,
    reclassify,
    rename_slots,
    replay_trace,
    request_violations,
)
from xvol.verification.suite_conformance import safe_traces
from xvol.verification.suite_fence import MATRIX, _explicit
from xvol.vocabulary import Action, Trace, TraceStep

SEED_ORDER = ["NS", "OLS", "DC1", "DC2"]


def _config(
    mode: str, discipline: str, order: list[Any] = SEED_ORDER, **extra: Any
) -> dict[str, Any]:
    return {
        "n": 2,
        "order": order,
        "objects": 1,
        "clients": 1,
        "present": 1,
        "mode": mode,
        "discipline": discipline,
        "bugs": [],
        **extra,
    }


def _trace(
    config: dict[str, Any], violated: str | None, *steps: tuple[str, dict[str, Any]]
) -> Trace:
    return Trace("fence", config, tuple(TraceStep(Action(a), args) for a, args in steps), violated)


def _c(step: str, volume: str, action: str = "step") -> tuple[str, dict[str, Any]]:
    return (action, {"op": "c1", "step": step, "volume": volume})


def _p(action: str, volume: str | None = None) -> tuple[str, dict[str, Any]]:
    return (action, {} if volume is None else {"volume": volume})


# the model's shortest counterexamples (explicit engine, n = 2), as it reports them
ROLLING_INTEGRITY = _trace(
    _config("rolling", "write-ahead"),
    "integrity",
    ("begin", {"op": "c1", "kind": "delete", "object": "o1"}),
    _p("fence", "NS"),
    _p("capture", "NS"),
    _p("unfence", "NS"),
    _c("namespace-unlink", "NS"),
    _c("ols-remove", "OLS"),
    _p("fence", "OLS"),
    _p("capture", "OLS"),
)
NAMESPACE_FIRST_INTEGRITY = _trace(
    _config("held", "namespace-first"),
    "integrity",
    ("begin", {"op": "c1", "kind": "delete", "object": "o1"}),
    _c("data-remove", "DC1"),
    _c("ols-remove", "OLS"),
    _p("fence", "NS"),
    _p("fence", "OLS"),
    _p("fence", "DC1"),
    _p("fence", "DC2"),
    _p("capture", "NS"),
    _p("capture", "OLS"),
)
NAMED_AVAILABILITY = _trace(
    _config("held", "write-ahead", ["DC2", "DC1", "OLS", "NS"]),
    "named-availability",
    ("begin", {"op": "c1", "kind": "write", "object": "o1"}),
    _p("fence", "DC2"),
    _p("fence", "DC1"),
    _c("namespace-lookup", "NS"),
    _c("ols-lookup", "OLS"),
    _c("data-write", "DC1", "defer"),
)


def test_a_rolling_integrity_counterexample_leaves_a_dangling_name_in_the_reference_snapshot() -> (
    None
):
    r = replay_trace(ROLLING_INTEGRITY)
    assert r.outcome is Outcome.REPRODUCED and r.divergence is None
    assert any("dangling name /o1" in v for v in r.violations["integrity"])


def test_a_namespace_first_integrity_counterexample_reproduces_on_the_reference() -> None:
    r = replay_trace(NAMESPACE_FIRST_INTEGRITY)
    assert r.outcome is Outcome.REPRODUCED and r.divergence is None
    assert any("dangling name /o1" in v for v in r.violations["integrity"])


def test_a_named_availability_counterexample_is_deferred_at_the_fenced_data_constituent() -> None:
    r = replay_trace(NAMED_AVAILABILITY)
    assert r.outcome is Outcome.REPRODUCED and r.divergence is None
    assert list(r.violations) == ["named-availability"]
    assert r.events[-1] == TraceStep(
        Action.DEFER, {"op": "c1.1", "step": "data-write", "volume": "DC1"}
    )


def test_a_trace_that_does_not_fit_the_configuration_is_not_reproduced() -> None:
    # the rolling counterexample under held fences: the reference refuses to capture NS
    # before every volume is fenced, so the replay stops there and integrity holds
    held = Trace("fence", _config("held", "write-ahead"), ROLLING_INTEGRITY.steps, "integrity")
    r = replay_trace(held)
    assert r.outcome is Outcome.NOT_REPRODUCED and "integrity" not in r.violations
    assert r.divergence is not None and "cannot take capture(NS)" in r.divergence


def test_safe_seed_configuration_runs_stay_safe_on_the_reference() -> None:
    for i, trace in enumerate(safe_traces(3, seed=5)):
        r = replay_trace(trace, seed=i)
        assert trace.violated is None and len(trace.steps) > 10
        assert r.outcome is Outcome.SAFE, r.violations
        assert r.divergence is None


def test_a_live_model_counterexample_reproduces() -> None:
    cells = _explicit("rolling", "namespace-first", ["DC1", "NS", "OLS"], 1, MATRIX, [])
    traces = [Trace.from_json(c.trace) for c in cells if c.trace is not None]
    assert {t.violated for t in traces} >= {"integrity"}
    for t in traces:
        r = replay_trace(t)
        assert r.outcome is Outcome.REPRODUCED, (t.violated, r.reason)


def test_reused_client_slots_become_distinct_reference_operations() -> None:
    begin = ("begin", {"op": "c1", "kind": "read-named", "object": "o1"})
    trace = _trace(_config("held", "write-ahead"), None, begin, _c("namespace-lookup", "NS"), begin)
    renamed = rename_slots(trace)
    assert [s.args["op"] for s in renamed.steps] == ["c1.1", "c1.1", "c1.2"]
    with pytest.raises(NotReplayableError):
        rename_slots(_trace(trace.config, None, _c("namespace-lookup", "NS")))


def test_traces_the_reference_cannot_express_are_counted_as_not_replayable() -> None:
    bug = Trace("fence", _config("held", "write-ahead", bugs=["made-up"]), (), "x")
    stale = _trace(
        _config("held", "write-ahead"),
        "no-lost-request",
        ("begin", {"op": "c1", "kind": "read-named", "object": "o1"}),
        ("resume", {"op": "c1", "volume": "NS"}),
    )
    mirror = Trace("mirror", {}, (), "x")
    for t, why in (
        (bug, "no replay injection"),
        (stale, "stale queued"),
        (mirror, "fence traces only"),
    ):
        r = replay_trace(t)
        assert r.outcome is Outcome.NOT_REPLAYABLE and why in r.reason


def test_the_request_checks_see_duplicate_runs_and_gates_left_closed_after_the_group_ended() -> (
    None
):
    # the reference always unfences, so a closed gate is forced here to show the check bites
    trace = _trace(
        _config("held", "write-ahead"),
        None,
        ("begin", {"op": "c1", "kind": "read-named", "object": "o1"}),
        _p("fence", "NS"),
        _c("namespace-lookup", "NS", "defer"),
        ("fail", {"reason": "injected"}),
        _p("unfence", "NS"),
        _p("delete-group"),
    )
    setup = build(trace.config)
    setup.run.replay(rename_slots(trace), lambda s: begin_operation(setup, s))
    assert request_violations(setup, setup.run.events) == {}
    lookup = TraceStep(Action.STEP, {"op": "c1.1", "step": "namespace-lookup", "volume": "NS"})
    doubled = request_violations(setup, [*setup.run.events, lookup, lookup])
    assert set(doubled) == {"no-lost-request"}  # a step logged twice is a duplicate run
    setup.xv.gate("NS").close()
    found = request_violations(setup, setup.run.events)
    assert set(found) == {"no-lost-request", "unfence-on-failure"}


def test_a_trace_sharing_a_replay_is_judged_on_its_own_property() -> None:
    shared = replay_trace(NAMED_AVAILABILITY)
    # the same steps under an order that differs only after the stages the trace reaches
    other = Trace(
        "fence",
        _config("held", "write-ahead", ["DC2", "DC1", "NS", "OLS"]),
        NAMED_AVAILABILITY.steps,
        "named-availability",
    )
    again = reclassify(shared, other)
    assert again.trace is other and again.outcome is Outcome.REPRODUCED
    assert again.events == shared.events and again.divergence is None
    integrity = Trace("fence", other.config, other.steps, "integrity")
    assert reclassify(shared, integrity).outcome is Outcome.NOT_REPRODUCED
    assert reclassify(shared, Trace("fence", other.config, other.steps, None)).outcome is (
        Outcome.BROKEN
    )
    assert reclassify(shared, NAMED_AVAILABILITY).outcome is Outcome.REPRODUCED


def test_a_replay_record_names_the_defence_that_prevented_an_injected_bug() -> None:
    r = replay_trace(NAMED_AVAILABILITY)
    record = r.to_json()
    assert record["outcome"] == "reproduced" and record["prevented_by"] == ""
    assert Outcome.PREVENTED.value == "prevented"


def test_the_injected_protocol_bugs_reproduce_their_counterexamples_on_the_reference() -> None:
    begin = ("begin", {"op": "c1", "kind": "write", "object": "o1"})
    no_unfence = _config("held", "write-ahead", bugs=["no-unfence-on-failure"])
    kept = _trace(
        no_unfence,
        "unfence-on-failure",
        _p("fence", "NS"),
        ("fail", {"reason": "injected"}),
        _p("delete-group"),
    )
    r = replay_trace(kept)
    assert r.outcome is Outcome.REPRODUCED and r.divergence is None
    waiting = _trace(
        no_unfence,
        "no-lost-request",
        begin,
        _p("fence", "NS"),
        _c("namespace-lookup", "NS", "defer"),
        ("fail", {"reason": "injected"}),
        _p("delete-group"),
    )
    r = replay_trace(waiting)
    assert (
        r.outcome is Outcome.REPRODUCED
        and "waits at fenced NS" in r.violations["no-lost-request"][0]
    )
    retry = _trace(
        _config("held", "write-ahead", bugs=["retry-deferred"]),
        "no-lost-request",
        begin,
        _p("fence", "NS"),
        _c("namespace-lookup", "NS", "defer"),
        ("fail", {"reason": "injected"}),
        _p("unfence", "NS"),
        _c("namespace-lookup", "NS"),
        ("resume", {"op": "c1", "volume": "NS"}),
    )
    r = replay_trace(retry)
    assert r.outcome is Outcome.REPRODUCED and r.divergence is None
    assert "ran ['namespace-lookup', 'namespace-lookup']" in r.violations["no-lost-request"][0]
    # without the injected bug the reference unfences first: the same trace does not fit
    plain = Trace("fence", _config("held", "write-ahead"), kept.steps, kept.violated)
    assert replay_trace(plain).outcome is Outcome.NOT_REPRODUCED
