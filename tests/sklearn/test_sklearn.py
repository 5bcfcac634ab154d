"""fnn.sklearn: scikit-learn's own estimator checks, the objective and the training run against
scikit-learn's MLP (an independent implementation, in float64), and the estimators in use."""

import io
import itertools
import pickle
import subprocess
import sys
import warnings

import jax
import jax.numpy as jnp
import joblib
import numpy as np
import pytest
import sklearn  # noqa: F401  in the test extra: without it this module fails to import (never a silent skip)
from sklearn.base import clone
from sklearn.datasets import make_classification, make_multilabel_classification, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import r2_score
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.neural_network import MLPClassifier as SkMLPClassifier
from sklearn.neural_network import MLPRegressor as SkMLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

import fnn
from fnn.core.backprop import weighted_value_and_grad
from fnn.sklearn import MLPClassifier, MLPRegressor
from fnn.sklearn._base import ACTIVATIONS, check_sample_weight
from fnn.train import _compiled, engine

# ---- 1. scikit-learn's estimator checks ----------------------------------------------------------

# scikit-learn runs these checks on its own MLPs with max_iter=100 (its instance generator); so do we,
# with scikit-learn's other defaults (hidden_layer_sizes=(100,), adam). Every check passes, so no
# `expected_failed_checks`. scikit-learn itself skips three: the two array-API checks unless
# SCIPY_ARRAY_API=1 is set before scipy is imported (a process-wide switch the suite does not flip; both
# pass with it set), and the decision_function check (scikit-learn's MLPClassifier has none either). The
# DataFrame checks need pandas, which the test extra installs.
ESTIMATORS = [MLPClassifier(max_iter=100, random_state=0), MLPRegressor(max_iter=100, random_state=0)]


# Fitting with integer weights against fitting on the repeated rows: the same sums in another order.
# In float32 (how fnn trains unless x64 is on) the two agree to about one rounding step, under the check's
# rtol of 1e-7 or just over it depending on the jaxlib, not on scikit-learn (MLPClassifier: 1.25e-7 with
# jaxlib 0.6.1 to 0.10.0, under it with 0.10.1 and 0.10.2, scikit-learn 1.7 or 1.9 alike). So these two
# checks run with x64 on: fnn then trains in float64, as scikit-learn does, and the difference is ~1e-15.
ROUNDING_SENSITIVE = {"check_sample_weight_equivalence_on_dense_data", "check_sample_weight_equivalence_on_sparse_data"}


@parametrize_with_checks(ESTIMATORS)
def test_sklearn_estimator_checks(estimator, check, request):
    if getattr(check, "func", check).__name__ in ROUNDING_SENSITIVE:
        request.getfixturevalue("x64")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)


# ---- 2. the objective and its gradient are scikit-learn's ----------------------------------------

# (name, classifier?, out_activation_, fnn output, fnn loss, outputs K, hidden activation)
CASES = [
    ("binary", True, "logistic", "sigmoid", "bce", 1, "tanh"),
    ("multiclass", True, "softmax", "softmax", "cross_entropy", 3, "logistic"),
    ("multilabel", True, "logistic", "sigmoid", "bce", 3, "relu"),
    ("regression", False, "identity", "identity", "mse", 1, "identity"),
    ("multi-output", False, "identity", "identity", "mse", 3, "relu"),
]


def _case_data(K, classifier, multiclass, rng):
    X = rng.normal(size=(7, 4))
    if multiclass:
        T = np.eye(K)[rng.integers(0, K, 7)]
    elif classifier:
        T = rng.integers(0, 2, (7, K)).astype(float)
    else:
        T = rng.normal(size=(7, K))
    return X, T


@pytest.mark.parametrize("grad", ["manual", "autodiff"])
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_loss_and_gradient_match_sklearn(x64, case, grad):
    name, classifier, out, fnn_out, loss, K, act = case
    rng = np.random.default_rng(len(name))
    sizes = (4, 5, 3, K)
    X, T = _case_data(K, classifier, name == "multiclass", rng)
    coefs = [rng.normal(size=(i, o)) for i, o in itertools.pairwise(sizes)]
    intercepts = [rng.normal(size=o) for o in sizes[1:]]
    sk = (SkMLPClassifier if classifier else SkMLPRegressor)(activation=act, alpha=0.3)
    sk.coefs_, sk.intercepts_, sk.n_layers_, sk.out_activation_ = coefs, intercepts, len(sizes), out

    net = fnn.MLP(sizes, hidden=ACTIVATIONS[act], output=fnn_out)
    # the core's weighted objective, as the estimators train it: scikit-learn reports its squared error over outputs
    fn = jax.jit(weighted_value_and_grad(net, loss, grad, l2=True, report_scale=1 / K if loss == "mse" else 1.0))
    params = [{"W": jnp.asarray(c.T), "b": jnp.asarray(b)} for c, b in zip(coefs, intercepts)]
    for sw in (None, rng.uniform(0.0, 2.0, 7)):
        L = len(sizes) - 1
        E_sk, cg, ig = sk._backprop(X, T, sw, [X] + [None] * L, [None] * L, [None] * L, [None] * L)
        w = np.ones(7) if sw is None else sw
        E, g = fn(params, jnp.asarray(X), jnp.asarray(T), jnp.asarray(w), jnp.asarray(0.3))
        assert E.dtype == jnp.float64
        np.testing.assert_allclose(float(E), E_sk, rtol=1e-12)
        for layer, c_sk, b_sk in zip(g, cg, ig):
            np.testing.assert_allclose(np.asarray(layer["W"]).T, c_sk, rtol=1e-12, atol=1e-14)
            np.testing.assert_allclose(np.asarray(layer["b"]), b_sk, rtol=1e-12, atol=1e-14)


