"""Is my block's backward pass right? :func:`~fnn.check.check_derivation` of a :class:`~fnn.blocks.Block`.

A block's ``backward(params, res, dy)`` claims to be the vector–Jacobian product of its ``forward`` with the
upstream error ``dy = ∂E/∂y``:

.. math:: \\partial E/\\partial\\theta = J_\\theta^\\top\\,dy, \\qquad \\partial E/\\partial x = J_x^\\top\\,dy
          \\qquad\\text{for } E = \\textstyle\\sum_{b,j} dy_{bj}\\, y_{bj}(\\theta, x)

It is compared, in float64, with two references that read only ``forward``:

- ``jax.vjp`` of ``forward`` with respect to the trained parameters and ``x`` (the running statistics under
  ``params["state"]`` held fixed), with the same ``dy``;
- central finite differences of ``E`` above, coordinate by coordinate (every coordinate of ``x`` and of each
  parameter leaf, a random subset of :data:`FD_MAX` for a larger leaf), with the step ``ε·max(1, |θ|)``,
  ``ε = ∛(machine epsilon)``, less the error finite differences themselves carry (:func:`fnn.check._compare.central`).

The point is generic, so that a term that vanishes at a special point cannot hide: a batch of
``batch`` examples whose features have their own means and scales (a normalisation's variance is far from 1),
parameters moved from ``init``'s values by Gaussian noise (γ is not 1, β not 0; running variances stay
positive) and a random upstream error ``dy`` (never ones: Σ_b dy is then not special either). Both modes are
checked, train and eval (the regimes of the report); a random block draws from the same key in its forward
pass and in both references, so the mask it uses is the one they see. The gradient it returns for the running
statistics must be zero (they are not trained).

The tolerances are the activations' (1e-8 against ``jax.vjp``, 1e-6 against finite differences, relative to
the largest reference magnitude of the quantity, :func:`fnn.check._compare.compare`).
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from fnn import _compile
from fnn.check import _wellformed
from fnn.check._compare import SHIFTS, Comparison, central_stacked, compare
from fnn.check._tree import Layout, coordinate
from fnn.core.network import merge, trainable

AUTODIFF_RTOL = 1e-8
FD_RTOL = 1e-6
FD_MAX = 128  # coordinates of one quantity compared with finite differences (a random subset beyond)
MODES = ("train", "eval")
Array = jax.Array


def _perturbed(params: dict, key: jax.Array) -> dict:
    """``init``'s parameters moved to a generic point: a trained leaf by Gaussian noise of half its RMS
    (at least 0.1), a running statistic ``s`` to ``s·e^{0.3 n} + 0.5 u`` (n normal, u uniform: a positive one,
    a variance, stays positive)."""
    flat, treedef = jax.tree_util.tree_flatten_with_path(params)
    keys = jax.random.split(key, max(len(flat), 1))
    out = []
    for (path, a), k in zip(flat, keys):
        k1, k2 = jax.random.split(k)
        if any(isinstance(p, jax.tree_util.DictKey) and p.key == "state" for p in path):
            moved = a * jnp.exp(0.3 * jax.random.normal(k1, a.shape, a.dtype))
            out.append(moved + 0.5 * jax.random.uniform(k2, a.shape, a.dtype))
        else:
            rms = jnp.sqrt(jnp.mean(a * a)) if a.size else jnp.zeros((), a.dtype)
            out.append(a + 0.5 * jnp.maximum(rms, 0.1) * jax.random.normal(k1, a.shape, a.dtype))
    return jax.tree_util.tree_unflatten(treedef, out)


def _inputs(key: jax.Array, batch: int, n_in: int, n_out: int, dtype: Any) -> tuple[jax.Array, jax.Array]:
    """``x``: each feature with its own mean (normal) and scale (log-normal); ``dy``: standard normal."""
    k_loc, k_scale, k_x, k_dy = jax.random.split(key, 4)
    loc = jax.random.normal(k_loc, (n_in,), dtype)
    scale = jnp.exp(0.7 * jax.random.normal(k_scale, (n_in,), dtype))
    x = loc + scale * jax.random.normal(k_x, (batch, n_in), dtype)
    return x, jax.random.normal(k_dy, (batch, n_out), dtype)


Point = tuple[dict, jax.Array, jax.Array, jax.Array, jax.Array]


@functools.partial(jax.jit, static_argnums=(0, 1, 2, 3))
def _point(block: Any, n_in: int, n_out: int, batch: int, key: jax.Array) -> Point:
    """The point checked, in float64: ``(params, x, dy, the forward pass's key, a seed for the subsets)`` (one
    compiled call: drawn op by op, each draw would compile on its own)."""
    k_init, k_move, k_data, k_fwd, k_pick = jax.random.split(key, 5)
    params = _perturbed(block.init(k_init, n_in, jnp.float64), k_move)
    x, dy = _inputs(k_data, batch, n_in, n_out, jnp.float64)
    return params, x, dy, k_fwd, jax.random.randint(k_pick, (), 0, 2**31 - 1)


class _Mode(NamedTuple):
    """What one mode computed, flat in the order ``(x, trained leaves)``."""

    manual: np.ndarray  # the block's backward pass: (∂E/∂x, ∂E/∂θ)
    oracle: np.ndarray | None  # jax.vjp's (None where JAX cannot differentiate forward)
    fd: np.ndarray  # central differences at the checked coordinates
    allowance: np.ndarray  # the error they may carry themselves
    state: np.ndarray  # the gradient the block returned for its running statistics


def _run(block: Any, train: bool, layout: Layout, params: dict, x: Array, dy: Array, key: Any, ks: Array, steps: Array) -> tuple:
    """One mode's :class:`_Mode`, as arrays: the block's ``(∂E/∂x, ∂E/∂θ)``, ``jax.vjp``'s, central
    differences at the flat coordinates ``ks`` with their allowance, the running statistics' gradient."""
    key = key if (train and block.random) else None
    _, _, res = block.forward(params, x, key, train)
    grads, dx = block.backward(params, res, dy)
    manual = layout.ravel((dx, trainable(grads)), x.dtype)

    def y_of(tp: Any, xx: Array) -> Array:
        return block.forward(merge(tp, params), xx, key, train)[0]

    try:
        _, vjp = jax.vjp(y_of, trainable(params), x)
        g_tp, g_x = vjp(dy)
        oracle = layout.ravel((g_x, g_tp), x.dtype)
    except Exception:  # forward is not differentiable by JAX: finite differences only
        oracle = None
    theta = layout.ravel((x, trainable(params)), x.dtype)

    def E(e: Array) -> Array:  # E at θ + e_j u_k(j), for the six shifts of every coordinate k stacked
        def one(k: Array, s: Array) -> Array:
            xx, tp = layout.unravel(theta.at[k].add(s))
            return jnp.sum(dy * y_of(tp, xx))

        return jax.vmap(one)(jnp.tile(ks, len(SHIFTS)), e)

    fd, allowance = central_stacked(E, steps)
    return manual, oracle, fd, allowance, _state_grads(grads)


