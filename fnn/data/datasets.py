"""Data sets: toy 2-D problems generated in pure JAX, real ones read locally, and split helpers.

Every toy generator takes a ``key`` (``jax.random.key``), ``n`` (the number of points) and a
``noise`` level and returns ``(x, y)``: ``x`` of shape (n, 2) in the default float dtype
(float32, or float64 with x64 enabled) and ``y`` int32 class indices of shape (n,). Classes are
balanced (each of K gets ``n // K`` or ``n // K + 1`` points), rows come shuffled, and the same
key always gives the same data. XOR and the rings are the seed's examples of problems that no
linear model separates.

Real data never downloads: :func:`digits` is scikit-learn's bundled set, :func:`mnist1d` runs
the MNIST-1D generator locally, :func:`mnist` reads files already on disk.
"""

from __future__ import annotations

import functools
import math
import os
import random
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from fnn import _checks
from fnn.data import _mnist_files as _idx
from fnn.data.preprocessing import one_hot, standardize, train_test_split

Array = jax.Array
__all__ = [
    "blobs",
    "circles",
    "digits",
    "mnist",
    "mnist1d",
    "moons",
    "one_hot",
    "spirals",
    "standardize",
    "train_test_split",
    "xor",
]
_XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])  # the truth table's inputs ...
_XOR_Y = np.array([0, 1, 1, 0], np.int32)  # ... and x₁ ⊕ x₂
_EXTRA = 'pip install "fnn[experiments]"'


# ---- argument checks (plain Python, before anything is traced) ------------------------------
def _check_int(v: Any, name: str, low: int) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise TypeError(f"`{name}` must be an int >= {low}, got {type(v).__name__} {v!r:.40}")
    if v < low:
        raise ValueError(f"`{name}` must be an int >= {low}, got {v}")
    return int(v)


def _check_noise(noise: Any) -> Any:
    """``noise``, checked; an int comes back as a float (jit would stage 2**63 as an int32 and overflow)."""
    if not _checks.is_concrete(noise):
        return noise  # traced inside jit / vmap: only ever used as a multiplier
    real = isinstance(noise, (int, float, np.integer, np.floating)) or (
        hasattr(noise, "dtype")
        and np.shape(noise) == ()
        and (jnp.issubdtype(noise.dtype, jnp.integer) or jnp.issubdtype(noise.dtype, jnp.floating))
    )
    if isinstance(noise, (bool, np.bool_)) or not real:
        raise TypeError(f"`noise` must be a real number >= 0, got {type(noise).__name__} {noise!r:.40}")
    value = float(noise)
    if not 0 <= value < math.inf:  # also rejects NaN
        raise ValueError(f"`noise` must be a finite number >= 0, got {value}")
    return value if isinstance(noise, (int, np.integer)) else noise


def _check_common(key: Array, n: Any, noise: Any) -> tuple[int, Any]:
    """``(n, noise)`` after checking them and ``key``."""
    _checks.check_key(key, "key")
    noise = _check_noise(noise)
    n = _check_int(n, "n", 1)
    _checks.check_memory(3 * n, 4, f"`n` = {n} points")  # x (n, 2) and y (n,)
    return n, noise


def _check_classes(classes: Any) -> int:
    """K >= 2 classes, their labels int32."""
    k = _check_int(classes, "classes", 2)
    if k > np.iinfo(np.int32).max:
        raise ValueError(f"`classes` must be at most {np.iinfo(np.int32).max} (labels are int32), got {k}")
    return k


def _sampler(body: Callable) -> Callable:
    """Compile a generator once per (n, K, dtype): ``run(key, n, K, noise, *args)`` splits the key,
    draws balanced shuffled labels (class c gets ``n // K + (c < n % K)`` rows) and calls
    ``body(key_a, key_b, y, K, noise, *args)`` for x."""

    @functools.partial(jax.jit, static_argnums=(1, 2))
    def run(key: Array, n: int, k: int, noise: Any, *args: Any) -> tuple[Array, Array]:
        k_y, k_a, k_b = jax.random.split(key, 3)
        y = jax.random.permutation(k_y, jnp.arange(n, dtype=jnp.int32) % k)
        return body(k_a, k_b, y, k, noise, *args)

    return run


