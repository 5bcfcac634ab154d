"""The results of :func:`fnn.fit_many` (a sweep of networks) as a researcher uses them.

(fnn 0.1 called this module ``fnn.ensemble`` and :func:`evaluate_all` ``evaluate``; both old names
still work for one release, with a DeprecationWarning.)


``fit_many`` returns parameters stacked over a leading network axis (``W``: (N, n_out, n_in)) and a
history whose arrays have that axis first. Here: one network as ordinary parameters
(:func:`network`), the best network by a history metric (:func:`best`), every network evaluated at
once in one compiled call (:func:`evaluate_all`), and the history viewed as the seeds × hyperparameters
grid it was trained as (:func:`grid`).

A *paired* sweep: :func:`paired_grid` lays out hyperparameter values × seeds (one network per cell,
seeds the last axis), :func:`paired_params` gives every network of a seed bitwise the same starting
weights, so the settings are compared on the same draws and differ only by their hyperparameters, and
:func:`best_setting` picks the setting with the best mean (or median) over its seeds, with the spread.

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

  A paired sweep of the same network, 2 rates x 3 seeds:

  >>> g = paired_grid(seeds=3, learning_rate=[0.1, 1.0])  # 2 settings x 3 seeds: 6 networks
  >>> ps, hist = fnn.fit_many(net, (x, y), loss="cross_entropy", optimizer=opt, epochs=200, key=jax.random.key(0),
  ...                         params=paired_params(net, jax.random.key(1), g), hyperparams=g.hyperparams, progress=False)
  >>> s = best_setting(hist, g, "loss")  # the best mean final training loss over the 3 seeds
  >>> s.hyperparams, s.networks
  ({'learning_rate': 1.0}, (3, 4, 5))
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from fnn import _checks
from fnn.analysis import metrics as _metrics
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
    return [{k: a[int(i)] for k, a in layer.items()} for layer in params]


def _check_history(history: Any, n: int) -> None:
    """``history`` is fit_many's: a dict with ``epochs_run`` (and ``diverged``, ``best_epoch`` if there) of N ints."""
    if not isinstance(history, dict) or "epochs_run" not in history:
        raise TypeError("`history` must be the history dict fit_many returns")
    for key in ("epochs_run", "diverged", "best_epoch"):
        if key in history:
            v = np.asarray(history[key])
            if v.shape != (n,) or v.dtype.kind not in "biu":
                raise ValueError(f"`history[{key!r}]` must hold one int per network ({n}), got shape {v.shape} dtype {v.dtype}")


def _final(values: np.ndarray, history: dict[str, Any]) -> np.ndarray:
    """Each network's value at the epoch its returned parameters come from: its best epoch under early
    stopping (``fit_many`` then returns the best parameters), else its last epoch run. (N, epochs, ...) -> (N, ...)."""
    last = np.asarray(history["epochs_run"]) - 1
    if "best_epoch" in history:
        best = np.asarray(history["best_epoch"])
        last = np.where(best >= 0, best, last)
    idx = np.clip(last, 0, values.shape[1] - 1)
    return values[np.arange(values.shape[0]), idx]


def _final_metric(history: Any, n: int, metric: Any, mode: Any) -> tuple[np.ndarray, str]:
    """Each of the ``n`` networks' final ``history[metric]`` (float64, NaN for a diverged network) and the
    mode (``"min"`` or ``"max"``, from the metric's name when None), every argument checked."""
    _check_history(history, n)
    per_epoch = sorted(k for k, v in history.items() if isinstance(v, np.ndarray) and v.ndim >= 2 and v.shape[0] == n)
    if not isinstance(metric, str) or metric not in per_epoch:
        raise ValueError(f"`metric` {metric!r:.60} is not in this history; it has {per_epoch}")
    mode = ("max" if "accuracy" in metric else "min") if mode is None else mode
    if mode not in ("min", "max"):
        raise ValueError(f"`mode` must be 'min' or 'max', got {mode!r:.40}")
    try:
        values = _final(np.asarray(history[metric], np.float64), history)
    except (TypeError, ValueError):  # not numbers
        raise TypeError(f"`history[{metric!r}]` must hold numbers, got dtype {np.asarray(history[metric]).dtype}") from None
    if values.ndim > 1:
        raise ValueError(f"`metric` {metric!r} has one value per layer; choose by a scalar metric such as 'val_loss'")
    return np.where(np.asarray(history.get("diverged", np.zeros(n, bool))), np.nan, values), mode


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
    values, mode = _final_metric(history, n, metric, mode)
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


