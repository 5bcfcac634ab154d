"""The results of :func:`fnn.fit_many` (a sweep of networks) as a researcher uses them.

(fnn 0.1 called this module ``fnn.ensemble`` and :func:`evaluate_all` ``evaluate``; both old names
still work for one release, with a DeprecationWarning.)


``fit_many`` returns parameters stacked over a leading network axis (``W``: (N, n_out, n_in)) and a
history whose arrays have that axis first. Here: one network as ordinary parameters
(:func:`network`), the best network by a history metric (:func:`best`), every network evaluated at
once in one compiled call (:func:`evaluate_all`), and the history viewed as the seeds × hyperparameters
grid it was trained as (:func:`grid`).

A *paired* sweep (:func:`paired_grid`, :func:`paired_params`, :func:`best_setting`: the settings compared
on the same starting weights, the best by its mean over seeds) is in :mod:`fnn.analysis.paired`; this
module exports its names too, the same objects.

Example:
  >>> import fnn, optax
  >>> net = MLP((2, 8, 2), hidden="tanh", output="softmax")
  >>> x, y = jnp.array([[0., 0.], [0., 1.], [1., 0.], [1., 1.]]), jnp.array([0, 1, 1, 0])
  >>> opt = optax.inject_hyperparams(optax.sgd)(learning_rate=0.1)
  >>> ps, hist = fnn.fit_many(net, (x, y), loss="cross_entropy", optimizer=opt, epochs=200, key=jax.random.key(0),
  ...                         hyperparams={"learning_rate": jnp.repeat(jnp.array([0.1, 1.0]), 3)}, progress=False)
  >>> i, p = best(net, ps, hist, "loss")  # the lowest final training loss
  >>> evaluate_all(net, ps, x, y, loss="cross_entropy")["loss"].shape, grid(hist, (2, 3))["loss"].shape
  ((6,), (2, 3, 200))
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from fnn import _checks
from fnn.analysis import metrics as _metrics
from fnn.analysis._history import final_metric
from fnn.analysis.paired import Grid, Setting, best_setting, paired_grid, paired_params
from fnn.core import losses as _losses
from fnn.core.backprop import check_loss
from fnn.core.mlp import MLP, Params

Array = jax.Array

__all__ = ["Grid", "Setting", "best", "best_setting", "evaluate_all", "grid", "network", "paired_grid", "paired_params", "size"]


def size(net: MLP, params: Params) -> int:
    """N, the number of networks stacked in ``params`` (checked against ``net``).

    >>> net = MLP((2, 3, 1))
    >>> size(net, jax.vmap(net.init)(jax.random.split(jax.random.key(0), 4)))
    4
    """
    _checks.check_net(net)
    return _checks.check_stacked(net, params)


def network(net: MLP, params: Params, i: int) -> Params:
    """Network ``i`` of stacked ``params`` as ordinary parameters (``i`` may be negative, as in a list).

    >>> net = MLP((2, 3, 1))
    >>> ps = jax.vmap(net.init)(jax.random.split(jax.random.key(0), 4))
    >>> [layer["W"].shape for layer in network(net, ps, -1)]
    [(3, 2), (1, 3)]
    """
    n = size(net, params)
    if isinstance(i, bool) or not isinstance(i, (int, np.integer)):
        raise TypeError(f"`i` must be an int (a network index), got {type(i).__name__}: {i!r}")
    if not -n <= i < n:
        raise IndexError(f"`i` = {i} is out of range for {n} stacked networks")
    if isinstance(net, MLP):  # a list of {"W", "b"} dicts, whatever sequence the stack came in
        return [{k: a[int(i)] for k, a in layer.items()} for layer in params]
    return jax.tree_util.tree_map(lambda a: a[int(i)], params)


def best(
    net: MLP, params: Params, history: dict[str, Any], metric: str = "val_loss", mode: str | None = None
) -> tuple[int, Params]:
    """The network with the best final value of ``history[metric]``, and its parameters.

    Args:
      net, params: the network and ``fit_many``'s stacked parameters.
      history: ``fit_many``'s history.
      metric: a per-epoch history entry, e.g. ``"val_loss"`` (the default: choose on validation
        data, not on the test set), ``"val_accuracy"`` or ``"loss"``.
      mode: ``"min"`` or ``"max"``; default ``"max"`` for accuracies, ``"min"`` otherwise.

    Returns:
      ``(i, params_i)``. Each network is scored at the epoch its parameters come from (its best
      epoch under early stopping, else its last); diverged networks and NaN values are never chosen.
      The one best network of a sweep is partly the luck of its seed: :func:`best_setting` chooses a
      setting by its mean (or median) over seeds.
    """
    n = size(net, params)
    values, mode = final_metric(history, n, metric, mode)
    if np.all(np.isnan(values)):
        raise ValueError(f"no network has a finite final `history[{metric!r}]` (all diverged?)")
    i = int(np.nanargmin(values) if mode == "min" else np.nanargmax(values))
    return i, network(net, params, i)


@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def _evaluate(net: MLP, loss: _losses.Loss, kind: str | None, params: Params, x: Array, t: Array) -> dict[str, Array]:
    def one(p: Params) -> dict[str, Array]:
        out, cache = net.propagate(p, x)
        return {"loss": _losses.value(loss, cache.z[-1], out, t), "accuracy": _metrics.accuracy(kind, out, t)}

    return jax.vmap(one)(params)


def evaluate_all(net: Any, params: Params, x: ArrayLike, y: ArrayLike, *, loss: _losses.LossLike) -> dict[str, Array]:
    """Loss and accuracy of every stacked network on ``(x, y)``, in one compiled call:
    ``{"loss": (N,), "accuracy": (N,)}`` (accuracy NaN for regression targets), as
    :func:`fnn.evaluate` gives for one network (a network of blocks in eval mode)."""
    check_loss(net, loss)
    n = size(net, params)
    if not isinstance(net, MLP) and net.stateful:  # eval mode: each network's running statistics trained and finite
        for i in range(n):
            net.check_mode(network(net, params, i), jnp.zeros((2, net.sizes[0])), None, False)
    x = _checks.check_x(net, x)
    y = _checks.as_array(y, "y")
    _checks.check_batch(x, y)
    _checks.check_finite(x, "x")
    dtype = jnp.result_type(x.dtype, _checks.params_dtype(params))
    t = _losses.targets(loss, y, net.sizes[-1], tuple(x.shape[:-1]), dtype)
    return _evaluate(net, _losses.get(loss), _metrics.accuracy_kind(loss, y, net.sizes[-1]), params, x, t)


def grid(history: dict[str, Any], shape: tuple[int, ...] | Grid) -> dict[str, Any]:
    """``history`` with every per-network entry reshaped from N to ``shape`` (e.g. (rates, seeds)):
    arrays (N, ...) become ``(*shape, ...)``, lists of N (``stop_reason``) nested numpy arrays of
    ``shape``. Network ``i`` sits at ``np.unravel_index(i, shape)``: with
    ``hyperparams={"learning_rate": jnp.repeat(rates, seeds)}``, ``shape = (len(rates), seeds)``.
    A :class:`Grid` stands for its shape (``grid(history, g)``: values × seeds). Other entries are
    kept as they are.

    >>> h = {"loss": np.zeros((6, 10)), "epochs_run": np.full(6, 10), "stop_reason": ["epochs"] * 6}
    >>> g = grid(h, (2, 3))
    >>> g["loss"].shape, g["epochs_run"].shape, g["stop_reason"].shape
    ((2, 3, 10), (2, 3), (2, 3))
    """
    if not isinstance(history, dict) or "epochs_run" not in history:
        raise TypeError("`history` must be the history dict fit_many returns")
    n = int(np.asarray(history["epochs_run"]).shape[0]) if np.ndim(history["epochs_run"]) else 1
    if isinstance(shape, Grid):
        shape = shape.shape
    if not isinstance(shape, tuple) or not all(isinstance(s, int) and s > 0 for s in shape) or int(np.prod(shape)) != n:
        raise ValueError(f"`shape` must be a tuple of positive ints whose product is the {n} networks, got {shape!r}")
    out: dict[str, Any] = {}
    for k, v in history.items():
        if isinstance(v, np.ndarray) and v.ndim >= 1 and v.shape[0] == n:
            out[k] = v.reshape(shape + v.shape[1:])
        elif isinstance(v, list) and len(v) == n:
            out[k] = np.array(v, dtype=object).reshape(shape)
        else:
            out[k] = v
    return out


def __getattr__(name: str) -> Any:
    """``evaluate``: fnn 0.1's name of :func:`evaluate_all`, with a DeprecationWarning."""
    if name == "evaluate":
        import warnings

        warnings.warn(
            "`fnn.sweep.evaluate` (fnn 0.1's `fnn.ensemble.evaluate`) is `fnn.sweep.evaluate_all` in fnn 0.2; "
            "the old name will be removed in 0.3",
            DeprecationWarning,
            stacklevel=2,
        )
        return evaluate_all
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
