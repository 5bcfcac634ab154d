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
by ``f′(z)`` entry by entry, would train it with wrong gradients). One that is not is refused.

**On first use.** fnn runs this check the first time a network or a training call meets an
activation or loss you built (:func:`verify_once`), and :func:`on_first_use` says what follows from a
wrong derivative: ``"raise"`` (the default: a ValueError when the derivative is wrong against both
``jax.grad`` and finite differences; a warning when only one of them disagrees), ``"warn"`` (a
warning, once per record, and training carries on) or ``"off"`` (no check at all).
"""

from __future__ import annotations

import dataclasses
import warnings
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from fnn.core import activations as _act
from fnn.core import losses as _losses

AUTODIFF_RTOL = 1e-8
FD_RTOL = 1e-6
FLOOR = 1e-6  # of the reference's largest magnitude: against jax.grad
FD_FLOOR = 1e-4  # against finite differences, whose own accuracy is ~1e-10 of that scale
K = 3  # outputs per example when a loss is checked


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
        return bool(self.points) and self.worst <= self.rtol


@dataclasses.dataclass(frozen=True)
class DerivationReport:
    """What :func:`check_derivation` found. ``ok`` is True when every comparison passes.

    ``str(report)`` is a table by regime with the verdict under it; ``report.verdict`` is one line.
    """

    name: str
    kind: str  # "activation" or "loss" (and "loss ∂E/∂y" rows for a loss's target derivative)
    comparisons: tuple[Comparison, ...]
    skipped: int  # grid points left out on (or, for finite differences, near) a declared kink
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.comparisons)

    @property
    def worst(self) -> Comparison:
        """The comparison with the largest error relative to its tolerance."""
        return max(self.comparisons, key=lambda c: c.worst / c.rtol)

    @property
    def verdict(self) -> str:
        """One line: OK with the worst errors, or WRONG with where it fails."""
        errs = ", ".join(f"{c.against} {c.worst:.1e}" for c in self.comparisons)
        if self.ok:
            return f"{self.kind} {self.name!r}: derivative OK (worst relative error: {errs})."
        bad = [c for c in self.comparisons if not c.ok]
        where = "; ".join(f"vs {c.against}: worst error {c.worst:.2g} > {c.rtol:g}, e.g. at {c.at}" for c in bad)
        return f"{self.kind} {self.name!r}: the hand-derived derivative is WRONG: {where}."

    def table(self) -> str:
        regimes = [r for r, _ in self.comparisons[0].by_regime]
        head = f"{'against':<26}" + "".join(f"{r:>14}" for r in regimes) + f"{'worst':>10}  status"
        lines = [f"check_derivation: {self.kind} {self.name!r}, float64", head]
        for c in self.comparisons:
            cells = "".join(f"{v:>14.1e}" if np.isfinite(v) else f"{'-':>14}" for _, v in c.by_regime)
            lines.append(f"{c.against:<26}{cells}{c.worst:>10.1e}  {'ok' if c.ok else 'WRONG'}")
        if self.skipped:
            lines.append(f"{self.skipped} grid points on or next to a declared kink were left out")
        lines += list(self.notes)
        lines.append(self.verdict)
        return "\n".join(lines)

    __str__ = table


def check_derivation(
    obj: _act.Activation | _losses.Loss,
    *,
    kinks: Sequence[float] | None = None,
    output: str | _act.Activation | None = None,
) -> DerivationReport:
    """Verify a hand-derived derivative against ``jax.grad`` and central finite differences.

    Args:
      obj: an :class:`~fnn.activations.Activation` (checks ``df(z, f(z))`` against ``f'(z)``) or a
        :class:`~fnn.losses.Loss` (checks ``grad(u, y)`` against ``∂E/∂u``, and ``grad_y`` against
        ``∂E/∂y`` when given), built-in or your own.
      kinks: points where the derivative jumps (an activation's kinks; default ``(0.0,)`` when the
        activation says ``kinks=True``, else none). Grid points on a kink are left out.
      output: for a loss written on the network's output, an output activation whose range the
        points ``u`` are drawn from (e.g. ``"sigmoid"`` for probabilities); default: any real ``u``.

    Returns:
      A :class:`DerivationReport`; ``report.ok``, ``report.verdict`` (one line), ``print(report)``.

    Example:
      >>> import fnn
      >>> wrong = fnn.Activation("tanh?", jnp.tanh, lambda z, h: 1 - h)  # f′ written as 1 − h
      >>> print(check_derivation(wrong).verdict)  # doctest: +ELLIPSIS
      activation 'tanh?': the hand-derived derivative is WRONG: vs jax.grad: worst error ... e.g. at z = ...
      >>> check_derivation(fnn.activations.get("gelu")).ok
      True
    """
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
    raise TypeError(f"`obj` must be an fnn.Activation or an fnn.Loss, got {type(obj).__name__}: {obj!r:.60}")


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


def _probe(fn: Callable, args: tuple, shape: tuple[int, ...], kind: str, name: str, field: str, elementwise: bool = False) -> Any:
    """What ``fn`` returns for abstract ``args`` (nothing is computed): a real float array of ``shape``
    (for a derivative: any shape that broadcasts to it), else a TypeError / ValueError naming the record
    and the function, before a malformed one reaches a network and fails deep inside JAX or, worse,
    broadcasts to a silently wrong result."""
    try:
        out = jax.eval_shape(fn, *args)
    except jax.errors.JAXTypeError as e:  # numpy or Python control flow on traced values
        raise TypeError(
            f"{kind} {name!r}: `{field}` cannot be traced by JAX ({type(e).__name__}); fnn compiles it with jax.jit, "
            "so write it with jax.numpy"
        ) from None
    got = f"shape {out.shape} dtype {out.dtype}" if hasattr(out, "shape") and hasattr(out, "dtype") else type(out).__name__
    if not (hasattr(out, "shape") and hasattr(out, "dtype")):
        raise TypeError(f"{kind} {name!r}: `{field}` must return an array, got {got}")
    try:
        fits = out.shape == shape if elementwise else jnp.broadcast_shapes(out.shape, shape) == shape
    except ValueError:  # shapes that do not broadcast
        fits = False
    real = (
        jnp.issubdtype(out.dtype, jnp.floating)
        if elementwise
        else jnp.issubdtype(out.dtype, jnp.number) and not jnp.issubdtype(out.dtype, jnp.complexfloating)
    )
    if not fits or not real:
        what = (
            "one value per example"
            if kind == "loss" and field == "fn"
            else "the shape of its input"
            if elementwise
            else "values of its input's shape"
        )
        raise ValueError(
            f"{kind} {name!r}: `{field}` must return real floats, {what} {shape}; "
            f"for inputs of shape {args[0].shape} it returned {got}"
        )
    return out


@dataclasses.dataclass
class _Seen:
    report: DerivationReport
    warned: bool = False


# The user-made activations and losses already checked in this process, with their reports and whether
# a wrong one has warned (weakly held: a check is redone only for a new object).
_VERIFIED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
FIRST_USE_MODES = ("raise", "warn", "off")
_first_use = ["raise"]  # what a wrong derivative found on first use does: one process-wide setting


class FirstUse:
    """What :func:`on_first_use` returns: the setting now (``mode``) and the one before it
    (``previous``); used as a context manager, it restores ``previous`` on leaving the block."""

    def __init__(self, mode: str, previous: str) -> None:
        self.mode, self.previous = mode, previous

    def __enter__(self) -> FirstUse:
        return self

    def __exit__(self, *exc: object) -> None:
        _first_use[0] = self.previous

    def __repr__(self) -> str:
        return f"on_first_use({self.mode!r})"


def on_first_use(mode: str | None = None) -> FirstUse:
    """Say what a wrong hand derivation does when fnn first meets it: ``"raise"``, ``"warn"`` or ``"off"``.

    The first time a network or a training call uses an :class:`~fnn.activations.Activation` or a
    :class:`~fnn.losses.Loss` you built, fnn checks its derivative (:func:`check_derivation`):

    - ``"raise"`` (the default): a derivative wrong against both ``jax.grad`` and finite differences
      raises a ValueError (the record is refused at every use); wrong against only one of them, it warns;
    - ``"warn"``: a wrong derivative warns, once per record, and training carries on with it;
    - ``"off"``: no check (a record met while it is off is checked at its first use after).

    An activation that is not elementwise is refused under ``"raise"`` and ``"warn"`` alike: no
    derivative ``f′(z)`` can make fnn's backward pass right for it.

    Called with a mode, it sets it for the process and returns a :class:`FirstUse` that restores
    the one before when used as a context manager; called without, it returns the setting as is.

    >>> on_first_use().mode
    'raise'
    >>> with on_first_use("warn"):  # a derivative wrong on purpose: carry on with a warning
    ...     on_first_use().mode
    'warn'
    >>> on_first_use().mode
    'raise'
    """
    current = _first_use[0]
    if mode is None:
        return FirstUse(current, current)
    if not isinstance(mode, str):
        raise TypeError(f"`mode` must be one of {', '.join(map(repr, FIRST_USE_MODES))}, got {type(mode).__name__}: {mode!r:.60}")
    if mode not in FIRST_USE_MODES:
        raise ValueError(f"`mode` must be one of {', '.join(map(repr, FIRST_USE_MODES))}, got {mode!r:.60}")
    _first_use[0] = mode
    return FirstUse(mode, current)


def _wrong_against_both(report: DerivationReport) -> bool:
    """Some derivative (``f′``; a loss's ``∂E/∂u`` or ``∂E/∂y``) fails against ``jax.grad`` and finite
    differences alike: two independent references agree that it is wrong."""
    groups: dict[str, list[Comparison]] = {}
    for c in report.comparisons:
        groups.setdefault(c.against.split(":")[0] if ":" in c.against else "", []).append(c)
    return any(len(cs) >= 2 and not any(c.ok for c in cs) for cs in groups.values())


def verify_once(obj: _act.Activation | _losses.Loss) -> None:
    """Check a user-made activation or loss the first time fnn meets it; what a wrong one does is
    :func:`on_first_use`'s setting (by default: refused with a ValueError).

    Called by :func:`fnn.activations.get` (so by ``MLP``) and :func:`fnn.losses.get` (so by every
    training and gradient entry point); a wrong derivative would otherwise train silently.
    """
    mode = _first_use[0]
    if mode == "off":
        return
    seen = _VERIFIED.get(obj)
    if seen is None:  # a malformed one raises here, and is checked (and refused) again next time
        seen = _VERIFIED[obj] = _Seen(check_derivation(obj))
    report = seen.report
    if report.ok:
        return
    kind = "an fnn.Activation" if isinstance(obj, _act.Activation) else "an fnn.Loss"
    if mode == "raise" and _wrong_against_both(report):
        raise ValueError(
            f"{report.verdict} Training with it would follow the wrong gradient, so fnn refuses {kind} whose "
            f"derivative disagrees with both jax.grad and finite differences (fnn.check_derivation(...) prints the "
            "table). Fix the derivative; or, if it is wrong on purpose, carry on with a warning: "
            'fnn.check.on_first_use("warn") (or "off": no check), for the process or in a `with` block.'
        )
    if not seen.warned:  # once per record
        seen.warned = True
        warnings.warn(
            f"{report.verdict} Training with it follows the wrong gradient "
            '(fnn.check.on_first_use("raise" | "warn" | "off") sets what a wrong derivative does).',
            UserWarning,
            stacklevel=4,
        )


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
    h_probe = _probe(act.f, (probe,), probe.shape, "activation", act.name, "f", elementwise=True)
    _probe(act.df, (probe, h_probe), probe.shape, "activation", act.name, "df")  # type: ignore[arg-type]  # elementwise: df is set
    _check_elementwise(act)
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
        return (yours, *_central(lambda e: f(z + e), hstep))

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
        comparisons.append(_compare("jax.grad", yours, auto, ~on_kink, regime, label, AUTODIFF_RTOL, ACT_REGIMES))
    comparisons.append(_compare("finite differences", yours, fd, ~near_kink, regime, label, FD_RTOL, ACT_REGIMES, allowance))
    return DerivationReport(act.name, "activation", tuple(comparisons), int(near_kink.sum()), tuple(notes))


def _check_elementwise(act: _act.Activation) -> None:
    """Refuse an ``f`` whose value at one entry depends on the others (a normalisation, a mean, the
    batch's shape): ``f`` of a batch must equal ``f`` of each entry alone, up to rounding."""
    rng = np.random.default_rng(0)
    z = np.concatenate([rng.normal(size=(4, 6)) * 3.0, np.linspace(-12.0, 12.0, 18).reshape(3, 6)])  # rows of 6

    @jax.jit
    def both(z):
        batch = jnp.asarray(act.f(z))
        alone = jax.vmap(lambda v: jnp.asarray(act.f(v[None]))[0])(z.reshape(-1)).reshape(z.shape)  # each entry by itself
        return batch, alone

    try:
        batch, alone = (np.asarray(a) for a in both(jnp.asarray(z)))
    except jax.errors.JAXTypeError as e:
        raise TypeError(
            f"activation {act.name!r}: `f` cannot be traced by JAX ({type(e).__name__}); fnn compiles it with jax.jit, "
            "so write it with jax.numpy"
        ) from None
    with np.errstate(invalid="ignore"):
        differ = ~np.isclose(batch, alone, rtol=1e-12, atol=1e-300, equal_nan=True)
    if differ.any():
        i, j = (int(v) for v in np.argwhere(differ)[0])
        raise ValueError(
            f"activation {act.name!r} is not elementwise: f(z) at one entry depends on the others "
            f"(for a batch of shape {z.shape}, entry [{i}, {j}], z = {z[i, j]:.4g}: f of the batch gives {batch[i, j]:.6g}, "
            f"f of that entry alone {alone[i, j]:.6g}). fnn's backward pass multiplies by f′(z) entry by entry, so it "
            "would train this with wrong gradients. A hidden activation maps each z_i on its own; a normalisation "
            'such as softmax is an output activation (output="softmax"), not a hidden one.'
        )


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
        else:
            y = rng.normal(size=(n, K)) * max(1.0, scale / 5)
        us.append(u)
        ys.append(y.astype(np.float64))
        regime.append(np.full(n * K, i))
    return np.concatenate(us), np.concatenate(ys), np.concatenate(regime)


def _check_loss_grads(loss: _losses.Loss, kinks: tuple[float, ...], output: _act.Activation | None) -> DerivationReport:
    probe = jax.ShapeDtypeStruct((8, K), jnp.float64)
    _probe(loss.fn, (probe, probe), (8,), "loss", loss.name, "fn", elementwise=True)
    for field in ("grad", "grad_y"):
        if getattr(loss, field) is not None:
            _probe(getattr(loss, field), (probe, probe), probe.shape, "loss", loss.name, field)
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

            d, al = _central(moved, step)
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
                _compare(f"{name}: jax.grad", yours.ravel(), auto.ravel(), ~on_kink, regime, label, AUTODIFF_RTOL, LOSS_REGIMES)
            )
        except Exception as e:
            notes.append(f"jax.grad of E failed ({type(e).__name__}), so only finite differences were compared")
        comparisons.append(
            _compare(
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


# ---- comparison --------------------------------------------------------------------------------


def _central(g: Callable, step: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``(d, allowance)``: the central difference ``(g(h) − g(−h)) / 2h`` of ``g(e)`` (elementwise in
    ``e``) and the error finite differences themselves may carry there: the rounding of ``g``'s
    values divided by the step, plus the truncation error estimated from the same difference at
    twice the step (Richardson: |d(h) − d(2h)| ≈ 3 × the truncation error of d(h)), or the spread
    against the difference at half the step, whose rounding noise is twice d's (it shows the noise
    of intermediate values larger than g's own, such as 1 + tanh(u) near −1 in gelu). A wrong
    derivative is off by more than this; a function large next to its slope is not flagged."""
    plus, minus = g(step), g(-step)
    d = (plus - minus) / (2 * step)
    d2 = (g(2 * step) - g(-2 * step)) / (4 * step)
    d_half = (g(step / 2) - g(-step / 2)) / step  # its rounding noise is twice d's: shows noise |f| hides
    rounding = 8 * jnp.finfo(d.dtype).eps * jnp.maximum(jnp.abs(plus), jnp.abs(minus)) / (2 * step)
    return d, rounding + jnp.maximum(jnp.abs(d - d2), jnp.abs(d - d_half))


def _compare(
    against: str,
    yours: np.ndarray,
    ref: np.ndarray,
    mask: np.ndarray,
    regime: np.ndarray,
    label: list[str],
    rtol: float,
    regimes: tuple[str, ...],
    allowance: np.ndarray | None = None,
) -> Comparison:
    """Errors ``max(|yours − ref| − allowance, 0) / max(|ref|, floor)`` over the masked points."""
    finite = np.isfinite(ref)
    mask = mask & finite
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


__all__ = ["FIRST_USE_MODES", "Comparison", "DerivationReport", "FirstUse", "check_derivation", "on_first_use", "verify_once"]