# ---- 3. one step, and whole runs, are scikit-learn's -----------------------------------------------


def _hand_set(mlp):
    """scikit-learn's worked example (sklearn/neural_network/tests/test_mlp.py::test_fit)."""
    mlp.coefs_ = [np.array([[0.1, 0.2], [0.3, 0.1], [0.5, 0.0]]), np.array([[0.1], [0.2]])]
    mlp.intercepts_ = [np.array([0.1, 0.1]), np.array([1.0])]
    mlp.n_outputs_, mlp.n_features_in_, mlp.n_iter_, mlp.n_layers_ = 1, 3, 0, 3
    mlp.out_activation_, mlp.t_, mlp.best_loss_, mlp.loss_curve_ = "logistic", 0, np.inf, []
    mlp._no_improvement_count = 0
    return mlp


@pytest.mark.parametrize("grad", ["manual", "autodiff"])
def test_one_sgd_step_is_sklearns_worked_example(x64, grad):
    X, y = np.array([[0.6, 0.8, 0.7]]), np.array([0])
    kw = {"solver": "sgd", "learning_rate_init": 0.1, "alpha": 0.1, "activation": "logistic", "random_state": 1, "max_iter": 1}
    kw.update(hidden_layer_sizes=2, momentum=0)
    ours = _hand_set(MLPClassifier(**kw, grad=grad)).partial_fit(X, y, classes=[0, 1])
    theirs = _hand_set(SkMLPClassifier(**kw)).partial_fit(X, y, classes=[0, 1])
    # the numbers worked out by hand in scikit-learn's test
    np.testing.assert_allclose(ours.coefs_[0], [[0.098, 0.195756], [0.2956664, 0.096008], [0.4939998, -0.002244]], atol=1e-3)
    np.testing.assert_allclose(ours.coefs_[1], [[0.04706], [0.154089]], atol=1e-3)
    np.testing.assert_allclose(ours.intercepts_[1], [0.9235], atol=1e-3)
    assert ours.predict_proba(X)[0, 1] == pytest.approx(0.739, abs=1e-3)
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    assert ours.loss_ == pytest.approx(theirs.loss_, rel=1e-12)


