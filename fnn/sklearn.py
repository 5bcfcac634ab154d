"""scikit-learn estimators trained by fnn: :class:`MLPClassifier` and :class:`MLPRegressor`.

They take scikit-learn's parameters with scikit-learn's meanings and follow its
``sklearn.neural_network`` estimators step by step: Glorot-uniform initialisation drawn from
``check_random_state(random_state)``, the epoch's shuffle, minibatches of ``batch_size`` rows
(the last one smaller), the loss with its L2 term ``½·alpha·Σ‖W‖² / n_batch``, the ``sgd`` and
``adam`` updates, the ``constant`` / ``invscaling`` / ``adaptive`` learning rates, the stopping
rule on the training loss or the validation score, ``sample_weight``, ``partial_fit`` and
``warm_start``. The gradients come from fnn's hand-derived backward pass (``grad="manual"``) or
``jax.grad`` (``grad="autodiff"``). ``fit`` runs its epochs in compiled chunks of :data:`CHUNK`
(the minibatch loop, the optax update and scikit-learn's stopping rule inside; ``partial_fit``,
``early_stopping``, ``verbose`` and the ``invscaling`` rate run one compiled epoch per call),
compiled once per network, solver and bucket of data sizes (rows and batches are padded with
zero-weight rows up to the next 2ᵏ or 3·2ᵏ), so repeated fits (``GridSearchCV``,
``cross_val_score``) reuse it. Predictions are computed in NumPy float64 from
``coefs_`` and ``intercepts_``. In float64 a fit reproduces scikit-learn's fitted weights, loss
curve and stopping to rounding (tests/test_sklearn.py).

Two of scikit-learn's numerical choices are kept on purpose: the regressor's reported loss is ½
the mean over samples *and* outputs, while its gradient (scikit-learn's output error ``ŷ − y``)
is that of ½ the mean over samples of the sum over outputs. The log losses are computed from the
logits (scikit-learn clips probabilities at machine epsilon), which differs only where an output
probability rounds to 0 or 1.

Training runs in float32, or in float64 when ``X`` is float64 and JAX's x64 mode is on.
``coefs_[i]`` has scikit-learn's shape ``(n_in, n_out)``, the transpose of fnn's ``W``;
``params_`` is the fnn pytree and ``net_`` the :class:`fnn.MLP`. ``solver="lbfgs"`` is not
supported: fnn trains by minibatch gradient steps.

This module imports scikit-learn; ``import fnn`` does not import this module.

Example:
  >>> from fnn.sklearn import MLPClassifier
  >>> X, y = [[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]], ["no", "yes", "yes", "no"]
  >>> clf = MLPClassifier((8,), activation="tanh", learning_rate_init=0.1, max_iter=300, random_state=0).fit(X, y)
  >>> clf.predict(X).tolist(), clf.coefs_[0].shape, clf.params_[0]["W"].shape
  (['no', 'yes', 'yes', 'no'], (2, 8), (8, 2))
"""

from __future__ import annotations

import functools
import itertools
import math
import numbers
import warnings
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from fnn.core import activations as _act
from fnn.core import losses as _losses
from fnn.core.backprop import backward_pass
from fnn.core.mlp import MLP, Params

try:
    import sklearn  # noqa: F401
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, is_classifier
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics import accuracy_score, r2_score
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import LabelBinarizer
    from sklearn.utils import check_random_state, column_or_1d
    from sklearn.utils.extmath import safe_sparse_dot
    from sklearn.utils.multiclass import check_classification_targets, type_of_target, unique_labels
    from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data
except ImportError as e:  # pragma: no cover - exercised only without scikit-learn
    raise ImportError(f"fnn.sklearn needs scikit-learn: pip install scikit-learn ({e})") from e

__all__ = ["MLPClassifier", "MLPRegressor"]

Array = jax.Array

# scikit-learn's activation names, and fnn's own hidden activations under their names.
_ACTIVATIONS = {"logistic": "sigmoid", **{name: name for name in _act.HIDDEN_NAMES}}
# out_activation_ (scikit-learn's names) -> fnn output activation
_OUTPUTS = {"identity": "identity", "logistic": "sigmoid", "softmax": "softmax"}
_SOLVERS = ("sgd", "adam")
_LEARNING_RATES = ("constant", "invscaling", "adaptive")


# ---- the two optimizers, exactly as scikit-learn's _stochastic_optimizers ---------------------------


def _sgd(learning_rate: Any, momentum: Any, nesterov: bool) -> optax.GradientTransformation:
    """scikit-learn's SGD: ``v ← μ v − η g``; the update is ``v`` (or ``μ v − η g`` with Nesterov).

    The velocity holds steps already scaled by η (a later η leaves it as is), so η is applied
    before the momentum trace: ``trace(−η g)`` is that velocity.
    """
    return optax.chain(optax.scale(-learning_rate), optax.trace(decay=momentum, nesterov=nesterov))


class AdamState(NamedTuple):
    """State of :func:`_adam`: the step count and the two moment estimates."""

    t: Array  # int32, steps taken
    mu: optax.Updates
    nu: optax.Updates


def _adam(learning_rate: Any, beta_1: Any, beta_2: Any, epsilon: Any) -> optax.GradientTransformation:
    """scikit-learn's Adam: ``−η √(1−β₂ᵗ)/(1−β₁ᵗ) · m / (√v + ε)``.

    ε is added to √v before the bias correction (optax.adam adds it after), so this is not
    ``optax.adam`` with other numbers: the two differ while ``√v`` is near ε.
    """

    def init(params: optax.Params) -> AdamState:
        zeros = jax.tree.map(jnp.zeros_like, params)
        return AdamState(jnp.zeros((), jnp.int32), zeros, zeros)

    def update(grads: optax.Updates, state: AdamState, params: optax.Params | None = None) -> tuple[optax.Updates, AdamState]:
        count = state.t + 1
        mu = jax.tree.map(lambda m, g: beta_1 * m + (1 - beta_1) * g, state.mu, grads)
        nu = jax.tree.map(lambda v, g: beta_2 * v + (1 - beta_2) * g * g, state.nu, grads)
        t = count.astype(jnp.result_type(beta_1))
        rate = learning_rate * jnp.sqrt(1 - beta_2**t) / (1 - beta_1**t)
        updates = jax.tree.map(lambda m, v: -rate * m / (jnp.sqrt(v) + epsilon), mu, nu)
        return updates, AdamState(count, mu, nu)

    return optax.GradientTransformation(init, update)


