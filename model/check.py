"""The z3 engine: bounded model checking, inductive invariants, Houdini, k-induction.

Each kind of proof obligation has a function of its own here. Every query has a fixed random
seed and a timeout, and an ``unknown`` answer is carried up as the verdict ``unknown``, never
read as "safe" nor raised as a crash. No global solver and no global options: a solver lives
inside the call that made it. Uses z3, :mod:`xvol.model.symbolic` (the z3 meaning of a
system) and, to replay every counterexample before it is believed, :mod:`xvol.model.concrete`
via :mod:`xvol.model.trace`.

Verdicts (:class:`Verdict`):

* ``proved``: an inductive invariant (or a k-induction step) was checked, with every
  obligation shown in :attr:`Result.obligations`: the invariant holds initially, every action
  preserves it (one query per action, or one over the whole relation), and it implies the
  property;
* ``violated``: a counterexample of minimal length (iterative deepening), replayed concretely;
* ``bounded``: no violation up to ``depth`` steps, but no proof;
* ``unknown``: the solver gave up (timeout or incompleteness) before either.

How the queries are posed, so that a whole verdict matrix is cheap. Queries that belong
together share one incremental solver, on which what they share is asserted once: BMC of a
family of instances (one unrolling, one literal per instance, one query per depth for every
open instance and property, :func:`bmc_family`); Houdini on a family (the transition relation
once, and the counterexamples to induction found on one instance tried on the next,
:class:`CtiPool`); Houdini and re-checks one action at a time (the invariant once, then per
action its guard and the weakest precondition of the conjuncts it can change,
:func:`houdini_actions`). The parameterised proofs give every property an invariant and a
proof of its own (:func:`prove_every_n`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import z3

from xvol.errors import InvalidArgumentError
from xvol.model.concrete import ConcreteSystem
from xvol.model.logic import Action, Instance, Invariant, System, Value, symbols_of
from xvol.model.symbolic import Encoder
from xvol.model.trace import Counterexample, EngineDisagreement, replay


class Verdict(StrEnum):
    PROVED = "proved"
    VIOLATED = "violated"
    BOUNDED = "bounded"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Limits:
    """Solver settings for every query of one run: timeout per query and the random seed."""

    timeout_ms: int = 20_000
    seed: int = 0


@dataclass(frozen=True)
class Obligation:
    """One proof obligation and its outcome: ``kind`` is ``init`` (the initial states satisfy
    the invariant), ``preserve`` (``action`` keeps it), ``implies`` (it implies the property)
    or ``kstep``; ``outcome`` is ``valid``, ``fails`` or ``unknown``; ``failing`` names the
    conjuncts the solver's counterexample falsifies."""

    kind: str
    action: str | None
    outcome: str
    failing: tuple[str, ...] = ()
    seconds: float = 0.0

    def describe(self, prop: str) -> str:
        where = f" by action '{self.action}'" if self.action else ""
        if self.kind == "preserve" and not self.action:
            where = " by every action (one query over the whole relation)"
        what = {
            "frame": "is unchanged (the action updates no symbol it mentions)",
            "init": "holds initially",
            "preserve": "is preserved",
            "implies": f"implies '{prop}'",
            "kstep": "k-induction step",
            "combined": "all obligations in one query",
        }[self.kind]
        text = f"invariant for '{prop}' {what}{where}: {self.outcome}"
        if self.failing:
            text += f" (fails: {', '.join(self.failing)})"
        return text

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "action": self.action,
            "outcome": self.outcome,
            "failing": list(self.failing),
            "seconds": round(self.seconds, 4),
        }


@dataclass
class Result:
    """The verdict on one property of one system (instance), with its evidence."""

    prop: str
    verdict: Verdict
    depth: int | None  # steps searched (BMC, BFS levels); None for an invariant proof
    seconds: float
    engine: str = "z3"
    method: str = ""
    counterexample: Counterexample | None = None
    invariant: tuple[str, ...] = ()
    obligations: list[Obligation] = field(default_factory=list)
    states: int | None = None
    detail: str = ""


@contextmanager
def _solver(encoder: Encoder, limits: Limits) -> Iterator[Any]:
    """A fresh solver with the background facts asserted, seeded and time-limited."""
    solver = encoder.solver()
    solver.set("timeout", limits.timeout_ms)
    solver.set("random_seed", limits.seed)
    solver.set("smt.random_seed", limits.seed)
    solver.add(*encoder.background())
    yield solver


_PARAMETRIC: dict[int, tuple[System, Encoder]] = {}
_CACHED = 8  # parametric encoders kept per process


def _encoder(system: System, instance: Instance | None) -> Encoder:
    """An encoder for ``system``: in parametric mode (``instance`` is ``None``) the same one
    for every query on the same system object, so that its memoised terms (the invariant on
    each copy, each action's step) are translated once; every query still gets a fresh
    solver of its own. In finite mode, a new encoder."""
    if instance is not None:
        return Encoder(system, instance)
    hit = _PARAMETRIC.get(id(system))
    if hit is None or hit[0] is not system:
        if len(_PARAMETRIC) >= _CACHED:
            _PARAMETRIC.pop(next(iter(_PARAMETRIC)))
        hit = (system, Encoder(system, None))
        _PARAMETRIC[id(system)] = hit
    return hit[1]


def _outcome(answer: Any) -> str:
    if answer == z3.unsat:
        return "valid"
    if answer == z3.sat:
        return "fails"
    return "unknown"


# --------------------------------------------------------------------------------------------
# Bounded model checking by iterative deepening
# --------------------------------------------------------------------------------------------


