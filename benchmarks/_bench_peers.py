"""Peers for the benchmark: PyTorch eager on the same shapes, scikit-learn's MLPClassifier on digits.

Each peer is timed alone, in a subprocess of its own (``benchmarks/_bench_worker.py``, which never
imports JAX, results back as JSON on stdout); fnn is timed in the benchmark's process. Two thread
pools in one process distort both: PyTorch's 64-128-128-10 step timed between fnn calls in the
same process took ~5x as long as alone, because JAX's idle worker threads keep spinning on the same
cores for a while after each call. The full and quick modes re-measure that arrangement once
(``torch.beside_fnn``) to record the size of the effect; it is never used as a comparison.

Interleaving still applies, one level up: the run alternates an fnn batch (in this process) and a
peer batch (a fresh subprocess) for a few rounds; each side's time is the median of all its samples
over all rounds, and the per-round ratios give the spread. A slow phase of the shared machine thus
lands on both sides in turn instead of on whichever happened to run during it.

Both peers are optional: when one is not installed (checked without importing it here) its section
is skipped with the reason recorded. PyTorch is not a dependency of fnn (``pip install torch`` pulls a
multi-GB CUDA build on most machines); the committed CPU numbers used the ``torch==2.13.0`` CPU wheel.
"""

from __future__ import annotations

import importlib.util
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

import jax
import numpy as np
import optax

import fnn
from benchmarks._bench_common import SMOKE_CONFIGS, STEP_CONFIGS, _problem, compiled_steps
from experiments import _common

WORKER = pathlib.Path(__file__).with_name("_bench_worker.py")
SCAN = 20  # fnn steps per call in the "inside a scan" column


def installed(module: str) -> bool:
    """Whether ``module`` could be imported, without importing it into this (JAX) process."""
    return importlib.util.find_spec(module) is not None


