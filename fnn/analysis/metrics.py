"""What to measure while a network learns: accuracy, loss, and the health of its units.

All functions are pure and jit-friendly; :func:`evaluate` is the user-facing entry point (Python
floats outside jit, arrays inside).

Health metrics (per layer), the symptoms the tutorial warns about:

- gradient norm ``‖∂E/∂W⁽ˡ⁾‖`` of the weights only (the history's ``grad_norm``, :func:`layer_norms`;
  ``layer_norms(g, leaves=("W", "b"))`` gives ‖(∂E/∂W⁽ˡ⁾, ∂E/∂b⁽ˡ⁾)‖) — vanishing gradients show as
  norms shrinking toward the input;
- dead fraction — ReLU units that output 0 for every probe example (they get no gradient again);
- saturated fraction — sigmoid/tanh outputs within 1% of their asymptotes, where f′ ≈ 0;
- update ratio ``‖ΔW⁽ˡ⁾‖ / ‖W⁽ˡ⁾‖`` per step — around 1e-3 is healthy, ≫ 1e-2 is unstable.

And one measure per example: :func:`per_example_grad_norms`, ‖∇_θ E(xᵢ, yᵢ)‖ for every row of a batch,
from the δ recursion without forming the per-example gradients (an MLP's); a network of blocks' per-example
gradients, each example's loss term within the batch, are :func:`network_per_example_grads`.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from fnn import _checks
from fnn.core import blocks as _blocks
from fnn.core import losses as _losses
from fnn.core.backprop import backward_pass, check_loss, prepare_batch
from fnn.core.mlp import MLP, Params
from fnn.core.network import Model, Network, trainable

Array = jax.Array


def accuracy_kind(loss: _losses.LossLike, y: Any, n_out: int) -> str | None:
    """How to score predictions: ``"argmax"``, ``"threshold"`` or None (regression).

    Read from the loss's target form: class targets (cross_entropy) compare argmax classes; binary
    targets (bce) threshold each output at ½; real targets (mse) count as a classifier only when the
    labels are integer class indices (one-hot targets of the seed's d).

    >>> labels = jnp.array([0, 1])
    >>> accuracy_kind("cross_entropy", labels, 2), accuracy_kind("mse", labels, 2), accuracy_kind("mse", jnp.zeros((2, 1)), 1)
    ('argmax', 'argmax', None)
    """
    form = _losses.get(loss).targets
    n_out = _checks.check_int(n_out, "n_out", 1)
    y = _checks.as_array(y, "y")
    if not (jnp.issubdtype(y.dtype, jnp.number) or jnp.issubdtype(y.dtype, jnp.bool_)):
        raise TypeError(f"`y` must hold numbers, got dtype {y.dtype}")
    if form == "classes":
        return "argmax"
    if form == "binary":
        return "threshold"
    if form == "counts":  # (poisson) a regression
        return None
    if n_out > 1 and jnp.issubdtype(y.dtype, jnp.integer):  # real targets given as class indices
        return "argmax"
    return None


def accuracy(kind: str | None, out: Array, t: Array) -> Array:
    """Fraction of correct predictions, given the output ``out`` and targets ``t`` (same shape).

    NaN when the outputs or the targets hold a NaN: an argmax or a threshold of NaN is no prediction.

    >>> float(accuracy("argmax", jnp.array([[0.9, 0.1], [0.2, 0.8]]), jnp.array([[1.0, 0.0], [1.0, 0.0]])))
    0.5
    """
    if kind not in ("argmax", "threshold", None):
        raise ValueError(f"`kind` must be 'argmax', 'threshold' or None, got {kind!r:.40}")
    out, t = _checks.as_array(out, "out"), _checks.as_array(t, "t")
    if out.shape != t.shape:
        raise ValueError(f"`out` has shape {tuple(out.shape)} but `t` has {tuple(t.shape)}: targets must have the output's shape")
    if kind is None:
        return jnp.asarray(jnp.nan, out.dtype)
    hits = jnp.argmax(out, -1) == jnp.argmax(t, -1) if kind == "argmax" else (out > 0.5) == (t > 0.5)
    nan = jnp.isnan(out).any() | jnp.isnan(t).any()
    return jnp.where(nan, jnp.nan, _fraction(hits, jnp.promote_types(out.dtype, jnp.float32)))


def _fraction(b: Array, dtype: Any) -> Array:
    """The fraction of True in ``b``, counted in at least float32 and returned in ``dtype`` (``jnp.mean`` of
    booleans alone gives float32, so a float64 run's fractions would be rounded to float32)."""
    return jnp.mean(b, dtype=jnp.promote_types(dtype, jnp.float32)).astype(dtype)


def evaluate(
    net: MLP, params: Params, x: ArrayLike, y: ArrayLike, *legacy: Any, loss: _losses.LossLike | None = None
) -> dict[str, Any]:
    """Loss and (for classifiers) accuracy of ``params`` on ``(x, y)``.

    Arguments in the order of :func:`fnn.fit`: ``evaluate(net, params, x, y, loss=...)``; the old
    order ``evaluate(net, loss, params, x, y)`` still works, with a DeprecationWarning.

    Returns:
      ``{"loss": E, "accuracy": acc}``; accuracy is NaN for regression targets. Called on concrete
      arrays, both are Python floats (the values computed in the network's dtype, read back exactly;
      reading them waits for the computation). Inside ``jax.jit``, ``jax.vmap`` or ``jax.grad`` they
      are 0-d arrays of the network's dtype, as they must be: a traced value has no number yet. Arrays
      that span processes (not fully addressable) also stay arrays.

    >>> net = MLP((2, 2), hidden=(), output="softmax")
    >>> m = evaluate(net, net.init(jax.random.key(0)), jnp.eye(2), jnp.array([0, 1]), loss="cross_entropy")
    >>> sorted(m), type(m["loss"]).__name__, m["accuracy"]
    (['accuracy', 'loss'], 'float', 0.5)
    >>> jitted = jax.jit(lambda p: evaluate(net, p, jnp.eye(2), jnp.array([0, 1]), loss="cross_entropy"))
    >>> jitted(net.init(jax.random.key(0)))["loss"].shape  # inside jit: 0-d arrays
    ()
    """
    params, x, y, loss = _checks.params_first("evaluate", params, x, y, legacy, loss)
    check_loss(net, loss)
    xa, t = prepare_batch(net, loss, params, x, y)
    _checks.check_finite(xa, "x")
    if not isinstance(net, MLP):  # eval mode: running statistics that were trained and are finite
        net.check_mode(params, xa, None, False)
    out, cache = net.propagate(params, xa)
    kind = accuracy_kind(loss, y, net.sizes[-1])
    m = {"loss": _losses.value(loss, cache.z[-1], out, t), "accuracy": accuracy(kind, out, t)}
    return {k: _number(v) for k, v in m.items()}


def _number(a: Array) -> Any:
    """A 0-d array as a Python float where its value can be read here: not a tracer (inside jit, vmap
    or grad, where the array stands for a value not yet computed) and held by this process."""
    if not _checks.is_concrete(a) or not getattr(a, "is_fully_addressable", True):
        return a
    return float(a)


def layer_norms(tree: Params, leaves: tuple[str, ...] = ("W",)) -> Array:
    """Per-layer Frobenius norm of the weights only, ‖W⁽ˡ⁾‖, shape (L,); with ``leaves=("W", "b")`` the
    norm of the layer's weights and biases together, ‖(W⁽ˡ⁾, b⁽ˡ⁾)‖ = √(‖W⁽ˡ⁾‖² + ‖b⁽ˡ⁾‖²).

    Applied to gradients, this is the history's ``grad_norm`` (``fit(..., grad_norms=True)``):
    ‖∂E/∂W⁽ˡ⁾‖ of the weights only, the tutorial's vanishing-gradient measure (and the update ratio's
    ‖ΔW⁽ˡ⁾‖ / ‖W⁽ˡ⁾‖); the biases' share is ``leaves=("W", "b")``.

    >>> layer_norms([{"W": jnp.full((2, 2), 0.5)}, {"W": jnp.array([[3.0, 4.0]])}]).tolist()
    [1.0, 5.0]
    >>> layer_norms([{"W": jnp.array([[3.0]]), "b": jnp.array([4.0])}], leaves=("W", "b")).tolist()
    [5.0]
    """
    if not isinstance(tree, (list, tuple)) or not tree:
        raise TypeError(f"`tree` must be a list of layers [{{'W': ...}}, ...], got {type(tree).__name__}: {tree!r:.40}")
    if not isinstance(leaves, tuple) or not leaves or not all(k in ("W", "b") for k in leaves) or len(set(leaves)) != len(leaves):
        raise ValueError(f"`leaves` must be ('W',), ('b',) or ('W', 'b'), got {leaves!r:.60}")
    for l, layer in enumerate(tree):
        for k in leaves:
            if not isinstance(layer, Mapping) or not hasattr(layer.get(k), "dtype"):
                raise TypeError(f"`tree[{l}]` must be a dict with an array {k!r}, got {type(layer).__name__}: {layer!r:.60}")
    return jnp.stack([jnp.sqrt(sum(jnp.sum(jnp.square(layer[k])) for k in leaves)) for layer in tree])


def network_per_example_grads(
    net: Network | Model, loss: _losses.Loss, grad: str, params: Any, x: Array, t: Array, key: Array | None, train: bool
) -> Any:
    """Per-example gradients of a network of blocks (or a model): ``∇_θ ℓᵢ`` for every example ``i`` of the
    batch, the gradient of its own loss term within the batch, with a leading batch axis.

    .. math::

        g_i = \\nabla_\\theta\\, \\ell_i\\big(z_i(\\theta;\\, x_1, \\dots, x_B)\\big), \\qquad
        \\frac{1}{B}\\textstyle\\sum_i g_i = \\nabla_\\theta E

    The forward pass is the batch's: batch statistics and dropout's mask are shared by the batch (in train
    mode ``zᵢ`` depends on the other examples through a batch norm's mean and variance, and ``gᵢ`` follows
    that dependence), so the mean of the ``gᵢ`` is the batch gradient. For a network whose examples do not
    interact (no batch norm in train mode, no dropout) ``gᵢ`` is the gradient of example ``i`` alone.

    ``grad="manual"``: the forward pass once, then the chain of the blocks' backward passes ``vmap``-ped over
    ``B`` one-hot-masked output errors, ``δ⁽ⁱ⁾ = eᵢ ⊗ ∂ℓᵢ/∂zᵢ`` (row ``i`` of the per-example output error,
    zeros elsewhere, no 1/B). ``"autodiff"``: ``jax.jacrev`` of the vector ``(ℓ₁, …, ℓ_B)`` (``jax.vjp`` with
    each basis vector). Both form ``B`` gradients (B times the parameters' memory); the running statistics
    get zeros (they are not trained). No L2 term: a per-example gradient is of the data term.

    Args:
      net: a :class:`~fnn.Network` (a :class:`~fnn.Model` with ``"autodiff"`` only: it has no backward pass).
      loss: the :class:`~fnn.Loss` record (resolved: ``fnn.losses.get(name)``), paired with ``net.output``.
      grad: ``"manual"`` or ``"autodiff"``.
      params: the network's parameters.
      x: a batch (B, n_in), checked, in the parameters' dtype.
      t: its targets in the output's form (B, n_out) (:func:`fnn.losses.targets`).
      key: dropout's key in train mode (None where the network draws nothing).
      train: train mode (batch statistics, dropout) or eval mode (running statistics).

    Returns:
      The gradient pytree of ``params``'s structure with a leading batch axis (``W``: (B, n_out, n_in)).
      Pure and jit-friendly: arguments are not checked (the public entry points check them).

    >>> from fnn.core.blocks import Dense, BatchNorm, Activate
    >>> net = Network(2, [Dense(3), BatchNorm(), Activate("tanh"), Dense(1)])
    >>> params, x, t = net.init(jax.random.key(0)), jnp.arange(8.0).reshape(4, 2), jnp.zeros((4, 1))
    >>> g = network_per_example_grads(net, _losses.get("mse"), "manual", params, x, t, None, True)
    >>> g[0]["W"].shape, g[1]["state"]["mean"].shape
    ((4, 3, 2), (4, 3))
    """
    if grad == "manual":
        if isinstance(net, Model):
            raise ValueError("a Model has no hand-derived backward pass: per-example gradients with grad='autodiff'")
        z, _, res = _blocks.chain_forward(net.blocks, params, x, key, train)
        delta = loss.output_error(net.output, z, net.output.f(z), t)  # (B, n_out): row i is ∂ℓᵢ/∂zᵢ (no 1/B)
        one_hot = jnp.eye(x.shape[0], dtype=delta.dtype)  # (B, B): example i's mask over the batch
        return jax.vmap(lambda m: _blocks.chain_backward(net.blocks, params, res, delta * m[:, None])[0])(one_hot)

    def losses(p: Any) -> Array:  # (ℓ₁, …, ℓ_B) of the batch's forward pass
        p = net.stop_state(p)
        z = net.apply_fn(p, x) if isinstance(net, Model) else _blocks.chain_forward(net.blocks, p, x, key, train)[0]
        return loss.per_example(z, net.output.f(z), t)

    return jax.jacrev(losses)(params)


def per_example_grad_norms(
    net: MLP | Network | Model,
    params: Any,
    x: ArrayLike,
    y: ArrayLike,
    *,
    loss: _losses.LossLike,
    grad: str = "manual",
    per_layer: bool = False,
    key: Array | None = None,
    train: bool = True,
) -> Array:
    """‖∇_θ E(xᵢ, yᵢ)‖ for every example of the batch: the norm of each example's gradient over every
    parameter, weights and biases (the norms of :func:`fnn.per_example_grads`, without forming them).

    With ``grad="manual"`` (the default) they come from one batched δ recursion: the gradient of one
    example's loss is ``∂Eᵢ/∂W⁽ˡ⁾ = δᵢ⁽ˡ⁾ h⁽ˡ⁻¹⁾ᵢᵀ`` (an outer product, so ‖∂Eᵢ/∂W⁽ˡ⁾‖ = ‖δᵢ⁽ˡ⁾‖ ‖h⁽ˡ⁻¹⁾ᵢ‖)
    and ``∂Eᵢ/∂b⁽ˡ⁾ = δᵢ⁽ˡ⁾``, so

    .. math::

        \\lVert \\nabla_\\theta E_i \\rVert^2 = \\textstyle\\sum_l \\lVert \\delta_i^{(l)} \\rVert^2
        \\,(\\lVert h_i^{(l-1)} \\rVert^2 + 1)

    with δᵢ the error of example i's own loss: memory of the activations,
    not of B gradients. ``grad="autodiff"`` forms every per-example gradient with ``jax.vmap`` of
    ``jax.grad`` and takes their norms (the reference; B times the parameters' memory).

    A network of blocks (:class:`fnn.Network`) or a :class:`fnn.Model`: the norms of
    :func:`network_per_example_grads` (each example's loss term within the batch, its batch statistics and
    dropout mask shared; formed, B times the parameters' memory), in the mode ``train`` says, with ``key``
    for dropout; the running statistics do not count (they are not trained).

    Args:
      net, params: the network and its parameters (one network).
      x, y: a batch (B, n_in) and its labels or targets, as for :func:`fnn.evaluate`.
      loss: the loss (a name or an :class:`fnn.Loss`); each example's is its own, not divided by B.
      grad: ``"manual"`` or ``"autodiff"`` (a Model: ``"autodiff"`` only).
      per_layer: True gives each layer's ‖(∂Eᵢ/∂W⁽ˡ⁾, ∂Eᵢ/∂b⁽ˡ⁾)‖ instead, shape (B, L); for a network of
        blocks, each block's (B, number of blocks; 0 for a block without parameters). Not for a Model.
      key: a network of blocks with dropout in train mode: the key of its mask (else unused).
      train: a network of blocks: train mode (the default, as training computes its gradients) or eval
        mode. An MLP has no mode.

    Returns:
      (B,) in the network's dtype ((B, L) with ``per_layer``). Works under ``jax.jit``.

    >>> net = MLP((2, 3, 1), hidden="tanh")
    >>> per_example_grad_norms(net, net.init(jax.random.key(0)), jnp.ones((5, 2)), jnp.zeros((5, 1)), loss="mse").shape
    (5,)
    """
    record = check_loss(net, loss)
    if not (isinstance(grad, str) and grad in ("manual", "autodiff")):
        raise ValueError(f"`grad` must be 'manual' or 'autodiff', got {grad!r:.40}")
    _checks.check_flag(per_layer, "per_layer")
    train = _checks.check_flag(train, "train")
    if key is not None:
        _checks.check_key(key, "key")
    xa = _checks.check_x(net, x)
    if xa.ndim != 2:
        raise ValueError(f"`x` must be a batch (B, {net.sizes[0]}) for per-example gradient norms, got shape {tuple(xa.shape)}")
    xa, t = prepare_batch(net, loss, params, xa, y)  # every argument checked, the targets in the output's form
    _checks.check_finite(xa, "x")
    if isinstance(net, MLP):
        if train is not True:
            raise TypeError("`train` is an option of a network of blocks (fnn.Network); an MLP has no mode")
        return _per_example_norms(net, _losses.get(loss), grad, bool(per_layer), params, xa, t)
    if isinstance(net, Model) and grad == "manual":
        raise ValueError("a Model has no hand-derived backward pass: per-example gradient norms with grad='autodiff'")
    if isinstance(net, Model) and per_layer:
        raise ValueError("`per_layer` needs layers: an MLP's or a Network's blocks; a Model's parameters are any pytree")
    net.check_mode(params, xa, key, train)
    return _network_norms(net, record, grad, bool(per_layer), train, params, xa.astype(t.dtype), t, key)


@functools.partial(jax.jit, static_argnums=(0, 1, 2, 3))
def _per_example_norms(net: MLP, loss: _losses.Loss, grad: str, per_layer: bool, params: Params, x: Array, t: Array) -> Array:
    """:func:`per_example_grad_norms` of checked arrays: ``t`` holds the targets in the output's form (B, n_out)."""
    if grad == "manual":
        out, cache = net.propagate(params, x)
        # (B, n_out): each example's own output error δᵢ⁽ᴸ⁾ = ∂Eᵢ/∂zᵢ⁽ᴸ⁾ (one example at a time: no 1/B)
        delta_out = jax.vmap(lambda z, h, ti: _losses.value_and_delta(loss, net.output, z, h, ti)[1])(cache.z[-1], out, t)
        deltas = backward_pass(net, params, cache, delta_out, input_grad=False).deltas
        inputs = (x, *cache.h[:-1])  # h⁽ˡ⁻¹⁾ of every layer, (B, n_in⁽ˡ⁾)
        sq = jnp.stack(
            [jnp.sum(jnp.square(d), -1) * (jnp.sum(jnp.square(h), -1) + 1) for d, h in zip(deltas, inputs)], -1
        )  # (B, L): ‖δᵢ⁽ˡ⁾‖² (‖h⁽ˡ⁻¹⁾ᵢ‖² + 1)
    else:

        def one(p: Params, xi: Array, ti: Array) -> Array:  # Eᵢ, the loss of one example
            out, cache = net.propagate(p, xi)
            return _losses.value(loss, cache.z[-1], out, ti)

        g = jax.vmap(jax.grad(one), in_axes=(None, 0, 0))(params, x, t)  # every leaf (B, ...)
        sq = jnp.stack([sum(jnp.sum(jnp.square(a), axis=tuple(range(1, a.ndim))) for a in layer.values()) for layer in g], -1)
    return jnp.sqrt(sq) if per_layer else jnp.sqrt(jnp.sum(sq, -1))


@functools.partial(jax.jit, static_argnums=(0, 1, 2, 3, 4))
def _network_norms(
    net: Network | Model, loss: _losses.Loss, grad: str, per_layer: bool, train: bool, params: Any, x: Array, t: Array, key: Any
) -> Array:
    """:func:`per_example_grad_norms` of a network of blocks or a model, on checked arrays."""
    g = network_per_example_grads(net, loss, grad, params, x, t, key, train)
    if isinstance(net, Model):
        return jnp.sqrt(sum(jnp.sum(jnp.square(a), axis=tuple(range(1, a.ndim))) for a in jax.tree_util.tree_leaves(g)))
    zero = jnp.zeros((x.shape[0],), x.dtype)
    sq = jnp.stack(  # (B, blocks): ‖∂ℓᵢ/∂θ_block‖², the running statistics left out
        [
            sum((jnp.sum(jnp.square(a), axis=tuple(range(1, a.ndim))) for a in jax.tree_util.tree_leaves(trainable(b))), zero)
            for b in g
        ],
        -1,
    )
    return jnp.sqrt(sq) if per_layer else jnp.sqrt(jnp.sum(sq, -1))


def all_finite(tree: Any) -> Array:
    """True when no leaf holds NaN or ±inf (one fused reduction per leaf).

    >>> bool(all_finite({"W": jnp.ones(2)})), bool(all_finite({"W": jnp.ones(2), "b": jnp.array([jnp.inf])}))
    (True, False)
    """
    leaves = jax.tree_util.tree_leaves(tree)
    for a in leaves:
        dtype = getattr(a, "dtype", np.dtype(float))
        if not isinstance(a, (int, float, np.number, np.ndarray, jax.Array)) or not (
            jnp.issubdtype(dtype, jnp.number) or jnp.issubdtype(dtype, jnp.bool_)
        ):
            raise TypeError(f"`tree` must hold arrays of numbers, got a leaf {type(a).__name__}: {a!r:.40}")
    if not leaves:
        return jnp.asarray(True)  # nothing that is not finite
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(a)) for a in leaves]))


