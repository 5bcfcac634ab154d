"""One training step — forward, loss, backward, optimizer update — and :func:`make_step`, its factory.

:func:`step_fn` is the pure step the compiled training loop scans over (``fit``, ``fit_many``);
:func:`make_step` wraps the same function, jitted, for a loop of your own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.typing import ArrayLike

from fnn import _checks
from fnn.analysis import metrics as _metrics
from fnn.core import losses as _losses
from fnn.core.backprop import autodiff_value_and_grad, check_loss, manual_value_and_grad, weighted_value_and_grad
from fnn.core.mlp import MLP, Params
from fnn.core.network import Model, Network, merge, network_step_grads, trainable

Array = jax.Array

# One shared default, so repeated calls without an optimizer reuse the compiled loop.
DEFAULT_OPTIMIZER = optax.sgd(0.1)


class TrainState(NamedTuple):
    """Everything a step updates."""

    params: Params
    opt_state: optax.OptState
    step: Array  # shape=(), int32: optimizer steps taken


def check_grad(grad: Any, net: Any = None) -> None:
    """``grad`` names the backward pass: ``"manual"`` or ``"autodiff"`` (a :class:`~fnn.Model` has only the latter)."""
    if not (isinstance(grad, str) and grad in ("manual", "autodiff")):
        raise ValueError(f"`grad` must be 'manual' or 'autodiff', got {grad!r}")
    if grad == "manual" and isinstance(net, Model):
        raise ValueError(
            "`grad` 'manual' needs a hand-derived backward pass, which an fnn.Model (your own init/apply) does not have: "
            "pass grad='autodiff' (jax.grad), or build the network from fnn.blocks"
        )


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
    if not isinstance(net, MLP):
        if weighted:
            raise ValueError("per-row weights train an fnn.MLP only")
        return _network_step(net, _losses.get(loss), optimizer, grad, grad_norms, l2)
    if weighted:
        value_and_grad = weighted_value_and_grad(net, loss, grad, l2=l2, report_scale=report_scale)
    else:
        plain = (manual_value_and_grad if grad == "manual" else autodiff_value_and_grad)(net, loss)

        def value_and_grad(params: Params, x: Array, y: Array, *lam: Array) -> tuple[Array, Params]:
            if l2:  # ½ λ Σ‖W‖² in the objective; its gradient λ W by hand
                return _with_l2(plain(params, x, y), params, lam[0])
            return plain(params, x, y)

    def step(state: TrainState, x: Array, y: Array, *weights: Array) -> tuple[TrainState, dict[str, Array]]:
        E, grads = value_and_grad(state.params, x, y, *weights)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        metrics = {"loss": E, "grad_norm": _metrics.layer_norms(grads)} if grad_norms else {"loss": E}
        return TrainState(params, opt_state, state.step + 1), metrics

    return step


def _with_l2(value_and_grads: tuple[Array, Params], params: Params, lam: Array) -> tuple[Array, Params]:
    """An MLP's ``(E, grads)`` with L2 weight decay in the objective: ``E + ½ λ Σ_l ‖W⁽ˡ⁾‖²`` and ``∂W += λ W``."""
    E, grads = value_and_grads
    E = E + 0.5 * lam * sum(jnp.sum(p["W"] * p["W"]) for p in params)
    grads = type(grads)(type(g)((k, g[k] + lam * p["W"] if k == "W" else g[k]) for k in g) for g, p in zip(grads, params))
    return E, grads


def _network_step(
    net: Network | Model, loss: _losses.Loss, optimizer: optax.GradientTransformation, grad: str, grad_norms: bool, l2: bool
) -> Callable:
    """The step of a network of blocks (or a model): ``(state, x, t, lam, key) -> (state, metrics)``.

    The forward pass runs in train mode (batch statistics; dropout drawn from ``key``); the optimizer
    updates the trained parameters only (:func:`fnn.core.network.trainable`), and the running statistics
    are the ones the forward pass computed."""
    value_and_grad = network_step_grads(net, loss, grad, True, l2=l2)

    def step(state: TrainState, x: Array, t: Array, lam: Any = None, key: Any = None) -> tuple[TrainState, dict[str, Array]]:
        E, grads, new = value_and_grad(state.params, x, t, key, lam)
        updates, opt_state = optimizer.update(trainable(grads), state.opt_state, trainable(state.params))
        params = merge(optax.apply_updates(trainable(state.params), updates), new)
        metrics = {"loss": E}
        if grad_norms:
            metrics["grad_norm"] = jnp.stack([jnp.sqrt(jnp.sum(w * w)) for w in net.weights(grads)])
        return TrainState(params, opt_state, state.step + 1), metrics

    return step


