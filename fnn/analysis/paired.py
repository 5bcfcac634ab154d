"""A *paired* sweep: the settings of a hyperparameter sweep compared on the same starting weights.

:func:`paired_grid` lays out hyperparameter values × seeds (one network per cell, seeds the last axis),
:func:`paired_params` gives every network of a seed bitwise the same starting weights, so the settings
are compared on the same draws and differ only by their hyperparameters, and :func:`best_setting` picks
the setting with the best mean (or median) over its seeds, with the spread.

``fnn.sweep`` (:mod:`fnn.analysis.sweep`, the rest of :func:`fnn.fit_many`'s results) exports every
name of this module.

Example: 2 rates x 3 seeds.
  >>> import fnn, optax
  >>> net = MLP((2, 8, 2), hidden="tanh", output="softmax")
  >>> x, y = jnp.array([[0., 0.], [0., 1.], [1., 0.], [1., 1.]]), jnp.array([0, 1, 1, 0])
  >>> opt = optax.inject_hyperparams(optax.sgd)(learning_rate=0.1)
  >>> g = paired_grid(seeds=3, learning_rate=[0.1, 1.0])  # 2 settings x 3 seeds: 6 networks
  >>> ps, hist = fnn.fit_many(net, (x, y), loss="cross_entropy", optimizer=opt, epochs=200, key=jax.random.key(0),
  ...                         params=paired_params(net, jax.random.key(1), g), hyperparams=g.hyperparams, progress=False)
  >>> s = best_setting(hist, g, "loss")  # the best mean final training loss over the 3 seeds
  >>> s.hyperparams, s.networks
  ({'learning_rate': 1.0}, (3, 4, 5))
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from fnn import _checks
from fnn.analysis._history import final_metric
from fnn.core.mlp import MLP, Params

Array = jax.Array

__all__ = ["Grid", "Setting", "best_setting", "paired_grid", "paired_params"]


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class Grid:
    """Hyperparameter values × seeds, one network per cell (from :func:`paired_grid`).

    Network ``i`` sits at ``np.unravel_index(i, shape)``: the hyperparameters' axes in the order
    given, the seeds last (``i = setting · seeds + seed``), the layout of
    ``jnp.repeat(rates, seeds)`` and of :func:`fnn.sweep.grid`.

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
        """N, the number of networks (the product of :attr:`shape`)."""
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
        """Each network's seed index (``i % seeds``), (N,) ints; networks of one seed start alike under :func:`paired_params`."""
        return np.arange(self.size) % self.seeds

    def keys(self, key: Array) -> Array:
        """(N,) shuffling keys for ``fit_many(key=...)``, one per network, equal within a seed: network
        ``i`` gets ``jax.random.split(key, seeds)[seed[i]]``, so with :func:`paired_params` every setting
        of a seed starts from the same weights *and* sees the same minibatch order.

        >>> g = paired_grid(seeds=2, learning_rate=[0.1, 0.3])
        >>> k = jax.random.key_data(g.keys(jax.random.key(1)))
        >>> k.shape, bool((k[0] == k[2]).all()), bool((k[0] == k[1]).all())
        ((4, 2), True, False)
        """
        _checks.check_key(key, "key")
        return jax.random.split(key, self.seeds)[jnp.asarray(self.seed, jnp.int32)]

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
      seed, ``g.shape`` the grid (``fnn.sweep.grid(history, g)``); :func:`paired_params` draws the starting weights.

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


def paired_params(net: Any, key: Array, grid: Grid, dtype: Any = None) -> Params:
    """Starting parameters of ``grid``'s N networks, stacked as ``fit_many(params=...)`` takes them,
    every network of one seed starting from bitwise the same weights.

    Network ``i`` starts from ``net.init(jax.random.split(key, grid.seeds)[grid.seed[i]])``: the
    ``seeds`` draws of :meth:`MLP.init_stacked`, repeated across the settings. A grid's settings then
    differ only by their hyperparameters, seed by seed (paired), and adding a setting or a seed leaves
    the other networks' starting points as they were. With ``fit_many(..., key=grid.keys(key))`` the
    networks of a seed also share their minibatch order (by default each network shuffles its own).

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
    if isinstance(net, MLP):  # a list of {"W", "b"}, as 0.2 made them
        return [{k: jnp.take(a, idx, axis=0) for k, a in layer.items()} for layer in base]
    return jax.tree_util.tree_map(lambda a: jnp.take(a, idx, axis=0), base)  # any tree: a network of blocks, a model


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

    Where :func:`fnn.sweep.best` picks the one best network, which is partly the luck of its seed, this compares
    settings by what their seeds have in common, and reports the spread beside it.

    Args:
      history: ``fit_many``'s history of ``grid``'s N networks (in the grid's order: network ``i`` with
        ``hyperparams=grid.hyperparams``).
      grid: from :func:`paired_grid`.
      metric, mode: as for :func:`fnn.sweep.best` (default ``"val_loss"``; ``mode`` ``"max"`` for accuracies,
        ``"min"`` otherwise).
      reduce: ``"mean"`` or ``"median"`` over the seeds.

    Returns:
      A :class:`Setting`: hyperparameters, score, mean / median / std / min / max over the seeds, and
      the setting's network indices. Each network is scored as :func:`fnn.sweep.best` scores it (at the epoch its
      parameters come from). A setting with a diverged seed (or a NaN value) is never chosen: a setting
      is only as sound as its worst seed; ``scores`` shows it as NaN.

    >>> g = paired_grid(seeds=2, learning_rate=[0.1, 1.0])
    >>> h = {"val_loss": np.array([[0.5, 0.10], [0.5, 0.50], [0.5, 0.20], [0.5, 0.21]]), "epochs_run": np.full(4, 2)}
    >>> s = best_setting(h, g)  # network 0 alone is best (0.10), but rate 1.0 is better on average (0.205 < 0.30)
    >>> s.hyperparams, s.networks, round(s.score, 3), (s.min, s.max)
    ({'learning_rate': 1.0}, (2, 3), 0.205, (0.2, 0.21))
    """
    _check_grid(grid)
    if not (isinstance(reduce, str) and reduce in ("mean", "median")):
        raise ValueError(f"`reduce` must be 'mean' or 'median', got {reduce!r:.40}")
    if isinstance(history, dict) and "epochs_run" in history:
        n = int(np.size(history["epochs_run"]))
        if n != grid.size:
            raise ValueError(
                f"`history` holds {n} networks but `grid` lays out {grid.size} ({grid!r}): "
                "pass the history of fit_many(..., hyperparams=grid.hyperparams)"
            )
    values, mode = final_metric(history, grid.size, metric, mode)
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
