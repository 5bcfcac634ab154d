"""Three-way gradient check: hand-derived backward vs ``jax.grad`` vs central finite differences.

For each layer and leaf (W, b) the report gives the largest absolute difference and the
relative error

.. math::  \\mathrm{rel}(a, b) = \\frac{\\max_i |a_i - b_i|}{\\max(\\|a\\|_\\infty, \\|b\\|_\\infty, \\mathrm{tiny})}

for manual vs autodiff and manual vs finite differences. Finite differences use a central
step ``ε·max(1, |θ_i|)`` with ``ε = ∛(machine epsilon)`` of the dtype they are taken in (≈ 6e-6 in
float64), which balances the O(ε²) truncation error against the O(u/ε) rounding error. The same
difference is also taken at twice the step: the two disagree by about what finite differences get
wrong themselves (their *spread*, Richardson's estimate of the truncation error, plus rounding).

**Finite differences in float64, whatever the dtype.** In float32 a central difference cannot
resolve a small gradient: near a minimum the truncation error of the float32 step (ε ≈ 5e-3) alone
can exceed the gradient. So where the platform computes in float64 (CPU, GPU), a check of float32 (or
lower) parameters casts the parameters and data up, exactly, and takes the finite differences in
float64 (under ``jax.enable_x64``, for this call only: the global flag is never changed). The hand
derivation is then checked twice on every leaf:

- *the derivation*, in float64: the same manual backward evaluated in float64 at the same point
  against the float64 finite differences, within float64's tolerance (``fd64_rel``; a 1% error in a
  hand-derived derivative cannot hide in float32 rounding);
- *your gradient*, in its dtype: manual against the float64 finite differences within ``fd_rtol``,
  or within the dtype's own rounding of that gradient (``rounding``: manual in the dtype vs manual in
  float64) when that is larger: near a minimum a float32 gradient is a small difference of large
  terms, and a correct derivation cannot do better.

``compare_gradients(..., fd64=False)`` takes them in the parameters' dtype instead (the only route
where float64 is not available, e.g. on a TPU).

A ReLU-like unit (hidden or output) whose pre-activation changes sign between ``θ_i − ε`` and
``θ_i + ε`` makes the difference quotient meaningless (it straddles the kink). Such coordinates are
detected exactly, by comparing every kinked layer's activation pattern at the two evaluation
points, counted in the report and left out of the finite-difference error.

Each leaf ends ``ok``, ``mismatch`` or ``unresolved`` (finite differences could not check it), and the
report is ``ok`` only when every leaf is ``ok``: the records and what each state means are in
``_report.py`` (:class:`GradientReport`, :meth:`GradientReport.status`), whose names this module exports.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from fnn import _checks, _compile
from fnn.check._report import FD_FLOOR_CAP, STATUSES, GradientReport, LeafReport  # noqa: F401  (all still importable here)
from fnn.core import losses as _losses
from fnn.core.backprop import (
    autodiff_value_and_grad,
    check_loss,
    manual_value_and_grad,
    prepare_batch,
)
from fnn.core.mlp import MLP, Params
from fnn.core.network import Model, Network

_FD_ROUNDING = 8.0  # E(θ ± h) is a sum over the batch: allow a few ulps of |E| per evaluation
_MIN_PER_LEAF = 8  # a random subset checks at least this many coordinates of every leaf (or all of it)
# (manual vs autodiff, manual vs finite differences) relative tolerances by dtype
TOLERANCES = {"float64": (1e-10, 1e-6), "float32": (1e-4, 2e-2)}
_LOW_PRECISION_TOL = (5e-2, 2e-1)


def _stratified(sizes: list[int], budget: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted flat indices: ``min(n, 8)`` per leaf, the rest of ``budget`` in proportion to leaf size."""
    quota = np.array([min(n, _MIN_PER_LEAF) for n in sizes])
    room = np.array(sizes) - quota
    extra = max(budget - int(quota.sum()), 0)
    if extra and room.sum():
        share = extra * room / room.sum()
        add = np.floor(share).astype(int)
        add[np.argsort(add - share)[: extra - int(add.sum())]] += 1  # largest remainders
        quota += np.minimum(add, room)
    picks, offset = [], 0
    for n, q in zip(sizes, quota):
        picks.append(offset + rng.choice(n, int(q), replace=False))
        offset += n
    return np.sort(np.concatenate(picks))


