"""The records :func:`~fnn.check.compare_gradients` returns: :class:`GradientReport` (the check of a whole
network, its verdict and its table) and one :class:`LeafReport` per parameter leaf. (fnn.check.gradcheck
and fnn.check export them; the comparison itself is in ``gradcheck.py``.)

Each leaf ends in one of three states, and the report is ``ok`` only when every leaf is ``ok``:

- ``ok``: manual agrees with autodiff within ``autodiff_rtol`` and with finite differences within
  ``fd_rtol`` on at least one checked coordinate (with float64 finite differences for a lower
  dtype: both checks ``gradcheck.py`` describes pass, the derivation in float64 and your gradient in its dtype);
- ``mismatch``: manual disagrees with autodiff, or with finite differences by more than the
  tolerance and everything finite differences may get wrong themselves: their rounding floor (capped
  at :data:`FD_FLOOR_CAP`, so it can never excuse an error larger than that) and their measured
  spread (capped there too when they are taken in float64);
- ``unresolved``: finite differences could not check the leaf: no coordinate was left to compare
  (all straddle a kink, or none was sampled); or the error lies between the tolerance and what
  finite differences may get wrong, where they cannot tell a bug from their own error; or the floor
  is 100% or more (the leaf's gradients are so small next to the loss that finite differences cannot
  resolve even their sign). Finite differences taken in float32 (``fd64=False``) that cannot
  resolve a leaf say so, and that float64 would.
"""

from __future__ import annotations

import dataclasses
from typing import Any

FD_FLOOR_CAP = 0.1  # the rounding floor never excuses a finite-difference error above 10% relative
STATUSES = ("ok", "unresolved", "mismatch")


@dataclasses.dataclass(frozen=True)
class LeafReport:
    """The comparison for one parameter leaf (e.g. layer 2's W).

    One per leaf in :attr:`GradientReport.leaves`, input layer first:

    >>> from fnn import MLP, compare_gradients
    >>> import jax, jax.numpy as jnp
    >>> net = MLP((2, 3, 2), hidden="tanh", output="softmax")
    >>> r = compare_gradients(net, net.init(jax.random.key(0)), jnp.ones((4, 2)), jnp.array([0, 1, 1, 0]), loss="cross_entropy")
    >>> [(leaf.layer, leaf.leaf, leaf.shape, leaf.checked, leaf.kinks, r.status(leaf)) for leaf in r.leaves]
    [(0, 'W', (3, 2), 6, 0, 'ok'), (0, 'b', (3,), 3, 0, 'ok'), (1, 'W', (2, 3), 6, 0, 'ok'), (1, 'b', (2,), 2, 0, 'ok')]
    """

    layer: int  # an MLP's layer; a network of blocks' block (its index in params); 0 for a Model's pytree
    leaf: str  # "W", "b"; in a block, the path inside its dict ("gamma", "blocks[0].W"); a Model's path
    shape: tuple[int, ...]
    autodiff_abs: float  # max |manual − autodiff|
    autodiff_rel: float
    fd_abs: float  # max |manual − finite diff| over the checked coordinates, kinks excluded
    fd_rel: float
    checked: int  # coordinates compared with finite differences (sampled minus kinks)
    kinks: int  # sampled coordinates left out because they straddle a ReLU-like kink
    fd_noise: float = 0.0  # the rounding floor of finite differences for this leaf, relative (u·|E| / (h·‖g‖∞))
    fd_spread: float = 0.0  # max |FD at step h − FD at step 2h| over the checked coordinates, relative: their own error
    fd64_rel: float | None = None  # finite differences in float64 for a lower dtype: manual in float64 vs them, relative
    rounding: float | None = None  # and then max |manual − manual in float64|, relative: the dtype's rounding of the gradient


