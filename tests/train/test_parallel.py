"""Data parallel training over a mesh: identical on one device, equal to float tolerance on four."""

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
from _helpers import split_data_reference, tree_rel_err

import fnn

OPT = optax.sgd(0.3)


def _data():
    x = jax.random.normal(jax.random.key(0), (48, 3))
    return x, (x[:, 0] * x[:, 1] > 0).astype(jnp.int32)


def test_one_device_mesh_is_identical_to_plain_fit():
    net = fnn.MLP((3, 8, 2), hidden="tanh", output="softmax")
    x, y = _data()
    kw = {"loss": "cross_entropy", "optimizer": OPT, "epochs": 4, "batch_size": 12, "key": jax.random.key(1), "progress": False}
    p1, h1 = fnn.fit(net, net.init(jax.random.key(0)), (x, y), **kw)
    p2, h2 = fnn.fit(net, net.init(jax.random.key(0)), (x, y), mesh=fnn.data_mesh(jax.devices()[:1]), **kw)
    assert tree_rel_err(p1, p2) == 0.0
    np.testing.assert_array_equal(h1["loss"], h2["loss"])


def test_mesh_helpers():
    mesh = fnn.data_mesh()
    assert mesh.axis_names == ("data",) and fnn.parallel.num_shards(mesh) == len(jax.devices())
    with pytest.raises(TypeError, match="`devices` must hold jax.Device objects"):
        fnn.data_mesh(["cpu:0"])
    with pytest.raises(ValueError, match="`devices` is empty"):
        fnn.data_mesh([])
    other = jax.sharding.Mesh(np.asarray(jax.devices()), ("batch",))
    with pytest.raises(ValueError, match="`mesh` needs an axis named 'data'"):
        fnn.fit(
            fnn.MLP((3, 2)),
            fnn.MLP((3, 2)).init(jax.random.key(0)),
            (jnp.ones((4, 3)), jnp.ones((4, 2))),
            loss="mse",
            epochs=1,
            mesh=other,
        )


SCRIPT = textwrap.dedent("""
    import json, jax, jax.numpy as jnp, numpy as np, optax, fnn
    from fnn.train import _loop
    from fnn.train import _plan
    assert len(jax.devices()) == 4, jax.devices()
    net = fnn.MLP((3, 8, 2), hidden="tanh", output="softmax")
    x = jax.random.normal(jax.random.key(0), (48, 3)); y = (x[:, 0] * x[:, 1] > 0).astype(jnp.int32)
    opt = optax.sgd(0.3)
    kw = dict(loss="cross_entropy", optimizer=opt, epochs=5, batch_size=16, key=jax.random.key(1), progress=False)
    mesh = fnn.data_mesh()
    p1, h1 = fnn.fit(net, net.init(jax.random.key(0)), (x, y), **kw)
    p4, h4 = fnn.fit(net, net.init(jax.random.key(0)), (x, y), mesh=mesh, **kw)
    err = max(float(jnp.max(jnp.abs(a - b))) for a, b in zip(jax.tree_util.tree_leaves(p1), jax.tree_util.tree_leaves(p4)))
    # the compiled loop really splits the batch: XLA inserted the gradient all-reduce
    options = _plan.LoopOptions(epochs=5, batch_size=16, key=jax.random.key(1), shuffle=True, drop_last=False, tol=None,
                            validation=None, early_stopping=None, health=False, mesh=mesh)
    plan, staged = _plan.stage(net, fnn.losses.get("cross_entropy"), opt, "manual", (x, y), jnp.float32, options)
    carry = _loop.init_carry(plan, fnn.parallel.replicate(mesh, net.init(jax.random.key(0))), staged.key)
    zero, five = jnp.asarray(0, jnp.int32), jnp.asarray(5, jnp.int32)
    hlo = _loop.compiled_runner(plan, False).lower(carry, staged.arrays, staged.rules, zero, five).compile().as_text()
    try:
        fnn.fit(net, net.init(jax.random.key(0)), (x, y), mesh=mesh, **{**kw, "batch_size": 6})
        bad = "no error"
    except ValueError as e:
        bad = str(e)
    # divergence on the sharded path: detected, reported, last finite params kept
    reg = fnn.MLP((3, 8, 1), hidden="tanh")
    try:
        fnn.fit(reg, reg.init(jax.random.key(0)), (x, x[:, :1] * 3), loss="mse", optimizer=optax.sgd(50.0), epochs=50,
                batch_size=16, key=jax.random.key(1), mesh=mesh, progress=False)
        diverged = {"raised": False}
    except fnn.TrainingDiverged as e:
        finite = all(bool(jnp.all(jnp.isfinite(a))) for a in jax.tree_util.tree_leaves(e.params))
        diverged = {"raised": True, "epoch": e.epoch, "finite": finite}
    # fit_many with the networks split over the 4 devices, one of them diverging: each network as on one device
    hopt = optax.inject_hyperparams(optax.sgd)(learning_rate=0.3)
    mkw = dict(loss="cross_entropy", optimizer=hopt, epochs=6, batch_size=16, key=jax.random.key(2), progress=False,
               hyperparams={"learning_rate": jnp.array([0.1, 0.3, 1.0, 1e30] * 2)})
    relu = fnn.MLP((3, 8, 2), hidden="relu", output="softmax")
    m1, g1 = fnn.fit_many(relu, (x, y), **mkw)
    m4, g4 = fnn.fit_many(relu, (x, y), mesh=mesh, **mkw)
    leaves = zip(jax.tree_util.tree_leaves(m1), jax.tree_util.tree_leaves(m4))
    many_err = max(float(jnp.nanmax(jnp.abs(a - b))) for a, b in leaves)
    try:
        fnn.fit_many(relu, (x, y), mesh=mesh, **{**mkw, "hyperparams": {"learning_rate": jnp.ones(6)}})
        uneven = "no error"
    except ValueError as e:
        uneven = str(e)
    # data split over the 4 devices (each shuffles its own 12 rows): the local order of fnn.parallel
    xs, ys = fnn.parallel.shard(mesh, x), fnn.parallel.shard(mesh, y)
    ps, hs = fnn.fit(net, net.init(jax.random.key(0)), (xs, ys), mesh=mesh, **kw)
    split = {"loss": hs["loss"].tolist(), "W": [np.asarray(l["W"]).tolist() for l in ps],
             "b": [np.asarray(l["b"]).tolist() for l in ps], "x_devices": len(xs.sharding.device_set)}
    print(json.dumps({"split": split, "err": err, "loss1": h1["loss"].tolist(), "loss4": h4["loss"].tolist(),
                      "devices": len(p4[0]["W"].sharding.device_set), "all_reduce": "all-reduce" in hlo, "bad": bad,
                      "diverged": diverged, "many_err": many_err, "many_devices": len(m4[0]["W"].sharding.device_set),
                      "div1": g1["diverged"].tolist(), "div4": g4["diverged"].tolist(),
                      "mloss1": np.nan_to_num(g1["loss"]).tolist(), "mloss4": np.nan_to_num(g4["loss"]).tolist(),
                      "uneven": uneven}))
""")


