"""The z3 translation: finite bit-level encoding and parametric mode."""

from __future__ import annotations

import z3

from xvol.model import toys
from xvol.model.concrete import ConcreteSystem
from xvol.model.symbolic import Encoder


def test_finite_mode_initial_state_decodes_to_the_concrete_initial_state() -> None:
    system, inst = toys.mutex(atomic=False), toys.processes(3)
    encoder = Encoder(system, inst)
    solver = encoder.solver()
    solver.add(encoder.init(0))
    assert solver.check() == z3.sat
    assert encoder.state_from_model(solver.model(), 0) == ConcreteSystem(system, inst).initial()


def test_finite_mode_keeps_enum_entries_in_range() -> None:
    system, inst = toys.mutex(atomic=True), toys.processes(3)
    encoder = Encoder(system, inst)
    solver = encoder.solver()
    encoder.at(0)  # three Pc values in two bits: the fourth bit pattern must be excluded
    pc = next(s for s in system.state if s.name == "pc")
    solver.add(encoder.entry(pc, 0, ("p1",)) == z3.BitVecVal(3, 2, encoder.ctx))
    assert solver.check() == z3.unsat


def test_parametric_mode_uses_uninterpreted_sorts_and_quantifiers() -> None:
    system = toys.mutex(atomic=True)
    encoder = Encoder(system, None)
    formula = encoder.term(system.property("mutual-exclusion").formula, 0)
    assert z3.is_quantifier(formula)


def _after_matches_the_relation(encoder: Encoder) -> None:
    """For every action and every property, the weakest precondition equals the property on
    the post-state copy of the transition relation (with the same parameter constants)."""
    system = encoder.system
    for action in system.actions:
        relation = encoder.action(action, 0, encoder.moved(action)[1])
        for prop in system.properties:
            solver = encoder.solver()
            solver.add(*encoder.background(), relation)
            solver.add(encoder.term(prop.formula, 1) != encoder.after(prop.formula, action))
            assert solver.check() == z3.unsat, (action.name, prop.name)


def test_after_is_the_post_state_in_finite_mode() -> None:
    _after_matches_the_relation(Encoder(toys.mutex(atomic=False), toys.processes(2)))


def test_after_is_the_post_state_in_parametric_mode() -> None:
    _after_matches_the_relation(Encoder(toys.mutex(atomic=True), None))


def test_a_closed_term_on_another_copy_is_the_renamed_translation() -> None:
    system, inst = toys.mutex(atomic=False), toys.processes(3)
    renamed = Encoder(system, inst)
    formula = system.property("mutual-exclusion").formula
    renamed.term(formula, 0)  # translated on copy 0, renamed for copy 4
    direct = Encoder(system, inst)
    solver = z3.Solver(ctx=renamed.ctx)
    moved = z3.substitute(
        direct.term(formula, 4).translate(renamed.ctx),
        *[
            (direct.entry(s, 4, e).translate(renamed.ctx), renamed.entry(s, 4, e))
            for s in system.state
            for e in inst.entries(s)
        ],
    )
    solver.add(renamed.term(formula, 4) != moved)
    assert solver.check() == z3.unsat
