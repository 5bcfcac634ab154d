"""The multilayer perceptron: a static spec, its parameters, and the pure forward pass.

.. math::

    z^{(l)} = W^{(l)} h^{(l-1)} + b^{(l)}, \\qquad h^{(l)} = f^{(l)}(z^{(l)}), \\qquad h^{(0)} = x

``W⁽ˡ⁾`` has shape ``(n_out, n_in)`` as in the seed; a batch of rows goes through as
``x @ W.T + b``. With no hidden layer (``sizes=(n, k)``) the network is the single neuron
``y = f(wᵀx + b)`` (k = 1) or softmax regression (k > 1).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from fnn import _checks
from fnn.core import activations as _act
from fnn.core import init as _init
from fnn.core.layer import SMALL, linear  # noqa: F401  (fnn.core.mlp.linear / SMALL stay importable)

Array = jax.Array
Params = list  # [{"W": (n_out, n_in), "b": (n_out,)}, ...]
ActivationLike = str | _act.Activation


class Cache(NamedTuple):
    """Everything the forward pass computed, layer by layer (l = 1..L).

    Attributes:
      x: the input h⁽⁰⁾, shape (B, n_0) or (n_0,).
      z: pre-activations (z⁽¹⁾, …, z⁽ᴸ⁾), each (B, n_l) or (n_l,).
      h: layer outputs (h⁽¹⁾, …, h⁽ᴸ⁾); ``h[-1]`` is the network output.

    Example:
      >>> net = MLP((2, 3, 1))
      >>> out, cache = net.forward(net.init(jax.random.key(0)), jnp.ones((4, 2)))
      >>> cache.x.shape, [z.shape for z in cache.z], cache.h[-1] is out
      ((4, 2), [(4, 3), (4, 1)], True)
    """

    x: Array
    z: tuple[Array, ...]
    h: tuple[Array, ...]


@dataclasses.dataclass(frozen=True, init=False)
class MLP:
    """A feedforward network spec: layer sizes and activations. Static and hashable, no arrays.

    Args:
      sizes: ``(n_in, n_hidden..., n_out)``, at least two positive ints.
      hidden: one activation for every hidden layer, or a sequence with one per hidden layer.
        A name (``identity, sigmoid, tanh, relu, leaky_relu, elu, softplus, gelu``) or an
        :class:`~fnn.activations.Activation` from ``fnn.activations.get("leaky_relu", slope=0.2)``.
      output: the output activation; the names above or ``softmax``.
      init: weight initialiser, ``auto`` (He before ReLU-like layers, Glorot otherwise),
        ``glorot``, ``he``, ``lecun``, ``normal`` or a full name from :mod:`fnn.init`.
      norm, dropout, residual: the common blocks, in one line: ``norm="batch"`` or ``"layer"`` after each
        hidden layer's affine map, ``dropout=p`` after each hidden activation, ``residual=True`` a skip
        connection around each hidden layer. With any of them the result is that network of blocks, an
        :class:`fnn.Network` (:meth:`fnn.Network.mlp`); with none, this plain MLP.

    Example:
      >>> net = MLP((2, 8, 3), hidden="tanh", output="softmax")
      >>> params = net.init(jax.random.key(0))
      >>> net.apply(params, jnp.ones((5, 2))).shape
      (5, 3)
    """

    sizes: tuple[int, ...]
    hidden: tuple[_act.Activation, ...]
    output: _act.Activation
    init_name: str

    def __new__(
        cls,
        sizes: Sequence[int] = (),
        hidden: Any = "relu",
        output: Any = "identity",
        init: str = "auto",
        *,
        norm: str | None = None,
        dropout: float = 0.0,
        residual: bool = False,
    ) -> Any:
        if (
            (norm is None or norm == "none")
            and (isinstance(dropout, (int, float)) and not isinstance(dropout, bool) and dropout == 0)
            and residual is False
        ):
            return super().__new__(cls)
        # an option of the blocks: the MLP as a network of blocks (fnn.Network.mlp)
        from fnn.core.network import Network  # (a lazy import: network builds on this module)

        return Network.mlp(sizes, hidden, output, init, norm=norm, dropout=dropout, residual=residual)

    def __init__(
        self,
        sizes: Sequence[int],
        hidden: ActivationLike | Sequence[ActivationLike] = "relu",
        output: ActivationLike = "identity",
        init: str = "auto",
        *,
        norm: str | None = None,
        dropout: float = 0.0,
        residual: bool = False,
    ) -> None:
        if isinstance(sizes, (str, bytes)) or not isinstance(sizes, Sequence):
            raise TypeError(f"`sizes` must be a sequence of ints like (2, 8, 1), got {sizes!r}")
        if len(sizes) < 2:
            raise ValueError(f"`sizes` needs at least 2 entries (inputs, outputs), got {tuple(sizes)}")
        for s in sizes:
            if isinstance(s, bool) or not isinstance(s, (int, np.integer)):
                raise TypeError(f"`sizes` must hold ints, got {tuple(sizes)} (entry {s!r})")
            if s <= 0:
                raise ValueError(f"`sizes` entries must be positive, got {tuple(sizes)}")
        sizes = tuple(int(s) for s in sizes)
        n_hidden = len(sizes) - 2
        if isinstance(hidden, (str, _act.Activation)):
            hidden_t = (_activation(hidden, "hidden"),) * n_hidden
        elif isinstance(hidden, Sequence):
            if len(hidden) != n_hidden:
                raise ValueError(f"`hidden` has {len(hidden)} activations but sizes {sizes} has {n_hidden} hidden layers")
            hidden_t = tuple(_activation(a, f"hidden[{i}]") for i, a in enumerate(hidden))
        else:
            raise TypeError(f"`hidden` must be an activation name or a sequence of them, got {hidden!r}")
        for a in hidden_t:
            if not a.elementwise:
                raise ValueError(
                    f"`hidden` activation {a.name!r} is only valid for the output layer; "
                    f"hidden layers take {', '.join(_act.HIDDEN_NAMES)}"
                )
        output_a = _activation(output, "output")
        try:
            _init.resolve(init, "identity")  # validates the name
        except ValueError as e:
            raise ValueError(f"`init`: {e}") from None
        object.__setattr__(self, "sizes", sizes)
        object.__setattr__(self, "hidden", hidden_t)
        object.__setattr__(self, "output", output_a)
        object.__setattr__(self, "init_name", init)

    def __repr__(self) -> str:
        names = [a.name if not a.params else f"{a.name}{dict(a.params)}" for a in self.hidden]
        hidden = names[0] if names and len(set(names)) == 1 else tuple(names)
        return f"MLP(sizes={self.sizes}, hidden={hidden!r}, output={self.output.name!r}, init={self.init_name!r})"

    # ---- static facts -------------------------------------------------------------------
    random = False  # (a network of blocks with dropout draws random numbers in training; an MLP never does)
    stateful = False  # (nor does it keep running statistics)
    batch_norm = False

    @property
    def num_layers(self) -> int:
        """L, the number of weight layers (hidden layers + 1)."""
        return len(self.sizes) - 1

    @property
    def activations(self) -> tuple[_act.Activation, ...]:
        """The hidden activations followed by the output activation, f⁽¹⁾ … f⁽ᴸ⁾."""
        return (*self.hidden, self.output)

    @property
    def shapes(self) -> list[dict[str, tuple[int, ...]]]:
        """The shape of every parameter leaf, in the layout of ``init``'s result."""
        return [{"W": (o, i), "b": (o,)} for i, o in zip(self.sizes[:-1], self.sizes[1:])]

    @property
    def num_params(self) -> int:
        """Σ_l n_out·n_in + n_out."""
        return sum(o * i + o for i, o in zip(self.sizes[:-1], self.sizes[1:]))

    # ---- parameters ---------------------------------------------------------------------
    def init(self, key: Array, dtype: Any = None) -> Params:
        """Fresh parameters ``[{"W": (n_out, n_in), "b": (n_out,)}, ...]``; biases are zero.

        Args:
          key: a ``jax.random.key`` (or legacy uint32 PRNGKey).
          dtype: a float dtype; default float32, or float64 when x64 is enabled.

        Example:
          >>> params = MLP((2, 4, 1)).init(jax.random.key(0))
          >>> [(p["W"].shape, p["b"].shape) for p in params], params[0]["W"].dtype.name, params[0]["b"].tolist()
          ([((4, 2), (4,)), ((1, 4), (1,))], 'float32', [0.0, 0.0, 0.0, 0.0])
        """
        names, dtype_name = self._init_spec(key, dtype)
        return _init_params(self.sizes, names, key, dtype_name)

    def _init_spec(self, key: Array, dtype: Any, n: int = 1) -> tuple[tuple[str, ...], str]:
        """The initialiser of every layer and the dtype's name, after checking ``key``, ``dtype`` and that
        ``n`` networks' parameters fit in the device's memory."""
        _checks.check_key(key, "key")
        try:
            if hasattr(dtype, "shape") and not isinstance(dtype, (type, np.dtype)):  # an array, whose dtype jnp.dtype would take
                raise TypeError
            dtype = jnp.dtype(jnp.result_type(float) if dtype is None else dtype)
        except TypeError:  # not a dtype at all ("bogus", 5)
            raise TypeError(f"`dtype` must be a float dtype such as jnp.float32, got {dtype!r:.40}") from None
        if not jnp.issubdtype(dtype, jnp.floating):
            raise TypeError(f"`dtype` must be a float dtype, got {dtype}")
        _checks.check_memory(self.num_params * n, dtype.itemsize, f"the parameters of {n} network(s) with `sizes` {self.sizes}")
        return tuple(_init.resolve(self.init_name, a.name) for a in self.activations), dtype.name

    def init_stacked(self, key: Array, n: int, dtype: Any = None) -> Params:
        """Fresh parameters of ``n`` networks, stacked over a leading axis (``W``: (n, n_out, n_in)), as
        :func:`fnn.fit_many` takes and returns them: network ``i`` is ``net.init(split(key, n)[i])``, bitwise.

        ``fit_many(..., key=key)`` without ``params`` starts from ``net.init_stacked(split(key)[0], n)``.
        One compiled program per (sizes, initialisers, n, dtype), the networks drawn one after another in
        a loop whose body is :meth:`init`'s program (vmapping the draws makes a program that takes longer
        to compile than the loop takes to run); networks that differ only in activations share it.

        Args:
          key: a ``jax.random`` key.
          n: the number of networks, ≥ 1.
          dtype: a float dtype (default float32, or float64 with x64 on).

        >>> net = MLP((2, 3, 1))
        >>> ps = net.init_stacked(jax.random.key(0), 4)
        >>> ps[0]["W"].shape, bool(jnp.array_equal(ps[0]["W"][2], net.init(jax.random.split(jax.random.key(0), 4)[2])[0]["W"]))
        ((4, 3, 2), True)
        """
        n = _checks.check_int(n, "n", 1)
        names, dtype_name = self._init_spec(key, dtype, n)
        return _init_split(self.sizes, names, key, n, dtype_name)

    # ---- forward --------------------------------------------------------------------------
    def forward(self, params: Params, x: ArrayLike) -> tuple[Array, Cache]:
        """The forward pass, keeping every layer's z and h for the backward pass.

        Args:
          params: from :meth:`init`.
          x: a batch (B, n_in) or one example (n_in,).

        Returns:
          ``(output, cache)``: output of shape (B, n_out) or (n_out,), and the :class:`Cache`.

        Example:
          >>> net = MLP((2, 4, 1))
          >>> out, cache = net.forward(net.init(jax.random.key(0)), jnp.ones((3, 2)))
          >>> out.shape, [h.shape for h in cache.h]
          ((3, 1), [(3, 4), (3, 1)])
        """
        _checks.check_params(self, params)
        return self.propagate(params, _checks.check_x(self, x))

    def propagate(self, params: Params, x: Array) -> tuple[Array, Cache]:
        """:meth:`forward` without its argument checks, for arrays an entry point has checked already
        (:func:`fnn.backprop.prepare_batch` does, for every ``(params, x, y)`` entry point).

        >>> net = MLP((2, 3))
        >>> net.propagate(net.init(jax.random.key(0)), jnp.ones((1, 2)))[0].shape
        (1, 3)
        """
        h, zs, hs = x, [], []
        for layer, act in zip(params, self.activations):
            z = linear(layer["W"], layer["b"], h)  # (B, n_out)
            h = act.f(z)
            zs.append(z)
            hs.append(h)
        return h, Cache(x, tuple(zs), tuple(hs))

    def apply(self, params: Params, x: ArrayLike) -> Array:
        """The network output f⁽ᴸ⁾(W⁽ᴸ⁾ … f⁽¹⁾(W⁽¹⁾x + b⁽¹⁾) … + b⁽ᴸ⁾).

        Args:
          params: from :meth:`init`.
          x: a batch (B, n_in) or one example (n_in,).

        Returns:
          shape (B, n_out) or (n_out,).

        Example:
          >>> net = MLP((2, 3), hidden=(), output="softmax")
          >>> y = net.apply(net.init(jax.random.key(0)), jnp.ones(2))  # one example
          >>> y.shape, round(float(y.sum()), 4)
          ((3,), 1.0)
        """
        return self.forward(params, x)[0]

    def logits(self, params: Params, x: ArrayLike) -> Array:
        """z⁽ᴸ⁾, the output layer's pre-activation (what cross_entropy and bce consume).

        >>> net = MLP((2, 1), hidden=(), output="sigmoid")
        >>> params, x = net.init(jax.random.key(0)), jnp.ones((5, 2))
        >>> net.logits(params, x).shape, bool(jnp.allclose(jax.nn.sigmoid(net.logits(params, x)), net.apply(params, x)))
        ((5, 1), True)
        """
        return self.forward(params, x)[1].z[-1]

    # ---- serialisation ----------------------------------------------------------------------
    def to_json(self) -> dict:
        """A JSON-friendly dict; ``MLP.from_json(net.to_json()) == net``.

        >>> net = MLP((2, 3, 1), hidden="tanh", output="sigmoid")
        >>> net.to_json()
        {'sizes': [2, 3, 1], 'hidden': [{'name': 'tanh'}], 'output': {'name': 'sigmoid'}, 'init': 'auto'}
        >>> MLP.from_json(net.to_json()) == net
        True
        """
        return {
            "sizes": list(self.sizes),
            "hidden": [a.to_json() for a in self.hidden],
            "output": self.output.to_json(),
            "init": self.init_name,
        }

    @classmethod
    def from_json(cls, d: dict, activations: Mapping[str, _act.Activation] | None = None) -> MLP:
        """Rebuild a spec from :meth:`to_json`'s dict.

        Args:
          d: the dict.
          activations: the activations you built, by name, for entries marked ``custom`` (a spec
            records an activation's name, not its code).

        Raises:
          ValueError: not a spec, or a custom activation that ``activations`` does not supply.
        """
        if not isinstance(d, Mapping):
            raise TypeError(f"`d` must be the dict of MLP.to_json(), got {type(d).__name__}: {d!r:.60}")
        if activations is not None and not isinstance(activations, Mapping):
            raise TypeError(f"`activations` must map names to fnn.Activation objects, got {type(activations).__name__}")
        supplied = dict(activations or {})
        missing = sorted(set(custom_activations(d)) - set(supplied))
        if missing:
            raise ValueError(
                f"the network uses activation(s) {missing} that you built; a spec stores their names, not their "
                f"code: pass activations={{{', '.join(f'{n!r}: <fnn.Activation>' for n in missing)}}}"
            )
        for name, a in supplied.items():
            if not isinstance(a, _act.Activation):
                raise TypeError(f"`activations[{name!r}]` must be an fnn.Activation, got {type(a).__name__}: {a!r}")

        def build(a: dict) -> _act.Activation:
            return supplied[a["name"]] if a.get("custom") else _act.get(**a)

        try:
            return cls(d["sizes"], hidden=[build(a) for a in d["hidden"]], output=build(d["output"]), init=d["init"])
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise ValueError(f"`d` is not an fnn MLP spec: {d!r:.200} ({e})") from None


