"""The CHC engine: a safety property as constrained Horn clauses, solved by z3's Spacer.

The third engine of the model, beside the z3 engine of :mod:`xvol.model.check` (bounded model
checking, Houdini, k-induction) and the explicit-state explorer of :mod:`xvol.model.explicit`.
It asks z3's Spacer (an IC3/PDR-style solver for constrained Horn clauses) whether some
reachable state of one finite instance violates one property, e.g. whether the seed's
consistency group can end with a volume still fenced. Spacer infers the inductive invariant
itself, from no candidates, so it does not share the z3 engine's weak point (a proof needs the
right candidate conjuncts). It answers ``unknown`` often and, rarely, wrongly, so nothing it
says is believed as it stands:

* *safe*: the invariant Spacer returns is re-checked with plain solvers, one
  :class:`~xvol.model.check.Obligation` per query (it holds initially, each action preserves
  it, it implies the property: :func:`recheck`), before the verdict is ``proved``; a failed
  re-check is an engine disagreement, reported as ``unknown`` (method :data:`REJECTED`), never
  as proved;
* *unsafe*: the derivation Spacer returns is a sequence of ground states; it is matched step by
  step to moves of the concrete interpreter and the run is replayed
  (:func:`xvol.model.trace.replay`) before the verdict is ``violated``; a derivation that does
  not replay is an engine disagreement, likewise;
* a timeout (:class:`~xvol.model.check.Limits`) or Spacer's own ``unknown`` is ``unknown``.

The clauses, over one relation ``Reach`` of the state::

    Init(s)                                   => Reach(s)
    Reach(s) & Typed(s) & T(s, s')            => Reach(s')
    Reach(s) & Typed(s) & !P(s)               => false

The encoding (:class:`Horn`) flattens the instance: every entry of every state function (e.g.
``status(DC1)``, ``data(o1, DC1)``) is a scalar of its own, Bool for ``Bool``, an unbounded
``Int`` for ``Int`` (as the concrete interpreter's Python ints) and the index of its value for
an enum or domain sort (``Typed`` bounds these indexes). Rigid symbols take the instance's
values and quantifiers are expanded. Action parameters are grounded: one *move* per action and
parameter tuple whose guard is not false, and ``T`` is the disjunction of the moves, each a
guard and the equations giving every post-state scalar. What was measured on the fence and
mirror models (n = 1, one object and one client slot; Spacer of z3-solver 5.4.1), against this
encoding: one clause per action is 2-15x slower, and times out at 8 s on cells this one decides
in about a second; bit-vector scalars (the z3 engine's finite encoding) are 3-5x slower, and
with z3's ``xform.bit_blast`` Spacer answered *safe* for properties BMC refutes; state
functions as array sorts are up to 12x slower; Boolean bits for enum and domain values are
1.6-3x slower on the fence cells (faster only on the two smallest refutations). So the
encoding is scalars with integer indexes and one transition clause. Spacer still times out on
properties whose invariants relate many scalars (the fence model's ``integrity``), which is why
the suites run it as a cross-check on a sample of cells only.

Uses z3 and the model core (:mod:`xvol.model.logic`), the concrete interpreter to replay
counterexamples (:mod:`xvol.model.concrete`, :mod:`xvol.model.trace`) and the records of
:mod:`xvol.model.check`; a translation of its own, sharing no code with
:mod:`xvol.model.symbolic`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import product
from typing import Any, Literal

import z3

from xvol.errors import InvalidArgumentError
from xvol.model.check import Limits, Obligation, Result, Verdict
from xvol.model.concrete import ConcreteSystem, State
from xvol.model.logic import (
    Apply,
    Expr,
    Instance,
    Lit,
    Op,
    Quant,
    Sort,
    Symbol,
    System,
    Value,
    Var,
    validate_once,
)
from xvol.model.trace import EngineDisagreement, replay

ENGINE = "chc"
PROVED = "spacer+recheck"  # method of a proof: Spacer's invariant, re-checked
VIOLATED = "spacer+replay"  # method of a refutation: Spacer's derivation, replayed
GAVE_UP = "spacer"  # method of an unknown: timeout or Spacer's own unknown
REJECTED = "spacer-rejected"  # method of an engine disagreement (a verdict not believed)
DEFAULT_LIMITS = Limits()


# --------------------------------------------------------------------------------------------
# The Horn encoding: one finite instance, flattened to scalars
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Move:
    """One grounded action: ``action`` with parameter values ``params`` is enabled where
    ``guard`` holds (a term over :attr:`Horn.pre`) and leads to the state whose scalars are
    ``post`` (terms over :attr:`Horn.pre`, one per slot)."""

    action: str
    params: tuple[tuple[str, Value], ...]
    guard: Any
    post: tuple[Any, ...]


class Horn:
    """One system on one finite instance, translated to z3 scalars for Horn clauses.

    Slots: the entries of the state symbols, in the order of ``system.state`` and, within a
    function symbol, of ``instance.entries`` (the layout of the concrete interpreter's
    states, flattened). ``pre[i]`` and ``post[i]`` are the scalars of slot ``i`` before and
    after a step. Life cycle: built once per (system, instance); afterwards only its memoised
    translations (formulas, moves, the transition relation) grow. It owns its z3 context, so
    its terms never mix with another engine's."""

    def __init__(self, system: System, instance: Instance) -> None:
        validate_once(system)
        self.system = system
        self.instance = instance
        self.ctx = z3.Context()
        self.slots: list[tuple[Symbol, tuple[Value, ...]]] = [
            (s, e) for s in system.state for e in instance.entries(s)
        ]
        self._slot = {entry: i for i, entry in enumerate(self.slots)}
        names = [_entry_name(s, e) for s, e in self.slots]
        self.pre = [self._scalar(n, s.sort) for n, (s, _) in zip(names, self.slots, strict=True)]
        self.post = [
            self._scalar(n + "'", s.sort) for n, (s, _) in zip(names, self.slots, strict=True)
        ]
        # slot of each scalar (by z3 id), for rendering invariants readably
        self._names = {c.get_id(): n for c, n in zip(self.pre, names, strict=True)}
        self._finite: dict[int, tuple[Value, ...]] = {
            c.get_id(): instance.values_of(s.sort)
            for c, (s, _) in zip(self.pre, self.slots, strict=True)
            if s.sort.kind in ("enum", "domain")
        }
        self._rigid = {
            r: {args: instance.rigid_value(r, args) for args in instance.entries(r)}
            for r in system.rigid
        }
        self._memo: dict[int, tuple[Expr, Any]] = {}
        self._moves: list[Move] | None = None
        self._transition: Any = None

    def _scalar(self, name: str, sort: Sort) -> Any:
        if sort.kind == "bool":
            return z3.Bool(name, self.ctx)
        return z3.Int(name, self.ctx)

    # ---- values -------------------------------------------------------------------------------

    def value(self, v: Value, sort: Sort) -> Any:
        """The z3 literal of a concrete value (an enum or domain value: its index)."""
        if sort.kind == "bool":
            return z3.BoolVal(bool(v), self.ctx)
        if sort.kind == "int":
            return z3.IntVal(int(v), self.ctx)
        values = self.instance.values_of(sort)
        if v not in values:
            raise InvalidArgumentError(f"{v!r} is not a value of {sort}")
        return z3.IntVal(values.index(v), self.ctx)

    def decode(self, term: Any, sort: Sort) -> Value | None:
        """The concrete value of a ground z3 value of ``sort``; ``None`` when ``term`` is not a
        value (a variable Spacer left free) or an index outside the sort."""
        if sort.kind == "bool":
            if z3.is_true(term) or z3.is_false(term):
                return bool(z3.is_true(term))
            return None
        if not z3.is_int_value(term):
            return None
        if sort.kind == "int":
            return int(term.as_long())
        values = self.instance.values_of(sort)
        index = int(term.as_long())
        return values[index] if 0 <= index < len(values) else None

    def typing(self) -> list[Any]:
        """Every enum or domain scalar of the pre-state holds the index of a value of its sort
        (the other states are no state of the instance)."""
        facts = []
        for c, (s, _) in zip(self.pre, self.slots, strict=True):
            if s.sort.kind in ("enum", "domain"):
                count = len(self.instance.values_of(s.sort))
                facts.append(z3.And(c >= 0, c < count))
        return facts

    def flatten(self, state: State) -> tuple[Value, ...]:
        """A concrete interpreter state as one value per slot."""
        out: list[Value] = []
        for s, v in zip(self.system.state, state, strict=True):
            out.extend(v if s.args else (v,))
        return tuple(out)

    # ---- expressions --------------------------------------------------------------------------

    def formula(self, e: Expr) -> Any:
        """The z3 term of the closed expression ``e`` over the pre-state (memoised)."""
        hit = self._memo.get(id(e))
        if hit is None or hit[0] is not e:
            hit = (e, self._term(e, {}))
            self._memo[id(e)] = hit
        return hit[1]

    def _term(self, e: Expr, env: Mapping[Var, Any]) -> Any:
        if isinstance(e, Lit):
            return self.value(e.value, e.sort)
        if isinstance(e, Var):
            try:
                return env[e]
            except KeyError:
                raise InvalidArgumentError(f"unbound variable {e.name}") from None
        if isinstance(e, Apply):
            return self._apply(e, [self._term(a, env) for a in e.args])
        if isinstance(e, Op):
            a = [self._term(x, env) for x in e.args]
            return _OPS[e.op](self.ctx, a)
        if isinstance(e, Quant):
            parts = []
            for choice in product(*(self.instance.values_of(v.sort) for v in e.vars)):
                inner = dict(env)
                inner.update(
                    (v, self.value(c, v.sort)) for v, c in zip(e.vars, choice, strict=True)
                )
                parts.append(self._term(e.body, inner))
            return _conj(self.ctx, parts, disjoin=e.kind == "exists")
        raise InvalidArgumentError(f"cannot translate {e!r}")

    def _apply(self, e: Apply, args: list[Any]) -> Any:
        """``symbol(args)``: a literal argument tuple reads its entry; any other selects
        among the entries by comparison."""
        symbol = e.symbol
        entries = self.instance.entries(symbol)

        def at(entry: tuple[Value, ...]) -> Any:
            if symbol in self._rigid:
                return self.value(self._rigid[symbol][entry], symbol.sort)
            return self.pre[self._slot[symbol, entry]]

        literal = [self.decode(a, s) for a, s in zip(args, symbol.args, strict=True)]
        if all(v is not None for v in literal):
            return at(tuple(v for v in literal if v is not None))
        result = at(entries[-1])
        for entry in reversed(entries[:-1]):
            match = [
                _same(self.ctx, a, self.value(k, s))
                for a, k, s in zip(args, entry, symbol.args, strict=True)
            ]
            result = z3.If(_conj(self.ctx, match), at(entry), result)
        return result

    # ---- system parts -------------------------------------------------------------------------

    def initial(self) -> Any:
        """The initial state: every slot equals its initial value."""
        by_symbol = {u.symbol: u for u in self.system.init}
        parts = []
        for c, (s, entry) in zip(self.pre, self.slots, strict=True):
            u = by_symbol[s]
            env = {v: self.value(x, srt) for v, x, srt in zip(u.vars, entry, s.args, strict=True)}
            parts.append(c == self._term(u.value, env))
        return z3.And(*parts) if parts else z3.BoolVal(True, self.ctx)

    def moves(self) -> list[Move]:
        """Every grounded action whose guard is not false (built once). Each action's guard
        and updated scalars are translated once, over one z3 constant per parameter; each
        parameter tuple is then substituted and simplified in z3's C code (an application to
        a parameter selects among the entries until the parameter is a literal)."""
        if self._moves is None:
            moves = []
            for action in self.system.actions:
                consts = {p: self._scalar(f"{action.name}.{p.name}", p.sort) for p in action.params}
                guard = self._term(action.guard, consts)
                updates = action.merged_updates()
                changed: dict[int, Any] = {}
                for i, (s, entry) in enumerate(self.slots):
                    u = updates.get(s)
                    if u is not None:
                        env = dict(consts)
                        env.update(
                            (v, self.value(x, srt))
                            for v, x, srt in zip(u.vars, entry, s.args, strict=True)
                        )
                        changed[i] = self._term(u.value, env)
                for choice in product(*(self.instance.values_of(p.sort) for p in action.params)):
                    pairs = [
                        (consts[p], self.value(c, p.sort))
                        for p, c in zip(action.params, choice, strict=True)
                    ]

                    def ground(term: Any, pairs: list[tuple[Any, Any]] = pairs) -> Any:
                        return z3.simplify(z3.substitute(term, *pairs) if pairs else term)

                    grounded = ground(guard)
                    if z3.is_false(grounded):
                        continue
                    post = tuple(
                        ground(changed[i]) if i in changed else c for i, c in enumerate(self.pre)
                    )
                    params = tuple((p.name, c) for p, c in zip(action.params, choice, strict=True))
                    moves.append(Move(action.name, params, grounded, post))
            self._moves = moves
        return self._moves

    def transition(self) -> Any:
        """``T(pre, post)``: some move leads from the pre-state to the post-state (built
        once)."""
        if self._transition is None:
            ctx = self.ctx
            kept = [_same(ctx, p, c) for p, c in zip(self.post, self.pre, strict=True)]
            cases = [
                _conj(
                    ctx,
                    [
                        m.guard,
                        *[
                            kept[i] if v is self.pre[i] else _same(ctx, self.post[i], v)
                            for i, v in enumerate(m.post)
                        ],
                    ],
                )
                for m in self.moves()
            ]
            self._transition = _conj(ctx, cases, disjoin=True)
        return self._transition

    def after(self, term: Any, move: Move) -> Any:
        """``term`` (over the pre-state) in the state ``move`` leads to."""
        return z3.substitute(term, *zip(self.pre, move.post, strict=True))

    # ---- reading invariants -------------------------------------------------------------------

    def conjuncts(self, invariant: Any) -> list[Any]:
        """The top-level conjuncts of ``invariant``."""
        if z3.is_and(invariant):
            return list(invariant.children())
        return [invariant]

    def show(self, t: Any) -> str:
        """``t`` as a person reads it: scalars by their entry (``status(DC1)``), comparisons of
        an enum or domain scalar with a number by the values they allow (``status(DC1) =
        fenced``, ``loc(o1) in {DC1, DC2}``)."""
        if z3.is_true(t):
            return "true"
        if z3.is_false(t):
            return "false"
        if z3.is_int_value(t):
            return str(t.as_long())
        if z3.is_const(t) and t.get_id() in self._names:
            return self._names[t.get_id()]
        allowed = self._allowed(t)
        if allowed is not None:
            return allowed
        kind = t.decl().kind()
        kids = t.children()
        if kind == z3.Z3_OP_NOT:
            inner = kids[0]
            flipped = _NEGATED.get(inner.decl().kind()) if z3.is_app(inner) else None
            if flipped is not None and inner.num_args() == 2:
                a, b = inner.children()
                return f"{self._wrap(a)} {flipped} {self._wrap(b)}"
            return "!" + self._wrap(inner)
        if kind == z3.Z3_OP_ADD:  # a + -1*b reads a - b
            text = self._wrap(kids[0])
            for k in kids[1:]:
                minus = z3.is_mul(k) and k.num_args() == 2 and _is_minus_one(k.arg(0))
                text += f" - {self._wrap(k.arg(1))}" if minus else f" + {self._wrap(k)}"
            return text
        if kind in _SHOW_INFIX:
            return f" {_SHOW_INFIX[kind]} ".join(self._wrap(k) for k in kids)
        if kind == z3.Z3_OP_ITE:
            return f"(if {self.show(kids[0])} then {self.show(kids[1])} else {self.show(kids[2])})"
        if kind == z3.Z3_OP_UMINUS:
            return "-" + self._wrap(kids[0])
        return str(t)

    def _wrap(self, t: Any) -> str:
        text = self.show(t)
        compound = t.num_args() > 1 and self._allowed(t) is None
        return f"({text})" if compound else text

    def _allowed(self, t: Any) -> str | None:
        """A comparison of one enum or domain scalar with a number (or its negation), as the
        values it allows; ``None`` for any other term."""
        negated = z3.is_not(t)
        core = t.children()[0] if negated else t
        kind = core.decl().kind() if z3.is_app(core) else None
        if kind not in _COMPARE or core.num_args() != 2:
            return None
        left, right = core.children()
        flip = False
        if z3.is_int_value(left) and z3.is_const(right):
            left, right, flip = right, left, True
        if not (z3.is_const(left) and z3.is_int_value(right)):
            return None
        values = self._finite.get(left.get_id())
        if values is None:
            return None
        k = int(right.as_long())
        test = _COMPARE[kind]
        if flip:  # the number on the left: ``k OP scalar``
            keep = [v for i, v in enumerate(values) if test(k, i)]
        else:
            keep = [v for i, v in enumerate(values) if test(i, k)]
        if negated:
            keep = [v for v in values if v not in keep]
        name = self._names[left.get_id()]
        if not keep:
            return "false"
        if len(keep) == len(values):
            return "true"
        if len(keep) == 1:
            return f"{name} = {keep[0]}"
        if len(keep) == len(values) - 1:
            return f"{name} != {next(v for v in values if v not in keep)}"
        return f"{name} in {{{', '.join(map(str, keep))}}}"


