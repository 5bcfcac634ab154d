"""Runs that survive: a run's whole state in memory (:class:`FitState`) and on disk (``checkpoint_dir``).

A run of ``fit`` is its :class:`~fnn.train._loop.Carry` — parameters, optimizer state and step, shuffling key
(epoch e shuffles with ``fold_in(key, e)``), epoch, stop code, the early-stopping record — plus the
history rows the host collected. The compiled loop runs in chunks of epochs and a chunk's boundary
changes nothing it computes, so a run saved at a boundary and continued from there (in this process
or another) ends bitwise where the uninterrupted run ends, on the CPU.

- :class:`FitState`: the carry without its history buffers, returned by ``fit(..., return_state=True)``
  in ``history["state"]`` and taken back by ``fit(..., state=...)``.
- :mod:`fnn._rundir`: the run on disk, ``checkpoint_dir``'s files ``state-{epoch}.npz`` (format
  version 2 of :mod:`fnn.checkpoint`), the last ``keep`` kept; the newest readable one is where a run
  resumes.
- :class:`Session`: the hooks :func:`fnn.train._loop.run` calls at chunk boundaries: it ends chunks at the
  epochs a callback or a checkpoint needs (and, while checkpointing, after about :data:`RESPONSIVE_S`
  seconds, so that Ctrl-C is answered soon), calls the callback, writes the checkpoints, and turns
  SIGINT into "finish the chunk, write a checkpoint, raise KeyboardInterrupt".
- :func:`train`: ``fnn.train._loop.train`` for a run that starts from a checkpoint or a state, or afresh with
  checkpoints or a callback. A plain call (none of these) never comes here.
"""

from __future__ import annotations

import dataclasses
import functools
import pathlib
import signal
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import numpy as np

from fnn import _checks
from fnn.core.mlp import Params
from fnn.train import _loop, _rundir
from fnn.train import parallel as _parallel
from fnn.train._describe import describe, difference, facts, mismatches, refuse
from fnn.train._plan import Plan, Staged, inject_hyperparams, positive_int
from fnn.train.step import TrainState

Array = jax.Array

DEFAULT_EVERY_S = 60.0  # seconds between checkpoints when neither checkpoint_every nor checkpoint_every_s is given
RESPONSIVE_S = 1.0  # while checkpointing, a chunk lasts about this long at most: Ctrl-C waits no longer
# what a call may change on purpose (override=...); the rest must match the checkpoint or the state
OVERRIDABLE = ("optimizer", "loss", "grad", "data", "batch_size", "shuffle", "drop_last", "key", "params")
_FIXED = ("network", "dtype", "networks")  # the parameters' shapes and dtype, the number of networks
_HISTORY = ("validation", "patience", "health", "grad_norms")  # a resumed call's history continues the saved one