def bmc(
    system: System,
    instance: Instance,
    props: Sequence[str],
    max_depth: int,
    limits: Limits = Limits(),
) -> dict[str, Result]:
    """Search counterexamples of each property, depth 0, 1, ... ``max_depth``; the first found
    is the shortest. One unrolling serves every property. Returns one result per property:
    ``violated`` (with the replayed run), ``bounded`` or ``unknown``."""
    return bmc_family(system, [instance], props, max_depth, limits)[0]


def bmc_family(
    system: System,
    instances: Sequence[Instance],
    props: Sequence[str],
    max_depth: int,
    limits: Limits = Limits(),
    *,
    vary: Sequence[str] = (),
    props_of: Sequence[Sequence[str]] | None = None,
    invariants_of: Sequence[Sequence[Invariant]] | None = None,
) -> list[dict[str, Result]]:
    """:func:`bmc` for several instances that differ only in the rigid symbols ``vary``, all
    searched together. ``props_of`` (default: ``props`` for each) says which properties to
    search on which instance; ``invariants_of`` gives, per instance, conjuncts already proved
    inductive on it (they hold in every reachable state, so asserting them on every step of
    the unrolling removes no run, only unreachable states the solver would otherwise explore).

    How. One incremental solver holds the unrolling, encoded once, one step at a time as the
    search deepens, without stutter steps: a run of ``d`` steps is searched only after every
    shorter one was ruled out, so it needs no padding. Each instance's rigid values (and its
    invariants) are asserted under an *instance literal*, and a query's goal is passed as an
    assumption, never asserted: nothing is retracted, and what the solver learns serves every
    later query. At depth ``d`` one query asks whether *some* open (instance, property) pair is
    violated after exactly ``d`` steps: unsat closes depth ``d`` for all of them at once; a
    model names an instance, and every open property of it that the model violates gets this
    run as its counterexample, shortest because all smaller depths were unsat for it (the run
    is decoded and replayed on the concrete interpreter before it is believed)."""
    wanted = [list(props) for _ in instances] if props_of is None else [list(p) for p in props_of]
    if len(wanted) != len(instances) or (
        invariants_of is not None and len(invariants_of) != len(instances)
    ):
        raise InvalidArgumentError("props_of and invariants_of need one entry per instance")
    for p in {p for ps in wanted for p in ps}:
        system.property(p)
    start = time.perf_counter()
    out: list[dict[str, Result]] = [{} for _ in instances]
    if not any(wanted):
        return out
    encoder = Encoder(system, instances[0], vary=vary)
    ctx = encoder.ctx
    steps: list[tuple[Any, list[dict[Any, Any]]]] = []
    negated: dict[tuple[str, int], Any] = {}
    concrete: dict[int, ConcreteSystem] = {}
    with _solver(encoder, limits) as solver:
        solver.add(encoder.init(0))
        literal = []
        single = len(instances) == 1  # then its facts hold outright: no literal needed
        for i, instance in enumerate(instances):
            a = z3.BoolVal(True, ctx) if single else z3.Bool(f"instance!{i}", ctx)
            literal.append(a)
            solver.add(*[z3.Implies(a, f) for f in encoder.rigid_facts(instance)])

        def strengthen(depth: int) -> None:
            if invariants_of is None:
                return
            for i, invariant in enumerate(invariants_of):
                if invariant and wanted[i]:
                    terms = [encoder.term(x.formula, depth) for x in invariant]
                    if single:
                        solver.add(*terms)
                    else:
                        solver.add(z3.Implies(literal[i], z3.And(*terms)))

        strengthen(0)
        open_ = {i: list(ps) for i, ps in enumerate(wanted) if ps}
        for depth in range(max_depth + 1):
            if not open_:
                break
            if depth > len(steps):
                formula, selector, params = encoder.transition(depth - 1)
                solver.add(formula)
                steps.append((selector, params))
                strengthen(depth)
            for ps in open_.values():
                for p in ps:
                    if (p, depth) not in negated:
                        formula = system.property(p).formula
                        negated[p, depth] = z3.Not(encoder.term(formula, depth))
            while open_:
                cases = [
                    z3.And(literal[i], z3.Or(*[negated[p, depth] for p in ps]))
                    for i, ps in open_.items()
                ]
                answer = solver.check(z3.Or(*cases))
                elapsed = time.perf_counter() - start
                if answer == z3.unsat:
                    break
                if answer != z3.sat:
                    for i, ps in open_.items():
                        for p in ps:
                            out[i][p] = Result(
                                p,
                                Verdict.UNKNOWN,
                                depth - 1,
                                elapsed,
                                method="bmc",
                                detail=f"solver: {solver.reason_unknown()} at depth {depth}",
                            )
                    open_ = {}
                    break
                model = solver.model()
                run = _decode_run(encoder, model, steps[:depth])
                named = [i for i in open_ if z3.is_true(model.eval(literal[i], True))]
                for i in [*named, *(i for i in open_ if i not in named)]:
                    if i not in concrete:
                        concrete[i] = ConcreteSystem(system, instances[i])
                    if i in named:
                        hit = [
                            p for p in open_[i] if z3.is_true(model.eval(negated[p, depth], True))
                        ]
                    else:
                        # the same run may violate another instance's open properties: then
                        # it is a shortest counterexample there too (depth d - 1 was unsat
                        # for them), checked by replaying it on that instance
                        end = concrete[i].run(run)
                        hit = [] if end is None else concrete[i].violations(end, open_[i])
                    for p in hit:
                        cex = replay(concrete[i], p, run, engine="z3")
                        out[i][p] = Result(
                            p, Verdict.VIOLATED, depth, elapsed, method="bmc", counterexample=cex
                        )
                        open_[i].remove(p)
                    if not open_[i]:
                        del open_[i]
        for i, ps in open_.items():
            for p in ps:
                out[i][p] = Result(
                    p,
                    Verdict.BOUNDED,
                    max_depth,
                    time.perf_counter() - start,
                    method="bmc",
                    detail=f"no violation in {max_depth} steps",
                )
    return out


