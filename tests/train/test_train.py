"""The training engine: steps, fit, stop rules, divergence guard, fit_many, per-example grads."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from _helpers import tree_rel_err

import fnn
from fnn.train import _loop

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


# ---- the minibatch order (shuffle) and the rows drop_last drops, against a plain make_step loop ----
# 10 rows in batches of 4: two full batches and a last one of 2. The reference runs fnn.make_step (one
# jitted step, tested against hand-derived gradients in test_step_default_optimizer_is_plain_gradient_descent)
# over row indices chosen here; fit must end within 1e-12 (float64) of the loop over the rows it claims to use.
ORDER_NET = fnn.MLP((2, 3, 1), hidden="tanh")
ORDER_OPT = optax.sgd(0.3)
ORDER_STEP = fnn.make_step(ORDER_NET, "mse", ORDER_OPT)
IN_ORDER = [np.arange(0, 4), np.arange(4, 8), np.arange(8, 10)]


def _order_setup(poison_tail=False):
    """x (10, 2), y (10, 1) float64 numpy and float64 starting params; ``poison_tail``: rows 8, 9 get y = 1e6."""
    x = np.asarray(jax.random.normal(jax.random.key(11), (10, 2), jnp.float64))
    y = np.sin(2 * x[:, :1]) + x[:, 1:]
    if poison_tail:
        y[8:] = 1e6  # one step on these rows throws the parameters far off (or makes them overflow)
    return x, y, ORDER_NET.init(jax.random.key(0), jnp.float64)


def _fit_order(x, y, params, **kw):
    return fnn.fit(ORDER_NET, params, (x, y), loss="mse", optimizer=ORDER_OPT, epochs=3, batch_size=4, progress=False, **kw)


def _step_loop(x, y, params, epochs, short_step=None):
    """One ``ORDER_STEP`` per row-index array of each epoch in ``epochs``, in that order (``short_step``, if
    given, for batches of fewer than 4 rows). Returns the params and each epoch's loss: the mean over the
    epoch's examples of the loss before the step that used them (``len(rows) ×`` the batch mean, summed / rows)."""
    state, history = ORDER_STEP.init(params), []
    for batches in epochs:
        total = 0.0
        for rows in batches:
            step = short_step if short_step is not None and len(rows) < 4 else ORDER_STEP
            state, m = step(state, jnp.asarray(x[rows]), jnp.asarray(y[rows]))
            total += len(rows) * float(m["loss"])
        history.append(total / sum(len(rows) for rows in batches))
    return state.params, np.asarray(history)


def _perms(key, epochs=3, n=10):
    """The documented shuffle: epoch e takes the rows in the order ``fnn.shuffle.permutation(fold_in(key, e), n)``."""
    return [np.asarray(fnn.shuffle.permutation(jax.random.fold_in(key, e), n)) for e in range(epochs)]


def test_without_shuffle_minibatches_are_consecutive_rows_in_order_every_epoch(x64):
    x, y, p0 = _order_setup()
    p, h = _fit_order(x, y, p0, shuffle=False)
    ref, ref_loss = _step_loop(x, y, p0, [IN_ORDER] * 3)  # rows 0-3, 4-7, 8-9, and again, and again
    assert h["steps"] == 9
    assert tree_rel_err(p, ref) <= 1e-12
    np.testing.assert_allclose(h["loss"], ref_loss, rtol=1e-12)
    # the comparison tells orders apart: the same batches backwards, or in order only in the first epoch, end elsewhere
    backwards, _ = _step_loop(x, y, p0, [IN_ORDER[::-1]] * 3)
    assert tree_rel_err(p, backwards) > 1e-6
    first_only, _ = _step_loop(x, y, p0, [IN_ORDER, [np.r_[0:3, 9], np.r_[4:8], np.r_[8, 3]], IN_ORDER])
    assert tree_rel_err(p, first_only) > 1e-6


def test_with_shuffle_each_epoch_takes_its_own_permutation_of_the_rows(x64):
    x, y, p0 = _order_setup()
    key = jax.random.key(1)
    p, h = _fit_order(x, y, p0, key=key)
    perms = _perms(key)
    assert len({tuple(q) for q in perms}) == 3 and not any((q == np.arange(10)).all() for q in perms)
    ref, ref_loss = _step_loop(x, y, p0, [[q[0:4], q[4:8], q[8:10]] for q in perms])
    assert tree_rel_err(p, ref) <= 1e-12
    np.testing.assert_allclose(h["loss"], ref_loss, rtol=1e-12)
    in_order, _ = _step_loop(x, y, p0, [IN_ORDER] * 3)
    assert tree_rel_err(p, in_order) > 1e-6  # shuffled: not the run in order


