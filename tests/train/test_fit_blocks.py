"""fit, fit_many and make_step on networks of blocks and on models fnn did not build (issue 26, item 4).

Oracles: a hand-written loop of the public step (make_step) for fit's compiled loop; grad="autodiff"
(jax.grad) for the manual chain; optax's decoupled decay for L2 under plain SGD (the one optimizer
for which the two are the same step); a single-device run for the mesh.
"""

import json
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from fnn.blocks import Activate, BatchNorm, Dense, Dropout, LayerNorm, Residual

import fnn
from fnn.check.derivation import _x64

NET = fnn.Network(
    3,
    [
        Dense(8, bias=False),
        BatchNorm(),
        Activate("tanh"),
        Dropout(0.25),
        Residual([Dense(8), LayerNorm(), Activate("relu")]),
        Dense(2),
    ],
    output="softmax",
)
KW = {"loss": "cross_entropy", "epochs": 6, "batch_size": 16, "key": jax.random.key(1), "progress": False}


def _data(n=64, dtype=jnp.float32):
    x = jax.random.normal(jax.random.key(0), (n, 3), dtype)
    return x, (x[:, 0] * x[:, 1] > 0).astype(jnp.int32)


def _leaves_close(a, b, rtol, atol=0.0):
    for u, v in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(u), np.asarray(v), rtol=rtol, atol=atol)


