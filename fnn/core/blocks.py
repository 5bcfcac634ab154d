"""Blocks: the pieces a network is written in, each a forward pass beside its hand-derived backward pass.

A block maps a batch ``x`` of shape (B, n_in) to ``y`` of shape (B, n_out). Every block is a frozen,
hashable record (it sits inside a static network spec, as an :class:`~fnn.Activation` does) with

- ``init(key, n_in, dtype) -> params``: its parameters, a dict (``{}`` for a block without any). A block
  with running statistics keeps them in the same dict under ``"state"``: they travel with the
  parameters (``fit`` returns them, checkpoints save them) but are not trained — their gradient is zero
  and the optimizer never sees them;
- ``forward(params, x, key, train) -> (y, state, res)``: the pure forward pass in train or eval mode
  (``key``: a ``jax.random`` key where the block is random, else None), the new ``state`` (None for a
  block without one) and ``res``, what the backward pass needs;
- ``backward(params, res, dy) -> (grads, dx)``: the hand-derived backward pass. ``dy = ∂E/∂y``; ``grads``
  has the structure of ``params`` (zeros under ``"state"``) and ``dx = ∂E/∂x``.

The blocks, with the equations their backward passes implement (rows of x are examples; Σ_b sums over
the batch):

- :class:`Dense`: z = W h + b (``h @ W.T + b``); backward ∂W = δᵀh, ∂b = Σ_b δ, ∂h = δ W.
- :class:`Activate`: h = f(z); backward ∂z = ∂h ⊙ f′(z).
- :class:`Dropout`: y = x ⊙ m / (1 − p), m ~ Bernoulli(1 − p); backward ∂x = ∂y ⊙ m / (1 − p) (the same m).
- :class:`BatchNorm`: x̂ = (x − μ_B) / √(σ²_B + ε), y = γ x̂ + β; backward
  ∂x = (1/B)·(1/√(σ²+ε))·(B ĝ − Σ_b ĝ − x̂ Σ_b ĝ x̂) with ĝ = ∂y ⊙ γ; ∂γ = Σ_b ∂y x̂, ∂β = Σ_b ∂y.
- :class:`LayerNorm`: the same over each row's features; backward the same per row, over the D features.
- :class:`Residual`: y = F(x) + x, or F(x) + x W_sᵀ (a learned projection where widths differ); backward
  ∂x = ∂F/∂x(∂y) + ∂y (or + ∂y W_s), ∂W_s = ∂yᵀ x.

L2 weight decay is not a block but a term of the objective, ``½ λ Σ‖W‖²`` over every weight matrix
(:func:`fnn.core.network.l2_penalty`), with gradient ``λ W``.

Write your own by subclassing :class:`Block` (a frozen dataclass) and defining ``init``, ``forward`` and
``backward`` (and ``out_size`` when it changes the width); :func:`fnn.check_derivation` checks its
backward pass against ``jax.grad`` and finite differences in float64, in both modes, and a network
checks it the first time it uses it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, ClassVar

import jax
import jax.numpy as jnp

from fnn import _checks
from fnn.core import activations as _act
from fnn.core import init as _init
from fnn.core.layer import input_error, linear, weight_grad

Array = jax.Array
Res = Any  # what a block's forward pass keeps for its backward pass


@dataclasses.dataclass(frozen=True)
class Block:
    """A block of a network: its forward pass beside its hand-derived backward pass (see the module).

    Subclass it for a block of your own: a frozen dataclass whose fields are its settings (hashable),
    with ``init``, ``forward``, ``backward`` and, if the block changes the width, ``out_size``. Set the
    class attribute ``random = True`` if its train-mode forward pass draws from ``key``.

    Example (a block that scales its input by a learned vector, y = a ⊙ x):
      >>> @dataclasses.dataclass(frozen=True)
      ... class Scale(Block):
      ...     def init(self, key, n_in, dtype):
      ...         return {"a": jnp.ones((n_in,), dtype)}
      ...     def forward(self, params, x, key=None, train=True):
      ...         return params["a"] * x, None, x
      ...     def backward(self, params, res, dy):
      ...         return {"a": jnp.sum(dy * res, axis=0)}, dy * params["a"]
      >>> y, _, res = Scale().forward({"a": jnp.array([2.0])}, jnp.array([[3.0]]))
      >>> y.tolist(), Scale().backward({"a": jnp.array([2.0])}, res, jnp.ones((1, 1)))[1].tolist()
      ([[6.0]], [[2.0]])
    """

    random: ClassVar[bool] = False  # the train-mode forward pass draws from its key (dropout)

    def out_size(self, n_in: int) -> int:
        """The width of the output for an input of width ``n_in`` (the same, unless the block says otherwise)."""
        return n_in

    def init(self, key: Array, n_in: int, dtype: Any) -> dict:
        """Fresh parameters for an input of width ``n_in`` (``{}``: none)."""
        return {}

    def forward(self, params: dict, x: Array, key: Array | None = None, train: bool = True) -> tuple[Array, Any, Res]:
        """The forward pass: ``(y, state, res)``, the output, the new running statistics (None if none) and what the backward
        pass keeps. ``key`` draws dropout's mask in train mode; ``train`` picks batch or running statistics."""
        raise NotImplementedError(f"{type(self).__name__} must define forward(params, x, key, train) -> (y, state, res)")

    def backward(self, params: dict, res: Res, dy: Array) -> tuple[dict, Array]:
        """The hand-derived backward pass: from ``dy = ∂E/∂y`` and the forward pass's ``res``, ``(grads, dx)``, the gradients of
        ``params`` (zeros under ``"state"``) and ``dx = ∂E/∂x``."""
        raise NotImplementedError(f"{type(self).__name__} must define backward(params, res, dy) -> (grads, dx)")

    @property
    def stateful(self) -> bool:
        """Whether the block keeps running statistics (under ``params["state"]``)."""
        return False

    @property
    def builtin(self) -> bool:
        """True for fnn's own blocks (their derivations are checked by fnn's tests), False for yours."""
        return type(self).__module__ == __name__

    def children(self) -> tuple[Block, ...]:
        """The blocks inside this one (a :class:`Residual`'s); none for a plain block."""
        return ()

    def to_json(self) -> dict:
        """``{"block": name, settings...}``; a block you wrote is marked ``custom`` (a spec records its
        name and settings, not its code)."""
        d: dict[str, Any] = {"block": type(self).__name__}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            d[f.name] = v.to_json() if isinstance(v, _act.Activation) else v
        if not self.builtin:
            d["custom"] = True
        return d


