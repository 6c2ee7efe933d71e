"""The z3 interpretation of a system: one copy of the state vocabulary per step.

This is the symbolic meaning of a :class:`~xvol.model.logic.System`, used by the z3 engine
(:mod:`xvol.model.check`); it shares no code with the concrete interpreter. Every state symbol
``f`` gets one z3 function ``f@i`` per step ``i``; an action relates copy ``i`` to copy ``i+1``
(guard, updates, and the frame: every symbol the action does not update keeps its value).
Uses z3 and :mod:`xvol.model.logic`; each :class:`Encoder` owns a private ``z3.Context``, so
runs never share solver state.

Two modes:

* **finite** (an :class:`~xvol.model.logic.Instance` is given): a pure bit-level encoding that
  z3 bit-blasts to SAT. Every value of an enum or domain sort is a bit-vector index (fresh
  variables are range-constrained), ``Int`` is a ``INT_BITS``-bit two's-complement bit-vector
  (the explicit engine uses unbounded Python ints: a system whose integers leave that range is
  rejected by the two engines' agreement check, never silently believed), every entry of every
  state function at every step is its own constant (no uninterpreted functions: an application
  to a non-literal argument selects among the entries), quantifiers are expanded, and rigid
  symbols take the instance's values. Queries are quantifier-free.
* **parametric** (no instance): domain sorts are uninterpreted z3 sorts of unknown size,
  quantifiers stay quantifiers, rigid symbols are uninterpreted and constrained only by
  ``System.axioms``. A proof in this mode holds for every size of every domain sort at once.

Besides the copies, an action's post-state can be read without a copy of its own:
:meth:`Encoder.after` is the weakest precondition of a formula under an action (every
updated symbol replaced by its update), which is what the per-action induction queries use.
Terms are built once and renamed or substituted in z3's C code where that gives the same
term (a closed term on another copy, a formula after an action), because building terms in
Python, not solving, is what large instances cost.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import product
from typing import Any

import z3

from xvol.errors import InvalidArgumentError
from xvol.model.logic import (
    Action,
    Apply,
    Expr,
    Instance,
    Lit,
    Op,
    Quant,
    Sort,
    Symbol,
    System,
    Update,
    Value,
    Var,
    validate_once,
)

INT_BITS = 16
"""Width of ``Int`` in finite mode (two's complement)."""

Env = Mapping[Var, Any]  # bound variable -> z3 term
Copy = Mapping[Symbol, Any]  # one step's vocabulary: z3 function, or entry -> z3 constant


class Encoder:
    """Translates one system to z3, in finite mode (``instance`` given) or parametric mode.

    Life cycle: one encoder per query family; it owns its z3 context, so terms of different
    encoders never mix."""

    def __init__(
        self, system: System, instance: Instance | None = None, *, vary: Sequence[str] = ()
    ) -> None:
        """``vary`` (finite mode) names rigid symbols whose values are NOT built into the
        terms: each of their entries is a constant, fixed per query by :meth:`rigid_facts`, so
        one encoding serves a family of instances that differ only in those symbols."""
        validate_once(system)
        self.system = system
        self.instance = instance
        self.ctx = z3.Context()
        self._sorts: dict[Sort, Any] = {}
        self._index: dict[Sort, dict[Value, int]] = {}
        self._steps: dict[int, dict[Symbol, Any]] = {}
        self._rigid: dict[Symbol, Any] = {}
        self._fresh = 0
        self._memo: dict[tuple[int, int], tuple[Expr, Any]] = {}
        self._first: dict[int, tuple[Expr, int, Any]] = {}  # see term
        self.ranges: list[Any] = []  # range constraints of fresh finite-mode variables
        self._actions: dict[tuple[str, int], tuple[Action, Any]] = {}  # see step_of
        self._inits: dict[int, Any] = {}  # see init
        self._kept: dict[tuple[str, int, int], Any] = {}  # see _same
        self._after: dict[tuple[int, str], tuple[Expr, Action, Any]] = {}  # see after
        self._moved: dict[str, tuple[Action, Any, dict[Var, Any]]] = {}  # see moved
        self._posts: dict[str, tuple[Action, list[tuple[Any, Any]]]] = {}  # see after
        self._funs: dict[str, tuple[Action, list[tuple[Any, Any]] | None]] = {}  # see after
        self._selected: dict[tuple[int, ...], tuple[Any, list[Any], Any]] = {}  # see _select
        self._value_memo: dict[tuple[Sort, Value], Any] = {}  # see value
        self._renamings: dict[tuple[int, int], list[tuple[Any, Any]]] = {}  # see term
        # finite mode: the transition relation per stutter flag, built once (see transition)
        self._templates: dict[bool, tuple[int, Any, Any, list[dict[Var, Any]]]] = {}
        for r in system.rigid:
            if instance is None:
                domain = [self.sort(x) for x in r.args]
                self._rigid[r] = z3.Function(r.name, *domain, self.sort(r.sort))
            elif r.name in vary:
                self._rigid[r] = {
                    args: z3.Const(f"{r.name}[{','.join(map(str, args))}]", self.sort(r.sort))
                    for args in instance.entries(r)
                }
            else:
                self._rigid[r] = {
                    args: self.value(instance.rigid_value(r, args), r.sort)
                    for args in instance.entries(r)
                }
        self.vary = tuple(vary)
        # varying rigid constants: z3 id -> (symbol, argument tuple); and the comparisons
        # between them, each a Boolean constant of its own (see _compare)
        self._varying: dict[int, tuple[Symbol, tuple[Value, ...]]] = {}
        for r in system.rigid:
            if instance is not None and r.name in vary:
                for args, const in self._rigid[r].items():
                    self._varying[const.get_id()] = (r, args)
        self._comparisons: dict[tuple[str, int, int], Any] = {}
        unknown = set(vary) - {r.name for r in system.rigid}
        if unknown:
            raise InvalidArgumentError(f"vary names unknown rigid symbols {sorted(unknown)}")

    @property
    def finite(self) -> bool:
        return self.instance is not None

    def solver(self) -> Query:
        """A fresh solver suited to the mode (bit-blasting in finite mode) that asserts every
        range constraint recorded so far before each check."""
        if self.finite:
            return Query(self, z3.SolverFor("QF_BV", ctx=self.ctx))
        return Query(self, z3.Solver(ctx=self.ctx))

    # ---- sorts and values -------------------------------------------------------------------

    def _values(self, sort: Sort) -> tuple[Value, ...]:
        if sort.kind == "enum":
            return sort.values
        assert self.instance is not None
        return self.instance.values_of(sort)

    def sort(self, sort: Sort) -> Any:
        """The z3 sort of ``sort`` (created once per encoder)."""
        if sort in self._sorts:
            return self._sorts[sort]
        if sort.kind == "bool":
            z = z3.BoolSort(self.ctx)
        elif sort.kind == "int":
            z = z3.BitVecSort(INT_BITS, self.ctx) if self.finite else z3.IntSort(self.ctx)
        elif self.finite:
            values = self._values(sort)
            self._index[sort] = {v: i for i, v in enumerate(values)}
            z = z3.BitVecSort(max(1, (len(values) - 1).bit_length()), self.ctx)
        elif sort.kind == "enum":
            z, _ = z3.EnumSort(sort.name, [f"{sort.name}!{v}" for v in sort.values], ctx=self.ctx)
            self._index[sort] = {v: i for i, v in enumerate(sort.values)}
        else:
            z = z3.DeclareSort(sort.name, self.ctx)
        self._sorts[sort] = z
        return z

    def value(self, v: Value, sort: Sort) -> Any:
        """The z3 term of a concrete value of ``sort`` (made once per encoder)."""
        key = (sort, v)
        hit = self._value_memo.get(key)
        if hit is None:
            hit = self._value(v, sort)
            self._value_memo[key] = hit
        return hit

    def _value(self, v: Value, sort: Sort) -> Any:
        if sort.kind == "bool":
            return z3.BoolVal(bool(v), self.ctx)
        if sort.kind == "int":
            if self.finite:
                if not -(2 ** (INT_BITS - 1)) <= int(v) < 2 ** (INT_BITS - 1):
                    raise InvalidArgumentError(f"integer {v} exceeds {INT_BITS} bits")
                return z3.BitVecVal(int(v), INT_BITS, self.ctx)
            return z3.IntVal(int(v), self.ctx)
        z = self.sort(sort)
        if sort not in self._index:
            raise InvalidArgumentError(f"{sort} has no concrete values in parametric mode")
        try:
            i = self._index[sort][v]
        except KeyError:
            raise InvalidArgumentError(f"{v!r} is not a value of {sort}") from None
        if self.finite:
            return z3.BitVecVal(i, z.size(), self.ctx)
        return z.constructor(i)()

    def decode(self, term: Any, sort: Sort) -> Value:
        """The concrete value of a z3 model value of ``sort``."""
        if sort.kind == "bool":
            return bool(z3.is_true(term))
        if sort.kind == "int":
            return int(term.as_signed_long()) if self.finite else int(term.as_long())
        values = self._values(sort)
        if self.finite:
            return values[int(term.as_long())]
        for v, i in self._index[sort].items():
            if z3.eq(term, self.sort(sort).constructor(i)()):
                return v
        raise InvalidArgumentError(f"cannot decode {term} as {sort}")

    def finite_values(self, sort: Sort) -> tuple[Value, ...]:
        """The values of a finite sort (bool, enum; domain sorts in finite mode)."""
        if sort.kind == "bool":
            return (False, True)
        if sort.kind == "enum":
            return sort.values
        if self.instance is None:
            raise InvalidArgumentError(f"{sort} is not finite in parametric mode")
        return self.instance.values_of(sort)

    def _in_range(self, term: Any, sort: Sort) -> Any:
        count = len(self._values(sort))
        if count == 2 ** self.sort(sort).size():
            return None
        return z3.ULT(term, z3.BitVecVal(count, self.sort(sort).size(), self.ctx))

    def fresh(self, name: str, sort: Sort) -> Any:
        """A fresh z3 constant of ``sort`` (in finite mode its range constraint is recorded in
        :attr:`ranges`)."""
        self._fresh += 1
        c = z3.Const(f"{name}!{self._fresh}", self.sort(sort))
        if self.finite and sort.kind in ("enum", "domain"):
            bound = self._in_range(c, sort)
            if bound is not None:
                self.ranges.append(bound)
        return c

    # ---- vocabulary copies ------------------------------------------------------------------

    def at(self, step: int) -> dict[Symbol, Any]:
        """The vocabulary copy of ``step``: per state symbol, a z3 function ``f@step``
        (parametric) or a map from argument tuples to constants ``f@step[args]`` (finite)."""
        if step not in self._steps:
            copy: dict[Symbol, Any] = {}
            for s in self.system.state:
                if self.instance is None:
                    copy[s] = z3.Function(
                        f"{s.name}@{step}", *[self.sort(a) for a in s.args], self.sort(s.sort)
                    )
                else:
                    copy[s] = {
                        e: z3.Const(f"{s.name}@{step}[{','.join(map(str, e))}]", self.sort(s.sort))
                        for e in self.instance.entries(s)
                    }
                    if s.sort.kind in ("enum", "domain"):
                        for c in copy[s].values():
                            bound = self._in_range(c, s.sort)
                            if bound is not None:
                                self.ranges.append(bound)
            self._steps[step] = copy
        return self._steps[step]

    def entry(self, symbol: Symbol, step: int, args: tuple[Value, ...] = ()) -> Any:
        """The z3 term of ``symbol(args)`` at ``step``."""
        copy = self.at(step)[symbol]
        if self.instance is None:
            zargs = [self.value(a, s) for a, s in zip(args, symbol.args, strict=True)]
            return copy(*zargs) if zargs else copy()
        return copy[tuple(args)]

    # ---- expressions ------------------------------------------------------------------------

    def term(self, e: Expr, step: int, env: Env | None = None) -> Any:
        """The z3 term of ``e`` evaluated in vocabulary copy ``step`` (closed terms are
        memoised per step). In finite mode a closed term is translated once, on the first
        copy asked for; on every other copy it is that term with the copy's constants
        renamed (``z3.substitute``, in the solver's C code), exactly what the translation
        would build there: a closed finite-mode term mentions no other fresh constants."""
        if env:
            return self._term(e, self.at(step), dict(env))
        key = (id(e), step)
        hit = self._memo.get(key)
        if hit is None or hit[0] is not e:
            first = self._first.get(id(e))
            if self.finite and first is not None and first[0] is e:
                base, template = first[1], first[2]
                made = z3.substitute(template, *self._renaming(base, step))
            else:
                made = self._term(e, self.at(step), {})
                self._first[id(e)] = (e, step, made)
            hit = (e, made)
            self._memo[key] = hit
        return hit[1]

    def _renaming(self, source: int, target: int) -> list[tuple[Any, Any]]:
        """Pairs renaming every state constant of copy ``source`` to copy ``target``."""
        key = (source, target)
        pairs = self._renamings.get(key)
        if pairs is None:
            src, dst = self.at(source), self.at(target)
            pairs = [
                (const, dst[symbol][e])
                for symbol in self.system.state
                for e, const in src[symbol].items()
            ]
            self._renamings[key] = pairs
        return pairs

    def _term(self, e: Expr, copy: Copy, env: dict[Var, Any]) -> Any:
        if isinstance(e, Lit):
            return self.value(e.value, e.sort)
        if isinstance(e, Var):
            try:
                return env[e]
            except KeyError:
                raise InvalidArgumentError(f"unbound variable {e.name}") from None
        if isinstance(e, Apply):
            args = [self._term(a, copy, env) for a in e.args]
            table = copy[e.symbol] if e.symbol in copy else self._rigid[e.symbol]
            if self.instance is None:
                return table(*args) if args else table()
            return self._select(e.symbol, table, args)
        if isinstance(e, Op):
            a = [self._term(x, copy, env) for x in e.args]
            if self._varying and e.op in ("lt", "le", "eq") and e.args[0].sort.kind == "int":
                compared = self._compare(e.op, a[0], a[1])
                if compared is not None:
                    return compared
            if self.finite and e.op in ("add", "sub", "lt", "le"):
                return _BV_OPS[e.op](a)
            return _OPS[e.op](self.ctx, a)
        if isinstance(e, Quant):
            return self._quant(e, copy, env)
        raise InvalidArgumentError(f"cannot translate {e!r}")

    def _select(
        self, symbol: Symbol, table: Mapping[tuple[Value, ...], Any], args: list[Any]
    ) -> Any:
        """Finite mode: the entry of ``table`` at ``args``; a literal argument tuple picks its
        entry, any other selects among the entries by comparison."""
        assert self.instance is not None
        # memoised per (table, argument terms): quantifier expansion asks for the same
        # selection once per value of every other bound variable. The memo keeps the table
        # and the arguments alive, so their identities cannot be reused while it holds them.
        memo = (id(table), *(a.get_id() for a in args))
        hit = self._selected.get(memo)
        if hit is not None and hit[0] is table:
            return hit[2]
        if all(z3.is_bv_value(a) or z3.is_true(a) or z3.is_false(a) for a in args):
            key = tuple(self.decode(a, s) for a, s in zip(args, symbol.args, strict=True))
            result = table[key]
        else:
            entries = list(table.items())
            result = entries[-1][1]
            for key, term in reversed(entries[:-1]):
                match = [
                    a == self.value(k, s) for a, k, s in zip(args, key, symbol.args, strict=True)
                ]
                result = z3.If(z3.And(*match), term, result)
        self._selected[memo] = (table, args, result)
        return result

    def _compare(self, op: str, a: Any, b: Any) -> Any:
        """Finite mode with varying Int symbols: a comparison whose sides are, after
        selection, only varying rigid constants and literals (``stage(w) < stage(v)`` for an
        action parameter ``v`` is an ``If`` chain over the ``stage`` entries) becomes the same
        ``If`` chain over Boolean constants, one per pair of entries compared, each defined
        once (with the range constraints) as its comparison. Every step of an unrolling then
        reads the fence order as a few Boolean flags instead of its own comparator circuits
        over bit-vectors, much as if the values were built in. ``None`` when a side depends
        on anything else."""

        def leaves_ok(t: Any) -> bool:
            if z3.is_app_of(t, z3.Z3_OP_ITE):
                return leaves_ok(t.arg(1)) and leaves_ok(t.arg(2))
            return z3.is_bv_value(t) or t.get_id() in self._varying

        if not (leaves_ok(a) and leaves_ok(b)):
            return None

        def spread(x: Any, y: Any) -> Any:
            if z3.is_app_of(x, z3.Z3_OP_ITE):
                return z3.If(x.arg(0), spread(x.arg(1), y), spread(x.arg(2), y))
            if z3.is_app_of(y, z3.Z3_OP_ITE):
                return z3.If(y.arg(0), spread(x, y.arg(1)), spread(x, y.arg(2)))
            if z3.is_bv_value(x) and z3.is_bv_value(y):
                return z3.simplify(_BV_OPS[op]([x, y]) if op != "eq" else x == y)
            key = (op, x.get_id(), y.get_id())
            flag = self._comparisons.get(key)
            if flag is None:
                flag = z3.Bool(f"{op}({x},{y})", self.ctx)
                self._comparisons[key] = flag
                # its definition, asserted once with the range constraints (every query
                # asserts those): the instance's facts fix both sides, so the flag follows
                self.ranges.append(flag == (_BV_OPS[op]([x, y]) if op != "eq" else x == y))
            return flag

        return spread(a, b)

    def _quant(self, e: Quant, copy: Copy, env: dict[Var, Any]) -> Any:
        if self.finite or all(v.sort.is_finite_fixed for v in e.vars):
            parts = []
            for choice in product(*(self.finite_values(v.sort) for v in e.vars)):
                inner = dict(env)
                for v, c in zip(e.vars, choice, strict=True):
                    inner[v] = self.value(c, v.sort)
                parts.append(self._term(e.body, copy, inner))
            if e.kind == "forall":
                return z3.And(*parts) if parts else z3.BoolVal(True, self.ctx)
            return z3.Or(*parts) if parts else z3.BoolVal(False, self.ctx)
        inner = dict(env)
        bound = []
        for v in e.vars:
            c = self.fresh(v.name, v.sort)
            inner[v] = c
            bound.append(c)
        body = self._term(e.body, copy, inner)
        return z3.ForAll(bound, body) if e.kind == "forall" else z3.Exists(bound, body)

    # ---- system parts -----------------------------------------------------------------------

    def rigid_facts(self, instance: Instance) -> list[Any]:
        """The values ``instance`` gives the varying rigid symbols (and the axioms, which may
        mention them), as facts to assert for queries about that instance."""
        if self.instance is None:
            return []
        for sort_name, elements in self.instance.elements.items():
            if tuple(instance.elements.get(sort_name, ())) != tuple(elements):
                raise InvalidArgumentError(f"instance differs in the elements of {sort_name}")
        facts = []
        for r in self.system.rigid:
            if r.name not in self.vary:
                continue
            for args, const in self._rigid[r].items():
                facts.append(const == self.value(instance.rigid_value(r, args), r.sort))
        return facts

    def background(self) -> list[Any]:
        """Facts every query assumes: the axioms over the rigid symbols (in finite mode the
        rigid symbols are the instance's values, so the axioms are checked, not assumed), and
        the range constraints of the fresh variables made so far."""
        facts = [self.term(x, 0) for x in self.system.axioms]
        return [*facts, *self.ranges]

    def init(self, step: int = 0) -> Any:
        """The initial-state condition on copy ``step`` (built once per step)."""
        hit = self._inits.get(step)
        if hit is None:
            copy = self.at(step)
            hit = z3.And(
                *[self._define(copy, u.symbol, u.vars, u.value, copy, {}) for u in self.system.init]
            )
            self._inits[step] = hit
        return hit

    def params(self, action: Action, step: int) -> dict[Var, Any]:
        """Fresh z3 constants for the parameters of ``action`` at ``step``."""
        return {p: self.fresh(f"{action.name}.{p.name}@{step}", p.sort) for p in action.params}

    def action(self, action: Action, step: int, params: Mapping[Var, Any]) -> Any:
        """``action`` with ``params`` leads from copy ``step`` to copy ``step + 1`` (the
        parameters' range constraints included)."""
        pre, post = self.at(step), self.at(step + 1)
        env = dict(params)
        parts = [self._term(action.guard, pre, env), *self._param_ranges(params)]
        updates = action.merged_updates()
        for symbol in self.system.state:
            if symbol in updates:
                u = updates[symbol]
                parts.append(self._define(post, symbol, u.vars, u.value, pre, env))
            else:
                parts.append(self._same(symbol, pre, post))
        return z3.And(*parts)

    def step_of(self, action: Action, step: int) -> Any:
        """``action`` from copy ``step`` to ``step + 1`` with its own parameter constants,
        built once per (action, step) and shared by every query that asks for it (each query
        has its own solver, where the parameters are existentially read)."""
        key = (action.name, step)
        hit = self._actions.get(key)
        if hit is None or hit[0] is not action:
            hit = (action, self.action(action, step, self.params(action, step)))
            self._actions[key] = hit
        return hit[1]

    def after(self, e: Expr, action: Action) -> Any:
        """The z3 term of the closed formula ``e`` in the state that ``action`` leads to from
        copy 0, written over copy 0 and the action's parameters (:meth:`moved`): each state
        symbol the action updates is replaced by its update's value, every other one is
        read on copy 0. This is the weakest precondition of ``e`` under the action: an
        action's updates define the post-state as a function of the pre-state, so
        ``guard & I(copy 0) & not after(P)`` is satisfiable exactly when ``guard & I(copy 0) &
        action(copy 0 -> copy 1) & not P(copy 1)`` is, without the post-state copy and its
        universally quantified frame and update equations (memoised per formula and
        action)."""
        key = (id(e), action.name)
        hit = self._after.get(key)
        if hit is None or hit[0] is not e or hit[1] is not action:
            if self.instance is not None:
                # finite mode: the copy-0 term with every updated entry replaced by its new
                # value (simultaneous substitution, in the solver's C code)
                made = z3.substitute(self.term(e, 0), *self._post_entries(action))
            elif (funs := self._post_functions(action)) is not None:
                # parametric mode: every updated function replaced by its update, a term
                # over the arguments (de Bruijn variables), likewise in C
                made = z3.substitute_funs(self.term(e, 0), *funs) if funs else self.term(e, 0)
            else:
                pre = self.at(0)
                params = self.moved(action)[1]
                post: dict[Symbol, Any] = dict(pre)
                for symbol, u in action.merged_updates().items():
                    post[symbol] = self._updated(symbol, u, pre, params)
                made = self._term(e, post, {})
            hit = (e, action, made)
            self._after[key] = hit
        return hit[2]

    def _post_functions(self, action: Action) -> list[tuple[Any, Any]] | None:
        """Parametric mode: ``(function on copy 0, its update)`` for every symbol ``action``
        updates, the update written over de Bruijn variables 0, 1, ... for the arguments;
        ``None`` when an update value has a quantifier (the variables would have to be
        shifted under it: :meth:`after` then translates the formula directly)."""
        hit = self._funs.get(action.name)
        if hit is None or hit[0] is not action:
            pre = self.at(0)
            params = self.moved(action)[1]
            funs: list[tuple[Any, Any]] | None = []
            for symbol, u in action.merged_updates().items():
                if _quantified(u.value):
                    funs = None
                    break
                env = dict(params)
                env.update(
                    (v, z3.Var(i, self.sort(sort)))
                    for i, (v, sort) in enumerate(zip(u.vars, symbol.args, strict=True))
                )
                assert funs is not None
                funs.append((pre[symbol], self._term(u.value, pre, env)))
            hit = (action, funs)
            self._funs[action.name] = hit
        return hit[1]

    def _post_entries(self, action: Action) -> list[tuple[Any, Any]]:
        """Finite mode: ``(copy-0 constant, its value after action)`` for every entry of
        every symbol ``action`` updates (memoised per action)."""
        hit = self._posts.get(action.name)
        if hit is None or hit[0] is not action:
            pre = self.at(0)
            params = self.moved(action)[1]
            pairs: list[tuple[Any, Any]] = []
            for symbol, u in action.merged_updates().items():
                table = self._updated(symbol, u, pre, params)
                pairs.extend((pre[symbol][e], table[e]) for e in pre[symbol])
            hit = (action, pairs)
            self._posts[action.name] = hit
        return hit[1]

    def moved(self, action: Action) -> tuple[Any, dict[Var, Any]]:
        """``(guard, parameters)``: the guard of ``action`` on copy 0 (with the parameters'
        range constraints) over its own parameter constants, which :meth:`after` uses too."""
        hit = self._moved.get(action.name)
        if hit is None or hit[0] is not action:
            params = self.params(action, 0)
            guard = z3.And(
                self._term(action.guard, self.at(0), dict(params)), *self._param_ranges(params)
            )
            hit = (action, guard, params)
            self._moved[action.name] = hit
        return hit[1], hit[2]

    def _updated(self, symbol: Symbol, u: Update, pre: Copy, params: dict[Var, Any]) -> Any:
        """The post-state table of ``symbol`` under update ``u``, in the form :meth:`_term`
        reads a copy: a function of argument terms (parametric), or entry -> term (finite)."""
        if self.instance is not None:
            table = {}
            for e in self.instance.entries(symbol):
                env = dict(params)
                env.update(
                    (v, self.value(a, s)) for v, a, s in zip(u.vars, e, symbol.args, strict=True)
                )
                table[e] = self._term(u.value, pre, env)
            return table

        def value(*zargs: Any) -> Any:
            env = dict(params)
            env.update(zip(u.vars, zargs, strict=True))
            return self._term(u.value, pre, env)

        return value

    def _param_ranges(self, params: Mapping[Var, Any]) -> list[Any]:
        if not self.finite:
            return []
        out = []
        for p, t in params.items():
            if p.sort.kind in ("enum", "domain"):
                bound = self._in_range(t, p.sort)
                if bound is not None:
                    out.append(bound)
        return out

    def transition(
        self, step: int, *, stutter: bool = False
    ) -> tuple[Any, Any, list[dict[Var, Any]]]:
        """Some action leads from copy ``step`` to ``step + 1``: ``(formula, selector,
        parameters per action)``; the selector's value is the index of the action taken.
        With ``stutter``, the value ``len(actions)`` means "no step" (the state is kept), so
        that an unrolling may be longer than a run that deadlocks.

        In finite mode the relation is built once per ``stutter`` flag (the template) and
        every further step is the template with its symbols renamed by ``z3.substitute``
        (copy 0 -> ``step``, copy 1 -> ``step + 1``, fresh selector and parameters): the same
        formula the direct translation gives, built in the solver's C code instead of Python."""
        if not self.finite:
            return self._transition(step, stutter=stutter)
        template = self._templates.get(stutter)
        if template is None:
            built = self._transition(step, stutter=stutter)
            self._templates[stutter] = (step, *built)
            return built
        base, formula, selector, all_params = template
        pairs: list[tuple[Any, Any]] = []
        for copy_from, copy_to in ((base, step), (base + 1, step + 1)):
            src, dst = self.at(copy_from), self.at(copy_to)
            for symbol in self.system.state:
                for e, const in src[symbol].items():
                    pairs.append((const, dst[symbol][e]))
        self._fresh += 1
        new_selector = z3.BitVec(f"action@{step}!{self._fresh}", selector.size(), self.ctx)
        pairs.append((selector, new_selector))
        new_params = [self.params(a, step) for a in self.system.actions]
        for old_ps, new_ps in zip(all_params, new_params, strict=True):
            pairs.extend((old_ps[v], new_ps[v]) for v in old_ps)
        return z3.substitute(formula, *pairs), new_selector, new_params

    def _transition(
        self, step: int, *, stutter: bool = False
    ) -> tuple[Any, Any, list[dict[Var, Any]]]:
        """The direct translation of :meth:`transition`."""
        pre, post = self.at(step), self.at(step + 1)
        actions = self.system.actions
        last = len(actions) if stutter else len(actions) - 1
        width = max(1, last.bit_length())
        self._fresh += 1
        selector = z3.BitVec(f"action@{step}!{self._fresh}", width, self.ctx)
        all_params = [self.params(a, step) for a in actions]

        def chose(k: int) -> Any:
            return selector == z3.BitVecVal(k, width, self.ctx)

        parts = [z3.ULE(selector, z3.BitVecVal(last, width, self.ctx))]
        for k, (a, ps) in enumerate(zip(actions, all_params, strict=True)):
            parts.append(z3.Implies(chose(k), self._term(a.guard, pre, dict(ps))))
            parts.extend(self._param_ranges(ps))
        merged = [a.merged_updates() for a in actions]
        for symbol in self.system.state:
            changers = [k for k, m in enumerate(merged) if symbol in m]
            for zargs, qvars, lhs, old in self._cells(symbol, pre, post):
                value = old
                for k in reversed(changers):
                    u = merged[k][symbol]
                    env = dict(all_params[k])
                    env.update(zip(u.vars, zargs, strict=True))
                    value = z3.If(chose(k), self._term(u.value, pre, env), value)
                parts.append(z3.ForAll(qvars, lhs == value) if qvars else lhs == value)
        return z3.And(*parts), selector, all_params

    def _cells(
        self, symbol: Symbol, pre: Copy, post: Copy
    ) -> list[tuple[list[Any], list[Any], Any, Any]]:
        """``(argument terms, bound variables, post entry, pre entry)`` for every entry
        (finite) or for one universally quantified entry (parametric)."""
        if self.instance is not None:
            return [
                (
                    [self.value(a, s) for a, s in zip(e, symbol.args, strict=True)],
                    [],
                    post[symbol][e],
                    pre[symbol][e],
                )
                for e in self.instance.entries(symbol)
            ]
        if not symbol.args:
            return [([], [], post[symbol](), pre[symbol]())]
        qvars = [self.fresh(f"x{i}", s) for i, s in enumerate(symbol.args)]
        return [(qvars, qvars, post[symbol](*qvars), pre[symbol](*qvars))]

    def _define(
        self,
        target: Copy,
        symbol: Symbol,
        variables: Sequence[Var],
        value: Expr,
        copy: Copy,
        env: Mapping[Var, Any],
    ) -> Any:
        parts = []
        for zargs, qvars, lhs, _ in self._cells(symbol, copy, target):
            inner = dict(env)
            inner.update(zip(variables, zargs, strict=True))
            eqn = lhs == self._term(value, copy, inner)
            parts.append(z3.ForAll(qvars, eqn) if qvars else eqn)
        return z3.And(*parts)

    def _same(self, symbol: Symbol, pre: Copy, post: Copy) -> Any:
        """``symbol`` keeps its value from ``pre`` to ``post`` (a closed formula, built once
        per symbol and pair of copies: every action that leaves the symbol alone shares it)."""
        key = (symbol.name, id(pre), id(post))
        hit = self._kept.get(key)
        if hit is None:
            parts = []
            for _, qvars, lhs, old in self._cells(symbol, pre, post):
                parts.append(z3.ForAll(qvars, lhs == old) if qvars else lhs == old)
            hit = z3.And(*parts)
            self._kept[key] = hit
        return hit

    # ---- models -----------------------------------------------------------------------------

    def state_from_model(self, model: Any, step: int) -> tuple[Any, ...]:
        """The concrete state of copy ``step`` in a z3 model (finite mode), in the layout of
        :mod:`xvol.model.concrete` states."""
        if self.instance is None:
            raise InvalidArgumentError("concrete states exist only in finite mode")
        values: list[Any] = []
        for s in self.system.state:
            row = [
                self.decode(model.eval(self.entry(s, step, e), True), s.sort)
                for e in self.instance.entries(s)
            ]
            values.append(tuple(row) if s.args else row[0])
        return tuple(values)


class Query:
    """A z3 solver bound to an encoder. In finite mode every fresh variable and every state
    entry of an enum or domain sort must stay within its sort's range; the constraints are
    recorded by the encoder as terms are built, and :meth:`check` asserts the pending ones
    first (at the outermost scope, so that popping a scope never loses them)."""

    def __init__(self, encoder: Encoder, solver: Any) -> None:
        self.encoder = encoder
        self.solver = solver
        self._asserted = 0
        self._depth = 0
        self._pending: list[Any] = []

    def set(self, key: str, value: Any) -> None:
        self.solver.set(key, value)

    def add(self, *facts: Any) -> None:
        self.solver.add(*facts)

    def push(self) -> None:
        self._sync()
        self.solver.push()
        self._depth += 1

    def pop(self) -> None:
        self.solver.pop()
        self._depth -= 1

    def _sync(self) -> None:
        ranges = self.encoder.ranges
        if self._asserted < len(ranges) and self._depth == 0:
            self.solver.add(*ranges[self._asserted :])
            self._asserted = len(ranges)

    def check(self, *assumptions: Any) -> Any:
        """Check the assertions, under ``assumptions`` (literals) if given."""
        self._sync()
        ranges = self.encoder.ranges
        if self._asserted < len(ranges):  # inside a scope: assert the rest there too
            return self.solver.check(*ranges[self._asserted :], *assumptions)
        return self.solver.check(*assumptions)

    def model(self) -> Any:
        return self.solver.model()

    def reason_unknown(self) -> str:
        return str(self.solver.reason_unknown())


def _quantified(e: Expr) -> bool:
    """Whether ``e`` contains a quantifier."""
    if isinstance(e, Quant):
        return True
    if isinstance(e, Apply | Op):
        return any(_quantified(a) for a in e.args)
    return False


def _and(ctx: Any, a: list[Any]) -> Any:
    return z3.And(*a) if a else z3.BoolVal(True, ctx)


def _or(ctx: Any, a: list[Any]) -> Any:
    return z3.Or(*a) if a else z3.BoolVal(False, ctx)


_OPS: dict[str, Any] = {
    "not": lambda ctx, a: z3.Not(a[0]),
    "and": _and,
    "or": _or,
    "implies": lambda ctx, a: z3.Implies(a[0], a[1]),
    "eq": lambda ctx, a: a[0] == a[1],
    "ite": lambda ctx, a: z3.If(a[0], a[1], a[2]),
    "add": lambda ctx, a: a[0] + a[1],
    "sub": lambda ctx, a: a[0] - a[1],
    "lt": lambda ctx, a: a[0] < a[1],
    "le": lambda ctx, a: a[0] <= a[1],
}

_BV_OPS: dict[str, Any] = {
    "add": lambda a: a[0] + a[1],
    "sub": lambda a: a[0] - a[1],
    "lt": lambda a: a[0] < a[1],  # signed comparison on bit-vectors
    "le": lambda a: a[0] <= a[1],
}
