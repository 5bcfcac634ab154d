"""Benchmark: manual vs autodiff steps, roofline, whole-loop compilation, ensembles, peers, memory.

Every comparison is interleaved in one run (A B A B …; median of >= 10 pairs after warm-up and
compilation), in float32 on the device JAX finds (or ``--device cpu|gpu``). Timings are printed
as tables and written to ``--out``/results.json (``gpu.json`` on a GPU). Nothing here is a test.

Run: python -m experiments.benchmark [--quick] [--device gpu] [--out results/benchmark]
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import time
from collections.abc import Callable, Sequence

import jax
import numpy as np
import optax

import fnn
from experiments import _bench_peers, _common

STEP_CONFIGS = {  # name: (sizes, batch)
    "xor 2-8-2": ((2, 8, 2), 4),
    "mlp 64-128-128-10": ((64, 128, 128, 10), 128),
    "large 784-1024-1024-10": ((784, 1024, 1024, 10), 1024),
    "deep 10x64": ((64,) + (64,) * 10 + (10,), 256),
}


def interleaved(
    fns: dict[str, Callable[[], object]], pairs: int, min_s: float = 0.02, samples_out: dict | None = None
) -> dict[str, float]:
    """Median seconds per call of each zero-argument function, timed in alternation.

    Each sample repeats a function enough times to last ``min_s`` (found during warm-up), so
    timer resolution and dispatch jitter do not dominate small workloads. ``samples_out``, if
    given, receives every sample (for per-pair ratios).
    """
    reps = {}
    for name, f in fns.items():
        jax.block_until_ready(f())  # compile
        t = time.perf_counter()
        jax.block_until_ready(f())
        dt = max(time.perf_counter() - t, 1e-7)
        reps[name] = max(1, int(min_s / dt))
    samples: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(pairs):
        for name, f in fns.items():
            t = time.perf_counter()
            for _ in range(reps[name]):
                out = f()
            jax.block_until_ready(out)
            samples[name].append((time.perf_counter() - t) / reps[name])
    if samples_out is not None:
        samples_out.update(samples)
    return {k: float(np.median(v)) for k, v in samples.items()}


def _problem(sizes: tuple[int, ...], batch: int, key: jax.Array):
    net = fnn.MLP(sizes, hidden="relu", output="softmax")
    k1, k2 = jax.random.split(key)
    x = jax.random.normal(k1, (batch, sizes[0]))
    y = jax.random.randint(k2, (batch,), 0, sizes[-1])
    return net, net.init(key), x, y


def compiled_steps(net: fnn.MLP, params, x, y, grad: str, steps: int) -> Callable[[], object]:
    """``steps`` SGD steps as one compiled scan: the step's own cost, without Python dispatch."""
    step = fnn.make_step(net, "cross_entropy", optax.sgd(1e-3), grad=grad)
    state = step.init(params)
    run = jax.jit(lambda s: jax.lax.scan(lambda c, _: (step.fn(c, x, y)[0], None), s, None, length=steps)[0])
    return lambda: run(state)


SMOKE_CONFIGS = {"xor 2-8-2": ((2, 8, 2), 4), "mlp 16-32-4": ((16, 32, 4), 32)}  # seconds, for the test suite


def bench_steps(args, key) -> list[dict]:
    rows = []
    for name, (sizes, batch) in (SMOKE_CONFIGS if args.smoke else STEP_CONFIGS).items():
        net, params, x, y = _problem(sizes, batch, key)
        flops = 6 * batch * sum(a * b for a, b in itertools.pairwise(sizes))
        inner = max(1, min(1000, int(2e8 / flops)))  # a call of ~0.1 s of work or 1000 steps
        fns = {g: compiled_steps(net, params, x, y, g, inner) for g in ("manual", "autodiff")}
        samples: dict = {}
        t = interleaved(fns, 2 * args.pairs, samples_out=samples)
        m, a = t["manual"] / inner, t["autodiff"] / inner
        # the median of per-pair ratios: each pair ran back to back, so slow drifts of a shared
        # machine cancel; the interquartile range says how much noise is left
        ratios = np.asarray(samples["manual"]) / np.asarray(samples["autodiff"])
        q1, med, q3 = (float(v) for v in np.percentile(ratios, [25, 50, 75]))
        rows.append(
            {
                "config": name,
                "batch": batch,
                "manual_us": m * 1e6,
                "autodiff_us": a * 1e6,
                "ratio": med,
                "ratio_iqr": [q1, q3],
                "manual_gflops": flops / m / 1e9,
                "steps_per_call": inner,
                "pairs": len(ratios),
            }
        )
    print("\n1. training step (forward + backward + SGD), compiled, float32")
    table = [
        (
            r["config"],
            r["batch"],
            f"{r['manual_us']:.1f}",
            f"{r['autodiff_us']:.1f}",
            f"{r['ratio']:.3f}",
            f"{r['ratio_iqr'][0]:.3f}-{r['ratio_iqr'][1]:.3f}",
            f"{r['manual_gflops']:.1f}",
        )
        for r in rows
    ]
    print(
        _common.table(
            table, ["config", "batch", "manual µs", "autodiff µs", "manual/autodiff (median of pairs)", "IQR", "GFLOP/s"]
        )
    )
    return rows


