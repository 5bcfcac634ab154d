"""fnn: a functional JAX library for feedforward neural networks.

The neuron ``y = f(wᵀx + b)``, the MLP ``h⁽ˡ⁾ = f(W⁽ˡ⁾h⁽ˡ⁻¹⁾ + b⁽ˡ⁾)``, activations with their
hand-derived derivatives, losses with their output errors, and the hand-derived backward pass
next to ``jax.grad`` so the two can be compared leaf by leaf.
"""

from fnn import activations, init, losses
from fnn.activations import Activation
from fnn.activations import get as activation
from fnn.backprop import (
    Backprop,
    autodiff_value_and_grad,
    backprop,
    backward,
    manual_backprop,
    manual_value_and_grad,
    objective,
    with_manual_vjp,
)
from fnn.gradcheck import GradientReport, LeafReport, compare_gradients
from fnn.mlp import MLP, Cache, fold_affine

__version__ = "0.1.0"

__all__ = [
    "MLP",
    "Activation",
    "Backprop",
    "Cache",
    "GradientReport",
    "LeafReport",
    "activation",
    "activations",
    "autodiff_value_and_grad",
    "backprop",
    "backward",
    "compare_gradients",
    "fold_affine",
    "init",
    "losses",
    "manual_backprop",
    "manual_value_and_grad",
    "objective",
    "with_manual_vjp",
]
