"""The concrete interpretation of a system: Python values, one finite instance.

This is the second, independent meaning of a :class:`~xvol.model.logic.System` (the first is
:mod:`xvol.model.symbolic`, in z3). It shares no code with the z3 translation: expressions are
compiled to Python closures and evaluated on concrete states. The explicit-state engine
(:mod:`xvol.model.explicit`) explores the state graph with it, and every z3 counterexample is
replayed here step by step, so that the two engines check each other. Uses only the standard
library and :mod:`xvol.model.logic`.

Generated code is specialised to the instance: quantifiers and rows over few values are
unrolled with literal arguments (entries read directly, constant parts folded away), and the
explorer's inner loop is one generated function per system listing a state's enabled moves,
each with a function computing its successor, so a state costs a handful of Python calls.

A concrete :data:`State` is a tuple with one entry per state symbol (in ``System.state``
order): the value of a constant, or for a function symbol a tuple of values, one per argument
tuple in :meth:`Instance.entries` order. States are immutable and hashable.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import product
from typing import Any

from xvol.errors import InvalidArgumentError
from xvol.model.logic import (
    Action,
    Apply,
    Expr,
    Instance,
    Lit,
    Op,
    Quant,
    Symbol,
    System,
    Value,
    Var,
    validate_once,
)

State = tuple[Any, ...]
Env = tuple[Value, ...]
Compiled = Callable[[State, Env], Any]


_UNROLL = 64
"""Quantifiers over at most this many bindings, and rows of at most this many entries, are
unrolled in the generated code (literal arguments, no generator or comprehension)."""

_CODE: dict[str, Any] = {}
_CODE_CACHED = 50_000  # code objects kept per process


def _code(source: str) -> Any:
    """The compiled code of generated ``source``. The same source recurs for every instance
    of a system that differs only in rigid values (those live in the namespace the code runs
    in, not in the text), so it is compiled once per process and reused; code objects are
    immutable, so sharing them shares no state."""
    code = _CODE.get(source)
    if code is None:
        if len(_CODE) >= _CODE_CACHED:
            _CODE.clear()
        code = compile(source, "<xvol.model.concrete>", "exec")
        _CODE[source] = code
    return code


@dataclass(frozen=True)
class ConcreteStep:
    """One executed action: its name, parameter values, and trace label and arguments."""

    action: str
    params: tuple[tuple[str, Value], ...]
    label: str
    args: tuple[tuple[str, Value], ...]


class ConcreteSystem:
    """A system compiled for one instance.

    Life cycle: built once per (system, instance); afterwards read-only, so one object may
    serve many explorations and replays."""

    def __init__(self, system: System, instance: Instance) -> None:
        validate_once(system)
        self.system = system
        self.instance = instance
        self._position = {s: i for i, s in enumerate(system.state)}
        self._entries = {s: instance.entries(s) for s in system.state}
        self._index = {s: {e: i for i, e in enumerate(es)} for s, es in self._entries.items()}
        self._rigid = {
            r: {args: instance.rigid_value(r, args) for args in instance.entries(r)}
            for r in system.rigid
        }
        self._namespace: dict[str, Any] = {}
        self._fresh = 0
        for axiom in system.axioms:
            if not self._compile(axiom, {})((), ()):
                raise InvalidArgumentError(f"instance violates the axiom {axiom}")
        self._init = {u.symbol: u for u in system.init}
        # actions are compiled when first needed: a replay needs a few, an exploration all
        self._compiled: dict[str, _CompiledAction] = {}
        self._all: list[_CompiledAction] | None = None
        self._initial: State | None = None
        self._enabled: Callable[[State], list[tuple[int, int, Any]]] | None = None
        self._violations: dict[tuple[str, ...], Callable[[State], list[str]]] = {}
        self._predicates: dict[int, tuple[Expr, Callable[[State], Any]]] = {}
        self._properties = {p.name: self._compile(p.formula, {}) for p in system.properties}

    def _compile_successors(self) -> Callable[[State], list[tuple[int, int, Any]]]:
        """One generated module listing the enabled moves of a state, in the order
        :meth:`moves` yields them: ``(action index, choice index, next)``, where ``next``
        computes the successor. Every guard and update is unrolled over the parameter
        choices with the parameters as literals, so entries are read directly and whatever
        does not depend on the state folds away (a point update's row becomes the old row
        with one entry replaced). Rows longer than ``_UNROLL`` keep the general path
        (``next`` is ``None``: :meth:`_CompiledAction.apply`)."""
        module = []
        lines = ["def enabled(s):", "    r = []"]
        state = self.system.state
        for k, compiled in enumerate(self._actions):
            updates = compiled.action.merged_updates()
            unroll = all(len(self._entries[sym]) <= _UNROLL for sym in updates)
            for j, env in enumerate(compiled.choices):
                fixed = dict(zip(compiled.action.params, env, strict=True))
                guard = self._source(compiled.action.guard, {}, fixed)
                if guard == "False":
                    continue
                if not unroll:
                    lines.append(f"    if {guard}: r.append(({k}, {j}, None))")
                    continue
                parts = []
                for pos, symbol in enumerate(state):
                    u = updates.get(symbol)
                    if u is None:
                        parts.append(f"s[{pos}]")
                    elif symbol.args:
                        rows = [
                            self._source(
                                u.value, {}, {**fixed, **dict(zip(u.vars, e, strict=True))}
                            )
                            for e in self._entries[symbol]
                        ]
                        parts.append("(" + ", ".join(rows) + ",)")
                    else:
                        parts.append(self._source(u.value, {}, fixed))
                module.append(f"def a{k}_{j}(s):\n    return ({', '.join(parts)},)\n")
                lines.append(f"    if {guard}: r.append(({k}, {j}, a{k}_{j}))")
        lines.append("    return r")
        module.append("\n".join(lines) + "\n")
        namespace = dict(self._namespace)
        exec(_code("\n".join(module)), namespace)
        fn: Callable[[State], list[tuple[int, int, Any]]] = namespace["enabled"]
        return fn

    def _compile_violations(self, props: tuple[str, ...]) -> Callable[[State], list[str]]:
        """A generated function: the properties of ``props`` a state violates."""
        lines = ["def f(s):", "    r = []"]
        for name in props:
            body = self._source(self.system.property(name).formula, {})
            lines.append(f"    if not {body}: r.append({name!r})")
        lines.append("    return r")
        namespace = dict(self._namespace)
        exec(_code("\n".join(lines) + "\n"), namespace)
        fn: Callable[[State], list[str]] = namespace["f"]
        return fn

    def violations(self, state: State, props: Sequence[str]) -> list[str]:
        """The properties of ``props`` that ``state`` violates, in the order given."""
        key = tuple(props)
        fn = self._violations.get(key)
        if fn is None:
            fn = self._compile_violations(key)
            self._violations[key] = fn
        return fn(state)

    @property
    def _actions(self) -> list[_CompiledAction]:
        """Every action, compiled, in the system's order."""
        if self._all is None:
            self._all = [self._find(a.name) for a in self.system.actions]
        return self._all

    # ---- compilation ------------------------------------------------------------------------

    def _compile(self, e: Expr, scope: Mapping[Var, int]) -> Compiled:
        """A Python function computing ``e`` from a state and an environment (the values of
        the bound variables, at the positions ``scope`` gives). The expression is translated
        to Python source once and compiled, so evaluation costs no interpretive overhead."""
        names = {v: f"e{i}" for v, i in scope.items()}
        body = self._source(e, names)
        unpack = ""
        if scope:
            ordered = sorted(scope.items(), key=lambda item: item[1])
            unpack = "    " + ", ".join(names[v] for v, _ in ordered) + ", = env\n"
        source = f"def f(s, env):\n{unpack}    return {body}\n"
        namespace = dict(self._namespace)
        exec(_code(source), namespace)
        fn: Compiled = namespace["f"]
        return fn

    def _compile_rows(
        self, e: Expr, scope: Mapping[Var, int], variables: tuple[Var, ...], entries: list[Any]
    ) -> Compiled:
        """A Python function computing the whole new row of a function symbol: ``e`` once per
        entry of ``entries``, with ``variables`` bound to the entry's arguments (``scope``:
        the action parameters' positions in the environment). One generated comprehension,
        so a row costs no Python call per entry."""
        inner = dict(scope)
        for i, v in enumerate(variables):
            inner[v] = len(scope) + i
        names = {v: f"e{i}" for v, i in inner.items()}
        unpack = ""
        if scope:
            ordered = sorted(scope.items(), key=lambda item: item[1])
            unpack = "    " + ", ".join(names[v] for v, _ in ordered) + ", = env\n"
        if len(entries) <= _UNROLL:
            # one expression per entry, its arguments literals: a tuple display
            rows = [
                self._source(e, names, dict(zip(variables, entry, strict=True)))
                for entry in entries
            ]
            source = f"def f(s, env):\n{unpack}    return ({', '.join(rows)},)\n"
        else:
            body = self._source(e, names)
            bound = ", ".join(names[v] for v in variables)
            table = self._constant(list(entries))
            source = (
                f"def f(s, env):\n{unpack}    return tuple([{body} for ({bound},) in {table}])\n"
            )
        namespace = dict(self._namespace)
        exec(_code(source), namespace)
        fn: Compiled = namespace["f"]
        return fn

    def _constant(self, value: Any) -> str:
        """A name in the generated code's namespace bound to ``value``."""
        key = f"k{len(self._namespace)}"
        self._namespace[key] = value
        return key

    def _source(
        self, e: Expr, names: dict[Var, str], fixed: Mapping[Var, Value] | None = None
    ) -> str:
        """Python source computing ``e``: bound variables are read from ``names`` (source
        names), or are the literal values ``fixed`` gives (an unrolled quantifier or row).
        An application whose arguments are all literals reads its entry directly."""
        fixed = fixed or {}
        if isinstance(e, Lit):
            return repr(e.value)
        if isinstance(e, Var):
            if e in fixed:
                return repr(fixed[e])
            try:
                return names[e]
            except KeyError:
                raise InvalidArgumentError(f"unbound variable {e.name}") from None
        if isinstance(e, Apply):
            symbol = e.symbol
            known = self._literal_args(e.args, fixed)
            if known is not None:
                if symbol in self._position:
                    pos = self._position[symbol]
                    return f"s[{pos}][{self._index[symbol][known]}]" if known else f"s[{pos}]"
                if symbol in self._rigid:
                    return repr(self._rigid[symbol][known])
            args = [self._source(a, names, fixed) for a in e.args]
            if symbol in self._position:
                pos = self._position[symbol]
                if not args:
                    return f"s[{pos}]"
                index = self._constant(self._index[symbol])
                return f"s[{pos}][{index}[({', '.join(args)},)]]"
            if symbol in self._rigid:
                table = self._rigid[symbol]
                if not args:
                    return repr(table[()])
                return f"{self._constant(table)}[({', '.join(args)},)]"
            raise InvalidArgumentError(f"symbol {symbol.name} is not declared")
        if isinstance(e, Op):
            op = e.op
            if op == "eq":
                known = self._literal_args(e.args, fixed)
                if known is not None:
                    return repr(known[0] == known[1])
            a = [self._source(x, names, fixed) for x in e.args]
            folded = _fold(op, a)
            if folded is not None:
                return folded
            if op == "not":
                return f"(not {a[0]})"
            if op in ("and", "or"):
                if not a:
                    return "True" if op == "and" else "False"
                return "(" + f" {op} ".join(a) + ")"
            if op == "implies":
                return f"((not {a[0]}) or {a[1]})"
            if op == "ite":
                return f"({a[1]} if {a[0]} else {a[2]})"
            symbol_of = {"eq": "==", "add": "+", "sub": "-", "lt": "<", "le": "<="}
            return f"({a[0]} {symbol_of[op]} {a[1]})"
        if isinstance(e, Quant):
            combos = list(product(*(self.instance.values_of(v.sort) for v in e.vars)))
            if len(combos) <= _UNROLL:
                # unrolled: one conjunct (disjunct) per binding, with literal arguments
                parts = [
                    self._source(e.body, names, {**fixed, **dict(zip(e.vars, c, strict=True))})
                    for c in combos
                ]
                if not parts:
                    return "True" if e.kind == "forall" else "False"
                return "(" + (" and " if e.kind == "forall" else " or ").join(parts) + ")"
            inner = dict(names)
            bound = []
            for v in e.vars:
                self._fresh += 1
                inner[v] = f"q{self._fresh}"
                bound.append(inner[v])
            choices = self._constant(combos)
            body = self._source(e.body, inner, fixed)
            fn = "all" if e.kind == "forall" else "any"
            return f"{fn}({body} for ({', '.join(bound)},) in {choices})"
        raise InvalidArgumentError(f"cannot evaluate {e!r}")

    def _literal_args(
        self, args: tuple[Expr, ...], fixed: Mapping[Var, Value]
    ) -> tuple[Value, ...] | None:
        """The argument values, when every argument is a literal or a fixed variable."""
        values: list[Value] = []
        for a in args:
            if isinstance(a, Lit):
                values.append(a.value)
            elif isinstance(a, Var) and a in fixed:
                values.append(fixed[a])
            else:
                return None
        return tuple(values)

    def _compile_action(self, action: Action) -> _CompiledAction:
        scope = {p: i for i, p in enumerate(action.params)}
        choices = list(product(*(self.instance.values_of(p.sort) for p in action.params)))
        updates = []
        for symbol, u in action.merged_updates().items():
            if symbol.args:
                value = self._compile_rows(u.value, scope, u.vars, self._entries[symbol])
            else:
                value = self._compile(u.value, scope)
            updates.append((self._position[symbol], value))
        shows = [(k, self._compile(x, scope)) for k, x in action.trace_args]
        return _CompiledAction(action, choices, self._compile(action.guard, scope), updates, shows)

    # ---- execution --------------------------------------------------------------------------

    def initial(self) -> State:
        """The initial state (initial values are deterministic; computed once)."""
        if self._initial is None:
            values: list[Any] = []
            for symbol in self.system.state:
                u = self._init[symbol]
                fn = self._compile(u.value, {v: i for i, v in enumerate(u.vars)})
                if symbol.args:
                    values.append(tuple(fn((), e) for e in self._entries[symbol]))
                else:
                    values.append(fn((), ()))
            self._initial = tuple(values)
        return self._initial

    def moves(self, state: State) -> Iterator[tuple[_CompiledAction, Env, State]]:
        """:meth:`successors` without the trace labels (the explorer's inner loop): every
        enabled action, its parameter values, and the state it leads to, in the same order."""
        if self._enabled is None:
            self._enabled = self._compile_successors()
        actions = self._actions
        for k, j, following in self._enabled(state):
            compiled = actions[k]
            env = compiled.choices[j]
            yield compiled, env, (following(state) if following else compiled.apply(state, env))

    def successors(self, state: State) -> Iterator[tuple[ConcreteStep, State]]:
        """Every enabled (action, parameters) in ``state`` and the state it leads to, in a
        fixed order."""
        for compiled in self._actions:
            for env in compiled.choices:
                if compiled.guard(state, env):
                    yield compiled.step(env, state), compiled.apply(state, env)

    def execute(self, state: State, action: str, params: Mapping[str, Value]) -> State | None:
        """The successor of ``state`` by ``action(params)``, or ``None`` if it is disabled."""
        compiled = self._find(action)
        try:
            env = tuple(params[p.name] for p in compiled.action.params)
        except KeyError as exc:
            raise InvalidArgumentError(f"{action}: missing parameter {exc}") from None
        if env not in compiled.choices:
            raise InvalidArgumentError(f"{action}: parameters {dict(params)} out of range")
        if not compiled.guard(state, env):
            return None
        return compiled.apply(state, env)

    def run(self, steps: Sequence[tuple[str, Mapping[str, Value]]]) -> State | None:
        """The state the run ``steps`` (action names and parameters) reaches from the initial
        state, or ``None`` if some step is disabled on the way."""
        state: State | None = self.initial()
        for action, params in steps:
            assert state is not None
            state = self.execute(state, action, params)
            if state is None:
                return None
        return state

    def describe_step(self, state: State, action: str, params: Mapping[str, Value]) -> ConcreteStep:
        """The trace label and arguments of ``action(params)`` taken in ``state``."""
        compiled = self._find(action)
        env = tuple(params[p.name] for p in compiled.action.params)
        return compiled.step(env, state)

    def holds(self, state: State, prop: str) -> bool:
        """Whether ``state`` satisfies the property named ``prop``."""
        try:
            return bool(self._properties[prop](state, ()))
        except KeyError:
            raise InvalidArgumentError(f"no property {prop!r}") from None

    def evaluate(self, e: Expr, state: State) -> Any:
        """The value of a closed expression in ``state``."""
        return self.predicate(e)(state)

    def predicate(self, e: Expr) -> Callable[[State], Any]:
        """``e`` (a closed expression) compiled once, as a function of the state."""
        hit = self._predicates.get(id(e))
        if hit is None or hit[0] is not e:
            compiled = self._compile(e, {})
            hit = (e, lambda state: compiled(state, ()))
            self._predicates[id(e)] = hit
        return hit[1]

    def describe(self, state: State) -> dict[str, Any]:
        """``{symbol: value}`` with function symbols as ``{"a,b": value}``."""
        out: dict[str, Any] = {}
        for symbol, value in zip(self.system.state, state, strict=True):
            if symbol.args:
                out[symbol.name] = {
                    ",".join(map(str, e)): v
                    for e, v in zip(self._entries[symbol], value, strict=True)
                }
            else:
                out[symbol.name] = value
        return out

    def changes(self, before: State, after: State) -> list[str]:
        """What changed between two states, as ``symbol(args): old -> new`` lines."""
        lines = []
        for symbol, old, new in zip(self.system.state, before, after, strict=True):
            if old == new:
                continue
            if not symbol.args:
                lines.append(f"{symbol.name}: {_show(old)} -> {_show(new)}")
                continue
            for entry, a, b in zip(self._entries[symbol], old, new, strict=True):
                if a != b:
                    lines.append(
                        f"{symbol.name}({', '.join(map(str, entry))}): {_show(a)} -> {_show(b)}"
                    )
        return lines

    def state_symbol(self, name: str) -> Symbol:
        for s in self.system.state:
            if s.name == name:
                return s
        raise InvalidArgumentError(f"no state symbol {name!r}")

    def _find(self, action: str) -> _CompiledAction:
        compiled = self._compiled.get(action)
        if compiled is None:
            for a in self.system.actions:
                if a.name == action:
                    compiled = self._compile_action(a)
                    self._compiled[action] = compiled
                    return compiled
            raise InvalidArgumentError(f"{self.system.name} has no action {action!r}")
        return compiled


