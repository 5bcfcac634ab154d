"""The compiled training loop, the device side of every training call (``fit``, ``fit_many``,
``fnn.sklearn``): epochs in a ``lax.while_loop``, the minibatches of each epoch in a ``lax.scan``
(or, for padded data, a loop over masked batches), the stop rules and the divergence guard in the graph.

:func:`compiled_runner` is the one program, compiled per :class:`~fnn.train._plan.Plan`, for one
network or, vmapped over a leading network axis, for many; :mod:`fnn.train._loop` drives it from the host.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from fnn import _checks, _compile
from fnn.analysis import metrics as _metrics
from fnn.core import losses as _losses
from fnn.core.mlp import MLP, Params
from fnn.train import parallel as _parallel
from fnn.train import shuffle as _shuffle
from fnn.train._plan import Arrays, Plan, Staged, Stops
from fnn.train.step import TrainState, init_state, step_fn

Array = jax.Array

#: Stop codes (``history["stop_reason"]`` spells them out, :data:`STOP_REASONS`). REPLAY is internal: the fast loop met a
#: non-finite number in this epoch and left it to the guarded loop (it never reaches a history).
RUNNING, TOL, EARLY, DIVERGED, PLATEAU, REPLAY = 0, 1, 2, 3, 4, 5
#: Each stop code's name in a history's ``stop_reason``.
STOP_REASONS = {RUNNING: "epochs", TOL: "tol", EARLY: "early_stopping", DIVERGED: "diverged", PLATEAU: "plateau"}


class Plateau(NamedTuple):
    """The plateau rule's state (:func:`plateau_rule`)."""

    best: Any  # shape=(): the lowest loss seen
    streak: Any  # shape=(), int32: epochs in a row whose loss was not below best − min_delta


class Carry(NamedTuple):
    """The loop state of one network between epochs."""

    state: TrainState
    key: Array  # shuffling key; epoch e uses fold_in(key, e)
    epoch: Array  # shape=(), int32: epochs completed
    stop: Array  # shape=(), int32: RUNNING, TOL, EARLY or DIVERGED
    best: Params  # params at the best validation loss (early stopping)
    best_val: Array  # shape=()
    best_epoch: Array  # shape=(), int32
    hist: dict  # name -> (epochs, ...) buffer, NaN where not run
    plateau: Plateau | None = None  # the plateau rule's state (Plan.plateau)


class EpochSums(NamedTuple):
    """What an epoch's minibatches add up (only the steps the divergence guard let through)."""

    loss: Array  # shape=(): Σ rows × batch loss
    rows: Array  # shape=(): examples
    grad_norm: Array  # (L,): Σ per-layer gradient norms (zeros unless the plan records them)
    update: Array  # (L,): Σ per-layer update ratios (health)
    steps: Array  # shape=(): steps


# Rows of history the compiled loop holds: it runs at most this many epochs per call and the host
# collects them, so the number of epochs is not part of the compiled program (any ``epochs`` reuses it).
CHUNK = 1024
DROPOUT = 0x0D0  # folded into an epoch's key: the stream of its dropout masks (its order of examples is the key itself)


def history_shapes(cfg: Plan) -> dict[str, tuple[int, ...]]:
    """Each history entry's shape per epoch (the chunk's buffers add a leading CHUNK axis)."""
    L = cfg.net.num_layers
    shapes: dict[str, tuple[int, ...]] = {"loss": ()}
    if cfg.grad_norms:
        shapes["grad_norm"] = (L,)
    if cfg.has_val:
        shapes.update(val_loss=(), val_accuracy=())
    if cfg.health:
        shapes.update(dead_fraction=(L - 1,), saturated_fraction=(L - 1,), update_ratio=(L,))
    return shapes


def check_history(cfg: Plan, staged: Staged, n: int | None = None) -> None:
    """Refuse ``epochs`` whose history the host could never hold (it is allocated for every epoch up front)."""
    per_epoch = sum(math.prod(s) for s in history_shapes(cfg).values()) * (n or 1)
    itemsize = np.dtype(staged.arrays.x.dtype).itemsize
    _checks.check_memory(staged.epochs * per_epoch, itemsize, f"the history of `epochs` = {staged.epochs:,} epochs")


def history_buffers(cfg: Plan, dtype) -> dict[str, Array]:
    return {k: jnp.full((CHUNK, *s), jnp.nan, dtype) for k, s in history_shapes(cfg).items()}


