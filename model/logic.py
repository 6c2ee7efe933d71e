"""How to define a transition system once, so that two independent engines can check it.

This module is the definition layer of the model. It uses only the standard library (no z3):
a system written here is plain data, and two interpreters give it meaning:

* :mod:`xvol.model.symbolic` translates it to z3 terms, one copy of the state vocabulary per
  step (the symbolic engine, :mod:`xvol.model.check`: bounded model checking, induction,
  Houdini, parameterised proofs over uninterpreted sorts);
* :mod:`xvol.model.concrete` evaluates it on concrete Python values (the explicit-state engine,
  :mod:`xvol.model.explicit`, a networkx state graph for small instances).

Design choice: systems are *data*, a small typed expression tree, not Python functions that
build z3 terms. A z3-building function could only be checked by z3; an expression tree can be
evaluated by a second interpreter that shares no code with the first, so the two engines are
independent witnesses of the same definition, and the trees print readably in reports.

How to define a system (see :mod:`xvol.model.toys` for two complete ones):

1. Sorts. ``BOOL`` and ``INT``; ``EnumSort(name, values)`` for finite enumerations fixed by the
   system (phases, kinds); ``DomainSort(name)`` for sets of things whose size is a parameter
   (volumes, objects, clients). A domain sort's elements are given by an :class:`Instance`; in a
   parameterised proof it stays an uninterpreted z3 sort, of any size.
2. Symbols. ``Symbol(name, args, sort)`` is a function of its argument sorts (0 args: a
   constant). State symbols (``System.state``) change from step to step; rigid symbols
   (``System.rigid``) never change and are fixed by the instance (e.g. a volume's fence stage),
   or constrained by ``System.axioms`` in a parameterised proof.
3. Expressions, built with the helpers below: ``lit``, ``var``, ``sym(args...)``, ``not_``,
   ``and_``, ``or_``, ``implies``, ``eq``, ``ne``, ``ite``, ``add``, ``sub``, ``lt``, ``le``,
   ``forall``, ``exists``.
4. ``init``: one :class:`Update` per state symbol (its initial value, deterministic).
5. Actions: ``Action(name, params, guard, updates, label, shows)``. The parameters are bound
   variables of finite sorts; the guard is a formula over the pre-state; every update says the
   post-state value of one symbol in terms of the pre-state (``Update.point`` for one entry,
   ``Update(symbol, vars, value)`` for a whole function); symbols without an update keep their
   value (frame). ``label`` and ``shows`` say how a step is printed in a trace (by default the
   action name and its parameters).
6. Properties: ``Property(name, formula)``, safety properties (state invariants).
   ``Invariant(name, formula)`` are candidate conjuncts of an inductive invariant.

Everything is checked for sort errors when it is built (:class:`SortError`), and a system is
validated as a whole by :meth:`System.validate`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import product
from typing import Literal

from xvol.errors import InvalidArgumentError


class SortError(InvalidArgumentError):
    """An expression combines terms of the wrong sorts (a bug in a system definition)."""


# --------------------------------------------------------------------------------------------
# Sorts
# --------------------------------------------------------------------------------------------

SortKind = Literal["bool", "int", "enum", "domain"]


@dataclass(frozen=True)
class Sort:
    """A sort. Enum sorts carry their values; domain sorts get their elements from an instance."""

    name: str
    kind: SortKind
    values: tuple[str, ...] = ()

    def __str__(self) -> str:
        return self.name

    @property
    def is_finite_fixed(self) -> bool:
        """Bool and enum sorts have the same finite values in every instance."""
        return self.kind in ("bool", "enum")


BOOL = Sort("Bool", "bool")
INT = Sort("Int", "int")


def EnumSort(name: str, values: Sequence[str]) -> Sort:
    """A finite sort with the given distinct values."""
    if not values or len(set(values)) != len(values):
        raise SortError(f"enum sort {name} needs distinct values, got {list(values)}")
    return Sort(name, "enum", tuple(values))


def DomainSort(name: str) -> Sort:
    """A sort whose elements an instance fixes (or that stays uninterpreted in a proof)."""
    return Sort(name, "domain")


Value = bool | int | str
"""A concrete value: a bool, an int, an enum value, or a domain element's name."""


# --------------------------------------------------------------------------------------------
# Symbols and expressions
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Symbol:
    """A function symbol ``name : args -> sort``; 0-ary symbols are constants."""

    name: str
    args: tuple[Sort, ...]
    sort: Sort

    def __call__(self, *arguments: Expr) -> Expr:
        return Apply(self, tuple(arguments))

    def __str__(self) -> str:
        return self.name