def test_the_last_partial_batch_is_a_step_of_its_own_averaged_over_its_rows(x64):
    """drop_last=False with 10 rows in batches of 4: the 2 rows left make a third step, whose gradient is the
    mean over those 2 rows (not the sum over them / 4); the epoch's loss weights each batch by its rows."""
    x, y, p0 = _order_setup()
    p, h = _fit_order(x, y, p0, shuffle=False, drop_last=False)
    ref, ref_loss = _step_loop(x, y, p0, [IN_ORDER] * 3)
    assert tree_rel_err(p, ref) <= 1e-12
    np.testing.assert_allclose(h["loss"], ref_loss, rtol=1e-12)  # (4 E₁ + 4 E₂ + 2 E₃) / 10, E_i before step i
    # the other weighting: the partial batch's gradient scaled by 2/4, as if averaged over a full batch
    quarter = fnn.make_step(ORDER_NET, "mse", optax.sgd(0.3 * 2 / 4))
    as_if_full, _ = _step_loop(x, y, p0, [IN_ORDER] * 3, short_step=quarter)
    assert tree_rel_err(p, as_if_full) > 1e-6
    # and the epoch loss is not the plain mean of the 3 batch losses
    state, first_epoch = ORDER_STEP.init(p0), []
    for rows in IN_ORDER:
        state, m = ORDER_STEP(state, jnp.asarray(x[rows]), jnp.asarray(y[rows]))
        first_epoch.append(float(m["loss"]))
    assert h["loss"][0] == pytest.approx(np.dot([4, 4, 2], first_epoch) / 10, rel=1e-12)
    assert abs(h["loss"][0] - np.mean(first_epoch)) > 1e-6 * abs(h["loss"][0])


def test_drop_last_without_shuffle_drops_the_last_rows(x64):
    """Rows 8 and 9 (10 % 4 = 2 left over) are never used: their targets are 1e6, and the run equals the loop
    over rows 0-3, 4-7 only, every epoch."""
    x, y, p0 = _order_setup(poison_tail=True)
    p, h = _fit_order(x, y, p0, shuffle=False, drop_last=True)
    ref, ref_loss = _step_loop(x, y, p0, [IN_ORDER[:2]] * 3)
    assert h["steps"] == 6 and h["stop_reason"] == "epochs"
    assert tree_rel_err(p, ref) <= 1e-12
    np.testing.assert_allclose(h["loss"], ref_loss, rtol=1e-12)
    assert (h["loss"] < 10).all()  # no poisoned row ever reached the loss


def test_drop_last_with_shuffle_drops_the_tail_of_each_epochs_permutation(x64):
    """Shuffled, the rows dropped are the last 10 % 4 = 2 of the epoch's permutation: other rows each epoch."""
    x, y, p0 = _order_setup()
    key = jax.random.key(1)
    p, h = _fit_order(x, y, p0, key=key, drop_last=True)
    perms = _perms(key)
    assert len({frozenset(q[8:]) for q in perms}) > 1  # the dropped rows change from epoch to epoch
    ref, ref_loss = _step_loop(x, y, p0, [[q[0:4], q[4:8]] for q in perms])
    assert h["steps"] == 6
    assert tree_rel_err(p, ref) <= 1e-12
    np.testing.assert_allclose(h["loss"], ref_loss, rtol=1e-12)
    head_dropped, _ = _step_loop(x, y, p0, [[q[2:6], q[6:10]] for q in perms])  # dropping the first 2 instead
    assert tree_rel_err(p, head_dropped) > 1e-6


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
        early_stopping=fnn.EarlyStopping(10),
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


# ---- health metrics against a reference written from their definitions, without fnn ----
def _forward(params, acts, x, xp):
    """Every layer's output h⁽ˡ⁾ = f(W⁽ˡ⁾ h⁽ˡ⁻¹⁾ + b⁽ˡ⁾), h⁽⁰⁾ = x, a row per example (``xp``: numpy or jax.numpy)."""
    f = {"relu": lambda z: xp.maximum(z, 0.0), "tanh": xp.tanh, "sigmoid": lambda z: 1.0 / (1.0 + xp.exp(-z))}
    hs, h = [], x
    for layer, act in zip(params, acts):
        z = h @ xp.asarray(layer["W"]).T + xp.asarray(layer["b"])
        h = f[act](z) if act in f else z  # identity output
        hs.append(h)
    return hs


def _health_reference(params, acts, x):
    """Per hidden layer: dead = the fraction of its ReLU units whose output is 0 on every row of ``x``;
    saturated = the fraction of its outputs (rows × units) with sigmoid < 0.01 or > 0.99, or |tanh| > 0.99;
    NaN where the measure does not apply to the layer's activation."""
    dead, saturated = [], []
    for act, h in zip(acts, _forward(params, acts, np.asarray(x), np)[:-1]):
        dead.append(np.mean(np.all(h == 0, axis=0)) if act == "relu" else np.nan)
        sat = {"sigmoid": (h < 0.01) | (h > 0.99), "tanh": np.abs(h) > 0.99}.get(act)
        saturated.append(np.nan if sat is None else np.mean(sat))
    return np.array(dead), np.array(saturated)


