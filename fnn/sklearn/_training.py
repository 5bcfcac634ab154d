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

import functools
import warnings
from typing import Any

import jax
import numpy as np
import optax

from fnn.core.mlp import MLP
from fnn.train import engine
from fnn.train.optim import sklearn_adam, sklearn_sgd

# out_activation_ (scikit-learn's names) -> fnn output activation, and the loss it trains
OUTPUTS = {"identity": "identity", "logistic": "sigmoid", "softmax": "softmax"}
LOSSES = {"identity": "mse", "logistic": "bce", "softmax": "cross_entropy"}
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
        x64 = bool(jax.config.read("jax_enable_x64"))
        self.dtype = dtype = np.dtype(np.float64 if X.dtype == np.float64 and x64 else np.float32)
        self.n, self.rows = n, bucket(n)
        Xd = np.zeros((self.rows, X.shape[1]), dtype)
        Xd[:n] = X.toarray() if hasattr(X, "toarray") else X
        Td = np.zeros((self.rows, y.shape[1]), dtype)
        Td[:n] = y
        wd = np.zeros(self.rows, dtype)
        wd[:n] = 1.0 if sample_weight is None else sample_weight
        self.solver = settings.solver
        self.plateau_reduces = adaptive = self.solver == "sgd" and settings.learning_rate == "adaptive"
        sizes = (X.shape[1], *settings.hidden, y.shape[1])
        net = MLP(sizes, hidden=settings.activation, output=OUTPUTS[est.out_activation_])
        loss = LOSSES[est.out_activation_]
        tx = optimizer(self.solver, bool(est.nesterovs_momentum))
        self.plan = engine.make_plan(
            net,
            loss,
            tx,
            est.grad,
            rows=self.rows,
            batch_size=padded_batch,
            l2=True,
            report_scale=1 / y.shape[1] if loss == "mse" else 1.0,  # scikit-learn's squared_error: a mean over outputs
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
            orders[k, :n] = sample_idx
        base = int(self.carry.epoch)
        arrays = self.arrays._replace(orders=orders)
        self.carry = engine.advance(self.plan, self.carry, arrays, self.rules, base, base + count)
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
        est._learning_rate = self.rate()
        if not est.early_stopping:
            est._no_improvement_count = int(self.plateau().streak)


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
    if diverged:
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