class Expr:
    """Base of expression nodes. Every node knows its sort."""

    sort: Sort


@dataclass(frozen=True)
class Lit(Expr):
    """A literal value of a bool, int or enum sort."""

    value: Value
    sort: Sort

    def __str__(self) -> str:
        return str(self.value).lower() if isinstance(self.value, bool) else str(self.value)


@dataclass(frozen=True)
class Var(Expr):
    """A bound variable: an action parameter or a quantified variable."""

    name: str
    sort: Sort

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class Apply(Expr):
    """A symbol applied to arguments of its argument sorts."""

    symbol: Symbol
    args: tuple[Expr, ...]

    def __post_init__(self) -> None:
        if len(self.args) != len(self.symbol.args):
            raise SortError(
                f"{self.symbol.name} takes {len(self.symbol.args)} arguments, got {len(self.args)}"
            )
        for position, (arg, sort) in enumerate(zip(self.args, self.symbol.args, strict=True)):
            if arg.sort != sort:
                raise SortError(
                    f"argument {position + 1} of {self.symbol.name} must be {sort}, "
                    f"got {arg} : {arg.sort}"
                )

    @property
    def sort(self) -> Sort:  # type: ignore[override]
        return self.symbol.sort

    def __str__(self) -> str:
        if not self.args:
            return self.symbol.name
        return f"{self.symbol.name}({', '.join(str(a) for a in self.args)})"


OpName = Literal["not", "and", "or", "implies", "eq", "ite", "add", "sub", "lt", "le"]
_INFIX = {"and": "&", "or": "|", "implies": "->", "eq": "=", "add": "+", "sub": "-"}
_INFIX.update({"lt": "<", "le": "<="})


@dataclass(frozen=True)
class Op(Expr):
    """A built-in operator applied to arguments; use the helper functions to build one."""

    op: OpName
    args: tuple[Expr, ...]
    sort: Sort

    def __str__(self) -> str:
        if self.op == "not":
            return f"!{self.args[0]}"
        if self.op == "ite":
            return f"(if {self.args[0]} then {self.args[1]} else {self.args[2]})"
        if not self.args:
            return "true" if self.op == "and" else "false"
        return "(" + f" {_INFIX[self.op]} ".join(str(a) for a in self.args) + ")"


@dataclass(frozen=True)
class Quant(Expr):
    """``forall``/``exists`` over variables of domain, enum or bool sorts."""

    kind: Literal["forall", "exists"]
    vars: tuple[Var, ...]
    body: Expr
    sort: Sort = BOOL

    def __str__(self) -> str:
        bound = ", ".join(f"{v.name}:{v.sort}" for v in self.vars)
        return f"({self.kind} {bound}. {self.body})"


def lit(value: Value, sort: Sort | None = None) -> Lit:
    """A literal: ``lit(True)``, ``lit(3)``, ``lit("fenced", STATUS)``."""
    if sort is None:
        if isinstance(value, bool):
            sort = BOOL
        elif isinstance(value, int):
            sort = INT
        else:
            raise SortError(f"literal {value!r} needs an explicit enum sort")
    if sort.kind == "enum" and value not in sort.values:
        raise SortError(f"{value!r} is not a value of {sort} {list(sort.values)}")
    if sort.kind == "domain":
        raise SortError(f"domain sort {sort} has no literals: use a rigid constant")
    return Lit(value, sort)


TRUE = Lit(True, BOOL)
FALSE = Lit(False, BOOL)


def var(name: str, sort: Sort) -> Var:
    """A bound variable named ``name`` of sort ``sort``."""
    return Var(name, sort)


def _need(sort: Sort, *args: Expr) -> None:
    for arg in args:
        if arg.sort != sort:
            raise SortError(f"expected {sort}, got {arg} : {arg.sort}")


def not_(a: Expr) -> Expr:
    _need(BOOL, a)
    return Op("not", (a,), BOOL)


def and_(*args: Expr) -> Expr:
    _need(BOOL, *args)
    flat = tuple(a for a in args if a != TRUE)
    return flat[0] if len(flat) == 1 else Op("and", flat, BOOL)


def or_(*args: Expr) -> Expr:
    _need(BOOL, *args)
    flat = tuple(a for a in args if a != FALSE)
    return flat[0] if len(flat) == 1 else Op("or", flat, BOOL)