def _decode_run(
    encoder: Encoder, model: Any, steps: list[tuple[Any, list[dict[Any, Any]]]]
) -> list[tuple[str, dict[str, Value]]]:
    run = []
    actions = encoder.system.actions
    for selector, params in steps:
        k = model.eval(selector, True).as_long()
        if k >= len(actions):  # a stutter step cannot precede a shortest violation
            raise EngineDisagreement("z3 counterexample contains a stutter step")
        action = actions[k]
        values = {
            p.name: encoder.decode(model.eval(params[k][p], True), p.sort) for p in action.params
        }
        run.append((action.name, values))
    return run


# --------------------------------------------------------------------------------------------
# Inductive invariants: checking, Houdini, k-induction
# --------------------------------------------------------------------------------------------


class Step:
    """One-step induction queries on a shared encoding (finite mode): the whole transition
    relation (all actions, a selector naming the one taken) is encoded once from copy 0 to
    copy 1 on one solver, and a per-action query fixes the selector; the initial-state and
    implication queries, about copy 0 alone, share a second solver. :meth:`use` selects the
    instance of the family whose varying rigid values hold in the following queries (a
    solver scope on each)."""

    def __init__(
        self, system: System, instance: Instance, limits: Limits, vary: Sequence[str] = ()
    ) -> None:
        self.system = system
        self.encoder = Encoder(system, instance, vary=vary)
        self.limits = limits
        formula, self.selector, self.params = self.encoder.transition(0)
        self.width = self.selector.size()
        self.facts: list[Any] = self.encoder.rigid_facts(instance)
        self.cti: Cti | None = None  # the last failing preservation query's model
        # the last preservation query over the whole relation: its conjuncts and outcome
        self.last: tuple[tuple[str, ...], Obligation] | None = None
        self._solver_cm = _solver(self.encoder, limits)
        self.solver = self._solver_cm.__enter__()
        self.solver.add(formula)
        self._state_cm = _solver(self.encoder, limits)
        self.states = self._state_cm.__enter__()
        for solver in (self.solver, self.states):
            solver.push()
            solver.add(*self.facts)

    def use(self, instance: Instance) -> None:
        self.facts = self.encoder.rigid_facts(instance)
        for solver in (self.solver, self.states):
            solver.pop()
            solver.push()
            solver.add(*self.facts)

    def init(self, invariant: Sequence[Invariant]) -> Obligation:
        start = time.perf_counter()
        solver = self.states
        solver.push()
        solver.add(self.encoder.init(0))
        terms = [(i.name, self.encoder.term(i.formula, 0)) for i in invariant]
        solver.add(z3.Not(z3.And(*[t for _, t in terms])))
        answer = solver.check()
        failing = _false_in_model(solver, answer, terms)
        solver.pop()
        return Obligation("init", None, _outcome(answer), failing, time.perf_counter() - start)

    def action(self, k: int | None, invariant: Sequence[Invariant]) -> Obligation:
        """Action ``k`` (or, for ``None``, some action) preserves the conjunction."""
        start = time.perf_counter()
        solver = self.solver
        solver.push()
        if k is not None:
            solver.add(self.selector == z3.BitVecVal(k, self.width, self.encoder.ctx))
        solver.add(*[self.encoder.term(i.formula, 0) for i in invariant])
        terms = [(i.name, self.encoder.term(i.formula, 1)) for i in invariant]
        solver.add(z3.Not(z3.And(*[t for _, t in terms])))
        answer = solver.check()
        failing = _false_in_model(solver, answer, terms)
        self.cti = self._cti(solver.model()) if answer == z3.sat else None
        solver.pop()
        name = self.system.actions[k].name if k is not None else None
        ob = Obligation("preserve", name, _outcome(answer), failing, time.perf_counter() - start)
        if k is None:
            self.last = (tuple(i.name for i in invariant), ob)
        return ob

    def preserved(self, invariant: Sequence[Invariant]) -> Obligation:
        """Every action preserves ``invariant``: the answer of the last query over the whole
        relation when it was about exactly these conjuncts (Houdini ends with that query),
        else a new query."""
        if self.last is not None and self.last[0] == tuple(i.name for i in invariant):
            return self.last[1]
        return self.action(None, invariant)

    def _cti(self, model: Any) -> Cti:
        """The counterexample to induction in ``model``: pre-state, action, parameters."""
        k = model.eval(self.selector, True).as_long()
        action = self.system.actions[k]
        params = {
            p.name: self.encoder.decode(model.eval(self.params[k][p], True), p.sort)
            for p in action.params
        }
        return Cti(self.encoder.state_from_model(model, 0), action.name, params)

    def implies(self, invariant: Sequence[Invariant], prop: str) -> Obligation:
        start = time.perf_counter()
        solver = self.states
        solver.push()
        solver.add(*[self.encoder.term(i.formula, 0) for i in invariant])
        solver.add(z3.Not(self.encoder.term(self.system.property(prop).formula, 0)))
        answer = solver.check()
        solver.pop()
        return Obligation("implies", None, _outcome(answer), (), time.perf_counter() - start)


def _false_in_model(solver: Any, answer: Any, terms: list[tuple[str, Any]]) -> tuple[str, ...]:
    """When a quantifier-free query is satisfiable, the conjuncts ``terms`` its model
    falsifies (every variable is assigned, so the model decides each)."""
    if answer != z3.sat:
        return ()
    model = solver.model()
    return tuple(name for name, t in terms if not z3.is_true(model.eval(t, True)))


