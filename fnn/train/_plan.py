"""The training plan: ``fit`` / ``fit_many``'s arguments checked and staged before anything compiles.

:func:`stage` turns a call into a :class:`Plan` (the static facts the loop is compiled for, hashable:
it keys the compilation cache) and :class:`Staged` arrays (the data the compiled loop reads). Every
mistake a user can make in a call to ``fit`` is caught here, in Python, with a message that names
the argument, what was expected and what came.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from fnn import _checks
from fnn.analysis import metrics as _metrics
from fnn.core import losses as _losses
from fnn.core.backprop import check_loss
from fnn.core.mlp import MLP, Params
from fnn.train import parallel as _parallel
from fnn.train._fingerprint import OptimizerKey
from fnn.train.step import check_grad

Array = jax.Array
PROBE = 1024  # the first rows: the probe of the dead-unit and saturated-output fractions


class Plan(NamedTuple):
    """Static facts the loop is compiled for (hashable: it keys the compilation cache)."""

    net: MLP
    loss: _losses.Loss  # the record, so a name and its record are one plan
    optimizer: OptimizerKey  # equal for equal optimizers (fresh optax.sgd(0.5) == optax.sgd(0.5))
    grad: str
    n: int  # training examples
    batch_size: int
    drop_last: bool
    shuffle: bool
    early_stopping: bool  # early stopping asked for: track the best parameters
    has_val: bool
    health: bool
    grad_norms: bool  # record the per-layer gradient norms (health implies them)
    acc_kind: str | None
    mesh: Any  # jax.sharding.Mesh or None
    split: bool = False  # the data's rows are split over the mesh: each device shuffles its own (fnn.parallel)
    # The rest serve callers that bring their own data layout and rules (fnn.sklearn); fit's plans keep the defaults.
    weighted: bool = False  # per-row weights (Arrays.w): the batch loss is Σ w·E / Σ w
    masked: bool = False  # n and batch_size are padded buckets; the real sizes are traced (Arrays.sizes), extra rows weigh 0
    host_orders: bool = False  # each epoch's order comes from the host (Arrays.orders[epoch - base]), not from the key
    l2: bool = False  # the objective adds ½·λ·Σ‖W‖² / Σ w (λ = Arrays.l2), its gradient λ·W / Σ w (no bias term)
    report_scale: float = 1.0  # the reported (and watched) loss is report_scale × the data term + the L2 term
    plateau: str | None = None  # the plateau rule on the training loss: None, "stop" or "reduce" the learning rate
    monitor: str = "val_loss"  # what early stopping watches: "val_loss" (lower is better) or "val_accuracy" (higher)


class Arrays(NamedTuple):
    """The device arrays the compiled loop reads (the training data and what is evaluated)."""

    x: Array  # (N, n_in)
    t: Array  # (N, n_out) targets in the output's shape
    xv: Array  # (N_val, n_in); without validation the training x, unused
    tv: Array
    probe: Array  # (≤ 1024, n_in) for the health metrics; without health the training x, unused
    w: Any = None  # (N,) row weights (Plan.weighted); None without
    sizes: Any = None  # (2,) int32: the real rows and batch size (Plan.masked)
    orders: Any = None  # (E, N) int32: the orders of the chunk's epochs (Plan.host_orders)
    l2: Any = None  # shape=(): the L2 strength λ (Plan.l2)


class Stops(NamedTuple):
    """The stop rules' values, traced: changing them does not recompile."""

    tol: ArrayLike  # shape=(): stop once an epoch's mean training loss is below it; -inf: no tol
    patience: ArrayLike  # shape=(), int32: early stopping's patience (unused without early stopping)
    # the plateau rule (Plan.plateau): an epoch whose loss is not below best − min_delta counts; after more than
    # `plateau_patience` such epochs in a row it fires: "stop" stops, "reduce" divides the learning rate by
    # `factor` and counts again (stopping instead once the rate is at or below `min_rate`)
    min_delta: ArrayLike = 0.0
    plateau_patience: ArrayLike = np.inf
    factor: ArrayLike = 5.0
    min_rate: ArrayLike = 1e-6
    early_min_delta: ArrayLike = 0.0  # early stopping: an improvement must beat the best by more than this


