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
    ps, h = _fit_many(epochs=40, key=jax.random.key(1), num_networks=3, early_stopping=fnn.EarlyStopping(3))
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


# ---- paired sweeps: seeds shared across a hyperparameter grid, settings chosen by their mean over seeds ----


def test_paired_grid_lays_out_settings_times_seeds_in_fit_many_order():
    g = sweep.paired_grid(seeds=3, learning_rate=[0.01, 0.1], momentum=[0.0, 0.5, 0.9])
    assert g.shape == (2, 3, 3) and g.size == 18 and g.settings == 6 and g.names == ("learning_rate", "momentum")
    hp = g.hyperparams
    assert set(hp) == {"learning_rate", "momentum"} and all(v.shape == (18,) for v in hp.values())
    for i in range(18):  # network i sits at np.unravel_index(i, shape): the hyperparameters' axes, then the seed
        a, m, s = np.unravel_index(i, g.shape)
        assert (hp["learning_rate"][i], hp["momentum"][i], g.seed[i]) == ([0.01, 0.1][a], [0.0, 0.5, 0.9][m], s)
    # the layout of `jnp.repeat(rates, seeds)`, which the README and `grid` use
    one = sweep.paired_grid(seeds=4, learning_rate=RATES[:2])
    np.testing.assert_array_equal(one.hyperparams["learning_rate"], np.repeat(np.asarray(RATES[:2]), 4))
    assert g.setting(4) == g.setting((1, 1)) == {"learning_rate": 0.1, "momentum": 0.5}
    assert g.networks(4) == g.networks((1, 1)) == (12, 13, 14)
    assert all(hp["learning_rate"][i] == 0.1 and hp["momentum"][i] == 0.5 for i in g.networks(4))
    assert repr(one) == "Grid(learning_rate=[0.05000000074505806, 0.5], seeds=4: 8 networks)"  # float32 values kept
    with pytest.raises(ValueError, match="read-only"):
        g.values[0][0] = 1.0


def test_paired_params_share_a_seeds_starting_weights_bitwise_across_settings():
    g = sweep.paired_grid(seeds=4, learning_rate=[0.01, 0.1, 0.3])
    net = fnn.MLP((3, 5, 4, 2), hidden="tanh", output="softmax")
    ps = sweep.paired_params(net, jax.random.key(7), g)
    assert sweep.size(net, ps) == 12
    draws = net.init_stacked(jax.random.key(7), 4)  # seed s is net.init(split(key, 4)[s]), bitwise
    for i in range(12):
        s = int(g.seed[i])
        for l in range(3):
            for k in ("W", "b"):
                assert np.array_equal(ps[l][k][i], draws[l][k][s])
    for i in range(12):
        for j in range(12):
            same = np.array_equal(ps[0]["W"][i], ps[0]["W"][j])
            assert same == (g.seed[i] == g.seed[j]), (i, j)  # same seed: equal; another seed: different
    low = sweep.paired_params(net, jax.random.key(7), g, jnp.bfloat16)  # dtype as for net.init
    assert low[0]["W"].dtype == jnp.bfloat16 and low[0]["W"].shape == (12, 5, 3)


def test_a_paired_grids_rows_are_comparable_where_fit_manys_own_draw_is_not():
    """Full-batch training: the first epoch's loss is that of the starting weights, so it shows what each network
    started from. Paired, every rate of a seed starts from the same loss (bitwise) and seeds differ; with
    fit_many's own draw (the complaint), network 0 and network 2 (same seed, another rate) start apart."""
    g = sweep.paired_grid(seeds=2, learning_rate=[0.05, 0.5, 2.0])
    ps0 = sweep.paired_params(NET, jax.random.key(3), g)
    _, h = _fit_many(epochs=5, key=jax.random.key(0), params=ps0, hyperparams=g.hyperparams)
    first = sweep.grid(h, g)["loss"][..., 0]  # (rates, seeds)
    assert first.shape == (3, 2)
    assert (first == first[0]).all(), first  # each column (seed) holds one starting loss for every rate
    assert first[0, 0] != first[0, 1]
    final = sweep.grid(h, g)["loss"][..., -1]
    assert np.isfinite(final).all() and not (final == final[0]).all()  # the rates did train differently
    _, unpaired = _fit_many(epochs=5, key=jax.random.key(0), hyperparams=g.hyperparams)
    loose = sweep.grid(unpaired, (3, 2))["loss"][..., 0]
    assert not (loose == loose[0]).all()