def _zeros_like_state(params: dict) -> dict:
    """The gradient of a block's parameters with zeros under ``"state"`` (running statistics are not trained)."""
    return jax.tree_util.tree_map(jnp.zeros_like, params["state"])


def _check_width(value: Any, name: str) -> int:
    return _checks.check_int(value, name, low=1)


def _check_init(block: str, key: Any, n_in: Any, dtype: Any, key_used: bool = False) -> tuple[int, Any]:
    """``init``'s arguments: a key (checked where the block draws from it), a width ≥ 1, a float dtype."""
    if key_used:
        _checks.check_key(key, "key")
    n_in = _checks.check_int(n_in, "n_in", low=1)
    try:
        dt = jnp.dtype(dtype)
    except TypeError:
        raise TypeError(f"{block}.init: `dtype` must be a float dtype such as jnp.float32, got {dtype!r:.40}") from None
    if not jnp.issubdtype(dt, jnp.floating):
        raise TypeError(f"{block}.init: `dtype` must be a float dtype, got {dt}")
    return n_in, dt


# ---- dense and activation: the tutorial's layer, as two blocks ----------------------------------------
@dataclasses.dataclass(frozen=True)
class Dense(Block):
    """The affine layer ``z = W h + b`` (``W``: (width, n_in), as in the tutorial), and its backward pass

    .. math:: \\partial E/\\partial W = \\delta^\\top h, \\quad \\partial E/\\partial b = \\textstyle\\sum_b \\delta,
              \\quad \\partial E/\\partial h = \\delta W

    Args:
      width: n_out.
      init: an initialiser name from :mod:`fnn.init`, or ``"auto"``: He before a ReLU-like
        :class:`Activate`, Glorot otherwise (the network picks, from the next activation).
      bias: whether the layer has ``b``.

    >>> d = Dense(3)
    >>> p = d.init(jax.random.key(0), 2, jnp.float32)
    >>> p["W"].shape, d.forward(p, jnp.ones((4, 2)))[0].shape
    ((3, 2), (4, 3))
    """

    width: int
    init_name: str = "auto"
    bias: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "width", _check_width(self.width, "Dense.width"))
        if not isinstance(self.init_name, str) or self.init_name not in _init.NAMES:
            raise ValueError(f"`Dense.init_name` must be one of {', '.join(_init.NAMES)}, got {self.init_name!r:.40}")
        object.__setattr__(self, "bias", _checks.check_flag(self.bias, "Dense.bias"))

    def out_size(self, n_in: int) -> int:
        return self.width

    def init(self, key: Array, n_in: int, dtype: Any, activation: str = "identity") -> dict:
        name = _init.resolve(self.init_name, activation)
        p = {"W": _init.INITIALIZERS[name](key, (self.width, n_in), dtype)}
        if self.bias:
            p["b"] = jnp.zeros((self.width,), dtype)
        return p

    def forward(self, params: dict, x: Array, key: Array | None = None, train: bool = True) -> tuple[Array, None, Array]:
        b = params["b"] if self.bias else jnp.zeros((), x.dtype)
        return linear(params["W"], b, x), None, x

    def backward(self, params: dict, res: Array, dy: Array) -> tuple[dict, Array]:
        g = {"W": weight_grad(dy, res)}
        if self.bias:
            g["b"] = jnp.sum(dy, axis=0)
        return g, input_error(dy, params["W"])


