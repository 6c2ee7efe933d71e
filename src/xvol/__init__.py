"""xvol: a research kit about an expandable storage volume and its disaster-recovery mirror.

The package root holds only what every half of the kit shares: the version, the typed error
hierarchy (:mod:`xvol.errors`) and the vocabulary of volume roles, client steps, protocol actions
and traces (:mod:`xvol.vocabulary`). The halves live in mapped folders: ``xvol.reference`` (the
storage stack), ``xvol.model`` (the z3 state model), ``xvol.verification`` and
``xvol.experiments``. The ``xvol`` command is :mod:`xvol.cli`; importing this package imports
neither it nor anything heavy.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
