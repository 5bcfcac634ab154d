"""GPU check: the project's GPU claims, measured in one command on a machine that has a GPU.

Installs nothing: run it from a checkout on a machine with JAX (CUDA), optax and chex::

    PYTHONPATH=. python -m benchmarks.gpu_check --out results/gpu     # a few minutes on one GPU

It writes ``results/gpu/results.json`` (commit it as ``docs/gpu_check.json``) with

1. gradients on the device: manual backprop vs ``jax.grad`` on six networks (hidden tanh, ReLU,
   sigmoid, ELU; softmax + cross-entropy, sigmoid + BCE, identity + MSE) in float32 and float64,
   the largest error of any entry relative to the network's largest gradient entry (targets: ≤ 2e-5
   and ≤ 1e-12, as the test suite asks on the CPU);
2. the step benchmark's large MLP step (784-1024-1024-10, batch 1024) against the device's own
   measured matmul rate (the benchmark's roofline section; target ≥ 50% of the matmul rate);
3. ``fit_many`` of 1 to 4,096 XOR networks (2-8-2, full batch, 500 epochs), each count timed warm,
   the time of 4,096 against one (target ≤ 4x).

On the CPU (as the test suite runs it, ``--smoke``) every part runs at tiny sizes, so the script
itself stays tested where no GPU is.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

import fnn
from benchmarks import benchmark
from experiments import _common

NETS = [  # (hidden, output, loss)
    ("tanh", "softmax", "cross_entropy"),
    ("relu", "softmax", "cross_entropy"),
    ("sigmoid", "sigmoid", "bce"),
    ("elu", "identity", "mse"),
    ("tanh", "identity", "mse"),
    ("relu", "sigmoid", "bce"),
]


def _targets(loss: str, key: jax.Array, batch: int, k: int, dtype) -> jax.Array:
    if loss == "cross_entropy":
        return jax.random.randint(key, (batch,), 0, k)
    if loss == "bce":
        return jax.random.bernoulli(key, 0.5, (batch, k)).astype(dtype)
    return jax.random.normal(key, (batch, k), dtype)


def _x64(on: bool):
    """The float64 switch as a context manager (``jax.enable_x64``; ``jax.experimental`` in older JAX)."""
    ctx = getattr(jax, "enable_x64", None)
    return ctx(on) if ctx is not None else jax.experimental.enable_x64(on)  # type: ignore[attr-defined]


def gradients(args, key) -> dict:
    """Manual vs autodiff gradients on the device, the largest relative error per dtype."""
    out = {}
    for dtype_name in ("float32", "float64"):
        worst = 0.0
        with _x64(dtype_name == "float64"):
            dtype = jnp.dtype(dtype_name)
            for i, (hidden, output, loss) in enumerate(NETS):
                k = 1 if output == "sigmoid" and loss == "bce" else 3
                net = fnn.MLP((5, 16, 16, k), hidden=hidden, output=output)
                kp, kx, ky = jax.random.split(jax.random.fold_in(key, i), 3)
                params = net.init(kp, dtype)
                x = jax.random.normal(kx, (_common.size(args, 64, 64, 8), 5), dtype)
                y = _targets(loss, ky, x.shape[0], k, dtype)
                _, g = jax.jit(fnn.manual_value_and_grad(net, loss))(params, x, y)
                _, a = jax.jit(fnn.autodiff_value_and_grad(net, loss))(params, x, y)
                # relative to the largest gradient entry of the network, as tests/test_gradient_paths.py measures
                leaves = list(zip(jax.tree_util.tree_leaves(g), jax.tree_util.tree_leaves(a)))
                scale = max(*(float(jnp.max(jnp.abs(al))) for _, al in leaves), float(jnp.finfo(dtype).tiny))
                worst = max(worst, max(float(jnp.max(jnp.abs(gl - al))) for gl, al in leaves) / scale)
        out[dtype_name] = worst
    kind = jax.devices()[0].device_kind
    print(f"gradients, manual vs jax.grad on {kind}: float32 {out['float32']:.1e}, float64 {out['float64']:.1e}")
    return out


def ensembles(args, key) -> list[dict]:
    """fit_many of N XOR networks, each count warm (median of 3 calls), against one network."""
    net = fnn.MLP((2, 8, 2), hidden="tanh", output="softmax")
    data, opt = fnn.datasets.xor(), optax.sgd(0.5)
    epochs = _common.size(args, 500, 500, 20)
    rows = []
    for n in _common.size(args, (1, 16, 256, 1024, 4096), (1, 16, 256, 1024, 4096), (1, 4)):
        run = lambda n=n: fnn.fit_many(
            net, data, loss="cross_entropy", optimizer=opt, epochs=epochs, num_networks=n, key=key, progress=False
        )[0]
        jax.block_until_ready(run())
        times = []
        for _ in range(3):
            t = time.perf_counter()
            jax.block_until_ready(run())
            times.append(time.perf_counter() - t)
        rows.append({"networks": n, "s": float(np.median(times))})
    for r in rows:
        r["vs_one"] = r["s"] / rows[0]["s"]
    print(
        _common.table([(r["networks"], f"{r['s'] * 1e3:.1f}", f"{r['vs_one']:.1f}x") for r in rows], ["networks", "ms", "vs one"])
    )
    return rows


def main(argv: Sequence[str] | None = None) -> dict:
    args = _common.parse_args(__doc__, "gpu_check", argv, prog="python -m benchmarks.gpu_check")
    args.pairs = _common.size(args, 10, 10, 2)
    key = jax.random.key(args.seed)
    grads = gradients(args, key)
    roof = benchmark.bench_roofline(args, key)
    many = ensembles(args, key)
    big = many[-1]
    row = benchmark._bench_peers.readme_row
    headlines = [
        row(
            f"manual backprop vs jax.grad on the device, {len(NETS)} networks, largest error relative to the "
            "network's largest gradient entry: float32; float64",
            grads["float64"],
            f"{grads['float32']:.1e}; {grads['float64']:.1e}",
            "≤ 2e-5; ≤ 1e-12",
            grads["float32"] <= 2e-5 and grads["float64"] <= 1e-12,
        ),
        row(
            f"large step {'-'.join(map(str, roof['sizes']))} (b {roof['batch']}), manual gradients: its GFLOP/s / the device's "
            "measured matmul GFLOP/s",
            roof["gflops"] / roof["matmul_gflops"],
            f"{roof['gflops'] / roof['matmul_gflops']:.2f} ({roof['gflops']:.0f} vs {roof['matmul_gflops']:.0f} GFLOP/s)",
            "≥ 0.5",
            roof["gflops"] / roof["matmul_gflops"] >= 0.5,
        ),
        row(
            f"fit_many: time of {big['networks']:,} XOR networks / 1 network, warm",
            big["vs_one"],
            f"{big['vs_one']:.1f}x ({big['s']:.3f} s vs {many[0]['s']:.3f} s)",
            "≤ 4x",
            big["vs_one"] <= 4,
        ),
    ]
    return _common.finish(args, {"gradients": grads, "roofline": roof, "ensembles": many}, headlines, [])


if __name__ == "__main__":
    main()