RUNS = [
    {"solver": "sgd", "batch_size": 16, "learning_rate": "invscaling", "power_t": 0.3, "learning_rate_init": 0.2, "max_iter": 6},
    {
        "solver": "sgd",
        "batch_size": 16,
        "learning_rate": "adaptive",
        "nesterovs_momentum": False,
        "tol": 0.05,
        "n_iter_no_change": 1,
    },
    {"solver": "adam", "batch_size": 20, "alpha": 0.01, "learning_rate_init": 0.01, "max_iter": 6},
    {"solver": "adam", "early_stopping": True, "validation_fraction": 0.2, "n_iter_no_change": 2, "learning_rate_init": 0.05},
    {"solver": "sgd", "batch_size": 10, "momentum": 0.5, "learning_rate_init": 0.05, "max_iter": 5, "sample_weight": True},
]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("classifier", [True, False], ids=["classifier", "regressor"])
@pytest.mark.parametrize("run", RUNS, ids=["sgd-invscaling", "sgd-adaptive", "adam", "adam-early-stopping", "sgd-weighted"])
def test_training_run_is_sklearns(x64, run, classifier):
    """Same initial weights, same shuffles, same minibatches (the last one smaller), same updates,
    learning rates, sample weights and stopping: the fitted model equals scikit-learn's in float64."""
    run = dict(run)
    sw = np.random.default_rng(0).uniform(0.0, 3.0, 53) if run.pop("sample_weight", False) else None
    if classifier:
        X, y = make_classification(n_samples=53, n_features=4, n_informative=3, n_redundant=0, n_classes=3, random_state=0)
        ours, theirs = MLPClassifier, SkMLPClassifier
    else:
        X, y = make_regression(n_samples=53, n_features=4, n_targets=2, random_state=0)
        y /= 100
        ours, theirs = MLPRegressor, SkMLPRegressor
    kw = {"hidden_layer_sizes": (6,), "activation": "tanh" if classifier else "relu", "random_state": 3, "max_iter": 40, **run}
    a, b = ours(**kw).fit(X, y, sample_weight=sw), theirs(**kw).fit(X, y, sample_weight=sw)
    assert a.n_iter_ == b.n_iter_ and a.t_ == b.t_
    np.testing.assert_allclose(a.loss_curve_, b.loss_curve_, rtol=1e-12)
    for p, q in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        np.testing.assert_allclose(p, q, rtol=1e-10, atol=1e-13)
    if run.get("early_stopping"):
        np.testing.assert_allclose(a.validation_scores_, b.validation_scores_, rtol=1e-12)
        assert a.best_validation_score_ == pytest.approx(b.best_validation_score_) and a.best_loss_ is None
    else:
        assert a.best_loss_ == pytest.approx(b.best_loss_, rel=1e-9)
    np.testing.assert_allclose(a.predict(X[:5]), b.predict(X[:5]), rtol=1e-10)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_float32_training_tracks_sklearn():
    """float32 X trains in float32 (as scikit-learn's does); a few epochs stay within float32 rounding of its float64."""
    X, y = make_classification(n_samples=53, n_features=4, n_informative=3, n_redundant=0, n_classes=3, random_state=0)
    kw = {"hidden_layer_sizes": (6,), "activation": "tanh", "random_state": 3, "max_iter": 5, "solver": "sgd", "batch_size": 16}
    a, b = MLPClassifier(**kw).fit(X.astype(np.float32), y), SkMLPClassifier(**kw).fit(X, y)
    assert a.coefs_[0].dtype == np.float32 and b.coefs_[0].dtype == np.float64
    assert a.predict_proba(X.astype(np.float32)).dtype == np.float32
    np.testing.assert_allclose(a.loss_curve_, b.loss_curve_, rtol=1e-5)
    np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(X), atol=1e-5)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_float64_input_trains_in_float64_with_x64_off():
    """float64 X trains in float64 with JAX's x64 mode off (switched on for the call only, then restored):
    the fit is scikit-learn's to rounding, as with x64 on."""
    assert not jax.config.read("jax_enable_x64")  # the suite's default
    X, y = make_classification(n_samples=53, n_features=4, n_informative=3, n_redundant=0, n_classes=3, random_state=0)
    kw = {"hidden_layer_sizes": (6,), "activation": "tanh", "random_state": 3, "max_iter": 5, "solver": "sgd", "batch_size": 16}
    a, b = MLPRegressor(**kw).fit(X, y.astype(float)), SkMLPRegressor(**kw).fit(X, y.astype(float))
    assert not jax.config.read("jax_enable_x64") and jnp.zeros(1).dtype == jnp.float32  # restored
    assert a.coefs_[0].dtype == a.intercepts_[0].dtype == a.predict(X).dtype == np.float64
    np.testing.assert_allclose(a.loss_curve_, b.loss_curve_, rtol=1e-12)
    np.testing.assert_allclose(a.predict(X), b.predict(X), rtol=1e-10)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_partial_fit_is_fit_bit_for_bit(dtype):
    """One batch of every row: fit (a new shuffle each epoch) and partial_fit (the RandomState reseeded each call,
    the first shuffle every time) batch the same rows in other orders; sorted within the batch, they sum alike."""
    X, y = make_regression(n_samples=40, n_features=3, random_state=0)
    X, y = X.astype(dtype), y / 100
    kw = {"solver": "sgd", "hidden_layer_sizes": (5,), "random_state": 1, "learning_rate_init": 0.01, "batch_size": 40}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a = MLPRegressor(max_iter=30, **kw).fit(X, y)
    b = MLPRegressor(**kw)
    for _ in range(30):
        b.partial_fit(X, y)
    assert a.loss_curve_ == b.loss_curve_
    for p, q in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        np.testing.assert_array_equal(p, q)


def test_minibatch_rows_are_sorted_within_each_batch():
    from fnn.sklearn._training import within_batches_sorted

    order = np.random.default_rng(0).permutation(23)
    out = within_batches_sorted(order, 5)
    for start in range(0, 23, 5):  # the same rows in each batch, ascending
        np.testing.assert_array_equal(out[start : start + 5], np.sort(order[start : start + 5]))
    np.testing.assert_array_equal(order, np.random.default_rng(0).permutation(23))  # the order itself untouched


# ---- 5. manual and automatic gradients train the same model ---------------------------------------


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_manual_and_autodiff_fit_the_same_model(x64):
    X, y = make_classification(n_samples=60, n_features=5, random_state=1)
    kw = {
        "hidden_layer_sizes": (7, 5),
        "activation": "logistic",
        "alpha": 0.01,
        "batch_size": 25,
        "max_iter": 15,
        "random_state": 0,
    }
    a = MLPClassifier(grad="manual", **kw).fit(X, y)
    b = MLPClassifier(grad="autodiff", **kw).fit(X, y)
    np.testing.assert_allclose(a.loss_curve_, b.loss_curve_, rtol=1e-10)
    for p, q in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        np.testing.assert_allclose(p, q, rtol=1e-9, atol=1e-12)


# ---- 4. the estimators in use ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def blobs():
    X, y = make_classification(n_samples=120, n_features=4, n_informative=3, n_redundant=0, n_classes=3, random_state=0)
    return X * 10 + 3, y


