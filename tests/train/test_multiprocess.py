"""Two JAX processes on one machine (127.0.0.1, CPU, gloo collectives), as two hosts would run:
``fit(mesh=fnn.data_mesh())`` and ``fit_many(mesh=fnn.data_mesh())`` on each, equal to the
one-process result; and ``fit`` on data of which each process holds only its own half
(``fnn.parallel.from_local``), equal to a ``make_step`` loop over each device's own minibatches.
Bounded in time; both processes are always reaped."""

import json
import os
import socket
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest
from _helpers import split_data_reference

import fnn

WORKER = textwrap.dedent("""
    import json, sys
    pid, port = int(sys.argv[1]), int(sys.argv[2])
    import jax
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}", num_processes=2, process_id=pid,
                               initialization_timeout=60)
    import jax.numpy as jnp, numpy as np, optax, fnn
    from tests_setup import NET, MANY_NET, data, FIT, many_kw
    x, y = data()
    assert jax.device_count() == 2 and jax.local_device_count() == 1
    p, h = fnn.fit(NET, NET.init(jax.random.key(0)), (x, y), mesh=fnn.data_mesh(), **FIT)
    ps, hm = fnn.fit_many(MANY_NET, (x, y), mesh=fnn.data_mesh(), **many_kw())
    # each process passes only its own half of the rows: one global array, split over the two devices
    mesh, half = fnn.data_mesh(), x.shape[0] // 2
    xs, ys = (fnn.parallel.from_local(mesh, np.asarray(a)[pid * half : (pid + 1) * half]) for a in (x, y))
    assert not xs.is_fully_addressable and len(xs.addressable_shards) == 1 and xs.addressable_shards[0].data.shape[0] == half
    p_split, h_split = fnn.fit(NET, NET.init(jax.random.key(0)), (xs, ys), mesh=mesh, **FIT)
    split = {"loss": h_split["loss"].tolist(), "W": [fnn.parallel.to_host(l["W"]).tolist() for l in p_split]}
    try:  # fit_many splits networks, not data: it refuses data no process holds whole, by name
        fnn.fit_many(MANY_NET, (xs, ys), **many_kw())
        split["many_error"] = "no error"
    except ValueError as e:
        split["many_error"] = str(e)
    print(json.dumps({"pid": pid, "split": split, "loss": h["loss"].tolist(), "W": [np.asarray(l["W"]).tolist() for l in p],
                      "many_W": [fnn.parallel.to_host(l["W"]).tolist() for l in ps],
                      "many_loss": np.nan_to_num(hm["loss"]).tolist(), "diverged": hm["diverged"].tolist()}))
""")

SETUP = textwrap.dedent("""
    import jax, jax.numpy as jnp, optax, fnn
    NET = fnn.MLP((3, 8, 2), hidden="tanh", output="softmax")
    MANY_NET = fnn.MLP((3, 8, 2), hidden="relu", output="softmax")
    FIT = dict(loss="cross_entropy", optimizer=optax.sgd(0.3), epochs=5, batch_size=16, key=jax.random.key(1), progress=False)
    def data():
        x = jax.random.normal(jax.random.key(0), (48, 3))
        return x, (x[:, 0] * x[:, 1] > 0).astype(jnp.int32)
    def many_kw():
        opt = optax.inject_hyperparams(optax.sgd)(learning_rate=0.3)
        return dict(loss="cross_entropy", optimizer=opt, epochs=6, batch_size=16, key=jax.random.key(2), progress=False,
                    hyperparams={"learning_rate": jnp.array([0.1, 0.3, 1.0, 1e30])})
""")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow  # two fresh processes joined by jax.distributed: the `slow` tier
def test_two_processes_match_one(tmp_path):
    (tmp_path / "tests_setup.py").write_text(SETUP)
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    env["XLA_FLAGS"] = " ".join(f for f in env.get("XLA_FLAGS", "").split() if "device_count" not in f)  # one device each
    port = _free_port()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(i), str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for i in range(2)
    ]
    outs = []
    try:
        for p in procs:
            out, err = p.communicate(timeout=240)
            assert p.returncode == 0, err[-3000:]
            outs.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate()

    # the same training in this one process, without a mesh
    sys.path.insert(0, str(tmp_path))
    try:
        import tests_setup as s
    finally:
        sys.path.remove(str(tmp_path))
    x, y = s.data()
    p1, h = fnn.fit(s.NET, s.NET.init(jax.random.key(0)), (x, y), **s.FIT)
    ps, hm = fnn.fit_many(s.MANY_NET, (x, y), **s.many_kw())
    for r in outs:
        np.testing.assert_allclose(r["loss"], h["loss"], rtol=1e-5)
        for a, b in zip(r["W"], p1):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b["W"]), rtol=1e-4, atol=1e-6)
        assert r["diverged"] == hm["diverged"].tolist() == [False, False, False, True]
        np.testing.assert_allclose(r["many_loss"], np.nan_to_num(hm["loss"]), rtol=1e-5)
        for a, b in zip(r["many_W"], ps):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b["W"]), rtol=1e-4, atol=1e-6)
    assert outs[0]["many_W"] == outs[1]["many_W"]  # both processes hold the whole result
    # split data: each process held half the rows; equal to the loop over each device's own minibatches
    p_ref, loss_ref = split_data_reference(
        s.NET,
        s.NET.init(jax.random.key(0)),
        x,
        y,
        "cross_entropy",
        s.FIT["optimizer"],
        s.FIT["batch_size"],
        s.FIT["key"],
        s.FIT["epochs"],
        devices=2,
    )
    for r in outs:
        assert "`data[0]` is split over several processes' devices" in r["split"]["many_error"]
        np.testing.assert_allclose(r["split"]["loss"], loss_ref, rtol=1e-5)
        for a, b in zip(r["split"]["W"], p_ref):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b["W"]), rtol=1e-4, atol=1e-6)
