"""Activation functions f(z) with their hand-derived derivatives f'(z) beside them.

Every elementwise activation comes as a pair ``name(z)`` / ``name_grad(z, h=None)``. The
derivative is written out by hand (never ``jax.grad`` of the function); passing ``h = f(z)``
lets it reuse the forward output where that is cheaper (``sigmoid' = h (1 - h)``,
``tanh' = 1 - h²``), which is what the backward pass does.

Conventions at the kinks: ``relu'(0) = 0``, ``leaky_relu'(0) = slope``, ``elu'(0) = alpha``
(the left-hand derivative in each case). The functions are written with ``jnp.where`` so that
``jax.grad`` follows the same convention and manual and automatic gradients agree exactly.

``softmax`` is not elementwise: it is an output activation only, its Jacobian
``diag(s) - s sᵀ`` is applied through :func:`softmax_jvp`. ``exp`` (the mean of a Poisson count,
``loss="poisson"``) is listed among the output activations only: as a hidden one it overflows easily.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

Array = jax.Array

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_GELU_C = 0.044715


def identity(z: ArrayLike) -> Array:
    """f(z) = z.

    >>> float(identity(2.0))
    2.0
    """
    return jnp.asarray(z)


def identity_grad(z: ArrayLike, h: ArrayLike | None = None) -> Array:
    """f'(z) = 1.

    >>> identity_grad(jnp.array([-3.0, 5.0])).tolist()
    [1.0, 1.0]
    """
    return jnp.ones_like(jnp.asarray(z))


def sigmoid(z: ArrayLike) -> Array:
    """σ(z) = 1 / (1 + e^{-z}), finite for any float input (no overflow of e^{-z}).

    >>> float(sigmoid(0.0))
    0.5
    """
    # lax.logistic never evaluates e^{-z} where it would overflow.
    return jax.lax.logistic(jnp.asarray(z))


def sigmoid_grad(z: ArrayLike, h: ArrayLike | None = None) -> Array:
    """σ'(z) = σ(z) (1 - σ(z)).

    >>> float(sigmoid_grad(0.0))
    0.25
    """
    h = sigmoid(z) if h is None else jnp.asarray(h)
    return h * (1.0 - h)


def tanh(z: ArrayLike) -> Array:
    """tanh(z) = (e^z - e^{-z}) / (e^z + e^{-z}).

    >>> float(tanh(0.0))
    0.0
    """
    return jnp.tanh(z)


def tanh_grad(z: ArrayLike, h: ArrayLike | None = None) -> Array:
    """tanh'(z) = 1 - tanh(z)², evaluated as (1 - h)(1 + h), which keeps its relative accuracy
    where tanh saturates (1 - h² cancels there).

    >>> float(tanh_grad(0.0))
    1.0
    """
    h = jnp.tanh(z) if h is None else jnp.asarray(h)
    return (1.0 - h) * (1.0 + h)


def relu(z: ArrayLike) -> Array:
    """ReLU(z) = max(0, z).

    >>> relu(jnp.array([-1.0, 2.0])).tolist()
    [0.0, 2.0]
    """
    z = jnp.asarray(z)
    return jnp.where(z <= 0, jnp.zeros_like(z), z)  # z <= 0 is False for NaN: NaN propagates, as in jax.nn.relu


def relu_grad(z: ArrayLike, h: ArrayLike | None = None) -> Array:
    """ReLU'(z) = 1 if z > 0 else 0 (so ReLU'(0) = 0).

    >>> relu_grad(jnp.array([-1.0, 0.0, 2.0])).tolist()
    [0.0, 0.0, 1.0]
    """
    z = jnp.asarray(z)
    return jnp.where(z <= 0, jnp.zeros_like(z), jnp.ones_like(z))  # as jax.grad of relu: 1 at NaN, where relu passes it


def leaky_relu(z: ArrayLike, slope: float = 0.01) -> Array:
    """LeakyReLU(z) = z if z > 0 else slope·z.

    >>> leaky_relu(jnp.array([-1.0, 2.0]), slope=0.5).tolist()
    [-0.5, 2.0]
    """
    z = jnp.asarray(z)
    return jnp.where(z > 0, z, slope * z)


def leaky_relu_grad(z: ArrayLike, h: ArrayLike | None = None, slope: float = 0.01) -> Array:
    """LeakyReLU'(z) = 1 if z > 0 else slope (so LeakyReLU'(0) = slope).

    >>> leaky_relu_grad(jnp.array([-1.0, 0.0, 2.0]), slope=0.5).tolist()
    [0.5, 0.5, 1.0]
    """
    z = jnp.asarray(z)
    return jnp.where(z > 0, jnp.ones_like(z), jnp.full_like(z, slope))


def elu(z: ArrayLike, alpha: float = 1.0) -> Array:
    """ELU(z) = z if z > 0 else alpha·(e^z - 1).

    >>> round(float(elu(-1.0)), 4)
    -0.6321
    """
    z = jnp.asarray(z)
    # expm1 is accurate near 0; feeding it 0 where z > 0 keeps the unused branch (and its
    # gradient) finite for large z. (jnp.minimum would halve the gradient at z = 0.)
    return jnp.where(z > 0, z, alpha * jnp.expm1(jnp.where(z > 0, jnp.zeros_like(z), z)))


def elu_grad(z: ArrayLike, h: ArrayLike | None = None, alpha: float = 1.0) -> Array:
    """ELU'(z) = 1 if z > 0 else alpha·e^z (so ELU'(0) = alpha).

    ``h`` is accepted for a uniform signature but not used: ``ELU(z) + alpha`` equals
    ``alpha·e^z`` in exact arithmetic, yet cancels catastrophically for z << 0.

    >>> round(float(elu_grad(-1.0)), 4), float(elu_grad(0.0, alpha=0.5)), float(elu_grad(2.0))
    (0.3679, 0.5, 1.0)
    """
    z = jnp.asarray(z)
    neg = alpha * jnp.exp(jnp.where(z > 0, jnp.zeros_like(z), z))
    return jnp.where(z > 0, jnp.ones_like(z), neg)


def softplus(z: ArrayLike) -> Array:
    """softplus(z) = log(1 + e^z) = logaddexp(z, 0), which never overflows.

    >>> round(float(softplus(0.0)), 4)
    0.6931
    """
    z = jnp.asarray(z)
    return jnp.logaddexp(z, jnp.zeros_like(z))


def softplus_grad(z: ArrayLike, h: ArrayLike | None = None) -> Array:
    """softplus'(z) = σ(z).

    >>> float(softplus_grad(0.0))
    0.5
    """
    return sigmoid(z)


def exp(z: ArrayLike) -> Array:
    """exp(z): a Poisson mean from its log (an output activation).

    >>> float(exp(0.0))
    1.0
    """
    return jnp.exp(jnp.asarray(z))


def exp_grad(z: ArrayLike, h: ArrayLike | None = None) -> Array:
    """exp'(z) = exp(z) = h: the forward output itself.

    >>> float(exp_grad(0.0))
    1.0
    """
    return jnp.exp(jnp.asarray(z)) if h is None else jnp.asarray(h)


def gelu(z: ArrayLike) -> Array:
    """GELU, tanh form: ½ z (1 + tanh(√(2/π) (z + 0.044715 z³))).

    >>> float(gelu(0.0))
    0.0
    """
    z = jnp.asarray(z)
    return 0.5 * z * (1.0 + jnp.tanh(_SQRT_2_OVER_PI * (z + _GELU_C * z**3)))


def gelu_grad(z: ArrayLike, h: ArrayLike | None = None) -> Array:
    """GELU'(z) = ½ (1 + t) + ½ z (1 - t²) √(2/π) (1 + 3·0.044715 z²), t = tanh(√(2/π)(z + 0.044715 z³)).

    >>> float(gelu_grad(0.0))
    0.5
    """
    z = jnp.asarray(z)
    t = jnp.tanh(_SQRT_2_OVER_PI * (z + _GELU_C * z**3))
    return 0.5 * (1.0 + t) + 0.5 * z * (1.0 - t * t) * _SQRT_2_OVER_PI * (1.0 + 3.0 * _GELU_C * z * z)


def softmax(z: ArrayLike, axis: int = -1) -> Array:
    """softmax(z)_k = e^{z_k} / Σ_j e^{z_j}, shifted by max(z) so it never overflows.

    >>> softmax(jnp.array([0.0, 0.0])).tolist()
    [0.5, 0.5]
    """
    z = jnp.asarray(z)
    e = jnp.exp(z - jax.lax.stop_gradient(jnp.max(z, axis=axis, keepdims=True)))
    return e / jnp.sum(e, axis=axis, keepdims=True)


def softmax_jvp(s: ArrayLike, g: ArrayLike) -> Array:
    """Apply the softmax Jacobian to ``g``: (diag(s) - s sᵀ) g = s ⊙ (g - ⟨g, s⟩), rowwise.

    Args:
      s: softmax output, shape (..., K).
      g: vector(s) to multiply, shape (..., K). The Jacobian is symmetric, so this is also
        the vector-Jacobian product used by the backward pass.

    Example:
      >>> softmax_jvp(jnp.array([0.5, 0.5]), jnp.array([1.0, 0.0])).tolist()
      [0.25, -0.25]
    """
    s, g = jnp.asarray(s), jnp.asarray(g)
    return s * (g - jnp.sum(g * s, axis=-1, keepdims=True))


@dataclasses.dataclass(frozen=True)
class Activation:
    """An activation ``f(z)`` and its hand-derived derivative ``df(z, h)``, side by side.

    Hashable, so an ``Activation`` can sit inside a static network spec (a ``jit`` cache key).
    Equality covers the functions too: :func:`~fnn.core.activations.get` returns the same object for the same name and
    parameters, while one you build, even named ``"tanh"``, never collides with the built-in tanh
    (and so never reuses its compiled code).

    Build your own and use it wherever a name is accepted (``MLP(hidden=...)``, ``output=...``);
    fnn checks ``df`` against ``jax.grad`` of ``f`` and finite differences once, the first time a
    network uses it, and refuses it (a ValueError) when both disagree with it, or when ``f`` is not
    elementwise; ``fnn.check.on_first_use("warn" | "off")`` turns the refusal of a wrong derivative
    into a warning, or the check off (:func:`fnn.check_derivation` gives the full report).

    Attributes:
      name: the name, e.g. ``"leaky_relu"`` (checkpoints record it).
      f: ``z -> h``, elementwise.
      df: ``(z, h) -> f'(z)`` elementwise, derived by hand; ``h = f(z)`` is passed so that the
        derivative can reuse it (``tanh' = 1 - h²``). ``None`` only for the built-in softmax, which
        is not elementwise.
      params: the activation's parameters as sorted ``(key, value)`` pairs, e.g. ``(("slope", 0.01),)``.
      kinks: True when f' jumps at z = 0 (relu, leaky_relu): finite differences can straddle it.

    Example:
      >>> act = get("tanh")
      >>> float(act(0.0)), float(act.df(0.0, act(0.0))), act.elementwise, get("softmax").elementwise
      (0.0, 1.0, True, False)
      >>> swish = Activation("swish", lambda z: z * sigmoid(z), lambda z, h: sigmoid(z) * (1 + z * (1 - sigmoid(z))))
      >>> round(float(swish.df(1.0, swish(1.0))), 4), swish.builtin
      (0.9277, False)
    """

    name: str
    f: Callable[[Array], Array] = dataclasses.field(repr=False)
    df: Callable[[Array, Array], Array] | None = dataclasses.field(default=None, repr=False)
    params: tuple = ()
    kinks: bool = dataclasses.field(default=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise TypeError(f"Activation `name` must be a non-empty str, got {self.name!r}")
        if not callable(self.f):
            raise TypeError(f"Activation `f` must be a function z -> f(z), got {self.f!r}")
        if self.df is None and self.f is not softmax:
            raise TypeError(f"Activation {self.name!r} needs `df`, its derivative (z, h) -> f'(z) derived by hand")
        if self.df is not None and not callable(self.df):
            raise TypeError(f"Activation `df` must be a function (z, h) -> f'(z), got {self.df!r}")
        params = tuple(sorted(self.params.items())) if isinstance(self.params, dict) else self.params
        if isinstance(params, list):
            params = tuple(tuple(p) if isinstance(p, list) else p for p in params)
        try:
            ok = isinstance(params, tuple) and all(isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str) for p in params)
            hash(params)
        except TypeError:  # an unhashable value
            ok = False
        if not ok:
            raise TypeError(
                f"Activation `params` must be (name, value) pairs with str names and hashable values, got {self.params!r:.80}"
            )
        object.__setattr__(self, "params", params)  # a dict or a list given: the same pairs, as a tuple

    @property
    def elementwise(self) -> bool:
        """False only for softmax."""
        return self.df is not None

    @property
    def builtin(self) -> bool:
        """True for the registered activations (``get(name, ...)``), False for one you built."""
        return self.name in _REGISTRY and _build(self.name, self.params) is self

    def __call__(self, z: ArrayLike) -> Array:
        return self.f(jnp.asarray(z))

    def to_json(self) -> dict:
        """A JSON-friendly description, the inverse of ``get(**d)``; ``custom`` marks one you built.

        >>> d = get("elu", alpha=0.5).to_json()
        >>> d, get(**d) == get("elu", alpha=0.5)
        ({'name': 'elu', 'alpha': 0.5}, True)
        """
        d = {"name": self.name, **dict(self.params)}
        return d if self.builtin else {**d, "custom": True}


# name -> (f, f', default parameters, has a kink)
_REGISTRY: dict[str, tuple[Callable, Callable | None, dict, bool]] = {
    "identity": (identity, identity_grad, {}, False),
    "sigmoid": (sigmoid, sigmoid_grad, {}, False),
    "tanh": (tanh, tanh_grad, {}, False),
    "relu": (relu, relu_grad, {}, True),
    "leaky_relu": (leaky_relu, leaky_relu_grad, {"slope": 0.01}, True),
    "elu": (elu, elu_grad, {"alpha": 1.0}, False),
    "softplus": (softplus, softplus_grad, {}, False),
    "gelu": (gelu, gelu_grad, {}, False),
    "softmax": (softmax, None, {}, False),
    "exp": (exp, exp_grad, {}, False),
}

_OUTPUT_ONLY = ("softmax", "exp")
#: The names a hidden layer's activation may take (every registered activation but the output-only ones).
HIDDEN_NAMES: tuple[str, ...] = tuple(n for n in _REGISTRY if n not in _OUTPUT_ONLY)
#: The names an output activation may take (every registered activation, ``softmax`` and ``exp`` included).
OUTPUT_NAMES: tuple[str, ...] = tuple(_REGISTRY)


def get(name: str | Activation, **params: float) -> Activation:
    """Look up an activation by name, with optional parameters (``slope``, ``alpha``).

    Args:
      name: one of ``identity, sigmoid, tanh, relu, leaky_relu, elu, softplus, gelu, softmax, exp``,
        or an :class:`Activation` (returned as is).
      **params: ``slope`` for leaky_relu (default 0.01), ``alpha`` for elu (default 1.0).

    Raises:
      ValueError: unknown name or parameter.

    >>> get("leaky_relu", slope=0.2)
    Activation(name='leaky_relu', params=(('slope', 0.2),))
    """
    if isinstance(name, Activation):
        if params:
            raise ValueError(f"parameters {sorted(params)} given for an Activation object; use get({name.name!r}, ...)")
        if not name.builtin:
            # checks df once per activation, as fnn.check.on_first_use says (a lazy import: it uses this module)
            from fnn.check.first_use import verify_once

            verify_once(name)
        return name
    if not isinstance(name, str):
        raise TypeError(f"activation must be a name (str) or an Activation, got {type(name).__name__}: {name!r}")
    if name not in _REGISTRY:
        raise ValueError(f"unknown activation {name!r}; valid names are {', '.join(OUTPUT_NAMES)}")
    defaults = _REGISTRY[name][2]
    unknown = set(params) - set(defaults)
    if unknown:
        raise ValueError(f"activation {name!r} takes parameters {sorted(defaults) or 'none'}, got {sorted(unknown)}")
    values = {**defaults, **params}
    for key, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise TypeError(f"activation {name!r} parameter `{key}` must be a finite number, got {value!r}")
        values[key] = float(value)
    return _build(name, tuple(sorted(values.items())))


@functools.cache
def _build(name: str, items: tuple) -> Activation:
    """One Activation object per (name, parameters), so equal specs share their functions."""
    f, df, _, kinks = _REGISTRY[name]
    if df is None:  # softmax: not elementwise, no parameters
        return Activation(name, f, None, items, kinks)
    kw = dict(items)
    return Activation(name, functools.partial(f, **kw), lambda z, h: df(z, h, **kw), items, kinks)