def _rel(a: np.ndarray, b: np.ndarray, tiny: float) -> tuple[float, float]:
    diff = float(np.max(np.abs(a - b)))
    return diff, diff / max(float(np.max(np.abs(a))), float(np.max(np.abs(b))), tiny)


def compare_gradients(
    net: MLP | Network | Model,
    params: Any,
    x: ArrayLike,
    y: ArrayLike,
    *legacy: Any,
    loss: _losses.LossLike | None = None,
    eps: float | None = None,
    max_coords: int | None = 4096,
    key: jax.Array | None = None,
    rtol: tuple[float, float] | None = None,
    fd64: bool | None = None,
    train: bool = True,
) -> GradientReport:
    """Compare manual, ``jax.grad`` and central finite-difference gradients, per layer and leaf.

    Arguments in the order of :func:`fnn.fit`: ``compare_gradients(net, params, x, y, loss=...)``; the
    old order ``compare_gradients(net, loss, params, x, y)`` still works, with a DeprecationWarning.

    A network of blocks (:class:`fnn.Network`) is checked leaf by leaf the same way: the chain of its
    blocks' backward passes against ``jax.grad`` and finite differences of the objective, in the mode
    ``train`` says, with ``key`` drawing dropout's mask (the same mask in all three). Its leaves are named by
    block (``layer``: the block's index in ``params``) and path (``leaf``: ``"W"``, ``"gamma"``,
    ``"blocks[0].W"``); the running statistics (``"state"``) are not trained, so they are left out
    (``report.skipped`` names them). A :class:`fnn.Model` has no hand-derived backward pass: its report
    compares ``jax.grad``, the gradient fnn trains it with, against finite differences
    (``report.has_manual`` is False, the manual-vs-autodiff columns are empty).

    Args:
      net: the network spec: an :class:`~fnn.MLP`, a :class:`~fnn.Network` or a :class:`~fnn.Model`.
      params: parameters; their dtype sets the step and the tolerances.
      x: inputs (B, n_in) or (n_in,). y: targets, as for the loss.
      loss: a loss name or an :class:`~fnn.losses.Loss`.
      eps: finite-difference step scale; default ∛(machine epsilon) of the dtype.
      max_coords: at most about this many coordinates get finite differences; beyond that a
        random subset (drawn with ``key``) is checked, spread over the leaves in proportion to their
        sizes with at least ``min(size, 8)`` coordinates of every leaf (so a small budget can exceed
        ``max_coords`` by a few). None checks every coordinate.
      key: for the random subset; default ``jax.random.key(0)``. A network with dropout in train mode also
        draws its mask from it (required then).
      rtol: ``(autodiff_rtol, fd_rtol)``; default by dtype (float64: 1e-10, 1e-6; float32: 1e-4, 2e-2).
        With float64 finite differences for a lower dtype, the derivation's check in float64 uses
        ``fd_rtol`` when given, else float64's 1e-6.
      fd64: take the finite differences in float64 for parameters of a lower dtype (cast up, exactly;
        see the module docstring). None (default): where the platform computes in float64 (CPU,
        GPU); True: insist (a ValueError where it cannot); False: in the parameters' dtype.
      train: for a network of blocks: train mode (batch statistics, dropout; the default, as training
        computes its gradients) or eval mode (False: running statistics, no dropout). An MLP has no mode.

    Returns:
      A :class:`GradientReport`; ``report.ok`` says whether both comparisons pass on every leaf;
      ``report.status(leaf)`` tells a mismatch from a leaf finite differences could not check;
      ``report.fd_dtype`` says which dtype the finite differences were taken in.

    Example:
      >>> net = MLP((2, 3, 2), hidden="tanh", output="softmax")
      >>> r = compare_gradients(net, net.init(jax.random.key(0)), jnp.ones((4, 2)), jnp.array([0, 1, 1, 0]), loss="cross_entropy")
      >>> r.ok
      True
    """
    params, x, y, loss = _checks.params_first("compare_gradients", params, x, y, legacy, loss)
    check_loss(net, loss)
    if not isinstance(net, MLP):
        from fnn.check._netcheck import compare_network  # (it builds on this module's helpers)

        return compare_network(
            net, params, x, y, loss=loss, eps=eps, max_coords=max_coords, key=key, rtol=rtol, fd64=fd64, train=train
        )
    if train is not True:
        raise TypeError("`train` is an option of a network of blocks (fnn.Network); an MLP has no mode")
    xa, t = prepare_batch(net, loss, params, x, y)
    _checks.check_finite(xa, "x")
    dtype = jnp.result_type(xa.dtype, params[-1]["W"].dtype)
    o = options(params, dtype, max_coords=max_coords, key=key, fd64=fd64, eps=eps, rtol=rtol)
    max_coords, up, fd_dtype, finfo, fd_finfo, eps = o.max_coords, o.up, o.fd_dtype, o.finfo, o.fd_finfo, o.eps
    ad_rtol, fd_rtol, fd64_rtol = o.ad_rtol, o.fd_rtol, o.fd64_rtol

    kinked = tuple(l for l, a in enumerate(net.activations) if a.kinks)  # hidden and output layers
    sizes = [int(np.prod(s)) for layer in net.shapes for s in layer.values()]
    total = sum(sizes)
    seed = int(jax.random.randint(key if key is not None else jax.random.key(0), (), 0, 2**31 - 1))
    take_all = max_coords is None or total <= max_coords
    picked = np.arange(total) if max_coords is None or take_all else _stratified(sizes, max_coords, np.random.default_rng(seed))
    # a small check runs briefly: compile its programs quickly (fnn/_compile.py)
    quick = _compile.use_quick(2 * picked.size * math.prod(xa.shape[:-1]) * sum(a * b for a, b in zip(net.sizes, net.sizes[1:])))
    exact = _exact_quick if quick else _exact
    chunk_fn = _fd_chunk_quick if quick else _fd_chunk
    E, manual, auto, margin_arr = exact(net, loss, kinked, params, xa, t)
    margin = float(margin_arr) if kinked else None
    flat = [np.asarray(params[l][leaf]).reshape(-1) for l, layer in enumerate(net.shapes) for leaf in layer]
    manual64 = None
    if up:  # the same point in float64 (every float32 or lower value is a float64 exactly); this call only
        with _x64():
            theta = jnp.asarray(np.concatenate(flat).astype(np.float64))
            x64, t64 = (jnp.asarray(np.asarray(a).astype(np.float64)) for a in (xa, t))
            E64, manual64, _, _ = exact(net, loss, kinked, _unravel(net, theta), x64, t64)
            manual64 = jax.tree.map(np.asarray, manual64)
            fd, spread, kink = _finite_diff(net, loss, theta, x64, t64, kinked, picked, eps, chunk_fn)
            E_fd = float(E64)
    else:
        theta = jnp.asarray(np.concatenate(flat).astype(jnp.dtype(dtype)))
        fd, spread, kink = _finite_diff(net, loss, theta, xa, t, kinked, picked, eps, chunk_fn)
        E_fd = float(E)

    names = [(l, leaf, tuple(shape)) for l, layer in enumerate(net.shapes) for leaf, shape in layer.items()]

    def by_leaf(tree: Params) -> list[np.ndarray]:
        return [np.asarray(tree[l][leaf]).reshape(-1) for l, leaf, _ in names]

    m64 = None if manual64 is None else by_leaf(manual64)
    rows = leaf_rows(names, by_leaf(manual), by_leaf(auto), m64, picked, fd, spread, kink, E_fd, eps, fd_finfo, finfo)
    return GradientReport(
        tuple(rows), float(E), jnp.dtype(dtype).name, float(eps), ad_rtol, fd_rtol, margin, manual, auto, fd_dtype.name, fd64_rtol
    )