def implies(a: Expr, b: Expr) -> Expr:
    _need(BOOL, a, b)
    return Op("implies", (a, b), BOOL)


def eq(a: Expr, b: Expr) -> Expr:
    if a.sort != b.sort:
        raise SortError(f"cannot compare {a} : {a.sort} with {b} : {b.sort}")
    return Op("eq", (a, b), BOOL)


def ne(a: Expr, b: Expr) -> Expr:
    return not_(eq(a, b))


def ite(c: Expr, a: Expr, b: Expr) -> Expr:
    _need(BOOL, c)
    if a.sort != b.sort:
        raise SortError(f"ite branches differ: {a} : {a.sort} and {b} : {b.sort}")
    return Op("ite", (c, a, b), a.sort)


def add(a: Expr, b: Expr) -> Expr:
    _need(INT, a, b)
    return Op("add", (a, b), INT)


def sub(a: Expr, b: Expr) -> Expr:
    _need(INT, a, b)
    return Op("sub", (a, b), INT)


def lt(a: Expr, b: Expr) -> Expr:
    _need(INT, a, b)
    return Op("lt", (a, b), BOOL)


def le(a: Expr, b: Expr) -> Expr:
    _need(INT, a, b)
    return Op("le", (a, b), BOOL)


def forall(variables: Sequence[Var], body: Expr) -> Expr:
    _need(BOOL, body)
    _check_bindable(variables)
    return Quant("forall", tuple(variables), body) if variables else body


def exists(variables: Sequence[Var], body: Expr) -> Expr:
    _need(BOOL, body)
    _check_bindable(variables)
    return Quant("exists", tuple(variables), body) if variables else body


def _check_bindable(variables: Sequence[Var]) -> None:
    for v in variables:
        if v.sort.kind == "int":
            raise SortError(f"cannot quantify over Int variable {v.name}: not finite")


def is_in(e: Expr, values: Iterable[str]) -> Expr:
    """``e`` equals one of the enum ``values``."""
    return or_(*(eq(e, lit(v, e.sort)) for v in values))


# --------------------------------------------------------------------------------------------
# Updates, actions, properties, systems
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Update:
    """``symbol'(vars) = value`` for every ``vars``: the post-state of one symbol, as an
    expression over the pre-state, the action's parameters and ``vars``."""

    symbol: Symbol
    vars: tuple[Var, ...]
    value: Expr

    def __post_init__(self) -> None:
        if tuple(v.sort for v in self.vars) != self.symbol.args:
            raise SortError(f"update of {self.symbol.name}: variables do not match its arguments")
        if self.value.sort != self.symbol.sort:
            raise SortError(
                f"update of {self.symbol.name}: value {self.value} : {self.value.sort} "
                f"is not {self.symbol.sort}"
            )

    @staticmethod
    def point(symbol: Symbol, args: Sequence[Expr], value: Expr) -> Update:
        """``symbol(args) := value``, every other entry unchanged."""
        variables = tuple(Var(f"_{symbol.name}{i}", s) for i, s in enumerate(symbol.args))
        at = and_(*(eq(v, a) for v, a in zip(variables, args, strict=True)))
        return Update(symbol, variables, ite(at, value, symbol(*variables)) if args else value)

    @staticmethod
    def const(symbol: Symbol, value: Expr) -> Update:
        """Every entry of ``symbol`` gets ``value`` (which must not mention the entry)."""
        variables = tuple(Var(f"_{symbol.name}{i}", s) for i, s in enumerate(symbol.args))
        return Update(symbol, variables, value)

    def then(self, later: Update) -> Update:
        """This update followed by ``later`` on the same symbol (``later`` wins where it
        changes an entry); both read the pre-state."""
        if later.symbol != self.symbol:
            raise SortError("can only compose updates of the same symbol")
        renamed = substitute(self.value, dict(zip(self.vars, later.vars, strict=True)))
        return Update(later.symbol, later.vars, _replace_self(later.value, later, renamed))


def _replace_self(expr: Expr, update: Update, earlier: Expr) -> Expr:
    """In ``update.value``, the pre-state entry ``symbol(vars)`` becomes ``earlier``."""
    target = Apply(update.symbol, update.vars)
    return _map(expr, lambda e: earlier if e == target else None)