# ---- the state in memory ------------------------------------------------------------------------
@functools.partial(
    jax.tree_util.register_dataclass,
    data_fields=["train_state", "key", "epoch", "stop", "best", "best_val", "best_epoch"],
    meta_fields=["plan", "networks", "targets"],
)
@dataclasses.dataclass(frozen=True, eq=False)
class FitState:
    """Where a training run stands after a call of ``fit`` or ``fit_many``: everything its next epoch needs.

    ``fit(..., return_state=True)`` puts it in ``history["state"]``; ``fit(..., state=state)`` continues
    the run from it: the optimizer state, the step count and the shuffling order carry on (epoch e
    shuffles with ``fold_in(key, e)`` whichever call runs it), so that ten calls of 10 epochs give, on
    the CPU, bitwise the parameters and the history (the calls' histories concatenated) of one call of
    100. A pytree whose leaves are its arrays (``jax.device_get(state)`` copies it to the host).

    Attributes:
      train_state: the current ``TrainState(params, opt_state, step)``; under early stopping its params
        are the last epoch's, not the best ones ``fit`` returned.
      key: the shuffling key (fit_many: one per network, shape (N,)).
      epoch: epochs completed so far (fit_many: (N,)).
      stop: the stop code (:attr:`stop_reason` spells it out); a run that stopped stays stopped.
      best, best_val, best_epoch: early stopping's record: the best parameters, their validation loss
        and their 0-based epoch (unused without early stopping).

    Example:
      >>> import jax, optax, fnn
      >>> net, (x, y) = fnn.MLP((2, 4, 2), hidden="tanh", output="softmax"), fnn.datasets.xor()
      >>> kw = dict(loss="cross_entropy", optimizer=optax.adam(0.05), epochs=5, progress=False, return_state=True)
      >>> params, h1 = fnn.fit(net, net.init(jax.random.key(0)), (x, y), **kw)
      >>> params, h2 = fnn.fit(net, params, (x, y), state=h1["state"], **kw)  # epochs 5 … 9
      >>> int(h2["state"].epoch), h2["epochs_run"], int(h2["state"].train_state.step)
      (10, 5, 10)
    """

    train_state: TrainState
    key: Array
    epoch: Array
    stop: Array
    best: Params
    best_val: Array
    best_epoch: Array
    plan: Plan = dataclasses.field(repr=False)
    networks: int | None = dataclasses.field(repr=False)
    targets: tuple = dataclasses.field(repr=False)  # the shape of one target row

    @property
    def params(self) -> Params:
        """The current parameters, ``train_state.params``."""
        return self.train_state.params

    @property
    def stop_reason(self) -> Any:
        """``"epochs"`` (not stopped), ``"tol"``, ``"early_stopping"`` or ``"diverged"``; a list for fit_many."""
        stop = _parallel.to_host(self.stop)
        return [_loop.STOP_REASONS[int(s)] for s in stop] if self.networks else _loop.STOP_REASONS[int(stop)]

    def __repr__(self) -> str:
        n = f"networks={self.networks}, " if self.networks else ""
        epoch = _parallel.to_host(self.epoch).tolist()
        return f"FitState({n}epoch={epoch}, stop_reason={self.stop_reason!r}, net={self.plan.net!r})"


def fit_state(cfg: Plan, staged: Staged, carry: _loop.Carry, n: int | None) -> FitState:
    """The state a call ends with (its history buffers left behind)."""
    c = carry
    return FitState(c.state, c.key, c.epoch, c.stop, c.best, c.best_val, c.best_epoch, cfg, n, tuple(staged.arrays.t.shape[1:]))


def _buffers(cfg: Plan, n: int | None, dtype: Any) -> dict[str, np.ndarray]:
    """NaN history buffers of the carry, in numpy: handed to the compiled loop as they are (nothing compiles)."""
    lead = () if n is None else (n,)
    return {k: np.full((*lead, _loop.CHUNK, *s), np.nan, dtype) for k, s in _loop.history_shapes(cfg).items()}


# ---- the options of a call ----------------------------------------------------------------------
class Options(NamedTuple):
    """The checkpoint, state and callback options of a call of ``fit`` or ``fit_many``, checked."""

    directory: pathlib.Path | None
    every: int | None
    every_s: float | None
    keep: int
    resume: bool
    override: frozenset
    state: FitState | None
    return_state: bool
    callback: Callable | None
    callback_every: int | None

    @property
    def plain(self) -> bool:
        """None of them: the call is ``fnn.train._loop.train``'s as it always was."""
        return self.directory is None and self.state is None and self.callback is None