@_sampler
def _xor(_: Array, k_noise: Array, c: Array, k: int, noise: Any) -> tuple[Array, Array]:
    # Corners visited (0,0), (0,1), (1,1), (1,0), so y = c % 2 and the classes stay balanced.
    corner = jnp.array([0, 1, 3, 2], jnp.int32)[c]
    x = jnp.asarray(_XOR_X, jnp.result_type(float))[corner]
    return x + noise * jax.random.normal(k_noise, x.shape, x.dtype), jnp.asarray(_XOR_Y)[corner]


@_sampler
def _circles(k_angle: Array, k_noise: Array, y: Array, k: int, noise: Any, factor: Any) -> tuple[Array, Array]:
    theta = jax.random.uniform(k_angle, y.shape, jnp.result_type(float), 0.0, 2 * math.pi)
    r = jnp.where(y == 0, 1.0, factor).astype(theta.dtype)
    x = r[:, None] * jnp.stack([jnp.cos(theta), jnp.sin(theta)], axis=1)  # (n, 2)
    return x + noise * jax.random.normal(k_noise, x.shape, x.dtype), y


@_sampler
def _moons(k_t: Array, k_noise: Array, y: Array, k: int, noise: Any) -> tuple[Array, Array]:
    t = jax.random.uniform(k_t, y.shape, jnp.result_type(float), 0.0, math.pi)
    upper = jnp.stack([jnp.cos(t), jnp.sin(t)], axis=1)  # (n, 2)
    lower = jnp.stack([1.0 - jnp.cos(t), 0.5 - jnp.sin(t)], axis=1)
    x = jnp.where((y == 0)[:, None], upper, lower)
    return x + noise * jax.random.normal(k_noise, x.shape, x.dtype), y


@_sampler
def _spirals(k_r: Array, k_noise: Array, y: Array, k: int, noise: Any) -> tuple[Array, Array]:
    r = jax.random.uniform(k_r, y.shape, jnp.result_type(float))
    t = 4.0 * (y.astype(r.dtype) + r) + noise * jax.random.normal(k_noise, r.shape, r.dtype)
    return r[:, None] * jnp.stack([jnp.sin(t), jnp.cos(t)], axis=1), y


@_sampler
def _blobs(k_c: Array, k_noise: Array, y: Array, k: int, noise: Any, centers: Any) -> tuple[Array, Array]:
    dtype = jnp.result_type(float)
    c = jax.random.uniform(k_c, (k, 2), dtype, -10.0, 10.0) if centers is None else centers.astype(dtype)
    return c[y] + noise * jax.random.normal(k_noise, (y.shape[0], c.shape[1]), dtype), y


# ---- toy problems -----------------------------------------------------------------------------
def xor(key: Array | None = None, n: int = 4, noise: float = 0.0) -> tuple[Array, Array]:
    """XOR, ``y = x₁ ⊕ x₂``, at the corners of the unit square.

    With ``n=4`` and ``noise=0`` this is the exact truth table, ``x = [[0,0],[0,1],[1,0],[1,1]]``,
    ``y = [0,1,1,0]``, and ``key`` may be None. Otherwise ``n`` points, the corners taken in
    turn, each plus Gaussian noise.

    Args:
      key: a ``jax.random.key`` (None only for the exact table); n: the number of points.
      noise: standard deviation of the Gaussian added to each coordinate.

    Returns:
      ``(x, y)``: x of shape (n, 2) float, y of shape (n,) int32.

    Example:
      >>> x, y = xor()
      >>> x.tolist(), y.tolist()
      ([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]], [0, 1, 1, 0])
    """
    noise = _check_noise(noise)
    if _check_int(n, "n", 1) == 4 and _checks.is_concrete(noise) and float(noise) == 0:
        if key is not None:
            _checks.check_key(key, "key")
        return jnp.asarray(_XOR_X, jnp.result_type(float)), jnp.asarray(_XOR_Y)
    if key is None:
        raise TypeError(f"`key` is required to sample XOR (n={n}, noise={noise}); only n=4, noise=0 needs none")
    n, noise = _check_common(key, n, noise)
    return _xor(key, n, 4, noise)


