"""Runs that survive, on disk and across calls: the hooks at chunk boundaries and the call that continues a run.

A chunk boundary of the compiled loop changes nothing it computes, so a run saved at one and continued
from there (in this process or another) ends bitwise where the uninterrupted run ends, on the CPU.

- :class:`Session`: the hooks :func:`fnn.train._loop.run` calls at chunk boundaries: it ends chunks at the
  epochs a callback or a checkpoint needs (and, while checkpointing, after about :data:`RESPONSIVE_S`
  seconds, so that Ctrl-C is answered soon), calls the callback, writes the checkpoints
  (:mod:`fnn.train._rundir`: ``state-{epoch}.npz`` files of format version 2 of :mod:`fnn.checkpoint`, the
  last ``keep`` kept), and turns SIGINT into "finish the chunk, write a checkpoint, raise KeyboardInterrupt".
- :func:`train`: ``fnn.train._loop.train`` for a run that starts from a checkpoint or a state
  (:mod:`fnn.train._state`), or afresh with checkpoints or a callback (:mod:`fnn.train._options`). A plain
  call (none of these) never comes here.
"""

from __future__ import annotations

import pathlib
import signal
import threading
import time
import warnings
from typing import Any

import jax
import numpy as np

from fnn import _checks
from fnn.core.mlp import MLP, Params
from fnn.train import _loop, _rundir
from fnn.train import parallel as _parallel
from fnn.train._describe import facts, mismatches, refuse
from fnn.train._options import Resumed, RunOptions
from fnn.train._plan import Plan, Staged, inject_hyperparams
from fnn.train._state import FIXED, HISTORY, OVERRIDABLE, buffers, carry_of, compare_state

RESPONSIVE_S = 1.0  # while checkpointing, a chunk lasts about this long at most: Ctrl-C waits no longer


# ---- the hooks at chunk boundaries --------------------------------------------------------------
class Session:
    """Chunk limits, callbacks, checkpoints and Ctrl-C of one call (the ``hooks`` of :func:`fnn.train._loop.run`)."""

    def __init__(self, opts: RunOptions, cfg: Plan, many: bool, begin: _loop.Begin, base: int, end: int, run: dict) -> None:
        self.opts, self.cfg, self.many, self.begin, self.end, self.run = opts, cfg, many, begin, end, run
        ck = opts.checkpoint
        self.directory = None if ck is None else _rundir.Directory(ck.path, ck.keep)
        self.every = None if ck is None else ck.every
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
        if o.callback is not None:
            until = min(until, (base // o.callback.every + 1) * o.callback.every)
        if self.directory is not None:
            if self.every:
                until = min(until, (base // self.every + 1) * self.every)
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
        if o.callback is not None and done != self.called and (finished or done % o.callback.every == 0):
            self.called = done
            o.callback.fn(done, carry.state.params, self.rows(rows, done, copy=True))
        if self.directory is None:
            return
        due = (
            finished
            or self.interrupts
            or (self.every and done % self.every == 0)
            or (o.every_s and now - self.t_save >= o.every_s)
        )
        if due and (done != self.saved or (finished and not self.saved_final)):
            self.save(carry, rows, done, finished)
        if self.interrupts:
            where = f"checkpoint written to {str(self.path)!r}" if self.path else "no checkpoint could be written"
            ran, total = done - self.begin.start, self.end - self.begin.start
            message = (
                f"training interrupted after epoch {done} ({ran} of this call's {total}); "
                f"{where}: the same call with checkpoint=fnn.Checkpointing(..., resume=True) continues from it"
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
        arrays, info = _rundir.to_host(_rundir.named(carry, not isinstance(self.cfg.net, MLP)))
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
    opts: RunOptions,
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
        compare_state(opts.state, plan, now, opts.override)
    ck = opts.checkpoint
    directory = None if ck is None else _rundir.Directory(ck.path, ck.keep)
    found = None
    if ck is not None and directory is not None:
        if directory.files() and not ck.resume:
            raise ValueError(
                f"`checkpoint.dir` {str(directory.path)!r} already holds a run's checkpoints ({directory.files()[-1].name}): "
                "pass fnn.Checkpointing(..., resume=True) to continue that run, or choose another directory"
            )
        directory.path.mkdir(parents=True, exist_ok=True)
        directory.clean()
        found = directory.latest() if ck.resume else None
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
        end = start + staged.epochs
        todo = f"runs on to epoch {end:,}" if base < end else f"has reached this call's {end:,} epochs: nothing to run"
        warnings.warn(
            Resumed(f"continuing the run in {str(path.parent)!r} from {path.name} (epoch {base:,}); the call {todo}"),
            stacklevel=4,  # the user's fit / fit_many call (past fit and its 0.1-keyword wrapper)
        )
        begin = _loop.Begin(
            start,
            *(np.asarray(header["run"][k], np.int32) if many else header["run"][k] for k in ("begin_epochs", "begin_steps")),
        )
        if many and hyperparams:
            _check_hyperparams(carry.state.opt_state, hyperparams, n, opts.override)
            carry = carry._replace(
                state=carry.state._replace(opt_state=inject_hyperparams(carry.state.opt_state, hyperparams, count))
            )
        carry = carry._replace(hist=buffers(plan, n, dtype))
        if plan.mesh is not None:
            carry = _parallel.replicate(plan.mesh, carry._replace(hist={}))._replace(hist=carry.hist)
    elif opts.state is not None:
        carry = carry_of(opts.state, buffers(plan, n, dtype))
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
    opts: RunOptions,
    many: bool,
    path: pathlib.Path,
) -> tuple[_loop.Carry, dict[str, np.ndarray], int]:
    """Check a checkpoint against this call and restore its carry, rows and epoch."""
    saved = header["run"]
    origin = f"the run in {str(path.parent)!r} (checkpoint {path.name})"
    if saved["start"] != run["start"]:
        raise ValueError(
            f"cannot continue {origin}: it is a call that began at epoch {saved['start']}, this call begins at epoch "
            f"{run['start']} (give each call of a chain of calls its own checkpoint directory)"
        )
    found = mismatches(saved["facts"], run["facts"], (*FIXED, *HISTORY, *OVERRIDABLE[:-2]), "the checkpoint")
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
