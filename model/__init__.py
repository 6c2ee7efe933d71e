"""The z3-encoded state model of the expandable volume's protocols.

It uses the shared vocabulary (:mod:`xvol.vocabulary`) and never imports the reference."""
