"""The concrete interpretation of a system: Python values, one finite instance.

This is the second, independent meaning of a :class:`~xvol.model.logic.System` (the first is
:mod:`xvol.model.symbolic`, in z3). It shares no code with the z3 translation: expressions are
compiled to Python closures and evaluated on concrete states. The explicit-state engine
(:mod:`xvol.model.explicit`) explores the state graph with it, and every z3 counterexample is
replayed here step by step, so that the two engines check each other. Uses only the standard
library and :mod:`xvol.model.logic`.

A concrete :data:`State` is a tuple with one entry per state symbol (in ``System.state``
order): the value of a constant, or for a function symbol a tuple of values, one per argument
tuple in :meth:`Instance.entries` order. States are immutable and hashable.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
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
)

State = tuple[Any, ...]
Env = tuple[Value, ...]
Compiled = Callable[[State, Env], Any]


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
        system.validate()
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
        self._actions = [self._compile_action(a) for a in system.actions]
        self._properties = {p.name: self._compile(p.formula, {}) for p in system.properties}

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
        exec(compile(source, "<xvol.model.concrete>", "exec"), namespace)
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
        body = self._source(e, names)
        unpack = ""
        if scope:
            ordered = sorted(scope.items(), key=lambda item: item[1])
            unpack = "    " + ", ".join(names[v] for v, _ in ordered) + ", = env\n"
        bound = ", ".join(names[v] for v in variables)
        table = self._constant(list(entries))
        source = f"def f(s, env):\n{unpack}    return tuple([{body} for ({bound},) in {table}])\n"
        namespace = dict(self._namespace)
        exec(compile(source, "<xvol.model.concrete>", "exec"), namespace)
        fn: Compiled = namespace["f"]
        return fn

    def _constant(self, value: Any) -> str:
        """A name in the generated code's namespace bound to ``value``."""
        key = f"k{len(self._namespace)}"
        self._namespace[key] = value
        return key

    def _source(self, e: Expr, names: dict[Var, str]) -> str:
        if isinstance(e, Lit):
            return repr(e.value)
        if isinstance(e, Var):
            try:
                return names[e]
            except KeyError:
                raise InvalidArgumentError(f"unbound variable {e.name}") from None
        if isinstance(e, Apply):
            args = [self._source(a, names) for a in e.args]
            symbol = e.symbol
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
            a = [self._source(x, names) for x in e.args]
            op = e.op
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
            inner = dict(names)
            bound = []
            for v in e.vars:
                self._fresh += 1
                inner[v] = f"q{self._fresh}"
                bound.append(inner[v])
            choices = self._constant(
                list(product(*(self.instance.values_of(v.sort) for v in e.vars)))
            )
            body = self._source(e.body, inner)
            fn = "all" if e.kind == "forall" else "any"
            return f"{fn}({body} for ({', '.join(bound)},) in {choices})"
        raise InvalidArgumentError(f"cannot evaluate {e!r}")

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
        """The initial state (initial values are deterministic)."""
        values: list[Any] = []
        for symbol in self.system.state:
            u = self._init[symbol]
            fn = self._compile(u.value, {v: i for i, v in enumerate(u.vars)})
            if symbol.args:
                values.append(tuple(fn((), e) for e in self._entries[symbol]))
            else:
                values.append(fn((), ()))
        return tuple(values)

    def moves(self, state: State) -> Iterator[tuple[_CompiledAction, Env, State]]:
        """:meth:`successors` without the trace labels (the explorer's inner loop): every
        enabled action, its parameter values, and the state it leads to, in the same order."""
        for compiled in self._actions:
            guard, apply = compiled.guard, compiled.apply
            for env in compiled.choices:
                if guard(state, env):
                    yield compiled, env, apply(state, env)

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
        return self._compile(e, {})(state, ())

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
        for compiled in self._actions:
            if compiled.action.name == action:
                return compiled
        raise InvalidArgumentError(f"{self.system.name} has no action {action!r}")


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
