"""The z3 engine: bounded model checking, inductive invariants, Houdini, k-induction.

Each function here is one kind of proof obligation, posed on a fresh solver of its own (no
global solver, no global options): every query has a fixed random seed and a timeout, and an
``unknown`` answer is carried up as the verdict ``unknown``, never read as "safe" nor raised as
a crash. Uses z3, :mod:`xvol.model.symbolic` (the z3 meaning of a system) and, to replay every
counterexample before it is believed, :mod:`xvol.model.concrete` via :mod:`xvol.model.trace`.

Verdicts (:class:`Verdict`):

* ``proved``: an inductive invariant (or a k-induction step) was checked, with every
  obligation shown in :attr:`Result.obligations`: the invariant holds initially, every action
  preserves it (one query per action), and it implies the property;
* ``violated``: a counterexample of minimal length (iterative deepening), replayed concretely;
* ``bounded``: no violation up to ``depth`` steps, but no proof;
* ``unknown``: the solver gave up (timeout or incompleteness) before either.
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
from xvol.model.logic import Action, Instance, Invariant, System, Value, and_
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
) -> list[dict[str, Result]]:
    """:func:`bmc` for several instances that differ only in the rigid symbols ``vary``: the
    unrolling (with stutter steps, so that deadlocking runs fit) is encoded once, one step at a
    time as the deepest instance needs it (a step is never encoded before some query needs it),
    on one incremental solver; each instance's values are asserted in a solver scope of their
    own."""
    for p in props:
        system.property(p)
    start = time.perf_counter()
    encoder = Encoder(system, instances[0], vary=vary)
    steps: list[tuple[Any, list[dict[Any, Any]]]] = []
    negated: dict[tuple[str, int], Any] = {}
    with _solver(encoder, limits) as solver:
        solver.add(encoder.init(0))
        shared = time.perf_counter() - start
        out = []
        for instance in instances:
            begin = time.perf_counter()
            concrete = ConcreteSystem(system, instance)
            facts = encoder.rigid_facts(instance)
            solver.push()
            solver.add(*facts)
            results: dict[str, Result] = {}
            unfinished = list(props)
            for depth in range(max_depth + 1):
                if depth > len(steps):
                    # unroll lazily, one step at a time, at the outermost scope (shared by
                    # the later instances): the instance's scope is closed and reopened
                    solver.pop()
                    formula, selector, params = encoder.transition(depth - 1, stutter=True)
                    solver.add(formula)
                    steps.append((selector, params))
                    solver.push()
                    solver.add(*facts)
                for p in props:
                    if (p, depth) not in negated:
                        negated[p, depth] = z3.Not(encoder.term(system.property(p).formula, depth))
                while unfinished:
                    # one query for all open properties; a model refutes some of them, and
                    # is a shortest counterexample for each (none failed at lower depths)
                    solver.push()
                    solver.add(z3.Or(*[negated[p, depth] for p in unfinished]))
                    answer = solver.check()
                    elapsed = shared + time.perf_counter() - begin
                    if answer == z3.sat:
                        model = solver.model()
                        run = _decode_run(encoder, model, steps[:depth])
                        hit = [
                            p for p in unfinished if z3.is_true(model.eval(negated[p, depth], True))
                        ]
                        for p in hit:
                            cex = replay(concrete, p, run, engine="z3")
                            results[p] = Result(
                                p,
                                Verdict.VIOLATED,
                                depth,
                                elapsed,
                                method="bmc",
                                counterexample=cex,
                            )
                            unfinished.remove(p)
                    elif answer != z3.unsat:
                        for p in unfinished:
                            results[p] = Result(
                                p,
                                Verdict.UNKNOWN,
                                depth - 1,
                                elapsed,
                                method="bmc",
                                detail=f"solver: {solver.reason_unknown()} at depth {depth}",
                            )
                        unfinished = []
                    solver.pop()
                    if answer != z3.sat:
                        break
                if not unfinished:
                    break
            solver.pop()
            for p in unfinished:
                results[p] = Result(
                    p,
                    Verdict.BOUNDED,
                    max_depth,
                    shared + time.perf_counter() - begin,
                    method="bmc",
                    detail=f"no violation in {max_depth} steps",
                )
            out.append(results)
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
    copy 1, and a per-action query fixes the selector. :meth:`use` selects the instance of
    the family whose varying rigid values hold in the following queries."""

    def __init__(
        self, system: System, instance: Instance, limits: Limits, vary: Sequence[str] = ()
    ) -> None:
        self.system = system
        self.encoder = Encoder(system, instance, vary=vary)
        self.limits = limits
        formula, self.selector, _ = self.encoder.transition(0)
        self.width = self.selector.size()
        self.facts: list[Any] = self.encoder.rigid_facts(instance)
        self._solver_cm = _solver(self.encoder, limits)
        self.solver = self._solver_cm.__enter__()
        self.solver.add(formula)
        self.solver.push()
        self.solver.add(*self.facts)

    def use(self, instance: Instance) -> None:
        self.facts = self.encoder.rigid_facts(instance)
        self.solver.pop()
        self.solver.push()
        self.solver.add(*self.facts)

    def init(self, invariant: Sequence[Invariant]) -> Obligation:
        start = time.perf_counter()
        with _solver(self.encoder, self.limits) as solver:
            solver.add(*self.facts, self.encoder.init(0))
            terms = [(i.name, self.encoder.term(i.formula, 0)) for i in invariant]
            solver.push()
            solver.add(z3.Not(z3.And(*[t for _, t in terms])))
            answer = solver.check()
            failing = _false_in(solver, answer, terms, exact=True)
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
        solver.push()
        solver.add(z3.Not(z3.And(*[t for _, t in terms])))
        answer = solver.check()
        failing = _false_in(solver, answer, terms, exact=True)
        solver.pop()
        solver.pop()
        name = self.system.actions[k].name if k is not None else None
        return Obligation("preserve", name, _outcome(answer), failing, time.perf_counter() - start)

    def all_actions(self, invariant: Sequence[Invariant]) -> list[Obligation]:
        return [self.action(k, invariant) for k in range(len(self.system.actions))]

    def proves(self, invariant: Sequence[Invariant], prop: str) -> bool:
        """Whether ``invariant`` holds initially, is preserved and implies ``prop``."""
        return all(
            o.outcome == "valid"
            for o in (
                self.init(invariant),
                self.action(None, invariant),
                self.implies(invariant, prop),
            )
        )

    def implies(self, invariant: Sequence[Invariant], prop: str) -> Obligation:
        start = time.perf_counter()
        with _solver(self.encoder, self.limits) as solver:
            solver.add(*self.facts)
            solver.add(*[self.encoder.term(i.formula, 0) for i in invariant])
            solver.add(z3.Not(self.encoder.term(self.system.property(prop).formula, 0)))
            answer = solver.check()
        return Obligation("implies", None, _outcome(answer), (), time.perf_counter() - start)


