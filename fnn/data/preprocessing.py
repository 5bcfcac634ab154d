"""Preparing data for training: a keyed train/test split, standardisation fitted on the training
split alone, and one-hot labels. (Re-exported by :mod:`fnn.datasets`.)"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from fnn import _checks

Array = jax.Array


def train_test_split(key: Array, x: ArrayLike, y: ArrayLike, test_fraction: float = 0.2, stratify: bool = False) -> tuple:
    """Shuffle the rows with ``key`` and hold out ``test_fraction`` of them.

    The test split gets ``ceil(test_fraction·n)`` rows; with ``stratify=True`` each class c gives
    ``round(test_fraction·n_c)`` instead, so both splits keep the class proportions.

    Args:
      x: (n, ...) inputs, numpy or jax (the splits keep the array type).
      y: (n,) class indices, or (n, K) one-hot (``stratify`` then uses the argmax).
      test_fraction: in (0, 1).

    Returns:
      ``(x_train, y_train, x_test, y_test)``, the order of :func:`mnist` and :func:`mnist1d`.

    Example:
      >>> x, y = jnp.arange(200.0).reshape(100, 2), jnp.arange(100) % 2
      >>> x_tr, y_tr, x_te, y_te = train_test_split(jax.random.key(1), x, y, 0.25)
      >>> x_tr.shape, x_te.shape
      ((75, 2), (25, 2))
    """
    _checks.check_key(key, "key")
    xa, ya = _checks.as_array(x, "x"), _checks.as_array(y, "y")
    if xa.ndim < 1 or ya.ndim < 1 or ya.shape[0] != xa.shape[0]:
        raise ValueError(f"`x` and `y` need the same number of rows, got shapes {tuple(xa.shape)} and {tuple(ya.shape)}")
    if isinstance(test_fraction, bool) or not isinstance(test_fraction, (int, float, np.floating)) or not 0 < test_fraction < 1:
        raise ValueError(f"`test_fraction` must be a number in (0, 1), got {test_fraction!r}")
    stratify = _checks.check_flag(stratify, "stratify")
    n = xa.shape[0]
    if stratify:  # per class c: round(test_fraction·n_c) rows, counted before anything is drawn
        labels = np.asarray(ya if ya.ndim == 1 else np.argmax(np.asarray(ya), axis=-1))
        classes, counts = np.unique(labels, return_counts=True)
        take = [math.floor(test_fraction * c + 0.5) for c in counts]
    else:
        take = [math.ceil(test_fraction * n - 1e-9)]  # so that 0.1·30 gives 3, not 4
    if sum(take) in (0, n):
        raise ValueError(
            f"`test_fraction`={test_fraction} of {n} rows leaves {n - sum(take)} to train on and "
            f"{sum(take)} to test; both need one or more"
        )
    perm = np.asarray(jax.random.permutation(key, n))
    test = np.zeros(n, bool)
    if stratify:
        shuffled = labels[perm]
        for c, m in zip(classes, take):
            test[np.flatnonzero(shuffled == c)[:m]] = True
    else:
        test[: take[0]] = True
    train_idx, test_idx = perm[~test], perm[test]
    return xa[train_idx], ya[train_idx], xa[test_idx], ya[test_idx]


def standardize(x_train: ArrayLike, *others: ArrayLike, eps: float = 1e-8) -> tuple[Array, ...]:
    """Per-feature ``(x - mean) / std``, the statistics fitted on ``x_train`` alone.

    .. math::  μ = \\tfrac1n Σ_i x_i, \\quad s = \\sqrt{\\tfrac1n Σ_i (x_i - μ)^2},
               \\quad σ = s \\text{ where } s > \\text{eps}, \\text{ else } 1

    A feature constant in ``x_train`` (a digit's border pixel) is only centred, as scikit-learn's
    ``StandardScaler`` does: it becomes 0 in ``x_train``, and in the other arrays it keeps its distance
    from the training value instead of being divided by a tiny σ (a pixel that is always 0 in training
    and 16 in one test digit becomes 16 there, not 16 / eps).

    Args:
      x_train: (n, ...) training inputs; statistics over axis 0.
      *others: more arrays (validation, test) with the same trailing shape.

    Returns:
      ``(x_train_s, *others_s, mean, std)``, mean and std of shape ``x_train.shape[1:]`` (std as used,
      1 for a constant feature, so that ``x = x_s * std + mean``).

    Example:
      >>> x_tr, x_te, mean, std = standardize(jnp.array([[0.0], [2.0]]), jnp.array([[4.0]]))
      >>> x_tr.tolist(), x_te.tolist(), mean.tolist(), std.tolist()
      ([[-1.0], [1.0]], [[3.0]], [1.0], [1.0])
      >>> x_tr, x_te, _, std = standardize(jnp.array([[0.0, 1.0], [0.0, 3.0]]), jnp.array([[1.0, 2.0]]))
      >>> x_tr.tolist(), x_te.tolist(), std.tolist()  # the first feature is constant in training: centred only
      ([[0.0, -1.0], [0.0, 1.0]], [[1.0, 0.0]], [1.0, 1.0])
    """
    arrays = [_checks.as_array(a, f"others[{i - 1}]" if i else "x_train") for i, a in enumerate((x_train, *others))]
    for i, a in enumerate(arrays):
        if np.dtype(a.dtype).kind not in "biuf" and not jnp.issubdtype(a.dtype, jnp.floating):
            raise TypeError(f"`{f'others[{i - 1}]' if i else 'x_train'}` must hold real numbers, got dtype {a.dtype}")
    eps = _checks.check_number(eps, "eps", 0.0, low_open=True)
    first = arrays[0]
    if first.ndim < 1 or first.shape[0] == 0:
        raise ValueError(f"`x_train` needs at least one row, got shape {tuple(first.shape)}")
    for i, a in enumerate(arrays[1:]):
        if tuple(a.shape[1:]) != tuple(first.shape[1:]):
            raise ValueError(
                f"`others[{i}]` has shape {tuple(a.shape)} but `x_train` has {tuple(first.shape)}: features must match"
            )
    return _standardize(tuple(jnp.asarray(a, jnp.promote_types(a.dtype, jnp.result_type(float))) for a in arrays), eps)


@jax.jit
def _standardize(arrays: tuple[Array, ...], eps: Any) -> tuple[Array, ...]:
    mean = jnp.mean(arrays[0], axis=0)
    spread = jnp.std(arrays[0], axis=0)
    std = jnp.where(spread > eps, spread, jnp.ones_like(spread))  # constant in training: centred, not scaled
    return (*((a - mean) / std for a in arrays), mean, std)


def one_hot(y: ArrayLike, num_classes: int) -> Array:
    """Class indices (n,) in [0, K) to one-hot rows (n, K): ``out[i, k] = [y_i = k]``, float.

    Example:
      >>> one_hot(jnp.array([0, 2]), 3).tolist()
      [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
        raise ValueError(f"`num_classes` must be an int >= 1, got {num_classes!r}")
    if num_classes > np.iinfo(np.int32).max:
        raise ValueError(f"`num_classes` must be at most {np.iinfo(np.int32).max} (class indices are int32), got {num_classes}")
    ya = _checks.as_array(y, "y")
    _checks.check_memory(
        math.prod(ya.shape) * int(num_classes), 4, f"{math.prod(ya.shape)} labels of `num_classes` = {num_classes}"
    )
    if not jnp.issubdtype(ya.dtype, jnp.integer):
        raise TypeError(f"`y` must hold integer class indices, got dtype {ya.dtype}")
    if _checks.is_concrete(ya) and ya.size and not (int(ya.min()) >= 0 and int(ya.max()) < num_classes):
        raise ValueError(
            f"`y` must lie in [0, {num_classes}) for num_classes={num_classes}, got values in [{int(ya.min())}, {int(ya.max())}]"
        )
    return jax.nn.one_hot(ya, int(num_classes), dtype=jnp.result_type(float))
