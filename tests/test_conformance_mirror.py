"""Conformance replay of the mirror model (verification/conformance_mirror.py): the model's
counterexamples of the bug toggles reproduce on the reference, or a named defence of the
reference stops them; correct runs stay safe; the properties are judged on the reference's own
state; what the reference cannot express is refused with a reason, never judged."""

from __future__ import annotations

from typing import Any

from xvol.verification.conformance import Outcome
from xvol.verification.conformance_mirror import (
    EMPTY,
    FAILOVER_DROPS_UNFINISHED,
    REPLICATION_BASE_CHECK,
    TARGET_ALREADY_HELD,
    TRANSFER_ROLLS_BACK,
    VS,
    XV,
    Generation,
    apply,
    build,
    judge,
    matching_generation,
    member_image,
    replay_mirror_trace,
)
from xvol.vocabulary import Action, Trace, TraceStep


def _config(*bugs: str, preserve: bool = True, n: int = 2) -> dict[str, Any]:
    name = "+".join(sorted(bugs)) or ("correct" if preserve else "preserve-off")
    return {
        "variant": name,
        "n": n,
        "missing": 1,
        "preserve": preserve,
        "snapshots": 1,
        "bugs": sorted(bugs),
    }


def _s(action: str, **args: Any) -> TraceStep:
    return TraceStep(Action(action), args)


def _trace(config: dict[str, Any], violated: str | None, *steps: TraceStep) -> Trace:
    return Trace("mirror", config, steps, violated)


SNAP_G1 = _s("snapshot", site="A", snapshot="g1")
DISASTER_TO_RETURN = (
    _s("disaster"),
    _s("failover", snapshot="g0"),
    _s("primary-return"),
)


def test_reads_at_the_destination_without_redirect_see_a_mix_of_snapshots() -> None:
    trace = _trace(
        _config("no-redirect"),
        "redirect-consistent",
        SNAP_G1,
        _s("transfer", volume="NS", snapshot="g1", source="A"),
    )
    r = replay_mirror_trace(trace)
    assert r.outcome is Outcome.REPRODUCED and r.divergence is None
    assert "NS=g1, OLS=g0" in r.violations["redirect-consistent"][0]


def test_with_the_redirect_the_same_half_transferred_update_shows_the_old_snapshot_whole() -> None:
    trace = _trace(
        _config(),
        None,
        SNAP_G1,
        _s("transfer", volume="NS", snapshot="g1", source="A"),
        _s("transfer", volume="OLS", snapshot="g1", source="A"),
    )
    r = replay_mirror_trace(trace)
    assert r.outcome is Outcome.SAFE and not r.violations


def test_skipped_resize_publishes_a_snapshot_without_the_new_constituent() -> None:
    steps = (
        SNAP_G1,
        _s("transfer", volume="NS", snapshot="g1", source="A"),
        _s("transfer", volume="OLS", snapshot="g1", source="A"),
        _s("transfer", volume="DC1", snapshot="g1", source="A"),
    )
    redirect = replay_mirror_trace(
        _trace(_config("skip-resize"), "redirect-consistent", *steps, _s("publish", snapshot="g1"))
    )
    assert redirect.outcome is Outcome.REPRODUCED and redirect.divergence is None
    failover = replay_mirror_trace(
        _trace(
            _config("skip-resize"),
            "failover-consistent",
            *steps,
            _s("disaster"),
            _s("failover", snapshot="g1"),
        )
    )
    assert failover.outcome is Outcome.REPRODUCED
    assert any("lacks DC2" in v for v in failover.violations["failover-consistent"])


def test_a_transfer_without_a_confirmed_relationship_is_caught_in_the_relationship_table() -> None:
    steps = (SNAP_G1, _s("resize", site="B"), _s("transfer", volume="DC2", snapshot="g1"))
    r = replay_mirror_trace(_trace(_config("no-confirm"), "relationship-before-transfer", *steps))
    assert r.outcome is Outcome.REPRODUCED
    # the correct protocol refuses that transfer: the update confirms first
    correct = replay_mirror_trace(_trace(_config(), None, *steps))
    assert correct.outcome is Outcome.BROKEN and "RelationshipMissing" in correct.reason


