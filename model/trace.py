"""Counterexamples: labelled runs of a system, replayed concretely, minimised and printed.

Both engines produce a :class:`Counterexample`: the z3 engine decodes one from a model, the
explicit engine reads one off its state graph. Either way the run is *replayed* on the concrete
interpreter (:mod:`xvol.model.concrete`) before it is believed: each step's guard must hold and
the last state must violate the property, or :class:`EngineDisagreement` is raised. The replay
also yields the per-step state changes that make a trace readable. A counterexample converts to
the shared :class:`xvol.vocabulary.Trace` JSON format when its labels are protocol actions. Uses
:mod:`xvol.model.concrete` and :mod:`xvol.vocabulary`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from xvol.errors import InvalidArgumentError, XvolError
from xvol.model.concrete import ConcreteSystem, State
from xvol.model.logic import Value
from xvol.vocabulary import Action, Trace, TraceStep


class EngineDisagreement(XvolError):
    """The two interpretations of a system disagree: a counterexample from one engine does not
    replay on the other. This is a bug in an engine or in the kit, never a verdict."""


@dataclass(frozen=True)
class CexStep:
    """One step of a counterexample: the action, its parameters, its trace label and
    arguments, and the state changes it made (``symbol(args): old -> new``)."""

    action: str
    params: tuple[tuple[str, Value], ...]
    label: str
    args: tuple[tuple[str, Value], ...]
    changes: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "params": dict(self.params),
            "label": self.label,
            "args": dict(self.args),
            "changes": list(self.changes),
        }


@dataclass(frozen=True)
class Counterexample:
    """A run from the initial state to a state violating ``prop``."""

    system: str
    prop: str
    steps: tuple[CexStep, ...]
    final_state: Mapping[str, Any] = field(default_factory=dict)

    @property
    def length(self) -> int:
        return len(self.steps)

    def render(self) -> str:
        """The run as a person reads it: one numbered line per step, then what changed."""
        lines = [f"counterexample to '{self.prop}' in {self.system} ({self.length} steps):"]
        if not self.steps:
            lines.append("  the initial state already violates it")
        for i, s in enumerate(self.steps, 1):
            args = ", ".join(f"{k}={_fmt(v)}" for k, v in s.args)
            lines.append(f"  {i:>2}. {s.label}({args})")
            for change in s.changes:
                lines.append(f"        {change}")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "system": self.system,
            "property": self.prop,
            "steps": [s.to_json() for s in self.steps],
        }

    def to_trace(self, system: str, config: Mapping[str, Any]) -> Trace:
        """The shared trace format; every label must be a :class:`xvol.vocabulary.Action`."""
        steps = []
        for s in self.steps:
            try:
                action = Action(s.label)
            except ValueError:
                raise InvalidArgumentError(
                    f"step label {s.label!r} is not a protocol action: no vocabulary trace"
                ) from None
            steps.append(TraceStep(action, dict(s.args)))
        return Trace(system=system, config=dict(config), steps=tuple(steps), violated=self.prop)

    def with_final_state(self, state: Mapping[str, Any]) -> Counterexample:
        return Counterexample(self.system, self.prop, self.steps, dict(state))


def _fmt(v: Value) -> str:
    return str(v).lower() if isinstance(v, bool) else str(v)


def replay(
    concrete: ConcreteSystem,
    prop: str,
    run: Sequence[tuple[str, Mapping[str, Value]]],
    *,
    engine: str,
) -> Counterexample:
    """Replay ``run`` (action names and parameters) from the initial state; raise
    :class:`EngineDisagreement` unless every step is enabled and the last state violates
    ``prop``."""
    state = concrete.initial()
    steps = []
    for i, (action, params) in enumerate(run, 1):
        step = concrete.describe_step(state, action, params)
        after = concrete.execute(state, action, params)
        if after is None:
            raise EngineDisagreement(
                f"{engine} counterexample to '{prop}' does not replay: step {i} "
                f"{action}({dict(params)}) is not enabled in the concrete interpreter"
            )
        steps.append(
            CexStep(
                action, step.params, step.label, step.args, tuple(concrete.changes(state, after))
            )
        )
        state = after
    if concrete.holds(state, prop):
        raise EngineDisagreement(
            f"{engine} counterexample to '{prop}' does not replay: the concrete interpreter "
            f"finds the property true after {len(run)} steps"
        )
    return Counterexample(concrete.system.name, prop, tuple(steps), concrete.describe(state))


def violates(
    concrete: ConcreteSystem, prop: str, run: Sequence[tuple[str, Mapping[str, Value]]]
) -> bool:
    """Whether ``run`` is executable and ends in a state violating ``prop``."""
    state: State | None = concrete.initial()
    for action, params in run:
        assert state is not None
        state = concrete.execute(state, action, params)
        if state is None:
            return False
    assert state is not None
    return not concrete.holds(state, prop)


def minimise(
    concrete: ConcreteSystem, cex: Counterexample, *, engine: str = "minimise"
) -> Counterexample:
    """Drop steps that are not needed (one at a time, while the run still violates the
    property), then move each parameter to the first value of its sort that keeps it a
    counterexample, so that runs read alike (``c1``, ``DC1``...). Returns a replayed run."""
    run: list[tuple[str, dict[str, Value]]] = [(s.action, dict(s.params)) for s in cex.steps]
    i = 0
    while i < len(run):
        candidate = run[:i] + run[i + 1 :]
        if violates(concrete, cex.prop, candidate):
            run = candidate
        else:
            i += 1
    for i, (action, params) in enumerate(run):
        decl = concrete.system.action(action)
        for p in decl.params:
            for value in concrete.instance.values_of(p.sort):
                if value == params[p.name]:
                    break
                trial = dict(params)
                trial[p.name] = value
                if violates(concrete, cex.prop, [*run[:i], (action, trial), *run[i + 1 :]]):
                    params = trial
                    run[i] = (action, params)
                    break
    return replay(concrete, cex.prop, run, engine=engine)
