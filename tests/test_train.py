"""The training engine: steps, fit, stop rules, divergence guard, fit_many, per-example grads."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from _helpers import tree_rel_err

import fnn
from fnn import _loop

XOR_X = jnp.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
XOR_Y = jnp.array([0, 1, 1, 0])
NET = fnn.MLP((2, 8, 2), hidden="tanh", output="softmax")
OPT = optax.sgd(0.5)  # one object, so repeated fits reuse the compiled loop


def _regression(n=40, seed=0):
    x = jax.random.normal(jax.random.key(seed), (n, 2))
    return x, jnp.sin(x[:, :1]) * jnp.cos(x[:, 1:])


@pytest.mark.parametrize("grad", ["manual", "autodiff"])
@pytest.mark.parametrize(
    "net, loss, y",
    [
        (NET, "cross_entropy", XOR_Y),
        (fnn.MLP((2, 4, 1), hidden="tanh", output="sigmoid"), "bce", XOR_Y.astype(jnp.float32)),
    ],
)
def test_xor_is_learned(grad, net, loss, y):
    params, hist = fnn.fit(
        net,
        net.init(jax.random.key(0)),
        (XOR_X, y),
        loss=loss,
        optimizer=OPT,
        epochs=3000,
        grad=grad,
        validation=(XOR_X, y),
        tol=0.02,
        progress=False,
    )
    assert hist["val_accuracy"][-1] == 1.0
    assert hist["stop_reason"] == "tol" and hist["loss"][-1] < 0.02
    assert hist["epochs_run"] == hist["steps"] == len(hist["loss"]) < 3000
    out = net.apply(params, XOR_X)
    pred = jnp.argmax(out, -1) if loss == "cross_entropy" else (out[:, 0] > 0.5).astype(int)
    assert pred.tolist() == [0, 1, 1, 0]


def test_manual_and_autodiff_trajectories_agree(x64):
    net = fnn.MLP((2, 6, 6, 3), hidden="tanh", output="softmax")
    x = jax.random.normal(jax.random.key(1), (16, 2), jnp.float64)
    y = jnp.arange(16) % 3
    opt = optax.adam(0.05)
    states = {}
    for grad in ["manual", "autodiff"]:
        step = fnn.make_step(net, "cross_entropy", opt, grad=grad)
        state = step.init(net.init(jax.random.key(0), jnp.float64))
        for _ in range(100):
            state, _m = step(state, x, y)
        states[grad] = state
    assert int(states["manual"].step) == 100
    assert tree_rel_err(states["manual"].params, states["autodiff"].params) <= 1e-10


def test_step_default_optimizer_is_plain_gradient_descent(x64):
    net = fnn.MLP((2, 3, 1), hidden="tanh")
    params = net.init(jax.random.key(0), jnp.float64)
    x, y = _regression(8)
    x, y = x.astype(jnp.float64), y.astype(jnp.float64)
    step = fnn.make_step(net, "mse")
    state, m = step(step.init(params), x, y)
    _, g = fnn.manual_value_and_grad(net, "mse")(params, x, y)
    expected = jax.tree_util.tree_map(lambda p, d: p - 0.1 * d, params, g)
    assert tree_rel_err(state.params, expected) <= 1e-14
    np.testing.assert_allclose(m["grad_norm"], [np.linalg.norm(g[0]["W"]), np.linalg.norm(g[1]["W"])], rtol=1e-12)


def test_minibatches_cover_every_example():
    x, y = _regression(10)
    net = fnn.MLP((2, 4, 1), hidden="tanh")
    _, h = fnn.fit(
        net, net.init(jax.random.key(0)), (x, y), loss="mse", epochs=3, batch_size=4, key=jax.random.key(1), progress=False
    )
    assert h["steps"] == 3 * 3  # 4 + 4 + 2 per epoch: the partial batch is a step of its own
    _, h = fnn.fit(
        net,
        net.init(jax.random.key(0)),
        (x, y),
        loss="mse",
        epochs=3,
        batch_size=4,
        key=jax.random.key(1),
        drop_last=True,
        progress=False,
    )
    assert h["steps"] == 3 * 2


def test_shuffling_is_deterministic_per_key():
    x, y = _regression(32)
    net = fnn.MLP((2, 4, 1), hidden="tanh")
    run = lambda k: fnn.fit(
        net, net.init(jax.random.key(0)), (x, y), loss="mse", epochs=5, batch_size=8, key=jax.random.key(k), progress=False
    )
    (p1, h1), (p2, h2), (p3, _) = run(1), run(1), run(2)
    np.testing.assert_array_equal(h1["loss"], h2["loss"])
    assert tree_rel_err(p1, p2) == 0.0 and tree_rel_err(p1, p3) > 0


def test_early_stopping_restores_best_params():
    x, y = _regression(60)
    xv, yv = _regression(30, seed=5)
    net = fnn.MLP((2, 32, 32, 1), hidden="relu")
    params, h = fnn.fit(
        net,
        net.init(jax.random.key(0)),
        (x, y),
        loss="mse",
        optimizer=optax.adam(0.05),
        epochs=400,
        batch_size=10,
        key=jax.random.key(1),
        validation=(xv, yv),
        patience=10,
        progress=False,
    )
    assert h["stop_reason"] == "early_stopping"
    assert h["epochs_run"] == h["best_epoch"] + 11 < 400
    best = float(np.min(h["val_loss"]))
    assert float(h["val_loss"][h["best_epoch"]]) == best
    assert float(fnn.evaluate(net, params, xv, yv, loss="mse")["loss"]) == pytest.approx(best, rel=1e-5)
    assert float(h["val_loss"][-1]) > best  # the last epoch was worse: the returned params are not the last ones


def test_divergence_guard_keeps_last_finite_params():
    x, y = _regression(64)
    net = fnn.MLP((2, 8, 1), hidden="tanh")
    with pytest.raises(fnn.TrainingDiverged, match="training diverged in epoch") as info:
        fnn.fit(
            net,
            net.init(jax.random.key(0)),
            (x, y),
            loss="mse",
            optimizer=optax.sgd(5.0),
            epochs=100,
            batch_size=16,
            key=jax.random.key(1),
            progress=False,
        )
    err = info.value
    assert 0 <= err.epoch < 100 and err.history["stop_reason"] == "diverged"
    assert err.history["epochs_run"] == err.epoch + 1
    assert all(bool(jnp.all(jnp.isfinite(a))) for a in jax.tree_util.tree_leaves(err.params))
    assert np.isfinite(err.history["loss"][:-1]).all()


def _poisoned_sgd(learning_rate, poison_step):
    """SGD whose update at step ``poison_step`` (0-based) is NaN: a divergence at a known step."""

    def update(grads, state, params=None):
        scale = jnp.where(state["count"] == poison_step, jnp.nan, -learning_rate)
        return jax.tree_util.tree_map(lambda g: scale * g, grads), {"count": state["count"] + 1}

    return optax.GradientTransformation(lambda params: {"count": jnp.zeros((), jnp.int32)}, update)


def _reference_run(net, params, x, y, opt, batch, key, steps):
    """``steps`` steps of make_step in a Python loop, in fit's shuffled order: (params, batch losses, batch grad norms)."""
    step = fnn.make_step(net, "mse", opt)
    state, losses, norms, n = step.init(params), [], [], x.shape[0]
    for e in range(steps // (n // batch) + 1):
        perm = fnn.shuffle.permutation(jax.random.fold_in(key, e), n)
        for i in range(n // batch):
            if len(losses) == steps:
                return state.params, losses, norms
            idx = perm[i * batch : (i + 1) * batch]
            state, m = step(state, x[idx], y[idx])
            losses.append(float(m["loss"]))
            norms.append(np.asarray(m["grad_norm"]))
    return state.params, losses, norms


def test_grad_norms_are_recorded_on_request_as_the_mean_over_each_epochs_steps(x64):
    x, y = _regression(48)
    net = fnn.MLP((2, 5, 1), hidden="tanh")
    p0, key = net.init(jax.random.key(0), jnp.float64), jax.random.key(5)
    kw = {"loss": "mse", "optimizer": optax.sgd(0.1), "epochs": 4, "batch_size": 16, "key": key, "progress": False}
    p, h = fnn.fit(net, p0, (x, y), grad_norms=True, **kw)
    p_default, h_default = fnn.fit(net, p0, (x, y), **kw)
    assert "grad_norm" not in h_default and tree_rel_err(p_default, p) == 0.0  # the same training
    ref, losses, norms = _reference_run(net, p0, x, y, kw["optimizer"], 16, key, 12)
    assert tree_rel_err(p, ref) <= 1e-12
    np.testing.assert_allclose(h["grad_norm"], np.reshape(norms, (4, 3, 2)).mean(1), rtol=1e-12)
    np.testing.assert_allclose(h["loss"], np.reshape(losses, (4, 3)).mean(1), rtol=1e-12)


def test_a_diverged_run_keeps_the_parameters_of_its_last_finite_step(x64):
    """The fast loop meets the NaN at step 7 (epoch 2, batch 1 of 3) and leaves that epoch to the
    guarded program, compiled then and only then: the run keeps exactly the 7 finite steps."""
    x, y = _regression(48)
    net = fnn.MLP((2, 5, 1), hidden="tanh")
    p0, key = net.init(jax.random.key(0), jnp.float64), jax.random.key(5)
    opt = _poisoned_sgd(0.1, 7)
    before = _loop.compiled_runner.cache_info().misses
    with pytest.raises(fnn.TrainingDiverged) as info:
        fnn.fit(net, p0, (x, y), loss="mse", optimizer=opt, epochs=6, batch_size=16, key=key, progress=False)
    err = info.value
    assert _loop.compiled_runner.cache_info().misses == before + 2  # the fast program and the guarded one
    ref, losses, _ = _reference_run(net, p0, x, y, opt, 16, key, 7)
    assert err.epoch == 2 and err.history["steps"] == 7 and err.history["epochs_run"] == 3
    assert tree_rel_err(err.params, ref) <= 1e-12
    np.testing.assert_allclose(err.history["loss"], [np.mean(losses[:3]), np.mean(losses[3:6]), losses[6]], rtol=1e-12)


def test_one_diverging_network_leaves_the_others_as_they_are_alone(x64):
    """fit_many: network 2 diverges at step 7; every network, the diverged one included, equals its own fit."""
    x, y = _regression(48)
    net = fnn.MLP((2, 5, 1), hidden="tanh")
    start = jax.vmap(lambda k: net.init(k, jnp.float64))(jax.random.split(jax.random.key(3), 3))
    opt = optax.inject_hyperparams(_poisoned_sgd)(learning_rate=0.1, poison_step=-1)
    kw = {"loss": "mse", "epochs": 6, "batch_size": 16, "progress": False}
    ps, h = fnn.fit_many(
        net, (x, y), optimizer=opt, key=jax.random.key(4), params=start, hyperparams={"poison_step": jnp.array([-1, 11, 7])}, **kw
    )
    assert h["diverged"].tolist() == [False, True, True] and h["epochs_run"].tolist() == [6, 4, 3]
    assert h["steps"].tolist() == [18, 11, 7]
    shuffle_keys = jax.random.split(jax.random.split(jax.random.key(4))[1], 3)
    for i, poison in enumerate([-1, 11, 7]):
        p_i = jax.tree_util.tree_map(lambda a: a[i], start)
        one = optax.inject_hyperparams(_poisoned_sgd)(learning_rate=0.1, poison_step=poison)
        try:
            p, hi = fnn.fit(net, p_i, (x, y), optimizer=one, key=shuffle_keys[i], **kw)
        except fnn.TrainingDiverged as e:
            p, hi = e.params, e.history
        assert tree_rel_err([{k: v[i] for k, v in layer.items()} for layer in ps], p) <= 1e-12
        np.testing.assert_allclose(h["loss"][i, : hi["epochs_run"]], hi["loss"], rtol=1e-12)


def test_health_metrics():
    x, y = _regression(64)
    net = fnn.MLP((2, 16, 16, 1), hidden=("relu", "tanh"))
    _, h = fnn.fit(
        net,
        net.init(jax.random.key(0)),
        (x, y),
        loss="mse",
        epochs=5,
        batch_size=16,
        key=jax.random.key(1),
        health=True,
        progress=False,
    )
    assert h["dead_fraction"].shape == (5, 2) and h["saturated_fraction"].shape == (5, 2) and h["update_ratio"].shape == (5, 3)
    assert np.isfinite(h["dead_fraction"][:, 0]).all() and np.isnan(h["dead_fraction"][:, 1]).all()  # dead: relu only
    assert np.isnan(h["saturated_fraction"][:, 0]).all() and np.isfinite(h["saturated_fraction"][:, 1]).all()
    assert ((h["update_ratio"] > 0) & (h["update_ratio"] < 1)).all()
    assert h["grad_norm"].shape == (5, 3) and (h["grad_norm"] > 0).all()
    # a huge learning rate kills ReLU units
    _, h2 = fnn.fit(
        net,
        net.init(jax.random.key(0)),
        (x, y),
        loss="mse",
        optimizer=optax.sgd(1.0),
        epochs=5,
        batch_size=16,
        key=jax.random.key(1),
        health=True,
        progress=False,
    )
    assert h2["dead_fraction"][-1, 0] > h["dead_fraction"][-1, 0]


def test_fit_many_equals_separate_fits():
    x, y = _regression(24)
    net = fnn.MLP((2, 5, 1), hidden="tanh")
    key = jax.random.key(7)
    ps, hist = fnn.fit_many(
        net, (x, y), loss="mse", optimizer=OPT, epochs=20, batch_size=8, key=key, num_networks=8, progress=False
    )
    init_key, shuffle_key = jax.random.split(key)
    for i, (ki, ks) in enumerate(zip(jax.random.split(init_key, 8), jax.random.split(shuffle_key, 8))):
        p, h = fnn.fit(net, net.init(ki), (x, y), loss="mse", optimizer=OPT, epochs=20, batch_size=8, key=ks, progress=False)
        assert tree_rel_err([{k: v[i] for k, v in layer.items()} for layer in ps], p) <= 1e-5
        np.testing.assert_allclose(hist["loss"][i], h["loss"], rtol=1e-5)
    assert hist["epochs_run"].tolist() == [20] * 8 and not hist["diverged"].any()


def test_fit_many_hyperparameters_and_isolated_divergence():
    x, y = _regression(32)
    net = fnn.MLP((2, 8, 1), hidden="tanh")
    opt = optax.inject_hyperparams(optax.sgd)(learning_rate=0.1)
    lrs = jnp.array([0.01, 0.1, 5.0])
    start = jax.vmap(net.init)(jax.random.split(jax.random.key(3), 3))
    # full batch: no shuffling, so each network's run does not depend on how many run beside it
    ps, h = fnn.fit_many(
        net,
        (x, y),
        loss="mse",
        optimizer=opt,
        epochs=40,
        key=jax.random.key(0),
        params=start,
        hyperparams={"learning_rate": lrs},
        progress=False,
    )
    assert h["diverged"].tolist() == [False, False, True] and h["stop_reason"][2] == "diverged"
    assert all(bool(jnp.all(jnp.isfinite(a))) for a in jax.tree_util.tree_leaves(ps))
    assert h["epochs_run"][:2].tolist() == [40, 40] and h["epochs_run"][2] < 40
    assert np.isnan(h["loss"][2, h["epochs_run"][2] :]).all()
    assert h["loss"][1, -1] < h["loss"][0, -1]  # lr 0.1 beats lr 0.01 in 40 epochs
    # the healthy networks are exactly what they are without the diverging one beside them
    ps2, h2 = fnn.fit_many(
        net,
        (x, y),
        loss="mse",
        optimizer=opt,
        epochs=40,
        key=jax.random.key(0),
        params=jax.tree_util.tree_map(lambda a: a[:2], start),
        hyperparams={"learning_rate": lrs[:2]},
        progress=False,
    )
    np.testing.assert_allclose(h2["loss"], h["loss"][:2], rtol=1e-6)
    assert tree_rel_err(ps2, jax.tree_util.tree_map(lambda a: a[:2], ps)) <= 1e-6


def test_fit_many_bad_hyperparams():
    with pytest.raises(ValueError, match="needs an optimizer made with optax.inject_hyperparams"):
        fnn.fit_many(
            NET,
            (XOR_X, XOR_Y),
            loss="cross_entropy",
            optimizer=OPT,
            epochs=1,
            key=jax.random.key(0),
            hyperparams={"learning_rate": jnp.ones(2)},
        )
    opt = optax.inject_hyperparams(optax.sgd)(learning_rate=0.1)
    with pytest.raises(ValueError, match=r"names \['lr'\] are not hyperparameters of the optimizer; it has \['learning_rate'\]"):
        fnn.fit_many(
            NET,
            (XOR_X, XOR_Y),
            loss="cross_entropy",
            optimizer=opt,
            epochs=1,
            key=jax.random.key(0),
            hyperparams={"lr": jnp.ones(2)},
        )
    with pytest.raises(ValueError, match="the number of networks disagrees"):
        fnn.fit_many(
            NET,
            (XOR_X, XOR_Y),
            loss="cross_entropy",
            optimizer=opt,
            epochs=1,
            key=jax.random.key(0),
            num_networks=3,
            hyperparams={"learning_rate": jnp.ones(2)},
        )
    with pytest.raises(ValueError, match="fit_many needs `num_networks`"):
        fnn.fit_many(NET, (XOR_X, XOR_Y), loss="cross_entropy", epochs=1, key=jax.random.key(0))


@pytest.mark.parametrize("grad", ["manual", "autodiff"])
def test_per_example_grads(x64, grad):
    net = fnn.MLP((2, 4, 3), hidden="elu", output="softmax")
    params = net.init(jax.random.key(0), jnp.float64)
    x = jax.random.normal(jax.random.key(1), (6, 2), jnp.float64)
    y = jnp.arange(6) % 3
    g = fnn.per_example_grads(net, params, x, y, grad=grad, loss="cross_entropy")
    assert g[0]["W"].shape == (6, 4, 2)
    loop = [fnn.autodiff_value_and_grad(net, "cross_entropy")(params, x[i], y[i])[1] for i in range(6)]
    assert tree_rel_err(g, jax.tree_util.tree_map(lambda *a: jnp.stack(a), *loop)) <= 1e-12


def test_repeated_fit_reuses_the_compiled_loop():
    fnn.fit(NET, NET.init(jax.random.key(0)), (XOR_X, XOR_Y), loss="cross_entropy", optimizer=OPT, epochs=3, progress=False)
    before = _loop.compiled_runner.cache_info()
    fnn.fit(NET, NET.init(jax.random.key(1)), (XOR_X, XOR_Y), loss="cross_entropy", optimizer=OPT, epochs=3, progress=False)
    after = _loop.compiled_runner.cache_info()
    assert after.hits == before.hits + 1 and after.misses == before.misses


def test_user_params_are_not_consumed():
    params = NET.init(jax.random.key(0))
    W = np.asarray(params[0]["W"]).copy()
    fnn.fit(NET, params, (XOR_X, XOR_Y), loss="cross_entropy", optimizer=OPT, epochs=3, progress=False)
    np.testing.assert_array_equal(params[0]["W"], W)  # still readable, unchanged


@pytest.mark.parametrize(
    "kwargs, err, match",
    [
        ({"batch_size": 0}, ValueError, "`batch_size` must be a positive int, got 0"),
        ({"batch_size": 2.5}, TypeError, "`batch_size` must be a positive int or None, got float"),
        ({"epochs": 0}, ValueError, "`epochs` must be a positive int, got 0"),
        ({"epochs": "10"}, TypeError, "`epochs` must be a positive int, got str"),
        ({"grad": "numeric"}, ValueError, "`grad` must be 'manual' or 'autodiff', got 'numeric'"),
        ({"patience": 3}, ValueError, "`patience` .* needs `validation=\\(x_val, y_val\\)`"),
        ({"tol": -1.0}, ValueError, "`tol` must be a positive number"),
        ({"validation": (jnp.ones((3, 5)), jnp.zeros(3, int))}, ValueError, r"`validation\[0\]` has 5 features"),
        ({"validation": jnp.ones((3, 2))}, TypeError, r"`validation` must be a pair \(x, y\)"),
        ({"data": (XOR_X, XOR_Y[:3])}, ValueError, r"`data\[1\]` has shape \(3,\) but `data\[0\]` is a batch of 4"),
        ({"data": (jnp.ones((0, 2)), jnp.zeros(0, int))}, ValueError, "`data` is empty"),
        ({"data": (XOR_X.at[2, 1].set(jnp.nan), XOR_Y)}, ValueError, r"`data\[0\]` contains NaN or inf \(first at row 2"),
        ({"data": XOR_X}, TypeError, r"`data` must be a pair \(x, y\)"),
        ({"batch_size": 2, "key": None}, ValueError, "`key` is required to shuffle minibatches"),
        ({"key": 42, "batch_size": 2}, TypeError, "`key` must be a single jax.random.key"),
        ({"optimizer": "sgd"}, TypeError, "`optimizer` must be an optax.GradientTransformation"),
        ({"loss": "bce"}, ValueError, "loss 'bce' needs output='sigmoid'"),
        ({"mesh": "cpu"}, TypeError, "`mesh` must be a jax.sharding.Mesh"),
    ],
)
def test_fit_bad_input(kwargs, err, match):
    args = {"loss": "cross_entropy", "epochs": 2, "progress": False, "data": (XOR_X, XOR_Y)}
    args.update(kwargs)
    data = args.pop("data")
    with pytest.raises(err, match=match):
        fnn.fit(NET, NET.init(jax.random.key(0)), data, **args)


def test_batch_size_larger_than_dataset_is_clamped_with_a_warning():
    with pytest.warns(UserWarning, match="`batch_size` 32 is larger than the dataset \\(4 examples\\); using the full batch"):
        _, h = fnn.fit(
            NET,
            NET.init(jax.random.key(0)),
            (XOR_X, XOR_Y),
            loss="cross_entropy",
            optimizer=OPT,
            epochs=2,
            batch_size=32,
            key=jax.random.key(0),
            progress=False,
        )
    assert h["steps"] == 2


def test_params_from_another_network_are_refused():
    with pytest.raises(ValueError, match=r"`params\[0\]\['W'\]` has shape \(5, 2\)"):
        fnn.fit(NET, fnn.MLP((2, 5, 2)).init(jax.random.key(0)), (XOR_X, XOR_Y), loss="cross_entropy", epochs=1)