@dataclasses.dataclass(frozen=True)
class Activate(Block):
    """``h = f(z)`` for an elementwise activation ``f``; backward ``∂E/∂z = ∂E/∂h ⊙ f′(z)``.

    Args:
      activation: a name (``relu``, ``tanh``, ...) or an :class:`~fnn.Activation` (softmax is an output
        activation: give it to the network's ``output``).

    >>> Activate("relu").forward({}, jnp.array([[-1.0, 2.0]]))[0].tolist()
    [[0.0, 2.0]]
    """

    activation: _act.Activation

    def __post_init__(self) -> None:
        try:
            a = _act.get(self.activation)
        except (TypeError, ValueError) as e:
            raise type(e)(f"`Activate.activation`: {e}") from None
        if not a.elementwise:
            raise ValueError(
                f"`Activate.activation` {a.name!r} is not elementwise: give it to the network's `output` "
                f"(hidden activations: {', '.join(_act.HIDDEN_NAMES)})"
            )
        object.__setattr__(self, "activation", a)

    def forward(self, params: dict, x: Array, key: Array | None = None, train: bool = True) -> tuple[Array, None, Res]:
        h = self.activation.f(x)
        return h, None, (x, h)

    def backward(self, params: dict, res: Res, dy: Array) -> tuple[dict, Array]:
        z, h = res
        df = self.activation.df
        assert df is not None  # elementwise (checked above)
        return {}, dy * df(z, h)

    def to_json(self) -> dict:
        return {"block": "Activate", "activation": self.activation.to_json()}


# ---- dropout --------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Dropout(Block):
    """Inverted dropout: in train mode each entry is kept with probability ``1 − drop_rate`` and scaled
    by ``1 / (1 − drop_rate)``, so its expectation is the input; in eval mode the identity.

    .. math:: y = x \\odot m / (1-p), \\quad m_{ij} \\sim \\mathrm{Bernoulli}(1-p), \\qquad
              \\partial E/\\partial x = \\partial E/\\partial y \\odot m / (1-p)

    The backward pass uses the very mask of the forward pass (kept in ``res``).

    Args:
      drop_rate: p, the probability an entry is *dropped* (PyTorch's ``p``; Keras's ``rate``; CS231n's
        ``p`` is the probability of keeping), in [0, 1).

    >>> y, _, m = Dropout(0.5).forward({}, jnp.ones((2, 4)), jax.random.key(0))
    >>> sorted(set(y.ravel().tolist())) == [0.0, 2.0] or sorted(set(y.ravel().tolist()))
    True
    """

    drop_rate: float
    random: ClassVar[bool] = True

    def __post_init__(self) -> None:
        rate = _checks.check_number(self.drop_rate, "Dropout.drop_rate", 0.0, 1.0, high_open=True)
        object.__setattr__(self, "drop_rate", rate)

    def forward(self, params: dict, x: Array, key: Array | None = None, train: bool = True) -> tuple[Array, None, Res]:
        if not train or self.drop_rate == 0.0:
            return x, None, None
        if key is None:
            raise ValueError("Dropout needs a `key` in train mode: pass key=jax.random.key(seed), or train=False")
        keep = 1.0 - self.drop_rate
        # the draw in float32 whatever the dtype and the x64 flag: a key gives one mask, in float32 and float64 alike
        kept = jax.random.bernoulli(key, jnp.float32(keep), x.shape)
        scale = jnp.where(kept, jnp.asarray(1.0 / keep, x.dtype), jnp.zeros((), x.dtype))
        return x * scale, None, scale

    def backward(self, params: dict, res: Res, dy: Array) -> tuple[dict, Array]:
        return {}, dy if res is None else dy * res