def test_discarding_instead_of_preserving_loses_the_old_primarys_divergent_files() -> None:
    resync = (
        SNAP_G1,
        *DISASTER_TO_RETURN,
        _s("common-snapshot", snapshot="g0"),
    )
    off = replay_mirror_trace(
        _trace(
            _config(preserve=False),
            "preserve-keeps-divergent",
            *resync,
            _s("rollback", snapshot="g0"),
        )
    )
    assert off.outcome is Outcome.REPRODUCED
    assert any("/g1-DC1" in v for v in off.violations["preserve-keeps-divergent"])
    on = replay_mirror_trace(
        _trace(_config(), None, *resync, _s("preserve"), _s("rollback", snapshot="g0"))
    )
    assert on.outcome is Outcome.SAFE


def test_a_per_volume_common_snapshot_is_prevented_by_failover_dropping_unfinished_copies() -> None:
    trace = _trace(
        _config("per-volume-common"),
        "redirect-consistent",
        SNAP_G1,
        _s("transfer", volume="NS", snapshot="g1", source="A"),
        *DISASTER_TO_RETURN,
        _s("common-snapshot", **{"per-volume": True}),
        _s("preserve"),
        _s("rollback", **{"per-volume": True}),
    )
    r = replay_mirror_trace(trace)
    assert r.outcome is Outcome.PREVENTED and not r.violations
    assert r.prevented_by.startswith(FAILOVER_DROPS_UNFINISHED) and "NS@" in r.prevented_by


def test_per_volume_rollbacks_to_different_snapshots_would_show_a_mix_at_the_old_primary() -> None:
    # the defence removed by hand: the per-volume choice names NS's g1 (as if B still held
    # its copy), every other member g0; the judge must see the mix at A's redirect
    w = build(_config("per-volume-common"))
    for step in (SNAP_G1, *DISASTER_TO_RETURN, _s("common-snapshot", **{"per-volume": True})):
        apply(w, step)
    assert w.per_volume is not None
    g1_ns = next(s for s in w.a.volume(VS, XV, "NS").snapshots() if s.name.endswith("g1"))
    w.per_volume["NS"] = str(g1_ns.uuid)
    apply(w, _s("rollback", **{"per-volume": True}))
    w.phase = "rolledback"
    judge(w)
    assert "NS=g1" in w.evidence["redirect-consistent"][0]


def test_a_skipped_rollback_is_refused_by_the_replication_base_check() -> None:
    trace = _trace(
        _config("skip-rollback"),
        "resync-identical",
        SNAP_G1,
        *DISASTER_TO_RETURN,
        _s("common-snapshot", snapshot="g0"),
        _s("preserve"),
        _s("reverse", snapshot="g2"),
        _s("transfer", volume="NS", snapshot="g2", source="B"),
    )
    r = replay_mirror_trace(trace)
    assert r.outcome is Outcome.PREVENTED and r.prevented_by.startswith(REPLICATION_BASE_CHECK)
    assert "NotFoundError" in r.prevented_by


def test_a_skipped_rollback_of_changes_without_a_snapshot_is_undone_by_the_transfer() -> None:
    trace = _trace(
        _config("skip-rollback"),
        "resync-identical",
        _s("source-write", volume="OLS"),
        *DISASTER_TO_RETURN,
        _s("common-snapshot", snapshot="g0"),
        _s("preserve"),
        _s("reverse", snapshot="g1"),
        _s("transfer", volume="OLS", snapshot="g1", source="B"),
    )
    r = replay_mirror_trace(trace)
    assert r.outcome is Outcome.PREVENTED and r.prevented_by.startswith(TRANSFER_ROLLS_BACK)
    assert not r.violations


def test_keeping_the_old_direction_cannot_overwrite_the_destination_it_already_holds() -> None:
    trace = _trace(
        _config("no-reverse"),
        "no-lost-destination-write",
        _s("disaster"),
        _s("failover", snapshot="g0"),
        _s("destination-write", volume="NS"),
        _s("primary-return"),
        _s("common-snapshot", snapshot="g0"),
        _s("preserve"),
        _s("rollback", snapshot="g0"),
        _s("snapshot", site="B", snapshot="g1"),
        _s("transfer", volume="NS", snapshot="g0", source="A"),
    )
    r = replay_mirror_trace(trace)
    assert r.outcome is Outcome.PREVENTED and r.prevented_by.startswith(TARGET_ALREADY_HELD)
    assert not r.violations