def init_carry(cfg: Plan, params: Params, key: Array) -> Carry:
    dtype = jax.tree_util.tree_leaves(params)[0].dtype
    state = init_state(cfg.net, cfg.optimizer.optimizer, params)
    zero = jnp.zeros((), jnp.int32)
    inf = jnp.asarray(jnp.inf, dtype)
    plateau = Plateau(inf, zero) if cfg.plateau else None
    return Carry(state, key, zero, zero, params, inf, zero - 1, history_buffers(cfg, dtype), plateau)


def plateau_rule(p: Plateau, loss: Any, rate: Any, rules: Stops, reduce: bool, xp: Any = jnp) -> tuple[Plateau, Any, Any, Any]:
    """One epoch of the plateau rule: ``(state, learning rate, fired, stop)`` after an epoch's ``loss``.

    The epoch counts when its loss is not below ``best − min_delta`` (a lower one resets the count);
    ``best`` keeps the lowest. The rule fires when the count exceeds ``plateau_patience``. Without
    ``reduce`` a firing stops the run; with it the learning rate is divided by ``factor`` and the count
    starts again, unless the rate is already at or below ``min_rate``: then it stops. (scikit-learn's
    ``_fit_stochastic`` rule and ``adaptive`` rate; a score to maximise is watched as its negative.)
    ``xp``: ``jax.numpy`` in the compiled loop, ``numpy`` on the host (the same rule, watching a
    number only the host computes).
    """
    streak = xp.where(loss > p.best - rules.min_delta, p.streak + 1, 0)
    best = xp.minimum(p.best, loss)
    fired = streak > rules.plateau_patience
    if not reduce:
        return Plateau(best, streak), rate, fired, fired
    stop = fired & (rate <= rules.min_rate)
    rate = xp.where(fired & ~stop, rate / rules.factor, rate)
    return Plateau(best, xp.where(fired, 0, streak)), rate, fired, stop


def _set_rate(opt_state: Any, rate: Array) -> Any:
    """The ``optax.inject_hyperparams`` state with a new ``learning_rate``."""
    return opt_state._replace(hyperparams={**opt_state.hyperparams, "learning_rate": rate})


def _select(ok: Array, new: Any, old: Any) -> Any:
    return jax.tree_util.tree_map(lambda a, b: jnp.where(ok, a, b), new, old)


class Minibatches(NamedTuple):
    """What an epoch's scan over its minibatches leaves (for one network)."""

    state: TrainState  # after the epoch's accepted steps
    bad: Array  # shape=(), bool: a step was rejected (guarded) / the epoch must be replayed guarded (fast)
    sums: EpochSums