# compiled once per (block, mode, layout): with XLA's defaults, and quickly for a small check (fnn/_compile.py)
_run_default = jax.jit(_run, static_argnums=(0, 1, 2))
_run_quick = jax.jit(_run, static_argnums=(0, 1, 2), compiler_options=_compile.QUICK)


def _state_grads(grads: dict) -> Array:
    """The gradients a block returned under ``"state"`` (at any depth), flat."""
    leaves = [
        jnp.ravel(a)
        for path, a in jax.tree_util.tree_flatten_with_path(grads)[0]
        if any(isinstance(p, jax.tree_util.DictKey) and p.key == "state" for p in path)
    ]
    return jnp.concatenate(leaves) if leaves else jnp.zeros((0,))


def _largest(a: np.ndarray) -> float:
    return float(np.max(np.abs(a[np.isfinite(a)]), initial=0.0))


def check_block(block: Any, n_in: int, batch: int, key: Array) -> tuple[tuple[Comparison, ...], tuple[str, ...]]:
    """The comparisons of :func:`~fnn.check.check_derivation` for a block (called in float64), and notes."""
    n_out, _ = _wellformed.check_block(block, n_in, batch, jnp.float64, key)
    params, x, dy, k_fwd, seed = _point(block, n_in, n_out, batch, key)
    layout = Layout.of((x, trainable(params)))
    names = ["x", *(n.removeprefix("[1]").lstrip(".") for n in layout.names[1:])]
    offsets = np.concatenate([[0], np.cumsum(layout.sizes)]).astype(int)
    rng = np.random.default_rng(int(seed))
    picks = [np.sort(rng.choice(n, FD_MAX, replace=False)) if n > FD_MAX else np.arange(n) for n in layout.sizes]
    ks = np.concatenate([p + o for p, o in zip(picks, offsets)]).astype(np.int64)
    theta = layout.ravel_np((x, trainable(params)))[ks]
    steps = np.cbrt(np.finfo(np.float64).eps) * np.maximum(1.0, np.abs(theta))
    steps = (theta + steps) - theta  # exactly representable at θ_k

    # a small check runs briefly: compile it quickly (7 evaluations of the block per finite-difference coordinate)
    run = _run_quick if _compile.use_quick(7 * (ks.size + 1) * batch * max(n_in, n_out) ** 2) else _run_default
    modes = []
    for train in (True, False):
        manual, oracle, fd, allowance, state = run(block, train, layout, params, x, dy, k_fwd, ks, steps)
        oracle = None if oracle is None else np.asarray(oracle)
        modes.append(_Mode(np.asarray(manual), oracle, np.asarray(fd), np.asarray(allowance), np.asarray(state)))
    comparisons, notes = [], []
    oracles = [m.oracle for m in modes if m.oracle is not None]
    if len(oracles) < len(modes):
        notes.append("jax.vjp of forward failed, so only finite differences were compared")
    # the floors' scale: the largest reference magnitude over every quantity (see _compare.compare)
    vjp_scale = max((_largest(o) for o in oracles), default=0.0)
    fd_scale = max(_largest(m.fd) for m in modes)
    for q, (name, shape) in enumerate(zip(names, layout.shapes)):
        lo, hi = offsets[q], offsets[q + 1]
        coords = [coordinate(shape, k) for k in range(hi - lo)]
        sel = (ks >= lo) & (ks < hi)
        local = ks[sel] - lo
        for against, idx, refs, more in (
            ("jax.vjp", np.arange(hi - lo), oracles, {"scale": vjp_scale}),
            (
                "finite diff.",
                local,
                [m.fd[sel] for m in modes],
                {"scale": fd_scale, "allowance": np.concatenate([m.allowance[sel] for m in modes])},
            ),
        ):
            if len(refs) < len(modes):
                continue
            comparisons.append(
                compare(
                    f"∂E/∂{name}: {against}",
                    np.concatenate([m.manual[lo:hi][idx] for m in modes]),
                    np.concatenate([r[lo:hi] if against == "jax.vjp" else r for r in refs]),
                    np.ones(len(modes) * len(idx), bool),
                    np.repeat(np.arange(len(modes)), len(idx)),
                    [f"{mode} mode, {name}{coords[k]}" for mode in MODES for k in idx],
                    AUTODIFF_RTOL if against == "jax.vjp" else FD_RTOL,
                    MODES,
                    **more,
                )
            )
        if len(local) < hi - lo:
            notes.append(f"finite differences at {len(local)} of the {hi - lo} coordinates of {name} (a random subset)")
    n = modes[0].state.size
    if n:  # the running statistics' gradient: zero, they are not trained
        comparisons.append(
            compare(
                "∂E/∂state: must be zero",
                np.concatenate([m.state for m in modes]),
                np.zeros(2 * n),
                np.ones(2 * n, bool),
                np.repeat(np.arange(len(MODES)), n),
                [f"{mode} mode, state entry {k}" for mode in MODES for k in range(n)],
                AUTODIFF_RTOL,
                MODES,
            )
        )
    notes.append(
        f"n_in={n_in}, a batch of {batch}: random inputs (own mean and scale per feature), parameters moved from init, "
        "random upstream gradients dy"
    )
    return tuple(comparisons), tuple(notes)
