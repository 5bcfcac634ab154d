"""What a wrong hand derivation does when fnn first meets it: the first-use policy.

fnn runs :func:`~fnn.check.check_derivation` the first time a network or a training call meets an
activation, loss or block you built (:func:`verify_once`), and :func:`on_first_use` says what follows from a
wrong derivative: ``"raise"`` (the default: a ValueError when the derivative is wrong against both
``jax.grad`` (a block: ``jax.vjp``) and finite differences; a warning when only one of them disagrees),
``"warn"`` (a warning, once per record, and training carries on) or ``"off"`` (no check at all). An
activation that is not elementwise, and a block that breaks the block contract, are refused under
``"raise"`` and ``"warn"`` alike.

:func:`fnn.activations.get`, :func:`fnn.losses.get` and :class:`fnn.Network` import :func:`verify_once`
lazily, at that first use (the one import of the core against the layers, ignored imports in
``pyproject.toml``'s contracts). fnn's own blocks are not checked at run time: fnn's tests check them.
"""

from __future__ import annotations

import dataclasses
import warnings
import weakref
from typing import TYPE_CHECKING, Any

from fnn.core import activations as _act
from fnn.core import losses as _losses
from fnn.core.blocks import Block

if TYPE_CHECKING:  # annotations only: fnn.check.derivation imports this module (it re-exports its names)
    from fnn.check.derivation import Comparison, DerivationReport


@dataclasses.dataclass
class _Seen:
    report: DerivationReport
    warned: bool = False


# The user-made activations and losses already checked in this process, with their reports and whether
# a wrong one has warned (weakly held: a check is redone only for a new object).
_VERIFIED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
# The user-made blocks checked, by block (equal blocks: the same class and settings) and then input width:
# weakly held where the block allows it; a block with __slots__ and no __weakref__ is held here for good.
_BLOCKS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_BLOCKS_HELD: dict[Any, dict[int, _Seen]] = {}
#: What a wrong derivative found on a block's or activation's first use does (:func:`fnn.check.on_first_use`).
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
    :class:`~fnn.losses.Loss` you built, fnn checks its derivative (:func:`~fnn.check.check_derivation`):

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


def _block_checks(block: Block) -> dict[int, _Seen]:
    """The checks of ``block`` done so far, by input width."""
    try:
        return _BLOCKS.setdefault(block, {})
    except TypeError:  # no weak reference to it (__slots__)
        return _BLOCKS_HELD.setdefault(block, {})


def verify_once(obj: _act.Activation | _losses.Loss | Block, n_in: int | None = None) -> None:
    """Check a user-made activation, loss or block the first time fnn meets it; what a wrong one does is
    :func:`on_first_use`'s setting (by default: refused with a ValueError).

    Called by :func:`fnn.activations.get` (so by ``MLP``), :func:`fnn.losses.get` (so by every training
    and gradient entry point) and :class:`fnn.Network` (each block you wrote, with ``n_in`` its input
    width: a block is checked once per width); a wrong derivative would otherwise train silently.
    fnn's own blocks are not checked here (fnn's tests check them).
    """
    mode = _first_use[0]
    if mode == "off":
        return
    if isinstance(obj, Block):
        if obj.builtin:
            return
        if n_in is None:
            raise TypeError("verify_once(block, n_in): a block is checked at the width of its input")
        n_in = int(n_in)
        checks = _block_checks(obj)
        seen = checks.get(n_in)
    elif n_in is not None:
        raise TypeError("`n_in` applies to a block; an activation or a loss is checked on its own")
    else:
        seen = _VERIFIED.get(obj)
    if seen is None:  # a malformed one raises here, and is checked (and refused) again next time
        from fnn.check import derivation  # loaded by then (fnn.check imports it); it imports this module

        if isinstance(obj, Block) and n_in is not None:
            seen = checks[n_in] = _Seen(derivation.check_derivation(obj, n_in=n_in))
        else:
            seen = _VERIFIED[obj] = _Seen(derivation.check_derivation(obj))
    report = seen.report
    if report.ok:
        return
    block = isinstance(obj, Block)
    kind = "an fnn.Activation" if isinstance(obj, _act.Activation) else "an fnn.Block" if block else "an fnn.Loss"
    if mode == "raise" and _wrong_against_both(report):
        what = (
            "backward pass disagrees with both jax.vjp of its forward pass"
            if block
            else "derivative disagrees with both jax.grad"
        )
        call = f"fnn.check_derivation(block, n_in={n_in})" if block else "fnn.check_derivation(...)"
        fix = "the backward pass" if block else "the derivative"
        raise ValueError(
            f"{report.verdict} Training with it would follow the wrong gradient, so fnn refuses {kind} whose "
            f"{what} and finite differences ({call} prints the table). Fix {fix}; or, if it is wrong on purpose, "
            'carry on with a warning: fnn.check.on_first_use("warn") (or "off": no check), for the process or in a `with` block.'
        )
    if not seen.warned:  # once per record (a block: per input width)
        seen.warned = True
        warnings.warn(
            f"{report.verdict} Training with it follows the wrong gradient "
            '(fnn.check.on_first_use("raise" | "warn" | "off") sets what a wrong derivative does).',
            UserWarning,
            stacklevel=3 if block else 4,  # the user's line: Network(...) calls this directly
        )


__all__ = ["FIRST_USE_MODES", "FirstUse", "on_first_use", "verify_once"]