def test_a_whole_life_cycle_of_the_correct_protocol_stays_safe_and_ends_identical() -> None:
    back = [_s("transfer", volume=v, snapshot="g2", source="B") for v in ("NS", "OLS", "DC1")]
    trace = _trace(
        _config(),
        None,
        _s("source-write", volume="DC1"),
        SNAP_G1,
        _s("resize", site="B"),
        _s("create-relationship", volume="DC2"),
        *[_s("transfer", volume=v, snapshot="g1", source="A") for v in ("NS", "OLS", "DC1")],
        _s("transfer", volume="DC2", snapshot="g1", source="A"),
        _s("publish", snapshot="g1"),
        _s("disaster"),
        _s("failover", snapshot="g1"),
        _s("destination-write", volume="DC2"),
        _s("destination-write", volume="OLS"),
        _s("primary-return"),
        _s("common-snapshot", snapshot="g1"),
        _s("preserve"),
        _s("rollback", snapshot="g1"),
        _s("reverse", snapshot="g2"),
        *back,
        _s("transfer", volume="DC2", snapshot="g2", source="B"),
        _s("notify"),
    )
    r = replay_mirror_trace(trace)
    assert r.outcome is Outcome.SAFE and r.divergence is None, r.reason
    w = build(trace.config)
    for step in trace.steps:
        apply(w, step)
    assert w.a.files(VS, XV) == w.b.files(VS, XV)


def test_a_step_the_reference_answers_differently_is_a_divergence() -> None:
    # B received g1 on every member, so it presents g1, not the g0 the trace claims
    steps = [_s("transfer", volume=v, snapshot="g1", source="A") for v in ("NS", "OLS", "DC1")]
    trace = _trace(
        _config(),
        None,
        SNAP_G1,
        _s("resize", site="B"),
        _s("create-relationship", volume="DC2"),
        *steps,
        _s("transfer", volume="DC2", snapshot="g1", source="A"),
        _s("disaster"),
        _s("failover", snapshot="g0"),
    )
    r = replay_mirror_trace(trace)
    assert r.divergence is not None and "presents g1" in r.divergence


def test_what_the_reference_cannot_express_is_not_replayable_with_its_reason() -> None:
    one = replay_mirror_trace(_trace(_config(n=1), None, SNAP_G1))
    assert one.outcome is Outcome.NOT_REPLAYABLE and "no data constituent" in one.reason
    removed = replay_mirror_trace(
        _trace(
            _config(),
            None,
            _s("resize", site="B"),
            _s("disaster"),
            _s("failover", snapshot="g0"),
            _s("destination-write", volume="DC2"),
        )
    )
    assert removed.outcome is Outcome.NOT_REPLAYABLE and "has no DC2" in removed.reason
    assert replay_mirror_trace(Trace("fence", {}, (), None)).outcome is Outcome.NOT_REPLAYABLE


def test_a_directory_the_rollback_discards_is_judged_by_what_the_preserved_volume_holds() -> None:
    trace = _trace(
        _config(),
        None,
        _s("source-write", volume="NS"),
        *DISASTER_TO_RETURN,
        _s("common-snapshot", snapshot="g0"),
        _s("preserve"),
        _s("rollback", snapshot="g0"),
    )
    w = build(trace.config)
    for step in trace.steps:
        apply(w, step)
    preserved = [
        vol
        for vs, vol, _m in w.a.cluster.volume_table()
        if vs == VS and vol.startswith(f"{XV}-preserved-")
    ]
    kept = bool(preserved) and any(
        e.name == "w-A-NS-1" for e in w.a.open_snapshot(VS, preserved[0], "preserved").readdir("/")
    )
    assert ("preserve-keeps-divergent" in w.evidence) is not kept


def test_images_are_empty_for_members_without_data_and_generations_match_whole_views() -> None:
    w = build(_config())
    assert member_image(w.a.volume(VS, XV, "DC2"), "DC2") == EMPTY  # added, no object yet
    assert member_image(None, "NS") == EMPTY
    g0 = w.gens["g0"]
    assert set(g0.images) == {"NS", "OLS", "DC1"} and EMPTY not in g0.images.values()
    view = dict(g0.images)
    assert matching_generation({**view, "DC2": EMPTY}, w.gens) == "g0"
    other = Generation("g9", "A", {**view, "NS": "x"})
    assert matching_generation({**view, "NS": "x"}, {"g0": g0, "g9": other}) == "g9"
    assert matching_generation({**view, "OLS": "y"}, {"g0": g0, "g9": other}) is None
