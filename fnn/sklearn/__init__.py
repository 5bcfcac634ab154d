"""scikit-learn estimators trained by fnn: :class:`MLPClassifier` and :class:`MLPRegressor`.

They take scikit-learn's parameters with scikit-learn's meanings and follow its
``sklearn.neural_network`` estimators step by step: Glorot-uniform initialisation drawn from
``check_random_state(random_state)``, the epoch's shuffle, minibatches of ``batch_size`` rows
(the last one smaller), the loss with its L2 term ``½·alpha·Σ‖W‖² / n_batch``, the ``sgd`` and
``adam`` updates, the ``constant`` / ``invscaling`` / ``adaptive`` learning rates, the stopping
rule on the training loss or the validation score, ``sample_weight``, ``partial_fit`` and
``warm_start``. The gradients come from fnn's hand-derived backward pass (``grad="manual"``) or
``jax.grad`` (``grad="autodiff"``). They train on fnn's one compiled loop, the one ``fit`` runs
(:mod:`fnn.train.engine`): up to the core's chunk of epochs per compiled call, the minibatch
loop, the optax update (:mod:`fnn.train.optim`: scikit-learn's SGD and Adam) and scikit-learn's
stopping rule and adaptive rate (the core's plateau rule) inside; ``partial_fit``,
``early_stopping``, ``verbose`` and the ``invscaling`` rate run one epoch per call of the same
program. It is compiled once per network, solver and bucket of data sizes (rows and batches are
padded with zero-weight rows up to the next 2ᵏ or 3·2ᵏ), so repeated fits (``GridSearchCV``,
``cross_val_score``) reuse it (``fnn/sklearn/_training.py``). ``solver="lbfgs"`` trains full-batch
on ``fnn.train.lbfgs`` (``optax.lbfgs`` and its zoom line search in one compiled loop, scipy's
stopping rules: ``max_iter``, ``max_fun``, ``tol`` as its gtol); ``MLPRegressor(loss="poisson")``
trains an exp output on half the Poisson deviance. Predictions are computed in NumPy from ``coefs_``
and ``intercepts_``. In float64 a fit reproduces scikit-learn's fitted weights, loss curve and
stopping to rounding (tests/sklearn/test_sklearn.py); scikit-learn's own test file passes but for two
tests (tests/sklearn/test_sklearn_suite.py says which and why).

Two of scikit-learn's numerical choices are kept on purpose: the regressor's reported loss is ½
the mean over samples *and* outputs, while its gradient (scikit-learn's output error ``ŷ − y``)
is that of ½ the mean over samples of the sum over outputs. The log losses are computed from the
logits (scikit-learn clips probabilities at machine epsilon), which differs only where an output
probability rounds to 0 or 1.

Precision follows ``X``, as in scikit-learn: float32 ``X`` trains in float32, float64 ``X`` in
float64 (JAX's x64 mode is switched on for the training call only, in the calling thread, and
restored: ``jax.enable_x64``), and ``coefs_``, ``intercepts_`` and the predictions keep that dtype.
Pass float32 ``X`` for speed: float64 is ~1.5-2x slower on a CPU and much slower on most GPUs.
``coefs_[i]`` has scikit-learn's shape ``(n_in, n_out)``, the transpose of fnn's ``W``;
``params_`` is the fnn pytree and ``net_`` the :class:`fnn.MLP`.

The first fit in a process turns on JAX's persistent compilation cache in fnn's cache directory
(:func:`fnn.compilation_cache`; ``$FNN_CACHE_DIR`` or ``~/.cache/fnn``), so the next process (a second
script, a notebook kernel, a grid search's worker) loads the compiled programs instead of compiling
them again; beside JAX's entries the training program is kept whole (``fnn.train._keep``), so that
process does not even trace it. A cache you set up for JAX yourself wins; ``FNN_SKLEARN_CACHE=0`` in
the environment leaves it off.

This module imports scikit-learn; ``import fnn`` does not import this module.

Example:
  >>> from fnn.sklearn import MLPClassifier
  >>> X, y = [[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]], ["no", "yes", "yes", "no"]
  >>> clf = MLPClassifier((8,), activation="tanh", learning_rate_init=0.1, max_iter=300, random_state=0).fit(X, y)
  >>> clf.predict(X).tolist(), clf.coefs_[0].shape, clf.params_[0]["W"].shape
  (['no', 'yes', 'yes', 'no'], (2, 8), (8, 2))
"""

from __future__ import annotations

from typing import Any

import numpy as np

