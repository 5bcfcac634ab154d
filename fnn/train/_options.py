"""The options of a run that outlives one call, as records: :class:`Checkpointing` (the run on disk) and
:class:`Callback` (snapshots as it goes), and a call's run options checked once, at the door
(:func:`check_run` → :class:`RunOptions`).

fnn 0.1 spelled them as ten keywords of ``fit`` / ``fit_many`` (``checkpoint_dir=``, ``checkpoint_every=``,
``checkpoint_every_s=``, ``keep=``, ``resume=``, ``callback_every=``, ...); :func:`accepts_0_1_keywords`
still takes those, for one release, with a DeprecationWarning that spells the call the new way.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import pathlib
import warnings
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, TypeVar

import jax

from fnn import _checks
from fnn.train._plan import EarlyStopping
from fnn.train._state import OVERRIDABLE, FitState


class Resumed(UserWarning):
    """Said when a call continues a run from a checkpoint: which file, which epoch, how far it will go.
    Silence it with ``warnings.filterwarnings("ignore", category=fnn.Resumed)``."""


DEFAULT_EVERY_S = 60.0  # seconds between checkpoints when neither `every` nor `every_s` is given

F = TypeVar("F", bound=Callable[..., Any])


@dataclasses.dataclass(frozen=True)
class Checkpointing:
    """Write a run's whole state to a directory as it trains, and resume it from there: ``fit(...,
    checkpoint=Checkpointing("runs/a", every=10))``.

    Each checkpoint holds the parameters, optimizer state, shuffling key, epoch, stop rules' state
    (best parameters, patience), the history so far and what the run is (network, loss, optimizer,
    data shape, ...), as ``state-{epoch}.npz`` (no pickle, checksummed, written atomically;
    :func:`fnn.load` reads their parameters); one more is written when the run ends. The directory is
    made if missing; one run per directory. While a run writes checkpoints, Ctrl-C (SIGINT) finishes
    the chunk of epochs under way (about a second), writes a checkpoint and raises ``KeyboardInterrupt``
    naming it; a second Ctrl-C stops at once.

    Attributes:
      dir: the run's directory (a str or ``os.PathLike``; kept as a ``pathlib.Path``).
      every: write one every this many epochs (at epochs that are multiples of it).
      every_s: write one when this many seconds have passed since the last. Without ``every`` or
        ``every_s``, every 60 seconds.
      keep: how many of the newest checkpoints to keep (default 3).
      resume: continue the run whose checkpoints are in ``dir`` from the newest readable one (a
        damaged newest one is moved aside with a warning); with none there, start afresh. The call
        must be the one that wrote them (the same network, loss, optimizer, data shape, batch size,
        key, starting ``params``, ...): a difference is refused with a ValueError naming it, unless the
        call's ``override`` allows it. ``epochs`` may differ: a resumed call runs until its own
        ``epochs``. The result is bitwise that of the uninterrupted call, on the CPU. Without
        ``resume``, a directory that already holds checkpoints is refused.

    Example:
      >>> c = Checkpointing("runs/a", every=10, keep=2)
      >>> c.every, c.keep, c.resume, c.path.name
      (10, 2, False, 'a')
      >>> Checkpointing("runs/a", keep=0)
      Traceback (most recent call last):
      ValueError: `checkpoint.keep` must be an int in [1, inf), got 0
    """

    dir: str | os.PathLike[str]
    every: int | None = None
    every_s: float | None = None
    keep: int = 3
    resume: bool = False

    def __post_init__(self) -> None:
        path = _checks.check_path(self.dir, "checkpoint.dir", "a directory path")
        every = None if self.every is None else _checks.check_int(self.every, "checkpoint.every", low=1)
        every_s = None if self.every_s is None else _checks.check_number(self.every_s, "checkpoint.every_s", 0.0, low_open=True)
        keep = _checks.check_int(self.keep, "checkpoint.keep", low=1)
        _checks.check_flag(self.resume, "checkpoint.resume")
        for name, value in (("dir", path), ("every", every), ("every_s", every_s), ("keep", keep), ("resume", bool(self.resume))):
            object.__setattr__(self, name, value)

    @property
    def path(self) -> pathlib.Path:
        """``dir`` as a ``pathlib.Path``."""
        return pathlib.Path(self.dir)


@dataclasses.dataclass(frozen=True)
class Callback:
    """``fn(epoch, params, history)`` called every ``every`` epochs of a run (at multiples of it) and after
    the last: ``fit(..., callback=Callback(fn, every=25))``. ``fn`` gets the epochs completed, the current
    parameters and this call's history so far (numpy copies); the compiled loop leaves its device program
    only at those epochs. (``fit_many``: the stacked parameters and histories, with a leading N axis.)

    Example:
      >>> Callback(print, every=5).every
      5
    """

    fn: Callable[[int, Any, dict[str, Any]], Any]
    every: int

    def __post_init__(self) -> None:
        if not callable(self.fn):
            raise TypeError(f"`callback.fn` must be callable as fn(epoch, params, history), got {type(self.fn).__name__}")
        object.__setattr__(self, "every", _checks.check_int(self.every, "callback.every", low=1))


class RunOptions(NamedTuple):
    """A call's options about the run beyond it — checkpoints, the state it continues or returns, what it
    may change, the callback — checked (:func:`check_run`)."""

    checkpoint: Checkpointing | None
    every_s: float | None  # the checkpoints' interval in seconds, the default filled in
    override: frozenset[str]
    state: FitState | None
    return_state: bool
    callback: Callback | None

    @property
    def plain(self) -> bool:
        """None of them: the call is ``fnn.train._loop.train``'s as it always was."""
        return self.checkpoint is None and self.state is None and self.callback is None