def _conj(ctx: Any, terms: Sequence[Any], *, disjoin: bool = False) -> Any:
    """``And(terms)`` (``Or`` with ``disjoin``) built by one call into z3's C API: the Python
    ``z3.And`` coerces every argument in Python, which dominates building the transition
    relation of a large instance. Every term must be Boolean (z3 checks it)."""
    if not terms:
        return z3.BoolVal(not disjoin, ctx)
    if len(terms) == 1:
        return terms[0]
    args = (z3.Ast * len(terms))(*(t.as_ast() for t in terms))
    make = z3.Z3_mk_or if disjoin else z3.Z3_mk_and
    return z3.BoolRef(make(ctx.ref(), len(terms), args), ctx)


def _same(ctx: Any, a: Any, b: Any) -> Any:
    """``a == b`` for two terms of one sort, by one call into z3's C API."""
    return z3.BoolRef(z3.Z3_mk_eq(ctx.ref(), a.as_ast(), b.as_ast()), ctx)


def _is_minus_one(t: Any) -> bool:
    return bool(z3.is_int_value(t) and t.as_long() == -1)


def _entry_name(symbol: Symbol, entry: tuple[Value, ...]) -> str:
    return f"{symbol.name}({', '.join(map(str, entry))})" if entry else symbol.name


