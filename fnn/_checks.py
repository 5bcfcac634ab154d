"""Input validation shared by the public entry points.

Every check runs in plain Python on static facts (shapes, dtypes, names, structure), so it
fires before JAX traces anything and names the argument, what was expected and what came.
Checks on values (NaN, label range) only run when the array is concrete, never inside ``jit``.
"""

from __future__ import annotations

import functools
import math
import os
import pathlib
import warnings
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def is_concrete(a: Any) -> bool:
    """True when ``a`` holds values now (not a tracer inside jit / vmap / grad)."""
    return not isinstance(a, jax.core.Tracer)


def as_array(a: Any, name: str) -> Any:
    """Lists, tuples and Python numbers become numpy arrays (jax arrays when a list holds values traced
    by jit); anything without shape and dtype, an abstract ``jax.ShapeDtypeStruct`` and a
    ``jax.random`` key array are a TypeError."""
    if isinstance(a, (list, tuple)):
        traced = any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree_util.tree_leaves(a))
        try:
            a = jnp.asarray(a) if traced else np.asarray(a)
        except (ValueError, TypeError) as e:  # ragged nesting
            raise TypeError(f"`{name}` must be a rectangular array, got a ragged {type(a).__name__}: {e}") from None
    elif isinstance(a, (bool, int, float, complex)):
        a = np.asarray(a)
    if isinstance(a, jax.ShapeDtypeStruct):
        raise TypeError(f"`{name}` must be an array with values, got an abstract {a}")
    if not (hasattr(a, "shape") and hasattr(a, "dtype")):
        raise TypeError(f"`{name}` must be an array (jax or numpy), got {type(a).__name__}: {a!r:.60}")
    if jnp.issubdtype(a.dtype, jax.dtypes.prng_key):
        raise TypeError(f"`{name}` must be an array of numbers, got a jax.random key array of shape {tuple(a.shape)}")
    return a


def check_numbers(a: Any, name: str) -> None:
    """``a`` (an array) holds numbers or bools: not strings, objects or keys."""
    if not (jnp.issubdtype(a.dtype, jnp.number) or jnp.issubdtype(a.dtype, jnp.bool_)):
        raise TypeError(f"`{name}` must hold numbers, got dtype {a.dtype}")


def check_net(net: Any, name: str = "net", mlp_only: bool = False) -> None:
    """``net`` must be an :class:`fnn.MLP`, an :class:`fnn.Network` of blocks or an :class:`fnn.Model`
    (with ``mlp_only``: an MLP); a TypeError naming the argument otherwise."""
    from fnn.core.mlp import MLP  # (lazy imports: the core sits below this module)
    from fnn.core.network import Model, Network

    if mlp_only and not isinstance(net, MLP):
        raise TypeError(f"`{name}` must be an fnn.MLP, got {type(net).__name__}: {net!r:.60} (this takes a plain MLP only)")
    if not isinstance(net, (MLP, Network, Model)):
        raise TypeError(
            f"`{name}` must be an fnn.MLP, an fnn.Network of blocks or an fnn.Model(init, apply), "
            f"got {type(net).__name__}: {net!r:.60}"
        )


def _shown(value: Any) -> str:
    """``TYPE: VALUE`` of a refused argument, the value cut to 40 characters."""
    return f"{type(value).__name__}: {value!r:.40}"


def check_int(value: Any, name: str, low: int = 0, high: int | None = None, *, allow_none: bool = False) -> Any:
    """An int (Python or numpy, not bool) in ``[low, high]`` (``high=None``: no upper bound), returned as a
    Python int; None passes with ``allow_none``.

    >>> check_int(np.int64(3), "n"), check_int(None, "every", 1, allow_none=True)
    (3, None)
    >>> check_int(0, "n", 1, 10)
    Traceback (most recent call last):
    ...
    ValueError: `n` must be an int in [1, 10], got 0
    """
    if value is None and allow_none:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"`{name}` must be an int >= {low}{' or None' if allow_none else ''}, got {_shown(value)}")
    if value < low or (high is not None and value > high):
        raise ValueError(f"`{name}` must be an int in [{low}, {f'{high}]' if high is not None else 'inf)'}, got {value}")
    return int(value)


