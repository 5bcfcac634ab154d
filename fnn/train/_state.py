"""A run in memory: :class:`FitState`, where a run of ``fit`` or ``fit_many`` stands between two calls.

A run of ``fit`` is its :class:`~fnn.train._loop.Carry` — parameters, optimizer state and step, shuffling
key (epoch e shuffles with ``fold_in(key, e)``), epoch, stop code, the early-stopping record — plus the
history rows the host collected. The compiled loop runs in chunks of epochs and a chunk's boundary
changes nothing it computes, so a run saved at a boundary and continued from there (in this process
or another) ends bitwise where the uninterrupted run ends, on the CPU.

- :class:`FitState`: the carry without its history buffers, returned by ``fit(..., return_state=True)``
  in ``history["state"]`` and taken back by ``fit(..., state=...)``;
- :func:`state_params` and :func:`compare_state`: a call given a state starts from the state's
  parameters, and is refused (naming what differs) when its plan is not the state's, unless the
  difference is overridden on purpose (:data:`OVERRIDABLE`).

On disk the same run is ``checkpoint=``'s files (:mod:`fnn.train._rundir`, :mod:`fnn.train._resume`).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import numpy as np

from fnn.core.mlp import MLP, Params
from fnn.core.network import trainable
from fnn.train import _loop
from fnn.train import parallel as _parallel
from fnn.train._describe import describe, difference, facts, mismatches, refuse
from fnn.train._plan import Plan, Staged
from fnn.train.step import TrainState

Array = jax.Array

# what a call may change on purpose (override=...); the rest must match the checkpoint or the state
OVERRIDABLE = ("optimizer", "loss", "grad", "data", "batch_size", "shuffle", "drop_last", "key", "params")
FIXED = ("network", "dtype", "networks")  # the parameters' shapes and dtype, the number of networks
HISTORY = ("validation", "patience", "monitor", "health", "grad_norms")  # a resumed call's history continues the saved one


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
      best, best_val, best_epoch: early stopping's record: the best parameters, their monitored value
        (the validation loss, or the validation accuracy negated) and their 0-based epoch (unused without early stopping).

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


def carry_of(state: FitState, buffers: dict[str, np.ndarray]) -> _loop.Carry:
    """The loop's carry that continues ``state``, with fresh history ``buffers``."""
    s = state
    return _loop.Carry(s.train_state, s.key, s.epoch, s.stop, s.best, s.best_val, s.best_epoch, buffers)


def buffers(cfg: Plan, n: int | None, dtype: Any) -> dict[str, np.ndarray]:
    """NaN history buffers of the carry, in numpy: handed to the compiled loop as they are (nothing compiles)."""
    lead = () if n is None else (n,)
    return {k: np.full((*lead, _loop.CHUNK, *s), np.nan, dtype) for k, s in _loop.history_shapes(cfg).items()}


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


def compare_state(state: FitState, plan: Plan, now: dict[str, Any], override: frozenset) -> None:
    """Refuse a state whose plan differs from this call's (``now``, its facts), unless overridden."""
    names = (*FIXED, "loss", "grad", "data", "batch_size", "shuffle", "drop_last")
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
        opt_params = state.params if isinstance(plan.net, MLP) else trainable(state.params)
        want = jax.eval_shape(jax.vmap(init) if state.networks else init, opt_params)
        have = state.train_state.opt_state
        shapes = lambda tree: [(a.shape, a.dtype) for a in jax.tree_util.tree_leaves(tree)]
        same = str(jax.tree_util.tree_structure(want)) == str(jax.tree_util.tree_structure(have))
        if not same or shapes(want) != shapes(have):
            raise ValueError("the optimizer's state has another structure than the state's: it cannot be carried over")