def check_inductive(
    system: System,
    instance: Instance | None,
    invariant: Sequence[Invariant],
    limits: Limits = Limits(),
) -> list[Obligation]:
    """Check that the conjunction of ``invariant`` is inductive: one obligation for the
    initial states and one per action, each naming the conjuncts that fail.
    ``instance=None`` checks it for every instance at once (parametric mode)."""
    encoder = _encoder(system, instance)
    obligations = [_check_init(encoder, invariant, limits)]
    with _solver(encoder, limits) as solver:
        solver.add(*[encoder.term(i.formula, 0) for i in invariant])
        obligations.extend(_preserves(encoder, solver, a, invariant) for a in system.actions)
    return obligations


def check_implies(
    system: System,
    instance: Instance | None,
    invariant: Sequence[Invariant],
    prop: str,
    limits: Limits = Limits(),
) -> Obligation:
    """Check that the conjunction of ``invariant`` implies the property ``prop``."""
    return _implies(_encoder(system, instance), invariant, prop, limits)


def _implies(
    encoder: Encoder, invariant: Sequence[Invariant], prop: str, limits: Limits
) -> Obligation:
    start = time.perf_counter()
    with _solver(encoder, limits) as solver:
        solver.add(*[encoder.term(i.formula, 0) for i in invariant])
        solver.add(z3.Not(encoder.term(encoder.system.property(prop).formula, 0)))
        answer = solver.check()
    return Obligation("implies", None, _outcome(answer), (), time.perf_counter() - start)


def check_invariant(
    system: System,
    instance: Instance | None,
    prop: str,
    invariant: Sequence[Invariant],
    limits: Limits = Limits(),
) -> list[Obligation]:
    """Every obligation of an inductive invariant for ``prop``: init, one per action, and
    the implication; the proof holds iff every outcome is ``valid``."""
    return [
        *check_inductive(system, instance, invariant, limits),
        check_implies(system, instance, invariant, prop, limits),
    ]


def check_combined(
    system: System,
    instance: Instance | None,
    prop: str,
    invariant: Sequence[Invariant],
    limits: Limits = Limits(),
) -> Obligation:
    """All obligations of :func:`check_invariant` as ONE query: unsat iff the invariant holds
    initially, is preserved by every action and implies the property. The query is the
    disjunction of the ways it could fail: the initial state violates it (copy 0), some action
    leads from a state satisfying it (copy 0) to one violating it (copy 1), or a state
    satisfying it violates the property (copy 0)."""
    return check_combined_all(system, instance, [prop], invariant, limits)


def check_combined_all(
    system: System,
    instance: Instance | None,
    props: Sequence[str],
    invariant: Sequence[Invariant],
    limits: Limits = Limits(),
) -> Obligation:
    """:func:`check_combined` for several properties in ONE query: the implication case is
    that some property of ``props`` fails on the last copy. Unsat proves, for each property,
    what its own combined query proves (each is a sub-disjunction of this one); any other
    answer says nothing about a single property (ask :func:`check_combined` then)."""
    if not props:
        raise InvalidArgumentError("check_combined_all needs at least one property")
    start = time.perf_counter()
    encoder = _encoder(system, instance)
    before = z3.And(*[encoder.term(i.formula, 0) for i in invariant])
    after = z3.And(*[encoder.term(i.formula, 1) for i in invariant])
    # The cases share copies 0 and 1: a disjunction is satisfiable iff one of its cases is,
    # and each case alone says what it said on copies of its own (an existential over its
    # states), so this is the same query as one copy pair per case, at a fraction of the
    # encoding. (The relational form: z3 does better with it here than with the weakest
    # preconditions the per-obligation checks use, one disjunct per action.)
    steps = z3.Or(*[encoder.step_of(a, 0) for a in system.actions])
    cases = [
        z3.And(encoder.init(0), z3.Not(before)),
        z3.And(before, steps, z3.Not(after)),
        z3.And(
            before,
            z3.Or(*[z3.Not(encoder.term(system.property(p).formula, 0)) for p in props]),
        ),
    ]
    with _solver(encoder, limits) as solver:
        solver.add(z3.Or(*cases))
        answer = solver.check()
    return Obligation("combined", None, _outcome(answer), (), time.perf_counter() - start)


def _check_init(encoder: Encoder, invariant: Sequence[Invariant], limits: Limits) -> Obligation:
    start = time.perf_counter()
    with _solver(encoder, limits) as solver:
        solver.add(encoder.init(0))
        terms = [(i.name, encoder.term(i.formula, 0)) for i in invariant]
        solver.push()
        solver.add(z3.Not(z3.And(*[t for _, t in terms])))
        answer = solver.check()
        failing = _false_in(solver, answer, terms, exact=encoder.finite)
    return Obligation("init", None, _outcome(answer), failing, time.perf_counter() - start)


def _touched(action: Action, invariant: Sequence[Invariant]) -> list[Invariant]:
    """The conjuncts of ``invariant`` that ``action`` can change: those mentioning a state
    symbol it updates. Every other conjunct reads only symbols the action keeps (its frame),
    so the action preserves it whatever the state."""
    updated = _updated_by(action)
    return [i for i in invariant if _mentions(i) & updated]


_UPDATED: dict[int, tuple[Action, frozenset[str]]] = {}
_MENTIONS: dict[int, tuple[Invariant, frozenset[str]]] = {}


def _updated_by(action: Action) -> frozenset[str]:
    hit = _UPDATED.get(id(action))
    if hit is None or hit[0] is not action:
        hit = (action, frozenset(s.name for s in action.merged_updates()))
        _UPDATED[id(action)] = hit
    return hit[1]


