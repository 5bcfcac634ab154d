"""Early stopping's monitor and minimum improvement (issue 25, item 4): the rule against Keras's, written
out here and run on the history of the same training without early stopping; one compiled program for
any patience and min_delta; the 0.2.0 keyword."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import fnn
from fnn.train import _loop


def _keras(values, mode, patience, min_delta):
    """Keras's EarlyStopping(restore_best_weights=True) on a list of per-epoch values: (epochs run, best epoch)."""
    best, best_epoch, wait = (np.inf if mode == "min" else -np.inf), -1, 0
    for epoch, v in enumerate(values):
        improved = v < best - min_delta if mode == "min" else v > best + min_delta
        if improved:
            best, best_epoch, wait = v, epoch, 0
        else:
            wait += 1
            if wait >= patience:
                return epoch + 1, best_epoch
    return len(values), best_epoch


@pytest.fixture(scope="module")
def problem():
    x, y = fnn.datasets.spirals(jax.random.key(3), 240, noise=0.3)
    n = 160
    net = fnn.MLP((2, 16, int(jnp.max(y)) + 1), hidden="tanh", output="softmax")
    return net, (x[:n], y[:n]), (x[n:], y[n:])


def _run(problem, epochs=150, **kw):
    net, data, val = problem
    return fnn.fit(
        net,
        net.init(jax.random.key(0)),
        data,
        loss="cross_entropy",
        optimizer=optax.adam(0.02),
        epochs=epochs,
        batch_size=32,
        key=jax.random.key(1),
        validation=val,
        progress=False,
        **kw,
    )


@pytest.mark.parametrize(
    "monitor, patience, min_delta",
    [("val_loss", 5, 0.0), ("val_loss", 5, 0.01), ("val_accuracy", 4, 0.0), ("val_accuracy", 4, 0.02)],
)
def test_the_rule_is_keras_on_the_same_run(problem, monitor, patience, min_delta):
    _, full = _run(problem)  # no early stopping: every epoch's validation numbers
    want_epochs, want_best = _keras(list(full[monitor]), "min" if monitor == "val_loss" else "max", patience, min_delta)
    params, h = _run(problem, early_stopping=fnn.EarlyStopping(patience, monitor=monitor, min_delta=min_delta))
    assert want_epochs < 150, "the case must stop early to test the rule"
    assert (h["epochs_run"], h["best_epoch"]) == (want_epochs, want_best)
    assert h["stop_reason"] == "early_stopping"
    np.testing.assert_array_equal(h[monitor], full[monitor][:want_epochs])  # the same run up to the stop
    net, _, (xv, yv) = problem
    got = fnn.evaluate(net, params, xv, yv, loss="cross_entropy")  # the returned parameters are the best epoch's
    key = "loss" if monitor == "val_loss" else "accuracy"
    np.testing.assert_allclose(float(got[key]), full[monitor][want_best], rtol=1e-5)


def test_min_delta_stops_a_run_that_creeps(problem):
    """A run that keeps finding tiny gains goes on with min_delta 0 and stops early with a minimum improvement."""
    _, creeping = _run(problem, epochs=120, early_stopping=fnn.EarlyStopping(10))
    _, strict = _run(problem, epochs=120, early_stopping=fnn.EarlyStopping(10, min_delta=0.01))
    assert strict["epochs_run"] < creeping["epochs_run"]


def test_one_program_for_any_patience_and_min_delta(problem):
    calls = []
    real = _loop.compiled_runner

    def counting(cfg, many, guarded=False):
        calls.append(cfg)
        return real(cfg, many, guarded)

    _loop.compiled_runner, saved = counting, _loop.compiled_runner
    try:
        for es in (fnn.EarlyStopping(3), fnn.EarlyStopping(7, min_delta=0.05), fnn.EarlyStopping(2, min_delta=1e-4)):
            _run(problem, epochs=20, early_stopping=es)
    finally:
        _loop.compiled_runner = saved
    assert len(set(calls)) == 1  # one plan
    assert real(calls[0], False)._cache_size() == 1  # compiled once
    _run(problem, epochs=20, early_stopping=fnn.EarlyStopping(3, monitor="val_accuracy"))
    assert real(calls[0]._replace(monitor="val_accuracy"), False)._cache_size() == 1  # the other monitor: its own


def test_the_0_2_0_keyword_still_works(problem):
    with pytest.warns(DeprecationWarning, match=r"pass early_stopping=fnn.EarlyStopping\(4\)"):
        p_old, h_old = _run(problem, epochs=60, patience=4)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        p_new, h_new = _run(problem, epochs=60, early_stopping=fnn.EarlyStopping(4))
    np.testing.assert_array_equal(h_old["val_loss"], h_new["val_loss"])
    for a, b in zip(jax.tree.leaves(p_old), jax.tree.leaves(p_new)):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(TypeError, match="`early_stopping` and the deprecated `patience`"):
        _run(problem, epochs=5, patience=4, early_stopping=fnn.EarlyStopping(4))


@pytest.mark.parametrize(
    "make, error, match",
    [
        (lambda: fnn.EarlyStopping(0), ValueError, r"`early_stopping.patience` must be an int in \[1, 2147483647\], got 0"),
        (lambda: fnn.EarlyStopping(2.5), TypeError, "`early_stopping.patience` must be an int"),
        (
            lambda: fnn.EarlyStopping(3, monitor="loss"),
            ValueError,
            "`early_stopping.monitor` must be one of 'val_loss', 'val_accuracy', got str: 'loss'",
        ),
        (lambda: fnn.EarlyStopping(3, min_delta=-0.1), ValueError, "`early_stopping.min_delta` must be a finite number >= 0"),
        (lambda: fnn.EarlyStopping(3, min_delta=float("nan")), ValueError, "`early_stopping.min_delta`"),
    ],
)
def test_a_bad_record_is_named(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_accuracy_needs_labels_and_the_argument_a_record():
    net = fnn.MLP((2, 4, 1), hidden="tanh")
    x, y = jnp.ones((8, 2)), jnp.zeros((8, 1))
    kw = {"loss": "mse", "epochs": 3, "validation": (x, y), "progress": False}
    with pytest.raises(ValueError, match="'val_accuracy' needs class labels"):
        fnn.fit(net, net.init(jax.random.key(0)), (x, y), early_stopping=fnn.EarlyStopping(2, monitor="val_accuracy"), **kw)
    with pytest.raises(TypeError, match="`early_stopping` must be an fnn.EarlyStopping"):
        fnn.fit(net, net.init(jax.random.key(0)), (x, y), early_stopping=5, **kw)


def test_fit_many_watches_accuracy_per_network(problem):
    net, data, val = problem
    es = fnn.EarlyStopping(4, monitor="val_accuracy", min_delta=0.01)
    opt = optax.inject_hyperparams(optax.adam)(learning_rate=0.02)
    kw = {"loss": "cross_entropy", "optimizer": opt, "epochs": 150, "batch_size": 32, "validation": val, "progress": False}
    rates = jnp.array([0.02, 0.005])
    _, h = fnn.fit_many(net, data, key=jax.random.key(2), hyperparams={"learning_rate": rates}, early_stopping=es, **kw)
    for i in range(2):
        acc = h["val_accuracy"][i][: h["epochs_run"][i]]
        want = _keras(list(acc), "max", 4, 0.01)
        assert (int(h["epochs_run"][i]), int(h["best_epoch"][i])) == want