def evaluate_all(net: MLP, params: Params, x: ArrayLike, y: ArrayLike, *, loss: _losses.LossLike) -> dict[str, Array]:
    """Loss and accuracy of every stacked network on ``(x, y)``, in one compiled call:
    ``{"loss": (N,), "accuracy": (N,)}`` (accuracy NaN for regression targets), as
    :func:`fnn.evaluate` gives for one network."""
    check_loss(net, loss)
    size(net, params)
    x = _checks.check_x(net, x)
    y = _checks.as_array(y, "y")
    _checks.check_batch(x, y)
    _checks.check_finite(x, "x")
    dtype = jnp.result_type(x.dtype, params[-1]["W"].dtype)
    t = _losses.targets(loss, y, net.sizes[-1], tuple(x.shape[:-1]), dtype)
    return _evaluate(net, _losses.get(loss), _metrics.accuracy_kind(loss, y, net.sizes[-1]), params, x, t)


def grid(history: dict[str, Any], shape: tuple[int, ...] | Grid) -> dict[str, Any]:
    """``history`` with every per-network entry reshaped from N to ``shape`` (e.g. (rates, seeds)):
    arrays (N, ...) become (*shape, ...), lists of N (``stop_reason``) nested numpy arrays of
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


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class Grid:
    """Hyperparameter values × seeds, one network per cell (from :func:`paired_grid`).

    Network ``i`` sits at ``np.unravel_index(i, shape)``: the hyperparameters' axes in the order
    given, the seeds last (``i = setting · seeds + seed``), the layout of
    ``jnp.repeat(rates, seeds)`` and of :func:`grid`.

    Attributes:
      names: the hyperparameters' names, in the order of their axes.
      values: each hyperparameter's values (read-only 1-D numpy arrays).
      seeds: the number of seeds each setting is trained from.
    """

    names: tuple[str, ...]
    values: tuple[np.ndarray, ...]
    seeds: int

    @property
    def shape(self) -> tuple[int, ...]:
        """``(len(values[0]), ..., seeds)``."""
        return (*(len(v) for v in self.values), self.seeds)

    @property
    def size(self) -> int:
        """N, the number of networks: the product of :attr:`shape`."""
        return math.prod(self.shape)

    @property
    def settings(self) -> int:
        """The number of hyperparameter settings (cells of all but the seed axis)."""
        return math.prod(self.shape[:-1])

    @property
    def hyperparams(self) -> dict[str, np.ndarray]:
        """``{name: (N,) values}``, each network's value of each hyperparameter: ``fit_many``'s ``hyperparams``."""
        return {
            name: np.broadcast_to(v.reshape([-1 if j == k else 1 for j in range(len(self.shape))]), self.shape).reshape(-1)
            for k, (name, v) in enumerate(zip(self.names, self.values))
        }

    @property
    def seed(self) -> np.ndarray:
        """(N,) ints: each network's seed index (``i % seeds``); networks of one seed start alike under :func:`paired_params`."""
        return np.arange(self.size) % self.seeds

    def setting(self, j: int | tuple[int, ...]) -> dict[str, Any]:
        """The hyperparameters of setting ``j`` (a flat index below :attr:`settings`, or its position on
        the hyperparameters' axes) as Python numbers.

        >>> paired_grid(seeds=2, learning_rate=[0.1, 0.3], momentum=[0.0, 0.9]).setting((1, 0))
        {'learning_rate': 0.3, 'momentum': 0.0}
        """
        pos = self._position(j)
        return {name: v[p].item() for name, v, p in zip(self.names, self.values, pos)}

    def networks(self, j: int | tuple[int, ...]) -> tuple[int, ...]:
        """The network indices of setting ``j`` (as for :meth:`setting`), in seed order.

        >>> paired_grid(seeds=3, learning_rate=[0.1, 0.3]).networks(1)
        (3, 4, 5)
        """
        flat = int(np.ravel_multi_index(self._position(j), self.shape[:-1]))
        return tuple(range(flat * self.seeds, (flat + 1) * self.seeds))

    def _position(self, j: Any) -> tuple[int, ...]:
        """Setting ``j``'s position on the hyperparameters' axes, ``j`` checked."""
        axes = self.shape[:-1]
        if isinstance(j, (int, np.integer)) and not isinstance(j, (bool, np.bool_)):
            if not 0 <= j < self.settings:
                raise IndexError(f"setting `j` = {j} is out of range for the {self.settings} settings of {self!r}")
            return tuple(int(p) for p in np.unravel_index(int(j), axes))
        if (
            isinstance(j, tuple)
            and len(j) == len(axes)
            and all(isinstance(p, (int, np.integer)) and not isinstance(p, (bool, np.bool_)) for p in j)
        ):
            if not all(0 <= p < a for p, a in zip(j, axes)):
                raise IndexError(f"setting `j` = {j} is out of range for the axes {axes} of {self!r}")
            return tuple(int(p) for p in j)
        raise TypeError(f"setting `j` must be an int below {self.settings} or a tuple of {len(axes)} ints, got {j!r:.60}")

    def __repr__(self) -> str:
        axes = ", ".join(f"{n}={v.tolist()}" for n, v in zip(self.names, self.values))
        return f"Grid({axes}, seeds={self.seeds}: {self.size} networks)"