def bench_roofline(args, key) -> dict:
    """The large step against the bare matrix products it has to do."""
    sizes, batch = ((16, 32, 32, 4), 32) if args.smoke else STEP_CONFIGS["large 784-1024-1024-10"]
    net, params, x, y = _problem(sizes, batch, key)
    keys = iter(jax.random.split(key, 32))
    shapes = [(i, o) for i, o in itertools.pairwise(sizes)]
    h = [jax.random.normal(next(keys), (batch, i)) for i, _ in shapes]
    d = [jax.random.normal(next(keys), (batch, o)) for _, o in shapes]
    W = [p["W"] for p in params]

    @jax.jit
    def products(h, d, W):
        out = []
        for l, (hl, dl, Wl) in enumerate(zip(h, d, W)):
            out.append(hl @ Wl.T)  # forward z = h Wᵀ
            out.append(dl.T @ hl)  # ∂E/∂W = δᵀ h
            if l:
                out.append(dl @ Wl)  # δ W, the error for the layer below (not needed below layer 1)
        return out

    fns = {
        "manual": compiled_steps(net, params, x, y, "manual", 1),
        "autodiff": compiled_steps(net, params, x, y, "autodiff", 1),
        "products": lambda: products(h, d, W),
    }
    t = interleaved(fns, args.pairs)
    flops = 6 * batch * sum(i * o for i, o in shapes)
    r = {
        "step_s": t["manual"],
        "autodiff_s": t["autodiff"],
        "products_s": t["products"],
        "speed_vs_products": t["products"] / t["manual"],
        "gflops": flops / t["manual"] / 1e9,
        "products_gflops": (flops - 2 * batch * shapes[0][0] * shapes[0][1]) / t["products"] / 1e9,
    }
    r["matmul_gflops"] = _matmul_rate(args)
    print(f"\n2. roofline: the step of {sizes}, batch {batch}, against its bare matrix products")
    print(
        _common.table(
            [
                ("manual step", f"{r['step_s'] * 1e3:.2f}", f"{r['gflops']:.1f}"),
                ("autodiff step", f"{r['autodiff_s'] * 1e3:.2f}", f"{flops / r['autodiff_s'] / 1e9:.1f}"),
                ("bare products", f"{r['products_s'] * 1e3:.2f}", f"{r['products_gflops']:.1f}"),
                ("one 2048² matmul", "", f"{r['matmul_gflops']:.1f}"),
            ],
            ["what", "ms", "GFLOP/s"],
        )
    )
    print(f"step speed / bare products speed = {r['speed_vs_products']:.3f} (target >= 0.95)")
    return r


