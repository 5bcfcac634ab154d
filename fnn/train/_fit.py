"""Training: the seed's loop — forward, loss, backward, update, repeat until the loss is small
enough or the epochs run out — as compiled, composable JAX.

- :func:`make_step` (from :mod:`fnn.step`) — one jitted optimizer step, manual or autodiff
  gradients, any optax optimizer.
- :func:`fit` — epochs of shuffled minibatches (each epoch one ``lax.scan``; a chunk of epochs one
  compiled ``lax.while_loop``), stop rules ``epochs`` / ``tol`` / early stopping, a divergence guard,
  per-epoch history, optional health metrics, optional data parallelism over a mesh.
- :func:`fit_many` — many networks (seeds × hyperparameters) in one compiled, vmapped call.
- :func:`per_example_grads` — one gradient per example, by vmap.

Long runs: ``fit`` and ``fit_many`` write checkpoints as they go and resume from the last one
(``checkpoint=Checkpointing(dir, every=..., resume=True)``); ``return_state=True`` / ``state=`` continue a
run in memory across calls; ``callback=Callback(fn, every=...)`` hands out snapshots. Continued either
way, a run ends bitwise where one uninterrupted call ends, on the CPU (:mod:`fnn.train._resume`).

Divergence: a step whose loss, gradient or new parameters are not finite is not applied;
training stops there. ``fit`` then raises :class:`TrainingDiverged`, which carries the epoch and
the last finite parameters; ``fit_many`` never raises, it flags each network
(``history["diverged"]``) and returns its last finite parameters, so one diverging network does
not spoil the others.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.typing import ArrayLike

from fnn import _checks
from fnn.analysis.metrics import network_per_example_grads
from fnn.core import losses as _losses
from fnn.core.backprop import autodiff_value_and_grad, check_loss, manual_value_and_grad
from fnn.core.mlp import MLP, Params
from fnn.core.network import Model, Network
from fnn.train import _loop, _resume
from fnn.train import parallel as _parallel
from fnn.train._options import Callback, Checkpointing, Resumed, RunOptions, accepts_0_1_keywords, check_run
from fnn.train._plan import EarlyStopping, LoopOptions, check_common, count_networks, stage
from fnn.train._state import FitState, fit_state, state_params
from fnn.train.step import DEFAULT_OPTIMIZER, Step, TrainState, check_grad, check_optimizer, make_step

Array = jax.Array
__all__ = [
    "DEFAULT_OPTIMIZER",
    "Callback",
    "Checkpointing",
    "EarlyStopping",
    "FitState",
    "Resumed",
    "Step",
    "TrainState",
    "TrainingDiverged",
    "fit",
    "fit_many",
    "make_step",
    "per_example_grads",
]


class TrainingDiverged(RuntimeError):
    """Raised by :func:`fit` when a step's loss or new parameters are NaN or infinite.

    Attributes:
      epoch: the (0-based) epoch in which training diverged.
      params: the last finite parameters (before the step that diverged).
      history: the history up to and including that epoch.

    Example:
      >>> net, data = MLP((1, 1)), (jnp.ones((2, 1)), jnp.ones((2, 1)))
      >>> try:
      ...     fit(net, net.init(jax.random.key(0)), data, loss="mse", optimizer=optax.sgd(1e20), epochs=5, progress=False)
      ... except TrainingDiverged as e:
      ...     print(e.epoch, len(e.params), bool(jnp.isfinite(e.params[0]["W"]).all()))
      1 1 True
    """

    def __init__(self, epoch: int, params: Params, history: dict[str, Any]) -> None:
        super().__init__(
            f"training diverged in epoch {epoch}: a non-finite loss or parameter appeared "
            "(lower the learning rate?); the last finite parameters are in .params"
        )
        self.epoch, self.params, self.history = epoch, params, history


def per_example_grads(
    net: MLP | Network | Model,
    params: Params,
    x: ArrayLike,
    y: ArrayLike,
    *legacy: Any,
    loss: _losses.LossLike | None = None,
    grad: str = "manual",
    key: Array | None = None,
    train: bool = True,
) -> Params:
    """One gradient per example: ``vmap`` of the single-example gradient over the batch.

    For a network of blocks (or a model): each example's loss term's gradient within the batch (batch
    statistics and the dropout mask drawn from ``key`` shared by the batch, so the mean of the rows is the
    batch gradient; for a network whose examples do not interact it is the example's own gradient), in
    train mode unless ``train=False`` (:func:`fnn.metrics.network_per_example_grads`).

    Arguments in the order of :func:`fit`: ``per_example_grads(net, params, x, y, loss=...)``; the
    old order ``per_example_grads(net, loss, params, x, y)`` still works, with a DeprecationWarning.

    Returns:
      The gradient pytree with a leading batch axis: ``W`` leaves (B, n_out, n_in), ``b`` (B, n_out).

    >>> net = MLP((2, 3, 1), hidden="tanh")
    >>> g = per_example_grads(net, net.init(jax.random.key(0)), jnp.ones((5, 2)), jnp.zeros((5, 1)), loss="mse")
    >>> g[0]["W"].shape
    (5, 3, 2)
    """
    if len(legacy) == 2 and isinstance(legacy[-1], str):  # the old order's positional grad
        grad, legacy = legacy[-1], legacy[:-1]
    params, x, y, loss = _checks.params_first("per_example_grads", params, x, y, legacy, loss)
    record = check_loss(net, loss)
    check_grad(grad, net)
    if not isinstance(net, MLP):
        return _network_per_example(net, record, grad, params, x, y, key, train)
    if key is not None or train is not True:
        raise TypeError("`key` and `train` are options of a network of blocks (fnn.Network); an MLP has neither")
    x = _checks.check_x(net, x)
    if x.ndim != 2:
        raise ValueError(f"`x` must be a batch (B, {net.sizes[0]}) for per-example gradients, got shape {tuple(x.shape)}")
    y = _checks.as_array(y, "y")
    _checks.check_batch(x, y)
    _checks.check_params(net, params)
    # the labels' dtype and values, while they are concrete (inside the vmap each row is traced)
    _losses.targets(loss, y, net.sizes[-1], (int(x.shape[0]),), None, convert=False)
    fn = (manual_value_and_grad if grad == "manual" else autodiff_value_and_grad)(net, loss)
    return jax.vmap(lambda a, b: fn(params, a, b)[1])(x, y)


def _network_per_example(net: Any, loss: _losses.Loss, grad: str, params: Any, x: Any, y: Any, key: Any, train: Any) -> Any:
    net.check_params(params)
    x = _checks.check_x(net, x)
    if x.ndim != 2:
        raise ValueError(f"`x` must be a batch (B, {net.sizes[0]}) for per-example gradients, got shape {tuple(x.shape)}")
    y = _checks.as_array(y, "y")
    _checks.check_batch(x, y)
    train = _checks.check_flag(train, "train")
    net.check_mode(params, x, key, train)
    dtype = jnp.result_type(x.dtype, _checks.params_dtype(params))
    t = _losses.targets(loss, y, net.sizes[-1], (int(x.shape[0]),), dtype)
    return network_per_example_grads(net, loss, grad, params, x.astype(dtype), t, key, train)


@accepts_0_1_keywords
def fit(
    net: MLP | Network | Model,
    params: Params,
    data: tuple[ArrayLike, ArrayLike],
    *,
    loss: _losses.LossLike,
    optimizer: optax.GradientTransformation | None = None,
    epochs: int,
    batch_size: int | None = None,
    key: Array | None = None,
    grad: str = "manual",
    tol: float | None = None,
    validation: tuple[ArrayLike, ArrayLike] | None = None,
    early_stopping: EarlyStopping | None = None,
    health: bool = False,
    grad_norms: bool = False,
    shuffle: bool = True,
    drop_last: bool = False,
    mesh: Any = None,
    progress: bool | None = None,
    checkpoint: Checkpointing | None = None,
    state: FitState | None = None,
    return_state: bool | None = None,
    override: str | Sequence[str] = (),
    callback: Callback | None = None,
    l2: float | None = None,
) -> tuple[Params, dict[str, Any]]:
    """Train ``params`` on ``data = (x, y)`` by minibatch gradient descent.

    Args:
      net, params: the network and its starting parameters: an :class:`~fnn.MLP`, a network of blocks
        (:class:`~fnn.Network`: it trains in train mode — batch statistics, dropout drawn from ``key``
        step by step — and is validated and evaluated in eval mode; its running statistics come back in
        ``params``) or an :class:`~fnn.Model` of your own ``init`` / ``apply`` (``grad="autodiff"``).
      data: ``(x, y)``, x of shape (N, n_in), y as the loss expects (class indices, one-hot, targets).
      loss: ``"mse"``, ``"cross_entropy"`` or ``"bce"``.
      optimizer: an optax transformation; default ``optax.sgd(0.1)``.
      epochs: the most epochs to run (≥ 1).
      batch_size: minibatch size; None means the full batch. Larger than N: clamped to N with a
        warning. When N is not a multiple, the last batch of each epoch is smaller (set
        ``drop_last=True`` to skip it instead).
      key: shuffles the examples each epoch (epoch e uses ``fold_in(key, e)``); required unless
        the full batch is used or ``shuffle=False``.
      grad: ``"manual"`` (hand-derived backward) or ``"autodiff"`` (``jax.grad``).
      tol: stop once an epoch's mean training loss is below ``tol``.
      validation: ``(x_val, y_val)`` evaluated after every epoch (``val_loss``, ``val_accuracy``).
      early_stopping: an :class:`EarlyStopping`, ``EarlyStopping(patience, monitor="val_loss",
        min_delta=0.0)``: stop after ``patience`` epochs in a row whose validation loss (or accuracy) did
        not improve on the best by more than ``min_delta``, and return the best parameters. Needs
        ``validation``. (fnn 0.2.0's ``patience=n`` still works, with a DeprecationWarning.)
      health: also record, after each epoch's last step and on the first 1024 training rows, the
        fraction of each hidden layer's ReLU units that are dead (0 on every row) and of its
        sigmoid/tanh outputs that are saturated (over rows × units); each layer's ‖ΔW‖/‖W‖ averaged
        over the epoch's steps; and the gradient norms.
      grad_norms: also record ``grad_norm``, each layer's ‖∂E/∂W⁽ˡ⁾‖ averaged over the epoch's
        steps. Off by default: it reads every gradient once more per step (the benchmark's
        steady-state section measures what that costs).
      mesh: a ``jax.sharding.Mesh`` with a ``"data"`` axis (see :func:`fnn.data_mesh`): every
        minibatch is split over its devices, params replicated. Batch sizes must divide evenly.
      progress: a tqdm bar; None shows one when stderr is a terminal.
      checkpoint: an :class:`Checkpointing`: write the run's whole state to a directory as it goes,
        ``Checkpointing(dir, every=None, every_s=None, keep=3, resume=False)``, and with ``resume=True``
        continue the run whose checkpoints are there, to bitwise the result of the uninterrupted call
        on the CPU (see :class:`Checkpointing`). fnn 0.1's ``checkpoint_dir=``, ``checkpoint_every=``,
        ``checkpoint_every_s=``, ``keep=`` and ``resume=`` still work, with a DeprecationWarning.
      state: a :class:`FitState` (``history["state"]`` of an earlier call): continue that run in
        memory for ``epochs`` more epochs: its parameters (``params`` is then None or the params that
        call returned), optimizer state, step count, shuffling key and stop rules' state carry on, so
        that calls of 10 epochs give bitwise one call's result; the history holds this call's epochs
        (``epochs_run`` and ``steps`` count them; ``best_epoch`` counts from the run's start). A run
        that stopped (tol, early stopping) stays stopped. Needs the same plan as the call that made it
        (see ``override``).
      return_state: also return the run's :class:`FitState` in ``history["state"]``; by default only
        when ``state`` is given.
      override: what a continued run (``state``, or ``checkpoint`` with ``resume=True``) may change on
        purpose, by name: ``"optimizer"`` (e.g. another learning rate; its state must keep its
        structure), ``"loss"``, ``"grad"``, ``"data"``, ``"batch_size"``, ``"shuffle"``, ``"drop_last"``,
        and on resume ``"key"`` and ``"params"``. The network, the dtype and the history's columns
        cannot change.
      l2: λ ≥ 0, L2 weight decay in the objective: each step minimises ``E + ½ λ Σ_l ‖W⁽ˡ⁾‖²`` (weights
        only, not biases, γ or β), its gradient ``λ W`` added by hand (the history's ``loss`` includes
        the term). It is ``optax.chain(optax.add_decayed_weights(λ, mask=weights), optimizer)``: the term
        goes through the optimizer (Adam rescales it). Decoupled decay (``optax.adamw``) shrinks the
        parameters outside the optimizer's scaling; for plain SGD the two are the same step. λ's value is
        not part of the compiled program.
      callback: a :class:`Callback`, ``Callback(fn, every)``: ``fn(epoch, params, history)`` is called
        with the epochs completed, the current parameters and this call's history so far (numpy
        copies) after every ``every`` epochs (at multiples of it) and after the last. The compiled
        loop leaves its device program only at those epochs. (0.1's ``callback=fn,
        callback_every=n`` still works, with a DeprecationWarning.)

    Returns:
      ``(params, history)``. ``history`` maps ``loss`` (epochs,), ``grad_norm`` (epochs, L) (with
      grad_norms or health), ``val_loss`` / ``val_accuracy`` (with validation), ``dead_fraction`` /
      ``saturated_fraction`` (epochs, L−1) and ``update_ratio`` (epochs, L) (with health) to numpy arrays, plus
      ``epochs_run``, ``steps`` (optimizer steps applied), ``stop_reason`` (``"epochs"``, ``"tol"``,
      ``"early_stopping"``) and, with early stopping, ``best_epoch``; with ``return_state`` (or ``state``),
      ``state``.

    Raises:
      TrainingDiverged: a non-finite loss or new parameters; carries the last finite params (those
        of the last step whose loss and parameters were finite).

    Compilation: the training loop is compiled once per *plan* and reused for every later call with
    an equal one, in this process. The plan is the network spec (an equal ``MLP``, even re-created),
    the loss (a name and its record are one), the optimizer compared by structure (a fresh
    ``optax.sgd(0.5)`` equals another; different hyperparameters or transformations do not; an
    optimizer whose closures hold values fnn cannot read is compared by identity, so it recompiles
    unless you pass the same object), ``grad``, the shapes and dtypes of the data and validation
    set, the batch size, ``shuffle``, ``drop_last``, whether there is a validation set, early
    stopping (given or not, and its monitor), ``health``, ``grad_norms`` and the mesh. Not part of it:
    ``epochs``, the values of ``tol``, ``patience`` and ``min_delta``, the data's values, the starting parameters
    and ``key``. A second program is compiled only when a run meets a NaN or ±inf: the guarded
    replay of that epoch.

    Example:
      >>> net = MLP((2, 8, 2), hidden="tanh", output="softmax")
      >>> x, y = jnp.array([[0., 0.], [0., 1.], [1., 0.], [1., 1.]]), jnp.array([0, 1, 1, 0])
      >>> params, hist = fit(net, net.init(jax.random.key(0)), (x, y), loss="cross_entropy",
      ...                    optimizer=optax.sgd(0.5), epochs=2000, tol=0.01, progress=False)
      >>> hist["stop_reason"], bool((jnp.argmax(net.apply(params, x), -1) == y).all())
      ('tol', True)

      With checkpoints; the same call with ``resume=True`` continues the run (here it has finished,
      so it returns the run's result at once):

      >>> import os, tempfile
      >>> run = f"{tempfile.mkdtemp()}/xor"
      >>> kw = dict(loss="cross_entropy", optimizer=optax.sgd(0.5), epochs=100, progress=False)
      >>> p1, h1 = fit(net, net.init(jax.random.key(0)), (x, y), checkpoint=Checkpointing(run, every=40), **kw)
      >>> p2, h2 = fit(net, net.init(jax.random.key(0)), (x, y), checkpoint=Checkpointing(run, every=40, resume=True), **kw)
      >>> sorted(os.listdir(run)), bool((h1["loss"] == h2["loss"]).all())
      (['state-000000040.npz', 'state-000000080.npz', 'state-000000100.npz'], True)
    """
    if key is not None:  # one key (fit_many takes one per network; fit's would reach jax.random.fold_in)
        _checks.check_key(key, "key")
    loop = LoopOptions(epochs, batch_size, key, shuffle, drop_last, tol, validation, early_stopping, health, mesh, grad_norms, l2)
    call = _door(net, loss, optimizer, grad, progress, (checkpoint, state, return_state, override, callback), loop, many=False)
    run = call.run
    if run.state is not None:
        params = state_params(run.state, params)
    _checks.check_params(net, params)
    mesh = _parallel.check_mesh(mesh) if mesh is not None else None
    options = call.loop._replace(mesh=mesh)
    plan, staged = stage(net, call.loss, call.optimizer, grad, data, _checks.params_dtype(params), options)
    _loop.check_history(plan, staged)
    if mesh is not None and run.state is None:
        params = _parallel.replicate(mesh, params)
    if run.plain:
        carry, history = _loop.train(plan, staged, params, progress)
    else:
        carry, history = _resume.train(plan, staged, params, progress, run)
    if run.return_state:
        history["state"] = fit_state(plan, staged, carry, None)
    if int(carry.stop) == _loop.DIVERGED:
        if history["steps"] == 0:  # not one step was finite: were the parameters it started from?
            _refuse_nonfinite(carry.state.params, None)
        raise TrainingDiverged(int(carry.epoch) - 1, carry.state.params, history)
    return (carry.best if plan.early_stopping else carry.state.params), history


@accepts_0_1_keywords
def fit_many(
    net: MLP | Network | Model,
    data: tuple[ArrayLike, ArrayLike],
    *,
    loss: _losses.LossLike,
    optimizer: optax.GradientTransformation | None = None,
    epochs: int,
    key: Array,
    num_networks: int | None = None,
    params: Params | None = None,
    hyperparams: dict[str, ArrayLike] | None = None,
    batch_size: int | None = None,
    grad: str = "manual",
    tol: float | None = None,
    validation: tuple[ArrayLike, ArrayLike] | None = None,
    early_stopping: EarlyStopping | None = None,
    health: bool = False,
    grad_norms: bool = False,
    shuffle: bool = True,
    drop_last: bool = False,
    mesh: Any = None,
    progress: bool | None = None,
    checkpoint: Checkpointing | None = None,
    state: FitState | None = None,
    return_state: bool | None = None,
    override: str | Sequence[str] = (),
    callback: Callback | None = None,
    l2: float | None = None,
) -> tuple[Params, dict[str, Any]]:
    """Train N networks at once — different seeds and/or hyperparameters — in one compiled call.

    The training loop of :func:`fit` is ``jax.vmap``-ed over a leading network axis: every
    network has its own initialisation, shuffling order and optimizer state; the data is shared.

    ``net``, ``data``, ``loss``, ``optimizer``, ``epochs``, ``batch_size``, ``grad``, ``tol``, ``validation``,
    ``early_stopping``, ``health``, ``grad_norms``, ``shuffle``, ``drop_last`` and ``progress`` are as for
    :func:`fit`, applied to every network. Stop rules act per network (a stopped network idles while the
    others run).

    Args:
      key: split into one initialisation key (unless ``params`` is given) and one shuffling key
        per network. Or, with ``params``, one typed key per network (shape (N,)): network i shuffles
        with ``key[i]``, so networks given equal keys see the same minibatch order (a paired sweep:
        ``key=grid.keys(jax.random.key(1))``, see :func:`fnn.sweep.paired_grid`).
      num_networks: N, when neither ``params`` nor ``hyperparams`` fixes it.
      params: starting parameters stacked over a leading axis of size N (``W``: (N, n_out, n_in)).
      mesh: a ``jax.sharding.Mesh`` with a ``"data"`` axis (:func:`fnn.data_mesh`): the N networks
        are split over its devices (N must be a multiple of their number), each device training its
        share on the whole dataset; the result equals the one-device run per network, to float
        tolerance (the returned params stay split over the devices; the history is numpy, as always).
      hyperparams: ``{name: values of shape (N,)}`` overriding the optimizer's hyperparameters per
        network; needs an optimizer made with ``optax.inject_hyperparams``, e.g.
        ``optax.inject_hyperparams(optax.sgd)(learning_rate=0.1)``. For a grid of seeds × learning
        rates, repeat the rates: ``jnp.repeat(lrs, n_seeds)``. With ``state``, they replace the state's.
      checkpoint, return_state, override, callback: as for :func:`fit` (the callback gets the stacked
        parameters and histories with a leading N axis; a checkpoint's epoch is the furthest network's).
      state: as for :func:`fit`, a :class:`FitState` from ``fit_many`` (``history["state"]``): the N
        networks continue, each from where it stands (a stopped or diverged one stays so); ``key``,
        ``params`` and ``num_networks`` are then not needed (the state holds the shuffling keys).

    Returns:
      ``(params, history)``: params stacked over N; history arrays with a leading N axis
      (NaN after a network stopped), ``epochs_run`` (N,), ``stop_reason`` (N strings) and
      ``diverged`` (N,) bool. A diverged network keeps its last finite parameters.

    Example:
      >>> net = MLP((2, 8, 2), hidden="tanh", output="softmax")
      >>> x, y = jnp.array([[0., 0.], [0., 1.], [1., 0.], [1., 1.]]), jnp.array([0, 1, 1, 0])
      >>> opt = optax.inject_hyperparams(optax.sgd)(learning_rate=0.1)
      >>> ps, hist = fit_many(net, (x, y), loss="cross_entropy", optimizer=opt, epochs=50, key=jax.random.key(0),
      ...                     hyperparams={"learning_rate": jnp.array([0.1, 0.5, 1.0])}, progress=False)
      >>> ps[0]["W"].shape, hist["loss"].shape
      ((3, 8, 2), (3, 50))
    """
    loop = LoopOptions(
        epochs, batch_size, None, shuffle, drop_last, tol, validation, early_stopping, health, None, grad_norms, l2
    )
    call = _door(net, loss, optimizer, grad, progress, (checkpoint, state, return_state, override, callback), loop, many=True)
    run = call.run
    per_network = _per_network_keys(key)
    if not per_network:
        _checks.check_key(key, "key")
    if run.state is not None:
        params = state_params(run.state, params)
        num_networks = num_networks if num_networks is not None else run.state.networks
    n = count_networks(net, num_networks, params, hyperparams)
    if per_network and (params is None or key.shape != (n,)):
        raise ValueError(
            f"`key` holds {key.shape[0]} keys: one shuffling key per network needs N = {n} of them and the starting "
            "`params` (e.g. fnn.sweep.paired_params with key=grid.keys(key))"
            if params is not None
            else "`key` with one shuffling key per network needs the starting `params` too (e.g. fnn.sweep.paired_params)"
        )
    if mesh is not None:
        _parallel.check_divisible(_parallel.check_mesh(mesh), n, "the number of networks")
    if params is None:
        _checks.check_key(key, "key")
        init_key, shuffle_key = jax.random.split(key)
        params = net.init_stacked(init_key, n)
    else:
        shuffle_key = key if per_network else _second_key(key)
    options = call.loop._replace(key=shuffle_key)
    plan, staged = stage(net, call.loss, call.optimizer, grad, data, _checks.params_dtype(params), options)
    _loop.check_history(plan, staged, n)
    if run.plain:
        carry, history = _loop.train(plan, staged, params, progress, n=n, hyperparams=hyperparams, network_mesh=mesh)
    else:
        carry, history = _resume.train(plan, staged, params, progress, run, n=n, hyperparams=hyperparams, network_mesh=mesh)
    stuck = np.flatnonzero(np.asarray(history["diverged"]) & (np.asarray(history["steps"]) == 0))
    if stuck.size:  # networks without one finite step: were the parameters they started from?
        _refuse_nonfinite(carry.state.params, stuck)
    if run.return_state:
        history["state"] = fit_state(plan, staged, carry, n)
    return (carry.best if plan.early_stopping else carry.state.params), history


class _Call(NamedTuple):
    """A call of ``fit`` or ``fit_many`` resolved at the door: its names turned into records, its options checked."""

    optimizer: optax.GradientTransformation
    loss: _losses.Loss
    loop: LoopOptions
    run: RunOptions


def _door(
    net: MLP | Network | Model,
    loss: Any,
    optimizer: Any,
    grad: Any,
    progress: Any,
    run: tuple[Any, Any, Any, Any, Any],
    loop: LoopOptions,
    *,
    many: bool,
) -> _Call:
    """What ``fit`` and ``fit_many`` check alike, in Python before anything is traced (the one definition
    of their common arguments' checks): the optimizer (None: the default), the loss's name resolved to its
    record once, the stop rules, ``progress`` and the run options ``run`` = ``(checkpoint, state,
    return_state, override, callback)``; the data and the rest of ``loop`` are checked by
    :func:`~fnn.train._plan.stage`."""
    optimizer = check_optimizer(optimizer)
    record = check_common(net, loss, grad, loop.epochs, loop.tol, loop.early_stopping, loop.validation)
    _checks.check_flag(progress, "progress", allow_none=True)
    return _Call(optimizer, record, loop, check_run(*run, many))


def _refuse_nonfinite(params: Params, networks: Any) -> None:
    """A ValueError naming the first leaf of ``params`` that holds NaN or ±inf (of ``networks``, the indices
    of stacked params to test; None: params of one network). Called only after a run diverged in its first
    step: non-finite starting parameters always do (their loss or update is not finite), so the plain
    call pays nothing for this check."""
    for path, leaf in jax.tree_util.tree_leaves_with_path(params):
        a = _parallel.to_host(leaf)
        rows = [a] if networks is None else [a[i] for i in networks]
        for i, r in zip([None] if networks is None else networks, rows):
            if not np.isfinite(np.asarray(r, np.float32)).all():
                which = "" if i is None else f" (network {int(i)})"
                raise ValueError(
                    f"`params{jax.tree_util.keystr(path)}`{which} holds NaN or inf: training must start from finite "
                    "parameters (e.g. net.init(key))"
                )


def _per_network_keys(key: Any) -> bool:
    """``key`` is one typed ``jax.random.key`` per network (shape (N,)): each network's shuffling key."""
    dtype = getattr(key, "dtype", None)
    return dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key) and getattr(key, "ndim", 0) == 1


@jax.jit
def _second_key(key: Array) -> Array:
    """``split(key)[1]``, the shuffling key of ``fit_many`` (one small program, not an eager split and unstack)."""
    return jax.random.split(key)[1]
