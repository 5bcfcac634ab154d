"""Benchmark: manual vs autodiff steps and their compiled programs, roofline, whole-loop compilation, ensembles, peers, memory,
compilation as users meet it (section 7, ``benchmarks/_bench_compile.py``: fresh processes) and what writing checkpoints
costs a run (section 8, ``benchmarks/_bench_resume.py``).

Every comparison of fnn with fnn is interleaved in one run (A B A B …; median of >= 10 pairs after
warm-up and compilation), in float32 on the device JAX finds (or ``--device cpu|gpu``). The peers
(PyTorch, scikit-learn) are timed alone, each in a process of its own that never imports JAX,
alternating with fnn batches in this process (see ``benchmarks/_bench_peers.py``). Timings are
printed as tables and written to ``--out``/results.json (``gpu.json`` on a GPU); its ``headline``
rows with ``readme=True`` are the README's benchmark table. Nothing here is a test.

Section 1b counts the matrix products, fusions and instructions of the optimized XLA program of
each timed step, manual and autodiff, so that "they compile to the same program" is checked, not
assumed. The roofline (section 2) counts exactly the products the step computes (``step_flops``)
and times bare products that are exactly those, so its GFLOP/s ratio is its time ratio.

Run: python -m benchmarks [--quick] [--device gpu] [--out results/benchmark]
"""

from __future__ import annotations

import datetime
import importlib.metadata
import itertools
import json
import os
import subprocess
import sys
from collections.abc import Sequence

import jax
import numpy as np
import optax

import fnn
from benchmarks import _bench_compile, _bench_many, _bench_peers, _bench_resume
from benchmarks._bench_common import (
    SMOKE_CONFIGS,
    STEP_CONFIGS,
    _problem,
    compiled_steps,
    hlo_counts,
    interleaved,
    step_flops,
)
from experiments import _common


def bench_steps(args, key) -> list[dict]:
    rows = []
    for name, (sizes, batch) in (SMOKE_CONFIGS if args.smoke else STEP_CONFIGS).items():
        net, params, x, y = _problem(sizes, batch, key)
        flops = step_flops(sizes, batch)
        inner = max(1, min(1000, int(2e8 / flops["total"])))  # a call of ~0.1 s of work or 1000 steps
        hlo = {g: {} for g in ("manual", "autodiff")}
        fns = {g: compiled_steps(net, params, x, y, g, inner, hlo_out=hlo[g]) for g in ("manual", "autodiff")}
        counts = {g: hlo_counts(hlo[g]["text"]) for g in fns}
        samples: dict = {}
        t = interleaved(fns, 2 * args.pairs, samples_out=samples)
        m, a = t["manual"] / inner, t["autodiff"] / inner
        # the median of per-pair ratios: each pair ran back to back, so slow drifts of a shared
        # machine cancel; the interquartile range says how much noise is left
        ratios = np.asarray(samples["manual"]) / np.asarray(samples["autodiff"])
        q1, med, q3 = (float(v) for v in np.percentile(ratios, [25, 50, 75]))
        om, oa = counts["manual"].pop("opcodes"), counts["autodiff"].pop("opcodes")
        rows.append(
            {
                "config": name,
                "sizes": list(sizes),
                "batch": batch,
                "manual_us": m * 1e6,
                "autodiff_us": a * 1e6,
                "ratio": med,
                "ratio_iqr": [q1, q3],
                "flops": flops,
                "manual_gflops": flops["total"] / m / 1e9,
                "autodiff_gflops": flops["total"] / a / 1e9,
                "steps_per_call": inner,
                "pairs": len(ratios),
                "hlo": {
                    "program": f"jit(lax.scan of {inner} make_step steps), optimized HLO after compilation",
                    "manual": counts["manual"],
                    "autodiff": counts["autodiff"],
                    "same_opcode_counts": om == oa,
                    "opcode_differences": {
                        k: [om.get(k, 0), oa.get(k, 0)] for k in sorted(set(om) | set(oa)) if om.get(k) != oa.get(k)
                    },
                },
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
            table, ["config", "batch", "manual µs", "autodiff µs", "manual/autodiff (median of pairs)", "IQR", "GFLOP/s (manual)"]
        )
    )
    print("\n1b. the compiled programs (optimized HLO of the scan timed above): manual / autodiff")
    print(f"    XLA_FLAGS={os.environ.get('XLA_FLAGS', '') or '(XLA defaults)'}")
    print(
        _common.table(
            [
                (
                    r["config"],
                    r["flops"]["products"],
                    f"{r['hlo']['manual']['dots']} / {r['hlo']['autodiff']['dots']}",
                    f"{r['hlo']['manual']['fusions']} / {r['hlo']['autodiff']['fusions']}",
                    f"{r['hlo']['manual']['instructions']} / {r['hlo']['autodiff']['instructions']}",
                    "yes" if r["hlo"]["same_opcode_counts"] else "no",
                )
                for r in rows
            ],
            ["config", "products counted", "dots", "fusions", "instructions", "same count of every opcode"],
        )
    )
    return rows


