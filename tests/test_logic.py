"""The definition layer: sort checking, substitution, system validation."""

from __future__ import annotations

import pytest

from xvol.errors import InvalidArgumentError
from xvol.model import toys
from xvol.model.logic import (
    BOOL,
    INT,
    Action,
    DomainSort,
    EnumSort,
    Instance,
    SortError,
    Symbol,
    System,
    Update,
    add,
    and_,
    eq,
    forall,
    lit,
    substitute,
    var,
)


def test_sort_errors_are_caught_when_expressions_are_built() -> None:
    x = Symbol("x", (), INT)
    with pytest.raises(SortError):
        and_(x(), lit(True))
    with pytest.raises(SortError):
        eq(x(), lit(True))
    with pytest.raises(SortError):
        lit("blue", EnumSort("Colour", ("red", "green")))
    with pytest.raises(SortError):
        forall((var("i", INT),), lit(True))


def test_apply_checks_arity_and_argument_sorts() -> None:
    d = DomainSort("D")
    f = Symbol("f", (d,), BOOL)
    with pytest.raises(SortError):
        f()
    with pytest.raises(SortError):
        f(lit(1))


def test_substitute_respects_bound_variables() -> None:
    d = DomainSort("D")
    f = Symbol("f", (d,), BOOL)
    x, y = var("x", d), var("y", d)
    e = and_(f(x), forall((x,), f(x)))
    out = substitute(e, {x: y})
    assert str(out) == "(f(y) & (forall x:D. f(x)))"


def test_validate_rejects_unbound_variables_and_missing_init() -> None:
    x = Symbol("x", (), INT)
    free = var("n", INT)
    bad_action = Action("inc", (), lit(True), (Update.const(x, add(x(), free)),))
    system = System("bad", (INT,), (), (x,), (Update.const(x, lit(0)),), (bad_action,), ())
    with pytest.raises(SortError, match="not bound"):
        system.validate()
    no_init = System("bad", (INT,), (), (x,), (), (), ())
    with pytest.raises(SortError, match="initial value"):
        no_init.validate()


def test_toy_systems_are_well_formed() -> None:
    for system in (
        toys.counter(3, 3),
        toys.cycle(),
        toys.mutex(atomic=True),
        toys.mutex(atomic=False),
    ):
        system.validate()


def test_instance_reports_missing_elements() -> None:
    with pytest.raises(InvalidArgumentError):
        Instance({}).values_of(DomainSort("Proc"))
