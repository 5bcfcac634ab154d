"""One hand derivative against one reference over a grid: the error measure of
:func:`~fnn.check.check_derivation` (see its module docstring) and the record of it, :class:`Comparison`.

:func:`central` takes the central difference of a function with the error finite differences themselves
may carry there (rounding and truncation); :func:`compare` measures ``|yours − reference|`` relative to
the reference, less that allowance, by regime of the grid, and names a point where it fails.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

FLOOR = 1e-6  # of the reference's largest magnitude: against jax.grad
FD_FLOOR = 1e-4  # against finite differences, whose own accuracy is ~1e-10 of that scale


@dataclasses.dataclass(frozen=True)
class Comparison:
    """Your derivative against one reference, over the grid."""

    against: str  # "jax.grad" or "finite differences"
    worst: float  # largest error over the compared points
    at: str  # a point where it fails (the worst one in the most ordinary failing regime), with both values
    points: int  # points compared
    rtol: float
    by_regime: tuple[tuple[str, float], ...]  # (regime, its worst error)

    @property
    def ok(self) -> bool:
        """Whether every point was compared and the worst relative error is within ``rtol``."""
        return bool(self.points) and self.worst <= self.rtol


def central(g: Callable, step: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``(d, allowance)``: the central difference ``(g(h) − g(−h)) / 2h`` of ``g(e)`` (elementwise in
    ``e``) and the error finite differences themselves may carry there: the rounding of ``g``'s
    values divided by the step, plus the truncation error estimated from the same difference at
    twice the step (Richardson: |d(h) − d(2h)| ≈ 3 × the truncation error of d(h)), or the spread
    against the difference at half the step, whose rounding noise is twice d's (it shows the noise
    of intermediate values larger than g's own, such as 1 + tanh(u) near −1 in gelu). A wrong
    derivative is off by more than this; a function large next to its slope is not flagged."""
    return _combine([g(s * step) for s in SHIFTS], step)


SHIFTS = (1.0, -1.0, 2.0, -2.0, 0.5, -0.5)  # the multiples of the step :func:`central` evaluates g at


def central_stacked(g: Callable, step: jax.Array) -> tuple[jax.Array, jax.Array]:
    """:func:`central` with one call of ``g``, on the six shifts stacked (``g`` elementwise in its argument
    of 6·n entries): one copy of ``g`` in the compiled program, not six. The same numbers."""
    values = g(jnp.concatenate([s * step for s in SHIFTS])).reshape(len(SHIFTS), -1)
    return _combine(list(values), step)


def _combine(values: list[jax.Array], step: jax.Array) -> tuple[jax.Array, jax.Array]:
    plus, minus, plus2, minus2, plus_half, minus_half = values
    d = (plus - minus) / (2 * step)
    d2 = (plus2 - minus2) / (4 * step)
    d_half = (plus_half - minus_half) / step  # its rounding noise is twice d's: shows noise |f| hides
    rounding = 8 * jnp.finfo(d.dtype).eps * jnp.maximum(jnp.abs(plus), jnp.abs(minus)) / (2 * step)
    return d, rounding + jnp.maximum(jnp.abs(d - d2), jnp.abs(d - d_half))


def compare(
    against: str,
    yours: np.ndarray,
    ref: np.ndarray,
    mask: np.ndarray,
    regime: np.ndarray,
    label: list[str],
    rtol: float,
    regimes: tuple[str, ...],
    allowance: np.ndarray | None = None,
    scale: float | None = None,
) -> Comparison:
    """Errors ``max(|yours − ref| − allowance, 0) / max(|ref|, floor)`` over the masked points; the floor is
    a fraction of ``scale``, by default the reference's largest magnitude (a block's check passes the largest
    over all its quantities, so that a gradient that is zero up to rounding, such as a bias's before a
    batch norm in train mode, is not measured against its own rounding)."""
    finite = np.isfinite(ref)
    mask = mask & finite
    if scale is None:
        scale = float(np.max(np.abs(ref[mask]))) if mask.any() else 0.0
    floor = max((FLOOR if allowance is None else FD_FLOOR) * scale, np.finfo(np.float64).tiny)
    slack = np.zeros_like(ref) if allowance is None else np.nan_to_num(allowance, nan=np.inf)
    with np.errstate(invalid="ignore"):
        diff = np.maximum(np.abs(yours - ref) - slack, 0.0)
        err = np.where(np.isfinite(yours), diff / np.maximum(np.abs(ref), floor), np.inf)
    err = np.where(mask, err, -np.inf)
    worst = float(np.max(err)) if mask.any() else float("nan")
    # the point shown: the worst of the first regime (the grid's order: the most ordinary inputs
    # first) that fails, so a wrong formula is shown where it is plainly wrong, not at z = -100
    failing = [j for j in range(len(regimes)) if ((regime == j) & mask & (err > rtol)).any()]
    i = int(np.argmax(np.where(regime == failing[0], err, -np.inf))) if failing else int(np.argmax(err))
    at = (
        f"{label[i]} (yours {yours[i]:.6g}, {against.rsplit(':', maxsplit=1)[-1].strip()} {ref[i]:.6g})"
        if mask.any()
        else "no point"
    )
    by = tuple(
        (r, float(np.max(err[(regime == j) & mask])) if ((regime == j) & mask).any() else float("nan"))
        for j, r in enumerate(regimes)
    )
    return Comparison(against, worst, at, int(mask.sum()), rtol, by)