@dataclass(frozen=True)
class Action:
    """A labelled, parameterised action. ``label`` names it in traces (several actions may
    share a label, e.g. every client step is ``step``); ``shows`` lists the trace arguments as
    expressions over the pre-state and the parameters (default: the parameters)."""

    name: str
    params: tuple[Var, ...]
    guard: Expr
    updates: tuple[Update, ...]
    label: str = ""
    shows: tuple[tuple[str, Expr], ...] | None = None

    def __post_init__(self) -> None:
        _need(BOOL, self.guard)
        for p in self.params:
            if p.sort.kind == "int":
                raise SortError(f"action {self.name}: parameter {p.name} must be of a finite sort")

    @property
    def trace_label(self) -> str:
        return self.label or self.name

    @property
    def trace_args(self) -> tuple[tuple[str, Expr], ...]:
        if self.shows is not None:
            return self.shows
        return tuple((p.name, p) for p in self.params)

    def merged_updates(self) -> dict[Symbol, Update]:
        """One update per changed symbol (several point updates of one symbol are composed in
        order)."""
        merged: dict[Symbol, Update] = {}
        for u in self.updates:
            merged[u.symbol] = merged[u.symbol].then(u) if u.symbol in merged else u
        return merged


@dataclass(frozen=True)
class Property:
    """A safety property: a closed formula over the state that every reachable state
    satisfies."""

    name: str
    formula: Expr


@dataclass(frozen=True)
class Invariant:
    """A candidate conjunct of an inductive invariant, with a name for reports."""

    name: str
    formula: Expr


@dataclass(frozen=True)
class System:
    """A transition system: sorts, rigid and state symbols, axioms over the rigid symbols,
    initial values, labelled actions, properties and candidate invariants.

    Invariant: every expression mentions only the declared symbols, its free variables are
    bound (action parameters, update variables, quantifiers), and every state symbol has
    exactly one initial value."""

    name: str
    sorts: tuple[Sort, ...]
    rigid: tuple[Symbol, ...]
    state: tuple[Symbol, ...]
    init: tuple[Update, ...]
    actions: tuple[Action, ...]
    properties: tuple[Property, ...]
    axioms: tuple[Expr, ...] = ()
    invariants: tuple[Invariant, ...] = ()

    def validate(self) -> None:
        """Raise :class:`SortError` unless the system is well formed."""
        declared = set(self.rigid) | set(self.state)
        if len({s.name for s in declared}) != len(declared):
            raise SortError(f"{self.name}: two symbols share a name")
        inits = [u.symbol for u in self.init]
        if sorted(s.name for s in inits) != sorted(s.name for s in self.state):
            raise SortError(f"{self.name}: every state symbol needs exactly one initial value")
        names = [a.name for a in self.actions]
        if len(set(names)) != len(names):
            raise SortError(f"{self.name}: two actions share a name")
        for u in self.init:
            _check_closed(u.value, declared, set(u.vars), f"init of {u.symbol.name}")
        for a in self.actions:
            bound = set(a.params)
            _check_closed(a.guard, declared, bound, f"guard of {a.name}")
            for u in a.updates:
                if u.symbol not in self.state:
                    raise SortError(f"action {a.name} updates non-state symbol {u.symbol.name}")
                _check_closed(u.value, declared, bound | set(u.vars), f"{a.name}: {u.symbol}")
            for key, e in a.trace_args:
                _check_closed(e, declared, bound, f"{a.name}: trace argument {key}")
        for p in self.properties:
            _check_closed(p.formula, declared, set(), f"property {p.name}")
        for i in self.invariants:
            _check_closed(i.formula, declared, set(), f"invariant {i.name}")
        for x in self.axioms:
            _check_closed(x, set(self.rigid), set(), "axiom")

    def property(self, name: str) -> Property:
        for p in self.properties:
            if p.name == name:
                return p
        raise InvalidArgumentError(
            f"{self.name} has no property {name!r}; it has {[p.name for p in self.properties]}"
        )

    def action(self, name: str) -> Action:
        for a in self.actions:
            if a.name == name:
                return a
        raise InvalidArgumentError(f"{self.name} has no action {name!r}")


_VALIDATED: dict[int, System] = {}  # systems validated in this process, by identity


def validate_once(system: System) -> None:
    """:meth:`System.validate`, run once per system object (systems are immutable, and every
    engine validates the system it is given)."""
    if _VALIDATED.get(id(system)) is not system:
        system.validate()
        if len(_VALIDATED) >= 256:
            _VALIDATED.clear()
        _VALIDATED[id(system)] = system