def check_options(
    *,
    checkpoint_dir: Any,
    checkpoint_every: Any,
    checkpoint_every_s: Any,
    keep: Any,
    resume: Any,
    override: Any,
    state: Any,
    return_state: Any,
    callback: Any,
    callback_every: Any,
    many: bool,
) -> Options:
    """Check the options in Python, before anything is traced; every error names its argument."""
    directory = None
    if checkpoint_dir is not None:
        directory = _checks.check_path(checkpoint_dir, "checkpoint_dir", "a directory path")
        if directory.exists() and not directory.is_dir():
            raise ValueError(f"`checkpoint_dir` {str(directory)!r} is a file; it must be a directory (made if missing)")
        if jax.process_count() > 1:
            raise ValueError("`checkpoint_dir` is not supported when training spans several processes")
    for name, value in (("checkpoint_every", checkpoint_every), ("callback_every", callback_every)):
        positive_int(value, name, allow_none=True)
    if checkpoint_every_s is not None and (
        isinstance(checkpoint_every_s, bool)
        or not isinstance(checkpoint_every_s, (int, float))
        or not np.isfinite(checkpoint_every_s)
        or checkpoint_every_s <= 0
    ):
        raise ValueError(f"`checkpoint_every_s` must be a positive number of seconds, got {checkpoint_every_s!r}")
    positive_int(keep, "keep")
    for name, value in (("resume", resume), ("return_state", return_state)):
        if not isinstance(value, (bool, np.bool_)) and not (name == "return_state" and value is None):
            raise TypeError(f"`{name}` must be True or False, got {type(value).__name__}: {value!r}")
    if directory is None:
        for name, value in (("checkpoint_every", checkpoint_every), ("checkpoint_every_s", checkpoint_every_s)):
            if value is not None:
                raise ValueError(f"`{name}` needs `checkpoint_dir`: the directory to write the checkpoints to")
        if resume:
            raise ValueError("`resume=True` needs `checkpoint_dir`: the directory of the run to resume")
    names = (override,) if isinstance(override, str) else override
    if not isinstance(names, Sequence) or not all(isinstance(o, str) for o in names):
        raise TypeError(f"`override` must be a name or a tuple of names from {OVERRIDABLE}, got {override!r}")
    unknown = sorted(set(names) - set(OVERRIDABLE))
    if unknown:
        raise ValueError(f"`override` names {unknown} are not among what a continued run may change: {OVERRIDABLE}")
    if names and not (resume or state is not None):
        raise ValueError("`override` applies to a continued run: give `state=` or `resume=True` with it")
    if state is not None:
        if not isinstance(state, FitState):
            raise TypeError(f"`state` must be the fnn.FitState a call returned in history['state'], got {type(state).__name__}")
        if (state.networks is not None) != many:
            made, here = ("fit_many", "fit") if state.networks is not None else ("fit", "fit_many")
            raise ValueError(f"`state` was made by {made}; pass it to {made}, not {here}")
    if callback is not None and not callable(callback):
        raise TypeError(f"`callback` must be callable as callback(epoch, params, history), got {type(callback).__name__}")
    if (callback is None) != (callback_every is None):
        raise ValueError("`callback` and `callback_every` go together: the function and the epochs between its calls")
    every_s = None if checkpoint_every_s is None else float(checkpoint_every_s)
    if directory is not None and checkpoint_every is None and every_s is None:
        every_s = DEFAULT_EVERY_S
    keep_state = state is not None if return_state is None else bool(return_state)
    return Options(
        directory, checkpoint_every, every_s, keep, bool(resume), frozenset(names), state, keep_state, callback, callback_every
    )


def state_params(state: FitState, params: Any) -> Params:
    """The parameters a call given ``state`` starts from: the state's (``params`` must be None or theirs)."""
    if params is not None:
        given = jax.tree_util.tree_leaves(params)
        if not any(
            len(given) == len(mine) and all(a is b for a, b in zip(given, mine))
            for mine in (jax.tree_util.tree_leaves(state.params), jax.tree_util.tree_leaves(state.best))
        ):
            raise ValueError(
                "`params` are not those of `state`: a call given `state` continues from the state's own parameters; "
                "pass params=None (or the params the call that made the state returned)"
            )
    return state.params


