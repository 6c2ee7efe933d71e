"""The z3-encoded state model of the expandable volume's protocols.

It uses the shared vocabulary (:mod:`xvol.vocabulary`) and never imports the reference.

Read in this order: :mod:`~xvol.model.logic` (how to define a transition system once),
:mod:`~xvol.model.concrete` and :mod:`~xvol.model.symbolic` (its two independent meanings:
Python values and z3 terms), :mod:`~xvol.model.check` (the z3 engine: BMC, Houdini,
inductive invariants, k-induction), :mod:`~xvol.model.explicit` (the explicit-state engine),
:mod:`~xvol.model.trace` (counterexamples), :mod:`~xvol.model.toys` (worked examples) and
:mod:`~xvol.model.fence` (the snapshot fence protocol)."""
