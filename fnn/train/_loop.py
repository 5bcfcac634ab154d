"""The host side of training: drive the compiled loop (:mod:`fnn.train._compiled`) chunk by chunk,
collect the history, build a fresh run's carry.

:func:`train` is the one core of ``fit`` and ``fit_many``: a staged :class:`~fnn.train._plan.Plan` for
one network or, vmapped over a leading network axis, for many. :func:`advance` runs one span of epochs
(and the divergence guard's replay); ``fnn.sklearn`` drives the same program through it.
"""

from __future__ import annotations

import contextlib
import sys
import warnings
from typing import Any, NamedTuple

import jax
import numpy as np

from fnn.core.mlp import Params
from fnn.train import _keep
from fnn.train import parallel as _parallel
from fnn.train._compiled import (
    CHUNK,
    DIVERGED,
    EARLY,
    PLATEAU,
    REPLAY,
    RUNNING,
    STOP_REASONS,
    TOL,
    Carry,
    EpochSums,
    Plateau,
    check_history,
    compiled_init,
    compiled_runner,
    history_buffers,
    history_shapes,
    init_carry,
    many_epochs,
    one_epoch,
    plateau_rule,
)
from fnn.train._plan import Arrays, Plan, Staged, Stops, inject_hyperparams

Array = jax.Array

__all__ = [  # the compiled side's names too: the rest of fnn.train reaches the loop through this module
    "CHUNK",
    "DIVERGED",
    "EARLY",
    "PLATEAU",
    "REPLAY",
    "RUNNING",
    "STOP_REASONS",
    "TOL",
    "Begin",
    "Carry",
    "EpochSums",
    "Plateau",
    "advance",
    "check_history",
    "compiled_init",
    "compiled_runner",
    "history",
    "history_buffers",
    "history_shapes",
    "init_carry",
    "many_epochs",
    "one_epoch",
    "place",
    "plateau_rule",
    "progress_bar",
    "run",
    "start_carry",
    "train",
]


def advance(
    cfg: Plan, many: bool, carry: Carry, arrays: Arrays, rules: Stops, base: int, until: int, keep: bool = False
) -> Carry:
    """Epochs ``base`` … ``until`` (or until a stop rule fires) of the compiled loop, from ``carry``,
    the chunk's history rows cleared first.

    An epoch that met a non-finite number is run again with the divergence guard on every step
    (the guarded program, compiled only when a run diverges), and the loop goes on from there.
    ``keep``: the loop's program goes through ``fnn.train._keep`` (kept on disk whole where JAX's
    persistent cache is on and the plan can be written down), so a fresh process skips tracing it.
    """
    compiled = compiled_runner(cfg, many)
    label = _keep.plan_label(cfg) if keep else None
    runner: Any = compiled
    if label is not None:
        runner = lambda *args: _keep.call(compiled, [*label, "runner", many], args)
    span = (np.asarray(base, np.int32), np.asarray(until, np.int32))  # numpy: nothing to compile
    carry = runner(carry, arrays, rules, *span, np.asarray(True))
    stop, epoch = _parallel.to_host(carry.stop), _parallel.to_host(carry.epoch)  # read once per call
    while np.any(stop == REPLAY):  # an epoch met a non-finite number
        at = int(np.min(epoch[stop == REPLAY]))
        again = (span[0], np.asarray(at + 1, np.int32))
        carry = compiled_runner(cfg, many, True)(carry, arrays, rules, *again, np.asarray(False))
        carry = runner(carry, arrays, rules, *span, np.asarray(False))
        stop, epoch = _parallel.to_host(carry.stop), _parallel.to_host(carry.epoch)
    return carry


def history(cfg: Plan, carry: Carry, rows: dict[str, np.ndarray], many: bool, begin: Begin | None = None) -> dict[str, Any]:
    """Host-side history: the collected per-epoch rows cut to the epochs actually run, plus stop facts.

    ``begin`` (a call that continues a run): the epoch the call's rows start at and each network's
    epoch and step count when it began, so that ``epochs_run`` and ``steps`` count this call's own.
    """
    epoch, stop = _parallel.to_host(carry.epoch), _parallel.to_host(carry.stop)
    begin = begin or Begin(0, 0, 0)
    run = int(epoch.max()) - begin.start
    epochs, steps = epoch - begin.epochs, _parallel.to_host(carry.state.step) - begin.steps
    hist: dict[str, Any] = {k: v[:, :run] if many else v[:run] for k, v in rows.items()}
    if many:
        hist.update(epochs_run=epochs, steps=steps, stop_reason=[STOP_REASONS[int(s)] for s in stop], diverged=stop == DIVERGED)
    else:
        hist.update(epochs_run=int(epochs), steps=int(steps), stop_reason=STOP_REASONS[int(stop)])
    if cfg.early_stopping:
        best = _parallel.to_host(carry.best_epoch)
        hist["best_epoch"] = best if many else int(best)
    return hist


class Begin(NamedTuple):
    """Where a call that continues a run begins (see :func:`history`)."""

    start: int  # the epoch of the call's first history row (every running network's epoch)
    epochs: Any  # int, or (N,) for many: each network's epochs completed when the call began
    steps: Any  # the same for the optimizer steps


