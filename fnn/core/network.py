"""Networks of blocks, and models fnn did not build.

A :class:`Network` is a composition of :mod:`fnn.core.blocks` in the order the user writes them,
followed by an output activation:

.. math:: z_L = B_K(\\cdots B_2(B_1(x))), \\qquad \\hat y = f_{out}(z_L)

Its manual backward pass is the chain of the blocks' backward passes, from the output error
``δ_L = ∂E/∂z_L`` down (:func:`fnn.core.blocks.chain_backward`); for Dense + Activate pairs that chain
is exactly the tutorial's δ recursion. Its parameters are a list with one dict per block (``{}`` for a
block without parameters); running statistics sit under ``"state"`` inside their block's dict. Their
gradient is zero (``jax.grad`` sees them through ``stop_gradient``) and training leaves them to the
forward pass: fit's optimizer never sees them.

A :class:`Model` wraps any pair of pure ``init`` / ``apply`` functions so that ``fit``, ``fit_many``,
``evaluate`` and checkpoints take it; its gradients come from ``jax.grad`` (it has no hand-derived
backward pass).

L2 weight decay in the objective: ``J = E + ½ λ Σ_W ‖W‖²`` over every weight matrix (not the biases,
γ or β), gradient ``λ W`` added by hand (:func:`l2_penalty`, :func:`add_l2`): the same update as
``optax.chain(optax.add_decayed_weights(λ, mask=weights), optimizer)``. It differs from decoupled decay
(``optax.adamw``), which subtracts ``η λ W`` from the parameters outside the optimizer's scaling: for
plain SGD the two are the same step, but with momentum or Adam the L2 gradient is rescaled by the
optimizer's statistics while decoupled decay is not (Loshchilov & Hutter 2019); and decay without a
mask shrinks biases, γ and β too.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from fnn import _checks
from fnn.core import activations as _act
from fnn.core import blocks as _blocks
from fnn.core import losses as _losses
from fnn.core.blocks import Block

Array = jax.Array
Params = list


class NetCache(NamedTuple):
    """What a network's forward pass computed: enough for its backward pass.

    Attributes:
      x: the input (B, n_in).
      z: ``(z_L,)``: the logits (``z[-1]``, as :class:`~fnn.Cache` has them).
      h: ``(ŷ,)``: the output ``f_out(z_L)`` (``h[-1]``).
      states: each block's new running statistics (None for a block without any; train mode).
      res: what each block's backward pass needs.
    """

    x: Array
    z: tuple[Array, ...]
    h: tuple[Array, ...]
    states: list
    res: list


def _stop_state(params: Any) -> Any:
    """``params`` with every ``"state"`` entry behind ``stop_gradient`` (running statistics are not trained)."""
    if isinstance(params, (list, tuple)):
        return type(params)(_stop_state(p) for p in params)
    if isinstance(params, dict):
        return {
            k: (jax.tree_util.tree_map(jax.lax.stop_gradient, v) if k == "state" else _stop_state(v)) for k, v in params.items()
        }
    return params


def trainable(params: Any) -> Any:
    """``params`` without the ``"state"`` entries: what an optimizer updates.

    >>> trainable([{"W": 1}, {"gamma": 2, "state": {"mean": 0}}])
    [{'W': 1}, {'gamma': 2}]
    """
    if isinstance(params, (list, tuple)):
        return type(params)(trainable(p) for p in params)
    if isinstance(params, dict):
        return {k: trainable(v) for k, v in params.items() if k != "state"}
    return params


def merge(new_trainable: Any, params: Any) -> Any:
    """``new_trainable`` (a result of :func:`trainable`'s structure) with ``params``'s ``"state"`` entries put back."""
    if isinstance(params, (list, tuple)):
        return type(params)(merge(t, p) for t, p in zip(new_trainable, params))
    if isinstance(params, dict):
        return {k: (v if k == "state" else merge(new_trainable[k], v)) for k, v in params.items()}
    return new_trainable


def _weights(blocks: Sequence[Block], params: Sequence[dict]) -> list[Array]:
    out = []
    for b, p in zip(blocks, params):
        if isinstance(b, _blocks.Residual):
            out.extend(_weights(b.blocks, p["blocks"]))
            if "proj" in p:
                out.append(p["proj"]["W"])
        elif isinstance(b, _blocks.Dense):
            out.append(p["W"])
    return out


def _add_l2(blocks: Sequence[Block], grads: Sequence[dict], params: Sequence[dict], lam: Array) -> list[dict]:
    out = []
    for b, g, p in zip(blocks, grads, params):
        new = g
        if isinstance(b, _blocks.Residual):
            new = {**g, "blocks": _add_l2(b.blocks, g["blocks"], p["blocks"], lam)}
            if "proj" in p:
                new["proj"] = {"W": g["proj"]["W"] + lam * p["proj"]["W"]}
        elif isinstance(b, _blocks.Dense):
            new = {**g, "W": g["W"] + lam * p["W"]}
        out.append(new)
    return out


@dataclasses.dataclass(frozen=True, init=False)
class Network:
    """A network of blocks: ``Network(n_in, blocks, output)``. Static and hashable, no arrays.

    Args:
      n_in: the input width.
      blocks: the blocks in order (:mod:`fnn.blocks`): ``Dense``, ``Activate``, ``Dropout``,
        ``BatchNorm``, ``LayerNorm``, ``Residual`` or your own.
      output: the output activation applied to the last block's output ``z_L`` (the logits):
        ``identity``, ``sigmoid``, ``softmax``, ... — paired with the loss as for an :class:`~fnn.MLP`.

    Example: Linear → BatchNorm → ReLU → Dropout, twice, the second with a skip connection:
      >>> from fnn.core.blocks import Dense, BatchNorm, Activate, Dropout, Residual
      >>> net = Network(4, [Dense(8), BatchNorm(), Activate("relu"), Dropout(0.1),
      ...                   Residual([Dense(8), BatchNorm(), Activate("relu")]), Dense(3)], output="softmax")
      >>> params = net.init(jax.random.key(0))
      >>> net.apply(params, jnp.ones((5, 4)), key=jax.random.key(1), train=True).shape
      (5, 3)
    """

    n_in: int
    blocks: tuple[Block, ...]
    output: _act.Activation

    def __init__(self, n_in: int, blocks: Sequence[Block], output: str | _act.Activation = "identity") -> None:
        n_in = _checks.check_int(n_in, "n_in", low=1)
        blocks = _blocks.check_blocks(blocks, "blocks")
        try:
            out = _act.get(output)
        except (TypeError, ValueError) as e:
            raise type(e)(f"`output`: {e}") from None
        object.__setattr__(self, "n_in", n_in)
        object.__setattr__(self, "blocks", blocks)
        object.__setattr__(self, "output", out)
        for block, width in _blocks.custom_blocks(blocks, n_in):
            # a block you wrote: its backward pass is checked once, as fnn.check.on_first_use says (a lazy
            # import: fnn.check uses this module)
            from fnn.check.first_use import verify_once

            verify_once(block, width)

    def __repr__(self) -> str:
        return f"Network(n_in={self.n_in}, blocks={list(self.blocks)!r}, output={self.output.name!r})"

    @classmethod
    def mlp(
        cls,
        sizes: Sequence[int],
        hidden: Any = "relu",
        output: Any = "identity",
        init: str = "auto",
        *,
        norm: str | None = None,
        dropout: float = 0.0,
        residual: bool = False,
    ) -> Network:
        """The MLP of ``sizes`` with the common options, each hidden layer Linear → Norm → Activation →
        Dropout, wrapped in a residual connection with ``residual`` (a learned projection where the
        widths differ). ``MLP(sizes, ..., norm=..., dropout=..., residual=...)`` builds this. A dense layer
        followed by batch norm has no bias (β takes its place; the bias's gradient would be zero).

        Args:
          norm: None, ``"batch"`` (:class:`~fnn.blocks.BatchNorm`) or ``"layer"`` (:class:`~fnn.blocks.LayerNorm`).
          dropout: the drop rate after each hidden activation (0: none).
          residual: skip connections around each hidden layer.

        >>> Network.mlp((2, 4, 4, 1), "tanh", norm="layer", dropout=0.1, residual=True).num_layers
        4
        """
        from fnn.core.mlp import MLP  # (the plain spec validates sizes, activations and init)

        plain = MLP(sizes, hidden=hidden, output=output, init=init)
        _checks.check_choice(norm if norm is not None else "none", "norm", ("none", "batch", "layer"))
        dropout = _checks.check_number(dropout, "dropout", 0.0, 1.0, high_open=True)
        residual = _checks.check_flag(residual, "residual")
        blocks: list[Block] = []
        for width, act in zip(plain.sizes[1:-1], plain.hidden):
            # no bias before batch norm: it subtracts the batch mean, so the bias's gradient is 0 up to rounding
            # (an optimizer that normalises its steps, as Adam does, would walk it on that rounding noise)
            layer: list[Block] = [_blocks.Dense(width, init, bias=norm != "batch")]
            if norm == "batch":
                layer.append(_blocks.BatchNorm())
            elif norm == "layer":
                layer.append(_blocks.LayerNorm())
            layer.append(_blocks.Activate(act))
            if dropout:
                layer.append(_blocks.Dropout(dropout))
            blocks.extend([_blocks.Residual(tuple(layer))] if residual else layer)
        blocks.append(_blocks.Dense(plain.sizes[-1], init))
        return cls(plain.sizes[0], blocks, plain.output)

    # ---- static facts -------------------------------------------------------------------------
    @property
    def sizes(self) -> tuple[int, int]:
        """``(n_in, n_out)``."""
        return (self.n_in, _blocks.chain_width(self.blocks, self.n_in))

    @property
    def random(self) -> bool:
        """Whether its train-mode forward pass draws random numbers (dropout); it then needs a key."""
        return any(b.random for b in self.blocks)

    @property
    def stateful(self) -> bool:
        """Whether it keeps running statistics (batch norm)."""
        return any(b.stateful for b in self.blocks)

    @property
    def batch_norm(self) -> bool:
        """Whether a block normalises with batch statistics (a minibatch then needs two examples or more)."""
        return _has(self.blocks, _blocks.BatchNorm)

    @property
    def num_layers(self) -> int:
        """The number of weight matrices (dense layers and residual projections), the length of the
        history's per-layer ``grad_norm``."""
        return len(self.weights(_shapes(self)))

    def weights(self, params: Params) -> list[Array]:
        """Every weight matrix ``W`` in order (dense layers, a residual's projection after its sub-stack)."""
        return _weights(self.blocks, params)

    @property
    def num_params(self) -> int:
        """The number of trained numbers (running statistics not counted)."""
        return sum(int(np.prod(s.shape)) for s in jax.tree_util.tree_leaves(trainable(_shapes(self))))

    # ---- parameters ---------------------------------------------------------------------------
    def init(self, key: Array, dtype: Any = None) -> Params:
        """Fresh parameters: one dict per block (``Dense``: ``{"W", "b"}``; ``BatchNorm``:
        ``{"gamma", "beta", "state": {"mean", "var"}}``; ...); block ``i`` draws from ``split(key)[i]``.

        >>> from fnn.core.blocks import Dense, Activate
        >>> [sorted(p) for p in Network(2, [Dense(3), Activate("tanh"), Dense(1)]).init(jax.random.key(0))]
        [['W', 'b'], [], ['W', 'b']]
        """
        _checks.check_key(key, "key")
        dtype_name = _dtype_name(dtype)
        return _init_network(self, key, dtype_name)

    def init_stacked(self, key: Array, n: int, dtype: Any = None) -> Params:
        """The parameters of ``n`` networks stacked over a leading axis (network ``i`` is
        ``init(split(key, n)[i])``), as :func:`fnn.fit_many` takes them."""
        _checks.check_key(key, "key")
        n = _checks.check_int(n, "n", 1)
        dtype_name = _dtype_name(dtype)
        leaves = sum(int(np.prod(s.shape)) for s in jax.tree_util.tree_leaves(_shapes(self)))
        _checks.check_memory(leaves * n, jnp.dtype(dtype_name).itemsize, f"the parameters of `n` = {n} networks")
        return _init_network_split(self, key, n, dtype_name)

    def check_params(self, params: Any, name: str = "params") -> None:
        """``params`` must have the structure, shapes and float dtypes of :meth:`init`'s result."""
        want = _shapes(self)
        if not isinstance(params, (list, tuple)):
            raise TypeError(
                f"`{name}` must be a list of {len(self.blocks)} dicts, one per block, as net.init makes, "
                f"got {type(params).__name__}"
            )
        if len(params) != len(self.blocks):
            raise ValueError(
                f"`{name}` has {len(params)} entries but the network has {len(self.blocks)} blocks (params of another network?)"
            )
        for i, (p, w, b) in enumerate(zip(params, want, self.blocks)):
            _check_entry(p, w, f"{name}[{i}]", type(b).__name__)

    def stop_state(self, params: Params) -> Params:
        """``params`` with every ``"state"`` entry (running statistics) behind ``stop_gradient``: they are not trained."""
        return _stop_state(params)

    # ---- forward --------------------------------------------------------------------------------
    def propagate(self, params: Params, x: Array, key: Array | None = None, train: bool = False) -> tuple[Array, NetCache]:
        """The forward pass without argument checks: ``(output, NetCache)``; ``x`` is (B, n_in) or (n_in,).
        Eval mode unless ``train``."""
        single = x.ndim == 1
        xb = x[None, :] if single else x
        z, states, res = _blocks.chain_forward(self.blocks, params, xb, key, train)
        out = self.output.f(z)
        if single:
            z, out = z[0], out[0]
        return out, NetCache(xb, (z,), (out,), states, res)

    def forward(self, params: Params, x: Any, key: Array | None = None, train: bool = False) -> tuple[Array, NetCache]:
        """:meth:`propagate` after checking the arguments (and, in eval mode, the running statistics)."""
        self.check_params(params)
        x = _checks.check_x(self, x)
        train = _checks.check_flag(train, "train")
        self.check_mode(params, x, key, train)
        return self.propagate(params, x, key, train)

    def check_mode(self, params: Params, x: Array, key: Any, train: bool) -> None:
        """What a forward pass in this mode needs: a key for dropout in train mode; at least 2 examples
        for batch statistics; in eval mode, running statistics that were trained and are finite."""
        if key is not None:
            _checks.check_key(key, "key")
        if train and self.random and key is None:
            raise ValueError(
                "the network has dropout: train mode needs `key=jax.random.key(seed)` (or train=False for eval mode)"
            )
        if train and _has(self.blocks, _blocks.BatchNorm) and (x.ndim == 1 or x.shape[0] < 2):
            raise ValueError(
                "batch norm in train mode needs a batch of at least 2 examples for its statistics, "
                f"got x of shape {tuple(x.shape)}; "
                "use train=False (eval mode, the running averages) for one example"
            )
        if not train and self.stateful:
            check_running_stats(self, params)

    def apply(self, params: Params, x: Any, key: Array | None = None, train: bool = False) -> Array:
        """The network output; eval mode (running statistics, no dropout) unless ``train=True``.

        >>> from fnn.core.blocks import Dense, LayerNorm
        >>> net = Network(2, [Dense(3), LayerNorm(), Dense(2)], output="softmax")
        >>> round(float(net.apply(net.init(jax.random.key(0)), jnp.ones(2)).sum()), 5)
        1.0
        """
        return self.forward(params, x, key, train)[0]

    def logits(self, params: Params, x: Any, key: Array | None = None, train: bool = False) -> Array:
        """z_L, the last block's output."""
        return self.forward(params, x, key, train)[1].z[-1]

    # ---- serialisation --------------------------------------------------------------------------
    def to_json(self) -> dict:
        """A JSON-friendly dict; ``Network.from_json(net.to_json()) == net``."""
        return {
            "kind": "network",
            "n_in": self.n_in,
            "blocks": [b.to_json() for b in self.blocks],
            "output": self.output.to_json(),
        }

    @classmethod
    def from_json(
        cls, d: Mapping, activations: Mapping[str, _act.Activation] | None = None, blocks: Mapping[str, type] | None = None
    ) -> Network:
        """Rebuild a spec from :meth:`to_json`'s dict; ``blocks`` maps the names of blocks you wrote to their
        classes, ``activations`` the names of activations you built to them."""
        if not isinstance(d, Mapping) or d.get("kind") != "network":
            raise ValueError(f"`d` is not an fnn Network spec: {d!r:.120}")
        supplied = dict(activations or {})
        try:
            out = d["output"]
            output = supplied[out["name"]] if out.get("custom") else _act.get(**out)
            return cls(d["n_in"], [_blocks._from_json(b, dict(blocks or {}), supplied) for b in d["blocks"]], output)
        except (KeyError, TypeError) as e:
            raise ValueError(f"`d` is not an fnn Network spec: {d!r:.120} ({e})") from None


@functools.lru_cache(maxsize=256)
def _shapes(net: Network) -> Params:
    """The shapes and dtypes of ``net.init``'s result (traced once per spec)."""
    with _checks.shapes_only():  # counting shapes allocates nothing (a huge spec still has a size)
        return jax.eval_shape(lambda: _blocks.chain_init(net.blocks, jax.random.key(0), net.n_in, "float32"))


def _has(blocks: Sequence[Block], kind: type) -> bool:
    return any(isinstance(b, kind) or _has(b.children(), kind) for b in blocks)


def _check_entry(p: Any, want: Any, name: str, block: str) -> None:
    if isinstance(want, dict):
        if not isinstance(p, Mapping) or set(p) != set(want):
            got = sorted(p) if isinstance(p, Mapping) else type(p).__name__
            raise ValueError(f"`{name}` must be a dict with keys {sorted(want)} ({block}), got {got}")
        if not isinstance(p, dict) and jax.tree_util.treedef_is_leaf(jax.tree_util.tree_structure(p)):
            raise TypeError(f"`{name}` is a {type(p).__name__}, which JAX does not treat as a pytree of its entries: use a dict")
        for k in want:
            _check_entry(p[k], want[k], f"{name}[{k!r}]", block)
    elif isinstance(want, list):
        if not isinstance(p, (list, tuple)) or len(p) != len(want):
            raise ValueError(f"`{name}` must be a list of {len(want)} entries ({block}), got {type(p).__name__}")
        for i, (a, w) in enumerate(zip(p, want)):
            _check_entry(a, w, f"{name}[{i}]", block)
    else:
        if not hasattr(p, "shape") or not hasattr(p, "dtype"):
            raise TypeError(f"`{name}` must be an array, got {type(p).__name__}")
        if tuple(p.shape) != tuple(want.shape):
            stacked = len(p.shape) == len(want.shape) + 1 and tuple(p.shape[1:]) == tuple(want.shape)
            hint = (
                " (stacked parameters of several networks, as fit_many returns them?)"
                if stacked
                else " (params of another network?)"
            )
            raise ValueError(f"`{name}` has shape {tuple(p.shape)} but the {block} block expects {tuple(want.shape)}{hint}")
        if not jnp.issubdtype(p.dtype, jnp.floating):
            raise TypeError(f"`{name}` has dtype {p.dtype}; parameters must be floats")


def _states(blocks: Sequence[Block], params: Sequence[dict], path: str = "params") -> list[tuple[str, _blocks.BatchNorm, dict]]:
    out = []
    for i, (b, p) in enumerate(zip(blocks, params)):
        if isinstance(b, _blocks.Residual):
            out.extend(_states(b.blocks, p["blocks"], f"{path}[{i}]['blocks']"))
        elif isinstance(b, _blocks.BatchNorm):
            out.append((f"{path}[{i}]['state']", b, p["state"]))
    return out


def check_running_stats(net: Network, params: Params) -> None:
    """Eval mode reads the running statistics: refuse (concrete values only) ones never trained or not finite."""
    for where, b, s in _states(net.blocks, params):
        if not (_checks.is_concrete(s["mean"]) and _checks.is_concrete(s["var"])):
            return
        mean, var = np.asarray(s["mean"]), np.asarray(s["var"])
        if not (np.isfinite(mean).all() and np.isfinite(var).all()):
            raise ValueError(
                f"the running statistics `{where}` hold NaN or inf: eval mode cannot normalise with them (a diverged run?)"
            )
        if not mean.any() and (var == b.var_init).all():
            raise ValueError(
                f"eval mode normalises with the running statistics, but `{where}` were never trained (mean 0, variance "
                f"{b.var_init:g}, as init made them): train the network first (fit); a forward pass in train "
                "mode (net.apply(..., train=True)) normalises with the batch's own statistics"
            )


def _dtype_name(dtype: Any) -> str:
    try:
        if hasattr(dtype, "shape") and not isinstance(dtype, (type, np.dtype)):  # an array, whose dtype jnp.dtype would take
            raise TypeError
        d = jnp.dtype(jnp.result_type(float) if dtype is None else dtype)
    except TypeError:
        raise TypeError(f"`dtype` must be a float dtype such as jnp.float32, got {dtype!r:.40}") from None
    if not jnp.issubdtype(d, jnp.floating):
        raise TypeError(f"`dtype` must be a float dtype, got {d}")
    return d.name


@functools.partial(jax.jit, static_argnums=(0, 2))
def _init_network(net: Network, key: Array, dtype: str) -> Params:
    return _blocks.chain_init(net.blocks, key, net.n_in, dtype)


@functools.partial(jax.jit, static_argnums=(0, 2, 3))
def _init_network_split(net: Network, key: Array, n: int, dtype: str) -> Params:
    return jax.lax.map(lambda k: _blocks.chain_init(net.blocks, k, net.n_in, dtype), jax.random.split(key, n))


# ---- models fnn did not build ---------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True, eq=True)
class Model:
    """Any pair of pure functions as a model ``fit``, ``fit_many``, ``evaluate`` and checkpoints take.

    Args:
      init: ``key -> params``, any pytree of float arrays.
      apply: ``(params, x) -> z``, the logits (B, n_out) for a batch x (B, n_in); fnn applies ``output``.
      sizes: ``(n_in, n_out)``.
      output: the output activation (paired with the loss as for an MLP).
      name: recorded in checkpoints (a model's code is not: ``fnn.load`` needs it back).

    Its gradients come from ``jax.grad`` (``grad="autodiff"``): it has no hand-derived backward pass.

    >>> model = Model(lambda k: {"w": jax.random.normal(k, (2, 3))}, lambda p, x: x @ p["w"], sizes=(2, 3), output="softmax")
    >>> model.apply(model.init(jax.random.key(0)), jnp.ones((4, 2))).shape
    (4, 3)
    """

    init_fn: Callable
    apply_fn: Callable
    sizes: tuple[int, int]
    output: _act.Activation
    name: str = "model"

    def __init__(
        self, init: Callable, apply: Callable, sizes: Sequence[int], output: Any = "identity", name: str = "model"
    ) -> None:
        if not callable(init):
            raise TypeError(f"`init` must be a function key -> params, got {type(init).__name__}")
        if not callable(apply):
            raise TypeError(f"`apply` must be a function (params, x) -> logits, got {type(apply).__name__}")
        if isinstance(sizes, (str, bytes)) or not isinstance(sizes, Sequence) or len(sizes) != 2:
            raise TypeError(f"`sizes` must be (n_in, n_out), got {sizes!r:.40}")
        sizes = (_checks.check_int(sizes[0], "sizes[0]", 1), _checks.check_int(sizes[1], "sizes[1]", 1))
        try:
            out = _act.get(output)
        except (TypeError, ValueError) as e:
            raise type(e)(f"`output`: {e}") from None
        if not isinstance(name, str) or not name:
            raise TypeError(f"`name` must be a non-empty str, got {name!r:.40}")
        for f, v in (("init_fn", init), ("apply_fn", apply), ("sizes", sizes), ("output", out), ("name", name)):
            object.__setattr__(self, f, v)

    random = False
    stateful = False
    batch_norm = False

    @property
    def num_layers(self) -> int:
        """The number of its weight matrices (:meth:`weights`): the length of the history's ``grad_norm``."""
        return len(self.weights(_model_shapes(self)))

    def weights(self, params: Any) -> list[Array]:
        """Every float leaf of two or more axes (what ``grad_norm`` and L2 treat as weights)."""
        return [a for a in jax.tree_util.tree_leaves(params) if getattr(a, "ndim", 0) >= 2]

    def init(self, key: Array, dtype: Any = None) -> Any:
        """Fresh parameters from the model's ``init_fn(key)``, cast to ``dtype`` when given, checked against the model's tree."""
        _checks.check_key(key, "key")
        params = self.init_fn(key)
        if dtype is not None:
            name = _dtype_name(dtype)
            params = jax.tree_util.tree_map(lambda a: jnp.asarray(a, name), params)
        self.check_params(params)
        return params

    def init_stacked(self, key: Array, n: int, dtype: Any = None) -> Any:
        """The parameters of ``n`` models stacked over a leading axis (model ``i`` is ``init(split(key, n)[i])``), as
        :func:`fnn.fit_many` takes them."""
        _checks.check_key(key, "key")
        n = _checks.check_int(n, "n", 1)
        name = _dtype_name(dtype) if dtype is not None else None
        leaves = jax.tree_util.tree_leaves(_model_shapes(self))
        size = max((jnp.dtype(name or a.dtype).itemsize for a in leaves), default=4)
        _checks.check_memory(sum(int(np.prod(a.shape)) for a in leaves) * n, size, f"the parameters of `n` = {n} models")
        return jax.lax.map(lambda k: self.init(k, dtype), jax.random.split(key, n))

    def check_leaves(self, params: Any, name: str = "params") -> None:
        """``params`` must hold float arrays (at least one)."""
        leaves = jax.tree_util.tree_leaves_with_path(params)
        if not leaves:
            raise ValueError(f"`{name}` has no arrays: a model's init must return a pytree of float arrays")
        for path, a in leaves:
            if not hasattr(a, "dtype") or not jnp.issubdtype(a.dtype, jnp.floating):
                raise TypeError(
                    f"`{name}` must hold float arrays: `{name}{jax.tree_util.keystr(path)}` is {type(a).__name__}: {a!r:.40}"
                )

    def check_params(self, params: Any, name: str = "params") -> None:
        """``params`` must have the tree, the shapes and float dtypes of the model's ``init`` (traced once)."""
        self.check_leaves(params, name)
        leaves = jax.tree_util.tree_leaves_with_path(params)
        want = _model_shapes(self)
        if str(jax.tree_util.tree_structure(params)) != str(jax.tree_util.tree_structure(want)):
            raise ValueError(
                f"`{name}` has another tree than the model's init makes: {jax.tree_util.tree_structure(params)} "
                f"vs {jax.tree_util.tree_structure(want)} (params of another model?)"
            )
        for (path, a), w in zip(leaves, jax.tree_util.tree_leaves(want)):
            if tuple(a.shape) != tuple(w.shape):
                raise ValueError(
                    f"`{name}{jax.tree_util.keystr(path)}` has shape {tuple(a.shape)} but the model's init makes {tuple(w.shape)}"
                )

    def stop_state(self, params: Any) -> Any:
        """``params`` as they are: a model fnn did not build keeps no running statistics of fnn's."""
        return params

    def propagate(self, params: Any, x: Array, key: Array | None = None, train: bool = False) -> tuple[Array, NetCache]:
        """The forward pass without argument checks: ``(output, NetCache)``, the output activation applied to ``apply_fn(params,
        x)``; ``x`` is (B, n_in) or (n_in,)."""
        single = x.ndim == 1
        xb = x[None, :] if single else x
        z = self.apply_fn(params, xb)
        if getattr(z, "shape", None) != (xb.shape[0], self.sizes[1]):
            raise ValueError(
                f"the model's apply returned shape {getattr(z, 'shape', type(z).__name__)}, "
                f"expected {(xb.shape[0], self.sizes[1])}"
            )
        out = self.output.f(z)
        if single:
            z, out = z[0], out[0]
        return out, NetCache(xb, (z,), (out,), [], [])

    def check_mode(self, params: Any, x: Array, key: Any, train: bool) -> None:
        """A model has no modes of fnn's: only a given ``key`` is checked."""
        if key is not None:
            _checks.check_key(key, "key")

    def forward(self, params: Any, x: Any, key: Array | None = None, train: bool = False) -> tuple[Array, NetCache]:
        """:meth:`propagate` after checking ``params`` and ``x``."""
        self.check_params(params)
        return self.propagate(params, _checks.check_x(self, x), key, train)

    def apply(self, params: Any, x: Any, key: Array | None = None, train: bool = False) -> Array:
        """``output(apply(params, x))``."""
        return self.forward(params, x)[0]

    def to_json(self) -> dict:
        """The model as JSON values (kind, name, sizes, output), as a checkpoint's header stores it; its code is not stored."""
        return {"kind": "model", "name": self.name, "sizes": list(self.sizes), "output": self.output.to_json()}


@functools.lru_cache(maxsize=64)
def _model_shapes(model: Model) -> Any:
    """The tree, shapes and dtypes of ``model.init``'s parameters (traced once per model)."""
    with _checks.shapes_only():
        return jax.eval_shape(model.init_fn, jax.random.key(0))


Net = Network | Model


# ---- the objective and its gradients -------------------------------------------------------------------
def l2_penalty(net: Net, params: Any, lam: Any) -> Array:
    """½ λ Σ_W ‖W‖² over the network's weight matrices (no biases, γ or β).

    >>> from fnn.core.blocks import Dense
    >>> net = Network(1, [Dense(1)])
    >>> float(l2_penalty(net, [{"W": jnp.array([[3.0]]), "b": jnp.array([5.0])}], 2.0))
    9.0
    """
    ws = net.weights(params)
    return 0.5 * lam * sum(jnp.sum(w * w) for w in ws) if ws else jnp.zeros(())


def add_l2(net: Net, grads: Any, params: Any, lam: Any) -> Any:
    """``grads`` plus the L2 term's gradient ``λ W`` on every weight matrix (by hand)."""
    if isinstance(net, Network):
        return _add_l2(net.blocks, grads, params, lam)
    ids = {id(w) for w in net.weights(params)}
    return jax.tree_util.tree_map(lambda g, p: g + lam * p if id(p) in ids else g, grads, params)


def _like(params: Any, tree: Any) -> Any:
    """``tree`` (the blocks' lists and dicts) in the containers of ``params`` (a tuple of blocks stays a tuple):
    the same leaves in the same order, so ``jax.grad`` and the manual pass return one structure."""
    return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(params), jax.tree_util.tree_leaves(tree))


def network_value(net: Net, loss: _losses.Loss, train: bool = True, l2: bool = False) -> Callable:
    """``(params, x, t, key, lam) -> E``: the objective alone (as :func:`network_step_grads` computes it)."""

    def E(params: Any, x: Array, t: Array, key: Any, lam: Any) -> Array:
        p = net.stop_state(params)
        if isinstance(net, Model):
            z = net.apply_fn(p, x)
        else:
            z = _blocks.chain_forward(net.blocks, p, x, key, train)[0]
        value = _losses.value(loss, z, net.output.f(z), t)
        return value + l2_penalty(net, p, lam) if l2 else value

    return E


def network_step_grads(net: Net, loss: _losses.Loss, grad: str, train: bool = True, l2: bool = False) -> Callable:
    """``(params, x, t, key, lam) -> (E, grads, params with the new running statistics)`` on a batch
    ``x`` (B, n_in) with targets ``t`` in the output's form (what training calls, its arguments already
    checked). ``grad="manual"``: the chain of the blocks' backward passes; ``"autodiff"``: ``jax.grad``.
    With ``l2`` the objective adds ½ λ Σ‖W‖²."""
    if grad == "manual" and isinstance(net, Model):
        raise ValueError("a Model has no hand-derived backward pass: train it with grad='autodiff'")

    def manual(params: Any, x: Array, t: Array, key: Any, lam: Any) -> tuple[Array, Any, Any]:
        assert isinstance(net, Network)  # (a Model was refused above)
        z, states, res = _blocks.chain_forward(net.blocks, params, x, key, train)
        out = net.output.f(z)
        E, delta = _losses.value_and_delta(loss, net.output, z, out, t)
        grads, _ = _blocks.chain_backward(net.blocks, params, res, delta)
        if l2:
            E = E + l2_penalty(net, params, lam)
            grads = add_l2(net, grads, params, lam)
        new = _like(params, _blocks.with_states(params, states)) if train else params
        return E, _like(params, grads), new

    def autodiff(params: Any, x: Array, t: Array, key: Any, lam: Any) -> tuple[Array, Any, Any]:
        def J(p: Any) -> tuple[Array, Any]:
            p = net.stop_state(p)
            if isinstance(net, Model):
                z, states = net.apply_fn(p, x), None
            else:
                z, states, _ = _blocks.chain_forward(net.blocks, p, x, key, train)
            E = _losses.value(loss, z, net.output.f(z), t)
            return (E + l2_penalty(net, p, lam) if l2 else E), states

        (E, states), grads = jax.value_and_grad(J, has_aux=True)(params)
        new = _like(params, _blocks.with_states(params, states)) if (train and states is not None) else params
        return E, grads, new

    return manual if grad == "manual" else autodiff