def small(cls, **kw):
    return cls(**{"hidden_layer_sizes": (8,), "learning_rate_init": 0.05, "max_iter": 60, "random_state": 0, **kw})


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_pipeline_grid_search_and_cross_validation(blobs):
    X, y = blobs
    pipe = make_pipeline(StandardScaler(), small(MLPClassifier))
    search = GridSearchCV(pipe, {"mlpclassifier__alpha": [1e-4, 1e-1]}, cv=3).fit(X, y)
    assert search.best_score_ > 0.7
    assert search.predict(X).shape == (120,)
    scores = cross_val_score(make_pipeline(StandardScaler(), small(MLPClassifier)), X, y, cv=3)
    assert scores.shape == (3,) and scores.mean() > 0.7


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_repeated_fits_reuse_the_compiled_epoch(blobs, monkeypatch):
    X, y = blobs
    plans = []
    real = engine.advance
    monkeypatch.setattr(engine, "advance", lambda plan, *a, **k: plans.append(plan) or real(plan, *a, **k))
    est = small(MLPClassifier, batch_size=32)
    est.fit(X, y)
    clone(est).set_params(alpha=0.5, learning_rate_init=0.01).fit(X[:110], y[:110])  # same bucket of rows
    clone(est).set_params(random_state=5).fit(X[3:], y[3:])
    assert len(plans) == 3 and plans[0] == plans[1] == plans[2]  # one plan: fit's own compiled loop, run once per fit
    assert _compiled.compiled_runner(plans[0], False)._cache_size() == 1


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_clone_pickle_and_joblib_round_trips(blobs):
    X, y = blobs
    est = small(MLPClassifier).fit(X, y)
    assert clone(est).get_params() == est.get_params() and not hasattr(clone(est), "coefs_")
    loaded = [pickle.loads(pickle.dumps(est)), _joblib_round_trip(est)]
    for copy in loaded:
        np.testing.assert_array_equal(copy.predict_proba(X), est.predict_proba(X))
        np.testing.assert_array_equal(copy.predict(X), est.predict(X))
    # the optimizer state (Adam's moments and step count) and the RandomState travel too: a copy continues
    # exactly as the original does, bit for bit (a restarted optimizer or reseeded shuffle would not)
    for copy in loaded:
        copy.partial_fit(X, y)
    est.partial_fit(X, y)
    for copy in loaded:
        assert copy.t_ == est.t_ and copy.loss_curve_ == est.loss_curve_
        for a, b in zip(copy.coefs_ + copy.intercepts_, est.coefs_ + est.intercepts_):
            np.testing.assert_array_equal(a, b)
    reg = small(MLPRegressor).fit(X, y.astype(float))
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(reg)).predict(X), reg.predict(X))


def _joblib_round_trip(est):
    buffer = io.BytesIO()
    joblib.dump(est, buffer)
    buffer.seek(0)
    return joblib.load(buffer)


