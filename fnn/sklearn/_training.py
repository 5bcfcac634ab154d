"""The estimators' training run, on fnn's one compiled loop (:mod:`fnn.train.engine`).

scikit-learn's ``_fit_stochastic``, step for step, with the work on the device: the data is padded
to a bucket of rows (2ᵏ or 3·2ᵏ, at most a third padding) with weight-0 rows, each epoch's order is
drawn from the estimator's ``RandomState`` on the host exactly as scikit-learn draws it, and the
compiled loop runs the epochs — minibatches of :func:`fnn.core.backprop.weighted_value_and_grad`
(the weighted loss with its L2 term), the optax update (:mod:`fnn.train.optim`, its numbers in the
optimizer state via ``optax.inject_hyperparams``), and after each epoch the plateau rule
(scikit-learn's stopping rule on the training loss, or its ``adaptive`` rate).

Up to the core's chunk of epochs run in one call. One epoch per call where the host acts between
epochs: ``partial_fit``, ``verbose`` (a line per epoch), ``early_stopping`` (the validation score is
scikit-learn's, computed on the host, and the same plateau rule watches it there) and sgd's
``invscaling`` rate (a function of the samples seen). When a chunk stops early, the ``RandomState``
is rewound and advanced by the epochs that ran, so it ends where an epoch-by-epoch run leaves it.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import warnings
from typing import Any, NamedTuple

import jax
import numpy as np
import optax

from fnn.core.mlp import MLP
from fnn.train import engine, lbfgs
from fnn.train.optim import sklearn_adam, sklearn_sgd

# out_activation_ (scikit-learn's names) -> fnn output activation, and the loss it trains
OUTPUTS = {"identity": "identity", "logistic": "sigmoid", "softmax": "softmax", "exp": "exp"}
LOSSES = {"identity": "mse", "logistic": "bce", "softmax": "cross_entropy", "exp": "poisson"}
ORDERS_BUDGET = 1 << 24  # int32 entries of a chunk's epoch orders (64 MiB): very large data runs shorter chunks


def bucket(n: int) -> int:
    """The smallest of 1, 2, 3, 4, 6, 8, 12, 16, … (2ᵏ and 3·2ᵏ) that is ≥ n: at most a third is padding."""
    p = 1
    while True:
        if p >= n:
            return p
        if p >= 2 and p // 2 * 3 >= n:
            return p // 2 * 3
        p *= 2


@functools.cache
def optimizer(solver: str, nesterov: bool) -> optax.GradientTransformation:
    """The solver as an ``inject_hyperparams`` transformation: one object per solver, so every
    estimator's plan keys the same program; the estimator's numbers go into its state."""
    if solver == "sgd":
        return optax.inject_hyperparams(sklearn_sgd, static_args=("nesterov",))(1.0, 0.9, nesterov)
    return optax.inject_hyperparams(sklearn_adam)(1.0, 0.9, 0.999, 1e-8)


def hyperparameters(est: Any, solver: str, dtype: Any) -> dict[str, np.ndarray]:
    """The optimizer state's numbers from the estimator (the rate is the current one, ``_learning_rate``)."""
    if solver == "sgd":
        values = {"learning_rate": est._learning_rate, "momentum": est.momentum}
    else:
        values = {"learning_rate": est._learning_rate, "b1": est.beta_1, "b2": est.beta_2, "eps": est.epsilon}
    return {k: np.asarray(v, dtype) for k, v in values.items()}


def precision(dtype: Any) -> contextlib.AbstractContextManager:
    """Training in ``X``'s precision, as scikit-learn trains: for float64 ``X``, JAX's x64 mode for the
    duration of the training call, in this thread only (``jax.enable_x64``, a thread-local setting that
    is restored afterwards); nothing for float32 ``X`` or where x64 is on already."""
    if np.dtype(dtype) != np.float64 or jax.config.read("jax_enable_x64"):
        return contextlib.nullcontext()
    enable: Any = getattr(jax, "enable_x64", None)  # a config context manager in jax 0.10; jax 0.6 has jax.experimental's
    if enable is None:  # pragma: no cover - older jax
        enable = importlib.import_module("jax.experimental").enable_x64
    return enable(True)


