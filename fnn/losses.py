"""Losses E(output, y) and their hand-derived output error δ_L = ∂E/∂z_L.

Every loss is a sum over the K outputs of one example, averaged over the batch:

.. math::

    E_{mse} = \\tfrac12 \\sum_k (\\hat y_k - d_k)^2 \\qquad
    E_{ce} = -\\sum_k y_k \\log \\mathrm{softmax}(z)_k \\qquad
    E_{bce} = \\sum_k \\mathrm{softplus}(z_k) - y_k z_k

The output error for one example (divide by the batch size B for the batch mean):

- softmax + cross_entropy fuses to ``δ_L = (Σ_k y_k) ŷ - y``: ``ŷ - y`` for targets whose rows sum to
  1 (class indices, one-hot, soft and label-smoothed rows); rows with another sum (unnormalised
  weights, all-zero rows that mask an example out) are accepted and get their exact gradient;
- sigmoid + bce fuses to ``δ_L = ŷ - y`` (each output is its own two-class problem);
- mse with an elementwise output: ``δ_L = (ŷ - d) ⊙ f'(z_L)``;
- mse with a softmax output: the softmax Jacobian applied to ``ŷ - d``: ``ŷ ⊙ (g - ⟨g, ŷ⟩)``.

cross_entropy and bce are computed from the logits ``z_L`` (log-sum-exp / softplus), never as
``log(ŷ)``, so they stay finite for logits of ±1e4 and for probabilities that round to 0 or 1.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from fnn import activations as _act

Array = jax.Array

# loss name -> the output activations it is defined for (None: any)
LOSSES: dict[str, tuple[str, ...] | None] = {
    "mse": None,
    "cross_entropy": ("softmax",),
    "bce": ("sigmoid",),
}


def _batch_mean(e: Array) -> Array:
    return jnp.mean(e) if e.ndim else e


def mse(yhat: ArrayLike, d: ArrayLike) -> Array:
    """E = ½ Σ_k (ŷ_k − d_k)², averaged over the batch.

    Args:
      yhat: predictions, shape (B, K) or (K,).
      d: targets, same shape.

    >>> float(mse(jnp.array([[1.0, 0.0]]), jnp.array([[0.0, 0.0]])))
    0.5
    """
    r = jnp.asarray(yhat) - jnp.asarray(d)
    return _batch_mean(0.5 * jnp.sum(r * r, axis=-1))


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
      y: non-negative target rows with the same shape as ``logits``: one-hot, probabilities
        (soft or label-smoothed), or any non-negative weights (convert class indices with
        :func:`targets`). Rows need not sum to 1; the gradient is ``(Σₖ yₖ) softmax(z) − y``.

    >>> round(float(cross_entropy(jnp.array([0.0, 0.0]), jnp.array([1.0, 0.0]))), 4)
    0.6931
    """
    return _batch_mean(-jnp.sum(jnp.asarray(y) * log_softmax(logits), axis=-1))


def bce(logits: ArrayLike, y: ArrayLike) -> Array:
    """E = Σ_k −[y_k log σ(z_k) + (1−y_k) log(1−σ(z_k))] = Σ_k softplus(z_k) − y_k z_k.

    Averaged over the batch; computed from the logits, so finite for any finite z.

    >>> round(float(bce(jnp.array([0.0]), jnp.array([1.0]))), 4)
    0.6931
    """
    z = jnp.asarray(logits)
    return _batch_mean(jnp.sum(_act.softplus(z) - jnp.asarray(y) * z, axis=-1))


def value(loss: str, z: Array, h: Array, y: Array) -> Array:
    """The loss of the network output (logits ``z`` and activations ``h = f(z)``), batch mean.

    ``y`` must already have the output's shape and dtype (see :func:`targets`).

    >>> h = jnp.array([[1.0, 0.0]])
    >>> float(value("mse", h, h, jnp.zeros((1, 2))))
    0.5
    """
    if loss == "mse":
        return mse(h, y)
    if loss == "cross_entropy":
        return cross_entropy(z, y)
    if loss == "bce":
        return bce(z, y)
    raise ValueError(f"unknown loss {loss!r}; valid names are {', '.join(LOSSES)}")


