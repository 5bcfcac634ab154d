"""What MLPClassifier and MLPRegressor share: scikit-learn's parameters checked, the network
initialised as scikit-learn draws it, the training run (:mod:`fnn.sklearn._training`) and the float64
NumPy prediction."""

from __future__ import annotations

import functools
import itertools
import math
import numbers
from typing import Any, NamedTuple

import jax
import numpy as np
from sklearn.base import BaseEstimator, is_classifier
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.extmath import safe_sparse_dot
from sklearn.utils.validation import check_is_fitted, validate_data

from fnn import _checks
from fnn.core import activations as _act
from fnn.core.mlp import MLP, Params
from fnn.sklearn import _training
from fnn.train import cache as _cache


def check_sample_weight(sample_weight: Any, X: Any) -> np.ndarray:
    """``sample_weight`` as scikit-learn's own estimators check it: an array of ``X``'s rows and dtype,
    finite and non-negative (its messages, which its estimator checks expect).

    The one private import of scikit-learn in fnn: ``sklearn.utils.validation._check_sample_weight``
    has no public equivalent (scikit-learn 1.6 to 1.9); tests/sklearn pins what it must do.
    """
    from sklearn.utils.validation import _check_sample_weight

    return _check_sample_weight(sample_weight, X, ensure_non_negative=True)


# scikit-learn's activation names, and fnn's own hidden activations under their names.
ACTIVATIONS = {"logistic": "sigmoid", **{name: name for name in _act.HIDDEN_NAMES}}
_SOLVERS = ("lbfgs", "sgd", "adam")
STOCHASTIC = ("sgd", "adam")
_LEARNING_RATES = ("constant", "invscaling", "adaptive")


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
    "exp": lambda z, **_: np.exp(z),
}
"""fnn's activations in NumPy, for float64 prediction (same formulas as :mod:`fnn.activations`)."""


# ---- parameter checks ----------------------------------------------------------------------------


class Settings(NamedTuple):
    hidden: tuple[int, ...]
    activation: str  # fnn's name
    solver: str
    learning_rate: str
    n_iter_no_change: float


# ---- the shared estimator ------------------------------------------------------------------------