# ---- normalisation ------------------------------------------------------------------------------------
CONVENTIONS = ("pytorch", "cs231n")


def _normalise_backward(dy: Array, xhat: Array, inv: Array, gamma: Array, axis: int) -> Array:
    """∂E/∂x of x̂ = (x − mean) · inv over ``axis`` (n entries), y = γ x̂ + β: the closed form

    (1/n) · inv · (n ĝ − Σ ĝ − x̂ Σ ĝ x̂), ĝ = ∂y ⊙ γ (the sums over ``axis``)."""
    g = dy * gamma
    n = g.shape[axis]
    return (inv / n) * (n * g - jnp.sum(g, axis=axis, keepdims=True) - xhat * jnp.sum(g * xhat, axis=axis, keepdims=True))


@dataclasses.dataclass(frozen=True)
class BatchNorm(Block):
    """Batch normalisation (Ioffe & Szegedy 2015) over the batch axis, one γ and β per feature.

    Train mode normalises with the batch's mean μ_B and biased variance σ²_B and updates the running
    averages; eval mode normalises with the running averages (the same per example, whatever the batch).

    .. math::

        \\hat x = (x - \\mu_B) / \\sqrt{\\sigma_B^2 + \\varepsilon}, \\qquad y = \\gamma \\hat x + \\beta

        \\partial E/\\partial x = \\frac{1}{B\\sqrt{\\sigma_B^2+\\varepsilon}}
            \\Big(B\\,\\hat g - \\textstyle\\sum_b \\hat g - \\hat x \\sum_b \\hat g \\hat x\\Big),
            \\quad \\hat g = \\partial E/\\partial y \\odot \\gamma

    (the closed form; :meth:`backward_staged` is the same derivative as the chain rule through each
    intermediate, CS231n's computational graph; the closed form is the one that runs.)

    Conventions (``convention="pytorch"``, the default, is ``torch.nn.BatchNorm1d``'s):

    - ``momentum`` is the weight of the new batch: ``running = (1 − momentum)·running + momentum·batch``
      (PyTorch's 0.1; CS231n writes ``momentum=0.9`` for the weight of the old value: the same rule);
    - the running mean starts at 0 and the running variance at 1 (``"cs231n"``: at 0);
    - the running variance is updated with the unbiased estimate σ²_B · B / (B − 1) (``"cs231n"``: the
      biased σ²_B, the one that normalises);
    - ε sits inside the square root, in both.

    Args:
      momentum: weight of the new batch in the running averages, in (0, 1].
      eps: ε > 0.
      convention: ``"pytorch"`` or ``"cs231n"``.

    >>> bn = BatchNorm()
    >>> p = bn.init(jax.random.key(0), 3, jnp.float32)
    >>> sorted(p), sorted(p["state"]), p["state"]["var"].tolist()
    (['beta', 'gamma', 'state'], ['mean', 'var'], [1.0, 1.0, 1.0])
    """

    momentum: float = 0.1
    eps: float = 1e-5
    convention: str = "pytorch"

    def __post_init__(self) -> None:
        object.__setattr__(self, "momentum", _checks.check_number(self.momentum, "BatchNorm.momentum", 0.0, 1.0, low_open=True))
        object.__setattr__(self, "eps", _checks.check_number(self.eps, "BatchNorm.eps", 0.0, low_open=True))
        _checks.check_choice(self.convention, "BatchNorm.convention", CONVENTIONS)

    @property
    def stateful(self) -> bool:
        return True

    @property
    def var_init(self) -> float:
        """The running variance's starting value, 1 (PyTorch) or 0 (CS231n)."""
        return 1.0 if self.convention == "pytorch" else 0.0

    def init(self, key: Array, n_in: int, dtype: Any) -> dict:
        n_in, dtype = _check_init("BatchNorm", key, n_in, dtype)
        return {
            "gamma": jnp.ones((n_in,), dtype),
            "beta": jnp.zeros((n_in,), dtype),
            "state": {"mean": jnp.zeros((n_in,), dtype), "var": jnp.full((n_in,), self.var_init, dtype)},
        }

    def forward(self, params: dict, x: Array, key: Array | None = None, train: bool = True) -> tuple[Array, Any, Res]:
        gamma, beta, state = params["gamma"], params["beta"], params["state"]
        if not train:
            inv = jax.lax.rsqrt(state["var"] + jnp.asarray(self.eps, x.dtype))
            xhat = (x - state["mean"]) * inv
            return gamma * xhat + beta, None, (xhat, inv, False)
        B = x.shape[0]
        if B < 2:
            raise ValueError(
                f"BatchNorm in train mode needs at least 2 examples per batch to compute batch statistics, got a batch of {B}: "
                "use a larger batch (fit: drop_last=True drops a last batch of one), or eval mode (train=False)"
            )
        mu = jnp.mean(x, axis=0)
        xc = x - mu
        var = jnp.mean(xc * xc, axis=0)  # biased: what normalises
        inv = jax.lax.rsqrt(var + jnp.asarray(self.eps, x.dtype))
        xhat = xc * inv
        m = jnp.asarray(self.momentum, x.dtype)
        seen = var * (B / (B - 1)) if self.convention == "pytorch" else var
        new_state = {
            "mean": (1 - m) * state["mean"] + m * jax.lax.stop_gradient(mu),
            "var": (1 - m) * state["var"] + m * jax.lax.stop_gradient(seen),
        }
        return gamma * xhat + beta, new_state, (xhat, inv, True)

    def backward(self, params: dict, res: Res, dy: Array) -> tuple[dict, Array]:
        xhat, inv, batch_stats = res
        grads = {"gamma": jnp.sum(dy * xhat, axis=0), "beta": jnp.sum(dy, axis=0), "state": _zeros_like_state(params)}
        if not batch_stats:  # eval mode: an affine map per feature
            return grads, dy * (params["gamma"] * inv)
        return grads, _normalise_backward(dy, xhat, inv, params["gamma"], axis=0)

    def backward_staged(self, params: dict, res: Res, dy: Array) -> tuple[dict, Array]:
        """The train-mode backward pass as the chain rule through each intermediate of the forward pass
        (μ, x − μ, (x − μ)², σ², √(σ² + ε), its inverse, x̂, y), one local derivative at a time
        (CS231n's ``batchnorm_backward``). Equal to :meth:`backward` to rounding; slower."""
        xhat, inv, batch_stats = res
        gamma = params["gamma"]
        grads = {"gamma": jnp.sum(dy * xhat, axis=0), "beta": jnp.sum(dy, axis=0), "state": _zeros_like_state(params)}
        if not batch_stats:
            return grads, dy * (gamma * inv)
        B = dy.shape[0]
        std = 1 / inv
        xc = xhat * std  # x − μ
        dxhat = dy * gamma  # y = γ x̂ + β
        dinv = jnp.sum(dxhat * xc, axis=0)  # x̂ = xc · inv
        dxc = dxhat * inv
        dstd = -dinv / (std * std)  # inv = 1 / std
        dvar = 0.5 * dstd / std  # std = √(var + ε)
        dsq = jnp.ones_like(dy) * dvar / B  # var = mean(sq)
        dxc = dxc + 2 * xc * dsq  # sq = xc²
        dmu = -jnp.sum(dxc, axis=0)  # xc = x − μ
        dx = dxc + dmu / B  # μ = mean(x)
        return grads, dx