def test_attributes_and_fnn_views(blobs):
    X, y = blobs
    with pytest.warns(ConvergenceWarning, match="Maximum iterations"):
        est = small(MLPClassifier, hidden_layer_sizes=(8, 5), max_iter=3).fit(X, y)
    assert [c.shape for c in est.coefs_] == [(4, 8), (8, 5), (5, 3)]
    assert [b.shape for b in est.intercepts_] == [(8,), (5,), (3,)]
    assert (est.n_layers_, est.n_outputs_, est.out_activation_, est.n_iter_, est.t_) == (4, 3, "softmax", 3, 360)
    assert len(est.loss_curve_) == 3 and est.best_loss_ == min(est.loss_curve_) and est.validation_scores_ is None
    assert est.net_ == fnn.MLP((4, 8, 5, 3), hidden="relu", output="softmax")
    for layer, c, b in zip(est.params_, est.coefs_, est.intercepts_):
        np.testing.assert_array_equal(np.asarray(layer["W"]), c.T)
        np.testing.assert_array_equal(np.asarray(layer["b"]), b)
    out = np.asarray(est.net_.apply(est.params_, jnp.asarray(X, jnp.float32)))
    np.testing.assert_allclose(out, est.predict_proba(X), atol=1e-5)
    np.testing.assert_allclose(est.predict_log_proba(X), np.log(est.predict_proba(X)))
    assert est.score(X, y) == np.mean(est.predict(X) == y)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_partial_fit_and_warm_start(blobs):
    X, y = blobs
    est = small(MLPClassifier)
    with pytest.raises(ValueError, match="`classes` must be passed"):
        est.partial_fit(X, y)
    est.partial_fit(X[:60], y[:60], classes=[0, 1, 2])
    first = [c.copy() for c in est.coefs_]
    est.partial_fit(X[60:], y[60:])
    assert est.n_iter_ == 1 and est.t_ == 120 and len(est.loss_curve_) == 2
    assert not np.allclose(first[0], est.coefs_[0])
    with pytest.raises(ValueError, match="not in `self.classes_`"):
        est.partial_fit(X[:5], np.array([0, 1, 2, 3, 0]))

    cold = small(MLPClassifier, max_iter=5).fit(X, y)
    warm = small(MLPClassifier, max_iter=5, warm_start=True).fit(X, y)
    start = [c.copy() for c in warm.coefs_]
    warm.fit(X, y)  # continues from the fitted weights
    assert len(warm.loss_curve_) == 10 and warm.loss_curve_[5] < cold.loss_curve_[0]
    assert not np.allclose(start[0], warm.coefs_[0])
    with pytest.raises(ValueError, match="same classes"):
        warm.fit(X, np.where(y == 2, 1, y))
    with pytest.raises(ValueError, match="`hidden_layer_sizes`"):
        warm.set_params(hidden_layer_sizes=(3,)).fit(X, y)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_string_labels_binary_and_multiclass(blobs):
    X, y = blobs
    names = np.array(["cat", "dog", "eel"])[y]
    est = small(MLPClassifier).fit(X, names)
    assert list(est.classes_) == ["cat", "dog", "eel"] and est.predict(X).dtype == names.dtype
    assert est.score(X, names) > 0.7
    binary = small(MLPClassifier).fit(X, np.where(y == 0, "yes", "no"))
    assert binary.out_activation_ == "logistic" and binary.n_outputs_ == 1
    assert binary.predict_proba(X).shape == (120, 2)
    np.testing.assert_allclose(binary.predict_proba(X).sum(axis=1), 1.0)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_multilabel_and_multi_output():
    X, Y = make_multilabel_classification(n_samples=80, n_features=5, n_classes=4, random_state=0)
    clf = small(MLPClassifier).fit(X, Y)
    assert clf.out_activation_ == "logistic" and clf.n_outputs_ == 4
    assert clf.predict(X).shape == (80, 4) and set(np.unique(clf.predict(X))) <= {0, 1}
    P = clf.predict_proba(X)
    assert P.shape == (80, 4) and ((P > 0) & (P < 1)).all()
    assert clf.score(X, Y) > 0.2  # subset accuracy

    X, Y = make_regression(n_samples=80, n_features=5, n_targets=3, random_state=0)
    Xs, Y = StandardScaler().fit_transform(X), Y / 100
    reg = small(MLPRegressor, max_iter=200).fit(Xs, Y)
    P = reg.predict(Xs)  # the inputs it was trained on: scaled
    assert P.shape == (80, 3) and reg.n_outputs_ == 3
    assert (r2_score(Y, P, multioutput="raw_values") > 0.95).all()  # each output learned, not one broadcast
    # scikit-learn's own MLPRegressor with the same settings predicts the same (float32 rounding apart)
    sk = small(SkMLPRegressor, max_iter=200).fit(Xs, Y)
    np.testing.assert_allclose(P, sk.predict(Xs), atol=1e-5 * np.abs(Y).max())


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_early_stopping_keeps_the_best_weights(blobs):
    X, y = blobs
    est = small(MLPClassifier, early_stopping=True, n_iter_no_change=3, max_iter=200).fit(X, y)
    assert est.best_loss_ is None and len(est.validation_scores_) == est.n_iter_
    assert est.best_validation_score_ == max(est.validation_scores_)
    with pytest.raises(ValueError, match="early_stopping"):
        est.partial_fit(X, y)


BAD = [
    ("hidden_layer_sizes", (3, 0), ValueError),
    ("hidden_layer_sizes", "3", TypeError),
    ("activation", "softmax", ValueError),
    ("solver", "rmsprop", ValueError),
    ("alpha", -1.0, ValueError),
    ("alpha", "big", TypeError),
    ("batch_size", 0, ValueError),
    ("batch_size", "all", ValueError),
    ("learning_rate", "step", ValueError),
    ("learning_rate_init", 0.0, ValueError),
    ("power_t", -0.5, ValueError),
    ("max_iter", 0, ValueError),
    ("max_iter", 2.5, TypeError),
    ("shuffle", "yes", TypeError),
    ("random_state", "seed", ValueError),
    ("tol", -1e-3, ValueError),
    ("verbose", -1, ValueError),
    ("warm_start", None, TypeError),
    ("momentum", 1.5, ValueError),
    ("nesterovs_momentum", 1, TypeError),
    ("early_stopping", "no", TypeError),
    ("validation_fraction", 1.0, ValueError),
    ("beta_1", 1.0, ValueError),
    ("beta_2", -0.1, ValueError),
    ("epsilon", 0.0, ValueError),
    ("n_iter_no_change", 0, ValueError),
    ("n_iter_no_change", 2.5, ValueError),
    ("grad", "numeric", ValueError),
    ("max_fun", 0, ValueError),
    ("max_fun", 2.5, TypeError),
    # no real hyperparameter takes ±inf (scikit-learn's intervals leave inf out too)
    ("learning_rate_init", np.inf, ValueError),
    ("alpha", np.inf, ValueError),
    ("power_t", np.inf, ValueError),
    ("tol", np.inf, ValueError),
    ("epsilon", np.inf, ValueError),
    ("momentum", -np.inf, ValueError),
]