def _optimizer(solver: str, nesterov: bool, hyper: dict[str, Any]) -> optax.GradientTransformation:
    if solver == "sgd":
        return _sgd(hyper["learning_rate"], hyper["momentum"], nesterov)
    return _adam(hyper["learning_rate"], hyper["beta_1"], hyper["beta_2"], hyper["epsilon"])


# ---- the objective and its gradient ---------------------------------------------------------------


def _value_and_grad(net: MLP, loss: str, grad: str):
    """``(params, x, t, w, alpha) -> (loss, grads)``: scikit-learn's minibatch objective.

    With per-row weights ``w`` (sample weights; 0 for padding rows) and ``s = Σ w``:

    - the loss is ``Σ_i w_i e_i / s + ½·alpha·Σ_l ‖W⁽ˡ⁾‖² / s`` with ``e_i`` fnn's per-example loss
      (bce summed over outputs for binary and multilabel targets, cross-entropy for softmax), and
      for ``mse`` divided by the number of outputs K (scikit-learn's squared_error is ½ the mean over
      samples and outputs);
    - the gradient is that of ``Σ_i w_i e_i / s`` (mse not divided by K: scikit-learn's output error
      is ``ŷ − y`` for every loss) plus ``alpha·W / s`` on the weights, none on the biases.

    A batch whose weights sum to 0 has loss and gradient 0.
    """
    L = _losses.get(loss)

    def data_term(params: Params, x: Array, t: Array, w: Array, inv: Array):
        out, cache = net.propagate(params, x)
        e = L.per_example(cache.z[-1], out, t)  # (B,)
        return jnp.sum(w * e) * inv, out, cache

    def fn(params: Params, x: Array, t: Array, w: Array, alpha: Array) -> tuple[Array, Params]:
        s = jnp.sum(w)
        inv = jnp.where(s > 0, 1 / jnp.where(s > 0, s, 1), 0).astype(w.dtype)
        penalty = 0.5 * alpha * inv * sum(jnp.sum(p["W"] * p["W"]) for p in params)
        if grad == "manual":
            data, out, cache = data_term(params, x, t, w, inv)
            delta = L.output_error(net.output, cache.z[-1], out, t) * (w * inv)[:, None]  # (B, K)
            grads = backward_pass(net, params, cache, delta, input_grad=False).grads
            grads = [{"W": g["W"] + (alpha * inv) * p["W"], "b": g["b"]} for g, p in zip(grads, params)]
        else:

            def J(p: Params) -> tuple[Array, Array]:
                data = data_term(p, x, t, w, inv)[0]
                return data + 0.5 * alpha * inv * sum(jnp.sum(q["W"] * q["W"]) for q in p), data

            grads, data = jax.grad(J, has_aux=True)(params)
        if loss == "mse":
            data = data / t.shape[-1]
        return data + penalty, grads

    return fn


class _EpochKey(NamedTuple):
    """The static facts one compiled epoch depends on (data shapes and dtype key jit's own cache)."""

    net: MLP
    loss: str
    grad: str
    solver: str
    nesterov: bool
    batch: int  # rows per step, padded (the real batch size is an argument)


@functools.lru_cache(maxsize=64)
def _epoch_fn(key: _EpochKey):
    """:func:`_epoch`, jitted."""
    return jax.jit(_epoch(key))


# Epochs per compiled call on the chunked path (the shuffles of a chunk are drawn beforehand).
CHUNK = 32


@functools.lru_cache(maxsize=64)
def _chunk_fn(key: _EpochKey, adaptive: bool):
    """Up to :data:`CHUNK` epochs in one compiled call, with scikit-learn's stopping rule on the
    training loss between them (no early stopping, no per-epoch output).

    ``chunk(params, opt_state, X, T, w, orders, n, batch_size, hyper, rule, allowed)`` runs epoch
    ``e`` on ``orders[e]`` while ``e < allowed`` and no stop has fired. ``rule`` holds the state
    of the rule (``best_loss``, ``count``: epochs without improvement) and its constants (``tol``,
    ``n_iter_no_change``). After each epoch, as scikit-learn's ``_fit_stochastic``: the loss
    ``total / n``; ``count`` grows when that loss is not below ``best_loss − tol`` and resets
    otherwise; ``best_loss`` keeps the minimum; when ``count > n_iter_no_change`` the run stops,
    or, for sgd with the ``adaptive`` rate, the rate is divided by 5 and ``count`` reset (stop
    once the rate is ≤ 1e-6). Returns the new params and optimizer state, every epoch's loss sum
    (``totals``), the epochs run, the rule's state, the rate and whether a stop fired.
    """
    epoch = _epoch(key)

    def chunk(params, opt_state, X, T, w, orders, n, batch_size, hyper, rule, allowed):
        dtype = X.dtype
        nf = n.astype(dtype)

        def body(c):
            e, params, opt_state, totals, best, count, lr, stop = c
            h = {**hyper, "learning_rate": lr}
            params, opt_state, total = epoch(params, opt_state, X, T, w, orders[e], n, batch_size, h)
            loss = total / nf
            count = jnp.where(loss > best - rule["tol"], count + 1, 0)
            best = jnp.minimum(best, loss)
            fired = count.astype(dtype) > rule["n_iter_no_change"]
            if adaptive:
                stop = fired & (lr <= 1e-6)
                lr = jnp.where(fired & ~stop, lr / 5, lr)
                count = jnp.where(fired, 0, count)
            else:
                stop = fired
            return e + 1, params, opt_state, totals.at[e].set(total), best, count, lr, stop

        def cond(c):
            return (c[0] < allowed) & ~c[-1]

        zero = jnp.zeros((), jnp.int32)
        init = (
            zero,
            params,
            opt_state,
            jnp.zeros(orders.shape[0], dtype),
            rule["best_loss"],
            rule["count"],
            hyper["learning_rate"],
            jnp.zeros((), bool),
        )
        return jax.lax.while_loop(cond, body, init)

    return jax.jit(chunk)


