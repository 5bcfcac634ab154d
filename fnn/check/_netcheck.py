""":func:`~fnn.check.compare_gradients` for a network of blocks (:class:`~fnn.Network`) or a :class:`~fnn.Model`.

The same three-way check as an MLP's (``gradcheck.py``'s module docstring: the step, the float64 finite
differences for a lower dtype, the kinks, the leaves' states), on the objective ``E(θ)`` of the mode asked
for: in train mode with the batch's statistics and dropout's mask drawn from ``key`` (the same mask for the
manual gradient, ``jax.grad`` and every finite difference, so all three differentiate the same function).

- **Leaves.** The trained leaves, named by block (``layer``: the block's index in ``params``) and by their
  path in the block's dict (``W``, ``gamma``, ``blocks[0].W``). The running statistics under ``"state"`` are
  not trained (their gradient is zero by construction, the objective sees them through ``stop_gradient``):
  they are left out and listed in ``report.skipped``.
- **Scale.** A leaf's errors are relative to its largest gradient, or to :data:`FLOOR` (1e-3) of the whole
  network's largest where that is larger: the gradient of a bias right before a batch norm is zero in train
  mode (the batch mean removes it) and all three paths give rounding there, which is no error; a wrong
  derivative of a leaf with gradients 1e-3 of the network's largest is still off by far more.
- **Kinks.** The inputs of every :class:`~fnn.blocks.Activate` with a kinked activation (ReLU-like, inside
  residuals too) and the logits under a kinked output activation are compared at ``θ`` and ``θ ± h``; a
  coordinate whose perturbation flips one is left out of the finite differences. A kink inside a block of
  your own is not seen: its finite differences' spread shows it (``unresolved`` rather than ``mismatch``).
- **A Model** has no hand-derived backward pass: ``jax.grad``, the gradient fnn trains it with, is compared
  with finite differences (``report.has_manual`` is False; ``report.manual`` is None).
- **Random draws and float64.** Finite differences in float64 for float32 parameters evaluate the network
  under ``jax.enable_x64``. A random block whose draws depend on that flag (a Bernoulli draw of a Python
  float probability is drawn in float64 under it) would then see another mask: the logits in both
  precisions are compared first, and where they differ by more than rounding the finite differences are
  taken in the parameters' dtype instead, with a note (``fd64=True``: a ValueError).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from fnn import _checks, _compile
from fnn.check import gradcheck
from fnn.check._report import GradientReport
from fnn.check._tree import Layout, leaf_name
from fnn.core import blocks as _blocks
from fnn.core import losses as _losses
from fnn.core.backprop import prepare_batch
from fnn.core.network import Model, Network, merge, network_step_grads, trainable

Array = jax.Array
_DRAWS_RTOL = 1e-3  # logits in the dtype vs float64 differ by more than this: the random draws differ
FLOOR = 1e-3  # a leaf's errors are relative to at least this fraction of the network's largest gradient


def _kinked(blocks: tuple, res: list) -> list[Array]:
    """The inputs of every Activate block with a kinked activation, inside residuals too."""
    out = []
    for b, r in zip(blocks, res):
        if isinstance(b, _blocks.Activate) and b.activation.kinks:
            out.append(r[0])
        elif isinstance(b, _blocks.Residual):
            out.extend(_kinked(b.blocks, r[1]))
    return out


def _forward(net: Network | Model, loss: _losses.Loss, train: bool, p: Any, x: Array, t: Array, key: Any) -> tuple:
    """``(E, logits, the kinked units' inputs)`` of the objective at ``p`` (no L2)."""
    if isinstance(net, Model):
        z, kinks = net.apply_fn(p, x), []
    else:
        z, _, res = _blocks.chain_forward(net.blocks, p, x, key, train)
        kinks = _kinked(net.blocks, res)
    if net.output.kinks:
        kinks.append(z)
    return _losses.value(loss, z, net.output.f(z), t), z, kinks


def _rebuild(net: Network | Model, layout: Layout, theta: Array, params: Any) -> Any:
    """The parameters at the flat trained vector ``theta``; a network's running statistics from ``params``."""
    tp = layout.unravel(theta)
    return tp if isinstance(net, Model) else merge(tp, params)


def _exact(net: Network | Model, loss: _losses.Loss, train: bool, layout: Layout, params: Any, x: Array, t: Array, key: Any):
    """E, the manual (None for a Model) and autodiff gradients flat, the smallest |input| of a kinked unit,
    the logits: one compiled call."""
    E, auto, _ = network_step_grads(net, loss, "autodiff", train)(params, x, t, key, None)
    flat = lambda g: layout.ravel(g if isinstance(net, Model) else trainable(g), x.dtype)
    manual = None
    if isinstance(net, Network):
        manual = flat(network_step_grads(net, loss, "manual", train)(params, x, t, key, None)[1])
    _, z, kinks = _forward(net, loss, train, params, x, t, key)
    margin = jnp.min(jnp.stack([jnp.min(jnp.abs(k)) for k in kinks])) if kinks else jnp.inf
    return E, manual, flat(auto), margin, z


def _fd_chunk(net: Network | Model, loss: _losses.Loss, train: bool, layout: Layout, theta, params, x, t, key, ks, steps):
    """E(θ + s e_k) for a chunk of (k, s), and whether any kinked unit changed side."""
    _, _, base = _forward(net, loss, train, _rebuild(net, layout, theta, params), x, t, key)

    def one(k, s):
        E, _, kinks = _forward(net, loss, train, _rebuild(net, layout, theta.at[k].add(s), params), x, t, key)
        changed = jnp.zeros((), bool)
        for a, b in zip(kinks, base):
            changed = changed | jnp.any((a > 0) != (b > 0))
        return E, changed

    return jax.vmap(one)(ks, steps)


# each compiled once per (network, loss, mode, layout): with XLA's defaults, and quickly (fnn/_compile.py)
_STATIC = (0, 1, 2, 3)
_exact_default, _exact_quick = (jax.jit(_exact, static_argnums=_STATIC, compiler_options=o) for o in (None, _compile.QUICK))
_chunk_default, _chunk_quick = (jax.jit(_fd_chunk, static_argnums=_STATIC, compiler_options=o) for o in (None, _compile.QUICK))


def _differences(net, loss, train, layout, chunk, params, x, t, key, picked, eps) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """gradcheck's central differences, their spread and the kinks, at the flat trained coordinates ``picked``."""
    model = isinstance(net, Model)
    theta = jnp.asarray(layout.ravel_np(params if model else trainable(params)))
    chunk_fn = lambda _n, _l, _k, th, xx, tt, ks, hs: chunk(net, loss, train, layout, th, params, xx, tt, key, ks, hs)
    return gradcheck._finite_diff(net, loss, theta, x, t, (), picked, eps, chunk_fn)


def _names(layout: Layout) -> list[tuple[int, str, tuple[int, ...]]]:
    """``(layer, leaf, shape)`` of each leaf: a list's entries by index (a network's blocks), else layer 0."""
    out = []
    for path, shape in zip(layout.paths, layout.shapes):
        if path and isinstance(path[0], jax.tree_util.SequenceKey):
            out.append((path[0].idx, leaf_name(path[1:]), shape))
        else:
            out.append((0, leaf_name(path), shape))
    return out


def _state_paths(params: Any) -> tuple[str, ...]:
    return tuple(
        f"params{leaf_name(path)}" if leaf_name(path).startswith("[") else f"params.{leaf_name(path)}"
        for path, _ in jax.tree_util.tree_flatten_with_path(params)[0]
        if any(isinstance(p, jax.tree_util.DictKey) and p.key == "state" for p in path)
    )


def _cast(tree: Any, dtype: Any) -> Any:
    return jax.tree_util.tree_map(lambda a: jnp.asarray(np.asarray(a).astype(dtype)), tree)


def compare_network(
    net: Network | Model,
    params: Any,
    x: Any,
    y: Any,
    *,
    loss: Any,
    eps: Any,
    max_coords: Any,
    key: Any,
    rtol: Any,
    fd64: Any,
    train: Any,
) -> GradientReport:
    """:func:`~fnn.check.compare_gradients` of a network of blocks or a model (see the module docstring)."""
    record = _losses.get(loss)
    train = _checks.check_flag(train, "train")
    xa, t = prepare_batch(net, record, params, x, y)
    _checks.check_finite(xa, "x")
    if key is not None:
        _checks.check_key(key, "key")
    net.check_mode(params, xa, key, train)  # dropout's key, two examples for batch statistics, trained running statistics
    if xa.ndim == 1:  # one example: a batch of one
        xa, t = xa[None, :], t[None, :]
    model = isinstance(net, Model)
    tp = params if model else trainable(params)
    layout = Layout.of(tp)
    dtype = jnp.result_type(xa.dtype, *(a.dtype for a in jax.tree_util.tree_leaves(tp)))
    o = gradcheck.options(params, dtype, max_coords=max_coords, key=key, fd64=fd64, eps=eps, rtol=rtol)
    sizes, notes = layout.sizes, []
    total = sum(sizes)
    seed = int(jax.random.randint(key if key is not None else jax.random.key(0), (), 0, 2**31 - 1))
    take_all = o.max_coords is None or total <= o.max_coords
    rng = np.random.default_rng(seed)
    picked = np.arange(total) if take_all or o.max_coords is None else gradcheck._stratified(sizes, o.max_coords, rng)
    # a small check runs briefly: compile its programs quickly (fnn/_compile.py)
    quick = _compile.use_quick(2 * picked.size * xa.shape[0] * total)
    exact, chunk = (_exact_quick, _chunk_quick) if quick else (_exact_default, _chunk_default)
    params_d, xa, t = _cast(params, dtype), xa.astype(dtype), t.astype(dtype)
    E, manual, auto, margin_arr, z = exact(net, record, train, layout, params_d, xa, t, key)
    up, manual64, fd = o.up, None, None
    if up:  # the same point in float64 (every float32 or lower value is a float64 exactly); this call only
        with gradcheck._x64():
            p64, x64, t64 = _cast(params, np.float64), _cast(xa, np.float64), _cast(t, np.float64)
            E64, m64, a64, _, z64 = exact(net, record, train, layout, p64, x64, t64, key)
            drift = float(np.max(np.abs(np.asarray(z, np.float64) - np.asarray(z64)), initial=0.0))
            scale = max(float(np.max(np.abs(np.asarray(z64)), initial=0.0)), 1.0)
            if net.random and train and drift > _DRAWS_RTOL * scale:
                if fd64:
                    raise ValueError(
                        "`fd64=True`: the network's random draws differ in float64 (its logits move by "
                        f"{drift:.2g}), so finite differences in float64 would differentiate another network; "
                        "pass fd64=False"
                    )
                notes.append(
                    f"finite differences in {jnp.dtype(dtype).name}, not float64: the network's random draws differ under "
                    f"float64 (its logits move by {drift:.2g}: a random block drawing in the x64 flag's precision)"
                )
                o = gradcheck.options(params, dtype, max_coords=max_coords, key=key, fd64=False, eps=eps, rtol=rtol)
            else:
                manual64 = layout.split(np.asarray(a64 if m64 is None else m64))
                fd = _differences(net, record, train, layout, chunk, p64, x64, t64, key, picked, o.eps)
                E_fd = float(E64)
    if fd is None:
        fd = _differences(net, record, train, layout, chunk, params_d, xa, t, key, picked, o.eps)
        E_fd = float(E)
    auto_flat = layout.split(np.asarray(auto))
    manual_flat = auto_flat if manual is None else layout.split(np.asarray(manual))
    # a leaf whose gradient is zero by construction (a bias before a batch norm in train mode) is measured
    # against the network's gradient scale, not against its own rounding
    floor = FLOOR * max((float(np.max(np.abs(a), initial=0.0)) for a in manual_flat), default=0.0)
    names = _names(layout)
    rows = gradcheck.leaf_rows(names, manual_flat, auto_flat, manual64, picked, *fd, E_fd, o.eps, o.fd_finfo, o.finfo, floor)
    has_kinks = bool(np.isfinite(float(margin_arr)))
    manual_tree = None if manual is None else _merge_zeros(layout.unravel(manual), params)
    return GradientReport(
        tuple(rows),
        float(E),
        jnp.dtype(dtype).name,
        o.eps,
        o.ad_rtol,
        o.fd_rtol,
        float(margin_arr) if has_kinks else None,
        manual_tree,
        layout.unravel(auto) if model else _merge_zeros(layout.unravel(auto), params),
        o.fd_dtype.name,
        o.fd64_rtol,
        has_manual=not model,
        skipped=() if model else _state_paths(params),
        notes=tuple(notes),
    )


def _merge_zeros(grads: Any, params: Any) -> Any:
    """A network's trained gradients with zeros under ``"state"``: the structure of ``params``."""
    zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
    return merge(grads, zeros)
