"""fnn: a functional JAX library for feedforward neural networks.

The neuron ``y = f(wᵀx + b)``, the MLP ``h⁽ˡ⁾ = f(W⁽ˡ⁾h⁽ˡ⁻¹⁾ + b⁽ˡ⁾)``, activations with their
hand-derived derivatives, losses with their output errors, and the hand-derived backward pass
next to ``jax.grad`` so the two can be compared leaf by leaf.

The package, by concept (each sub-package's docstring says what is where):

- ``fnn.core``: the math, in the tutorial's order (activations, losses, layer, MLP, the δ recursion),
  then the blocks (``fnn.blocks``: dropout, batch norm, layer norm, residual) and networks of them;
- ``fnn.check``: derivations and whole-network gradients checked against ``jax.grad`` and finite
  differences;
- ``fnn.train``: steps, ``fit`` and ``fit_many``, resumable runs, data parallelism;
- ``fnn.analysis``: metrics, ``fit_many``'s results, plots;
- ``fnn.data``: datasets and preprocessing;
- ``fnn.runs``: checkpoint files;
- ``fnn.sklearn``: scikit-learn estimators (imported on its own: it needs scikit-learn).

The names below are the public API; the modules most used are also here under their short names
(``fnn.activations``, ``fnn.losses``, ``fnn.datasets``, ``fnn.metrics``, ``fnn.checkpoint``, ...).
"""

from typing import Any

from fnn import _renamed
from fnn.analysis import metrics, plot, sweep
from fnn.analysis.metrics import evaluate, per_example_grad_norms
from fnn.check.derivation import DerivationReport, check_derivation
from fnn.check.gradcheck import GradientReport, LeafReport, compare_gradients
from fnn.core import activations, backprop, blocks, init, losses
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
from fnn.data import datasets, preprocessing
from fnn.runs import checkpoint
from fnn.runs.checkpoint import CheckpointError, load, save
from fnn.train import (
    Callback,
    Checkpointing,
    EarlyStopping,
    FitState,
    Resumed,
    Step,
    TrainingDiverged,
    TrainState,
    compilation_cache,
    fit,
    fit_many,
    make_step,
    parallel,
    per_epoch,
    per_example_grads,
    set_hyperparams,
    shuffle,
    step,
    steps_per_epoch,
)
from fnn.train.parallel import data_mesh

_renamed.install()  # fnn 0.1's module paths (fnn.mlp, fnn.gradcheck, ...) still import, for one release

__version__ = "0.2.0"


def __getattr__(name: str) -> Any:
    """``fnn.ensemble`` (0.1's name of :mod:`fnn.sweep`): the same module, with a DeprecationWarning."""
    if name == "ensemble":
        import warnings

        warnings.warn(_renamed.message("fnn.ensemble"), DeprecationWarning, stacklevel=2)
        return sweep
    raise AttributeError(f"module 'fnn' has no attribute {name!r}")


__all__ = [
    "MLP",
    "Activation",
    "Backprop",
    "Block",
    "Cache",
    "Callback",
    "CheckpointError",
    "Checkpointing",
    "DerivationReport",
    "EarlyStopping",
    "FitState",
    "GradientReport",
    "LeafReport",
    "Loss",
    "Model",
    "Network",
    "Resumed",
    "Step",
    "TrainState",
    "TrainingDiverged",
    "activations",
    "autodiff_value_and_grad",
    "backprop",
    "backward_pass",
    "blocks",
    "check_derivation",
    "checkpoint",
    "compare_gradients",
    "compilation_cache",
    "data_mesh",
    "datasets",
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
    "per_epoch",
    "per_example_grad_norms",
    "per_example_grads",
    "plot",
    "preprocessing",
    "save",
    "set_hyperparams",
    "shuffle",
    "step",
    "steps_per_epoch",
    "sweep",
    "with_manual_vjp",
]