@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
@pytest.mark.parametrize(("param", "value", "error"), BAD, ids=[f"{p}={v!r}" for p, v, _ in BAD])
def test_bad_parameters_raise_at_fit_naming_the_parameter(cls, param, value, error):
    est = cls(**{param: value})  # __init__ only stores (scikit-learn's convention)
    assert est.get_params()[param] == value
    with pytest.raises(error, match=f"`{param}`"):
        est.fit([[0.0], [1.0]], [0, 1])


def test_regressor_loss_is_checked():
    with pytest.raises(ValueError, match="`loss`.*'squared_error', 'poisson'"):
        MLPRegressor(loss="huber").fit([[0.0], [1.0]], [0, 1])
    with pytest.raises(ValueError, match="`y` must be non-negative for loss='poisson'"):
        MLPRegressor(loss="poisson").fit([[0.0], [1.0]], [0.0, -1.0])


# ---- 6. L-BFGS -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits
    from sklearn.preprocessing import MinMaxScaler

    X, y = load_digits(n_class=3, return_X_y=True)
    return MinMaxScaler().fit_transform(X[:150]), y[:150]


def test_lbfgs_reaches_sklearns_solution(digits):
    """Same start, same objective, scipy's stopping rules: optax's L-BFGS stops where scipy's does (here at the
    same iteration), at the same loss to ~1e-9, in float64."""
    X, y = digits
    kw = {"solver": "lbfgs", "hidden_layer_sizes": (20,), "activation": "tanh", "random_state": 1, "max_iter": 150}
    a, b = MLPClassifier(**kw).fit(X, y), SkMLPClassifier(**kw).fit(X, y)
    assert a.n_iter_ == b.n_iter_ and a.t_ == b.t_ == 0
    assert a.loss_ == pytest.approx(b.loss_, rel=1e-6)
    np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(X), atol=1e-4)
    for name in ("loss_curve_", "best_loss_", "validation_scores_", "best_validation_score_", "_optimizer"):
        assert hasattr(b, name) == hasattr(a, name) == False  # noqa: E712  scikit-learn sets none of them for lbfgs
    assert not hasattr(a, "partial_fit") and not hasattr(MLPRegressor(solver="lbfgs"), "partial_fit")
    assert hasattr(MLPClassifier(solver="sgd"), "partial_fit")


@pytest.mark.parametrize("classifier", [True, False], ids=["classifier", "regressor"])
def test_lbfgs_objective_is_sklearns(x64, classifier):
    """The loss reported at the end is scikit-learn's objective at the fitted weights (sample weights and the L2
    term alpha/(2 Σw)·Σ‖W‖² included; the regressor's squared error a mean over its outputs), and the
    run converges (no warning; scipy stops this flat problem on ftol too)."""
    rng = np.random.default_rng(0)
    X, sw = rng.normal(size=(30, 4)), rng.uniform(0.5, 2.0, 30)
    if classifier:
        y, cls, sk = rng.integers(0, 3, 30), MLPClassifier, SkMLPClassifier
    else:
        y, cls, sk = rng.normal(size=(30, 2)), MLPRegressor, SkMLPRegressor
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # converged: on gtol or, as scipy does here, on ftol
        est = cls(solver="lbfgs", hidden_layer_sizes=(5,), alpha=0.5, max_iter=500, random_state=0).fit(X, y, sw)
    assert 1 < est.n_iter_ < 500
    ref = sk(solver="lbfgs", hidden_layer_sizes=(5,), alpha=0.5)
    ref.coefs_, ref.intercepts_, ref.n_layers_, ref.out_activation_ = est.coefs_, est.intercepts_, 3, est.out_activation_
    T = np.eye(3)[y] if classifier else y
    L = 2
    loss = ref._backprop(X, T, sw, [X] + [None] * L, [None] * L, [None] * L, [None] * L)[0]
    assert est.loss_ == pytest.approx(loss, rel=1e-12)


@pytest.mark.parametrize(
    ("limit", "message"),
    [({"max_iter": 3}, "TOTAL NO. OF ITERATIONS REACHED LIMIT"), ({"max_fun": 4}, "F,G EVALUATIONS EXCEEDS LIMIT")],
)
def test_lbfgs_limits_warn_in_sklearns_words(digits, limit, message):
    X, y = digits
    est = MLPClassifier(solver="lbfgs", hidden_layer_sizes=(20,), activation="tanh", random_state=1, **limit)
    with pytest.warns(ConvergenceWarning, match=rf"lbfgs failed to converge after \d+ iteration\(s\) \(status=1\):\n.*{message}"):
        est.fit(X, y)
    assert est.n_iter_ <= limit.get("max_iter", limit.get("max_fun"))