@dataclasses.dataclass(frozen=True)
class LayerNorm(Block):
    """Layer normalisation (Ba, Kiros & Hinton 2016): each example normalised over its own D features,
    one γ and β per feature; the same in train and eval mode, for any batch size (one example too).

    .. math::

        \\hat x_i = (x_i - \\mu_i) / \\sqrt{\\sigma_i^2 + \\varepsilon}, \\qquad y_i = \\gamma \\hat x_i + \\beta, \\qquad
        \\partial E/\\partial x_i = \\frac{1}{D\\sqrt{\\sigma_i^2+\\varepsilon}}
            \\Big(D\\,\\hat g_i - \\textstyle\\sum_d \\hat g_{id} - \\hat x_i \\sum_d \\hat g_{id} \\hat x_{id}\\Big)

    with μ_i, σ²_i (biased) the mean and variance of row i and ĝ = ∂E/∂y ⊙ γ (``torch.nn.LayerNorm``'s).

    >>> y = LayerNorm().forward({"gamma": jnp.ones(3), "beta": jnp.zeros(3)}, jnp.array([[1.0, 2.0, 3.0]]))[0]
    >>> [round(v, 4) for v in y[0].tolist()]
    [-1.2247, 0.0, 1.2247]
    """

    eps: float = 1e-5

    def __post_init__(self) -> None:
        object.__setattr__(self, "eps", _checks.check_number(self.eps, "LayerNorm.eps", 0.0, low_open=True))

    def init(self, key: Array, n_in: int, dtype: Any) -> dict:
        n_in, dtype = _check_init("LayerNorm", key, n_in, dtype)
        return {"gamma": jnp.ones((n_in,), dtype), "beta": jnp.zeros((n_in,), dtype)}

    def forward(self, params: dict, x: Array, key: Array | None = None, train: bool = True) -> tuple[Array, None, Res]:
        mu = jnp.mean(x, axis=-1, keepdims=True)
        xc = x - mu
        inv = jax.lax.rsqrt(jnp.mean(xc * xc, axis=-1, keepdims=True) + jnp.asarray(self.eps, x.dtype))
        xhat = xc * inv
        return params["gamma"] * xhat + params["beta"], None, (xhat, inv)

    def backward(self, params: dict, res: Res, dy: Array) -> tuple[dict, Array]:
        xhat, inv = res
        grads = {"gamma": jnp.sum(dy * xhat, axis=0), "beta": jnp.sum(dy, axis=0)}
        return grads, _normalise_backward(dy, xhat, inv, params["gamma"], axis=-1)


