"""fnn: a functional JAX library for feedforward neural networks.

The neuron ``y = f(wᵀx + b)``, the MLP ``h⁽ˡ⁾ = f(W⁽ˡ⁾h⁽ˡ⁻¹⁾ + b⁽ˡ⁾)``, activations with their
hand-derived derivatives, losses with their output errors, and the hand-derived backward pass
next to ``jax.grad`` so the two can be compared leaf by leaf.
"""

from fnn import (
    activations,
    backprop,
    checkpoint,
    datasets,
    ensemble,
    init,
    losses,
    metrics,
    parallel,
    plot,
    preprocessing,
    shuffle,
    step,
)
from fnn.activations import Activation
from fnn.backprop import (
    Backprop,
    autodiff_value_and_grad,
    backward_pass,
    manual_backprop,
    manual_value_and_grad,
    objective,
    with_manual_vjp,
)
from fnn.checkpoint import CheckpointError, load, save
from fnn.derivation import DerivationReport, check_derivation
from fnn.gradcheck import GradientReport, LeafReport, compare_gradients
from fnn.losses import Loss
from fnn.metrics import evaluate
from fnn.mlp import MLP, Cache, fold_affine
from fnn.parallel import data_mesh
from fnn.train import (
    FitState,
    Step,
    TrainingDiverged,
    TrainState,
    fit,
    fit_many,
    make_step,
    per_example_grads,
)

__version__ = "0.1.0"

__all__ = [
    "MLP",
    "Activation",
    "Backprop",
    "Cache",
    "CheckpointError",
    "DerivationReport",
    "FitState",
    "GradientReport",
    "LeafReport",
    "Loss",
    "Step",
    "TrainState",
    "TrainingDiverged",
    "activations",
    "autodiff_value_and_grad",
    "backprop",
    "backward_pass",
    "check_derivation",
    "checkpoint",
    "compare_gradients",
    "data_mesh",
    "datasets",
    "ensemble",
    "evaluate",
    "fit",
    "fit_many",
    "fold_affine",
    "init",
    "load",
    "losses",
    "make_step",
    "manual_backprop",
    "manual_value_and_grad",
    "metrics",
    "objective",
    "parallel",
    "per_example_grads",
    "plot",
    "preprocessing",
    "save",
    "shuffle",
    "step",
    "with_manual_vjp",
]