def call_worker(mode: str, cfg: dict, timeout: float = 900) -> dict:
    """Run one peer batch alone in a fresh Python process; its JSON answer."""
    p = subprocess.run(
        [sys.executable, str(WORKER), mode, json.dumps(cfg)], capture_output=True, text=True, timeout=timeout, check=False
    )
    if p.returncode != 0:
        raise RuntimeError(f"benchmark peer worker `{mode}` failed (exit {p.returncode}):\n{p.stderr[-3000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def run(args, key: jax.Array, interleaved: Callable) -> dict:
    out: dict = {}
    if installed("torch"):
        out["torch"] = _vs_torch(args, key, interleaved)
    else:
        out["torch"] = "skipped: torch is not installed (the CPU build: pip install torch==2.13.0)"
        print(f"\n5a. PyTorch eager: {out['torch']}")
    if installed("sklearn"):
        out["sklearn"] = _vs_sklearn(args, key)
    else:
        out["sklearn"] = "skipped: scikit-learn is not installed"
        print(f"\n5b. digits vs scikit-learn: {out['sklearn']}")
    return out


def _q(v: list[float]) -> float:
    return float(np.median(v))


def _vs_torch(args, key, interleaved) -> dict:

    names = ["mlp 16-32-4"] if args.smoke else ["mlp 64-128-128-10", "large 784-1024-1024-10"]
    configs = {n: (SMOKE_CONFIGS | STEP_CONFIGS)[n] for n in names}
    rounds = _common.size(args, 3, 3, 1)
    # smoke: the scan lengths of sections 1 and 3, whose programs are compiled already
    scan_n = _common.size(args, SCAN, SCAN, 1000)
    xor_steps = _common.size(args, 2000, 2000, 200)
    samples = args.pairs
    xor_samples = _common.size(args, 5, 3, 2)
    fns: dict = {}
    for name, (sizes, batch) in configs.items():
        net, params, x, y = _problem(sizes, batch, key)
        step = fnn.make_step(net, "cross_entropy", optax.sgd(1e-3))
        state = [step.init(params)]

        def call(step=step, state=state, x=x, y=y):
            state[0], m = step(state[0], x, y)
            return m["loss"]

        fns[name] = {"call": call, "scan": compiled_steps(net, params, x, y, "manual", scan_n)}
    x, y = fnn.datasets.xor()
    xnet = fnn.MLP((2, 8, 2), hidden="tanh", output="softmax")
    xor_scan = compiled_steps(xnet, xnet.init(key), x, y, "manual", xor_steps)
    cfg = {
        "steps": [[n, list(s), b] for n, (s, b) in configs.items()],
        "xor_steps": xor_steps,
        "samples": samples,
        "xor_samples": xor_samples,
        "min_s": 0.02,
        "seed": args.seed,
    }
    fnn_s: dict = {(n, w): [] for n in configs for w in ("call", "scan")} | {"xor": []}
    torch_s: dict = {n: [] for n in configs} | {"xor": []}
    per_round: dict = {n: [] for n in configs} | {"xor": []}
    info: dict = {}
    for _ in range(rounds):  # fnn here, then PyTorch alone in a fresh process; again
        here: dict = {}
        for name in configs:
            s: dict = {}
            interleaved(fns[name], samples, samples_out=s)
            for w in ("call", "scan"):
                fnn_s[(name, w)] += s[w]
            here[name] = _q(s["call"])
        s = {}
        interleaved({"xor": xor_scan}, xor_samples, min_s=0.0, samples_out=s)
        fnn_s["xor"] += s["xor"]
        here["xor"] = _q(s["xor"])
        info = call_worker("torch", cfg)
        assert not info["jax_imported"]
        for r in info["steps"]:
            torch_s[r["config"]] += r["samples_s"]
            per_round[r["config"]].append(_q(r["samples_s"]) / here[r["config"]])
        torch_s["xor"] += info["xor_samples_s"]
        per_round["xor"].append(_q(info["xor_samples_s"]) / here["xor"])
    process = f"PyTorch alone in its own process, {info['threads']} threads"
    rows = []
    for name, (_, batch) in configs.items():
        t, c, sc = _q(torch_s[name]), _q(fnn_s[(name, "call")]), _q(fnn_s[(name, "scan")]) / scan_n
        rows.append(
            {
                "config": name,
                "batch": batch,
                "torch_us": t * 1e6,
                "fnn_call_us": c * 1e6,
                "fnn_scan_us": sc * 1e6,
                "speedup_call": t / c,
                "speedup_scan": t / sc,
                "speedup_call_per_round": per_round[name],
                "samples_per_side": len(torch_s[name]),
            }
        )
    xt, xf = _q(torch_s["xor"]), _q(fnn_s["xor"])
    xor = {
        "steps": xor_steps,
        "torch_s": xt,
        "fnn_s": xf,
        "speedup": xt / xf,
        "speedup_per_round": per_round["xor"],
        "samples_per_side": len(torch_s["xor"]),
    }
    r = {
        "version": info["version"],
        "threads": info["threads"],
        "cores": cores(),
        "process": process,
        "fnn_process": "fnn in the benchmark process (JAX's own thread pool)",
        "rounds": rounds,
        "scan_steps": scan_n,
        "steps": rows,
        "xor": xor,
    }
    if not args.smoke:  # the old in-process arrangement, once, to record the distortion
        name = "mlp 64-128-128-10"
        sizes, batch = configs[name]
        b = call_worker(
            "torch_beside_fnn", {"sizes": list(sizes), "batch": batch, "samples": samples, "min_s": 0.02, "seed": args.seed}
        )
        alone = rows[0]["torch_us"]
        r["beside_fnn"] = {
            "config": name,
            "process": "PyTorch steps alternating with fnn jitted steps in one process (not a comparison)",
            "torch_us": _q(b["torch_samples_s"]) * 1e6,
            "torch_alone_us": alone,
            "slowdown": _q(b["torch_samples_s"]) * 1e6 / alone,
        }
    print(f"\n5a. PyTorch {r['version']} eager vs fnn, SGD, float32, same init scheme; {process}, fnn in this process;")
    print(f"    {rounds} rounds alternating an fnn batch and a PyTorch process; medians of all samples")
    print(
        _common.table(
            [
                (
                    w["config"],
                    f"{w['torch_us']:.1f}",
                    f"{w['fnn_call_us']:.1f}",
                    f"{w['fnn_scan_us']:.1f}",
                    f"{w['speedup_call']:.2f}x",
                    f"{w['speedup_scan']:.2f}x",
                    f"{min(w['speedup_call_per_round']):.2f}-{max(w['speedup_call_per_round']):.2f}",
                )
                for w in rows
            ]
            + [
                (
                    f"XOR training, {xor_steps:,} steps",
                    f"{xt * 1e6:.0f}",
                    "",
                    f"{xf * 1e6:.0f}",
                    "",
                    f"{xor['speedup']:.1f}x",
                    f"{min(per_round['xor']):.1f}-{max(per_round['xor']):.1f}",
                )
            ],
            [
                "config",
                "torch µs",
                "fnn µs/call",
                f"fnn µs (scan of {scan_n})",
                "speed-up (call)",
                "speed-up (scan)",
                "per round",
            ],
        )
    )
    if "beside_fnn" in r:
        b = r["beside_fnn"]
        print(
            f"    why alone: PyTorch's {b['config']} step timed between fnn steps in one process: "
            f"{b['torch_us']:.0f} µs vs {b['torch_alone_us']:.0f} µs alone ({b['slowdown']:.1f}x)"
        )
    return r


def _vs_sklearn(args, key) -> dict:
    x, y = fnn.datasets.digits()
    x_tr, y_tr, x_te, y_te = fnn.datasets.train_test_split(key, x, y, test_fraction=0.2, stratify=True)
    x_tr, x_te, _, _ = fnn.datasets.standardize(x_tr, x_te)
    max_iter = _common.size(args, 200, 200, 5)
    rounds = _common.size(args, 3, 3, 1)
    net = fnn.MLP((64, 64, 10), hidden="relu", output="softmax")
    p0 = net.init(key)
    kw = {"loss": "cross_entropy", "optimizer": optax.adam(1e-3), "batch_size": 200, "key": key, "progress": False}
    sk_s: list[float] = []
    sk_epochs: list[int] = []
    fnn_s: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        npz = str(pathlib.Path(tmp) / "digits.npz")
        np.savez(npz, **{k: np.asarray(v) for k, v in {"x_tr": x_tr, "y_tr": y_tr, "x_te": x_te, "y_te": y_te}.items()})
        cfg = {"npz": npz, "repeats": 1, "max_iter": max_iter, "seed": args.seed}
        for i in range(rounds):  # scikit-learn alone in a fresh process, then fnn warm here; again
            info = call_worker("sklearn", cfg)
            assert not info["jax_imported"]
            sk_s += info["fit_s"]
            sk_epochs += info["epochs_all"]
            if i == 0:  # fnn runs as many epochs as scikit-learn's own stopping rule ran
                epochs = info["epochs"]

                def fit(epochs=epochs):
                    return jax.block_until_ready(fnn.fit(net, p0, (x_tr, y_tr), epochs=epochs, **kw)[0])

                t = time.perf_counter()
                fit()
                first_s = time.perf_counter() - t
            t = time.perf_counter()
            params = fit()
            fnn_s.append(time.perf_counter() - t)
    fnn_acc = float(fnn.evaluate(net, params, x_te, y_te, loss="cross_entropy")["accuracy"])
    sk, fw = _q(sk_s), _q(fnn_s)
    r = {
        "version": info["version"],
        "process": f"scikit-learn alone in its own process, {info['blas_threads']} BLAS threads",
        "fnn_process": "fnn in the benchmark process",
        "sklearn_acc": info["test_accuracy"],
        "sklearn_s": sk,
        "sklearn_s_samples": sk_s,
        "sklearn_epochs": epochs,
        "sklearn_epochs_all": sk_epochs,  # the same every run (fixed random_state)
        "fnn_epochs": epochs,
        "fnn_acc": fnn_acc,
        "fnn_first_call_s": first_s,
        "fnn_warm_s": fw,
        "fnn_warm_s_samples": fnn_s,
        "warm_fraction": fw / sk,
        "with_compile_fraction": first_s / sk,
        "max_iter": max_iter,
    }
    print(
        f"\n5b. digits 64-64-10 (ReLU, Adam 1e-3, batch 200): the same {epochs} epochs (scikit-learn's stopping rule); "
        f"{r['process']}, fnn in this process"
    )
    print(
        _common.table(
            [
                ("scikit-learn MLPClassifier", f"{r['sklearn_acc']:.3f}", epochs, f"{sk:.2f}", ""),
                ("fnn.fit, first call (compile + run)", f"{fnn_acc:.3f}", epochs, f"{first_s:.2f}", f"{first_s / sk:.2f}"),
                ("fnn.fit, warm", f"{fnn_acc:.3f}", epochs, f"{fw:.2f}", f"{fw / sk:.2f}"),
            ],
            ["model", "test acc", "epochs", "wall s (median)", "fraction of scikit-learn"],
        )
    )
    return r


def readme_row(claim: str, value: float, text: str, anchor: str, ok: bool | None) -> dict:
    """A headline the README's benchmark table shows: ``text`` is written out in full (no format field)."""
    return _common.headline(
        claim, value, fmt=text.replace("{", "{{").replace("}", "}}"), anchor=anchor, ok=ok, basis="tested", readme=True
    )


TORCH_TARGETS = {"mlp": 1.3, "large": 1.0, "xor": 50}


def headlines(peers: dict) -> list[dict]:
    out = []
    t = peers.get("torch")
    if isinstance(t, dict):
        steps = {r["config"].split()[0]: r for r in t["steps"]}
        parts = [f"{r['config'].split()[1]} b {r['batch']}" for r in t["steps"]]
        texts = [f"{r['speedup_call']:.2f}x (inside a scan of {t['scan_steps']}: {r['speedup_scan']:.2f}x)" for r in t["steps"]]
        x = t["xor"]
        ok = (
            all(r["speedup_call"] >= TORCH_TARGETS.get(k, 1.0) for k, r in steps.items()) and x["speedup"] >= TORCH_TARGETS["xor"]
        )
        anchors = [f"≥ {TORCH_TARGETS.get(k, 1.0)}x" for k in steps] + [f"≥ {TORCH_TARGETS['xor']}x"]
        out.append(
            readme_row(
                f"speed-up over PyTorch {t['version']} eager (PyTorch time / fnn time; same init scheme, SGD, float32): "
                f"{', '.join(parts)}, per jitted fnn step call; XOR 2-8-2, {x['steps']:,} full-batch steps (fnn: one lax.scan). "
                f"{t['process']}; fnn in the benchmark process; medians over {t['rounds']} alternating rounds",
                steps["mlp"]["speedup_call"],
                "; ".join(texts) + f"; XOR {x['speedup']:.0f}x",
                ", ".join(anchors),
                ok,
            )
        )
    s = peers.get("sklearn")
    if isinstance(s, dict):
        gap = s["sklearn_acc"] - s["fnn_acc"]
        out.append(
            readme_row(
                f"digits 64-64-10 (ReLU, Adam 1e-3, batch 200): warm fnn.fit time for the same {s['fnn_epochs']} epochs that "
                f"scikit-learn's MLPClassifier ran (its own stopping rule) / scikit-learn's fit time; {s['process']}, "
                f"fnn in the benchmark process; test accuracies after those epochs",
                s["warm_fraction"],
                f"{s['warm_fraction']:.2f} (fnn {s['fnn_warm_s']:.2f} s vs scikit-learn {s['sklearn_s']:.2f} s, medians of "
                f"{len(s['fnn_warm_s_samples'])} and {len(s['sklearn_s_samples'])} runs; first fnn call with compilation "
                f"{s['fnn_first_call_s']:.1f} s); test accuracy fnn {s['fnn_acc']:.3f} vs scikit-learn {s['sklearn_acc']:.3f}",
                "≤ 0.20 of its time, test accuracy at most 0.01 below",
                s["warm_fraction"] <= 0.2 and gap <= 0.01,
            )
        )
    return out
