"""The math of fnn, read first, in the tutorial's order. It imports nothing else of fnn but the shared
argument checks (``fnn._checks``).

Where each equation of the tutorial is (file, then function):

- the neuron ``y = f(wᵀx + b)``: ``mlp.py``, :class:`MLP` with ``sizes=(n, 1)`` (no hidden layer);
- activations ``f`` with their derivatives ``f′``: ``activations.py``, ``sigmoid`` / ``sigmoid_grad``,
  ``tanh`` / ``tanh_grad``, ``relu``, ``leaky_relu``, ``elu``, ``softplus``, ``gelu``; ``softmax`` and its
  Jacobian ``softmax_jvp``; the :class:`Activation` record holds ``f`` beside ``f′``;
- weight initialisers: ``init.py``, ``glorot_uniform``, ``he_normal``, …;
- one layer, ``z = W h + b``, and its two backward products ``∂E/∂W = δ hᵀ``, ``∂E/∂h = Wᵀ δ``: ``layer.py``,
  ``linear`` (forward), ``weight_grad`` (``δᵀh``) and ``input_error`` (``δ W``), side by side;
- the MLP ``h⁽ˡ⁾ = f(W⁽ˡ⁾h⁽ˡ⁻¹⁾ + b⁽ˡ⁾)``: ``mlp.py``, ``MLP.forward`` → output and the :class:`Cache` of every
  ``z⁽ˡ⁾`` and ``h⁽ˡ⁾``; ``fold_affine`` (stacked linear layers are one affine map);
- MSE ``E = ½ Σₖ (ŷₖ − dₖ)²``, softmax + cross-entropy, BCE, and the output error ``δ_L = ∂E/∂z_L``:
  ``losses.py``, ``mse``, ``cross_entropy``, ``bce``; the :class:`Loss` record holds ``E`` beside ``∂E/∂u``;
  ``value_and_delta`` gives ``E`` and ``δ_L``;
- the targets ``d`` / ``y`` a loss takes: ``targets.py``, ``targets`` (label validation, the forms class
  indices, one-hot, 0/1 and real; one-hot ``d``);
- the δ recursion ``δ⁽ˡ⁻¹⁾ = (W⁽ˡ⁾ᵀ δ⁽ˡ⁾) ⊙ f′(z⁽ˡ⁻¹⁾)``, ``∂E/∂W⁽ˡ⁾ = δ⁽ˡ⁾ h⁽ˡ⁻¹⁾ᵀ``, ``∂E/∂b⁽ˡ⁾ = δ⁽ˡ⁾``:
  ``backprop.py``, ``backward_pass`` (the recursion, its equations in its docstring); ``manual_value_and_grad``,
  ``autodiff_value_and_grad`` (``jax.grad``) and ``with_manual_vjp`` (the recursion as ``jax.grad``'s
  reverse pass), interchangeable;
- blocks (dense, activation, dropout, batch norm, layer norm, residual), each forward beside its backward:
  ``blocks.py``, each :class:`Block` a forward pass beside its hand-derived backward (equations in the
  docstrings);
- networks of blocks; L2 in the objective; models fnn did not build: ``network.py``, :class:`Network` (the chain
  of the blocks' backward passes), ``l2_penalty``, :class:`Model`.

Everything else builds on these: ``fnn.check`` verifies derivations and whole-network gradients,
``fnn.train`` runs gradient descent, ``fnn.analysis`` measures results, ``fnn.runs`` stores them.
"""

from fnn.core import activations, backprop, blocks, init, layer, losses, mlp, network, targets
from fnn.core.activations import Activation
from fnn.core.backprop import (
    Backprop,
    autodiff_value_and_grad,
    backward_pass,
    manual_backprop,
    manual_value_and_grad,
    objective,
    with_manual_vjp,
)
from fnn.core.blocks import Block
from fnn.core.losses import Loss
from fnn.core.mlp import MLP, Cache, fold_affine
from fnn.core.network import Model, Network

__all__ = [
    "MLP",
    "Activation",
    "Backprop",
    "Block",
    "Cache",
    "Loss",
    "Model",
    "Network",
    "activations",
    "autodiff_value_and_grad",
    "backprop",
    "backward_pass",
    "blocks",
    "fold_affine",
    "init",
    "layer",
    "losses",
    "manual_backprop",
    "manual_value_and_grad",
    "mlp",
    "network",
    "objective",
    "targets",
    "with_manual_vjp",
]