def _history(val_loss, diverged=None):
    """A fit_many-shaped history by hand: ``val_loss`` (N, epochs), every network ran every epoch."""
    v = np.asarray(val_loss, np.float64)
    h = {"val_loss": v, "epochs_run": np.full(v.shape[0], v.shape[1]), "stop_reason": ["epochs"] * v.shape[0]}
    if diverged is not None:
        h["diverged"] = np.asarray(diverged, bool)
    return h


def test_best_setting_takes_the_best_mean_over_seeds_not_the_luckiest_network():
    g = sweep.paired_grid(seeds=3, learning_rate=[0.01, 0.1, 0.3])
    # final val_loss: rate 0.01 holds the single best network (0.05) but a poor mean; rate 0.1 the best mean
    final = [0.05, 0.90, 0.85, 0.30, 0.31, 0.29, 0.50, 0.40, 0.60]
    h = _history(np.stack([np.full(9, 9.0), final], 1))  # (9, 2): the last epoch counts
    i, _ = sweep.best(NET, _stacked(9), h)
    assert i == 0  # best(): the lucky network
    s = sweep.best_setting(h, g)
    assert s.hyperparams == {"learning_rate": 0.1} and s.index == (1,) and s.networks == (3, 4, 5)
    np.testing.assert_array_equal(s.values, [0.30, 0.31, 0.29])
    assert s.score == s.mean == pytest.approx(0.30) and s.median == pytest.approx(0.30)
    assert s.std == pytest.approx(np.std([0.30, 0.31, 0.29], ddof=1)) and (s.min, s.max) == (0.29, 0.31)
    np.testing.assert_allclose(s.scores, [np.mean(final[:3]), 0.30, 0.50])
    assert (s.metric, s.reduce, s.mode) == ("val_loss", "mean", "min")
    assert str(s) == (
        "learning_rate=0.1: val_loss mean 0.3 ± 0.01 (std over 3 seeds), median 0.3, min 0.29, max 0.31; "
        "chosen by the mean; networks [3, 4, 5]"
    )
    # the median is robust to one bad seed: rate 0.01's median (0.85) still loses, rate 0.3's 0.50 too
    med = sweep.best_setting(h, g, reduce="median")
    assert med.networks == (3, 4, 5) and med.score == pytest.approx(0.30)
    # where mean and median disagree: one outlier seed sinks a setting's mean but not its median
    h2 = _history(np.array([[0.10], [0.11], [5.0], [0.20], [0.21], [0.22], [1.0], [1.0], [1.0]]))
    assert sweep.best_setting(h2, g).hyperparams == {"learning_rate": 0.1}
    assert sweep.best_setting(h2, g, reduce="median").hyperparams == {"learning_rate": 0.01}
    # accuracies are maximised
    accuracies = np.array([0.9, 0.9, 0.9, 1.0, 0.5, 0.5, 0.6, 0.6, 0.6])[:, None]  # rate 0.1 holds the single best
    acc = {**_history(np.zeros((9, 1))), "val_accuracy": accuracies}
    assert sweep.best_setting(acc, g, "val_accuracy").hyperparams == {"learning_rate": 0.01}


def _stacked(n):
    return NET.init_stacked(jax.random.key(0), n)


def test_best_setting_never_takes_a_setting_with_a_diverged_seed():
    g = sweep.paired_grid(seeds=2, learning_rate=[0.5, 2.0])
    h = _history(np.array([[0.40], [0.42], [0.01], [0.02]]), diverged=[False, False, False, True])
    s = sweep.best_setting(h, g)  # rate 2.0 would win, but one of its seeds diverged
    assert s.hyperparams == {"learning_rate": 0.5} and np.isnan(s.scores[1])
    h_nan = _history(np.array([[0.40], [0.42], [0.01], [np.nan]]))  # a NaN without the flag: the same
    assert sweep.best_setting(h_nan, g).hyperparams == {"learning_rate": 0.5}
    with pytest.raises(ValueError, match="no setting has a finite final `history\\['val_loss'\\]` on every seed"):
        sweep.best_setting(_history(np.array([[0.4], [np.nan], [0.1], [0.2]]), diverged=[0, 0, 0, 1]), g)
    one = sweep.best_setting(_history(np.array([[0.4], [0.3]])), sweep.paired_grid(seeds=1, learning_rate=[0.1, 1.0]))
    assert one.networks == (1,) and np.isnan(one.std)  # one seed: no spread to report


