"""Is a user-made activation, loss or block well formed? What :func:`~fnn.check.check_derivation` checks
before it compares any derivative: every function traces under JAX and returns real floats of the right
shape (:func:`probe`), and an activation is elementwise (:func:`check_elementwise`): ``f`` applied to a
batch equals ``f`` applied to each entry alone. A block keeps the :class:`~fnn.blocks.Block` contract
(:func:`check_block`): ``forward`` returns ``(y, state, res)`` with ``y`` of the width ``out_size`` says,
``backward`` returns ``(grads, dx)`` with ``grads`` shaped as the parameters and ``dx`` as the input, all
floats. A record that is not is refused with a TypeError or ValueError naming it, the function and what is
wrong, before it reaches a network and fails deep inside JAX or trains wrongly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from fnn.core import activations as _act


def probe(fn: Callable, args: tuple, shape: tuple[int, ...], kind: str, name: str, field: str, elementwise: bool = False) -> Any:
    """What ``fn`` returns for abstract ``args`` (nothing is computed): a real float array of ``shape``
    (for a derivative: any shape that broadcasts to it), else a TypeError / ValueError naming the record
    and the function, before a malformed one reaches a network and fails deep inside JAX or, worse,
    broadcasts to a silently wrong result."""
    try:
        out = jax.eval_shape(fn, *args)
    except jax.errors.JAXTypeError as e:  # numpy or Python control flow on traced values
        raise TypeError(
            f"{kind} {name!r}: `{field}` cannot be traced by JAX ({type(e).__name__}); fnn compiles it with jax.jit, "
            "so write it with jax.numpy"
        ) from None
    got = f"shape {out.shape} dtype {out.dtype}" if hasattr(out, "shape") and hasattr(out, "dtype") else type(out).__name__
    if not (hasattr(out, "shape") and hasattr(out, "dtype")):
        raise TypeError(f"{kind} {name!r}: `{field}` must return an array, got {got}")
    try:
        fits = out.shape == shape if elementwise else jnp.broadcast_shapes(out.shape, shape) == shape
    except ValueError:  # shapes that do not broadcast
        fits = False
    real = (
        jnp.issubdtype(out.dtype, jnp.floating)
        if elementwise
        else jnp.issubdtype(out.dtype, jnp.number) and not jnp.issubdtype(out.dtype, jnp.complexfloating)
    )
    if not fits or not real:
        what = (
            "one value per example"
            if kind == "loss" and field == "fn"
            else "the shape of its input"
            if elementwise
            else "values of its input's shape"
        )
        raise ValueError(
            f"{kind} {name!r}: `{field}` must return real floats, {what} {shape}; "
            f"for inputs of shape {args[0].shape} it returned {got}"
        )
    return out


def check_elementwise(act: _act.Activation) -> None:
    """Refuse an ``f`` whose value at one entry depends on the others (a normalisation, a mean, the
    batch's shape): ``f`` of a batch must equal ``f`` of each entry alone, up to rounding."""
    rng = np.random.default_rng(0)
    z = np.concatenate([rng.normal(size=(4, 6)) * 3.0, np.linspace(-12.0, 12.0, 18).reshape(3, 6)])  # rows of 6

    @jax.jit
    def both(z):
        batch = jnp.asarray(act.f(z))
        alone = jax.vmap(lambda v: jnp.asarray(act.f(v[None]))[0])(z.reshape(-1)).reshape(z.shape)  # each entry by itself
        return batch, alone

    try:
        batch, alone = (np.asarray(a) for a in both(jnp.asarray(z)))
    except jax.errors.JAXTypeError as e:
        raise TypeError(
            f"activation {act.name!r}: `f` cannot be traced by JAX ({type(e).__name__}); fnn compiles it with jax.jit, "
            "so write it with jax.numpy"
        ) from None
    with np.errstate(invalid="ignore"):
        differ = ~np.isclose(batch, alone, rtol=1e-12, atol=1e-300, equal_nan=True)
    if differ.any():
        i, j = (int(v) for v in np.argwhere(differ)[0])
        raise ValueError(
            f"activation {act.name!r} is not elementwise: f(z) at one entry depends on the others "
            f"(for a batch of shape {z.shape}, entry [{i}, {j}], z = {z[i, j]:.4g}: f of the batch gives {batch[i, j]:.6g}, "
            f"f of that entry alone {alone[i, j]:.6g}). fnn's backward pass multiplies by f′(z) entry by entry, so it "
            "would train this with wrong gradients. A hidden activation maps each z_i on its own; a normalisation "
            'such as softmax is an output activation (output="softmax"), not a hidden one.'
        )


# ---- blocks -------------------------------------------------------------------------------------------
class _MalformedType(TypeError):
    """A block that breaks the Block contract (raised by fnn while tracing it, not by the block itself)."""


class _MalformedValue(ValueError):
    """A block whose arrays have the wrong shapes or structure (raised by fnn while tracing it)."""


def _described(tree: Any) -> Any:
    """A tree with each array shown as ``float64[6, 4]`` (what an error prints of both trees)."""
    return jax.tree_util.tree_map(
        lambda a: f"{a.dtype}{list(a.shape)}" if hasattr(a, "shape") and hasattr(a, "dtype") else type(a).__name__, tree
    )


def _same_structure(a: Any, b: Any) -> bool:
    structure: Any = jax.tree_util.tree_structure(a)  # (PyTreeDef's stub has no __eq__)
    return bool(structure == jax.tree_util.tree_structure(b))


def _is_array(a: Any) -> bool:
    return hasattr(a, "shape") and hasattr(a, "dtype")


def _check_floats(tree: Any, where: str, dtype: Any, name: str) -> None:
    """Every leaf of ``tree`` is an array of ``dtype`` (what the block was asked for)."""
    for path, a in jax.tree_util.tree_flatten_with_path(tree)[0]:
        at = f"{where}{jax.tree_util.keystr(path)}"
        if not _is_array(a):
            raise _MalformedType(f"{name}: {at} must be an array, got {type(a).__name__}: {a!r:.40}")
        if not jnp.issubdtype(a.dtype, jnp.floating):
            raise _MalformedType(f"{name}: {at} has dtype {a.dtype}; a block's parameters and gradients must be floats")
        if a.dtype != dtype:
            raise _MalformedType(
                f"{name}: {at} has dtype {a.dtype} but the block works in {jnp.dtype(dtype).name} here: "
                "make it in the dtype asked for"
            )


def _traced(fn: Callable, args: tuple, name: str, what: str, hint: str = "") -> Any:
    """``jax.eval_shape(fn, *args)``, with fnn's own contract errors passed on and the block's errors
    named: which method failed on which abstract inputs."""
    try:
        return jax.eval_shape(fn, *args)
    except (_MalformedType, _MalformedValue):
        raise
    except jax.errors.JAXTypeError as e:  # numpy or Python control flow on traced values
        raise TypeError(
            f"{name}: `{what}` cannot be traced by JAX ({type(e).__name__}); fnn compiles blocks with jax.jit, so write them "
            "with jax.numpy"
        ) from e
    except Exception as e:
        about_key = "key" in str(e).lower() or "prng" in str(e).lower()
        msg = f"{name}: `{what}` raised {type(e).__name__}: {e}{hint if about_key else ''}"
        try:
            err = type(e)(msg)
        except Exception:  # an exception that takes other arguments
            err = TypeError(msg)
        raise err from e


def check_block(block: Any, n_in: int, batch: int, dtype: Any, key: jax.Array) -> tuple[int, Any]:
    """Refuse a block that breaks the :class:`~fnn.blocks.Block` contract, before any derivative is compared
    (every call abstract: nothing is computed). ``init`` returns a dict of float arrays in ``dtype``;
    ``out_size`` a positive int; in train and eval mode, ``forward`` returns ``(y, state, res)`` with ``y``
    (batch, out_size) in ``dtype`` and ``state`` None or shaped as ``params["state"]``; ``backward`` returns
    ``(grads, dx)`` with ``grads`` of the structure, shapes and dtype of ``params`` (zeros under ``"state"``)
    and ``dx`` of the shape of ``x``. Returns ``(n_out, the parameters' shapes)``."""
    cls = type(block).__name__
    name = f"block {cls}"
    n_out = block.out_size(n_in)
    if isinstance(n_out, bool) or not isinstance(n_out, (int, np.integer)) or n_out < 1:
        raise _MalformedType(f"{name}: `out_size({n_in})` must return a positive int, the output width, got {n_out!r:.40}")
    n_out = int(n_out)
    params = _traced(lambda k: block.init(k, n_in, dtype), (key,), name, f"init(key, {n_in}, {jnp.dtype(dtype).name})")
    if not isinstance(params, dict):
        raise _MalformedType(f"{name}: `init` must return a dict of parameters ({{}} for none), got {type(params).__name__}")
    _check_floats(params, "params", dtype, name)
    state = params.get("state")
    x = jax.ShapeDtypeStruct((batch, n_in), dtype)
    dy = jax.ShapeDtypeStruct((batch, n_out), dtype)
    for train in (True, False):
        mode = "train" if train else "eval"
        k = key if (train and block.random) else None
        hint = (
            " (a block whose train-mode forward pass draws random numbers sets the class attribute `random = True`, "
            "and fnn passes it a key)"
            if train and not block.random
            else ""
        )

        def run(p: Any, x: Any, dy: Any, k: Any, train: bool = train, mode: str = mode) -> Any:
            out = block.forward(p, x, k, train)
            if not isinstance(out, tuple) or len(out) != 3:
                got = f"a tuple of {len(out)}" if isinstance(out, tuple) else f"{type(out).__name__} {_described(out)}"
                raise _MalformedType(
                    f"{name}: `forward` must return a tuple (y, state, res) (state None without running statistics), "
                    f"got {got} ({mode} mode)"
                )
            y, new_state, res = out
            if not _is_array(y) or not jnp.issubdtype(y.dtype, jnp.floating):
                raise _MalformedType(f"{name}: `forward`'s y must be a float array, got {_described(y)} ({mode} mode)")
            if tuple(y.shape) != (batch, n_out) or y.dtype != dtype:
                raise _MalformedValue(
                    f"{name}: `forward` returned y of {_described(y)} for x of {_described(x)} ({mode} mode), but "
                    f"out_size({n_in}) = {n_out} says {jnp.dtype(dtype).name}{[batch, n_out]}: one row per example, "
                    "in the input's dtype "
                    "(a block that changes the width defines out_size)"
                )
            substack = isinstance(new_state, dict) and set(new_state) == {"blocks"} and "blocks" in p  # a residual's
            if new_state is not None and state is None and not substack:
                raise _MalformedValue(
                    f"{name}: `forward` returned a new state {_described(new_state)} ({mode} mode) but `init` keeps no "
                    'params["state"]: running statistics live under params["state"], or forward returns None'
                )
            if (
                new_state is not None
                and state is not None
                and (
                    not _same_structure(new_state, state)
                    or [(a.shape, a.dtype) for a in jax.tree_util.tree_leaves(new_state)]
                    != [(a.shape, a.dtype) for a in jax.tree_util.tree_leaves(state)]
                )
            ):
                raise _MalformedValue(
                    f"{name}: `forward` returned the state {_described(new_state)} ({mode} mode), but params['state'] is "
                    f"{_described(state)}: the new running statistics replace the old, so they must match"
                )
            back = block.backward(p, res, dy)
            if not isinstance(back, tuple) or len(back) != 2:
                got = f"a tuple of {len(back)}" if isinstance(back, tuple) else type(back).__name__
                raise _MalformedType(f"{name}: `backward` must return a tuple (grads, dx), got {got} ({mode} mode)")
            grads, dx = back
            want = [(tuple(a.shape), a.dtype) for a in jax.tree_util.tree_leaves(p)]
            if not isinstance(grads, dict) or not _same_structure(grads, p):
                raise _MalformedValue(
                    f"{name}: `backward` returned grads {_described(grads)} ({mode} mode), but params are {_described(p)}: "
                    'grads must have the structure of params, a gradient for every leaf (zeros under "state": running '
                    "statistics are not trained)"
                )
            _check_floats(grads, "grads", dtype, name)
            if [(tuple(a.shape), a.dtype) for a in jax.tree_util.tree_leaves(grads)] != want:
                raise _MalformedValue(
                    f"{name}: `backward` returned grads {_described(grads)} ({mode} mode), but params are {_described(p)}: "
                    "each gradient has the shape of its parameter"
                )
            if not _is_array(dx) or tuple(dx.shape) != (batch, n_in) or dx.dtype != dtype:
                raise _MalformedValue(
                    f"{name}: `backward` returned dx of {_described(dx)} ({mode} mode), but x is {_described(x)}: "
                    "dx = ∂E/∂x has the shape and dtype of x"
                )
            return y

        _traced(run, (params, x, dy, k), name, f"forward / backward in {mode} mode", hint)
    return n_out, params