def init_state(net: Any, optimizer: optax.GradientTransformation, params: Params) -> TrainState:
    """The training state at step 0: the optimizer's state over the trained parameters only (a network's
    running statistics are not trained)."""
    opt_params = params if isinstance(net, MLP) else trainable(params)
    return TrainState(params, optimizer.init(opt_params), jnp.zeros((), jnp.int32))


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
        if isinstance(net, MLP):
            self._jit = jax.jit(self.fn)
        else:  # the labels turned into the output's targets inside the program, as an MLP's step does
            record, n_out, fn = _losses.get(loss), net.sizes[-1], self.fn

            def run(state: TrainState, x: Array, y: Array, key: Any) -> tuple[TrainState, dict[str, Array]]:
                dtype = jnp.result_type(x.dtype, jax.tree_util.tree_leaves(state.params)[0].dtype)
                t = _losses.targets(record, y, n_out, (x.shape[0],), dtype)
                return fn(state, x.astype(dtype), t, None, key)

            self._jit = jax.jit(run)

    def init(self, params: Params) -> TrainState:
        """The starting state: params, the optimizer's state, step 0.

        >>> net = MLP((2, 1))
        >>> state = make_step(net, "mse", optax.adam(1e-3)).init(net.init(jax.random.key(0)))
        >>> int(state.step), state.params[0]["W"].shape, int(state.opt_state[0].count)
        (0, (1, 2), 0)
        """
        _checks.check_params(self.net, params)
        return init_state(self.net, self.optimizer, params)

    def __call__(self, state: TrainState, x: ArrayLike, y: ArrayLike, key: Any = None) -> tuple[TrainState, dict[str, Array]]:
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
        if isinstance(self.net, MLP):
            if key is not None:
                raise TypeError("`key` is for a network of blocks with dropout; an MLP's step takes (state, x, y)")
            return self._jit(state, x, y)
        x = _checks.as_array(x, "x")
        if x.ndim != 2:
            raise ValueError(f"`x` must be a batch (B, {self.net.sizes[0]}) for a training step, got shape {tuple(x.shape)}")
        self.net.check_mode(state.params, x, key, True)
        return self._jit(state, x, y, key)


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
    check_grad(grad, net)
    return Step(net, loss, check_optimizer(optimizer), grad)


# ---- learning rates by the epoch, and set by hand ------------------------------------------------
def steps_per_epoch(n: int, batch_size: int | None = None, drop_last: bool = False) -> int:
    """The optimizer steps ``fit`` takes per epoch on ``n`` examples: ⌈n / batch_size⌉ (⌊n / batch_size⌋
    with ``drop_last``; one for the full batch, ``batch_size=None``).

    >>> steps_per_epoch(1000, 32), steps_per_epoch(1000, 32, drop_last=True), steps_per_epoch(1000)
    (32, 31, 1)
    """
    n = _checks.check_int(n, "n", low=1)
    drop_last = _checks.check_flag(drop_last, "drop_last")
    if batch_size is None:
        return 1
    batch_size = min(_checks.check_int(batch_size, "batch_size", low=1), n)  # fit clamps it to n
    return n // batch_size if drop_last else -(-n // batch_size)