_OPS: dict[str, Any] = {
    "not": lambda ctx, a: z3.Not(a[0]),
    "and": lambda ctx, a: _conj(ctx, a),
    "or": lambda ctx, a: _conj(ctx, a, disjoin=True),
    "implies": lambda ctx, a: z3.Implies(a[0], a[1]),
    "eq": lambda ctx, a: _same(ctx, a[0], a[1]),
    "ite": lambda ctx, a: z3.If(a[0], a[1], a[2]),
    "add": lambda ctx, a: a[0] + a[1],
    "sub": lambda ctx, a: a[0] - a[1],
    "lt": lambda ctx, a: a[0] < a[1],
    "le": lambda ctx, a: a[0] <= a[1],
}

_SHOW_INFIX = {
    z3.Z3_OP_AND: "&",
    z3.Z3_OP_OR: "|",
    z3.Z3_OP_IMPLIES: "->",
    z3.Z3_OP_EQ: "=",
    z3.Z3_OP_DISTINCT: "!=",
    z3.Z3_OP_LE: "<=",
    z3.Z3_OP_LT: "<",
    z3.Z3_OP_GE: ">=",
    z3.Z3_OP_GT: ">",
    z3.Z3_OP_ADD: "+",
    z3.Z3_OP_SUB: "-",
    z3.Z3_OP_MUL: "*",
}