def unit_health(net: MLP, params: Params, x: Array) -> dict[str, Array]:
    """Dead and saturated fractions of every hidden layer on the probe batch ``x`` (B, n_in).

    Returns:
      ``{"dead_fraction": (L-1,), "saturated_fraction": (L-1,), "inactive_fraction": (L-1,)}``;
      dead: ReLU units that output 0 for every probe example; saturated: sigmoid/tanh outputs within
      1% of their asymptotes; NaN where the measure does not apply to the layer's activation.
      inactive: units whose pre-activation z ≤ 0 for every probe example, for any activation (for
      ReLU the dead ones; for leaky ReLU the ones left with only the small slope).

    Example:
      >>> net = MLP((2, 4, 3, 1), hidden=("relu", "tanh"))
      >>> m = unit_health(net, net.init(jax.random.key(0)), jnp.zeros((5, 2)))  # zero biases: every ReLU outputs 0
      >>> m["dead_fraction"].tolist(), m["saturated_fraction"].tolist(), m["inactive_fraction"].tolist()
      ([1.0, nan], [nan, 0.0], [1.0, 1.0])
    """
    _checks.check_net(net, mlp_only=True)
    _, cache = net.forward(params, x)
    dead, saturated, inactive = [], [], []
    nan = jnp.asarray(jnp.nan, cache.x.dtype)
    for act, z, h in zip(net.hidden, cache.z[:-1], cache.h[:-1]):
        inactive.append(_fraction(jnp.all(z <= 0, axis=0), h.dtype))
        dead.append(inactive[-1] if act.name == "relu" else nan)  # ReLU outputs 0 exactly where z <= 0
        if act.name == "sigmoid":
            saturated.append(_fraction((h < 0.01) | (h > 0.99), h.dtype))
        elif act.name == "tanh":
            saturated.append(_fraction(jnp.abs(h) > 0.99, h.dtype))
        else:
            saturated.append(nan)
    empty = jnp.zeros((0,), cache.x.dtype)
    return {
        "dead_fraction": jnp.stack(dead) if dead else empty,
        "saturated_fraction": jnp.stack(saturated) if saturated else empty,
        "inactive_fraction": jnp.stack(inactive) if inactive else empty,
    }
