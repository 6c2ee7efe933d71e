"""Toy systems: small, known-safe and known-unsafe examples of how to define a system.

They exercise the core (:mod:`xvol.model.logic`) and both engines in the tests and serve as
worked examples for anyone writing a new model: a bounded counter (integers, k-induction), a
cyclic counter whose safety needs 2-induction, and a mutex over any number of processes (a
domain sort; atomic test-and-set is safe, check-then-set is not). Uses only the core.
"""

from __future__ import annotations

from xvol.model.logic import (
    BOOL,
    INT,
    Action,
    DomainSort,
    EnumSort,
    Instance,
    Invariant,
    Property,
    Symbol,
    System,
    Update,
    add,
    and_,
    eq,
    exists,
    forall,
    implies,
    ite,
    le,
    lit,
    lt,
    ne,
    not_,
    var,
)


def counter(bound: int, claimed: int) -> System:
    """``x`` starts at 0; ``inc`` adds one while ``x < bound``; ``reset`` sets 0. Property
    ``below``: ``x <= claimed`` (safe iff ``claimed >= bound``; shortest counterexample
    otherwise: ``claimed + 1`` increments)."""
    x = Symbol("x", (), INT)
    inc = Action("inc", (), lt(x(), lit(bound)), (Update.const(x, add(x(), lit(1))),))
    reset = Action("reset", (), lt(lit(0), x()), (Update.const(x, lit(0)),))
    return System(
        name=f"counter(bound={bound})",
        sorts=(INT,),
        rigid=(),
        state=(x,),
        init=(Update.const(x, lit(0)),),
        actions=(inc, reset),
        properties=(Property("below", le(x(), lit(claimed))),),
        invariants=(
            Invariant("nonnegative", le(lit(0), x())),
            Invariant("at-most-bound", le(x(), lit(bound))),
            Invariant("zero", eq(x(), lit(0))),  # wrong: not preserved by inc
        ),
    )


def cycle() -> System:
    """``x`` cycles 0, 1, 2, 3, 0, ...; property ``not-five``: ``x != 5``. True, but not
    1-inductive (from ``x = 4`` the next value is 5); 2-induction proves it."""
    x = Symbol("x", (), INT)
    tick = Action(
        "tick", (), lit(True), (Update.const(x, ite(eq(x(), lit(3)), lit(0), add(x(), lit(1)))),)
    )
    return System(
        name="cycle",
        sorts=(INT,),
        rigid=(),
        state=(x,),
        init=(Update.const(x, lit(0)),),
        actions=(tick,),
        properties=(Property("not-five", ne(x(), lit(5))),),
    )


PROC = DomainSort("Proc")
PC = EnumSort("Pc", ("idle", "checked", "crit"))


def mutex(*, atomic: bool) -> System:
    """Processes ``p`` enter a critical section guarded by one lock bit. ``atomic``: acquire
    tests and sets the lock in one step (safe). Otherwise a process checks the lock in one
    step and sets it in the next, so two can pass the check (unsafe: 4 steps). Property
    ``mutual-exclusion``; the invariant candidates include a wrong one (``unlocked``)."""
    pc = Symbol("pc", (PROC,), PC)
    locked = Symbol("locked", (), BOOL)
    p, q = var("p", PROC), var("q", PROC)
    idle, checked, crit = (lit(v, PC) for v in PC.values)
    release = Action(
        "release",
        (p,),
        eq(pc(p), crit),
        (Update.point(pc, (p,), idle), Update.const(locked, lit(False))),
    )
    if atomic:
        actions: tuple[Action, ...] = (
            Action(
                "acquire",
                (p,),
                and_(eq(pc(p), idle), not_(locked())),
                (Update.point(pc, (p,), crit), Update.const(locked, lit(True))),
            ),
            release,
        )
    else:
        actions = (
            Action(
                "check",
                (p,),
                and_(eq(pc(p), idle), not_(locked())),
                (Update.point(pc, (p,), checked),),
            ),
            Action(
                "enter",
                (p,),
                eq(pc(p), checked),
                (Update.point(pc, (p,), crit), Update.const(locked, lit(True))),
            ),
            release,
        )
    exclusive = forall((p, q), implies(and_(eq(pc(p), crit), eq(pc(q), crit)), eq(p, q)))
    return System(
        name="mutex" if atomic else "mutex(check-then-set)",
        sorts=(PROC, PC),
        rigid=(),
        state=(pc, locked),
        init=(Update.const(pc, idle), Update.const(locked, lit(False))),
        actions=actions,
        properties=(
            Property("mutual-exclusion", exclusive),
            Property(
                "someone-idle-or-locked", implies(not_(locked()), forall((p,), ne(pc(p), crit)))
            ),
        ),
        invariants=(
            Invariant("mutual-exclusion", exclusive),
            Invariant("crit-holds-lock", forall((p,), implies(eq(pc(p), crit), locked()))),
            Invariant("lock-held-by-someone", implies(locked(), exists((p,), eq(pc(p), crit)))),
            Invariant("unlocked", not_(locked())),  # wrong: acquire breaks it
        ),
    )


def processes(count: int) -> Instance:
    """An instance of the mutex with ``count`` processes ``p1``..``pcount``."""
    return Instance({"Proc": tuple(f"p{i}" for i in range(1, count + 1))})