def test_best_setting_on_a_real_paired_sweep_agrees_with_the_history_as_a_grid(trained):
    g = sweep.paired_grid(seeds=2, learning_rate=RATES)  # the fixture's layout: 3 rates x 2 seeds
    _, h = trained
    s = sweep.best_setting(h, g)
    final = sweep.grid(h, g)["val_loss"][..., -1]  # (3, 2)
    assert s.index == (int(np.nanargmin(np.where(sweep.grid(h, g)["diverged"].any(1), np.nan, final.mean(1)))),)
    assert np.isnan(s.scores[2])  # the diverging rate


def test_paired_sweep_bad_input_is_named():
    g = sweep.paired_grid(seeds=2, learning_rate=[0.1, 0.3])
    with pytest.raises(ValueError, match="at least one hyperparameter"):
        sweep.paired_grid(seeds=2)
    with pytest.raises(ValueError, match="`seeds`"):
        sweep.paired_grid(seeds=0, learning_rate=[0.1])
    with pytest.raises(TypeError, match="`seeds`"):
        sweep.paired_grid(seeds=2.0, learning_rate=[0.1])
    with pytest.raises(ValueError, match=r"`learning_rate` must be a non-empty 1-D sequence.*got shape \(\)"):
        sweep.paired_grid(seeds=2, learning_rate=0.1)
    with pytest.raises(ValueError, match=r"`learning_rate` must be a non-empty 1-D sequence.*got shape \(0,\)"):
        sweep.paired_grid(seeds=2, learning_rate=[])
    with pytest.raises(TypeError, match="`momentum` must hold real numbers, got dtype"):
        sweep.paired_grid(seeds=2, momentum=["high", "low"])
    with pytest.raises(TypeError, match="`momentum` must hold real numbers, got dtype bool"):
        sweep.paired_grid(seeds=2, momentum=[True, False])
    with pytest.raises(TypeError, match="`learning_rate` must be a 1-D sequence of numbers"):
        sweep.paired_grid(seeds=2, learning_rate=[[0.1], [0.2, 0.3]])
    with pytest.raises(ValueError, match="`learning_rate` must hold finite values"):
        sweep.paired_grid(seeds=2, learning_rate=[0.1, np.nan])
    with pytest.raises(TypeError, match=r"`grid` must be an fnn\.sweep\.Grid from paired_grid"):
        sweep.paired_params(NET, jax.random.key(0), (2, 2))
    with pytest.raises(TypeError, match="`key`"):
        sweep.paired_params(NET, 0, g)
    with pytest.raises(TypeError, match="`net` must be an fnn.MLP"):
        sweep.paired_params("net", jax.random.key(0), g)
    h = _history(np.zeros((6, 1)))
    with pytest.raises(ValueError, match=r"`history` holds 6 networks but `grid` lays out 4"):
        sweep.best_setting(h, g)
    h4 = _history(np.zeros((4, 1)))
    with pytest.raises(TypeError, match=r"`grid` must be an fnn\.sweep\.Grid"):
        sweep.best_setting(h4, (2, 2))
    with pytest.raises(ValueError, match="`reduce` must be 'mean' or 'median', got 'max'"):
        sweep.best_setting(h4, g, reduce="max")
    with pytest.raises(ValueError, match="`metric` 'val_accuracy' is not in this history"):
        sweep.best_setting(h4, g, "val_accuracy")
    with pytest.raises(ValueError, match="`mode` must be 'min' or 'max'"):
        sweep.best_setting(h4, g, mode="lowest")
    with pytest.raises(TypeError, match="`history` must be the history dict fit_many returns"):
        sweep.best_setting({"val_loss": np.zeros((4, 1))}, g)
    with pytest.raises(IndexError, match="setting `j` = 2 is out of range for the 2 settings"):
        g.setting(2)
    with pytest.raises(TypeError, match="setting `j` must be an int below 2 or a tuple of 1 ints"):
        g.networks("0")
