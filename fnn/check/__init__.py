"""Checking derivations: one activation's ``f′`` or one loss's ``∂E/∂u`` (``derivation.py``:
:func:`check_derivation`; ``_wellformed.py``: that the record traces, has the right shapes and, for an
activation, is elementwise; ``_compare.py``: the error against one reference), a block's backward pass
against ``jax.vjp`` of its forward pass (``_blockcheck.py``, through :func:`check_derivation`; its
contract in ``_wellformed.py``), also run once on a user-made record's or block's first use
(``first_use.py``: :func:`on_first_use` says what a wrong one does: raise, the default, warn or off;
``verify_once``), and a whole network's gradients, manual vs ``jax.grad`` vs central finite differences,
leaf by leaf (``gradcheck.py``: :func:`compare_gradients`, an MLP's; ``_netcheck.py``: a network of
blocks' or a model's; ``_tree.py``: their parameters as named leaves and one flat vector; ``_report.py``:
its :class:`GradientReport` and :class:`LeafReport`, the leaves' states and the table)."""

from fnn.check import derivation, first_use, gradcheck
from fnn.check.derivation import DerivationReport, check_derivation
from fnn.check.first_use import FirstUse, on_first_use
from fnn.check.gradcheck import GradientReport, LeafReport, compare_gradients

__all__ = [
    "DerivationReport",
    "FirstUse",
    "GradientReport",
    "LeafReport",
    "check_derivation",
    "compare_gradients",
    "derivation",
    "first_use",
    "gradcheck",
    "on_first_use",
]
