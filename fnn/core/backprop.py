"""The hand-derived backward pass (seed §4.2–4.3), next to ``jax.grad``.

Starting from the output error ``δ⁽ᴸ⁾ = ∂E/∂z⁽ᴸ⁾`` (:func:`fnn.losses.value_and_delta`), each
layer, from the last to the first, does

.. math::

    \\frac{\\partial E}{\\partial W^{(l)}} = \\delta^{(l)\\top} h^{(l-1)}, \\qquad
    \\frac{\\partial E}{\\partial b^{(l)}} = \\textstyle\\sum_{batch} \\delta^{(l)}, \\qquad
    \\delta^{(l-1)} = (\\delta^{(l)} W^{(l)}) \\odot f'^{(l-1)}(z^{(l-1)})

with rows of δ and h as examples. The error passed to the input is ``∂E/∂x = δ⁽¹⁾ W⁽¹⁾``.

Three interchangeable ``(params, x, y) -> (loss, grads)`` functions come out of it:
:func:`manual_value_and_grad` (the recursion above), :func:`autodiff_value_and_grad`
(``jax.value_and_grad`` of :func:`objective`) and :func:`with_manual_vjp`, a ``jax.custom_vjp``
whose reverse pass is the recursion, so ``jax.grad`` of user code routes through it. And the
objective with a weight per example and an L2 term on the weights, :func:`weighted_value_and_grad`
(what ``fnn.sklearn`` trains: scikit-learn's minibatch objective).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from fnn import _checks
from fnn.core import losses as _losses
from fnn.core.layer import input_error, weight_grad
from fnn.core.mlp import MLP, Cache, Params
from fnn.core.network import Model, Network, network_step_grads, network_value

Array = jax.Array
LossAndGrad = Callable[[Params, ArrayLike, ArrayLike], tuple[Array, Params]]


class Backprop(NamedTuple):
    """The result of the backward pass.

    Attributes:
      grads: ``[{"W": ∂E/∂W⁽ˡ⁾, "b": ∂E/∂b⁽ˡ⁾}, ...]``, the pytree structure of ``jax.grad``.
      deltas: (δ⁽¹⁾, …, δ⁽ᴸ⁾), δ⁽ˡ⁾ = ∂E/∂z⁽ˡ⁾ with the shape of z⁽ˡ⁾ (batch mean folded in).
      dx: ∂E/∂x, the error passed back to the input, shape of x (None if not asked for).

    Example:
      >>> net = MLP((2, 3, 1))
      >>> params = net.init(jax.random.key(0))
      >>> out, cache = net.forward(params, jnp.ones((4, 2)))
      >>> bp = backward_pass(net, params, cache, out)
      >>> [g["W"].shape for g in bp.grads], bp.deltas[0].shape, bp.dx.shape
      ([(3, 2), (1, 3)], (4, 3), (4, 2))
    """

    grads: Params
    deltas: tuple[Array, ...]
    dx: Array | None


def backward_pass(net: MLP, params: Params, cache: Cache, delta_out: Array, *, input_grad: bool = True) -> Backprop:
    """Run the δ recursion from ``delta_out`` down to the input.

    Args:
      net: the network spec.
      params: its parameters.
      cache: from ``net.forward(params, x)``.
      delta_out: δ⁽ᴸ⁾ = ∂E/∂z⁽ᴸ⁾, shape of ``cache.z[-1]``.
      input_grad: also compute ∂E/∂x (one more product); False leaves ``dx=None``.

    Returns:
      :class:`Backprop` with grads, every layer's δ, and ∂E/∂x.

    Example:
      >>> net = MLP((2, 4, 1), hidden="tanh")
      >>> params = net.init(jax.random.key(0))
      >>> out, cache = net.forward(params, jnp.ones((3, 2)))
      >>> bp = backward_pass(net, params, cache, out - 1.0)
      >>> bp.grads[0]["W"].shape, bp.dx.shape
      ((4, 2), (3, 2))
    """
    _check_backward(net, params, cache, input_grad)
    delta_out = _checks.as_array(delta_out, "delta_out")
    if np.dtype(delta_out.dtype).kind not in "biuf":
        raise TypeError(f"`delta_out` must hold real numbers, got dtype {delta_out.dtype}")
    if delta_out.shape != cache.z[-1].shape:
        raise ValueError(f"`delta_out` has shape {delta_out.shape} but the output z has shape {cache.z[-1].shape}")
    L = net.num_layers
    grads: list[dict[str, Array]] = [{}] * L
    deltas: list[Array] = [delta_out] * L
    delta = delta_out
    dx = None
    for l in range(L - 1, -1, -1):
        h_prev = cache.h[l - 1] if l > 0 else cache.x
        grads[l] = {"W": weight_grad(delta, h_prev), "b": delta if delta.ndim == 1 else jnp.sum(delta, axis=0)}
        deltas[l] = delta
        if l > 0:
            df = net.activations[l - 1].df
            assert df is not None  # hidden activations are elementwise (checked by MLP)
            delta = input_error(delta, params[l]["W"]) * df(cache.z[l - 1], cache.h[l - 1])
        elif input_grad:
            dx = input_error(delta, params[0]["W"])
    return Backprop(_like(params, grads), tuple(deltas), dx)


def _check_backward(net: MLP, params: Params, cache: Any, input_grad: Any) -> None:
    """What :func:`backward_pass` takes: the network, its parameters, a :class:`Cache` of its forward pass."""
    _checks.check_net(net, mlp_only=True)
    _checks.check_params(net, params)
    if not isinstance(input_grad, (bool, np.bool_)):
        raise TypeError(f"`input_grad` must be True or False, got {type(input_grad).__name__}: {input_grad!r:.40}")
    if not isinstance(cache, Cache):
        raise TypeError(f"`cache` must be the Cache of net.forward(params, x), got {type(cache).__name__}")
    shapes = [tuple(getattr(a, "shape", ())) for a in (cache.x, *cache.z, *cache.h)]
    batch = shapes[0][:-1]
    want = [(*batch, n) for n in (net.sizes[0], *net.sizes[1:], *net.sizes[1:])]
    if len(cache.z) != net.num_layers or len(cache.h) != net.num_layers or shapes != want:
        raise ValueError(f"`cache` holds x, z and h of shapes {shapes}, but {net!r} gives {want}: a cache of another network?")


def _like(params: Params, grads: list[dict[str, Array]]) -> Params:
    """``grads`` in the pytree structure of ``params``: their containers (a tuple of layers, an
    OrderedDict) and key order, so that ``jax.grad`` and the manual pass return the same tree."""
    if type(params) is list and all(type(layer) is dict for layer in params):
        return grads
    layers = [type(layer)((k, g[k]) for k in layer) for layer, g in zip(params, grads)]
    return layers if isinstance(params, list) else type(params)(layers)


def prepare_batch(net: MLP | Network | Model, loss: _losses.LossLike, params: Params, x: Any, y: Any) -> tuple[Array, Array]:
    """``(x, targets)`` of a call ``(params, x, y)``: every argument checked, the targets converted to
    the output's shape and dtype (:func:`fnn.losses.targets`). Used by every entry point that
    takes a batch: the backward passes here, ``compare_gradients``, ``evaluate``."""
    _checks.check_params(net, params)
    x = _checks.check_x(net, x)
    y = _checks.as_array(y, "y")
    _checks.check_batch(x, y)
    dtype = jnp.result_type(
        x.dtype, params[-1]["W"].dtype if isinstance(net, MLP) else jax.tree_util.tree_leaves(params)[0].dtype
    )
    return x, _losses.targets(loss, y, net.sizes[-1], tuple(x.shape[:-1]), dtype)


def check_loss(net: MLP | Network | Model, loss: _losses.LossLike) -> _losses.Loss:
    """The :class:`~fnn.losses.Loss` for ``loss`` after checking ``net`` and that the two pair."""
    _checks.check_net(net)
    return _losses.check_pair(loss, net.output)


def _blocks_fn(net: Network | Model, loss: _losses.LossLike, grad: str | None, train: Any, l2: Any) -> Callable:
    """``(params, x, y, key=None) -> (E, grads, params with new running statistics)`` for a network of
    blocks or a model: the arguments checked (before anything traces), one example or a batch."""
    record = check_loss(net, loss)
    train = _checks.check_flag(train, "train")
    lam = None if l2 is None else (l2 if not _checks.is_concrete(l2) else _checks.check_number(l2, "l2", 0.0))
    if grad is None:  # the objective's value alone
        value = network_value(net, record, train, l2=lam is not None)
        run = lambda *a: (value(*a), None, None)
    else:
        run = network_step_grads(net, record, grad, train, l2=lam is not None)

    def fn(params: Any, x: ArrayLike, y: ArrayLike, key: Any = None) -> tuple[Array, Any, Any]:
        net.check_params(params)
        x = _checks.check_x(net, x)
        y = _checks.as_array(y, "y")
        _checks.check_batch(x, y)
        net.check_mode(params, x, key, train)
        dtype = jnp.result_type(x.dtype, jax.tree_util.tree_leaves(params)[0].dtype)
        t = _losses.targets(record, y, net.sizes[-1], tuple(x.shape[:-1]), dtype)
        if x.ndim == 1:  # one example: a batch of one
            x, t = x[None, :], t[None, :]
        return run(params, x.astype(dtype), t, key, lam)

    return fn


def objective(
    net: MLP | Network | Model, loss: _losses.LossLike, *, train: bool = True, l2: float | None = None
) -> Callable[..., Array]:
    """The training objective ``(params, x, y) -> E``, a scalar (batch mean for a batch).

    For a network of blocks (:class:`~fnn.Network`) or a :class:`~fnn.Model`: ``(params, x, y, key=None)
    -> E`` in train mode (batch statistics, dropout drawn from ``key``; ``train=False``: eval mode),
    plus ``½ l2 Σ‖W‖²`` with ``l2`` (L2 weight decay in the objective).

    cross_entropy and bce are computed from the logits, so ``jax.grad`` of this is stable.

    >>> net = MLP((2, 3), hidden=(), output="softmax")
    >>> E = objective(net, "cross_entropy")(net.init(jax.random.key(0)), jnp.ones((4, 2)), jnp.array([0, 1, 2, 0]))
    >>> E.shape
    ()
    """
    if not isinstance(net, MLP):
        return _network_objective(net, loss, train, l2)
    check_loss(net, loss)
    if l2 is not None or train is not True:
        raise TypeError("`train` and `l2` are options of a network of blocks (fnn.Network); an MLP's objective has neither")

    def E(params: Params, x: ArrayLike, y: ArrayLike) -> Array:
        x, t = prepare_batch(net, loss, params, x, y)
        out, cache = net.propagate(params, x)
        return _losses.value(loss, cache.z[-1], out, t)

    return E


def manual_backprop(
    net: MLP, loss: _losses.LossLike, *, input_grad: bool = True
) -> Callable[[Params, ArrayLike, ArrayLike], tuple[Array, Backprop]]:
    """``(params, x, y) -> (E, Backprop)``: the loss with grads, every δ⁽ˡ⁾ and ∂E/∂x.

    >>> net = MLP((2, 4, 1), hidden="tanh", output="sigmoid")
    >>> E, bp = manual_backprop(net, "bce")(net.init(jax.random.key(0)), jnp.ones((3, 2)), jnp.ones(3))
    >>> [d.shape for d in bp.deltas], bp.dx.shape
    ([(3, 4), (3, 1)], (3, 2))
    """
    check_loss(net, loss)

    def fn(params: Params, x: ArrayLike, y: ArrayLike) -> tuple[Array, Backprop]:
        x, t = prepare_batch(net, loss, params, x, y)
        out, cache = net.propagate(params, x)
        E, delta_out = _losses.value_and_delta(loss, net.output, cache.z[-1], out, t)
        return E, backward_pass(net, params, cache, delta_out, input_grad=input_grad)

    return fn


def manual_value_and_grad(
    net: MLP | Network, loss: _losses.LossLike, *, train: bool = True, l2: float | None = None
) -> LossAndGrad:
    """``(params, x, y) -> (E, grads)`` by the hand-derived backward pass.

    For a network of blocks: ``(params, x, y, key=None) -> (E, grads)``, the chain of the blocks' backward
    passes, in train mode (``train=False``: eval mode), with L2 in the objective given ``l2``; the
    running statistics' gradient is zero (:func:`fnn.core.network.network_step_grads` also returns the
    updated statistics).

    Works for a batch ``x`` (B, n_in) or one example (n_in,), under ``jax.jit`` and ``jax.vmap``
    (vmap over single examples gives per-example gradients).

    Example:
      >>> net = MLP((2, 8, 2), hidden="tanh", output="softmax")
      >>> params = net.init(jax.random.key(0))
      >>> x, y = jnp.array([[0., 0.], [0., 1.], [1., 0.], [1., 1.]]), jnp.array([0, 1, 1, 0])
      >>> E, g = manual_value_and_grad(net, "cross_entropy")(params, x, y)
      >>> E2, g2 = autodiff_value_and_grad(net, "cross_entropy")(params, x, y)
      >>> bool(jnp.allclose(g[0]["W"], g2[0]["W"], atol=1e-6))
      True
    """
    if not isinstance(net, MLP):
        return _drop_state(_blocks_fn(net, loss, "manual", train, l2))
    _mlp_only(train, l2)
    run = manual_backprop(net, loss, input_grad=False)

    def fn(params: Params, x: ArrayLike, y: ArrayLike) -> tuple[Array, Params]:
        E, bp = run(params, x, y)
        return E, bp.grads

    return fn


def autodiff_value_and_grad(
    net: MLP | Network | Model, loss: _losses.LossLike, *, train: bool = True, l2: float | None = None
) -> LossAndGrad:
    """``(params, x, y) -> (E, grads)`` by ``jax.value_and_grad`` of :func:`objective`.

    For a network of blocks or a model: ``(params, x, y, key=None) -> (E, grads)`` (as
    :func:`manual_value_and_grad`; the running statistics sit behind ``stop_gradient``).

    >>> net = MLP((2, 3, 1), hidden="tanh")
    >>> E, g = autodiff_value_and_grad(net, "mse")(net.init(jax.random.key(0)), jnp.ones((4, 2)), jnp.zeros((4, 1)))
    >>> E.shape, [leaf["W"].shape for leaf in g]
    ((), [(3, 2), (1, 3)])
    """
    if not isinstance(net, MLP):
        return _drop_state(_blocks_fn(net, loss, "autodiff", train, l2))
    _mlp_only(train, l2)
    value_and_grad = jax.value_and_grad(objective(net, loss))

    def fn(params: Params, x: ArrayLike, y: ArrayLike) -> tuple[Array, Params]:
        _checks.check_params(net, params)  # before jax.value_and_grad flattens them (a non-pytree fails inside JAX)
        return value_and_grad(params, x, y)

    return fn


def _mlp_only(train: Any, l2: Any) -> None:
    if train is not True or l2 is not None:
        raise TypeError(
            "`train` and `l2` are options of a network of blocks (fnn.Network); an MLP has no mode, and L2 for an "
            "MLP is fit(..., l2=...)"
        )


def _drop_state(fn: Callable) -> Callable:
    def value_and_grad(params: Any, x: ArrayLike, y: ArrayLike, key: Any = None) -> tuple[Array, Any]:
        E, grads, _ = fn(params, x, y, key)
        return E, grads

    return value_and_grad


def _network_objective(net: Network | Model, loss: _losses.LossLike, train: Any, l2: Any) -> Callable:
    run = _blocks_fn(net, loss, None, train, l2)

    def E(params: Any, x: ArrayLike, y: ArrayLike, key: Any = None) -> Array:
        return run(params, x, y, key)[0]

    return E


WeightedLossAndGrad = Callable[[Params, Array, Array, Array, Array], tuple[Array, Params]]


def weighted_value_and_grad(
    net: MLP, loss: _losses.LossLike, grad: str = "manual", *, l2: bool = False, report_scale: float = 1.0
) -> WeightedLossAndGrad:
    """``(params, x, t, w, lam) -> (E, grads)``: the objective with a weight per example and an L2 term.

    With per-row weights ``w`` (0 for a row that is only padding) and ``s = Σᵢ wᵢ``, the objective is

    .. math::

        J = \\Big(\\textstyle\\sum_i w_i E_i + \\tfrac12 \\lambda \\sum_l \\lVert W^{(l)} \\rVert^2\\Big) / s

    (the L2 term only with ``l2``; no penalty on the biases), and ``grads`` is ∇J: the backward pass
    (:func:`backward_pass`, or ``jax.grad`` with ``grad="autodiff"``) from the output error scaled by
    ``wᵢ / s`` row by row, plus ``λ W⁽ˡ⁾ / s`` on each weight matrix. The reported ``E`` is
    ``report_scale · Σᵢ wᵢ Eᵢ / s`` plus the L2 term: scikit-learn's regressor reports its squared
    error as a mean over the K outputs (``report_scale = 1/K``) while its gradient is that of the sum.
    A batch whose weights sum to 0 has loss and gradient 0. With every ``w = 1`` and ``λ = 0`` this
    is the batch mean of :func:`manual_value_and_grad` (summed in another order: equal to rounding).

    ``t`` holds the targets in the output's form (:func:`fnn.losses.targets`), ``w`` shape (B,), ``lam`` shape ().

    Example:
      >>> net = MLP((2, 3, 1), hidden="tanh")
      >>> params, x, t = net.init(jax.random.key(0)), jnp.ones((4, 2)), jnp.zeros((4, 1))
      >>> E, g = weighted_value_and_grad(net, "mse")(params, x, t, jnp.ones(4), jnp.zeros(()))
      >>> E2, g2 = manual_value_and_grad(net, "mse")(params, x, t)
      >>> bool(jnp.allclose(E, E2)), bool(jnp.allclose(g[0]["W"], g2[0]["W"]))
      (True, True)
    """
    L = check_loss(net, loss)

    def penalty(params: Params, scale: Array) -> Array:
        if not l2:
            return jnp.zeros((), scale.dtype)
        return 0.5 * scale * sum(jnp.sum(p["W"] * p["W"]) for p in params)

    def data_term(params: Params, x: Array, t: Array, w: Array, inv: Array) -> tuple[Array, Array, Cache]:
        out, cache = net.propagate(params, x)
        return jnp.sum(w * L.per_example(cache.z[-1], out, t)) * inv, out, cache

    def fn(params: Params, x: Array, t: Array, w: Array, lam: Array) -> tuple[Array, Params]:
        s = jnp.sum(w)
        inv = jnp.where(s > 0, 1 / jnp.where(s > 0, s, 1), 0).astype(w.dtype)  # 1/s, or 0 for an empty batch
        if grad == "manual":
            data, out, cache = data_term(params, x, t, w, inv)
            delta = L.output_error(net.output, cache.z[-1], out, t) * (w * inv)[:, None]  # (B, K)
            grads = backward_pass(net, params, cache, delta, input_grad=False).grads
            if l2:
                grads = [{"W": g["W"] + (lam * inv) * p["W"], "b": g["b"]} for g, p in zip(grads, params)]
        else:

            def J(p: Params) -> tuple[Array, Array]:
                data = data_term(p, x, t, w, inv)[0]
                return data + penalty(p, lam * inv), data

            grads, data = jax.grad(J, has_aux=True)(params)
        if report_scale != 1.0:
            data = data * report_scale
        return data + penalty(params, lam * inv), grads

    return fn


def with_manual_vjp(
    net: MLP | Network, loss: _losses.LossLike, *, train: bool = True, l2: float | None = None
) -> Callable[..., Array]:
    """The objective ``(params, x, y) -> E`` as a ``jax.custom_vjp`` whose reverse pass is manual.

    For a network of blocks: ``(params, x, y, key=None) -> E`` (train mode unless ``train=False``; L2 in
    the objective with ``l2``), its reverse pass the chain of the blocks' backward passes.

    ``jax.grad`` of this function (or of any user code calling it) runs the hand-derived
    backward pass for the parameters and for ``x``; float targets get ∂E/∂y too. It composes
    with ``jit`` and ``vmap``.

    >>> net = MLP((2, 4, 1), hidden="tanh")
    >>> E = with_manual_vjp(net, "mse")
    >>> g = jax.grad(E)(net.init(jax.random.key(0)), jnp.ones((3, 2)), jnp.zeros((3, 1)))
    >>> g[1]["b"].shape
    (1,)
    """
    if not isinstance(net, MLP):
        return _network_vjp(net, loss, train, l2)
    _mlp_only(train, l2)
    check_loss(net, loss)

    def _fwd(params: Params, x: Array, y: Array):
        xa, t = prepare_batch(net, loss, params, x, y)
        out, cache = net.propagate(params, xa)
        E, delta_out = _losses.value_and_delta(loss, net.output, cache.z[-1], out, t)
        return E, (params, cache, delta_out, t, y)

    def _bwd(res, g):
        params, cache, delta_out, t, y = res
        bp = backward_pass(net, params, cache, g * delta_out, input_grad=True)
        assert bp.dx is not None  # input_grad=True
        return bp.grads, bp.dx.astype(cache.x.dtype), _target_cotangent(loss, cache, t, y, g)

    @jax.custom_vjp
    def E(params: Params, x: Array, y: Array) -> Array:
        return _fwd(params, x, y)[0]

    E.defvjp(_fwd, _bwd)

    def fn(params: Params, x: ArrayLike, y: ArrayLike) -> Array:
        # custom_vjp needs array arguments and a params pytree: convert lists, check params; the rest inside.
        _checks.check_params(net, params)
        x, y = _checks.as_array(x, "x"), _checks.as_array(y, "y")
        _checks.check_numbers(x, "x")
        _checks.check_numbers(y, "y")
        return E(params, x, y)

    return fn


def _target_cotangent(loss: _losses.LossLike, cache: Cache, t: Array, y: Array, g: Array) -> Any:
    """∂E/∂y for float targets (None for integer class indices, which have no gradient)."""
    if not jnp.issubdtype(y.dtype, jnp.floating):
        return None
    z, h = cache.z[-1], cache.h[-1]
    dt = _losses.get(loss).target_grad(z, h, t)
    return (g * _losses.batch_scale(z) * dt).reshape(y.shape).astype(y.dtype)


def _network_vjp(net: Network | Model, loss: _losses.LossLike, train: Any, l2: Any) -> Callable[..., Array]:
    """:func:`with_manual_vjp` for a network of blocks."""
    if isinstance(net, Model):
        raise ValueError("a Model has no hand-derived backward pass to bind: use jax.grad of fnn.objective(model, loss)")
    from fnn.core import blocks as _blocks
    from fnn.core.network import add_l2, l2_penalty

    record = check_loss(net, loss)
    train = _checks.check_flag(train, "train")
    lam = None if l2 is None else _checks.check_number(l2, "l2", 0.0)

    def _fwd(params: Any, x: Array, y: Array, key: Any):
        dtype = jnp.result_type(x.dtype, jax.tree_util.tree_leaves(params)[0].dtype)
        t = _losses.targets(record, y, net.sizes[-1], tuple(x.shape[:-1]), dtype)
        xb, tb = (x[None, :], t[None, :]) if x.ndim == 1 else (x, t)
        z, _, res = _blocks.chain_forward(net.blocks, params, xb.astype(dtype), key, train)
        out = net.output.f(z)
        E, delta = _losses.value_and_delta(record, net.output, z, out, tb)
        if lam is not None:
            E = E + l2_penalty(net, params, lam)
        return E, (params, res, delta, z, out, tb, x, y)

    def _bwd(r: Any, g: Array):
        params, res, delta, z, out, tb, x, y = r
        grads, dx = _blocks.chain_backward(net.blocks, params, res, g * delta)
        if lam is not None:
            grads = add_l2(net, grads, params, g * lam)
        dy = None
        if jnp.issubdtype(y.dtype, jnp.floating):
            dt = record.target_grad(z, out, tb)
            dy = (g * _losses.batch_scale(z) * dt).reshape(y.shape).astype(y.dtype)
        return grads, dx.reshape(x.shape).astype(x.dtype), dy, None

    @jax.custom_vjp
    def E(params: Any, x: Array, y: Array, key: Any) -> Array:
        return _fwd(params, x, y, key)[0]

    E.defvjp(_fwd, _bwd)

    def fn(params: Any, x: ArrayLike, y: ArrayLike, key: Any = None) -> Array:
        net.check_params(params)
        x = _checks.check_x(net, x)
        y = _checks.as_array(y, "y")
        _checks.check_numbers(y, "y")
        _checks.check_batch(x, y)
        net.check_mode(params, x, key, train)
        return E(params, x, y, key)

    return fn
