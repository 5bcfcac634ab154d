"""Checking derivations: one activation's ``f′`` or one loss's ``∂E/∂u`` (``derivation.py``:
:func:`check_derivation`, also run once on a user-made record's first use, where
:func:`on_first_use` says what a wrong one does: raise, the default, warn or off), and a whole network's
gradients, manual vs ``jax.grad`` vs central finite differences, leaf by leaf (``gradcheck.py``:
:func:`compare_gradients`)."""

from fnn.check import derivation, gradcheck
from fnn.check.derivation import DerivationReport, FirstUse, check_derivation, on_first_use
from fnn.check.gradcheck import GradientReport, LeafReport, compare_gradients

__all__ = [
    "DerivationReport",
    "FirstUse",
    "GradientReport",
    "LeafReport",
    "check_derivation",
    "compare_gradients",
    "derivation",
    "gradcheck",
    "on_first_use",
]