class OptimizerView(NamedTuple):
    """What scikit-learn's tests read of its private ``_optimizer``: the current learning rate."""

    learning_rate: float


def padded(X: Any, y: np.ndarray, sample_weight: np.ndarray | None, dtype: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``X``, ``y`` and the weights padded with weight-0 rows to the bucket of ``n`` (:func:`bucket`)."""
    n, rows = X.shape[0], bucket(X.shape[0])
    Xd = np.zeros((rows, X.shape[1]), dtype)
    Xd[:n] = X.toarray() if hasattr(X, "toarray") else X
    Td = np.zeros((rows, y.shape[1]), dtype)
    Td[:n] = y
    wd = np.zeros(rows, dtype)
    wd[:n] = 1.0 if sample_weight is None else sample_weight
    return Xd, Td, wd


def network(est: Any, n_features: int, settings: Any, n_outputs: int) -> tuple[MLP, str, float]:
    """The fnn network, its loss and the reported loss's factor on the data term (scikit-learn reports
    its squared error as a mean over the outputs, its gradient is that of their sum)."""
    net = MLP((n_features, *settings.hidden, n_outputs), hidden=settings.activation, output=OUTPUTS[est.out_activation_])
    loss = LOSSES[est.out_activation_]
    return net, loss, 1 / n_outputs if loss == "mse" else 1.0


def _with_hyperparameters(opt_state: Any, values: dict[str, np.ndarray]) -> Any:
    return opt_state._replace(hyperparams={**opt_state.hyperparams, **values})


class Run:
    """One call's training: the plan, the padded data on the device, the rules' values and the carry."""

    def __init__(self, est: Any, X: Any, y: np.ndarray, sample_weight: np.ndarray | None, settings: Any) -> None:
        self.est, self.settings = est, settings
        n = X.shape[0]
        if est.batch_size == "auto":
            batch_size, exact = min(200, n), n >= 200
        else:
            if est.batch_size > n:
                warnings.warn("Got `batch_size` less than 1 or larger than sample size. It is going to be clipped", stacklevel=5)
            batch_size = int(np.clip(est.batch_size, 1, n))
            exact = batch_size == est.batch_size
        # compiled for a bucket of sizes: the batch is padded unless its size is fixed by the user (or 200)
        padded_batch = batch_size if exact else bucket(batch_size)
        self.dtype = dtype = train_dtype(X)
        self.n, self.rows, self.batch_size = n, bucket(n), batch_size
        Xd, Td, wd = padded(X, y, sample_weight, dtype)
        self.solver = settings.solver
        self.plateau_reduces = adaptive = self.solver == "sgd" and settings.learning_rate == "adaptive"
        net, loss, report_scale = network(est, X.shape[1], settings, y.shape[1])
        tx = optimizer(self.solver, bool(est.nesterovs_momentum))
        self.plan = engine.make_plan(
            net,
            loss,
            tx,
            est.grad,
            rows=self.rows,
            batch_size=padded_batch,
            l2=True,
            report_scale=report_scale,
            plateau="reduce" if adaptive else "stop",
        )
        x, t = jax.device_put(Xd), jax.device_put(Td)
        self.arrays = engine.Arrays(
            x,
            t,
            xv=x,  # unused (as fit's without validation): early stopping's score is the host's
            tv=t,
            probe=x,  # unused: no health metrics
            w=jax.device_put(wd),
            sizes=np.array([n, batch_size], np.int32),
            l2=np.asarray(est.alpha, dtype),
        )
        # early stopping's rule runs on the host (the validation score is scikit-learn's): the graph's never fires
        patience = np.inf if est.early_stopping else settings.n_iter_no_change
        self.rules = engine.Stops(
            tol=np.asarray(-np.inf, dtype),
            patience=np.int32(0),
            min_delta=np.asarray(est.tol, dtype),
            plateau_patience=np.asarray(patience, dtype),
            factor=np.asarray(5.0, dtype),
            min_rate=np.asarray(1e-6, dtype),
        )
        # NumPy leaves, handed to the compiled loop as they are (jnp.asarray would compile a copy per shape)
        params = [
            {"W": np.ascontiguousarray(np.asarray(c, dtype).T), "b": np.array(b, dtype)}
            for c, b in zip(est.coefs_, est.intercepts_)
        ]
        opt_state = est._opt_state
        if opt_state is None or jax.tree.leaves(opt_state)[-1].dtype != dtype:
            # afresh (or trained in another dtype): scikit-learn's optimizers start from zeros, so the state is
            # made in NumPy from its shapes (nothing compiles); the numbers are set just below
            shapes = jax.eval_shape(tx.init, params)
            opt_state = jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), shapes)
        best = np.inf if est.best_loss_ is None else est.best_loss_
        plateau = engine.Plateau(np.asarray(best, dtype), np.int32(est._no_improvement_count))
        self.carry = engine.new_carry(self.plan, params, opt_state, plateau)
        self.set_rate(est._learning_rate)

    # ---- the learning rate lives in the optimizer state ----------------------------------------------
    def set_rate(self, rate: float) -> None:
        """The estimator's optimizer numbers into the carry, with ``rate`` as the learning rate."""
        self.est._learning_rate = float(rate)
        state = self.carry.state
        opt_state = _with_hyperparameters(state.opt_state, hyperparameters(self.est, self.solver, self.dtype))
        self.carry = self.carry._replace(state=state._replace(opt_state=opt_state))

    def plateau(self) -> engine.Plateau:
        assert self.carry.plateau is not None  # the plan has the rule
        return self.carry.plateau

    def rate(self) -> float:
        return float(self.carry.state.opt_state.hyperparams["learning_rate"])

    # ---- the epochs --------------------------------------------------------------------------------
    def epochs(self, count: int, sample_idx: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray, int]:
        """Up to ``count`` epochs in one compiled call (an ``orders`` buffer of ``length`` epochs).

        Returns each epoch's loss, the order of the last epoch run, and the stop code.
        """
        est, n = self.est, self.n
        rng_state, idx_before = est._random_state.get_state(), sample_idx
        orders = np.zeros((length, self.rows), np.int32)
        for k in range(count):
            sample_idx = est._draw_order(sample_idx, n)
            orders[k, :n] = within_batches_sorted(sample_idx, self.batch_size)
        base = int(self.carry.epoch)
        arrays = self.arrays._replace(orders=orders)
        self.carry = engine.advance(self.plan, self.carry, arrays, self.rules, base, base + count, keep=True)
        ran = int(self.carry.epoch) - base
        if ran < count:  # rewind: the RandomState as after `ran` epochs
            est._random_state.set_state(rng_state)
            sample_idx = idx_before
            for _ in range(ran):
                sample_idx = est._draw_order(sample_idx, n)
        losses = np.asarray(self.carry.hist["loss"], np.float64)[:ran]  # sliced on the host: nothing to compile
        return losses, sample_idx, int(self.carry.stop)

    def finish(self) -> None:
        """The trained parameters, optimizer state and rule state back into the estimator."""
        est = self.est
        est._set_params(self.carry.state.params)
        est._opt_state = jax.device_get(self.carry.state.opt_state)
        if self.plateau_reduces:  # the rate changes in the graph; otherwise the host's (unrounded) rate stands
            est._learning_rate = self.rate()
        if not est.early_stopping:
            est._no_improvement_count = int(self.plateau().streak)