def bench_roofline(args, key) -> dict:
    """The large step against exactly the bare matrix products it computes (same products, same FLOPs)."""
    sizes, batch = ((16, 32, 32, 4), 32) if args.smoke else STEP_CONFIGS["large 784-1024-1024-10"]
    net, params, x, y = _problem(sizes, batch, key)
    keys = iter(jax.random.split(key, 32))
    shapes = [(i, o) for i, o in itertools.pairwise(sizes)]
    h = [jax.random.normal(next(keys), (batch, i)) for i, _ in shapes]
    d = [jax.random.normal(next(keys), (batch, o)) for _, o in shapes]
    W = [p["W"] for p in params]

    @jax.jit
    def products(h, d, W):  # the products step_flops counts, nothing else
        out = []
        for l, (hl, dl, Wl) in enumerate(zip(h, d, W)):
            out.append(hl @ Wl.T)  # forward z = h Wᵀ
            out.append(dl.T @ hl)  # ∂E/∂W = δᵀ h
            if l:
                out.append(dl @ Wl)  # δ W, the error for the layer below (not needed below layer 1)
        return out

    products_hlo = hlo_counts(products.lower(h, d, W).compile().as_text())
    fns = {
        "manual": compiled_steps(net, params, x, y, "manual", 1),
        "autodiff": compiled_steps(net, params, x, y, "autodiff", 1),
        "products": lambda: products(h, d, W),
    }
    samples: dict = {}
    t = interleaved(fns, args.pairs, samples_out=samples)
    flops = step_flops(sizes, batch)
    pair = np.asarray(samples["products"]) / np.asarray(samples["manual"])
    r = {
        "sizes": list(sizes),
        "batch": batch,
        "flops": flops,
        "products_dots": products_hlo["dots"],
        "step_s": t["manual"],
        "autodiff_s": t["autodiff"],
        "products_s": t["products"],
        "speed_vs_products": t["products"] / t["manual"],  # = gflops / products_gflops: the same FLOPs
        "speed_vs_products_pair_iqr": [float(v) for v in np.percentile(pair, [25, 75])],
        "gflops": flops["total"] / t["manual"] / 1e9,
        "autodiff_gflops": flops["total"] / t["autodiff"] / 1e9,
        "products_gflops": flops["total"] / t["products"] / 1e9,
        "pairs": args.pairs,
    }
    r["matmul_gflops"] = _matmul_rate(args)
    print(
        f"\n2. roofline: the step of {sizes}, batch {batch}, against the {flops['products']} bare matrix products it computes "
        f"({flops['total'] / 1e9:.3g} GFLOP per step)"
    )
    print(
        _common.table(
            [
                ("manual step", f"{r['step_s'] * 1e3:.2f}", f"{r['gflops']:.1f}"),
                ("autodiff step", f"{r['autodiff_s'] * 1e3:.2f}", f"{r['autodiff_gflops']:.1f}"),
                ("bare products", f"{r['products_s'] * 1e3:.2f}", f"{r['products_gflops']:.1f}"),
                ("one 2048² matmul", "", f"{r['matmul_gflops']:.1f}"),
            ],
            ["what", "ms (median)", "GFLOP/s"],
        )
    )
    iqr = r["speed_vs_products_pair_iqr"]
    print(
        f"step speed / bare products speed = {r['speed_vs_products']:.3f} "
        f"(per-pair IQR {iqr[0]:.3f}-{iqr[1]:.3f}; target >= 0.95)"
    )
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
    r["steps"] = n
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