def check_number(
    value: Any,
    name: str,
    low: float = -math.inf,
    high: float = math.inf,
    *,
    low_open: bool = False,
    high_open: bool = False,
    allow_none: bool = False,
) -> Any:
    """A finite real number (Python, numpy or a concrete 0-d array; not bool, str or complex) in the
    interval from ``low`` to ``high`` (each end closed, or open with ``low_open`` / ``high_open``),
    returned as a float; None passes with ``allow_none``.

    >>> check_number(np.float32(0.5), "rate", 0.0, low_open=True), check_number(1, "fraction", 0, 1)
    (0.5, 1.0)
    >>> check_number(1.5, "test_fraction", 0, 1, low_open=True, high_open=True)
    Traceback (most recent call last):
    ...
    ValueError: `test_fraction` must be a number in (0, 1), got 1.5
    """
    if value is None and allow_none:
        return None
    if high < math.inf:  # an interval: "in [0, 1)"
        bound = f" in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    else:  # a bound below, or none: ">= 0", "> 0.0"
        bound = f" {'>' if low_open else '>='} {low}" if low > -math.inf else ""
    real = isinstance(value, (int, float, np.integer, np.floating)) or (
        hasattr(value, "dtype")
        and getattr(value, "shape", None) == ()
        and is_concrete(value)
        and (jnp.issubdtype(value.dtype, jnp.integer) or jnp.issubdtype(value.dtype, jnp.floating))
    )
    if isinstance(value, (bool, np.bool_)) or not real:
        raise TypeError(f"`{name}` must be a real number{' or None' if allow_none else ''}, got {_shown(value)}")
    v = float(value)
    below = v <= low if low_open else v < low
    above = v >= high if high_open else v > high
    if not math.isfinite(v) or below or above:
        raise ValueError(f"`{name}` must be {'a number' if high < math.inf else 'a finite number'}{bound}, got {v}")
    return v


def check_flag(value: Any, name: str, allow_none: bool = False) -> Any:
    """``value`` is True or False (a Python or numpy bool), or None with ``allow_none``; returned as a
    Python bool (or None)."""
    if value is None and allow_none:
        return None
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"`{name}` must be True or False{' or None' if allow_none else ''}, got {_shown(value)}")
    return bool(value)


def check_choice(value: Any, name: str, choices: tuple[str, ...]) -> str:
    """``value`` is one of the strings ``choices`` (a ValueError otherwise, a wrong type included: it is
    not one of them).

    >>> check_choice("adam", "solver", ("sgd", "adam"))
    'adam'
    >>> check_choice(1, "solver", ("sgd", "adam"))
    Traceback (most recent call last):
    ...
    ValueError: `solver` must be one of 'sgd', 'adam', got int: 1
    """
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"`{name}` must be one of {', '.join(map(repr, choices))}, got {_shown(value)}")
    return value


@functools.cache
def memory_limit() -> int | None:
    """Bytes the default device can hold: its allocator's limit (accelerators), else the machine's RAM."""
    try:
        stats = jax.devices()[0].memory_stats()
    except Exception:  # backends without memory statistics
        stats = None
    if stats and stats.get("bytes_limit"):
        return int(stats["bytes_limit"])
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, OSError, ValueError):  # not POSIX
        return None


_COUNTING = [False]  # inside shapes_only(): shapes are traced, nothing is allocated


class shapes_only:
    """A context in which :func:`check_memory` passes: an abstract trace (``jax.eval_shape``) that only
    counts shapes allocates nothing, whatever their size."""

    def __enter__(self) -> None:
        self.previous = _COUNTING[0]
        _COUNTING[0] = True

    def __exit__(self, *exc: object) -> None:
        _COUNTING[0] = self.previous