def _fold(op: str, a: list[str]) -> str | None:
    """Constant folding of generated Boolean source (``"True"``/``"False"`` operands), so
    that unrolled quantifiers and literal parameters leave only what depends on the state;
    ``None`` when nothing folds."""
    if op == "not" and a[0] in ("True", "False"):
        return "False" if a[0] == "True" else "True"
    if op in ("and", "or"):
        unit, zero = ("True", "False") if op == "and" else ("False", "True")
        if zero in a:
            return zero
        rest = [x for x in a if x != unit]
        if len(rest) == len(a):
            return None
        if not rest:
            return unit
        return rest[0] if len(rest) == 1 else "(" + f" {op} ".join(rest) + ")"
    if op == "implies":
        if a[0] == "False" or a[1] == "True":
            return "True"
        if a[0] == "True":
            return a[1]
        return None
    if op == "ite" and a[0] in ("True", "False"):
        return a[1] if a[0] == "True" else a[2]
    return None


def _show(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


class _CompiledAction:
    """An action compiled for one instance: its parameter choices, guard and updates."""

    def __init__(
        self,
        action: Action,
        choices: list[Env],
        guard: Compiled,
        updates: list[tuple[int, Compiled]],
        shows: list[tuple[str, Compiled]],
    ) -> None:
        """``updates``: per updated symbol, its position in the state and a function of the
        pre-state and parameters giving its new value (a whole row for a function symbol)."""
        self.action = action
        self.names = tuple(p.name for p in action.params)
        self.choices = choices
        self.guard = guard
        self.updates = updates
        self.shows = shows

    def apply(self, state: State, env: Env) -> State:
        """The post-state; every update reads the pre-state."""
        new = list(state)
        for pos, value in self.updates:
            new[pos] = value(state, env)
        return tuple(new)

    def params_of(self, env: Env) -> tuple[tuple[str, Value], ...]:
        """The parameter values ``env`` as ``(name, value)`` pairs."""
        return tuple(zip(self.names, env, strict=True))

    def step(self, env: Env, state: State) -> ConcreteStep:
        return ConcreteStep(
            self.action.name,
            self.params_of(env),
            self.action.trace_label,
            tuple((k, f(state, env)) for k, f in self.shows),
        )