try:
    import sklearn  # noqa: F401
    from sklearn.base import ClassifierMixin, RegressorMixin
    from sklearn.metrics import accuracy_score, r2_score
    from sklearn.preprocessing import LabelBinarizer
    from sklearn.utils import column_or_1d
    from sklearn.utils.metaestimators import available_if
    from sklearn.utils.multiclass import check_classification_targets, type_of_target, unique_labels
    from sklearn.utils.validation import check_is_fitted, validate_data
except ImportError as e:  # pragma: no cover - exercised only without scikit-learn
    raise ImportError(f"fnn.sklearn needs scikit-learn: pip install scikit-learn ({e})") from e

from fnn import _checks
from fnn.sklearn._base import STOCHASTIC, BaseMLP, Settings

__all__ = ["MLPClassifier", "MLPRegressor"]


def _stochastic(est: BaseMLP) -> bool:
    """``partial_fit`` exists for the stochastic solvers only (scikit-learn hides it for lbfgs the same way)."""
    if est.solver not in STOCHASTIC:
        raise AttributeError(f"partial_fit is only available for stochastic optimizers. {est.solver} is not stochastic.")
    return True


class MLPClassifier(ClassifierMixin, BaseMLP):
    """Multi-layer perceptron classifier trained by fnn, with scikit-learn's interface.

    Parameters are scikit-learn's (``sklearn.neural_network.MLPClassifier``) with its meanings, plus ``grad``.
    Those not listed below mean exactly what they mean in scikit-learn: ``learning_rate_init``, ``power_t``,
    ``max_iter``, ``shuffle``, ``random_state``, ``tol``, ``verbose``, ``warm_start``, ``momentum``,
    ``nesterovs_momentum``, ``early_stopping``, ``validation_fraction``, ``beta_1``, ``beta_2``, ``epsilon``,
    ``n_iter_no_change``.

    Args:
      hidden_layer_sizes: the width of each hidden layer; default ``(100,)``.
      activation: hidden activation, ``identity``, ``logistic``, ``tanh``, ``relu`` or one of fnn's
        (``sigmoid``, ``leaky_relu``, ``elu``, ``softplus``, ``gelu``).
      solver: ``adam``, ``sgd`` or ``lbfgs`` (full-batch L-BFGS, ``fnn.train.lbfgs``; no ``partial_fit``).
      alpha: L2 strength on the weights (not the biases), divided by the batch's sample count.
      batch_size: rows per step; ``auto`` is ``min(200, n_samples)``.
      learning_rate: ``constant``, ``invscaling`` or ``adaptive`` (sgd only).
      max_fun: lbfgs only: at most this many evaluations of the loss and its gradient (the line
        searches' included), checked after each iteration as scipy does.
      grad: ``manual`` (fnn's hand-derived backward pass) or ``autodiff`` (``jax.grad``).

    After fitting it has scikit-learn's attributes, with its meanings: ``classes_``, ``loss_``, ``best_loss_``,
    ``loss_curve_``, ``validation_scores_``, ``best_validation_score_``, ``t_``, ``coefs_`` (each (n_in, n_out)),
    ``intercepts_``, ``n_features_in_``, ``feature_names_in_``, ``n_iter_``, ``n_layers_``, ``n_outputs_``,
    ``out_activation_`` (lbfgs, like scikit-learn's, sets no ``loss_curve_``, ``best_loss_`` or validation
    scores); and fnn's own:

    Attributes:
      params_: the fnn pytree ``[{"W": (n_out, n_in), "b": (n_out,)}, ...]``.
      net_: the :class:`fnn.MLP` that ``params_`` is the parameters of.

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

    @available_if(_stochastic)
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


class MLPRegressor(RegressorMixin, BaseMLP):
    """Multi-layer perceptron regressor trained by fnn, with scikit-learn's interface.

    The parameters are :class:`MLPClassifier`'s, plus ``loss``: ``squared_error``, ½ the mean over
    samples and outputs (the gradient, like scikit-learn's, is that of ½ the mean over samples of
    the sum over outputs), or ``poisson``, half the Poisson deviance of an exp output (``y`` ≥ 0,
    counts or rates; fnn's ``"poisson"`` loss). ``y`` may have several columns.

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
        max_fun: int = 15000,
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
            max_fun=max_fun,
            grad=grad,
        )

    def _check_params(self) -> Settings:
        _checks.check_choice(self.loss, "loss", ("squared_error", "poisson"))
        return super()._check_params()

    def _out_activation(self) -> str:
        return "exp" if self.loss == "poisson" else "identity"

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
        if self.loss == "poisson" and y.size and y.min() < 0:
            raise ValueError(f"`y` must be non-negative for loss='poisson' (counts or rates), got a minimum of {y.min()}")
        return X, y

    @available_if(_stochastic)
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