def _activation(a: Any, name: str) -> _act.Activation:
    """``fnn.activations.get(a)``, its errors naming the argument that carried ``a``."""
    try:
        return _act.get(a)
    except (TypeError, ValueError) as e:
        raise type(e)(f"`{name}`: {e}") from None


def custom_activations(spec: Any) -> list[str]:
    """Names of the activations marked ``custom`` (built by the user) in a :meth:`MLP.to_json` dict.

    >>> custom_activations({"hidden": [{"name": "swish", "custom": True}], "output": {"name": "identity"}})
    ['swish']
    """
    try:
        entries = [*spec["hidden"], spec["output"]]
        return sorted({a["name"] for a in entries if isinstance(a, dict) and a.get("custom")})
    except (KeyError, TypeError):
        return []


def fold_affine(net: MLP, params: Params) -> tuple[Array, Array]:
    """Fold a network whose every activation is the identity into one affine map (seed §3).

    .. math::  W_2(W_1 x + b_1) + b_2 = (W_2 W_1) x + (W_2 b_1 + b_2)

    Returns:
      ``(W, b)`` with ``W`` of shape (n_out, n_in) and ``b`` of shape (n_out,), such that
      ``net.apply(params, x) == x @ W.T + b`` up to rounding.

    >>> net = MLP((3, 5, 5, 2), hidden="identity")
    >>> W, b = fold_affine(net, net.init(jax.random.key(0)))
    >>> W.shape, b.shape
    ((2, 3), (2,))
    """
    _checks.check_net(net, mlp_only=True)
    bad = [a.name for a in net.activations if a.name != "identity"]
    if bad:
        raise ValueError(f"fold_affine needs identity activations everywhere, but `net` {net!r} uses {bad}")
    _checks.check_params(net, params)
    W, b = params[0]["W"], params[0]["b"]
    for layer in params[1:]:
        W, b = layer["W"] @ W, layer["W"] @ b + layer["b"]
    return W, b


@functools.partial(jax.jit, static_argnums=(0, 1, 3))
def _init_params(sizes: tuple[int, ...], initializers: tuple[str, ...], key: Array, dtype: str) -> Params:
    """One compiled program per (sizes, initialisers, dtype) draws every layer. Eagerly, each layer
    shape would compile its own random-number kernels; keyed on the spec, networks differing only
    in activations would compile again for identical draws."""
    keys = jax.random.split(key, len(sizes) - 1)
    params = []
    for k, n_in, n_out, name in zip(keys, sizes[:-1], sizes[1:], initializers):
        params.append({"W": _init.INITIALIZERS[name](k, (n_out, n_in), dtype), "b": jnp.zeros((n_out,), dtype)})
    return params


@functools.partial(jax.jit, static_argnums=(0, 1, 3, 4))
def _init_split(sizes: tuple[int, ...], initializers: tuple[str, ...], key: Array, n: int, dtype: str) -> Params:
    draw = functools.partial(_init_params.__wrapped__, sizes, initializers, dtype=dtype)  # type: ignore[attr-defined]
    return jax.lax.map(lambda k: draw(key=k), jax.random.split(key, n))