def start_carry(plan: Plan, staged: Staged, params: Params, n: int | None = None, hyperparams: dict | None = None) -> Carry:
    """The carry a fresh run starts from (``n`` networks stacked, with their own ``hyperparams``)."""
    if plan.mesh is not None:  # eagerly, so the carry's new arrays stay uncommitted beside the mesh's
        carry = init_carry(plan, params, staged.key)
    else:
        carry = compiled_init(plan, n is not None)(params, staged.key)
    if n is not None and hyperparams:
        opt_state = inject_hyperparams(carry.state.opt_state, hyperparams, n)
        carry = carry._replace(state=carry.state._replace(opt_state=opt_state))
    return carry


def place(carry: Carry, staged: Staged, network_mesh: Any) -> tuple[Carry, Staged]:
    """``network_mesh`` (fit_many): every array of the loop with a network axis split along the mesh's
    ``"data"`` axis and the data replicated; the networks are independent, so the compiled loop needs
    no communication but the "is any network still running" of each epoch."""
    if network_mesh is None:
        return carry, staged
    carry = _parallel.split_leading(network_mesh, carry)
    return carry, staged._replace(arrays=_parallel.replicate(network_mesh, staged.arrays))


def train(
    plan: Plan,
    staged: Staged,
    params: Params,
    progress: bool | None,
    *,
    n: int | None = None,
    hyperparams: dict | None = None,
    network_mesh: Any = None,
) -> tuple[Carry, dict[str, Any]]:
    """The one training core: ``(final carry, history)`` of one network, or of ``n`` stacked ones.

    With ``n``, ``params`` has a leading network axis, each network gets its own shuffling key
    (split from the staged one) and, with ``hyperparams``, its own optimizer hyperparameters;
    ``network_mesh`` splits the networks over a mesh (:func:`place`).
    """
    carry, staged = place(start_carry(plan, staged, params, n, hyperparams), staged, network_mesh)
    carry, rows = run(plan, carry, staged, n is not None, progress)
    return carry, history(plan, carry, rows, n is not None)


def run(
    cfg: Plan,
    carry: Carry,
    staged: Staged,
    many: bool,
    progress: bool | None,
    hooks: Any = None,
    start: int = 0,
    base: int | None = None,
    rows: dict[str, np.ndarray] | None = None,
) -> tuple[Carry, dict[str, np.ndarray]]:
    """Drive the compiled loop chunk by chunk (at most :data:`CHUNK` epochs a call; smaller chunks
    when a progress bar is shown); collect the history rows on the host.

    The call's epochs are ``start`` … ``start + staged.epochs``; a run that continues from a checkpoint
    begins at ``base`` with the ``rows`` collected so far. ``hooks`` (checkpoints, callbacks), entered
    as a context around the loop: ``hooks.until(base, until)`` may end a chunk sooner and
    ``hooks.after(carry, rows, done, finished, bar)`` runs after each chunk. Without them, nothing is
    read from the device but the stop codes, the epochs and the history, once per chunk.
    """
    epochs = staged.epochs
    end = start + epochs
    base = start if base is None else base
    rows = {} if rows is None else rows
    bar = progress_bar(epochs, progress, initial=base - start)
    axis = 1 if many else 0
    held = next(iter(carry.hist.values())).shape[axis]  # the rows the carry's buffers hold (CHUNK when made)
    chunk = held if bar is None else max(1, min(held, epochs // 50))
    with bar if bar is not None else contextlib.nullcontext(), hooks if hooks is not None else contextlib.nullcontext():
        while base < end:
            until = min(base + chunk, end)
            if hooks is not None:
                until = hooks.until(base, until)
            carry = advance(cfg, many, carry, staged.arrays, staged.rules, base, until)
            stop, epoch = _parallel.to_host(carry.stop), _parallel.to_host(carry.epoch)
            for k, v in carry.hist.items():
                part = np.take(_parallel.to_host(v), np.arange(until - base), axis=axis)
                if k not in rows:
                    shape = list(part.shape)
                    shape[axis] = epochs
                    rows[k] = np.full(shape, np.nan, part.dtype)
                np.moveaxis(rows[k], axis, 0)[base - start : until - start] = np.moveaxis(part, axis, 0)
            done = int(np.max(epoch))
            if bar is not None:
                bar.update(done - base)
                last = np.take(rows["loss"], max(done - start - 1, 0), axis=axis)
                bar.set_postfix(loss=f"{float(np.nanmean(last)):.4g}")
            finished = bool(done < until or np.all(stop != RUNNING) or until >= end)
            if hooks is not None:
                hooks.after(carry, rows, done, finished, bar)
            if finished:
                break
            base = until
    return carry, rows


def progress_bar(epochs: int, progress: bool | None, initial: int = 0):
    if not (sys.stderr.isatty() if progress is None else bool(progress)):  # (a numpy bool too)
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        if progress:
            warnings.warn('progress=True needs tqdm: pip install "fnn[experiments]"', stacklevel=3)
        return None
    return tqdm(total=epochs, initial=initial, unit="epoch", leave=False)