def _sgd_health_reference(params, acts, x, y, lr, epochs, batches):
    """Plain SGD on E = mean over a batch's rows of ½‖ŷ − d‖², gradients by jax.grad of the jnp forward pass,
    and each epoch's health as fit's docstring and fnn/analysis/metrics.py define it (details: fnn/train/_loop.py):
    grad_norm: the mean over the epoch's steps of ‖∂E/∂W⁽ˡ⁾‖ (Frobenius, W only);
    update_ratio: the mean over the epoch's steps of ‖W⁽ˡ⁾_after − W⁽ˡ⁾_before‖ / ‖W⁽ˡ⁾_before‖ (W only);
    dead / saturated: :func:`_health_reference` on all of x (≤ 1024 rows) with the params at the epoch's end."""

    @jax.jit
    def grad(p, xb, yb):
        return jax.grad(lambda p: jnp.mean(0.5 * jnp.sum((_forward(p, acts, xb, jnp)[-1] - yb) ** 2, -1)))(p)

    params = [{k: np.asarray(v) for k, v in layer.items()} for layer in params]
    out = {"grad_norm": [], "update_ratio": [], "dead_fraction": [], "saturated_fraction": []}
    for _ in range(epochs):
        norms, ratios = [], []
        for rows in batches:
            g = grad(params, x[rows], y[rows])
            new = [{k: layer[k] - lr * np.asarray(gl[k]) for k in layer} for layer, gl in zip(params, g)]
            norms.append([np.linalg.norm(gl["W"]) for gl in g])
            ratios.append([np.linalg.norm(n["W"] - o["W"]) / np.linalg.norm(o["W"]) for n, o in zip(new, params)])
            params = new
        dead, saturated = _health_reference(params, acts, x)
        for k, v in zip(out, (np.mean(norms, 0), np.mean(ratios, 0), dead, saturated)):
            out[k].append(v)
    return {k: np.array(v) for k, v in out.items()}


def test_unit_health_on_hand_set_weights():
    """Three rows through relu → tanh → sigmoid layers of 4 units whose weights make the answer obvious."""
    net = fnn.MLP((2, 4, 4, 4, 1), hidden=("relu", "tanh", "sigmoid"))
    x = jnp.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    # relu: z = [-x0-x1, x0-x1, 0.5-x0, 0] -> unit 0 (z = -1, -1, -2) and unit 3 (z = 0) output 0 on every row:
    # dead 2/4; unit 1 (z = 1, -1, 0) and unit 2 (z = -0.5, 0.5, -0.5) are live on one row each.
    relu = {"W": jnp.array([[-1.0, -1.0], [1.0, -1.0], [-1.0, 0.0], [0.0, 0.0]]), "b": jnp.array([0.0, 0.0, 0.5, 0.0])}
    # tanh: h1 = [[0,1,0,0], [0,0,.5,0], [0,0,0,0]]; unit 0: z = 10·h1[1] = 10, 0, 0 -> saturated on row 0 only;
    # unit 1: z = -3 (|tanh| = 0.995) on all 3 rows; units 2, 3: z = ±0.5. Saturated outputs 4 of 12 = 1/3
    # (units saturated on every row would give 1/4, on some row 2/4).
    tanh = {"W": jnp.zeros((4, 4)).at[0, 1].set(10.0), "b": jnp.array([0.0, -3.0, 0.5, -0.5])}
    # sigmoid: z = b: σ(5) = 0.9933 and σ(-5) = 0.0067 saturated, σ(0) = 0.5 and σ(4.5) = 0.9890 not: 6 of 12 = 1/2
    sigmoid = {"W": jnp.zeros((4, 4)), "b": jnp.array([5.0, -5.0, 0.0, 4.5])}
    params = [relu, tanh, sigmoid, {"W": jnp.ones((1, 4)), "b": jnp.zeros(1)}]
    m = fnn.metrics.unit_health(net, params, x)
    nan = np.nan
    np.testing.assert_allclose(m["dead_fraction"], [0.5, nan, nan])
    np.testing.assert_allclose(m["saturated_fraction"], [nan, 1 / 3, 0.5], rtol=1e-6)
    # inactive: z <= 0 on every row: relu units 0, 3; tanh units 1, 3; sigmoid units 1, 2
    np.testing.assert_allclose(m["inactive_fraction"], [0.5, 0.5, 0.5])
    dead, saturated = _health_reference(params, ("relu", "tanh", "sigmoid", "identity"), x)  # the reference agrees
    np.testing.assert_allclose(dead, [0.5, nan, nan])
    np.testing.assert_allclose(saturated, [nan, 1 / 3, 0.5], rtol=1e-6)