def circles(key: Array, n: int, noise: float = 0.1, factor: float = 0.5) -> tuple[Array, Array]:
    """Two concentric rings: class 0 on the outer one (radius 1), class 1 on the inner one.

    .. math::  x = r_y (\\cos θ, \\sin θ) + \\text{noise}·ε, \\quad θ \\sim U[0, 2π),
               \\; r_0 = 1, \\; r_1 = \\text{factor}, \\; ε \\sim N(0, I_2)

    Args:
      key: a ``jax.random.key``; n: the number of points.
      noise: standard deviation of the Gaussian added to each coordinate.
      factor: the inner radius, in [0, 1).

    Returns:
      ``(x, y)``: x of shape (n, 2) float, y of shape (n,) int32.

    Example:
      >>> x, y = circles(jax.random.key(0), 100)
      >>> x.shape, y.shape, int(y.sum())
      ((100, 2), (100,), 50)
    """
    if isinstance(factor, bool) or not isinstance(factor, (int, float, np.floating)) or not 0 <= factor < 1:
        raise ValueError(f"`factor` (the inner radius) must be a number in [0, 1), got {factor!r}")
    n, noise = _check_common(key, n, noise)
    return _circles(key, n, 2, noise, factor)


def moons(key: Array, n: int, noise: float = 0.1) -> tuple[Array, Array]:
    """Two interleaving half-moons, as scikit-learn's ``make_moons`` (with random t).

    .. math::  x_0 = (\\cos t, \\sin t), \\quad x_1 = (1 - \\cos t, \\tfrac12 - \\sin t),
               \\quad t \\sim U[0, π], \\; \\text{plus noise}·N(0, I_2)

    Args:
      key: a ``jax.random.key``; n: the number of points.
      noise: standard deviation of the Gaussian added to each coordinate.

    Returns:
      ``(x, y)``: x of shape (n, 2) float, y of shape (n,) int32.

    Example:
      >>> x, y = moons(jax.random.key(0), 101)
      >>> x.shape, int((y == 0).sum()), int((y == 1).sum())
      ((101, 2), 51, 50)
    """
    n, noise = _check_common(key, n, noise)
    return _moons(key, n, 2, noise)


def spirals(key: Array, n: int, noise: float = 0.2, classes: int = 3) -> tuple[Array, Array]:
    """K spiral arms, one class each (the cs231n spiral data).

    .. math::  x = r (\\sin t, \\cos t), \\quad t = 4 (k + r) + \\text{noise}·ε, \\quad r \\sim U[0, 1]

    Args:
      key: a ``jax.random.key``; n: the number of points.
      noise: standard deviation of the Gaussian ε added to the angle (radians), so ``|x| = r <= 1``.
      classes: the number of arms K >= 2.

    Returns:
      ``(x, y)``: x of shape (n, 2) float, y of shape (n,) int32 in [0, K).

    Example:
      >>> x, y = spirals(jax.random.key(0), 300)
      >>> x.shape, jnp.bincount(y).tolist()
      ((300, 2), [100, 100, 100])
    """
    n, noise = _check_common(key, n, noise)
    return _spirals(key, n, _check_classes(classes), noise)


def blobs(
    key: Array, n: int, classes: int | None = None, noise: float = 1.0, centers: ArrayLike | None = None
) -> tuple[Array, Array]:
    """Isotropic Gaussian blobs, ``x = centers[y] + noise·ε``, ε ~ N(0, I).

    Args:
      key: a ``jax.random.key``; n: the number of points.
      classes: the number of blobs K >= 2; default 3, or ``len(centers)``.
      noise: the standard deviation of every blob.
      centers: (K, d) blob centres; default K centres drawn uniformly in [-10, 10]² from ``key``,
        as scikit-learn's ``make_blobs``.

    Returns:
      ``(x, y)``: x of shape (n, d) float (d = 2 by default), y of shape (n,) int32 in [0, K).

    Example:
      >>> x, y = blobs(jax.random.key(0), 6, noise=0.0, centers=[[0.0, 0.0], [5.0, 5.0]])
      >>> bool(jnp.all(x == 5.0 * y[:, None]))
      True
    """
    n, noise = _check_common(key, n, noise)
    if centers is None:
        k = _check_classes(3 if classes is None else classes)
        _checks.check_memory(2 * k, 4, f"`classes` = {k} centres")
        return _blobs(key, n, k, noise, None)
    c = _checks.as_array(centers, "centers")
    if np.dtype(c.dtype).kind not in "biuf":
        raise TypeError(f"`centers` must hold real numbers, got dtype {c.dtype}")
    if c.ndim != 2 or c.shape[0] < 2 or c.shape[1] < 1:
        raise ValueError(f"`centers` must have shape (K, d) with K >= 2 classes, got shape {tuple(c.shape)}")
    _checks.check_memory(n * c.shape[1], 4, f"`n` = {n} points of {c.shape[1]} features")
    if classes is not None and _check_int(classes, "classes", 2) != c.shape[0]:
        raise ValueError(f"`classes` (={classes}) disagrees with `centers`, which has {c.shape[0]} rows")
    return _blobs(key, n, c.shape[0], noise, jnp.asarray(c))