@dataclass(frozen=True)
class Instance:
    """A finite instance: the elements of every domain sort and the value of every rigid
    symbol (for a function symbol, a mapping from argument-name tuples to values)."""

    elements: Mapping[str, tuple[str, ...]]
    rigid: Mapping[str, Value | Mapping[tuple[str, ...], Value]] = field(default_factory=dict)

    def values_of(self, sort: Sort) -> tuple[Value, ...]:
        """All values of a finite sort in this instance (Int is not finite)."""
        if sort.kind == "bool":
            return (False, True)
        if sort.kind == "enum":
            return sort.values
        if sort.kind == "domain":
            try:
                return self.elements[sort.name]
            except KeyError:
                raise InvalidArgumentError(f"instance gives no elements for {sort}") from None
        raise InvalidArgumentError(f"sort {sort} has no finite set of values")

    def entries(self, symbol: Symbol) -> list[tuple[Value, ...]]:
        """Every argument tuple of ``symbol``, in a fixed order."""
        return list(product(*(self.values_of(s) for s in symbol.args)))

    def rigid_value(self, symbol: Symbol, args: tuple[Value, ...]) -> Value:
        """The value of rigid ``symbol`` at ``args``."""
        try:
            table = self.rigid[symbol.name]
        except KeyError:
            raise InvalidArgumentError(f"instance gives no value for {symbol.name}") from None
        if not symbol.args:
            if isinstance(table, Mapping):
                raise InvalidArgumentError(f"{symbol.name} is a constant, not a table")
            return table
        if not isinstance(table, Mapping):
            raise InvalidArgumentError(f"{symbol.name} needs a table of values")
        try:
            return table[tuple(str(a) for a in args)]
        except KeyError:
            raise InvalidArgumentError(f"instance gives no value for {symbol.name}{args}") from None


# --------------------------------------------------------------------------------------------
# Traversals
# --------------------------------------------------------------------------------------------


def _children(e: Expr) -> tuple[Expr, ...]:
    if isinstance(e, Apply | Op):
        return e.args
    if isinstance(e, Quant):
        return (e.body,)
    return ()


def _map(e: Expr, fn: Callable[[Expr], Expr | None]) -> Expr:
    """Rebuild ``e`` top-down: where ``fn(node)`` returns an expression, use it instead."""
    hit = fn(e)
    if hit is not None:
        return hit
    if isinstance(e, Apply):
        return Apply(e.symbol, tuple(_map(a, fn) for a in e.args))
    if isinstance(e, Op):
        return Op(e.op, tuple(_map(a, fn) for a in e.args), e.sort)
    if isinstance(e, Quant):
        return Quant(e.kind, e.vars, _map(e.body, fn), e.sort)
    return e


def substitute(e: Expr, mapping: Mapping[Var, Expr]) -> Expr:
    """Replace free variables (bound ones shadow the mapping)."""

    def visit(node: Expr, env: Mapping[Var, Expr]) -> Expr:
        if isinstance(node, Var):
            return env.get(node, node)
        if isinstance(node, Quant):
            inner = {k: v for k, v in env.items() if k not in node.vars}
            return Quant(node.kind, node.vars, visit(node.body, inner), node.sort)
        if isinstance(node, Apply):
            return Apply(node.symbol, tuple(visit(a, env) for a in node.args))
        if isinstance(node, Op):
            return Op(node.op, tuple(visit(a, env) for a in node.args), node.sort)
        return node

    return visit(e, mapping)


def symbols_of(e: Expr) -> set[Symbol]:
    """Every symbol ``e`` mentions."""
    found: set[Symbol] = set()
    stack = [e]
    while stack:
        node = stack.pop()
        if isinstance(node, Apply):
            found.add(node.symbol)
        stack.extend(_children(node))
    return found


def _check_closed(e: Expr, declared: set[Symbol], bound: set[Var], where: str) -> None:
    stack: list[tuple[Expr, frozenset[Var]]] = [(e, frozenset(bound))]
    while stack:
        node, scope = stack.pop()
        if isinstance(node, Var) and node not in scope:
            raise SortError(f"{where}: variable {node.name} is not bound")
        if isinstance(node, Apply) and node.symbol not in declared:
            raise SortError(f"{where}: symbol {node.symbol.name} is not declared")
        inner = scope | frozenset(node.vars) if isinstance(node, Quant) else scope
        stack.extend((c, inner) for c in _children(node))