def paired_grid(seeds: int, **values: Sequence[float] | ArrayLike) -> Grid:
    """A paired sweep's layout: every combination of the hyperparameter ``values``, each trained from
    the same ``seeds`` seeds.

    Args:
      seeds: how many seeds (starting points) every setting is trained from, ≥ 1.
      **values: ``name=[v0, v1, ...]`` for each hyperparameter swept (names of an
        ``optax.inject_hyperparams`` optimizer's hyperparameters, e.g. ``learning_rate``), at least one;
        each a non-empty 1-D sequence of finite real numbers. Their order is the order of the axes.

    Returns:
      A :class:`Grid`: ``g.hyperparams`` is ``fit_many``'s ``hyperparams``, ``g.seed`` each network's
      seed, ``g.shape`` the grid (``grid(history, g)``); :func:`paired_params` draws the starting weights.

    >>> g = paired_grid(seeds=2, learning_rate=[0.01, 0.1, 0.3])
    >>> g, g.shape, g.hyperparams["learning_rate"].tolist(), g.seed.tolist()
    (Grid(learning_rate=[0.01, 0.1, 0.3], seeds=2: 6 networks), (3, 2), [0.01, 0.01, 0.1, 0.1, 0.3, 0.3], [0, 1, 0, 1, 0, 1])
    """
    seeds = _checks.check_int(seeds, "seeds", 1)
    if not values:
        raise ValueError(
            "`paired_grid` needs at least one hyperparameter's values besides `seeds`, e.g. learning_rate=[0.01, 0.1]"
        )
    arrays = []
    for name, v in values.items():
        try:
            a = np.array(jax.device_get(v))
        except (TypeError, ValueError) as e:  # ragged
            raise TypeError(f"`{name}` must be a 1-D sequence of numbers, got {type(v).__name__}: {e}") from None
        if a.dtype.kind not in "iuf":
            raise TypeError(f"`{name}` must hold real numbers, got dtype {a.dtype}: {v!r:.60}")
        if a.ndim != 1 or a.size == 0:
            raise ValueError(f"`{name}` must be a non-empty 1-D sequence of values (one axis of the grid), got shape {a.shape}")
        if a.dtype.kind == "f" and not np.isfinite(a).all():
            raise ValueError(f"`{name}` must hold finite values, got {a.tolist()!r:.80}")
        a.setflags(write=False)
        arrays.append(a)
    _checks.check_memory(math.prod(len(a) for a in arrays) * seeds, 8, "the networks of `paired_grid`")
    return Grid(tuple(values), tuple(arrays), seeds)


