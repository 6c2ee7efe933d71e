"""The step scheduler: seeded and scripted interleavings, closed gates defer and reopened gates
resume with no step lost or run twice, locks keep operations on one object apart, errors thrown
into an operation let it undo its earlier steps."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xvol.errors import InvalidArgumentError, NotFoundError, UnavailableError
from xvol.reference.repository.steps import Acquire, Gate, Op, OpState, Scheduler, Step
from xvol.vocabulary import Action, OperationKind, StepDiscipline, StepKind, operation_steps


class World:
    """A fake set of member volumes that counts how often each step ran."""

    def __init__(self) -> None:
        self.gates = {v: Gate(v) for v in ("NS", "OLS", "DC1", "DC2")}
        self.ran: Counter[tuple[str, StepKind]] = Counter()
        self.log: list[tuple[str, StepKind]] = []
        self.fail_on: set[tuple[str, StepKind]] = set()
        self.down: set[str] = set()

    def op(self, name: str, kinds: tuple[StepKind, ...], lock: str | None = None) -> Op[str]:
        if lock is not None:
            yield Acquire(frozenset([lock]))
        done: list[StepKind] = []
        for kind in kinds:
            volume = {"data": "DC1", "ols": "OLS", "namespace": "NS"}[_role(kind)]

            def run(kind: StepKind = kind, volume: str = volume) -> str:
                if volume in self.down:
                    raise UnavailableError(volume)
                if (name, kind) in self.fail_on:
                    raise NotFoundError(f"{name} {kind}")
                self.ran[(name, kind)] += 1
                self.log.append((name, kind))
                return f"{name}:{kind}"

            try:
                yield Step(kind, volume, run)
            except NotFoundError:
                for undo in reversed(done):
                    yield Step(undo, "DC2", lambda undo=undo: self.log.append((name, undo)))
                raise
            done.append(kind)
        return name


def _role(kind: StepKind) -> str:
    from xvol.vocabulary import STEP_ROLE

    return STEP_ROLE[kind].value


CREATE = operation_steps(OperationKind.CREATE)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 6))
def test_random_interleaving_runs_every_step_exactly_once(seed: int, n: int) -> None:
    world = World()
    scheduler = Scheduler(world.gates.__getitem__, seed=seed)
    for i in range(n):
        scheduler.submit("create", world.op(f"c{i}", CREATE), op_id=f"c{i}")
    scheduler.run_random()
    assert all(r.state is OpState.DONE for r in scheduler.records.values())
    assert all(world.ran[(f"c{i}", k)] == 1 for i in range(n) for k in CREATE)
    for i in range(n):  # each operation's own steps stay in their order
        assert [k for (o, k) in world.log if o == f"c{i}"] == list(CREATE)


def test_same_seed_same_interleaving() -> None:
    logs = []
    for _ in range(2):
        world = World()
        scheduler = Scheduler(world.gates.__getitem__, seed=42)
        for i in range(4):
            scheduler.submit("create", world.op(f"c{i}", CREATE))
        scheduler.run_random()
        logs.append(world.log)
    assert logs[0] == logs[1]


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10_000), st.sampled_from(["NS", "OLS", "DC1"]), st.integers(0, 8))
def test_closed_gate_defers_and_reopening_resumes_without_loss_or_repeat(
    seed: int, volume: str, steps_before_close: int
) -> None:
    world = World()
    scheduler = Scheduler(world.gates.__getitem__, seed=seed)
    for i in range(3):
        scheduler.submit("create", world.op(f"c{i}", CREATE), op_id=f"c{i}")
    scheduler.run_random(max_steps=steps_before_close)
    world.gates[volume].close()
    scheduler.run_random()
    # nothing ran on the closed volume after it closed, and everything stuck there is deferred
    stuck = scheduler.unfinished()
    assert all(
        r.state is OpState.DEFERRED and r.next_step is not None and r.next_step.volume == volume
        for r in stuck
    )
    deferred = [e for e in scheduler.events if e.action is Action.DEFER]
    assert len(deferred) == len(stuck)
    world.gates[volume].open()
    scheduler.run_random()
    assert all(r.state is OpState.DONE for r in scheduler.records.values())
    assert all(world.ran[(f"c{i}", k)] == 1 for i in range(3) for k in CREATE)
    resumed = [e for e in scheduler.events if e.action is Action.RESUME]
    assert len(resumed) == len(stuck) == scheduler.counters.resumes


def test_scripted_interleaving_follows_the_script_and_checks_it() -> None:
    world = World()
    scheduler = Scheduler(world.gates.__getitem__)
    scheduler.submit("create", world.op("a", CREATE), op_id="a")
    scheduler.submit("create", world.op("b", CREATE), op_id="b")
    script = [
        ("a", StepKind.DATA_WRITE),
        ("b", StepKind.DATA_WRITE),
        ("b", StepKind.OLS_INSERT),
        ("a", StepKind.OLS_INSERT),
        ("a", StepKind.NAMESPACE_LINK),
    ]
    scheduler.run_script(script)
    assert world.log == script
    with pytest.raises(InvalidArgumentError):
        scheduler.run_script([("b", StepKind.DATA_WRITE)])
    # the recorded trace replays to the same interleaving on a fresh world
    fresh = World()
    replayer = Scheduler(fresh.gates.__getitem__)
    replayer.submit("create", fresh.op("a", CREATE), op_id="a")
    replayer.submit("create", fresh.op("b", CREATE), op_id="b")
    replayer.replay(scheduler.trace())
    assert fresh.log == world.log


def test_namespace_first_discipline_is_just_another_step_order() -> None:
    world = World()
    scheduler = Scheduler(world.gates.__getitem__)
    kinds = operation_steps(OperationKind.CREATE, StepDiscipline.NAMESPACE_FIRST)
    record = scheduler.run_op(scheduler.submit("create", world.op("a", kinds)).op_id)
    assert record.state is OpState.DONE
    assert [k for _, k in world.log] == [
        StepKind.NAMESPACE_LINK,
        StepKind.OLS_INSERT,
        StepKind.DATA_WRITE,
    ]


def test_locks_keep_two_operations_on_one_object_apart() -> None:
    world = World()
    scheduler = Scheduler(world.gates.__getitem__, seed=3)
    scheduler.submit("create", world.op("a", CREATE, lock="path:/x"), op_id="a")
    second = scheduler.submit("create", world.op("b", CREATE, lock="path:/x"), op_id="b")
    assert second.state is OpState.WAITING
    scheduler.run_random()
    names = [o for o, _ in world.log]
    assert names == ["a"] * 3 + ["b"] * 3


def test_an_error_is_thrown_into_the_operation_which_undoes_and_fails() -> None:
    world = World()
    world.fail_on.add(("a", StepKind.NAMESPACE_LINK))
    scheduler = Scheduler(world.gates.__getitem__)
    record = scheduler.run_op(scheduler.submit("create", world.op("a", CREATE)).op_id)
    assert record.state is OpState.FAILED and isinstance(record.error, NotFoundError)
    assert world.log[-2:] == [("a", StepKind.OLS_INSERT), ("a", StepKind.DATA_WRITE)]
    with pytest.raises(NotFoundError):
        record.outcome()


def test_a_node_that_does_not_answer_defers_until_retried() -> None:
    world = World()
    world.down.add("OLS")
    scheduler = Scheduler(world.gates.__getitem__)
    record = scheduler.submit("create", world.op("a", CREATE))
    scheduler.run_random()
    assert record.state is OpState.DEFERRED and world.ran[("a", StepKind.OLS_INSERT)] == 0
    world.down.clear()
    scheduler.retry_unavailable()
    scheduler.run_random()
    assert record.state is OpState.DONE
    assert all(world.ran[("a", k)] == 1 for k in CREATE)