def test_lbfgs_manual_and_autodiff_agree(digits):
    X, y = digits
    kw = {"solver": "lbfgs", "hidden_layer_sizes": (10,), "activation": "logistic", "random_state": 0, "max_iter": 40}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a, b = MLPClassifier(grad="manual", **kw).fit(X, y), MLPClassifier(grad="autodiff", **kw).fit(X, y)
    assert a.n_iter_ == b.n_iter_
    for p, q in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        np.testing.assert_allclose(p, q, rtol=1e-6, atol=1e-9)


def test_lbfgs_integer_sample_weights_equal_repeated_rows(digits):
    X, y = digits
    w = np.random.default_rng(0).integers(0, 3, len(y))
    kw = {"solver": "lbfgs", "hidden_layer_sizes": (6,), "random_state": 0, "max_iter": 30}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a = MLPClassifier(**kw).fit(X, y, sample_weight=w)
        b = MLPClassifier(**kw).fit(np.repeat(X, w, axis=0), np.repeat(y, w))
    assert a.n_iter_ == b.n_iter_
    np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(X), atol=1e-8)


def test_lbfgs_refits_reuse_one_compiled_program(digits, monkeypatch):
    from fnn.train import lbfgs

    X, y = digits
    calls = []
    real = lbfgs.minimize
    monkeypatch.setattr(lbfgs, "minimize", lambda plan, p, x, *a, **k: calls.append((plan, x.shape)) or real(plan, p, x, *a, **k))
    est = MLPClassifier(solver="lbfgs", hidden_layer_sizes=(7,), random_state=0, max_iter=20)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        GridSearchCV(est, {"alpha": [1e-4, 1e-2]}, cv=3).fit(X, y)  # 6 fits on 100 rows and a refit on 150
    assert len(calls) == 7 and len(set(calls[:6])) == 1  # one plan; 100 rows padded to 128, the refit's 150 to 192
    assert calls[0][1][0] == 128 and calls[6][1][0] == 192 and calls[0][0] == calls[6][0]
    # one compilation per bucket: the 6 fits on 128 rows compiled once (both buckets use one jitted function here)
    jitted = {lbfgs.compiled(*c) for c in calls}
    assert sum(f._cache_size() for f in jitted) == 2


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_poisson_regressor_is_sklearns(x64):
    rng = np.random.default_rng(0)
    X = rng.uniform(0, 1, (60, 2))
    y = rng.poisson(np.exp(X @ [1.0, -0.5] + 0.5))
    kw = {"loss": "poisson", "hidden_layer_sizes": (4,), "solver": "sgd", "max_iter": 8, "batch_size": 16, "random_state": 0}
    a, b = MLPRegressor(**kw).fit(X, y), SkMLPRegressor(**kw).fit(X, y)
    assert a.out_activation_ == b.out_activation_ == "exp"
    np.testing.assert_allclose(a.loss_curve_, b.loss_curve_, rtol=1e-12)
    np.testing.assert_allclose(a.predict(X), b.predict(X), rtol=1e-10)


