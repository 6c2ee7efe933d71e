"""The z3-encoded state model of the expandable volume's protocols.

It uses the shared vocabulary (:mod:`xvol.vocabulary`) and never imports the reference.

Read in this order: :mod:`~xvol.model.logic` (how to define a transition system once),
:mod:`~xvol.model.concrete` and :mod:`~xvol.model.symbolic` (its two independent meanings:
Python values and z3 terms), :mod:`~xvol.model.check` (the z3 engine: BMC, Houdini,
inductive invariants, k-induction), :mod:`~xvol.model.explicit` (the explicit-state engine),
:mod:`~xvol.model.chc` (the third engine: constrained Horn clauses solved by z3's Spacer,
every answer re-checked or replayed), :mod:`~xvol.model.trace` (counterexamples),
:mod:`~xvol.model.toys` (worked examples), :mod:`~xvol.model.fence` (the snapshot fence
protocol) and :mod:`~xvol.model.mirror` (the mirroring, failover and resync protocol)."""