class Options(NamedTuple):
    """compare_gradients' options, checked, and what follows from them and the dtype."""

    max_coords: int | None
    up: bool  # finite differences in float64 for a lower dtype
    fd_dtype: Any
    finfo: Any  # the parameters' dtype's limits
    fd_finfo: Any  # those of the dtype finite differences are taken in (NumPy's: float64's whatever JAX's x64 flag)
    eps: float
    ad_rtol: float
    fd_rtol: float
    fd64_rtol: float | None


def options(params: Any, dtype: Any, *, max_coords: Any, key: Any, fd64: Any, eps: Any, rtol: Any) -> Options:
    """Check compare_gradients' options; where finite differences are taken, with which step and tolerances."""
    max_coords = _checks.check_int(max_coords, "max_coords", 1, allow_none=True)
    if key is not None:
        _checks.check_key(key, "key")
    if fd64 is not None and not isinstance(fd64, bool):
        raise TypeError(f"`fd64` must be True, False or None, got {type(fd64).__name__}: {fd64!r:.60}")
    up = jnp.dtype(dtype).name != "float64" and fd64 is not False  # finite differences in float64 for a lower dtype
    if up and not _float64_platform(params):
        if fd64:
            raise ValueError(
                f"`fd64=True`: the {_platform(params)!r} platform does not compute in float64; "
                "pass fd64=False (finite differences in the parameters' dtype) or check on the CPU"
            )
        up = False
    fd_dtype = jnp.dtype(jnp.float64) if up else jnp.dtype(dtype)
    finfo, fd_finfo = jnp.finfo(dtype), np.finfo(fd_dtype.name)  # np: float64's limits whatever JAX's x64 flag
    if eps is None:
        eps = float(fd_finfo.eps) ** (1.0 / 3.0)
    elif isinstance(eps, bool) or not isinstance(eps, (int, float)) or not (0 < eps < 1):
        raise ValueError(f"`eps` must be a float in (0, 1), got {eps!r}")
    ad_rtol, fd_rtol = _check_rtol(rtol) if rtol is not None else tolerance(dtype)
    fd64_rtol = (fd_rtol if rtol is not None else TOLERANCES["float64"][1]) if up else None
    return Options(max_coords, up, fd_dtype, finfo, fd_finfo, float(eps), ad_rtol, fd_rtol, fd64_rtol)


