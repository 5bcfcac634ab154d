"""Checking derivations: one activation's ``f′`` or one loss's ``∂E/∂u`` (``derivation.py``:
:func:`check_derivation`, also run once on a user-made record's first use), and a whole network's
gradients, manual vs ``jax.grad`` vs central finite differences, leaf by leaf (``gradcheck.py``:
:func:`compare_gradients`)."""

from fnn.check import derivation, gradcheck
from fnn.check.derivation import DerivationReport, check_derivation
from fnn.check.gradcheck import GradientReport, LeafReport, compare_gradients

__all__ = [
    "DerivationReport",
    "GradientReport",
    "LeafReport",
    "check_derivation",
    "compare_gradients",
    "derivation",
    "gradcheck",
]