def _check_grid(grid: Any) -> Grid:
    """``grid`` is a :class:`Grid` (a TypeError naming the argument otherwise)."""
    if not isinstance(grid, Grid):
        raise TypeError(
            "`grid` must be an fnn.sweep.Grid from paired_grid(seeds=..., learning_rate=[...]), "
            f"got {type(grid).__name__}: {grid!r:.60}"
        )
    return grid


def paired_params(net: MLP, key: Array, grid: Grid, dtype: Any = None) -> Params:
    """Starting parameters of ``grid``'s N networks, stacked as ``fit_many(params=...)`` takes them,
    every network of one seed starting from bitwise the same weights.

    Network ``i`` starts from ``net.init(jax.random.split(key, grid.seeds)[grid.seed[i]])``: the
    ``seeds`` draws of :meth:`MLP.init_stacked`, repeated across the settings. A grid's settings then
    differ only by their hyperparameters, seed by seed (paired), and adding a setting or a seed leaves
    the other networks' starting points as they were. (``fit_many`` still gives every network its own
    shuffling order; with full-batch training there is none.)

    Args:
      net: the network.
      key: a ``jax.random`` key for the seeds' draws.
      grid: from :func:`paired_grid`.
      dtype: as for :meth:`MLP.init`.

    >>> net = MLP((2, 3, 1))
    >>> ps = paired_params(net, jax.random.key(0), paired_grid(seeds=2, learning_rate=[0.1, 0.3, 1.0]))
    >>> ps[0]["W"].shape, bool(jnp.array_equal(ps[0]["W"][1], ps[0]["W"][5])), bool(jnp.array_equal(ps[0]["W"][0], ps[0]["W"][1]))
    ((6, 3, 2), True, False)
    """
    _checks.check_net(net)
    _check_grid(grid)
    base = net.init_stacked(key, grid.seeds, dtype)  # (seeds, ...) every leaf; key and dtype checked there
    _checks.check_memory(net.num_params * grid.size, base[0]["W"].dtype.itemsize, f"the parameters of {grid!r}")
    idx = jnp.asarray(grid.seed, jnp.int32)
    return [{k: jnp.take(a, idx, axis=0) for k, a in layer.items()} for layer in base]


@dataclasses.dataclass(frozen=True, eq=False)
class Setting:
    """A sweep's setting chosen by :func:`best_setting`: its hyperparameters and its seeds' final values.

    Attributes:
      hyperparams: ``{name: value}`` of the setting (Python numbers).
      index: its position on the grid's hyperparameter axes.
      networks: its networks' indices in ``fit_many``'s stacked results, in seed order
        (``fnn.sweep.network(net, ps, s.networks[k])`` is seed k's network).
      values: (seeds,) each seed's final metric.
      score: the mean or median of ``values`` (``reduce``), the value the setting was chosen by.
      mean, median, std, min, max: over the seeds (``std`` the sample standard deviation, ddof = 1:
        NaN for one seed).
      scores: every setting's score, shape ``grid.shape[:-1]``; NaN for a setting with a diverged seed.
      metric, reduce, mode: what was compared, how.
    """

    hyperparams: dict[str, Any]
    index: tuple[int, ...]
    networks: tuple[int, ...]
    values: np.ndarray
    score: float
    mean: float
    median: float
    std: float
    min: float
    max: float
    scores: np.ndarray
    metric: str
    reduce: str
    mode: str

    def __str__(self) -> str:
        setting = ", ".join(f"{k}={v:g}" for k, v in self.hyperparams.items())
        return (
            f"{setting}: {self.metric} mean {self.mean:.4g} ± {self.std:.2g} (std over {len(self.networks)} seeds), "
            f"median {self.median:.4g}, min {self.min:.4g}, max {self.max:.4g}; chosen by the {self.reduce}; "
            f"networks {list(self.networks)}"
        )


