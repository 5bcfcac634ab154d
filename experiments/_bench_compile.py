"""Benchmark section 7, compilation: what users write, timed in fresh processes.

Each measurement runs in a new Python process (``python -c``), so "first call" means the first call
of a process, with JAX imported and nothing compiled, as a user's script meets it. The fnn process
and a plain-JAX process that trains the same XOR network the same way (a ``lax.scan`` of SGD steps
with ``jax.grad``) alternate, round after round; medians over the rounds.

In the fnn process:

- ``first``: the README's call, ``fit(net, params, (x, y), loss="cross_entropy",
  optimizer=optax.sgd(0.5), epochs=E)`` with a freshly made MLP and optimizer: compile and run;
- ``idiomatic``: nine more such calls, each with a fresh ``optax.sgd(0.5)`` and a re-created MLP;
- ``warm``: the same call with held objects after those (the loop already compiled);
- ``epochs``, ``tol``, ``loss_record``: one call each with another number of epochs, a ``tol``, and
  the loss given as its record instead of its name;
- ``programs``: how many training loops the process compiled in all of that (fnn's cache count).
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import numpy as np

from experiments import _common

FNN = """
import json, time, jax, optax, fnn
from fnn import _loop
E = {epochs}
x, y = fnn.datasets.xor()
def call(opt=None, net=None, **kw):
    net = net or fnn.MLP((2, 8, 2), hidden="tanh", output="softmax")
    kw = dict(loss="cross_entropy", epochs=E, progress=False) | kw
    t = time.perf_counter()
    p, _ = fnn.fit(net, net.init(jax.random.key(0)), (x, y), optimizer=opt or optax.sgd(0.5), **kw)
    jax.block_until_ready(p)
    return time.perf_counter() - t
out = dict(first=call())
out["idiomatic"] = sum(call() for _ in range(9))
opt, net = optax.sgd(0.5), fnn.MLP((2, 8, 2), hidden="tanh", output="softmax")
out["warm"] = min(call(opt, net) for _ in range(5))
out["epochs"] = call(epochs=max(1, E * 3 // 4))
out["tol"] = call(tol=0.01)
out["loss_record"] = call(loss=fnn.losses.CROSS_ENTROPY)
out["programs"] = _loop.compiled_runner.cache_info().misses
print(json.dumps(out))
"""

PLAIN = """
import json, time, jax, jax.numpy as jnp
E = {epochs}
x = jnp.array([[0., 0.], [0., 1.], [1., 0.], [1., 1.]]); y = jnp.array([0, 1, 1, 0])
@jax.jit  # one program, as fnn's MLP.init is
def init(key):
    k1, k2 = jax.random.split(key)
    g = lambda k, i, o: jax.random.normal(k, (o, i)) * jnp.sqrt(2.0 / (i + o))
    return [{{"W": g(k1, 2, 8), "b": jnp.zeros(8)}}, {{"W": g(k2, 8, 2), "b": jnp.zeros(2)}}]
def loss(p, x, y):
    h = jnp.tanh(x @ p[0]["W"].T + p[0]["b"])
    z = h @ p[1]["W"].T + p[1]["b"]
    return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(z), y[:, None], 1))
@jax.jit
def train(p):
    step = lambda p, _: (jax.tree_util.tree_map(lambda a, g: a - 0.5 * g, p, jax.grad(loss)(p, x, y)), None)
    return jax.lax.scan(step, p, None, length=E)[0]
t = time.perf_counter()  # as in the fnn process: initialise, compile and train
jax.block_until_ready(train(init(jax.random.key(0))))
print(json.dumps(dict(first=time.perf_counter() - t)))
"""


def _process(code: str) -> dict[str, Any]:
    p = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=600)
    if p.returncode:
        raise RuntimeError(f"compilation benchmark process failed (exit {p.returncode}):\n{p.stderr[-3000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def run(args) -> dict[str, Any]:
    epochs = _common.size(args, 2000, 2000, 200)
    rounds = _common.size(args, 5, 3, 1)
    fnn_runs, plain_runs = [], []
    for _ in range(rounds):  # alternate, so a slower stretch of a shared machine hits both
        fnn_runs.append(_process(FNN.format(epochs=epochs)))
        plain_runs.append(_process(PLAIN.format(epochs=epochs)))
    med = {k: float(np.median([r[k] for r in fnn_runs])) for k in fnn_runs[0]}
    plain_first = float(np.median([r["first"] for r in plain_runs]))
    r = {
        "epochs": epochs,
        "rounds": rounds,
        "fnn": med,
        "fnn_runs": fnn_runs,
        "plain_first": plain_first,
        "plain_runs": plain_runs,
        "ten_calls": med["first"] + med["idiomatic"],
        "one_compile_nine_warm": med["first"] + 9 * med["warm"],
    }
    r["ten_vs_ideal"] = r["ten_calls"] / r["one_compile_nine_warm"]
    r["first_vs_plain"] = med["first"] / plain_first
    print(f"\n7. compilation: XOR 2-8-2, {epochs:,} epochs; each figure from a fresh process, median of {rounds} rounds")
    print(
        _common.table(
            [
                ("fnn.fit, first call of the process (compile + run)", f"{med['first']:.3f}"),
                ("nine more calls, fresh optax.sgd(0.5) and MLP each", f"{med['idiomatic']:.3f}"),
                ("one warm call (held objects)", f"{med['warm']:.4f}"),
                (f"a call with epochs={max(1, epochs * 3 // 4)}", f"{med['epochs']:.4f}"),
                ("a call with tol=0.01", f"{med['tol']:.4f}"),
                ("a call with the loss as its record", f"{med['loss_record']:.4f}"),
                ("plain JAX lax.scan of jax.grad SGD steps, first call", f"{plain_first:.3f}"),
            ],
            ["call", "seconds"],
        )
    )
    print(
        f"10 idiomatic calls / (1 compile + 9 warm) = {r['ten_vs_ideal']:.2f} (target <= 1.5); training loops compiled: "
        f"{int(med['programs'])}; first fnn.fit / first plain-JAX call = {r['first_vs_plain']:.2f} (target <= 1.5)"
    )
    return r


def headlines(c: dict, row: Any) -> list[dict]:
    """The README rows of this section (``row`` makes a README headline)."""
    f = c["fnn"]
    return [
        row(
            f"compilation, XOR 2-8-2, {c['epochs']:,} epochs, in fresh processes (median of {c['rounds']}): 10 fit calls as "
            "the README writes them (a fresh optax.sgd(0.5) and a re-created MLP each) / (1 compile + 9 warm calls)",
            c["ten_vs_ideal"],
            f"{c['ten_vs_ideal']:.2f} ({c['ten_calls']:.2f} s vs {c['one_compile_nine_warm']:.2f} s; training loops "
            f"compiled: {int(f['programs'])}, also after calls with other epochs, a tol and the loss as a record: "
            f"{f['epochs'] * 1e3:.1f}, {f['tol'] * 1e3:.1f}, {f['loss_record'] * 1e3:.1f} ms)",
            "≤ 1.5",
            c["ten_vs_ideal"] <= 1.5,
        ),
        row(
            "first fnn.fit call of a fresh process / first call of a plain-JAX lax.scan training the same network "
            f"(XOR 2-8-2, {c['epochs']:,} SGD steps, compile included)",
            c["first_vs_plain"],
            f"{c['first_vs_plain']:.2f} ({f['first']:.2f} s vs {c['plain_first']:.2f} s)",
            "≤ 1.5",
            c["first_vs_plain"] <= 1.5,
        ),
    ]