_NEGATED = {
    z3.Z3_OP_LE: ">",
    z3.Z3_OP_LT: ">=",
    z3.Z3_OP_GE: "<",
    z3.Z3_OP_GT: "<=",
    z3.Z3_OP_EQ: "!=",
}

_COMPARE: dict[int, Any] = {
    z3.Z3_OP_EQ: lambda a, b: a == b,
    z3.Z3_OP_DISTINCT: lambda a, b: a != b,
    z3.Z3_OP_LE: lambda a, b: a <= b,
    z3.Z3_OP_LT: lambda a, b: a < b,
    z3.Z3_OP_GE: lambda a, b: a >= b,
    z3.Z3_OP_GT: lambda a, b: a > b,
}


# --------------------------------------------------------------------------------------------
# Spacer
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """What Spacer said about one property, before anything is believed.

    ``safe``: ``invariant`` is a z3 formula over :attr:`Horn.pre` (the interpretation of
    ``Reach`` Spacer returned). ``unsafe``: ``states`` is its derivation, the initial state
    first, one value per slot (``None`` where Spacer left a scalar free). ``unknown``:
    ``reason`` says why (``canceled`` is the timeout). ``levels``: the frames Spacer built."""

    status: Literal["safe", "unsafe", "unknown"]
    seconds: float
    invariant: Any = None
    states: tuple[tuple[Value | None, ...], ...] = ()
    reason: str = ""
    levels: int | None = None