def _compare_state(state: FitState, plan: Plan, now: dict[str, Any], override: frozenset) -> None:
    """Refuse a state whose plan differs from this call's, unless overridden."""
    names = (*_FIXED, "loss", "grad", "data", "batch_size", "shuffle", "drop_last")
    saved = facts(state.plan, np.dtype(state.best_val.dtype), state.targets, None, state.networks)
    found = mismatches(saved, now, names, "the state")
    if state.plan.optimizer != plan.optimizer:  # compared by structure, else by identity (fnn._fingerprint)
        a, b = describe(state.plan.optimizer.optimizer), now["optimizer"]
        found["optimizer"] = difference(a, b, names=("the state", "this call")) or (
            "fnn cannot read every value the optimizer holds, so it compares it by identity: pass the same object"
        )
    refuse(found, override, "from `state`", OVERRIDABLE)
    if "optimizer" in found:  # overridden: the new optimizer must keep a state of the same structure
        init = plan.optimizer.optimizer.init
        want = jax.eval_shape(jax.vmap(init) if state.networks else init, state.params)
        have = state.train_state.opt_state
        shapes = lambda tree: [(a.shape, a.dtype) for a in jax.tree_util.tree_leaves(tree)]
        same = str(jax.tree_util.tree_structure(want)) == str(jax.tree_util.tree_structure(have))
        if not same or shapes(want) != shapes(have):
            raise ValueError("the optimizer's state has another structure than the state's: it cannot be carried over")