def _mentions(conjunct: Invariant) -> frozenset[str]:
    hit = _MENTIONS.get(id(conjunct))
    if hit is None or hit[0] is not conjunct:
        hit = (conjunct, frozenset(s.name for s in symbols_of(conjunct.formula)))
        _MENTIONS[id(conjunct)] = hit
    return hit[1]


def _check_action(
    encoder: Encoder, action: Action, invariant: Sequence[Invariant], limits: Limits
) -> Obligation:
    """``action`` preserves the conjunction of ``invariant``: unsat of the invariant on copy
    0, the action's guard, and the negated weakest precondition of the conjuncts it can
    change (:meth:`Encoder.after`; equivalent to the post-state copy with the transition
    relation, without its quantified frame equations). An action that changes none of
    them preserves the invariant by its frame: kind ``frame``, no query."""
    if not _touched(action, invariant):
        return Obligation("frame", action.name, "valid", (), 0.0)
    with _solver(encoder, limits) as solver:
        solver.add(*[encoder.term(i.formula, 0) for i in invariant])
        return _preserves(encoder, solver, action, invariant)


def _false_in(
    solver: Any, answer: Any, terms: list[tuple[str, Any]], *, exact: bool
) -> tuple[str, ...]:
    """When the conjunction can fail (``answer`` is sat), the conjuncts that do. ``exact``
    (finite mode: quantifier-free, every variable assigned): read them off the model.
    Otherwise one query per conjunct, on the solver's assertions minus the negated
    conjunction, which the caller asserted last in a scope of its own; an unknown answer
    counts as failing (not known to hold)."""
    if answer != z3.sat:
        return ()
    model = solver.model()
    if exact:
        return tuple(name for name, t in terms if not z3.is_true(model.eval(t, True)))
    # quantified terms: those the model evaluates to false fail in this model (the query's
    # counterexample); only when it decides none of them, ask per conjunct
    false = tuple(name for name, t in terms if z3.is_false(model.eval(t, True)))
    if false:
        return false
    solver.pop()
    failing = []
    for name, t in terms:
        solver.push()
        solver.add(z3.Not(t))
        if solver.check() != z3.unsat:
            failing.append(name)
        solver.pop()
    solver.push()
    return tuple(failing)


def houdini(
    system: System,
    instance: Instance | None,
    candidates: Sequence[Invariant],
    limits: Limits = Limits(),
) -> tuple[list[Invariant], bool]:
    """The largest inductive subset of ``candidates`` (Houdini): drop the conjuncts that fail
    initially, then, until nothing changes, those some action falsifies from a state
    satisfying all remaining ones. Returns the survivors and whether every query was decided
    (``False`` when some query was unknown: the survivors are then not trustworthy).
    ``instance=None``: for every instance at once (parametric mode)."""
    survivors, decided, _ = houdini_actions(_encoder(system, instance), candidates, limits)
    return survivors, decided


def houdini_actions(
    encoder: Encoder, candidates: Sequence[Invariant], limits: Limits
) -> tuple[list[Invariant], bool, list[Obligation]]:
    """Houdini with one query per action (:func:`_check_action`'s query: the action's guard
    and the weakest precondition of the conjuncts it can change), on one solver per
    remaining set, where that set is asserted once. It cycles through the actions, dropping
    what a counterexample falsifies, until a whole cycle finds none: those last queries are
    the obligations of the survivors (with the initial-state query), returned as the
    re-check. Returns ``(survivors, decided, obligations)``."""
    system = encoder.system
    current = list(candidates)
    first = _check_init(encoder, current, limits)
    if first.outcome == "unknown":
        return current, False, []
    current = [i for i in current if i.name not in first.failing]
    actions = system.actions
    cycle: list[Obligation] = []  # valid obligations since the last drop, on ``current``
    k = 0
    while current and len(cycle) < len(actions):
        with _solver(encoder, limits) as solver:
            solver.add(*[encoder.term(i.formula, 0) for i in current])
            while len(cycle) < len(actions):
                action = actions[k % len(actions)]
                k += 1
                ob = _preserves(encoder, solver, action, current)
                if ob.outcome == "unknown":
                    return current, False, []
                if ob.outcome == "fails":
                    current = [i for i in current if i.name not in ob.failing]
                    cycle = []
                    break  # a new solver for the smaller set
                cycle.append(ob)
    if not current:
        return current, True, []
    init = _check_init(encoder, current, limits)
    if init.outcome != "valid":
        return current, init.outcome != "unknown", []
    order = {a.name: i for i, a in enumerate(actions)}
    cycle.sort(key=lambda o: order[o.action or ""])
    return current, True, [init, *cycle]


def _preserves(
    encoder: Encoder, solver: Any, action: Action, invariant: Sequence[Invariant]
) -> Obligation:
    """:func:`_check_action` on ``solver``, where ``invariant`` is asserted on copy 0."""
    start = time.perf_counter()
    touched = _touched(action, invariant)
    if not touched:
        return Obligation("frame", action.name, "valid", (), 0.0)
    solver.push()
    solver.add(encoder.moved(action)[0])
    terms = [(i.name, encoder.after(i.formula, action)) for i in touched]
    solver.push()
    solver.add(z3.Not(z3.And(*[t for _, t in terms])))
    answer = solver.check()
    failing = _false_in(solver, answer, terms, exact=encoder.finite)
    solver.pop()
    solver.pop()
    return Obligation(
        "preserve", action.name, _outcome(answer), failing, time.perf_counter() - start
    )


@dataclass(frozen=True)
class Cti:
    """A counterexample to induction: a pre-state (concrete, in the layout of
    :mod:`xvol.model.concrete`) and the action with parameters that leads out of the
    candidate invariant from it."""

    state: tuple[Any, ...]
    action: str
    params: dict[str, Value]