def check_inductive(
    system: System,
    instance: Instance | None,
    invariant: Sequence[Invariant],
    limits: Limits = Limits(),
) -> list[Obligation]:
    """Check that the conjunction of ``invariant`` is inductive: one obligation for the
    initial states and one per action, each naming the conjuncts that fail.
    ``instance=None`` checks it for every instance at once (parametric mode)."""
    if instance is not None:
        step = Step(system, instance, limits)
        return [step.init(invariant), *step.all_actions(invariant)]
    encoder = _encoder(system, instance)
    obligations = [_check_init(encoder, invariant, limits)]
    obligations.extend(_check_action(encoder, a, invariant, limits) for a in system.actions)
    return obligations


def check_implies(
    system: System,
    instance: Instance | None,
    invariant: Sequence[Invariant],
    prop: str,
    limits: Limits = Limits(),
) -> Obligation:
    """Check that the conjunction of ``invariant`` implies the property ``prop``."""
    encoder = _encoder(system, instance)
    start = time.perf_counter()
    whole = and_(*(i.formula for i in invariant))
    with _solver(encoder, limits) as solver:
        solver.add(encoder.term(whole, 0), z3.Not(encoder.term(system.property(prop).formula, 0)))
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
    # encoding (every term is the memoised one the per-obligation checks used).
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


