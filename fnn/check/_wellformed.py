"""Is a user-made activation or loss well formed? What :func:`~fnn.check.check_derivation` checks before
it compares any derivative: every function traces under JAX and returns real floats of the right shape
(:func:`probe`), and an activation is elementwise (:func:`check_elementwise`): ``f`` applied to a batch
equals ``f`` applied to each entry alone. A record that is not is refused with a TypeError or ValueError
naming it and the function, before it reaches a network and fails deep inside JAX or trains wrongly.
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