class CtiPool:
    """The counterexamples to induction that Houdini found on the instances of a family so
    far, tried concretely on the next instance before the solver is asked.

    Why it is sound. Houdini may drop the conjuncts falsified by *any* step from a state that
    satisfies every remaining conjunct to one that does not: the largest inductive subset
    keeps none of them, whichever counterexample shows it, so the result is the same set.
    A stored counterexample is such a step on another instance when its pre-state satisfies
    the remaining conjuncts there and its action is enabled there (the guard is evaluated,
    and the post-state computed, by the concrete interpreter under that instance's rigid
    values). The solver still has the last word: the survivors are only accepted once a
    query shows that every action preserves them."""

    def __init__(self) -> None:
        self.found: list[Cti] = []

    def drop(self, concrete: ConcreteSystem, current: Sequence[Invariant]) -> tuple[str, ...]:
        """The conjuncts of ``current`` that some stored counterexample falsifies on
        ``concrete``'s instance (empty if none applies)."""
        checks = [(i.name, concrete.predicate(i.formula)) for i in current]
        for cti in self.found:
            if not all(holds(cti.state) for _, holds in checks):
                continue
            after = concrete.execute(cti.state, cti.action, cti.params)
            if after is None:
                continue
            failing = tuple(name for name, holds in checks if not holds(after))
            if failing:
                return failing
        return ()


def houdini_step(
    step: Step,
    candidates: Sequence[Invariant],
    pool: CtiPool | None = None,
    concrete: ConcreteSystem | None = None,
) -> tuple[list[Invariant], bool]:
    """Houdini on the instance ``step`` uses: drop the conjuncts false initially, then those
    some action falsifies from a state satisfying all remaining ones, until the solver shows
    every action preserves what remains. With ``pool`` (and the instance's ``concrete``
    system), stored counterexamples to induction are tried first (see :class:`CtiPool`) and
    every new one is stored."""
    current = list(candidates)
    first = step.init(current)
    if first.outcome == "unknown":
        return current, False
    current = [i for i in current if i.name not in first.failing]
    while current:
        if pool is not None and concrete is not None:
            failing = pool.drop(concrete, current)
            if failing:
                current = [i for i in current if i.name not in failing]
                continue
        ob = step.action(None, current)
        if ob.outcome == "unknown":
            return current, False
        if ob.outcome == "valid":
            break
        if pool is not None and step.cti is not None:
            pool.found.append(step.cti)
        current = [i for i in current if i.name not in ob.failing]
    return current, True


# --------------------------------------------------------------------------------------------
# Parameterised proofs, one per property
# --------------------------------------------------------------------------------------------


class Cones:
    """Which conjuncts each conjunct of an inductive invariant needs, on a finite instance.

    For an invariant ``M`` inductive on the instance, the *support* of a conjunct ``c`` is a
    minimised unsat core of "``M`` on copy 0, some action, ``c`` false on copy 1": the
    conjuncts whose truth before a step keeps ``c`` true after it. The *cone* of a property is
    the closure under support of the core of "``M`` implies the property". A cone is
    inductive on the instance and implies the property; it is only a candidate elsewhere
    (a parameterised proof re-checks it). Queries are bit-blasted, so this is cheap."""

    def __init__(
        self, system: System, instance: Instance, invariant: Sequence[Invariant], limits: Limits
    ) -> None:
        self.system = system
        self.encoder = Encoder(system, instance)
        ctx = self.encoder.ctx
        self.by_name = {i.name: i for i in invariant}
        self._cm = _solver(self.encoder, limits)
        self.solver = self._cm.__enter__()
        self.solver.set("core.minimize", True)
        self._moves = z3.Bool("transition", ctx)
        self.solver.add(z3.Implies(self._moves, self.encoder.transition(0)[0]))
        self.literals = {}
        for i in invariant:
            literal = z3.Bool(f"holds:{i.name}", ctx)
            self.literals[i.name] = literal
            self.solver.add(z3.Implies(literal, self.encoder.term(i.formula, 0)))
        self._support: dict[str, list[str] | None] = {}

    def _core(self, goal: Any, *extra: Any) -> list[str] | None:
        """The conjuncts in a minimised core of ``goal`` (``None`` unless unsat)."""
        self.solver.push()
        self.solver.add(goal)
        answer = self.solver.check(*extra, *self.literals.values())
        core = None
        if answer == z3.unsat:
            names = {str(lit): name for name, lit in self.literals.items()}
            core = sorted(names[str(x)] for x in self.solver.solver.unsat_core() if str(x) in names)
        self.solver.pop()
        return core

    def support(self, name: str) -> list[str] | None:
        if name not in self._support:
            after = self.encoder.term(self.by_name[name].formula, 1)
            self._support[name] = self._core(z3.Not(after), self._moves)
        return self._support[name]

    def cone(self, prop: str, start: Sequence[str] = ()) -> list[str] | None:
        """The cone of ``prop`` (grown from ``start`` too); ``None`` if some query was not
        unsat (the invariant does not imply ``prop``, or the solver gave up)."""
        implied = self._core(z3.Not(self.encoder.term(self.system.property(prop).formula, 0)))
        if implied is None:
            return None
        return self.close([*implied, *start])

    def close(self, names: Sequence[str]) -> list[str] | None:
        """``names`` closed under support (in the invariant's order)."""
        seen = set(names)
        work = list(names)
        while work:
            needed = self.support(work.pop())
            if needed is None:
                return None
            for n in needed:
                if n not in seen:
                    seen.add(n)
                    work.append(n)
        return [n for n in self.by_name if n in seen]


@dataclass
class EveryN:
    """The parameterised proofs of one system: per property a :class:`Result` whose
    ``seconds`` is the time of its own proof (the re-check of its invariant, every
    obligation), and the inference they share (``inference`` seconds: Houdini on the finite
    instance that proposes the candidates)."""

    results: dict[str, Result]
    candidates: tuple[str, ...]
    inference: float
    decided: bool
    instance: str


