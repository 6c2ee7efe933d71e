"""The shared vocabulary: volume names, step sequences, fence orders and the trace format."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xvol.errors import InvalidArgumentError
from xvol.vocabulary import (
    STEP_ROLE,
    Action,
    OperationKind,
    StepDiscipline,
    StepKind,
    Trace,
    TraceStep,
    VolumeRole,
    check_fence_order,
    format_fence_order,
    operation_steps,
    role_of,
    seed_fence_order,
    serial_order,
    volume_names,
)


def test_volume_names_follow_the_seed_fence_order() -> None:
    assert volume_names(2) == ("NS", "OLS", "DC1", "DC2")
    assert [role_of(v) for v in volume_names(2)] == [
        VolumeRole.NAMESPACE,
        VolumeRole.OLS,
        VolumeRole.DATA,
        VolumeRole.DATA,
    ]


@pytest.mark.parametrize("bad", ["", "DC", "DC0", "dc1", "DCx", "NSX"])
def test_role_of_rejects_unknown_names(bad: str) -> None:
    with pytest.raises(InvalidArgumentError):
        role_of(bad)


def test_seed_create_writes_data_before_the_name_points_to_it() -> None:
    steps = operation_steps(OperationKind.CREATE)
    roles = [STEP_ROLE[s] for s in steps]
    assert roles == [VolumeRole.DATA, VolumeRole.OLS, VolumeRole.NAMESPACE]


def test_namespace_first_discipline_reverses_create_and_delete_only() -> None:
    for op in OperationKind:
        seed = operation_steps(op, StepDiscipline.WRITE_AHEAD)
        variant = operation_steps(op, StepDiscipline.NAMESPACE_FIRST)
        if op in (OperationKind.CREATE, OperationKind.DELETE):
            assert variant == tuple(reversed(seed)) or set(variant) == set(seed)
            assert variant != seed
        else:
            assert variant == seed


def test_every_step_kind_has_a_role() -> None:
    assert set(STEP_ROLE) == set(StepKind)


def test_seed_fence_order_and_its_parallel_variant() -> None:
    assert format_fence_order(seed_fence_order(3)) == "NS < OLS < DC1 < DC2 < DC3"
    assert format_fence_order(seed_fence_order(2, parallel_data=True)) == "NS < OLS < {DC1 | DC2}"
    check_fence_order(seed_fence_order(3, parallel_data=True), volume_names(3))


def test_fence_order_must_name_every_volume_exactly_once() -> None:
    with pytest.raises(InvalidArgumentError):
        check_fence_order(serial_order(["NS", "OLS", "DC1"]), volume_names(2))
    with pytest.raises(InvalidArgumentError):
        check_fence_order(serial_order(["NS", "OLS", "DC1", "DC1"]), volume_names(2))


scalars = st.one_of(st.text(max_size=8), st.integers(-5, 5), st.booleans())


@given(
    st.lists(
        st.tuples(st.sampled_from(list(Action)), st.dictionaries(st.text(max_size=5), scalars)),
        max_size=6,
    ),
    st.one_of(st.none(), st.text(max_size=10)),
)
def test_trace_round_trips_through_json(
    raw: list[tuple[Action, dict[str, str | int | bool]]], violated: str | None
) -> None:
    trace = Trace("fence", {"n": 2}, tuple(TraceStep(a, args) for a, args in raw), violated)
    assert Trace.loads(trace.dumps()) == trace


@pytest.mark.parametrize(
    "text",
    ["not json", "{}", '{"system": "fence", "config": {}, "steps": [{"action": "jump"}]}'],
)
def test_malformed_traces_raise_a_typed_error(text: str) -> None:
    with pytest.raises(InvalidArgumentError):
        Trace.loads(text)