def check_run(checkpoint: Any, state: Any, return_state: Any, override: Any, callback: Any, many: bool) -> RunOptions:
    """Check a call's run options in Python, before anything is traced; every error names its argument."""
    if checkpoint is not None:
        if not isinstance(checkpoint, Checkpointing):
            raise TypeError(
                f"`checkpoint` must be an fnn.Checkpointing, e.g. checkpoint=fnn.Checkpointing('runs/a', every=10), "
                f"got {type(checkpoint).__name__}: {checkpoint!r:.60}"
            )
        if checkpoint.path.exists() and not checkpoint.path.is_dir():
            raise ValueError(f"`checkpoint.dir` {str(checkpoint.dir)!r} is a file; it must be a directory (made if missing)")
        if jax.process_count() > 1:
            raise ValueError("`checkpoint` is not supported when training spans several processes")
    _checks.check_flag(return_state, "return_state", allow_none=True)
    names = (override,) if isinstance(override, str) else override
    if not isinstance(names, Sequence) or not all(isinstance(o, str) for o in names):
        raise TypeError(f"`override` must be a name or a tuple of names from {OVERRIDABLE}, got {override!r:.60}")
    unknown = sorted(set(names) - set(OVERRIDABLE))
    if unknown:
        raise ValueError(f"`override` names {unknown} are not among what a continued run may change: {OVERRIDABLE}")
    if names and not ((checkpoint is not None and checkpoint.resume) or state is not None):
        raise ValueError(
            "`override` applies to a continued run: give `state=` or checkpoint=fnn.Checkpointing(..., resume=True) with it"
        )
    if state is not None:
        if not isinstance(state, FitState):
            raise TypeError(f"`state` must be the fnn.FitState a call returned in history['state'], got {type(state).__name__}")
        if (state.networks is not None) != many:
            made, here = ("fit_many", "fit") if state.networks is not None else ("fit", "fit_many")
            raise ValueError(f"`state` was made by {made}; pass it to {made}, not {here}")
    if callback is not None and not isinstance(callback, Callback):
        hint = (
            f"wrap the function: callback=fnn.Callback({getattr(callback, '__name__', 'fn')}, every=...)"
            if callable(callback)
            else ""
        )
        raise TypeError(
            f"`callback` must be an fnn.Callback(fn, every=...), got {type(callback).__name__}" + (f"; {hint}" if hint else "")
        )
    every_s = None
    if checkpoint is not None:
        every_s = checkpoint.every_s if checkpoint.every is not None or checkpoint.every_s is not None else DEFAULT_EVERY_S
    keep_state = state is not None if return_state is None else bool(return_state)
    return RunOptions(checkpoint, every_s, frozenset(names), state, keep_state, callback)