def test_optimizer_learning_rate_is_the_current_rate(blobs):
    X, y = blobs
    est = small(MLPClassifier, solver="sgd", learning_rate="invscaling", power_t=0.25, max_iter=1, warm_start=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
        est.fit(X, y)
    assert est._optimizer.learning_rate == est.learning_rate_init / (240 + 1) ** 0.25  # t_ = 240 samples seen
    with pytest.raises(AttributeError, match="_optimizer"):
        MLPClassifier()._optimizer  # noqa: B018


def test_fnn_own_activations_and_int_hidden_size(blobs):
    X, y = blobs
    for act in ("leaky_relu", "elu", "gelu", "softplus", "sigmoid"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est = small(MLPClassifier, activation=act, hidden_layer_sizes=8, max_iter=2).fit(X, y)
        out = np.asarray(est.net_.apply(est.params_, jnp.asarray(X, jnp.float32)))
        np.testing.assert_allclose(out, est.predict_proba(X), atol=1e-5)


def test_n_iter_no_change_inf_runs_every_epoch(blobs):
    X, y = blobs
    with pytest.warns(ConvergenceWarning, match=r"Maximum iterations \(4\)"):
        est = small(MLPClassifier, tol=10.0, n_iter_no_change=np.inf, max_iter=4).fit(X, y)
    assert est.n_iter_ == 4
    # the first epoch improves on best_loss_ = inf; epochs 2 and 3 do not by tol: the count exceeds 1 after epoch 3
    est = small(MLPClassifier, tol=10.0, n_iter_no_change=1, max_iter=4).fit(X, y)
    assert est.n_iter_ == 3


def test_verbose_prints_sklearns_lines(blobs, capsys):
    X, y = blobs
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        small(MLPClassifier, max_iter=2, verbose=True).fit(X, y)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[0].startswith("Iteration 1, loss = ")


def test_missing_sklearn_says_how_to_install(monkeypatch):
    monkeypatch.delitem(sys.modules, "fnn.sklearn")
    monkeypatch.setitem(sys.modules, "sklearn", None)
    with pytest.raises(ImportError, match="pip install scikit-learn"):
        __import__("fnn.sklearn")


@pytest.mark.slow
def test_import_fnn_does_not_import_sklearn():
    code = "import sys, fnn; assert 'fnn.sklearn' not in sys.modules and 'sklearn' not in sys.modules, sorted(sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize(
    "solver_kw", [{"solver": "adam", "tol": 0.02}, {"solver": "sgd", "learning_rate": "adaptive", "tol": 0.05}]
)
def test_chunk_boundaries_and_an_early_stop_change_nothing(blobs, monkeypatch, solver_kw):
    # Chunks of 3 epochs against chunks of 32: the same fit, stop and RandomState, then a warm-started refit
    X, y = blobs
    X = (X - X.mean(0)) / X.std(0)
    runs = []
    for chunk in (32, 3):
        monkeypatch.setattr(engine, "CHUNK", chunk)
        est = small(MLPClassifier, n_iter_no_change=4, warm_start=True, **solver_kw)
        est.fit(X, y)
        first = (est.n_iter_, list(est.loss_curve_), [c.copy() for c in est.coefs_])
        est.fit(X, y)  # continues from the weights and the RandomState the first fit left
        runs.append((first, est.n_iter_, list(est.loss_curve_), [c.copy() for c in est.coefs_], est._learning_rate))
    (f32, n32, lc32, c32, lr32), (f3, n3, lc3, c3, lr3) = runs
    assert f32[0] == f3[0] < 60  # the stopping rule fired inside a chunk, at the same epoch
    assert f32[1] == f3[1] and lc32 == lc3 and n32 == n3 and lr32 == lr3
    for a, b in zip(f32[2] + c32, f3[2] + c3):
        np.testing.assert_array_equal(a, b)


def test_ctrl_c_during_fit_keeps_the_chunks_that_finished(blobs, monkeypatch):
    X, y = blobs
    X = (X - X.mean(0)) / X.std(0)
    real = engine.advance
    calls = []

    def interrupting(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(engine, "advance", interrupting)
    monkeypatch.setattr(engine, "CHUNK", 32)
    est = small(MLPClassifier, max_iter=100, tol=0.0)
    with pytest.warns(UserWarning, match="Training interrupted by user"):
        est.fit(X, y)
    assert est.n_iter_ == 32 and len(est.loss_curve_) == 32  # the first chunk's epochs, kept
    assert est.score(X, y) > 0.5  # trained weights, not the initial ones


def test_sample_weight_is_checked_as_sklearn_checks_it():
    # the one private scikit-learn function fnn calls (no public equivalent), isolated in check_sample_weight
    X = np.zeros((4, 2))
    np.testing.assert_array_equal(check_sample_weight(None, X), np.ones(4))
    np.testing.assert_array_equal(check_sample_weight(2.0, X), np.full(4, 2.0))
    with pytest.raises(ValueError, match="Negative values in data passed to `sample_weight`"):
        check_sample_weight(np.array([1.0, -1.0, 1.0, 1.0]), X)
    with pytest.raises(ValueError, match=r"sample_weight.shape == \(3,\), expected \(4,\)"):
        check_sample_weight(np.ones(3), X)


def test_a_diverging_fit_raises_sklearns_error_and_keeps_finite_weights(blobs):
    X, y = blobs
    est = small(MLPRegressor, solver="sgd", learning_rate_init=1e6, momentum=0.0, max_iter=20)
    with pytest.raises(ValueError, match="Solver produced non-finite parameter weights"):
        est.fit(X * 1e3, y.astype(float))
    assert all(np.isfinite(c).all() for c in est.coefs_ + est.intercepts_)  # the last finite step's weights
    assert est.n_iter_ < 20


VERBOSE_RUNS = [
    {"solver": "sgd", "learning_rate": "adaptive", "tol": 0.05, "n_iter_no_change": 1},
    {"solver": "adam", "early_stopping": True, "n_iter_no_change": 2, "learning_rate_init": 0.05},
    {"solver": "sgd", "learning_rate": "adaptive", "early_stopping": True, "tol": 0.05, "n_iter_no_change": 1},
]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("kw", VERBOSE_RUNS, ids=["sgd-adaptive", "adam-early-stopping", "sgd-adaptive-early-stopping"])
def test_verbose_output_is_sklearns_line_for_line(x64, kw, capsys):
    """The plateau rule (in the graph, or on the host for early stopping) fires where scikit-learn's does:
    every line printed — losses, validation scores, 'Setting learning rate to', 'Stopping.' — is the same."""
    X, y = make_classification(n_samples=80, n_features=4, n_informative=3, n_redundant=0, n_classes=3, random_state=0)
    outs = []
    for cls in (MLPClassifier, SkMLPClassifier):
        cls(hidden_layer_sizes=(6,), random_state=3, verbose=True, batch_size=16, max_iter=60, **kw).fit(X, y)
        outs.append(capsys.readouterr().out.splitlines())
    assert outs[0] == outs[1]
    assert any("Setting learning rate to" in line for line in outs[0]) == (kw["solver"] == "sgd")
    assert outs[0][-1].endswith("Stopping.")