def leaf_rows(
    names: list[tuple[int, str, tuple[int, ...]]],
    manual: list[np.ndarray],
    auto: list[np.ndarray],
    manual64: list[np.ndarray] | None,
    picked: np.ndarray,
    fd: np.ndarray,
    spread: np.ndarray,
    kink: np.ndarray,
    E_fd: float,
    eps: float,
    fd_finfo: Any,
    finfo: Any,
    floor: float = 0.0,
) -> list[LeafReport]:
    """One :class:`LeafReport` per leaf ``(layer, leaf, shape)`` of ``names``, from each leaf's flat manual,
    autodiff (and float64 manual) gradient and the finite differences at the flat indices ``picked``.
    Errors are relative to the leaf's largest gradient, or to ``floor`` where that is larger."""
    tiny = max(float(finfo.tiny), floor)
    rows, offset = [], 0
    for i, (l, leaf, shape) in enumerate(names):
        n = int(np.prod(shape))
        sel = (picked >= offset) & (picked < offset + n)
        ks = picked[sel] - offset
        offset += n
        m, a = manual[i], auto[i]
        ad_abs, ad_rel = _rel(m, a, tiny)
        keep = ~kink[sel]
        fd_abs, fd_rel, fd_spread, fd64_rel, rounding = 0.0, 0.0, 0.0, None, None
        scale = max(float(np.max(np.abs(m), initial=0.0)), tiny)
        if keep.any():  # normalise by the whole leaf's scale, not only the checked entries
            f_k = fd[sel][keep]
            denom = max(scale, float(np.max(np.abs(f_k))))
            fd_abs = float(np.max(np.abs(m[ks][keep] - f_k)))
            fd_rel, fd_spread = fd_abs / denom, float(np.max(spread[sel][keep])) / denom
            if manual64 is not None:
                fd64_rel = float(np.max(np.abs(manual64[i][ks][keep] - f_k))) / denom
        if manual64 is not None:
            rounding = _rel(m.astype(np.float64), manual64[i], tiny)[1]
        # Rounding in E(θ ± h) alone makes the quotient wrong by about u·|E|/h: relative to a
        # leaf with small gradients, that is the finest finite differences can resolve.
        noise = _FD_ROUNDING * float(fd_finfo.eps) * max(abs(E_fd), tiny) / (eps * scale)
        kept = (int(keep.sum()), int((~keep).sum()))
        row = LeafReport(l, leaf, tuple(shape), ad_abs, ad_rel, fd_abs, fd_rel, *kept, fd_noise=noise, fd_spread=fd_spread)
        rows.append(dataclasses.replace(row, fd64_rel=fd64_rel, rounding=rounding))
    return rows