class Staged(NamedTuple):
    """A staged call: its arrays, the shuffling key, the number of epochs and the stop rules' values
    (none of them part of the compiled program)."""

    arrays: Arrays
    key: Array
    epochs: int
    rules: Stops


class LoopOptions(NamedTuple):
    """How ``fit`` and ``fit_many`` run their loop — epochs, minibatches, stop rules, what the history
    records, the mesh — as the user gave them (:func:`stage` checks what :func:`check_common` did not)."""

    epochs: Any
    batch_size: Any
    key: Any
    shuffle: Any
    drop_last: Any
    tol: Any
    validation: Any
    early_stopping: Any  # an EarlyStopping or None
    health: Any
    mesh: Any = None
    grad_norms: Any = False
    l2: Any = None  # L2 weight decay in the objective: λ (None: none)


MONITORS = ("val_loss", "val_accuracy")


@dataclasses.dataclass(frozen=True)
class EarlyStopping:
    """Stop once the validation metric has not improved for ``patience`` epochs, and return the best
    parameters: ``fit(..., validation=(x_val, y_val), early_stopping=EarlyStopping(5))``.

    An epoch improves when its ``monitor`` value beats the best so far by more than ``min_delta``:
    ``val_loss`` lower, ``val_accuracy`` higher (the direction follows the monitor). The parameters of
    the last improving epoch are returned (``history["best_epoch"]``); the run stops after
    ``patience`` epochs in a row without one. (Keras's ``EarlyStopping(restore_best_weights=True)``
    with ``min_delta``; scikit-learn's ``n_iter_no_change`` and ``tol`` on its validation score.)
    ``patience`` and ``min_delta`` are values of the compiled loop, not part of it: any of them reuses
    the program; each monitor has its own.

    Attributes:
      patience: epochs without an improvement before stopping (≥ 1).
      monitor: ``"val_loss"`` or ``"val_accuracy"`` (needs a loss with class labels).
      min_delta: the least change that counts as an improvement (≥ 0; default 0: any).

    Example:
      >>> EarlyStopping(5, monitor="val_accuracy", min_delta=0.001)
      EarlyStopping(patience=5, monitor='val_accuracy', min_delta=0.001)
    """

    patience: int
    monitor: str = "val_loss"
    min_delta: float = 0.0

    def __post_init__(self) -> None:
        patience = _checks.check_int(self.patience, "early_stopping.patience", low=1, high=_checks.INT32_MAX)
        object.__setattr__(self, "patience", patience)  # staged as an int32
        _checks.check_choice(self.monitor, "early_stopping.monitor", MONITORS)
        object.__setattr__(self, "min_delta", _checks.check_number(self.min_delta, "early_stopping.min_delta", 0.0))


def check_common(
    net: Any, loss: _losses.LossLike, grad: str, epochs: Any, tol: Any, early_stopping: Any, validation: Any
) -> _losses.Loss:
    """Checks shared by fit and fit_many that need no data; returns the loss's record (the one place a
    training call turns a loss name into its :class:`~fnn.Loss`: everything behind it takes the record)."""
    record = check_loss(net, loss)
    check_grad(grad, net)
    _checks.check_int(epochs, "epochs", low=1, high=_checks.INT32_MAX)  # the loop counts epochs in int32
    if tol is not None and (isinstance(tol, bool) or not isinstance(tol, (int, float)) or not math.isfinite(tol) or tol <= 0):
        raise ValueError(f"`tol` must be a positive number (stop once the training loss is below it), got {tol!r}")
    if early_stopping is not None and not isinstance(early_stopping, EarlyStopping):
        raise TypeError(
            "`early_stopping` must be an fnn.EarlyStopping, e.g. early_stopping=fnn.EarlyStopping(5, monitor='val_loss'), "
            f"got {type(early_stopping).__name__}: {early_stopping!r:.60}"
        )
    if early_stopping is not None and validation is None:
        raise ValueError("`early_stopping` needs `validation=(x_val, y_val)` to watch")
    return record