def solve(horn: Horn, prop: str, limits: Limits = DEFAULT_LIMITS) -> Answer:
    """Pose the three clauses for ``prop`` to Spacer (time-limited, seeded) and read back its
    invariant or its derivation."""
    property_term = horn.formula(horn.system.property(prop).formula)
    start = time.perf_counter()
    ctx = horn.ctx
    fp = z3.Fixedpoint(ctx=ctx)
    fp.set("engine", "spacer")
    fp.set("timeout", limits.timeout_ms)
    fp.set("spacer.random_seed", limits.seed)
    reach = z3.Function("Reach", *[c.sort() for c in horn.pre], z3.BoolSort(ctx))
    fp.register_relation(reach)
    fp.declare_var(*horn.pre, *horn.post)
    typing = horn.typing()
    fp.rule(reach(*horn.pre), [horn.initial()], "init")
    fp.rule(reach(*horn.post), [reach(*horn.pre), *typing, horn.transition()], "step")

    def levels() -> int | None:
        try:
            return int(fp.get_num_levels(reach))
        except z3.Z3Exception:
            return None

    try:
        answer = fp.query(z3.And(reach(*horn.pre), *typing, z3.Not(property_term)))
    except z3.Z3Exception as exc:  # the timeout cancels the query
        reason = exc.value.decode() if isinstance(exc.value, bytes) else str(exc.value)
        return Answer("unknown", time.perf_counter() - start, reason=reason, levels=levels())
    seconds = time.perf_counter() - start
    if answer == z3.unsat:
        cover = fp.get_cover_delta(-1, reach)
        invariant = z3.substitute_vars(cover, *horn.pre)
        return Answer("safe", seconds, invariant=invariant, levels=levels())
    if answer == z3.sat:
        facts = _derivation(fp.get_answer(), reach.name())
        states = tuple(
            tuple(horn.decode(fact.arg(i), s.sort) for i, (s, _) in enumerate(horn.slots))
            for fact in facts
        )
        return Answer("unsafe", seconds, states=states, levels=levels())
    return Answer("unknown", seconds, reason=fp.reason_unknown(), levels=levels())