def _platform(params: Any) -> str:
    """The platform the parameters live on (the default backend for NumPy parameters)."""
    devices = getattr(jax.tree_util.tree_leaves(params)[0], "devices", None)
    return next(iter(devices())).platform if callable(devices) else jax.default_backend()


def _float64_platform(params: Any) -> bool:
    """Whether JAX computes in float64 there: the CPU and GPUs do; TPUs and Apple's Metal do not."""
    return _platform(params) in ("cpu", "gpu", "cuda", "rocm")


def _x64() -> Any:
    """JAX's float64 for the enclosed code only (a context manager; the global flag is left alone)."""
    from fnn.check.derivation import _x64 as x64  # one route to it for the package (newer and older JAX)

    return x64()


def _exact(net: MLP, loss: _losses.LossLike, kinked: tuple[int, ...], params: Params, x: jax.Array, t: jax.Array):
    """Loss, manual and autodiff gradients, and the smallest |z| of a kinked unit: one compiled call."""
    E, manual = manual_value_and_grad(net, loss)(params, x, t)
    _, auto = autodiff_value_and_grad(net, loss)(params, x, t)
    _, cache = net.propagate(params, x)
    margins = [jnp.min(jnp.abs(cache.z[l])) for l in kinked]
    return E, manual, auto, jnp.min(jnp.stack(margins)) if margins else jnp.inf


def _unravel(net: MLP, theta: jax.Array) -> Params:
    """The flat parameter vector back to ``[{"W", "b"}, ...]`` (the inverse of the concatenation above)."""
    params, offset = [], 0
    for layer in net.shapes:
        p = {}
        for leaf, shape in layer.items():
            n = int(np.prod(shape))
            p[leaf] = theta[offset : offset + n].reshape(shape)
            offset += n
        params.append(p)
    return params


def _fd_chunk(net: MLP, loss: _losses.LossLike, kinked: tuple[int, ...], theta, x, t, ks, steps):
    """E(θ + s e_k) for a chunk of (k, s), and whether any kinked unit changed side."""
    _, base = net.propagate(_unravel(net, theta), x)

    def one(k, s):
        out, c = net.propagate(_unravel(net, theta.at[k].add(s)), x)
        changed = jnp.zeros((), bool)
        for l in kinked:
            changed = changed | jnp.any((c.z[l] > 0) != (base.z[l] > 0))
        return _losses.value(loss, c.z[-1], out, t), changed

    return jax.vmap(one)(ks, steps)