def _epoch(key: _EpochKey):
    """One epoch: the minibatch steps in a loop, the optimizer update inside.

    ``epoch(params, opt_state, X, T, w, order, n, batch_size, hyper) -> (params, opt_state, loss_sum)``
    takes the rows ``order[:n]`` in steps of ``batch_size`` (the last step smaller): step ``s``
    reads positions ``s·batch_size + [0, key.batch)`` and weighs those beyond its batch or beyond
    ``n`` by 0. ``X`` and ``T`` are padded to a bucket of rows and ``batch_size <= key.batch``, so
    data sizes in one bucket share the compiled program. ``loss_sum`` is Σ batch loss × batch rows.
    """
    value_and_grad = _value_and_grad(key.net, key.loss, key.grad)

    def epoch(params, opt_state, X, T, w, order, n, batch_size, hyper):
        tx = _optimizer(key.solver, key.nesterov, hyper)
        lanes = jnp.arange(key.batch)

        def step(s, carry):
            params, opt_state, total = carry
            pos = s * batch_size + lanes  # (batch,)
            valid = (lanes < batch_size) & (pos < n)
            rows = jnp.take(order, pos, mode="clip")
            wb = jnp.where(valid, jnp.take(w, rows), 0)
            E, grads = value_and_grad(params, jnp.take(X, rows, axis=0), jnp.take(T, rows, axis=0), wb, hyper["alpha"])
            updates, opt_state = tx.update(grads, opt_state, params)
            params = optax.apply_updates(params, updates)
            return params, opt_state, total + E * jnp.sum(valid).astype(E.dtype)

        n_steps = (n + batch_size - 1) // batch_size
        return jax.lax.fori_loop(0, n_steps, step, (params, opt_state, jnp.zeros((), X.dtype)))

    return epoch


def _bucket(n: int) -> int:
    """The smallest of 1, 2, 3, 4, 6, 8, 12, 16, … (2ᵏ and 3·2ᵏ) that is ≥ n: at most a third is padding."""
    p = 1
    while True:
        if p >= n:
            return p
        if p >= 2 and p // 2 * 3 >= n:
            return p // 2 * 3
        p *= 2


# ---- NumPy float64 prediction --------------------------------------------------------------------


def _np_softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


_NP_ACTIVATIONS: dict[str, Any] = {
    "identity": lambda z, **_: z,
    "sigmoid": lambda z, **_: np.exp(-np.logaddexp(0, -z)),
    "tanh": lambda z, **_: np.tanh(z),
    "relu": lambda z, **_: np.maximum(z, 0),
    "leaky_relu": lambda z, slope: np.where(z > 0, z, slope * z),
    "elu": lambda z, alpha: np.where(z > 0, z, alpha * np.expm1(np.minimum(z, 0))),
    "softplus": lambda z, **_: np.logaddexp(z, 0),
    "gelu": lambda z, **_: 0.5 * z * (1 + np.tanh(math.sqrt(2 / math.pi) * (z + 0.044715 * z**3))),
    "softmax": lambda z, **_: _np_softmax(z),
}
"""fnn's activations in NumPy, for float64 prediction (same formulas as :mod:`fnn.activations`)."""


# ---- parameter checks ----------------------------------------------------------------------------