def _minibatches(
    cfg: Plan, step: Callable, state: TrainState, perm: Array, data: Arrays, guarded: bool, key: Array | None = None
) -> Minibatches:
    """Scan the epoch's minibatches (in the order ``perm``) from ``state``.

    ``guarded``: the divergence guard on every step. A step whose loss or new parameters are not
    finite is rejected, and so is every later step of the epoch: ``state`` is the last one whose
    every number was finite and ``bad`` says a step was rejected. (A non-finite gradient makes the
    new parameters non-finite, unless the optimizer drops it, as ``optax.zero_nans`` does.)

    Not ``guarded`` (the fast path, what every epoch runs first): each step tests only the loss, a
    scalar it already has; the parameters are tested once, at the end. ``bad`` is then "some number
    was not finite", and the caller replays the epoch guarded from its start. The two agree exactly
    whenever ``bad`` is False: updates are added (``optax.apply_updates``), and a parameter that is
    NaN or ±inf stays so under every later addition, so finite final parameters mean every step's
    parameters were finite.

    ``key``: the epoch's key; a network with dropout draws step ``s``'s masks from
    ``fold_in(fold_in(key, DROPOUT), s)`` (``s`` the optimizer's step count, so a resumed run draws the same).
    """
    x, t = data.x, data.t
    L = cfg.net.num_layers
    blocks = not isinstance(cfg.net, MLP)
    drop_key = jax.random.fold_in(key, DROPOUT) if (cfg.net.random and key is not None) else None
    dtype = x.dtype
    n_full = cfg.n // cfg.batch_size
    rem = 0 if cfg.drop_last else cfg.n % cfg.batch_size

    def batch(carry, idx, valid=None):
        state, bad, acc = carry
        if cfg.split:  # each device takes its own rows (idx holds local indices, see _perm)
            xb, tb = _parallel.take_rows(cfg.mesh, x, idx), _parallel.take_rows(cfg.mesh, t, idx)
        else:
            xb = _parallel.constrain_batch(cfg.mesh, x[idx])  # (bs, n_in), split over "data"
            tb = _parallel.constrain_batch(cfg.mesh, t[idx])
        if cfg.weighted:  # the rows' weights (0 for a masked lane) and the L2 strength
            wb = data.w[idx] if valid is None else jnp.where(valid, data.w[idx], 0)
            new, m = step(state, xb, tb, wb, data.l2 if cfg.l2 else jnp.zeros((), dtype))
        elif blocks:  # a network of blocks: L2's λ and the step's dropout key
            k = None if drop_key is None else jax.random.fold_in(drop_key, state.step)
            new, m = step(state, xb, tb, data.l2 if cfg.l2 else None, k)
        elif cfg.l2:
            new, m = step(state, xb, tb, data.l2)
        else:
            new, m = step(state, xb, tb)
        ok = jnp.isfinite(m["loss"])
        if guarded:
            ok = ok & ~bad & _metrics.all_finite(new.params)
        rows = jnp.asarray(idx.shape[0], dtype) if valid is None else jnp.sum(valid).astype(dtype)
        upd = jnp.zeros((L,), dtype)
        if cfg.health:
            upd = _metrics.layer_norms(jax.tree_util.tree_map(jnp.subtract, new.params, state.params)) / (
                _metrics.layer_norms(state.params) + jnp.finfo(dtype).tiny
            )
        w = ok.astype(dtype) if guarded else jnp.ones((), dtype)
        acc = EpochSums(
            acc.loss + w * rows * m["loss"].astype(dtype),
            acc.rows + w * rows,
            acc.grad_norm + w * m["grad_norm"].astype(dtype) if cfg.grad_norms else acc.grad_norm,
            acc.update + w * upd,
            acc.steps + w,
        )
        return (_select(ok, new, state) if guarded else new, bad | ~ok, acc), None

    scalar, per_layer = jnp.zeros((), dtype), jnp.zeros((L,), dtype)
    carry = (state, jnp.zeros((), bool), EpochSums(scalar, scalar, per_layer, per_layer, scalar))
    if cfg.masked:  # padded rows and batch: the real sizes are traced, so nearby sizes share this program
        n, size = data.sizes[0], data.sizes[1]
        lanes = jnp.arange(cfg.batch_size)

        def masked(s, carry):  # step s reads positions s·size + [0, batch_size); lanes past size or n weigh 0
            pos = s * size + lanes
            return batch(carry, jnp.take(perm, pos, mode="clip"), (lanes < size) & (pos < n))[0]

        carry = jax.lax.fori_loop(0, (n + size - 1) // size, masked, carry)
    elif n_full:
        carry, _ = jax.lax.scan(batch, carry, perm[: n_full * cfg.batch_size].reshape(n_full, cfg.batch_size))
    if rem and not cfg.masked:  # the last, smaller batch: every example is seen every epoch
        carry, _ = batch(carry, perm[n_full * cfg.batch_size :])
    state, bad, sums = carry
    if not guarded:
        bad = bad | ~_metrics.all_finite(state.params)
    return Minibatches(state, bad, sums)


def _perm(cfg: Plan, c: Carry, data: Arrays, base: Array) -> Array:
    """The epoch's order of examples; for split data, each device's own rows side by side, batch by batch;
    with host orders, the one the host drew for this epoch of the chunk."""
    if cfg.host_orders:
        return data.orders[c.epoch - base]
    key = jax.random.fold_in(c.key, c.epoch)
    if cfg.split:
        return _parallel.local_order(_parallel.local_perms(cfg.mesh, key, cfg.n, cfg.shuffle), cfg.batch_size)
    return _shuffle.permutation(key, cfg.n) if cfg.shuffle else jnp.arange(cfg.n)


def _epoch_key(c: Carry) -> Array:
    """The key of the epoch ``c.epoch``: its order of examples, and the stream of its dropout masks."""
    return jax.random.fold_in(c.key, c.epoch)


def _epoch(cfg: Plan, c: Carry, mb: Minibatches, data: Arrays, rules: Stops) -> tuple[Carry, dict[str, Array]]:
    """The end of an epoch, after its minibatches ``mb``: the history row, validation and the stop rules.

    Returns the new carry (history untouched) and the epoch's history row.
    """
    state, diverged, sums = mb
    e = c.epoch
    dtype = data.x.dtype
    row = {"loss": sums.loss / sums.rows}
    if cfg.grad_norms:
        row["grad_norm"] = sums.grad_norm / sums.steps
    stop = jnp.where(diverged, DIVERGED, RUNNING)
    stop = jnp.where((stop == RUNNING) & (sums.loss / sums.rows < jnp.asarray(rules.tol, dtype)), TOL, stop)
    plateau = c.plateau
    if cfg.plateau:
        assert c.plateau is not None  # init_carry makes it for a plan with the rule
        reduce = cfg.plateau == "reduce"
        rate = state.opt_state.hyperparams["learning_rate"] if reduce else None
        plateau, rate, _, fired = plateau_rule(c.plateau, row["loss"], rate, rules, reduce)
        stop = jnp.where((stop == RUNNING) & fired, PLATEAU, stop)
        if reduce:
            state = state._replace(opt_state=_set_rate(state.opt_state, rate))
    best, best_val, best_epoch = c.best, c.best_val, c.best_epoch
    if cfg.has_val:
        out, cache = cfg.net.propagate(state.params, data.xv)  # staged arrays: checked once
        val_loss = _losses.value(cfg.loss, cache.z[-1], out, data.tv)
        val_accuracy = _metrics.accuracy(cfg.acc_kind, out, data.tv)
        row.update(val_loss=val_loss, val_accuracy=val_accuracy)
        if cfg.early_stopping:  # the monitored value, lower is better (accuracy negated)
            watched = val_loss if cfg.monitor == "val_loss" else -val_accuracy.astype(dtype)
            better = (watched < best_val - jnp.asarray(rules.early_min_delta, dtype)) & ~diverged
            best = _select(better, state.params, best)
            best_val = jnp.where(better, watched, best_val)
            best_epoch = jnp.where(better, e, best_epoch)
            stop = jnp.where((stop == RUNNING) & (e - best_epoch >= rules.patience), EARLY, stop)
    if cfg.health:
        h = _metrics.unit_health(cfg.net, state.params, data.probe)
        row.update(
            dead_fraction=h["dead_fraction"], saturated_fraction=h["saturated_fraction"], update_ratio=sums.update / sums.steps
        )
    return Carry(state, c.key, e + 1, stop.astype(jnp.int32), best, best_val, best_epoch, c.hist, plateau), row


def _write_row(c: Carry, row: dict[str, Array], base: Array, active: Array | None) -> dict[str, Array]:
    """The chunk's history with the epoch's row (row ``epoch - base``); kept as it was where not ``active``.

    Only that row is written, so a stopped network costs O(params), not O(history), per epoch:
    with many networks in lockstep this keeps the loop linear.
    """
    i = c.epoch - base
    if active is None:
        return {k: v.at[i].set(row[k].astype(v.dtype)) for k, v in c.hist.items()}
    return {k: v.at[i].set(jnp.where(active, row[k].astype(v.dtype), v[i])) for k, v in c.hist.items()}


def one_epoch(cfg: Plan, step: Callable, guarded: bool, c: Carry, data: Arrays, rules: Stops, base: Array) -> Carry:
    """An epoch of one network (its loop runs only while it is active: nothing to mask).

    On the fast path an epoch that met a non-finite number is not taken: the carry stays at the
    epoch's start with stop code REPLAY, for the guarded loop to run it again.
    """
    mb = _minibatches(cfg, step, c.state, _perm(cfg, c, data, base), data, guarded, _epoch_key(c))
    new, row = _epoch(cfg, c, mb, data, rules)
    new = new._replace(hist=_write_row(c, row, base, None))
    if guarded:
        return new
    return _select(mb.bad, c._replace(stop=jnp.asarray(REPLAY, jnp.int32)), new)


def many_epochs(
    cfg: Plan, step: Callable, guarded: bool, c: Carry, data: Arrays, rules: Stops, base: Array, until: Array
) -> Carry:
    """An epoch of every network still running (before ``until``), in lockstep; nothing for one that
    stopped (its carry is selected back, the history aside). As :func:`one_epoch`, a network whose
    fast epoch met a non-finite number stays at the epoch's start with stop code REPLAY."""

    def one(c: Carry) -> Carry:
        active = (c.stop == RUNNING) & (c.epoch < until)
        mb = _minibatches(cfg, step, c.state, _perm(cfg, c, data, base), data, guarded, _epoch_key(c))
        new, row = _epoch(cfg, c, mb, data, rules)
        if not guarded:
            new = _select(mb.bad, c._replace(stop=jnp.asarray(REPLAY, jnp.int32)), new)
            row = {k: jnp.where(mb.bad, jnp.nan, v) for k, v in row.items()}
        kept = _select(active, new._replace(hist={}), c._replace(hist={}))  # the history is not selected over
        return kept._replace(hist=_write_row(c, row, base, active))

    return jax.vmap(one)(c)


@functools.lru_cache(maxsize=64)
def compiled_init(cfg: Plan, many: bool) -> Callable:
    """``init(params, key) -> carry``, one compiled program per plan (eagerly, each of its small ops
    would compile on its own in a fresh process). With ``many``, ``params`` is stacked and each
    network gets its own shuffling key, split from ``key`` (or ``key[i]``, given one typed key per network)."""

    def init(params: Params, key: Array) -> Carry:
        if not many:
            return init_carry(cfg, params, key)
        n = jax.tree_util.tree_leaves(params)[0].shape[0]
        per_network = jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key) and key.ndim == 1
        return jax.vmap(lambda p, k: init_carry(cfg, p, k))(params, key if per_network else jax.random.split(key, n))

    return jax.jit(init)