def prove_every_n(
    system: System,
    props: Sequence[str],
    candidates: Sequence[Invariant],
    finite: Instance,
    limits: Limits = Limits(),
    *,
    describe: str = "",
    rounds: int = 8,
) -> EveryN:
    """Prove each property of ``props`` for every instance at once (parametric mode: domain
    sorts uninterpreted, so every number of volumes, clients and objects), each with an
    inductive invariant of its own, inferred by the kit and re-checked.

    1. Inference (shared): Houdini on the small instance ``finite`` (which must satisfy the
       axioms) keeps ``M``, the largest inductive subset of ``candidates`` there. Every
       conjunct of the largest parametric inductive subset is among them (that subset is
       inductive on every instance, ``finite`` included, and Houdini's result contains every
       inductive subset), so nothing a parameterised proof could use is lost.
    2. Per property, its invariant: the cone of the property in ``M`` (:class:`Cones`),
       checked parametrically; while some action breaks it, the conjuncts of ``M`` that the
       solver's counterexample falsifies before the step (with their cones) are added. If
       that does not converge, parametric Houdini from ``M`` gives the largest invariant.
    3. Per property, its proof: every obligation of that invariant on one solver (it holds
       initially; each action preserves it, ``frame`` when the action changes none of its
       conjuncts; it implies the property), timed as the property's own ``seconds``."""
    start = time.perf_counter()
    ConcreteSystem(system, finite)  # raises unless the instance satisfies the axioms
    step = Step(system, finite, limits)
    survivors, decided = houdini_step(step, candidates)
    ok = decided and step.preserved(survivors).outcome == "valid"
    ok = ok and step.init(survivors).outcome == "valid"
    cones = Cones(system, finite, survivors, limits) if ok else None
    inference = time.perf_counter() - start
    encoder = _encoder(system, None)
    results: dict[str, Result] = {}
    largest: list[Invariant] | None = None
    for prop in props:
        begin = time.perf_counter()
        names = cones.cone(prop) if cones is not None else None
        note = f"cone of {len(names)} conjuncts" if names is not None else "no cone"
        invariant = [i for i in survivors if names is not None and i.name in names]
        obligations: list[Obligation] = []
        proof = 0.0
        for attempt in range(rounds + 1):
            if not invariant:
                break
            checked = time.perf_counter()
            obligations, extra = _every_obligation(encoder, prop, invariant, survivors, limits)
            proof = time.perf_counter() - checked
            if all(o.outcome == "valid" for o in obligations):
                break
            if any(o.outcome == "unknown" for o in obligations) or attempt == rounds:
                invariant = []
                break
            if not extra:  # nothing in M excludes the counterexample: use the largest
                if largest is None:
                    largest = houdini(system, None, survivors, limits)[0]
                invariant = list(largest) if invariant != largest else []
                note += "; largest parametric invariant"
                continue
            grown = cones.close([*(i.name for i in invariant), *extra]) if cones else None
            names = grown if grown is not None else [*(i.name for i in invariant), *extra]
            invariant = [i for i in survivors if i.name in names]
            note += f"; +{', '.join(extra)}"
        valid = bool(obligations) and all(o.outcome == "valid" for o in obligations)
        unknown = any(o.outcome == "unknown" for o in obligations)
        search = time.perf_counter() - begin - proof
        results[prop] = Result(
            prop,
            Verdict.PROVED if valid else (Verdict.UNKNOWN if unknown else Verdict.BOUNDED),
            None,
            proof,
            method="parametric",
            invariant=tuple(i.name for i in invariant) if valid else (),
            obligations=obligations,
            detail=f"proof {proof:.2f}s over {len(invariant)} conjuncts; invariant selected "
            f"in {search:.2f}s ({note})",
        )
    return EveryN(
        results, tuple(i.name for i in survivors), inference, ok, describe or "finite instance"
    )


def _every_obligation(
    encoder: Encoder,
    prop: str,
    invariant: Sequence[Invariant],
    pool: Sequence[Invariant],
    limits: Limits,
) -> tuple[list[Obligation], list[str]]:
    """Every obligation of ``invariant`` for ``prop`` (parametric ``encoder``): init, one per
    action, the implication; the action and implication queries on one solver where the
    invariant is asserted once. Also, when an action breaks it, the conjuncts of ``pool``
    outside it that the counterexample's pre-state falsifies (to strengthen it with)."""
    system = encoder.system
    obligations = [_check_init(encoder, invariant, limits)]
    extra: list[str] = []
    inside = {i.name for i in invariant}
    with _solver(encoder, limits) as solver:
        solver.add(*[encoder.term(i.formula, 0) for i in invariant])
        for action in system.actions:
            begin = time.perf_counter()
            touched = _touched(action, invariant)
            if not touched:
                obligations.append(Obligation("frame", action.name, "valid", (), 0.0))
                continue
            solver.push()
            solver.add(encoder.moved(action)[0])
            solver.add(z3.Not(z3.And(*[encoder.after(i.formula, action) for i in touched])))
            answer = solver.check()
            if answer == z3.sat and not extra:
                # conjuncts the model's pre-state falsifies; else those it leaves undecided
                # (a residual quantifier), which may be the ones excluding it
                model = solver.model()
                values = [
                    (i.name, model.eval(encoder.term(i.formula, 0), True))
                    for i in pool
                    if i.name not in inside
                ]
                extra = [n for n, v in values if z3.is_false(v)]
                extra = extra or [n for n, v in values if not z3.is_true(v)]
            solver.pop()
            obligations.append(
                Obligation(
                    "preserve", action.name, _outcome(answer), (), time.perf_counter() - begin
                )
            )
        begin = time.perf_counter()
        solver.push()
        solver.add(z3.Not(encoder.term(system.property(prop).formula, 0)))
        answer = solver.check()
        solver.pop()
        obligations.append(
            Obligation("implies", None, _outcome(answer), (), time.perf_counter() - begin)
        )
    return obligations, extra


