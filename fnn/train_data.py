"""Checking and staging the arguments of ``fit`` / ``fit_many`` before anything is compiled.

Every mistake a user can make in a call to ``fit`` is caught here, in Python, with a message
that names the argument, what was expected and what came.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from fnn import _checks, _loop
from fnn import losses as _losses
from fnn import metrics as _metrics
from fnn import parallel as _parallel
from fnn.backprop import _check_loss
from fnn.mlp import MLP, Params

Array = jax.Array
PROBE = 1024  # examples used for the dead / saturated unit fractions


class Prepared(NamedTuple):
    """Device arrays the compiled loop reads."""

    x: Array  # (N, n_in)
    t: Array  # (N, n_out) targets in the output's shape
    xv: Array  # (N_val, n_in) or a dummy (1, n_in)
    tv: Array
    probe: Array  # (≤ 1024, n_in) for health metrics
    key: Array


def _positive_int(value: Any, name: str, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(
            f"`{name}` must be a positive int{' or None' if allow_none else ''}, got {type(value).__name__}: {value!r}"
        )
    if value <= 0:
        raise ValueError(f"`{name}` must be a positive int, got {value}")


def check_grad(grad: Any) -> None:
    """``grad`` names the backward pass: ``"manual"`` or ``"autodiff"``."""
    if grad not in ("manual", "autodiff"):
        raise ValueError(f"`grad` must be 'manual' or 'autodiff', got {grad!r}")


def check_common(net: MLP, loss: _losses.LossLike, grad: str, epochs: Any, tol: Any, patience: Any, validation: Any) -> None:
    """Checks shared by fit and fit_many that need no data."""
    _check_loss(net, loss)
    check_grad(grad)
    _positive_int(epochs, "epochs")
    if tol is not None and (isinstance(tol, bool) or not isinstance(tol, (int, float)) or not math.isfinite(tol) or tol <= 0):
        raise ValueError(f"`tol` must be a positive number (stop once the training loss is below it), got {tol!r}")
    _positive_int(patience, "patience", allow_none=True)
    if patience is not None and validation is None:
        raise ValueError("`patience` (early stopping) needs `validation=(x_val, y_val)` to watch")


def _xy(net: MLP, loss: _losses.LossLike, pair: Any, name: str, dtype: Any) -> tuple[Array, Array, Array]:
    """Validate one (x, y) pair; return x cast to dtype, the targets, and y as given."""
    if not isinstance(pair, (tuple, list)) or len(pair) != 2:
        raise TypeError(
            f"`{name}` must be a pair (x, y), got {type(pair).__name__}"
            + (f" of length {len(pair)}" if isinstance(pair, (tuple, list)) else "")
        )
    x = _checks.check_x(net, pair[0], f"{name}[0]")
    if x.ndim != 2:
        raise ValueError(f"`{name}[0]` must be a dataset of shape (N, {net.sizes[0]}), got shape {tuple(x.shape)}")
    if x.shape[0] == 0:
        raise ValueError(f"`{name}` is empty: x has shape {tuple(x.shape)}; training needs at least one example")
    y = _checks.as_array(pair[1], f"{name}[1]")
    _checks.check_batch(x, y, f"{name}[0]", f"{name}[1]")
    _checks.check_finite(x, f"{name}[0]")
    t = _losses.targets(loss, y, net.sizes[-1], (x.shape[0],), dtype)
    return x.astype(dtype), t, y


def prepare(
    net: MLP,
    loss: _losses.LossLike,
    optimizer: Any,
    grad: str,
    data: Any,
    dtype: Any,
    *,
    epochs: int,
    batch_size: int | None,
    key: Any,
    shuffle: bool,
    drop_last: bool,
    tol: float | None,
    validation: Any,
    patience: int | None,
    health: bool,
    mesh: Any,
) -> tuple[Prepared, _loop.Config]:
    """Validate the data and options of a training call; build the loop's static config."""
    x, t, y = _xy(net, loss, data, "data", dtype)
    n = int(x.shape[0])
    _positive_int(batch_size, "batch_size", allow_none=True)
    if batch_size is None:
        batch_size = n
    elif batch_size > n:
        warnings.warn(f"`batch_size` {batch_size} is larger than the dataset ({n} examples); using the full batch", stacklevel=3)
        batch_size = n
    batch_size = int(batch_size)
    shuffle = bool(shuffle) and batch_size < n
    if key is None:
        if shuffle:
            raise ValueError("`key` is required to shuffle minibatches: pass key=jax.random.key(seed) (or shuffle=False)")
        key = jax.random.key(0)  # unused: the full batch needs no shuffling
    _checks.check_key(key, "key")
    if drop_last and n // batch_size == 0:
        raise ValueError(f"`drop_last` with batch_size {batch_size} would drop all {n} examples")
    if mesh is not None:
        _parallel.check_divisible(mesh, batch_size, "`batch_size`")
        rem = n % batch_size
        if rem and not drop_last:
            _parallel.check_divisible(mesh, rem, f"the last batch ({n} examples % batch_size {batch_size})")
    if validation is not None:
        xv, tv, yv = _xy(net, loss, validation, "validation", dtype)
    else:
        xv, tv, yv = x[:1], t[:1], y
    probe = x[: min(n, PROBE)] if health else x[:1]
    cfg = _loop.Config(
        net=net,
        loss=loss,
        optimizer=optimizer,
        grad=grad,
        n=n,
        batch_size=batch_size,
        drop_last=bool(drop_last),
        shuffle=shuffle,
        epochs=int(epochs),
        tol=None if tol is None else float(tol),
        patience=patience,
        has_val=validation is not None,
        health=bool(health),
        acc_kind=_metrics.accuracy_kind(loss, yv, net.sizes[-1]),
        mesh=mesh,
    )
    arrays = (x, t, xv, tv, probe)
    if mesh is not None:
        arrays = _parallel.replicate(mesh, arrays)
    return Prepared(*arrays, key), cfg