def _check_action(
    encoder: Encoder, action: Action, invariant: Sequence[Invariant], limits: Limits
) -> Obligation:
    start = time.perf_counter()
    with _solver(encoder, limits) as solver:
        solver.add(*[encoder.term(i.formula, 0) for i in invariant])
        solver.add(encoder.step_of(action, 0))
        terms = [(i.name, encoder.term(i.formula, 1)) for i in invariant]
        solver.push()
        solver.add(z3.Not(z3.And(*[t for _, t in terms])))
        answer = solver.check()
        failing = _false_in(solver, answer, terms, exact=encoder.finite)
    return Obligation(
        "preserve", action.name, _outcome(answer), failing, time.perf_counter() - start
    )


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
    if exact:
        model = solver.model()
        return tuple(name for name, t in terms if not z3.is_true(model.eval(t, True)))
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
    (``False`` when some query was unknown: the survivors are then not trustworthy)."""
    if instance is not None:
        return houdini_step(Step(system, instance, limits), candidates)
    encoder = _encoder(system, None)
    current = list(candidates)
    first = _check_init(encoder, current, limits)
    if first.outcome == "unknown":
        return current, False
    current = [i for i in current if i.name not in first.failing]
    changed = True
    while changed and current:
        changed = False
        for action in system.actions:
            ob = _check_action(encoder, action, current, limits)
            if ob.outcome == "unknown":
                return current, False
            if ob.outcome == "fails":
                current = [i for i in current if i.name not in ob.failing]
                changed = True
    return current, True


def houdini_step(step: Step, candidates: Sequence[Invariant]) -> tuple[list[Invariant], bool]:
    current = list(candidates)
    first = step.init(current)
    if first.outcome == "unknown":
        return current, False
    current = [i for i in current if i.name not in first.failing]
    while current:
        ob = step.action(None, current)
        if ob.outcome == "unknown":
            return current, False
        if ob.outcome == "valid":
            break
        current = [i for i in current if i.name not in ob.failing]
    return current, True


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
    fence order): every encoding is built once for the family."""
    out: list[dict[str, Result]] = [{} for _ in instances]
    if candidates:
        start = time.perf_counter()
        step = Step(system, instances[0], limits, vary)
        shared = time.perf_counter() - start
        for results, instance in zip(out, instances, strict=True):
            begin = time.perf_counter()
            step.use(instance)
            survivors, decided = houdini_step(step, candidates)
            if not (survivors and decided):
                continue
            # the re-check: init, and every action at once over the whole relation (the
            # per-action breakdown is check_inductive's, shown for the parameterised proofs)
            base = [step.init(survivors), step.action(None, survivors)]
            if not all(o.outcome == "valid" for o in base):
                continue
            for p in props:
                implication = step.implies(survivors, p)
                if implication.outcome == "valid":
                    results[p] = Result(
                        p,
                        Verdict.PROVED,
                        None,
                        shared + time.perf_counter() - begin,
                        method="houdini",
                        invariant=tuple(i.name for i in survivors),
                        obligations=[*base, implication],
                    )
    rest = sorted({p for results in out for p in props if p not in results}, key=props.index)
    todo = [i for i, results in enumerate(out) if any(p not in results for p in props)]
    if not rest or not todo:
        return out
    found = bmc_family(system, [instances[i] for i in todo], rest, depth, limits, vary=vary)
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