def bench_per_example(args, key) -> list[dict]:
    """Per-example gradients of a batch (``fnn.per_example_grads``, jitted) against one batch gradient,
    interleaved, both gradient paths. The per-example result is B times the parameters: on the
    64-128-128-10 network at batch 256, 27 MB written per call."""
    batch = _common.size(args, 256, 256, 16)
    configs = {k: STEP_CONFIGS[k] for k in ("xor 2-8-2", "mlp 64-128-128-10")} if not args.smoke else dict(SMOKE_CONFIGS)
    rows = []
    for name, (sizes, _) in configs.items():
        net, params, x, y = _problem(sizes, batch, key)
        for grad in ("manual", "autodiff"):
            per = jax.jit(
                lambda p, x, y, net=net, grad=grad: fnn.per_example_grads(net, p, x, y, loss="cross_entropy", grad=grad)
            )
            vg = fnn.manual_value_and_grad if grad == "manual" else fnn.autodiff_value_and_grad
            one = jax.jit(vg(net, "cross_entropy"))
            samples: dict = {}
            t = interleaved(
                {"per_example": lambda per=per, a=(params, x, y): per(*a), "batch": lambda one=one, a=(params, x, y): one(*a)},
                args.pairs,
                samples_out=samples,
            )
            ratio = float(np.median(np.asarray(samples["per_example"]) / np.asarray(samples["batch"])))
            rows.append(
                {
                    "config": name,
                    "batch": batch,
                    "grad": grad,
                    "per_example_s": t["per_example"],
                    "batch_s": t["batch"],
                    "ratio": ratio,
                }
            )
    print(f"\n4b. per-example gradients of a batch of {batch} / one batch gradient (jitted, interleaved)")
    print(
        _common.table(
            [
                (r["config"], r["grad"], f"{r['per_example_s'] * 1e6:.0f}", f"{r['batch_s'] * 1e6:.0f}", f"{r['ratio']:.2f}")
                for r in rows
            ],
            ["network", "grad", "per-example µs", "batch µs", "ratio"],
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
    from experiments.__main__ import git_state, run_facts

    started, git = datetime.datetime.now(datetime.timezone.utc), git_state()  # the tree as the run starts
    args = _common.parse_args(
        __doc__,
        "benchmark",
        argv,
        extra=lambda ap: ap.add_argument("--pairs", type=int, default=None),
        prog="python -m benchmarks",
    )
    args.pairs = args.pairs or _common.size(args, 15, 10, 2)
    key = jax.random.key(args.seed)
    print(f"device: {jax.devices()[0].device_kind} ({args.platform}), jax {jax.__version__}")
    results = {
        "steps": bench_steps(args, key),
        "roofline": bench_roofline(args, key),
        "loop": bench_loop(args, key),
        "many": _bench_many.run(args, key),
        "per_example": bench_per_example(args, key),
        "peers": _bench_peers.run(args, key, interleaved),
        "memory": bench_memory() if not args.smoke else {"skipped": "smoke mode"},
        "compilation": _bench_compile.run(args),
        "resume": _bench_resume.run(args, key),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
    }
    argv = list(sys.argv[1:] if argv is None else argv)
    results["run"] = run_facts(argv, started, prog="python -m benchmarks", git=git)
    if _bench_peers.installed("torch"):
        results["run"]["versions"]["torch"] = importlib.metadata.version("torch")
    record = _common.finish(args, results, headlines(results), [])
    if args.platform == "gpu":
        (args.out / "gpu.json").write_text(json.dumps(_common._plain(record), indent=1))
    return record


def _k(v: float) -> str:
    return f"{v / 1e6:.2f} M" if v >= 1e6 else f"{v / 1e3:.0f} k" if v >= 1e4 else f"{v:,.0f}"


def headlines(results: dict) -> list[dict]:
    """The rows of the README's benchmark table (``readme=True``): each claim says what ran and how."""
    row = _bench_peers.readme_row
    steps, roof, loop = results["steps"], results["roofline"], results["loop"]
    cfgs = "; ".join(f"{r['config']} (b {r['batch']})" for r in steps)
    # within noise: the median of per-pair ratios is at most 1, or the IQR of those ratios reaches 1
    ok_steps = all(r["ratio"] <= 1.0 or r["ratio_iqr"][0] <= 1.0 for r in steps)
    out_iqr = [
        f"{r['config']} IQR {r['ratio_iqr'][0]:.2f}-{r['ratio_iqr'][1]:.2f}"
        for r in steps
        if not r["ratio_iqr"][0] <= 1 <= r["ratio_iqr"][1]
    ]
    pairs = sorted({r["pairs"] for r in steps})
    out = [
        row(
            f"manual / autodiff training-step time (forward + backward + SGD, compiled lax.scan, float32), median of per-pair "
            f"ratios of interleaved pairs: {cfgs}",
            max(r["ratio"] for r in steps),
            ", ".join(f"{r['ratio']:.2f}" for r in steps)
            + f" (median of {'/'.join(map(str, pairs))} interleaved pairs; "
            + ("every IQR contains 1.00)" if not out_iqr else "; ".join(out_iqr) + ")"),
            "≤ 1.00, or 1.00 within the IQR (no measurable difference)",
            ok_steps,
        )
    ]
    same_dots = [r["hlo"]["manual"]["dots"] == r["hlo"]["autodiff"]["dots"] for r in steps]
    flags = results["xla_flags"] or "XLA defaults"
    out.append(
        row(
            "the compiled programs of those steps, manual vs autodiff: matrix products (dot ops), fusions and instructions "
            f"in the optimized XLA HLO of each timed scan ({flags})",
            sum(same_dots),
            "; ".join(
                f"{r['config']}: manual {r['hlo']['manual']['dots']} dots, {r['hlo']['manual']['fusions']} fusions, "
                f"{r['hlo']['manual']['instructions']} instructions; autodiff {r['hlo']['autodiff']['dots']}, "
                f"{r['hlo']['autodiff']['fusions']}, {r['hlo']['autodiff']['instructions']}"
                for r in steps
            ),
            f"the same number of dots in all {len(steps)} (the same matrix products)",
            all(same_dots),
        )
    )
    f = roof["flops"]
    out.append(
        row(
            f"large step {'-'.join(map(str, roof['sizes']))} (b {roof['batch']}), manual gradients: its speed / the speed of "
            f"the {f['products']} bare matrix products it computes ({f['total'] / 1e9:.2f} GFLOP: forward z and ∂E/∂W for every "
            f"layer, δ for every layer but the input), median of {roof['pairs']} interleaved rounds",
            roof["speed_vs_products"],
            f"{roof['speed_vs_products']:.2f}: step {roof['step_s'] * 1e3:.1f} ms = {roof['gflops']:.0f} GFLOP/s; bare products "
            f"{roof['products_s'] * 1e3:.1f} ms = {roof['products_gflops']:.0f} GFLOP/s; one 2048² matmul "
            f"{roof['matmul_gflops']:.0f} GFLOP/s",
            "≥ 0.95",
            roof["speed_vs_products"] >= 0.95,
        )
    )
    n = loop["steps"]
    out.append(
        row(
            f"XOR 2-8-2, {n:,} full-batch steps: one compiled lax.scan (make_step) vs a Python loop of jitted steps; fnn.fit "
            "(divergence guard, history, stop rules) for reference",
            loop["scan_vs_python"],
            f"scan {_k(loop['scan'])} steps/s, Python loop {_k(loop['python'])} steps/s: {loop['scan_vs_python']:.0f}x; "
            f"fnn.fit {_k(loop['fit'])} steps/s",
            "≥ 100 k steps/s and ≥ 5x the loop",
            loop["scan"] >= 1e5 and loop["scan_vs_python"] >= 5,
        )
    )
    out += _bench_many.headlines(results["many"], row)
    pe = results["per_example"]
    worst_pe = max(r["ratio"] for r in pe)
    out.append(
        row(
            f"per-example gradients of a batch of {pe[0]['batch']} (fnn.per_example_grads, jitted) / one batch gradient, "
            "median of per-pair ratios of interleaved pairs",
            worst_pe,
            "; ".join(f"{r['config']} {r['grad']} {r['ratio']:.2f}" for r in pe),
            "≤ 3x",
            worst_pe <= 3,
        )
    )
    out += _bench_peers.headlines(results["peers"])
    out += _bench_compile.headlines(results["compilation"], row)
    if "resume" in results:
        out += _bench_resume.headlines(results["resume"], row)
    mem = results["memory"]
    if "peak_rss_mb" in mem:
        out.append(
            row(
                "peak resident memory of a fresh process that builds and runs the large step 784-1024-1024-10 (b 1024)",
                mem["peak_rss_mb"],
                f"{mem['peak_rss_mb']:.0f} MB ({mem['after_import_mb']:.0f} MB after importing JAX and fnn; "
                f"parameters {mem['params_mb']:.1f} MB)",
                "",
                None,
            )
        )
    return out


if __name__ == "__main__":
    main()