# ---- residual connections -------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Residual(Block):
    """A skip connection around a sub-stack of blocks: ``y = F(x) + x``, or ``y = F(x) + x W_sᵀ`` with a
    learned projection ``W_s`` (no bias; He et al. 2016's option B) when F changes the width.

    .. math:: \\partial E/\\partial x = J_F^\\top\\,\\partial E/\\partial y + \\partial E/\\partial y
              \\;(\\text{or } + \\partial E/\\partial y\\, W_s),
              \\qquad \\partial E/\\partial W_s = (\\partial E/\\partial y)^\\top x

    Args:
      blocks: the sub-stack F, a sequence of blocks (residuals nest).
      projection: ``"auto"`` (a projection exactly when the widths differ) or ``"always"``.

    >>> r = Residual([Dense(4), Activate("relu")])
    >>> p = r.init(jax.random.key(0), 4, jnp.float32)
    >>> sorted(p), r.out_size(4)
    (['blocks'], 4)
    """

    blocks: tuple[Block, ...]
    projection: str = "auto"

    def __post_init__(self) -> None:
        blocks = check_blocks(self.blocks, "Residual.blocks")
        object.__setattr__(self, "blocks", blocks)
        _checks.check_choice(self.projection, "Residual.projection", ("auto", "always"))

    @property
    def random(self) -> bool:  # type: ignore[override]
        return any(b.random for b in self.blocks)

    @property
    def stateful(self) -> bool:
        return any(b.stateful for b in self.blocks)

    def children(self) -> tuple[Block, ...]:
        return self.blocks

    def out_size(self, n_in: int) -> int:
        return chain_width(self.blocks, n_in)

    def projects(self, n_in: int) -> bool:
        """Whether the skip path has a learned projection for an input of width ``n_in``."""
        return self.projection == "always" or self.out_size(n_in) != n_in

    def init(self, key: Array, n_in: int, dtype: Any) -> dict:
        n_in, dtype = _check_init("Residual", key, n_in, dtype, key_used=True)
        k_blocks, k_proj = jax.random.split(key)
        p: dict[str, Any] = {"blocks": chain_init(self.blocks, k_blocks, n_in, dtype)}
        if self.projects(n_in):
            p["proj"] = {"W": _init.INITIALIZERS["glorot_uniform"](k_proj, (self.out_size(n_in), n_in), dtype)}
        return p

    def forward(self, params: dict, x: Array, key: Array | None = None, train: bool = True) -> tuple[Array, Any, Res]:
        f, states, res = chain_forward(self.blocks, params["blocks"], x, key, train)
        skip = linear(params["proj"]["W"], jnp.zeros((), x.dtype), x) if "proj" in params else x
        state = {"blocks": states} if self.stateful else None
        return f + skip, state, (x, res)

    def backward(self, params: dict, res: Res, dy: Array) -> tuple[dict, Array]:
        x, inner = res
        grads_blocks, dx = chain_backward(self.blocks, params["blocks"], inner, dy)
        grads: dict[str, Any] = {"blocks": grads_blocks}
        if "proj" in params:
            grads["proj"] = {"W": weight_grad(dy, x)}
            return grads, dx + input_error(dy, params["proj"]["W"])
        return grads, dx + dy

    def to_json(self) -> dict:
        return {"block": "Residual", "blocks": [b.to_json() for b in self.blocks], "projection": self.projection}