def _check_real(est: Any, name: str, lo: float, hi: float = math.inf, *, lo_open: bool = False, hi_open: bool = False) -> float:
    value = getattr(est, name)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` must be a real number, got {type(value).__name__}: {value!r}")
    value = float(value)
    below = value <= lo if lo_open else value < lo
    above = value >= hi if hi_open else value > hi
    # never ±inf: scikit-learn's own intervals [lo, inf) leave inf out, and no solver step survives one
    if not math.isfinite(value) or below or above:
        interval = f"{'(' if lo_open else '['}{lo}, {hi}{')' if hi_open or hi == math.inf else ']'}"
        raise ValueError(f"`{name}` must be a finite number in {interval}, got {value!r}")
    return value


def _check_int(est: Any, name: str, lo: int) -> int:
    value = getattr(est, name)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"`{name}` must be an int >= {lo}, got {type(value).__name__}: {value!r}")
    if value < lo:
        raise ValueError(f"`{name}` must be an int >= {lo}, got {value!r}")
    return int(value)


def _check_bool(est: Any, name: str) -> bool:
    value = getattr(est, name)
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"`{name}` must be True or False, got {type(value).__name__}: {value!r}")
    return bool(value)


def _check_choice(est: Any, name: str, choices: tuple[str, ...]) -> str:
    value = getattr(est, name)
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"`{name}` must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


class _Settings(NamedTuple):
    hidden: tuple[int, ...]
    activation: str  # fnn's name
    solver: str
    learning_rate: str
    n_iter_no_change: float


# ---- the shared estimator ------------------------------------------------------------------------


class _BaseMLP(BaseEstimator):
    """What MLPClassifier and MLPRegressor share; not for direct use."""

    _loss_name = "squared_error"

    def __init__(
        self,
        hidden_layer_sizes: Any = (100,),
        activation: str = "relu",
        *,
        solver: str = "adam",
        alpha: float = 0.0001,
        batch_size: Any = "auto",
        learning_rate: str = "constant",
        learning_rate_init: float = 0.001,
        power_t: float = 0.5,
        max_iter: int = 200,
        shuffle: bool = True,
        random_state: Any = None,
        tol: float = 1e-4,
        verbose: Any = False,
        warm_start: bool = False,
        momentum: float = 0.9,
        nesterovs_momentum: bool = True,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        n_iter_no_change: Any = 10,
        grad: str = "manual",
    ) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.grad = grad

    # ---- checks ---------------------------------------------------------------------------------
    def _check_params(self) -> _Settings:
        """Every parameter, checked at fit (scikit-learn's convention: ``__init__`` only stores them)."""
        sizes = self.hidden_layer_sizes
        if isinstance(sizes, numbers.Integral) and not isinstance(sizes, bool):
            sizes = (sizes,)
        if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__iter__"):
            raise TypeError(f"`hidden_layer_sizes` must be an int or a sequence of ints, got {sizes!r}")
        sizes = tuple(sizes)
        for s in sizes:
            if isinstance(s, bool) or not isinstance(s, numbers.Integral):
                raise TypeError(f"`hidden_layer_sizes` must hold ints, got {sizes!r}")
            if s <= 0:
                raise ValueError(f"`hidden_layer_sizes` entries must be > 0, got {sizes!r}")
        activation = _check_choice(self, "activation", tuple(_ACTIVATIONS))
        if self.solver == "lbfgs":
            raise ValueError(
                "`solver`='lbfgs' is not supported by fnn.sklearn: fnn trains by minibatch gradient steps; "
                "use solver='adam' or 'sgd' (or sklearn.neural_network for L-BFGS)"
            )
        solver = _check_choice(self, "solver", _SOLVERS)
        _check_real(self, "alpha", 0.0)
        if not (isinstance(self.batch_size, str) and self.batch_size == "auto"):
            if isinstance(self.batch_size, str):
                raise ValueError(f"`batch_size` must be 'auto' or an int >= 1, got {self.batch_size!r}")
            _check_int(self, "batch_size", 1)
        learning_rate = _check_choice(self, "learning_rate", _LEARNING_RATES)
        _check_real(self, "learning_rate_init", 0.0, lo_open=True)
        _check_real(self, "power_t", 0.0)
        _check_int(self, "max_iter", 1)
        for name in ("shuffle", "warm_start", "nesterovs_momentum", "early_stopping"):
            _check_bool(self, name)
        try:
            check_random_state(self.random_state)
        except (TypeError, ValueError):
            raise ValueError(
                f"`random_state` must be None, an int or a numpy.random.RandomState, got {self.random_state!r}"
            ) from None
        _check_real(self, "tol", 0.0)
        if isinstance(self.verbose, (bool, np.bool_)):
            pass
        elif not isinstance(self.verbose, numbers.Integral) or self.verbose < 0:
            raise ValueError(f"`verbose` must be a bool or an int >= 0, got {self.verbose!r}")
        _check_real(self, "momentum", 0.0, 1.0)
        _check_real(self, "validation_fraction", 0.0, 1.0, hi_open=True)
        _check_real(self, "beta_1", 0.0, 1.0, hi_open=True)
        _check_real(self, "beta_2", 0.0, 1.0, hi_open=True)
        _check_real(self, "epsilon", 0.0, lo_open=True)
        if isinstance(self.n_iter_no_change, numbers.Real) and not isinstance(self.n_iter_no_change, numbers.Integral):
            if self.n_iter_no_change != math.inf:
                raise ValueError(f"`n_iter_no_change` must be an int >= 1 or numpy.inf, got {self.n_iter_no_change!r}")
            n_iter_no_change = math.inf
        else:
            n_iter_no_change = _check_int(self, "n_iter_no_change", 1)
        _check_choice(self, "grad", ("manual", "autodiff"))
        return _Settings(tuple(int(s) for s in sizes), _ACTIVATIONS[activation], solver, learning_rate, n_iter_no_change)

    # ---- fnn views of the fitted model -----------------------------------------------------------
    @property
    def net_(self) -> MLP:
        """The fitted network's :class:`fnn.MLP` spec (``W`` of shape (n_out, n_in))."""
        check_is_fitted(self, "coefs_")
        sizes = (self.coefs_[0].shape[0], *(c.shape[1] for c in self.coefs_))
        return MLP(sizes, hidden=self._hidden_activation, output=_OUTPUTS[self.out_activation_])

    @property
    def params_(self) -> Params:
        """The fitted parameters as fnn's pytree ``[{"W": (n_out, n_in), "b": (n_out,)}, ...]``."""
        check_is_fitted(self, "coefs_")
        return [{"W": jnp.asarray(c.T), "b": jnp.asarray(b)} for c, b in zip(self.coefs_, self.intercepts_)]

    # ---- fit -------------------------------------------------------------------------------------
    def _fit(self, X: Any, y: Any, sample_weight: Any, incremental: bool) -> _BaseMLP:
        settings = self._check_params()
        first_pass = not hasattr(self, "coefs_") or (not self.warm_start and not incremental)
        X, y = self._validate_input(X, y, incremental, reset=first_pass)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X, ensure_non_negative=True)
        if y.ndim == 1:
            y = y.reshape((-1, 1))
        n_features = X.shape[1]
        layer_units = [n_features, *settings.hidden, y.shape[1]]
        if not first_pass and [c.shape[0] for c in self.coefs_] + [self.coefs_[-1].shape[1]] != layer_units:
            raise ValueError(
                f"`hidden_layer_sizes` {settings.hidden} (layers {layer_units}) does not match the fitted network "
                f"({[c.shape[0] for c in self.coefs_] + [self.coefs_[-1].shape[1]]}); set warm_start=False to refit"
            )
        self._random_state = check_random_state(self.random_state)
        self._hidden_activation = settings.activation
        if first_pass:
            self._initialize(y, layer_units, X.dtype)
        self._fit_stochastic(X, y, sample_weight, settings, incremental)
        if not all(np.isfinite(w).all() for w in (*self.coefs_, *self.intercepts_)):
            raise ValueError(
                "Solver produced non-finite parameter weights. The input data may contain large values and need to be "
                "preprocessed."
            )
        return self

    def _initialize(self, y: np.ndarray, layer_units: list[int], dtype: Any) -> None:
        self.n_iter_ = 0
        self.t_ = 0
        self.n_outputs_ = y.shape[1]
        self.n_layers_ = len(layer_units)
        self.out_activation_ = self._out_activation()
        self.coefs_, self.intercepts_ = [], []
        factor = 2.0 if self.activation in ("logistic", "sigmoid") else 6.0
        for fan_in, fan_out in itertools.pairwise(layer_units):
            bound = np.sqrt(factor / (fan_in + fan_out))  # Glorot uniform, as scikit-learn draws it
            self.coefs_.append(self._random_state.uniform(-bound, bound, (fan_in, fan_out)).astype(dtype, copy=False))
            self.intercepts_.append(self._random_state.uniform(-bound, bound, fan_out).astype(dtype, copy=False))
        self._best_coefs = [c.copy() for c in self.coefs_]
        self._best_intercepts = [b.copy() for b in self.intercepts_]
        self.loss_curve_: list[float] = []
        self._no_improvement_count = 0
        if self.early_stopping:
            self.validation_scores_: list[float] | None = []
            self.best_validation_score_: float | None = -np.inf
            self.best_loss_: float | None = None
        else:
            self.best_loss_ = np.inf
            self.validation_scores_ = None
            self.best_validation_score_ = None

    def _fit_stochastic(
        self, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None, settings: _Settings, incremental: bool
    ) -> None:
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        solver = settings.solver
        if not incremental or not hasattr(self, "_opt_state"):
            self._learning_rate = float(self.learning_rate_init)
            self._opt_state = None
        X_val = y_val = sw_val = None
        if self.early_stopping:
            stratify = y if is_classifier(self) and self.n_outputs_ == 1 else None
            arrays = [X, y] if sample_weight is None else [X, y, sample_weight]
            parts = train_test_split(
                *arrays, random_state=self._random_state, test_size=self.validation_fraction, stratify=stratify
            )
            X, X_val, y, y_val = parts[:4]
            if sample_weight is not None:
                sample_weight, sw_val = parts[4:]
            if X_val.shape[0] < 2:
                raise ValueError("The validation set is too small. Increase 'validation_fraction' or the size of your dataset.")
            if is_classifier(self):
                y_val = self._label_binarizer.inverse_transform(y_val)
        n = X.shape[0]
        if self.batch_size == "auto":
            batch_size = min(200, n)
            exact = n >= 200
        else:
            if self.batch_size > n:
                warnings.warn("Got `batch_size` less than 1 or larger than sample size. It is going to be clipped", stacklevel=3)
            batch_size = int(np.clip(self.batch_size, 1, n))
            exact = batch_size == self.batch_size
        # Compile for a bucket of sizes: the batch is padded unless its size is fixed by the user (or 200).
        padded_batch = batch_size if exact else _bucket(batch_size)

        x64 = bool(jax.config.read("jax_enable_x64"))
        dtype = np.dtype(np.float64 if X.dtype == np.float64 and x64 else np.float32)
        rows = _bucket(n)
        Xd = np.zeros((rows, X.shape[1]), dtype)
        Xd[:n] = X.toarray() if hasattr(X, "toarray") else X
        Td = np.zeros((rows, y.shape[1]), dtype)
        Td[:n] = y
        wd = np.zeros(rows, dtype)
        wd[:n] = 1.0 if sample_weight is None else sample_weight
        Xd, Td, wd = jax.device_put(Xd), jax.device_put(Td), jax.device_put(wd)

        sizes = (X.shape[1], *settings.hidden, y.shape[1])
        net = MLP(sizes, hidden=settings.activation, output=_OUTPUTS[self.out_activation_])
        loss = {"identity": "mse", "softmax": "cross_entropy", "logistic": "bce"}[self.out_activation_]
        nesterov = bool(self.nesterovs_momentum)
        epoch = _epoch_fn(_EpochKey(net, loss, self.grad, solver, nesterov, padded_batch))
        params = [
            {"W": jnp.asarray(np.asarray(c, dtype).T), "b": jnp.asarray(np.asarray(b, dtype))}
            for c, b in zip(self.coefs_, self.intercepts_)
        ]

        def hyper() -> dict[str, np.ndarray]:
            values = {
                "learning_rate": self._learning_rate,
                "momentum": self.momentum,
                "beta_1": self.beta_1,
                "beta_2": self.beta_2,
                "epsilon": self.epsilon,
                "alpha": self.alpha,
            }
            return {k: np.asarray(v, dtype) for k, v in values.items()}

        opt_state = self._opt_state
        if opt_state is None or jax.tree.leaves(opt_state)[-1].dtype != dtype:
            opt_state = _optimizer(solver, nesterov, hyper()).init(params)
        sample_idx = np.arange(n)
        n_arg, batch_arg = np.int32(n), np.int32(batch_size)
        # Many epochs per compiled call, the stopping rule in the graph, where nothing needs the host
        # between epochs (no validation score, no per-epoch print, no rate schedule of the epoch count).
        chunked = not (incremental or self.early_stopping or self.verbose or settings.learning_rate == "invscaling")
        try:
            self.n_iter_ = 0
            if chunked:
                adaptive = solver == "sgd" and settings.learning_rate == "adaptive"
                params, opt_state = self._fit_chunks(
                    _chunk_fn(_EpochKey(net, loss, self.grad, solver, nesterov, padded_batch), adaptive),
                    (params, opt_state, Xd, Td, wd),
                    sample_idx,
                    rows,
                    (n_arg, batch_arg),
                    hyper,
                    settings,
                    dtype,
                )
            for _ in range(0 if chunked else self.max_iter):
                sample_idx = self._draw_order(sample_idx, n)
                order = np.zeros(rows, np.int32)
                order[:n] = sample_idx
                params, opt_state, total = epoch(params, opt_state, Xd, Td, wd, order, n_arg, batch_arg, hyper())
                self.n_iter_ += 1
                self.loss_ = float(total) / n
                self.t_ += n
                self.loss_curve_.append(self.loss_)
                if self.verbose:
                    print(f"Iteration {self.n_iter_}, loss = {self.loss_:.8f}")
                if self.early_stopping:
                    self._set_params(params)
                self._update_no_improvement_count(X_val, y_val, sw_val)
                if solver == "sgd" and settings.learning_rate == "invscaling":
                    self._learning_rate = float(self.learning_rate_init) / (self.t_ + 1) ** self.power_t
                if self._no_improvement_count > settings.n_iter_no_change:
                    what = "Validation score" if self.early_stopping else "Training loss"
                    msg = f"{what} did not improve more than tol={self.tol:f} for {self.n_iter_no_change} consecutive epochs."
                    if self._trigger_stopping(msg, solver, settings.learning_rate):
                        break
                    self._no_improvement_count = 0
                if incremental:
                    break
                if self.n_iter_ == self.max_iter:
                    warnings.warn(
                        f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached and the optimization hasn't "
                        "converged yet.",
                        ConvergenceWarning,
                        stacklevel=3,
                    )
        except KeyboardInterrupt:
            warnings.warn("Training interrupted by user.", stacklevel=3)
        self._set_params(params)
        self._opt_state = jax.device_get(opt_state)
        if self.early_stopping:
            self.coefs_ = self._best_coefs
            self.intercepts_ = self._best_intercepts

    def _fit_chunks(self, chunk, state, sample_idx, rows, sizes, hyper, settings, dtype) -> tuple:
        """The epochs of ``_fit_stochastic`` in compiled chunks of :data:`CHUNK` (:func:`_chunk_fn`).

        Each chunk's shuffles are drawn from the estimator's RandomState beforehand, exactly as the
        epoch-by-epoch loop draws them; when a chunk stops early the RandomState is rewound and
        advanced by the epochs that ran, so it ends where that loop leaves it. The losses are read
        back once per chunk. In float32 the rule's comparisons run in float32 in the graph (the
        epoch-by-epoch loop compares the same float32 losses in float64), so a tie within rounding
        could stop one epoch apart; in float64 the two paths are the same computation.
        """
        params, opt_state, Xd, Td, wd = state
        n = int(sizes[0])
        rule = {"tol": np.asarray(self.tol, dtype), "n_iter_no_change": np.asarray(settings.n_iter_no_change, dtype)}
        stopped = False
        try:
            while self.n_iter_ < self.max_iter and not stopped:
                allowed = min(CHUNK, self.max_iter - self.n_iter_)
                rng_state, idx_before = self._random_state.get_state(), sample_idx
                orders = np.zeros((CHUNK, rows), np.int32)
                for k in range(allowed):
                    sample_idx = self._draw_order(sample_idx, n)
                    orders[k, :n] = sample_idx
                rule.update(best_loss=np.asarray(self.best_loss_, dtype), count=np.int32(self._no_improvement_count))
                out = chunk(params, opt_state, Xd, Td, wd, orders, *sizes, hyper(), rule, np.int32(allowed))
                ran, params, opt_state, totals, _, count, lr, stop = out
                ran, stopped = int(ran), bool(stop)
                if ran < allowed:  # rewind: the RandomState as after `ran` epochs
                    self._random_state.set_state(rng_state)
                    sample_idx = idx_before
                    for _ in range(ran):
                        sample_idx = self._draw_order(sample_idx, n)
                for total in np.asarray(totals)[:ran]:
                    self.n_iter_ += 1
                    self.loss_ = float(total) / n
                    self.t_ += n
                    self.loss_curve_.append(self.loss_)
                    self.best_loss_ = min(self.best_loss_, self.loss_)  # the graph's `best`, in float64 as the loop keeps it
                self._no_improvement_count, self._learning_rate = int(count), float(lr)
        except KeyboardInterrupt:  # as the epoch loop: keep what the finished chunks trained
            warnings.warn("Training interrupted by user.", stacklevel=4)
            return params, opt_state
        if not stopped:
            warnings.warn(
                f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached and the optimization hasn't converged yet.",
                ConvergenceWarning,
                stacklevel=4,
            )
        return params, opt_state

    def _draw_order(self, sample_idx: np.ndarray, n: int) -> np.ndarray:
        """The next epoch's order: sklearn.utils.shuffle's draw (without its argument checks), or as it was."""
        if not self.shuffle:
            return sample_idx
        perm = np.arange(n)
        self._random_state.shuffle(perm)
        return sample_idx[perm]

    def _set_params(self, params: Params) -> None:
        host = jax.device_get(params)
        self.coefs_ = [np.ascontiguousarray(np.asarray(p["W"]).T) for p in host]  # (n_in, n_out), writable
        self.intercepts_ = [np.array(p["b"]) for p in host]

    def _trigger_stopping(self, msg: str, solver: str, learning_rate: str) -> bool:
        """scikit-learn's rule: stop, or for sgd with an adaptive rate divide it by 5 (stop below 1e-6)."""
        if solver != "sgd" or learning_rate != "adaptive":
            if self.verbose:
                print(msg + " Stopping.")
            return True
        if self._learning_rate <= 1e-6:
            if self.verbose:
                print(msg + " Learning rate too small. Stopping.")
            return True
        self._learning_rate /= 5.0
        if self.verbose:
            print(msg + f" Setting learning rate to {self._learning_rate:f}")
        return False

    def _update_no_improvement_count(self, X_val: Any, y_val: Any, sw_val: Any) -> None:
        if self.early_stopping:
            assert self.validation_scores_ is not None and self.best_validation_score_ is not None  # set by _initialize
            score = self._score(X_val, y_val, sw_val)
            self.validation_scores_.append(score)
            if self.verbose:
                print(f"Validation score: {score:f}")
            if score < self.best_validation_score_ + self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if score > self.best_validation_score_:
                self.best_validation_score_ = score
                self._best_coefs = [c.copy() for c in self.coefs_]
                self._best_intercepts = [b.copy() for b in self.intercepts_]
        else:
            assert self.best_loss_ is not None  # set by _initialize
            if self.loss_curve_[-1] > self.best_loss_ - self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            self.best_loss_ = min(self.best_loss_, self.loss_curve_[-1])

    # ---- predict ---------------------------------------------------------------------------------
    def _forward(self, X: Any, check_input: bool = True) -> np.ndarray:
        """The network output in float64, from ``coefs_`` and ``intercepts_``."""
        if check_input:
            X = validate_data(self, X, accept_sparse=["csr", "csc"], dtype=(np.float64, np.float32), reset=False)
        a = X.astype(np.float64)
        hidden = _act.get(self._hidden_activation)
        f_hidden = functools.partial(_NP_ACTIVATIONS[hidden.name], **dict(hidden.params))
        last = len(self.coefs_) - 1
        for i, (c, b) in enumerate(zip(self.coefs_, self.intercepts_)):
            a = safe_sparse_dot(a, np.asarray(c, np.float64)) + np.asarray(b, np.float64)
            a = f_hidden(a) if i < last else _NP_ACTIVATIONS[_OUTPUTS[self.out_activation_]](a)
        return np.asarray(a)

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> _BaseMLP:
        """Fit the model (from scratch unless ``warm_start``), up to ``max_iter`` epochs.

        Args:
          X: (n_samples, n_features), dense or sparse.
          y: (n_samples,) or (n_samples, n_outputs): labels (or a multilabel indicator) for the
            classifier, real targets for the regressor.
          sample_weight: (n_samples,) non-negative weights, or None for 1 each.

        Returns:
          self.

        Raises:
          ValueError / TypeError: a parameter out of its range or of the wrong type, naming it.
        """
        return self._fit(X, y, sample_weight, incremental=False)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.non_deterministic = False
        return tags


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """Multi-layer perceptron classifier trained by fnn, with scikit-learn's interface.

    Parameters are scikit-learn's (``sklearn.neural_network.MLPClassifier``) with its meanings,
    less ``max_fun`` (L-BFGS only), plus ``grad``:

    Args:
      hidden_layer_sizes: the width of each hidden layer; default ``(100,)``.
      activation: hidden activation, ``identity``, ``logistic``, ``tanh``, ``relu`` or one of fnn's
        (``sigmoid``, ``leaky_relu``, ``elu``, ``softplus``, ``gelu``).
      solver: ``adam`` or ``sgd`` (``lbfgs`` is refused: fnn trains by minibatch gradient steps).
      alpha: L2 strength on the weights (not the biases), divided by the batch's sample count.
      batch_size: rows per step; ``auto`` is ``min(200, n_samples)``.
      learning_rate: ``constant``, ``invscaling`` or ``adaptive`` (sgd only).
      learning_rate_init, power_t, max_iter, shuffle, random_state, tol, verbose, warm_start,
        momentum, nesterovs_momentum, early_stopping, validation_fraction, beta_1, beta_2,
        epsilon, n_iter_no_change: as in scikit-learn.
      grad: ``manual`` (fnn's hand-derived backward pass) or ``autodiff`` (``jax.grad``).

    Attributes:
      classes_, loss_, best_loss_, loss_curve_, validation_scores_, best_validation_score_, t_,
      coefs_ (each (n_in, n_out)), intercepts_, n_features_in_, feature_names_in_, n_iter_,
      n_layers_, n_outputs_, out_activation_: as in scikit-learn.
      params_: the fnn pytree ``[{"W": (n_out, n_in), "b": (n_out,)}, ...]``; net_: the fnn.MLP.

    Example:
      >>> clf = MLPClassifier((4,), random_state=0).partial_fit([[0.0], [1.0], [2.0]], [0, 1, 2], classes=[0, 1, 2])
      >>> clf.out_activation_, clf.predict_proba([[1.0]]).shape, clf.n_iter_, clf.t_
      ('softmax', (1, 3), 1, 3)
    """

    def _out_activation(self) -> str:
        return "softmax" if self._label_binarizer.y_type_ == "multiclass" else "logistic"

    def _validate_input(self, X: Any, y: Any, incremental: bool, reset: bool) -> tuple[Any, np.ndarray]:
        X, y = validate_data(
            self, X, y, accept_sparse=["csr", "csc"], multi_output=True, dtype=(np.float64, np.float32), reset=reset
        )
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        if not hasattr(self, "classes_") or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = unique_labels(y)
            if self.warm_start:
                if set(classes) != set(self.classes_):
                    raise ValueError(
                        "warm_start can only be used where `y` has the same classes as in the previous call to fit. "
                        f"Previously got {self.classes_}, `y` has {classes}"
                    )
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError(
                    f"`y` has classes not in `self.classes_`. `self.classes_` has {self.classes_}. 'y' has {classes}."
                )
        return X, self._label_binarizer.transform(y).astype(bool)

    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None, classes: Any = None) -> MLPClassifier:
        """One epoch over ``X`` and ``y``, continuing from the current weights and optimizer state.

        Args:
          X: (n_samples, n_features). y: (n_samples,) labels or a multilabel indicator.
          sample_weight: (n_samples,) or None.
          classes: every label ``y`` may ever hold; needed on the first call, optional later.

        Returns:
          self.
        """
        if getattr(self, "classes_", None) is None:
            if classes is None:
                raise ValueError("`classes` must be passed on the first call to partial_fit.")
            self.classes_ = unique_labels(classes)
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y if type_of_target(y).startswith("multilabel") else classes)
        elif classes is not None and not np.array_equal(self.classes_, unique_labels(classes)):
            raise ValueError(f"`classes`={classes!r} is not the same as on the first call to partial_fit: {self.classes_}")
        return self._fit(X, y, sample_weight, incremental=True)

    def _score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        y_pred = self._predict(X, check_input=False)
        return float(accuracy_score(y, y_pred, sample_weight=sample_weight))

    def _predict(self, X: Any, check_input: bool = True) -> np.ndarray:
        y_pred = self._forward(X, check_input=check_input)
        if self.n_outputs_ == 1:
            y_pred = y_pred.ravel()
        return self._label_binarizer.inverse_transform(y_pred)

    def predict(self, X: Any) -> np.ndarray:
        """The predicted classes, shape (n_samples,) or (n_samples, n_classes) for multilabel targets."""
        check_is_fitted(self)
        return self._predict(X)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, shape (n_samples, n_classes), in the order of ``classes_``."""
        check_is_fitted(self)
        y_pred = self._forward(X)
        if self.n_outputs_ == 1:
            p = y_pred.ravel()
            return np.vstack([1 - p, p]).T
        return y_pred

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """``log(predict_proba(X))``."""
        p = self.predict_proba(X)
        return np.log(p, out=p)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressor(RegressorMixin, _BaseMLP):
    """Multi-layer perceptron regressor trained by fnn, with scikit-learn's interface.

    The parameters are :class:`MLPClassifier`'s, plus ``loss`` (only ``squared_error``: fnn has no
    exponential output for ``poisson``). The loss is scikit-learn's squared_error, ½ the mean over
    samples and outputs (the gradient, like scikit-learn's, is that of ½ the mean over samples of
    the sum over outputs). ``y`` may have several columns.

    Example:
      >>> X, Y = [[0.0], [1.0], [2.0]], [[0.0, 1.0], [1.0, 2.0], [2.0, 3.0]]
      >>> reg = MLPRegressor(hidden_layer_sizes=(4,), random_state=0).partial_fit(X, Y)
      >>> reg.out_activation_, reg.predict([[1.0]]).shape, len(reg.loss_curve_)
      ('identity', (1, 2), 1)
    """

    def __init__(
        self,
        loss: str = "squared_error",
        hidden_layer_sizes: Any = (100,),
        activation: str = "relu",
        *,
        solver: str = "adam",
        alpha: float = 0.0001,
        batch_size: Any = "auto",
        learning_rate: str = "constant",
        learning_rate_init: float = 0.001,
        power_t: float = 0.5,
        max_iter: int = 200,
        shuffle: bool = True,
        random_state: Any = None,
        tol: float = 1e-4,
        verbose: Any = False,
        warm_start: bool = False,
        momentum: float = 0.9,
        nesterovs_momentum: bool = True,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        n_iter_no_change: Any = 10,
        grad: str = "manual",
    ) -> None:
        self.loss = loss
        super().__init__(
            hidden_layer_sizes,
            activation,
            solver=solver,
            alpha=alpha,
            batch_size=batch_size,
            learning_rate=learning_rate,
            learning_rate_init=learning_rate_init,
            power_t=power_t,
            max_iter=max_iter,
            shuffle=shuffle,
            random_state=random_state,
            tol=tol,
            verbose=verbose,
            warm_start=warm_start,
            momentum=momentum,
            nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            n_iter_no_change=n_iter_no_change,
            grad=grad,
        )

    def _check_params(self) -> _Settings:
        if self.loss == "poisson":
            raise ValueError(
                "`loss`='poisson' is not supported by fnn.sklearn (fnn has no exponential output); use 'squared_error'"
            )
        _check_choice(self, "loss", ("squared_error",))
        return super()._check_params()

    def _out_activation(self) -> str:
        return "identity"

    def _validate_input(self, X: Any, y: Any, incremental: bool, reset: bool) -> tuple[Any, np.ndarray]:
        X, y = validate_data(
            self,
            X,
            y,
            accept_sparse=["csr", "csc"],
            multi_output=True,
            y_numeric=True,
            dtype=(np.float64, np.float32),
            reset=reset,
        )
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        return X, y

    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None) -> MLPRegressor:
        """One epoch over ``X`` and ``y``, continuing from the current weights and optimizer state.

        Args:
          X: (n_samples, n_features). y: (n_samples,) or (n_samples, n_outputs).
          sample_weight: (n_samples,) or None.

        Returns:
          self.
        """
        return self._fit(X, y, sample_weight, incremental=True)

    def _score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        y_pred = self._predict(X, check_input=False)
        if not np.isfinite(y_pred).all():
            return float("nan")
        return float(r2_score(y, y_pred, sample_weight=sample_weight))

    def _predict(self, X: Any, check_input: bool = True) -> np.ndarray:
        y_pred = self._forward(X, check_input=check_input)
        return y_pred.ravel() if y_pred.shape[1] == 1 else y_pred

    def predict(self, X: Any) -> np.ndarray:
        """The predictions, shape (n_samples,) or (n_samples, n_outputs)."""
        check_is_fitted(self)
        return self._predict(X)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
