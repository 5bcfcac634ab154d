"""Is my derivation right? Check a hand-derived derivative against ``jax.grad`` and finite differences.

:func:`check_derivation` takes an :class:`~fnn.activations.Activation` (``f`` and your ``f′``) or a
:class:`~fnn.losses.Loss` (``E`` and your ``∂E/∂u``, and ``∂E/∂y`` if you gave it) and compares your
derivative, in float64, with

- ``jax.grad`` of the function (an independent oracle: it differentiates your ``f`` or ``E``, not
  your derivative), and
- central finite differences with the step ``ε·max(1, |u|)``, ``ε = ∛(machine epsilon)``,

over a grid that covers the function's regimes: around 0, moderate and large ``|z|`` of both signs
(where sigmoid-like functions saturate and a derivative written as ``1 − h`` instead of ``1 − h²``
shows), and both sides of every kink you declare. Points on a kink are left out (the derivative is
not defined there); finite differences also skip points within two steps of one.

The error at a point is ``|yours − reference| / max(|reference|, floor)``, the floor being 1e-6
(jax.grad) or 1e-4 (finite differences) of the reference's largest magnitude on the grid, so that
rounding where the derivative is tiny or crosses zero is not mistaken for a wrong formula. Against
finite differences, the error finite differences themselves carry at that point is subtracted first:
the rounding of the function's values over the step (large where the function is large next to its
slope, as sigmoid at z = 30), and the truncation error estimated by repeating the difference at
twice the step. A derivation passes when it is within ``1e-8`` of ``jax.grad`` and ``1e-6`` of
finite differences everywhere.

An activation must also be elementwise: ``f`` applied to a batch must equal ``f`` applied to each
entry alone (a normalisation such as ``z / ‖z‖`` is not, and fnn's backward pass, which multiplies
by ``f′(z)`` entry by entry, would train it with wrong gradients). One that is not is refused (``_wellformed.py``, with the checks
that every function traces under JAX and returns real floats of the right shape).

A :class:`~fnn.blocks.Block` of your own is checked the same way, as a whole: its ``backward`` against
``jax.vjp`` of its ``forward`` and finite differences, in train and eval mode, at a generic point
(``_blockcheck.py`` says how the point is drawn; ``_wellformed.check_block`` refuses a block that breaks the
block contract first).

fnn also runs this check the first time a network or a training call meets an activation, loss or block you
built; what a wrong one does then is the first-use policy of :mod:`fnn.check.first_use`
(:func:`~fnn.check.first_use.on_first_use`, :func:`~fnn.check.first_use.verify_once`), whose names this
module still exports.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from fnn import _checks
from fnn.check import _blockcheck, _wellformed
from fnn.check._compare import FD_FLOOR, FLOOR, Comparison, central, compare  # noqa: F401  (the floors: still importable here)
from fnn.check.first_use import FIRST_USE_MODES, FirstUse, on_first_use, verify_once  # the policy's home; same objects
from fnn.core import activations as _act
from fnn.core import losses as _losses
from fnn.core.blocks import Block

AUTODIFF_RTOL = 1e-8
FD_RTOL = 1e-6
K = 3  # outputs per example when a loss is checked


@dataclasses.dataclass(frozen=True)
class DerivationReport:
    """What :func:`check_derivation` found. ``ok`` is True when every comparison passes.

    ``str(report)`` is a table by regime with the verdict under it; ``report.verdict`` is one line.
    """

    name: str
    kind: str  # "activation", "loss" (with "∂E/∂y" rows for a loss's target derivative) or "block"
    comparisons: tuple[Comparison, ...]
    skipped: int  # grid points left out on (or, for finite differences, near) a declared kink
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """Whether every comparison holds, the derivation matching ``jax.grad`` and finite differences in every regime."""
        return all(c.ok for c in self.comparisons)

    @property
    def worst(self) -> Comparison:
        """The comparison with the largest error relative to its tolerance."""
        return max(self.comparisons, key=lambda c: c.worst / c.rtol)

    @property
    def _what(self) -> str:
        return f"block {self.name}" if self.kind == "block" else f"{self.kind} {self.name!r}"

    @property
    def verdict(self) -> str:
        """One line, OK with the worst errors or WRONG with where it fails."""
        derivative = "backward pass" if self.kind == "block" else "derivative"
        errs = ", ".join(f"{c.against} {c.worst:.1e}" for c in self.comparisons)
        if self.ok:
            return f"{self._what}: {derivative} OK (worst relative error: {errs})."
        bad = [c for c in self.comparisons if not c.ok]
        where = "; ".join(f"vs {c.against}: worst error {c.worst:.2g} > {c.rtol:g}, e.g. at {c.at}" for c in bad)
        return f"{self._what}: the hand-derived {derivative} is WRONG: {where}."

    def table(self) -> str:
        """A fixed-width table: one row per comparison, its worst error in each regime, and its status."""
        regimes = [r for r, _ in self.comparisons[0].by_regime]
        width = max(26, *(len(c.against) + 2 for c in self.comparisons))
        head = f"{'against':<{width}}" + "".join(f"{r:>14}" for r in regimes) + f"{'worst':>10}  status"
        lines = [f"check_derivation: {self._what}, float64", head]
        for c in self.comparisons:
            cells = "".join(f"{v:>14.1e}" if np.isfinite(v) else f"{'-':>14}" for _, v in c.by_regime)
            lines.append(f"{c.against:<{width}}{cells}{c.worst:>10.1e}  {'ok' if c.ok else 'WRONG'}")
        if self.skipped:
            lines.append(f"{self.skipped} grid points on or next to a declared kink were left out")
        lines += list(self.notes)
        lines.append(self.verdict)
        return "\n".join(lines)

    __str__ = table


def check_derivation(
    obj: _act.Activation | _losses.Loss | Block,
    *,
    kinks: Sequence[float] | None = None,
    output: str | _act.Activation | None = None,
    n_in: int | None = None,
    batch: int | None = None,
    key: jax.Array | None = None,
) -> DerivationReport:
    """Verify a hand-derived derivative against ``jax.grad`` and central finite differences.

    Args:
      obj: an :class:`~fnn.activations.Activation` (checks ``df(z, f(z))`` against ``f'(z)``), a
        :class:`~fnn.losses.Loss` (checks ``grad(u, y)`` against ``∂E/∂u``, and ``grad_y`` against
        ``∂E/∂y`` when given) or a :class:`~fnn.blocks.Block` (checks ``backward`` against ``jax.vjp`` of
        ``forward``, for the parameters and the input, in train and eval mode), built-in or your own.
      kinks: points where the derivative jumps (an activation's kinks; default ``(0.0,)`` when the
        activation says ``kinks=True``, else none). Grid points on a kink are left out.
      output: for a loss written on the network's output, an output activation whose range the
        points ``u`` are drawn from (e.g. ``"sigmoid"`` for probabilities); default: any real ``u``.
      n_in: for a block (required): the width of its input.
      batch: for a block: the examples in the checked batch (default 6; at least 2, for batch statistics).
      key: for a block: draws the inputs, the upstream gradient, the parameters' perturbation and a random
        block's mask (default ``jax.random.key(0)``).

    Returns:
      A :class:`DerivationReport`; ``report.ok``, ``report.verdict`` (one line), ``print(report)``. For a
      block, one pair of rows (``jax.vjp``, finite differences) per quantity, ``∂E/∂x`` and each trained
      parameter, with a column per mode; a block with running statistics also has ``∂E/∂state: must be zero``.

    Raises:
      TypeError, ValueError: a record or block that is not well formed (it does not trace, returns the
        wrong number of values, shapes or dtypes, or a block's gradients do not have its parameters'
        structure), named with what is wrong.

    Example:
      >>> import fnn
      >>> wrong = fnn.Activation("tanh?", jnp.tanh, lambda z, h: 1 - h)  # f′ written as 1 − h
      >>> print(check_derivation(wrong).verdict)  # doctest: +ELLIPSIS
      activation 'tanh?': the hand-derived derivative is WRONG: vs jax.grad: worst error ... e.g. at z = ...
      >>> check_derivation(fnn.activations.get("gelu")).ok
      True
      >>> check_derivation(fnn.blocks.LayerNorm(), n_in=4).ok  # a block: its backward pass, in both modes
      True
    """
    if isinstance(obj, Block):
        if kinks is not None or output is not None:
            raise TypeError("`kinks` and `output` apply to an activation or a loss; a block is checked with n_in=, batch=, key=")
        if n_in is None:
            raise TypeError(
                f"check_derivation of a block needs `n_in`, the width of its input: check_derivation({obj!r:.30}, n_in=4)"
            )
        n_in = _checks.check_int(n_in, "n_in", low=1)
        batch = _checks.check_int(6 if batch is None else batch, "batch", low=2)
        if key is None:
            key = jax.random.key(0)
        _checks.check_key(key, "key")
        with _x64():
            comparisons, notes = _blockcheck.check_block(obj, n_in, batch, key)
        return DerivationReport(f"{obj!r:.60} at n_in={n_in}", "block", comparisons, 0, notes)
    if n_in is not None or batch is not None or key is not None:
        raise TypeError("`n_in`, `batch` and `key` apply to a block; an activation or a loss is checked on its own grid")
    if isinstance(obj, _act.Activation):
        if kinks is None:
            kinks = (0.0,) if obj.kinks else ()
        if output is not None:
            raise TypeError("`output` applies to a loss; an activation is checked on its own")
        with _x64():
            return _check_activation(obj, _kinks(kinks))
    if isinstance(obj, _losses.Loss):
        try:
            out = None if output is None else _act.get(output)
        except (TypeError, ValueError) as e:
            raise type(e)(f"`output`: {e}") from None
        with _x64():
            return _check_loss_grads(obj, _kinks(kinks or ()), out)
    raise TypeError(
        f"`obj` must be an fnn.Activation or an fnn.Loss, or an fnn.Block (with n_in=), got {type(obj).__name__}: {obj!r:.60}"
    )


def _kinks(kinks: Any) -> tuple[float, ...]:
    try:
        out = tuple(float(k) for k in kinks)
    except (TypeError, ValueError):
        raise TypeError(f"`kinks` must be a sequence of numbers, got {kinks!r}") from None
    if not all(np.isfinite(out)):
        raise ValueError(f"`kinks` must be finite, got {kinks!r}")
    return out


def _x64() -> Any:
    enable = getattr(jax, "enable_x64", None)
    if enable is not None:
        return enable(True)
    from jax import experimental  # older JAX has the context manager here

    return experimental.enable_x64()  # type: ignore[attr-defined]


# ---- activations -------------------------------------------------------------------------------


def _activation_grid(kinks: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Points and their regime index: around 0, moderate, large |z|, both sides of each kink."""
    around0 = np.linspace(-3.0, 3.0, 121)
    moderate = np.concatenate([-np.linspace(3.25, 12.0, 36), np.linspace(3.25, 12.0, 36)])
    large = np.array([-100.0, -50.0, -30.0, -20.0, -15.0, 15.0, 20.0, 30.0, 50.0, 100.0])
    offsets = np.array([1e-4, 1e-3, 1e-2, 0.1])
    near = np.concatenate([np.concatenate([k - offsets, k + offsets]) for k in kinks]) if kinks else np.zeros(0)
    parts = [around0, moderate, large, near]
    return np.concatenate(parts), np.concatenate([np.full(len(p), i) for i, p in enumerate(parts)])


ACT_REGIMES = ("|z| ≤ 3", "3 < |z| ≤ 12", "|z| ≥ 15", "next to kinks")


def _check_activation(act: _act.Activation, kinks: tuple[float, ...]) -> DerivationReport:
    if not act.elementwise:
        raise ValueError(f"activation {act.name!r} is not elementwise (softmax): its Jacobian is checked with a loss")
    probe = jax.ShapeDtypeStruct((8,), jnp.float64)
    h_probe = _wellformed.probe(act.f, (probe,), probe.shape, "activation", act.name, "f", elementwise=True)
    _wellformed.probe(act.df, (probe, h_probe), probe.shape, "activation", act.name, "df")  # type: ignore[arg-type]  # elementwise: df is set
    _wellformed.check_elementwise(act)
    z_np, regime = _activation_grid(kinks)
    on_kink = np.isin(z_np, np.asarray(kinks)) if kinks else np.zeros(len(z_np), bool)
    step = np.cbrt(np.finfo(np.float64).eps) * np.maximum(1.0, np.abs(z_np))
    near_kink = np.zeros(len(z_np), bool)
    for k in kinks:
        near_kink |= np.abs(z_np - k) <= 2 * step
    z, hstep = jnp.asarray(z_np), jnp.asarray(step)

    df = act.df
    assert df is not None  # elementwise, checked above

    def f(u):
        return jnp.asarray(act.f(u))

    @jax.jit
    def run(z, hstep):
        h = f(z)
        yours = jnp.asarray(df(z, h)) * jnp.ones_like(z)
        return (yours, *central(lambda e: f(z + e), hstep))

    try:
        yours, fd, allowance = (np.asarray(a) for a in run(z, hstep))
    except jax.errors.JAXTypeError as e:  # numpy inside f or df: fnn could not compile it either
        raise TypeError(
            f"activation {act.name!r}: f or df cannot be traced by JAX ({type(e).__name__}); fnn compiles "
            "activations with jax.jit, so write them with jax.numpy"
        ) from None
    comparisons, notes = [], []
    try:
        auto = np.asarray(jax.jit(jax.vmap(jax.grad(lambda u: f(u).sum())))(z))
    except Exception as e:  # f is not differentiable by JAX (numpy inside, say): finite differences only
        auto = None
        notes.append(f"jax.grad of f failed ({type(e).__name__}), so only finite differences were compared")
    label = [f"z = {v:.6g}" for v in z_np]
    if auto is not None:
        comparisons.append(compare("jax.grad", yours, auto, ~on_kink, regime, label, AUTODIFF_RTOL, ACT_REGIMES))
    comparisons.append(compare("finite differences", yours, fd, ~near_kink, regime, label, FD_RTOL, ACT_REGIMES, allowance))
    return DerivationReport(act.name, "activation", tuple(comparisons), int(near_kink.sum()), tuple(notes))


# ---- losses ------------------------------------------------------------------------------------

LOSS_REGIMES = ("|u| ~ 0.1", "|u| ~ 1", "|u| ~ 5", "|u| ~ 30")


def _loss_points(loss: _losses.Loss, output: _act.Activation | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(u, y, regime): 16 examples per regime of scale, K outputs each, targets of the loss's form
    (for class targets: one-hot, soft, label-smoothed, unnormalised and all-zero rows in turn)."""
    rng = np.random.default_rng(0)
    n = 16
    us, ys, regime = [], [], []
    for i, scale in enumerate((0.1, 1.0, 5.0, 30.0)):
        u = rng.normal(size=(n, K)) * scale
        if loss.on == "output" and output is not None:
            u = np.asarray(output.f(jnp.asarray(u)))  # points in the output activation's range
        if loss.targets == "classes":  # every row form fnn accepts: they differ in their sums
            onehot = np.eye(K)[rng.integers(0, K, n)]
            forms = [onehot, rng.dirichlet(np.ones(K), n), 0.9 * onehot + 0.1 / K, 2.5 * rng.dirichlet(np.ones(K), n), 0 * onehot]
            y = np.stack([forms[j % len(forms)][j] for j in range(n)])  # one-hot, soft, smoothed, unnormalised, zero
        elif loss.targets == "binary":
            y = np.where(np.arange(n)[:, None] % 2 == 0, rng.integers(0, 2, (n, K)), rng.uniform(size=(n, K)))
        elif loss.targets == "counts":  # counts and rates, > 0: ∂E/∂y = log(y/ŷ) is -inf at y = 0
            y = np.where(np.arange(n)[:, None] % 2 == 0, rng.poisson(2.0, (n, K)) + 1, rng.gamma(2.0, 1.0, (n, K)))
        else:
            y = rng.normal(size=(n, K)) * max(1.0, scale / 5)
        us.append(u)
        ys.append(y.astype(np.float64))
        regime.append(np.full(n * K, i))
    return np.concatenate(us), np.concatenate(ys), np.concatenate(regime)


def _check_loss_grads(loss: _losses.Loss, kinks: tuple[float, ...], output: _act.Activation | None) -> DerivationReport:
    probe = jax.ShapeDtypeStruct((8, K), jnp.float64)
    _wellformed.probe(loss.fn, (probe, probe), (8,), "loss", loss.name, "fn", elementwise=True)
    for field in ("grad", "grad_y"):
        if getattr(loss, field) is not None:
            _wellformed.probe(getattr(loss, field), (probe, probe), probe.shape, "loss", loss.name, field)
    u_np, y_np, regime = _loss_points(loss, output)
    u, y = jnp.asarray(u_np), jnp.asarray(y_np)
    eps = float(np.cbrt(np.finfo(np.float64).eps))
    comparisons, notes = [], []

    def fd_of(fn: Callable, a: jax.Array, other: jax.Array, wrt_first: bool) -> tuple[jax.Array, jax.Array]:
        """Central differences of the per-example E, one output coordinate at a time, with their error allowance."""
        cols, allow = [], []
        for k in range(K):
            step = eps * jnp.maximum(1.0, jnp.abs(a[:, k]))

            def moved(e, k=k):
                shifted = a.at[:, k].add(e)
                return fn(shifted, other) if wrt_first else fn(other, shifted)

            d, al = central(moved, step)
            cols.append(d)
            allow.append(al)
        return jnp.stack(cols, axis=-1), jnp.stack(allow, axis=-1)

    def pair(name: str, yours_fn: Callable, wrt_first: bool) -> int:
        a, other = (u, y) if wrt_first else (y, u)
        yours = np.asarray(yours_fn(u, y)) * np.ones(u_np.shape)
        fd, allowance = (np.asarray(v) for v in fd_of(loss.fn, a, other, wrt_first))
        label = [
            f"example {i // K}, output {i % K}: u = {uu:.4g}, y = {yy:.4g}"
            for i, (uu, yy) in enumerate(zip(u_np.ravel(), y_np.ravel()))
        ]
        on_kink = np.zeros(u_np.size, bool)
        for k in kinks:  # kinks of E in u − y (e.g. an absolute error): skip residuals next to one
            on_kink |= np.abs((u_np - y_np).ravel() - k) <= 2 * eps * np.maximum(1.0, np.abs(u_np.ravel()))
        try:
            argnum = 0 if wrt_first else 1
            auto = np.asarray(jax.grad(lambda p, q: jnp.sum(loss.fn(p, q)), argnums=argnum)(u, y))
            comparisons.append(
                compare(f"{name}: jax.grad", yours.ravel(), auto.ravel(), ~on_kink, regime, label, AUTODIFF_RTOL, LOSS_REGIMES)
            )
        except Exception as e:
            notes.append(f"jax.grad of E failed ({type(e).__name__}), so only finite differences were compared")
        comparisons.append(
            compare(
                f"{name}: finite diff.",
                yours.ravel(),
                fd.ravel(),
                ~on_kink,
                regime,
                label,
                FD_RTOL,
                LOSS_REGIMES,
                allowance.ravel(),
            )
        )
        return int(on_kink.sum())

    skipped = pair("∂E/∂u", loss.grad, True)
    if loss.grad_y is not None:
        skipped += pair("∂E/∂y", loss.grad_y, False)
    return DerivationReport(loss.name, "loss", tuple(comparisons), skipped, tuple(notes))


__all__ = ["FIRST_USE_MODES", "Comparison", "DerivationReport", "FirstUse", "check_derivation", "on_first_use", "verify_once"]