@dataclasses.dataclass(frozen=True)
class GradientReport:
    """Manual vs autodiff vs finite differences, leaf by leaf. ``str(report)`` is a table.

    Made by :func:`compare_gradients`:

    >>> from fnn import MLP, compare_gradients
    >>> import jax, jax.numpy as jnp
    >>> net = MLP((2, 3, 2), hidden="tanh", output="softmax")
    >>> r = compare_gradients(net, net.init(jax.random.key(0)), jnp.ones((4, 2)), jnp.array([0, 1, 1, 0]), loss="cross_entropy")
    >>> r.ok, r.dtype, len(r.leaves), r.kink_margin  # no ReLU-like layer: no kink margin
    (True, 'float32', 4, None)
    >>> r.fd_dtype, r.fd64_rtol  # float32 parameters, finite differences in float64 (fd64=False: in float32)
    ('float64', 1e-06)
    """

    leaves: tuple[LeafReport, ...]
    loss: float
    dtype: str
    eps: float
    autodiff_rtol: float
    fd_rtol: float
    kink_margin: float | None  # min |z| over ReLU-like units (None: no such layer)
    manual: Any = dataclasses.field(repr=False)  # the gradient trees (None for a Model's manual)
    autodiff: Any = dataclasses.field(repr=False)
    fd_dtype: str = ""  # the dtype finite differences were taken in ("": that of the parameters)
    fd64_rtol: float | None = None  # the derivation's tolerance in float64, when fd_dtype is float64 and dtype is not
    has_manual: bool = True  # False for a Model: jax.grad (what trains it) vs finite differences only; manual is None
    skipped: tuple[str, ...] = ()  # leaves not compared: a network's running statistics (not trained, zero gradient)
    notes: tuple[str, ...] = ()  # what else the table should say (e.g. why finite differences were not in float64)

    @property
    def fd_precision(self) -> str:
        """The dtype the finite differences were taken in."""
        return self.fd_dtype or self.dtype

    @property
    def max_autodiff_rel(self) -> float:
        """The largest relative error of the manual gradient against ``jax.grad`` over the leaves."""
        return max(r.autodiff_rel for r in self.leaves)

    @property
    def max_fd_rel(self) -> float:
        """The largest relative error against finite differences over the leaves."""
        return max(r.fd_rel for r in self.leaves)

    @property
    def kinks(self) -> int:
        """How many sampled entries were left out because they straddle an activation's kink (summed over the leaves)."""
        return sum(r.kinks for r in self.leaves)

    def status(self, r: LeafReport) -> str:
        """``"ok"``, ``"unresolved"`` or ``"mismatch"`` for one leaf (see the module docstring).

        >>> from fnn import MLP, compare_gradients
        >>> import jax, jax.numpy as jnp
        >>> net = MLP((2, 3, 2), hidden="tanh", output="softmax")
        >>> params, x, y = net.init(jax.random.key(0)), jnp.ones((4, 2)), jnp.array([0, 1, 1, 0])
        >>> r = compare_gradients(net, params, x, y, loss="cross_entropy")
        >>> {r.status(leaf) for leaf in r.leaves}
        {'ok'}
        """
        if not r.autodiff_rel <= self.autodiff_rtol:  # `not <=` also catches NaN
            return "mismatch"
        if r.checked == 0:
            return "unresolved"
        low = self.fd_precision != "float64"  # finite differences in float32 or lower: their spread is not capped
        if r.fd64_rel is None or self.fd64_rtol is None:
            return _judge(r.fd_rel, self.fd_rtol, r.fd_noise, r.fd_spread, low)
        # finite differences in float64 for a lower dtype: the derivation in float64, and your gradient in its dtype
        derivation = _judge(r.fd64_rel, self.fd64_rtol, r.fd_noise, r.fd_spread, low)
        yours = _judge(r.fd_rel, self.fd_rtol + (r.rounding or 0.0), r.fd_noise, r.fd_spread, low)
        if "mismatch" in (derivation, yours):
            return "mismatch"
        return "ok" if derivation == yours == "ok" else "unresolved"

    @property
    def statuses(self) -> tuple[str, ...]:
        """The status of every leaf, in the order of :attr:`leaves`."""
        return tuple(self.status(r) for r in self.leaves)

    @property
    def mismatch(self) -> bool:
        """True when some leaf is wrong beyond what rounding or kinks can explain."""
        return "mismatch" in self.statuses

    @property
    def unresolved(self) -> tuple[LeafReport, ...]:
        """The leaves finite differences could not check (see the module docstring)."""
        return tuple(r for r, s in zip(self.leaves, self.statuses) if s == "unresolved")

    @property
    def ok(self) -> bool:
        """Every leaf ``ok``: manual matches autodiff and finite differences on every leaf.

        False when a leaf is a mismatch, and also when a requested check could not be made
        (an ``unresolved`` leaf): a report cannot vouch for a leaf it did not check.
        """
        return all(s == "ok" for s in self.statuses)

    def table(self) -> str:
        """A fixed-width table, one row per leaf.

        >>> from fnn import MLP, compare_gradients
        >>> import jax, jax.numpy as jnp
        >>> net = MLP((2, 3, 2), hidden="tanh", output="softmax")
        >>> params, x, y = net.init(jax.random.key(0)), jnp.ones((4, 2)), jnp.array([0, 1, 1, 0])
        >>> r = compare_gradients(net, params, x, y, loss="cross_entropy")
        >>> print(r.table())  # doctest: +ELLIPSIS
        gradient check: loss=... dtype=float32 eps=6.1e-06 finite differences in float64
        layer leaf        shape   |man-ad|       rel   |man-fd|       rel  checked kinks     status
        ...
        OK: max rel manual-vs-autodiff ...
        note: the derivation in float64 vs finite differences in float64: max rel ... (tol 1e-06); float32 rounding ...
        """
        w = max(4, *(len(r.leaf) for r in self.leaves))  # the leaf column: 4 for an MLP's W and b
        man = "man" if self.has_manual else "ad"  # a Model: jax.grad is the gradient checked
        head = (
            f"{'layer':>5} {'leaf':>{w}} {'shape':>12} {'|man-ad|':>10} {'rel':>9} "
            f"{f'|{man}-fd|':>10} {'rel':>9} {'checked':>8} {'kinks':>5} {'status':>10}"
        )
        first = f"gradient check: loss={self.loss:.6g} dtype={self.dtype} eps={self.eps:.2g}"
        if self.fd_precision != self.dtype:
            first += f" finite differences in {self.fd_precision}"
        if not self.has_manual:
            first += " (a Model: no hand-derived backward pass; jax.grad vs finite differences)"
        lines = [first, head, "-" * len(head)]
        statuses = self.statuses
        for r, st in zip(self.leaves, statuses):
            ad = f"{r.autodiff_abs:>10.2e} {r.autodiff_rel:>9.2e}" if self.has_manual else f"{'-':>10} {'-':>9}"
            lines.append(
                f"{r.layer:>5} {r.leaf:>{w}} {r.shape!s:>12} {ad} "
                f"{r.fd_abs:>10.2e} {r.fd_rel:>9.2e} {r.checked:>8} {r.kinks:>5} {st:>10}"
            )
        verdict = "MISMATCH" if "mismatch" in statuses else "UNRESOLVED" if "unresolved" in statuses else "OK"
        if self.has_manual:
            lines.append(
                f"{verdict}: max rel manual-vs-autodiff {self.max_autodiff_rel:.2e} (tol {self.autodiff_rtol:.0e}), "
                f"manual-vs-finite-diff {self.max_fd_rel:.2e} (tol {self.fd_rtol:.0e})"
            )
        else:
            lines.append(f"{verdict}: max rel autodiff-vs-finite-diff {self.max_fd_rel:.2e} (tol {self.fd_rtol:.0e})")
        if self.skipped:
            lines.append(
                "note: running statistics left out, not trained (their gradient is zero by construction): "
                + ", ".join(self.skipped)
            )
        lines += [f"note: {n}" for n in self.notes]
        unchecked = [r for r, st in zip(self.leaves, statuses) if st == "unresolved" and r.checked == 0]
        if unchecked:
            names = ", ".join(f"layer {r.layer} {r.leaf}" for r in unchecked)
            lines.append(f"note: no coordinate of {names} could be compared with finite differences (kinks or not sampled)")
        with64 = [r for r in self.leaves if r.fd64_rel is not None]
        if with64 and self.fd64_rtol is not None:
            rounding = max(r.rounding or 0.0 for r in with64)
            lines.append(
                f"note: the derivation in float64 vs finite differences in float64: max rel "
                f"{max(r.fd64_rel or 0.0 for r in with64):.2e} (tol {self.fd64_rtol:.0e}); "
                f"{self.dtype} rounding moves the manual gradients by up to {rounding:.1e} relative"
            )
        floored = [r for r, st in zip(self.leaves, statuses) if st == "unresolved" and r.checked > 0]
        if floored and self.fd_precision != "float64":
            names = ", ".join(f"layer {r.layer} {r.leaf} ({r.fd_rel:.1e}, their own spread {r.fd_spread:.1e})" for r in floored)
            lines.append(
                f"note: {self.fd_precision} finite differences cannot resolve gradients this small ({names}): "
                "rerun in float64 (compare_gradients takes them in float64 where the platform allows, unless fd64=False)"
            )
        elif floored:
            names = ", ".join(
                f"layer {r.layer} {r.leaf} ({r.fd_rel:.1e} vs floor {r.fd_noise:.1e}, spread {r.fd_spread:.1e})" for r in floored
            )
            lines.append(
                f"note: finite differences cannot resolve {names}: the gradients are too small next to the loss "
                "(or too flat next to its curvature); check with a smaller loss or a smaller eps"
            )
        if self.kinks:
            lines.append(f"note: {self.kinks} coordinate(s) straddle a ReLU-like kink within ±eps; excluded from finite diff")
        return "\n".join(lines)

    __str__ = table


def _judge(err: float, tol: float, noise: float, spread: float, low_precision: bool) -> str:
    """One comparison with finite differences: ``ok`` within ``tol``; ``unresolved`` where their own
    error (the rounding floor ``noise``, capped at :data:`FD_FLOOR_CAP`, plus the measured ``spread``,
    capped there too unless they were taken in a low precision) may explain ``err``; else ``mismatch``."""
    if err <= tol:
        return "ok"
    spread = spread if low_precision else min(spread, FD_FLOOR_CAP)
    if noise >= 1.0 or err <= min(noise, FD_FLOOR_CAP) + spread:
        return "unresolved"
    return "mismatch"