# each compiled once per (network, loss, kinked layers): with XLA's defaults, and quickly (fnn/_compile.py)
_exact, _exact_quick = (jax.jit(_exact, static_argnums=(0, 1, 2), compiler_options=o) for o in (None, _compile.QUICK))
_fd_chunk, _fd_chunk_quick = (jax.jit(_fd_chunk, static_argnums=(0, 1, 2), compiler_options=o) for o in (None, _compile.QUICK))


def _finite_diff(
    net: MLP, loss: _losses.LossLike, theta: jax.Array, x, t, kinked, picked: np.ndarray, eps: float, chunk_fn: Callable
):
    """Central differences (E(θ+h e_k) − E(θ−h e_k)) / 2h for the flat indices ``picked``, their spread
    ``|d(h) − d(2h)|`` (the same difference at twice the step: what finite differences get wrong
    themselves, truncation and rounding; 0 where ±2h straddles a kink that ±h does not), and whether
    ±h straddles a kink.

    One compiled function per network and chunk size evaluates a fixed-size chunk of
    perturbations with ``vmap`` (the last chunk is padded), so every leaf reuses it.
    """
    chunk = int(max(1, min(256, 2**22 // theta.size, picked.size)))
    n = -(-picked.size // chunk) * chunk
    ks = jnp.asarray(np.pad(picked, (0, n - picked.size)))
    th = theta[ks]
    h = eps * jnp.maximum(1.0, jnp.abs(th))
    h = (th + h) - th  # a step exactly representable at θ_k
    h2 = (th + 2 * h) - th
    grads, spreads, kinks = [], [], []
    for s in range(0, n, chunk):
        k, hk, h2k = ks[s : s + chunk], h[s : s + chunk], h2[s : s + chunk]
        e_plus, c_plus = chunk_fn(net, loss, kinked, theta, x, t, k, hk)
        e_minus, c_minus = chunk_fn(net, loss, kinked, theta, x, t, k, -hk)
        e2_plus, c2_plus = chunk_fn(net, loss, kinked, theta, x, t, k, h2k)
        e2_minus, c2_minus = chunk_fn(net, loss, kinked, theta, x, t, k, -h2k)
        d = (e_plus - e_minus) / (2 * hk)
        d2 = (e2_plus - e2_minus) / (2 * h2k)
        grads.append(np.asarray(d))
        spreads.append(np.asarray(jnp.where(c2_plus | c2_minus, 0.0, jnp.abs(d - d2))))
        kinks.append(np.asarray(c_plus | c_minus))
    return (np.concatenate(grads)[: picked.size], np.concatenate(spreads)[: picked.size], np.concatenate(kinks)[: picked.size])


def _check_rtol(rtol: Any) -> tuple[float, float]:
    """``rtol`` is two positive numbers ``(autodiff_rtol, fd_rtol)``."""
    if not isinstance(rtol, (tuple, list)) or len(rtol) != 2:
        raise TypeError(f"`rtol` must be a pair (autodiff_rtol, fd_rtol) of positive numbers, got {rtol!r:.60}")
    return (
        _checks.check_number(rtol[0], "rtol[0]", 0.0, low_open=True),
        _checks.check_number(rtol[1], "rtol[1]", 0.0, low_open=True),
    )


def tolerance(dtype: Any) -> tuple[float, float]:
    """The default ``(autodiff_rtol, fd_rtol)`` for a dtype.

    >>> tolerance(jnp.float32), tolerance("float64"), tolerance("bfloat16")
    ((0.0001, 0.02), (1e-10, 1e-06), (0.05, 0.2))
    """
    return TOLERANCES.get(jnp.dtype(dtype).name, _LOW_PRECISION_TOL)