def check_memory(elements: int, itemsize: int, what: str) -> None:
    """Refuse an allocation that can never fit: more bytes than the device's whole memory (JAX would
    fail asynchronously, with an out-of-memory error or an abort when the result is read).

    ``what`` names the argument that asks for it, e.g. ``"`n` = 1099511627776 points"``.
    """
    if _COUNTING[0]:
        return
    limit = memory_limit()
    need = int(elements) * int(itemsize)
    if limit is not None and need > limit:
        raise ValueError(
            f"{what} would take {need / 2**30:,.0f} GiB, more than the {limit / 2**30:,.0f} GiB of memory the device has"
        )


INT32_MAX = 2**31 - 1  # the largest epoch count, patience or step the compiled loop counts (int32)


def check_path(path: Any, name: str = "path", what: str = "a path") -> pathlib.Path:
    """A file-system path: a str or ``os.PathLike`` of str, not empty and without NUL characters."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"`{name}` must be {what} (str or os.PathLike), got {type(path).__name__}: {path!r:.60}")
    p = os.fspath(path)
    if not isinstance(p, str):
        raise TypeError(f"`{name}` must be a path of str, got an os.PathLike of {type(p).__name__}: {p!r:.60}")
    if not p:
        raise ValueError(f"`{name}` must be a non-empty path, got ''")
    if "\0" in p:
        raise ValueError(f"`{name}` must not contain a NUL character, got {p!r:.60}")
    return pathlib.Path(p)


def check_key(key: Any, name: str = "key") -> None:
    """A typed ``jax.random.key`` or a legacy uint32 ``PRNGKey`` of shape (2,)."""
    ok = hasattr(key, "dtype") and hasattr(key, "shape")
    if ok and jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        ok = key.shape == ()
    elif ok:
        ok = key.dtype == jnp.uint32 and key.shape == (2,)
    if not ok:
        got = (
            f"{type(key).__name__} {key!r:.40}" if not hasattr(key, "shape") else f"array of shape {key.shape} dtype {key.dtype}"
        )
        raise TypeError(f"`{name}` must be a single jax.random.key(seed) (or PRNGKey), got {got}")


def check_x(net: Any, x: Any, name: str = "x", place: bool = True) -> jax.Array:
    """``x`` must be a float array of shape (B, n_in) or (n_in,); returned on the device (as it came,
    a numpy array for a list, with ``place=False``)."""
    x = as_array(x, name)
    kind = np.dtype(x.dtype).kind
    if kind in "biu":
        raise TypeError(f"`{name}` has dtype {x.dtype}; the network needs floats: cast it, e.g. {name}.astype(jnp.float32)")
    if kind != "f":
        raise TypeError(f"`{name}` has dtype {x.dtype}; the network needs a real float dtype")
    n_in = net.sizes[0]
    if x.ndim not in (1, 2):
        raise ValueError(
            f"`{name}` must be a batch (B, {n_in}) or one example ({n_in},), got shape {tuple(x.shape)}"
            + ("; use jax.vmap for extra batch axes" if x.ndim > 2 else "")
        )
    if x.shape[-1] != n_in:
        hint = ""
        if x.ndim == 2 and x.shape[0] == n_in:
            hint = f" (x looks transposed: pass x.T, of shape {(x.shape[1], x.shape[0])})"
        raise ValueError(f"`{name}` has {x.shape[-1]} features (shape {tuple(x.shape)}) but the network expects {n_in}{hint}")
    return to_device(x) if place else x


def to_device(a: Any) -> Any:
    """A jax array of ``a``: numpy data is copied with ``jax.device_put`` (``jnp.asarray`` would
    compile a small program for every new shape and dtype: milliseconds, in a first call)."""
    return jax.device_put(a) if isinstance(a, (np.ndarray, np.generic)) else jnp.asarray(a)


def check_params(net: Any, params: Any, name: str = "params") -> None:
    """``params`` must be ``[{"W": (n_out, n_in), "b": (n_out,)}, ...]`` matching ``net.sizes`` (a network of
    blocks or a model checks its own)."""
    if not hasattr(net, "shapes"):
        net.check_params(params, name)
        return
    expected = net.shapes
    if not isinstance(params, (list, tuple)):
        raise TypeError(
            f"`{name}` must be a list of {len(expected)} layers [{{'W', 'b'}}, ...] as made by net.init, "
            f"got {type(params).__name__}"
        )
    if len(params) != len(expected):
        raise ValueError(f"`{name}` has {len(params)} layers but {net!r} has {len(expected)} (params from a different network?)")
    for l, (layer, shapes) in enumerate(zip(params, expected)):
        if not isinstance(layer, Mapping) or set(layer) != {"W", "b"}:
            got = sorted(layer) if isinstance(layer, Mapping) else type(layer).__name__
            raise ValueError(f"`{name}[{l}]` must be a dict with keys 'W' and 'b', got {got}")
        if not isinstance(layer, dict) and _children(layer) != 2:
            raise TypeError(
                f"`{name}[{l}]` is a {type(layer).__name__}, which JAX does not treat as a pytree of W and b: use a dict"
            )
        for leaf, shape in shapes.items():
            a = layer[leaf]
            if not hasattr(a, "shape") or not hasattr(a, "dtype"):
                raise TypeError(f"`{name}[{l}][{leaf!r}]` must be an array, got {type(a).__name__}")
            if tuple(a.shape) != shape:
                stacked = len(a.shape) == len(shape) + 1 and tuple(a.shape[1:]) == shape
                hint = (
                    f" (these look like the stacked parameters of {a.shape[0]} networks, as fit_many returns them: "
                    "take one with fnn.sweep.network(net, params, i), or evaluate all with fnn.sweep.evaluate_all)"
                    if stacked
                    else " (params from a different network?)"
                )
                raise ValueError(
                    f"`{name}[{l}][{leaf!r}]` has shape {tuple(a.shape)} but layer {l} of {net!r} expects {shape}{hint}"
                )
            if not jnp.issubdtype(a.dtype, jnp.floating):
                raise TypeError(f"`{name}[{l}][{leaf!r}]` has dtype {a.dtype}; parameters must be floats")


def _children(node: Any) -> int:
    """How many children JAX sees in ``node`` (1, itself, when it is not a registered pytree node)."""
    return len(jax.tree_util.tree_leaves(node, is_leaf=lambda a: a is not node))


def check_finite(x: Any, name: str) -> None:
    """A concrete ``x`` (B, n) or (n,) must not hold NaN or ±inf (skipped inside jit)."""
    if not is_concrete(x):
        return
    if isinstance(x, jax.Array) and not x.is_fully_addressable:  # rows on other processes: test on the devices
        if not bool(jax.jit(lambda a: jnp.isfinite(a).all())(x)):
            raise ValueError(f"`{name}` contains NaN or inf; clean or impute the data first")
        return
    a = np.asarray(x)
    if a.dtype in (np.float32, np.float64) and a.ndim == 2 and a.size:
        # One matrix-vector product (BLAS, ~5x faster than an elementwise test on a large dataset):
        # a row sum is finite unless the row holds NaN or ±inf, or finite values overflow; only
        # then is the exact test below run.
        with np.errstate(invalid="ignore", over="ignore"):
            sums = a @ np.ones(a.shape[1], a.dtype)
        if np.isfinite(sums).all():
            return
    bad = ~np.isfinite(a).reshape(a.shape[0], -1).all(axis=1) if a.ndim > 1 else ~np.isfinite(a)
    if bad.any():
        where = f"first at row {int(np.argmax(bad))}, {int(bad.sum())} rows in all" if a.ndim > 1 else f"{int(bad.sum())} entries"
        raise ValueError(f"`{name}` contains NaN or inf ({where}); clean or impute the data first")


def check_batch(x: jax.Array, y: Any, name_x: str = "x", name_y: str = "y") -> None:
    """Non-empty batch and the same number of rows in x and y."""
    if x.ndim == 2 and x.shape[0] == 0:
        raise ValueError(f"`{name_x}` is an empty batch (shape {tuple(x.shape)}); a loss needs at least one example")
    if x.ndim == 2 and (getattr(y, "ndim", 0) == 0 or y.shape[0] != x.shape[0]):
        got = tuple(getattr(y, "shape", ()))
        raise ValueError(
            f"`{name_y}` has shape {got} but `{name_x}` is a batch of {x.shape[0]}: they need the same number of rows"
        )


def params_first(fn: str, params: Any, x: Any, y: Any, rest: tuple, loss: Any) -> tuple[Any, Any, Any, Any]:
    """``(params, x, y, loss)`` of a call ``fn(net, params, x, y, loss=...)``, fnn's one argument order.

    The order before 0.2, ``fn(net, loss, params, x, y)``, still works with a DeprecationWarning:
    it is recognised by a loss (a name or an ``fnn.Loss``) in the ``params`` position.
    """
    from fnn.core.losses import Loss  # (a lazy import: losses sits above this module)

    if isinstance(params, (str, Loss)):
        if loss is not None or len(rest) != 1:
            raise TypeError(f"{fn}() takes (net, params, x, y, loss=...); got a loss in the params position and loss={loss!r}")
        warnings.warn(
            f"{fn}(net, loss, params, x, y) is deprecated; call {fn}(net, params, x, y, loss=...), the order of fit",
            DeprecationWarning,
            stacklevel=3,
        )
        return x, y, rest[0], params
    if rest:
        raise TypeError(f"{fn}() takes (net, params, x, y) positionally; pass loss=... and the rest by keyword")
    if loss is None:
        raise TypeError(f"{fn}() missing the keyword argument `loss` (a name such as 'mse' or an fnn.Loss)")
    return params, x, y, loss


def params_dtype(params: Any) -> Any:
    """The dtype of a network's parameters (its first leaf's)."""
    return jax.tree_util.tree_leaves(params)[0].dtype


def check_stacked(net: Any, params: Any, name: str = "params") -> int:
    """``params`` stacked over a leading network axis (``W``: (N, n_out, n_in)), as ``fit_many`` takes
    and returns them; returns N."""
    if not hasattr(net, "shapes"):  # a network of blocks or a model: every leaf stacks N
        leaves = jax.tree_util.tree_leaves_with_path(params)
        if not leaves or not all(hasattr(a, "shape") and a.ndim >= 1 for _, a in leaves):
            raise ValueError(f"`{name}` must be stacked over a leading network axis, as net.init_stacked(key, n) makes them")
        n = int(leaves[0][1].shape[0])
        for path, a in leaves:
            if a.shape[0] != n:
                raise ValueError(
                    f"`{name}{jax.tree_util.keystr(path)}` stacks {a.shape[0]} networks but the first leaf stacks {n}"
                )
        net.check_params(jax.tree_util.tree_map(lambda a: jax.ShapeDtypeStruct(a.shape[1:], a.dtype), params), name)
        return n
    if (
        not isinstance(params, (list, tuple))
        or not params
        or not isinstance(params[0], Mapping)
        or not hasattr(params[0].get("W"), "shape")
        or params[0]["W"].ndim != 3
    ):
        raise ValueError(f"`{name}` must be stacked over a leading network axis: W of shape (N, n_out, n_in)")
    n = int(params[0]["W"].shape[0])
    for l, layer in enumerate(params):
        for leaf, a in layer.items() if isinstance(layer, Mapping) else ():
            if not hasattr(a, "shape") or a.ndim == 0 or a.shape[0] != n:
                got = a.shape[0] if hasattr(a, "shape") and a.ndim else "no"
                raise ValueError(f"`{name}[{l}][{leaf!r}]` stacks {got} networks but `{name}[0]['W']` stacks {n}")
    one = [
        {k: jax.ShapeDtypeStruct(a.shape[1:], a.dtype) for k, a in layer.items()} if isinstance(layer, Mapping) else layer
        for layer in params
    ]
    check_params(net, one, name)
    return n