def train_dtype(X: Any) -> np.dtype:
    """float64 for float64 ``X`` where JAX's x64 mode is on (:func:`precision` turns it on), else float32."""
    return np.dtype(np.float64 if X.dtype == np.float64 and jax.config.read("jax_enable_x64") else np.float32)


def within_batches_sorted(order: np.ndarray, batch_size: int) -> np.ndarray:
    """The epoch's order with each minibatch's rows in ascending order: a batch's gradient is a sum over
    its rows, and in floating point a sum depends on its order. Sorted, the sum depends only on which rows
    a batch holds, as its math does, so two runs that batch the same rows compute the same bits however
    their shuffles ordered them (``fit`` draws a new order every epoch; ``partial_fit``, like scikit-learn's,
    reseeds its RandomState every call and so reuses the first order: with one batch of all the rows the
    two differed by float32 rounding that grew over the epochs).

    >>> within_batches_sorted(np.array([4, 0, 3, 1, 2]), 2).tolist()
    [0, 4, 1, 3, 2]
    """
    out = order.copy()
    full = len(out) // batch_size * batch_size
    out[:full].reshape(-1, batch_size).sort(axis=1)
    out[full:].sort()
    return out


def fit_lbfgs(est: Any, X: Any, y: np.ndarray, sample_weight: np.ndarray | None, settings: Any) -> None:
    """scikit-learn's ``_fit_lbfgs`` on ``fnn.train.lbfgs``: all the rows (padded to a bucket with
    weight-0 rows, so nearby sizes share the compiled program) in one compiled L-BFGS run; ``n_iter_``,
    ``loss_`` and a ConvergenceWarning in scikit-learn's words when it stops on ``max_iter``, ``max_fun`` or
    a failed line search."""
    dtype = train_dtype(X)
    net, loss, report_scale = network(est, X.shape[1], settings, y.shape[1])
    plan = lbfgs.make_plan(net, loss, est.grad, report_scale=report_scale)
    params = [
        {"W": np.ascontiguousarray(np.asarray(c, dtype).T), "b": np.array(b, dtype)} for c, b in zip(est.coefs_, est.intercepts_)
    ]
    Xd, Td, wd = padded(X, y, sample_weight, dtype)
    limits = lbfgs.Limits(est.max_iter, est.max_fun, est.tol)
    result = jax.device_get(lbfgs.minimize(plan, params, Xd, Td, wd, est.alpha, limits, keep=True))
    status, message = lbfgs.STATUS[int(result.status)]
    est.n_iter_ = min(int(result.n_iter), est.max_iter)
    est.loss_ = float(result.loss)
    est._set_params(result.params)
    if est.verbose:
        print(f"L-BFGS: {est.n_iter_} iterations, {int(result.n_fev)} loss evaluations, loss = {est.loss_:.8f} ({message})")
    if status != 0:  # sklearn.utils.optimize._check_optimize_result's words
        msg = f"lbfgs failed to converge after {est.n_iter_} iteration(s) (status={status}):\n{message}\n"
        if est.n_iter_ == est.max_iter:
            msg += f"\nIncrease the number of iterations to improve the convergence (max_iter={est.max_iter})."
        msg += (
            "\nYou might also want to scale the data as shown in:\n    https://scikit-learn.org/stable/modules/preprocessing.html"
        )
        warnings.warn(msg, _convergence_warning(), stacklevel=4)