# ---- chains of blocks: what a network and a residual's sub-stack run ---------------------------------------
def check_blocks(blocks: Any, name: str) -> tuple[Block, ...]:
    """``blocks`` as a tuple of :class:`Block` (a TypeError naming the first entry that is not one)."""
    if isinstance(blocks, Block):
        blocks = (blocks,)
    if isinstance(blocks, (str, bytes)) or not isinstance(blocks, Sequence):
        raise TypeError(
            f"`{name}` must be a sequence of blocks such as [fnn.blocks.Dense(8), fnn.blocks.Activate('relu')], "
            f"got {blocks!r:.60}"
        )
    if not blocks:
        raise ValueError(f"`{name}` is empty: it needs at least one block")
    for i, b in enumerate(blocks):
        if not isinstance(b, Block):
            hint = " (an activation name: wrap it, fnn.blocks.Activate(...))" if isinstance(b, (str, _act.Activation)) else ""
            raise TypeError(f"`{name}[{i}]` must be an fnn block, got {type(b).__name__}: {b!r:.40}{hint}")
        try:
            hash(b)
        except TypeError:
            raise TypeError(f"`{name}[{i}]` ({type(b).__name__}) must be hashable: make it a frozen dataclass") from None
    return tuple(blocks)


def chain_width(blocks: Sequence[Block], n_in: int) -> int:
    """The width a chain of ``blocks`` gives an input of ``n_in`` features (each block's ``out_size`` in turn).

    >>> chain_width([Dense(8), Activate("relu"), Dense(3)], 2)
    3
    """
    for b in blocks:
        n_in = b.out_size(n_in)
    return n_in


def _next_activation(blocks: Sequence[Block], i: int) -> str:
    """The activation a Dense block at ``i`` feeds (its "auto" initialiser follows it), skipping
    normalisation and dropout; "identity" when a Dense or the end comes first."""
    for b in blocks[i + 1 :]:
        if isinstance(b, Activate):
            return b.activation.name
        if isinstance(b, (Dense, Residual)):
            break
    return "identity"