@pytest.mark.slow  # a fresh process with 4 virtual devices: the `slow` tier
def test_four_virtual_devices_match_one():
    flags = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count=4".strip()
    env = {**os.environ, "XLA_FLAGS": flags, "JAX_PLATFORMS": "cpu"}
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    r = json.loads(out.stdout.strip().splitlines()[-1])
    assert r["devices"] == 4 and r["all_reduce"]
    assert r["err"] < 1e-5
    np.testing.assert_allclose(r["loss4"], r["loss1"], rtol=1e-5)
    assert "`batch_size` is 6, which does not split over the mesh's 4 devices; use a multiple of 4" in r["bad"]
    assert r["diverged"]["raised"] and r["diverged"]["finite"] and r["diverged"]["epoch"] < 50
    # fit_many(mesh=...): 8 networks split over 4 devices, equal per network to the one-device run
    assert r["many_devices"] == 4 and r["many_err"] < 1e-5
    assert r["div4"] == r["div1"] == [False, False, False, True] * 2
    np.testing.assert_allclose(r["mloss4"], r["mloss1"], rtol=1e-5)
    assert "the number of networks is 6, which does not split over the mesh's 4 devices; use a multiple of 4" in r["uneven"]
    # split data: equal to the make_step loop over each device's own minibatches
    net, (x, y) = fnn.MLP((3, 8, 2), hidden="tanh", output="softmax"), _data()
    p0, key = net.init(jax.random.key(0)), jax.random.key(1)
    p_ref, loss_ref = split_data_reference(net, p0, x, y, "cross_entropy", optax.sgd(0.3), 16, key, 5, devices=4)
    s = r["split"]
    assert s["x_devices"] == 4
    np.testing.assert_allclose(s["loss"], loss_ref, rtol=1e-5)
    for w, b, ref in zip(s["W"], s["b"], p_ref):
        np.testing.assert_allclose(np.asarray(w), np.asarray(ref["W"]), rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(np.asarray(b), np.asarray(ref["b"]), rtol=1e-4, atol=1e-6)


def test_split_data_trains_each_device_on_its_own_rows(x64):
    # one device: the split path (local order, shard_map gather) against a plain make_step loop
    net = fnn.MLP((3, 8, 2), hidden="tanh", output="softmax")
    x, y = _data()
    x = x.astype(jnp.float64)
    mesh = fnn.data_mesh(jax.devices()[:1])
    params, key = net.init(jax.random.key(0), jnp.float64), jax.random.key(1)
    xs, ys = fnn.parallel.shard(mesh, x), fnn.parallel.shard(mesh, y)
    assert fnn.parallel.is_split(mesh, xs) and not fnn.parallel.is_split(mesh, x)
    kw = {"loss": "cross_entropy", "optimizer": OPT, "epochs": 3, "batch_size": 16, "key": key, "progress": False}
    p, h = fnn.fit(net, params, (xs, ys), mesh=mesh, **kw)
    p_ref, loss_ref = split_data_reference(net, params, x, y, "cross_entropy", OPT, 16, key, 3, devices=1)
    assert tree_rel_err(p, p_ref) <= 1e-12
    np.testing.assert_allclose(h["loss"], loss_ref, rtol=1e-12)


def test_split_data_must_be_split_alike_and_named_with_its_mesh():
    net = fnn.MLP((3, 2), output="softmax")
    x, y = _data()
    mesh = fnn.data_mesh(jax.devices()[:1])
    kw = {"loss": "cross_entropy", "epochs": 1, "batch_size": 16, "key": jax.random.key(1), "mesh": mesh, "progress": False}
    with pytest.raises(ValueError, match=r"`data\[0\]` is split over the mesh's devices but the other is not"):
        fnn.fit(net, net.init(jax.random.key(0)), (fnn.parallel.shard(mesh, x), y), **kw)
    with pytest.raises(ValueError, match=r"`data\[1\]` is split over the mesh's devices but the other is not"):
        fnn.fit(net, net.init(jax.random.key(0)), (x, fnn.parallel.shard(mesh, y)), **kw)
    local = fnn.parallel.from_local(mesh, np.asarray(x))  # one process: its rows are all the rows
    np.testing.assert_array_equal(np.asarray(local), np.asarray(x))