# ---- real data, no download ---------------------------------------------------------------------
def digits() -> tuple[Array, Array]:
    """scikit-learn's bundled 8×8 handwritten digits (no download).

    Returns:
      ``(x, y)``: x of shape (1797, 64) float in [0, 1] (grey level / 16), y of shape (1797,) int32.

    Example:
      >>> x, y = digits()
      >>> x.shape, float(x.max())
      ((1797, 64), 1.0)
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError as e:
        raise ImportError(f"fnn.datasets.digits needs scikit-learn: {_EXTRA} ({e})") from e
    data = load_digits()
    return jnp.asarray(data.data / 16.0, jnp.result_type(float)), jnp.asarray(data.target, jnp.int32)


def mnist1d(seed: int = 42, num_samples: int = 5000) -> tuple[Array, Array, Array, Array]:
    """MNIST-1D, generated locally by the ``mnist1d`` package (its downloader is never called).

    The package's default arguments are the published setting: 5000 sequences of 40 features,
    standardised as a whole, split 80/20 into 4000 train and 1000 test. Its generator seeds
    numpy's and Python's global RNGs; both are restored afterwards.

    Args:
      seed: the generator's seed.
      num_samples: the total before the split, rounded down to a multiple of the 10 classes.

    Returns:
      ``(x_train, y_train, x_test, y_test)``: x (N, 40) float, y (N,) int32.

    Example:
      >>> x_train, y_train, x_test, y_test = mnist1d()  # doctest: +SKIP
      >>> x_train.shape, x_test.shape  # doctest: +SKIP
      ((4000, 40), (1000, 40))
    """
    seed = _check_int(seed, "seed", 0)
    if seed >= 2**32:
        raise ValueError(f"`seed` must be below 2**32 (the generator seeds numpy with it), got {seed}")
    num_samples = _check_int(num_samples, "num_samples", 10)
    _checks.check_memory(num_samples * 40, 8, f"`num_samples` = {num_samples} sequences")
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError as e:
        raise ImportError(f"fnn.datasets.mnist1d needs the mnist1d package: {_EXTRA} ({e})") from e
    args = get_dataset_args()
    args.seed, args.num_samples = seed, num_samples
    np_state, py_state = np.random.get_state(), random.getstate()  # noqa: NPY002 (restoring what mnist1d reseeds)
    try:
        data = make_dataset(args)
    finally:
        np.random.set_state(np_state)  # noqa: NPY002
        random.setstate(py_state)
    dtype = jnp.result_type(float)
    x, x_test = jnp.asarray(data["x"], dtype), jnp.asarray(data["x_test"], dtype)
    return x, jnp.asarray(data["y"], jnp.int32), x_test, jnp.asarray(data["y_test"], jnp.int32)


def mnist(path: str | os.PathLike) -> tuple[Array, Array, Array, Array]:
    """MNIST from local files: a folder with the four IDX files, or an ``mnist.npz``.

    The folder holds ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
    ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte``, each possibly gzipped (``.gz``);
    failing those, an ``mnist.npz`` in it. The npz (Keras layout: ``x_train, y_train, x_test,
    y_test``) is read with ``allow_pickle=False``.

    Returns:
      ``(x_train, y_train, x_test, y_test)``: images flattened to (N, rows·cols) floats in
      [0, 1] (grey level / 255), labels (N,) int32; (60000, 784) and (10000, 784) for MNIST.

    Raises:
      FileNotFoundError: missing path or files; ValueError: wrong IDX magic, truncated data, counts that disagree.

    Example:
      >>> x_train, y_train, x_test, y_test = mnist("~/data/mnist")  # doctest: +SKIP
    """
    dtype = jnp.result_type(float)
    if isinstance(path, (str, bytes)) and not path:
        raise ValueError("`path` is empty; pass the folder holding the MNIST files, or an mnist.npz file")
    x, y, x_test, y_test = _idx.load(os.path.expanduser(path) if isinstance(path, str) else path)
    return (
        jnp.asarray(_idx.scale(x, dtype)),
        jnp.asarray(y, jnp.int32),
        jnp.asarray(_idx.scale(x_test, dtype)),
        jnp.asarray(y_test, jnp.int32),
    )