class BaseMLP(BaseEstimator):
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
        max_fun: int = 15000,
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
        self.max_fun = max_fun
        self.grad = grad

    # ---- checks ---------------------------------------------------------------------------------
    def _check_params(self) -> Settings:
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
        activation = _checks.check_choice(self.activation, "activation", tuple(ACTIVATIONS))
        solver = _checks.check_choice(self.solver, "solver", _SOLVERS)
        _checks.check_number(self.alpha, "alpha", 0.0)
        if not (isinstance(self.batch_size, str) and self.batch_size == "auto"):
            if isinstance(self.batch_size, str):
                raise ValueError(f"`batch_size` must be 'auto' or an int >= 1, got {self.batch_size!r}")
            _checks.check_int(self.batch_size, "batch_size", 1)
        learning_rate = _checks.check_choice(self.learning_rate, "learning_rate", _LEARNING_RATES)
        _checks.check_number(self.learning_rate_init, "learning_rate_init", 0.0, low_open=True)
        _checks.check_number(self.power_t, "power_t", 0.0)
        _checks.check_int(self.max_iter, "max_iter", 1)
        for name in ("shuffle", "warm_start", "nesterovs_momentum", "early_stopping"):
            _checks.check_flag(getattr(self, name), name)
        try:
            check_random_state(self.random_state)
        except (TypeError, ValueError):
            raise ValueError(
                f"`random_state` must be None, an int or a numpy.random.RandomState, got {self.random_state!r}"
            ) from None
        _checks.check_number(self.tol, "tol", 0.0)
        if isinstance(self.verbose, (bool, np.bool_)):
            pass
        elif not isinstance(self.verbose, numbers.Integral) or self.verbose < 0:
            raise ValueError(f"`verbose` must be a bool or an int >= 0, got {self.verbose!r}")
        _checks.check_number(self.momentum, "momentum", 0.0, 1.0)
        _checks.check_number(self.validation_fraction, "validation_fraction", 0.0, 1.0, high_open=True)
        _checks.check_number(self.beta_1, "beta_1", 0.0, 1.0, high_open=True)
        _checks.check_number(self.beta_2, "beta_2", 0.0, 1.0, high_open=True)
        _checks.check_number(self.epsilon, "epsilon", 0.0, low_open=True)
        if isinstance(self.n_iter_no_change, numbers.Real) and not isinstance(self.n_iter_no_change, numbers.Integral):
            if self.n_iter_no_change != math.inf:
                raise ValueError(f"`n_iter_no_change` must be an int >= 1 or numpy.inf, got {self.n_iter_no_change!r}")
            n_iter_no_change = math.inf
        else:
            n_iter_no_change = _checks.check_int(self.n_iter_no_change, "n_iter_no_change", 1)
        _checks.check_int(self.max_fun, "max_fun", 1)
        _checks.check_choice(self.grad, "grad", ("manual", "autodiff"))
        return Settings(tuple(int(s) for s in sizes), ACTIVATIONS[activation], solver, learning_rate, n_iter_no_change)

    # ---- fnn views of the fitted model -----------------------------------------------------------
    @property
    def net_(self) -> MLP:
        """The fitted network's :class:`fnn.MLP` spec (``W`` of shape (n_out, n_in))."""
        check_is_fitted(self, "coefs_")
        sizes = (self.coefs_[0].shape[0], *(c.shape[1] for c in self.coefs_))
        return MLP(sizes, hidden=self._hidden_activation, output=_training.OUTPUTS[self.out_activation_])

    @property
    def params_(self) -> Params:
        """The fitted parameters as fnn's pytree ``[{"W": (n_out, n_in), "b": (n_out,)}, ...]``, NumPy copies in
        the dtype of ``coefs_`` (a float64 fit stays float64 where JAX's x64 mode is off; fnn's functions take them)."""
        check_is_fitted(self, "coefs_")
        return [{"W": np.array(c.T), "b": np.array(b)} for c, b in zip(self.coefs_, self.intercepts_)]

    # ---- fit -------------------------------------------------------------------------------------
    def _fit(self, X: Any, y: Any, sample_weight: Any, incremental: bool) -> BaseMLP:
        settings = self._check_params()
        _cache.for_estimators()  # later processes load this one's programs (FNN_SKLEARN_CACHE=0: not)
        first_pass = not hasattr(self, "coefs_") or (not self.warm_start and not incremental)
        X, y = self._validate_input(X, y, incremental, reset=first_pass)
        if sample_weight is not None:
            sample_weight = check_sample_weight(sample_weight, X)
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
        with _training.precision(X.dtype):  # float64 X trains in float64, as scikit-learn does
            if settings.solver == "lbfgs":
                _training.fit_lbfgs(self, X, y, sample_weight, settings)
            else:
                self._fit_stochastic(X, y, sample_weight, settings, incremental)  # a diverged run raises there
        if not all(np.isfinite(w).all() for w in self.coefs_ + self.intercepts_):
            raise ValueError(
                "Solver produced non-finite parameter weights. "
                "The input data may contain large values and need to be preprocessed."
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
        if self.solver not in STOCHASTIC:  # L-BFGS: scikit-learn sets no loss curve, best loss or scores
            return
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
        self, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None, settings: Settings, incremental: bool
    ) -> None:
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        if not incremental or not hasattr(self, "_opt_state"):
            self._learning_rate = float(self.learning_rate_init)
            self._opt_state = None
        val = None
        if self.early_stopping:
            stratify = y if is_classifier(self) and self.n_outputs_ == 1 else None
            arrays = [X, y] if sample_weight is None else [X, y, sample_weight]
            parts = train_test_split(
                *arrays, random_state=self._random_state, test_size=self.validation_fraction, stratify=stratify
            )
            X, X_val, y, y_val = parts[:4]
            sw_val = None
            if sample_weight is not None:
                sample_weight, sw_val = parts[4:]
            if X_val.shape[0] < 2:
                raise ValueError("The validation set is too small. Increase 'validation_fraction' or the size of your dataset.")
            if is_classifier(self):
                y_val = self._label_binarizer.inverse_transform(y_val)
            val = (X_val, y_val, sw_val)
        _training.fit_stochastic(self, X, y, sample_weight, settings, incremental, val)
        if self.early_stopping:
            self.coefs_ = self._best_coefs
            self.intercepts_ = self._best_intercepts

    @property
    def _optimizer(self) -> _training.OptimizerView:
        """scikit-learn's private ``_optimizer`` as far as its tests read it: ``.learning_rate``, the current
        rate of the stochastic solvers (after ``invscaling`` or ``adaptive`` changed it)."""
        if not hasattr(self, "_learning_rate"):
            raise AttributeError(f"{type(self).__name__} has no `_optimizer` before a fit with solver='sgd' or 'adam'")
        return _training.OptimizerView(self._learning_rate)

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

    # ---- predict ---------------------------------------------------------------------------------
    def _forward(self, X: Any, check_input: bool = True) -> np.ndarray:
        """The network output from ``coefs_`` and ``intercepts_``, in NumPy, in the dtype NumPy gives ``X``
        with them (scikit-learn's: float32 for float32 ``X`` and weights, float64 otherwise)."""
        if check_input:
            X = validate_data(self, X, accept_sparse=["csr", "csc"], dtype=(np.float64, np.float32), reset=False)
        dtype = np.result_type(X.dtype, self.coefs_[0].dtype)
        a = X.astype(dtype, copy=False)
        hidden = _act.get(self._hidden_activation)
        f_hidden = functools.partial(_NP_ACTIVATIONS[hidden.name], **dict(hidden.params))
        last = len(self.coefs_) - 1
        for i, (c, b) in enumerate(zip(self.coefs_, self.intercepts_)):
            a = safe_sparse_dot(a, np.asarray(c, dtype)) + np.asarray(b, dtype)
            a = f_hidden(a) if i < last else _NP_ACTIVATIONS[_training.OUTPUTS[self.out_activation_]](a)
        return np.asarray(a)

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> BaseMLP:
        """Fit the model (from scratch unless ``warm_start``), up to ``max_iter`` epochs.

        Args:
          X: (n_samples, n_features), dense or sparse.
          y: (n_samples,) or (n_samples, n_outputs): labels (or a multilabel indicator) for the
            classifier, real targets for the regressor.
          sample_weight: (n_samples,) non-negative weights, or None for 1 each.

        Returns:
          self.

        Raises:
          ValueError: a parameter out of its range, naming it.
          TypeError: a parameter of the wrong type, naming it.
        """
        return self._fit(X, y, sample_weight, incremental=False)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.non_deterministic = False
        return tags
