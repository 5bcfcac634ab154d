"""One training step — forward, loss, backward, optimizer update — and :func:`make_step`, its factory.

:func:`step_fn` is the pure step the compiled training loop scans over (``fit``, ``fit_many``);
:func:`make_step` wraps the same function, jitted, for a loop of your own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.typing import ArrayLike

from fnn import _checks
from fnn.analysis import metrics as _metrics
from fnn.core import losses as _losses
from fnn.core.backprop import autodiff_value_and_grad, check_loss, manual_value_and_grad, weighted_value_and_grad
from fnn.core.mlp import MLP, Params

Array = jax.Array

# One shared default, so repeated calls without an optimizer reuse the compiled loop.
DEFAULT_OPTIMIZER = optax.sgd(0.1)


class TrainState(NamedTuple):
    """Everything a step updates."""

    params: Params
    opt_state: optax.OptState
    step: Array  # shape=(), int32: optimizer steps taken


def check_grad(grad: Any) -> None:
    """``grad`` names the backward pass: ``"manual"`` or ``"autodiff"``."""
    if not (isinstance(grad, str) and grad in ("manual", "autodiff")):
        raise ValueError(f"`grad` must be 'manual' or 'autodiff', got {grad!r}")


def check_optimizer(optimizer: Any) -> optax.GradientTransformation:
    """The optimizer, or :data:`DEFAULT_OPTIMIZER` for None; a TypeError for anything else."""
    if optimizer is None:
        return DEFAULT_OPTIMIZER
    if not (hasattr(optimizer, "init") and hasattr(optimizer, "update")):
        raise TypeError(
            f"`optimizer` must be an optax.GradientTransformation such as optax.sgd(0.1), got {type(optimizer).__name__}"
        )
    return optimizer


def step_fn(
    net: MLP,
    loss: _losses.LossLike,
    optimizer: optax.GradientTransformation,
    grad: str,
    grad_norms: bool = True,
    *,
    weighted: bool = False,
    l2: bool = False,
    report_scale: float = 1.0,
) -> Callable:
    """The pure training step ``(state, x, y) -> (state, {"loss", "grad_norm"})`` (not jitted).

    ``grad_norms=False`` leaves ``grad_norm`` out of the metrics: it reads every gradient once more.
    ``weighted``: the step is ``(state, x, t, w, lam)`` with a weight per row and the L2 strength,
    on the objective of :func:`fnn.core.backprop.weighted_value_and_grad` (``l2``, ``report_scale``
    as there); ``t`` are targets in the output's form.
    """
    if weighted:
        value_and_grad = weighted_value_and_grad(net, loss, grad, l2=l2, report_scale=report_scale)
    else:
        plain = (manual_value_and_grad if grad == "manual" else autodiff_value_and_grad)(net, loss)
        value_and_grad = lambda params, x, y, *_: plain(params, x, y)

    def step(state: TrainState, x: Array, y: Array, *weights: Array) -> tuple[TrainState, dict[str, Array]]:
        E, grads = value_and_grad(state.params, x, y, *weights)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        metrics = {"loss": E, "grad_norm": _metrics.layer_norms(grads)} if grad_norms else {"loss": E}
        return TrainState(params, opt_state, state.step + 1), metrics

    return step


class Step:
    """A jitted step ``step(state, x, y) -> (state, metrics)``; ``step.init(params)`` makes the state.

    ``metrics`` holds the batch ``loss`` and ``grad_norm``, the per-layer ‖∂E/∂W⁽ˡ⁾‖ (shape (L,)).
    Made by :func:`make_step`.

    Checks, cheap enough for a tight Python loop: ``state`` must be a :class:`TrainState`; the shapes
    and dtypes of ``x``, ``y`` and the parameters are checked when the step is traced (once per shape);
    the *values* of ``y`` (class indices in range, no NaN or ±inf where the loss forbids them) are
    checked in Python only when ``y`` is not a jax array (numpy, a list): reading a jax array's values
    would wait for the device every step. Convert labels with ``jnp.asarray`` once, after checking
    them (``fnn.losses.targets`` does), to skip the check.

    Example:
      >>> net = MLP((2, 1))
      >>> step = make_step(net, "mse")
      >>> state, m = step(step.init(net.init(jax.random.key(0))), jnp.ones((3, 2)), jnp.zeros((3, 1)))
      >>> int(state.step), sorted(m), m["grad_norm"].shape
      (1, ['grad_norm', 'loss'], (1,))
    """

    def __init__(self, net: MLP, loss: _losses.LossLike, optimizer: optax.GradientTransformation, grad: str) -> None:
        self.net, self.loss, self.optimizer, self.grad = net, loss, optimizer, grad
        self.fn = step_fn(net, loss, optimizer, grad)
        self._jit = jax.jit(self.fn)

    def init(self, params: Params) -> TrainState:
        """The starting state: params, the optimizer's state, step 0.

        >>> net = MLP((2, 1))
        >>> state = make_step(net, "mse", optax.adam(1e-3)).init(net.init(jax.random.key(0)))
        >>> int(state.step), state.params[0]["W"].shape, int(state.opt_state[0].count)
        (0, (1, 2), 0)
        """
        _checks.check_params(self.net, params)
        return TrainState(params, self.optimizer.init(params), jnp.zeros((), jnp.int32))

    def __call__(self, state: TrainState, x: ArrayLike, y: ArrayLike) -> tuple[TrainState, dict[str, Array]]:
        if not isinstance(state, TrainState):
            raise TypeError(
                f"`state` must be the TrainState that step.init(params) or an earlier step returned, got {type(state).__name__}"
            )
        # numpy, lists, Python numbers: dtype and shape in Python (jit copies them to the device, faster than
        # device_put); a jax array's shape and dtype are checked when the step is traced
        host_y = not isinstance(y, jax.Array)
        if host_y or not isinstance(x, jax.Array):
            x = _checks.check_x(self.net, x, place=False)
        if host_y:  # host labels: their values too, before they are traced
            y = _checks.as_array(y, "y")
            _checks.check_batch(x, y)
            _losses.targets(self.loss, y, self.net.sizes[-1], tuple(x.shape[:-1]), None, convert=False)
        return self._jit(state, x, y)


def make_step(
    net: MLP, loss: _losses.LossLike, optimizer: optax.GradientTransformation | None = None, grad: str = "manual"
) -> Step:
    """A pure, jitted training step with hand-derived (``"manual"``) or ``jax.grad`` gradients.

    Args:
      net: the network spec. loss: ``"mse"``, ``"cross_entropy"`` or ``"bce"``.
      optimizer: any optax ``GradientTransformation``; default ``optax.sgd(0.1)``, the seed's
        plain gradient descent θ ← θ − η ∂E/∂θ.
      grad: ``"manual"`` or ``"autodiff"``.

    Example:
      >>> net = MLP((2, 4, 2), hidden="tanh", output="softmax")
      >>> step = make_step(net, "cross_entropy", optax.sgd(0.5))
      >>> state = step.init(net.init(jax.random.key(0)))
      >>> state, m = step(state, jnp.eye(2), jnp.array([0, 1]))
      >>> int(state.step), m["grad_norm"].shape
      (1, (2,))
    """
    check_loss(net, loss)
    check_grad(grad)
    return Step(net, loss, check_optimizer(optimizer), grad)