# ---- the hooks at chunk boundaries --------------------------------------------------------------
class Session:
    """Chunk limits, callbacks, checkpoints and Ctrl-C of one call (the ``hooks`` of :func:`fnn.train._loop.run`)."""

    def __init__(self, opts: Options, cfg: Plan, many: bool, begin: _loop.Begin, base: int, end: int, run: dict) -> None:
        self.opts, self.cfg, self.many, self.begin, self.end, self.run = opts, cfg, many, begin, end, run
        self.directory = None if opts.directory is None else _rundir.Directory(opts.directory, opts.keep)
        self.called = self.saved = base
        self.saved_final = False
        self.path: pathlib.Path | None = None
        self.per_epoch: float | None = None
        self.chunk = self.chunk_base = 0
        self.t_chunk = self.t_save = time.monotonic()
        self.interrupts = 0
        self.previous: Any = None

    def __enter__(self) -> Session:
        self.t_chunk = self.t_save = time.monotonic()
        if self.directory is not None and threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._on_sigint)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
            self.previous = None

    def _on_sigint(self, signum: int, frame: Any) -> None:
        self.interrupts += 1
        if self.interrupts > 1:  # a second Ctrl-C: stop now
            last = f"; the last checkpoint is {str(self.path)!r}" if self.path else ""
            raise KeyboardInterrupt(f"interrupted twice: stopped without writing a checkpoint{last}")

    def until(self, base: int, until: int) -> int:
        """End the chunk at the next epoch a callback or a checkpoint needs, or after about RESPONSIVE_S seconds."""
        o, now = self.opts, time.monotonic()
        if o.callback_every:
            until = min(until, (base // o.callback_every + 1) * o.callback_every)
        if self.directory is not None:
            if o.every:
                until = min(until, (base // o.every + 1) * o.every)
            budget = RESPONSIVE_S if o.every_s is None else min(RESPONSIVE_S, o.every_s - (now - self.t_save))
            fits = 0 if self.per_epoch is None else int(budget / max(self.per_epoch, 1e-9))
            until = min(until, base + max(1, min(fits, 2 * self.chunk)))  # at most twice the last chunk: grow gently
        self.t_chunk, self.chunk_base, self.chunk = now, base, until - base
        return until

    def after(self, carry: _loop.Carry, rows: dict[str, np.ndarray], done: int, finished: bool, bar: Any) -> None:
        """After a chunk: measure it; call the callback, write a checkpoint, answer Ctrl-C, when due."""
        o, now = self.opts, time.monotonic()
        if done > self.chunk_base:
            self.per_epoch = (now - self.t_chunk) / (done - self.chunk_base)
        if o.callback is not None and o.callback_every and done != self.called and (finished or done % o.callback_every == 0):
            self.called = done
            o.callback(done, carry.state.params, self.rows(rows, done, copy=True))
        if self.directory is None:
            return
        due = finished or self.interrupts or (o.every and done % o.every == 0) or (o.every_s and now - self.t_save >= o.every_s)
        if due and (done != self.saved or (finished and not self.saved_final)):
            self.save(carry, rows, done, finished)
        if self.interrupts:
            where = f"checkpoint written to {str(self.path)!r}" if self.path else "no checkpoint could be written"
            ran, total = done - self.begin.start, self.end - self.begin.start
            message = (
                f"training interrupted after epoch {done} ({ran} of this call's {total}); "
                f"{where}: the same call with resume=True continues from it"
            )
            if bar is not None:
                bar.leave = True
                bar.set_description_str(f"interrupted: {where}")
            raise KeyboardInterrupt(message)

    def rows(self, rows: dict[str, np.ndarray], done: int, copy: bool = False) -> dict[str, np.ndarray]:
        d = done - self.begin.start
        cut = {k: v[:, :d] if self.many else v[:d] for k, v in rows.items()}
        return {k: v.copy() for k, v in cut.items()} if copy else cut

    def save(self, carry: _loop.Carry, rows: dict[str, np.ndarray], done: int, finished: bool) -> None:
        assert self.directory is not None
        arrays, info = _rundir.to_host(_rundir.named(carry))
        arrays.update({f"history/{k}": v for k, v in self.rows(rows, done).items()})
        run = dict(self.run, epoch=done, complete=finished, leaf_info=info)
        try:
            self.path = self.directory.save(self.cfg.net, arrays, run, done, epoch=done, epochs=self.end, complete=finished)
        except OSError as e:  # a full disk must not end the run: the previous checkpoint stays
            warnings.warn(f"could not write a checkpoint to {str(self.directory.path)!r} ({e}); training goes on", stacklevel=5)
            return
        self.saved, self.saved_final, self.t_save = done, finished, time.monotonic()


# ---- a call that continues a run, or keeps one --------------------------------------------------
def train(
    plan: Plan,
    staged: Staged,
    params: Params,
    progress: bool | None,
    opts: Options,
    *,
    n: int | None = None,
    hyperparams: dict | None = None,
    network_mesh: Any = None,
) -> tuple[_loop.Carry, dict[str, Any]]:
    """:func:`fnn.train._loop.train` for a call with a checkpoint directory, a state or a callback."""
    many, dtype, count = n is not None, np.dtype(staged.arrays.x.dtype), n or 0
    xv = tuple(staged.arrays.xv.shape) if plan.has_val else None
    now = facts(plan, dtype, tuple(staged.arrays.t.shape[1:]), xv, n)
    if opts.state is not None:  # checked before anything is written
        _compare_state(opts.state, plan, now, opts.override)
    directory = None if opts.directory is None else _rundir.Directory(opts.directory, opts.keep)
    found = None
    if directory is not None:
        if directory.files() and not opts.resume:
            raise ValueError(
                f"`checkpoint_dir` {str(directory.path)!r} already holds a run's checkpoints ({directory.files()[-1].name}): "
                "pass resume=True to continue that run, or choose another directory"
            )
        directory.path.mkdir(parents=True, exist_ok=True)
        directory.clean()
        found = directory.latest() if opts.resume else None
    start = 0
    if opts.state is not None:
        e0, s0 = _parallel.to_host(opts.state.epoch), _parallel.to_host(opts.state.train_state.step)
        start = int(np.max(e0))
        if start + staged.epochs > _checks.INT32_MAX:  # the loop counts the run's epochs in int32
            raise ValueError(
                f"`epochs` = {staged.epochs:,} more would take the run (at epoch {start:,}) past {_checks.INT32_MAX:,} epochs"
            )
        begin = _loop.Begin(start, e0 if many else int(e0), s0 if many else int(s0))
    else:
        begin = _loop.Begin(0, 0, 0)
    run = {
        "facts": now,
        "start": start,
        "begin_epochs": np.asarray(begin.epochs).tolist(),
        "begin_steps": np.asarray(begin.steps).tolist(),
        "key": _rundir.key_data(staged.key),
        "params_sha256": _rundir.digest(params) if directory is not None else None,
        "early_stopping": plan.early_stopping,
        "networks": n,
    }
    rows: dict[str, np.ndarray] = {}
    base = start
    if found is not None:
        path, header, arrays = found
        carry, rows, base = _resumed(plan, staged, params, header, arrays, run, opts, many, path)
        begin = _loop.Begin(
            start,
            *(np.asarray(header["run"][k], np.int32) if many else header["run"][k] for k in ("begin_epochs", "begin_steps")),
        )
        if many and hyperparams:
            _check_hyperparams(carry.state.opt_state, hyperparams, n, opts.override)
            carry = carry._replace(
                state=carry.state._replace(opt_state=inject_hyperparams(carry.state.opt_state, hyperparams, count))
            )
        carry = carry._replace(hist=_buffers(plan, n, dtype))
        if plan.mesh is not None:
            carry = _parallel.replicate(plan.mesh, carry._replace(hist={}))._replace(hist=carry.hist)
    elif opts.state is not None:
        s = opts.state
        carry = _loop.Carry(s.train_state, s.key, s.epoch, s.stop, s.best, s.best_val, s.best_epoch, _buffers(plan, n, dtype))
        if many and hyperparams:
            carry = carry._replace(
                state=carry.state._replace(opt_state=inject_hyperparams(carry.state.opt_state, hyperparams, count))
            )
    else:
        carry = _loop.start_carry(plan, staged, params, n, hyperparams)
    carry, staged = _loop.place(carry, staged, network_mesh)
    end = start + staged.epochs
    hooks = Session(opts, plan, many, begin, base, end, run)
    if found is not None:
        hooks.path, hooks.saved_final = found[0], bool(found[1]["run"].get("complete"))
    carry, rows = _loop.run(plan, carry, staged, many, progress, hooks=hooks, start=start, base=base, rows=rows)
    return carry, _loop.history(plan, carry, rows, many, begin)


def _resumed(
    plan: Plan,
    staged: Staged,
    params: Params,
    header: dict,
    arrays: dict[str, np.ndarray],
    run: dict,
    opts: Options,
    many: bool,
    path: pathlib.Path,
) -> tuple[_loop.Carry, dict[str, np.ndarray], int]:
    """Check a checkpoint against this call and restore its carry, rows and epoch."""
    saved = header["run"]
    origin = f"the run in {str(path.parent)!r} (checkpoint {path.name})"
    if saved["start"] != run["start"]:
        raise ValueError(
            f"cannot continue {origin}: it is a call that began at epoch {saved['start']}, this call begins at epoch "
            f"{run['start']} (give each call of a chain of calls its own checkpoint_dir)"
        )
    found = mismatches(saved["facts"], run["facts"], (*_FIXED, *_HISTORY, *OVERRIDABLE[:-2]), "the checkpoint")
    if saved["key"] != run["key"]:
        found["key"] = "the shuffling key differs from the checkpoint's"
    if saved["params_sha256"] != run["params_sha256"] and not {"network", "dtype"} & set(found):
        found["params"] = "this call starts from other parameters than the checkpoint's run did"
    refuse(found, opts.override, origin, OVERRIDABLE)
    template = jax.eval_shape(_loop.compiled_init(plan, many), params, staged.key)
    carry = _rundir.restore(template, arrays, header)
    done = int(saved["epoch"])
    if done > run["start"] + staged.epochs:
        raise ValueError(
            f"`epochs` is {staged.epochs}, but {origin} has run {done - run['start']} epochs of this call: pass epochs >= that"
        )
    axis = 1 if many else 0
    rows = {}
    for name, v in arrays.items():
        if name.startswith("history/"):
            shape = list(v.shape)
            shape[axis] = staged.epochs
            rows[name[len("history/") :]] = full = np.full(shape, np.nan, v.dtype)
            np.moveaxis(full, axis, 0)[: v.shape[axis]] = np.moveaxis(v, axis, 0)
    return carry, rows, done


def _check_hyperparams(opt_state: Any, hyperparams: dict, n: int | None, override: frozenset) -> None:
    """fit_many's ``hyperparams`` on resume must be the checkpoint's (or ``override`` allows the optimizer to change)."""
    current = getattr(opt_state, "hyperparams", {})
    for name, values in hyperparams.items():
        if name in current and not np.array_equal(np.asarray(current[name]), np.asarray(values, np.asarray(current[name]).dtype)):
            what = {"optimizer": f"hyperparams[{name!r}] differ from the checkpoint's"}
            refuse(what, override, "the checkpoint's run", OVERRIDABLE)