def per_epoch(schedule: Callable[[Any], Any], steps: int) -> Callable[[Any], Any]:
    """An optax schedule of the *epoch* as one of the optimizer's step count: ``schedule(step // steps)``,
    constant within an epoch of ``steps`` steps (see :func:`steps_per_epoch`).

    Example: the rate decays by 5% an epoch, over minibatches of 32 from 1,000 examples:
      >>> per_step = per_epoch(optax.exponential_decay(0.1, 1, 0.95), steps_per_epoch(1000, 32))
      >>> opt = optax.sgd(per_step)  # fit(..., optimizer=opt, batch_size=32)
      >>> [round(float(per_step(s)), 4) for s in (0, 31, 32, 64)]
      [0.1, 0.1, 0.095, 0.0903]
    """
    if not callable(schedule):
        raise TypeError(
            "`schedule` must be callable as schedule(epoch), e.g. optax.cosine_decay_schedule(0.1, 100), "
            f"got {type(schedule).__name__}"
        )
    steps = _checks.check_int(steps, "steps", low=1, high=_checks.INT32_MAX)  # optax counts steps in int32

    def by_step(count: Any) -> Any:
        return schedule(count // steps)

    return by_step


def _hyper_value(name: str, value: Any, old: Array) -> Array:
    """``value`` for the hyperparameter ``name`` in the dtype and shape of its ``old`` value, checked."""
    if not _checks.is_concrete(value):  # traced (a rate computed inside jit or a scan): its dtype and shape are known
        if not jnp.issubdtype(value.dtype, jnp.number) or value.size != old.size:
            raise TypeError(f"set_hyperparams: `{name}` must be a real number of shape {tuple(old.shape)}, got {value.aval}")
        return jnp.asarray(value, old.dtype).reshape(old.shape)
    try:
        a = np.asarray(jax.device_get(value))
    except (TypeError, ValueError):  # ragged
        a = np.asarray(None)
    if a.dtype.kind not in "iuf":
        raise TypeError(f"set_hyperparams: `{name}` must be a real number, got {type(value).__name__}: {value!r:.60}")
    if a.size != old.size:
        raise ValueError(f"set_hyperparams: `{name}` must have the shape {tuple(old.shape)} of its value, got shape {a.shape}")
    return jnp.asarray(a, old.dtype).reshape(old.shape)


def set_hyperparams(state: TrainState, **values: Any) -> TrainState:
    """``state`` with its optimizer's hyperparameters (``learning_rate=...``, ``momentum=...``) replaced: the
    optimizer must be made with ``optax.inject_hyperparams`` (alone, or anywhere inside a chain). For a
    hand-written loop: ``state = set_hyperparams(state, learning_rate=0.01)`` instead of rebuilding the
    optimizer state by hand. The values keep each hyperparameter's dtype and shape.

    Example:
      >>> net = MLP((2, 1))
      >>> step = make_step(net, "mse", optax.inject_hyperparams(optax.sgd)(learning_rate=0.1))
      >>> state = set_hyperparams(step.init(net.init(jax.random.key(0))), learning_rate=0.01)
      >>> round(float(state.opt_state.hyperparams["learning_rate"]), 6)
      0.01
    """
    if not isinstance(state, TrainState):
        raise TypeError(f"`state` must be a TrainState (step.init(params) or a step's result), got {type(state).__name__}")
    if not values:
        raise ValueError("set_hyperparams needs at least one name=value, e.g. learning_rate=0.01")
    found: set[str] = set()
    holders = 0

    def replace(node: Any) -> Any:
        nonlocal holders
        hyper = getattr(node, "hyperparams", None)
        if isinstance(hyper, dict) and hasattr(node, "_replace"):
            holders += 1
            new = dict(hyper)
            for name, value in values.items():
                if name in hyper:
                    found.add(name)
                    old = jnp.asarray(hyper[name])
                    new[name] = _hyper_value(name, value, old)
            return node._replace(hyperparams=new)
        if isinstance(node, tuple) and not hasattr(node, "_fields"):  # a chain's states
            return tuple(replace(s) for s in node)
        return node

    opt_state = replace(state.opt_state)
    if not holders:
        raise ValueError(
            "set_hyperparams needs an optimizer made with optax.inject_hyperparams, e.g. "
            "optax.inject_hyperparams(optax.sgd)(learning_rate=0.1); this state has no hyperparameters"
        )
    missing = sorted(set(values) - found)
    if missing:
        raise ValueError(f"set_hyperparams: {missing} are not hyperparameters of the optimizer")
    return state._replace(opt_state=opt_state)
