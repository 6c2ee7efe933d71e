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