def _matmul_rate(args) -> float:
    n = 256 if args.smoke else 2048
    a = jax.random.normal(jax.random.key(1), (n, n))
    f = jax.jit(lambda a: a @ a)
    t = interleaved({"mm": lambda: f(a)}, max(3, args.pairs // 2))["mm"]
    return 2 * n**3 / t / 1e9


def bench_loop(args, key) -> dict:
    """XOR, 2,000 full-batch steps: one compiled scan vs a Python loop of jitted steps vs fnn.fit."""
    x, y = fnn.datasets.xor()
    net = fnn.MLP((2, 8, 2), hidden="tanh", output="softmax")
    params = net.init(key)
    opt = optax.sgd(0.5)
    n = 200 if args.smoke else 2000
    scan = compiled_steps(net, params, x, y, "manual", n)
    step = fnn.make_step(net, "cross_entropy", opt)

    def python_loop():
        s = step.init(params)
        for _ in range(n):
            s, _ = step(s, x, y)
        return s

    def fit():
        return fnn.fit(net, params, (x, y), loss="cross_entropy", optimizer=opt, epochs=n, progress=False)[0]

    t = interleaved({"scan": scan, "python": python_loop, "fit": fit}, max(5, args.pairs // 2), min_s=0.0)
    r = {k: n / v for k, v in t.items()}
    r["scan_vs_python"] = r["scan"] / r["python"]
    print(f"\n3. whole-loop compilation: XOR 2-8-2, {n:,} full-batch steps")
    print(
        _common.table(
            [
                ("one lax.scan (make_step)", f"{r['scan']:,.0f}"),
                ("Python loop of jitted steps", f"{r['python']:,.0f}"),
                ("fnn.fit (guard, history, stop rules)", f"{r['fit']:,.0f}"),
            ],
            ["how", "steps/s"],
        )
    )
    print(f"scan / Python loop = {r['scan_vs_python']:.1f}x (targets: >= 100,000 steps/s and >= 5x)")
    return r


def bench_many(args, key) -> list[dict]:
    """fit_many over N networks vs one network, XOR and spirals."""
    rows = []
    xs, ys = fnn.datasets.spirals(key, 300, classes=3)
    problems = {
        "xor 2-8-2, full batch": (
            fnn.MLP((2, 8, 2), hidden="tanh", output="softmax"),
            fnn.datasets.xor(),
            None,
            _common.size(args, 500, 500, 20),
        ),
        "spirals 2-64-3, batch 100": (
            fnn.MLP((2, 64, 3), hidden="relu", output="softmax"),
            (xs, ys),
            100,
            _common.size(args, 50, 50, 2),
        ),
    }
    if args.smoke:
        problems.pop("spirals 2-64-3, batch 100")
    counts = _common.size(args, (1, 16, 64, 256), (1, 16, 64, 256), (1, 4))
    for name, (net, data, bs, epochs) in problems.items():
        opt = optax.sgd(0.1)

        def run(n, net=net, data=data, bs=bs, epochs=epochs, opt=opt):
            return lambda: fnn.fit_many(
                net,
                data,
                loss="cross_entropy",
                optimizer=opt,
                epochs=epochs,
                batch_size=bs,
                key=key,
                num_networks=n,
                progress=False,
            )[0]

        t = interleaved({n: run(n) for n in counts}, max(3, args.pairs // 3), min_s=0.0)
        for n in counts:
            rows.append({"problem": name, "networks": n, "s": t[n], "vs_one": t[n] / t[counts[0]], "epochs": epochs})
    print("\n4. many networks in one compiled call (fit_many), warm")
    print(
        _common.table(
            [(r["problem"], r["networks"], f"{r['s'] * 1e3:.1f}", f"{r['vs_one']:.1f}x") for r in rows],
            ["problem", "networks", "ms", "time vs 1 network"],
        )
    )
    return rows


def bench_memory() -> dict:
    """Peak resident memory of a process that builds and runs the large step (and of bare JAX)."""
    # VmHWM of /proc/self/status: the high-water mark of this process's own memory map, which
    # starts fresh at exec (ru_maxrss would include the parent's RSS at fork time).
    code = (
        "import jax, jax.numpy as jnp, optax, fnn\n"
        "hwm = lambda: next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM'))\n"
        "base = hwm()\n"
        "net = fnn.MLP((784, 1024, 1024, 10), hidden='relu', output='softmax')\n"
        "p = net.init(jax.random.key(0)); x = jnp.ones((1024, 784)); y = jnp.zeros(1024, jnp.int32)\n"
        "step = fnn.make_step(net, 'cross_entropy', optax.sgd(1e-3)); s = step.init(p)\n"
        "for _ in range(5): s, m = step(s, x, y)\n"
        "jax.block_until_ready(s)\n"
        "print(base, hwm())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    base, peak = int(out[-2]) / 1024, int(out[-1]) / 1024
    params_mb = 4 * fnn.MLP((784, 1024, 1024, 10)).num_params / 2**20
    r = {"peak_rss_mb": peak, "after_import_mb": base, "params_mb": params_mb}
    print(
        f"\n6. memory: large step process peak RSS {peak:.0f} MB "
        f"({base:.0f} MB after importing jax+fnn; params {params_mb:.1f} MB)"
    )
    return r


def main(argv: Sequence[str] | None = None) -> dict:
    args = _common.parse_args(__doc__, "benchmark", argv, extra=lambda ap: ap.add_argument("--pairs", type=int, default=None))
    args.pairs = args.pairs or _common.size(args, 15, 10, 2)
    key = jax.random.key(args.seed)
    print(f"device: {jax.devices()[0].device_kind} ({args.platform}), jax {jax.__version__}")
    results = {
        "steps": bench_steps(args, key),
        "roofline": bench_roofline(args, key),
        "loop": bench_loop(args, key),
        "many": bench_many(args, key),
    }
    results["peers"] = _bench_peers.run(args, key, interleaved) if not args.smoke else {"skipped": "smoke mode"}
    results["memory"] = bench_memory() if not args.smoke else {"skipped": "smoke mode"}
    worst = max(r["ratio"] for r in results["steps"])
    many256 = [r["vs_one"] for r in results["many"] if r["networks"] == 256]
    headlines = [
        _common.headline("manual/autodiff step time, worst config", worst, anchor="≤ 1.00", ok=worst <= 1.0),
        _common.headline(
            "large step speed / its bare products",
            results["roofline"]["speed_vs_products"],
            anchor="≥ 0.95",
            ok=results["roofline"]["speed_vs_products"] >= 0.95,
        ),
        _common.headline(
            "XOR scan steps/s", results["loop"]["scan"], fmt="{:,.0f}", anchor="≥ 100,000", ok=results["loop"]["scan"] >= 1e5
        ),
        _common.headline(
            "XOR scan / Python loop",
            results["loop"]["scan_vs_python"],
            fmt="{:.1f}x",
            anchor="≥ 5x",
            ok=results["loop"]["scan_vs_python"] >= 5,
        ),
    ]
    if many256:
        headlines.append(
            _common.headline(
                "fit_many 256 nets / 1 net (worst problem)", max(many256), fmt="{:.1f}x", anchor="≤ 15x", ok=max(many256) <= 15
            )
        )
    headlines += _bench_peers.headlines(results["peers"])
    record = _common.finish(args, results, headlines, [])
    if args.platform == "gpu":
        (args.out / "gpu.json").write_text(json.dumps(_common._plain(record), indent=1))
    return record


if __name__ == "__main__":
    main()