def _derivation(proof: Any, relation: str) -> list[Any]:
    """The ground ``relation`` facts of a Spacer refutation (a chain of hyper-resolutions,
    the last state on top), initial state first."""
    facts: list[Any] = []
    stack = [proof]
    while stack:
        node = stack.pop()
        if not z3.is_app(node) or node.decl().name() not in ("hyper-res", "mp"):
            continue
        conclusion = node.arg(node.num_args() - 1)
        if z3.is_app(conclusion) and conclusion.decl().name() == relation:
            facts.append(conclusion)
        stack.extend(node.arg(i) for i in range(node.num_args() - 1))
    facts.reverse()
    return facts


# --------------------------------------------------------------------------------------------
# Believing it: the invariant re-checked, the derivation replayed
# --------------------------------------------------------------------------------------------


def recheck(
    horn: Horn, prop: str, invariant: Any, limits: Limits = DEFAULT_LIMITS
) -> list[Obligation]:
    """Every obligation of ``invariant`` (a z3 formula over :attr:`Horn.pre`) for ``prop``,
    each one plain-solver query: it holds in the initial state (``init``), each action
    preserves it (``preserve``, one query per action over all its parameter values), it
    implies the property (``implies``). ``failing`` names the conjuncts the solver's
    counterexample falsifies."""
    conjuncts = horn.conjuncts(invariant)
    typing = horn.typing()
    named = [(f"#{i + 1} {_clip(horn.show(c))}", c) for i, c in enumerate(conjuncts)]
    obligations = []

    start = time.perf_counter()
    answer, model = _query(horn, limits, horn.initial(), z3.Not(invariant))
    failing: tuple[str, ...] = _false(model, named)
    obligations.append(Obligation("init", None, _outcome(answer), failing, _since(start)))

    # one solver for the actions, the invariant asserted once, each action in a scope
    solver = _solver(horn, limits)
    solver.add(invariant, *typing)
    for action in horn.system.actions:
        start = time.perf_counter()
        moves = [m for m in horn.moves() if m.action == action.name]
        broken = [z3.And(m.guard, z3.Not(horn.after(invariant, m))) for m in moves]
        solver.push()
        solver.add(z3.Or(*broken) if broken else z3.BoolVal(False, horn.ctx))
        answer = solver.check()
        failing = ()
        if answer == z3.sat:
            model = solver.model()
            taken = [m for m in moves if z3.is_true(model.eval(m.guard, True))]
            failing = tuple(
                name
                for name, c in named
                if any(not z3.is_true(model.eval(horn.after(c, m), True)) for m in taken)
            )
        solver.pop()
        obligations.append(
            Obligation("preserve", action.name, _outcome(answer), failing, _since(start))
        )

    start = time.perf_counter()
    goal = horn.formula(horn.system.property(prop).formula)
    answer, _ = _query(horn, limits, invariant, *typing, z3.Not(goal))
    obligations.append(Obligation("implies", None, _outcome(answer), (), _since(start)))
    return obligations