def test_health_metrics_match_a_reference(x64):
    """health=True on 10 rows in batches of 4, in order: each column against _sgd_health_reference."""
    acts = ("relu", "tanh", "sigmoid", "identity")
    net = fnn.MLP((2, 4, 4, 4, 1), hidden=acts[:-1])
    x = np.asarray(jax.random.normal(jax.random.key(3), (10, 2), jnp.float64))
    y = np.sin(2 * x[:, :1]) + x[:, 1:]
    p0 = net.init(jax.random.key(5), jnp.float64)
    # ReLU unit 0 is dead from the start and another unit dies in epoch 2; tanh and sigmoid outputs lie near
    # their asymptotes, some crossing 0.99 as they train
    p0[0]["b"] = p0[0]["b"].at[0].set(-50.0)
    p0[1]["W"] = 3 * p0[1]["W"]
    p0[2]["W"], p0[2]["b"] = 4 * p0[2]["W"], p0[2]["b"].at[1].set(5.0)
    lr, epochs = 0.5, 4
    kw = {"loss": "mse", "optimizer": optax.sgd(lr), "epochs": epochs, "batch_size": 4, "shuffle": False, "progress": False}
    _, h = fnn.fit(net, p0, (x, y), health=True, **kw)
    ref = _sgd_health_reference(p0, acts, x, y, lr, epochs, [np.arange(0, 4), np.arange(4, 8), np.arange(8, 10)])
    np.testing.assert_allclose(h["grad_norm"], ref["grad_norm"], rtol=1e-10)
    np.testing.assert_allclose(h["update_ratio"], ref["update_ratio"], rtol=1e-10)
    # NaN where NaN; the fractions are float64 in a float64 run (they were once rounded to float32: 1/40 -> 0.025000000373)
    np.testing.assert_allclose(h["dead_fraction"], ref["dead_fraction"], rtol=1e-15)
    np.testing.assert_allclose(h["saturated_fraction"], ref["saturated_fraction"], rtol=1e-15)
    # the reference is not trivial: the fractions move between epochs (taken at an epoch's start, they would
    # differ) and every measured one is non-zero somewhere
    assert ref["dead_fraction"][:, 0].tolist() == [0.25, 0.5, 0.5, 0.5]
    assert len(set(ref["saturated_fraction"][:, 2])) > 1 and (ref["saturated_fraction"][:, 1:].max(0) > 0).all()
    # grad_norms=True alone: the same gradient norms, no health columns
    _, g = fnn.fit(net, p0, (x, y), grad_norms=True, **kw)
    assert "dead_fraction" not in g and "update_ratio" not in g
    np.testing.assert_allclose(g["grad_norm"], ref["grad_norm"], rtol=1e-10)


def test_health_probes_the_first_1024_training_rows():
    """dead_fraction is measured on x[:1024]: ReLU unit 0 (z = 10 x − 5) is live only on the last 6 of 1030 rows."""
    net = fnn.MLP((1, 2, 1), hidden="relu")
    params = [{"W": jnp.array([[10.0], [1.0]]), "b": jnp.array([-5.0, 1.0])}, {"W": jnp.ones((1, 2)), "b": jnp.zeros(1)}]
    x = jnp.zeros((1030, 1)).at[1024:].set(1.0)
    _, h = fnn.fit(
        net, params, (x, jnp.zeros((1030, 1))), loss="mse", optimizer=optax.sgd(0.0), epochs=1, health=True, progress=False
    )
    assert h["dead_fraction"].tolist() == [[0.5]]  # over all 1030 rows, or the last 1024, it would be 0
    assert _health_reference(params, ("relu", "identity"), x[:1024])[0].tolist() == [0.5]
    assert _health_reference(params, ("relu", "identity"), x)[0].tolist() == [0.0]


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
        ({"batch_size": 0}, ValueError, r"`batch_size` must be an int in \[1, inf\), got 0"),
        ({"batch_size": 2.5}, TypeError, "`batch_size` must be an int >= 1, got float"),
        ({"epochs": 0}, ValueError, r"`epochs` must be an int in \[1, 2147483647\], got 0"),
        ({"epochs": "10"}, TypeError, "`epochs` must be an int >= 1, got str"),
        ({"grad": "numeric"}, ValueError, "`grad` must be 'manual' or 'autodiff', got 'numeric'"),
        ({"early_stopping": fnn.EarlyStopping(3)}, ValueError, "`early_stopping` needs `validation=\\(x_val, y_val\\)`"),
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
