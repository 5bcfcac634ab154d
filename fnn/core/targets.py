"""Target forms: what a loss accepts as ``y``, checked and brought to the output's shape and dtype.

A :class:`fnn.Loss` names one form (its ``targets`` field); :func:`targets` validates labels of that
form, before anything is traced, and converts them:

- ``"classes"`` (cross_entropy): integer class indices, or non-negative rows (one-hot, probabilities,
  weights);
- ``"real"`` (mse): targets of the output's shape; integer class indices become one-hot (the seed's
  ``d``); a single output takes targets without the output axis;
- ``"binary"`` (bce): values in [0, 1];
- ``"counts"`` (poisson): non-negative values (counts or rates) of the output's shape.

Label values (their range) are checked only when ``y`` is concrete, never inside ``jit``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

if TYPE_CHECKING:
    from fnn.core.losses import LossLike

#: The forms of targets a loss takes: real values, class indices, 0/1 labels, non-negative counts.
TARGET_FORMS = ("real", "classes", "binary", "counts")


def targets(loss: LossLike, y: ArrayLike, n_out: int, batch: tuple[int, ...], dtype, *, convert: bool = True) -> Any:
    """Validate labels and bring them to the output's shape ``batch + (n_out,)`` and ``dtype``
    (with ``convert=False``, only validate them and return ``y`` as an array, unchanged).

    Accepted forms, by the loss's ``targets`` form:

    - ``"classes"`` (cross_entropy): integer class indices of shape ``batch``, or non-negative rows
      of shape ``batch + (K,)``: one-hot, probabilities (soft, label-smoothed), or unnormalised
      weights; an all-zero row contributes nothing (E = 0, δ = 0).
    - ``"real"`` (mse): targets of shape ``batch + (K,)``; integer class indices of shape ``batch``
      become one-hot (the seed's d); with K = 1, targets of shape ``batch``.
    - ``"binary"`` (bce): 0/1 (or probability) targets of shape ``batch + (K,)``; with K = 1, shape
      ``batch``.
    - ``"counts"`` (poisson): non-negative targets of shape ``batch + (K,)``; with K = 1, shape ``batch``.

    Raises:
      TypeError: ``y`` has a type or dtype the loss cannot take (the message names ``y`` and what was
        expected), before anything is traced.
      ValueError: ``y`` has the wrong shape, or labels out of range; label values are checked only
        when ``y`` is concrete (not inside ``jit``).

    Example:
      >>> targets("cross_entropy", jnp.array([2, 0]), 3, (2,), jnp.float32).tolist()
      [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]
    """
    from fnn.core.losses import get  # (a lazy import: the loss records sit above their target forms)

    L = get(loss)
    form = L.targets
    if isinstance(y, (list, tuple, int, float, np.generic)) and not isinstance(y, bool):
        y = np.asarray(y)
    if not isinstance(y, (np.ndarray, jax.Array)):
        raise TypeError(f"`y` must be an array, got {type(y).__name__}")
    if jnp.issubdtype(y.dtype, jax.dtypes.prng_key):
        raise TypeError(f"`y` must hold numbers, got a jax.random key array of shape {tuple(y.shape)}")
    shape, kind = tuple(y.shape), np.dtype(y.dtype).kind
    full = (*batch, n_out)
    what = "a single example" if not batch else f"a batch of {batch[0]}"
    if kind not in "biuf":
        raise TypeError(f"`y` must hold numbers, got dtype {y.dtype}")
    is_int = kind in "iu"
    if is_int and shape == batch and (form == "classes" or (form == "real" and n_out > 1)):
        _check_range(y, 0, n_out - 1, f"class indices for {n_out} classes")
        if not convert:
            return y
        if isinstance(y, jax.core.Tracer) or _on_other_processes(y):
            return jax.nn.one_hot(y, n_out, dtype=dtype)
        return jax.device_put(np.eye(n_out, dtype=np.dtype(dtype))[np.asarray(y)])  # concrete labels: nothing to compile
    if shape == full or (n_out == 1 and shape == batch and form != "classes"):
        if form == "binary":
            _check_range(y, 0, 1, "targets in [0, 1]")
        if form == "counts":
            _check_range(y, 0, np.inf, "non-negative targets (counts or rates)")
        if form == "classes":
            _check_range(y, 0, np.inf, "non-negative rows (one-hot, probabilities or weights)")
        return jnp.asarray(y, dtype).reshape(full) if convert else y
    # Everything below is an error: say what came and what fits.
    if form == "classes":
        expected = f"integer class indices of shape {batch} or one-hot rows of shape {full}"
    elif form == "real":
        expected = f"targets of shape {full}" + (f" or integer class indices of shape {batch}" if n_out > 1 else f" or {batch}")
    elif form == "counts":
        expected = f"non-negative targets of shape {full}" + (f" or {batch}" if n_out == 1 else "")
    else:
        expected = f"0/1 targets of shape {full}" + (f" or {batch}" if n_out == 1 else "")
    hint = ""
    if shape == batch and not is_int:
        hint = " (float labels of shape (B,): cast class indices to int with y.astype(int))"
    elif len(shape) == len(full) and shape[:-1] == batch:
        hint = f" (one-hot width {shape[-1]} but the network has {n_out} outputs)"
    elif shape[:1] != batch[:1]:
        hint = f" (y has {shape[0] if shape else 'no'} rows but x is {what})"
    raise ValueError(f"`y` has shape {shape} and dtype {y.dtype}; loss {L.name!r} expects {expected}{hint}")


def _on_other_processes(y: Any) -> bool:
    """Labels split over several processes' devices (``fnn.parallel.from_local``): no process can read them whole."""
    return isinstance(y, jax.Array) and not y.is_fully_addressable


def _check_range(y, lo: float, hi: float, what: str) -> None:
    if isinstance(y, jax.core.Tracer):
        return  # values are unknown inside jit/vmap
    if _on_other_processes(y):  # the extremes, computed where the rows are
        y_min, y_max = (np.asarray(v) for v in jax.jit(lambda a: (a.min(), a.max()))(y))
    else:
        a = np.asarray(y)
        if not a.size:
            return
        y_min, y_max = a.min(), a.max()
    if y_min < lo or y_max > hi:
        raise ValueError(f"`y` must be {what}, but its values span [{y_min}, {y_max}]")
    if not (
        np.isfinite(y_min) and np.isfinite(y_max)
    ):  # NaN passes the comparisons above; an infinite weight or label is no target
        raise ValueError(f"`y` must be {what}, but it holds NaN or inf")