def value_and_delta(loss: str, output: _act.Activation, z: Array, h: Array, y: Array) -> tuple[Array, Array]:
    """The batch-mean loss and the hand-derived δ_L = ∂E/∂z_L (already divided by B).

    Args:
      loss: ``"mse"``, ``"cross_entropy"`` or ``"bce"``.
      output: the output activation (its derivative is used by mse).
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
    scale = 1.0 / (z.size // z.shape[-1]) if z.ndim > 1 else 1.0
    if loss == "cross_entropy":
        # E from log-softmax (stable); δ = softmax(z) − y reuses the forward output.
        # E = −Σₖ yₖ (zₖ − logsumexp z), so ∂E/∂zⱼ = (Σₖ yₖ) softmaxⱼ − yⱼ: the row sum multiplies ŷ
        # (it is 1 for one-hot, soft and smoothed labels, 0 for an all-zero row).
        logp = log_softmax(z)
        e = -jnp.sum(y * logp, axis=-1)
        delta = jnp.sum(y, axis=-1, keepdims=True) * h - y  # h = softmax(z) from the forward pass
    elif loss == "bce":
        e = jnp.sum(_act.softplus(z) - y * z, axis=-1)
        delta = h - y  # h = σ(z)
    elif loss == "mse":
        r = h - y
        e = 0.5 * jnp.sum(r * r, axis=-1)
        delta = _act.softmax_jvp(h, r) if output.df is None else r * output.df(z, h)
    else:
        raise ValueError(f"unknown loss {loss!r}; valid names are {', '.join(LOSSES)}")
    return _batch_mean(e), delta * jnp.asarray(scale, delta.dtype)


def check_pair(loss: str, output: _act.Activation) -> None:
    """Raise ValueError unless ``loss`` is known and defined for the ``output`` activation.

    >>> check_pair("bce", _act.get("sigmoid"))  # a valid pair: no error
    >>> check_pair("bce", _act.get("softmax"))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: loss 'bce' needs output='sigmoid' (...), but the network's output is 'softmax'; ...
    """
    if not isinstance(loss, str):
        raise TypeError(f"`loss` must be a name (str), got {type(loss).__name__}: {loss!r}")
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; valid names are {', '.join(LOSSES)}")
    allowed = LOSSES[loss]
    if allowed is not None and output.name not in allowed:
        raise ValueError(
            f"loss {loss!r} needs output={allowed[0]!r} (it is computed from the logits of a "
            f"{allowed[0]} output), but the network's output is {output.name!r}; use "
            f"output={allowed[0]!r} or loss='mse'"
        )


def targets(loss: str, y: ArrayLike, n_out: int, batch: tuple[int, ...], dtype) -> Array:
    """Validate labels and bring them to the output's shape ``batch + (n_out,)`` and ``dtype``.

    Accepted forms:

    - cross_entropy: integer class indices of shape ``batch``, or non-negative rows of shape
      ``batch + (K,)``: one-hot, probabilities (soft, label-smoothed), or unnormalised weights; an
      all-zero row contributes nothing (E = 0, δ = 0).
    - mse: targets of shape ``batch + (K,)``; integer class indices of shape ``batch`` become
      one-hot (the seed's d); with K = 1, targets of shape ``batch``.
    - bce: 0/1 (or probability) targets of shape ``batch + (K,)``; with K = 1, shape ``batch``.

    Raises:
      TypeError / ValueError naming ``y`` with what was expected, before anything is traced.
      Label values (range) are checked only when ``y`` is concrete (not inside ``jit``).

    Example:
      >>> targets("cross_entropy", jnp.array([2, 0]), 3, (2,), jnp.float32).tolist()
      [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]
    """
    if isinstance(y, (list, tuple, int, float, np.generic)) and not isinstance(y, bool):
        y = np.asarray(y)
    if not isinstance(y, (np.ndarray, jax.Array)):
        raise TypeError(f"`y` must be an array, got {type(y).__name__}")
    shape, kind = tuple(y.shape), np.dtype(y.dtype).kind
    full = (*batch, n_out)
    what = "a single example" if not batch else f"a batch of {batch[0]}"
    if kind not in "biuf":
        raise TypeError(f"`y` must hold numbers, got dtype {y.dtype}")
    is_int = kind in "iu"
    if is_int and shape == batch and (loss == "cross_entropy" or (loss == "mse" and n_out > 1)):
        _check_range(y, 0, n_out - 1, f"class indices for {n_out} classes")
        return jax.nn.one_hot(y, n_out, dtype=dtype)
    if shape == full or (n_out == 1 and shape == batch and loss != "cross_entropy"):
        if loss == "bce":
            _check_range(y, 0, 1, "targets in [0, 1]")
        if loss == "cross_entropy":
            _check_range(y, 0, np.inf, "non-negative rows (one-hot, probabilities or weights)")
        return jnp.asarray(y, dtype).reshape(full)
    # Everything below is an error: say what came and what fits.
    if loss == "cross_entropy":
        expected = f"integer class indices of shape {batch} or one-hot rows of shape {full}"
    elif loss == "mse":
        expected = f"targets of shape {full}" + (f" or integer class indices of shape {batch}" if n_out > 1 else f" or {batch}")
    else:
        expected = f"0/1 targets of shape {full}" + (f" or {batch}" if n_out == 1 else "")
    hint = ""
    if shape == batch and not is_int:
        hint = " (float labels of shape (B,): cast class indices to int with y.astype(int))"
    elif len(shape) == len(full) and shape[:-1] == batch:
        hint = f" (one-hot width {shape[-1]} but the network has {n_out} outputs)"
    elif shape[:1] != batch[:1]:
        hint = f" (y has {shape[0] if shape else 'no'} rows but x is {what})"
    raise ValueError(f"`y` has shape {shape} and dtype {y.dtype}; loss {loss!r} expects {expected}{hint}")


def _check_range(y, lo: float, hi: float, what: str) -> None:
    if isinstance(y, jax.core.Tracer):
        return  # values are unknown inside jit/vmap
    a = np.asarray(y)
    if a.size and (a.min() < lo or a.max() > hi):
        raise ValueError(f"`y` must be {what}, but its values span [{a.min()}, {a.max()}]")