def _xy(net: Any, loss: _losses.Loss, pair: Any, name: str, dtype: Any) -> tuple[Array, Array, Array]:
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
    if loss.targets == "real" and np.dtype(y.dtype).kind == "f":  # (the other forms' ranges refuse NaN)
        _checks.check_finite(y, f"{name}[1]")
    t = _losses.targets(loss, y, net.sizes[-1], (x.shape[0],), dtype)
    return x.astype(dtype), t, y


def _split_data(mesh: Any, data: Any) -> bool:
    """Whether ``data`` is split over ``mesh`` (fnn.parallel.from_local / shard), x and y alike; a
    dataset this process does not hold in full needs that mesh."""
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        return False  # _xy names the problem
    if mesh is None:
        for name, a in zip(("data[0]", "data[1]"), data):
            if isinstance(a, jax.Array) and not a.is_fully_addressable:
                raise ValueError(
                    f"`{name}` is split over several processes' devices: fit trains on such data given the mesh it is "
                    "split over (`mesh=`); fit_many needs the whole dataset in every process"
                )
        return False
    split = [_parallel.is_split(mesh, a) for a in data]
    if split[0] != split[1]:
        which = "data[0]" if split[0] else "data[1]"
        raise ValueError(
            f"`{which}` is split over the mesh's devices but the other is not: place x and y alike "
            "(both with fnn.parallel.from_local or shard, or neither)"
        )
    return split[0]


