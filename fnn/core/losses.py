"""Losses E and their hand-derived derivatives, side by side: a :class:`Loss` is a record of both.

Every loss is a sum over the K outputs of one example, averaged over the batch:

.. math::

    E_{mse} = \\tfrac12 \\sum_k (\\hat y_k - d_k)^2 \\qquad
    E_{ce} = -\\sum_k y_k \\log \\mathrm{softmax}(z)_k \\qquad
    E_{bce} = \\sum_k \\mathrm{softplus}(z_k) - y_k z_k \\qquad
    E_{poisson} = \\sum_k e^{z_k} - y_k z_k + y_k \\log y_k - y_k

(poisson: half the Poisson deviance ``Σ_k y_k log(y_k/ŷ_k) − y_k + ŷ_k`` of an exp output ``ŷ = e^z``,
scikit-learn's ``MLPRegressor(loss="poisson")``; targets are counts or rates, ≥ 0).

A loss is written on the network's output ``ŷ = f(z_L)`` (mse) or on its logits ``z_L``
(cross_entropy, bce, poisson), and carries its hand-derived gradient with respect to that argument. The
output error ``δ_L = ∂E/∂z_L`` of one example (divide by the batch size B for the batch mean) is then

- on the logits, the gradient itself: softmax + cross_entropy gives ``δ_L = (Σ_k y_k) ŷ - y``
  (``ŷ - y`` for rows that sum to 1: class indices, one-hot, soft and label-smoothed rows; rows with
  another sum, unnormalised weights or all-zero rows that mask an example out, get their exact
  gradient); sigmoid + bce gives ``δ_L = ŷ - y``; exp + poisson gives ``δ_L = e^z - y = ŷ - y``;
- on the output, the chain rule through the output activation: ``δ_L = ∂E/∂ŷ ⊙ f'(z_L)``, for mse
  ``(ŷ - d) ⊙ f'(z_L)``; a softmax output applies its Jacobian: ``ŷ ⊙ (g - ⟨g, ŷ⟩)``.

cross_entropy and bce are computed from the logits (log-sum-exp / softplus), never as ``log(ŷ)``,
so they stay finite for logits of ±1e4 and for probabilities that round to 0 or 1.

A loss of your own is a :class:`Loss` built the same way; :func:`fnn.check_derivation` verifies its
gradient against ``jax.grad`` and finite differences, and every entry point (``fit``, the manual
backward pass, ``compare_gradients``, ...) takes it where it takes a name.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from fnn.core import activations as _act
from fnn.core.targets import TARGET_FORMS, targets

Array = jax.Array

#: What a loss is computed on: the network's ``output`` ŷ, or its last pre-activation, the ``logits`` z_L.
ON = ("output", "logits")


@dataclasses.dataclass(frozen=True)
class Loss:
    """A loss ``E`` and its hand-derived gradient, for one example; the batch mean is fnn's.

    Hashable (a ``jit`` cache key, like :class:`~fnn.activations.Activation`): the built-ins are
    single objects, and a loss you build compares equal only to itself.

    Attributes:
      name: how messages and reports name it.
      fn: ``(u, y) -> E``, one value per example: sum over the last (output) axis, keep the batch
        axes. ``u`` is ``ŷ = f(z_L)`` when ``on="output"``, the logits ``z_L`` when ``on="logits"``.
      grad: ``(u, y) -> ∂E/∂u`` of one example (the shape of ``u``), derived by hand.
      on: ``"output"`` (fnn applies the chain rule through the output activation) or ``"logits"``
        (``grad`` is δ_L itself; use it for losses fused with their output activation).
      outputs: the output activations the loss is defined for (names), or None for any.
      targets: the target forms accepted, as :func:`targets` converts them: ``"real"`` (targets of the
        output's shape; integer class indices become one-hot when there are several outputs; a
        single output takes targets without the output axis), ``"classes"`` (integer class indices
        or non-negative rows) or ``"binary"`` (values in [0, 1]). It also says how accuracy is read:
        argmax for classes (and real targets given as class indices), a ½ threshold for binary.
      grad_y: ``(u, y) -> ∂E/∂y`` of one example, for float targets under ``jax.grad`` of
        :func:`fnn.with_manual_vjp`; None takes ``jax.grad`` of ``fn`` for it.

    Example (the Huber loss, quadratic within ``1`` of the target and linear beyond):
      >>> def huber(h, y):
      ...     r = jnp.abs(h - y)
      ...     return jnp.sum(jnp.where(r <= 1.0, 0.5 * r**2, r - 0.5), axis=-1)
      >>> def huber_grad(h, y):
      ...     return jnp.clip(h - y, -1.0, 1.0)
      >>> loss = Loss("huber", huber, huber_grad)
      >>> float(value(loss, jnp.zeros(2), jnp.array([0.5, 3.0]), jnp.zeros(2)))
      2.625
    """

    name: str
    fn: Callable[[Array, Array], Array] = dataclasses.field(repr=False)
    grad: Callable[[Array, Array], Array] = dataclasses.field(repr=False)
    on: str = "output"
    outputs: tuple[str, ...] | None = None
    targets: str = "real"
    grad_y: Callable[[Array, Array], Array] | None = dataclasses.field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise TypeError(f"Loss `name` must be a non-empty str, got {self.name!r}")
        for field in ("fn", "grad"):
            if not callable(getattr(self, field)):
                raise TypeError(f"Loss `{field}` must be a function (u, y) -> array, got {getattr(self, field)!r}")
        if self.grad_y is not None and not callable(self.grad_y):
            raise TypeError(f"Loss `grad_y` must be a function (u, y) -> ∂E/∂y or None, got {self.grad_y!r}")
        if self.on not in ON:
            raise ValueError(f"Loss `on` must be one of {ON}, got {self.on!r}")
        if self.targets not in TARGET_FORMS:
            raise ValueError(f"Loss `targets` must be one of {TARGET_FORMS}, got {self.targets!r}")
        if self.outputs is not None:
            if not isinstance(self.outputs, (str, tuple, list)):
                raise TypeError(f"Loss `outputs` must be activation names or None, got {self.outputs!r}")
            outputs = (self.outputs,) if isinstance(self.outputs, str) else tuple(self.outputs)
            if not all(isinstance(o, str) for o in outputs):
                raise TypeError(f"Loss `outputs` must be activation names or None, got {self.outputs!r}")
            object.__setattr__(self, "outputs", outputs)

    @property
    def builtin(self) -> bool:
        """True for the registered mse, cross_entropy, bce and poisson."""
        return LOSSES.get(self.name) is self

    def per_example(self, z: Array, h: Array, y: Array) -> Array:
        """E of each example (shape of the batch axes)."""
        return self.fn(z if self.on == "logits" else h, y)

    def output_error(self, output: _act.Activation, z: Array, h: Array, y: Array) -> Array:
        """δ_L = ∂E/∂z_L of each example: the gradient, chained through the output activation
        when the loss is written on its output."""
        if self.on == "logits":
            return self.grad(z, y)
        g = self.grad(h, y)
        return _act.softmax_jvp(h, g) if output.df is None else g * output.df(z, h)

    def target_grad(self, z: Array, h: Array, y: Array) -> Array:
        """∂E/∂y of each example (float targets)."""
        u = z if self.on == "logits" else h
        if self.grad_y is not None:
            return self.grad_y(u, y)
        return jax.grad(lambda t: jnp.sum(self.fn(u, t)))(y)


# ---- the built-in losses: each E next to its hand-derived gradient --------------------------------


def _mse_fn(h: Array, d: Array) -> Array:
    """E = ½ Σ_k (ŷ_k − d_k)²."""
    r = h - d
    return 0.5 * jnp.sum(r * r, axis=-1)


def _mse_grad(h: Array, d: Array) -> Array:
    """∂E/∂ŷ = ŷ − d (δ_L = (ŷ − d) ⊙ f′(z_L) by the chain rule)."""
    return h - d


def _ce_fn(z: Array, y: Array) -> Array:
    """E = −Σ_k y_k log softmax(z)_k."""
    return -jnp.sum(y * log_softmax(z), axis=-1)


def _ce_grad(z: Array, y: Array) -> Array:
    """δ_L = ∂E/∂z = (Σ_k y_k) softmax(z) − y: E = −Σ_k y_k (z_k − logsumexp z)."""
    return jnp.sum(y, axis=-1, keepdims=True) * _act.softmax(z) - y


def _bce_fn(z: Array, y: Array) -> Array:
    """E = Σ_k −[y_k log σ(z_k) + (1 − y_k) log(1 − σ(z_k))] = Σ_k softplus(z_k) − y_k z_k."""
    return jnp.sum(_act.softplus(z) - y * z, axis=-1)


def _bce_grad(z: Array, y: Array) -> Array:
    """δ_L = ∂E/∂z = σ(z) − y."""
    return _act.sigmoid(z) - y


def _poisson_fn(z: Array, y: Array) -> Array:
    """E = Σ_k ŷ_k − y_k log ŷ_k + y_k log y_k − y_k with ŷ = exp(z): half the Poisson deviance,
    Σ_k y_k log(y_k/ŷ_k) − y_k + ŷ_k, written in z = log ŷ (0 log 0 = 0)."""
    return jnp.sum(jnp.exp(z) - y * z + jax.scipy.special.xlogy(y, y) - y, axis=-1)


def _poisson_grad(z: Array, y: Array) -> Array:
    """δ_L = ∂E/∂z = exp(z) − y = ŷ − y: ∂(e^z)/∂z = e^z, ∂(−y z)/∂z = −y; the rest is free of z."""
    return jnp.exp(z) - y


#: The squared error E = ½ Σₖ (ŷₖ − dₖ)² on the network's output ŷ (any output activation); δ_L = (ŷ − d) ⊙ f′(z_L).
MSE = Loss("mse", _mse_fn, _mse_grad, on="output", targets="real", grad_y=lambda h, d: d - h)
#: Softmax + cross-entropy E = −Σₖ dₖ log softmax(z)ₖ, on the logits (output "softmax"); δ_L = softmax(z) − d.
CROSS_ENTROPY = Loss(
    "cross_entropy", _ce_fn, _ce_grad, on="logits", outputs=("softmax",), targets="classes", grad_y=lambda z, y: -log_softmax(z)
)
#: Sigmoid + binary cross-entropy E = −[d log σ(z) + (1 − d) log(1 − σ(z))], on the logits; δ_L = σ(z) − d.
BCE = Loss("bce", _bce_fn, _bce_grad, on="logits", outputs=("sigmoid",), targets="binary", grad_y=lambda z, y: -z)
#: The Poisson deviance of counts y with mean ŷ = exp(z), on the logits (output "exp"); δ_L = exp(z) − y.
#: Its ``grad_y``: ∂E/∂y = log y + 1 − z − 1 = log(y/ŷ) (−∞ at y = 0, as the derivative of y log y is there)
POISSON = Loss(
    "poisson", _poisson_fn, _poisson_grad, on="logits", outputs=("exp",), targets="counts", grad_y=lambda z, y: jnp.log(y) - z
)

#: fnn's losses by name (``loss="mse"`` and the others).
LOSSES: dict[str, Loss] = {loss.name: loss for loss in (MSE, CROSS_ENTROPY, BCE, POISSON)}
LossLike = str | Loss


def get(loss: LossLike) -> Loss:
    """The :class:`Loss` for a name (``"mse"``, ``"cross_entropy"``, ``"bce"``, ``"poisson"``), or a Loss as is.

    A loss you built is checked once, the first time fnn meets it, by
    :func:`fnn.check_derivation`; a wrong gradient is refused with a ValueError (it would otherwise
    train silently), or warns, as ``fnn.check.on_first_use`` says.

    >>> get("mse") is MSE, get(BCE) is BCE
    (True, True)
    """
    if isinstance(loss, Loss):
        if not loss.builtin:
            from fnn.check.first_use import verify_once  # checks a user-made loss once (a lazy import: it uses this module)

            verify_once(loss)
        return loss
    if not isinstance(loss, str):
        raise TypeError(f"`loss` must be a name (str) or an fnn.Loss, got {type(loss).__name__}: {loss!r}")
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; valid names are {', '.join(LOSSES)} (or an fnn.Loss of your own)")
    return LOSSES[loss]


def _batch_mean(e: Array) -> Array:
    return jnp.mean(e) if e.ndim else e


def batch_scale(z: Array) -> float:
    """1/B for a batch of B examples (any number of batch axes), 1 for one example: the factor that turns
    a per-example output error into the batch mean's.

    >>> batch_scale(jnp.zeros((4, 3))), batch_scale(jnp.zeros(3))
    (0.25, 1.0)
    """
    return 1.0 / (z.size // z.shape[-1]) if z.ndim > 1 else 1.0


def mse(yhat: ArrayLike, d: ArrayLike) -> Array:
    """E = ½ Σ_k (ŷ_k − d_k)², averaged over the batch.

    Args:
      yhat: predictions, shape (B, K) or (K,).
      d: targets in any form ``fit`` accepts for mse: the shape of ``yhat``, integer class
        indices of shape (B,) (one-hot, when K > 1), or shape (B,) when K = 1.

    >>> float(mse(jnp.array([[1.0, 0.0]]), jnp.array([[0.0, 0.0]])))
    0.5
    >>> float(mse(jnp.array([[1.0, 0.0]]), jnp.array([1])))  # class 1 as the one-hot row [0, 1]
    1.0
    """
    h = _checks_float(yhat, "yhat")
    return _batch_mean(_mse_fn(h, _targets_like(MSE, d, h)))


def log_softmax(z: ArrayLike) -> Array:
    """log softmax(z) = z − logsumexp(z), rowwise, finite for any finite logits.

    >>> log_softmax(jnp.array([0.0, 1e4])).tolist()
    [-10000.0, 0.0]
    """
    z = jnp.asarray(z)
    m = jax.lax.stop_gradient(jnp.max(z, axis=-1, keepdims=True))
    return z - m - jnp.log(jnp.sum(jnp.exp(z - m), axis=-1, keepdims=True))


def cross_entropy(logits: ArrayLike, y: ArrayLike) -> Array:
    """E = −Σ_k y_k log softmax(z)_k, averaged over the batch.

    Args:
      logits: z_L, shape (B, K) or (K,).
      y: integer class indices of shape (B,), or non-negative target rows of the shape of
        ``logits``: one-hot, probabilities (soft or label-smoothed), or any non-negative weights.
        Rows need not sum to 1; the gradient is ``(Σₖ yₖ) softmax(z) − y``.

    >>> round(float(cross_entropy(jnp.array([0.0, 0.0]), jnp.array([1.0, 0.0]))), 4)
    0.6931
    >>> round(float(cross_entropy(jnp.zeros((2, 3)), jnp.array([2, 0]))), 4)  # class indices
    1.0986
    """
    z = _checks_float(logits, "logits")
    return _batch_mean(_ce_fn(z, _targets_like(CROSS_ENTROPY, y, z)))


def bce(logits: ArrayLike, y: ArrayLike) -> Array:
    """E = Σ_k −[y_k log σ(z_k) + (1−y_k) log(1−σ(z_k))] = Σ_k softplus(z_k) − y_k z_k.

    Averaged over the batch; computed from the logits, so finite for any finite z. ``y`` holds
    values in [0, 1] of the shape of ``logits`` (or without the output axis when K = 1).

    >>> round(float(bce(jnp.array([0.0]), jnp.array([1.0]))), 4)
    0.6931
    """
    z = _checks_float(logits, "logits")
    return _batch_mean(_bce_fn(z, _targets_like(BCE, y, z)))


def _checks_float(a: Any, name: str) -> Array:
    if isinstance(a, (list, tuple, int, float)):
        try:
            a = np.asarray(a)
        except ValueError as e:  # ragged nesting
            raise TypeError(f"`{name}` must be a rectangular array, got a ragged {type(a).__name__}: {e}") from None
    if isinstance(a, jax.ShapeDtypeStruct) or not hasattr(a, "dtype") or not hasattr(a, "shape"):
        raise TypeError(f"`{name}` must be an array of numbers, got {type(a).__name__}: {a!r:.60}")
    if jnp.issubdtype(a.dtype, jax.dtypes.prng_key) or (
        np.dtype(a.dtype).kind not in "biuf" and not jnp.issubdtype(a.dtype, jnp.floating)
    ):
        raise TypeError(f"`{name}` must hold real numbers, got dtype {a.dtype}")
    a = jnp.asarray(a)
    if not jnp.issubdtype(a.dtype, jnp.floating):
        a = a.astype(jnp.result_type(float))
    if a.ndim == 0:
        raise ValueError(f"`{name}` must have an output axis: shape (K,) or (B, K), got a scalar")
    return a


def _targets_like(loss: Loss, y: ArrayLike, u: Array) -> Array:
    return targets(loss, y, u.shape[-1], tuple(u.shape[:-1]), u.dtype)


def value(loss: LossLike, z: Array, h: Array, y: Array) -> Array:
    """The loss of the network output (logits ``z`` and activations ``h = f(z)``), batch mean.

    ``y`` must already have the output's shape and dtype (see :func:`targets`).

    >>> h = jnp.array([[1.0, 0.0]])
    >>> float(value("mse", h, h, jnp.zeros((1, 2))))
    0.5
    """
    return _batch_mean(get(loss).per_example(z, h, y))


def value_and_delta(loss: LossLike, output: _act.Activation, z: Array, h: Array, y: Array) -> tuple[Array, Array]:
    """The batch-mean loss and the hand-derived δ_L = ∂E/∂z_L (already divided by B).

    Args:
      loss: ``"mse"``, ``"cross_entropy"``, ``"bce"``, ``"poisson"`` or a :class:`Loss`.
      output: the output activation (its derivative is used by losses written on the output).
      z: logits z_L, shape (B, K) or (K,).
      h: output activations f(z_L), same shape.
      y: targets, same shape (see :func:`targets`).

    Returns:
      ``(E, delta)`` with ``delta`` of the shape of ``z``.

    Example:
      >>> z = jnp.zeros((1, 2))
      >>> E, delta = value_and_delta("cross_entropy", _act.get("softmax"), z, _act.softmax(z), jnp.array([[1.0, 0.0]]))
      >>> round(float(E), 4), delta.tolist()
      (0.6931, [[-0.5, 0.5]])
    """
    L = get(loss)
    delta = L.output_error(output, z, h, y)
    return value(L, z, h, y), delta * jnp.asarray(batch_scale(z), delta.dtype)


def check_pair(loss: LossLike, output: _act.Activation) -> Loss:
    """The :class:`Loss`, after checking that it is defined for the ``output`` activation.

    >>> check_pair("bce", _act.get("sigmoid")).name  # a valid pair
    'bce'
    >>> check_pair("bce", _act.get("softmax"))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: loss 'bce' needs output='sigmoid' (...), but the network's output is 'softmax'; ...
    """
    L = get(loss)
    if L.outputs is not None and output.name not in L.outputs:
        first = L.outputs[0]
        if L.builtin:
            raise ValueError(
                f"loss {L.name!r} needs output={first!r} (it is computed from the logits of a "
                f"{first} output), but the network's output is {output.name!r}; use "
                f"output={first!r} or loss='mse'"
            )
        raise ValueError(f"loss {L.name!r} is defined for outputs {list(L.outputs)}, but the network's output is {output.name!r}")
    return L