def count_networks(net: MLP, num_networks: int | None, params: Params | None, hyperparams: dict | None) -> int:
    """N for fit_many, from whichever of its arguments fix it (they must agree)."""
    sizes = {}
    if num_networks is not None:
        if isinstance(num_networks, bool) or not isinstance(num_networks, int) or num_networks < 1:
            raise ValueError(f"`num_networks` must be a positive int, got {num_networks!r}")
        sizes["num_networks"] = num_networks
    if params is not None:
        if (
            not isinstance(params, (list, tuple))
            or not params
            or not hasattr(params[0].get("W"), "shape")
            or params[0]["W"].ndim != 3
        ):
            raise ValueError("`params` for fit_many must be stacked over a leading network axis: W of shape (N, n_out, n_in)")
        sizes["params"] = int(params[0]["W"].shape[0])
        _checks.check_params(net, jax.tree_util.tree_map(lambda a: a[0], params))
        for l, layer in enumerate(params):
            for leaf, a in layer.items():
                if a.shape[0] != sizes["params"]:
                    raise ValueError(
                        f"`params[{l}][{leaf!r}]` stacks {a.shape[0]} networks but `params[0]['W']` stacks {sizes['params']}"
                    )
    for name, values in (hyperparams or {}).items():
        v = np.asarray(values)
        if v.ndim != 1:
            raise ValueError(f"`hyperparams[{name!r}]` must be a 1-D array with one value per network, got shape {v.shape}")
        sizes[f"hyperparams[{name!r}]"] = int(v.shape[0])
    if not sizes:
        raise ValueError("fit_many needs `num_networks`, stacked `params` or `hyperparams` to know how many networks to train")
    if len(set(sizes.values())) > 1:
        raise ValueError(f"the number of networks disagrees: {sizes}")
    return next(iter(sizes.values()))


def inject_hyperparams(opt_state: Any, hyperparams: dict[str, ArrayLike], n: int) -> Any:
    """Overwrite an ``optax.inject_hyperparams`` state's values with one per network."""
    current = getattr(opt_state, "hyperparams", None)
    if not isinstance(current, dict):
        raise ValueError(
            "`hyperparams` needs an optimizer made with optax.inject_hyperparams, "
            "e.g. optax.inject_hyperparams(optax.sgd)(learning_rate=0.1)"
        )
    unknown = set(hyperparams) - set(current)
    if unknown:
        raise ValueError(
            f"`hyperparams` names {sorted(unknown)} are not hyperparameters of the optimizer; it has {sorted(current)}"
        )
    new = dict(current)
    for name, v in hyperparams.items():
        new[name] = jnp.asarray(v, jnp.asarray(current[name]).dtype).reshape((n, *jnp.shape(current[name])[1:]))
    return opt_state._replace(hyperparams=new)