def k_induction(
    system: System,
    instance: Instance,
    prop: str,
    k: int,
    limits: Limits = Limits(),
) -> Obligation:
    """The k-induction step: ``k`` consecutive states satisfying ``prop``, linked by
    transitions, are followed by one that satisfies it too. Valid plus no counterexample of
    length < k (from :func:`bmc`) proves ``prop``."""
    if k < 1:
        raise InvalidArgumentError(f"k-induction needs k >= 1, got {k}")
    start = time.perf_counter()
    encoder = Encoder(system, instance)
    target = system.property(prop).formula
    with _solver(encoder, limits) as solver:
        for i in range(k):
            solver.add(encoder.term(target, i))
            solver.add(encoder.transition(i)[0])
        solver.add(z3.Not(encoder.term(target, k)))
        answer = solver.check()
    return Obligation("kstep", f"k={k}", _outcome(answer), (), time.perf_counter() - start)


# --------------------------------------------------------------------------------------------
# The z3 engine's verdicts on a family of instances
# --------------------------------------------------------------------------------------------


def verify(
    system: System,
    instance: Instance,
    props: Sequence[str],
    *,
    depth: int,
    candidates: Sequence[Invariant] = (),
    k_max: int = 0,
    limits: Limits = Limits(),
) -> dict[str, Result]:
    """The z3 verdict on each property of one instance. First Houdini prunes ``candidates``
    to an inductive invariant, re-checked obligation by obligation (init, every action, the
    implication): a property it implies is ``proved``. The others go to BMC up to ``depth``
    (shortest counterexample: ``violated``), then k-induction for k = 1..``k_max``; else
    ``bounded`` (or ``unknown`` when the solver gave up)."""
    return verify_family(
        system, [instance], props, depth=depth, candidates=candidates, k_max=k_max, limits=limits
    )[0]


def verify_family(
    system: System,
    instances: Sequence[Instance],
    props: Sequence[str],
    *,
    depth: int,
    candidates: Sequence[Invariant] = (),
    k_max: int = 0,
    limits: Limits = Limits(),
    vary: Sequence[str] = (),
) -> list[dict[str, Result]]:
    """:func:`verify` for instances that differ only in the rigid symbols ``vary`` (e.g. the
    fence order): every encoding is built once for the family, and BMC searches each
    instance only for the properties its invariant did not prove, with that invariant
    asserted on every step (see :func:`bmc_family`)."""
    out: list[dict[str, Result]] = [{} for _ in instances]
    proved: list[list[Invariant]] = [[] for _ in instances]
    if candidates and len(instances) == 1:
        # one instance: Houdini one action at a time, which scales with the instance (the
        # whole-relation query of Step grows with every action's guard at once)
        start = time.perf_counter()
        encoder = Encoder(system, instances[0])
        survivors, decided, base = houdini_actions(encoder, candidates, limits)
        if survivors and decided and base:
            proved[0] = survivors
            for p in props:
                implication = _implies(encoder, survivors, p, limits)
                if implication.outcome == "valid":
                    out[0][p] = Result(
                        p,
                        Verdict.PROVED,
                        None,
                        time.perf_counter() - start,
                        method="houdini",
                        invariant=tuple(x.name for x in survivors),
                        obligations=[*base, implication],
                    )
    elif candidates:
        start = time.perf_counter()
        step = Step(system, instances[0], limits, vary)
        pool = CtiPool()
        shared = time.perf_counter() - start
        for i, instance in enumerate(instances):
            begin = time.perf_counter()
            step.use(instance)
            concrete = ConcreteSystem(system, instance)
            survivors, decided = houdini_step(step, candidates, pool, concrete)
            if not (survivors and decided):
                continue
            # the obligations: init, and every action at once over the whole relation (the
            # query Houdini ended with; the per-action breakdown is check_inductive's, shown
            # for the parameterised proofs)
            base = [step.init(survivors), step.preserved(survivors)]
            if not all(o.outcome == "valid" for o in base):
                continue
            proved[i] = survivors
            for p in props:
                implication = step.implies(survivors, p)
                if implication.outcome == "valid":
                    out[i][p] = Result(
                        p,
                        Verdict.PROVED,
                        None,
                        shared + time.perf_counter() - begin,
                        method="houdini",
                        invariant=tuple(x.name for x in survivors),
                        obligations=[*base, implication],
                    )
    todo = [i for i, results in enumerate(out) if any(p not in results for p in props)]
    if not todo:
        return out
    found = bmc_family(
        system,
        [instances[i] for i in todo],
        props,
        depth,
        limits,
        vary=vary,
        props_of=[[p for p in props if p not in out[i]] for i in todo],
        invariants_of=[proved[i] for i in todo],
    )
    for i, results in zip(todo, found, strict=True):
        for p in props:
            if p in out[i]:
                continue
            r = results[p]
            out[i][p] = r
            if r.verdict is not Verdict.BOUNDED:
                continue
            for k in range(1, min(k_max, depth + 1) + 1):
                t = time.perf_counter()
                kstep = k_induction(system, instances[i], p, k, limits)
                r.seconds += time.perf_counter() - t
                if kstep.outcome == "valid":
                    out[i][p] = Result(
                        p,
                        Verdict.PROVED,
                        depth,
                        r.seconds,
                        method=f"{k}-induction",
                        obligations=[kstep],
                    )
                    break
    return out