def chain_init(blocks: Sequence[Block], key: Array, n_in: int, dtype: Any) -> list[dict]:
    """Each block's parameters for an input of ``n_in`` features, one key each: a list in the blocks' order.
    A :class:`Dense` block's "auto" initialiser follows the activation it feeds (He for ReLU, Glorot otherwise).

    >>> [sorted(p) for p in chain_init([Dense(4), Activate("tanh"), Dense(2)], jax.random.key(0), 3, jnp.float32)]
    [['W', 'b'], [], ['W', 'b']]
    """
    params = []
    for i, (b, k) in enumerate(zip(blocks, jax.random.split(key, len(blocks)))):
        p = b.init(k, n_in, dtype, _next_activation(blocks, i)) if isinstance(b, Dense) else b.init(k, n_in, dtype)
        if not isinstance(p, dict):
            raise TypeError(f"{type(b).__name__}.init must return a dict of parameters, got {type(p).__name__}")
        params.append(p)
        n_in = b.out_size(n_in)
    return params


def chain_forward(
    blocks: Sequence[Block], params: Sequence[dict], x: Array, key: Array | None, train: bool
) -> tuple[Array, list, list]:
    """Run the blocks in order: ``(y, the blocks' new states (None where none), their residuals)``.
    Block ``i`` draws from ``fold_in(key, i)``."""
    states, res = [], []
    for i, (b, p) in enumerate(zip(blocks, params)):
        k = jax.random.fold_in(key, i) if (key is not None and b.random and train) else None
        x, s, r = b.forward(p, x, k, train)
        states.append(s)
        res.append(r)
    return x, states, res


def chain_backward(blocks: Sequence[Block], params: Sequence[dict], res: Sequence[Res], dy: Array) -> tuple[list, Array]:
    """The blocks' backward passes from the last to the first: ``(grads per block, ∂E/∂x)``."""
    grads: list[dict] = [{}] * len(blocks)
    for i in range(len(blocks) - 1, -1, -1):
        grads[i], dy = blocks[i].backward(params[i], res[i], dy)
    return grads, dy


def with_states(params: Sequence[dict], states: Sequence[Any]) -> list[dict]:
    """``params`` with each block's ``"state"`` replaced by its new one (where a block returned one)."""
    out = []
    for p, s in zip(params, states):
        if s is None:
            out.append(p)
        elif "state" in s or "blocks" not in s:  # a plain stateful block
            out.append({**p, "state": s})
        else:  # a residual: its sub-stack's states
            out.append({**p, "blocks": with_states(p["blocks"], s["blocks"])})
    return out


def _tuples(v: Any) -> Any:
    """JSON's lists back as tuples (a block's settings are hashable)."""
    return tuple(_tuples(a) for a in v) if isinstance(v, list) else v


def _from_json(d: Any, blocks: dict[str, Any], activations: Any) -> Block:
    if not isinstance(d, dict) or "block" not in d:
        raise ValueError(f"not a block description: {d!r:.80}")
    d = dict(d)
    name = d.pop("block")
    if d.pop("custom", False):
        if name not in blocks:
            raise ValueError(
                f"the network uses the block {name!r} that you wrote; a spec stores its name, not its code: "
                f"pass blocks={{{name!r}: {name}}}"
            )
        return blocks[name](**{k: _tuples(v) for k, v in d.items()})  # JSON keeps a tuple setting as a list
    if name == "Residual":
        return Residual(tuple(_from_json(b, blocks, activations) for b in d["blocks"]), d.get("projection", "auto"))
    if name == "Activate":
        a = d["activation"]
        act = activations[a["name"]] if a.get("custom") else _act.get(**a)
        return Activate(act)
    cls = BUILTIN.get(name)
    if cls is None:
        raise ValueError(f"unknown block {name!r}; fnn's blocks are {', '.join(BUILTIN)}")
    return cls(**d)


#: fnn's own block classes by name (a network's JSON names them; a block of the user's is marked custom).
BUILTIN: dict[str, type[Block]] = {c.__name__: c for c in (Dense, Activate, Dropout, BatchNorm, LayerNorm, Residual)}


def custom_blocks(blocks: Sequence[Block], n_in: int) -> list[tuple[Block, int]]:
    """The blocks in ``blocks`` (at any depth) that are not fnn's own, each with its input width."""
    out = []
    for b in blocks:
        if not b.builtin:
            out.append((b, n_in))
        out.extend(custom_blocks(b.children(), n_in))
        n_in = b.out_size(n_in)
    return out