def _solver(horn: Horn, limits: Limits) -> Any:
    """A fresh plain (non-Horn) solver, seeded and time-limited."""
    solver = z3.Solver(ctx=horn.ctx)
    solver.set("timeout", limits.timeout_ms)
    solver.set("random_seed", limits.seed)
    return solver


def _query(horn: Horn, limits: Limits, *facts: Any) -> tuple[Any, Any]:
    """A fresh plain solver on ``facts``: its answer, and its model when satisfiable."""
    solver = _solver(horn, limits)
    solver.add(*facts)
    answer = solver.check()
    return answer, solver.model() if answer == z3.sat else None


def _false(model: Any, named: list[tuple[str, Any]]) -> tuple[str, ...]:
    if model is None:
        return ()
    return tuple(name for name, c in named if not z3.is_true(model.eval(c, True)))


def _outcome(answer: Any) -> str:
    if answer == z3.unsat:
        return "valid"
    if answer == z3.sat:
        return "fails"
    return "unknown"


def _since(start: float) -> float:
    return time.perf_counter() - start


def _clip(text: str, width: int = 160) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def run_of(
    horn: Horn,
    concrete: ConcreteSystem,
    prop: str,
    states: Sequence[tuple[Value | None, ...]],
) -> list[tuple[str, dict[str, Value]]] | None:
    """A concrete run through Spacer's derivation: from the initial state, at each step a move
    of the concrete interpreter to a state that agrees with the next derived state on every
    scalar Spacer fixed, ending in a state that violates ``prop`` (depth-first over the
    matching moves). ``None`` if there is none: the derivation does not replay."""
    if not states:
        return None

    def agrees(state: State, derived: tuple[Value | None, ...]) -> bool:
        return all(d is None or d == v for d, v in zip(derived, horn.flatten(state), strict=True))

    def search(i: int, state: State) -> list[tuple[str, dict[str, Value]]] | None:
        if i == len(states) - 1:
            return None if concrete.holds(state, prop) else []
        for compiled, env, following in concrete.moves(state):
            if agrees(following, states[i + 1]):
                rest = search(i + 1, following)
                if rest is not None:
                    return [(compiled.action.name, dict(compiled.params_of(env))), *rest]
        return None

    initial = concrete.initial()
    return search(0, initial) if agrees(initial, states[0]) else None