# ---- fnn 0.1's keywords, for one release ----------------------------------------------------------
_CHECKPOINT_KEYWORDS = {  # 0.1's keyword -> the Checkpointing field
    "checkpoint_dir": "dir",
    "checkpoint_every": "every",
    "checkpoint_every_s": "every_s",
    "keep": "keep",
    "resume": "resume",
}


def accepts_0_1_keywords(fn: F) -> F:
    """``fn`` (``fit`` or ``fit_many``) also taking fnn 0.1's checkpoint, callback and ``patience`` keywords, each turned
    into its record with a DeprecationWarning that spells the new call; the old and the new spelling
    together are a TypeError naming both. ``inspect.signature`` shows ``fn``'s own parameters."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        old = {k: kwargs.pop(k) for k in _CHECKPOINT_KEYWORDS if k in kwargs}
        if old:
            kwargs["checkpoint"] = _checkpointing(fn.__name__, old, kwargs.get("checkpoint"))
        if "callback_every" in kwargs:
            kwargs["callback"] = _callback(fn.__name__, kwargs.get("callback"), kwargs.pop("callback_every"))
        if "patience" in kwargs:
            kwargs["early_stopping"] = _early_stopping(fn.__name__, kwargs.pop("patience"), kwargs.get("early_stopping"))
        return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _checkpointing(name: str, old: dict[str, Any], new: Any) -> Checkpointing | None:
    given = ", ".join(f"`{k}`" for k in old)
    if new is not None:
        raise TypeError(f"{name}() got `checkpoint` and the deprecated {given}: pass only checkpoint=fnn.Checkpointing(...)")
    fields = {_CHECKPOINT_KEYWORDS[k]: v for k, v in old.items()}
    directory = fields.pop("dir", None)
    if directory is None:  # 0.1: the options without a directory were refused, or their defaults ignored
        for k, field in (("checkpoint_every", "every"), ("checkpoint_every_s", "every_s"), ("resume", "resume")):
            if fields.get(field) not in (None, False):
                what = "`resume=True`" if k == "resume" else f"`{k}`"
                raise ValueError(
                    f"{what} needs `checkpoint_dir`: the directory of the run (now checkpoint=fnn.Checkpointing(dir, ...))"
                )
        warnings.warn(
            f"{name}({given}=...) is deprecated and does nothing without a directory: drop it", DeprecationWarning, stacklevel=3
        )
        return None
    record = Checkpointing(directory, **fields)
    spelled = ", ".join([repr(str(directory))] + [f"{k}={getattr(record, k)!r}" for k in fields])
    warnings.warn(
        f"{name}({given}=...) is deprecated: pass checkpoint=fnn.Checkpointing({spelled})", DeprecationWarning, stacklevel=3
    )
    return record


def _early_stopping(name: str, patience: Any, new: Any) -> Any:
    if new is not None:
        raise TypeError(
            f"{name}() got `early_stopping` and the deprecated `patience`: pass only early_stopping=fnn.EarlyStopping(...)"
        )
    if patience is None:
        return None
    record = EarlyStopping(patience)
    warnings.warn(
        f"{name}(patience=...) is deprecated: pass early_stopping=fnn.EarlyStopping({record.patience})",
        DeprecationWarning,
        stacklevel=3,
    )
    return record


def _callback(name: str, callback: Any, every: Any) -> Any:
    if isinstance(callback, Callback):
        raise TypeError(f"{name}() got `callback` as an fnn.Callback and the deprecated `callback_every`: pass only the Callback")
    if callback is None:
        raise ValueError("`callback_every` needs `callback`: pass callback=fnn.Callback(fn, every=...)")
    record = Callback(callback, every)
    warnings.warn(
        f"{name}(callback=fn, callback_every=...) is deprecated: pass callback=fnn.Callback(fn, every={record.every})",
        DeprecationWarning,
        stacklevel=3,
    )
    return record