@functools.lru_cache(maxsize=64)
def compiled_runner(cfg: Plan, many: bool, guarded: bool = False) -> Callable:
    """``run(carry, data, rules, base, until, fresh) -> carry``: epochs ``base`` … ``until`` (at
    most :data:`CHUNK`) or until a stop rule fires, compiled, with the chunk's history rows
    (``fresh``: clear them first, as a new chunk begins).

    Cached on the plan, so repeated ``fit`` calls with an equal setup compile once; the number of
    epochs, the stop rules' values, the data and the keys are arguments, not part of the program.
    With ``many``, the carry has a leading network axis and the data is shared: the epoch is
    vmapped (:func:`many_epochs`), the ``while_loop`` around it runs while any network is still
    training. (A vmapped ``while_loop`` would select over every carry — the whole history — on
    every iteration.)

    Not ``guarded`` (the program every run uses), the loop stops at an epoch that met a non-finite
    number, leaving it to the ``guarded`` program, which runs that one epoch again with the
    divergence guard on every step (:func:`_minibatches`). That program is compiled only when a
    run diverges.
    """
    step = step_fn(
        cfg.net,
        cfg.loss,
        cfg.optimizer.optimizer,
        cfg.grad,
        cfg.grad_norms,
        weighted=cfg.weighted,
        l2=cfg.l2,
        report_scale=cfg.report_scale,
    )

    def run(c: Carry, data: Arrays, rules: Stops, base: Array, until: Array, fresh: Any = True) -> Carry:
        hist = {k: jnp.where(fresh, jnp.nan, v) for k, v in c.hist.items()}  # a new chunk's rows
        c = c._replace(hist=hist)
        if guarded:  # the epoch the fast loop left: run it (and nothing more) with the guard
            c = c._replace(stop=jnp.where((c.stop == REPLAY) & (c.epoch < until), RUNNING, c.stop))
        if many:
            body = lambda c: many_epochs(cfg, step, guarded, c, data, rules, base, until)
        else:
            body = lambda c: one_epoch(cfg, step, guarded, c, data, rules, base)
        running = lambda c: jnp.any((c.epoch < until) & (c.stop == RUNNING))
        return jax.lax.while_loop(running, body, c)

    # The guarded program runs one epoch of a diverging run: on the CPU it is compiled without XLA's
    # optimisation passes, three times faster to compile (0.9 -> 0.3 s for a 64-128-10 fit_many).
    # fit_many's own loop keeps XLA:CPU's library fusions to dots (fnn/_compile.py: 5x for 256 XOR nets).
    options = _compile.quick_options() if guarded else _compile.many_options() if many else None
    return jax.jit(run, compiler_options=options)