def test_fit_equals_a_loop_of_the_public_step_with_the_same_keys_and_orders():
    """fit's compiled loop = make_step applied to the epochs' minibatches in fit's order, with the dropout key
    of each step folded from the epoch key and the step count (the documented stream), running statistics included."""
    x, y = _data()
    params = NET.init(jax.random.key(0))
    opt = optax.sgd(0.1, momentum=0.9)
    got, hist = fnn.fit(NET, params, (x, y), optimizer=opt, **KW)
    step = fnn.make_step(NET, "cross_entropy", opt)
    state = step.init(params)
    from fnn.train import _compiled, shuffle

    for e in range(KW["epochs"]):
        ekey = jax.random.fold_in(KW["key"], e)
        perm = shuffle.permutation(ekey, x.shape[0])
        drop = jax.random.fold_in(ekey, _compiled.DROPOUT)
        for b in range(x.shape[0] // KW["batch_size"]):
            idx = perm[b * 16 : (b + 1) * 16]
            state, _ = step(state, x[idx], y[idx], key=jax.random.fold_in(drop, state.step))
    _leaves_close(got, state.params, rtol=2e-5, atol=1e-6)
    assert hist["steps"] == 24
    # the running statistics moved from their start, and nothing is NaN
    bn = got[1]["state"]
    assert not np.allclose(bn["mean"], 0) and np.isfinite(bn["var"]).all()


def test_manual_and_autodiff_fits_agree_in_float64_and_validation_runs_in_eval_mode():
    with _x64():
        x, y = _data(dtype=jnp.float64)
        params = NET.init(jax.random.key(0), jnp.float64)
        kw = dict(KW, optimizer=optax.adam(1e-2), validation=(x[:32], y[:32]), grad_norms=True, l2=1e-3)
        p1, h1 = fnn.fit(NET, params, (x, y), grad="manual", **kw)
        p2, h2 = fnn.fit(NET, params, (x, y), grad="autodiff", **kw)
        _leaves_close(p1, p2, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(h1["loss"], h2["loss"], rtol=1e-11)
        np.testing.assert_allclose(h1["grad_norm"], h2["grad_norm"], rtol=1e-9)
        assert h1["grad_norm"].shape == (6, NET.num_layers) == (6, 3)
        # the last epoch's validation loss is the eval-mode loss of the returned parameters
        ev = fnn.evaluate(NET, p1, x[:32], y[:32], loss="cross_entropy")
        np.testing.assert_allclose(h1["val_loss"][-1], ev["loss"], rtol=1e-12)
        eval_out = NET.apply(p1, x[:32])  # eval mode: deterministic, no key
        np.testing.assert_array_equal(eval_out, NET.apply(p1, x[:32]))


def test_early_stopping_returns_the_best_epochs_parameters_with_their_running_statistics():
    x, y = _data()
    p, h = fnn.fit(
        NET,
        NET.init(jax.random.key(0)),
        (x, y),
        optimizer=optax.sgd(0.5),
        validation=(x[:20], y[:20]),
        early_stopping=fnn.EarlyStopping(2),
        **dict(KW, epochs=40),
    )
    best = h["best_epoch"]
    np.testing.assert_allclose(fnn.evaluate(NET, p, x[:20], y[:20], loss="cross_entropy")["loss"], h["val_loss"][best], rtol=1e-5)


def test_fit_many_trains_each_network_as_fit_does():
    x, y = _data()
    key = jax.random.key(5)
    ps = NET.init_stacked(key, 3)
    keys = jax.random.split(jax.random.key(9), 3)
    opt = optax.adam(1e-2)
    many, hm = fnn.fit_many(NET, (x, y), params=ps, key=keys, optimizer=opt, **{k: v for k, v in KW.items() if k != "key"})
    for i in range(3):
        one, h1 = fnn.fit(NET, fnn.sweep.network(NET, ps, i), (x, y), optimizer=opt, **dict(KW, key=keys[i]))
        _leaves_close(fnn.sweep.network(NET, many, i), one, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(hm["loss"][i], h1["loss"], rtol=1e-4)
    ev = fnn.sweep.evaluate_all(NET, many, x, y, loss="cross_entropy")
    assert ev["loss"].shape == (3,)
    np.testing.assert_allclose(
        ev["loss"][1], fnn.evaluate(NET, fnn.sweep.network(NET, many, 1), x, y, loss="cross_entropy")["loss"], rtol=1e-5
    )


def test_dropout_masks_follow_the_key():
    x, y = _data()
    params = NET.init(jax.random.key(0))
    a, _ = fnn.fit(NET, params, (x, y), **KW)
    b, _ = fnn.fit(NET, params, (x, y), **KW)
    c, _ = fnn.fit(NET, params, (x, y), **dict(KW, key=jax.random.key(2)))
    _leaves_close(a, b, rtol=0)
    assert not np.allclose(a[0]["W"], c[0]["W"])


def test_l2_in_the_objective_is_coupled_decay_and_differs_from_adamw():
    """L2 in the objective adds λW to the gradient before the optimizer sees it: it equals
    optax.chain(optax.add_decayed_weights(λ, weights only), optimizer) for any optimizer (an independent
    oracle for the hand-derived λW and the ½λΣ‖W‖² term), and for plain SGD that is also the decoupled step.
    Under Adam it is not AdamW's decoupled decay (Loshchilov & Hutter 2019)."""
    with _x64():
        x, y = _data(dtype=jnp.float64)
        for net in (fnn.MLP((3, 8, 2), "tanh", "softmax"), fnn.Network.mlp((3, 8, 2), "tanh", "softmax", norm="layer")):
            params = net.init(jax.random.key(0), jnp.float64)
            lam, kw = 0.05, dict(KW, shuffle=False, key=None)
            mask = jax.tree_util.tree_map_with_path(lambda path, _: path[-1].key == "W", params)
            for opt in (optax.sgd(0.3), optax.adam(1e-2)):
                p1, h1 = fnn.fit(net, params, (x, y), optimizer=opt, l2=lam, **kw)
                p2, h2 = fnn.fit(net, params, (x, y), optimizer=optax.chain(optax.add_decayed_weights(lam, mask), opt), **kw)
                _leaves_close(p1, p2, rtol=1e-10, atol=1e-13)
                assert (h1["loss"] > h2["loss"]).all()  # the history's loss includes ½λΣ‖W‖² (E alone in the other run)
            p3, _ = fnn.fit(net, params, (x, y), optimizer=optax.adamw(1e-2, weight_decay=lam, mask=mask), **kw)
            assert np.abs(p1[0]["W"] - p3[0]["W"]).max() > 1e-4


def test_l2_value_sweep_reuses_the_compiled_loop():
    from fnn.train import _compiled

    x, y = _data()
    net = fnn.MLP((3, 4, 2), "tanh", "softmax")
    kw = dict(KW, optimizer=optax.sgd(0.1), key=None, shuffle=False, batch_size=None)
    fnn.fit(net, net.init(jax.random.key(0)), (x, y), l2=0.1, **kw)
    before = _compiled.compiled_runner.cache_info().misses
    p, _ = fnn.fit(net, net.init(jax.random.key(0)), (x, y), l2=0.2, **kw)
    assert _compiled.compiled_runner.cache_info().misses == before
    q, _ = fnn.fit(net, net.init(jax.random.key(0)), (x, y), **kw)
    assert not np.allclose(p[0]["W"], q[0]["W"])


def test_an_mlp_without_options_is_todays_mlp():
    plain = fnn.MLP((3, 8, 2), "tanh", "softmax", norm=None, dropout=0.0, residual=False)
    assert type(plain) is fnn.MLP and plain == fnn.MLP((3, 8, 2), "tanh", "softmax")
    net = fnn.MLP((3, 8, 8, 2), "relu", "softmax", norm="batch", dropout=0.5, residual=True)
    assert isinstance(net, fnn.Network)
    assert [type(b).__name__ for b in net.blocks] == ["Residual", "Residual", "Dense"]
    assert [type(b).__name__ for b in net.blocks[0].blocks] == ["Dense", "BatchNorm", "Activate", "Dropout"]
    p = net.init(jax.random.key(0))
    assert "proj" in p[0] and "proj" not in p[1]  # 3 -> 8 projects; 8 -> 8 is the identity skip


def test_a_model_of_your_own_trains_with_fit_and_fit_many_through_jax_grad():
    def init(k):
        k1, k2 = jax.random.split(k)
        return {"hidden": (jax.random.normal(k1, (3, 16)) * 0.5, jnp.zeros(16)), "out": jax.random.normal(k2, (16, 2)) * 0.1}

    def apply(p, x):
        w, b = p["hidden"]
        return jnp.tanh(x @ w + b) @ p["out"]

    model = fnn.Model(init, apply, sizes=(3, 2), output="softmax")
    x, y = _data()
    p0 = model.init(jax.random.key(0))
    p, h = fnn.fit(model, p0, (x, y), grad="autodiff", optimizer=optax.adam(3e-2), **dict(KW, epochs=30))
    assert h["loss"][-1] < 0.5 * h["loss"][0]
    # the same run by hand: jax.grad of the objective, optax, fit's orders
    opt = optax.adam(3e-2)
    E = fnn.objective(model, "cross_entropy")
    q, s = p0, opt.init(p0)
    from fnn.train import shuffle

    for e in range(30):
        perm = shuffle.permutation(jax.random.fold_in(KW["key"], e), 64)
        for b in range(4):
            idx = perm[b * 16 : (b + 1) * 16]
            g = jax.grad(E)(q, x[idx], y[idx])
            u, s = opt.update(g, s, q)
            q = optax.apply_updates(q, u)
    _leaves_close(p, q, rtol=1e-4, atol=1e-6)
    ps, hs = fnn.fit_many(model, (x, y), grad="autodiff", num_networks=2, optimizer=optax.adam(3e-2), **dict(KW, epochs=5))
    assert hs["loss"].shape == (2, 5) and np.isfinite(hs["loss"]).all()
    assert jax.tree_util.tree_leaves(ps)[0].shape[0] == 2
    with pytest.raises(ValueError, match="grad='autodiff'"):
        fnn.fit(model, p0, (x, y), **KW)


def test_bad_calls_are_refused_before_tracing():
    x, y = _data(65)
    params = NET.init(jax.random.key(0))
    with pytest.raises(ValueError, match="last minibatch .*= 1.*drop_last=True"):
        fnn.fit(NET, params, (x, y), **KW)  # 65 % 16 == 1
    fnn.fit(NET, params, (x, y), drop_last=True, **dict(KW, epochs=1))
    with pytest.raises(ValueError, match="dropout, which draws from `key`"):
        fnn.fit(NET, params, _data(), **dict(KW, key=None, batch_size=None))
    with pytest.raises(ValueError, match="`health` measures an MLP"):
        fnn.fit(NET, params, _data(), health=True, **KW)
    with pytest.raises(ValueError, match="`l2` must be a finite number >= 0"):
        fnn.fit(NET, params, _data(), l2=-1.0, **KW)
    with pytest.raises(ValueError, match="never trained"):
        NET.apply(params, x)
    step = fnn.make_step(NET, "cross_entropy")
    with pytest.raises(ValueError, match="needs `key="):
        step(step.init(params), x[:8], y[:8])


SCRIPT = textwrap.dedent("""
    import json, jax, jax.numpy as jnp, numpy as np, optax, fnn
    from fnn.blocks import Dense, BatchNorm, Activate, Dropout
    assert len(jax.devices()) == 4, jax.devices()
    net = fnn.Network(3, [Dense(16), BatchNorm(), Activate("relu"), Dropout(0.2), Dense(2)], output="softmax")
    x = jax.random.normal(jax.random.key(0), (64, 3))
    y = (x[:, 0] * x[:, 1] > 0).astype(jnp.int32)
    kw = dict(loss="cross_entropy", optimizer=optax.sgd(0.2), epochs=5, batch_size=16, key=jax.random.key(1), progress=False)
    params = net.init(jax.random.key(0))
    one, h1 = fnn.fit(net, params, (x, y), **kw)
    four, h4 = fnn.fit(net, params, (x, y), mesh=fnn.data_mesh(), **kw)
    err = max(float(np.max(np.abs(np.asarray(a) - np.asarray(b)))) for a, b in
              zip(jax.tree_util.tree_leaves(one), jax.tree_util.tree_leaves(four)))
    print(json.dumps({"err": err, "loss": float(np.max(np.abs(h1["loss"] - h4["loss"])))}))
""")


@pytest.mark.slow
def test_data_parallel_fit_on_four_devices_synchronises_batch_statistics():
    """Over a mesh the minibatch is one global array split over the devices: batch norm's mean and variance
    are the whole minibatch's (synchronised, as PyTorch's SyncBatchNorm), and the dropout masks are those of
    the one-device run, so four devices train the network the one device trains, to float32 rounding."""
    env = dict(os.environ, XLA_FLAGS=os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4")
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    r = json.loads(out.stdout.strip().splitlines()[-1])
    assert r["err"] < 1e-4 and r["loss"] < 1e-5, r


def test_a_run_continued_from_its_state_or_its_checkpoint_ends_bitwise_where_one_call_ends(tmp_path):
    """The running statistics and the dropout stream are in the carry: 3 + 3 epochs = 6 epochs, bit for bit
    (in memory with state=, on disk with Checkpointing; the SIGKILL chains are in test_resume.py, slow tier)."""
    x, y = _data()
    params = NET.init(jax.random.key(0))
    kw = dict(KW, optimizer=optax.adam(1e-2), validation=(x[:16], y[:16]))
    want, hw = fnn.fit(NET, params, (x, y), **kw)
    _, h1 = fnn.fit(NET, params, (x, y), return_state=True, **dict(kw, epochs=3))
    got, h2 = fnn.fit(NET, None, (x, y), state=h1["state"], **dict(kw, epochs=3))  # 3 more
    for a, b in zip(jax.tree_util.tree_leaves(want), jax.tree_util.tree_leaves(got), strict=True):
        assert np.asarray(a).tobytes() == np.asarray(b).tobytes()
    np.testing.assert_array_equal(hw["loss"][3:], h2["loss"][-3:])
    run = tmp_path / "run"
    fnn.fit(NET, params, (x, y), checkpoint=fnn.Checkpointing(run, every=3), **dict(kw, epochs=3))
    got2, _ = fnn.fit(NET, params, (x, y), checkpoint=fnn.Checkpointing(run, every=3, resume=True), **kw)
    for a, b in zip(jax.tree_util.tree_leaves(want), jax.tree_util.tree_leaves(got2), strict=True):
        assert np.asarray(a).tobytes() == np.asarray(b).tobytes()


def test_a_network_whose_parameters_look_like_an_mlps_resumes_from_its_checkpoint(tmp_path):
    """[Dense, Dense] has an MLP's parameter layout ([{"W", "b"}, ...]) but is a network: its run's checkpoint
    names leaves by tree path (kind tree_state), and a different network is refused by its spec."""
    x, y = _data()
    net = fnn.Network(3, [Dense(4), Dense(2)], output="softmax")
    kw = dict(KW, optimizer=optax.sgd(0.1))
    want, _ = fnn.fit(net, net.init(jax.random.key(0)), (x, y), **kw)
    run = tmp_path / "run"
    fnn.fit(net, net.init(jax.random.key(0)), (x, y), checkpoint=fnn.Checkpointing(run, every=3), **dict(kw, epochs=3))
    got, _ = fnn.fit(net, net.init(jax.random.key(0)), (x, y), checkpoint=fnn.Checkpointing(run, every=3, resume=True), **kw)
    assert all(np.array_equal(a, b) for a, b in zip(jax.tree_util.tree_leaves(want), jax.tree_util.tree_leaves(got)))
    other = fnn.Network(3, [Dense(5), Dense(2)], output="softmax")
    with pytest.raises(ValueError, match="differs in network"):
        fnn.fit(other, other.init(jax.random.key(0)), (x, y), checkpoint=fnn.Checkpointing(run, every=3, resume=True), **kw)


def test_per_example_grads_of_a_network_average_to_the_batch_gradient():
    with _x64():
        x, y = _data(12, jnp.float64)
        params = NET.init(jax.random.key(0), jnp.float64)
        key = jax.random.key(4)
        rows = fnn.per_example_grads(NET, params, x, y, loss="cross_entropy", key=key)
        auto = fnn.per_example_grads(NET, params, x, y, loss="cross_entropy", key=key, grad="autodiff")
        _, batch = fnn.autodiff_value_and_grad(NET, "cross_entropy")(params, x, y, key=key)
        _leaves_close(rows, auto, rtol=1e-10, atol=1e-13)
        _leaves_close(jax.tree_util.tree_map(lambda a: a.mean(0), rows), batch, rtol=1e-10, atol=1e-13)
        with pytest.raises(TypeError, match="`key` and `train` are options of a network"):
            fnn.per_example_grads(fnn.MLP((3, 2)), fnn.MLP((3, 2)).init(key), x, jnp.zeros((12, 2)), loss="mse", key=key)


def test_evaluate_refuses_running_statistics_never_trained():
    x, y = _data()
    params = NET.init(jax.random.key(0))
    with pytest.raises(ValueError, match=r"`params\[1\]\['state'\]` were never trained"):
        fnn.evaluate(NET, params, x, y, loss="cross_entropy")