def stage(
    net: Any, loss: _losses.Loss, optimizer: Any, grad: str, data: Any, dtype: Any, opt: LoopOptions
) -> tuple[Plan, Staged]:
    """Validate the data and options of a training call; build its :class:`Plan` and :class:`Staged` arrays.
    ``loss`` is the record :func:`check_common` returned."""
    for name in ("shuffle", "drop_last", "health", "grad_norms"):
        _checks.check_flag(getattr(opt, name), name)
    lam = None if opt.l2 is None else _checks.check_number(opt.l2, "l2", 0.0)
    if opt.health and not isinstance(net, MLP):
        raise ValueError(
            "`health` measures an MLP's hidden units (dead ReLUs, saturated outputs) layer by layer; a network of blocks "
            "or a model has no such layers: use grad_norms=True (the per-layer gradient norms) instead"
        )
    mesh = opt.mesh
    split = _split_data(mesh, data)
    x, t, y = _xy(net, loss, data, "data", dtype)
    if split:  # the targets made from split labels keep their rows where the labels' are
        t = jax.device_put(t, _parallel.batch_sharding(mesh, t.ndim))
    n = int(x.shape[0])
    batch_size = opt.batch_size
    if batch_size is not None:
        batch_size = _checks.check_int(batch_size, "batch_size", low=1)
    if batch_size is None:
        batch_size = n
    elif batch_size > n:
        warnings.warn(f"`batch_size` {batch_size} is larger than the dataset ({n} examples); using the full batch", stacklevel=4)
        batch_size = n
    batch_size = int(batch_size)
    shuffle = bool(opt.shuffle) and batch_size < n
    key = opt.key
    if key is None:
        if shuffle:
            raise ValueError("`key` is required to shuffle minibatches: pass key=jax.random.key(seed) (or shuffle=False)")
        key = jax.random.key(0)  # unused: the full batch needs no shuffling
    if not (jax.dtypes.issubdtype(getattr(key, "dtype", None), jax.dtypes.prng_key) and key.ndim == 1):
        _checks.check_key(key, "key")  # (fit_many checked a key per network against N)
    if opt.drop_last and n // batch_size == 0:
        raise ValueError(f"`drop_last` with batch_size {batch_size} would drop all {n} examples")
    if getattr(net, "batch_norm", False):
        last = 0 if opt.drop_last else n % batch_size
        if batch_size < 2 or last == 1:
            which = (
                f"`batch_size` {batch_size}"
                if batch_size < 2
                else f"the last minibatch ({n} examples % batch_size {batch_size} = 1)"
            )
            raise ValueError(
                f"batch norm computes each minibatch's statistics, which need at least 2 examples, but {which} holds one: "
                "pick another batch_size, or drop_last=True"
            )
    if net.random and opt.key is None:
        raise ValueError("the network has dropout, which draws from `key`: pass key=jax.random.key(seed)")
    if mesh is not None:
        if split:
            _parallel.check_divisible(mesh, n, "the number of examples of data split over devices")
        _parallel.check_divisible(mesh, batch_size, "`batch_size`")
        rem = n % batch_size
        if rem and not opt.drop_last:
            _parallel.check_divisible(mesh, rem, f"the last batch ({n} examples % batch_size {batch_size})")
    if opt.validation is not None:
        xv, tv, yv = _xy(net, loss, opt.validation, "validation", dtype)
    else:
        xv, tv, yv = x, t, y  # unused by the program (no validation): the same buffers, nothing sliced or compiled
    if split and opt.health:  # the probe is evaluated whole on every device
        probe = jax.jit(lambda a: a[:PROBE], out_shardings=_parallel.replicated(mesh))(x)
    else:
        probe = x[:PROBE] if opt.health and n > PROBE else x  # unused without health
    acc_kind = _metrics.accuracy_kind(loss, yv, net.sizes[-1])
    es = opt.early_stopping
    if es is not None and es.monitor == "val_accuracy" and acc_kind is None:
        raise ValueError(
            f"`early_stopping.monitor` 'val_accuracy' needs class labels to count: the loss {loss.name!r} with these "
            "targets has no accuracy; monitor 'val_loss'"
        )
    plan = Plan(
        net=net,
        loss=loss,
        optimizer=OptimizerKey(optimizer),
        grad=grad,
        n=n,
        batch_size=batch_size,
        drop_last=bool(opt.drop_last),
        shuffle=shuffle,
        early_stopping=opt.early_stopping is not None,
        has_val=opt.validation is not None,
        health=bool(opt.health),
        grad_norms=bool(opt.health) or bool(opt.grad_norms),
        acc_kind=acc_kind,
        mesh=mesh,
        split=split,
        l2=lam is not None,
        monitor="val_loss" if es is None else es.monitor,
    )
    arrays = Arrays(x, t, xv, tv, probe, l2=None if lam is None else np.asarray(lam, dtype))
    if mesh is not None:  # each distinct array replicated once (xv and probe may be x itself); split data stays
        placed = {id(a): a for a in arrays[:5] if not (split and _parallel.is_split(mesh, a))}
        placed = dict(zip(placed, _parallel.replicate(mesh, tuple(placed.values()))))
        arrays = arrays._replace(**{f: placed.get(id(a), a) for f, a in zip(Arrays._fields[:5], arrays[:5])})
    # numpy scalars: passed to the compiled loop as arguments (converting them with jnp would compile a kernel each)
    es = opt.early_stopping
    rules = Stops(
        np.asarray(-np.inf if opt.tol is None else float(opt.tol), dtype),
        np.asarray(0 if es is None else es.patience, np.int32),
        early_min_delta=np.asarray(0.0 if es is None else es.min_delta, dtype),
    )
    return plan, Staged(arrays, key, int(opt.epochs), rules)


def count_networks(net: Any, num_networks: int | None, params: Params | None, hyperparams: Any) -> int:
    """N for fit_many, from whichever of its arguments fix it (they must agree)."""
    sizes = {}
    if num_networks is not None:
        sizes["num_networks"] = _checks.check_int(num_networks, "num_networks", low=1)
    if params is not None:
        sizes["params"] = _checks.check_stacked(net, params, "params")
    if hyperparams is not None and not isinstance(hyperparams, Mapping):
        raise TypeError(
            "`hyperparams` must be a dict {name: one value per network}, e.g. {'learning_rate': jnp.array([0.1, 0.5])}, "
            f"got {type(hyperparams).__name__}: {hyperparams!r:.60}"
        )
    for name, values in (hyperparams or {}).items():
        if not isinstance(name, str):
            raise TypeError(f"`hyperparams` keys must be the optimizer's hyperparameter names (str), got {name!r:.40}")
        v = _checks.as_array(values, f"hyperparams[{name!r}]")
        if np.dtype(v.dtype).kind not in "iuf":
            raise TypeError(f"`hyperparams[{name!r}]` must hold real numbers, got dtype {v.dtype}")
        if v.ndim != 1 or v.shape[0] == 0:
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
