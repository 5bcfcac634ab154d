"""fnn.sweep (fnn.ensemble in 0.1): fit_many's stacked results used as a researcher uses them, each checked against the
same thing computed one network at a time."""

import sys
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from _helpers import tree_rel_err

import fnn
from fnn import sweep

X = jnp.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
Y = jnp.array([0, 1, 1, 0])
NET = fnn.MLP((2, 6, 2), hidden="relu", output="softmax")
RATES = jnp.array([0.05, 0.5, 1e30])  # the last one diverges


def _fit_many(**kw):
    """fit_many of NET on XOR, validated on the same points, learning rate 0.1 unless hyperparams say otherwise."""
    opt = optax.inject_hyperparams(optax.sgd)(learning_rate=0.1)
    return fnn.fit_many(NET, (X, Y), loss="cross_entropy", optimizer=opt, validation=(X, Y), progress=False, **kw)


@pytest.fixture(scope="module")
def trained():
    # 3 rates x 2 seeds
    return _fit_many(epochs=60, key=jax.random.key(0), hyperparams={"learning_rate": jnp.repeat(RATES, 2)})


def test_network_i_is_ordinary_params(trained):
    ps, _ = trained
    assert sweep.size(NET, ps) == 6
    for i in (0, 3, -1):
        p = sweep.network(NET, ps, i)
        fnn._checks.check_params(NET, p)  # ordinary params: every fnn entry point takes them
        assert all(np.array_equal(p[l][k], ps[l][k][i]) for l in range(2) for k in ("W", "b"))
    with pytest.raises(IndexError, match="`i` = 6 is out of range for 6 stacked networks"):
        sweep.network(NET, ps, 6)
    with pytest.raises(TypeError, match="`i` must be an int"):
        sweep.network(NET, ps, 1.0)


def test_evaluate_all_equals_evaluate_each(trained):
    ps, h = trained
    m = sweep.evaluate_all(NET, ps, X, Y, loss="cross_entropy")
    assert m["loss"].shape == m["accuracy"].shape == (6,)
    for i in range(6):
        one = fnn.evaluate(NET, sweep.network(NET, ps, i), X, Y, loss="cross_entropy")
        np.testing.assert_allclose(float(m["loss"][i]), float(one["loss"]), rtol=1e-6)
        np.testing.assert_equal(float(m["accuracy"][i]), float(one["accuracy"]))  # NaN for a network whose outputs are NaN
    assert tree_rel_err(m["loss"][:2], jnp.asarray(h["val_loss"][:2, -1])) <= 1e-5  # validation = the same points


def test_best_chooses_by_the_final_metric_and_never_a_diverged_network(trained):
    ps, h = trained
    assert h["diverged"].tolist() == [False, False, False, False, True, True]
    i, p = sweep.best(NET, ps, h)  # default: the lowest final val_loss
    final = np.array([h["val_loss"][j, h["epochs_run"][j] - 1] for j in range(6)])
    assert i == int(np.nanargmin(np.where(h["diverged"], np.nan, final))) and i in (2, 3)  # lr 0.5 learns XOR
    assert all(np.array_equal(p[l][k], ps[l][k][i]) for l in range(2) for k in ("W", "b"))
    j, _ = sweep.best(NET, ps, h, "val_accuracy")  # accuracies are maximised
    acc = np.where(h["diverged"], np.nan, h["val_accuracy"][np.arange(6), h["epochs_run"] - 1])
    assert acc[j] == np.nanmax(acc)
    with pytest.raises(ValueError, match="`metric` 'test_loss' is not in this history; it has"):
        sweep.best(NET, ps, h, "test_loss")
    with pytest.raises(ValueError, match="`mode` must be 'min' or 'max'"):
        sweep.best(NET, ps, h, mode="lowest")


def test_grid_is_the_seeds_by_rates_layout(trained):
    _, h = trained
    g = sweep.grid(h, (3, 2))
    assert g["loss"].shape == (3, 2, 60) and g["diverged"].shape == (3, 2) and g["stop_reason"].shape == (3, 2)
    for i in range(6):
        r, s = np.unravel_index(i, (3, 2))
        np.testing.assert_array_equal(g["loss"][r, s], h["loss"][i])
        assert g["stop_reason"][r, s] == h["stop_reason"][i]
    assert g["diverged"][2].all() and not g["diverged"][:2].any()  # the rate is the first axis
    with pytest.raises(ValueError, match="whose product is the 6 networks"):
        sweep.grid(h, (4, 2))


def test_stacked_params_passed_where_one_network_is_expected_get_a_pointer(trained):
    ps, _ = trained
    with pytest.raises(ValueError, match=r"stacked parameters of 6 networks.*fnn\.sweep\.network"):
        fnn.evaluate(NET, ps, X, Y, loss="cross_entropy")


def test_best_under_early_stopping_scores_the_returned_parameters():
    """With patience, fit_many returns each network's best-epoch parameters: best() scores that epoch."""
    ps, h = _fit_many(epochs=40, key=jax.random.key(1), num_networks=3, patience=3)
    i, p = sweep.best(NET, ps, h)
    at_best = np.array([h["val_loss"][j, h["best_epoch"][j]] for j in range(3)])
    assert i == int(np.argmin(at_best))
    m = fnn.evaluate(NET, p, X, Y, loss="cross_entropy")  # the returned parameters give that validation loss
    np.testing.assert_allclose(float(m["loss"]), at_best[i], rtol=1e-5)


def test_the_0_1_names_still_work_with_a_deprecation_warning():
    import importlib

    with pytest.warns(DeprecationWarning, match=r"`fnn\.ensemble` moved to `fnn\.analysis\.sweep`"):
        old = fnn.ensemble
    assert old is sweep
    with pytest.warns(DeprecationWarning, match=r"`fnn\.sweep\.evaluate_all`"):
        assert old.evaluate is sweep.evaluate_all
    for name, new in [("fnn.mlp", "fnn.core.mlp"), ("fnn.gradcheck", "fnn.check.gradcheck"), ("fnn.products", "fnn.core.layer")]:
        sys.modules.pop(name, None)
        with pytest.warns(DeprecationWarning, match=rf"`{name}` moved to `{new}`"):
            assert importlib.import_module(name) is importlib.import_module(new)  # the same module: one copy
    with warnings.catch_warnings():  # a path that names a module fnn still offers at the top level: silent
        warnings.simplefilter("error")
        sys.modules.pop("fnn.datasets", None)
        assert importlib.import_module("fnn.datasets") is fnn.datasets
        from fnn.checkpoint import save  # noqa: F401