def fit_stochastic(est: Any, X: Any, y: np.ndarray, sample_weight: Any, settings: Any, incremental: bool, val: Any) -> None:
    """scikit-learn's ``_fit_stochastic`` on the engine (see the module docstring); ``val`` is early
    stopping's ``(X_val, y_val, sw_val)`` or None."""
    run = Run(est, X, y, sample_weight, settings)
    host_rule = est.early_stopping
    per_epoch = incremental or host_rule or bool(est.verbose) or (run.solver == "sgd" and settings.learning_rate == "invscaling")
    length = 1 if per_epoch else max(1, min(engine.CHUNK, ORDERS_BUDGET // run.rows, bucket(est.max_iter)))
    sample_idx = np.arange(run.n)
    stopped = diverged = False
    est.n_iter_ = 0
    try:
        while est.n_iter_ < est.max_iter and not stopped:
            count = 1 if per_epoch else min(length, est.max_iter - est.n_iter_)
            rate = run.rate()
            losses, sample_idx, stop = run.epochs(count, sample_idx, length)
            for loss in losses:
                est.n_iter_ += 1
                est.loss_ = float(loss)
                est.t_ += run.n
                est.loss_curve_.append(est.loss_)
                if est.verbose:
                    print(f"Iteration {est.n_iter_}, loss = {est.loss_:.8f}")
            if not host_rule:
                est.best_loss_ = float(run.plateau().best)
            if stop == engine.DIVERGED:
                stopped = diverged = True
                if host_rule:  # scikit-learn scores the diverged epoch (NaN) and keeps its best, finite weights
                    est.validation_scores_.append(float("nan"))
                break
            what = "Validation score" if host_rule else "Training loss"
            msg = f"{what} did not improve more than tol={est.tol:f} for {est.n_iter_no_change} consecutive epochs."
            if host_rule:
                stop = _validation_rule(est, run, val, settings, rate)
            if est.verbose and run.rate() != rate:  # the adaptive rate fired (in the graph, or the host's rule)
                print(msg + f" Setting learning rate to {run.rate():f}")
            if stop == engine.PLATEAU:
                if est.verbose:
                    print(msg + (" Learning rate too small. Stopping." if run.plateau_reduces else " Stopping."))
                stopped = True
                break
            if run.solver == "sgd" and settings.learning_rate == "invscaling":
                run.set_rate(float(est.learning_rate_init) / (est.t_ + 1) ** est.power_t)
            if incremental:
                break
            if est.n_iter_ == est.max_iter:
                warnings.warn(
                    f"Stochastic Optimizer: Maximum iterations ({est.max_iter}) reached and the optimization hasn't "
                    "converged yet.",
                    _convergence_warning(),
                    stacklevel=4,
                )
    except KeyboardInterrupt:  # keep what the finished calls trained
        warnings.warn("Training interrupted by user.", stacklevel=4)
    run.finish()
    if diverged and not host_rule:
        raise ValueError(
            "Solver produced non-finite parameter weights. The input data may contain large values and need to be preprocessed."
        )


def _validation_rule(est: Any, run: Run, val: Any, settings: Any, rate: float) -> int:
    """Early stopping after an epoch: scikit-learn's validation score, watched by the plateau rule
    (as its negative) on the host; the best weights kept, an adaptive rate reduced. Returns the stop code."""
    X_val, y_val, sw_val = val
    est._set_params(run.carry.state.params)
    score = est._score(X_val, y_val, sw_val)
    est.validation_scores_.append(score)
    if est.verbose:
        print(f"Validation score: {score:f}")
    state = engine.Plateau(np.float64(-est.best_validation_score_), np.int64(est._no_improvement_count))
    rules = engine.Stops(-np.inf, 0, float(est.tol), float(settings.n_iter_no_change), 5.0, 1e-6)  # in float64, as scikit-learn
    state, new_rate, fired, stop = engine.plateau_rule(state, -score, rate, rules, run.plateau_reduces, xp=np)
    est._no_improvement_count = int(state.streak)
    if score > est.best_validation_score_:
        est.best_validation_score_ = score
        est._best_coefs = [c.copy() for c in est.coefs_]
        est._best_intercepts = [b.copy() for b in est.intercepts_]
    if bool(stop):
        return engine.PLATEAU
    if bool(fired):
        run.set_rate(float(new_rate))
    return engine.RUNNING


def _convergence_warning() -> type[Warning]:
    from sklearn.exceptions import ConvergenceWarning

    return ConvergenceWarning
