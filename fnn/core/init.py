"""Weight initialisers: ``(key, (n_out, n_in), dtype) -> W``.

The variance of ``z = W h + b`` is ``n_in · Var(W) · E[h²]``; each scheme picks ``Var(W)`` to keep
activations (and back-propagated errors) at a steady scale through depth:

- Glorot / Xavier: ``Var(W) = 2 / (n_in + n_out)`` — for tanh, sigmoid and linear layers;
- He / Kaiming: ``Var(W) = 2 / n_in`` — for ReLU-like layers, which zero half their inputs;
- LeCun: ``Var(W) = 1 / n_in``;
- normal: ``W ~ N(0, 0.01²)``, the small fixed-scale start of the early literature.

Biases start at zero.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from fnn import _checks

Array = jax.Array
Initializer = Callable[[Array, tuple[int, int], Any], Array]


def _checked(key: Any, shape: Any, dtype: Any) -> tuple[tuple[int, int], Any]:
    """``(shape, dtype)`` after checking the three arguments every initialiser takes."""
    _checks.check_key(key, "key")
    if isinstance(shape, (str, bytes)) or not isinstance(shape, (tuple, list)) or len(shape) != 2:
        raise TypeError(f"`shape` must be (n_out, n_in), two positive ints, got {shape!r:.60}")
    n_out, n_in = (_checks.check_int(s, "shape", 1) for s in shape)
    try:
        dt = jnp.dtype(jnp.result_type(float) if dtype is None else dtype)
    except TypeError:  # not a dtype at all
        raise TypeError(f"`dtype` must be a float dtype such as jnp.float32, got {dtype!r:.40}") from None
    if not jnp.issubdtype(dt, jnp.floating):
        raise TypeError(f"`dtype` must be a float dtype, got {dt}")
    _checks.check_memory(n_out * n_in, dt.itemsize, f"a W of `shape` {(n_out, n_in)}")
    return (n_out, n_in), dt


def _uniform(key: Array, shape: tuple[int, int], dtype: Any, var: float) -> Array:
    limit = math.sqrt(3.0 * var)  # U(-a, a) has variance a²/3
    return jax.random.uniform(key, shape, dtype, -limit, limit)


def _normal(key: Array, shape: tuple[int, int], dtype: Any, var: float) -> Array:
    return math.sqrt(var) * jax.random.normal(key, shape, dtype)


def glorot_uniform(key: Array, shape: tuple[int, int], dtype: Any = jnp.float32) -> Array:
    """W ~ U(±√(6 / (n_in + n_out))), shape (n_out, n_in).

    >>> glorot_uniform(jax.random.key(0), (3, 2)).shape
    (3, 2)
    """
    shape, dtype = _checked(key, shape, dtype)
    n_out, n_in = shape
    return _uniform(key, shape, dtype, 2.0 / (n_in + n_out))


def glorot_normal(key: Array, shape: tuple[int, int], dtype: Any = jnp.float32) -> Array:
    """W ~ N(0, 2 / (n_in + n_out)).

    >>> W = glorot_normal(jax.random.key(0), (300, 200))
    >>> W.shape, round(float(W.std()), 2)  # √(2 / 500) ≈ 0.063
    ((300, 200), 0.06)
    """
    shape, dtype = _checked(key, shape, dtype)
    n_out, n_in = shape
    return _normal(key, shape, dtype, 2.0 / (n_in + n_out))


def he_normal(key: Array, shape: tuple[int, int], dtype: Any = jnp.float32) -> Array:
    """W ~ N(0, 2 / n_in).

    >>> round(float(he_normal(jax.random.key(0), (1000, 50)).std()), 2)  # √(2 / 50)
    0.2
    """
    shape, dtype = _checked(key, shape, dtype)
    return _normal(key, shape, dtype, 2.0 / shape[1])


def he_uniform(key: Array, shape: tuple[int, int], dtype: Any = jnp.float32) -> Array:
    """W ~ U(±√(6 / n_in)).

    >>> W = he_uniform(jax.random.key(0), (50, 6))  # limit √(6 / 6) = 1
    >>> W.shape, bool(jnp.abs(W).max() <= 1.0)
    ((50, 6), True)
    """
    shape, dtype = _checked(key, shape, dtype)
    return _uniform(key, shape, dtype, 2.0 / shape[1])


def lecun_normal(key: Array, shape: tuple[int, int], dtype: Any = jnp.float32) -> Array:
    """W ~ N(0, 1 / n_in).

    >>> round(float(lecun_normal(jax.random.key(0), (1000, 25)).std()), 2)  # √(1 / 25)
    0.2
    """
    shape, dtype = _checked(key, shape, dtype)
    return _normal(key, shape, dtype, 1.0 / shape[1])


def lecun_uniform(key: Array, shape: tuple[int, int], dtype: Any = jnp.float32) -> Array:
    """W ~ U(±√(3 / n_in)).

    >>> W = lecun_uniform(jax.random.key(0), (50, 3))  # limit √(3 / 3) = 1
    >>> W.shape, bool(jnp.abs(W).max() <= 1.0)
    ((50, 3), True)
    """
    shape, dtype = _checked(key, shape, dtype)
    return _uniform(key, shape, dtype, 1.0 / shape[1])


def normal(key: Array, shape: tuple[int, int], dtype: Any = jnp.float32) -> Array:
    """W ~ N(0, 0.01²).

    >>> round(float(normal(jax.random.key(0), (100, 100)).std()), 3)
    0.01
    """
    shape, dtype = _checked(key, shape, dtype)
    return _normal(key, shape, dtype, 1e-4)


#: The weight initialisers by name: ``init(key, (n_out, n_in), dtype)`` each.
INITIALIZERS: dict[str, Initializer] = {
    "glorot_uniform": glorot_uniform,
    "glorot_normal": glorot_normal,
    "he_normal": he_normal,
    "he_uniform": he_uniform,
    "lecun_normal": lecun_normal,
    "lecun_uniform": lecun_uniform,
    "normal": normal,
}
#: Short names of initialisers (``"he"`` is ``"he_normal"``, …).
ALIASES = {
    "glorot": "glorot_uniform",
    "xavier": "glorot_uniform",
    "he": "he_normal",
    "kaiming": "he_normal",
    "lecun": "lecun_normal",
}
# "auto" picks per layer from the layer's activation.
_RELU_LIKE = ("relu", "leaky_relu", "elu", "gelu")
#: Every name an initialiser may be given: ``"auto"``, the initialisers and their aliases.
NAMES: tuple[str, ...] = ("auto", *INITIALIZERS, *ALIASES)


def resolve(name: str, activation: str) -> str:
    """The concrete initialiser name for a layer whose activation is ``activation``.

    ``"auto"`` gives He (normal) before ReLU-like activations and Glorot (uniform) otherwise.

    >>> resolve("auto", "relu"), resolve("auto", "tanh"), resolve("he", "tanh")
    ('he_normal', 'glorot_uniform', 'he_normal')
    """
    if not isinstance(name, str) or name not in NAMES:
        raise ValueError(f"unknown initialiser {name!r}; valid names are {', '.join(NAMES)}")
    if name == "auto":
        return "he_normal" if activation in _RELU_LIKE else "glorot_uniform"
    return ALIASES.get(name, name)