def best_setting(
    history: dict[str, Any], grid: Grid, metric: str = "val_loss", mode: str | None = None, *, reduce: str = "mean"
) -> Setting:
    """The hyperparameter setting with the best mean (or median) final ``history[metric]`` over its seeds.

    Where :func:`best` picks the one best network, which is partly the luck of its seed, this compares
    settings by what their seeds have in common, and reports the spread beside it.

    Args:
      history: ``fit_many``'s history of ``grid``'s N networks (in the grid's order: network ``i`` with
        ``hyperparams=grid.hyperparams``).
      grid: from :func:`paired_grid`.
      metric, mode: as for :func:`best` (default ``"val_loss"``; ``mode`` ``"max"`` for accuracies,
        ``"min"`` otherwise).
      reduce: ``"mean"`` or ``"median"`` over the seeds.

    Returns:
      A :class:`Setting`: hyperparameters, score, mean / median / std / min / max over the seeds, and
      the setting's network indices. Each network is scored as :func:`best` scores it (at the epoch its
      parameters come from). A setting with a diverged seed (or a NaN value) is never chosen: a setting
      is only as sound as its worst seed; ``scores`` shows it as NaN.

    >>> g = paired_grid(seeds=2, learning_rate=[0.1, 1.0])
    >>> h = {"val_loss": np.array([[0.5, 0.10], [0.5, 0.50], [0.5, 0.20], [0.5, 0.21]]), "epochs_run": np.full(4, 2)}
    >>> s = best_setting(h, g)  # network 0 alone is best (0.10), but rate 1.0 is better on average (0.205 < 0.30)
    >>> s.hyperparams, s.networks, round(s.score, 3), (s.min, s.max)
    ({'learning_rate': 1.0}, (2, 3), 0.205, (0.2, 0.21))
    """
    _check_grid(grid)
    if reduce not in ("mean", "median"):
        raise ValueError(f"`reduce` must be 'mean' or 'median', got {reduce!r:.40}")
    if isinstance(history, dict) and "epochs_run" in history:
        n = int(np.size(history["epochs_run"]))
        if n != grid.size:
            raise ValueError(
                f"`history` holds {n} networks but `grid` lays out {grid.size} ({grid!r}): "
                "pass the history of fit_many(..., hyperparams=grid.hyperparams)"
            )
    values, mode = _final_metric(history, grid.size, metric, mode)
    rows = values.reshape(grid.settings, grid.seeds)  # (settings, seeds)
    sound = np.isfinite(rows).all(axis=1)
    with np.errstate(invalid="ignore"):
        scores = np.where(sound, np.mean(rows, 1) if reduce == "mean" else np.median(rows, 1), np.nan)
    if not sound.any():
        raise ValueError(
            f"no setting has a finite final `history[{metric!r}]` on every seed: each of the {grid.settings} settings "
            "has a diverged seed or a NaN value"
        )
    j = int(np.nanargmin(scores) if mode == "min" else np.nanargmax(scores))
    row = rows[j]
    return Setting(
        hyperparams=grid.setting(j),
        index=tuple(int(p) for p in np.unravel_index(j, grid.shape[:-1])),
        networks=grid.networks(j),
        values=row.copy(),
        score=float(scores[j]),
        mean=float(np.mean(row)),
        median=float(np.median(row)),
        std=float(np.std(row, ddof=1)) if grid.seeds > 1 else float("nan"),
        min=float(np.min(row)),
        max=float(np.max(row)),
        scores=scores.reshape(grid.shape[:-1]),
        metric=metric,
        reduce=reduce,
        mode=mode,
    )


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