def conclude(
    horn: Horn,
    concrete: ConcreteSystem,
    prop: str,
    answer: Answer,
    limits: Limits = DEFAULT_LIMITS,
) -> Result:
    """The verdict on ``prop`` from Spacer's ``answer``, believed only once checked: a safe
    answer's invariant re-checked (:func:`recheck`), an unsafe answer's derivation replayed
    (:func:`run_of`, :func:`xvol.model.trace.replay`). A check that fails is an engine
    disagreement: ``unknown`` with method :data:`REJECTED` and a detail that says what failed."""
    if answer.status == "unknown":
        level = f" after {answer.levels} levels" if answer.levels is not None else ""
        return Result(
            prop,
            Verdict.UNKNOWN,
            None,
            answer.seconds,
            engine=ENGINE,
            method=GAVE_UP,
            detail=f"Spacer gave up ({answer.reason or 'unknown'}{level}, "
            f"timeout {limits.timeout_ms} ms)",
        )
    if answer.status == "safe":
        start = time.perf_counter()
        obligations = recheck(horn, prop, answer.invariant, limits)
        seconds = answer.seconds + _since(start)
        shown = tuple(horn.show(c) for c in horn.conjuncts(answer.invariant))
        bad = [o for o in obligations if o.outcome != "valid"]
        if bad:
            why = "Spacer's invariant fails the plain-solver re-check: "
            why += "; ".join(o.describe(prop) for o in bad)
            return _disagreement(prop, seconds, why, invariant=shown, obligations=obligations)
        return Result(
            prop,
            Verdict.PROVED,
            None,
            seconds,
            engine=ENGINE,
            method=PROVED,
            invariant=shown,
            obligations=obligations,
            detail=f"Spacer's invariant ({len(shown)} conjuncts, {answer.levels} levels, "
            f"{answer.seconds:.2f}s) re-checked by {len(obligations)} plain-solver queries "
            f"in {seconds - answer.seconds:.2f}s",
        )
    run = run_of(horn, concrete, prop, answer.states)
    steps = len(answer.states) - 1
    if run is None:
        return _disagreement(
            prop,
            answer.seconds,
            f"Spacer's derivation of {steps} steps does not replay on the concrete interpreter",
        )
    try:
        cex = replay(concrete, prop, run, engine="chc (Spacer)")
    except EngineDisagreement as exc:
        return _disagreement(prop, answer.seconds, str(exc))
    return Result(
        prop,
        Verdict.VIOLATED,
        len(run),
        answer.seconds,
        engine=ENGINE,
        method=VIOLATED,
        counterexample=cex,
        detail=f"Spacer's derivation ({len(run)} steps) matched to concrete moves and "
        "replayed on the concrete interpreter",
    )


def _disagreement(
    prop: str,
    seconds: float,
    why: str,
    *,
    invariant: tuple[str, ...] = (),
    obligations: Sequence[Obligation] = (),
) -> Result:
    """An answer of Spacer's that failed its check: ``unknown``, never believed."""
    return Result(
        prop,
        Verdict.UNKNOWN,
        None,
        seconds,
        engine=ENGINE,
        method=REJECTED,
        invariant=invariant,
        obligations=list(obligations),
        detail=f"engine disagreement: {why}",
    )


# --------------------------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------------------------


def prove(system: System, instance: Instance, prop: str, limits: Limits = DEFAULT_LIMITS) -> Result:
    """The CHC engine's verdict on ``prop`` of ``system`` on the finite ``instance``:
    ``proved`` (Spacer's invariant, re-checked), ``violated`` (its derivation, replayed) or
    ``unknown`` (timeout, incompleteness, or an answer that failed its check)."""
    return prove_all(system, instance, [prop], limits)[prop]


def prove_all(
    system: System, instance: Instance, props: Sequence[str], limits: Limits = DEFAULT_LIMITS
) -> dict[str, Result]:
    """:func:`prove` for several properties of one instance, sharing the encoding (one Spacer
    query per property; each result's ``seconds`` are its own query and checks)."""
    for p in props:
        system.property(p)  # raises on an unknown name
    concrete = ConcreteSystem(system, instance)  # raises unless the instance fits the axioms
    horn = Horn(system, instance)
    out = {}
    for p in props:
        start = time.perf_counter()
        result = conclude(horn, concrete, p, solve(horn, p, limits), limits)
        result.seconds = _since(start)
        out[p] = result
    return out
