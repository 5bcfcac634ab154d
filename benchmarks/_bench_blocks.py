"""Blocks (issue 26, item 7): each block's hand-derived backward pass against ``jax.vjp``, BatchNorm's closed-form
backward against its staged one, and a batch-norm + dropout network's training step against plain JAX and PyTorch.

Run from the repository root (not part of the tests; ``--quick`` is, on tiny sizes whose numbers mean nothing)::

    python -m benchmarks._bench_blocks [--quick] [--record] [--rounds N] [--out PATH] [--no-torch]

``--record`` writes ``benchmarks/records/blocks.json`` (``python -m tools.readme`` shows it on the results page, docs/results.md).
Everything is float32, jitted and warm (compiled before timing); a sample repeats a call enough times to last
``min_s`` and times it with ``block_until_ready`` on the last result. Functions compared with each other are
timed in the same pass, one sample each, in an order that reverses from one pass to the next; a ratio is the
median of the per-pass ratios (its quartiles give the spread), a time the median of every sample. Sections:

1. ``blocks``: per block at batch × width (1024 × 1024), ``block.forward`` (train mode) then ``block.backward``
   with a fixed random ``dy``, against ``jax.vjp`` of the same forward pulled back with the same ``dy``; both
   return the output, the new running statistics, the gradients and ``∂E/∂x``. Target: manual / autodiff ≤ 1.05.
2. ``batchnorm_backward``: BatchNorm's backward pass alone (the forward's residuals given), the closed form
   against ``backward_staged`` (CS231n's chain rule through each intermediate).
3. ``network``: ``fnn.MLP(sizes, "relu", "softmax", norm="batch", dropout=0.5)`` (Linear → BatchNorm → ReLU →
   Dropout per hidden layer), SGD 0.1, cross-entropy, a fresh dropout key each step, per batch size:
   ``fnn.make_step`` (``grad="manual"`` and ``"autodiff"``) against a plain-JAX step written the usual way
   (a hand-written forward with batch norm, dropout and the running averages, ``jax.value_and_grad``, an
   optax update), per jitted call and inside one compiled ``lax.scan`` of ``scan`` steps. Target: fnn / plain
   JAX ≤ 1.1. PyTorch eager (``nn.Sequential`` of ``Linear``/``BatchNorm1d``/``ReLU``/``Dropout``, SGD) runs
   alone in a fresh process (``benchmarks/_torch_blocks.py``, 2 threads) after each round's JAX passes.

The plain-JAX step draws its dropout masks as fnn does (``fold_in`` of the step key with the block's position),
so that one step of each from the same weights can be checked equal (``agreement``); drawing them with
``split`` costs the same. Every sample, the load average of each round and the agreement checks are recorded.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import itertools
import json
import os
import pathlib
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

import fnn

ROOT = pathlib.Path(__file__).resolve().parents[1]
RECORD = "benchmarks/records/blocks.json"
PROG = "python -m benchmarks._bench_blocks"
TORCH_WORKER = pathlib.Path(__file__).with_name("_torch_blocks.py")
SCHEMA = 1

FULL = {
    "batch": 1024, "width": 1024, "sizes": [784, 1024, 1024, 10], "net_batches": [128, 1024], "scan": 20,
    "rounds": 6, "passes": 3, "min_s": 0.1, "torch_samples": 5,
}  # fmt: skip
QUICK = {
    "batch": 32, "width": 32, "sizes": [16, 32, 32, 4], "net_batches": [16], "scan": 3,
    "rounds": 1, "passes": 2, "min_s": 0.002, "torch_samples": 2,
}  # fmt: skip
TARGETS = {"block": 1.05, "step": 1.1}  # manual / autodiff per block; fnn / plain JAX per training step
DROP_RATE, LR, THREADS, KEYS = 0.5, 0.1, 2, 64
# A diagnostic, not a comparison: XLA:CPU (jaxlib 0.10) hands reductions and elementwise work to its YNNPACK library
# fusions by default; with this option it keeps them for dots only (as fnn's fit_many loop compiles). Blocks and
# scans are also timed compiled so, to see how much of a gap is the compiler's choice of kernels.
DOTS_ONLY = {"xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_DOT"}
DIAG = ", dots only"  # the suffix of the diagnostic variants' names


# ---- timing ---------------------------------------------------------------------------------------------
def calibrate(fns: Mapping[str, Callable[[], Any]], min_s: float) -> dict[str, int]:
    """Compile and warm each function; the repetitions that make one of its samples last ``min_s``."""
    reps = {}
    for name, f in fns.items():
        jax.block_until_ready(f())
        t = time.perf_counter()
        jax.block_until_ready(f())
        reps[name] = max(1, int(min_s / max(time.perf_counter() - t, 1e-7)))
    return reps


def alternate(fns: Mapping[str, Callable[[], Any]], reps: Mapping[str, int], passes: int, first: int, out: dict) -> int:
    """``passes`` passes, each timing every function once (seconds per call), in order on even pass numbers and
    reversed on odd ones (counting from ``first``); the samples are appended to ``out[name]``. Returns the next
    pass number."""
    names = list(fns)
    for name in names:
        out.setdefault(name, [])
    for p in range(first, first + passes):
        for name in names if p % 2 == 0 else names[::-1]:
            f, n = fns[name], reps[name]
            t = time.perf_counter()
            for _ in range(n):
                r = f()
            jax.block_until_ready(r)
            out[name].append((time.perf_counter() - t) / n)
    return first + passes


def ratio(samples: dict[str, list[float]], a: str, b: str) -> dict[str, Any]:
    """Median and quartiles of the per-pass ratios ``a / b``."""
    r = np.asarray(samples[a]) / np.asarray(samples[b])
    q1, med, q3 = np.percentile(r, [25, 50, 75])
    return {"median": float(med), "iqr": [float(q1), float(q3)], "pairs": len(r)}


def med_us(xs: Sequence[float]) -> float:
    return float(np.median(xs)) * 1e6


def rel_diff(a: Any, b: Any) -> float:
    """The largest |a − b| / max|b| over the leaves of two pytrees of arrays."""
    worst = 0.0
    for leaf_a, leaf_b in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
        u, v = np.asarray(leaf_a, np.float64), np.asarray(leaf_b, np.float64)
        if v.size:
            worst = max(worst, float(np.max(np.abs(u - v)) / max(float(np.max(np.abs(v))), 1e-30)))
    return worst


# ---- 1 and 2: blocks ------------------------------------------------------------------------------------------
def block_cases(width: int) -> dict[str, fnn.blocks.Block]:
    b = fnn.blocks
    return {
        f"Dense({width})": b.Dense(width),
        "Activate(relu)": b.Activate(fnn.activations.get("relu")),
        f"Dropout({DROP_RATE})": b.Dropout(DROP_RATE),
        "BatchNorm (train)": b.BatchNorm(),
        "LayerNorm": b.LayerNorm(),
        f"Residual(Dense({width}), relu)": b.Residual((b.Dense(width), b.Activate(fnn.activations.get("relu")))),
    }


def block_pair(block: fnn.blocks.Block, options: dict | None = None) -> tuple[Callable, Callable]:
    """Jitted ``(params, x, dy, key) -> (y, state, grads, dx)``: the block's own backward pass, and ``jax.vjp``
    (``options``: XLA compiler options)."""

    def manual(params: dict, x: jax.Array, dy: jax.Array, key: jax.Array) -> tuple:
        y, state, res = block.forward(params, x, key, True)
        grads, dx = block.backward(params, res, dy)
        return y, state, grads, dx

    def autodiff(params: dict, x: jax.Array, dy: jax.Array, key: jax.Array) -> tuple:
        def f(p: dict, x: jax.Array) -> tuple:
            p = {k: jax.lax.stop_gradient(v) if k == "state" else v for k, v in p.items()}  # not trained
            y, state, _ = block.forward(p, x, key, True)
            return y, state

        y: jax.Array
        state: Any
        y, vjp, state = jax.vjp(f, params, x, has_aux=True)
        grads, dx = vjp(dy)
        return y, state, grads, dx

    return jax.jit(manual, compiler_options=options), jax.jit(autodiff, compiler_options=options)


def accepted(options: dict) -> bool:
    """Whether this jaxlib compiles with ``options`` (the diagnostic is left out where it does not)."""
    try:
        jax.jit(jnp.negative, compiler_options=options)(jnp.zeros(()))
    except Exception:  # any refusal means: not this jaxlib
        return False
    return jax.default_backend() == "cpu"


def time_blocks(s: dict, key: jax.Array, dots_only: bool, echo: Callable[[str], Any]) -> tuple[list[dict], dict]:
    k_x, k_dy, k_p, k_drop = jax.random.split(key, 4)
    x = jax.random.normal(k_x, (s["batch"], s["width"]), jnp.float32)
    dy = jax.random.normal(k_dy, (s["batch"], s["width"]), jnp.float32)
    cases, checks = block_cases(s["width"]), {}
    fns: dict[str, dict[str, Callable[[], Any]]] = {}
    for name, block in cases.items():
        params = block.init(k_p, s["width"], jnp.float32)
        fns[name] = {}
        for suffix, options in [("", None)] + ([(DIAG, DOTS_ONLY)] if dots_only else []):
            man, auto = block_pair(block, options)
            fns[name]["manual" + suffix] = functools.partial(man, params, x, dy, k_drop)
            fns[name]["autodiff" + suffix] = functools.partial(auto, params, x, dy, k_drop)
        both = ("", DIAG) if dots_only else ("",)
        checks[name] = max(rel_diff(fns[name]["manual" + d](), fns[name]["autodiff" + d]()) for d in both)
    # 2. BatchNorm's backward pass alone, from the forward's residuals
    bn = fnn.blocks.BatchNorm()
    p_bn = bn.init(k_p, s["width"], jnp.float32)
    _, _, (xhat, inv, _) = jax.jit(lambda p, x: bn.forward(p, x, None, True))(p_bn, x)
    closed = jax.jit(lambda p, xhat, inv, dy: bn.backward(p, (xhat, inv, True), dy))
    staged = jax.jit(lambda p, xhat, inv, dy: bn.backward_staged(p, (xhat, inv, True), dy))
    bn_fns = {"closed": lambda: closed(p_bn, xhat, inv, dy), "staged": lambda: staged(p_bn, xhat, inv, dy)}
    bn_check = rel_diff(bn_fns["closed"](), bn_fns["staged"]())

    reps = {name: calibrate(f, s["min_s"]) for name, f in fns.items()}
    bn_reps = calibrate(bn_fns, s["min_s"])
    samples: dict[str, dict] = {name: {} for name in fns}
    bn_samples: dict = {}
    loads, p = [], 0
    for r in range(s["rounds"]):
        loads.append(os.getloadavg()[0])
        for name in list(fns) if r % 2 == 0 else list(fns)[::-1]:
            alternate(fns[name], reps[name], s["passes"], p, samples[name])
        p = alternate(bn_fns, bn_reps, s["passes"], p, bn_samples)
        echo(f"blocks: round {r + 1}/{s['rounds']} (load {loads[-1]:.2f})")
    rows = []
    for name in fns:
        q = ratio(samples[name], "manual", "autodiff")
        rows.append({
            "block": name, "manual_us": med_us(samples[name]["manual"]), "autodiff_us": med_us(samples[name]["autodiff"]),
            "ratio": q, "target": TARGETS["block"], "met": q["median"] <= TARGETS["block"], "max_rel_diff": checks[name],
            "reps": reps[name], "samples": samples[name],
        })  # fmt: skip
        if dots_only:
            rows[-1]["dots_only_ratio"] = ratio(samples[name], "manual" + DIAG, "autodiff" + DIAG)
    q = ratio(bn_samples, "closed", "staged")
    bn_row = {
        "closed_us": med_us(bn_samples["closed"]), "staged_us": med_us(bn_samples["staged"]), "ratio": q,
        "max_rel_diff": bn_check, "reps": bn_reps, "samples": bn_samples, "load": loads,
    }  # fmt: skip
    return rows, bn_row


# ---- 3: the network's training step ---------------------------------------------------------------------------
def plain_jax(
    sizes: Sequence[int], bias: Sequence[bool], drop_at: Sequence[int], momentum: float = 0.1, eps: float = 1e-5
) -> tuple:
    """The same training step written by hand in plain JAX: ``(init(fnn_params), step)`` where
    ``step(params, stats, opt_state, x, y, key) -> (params, stats, opt_state, loss)``. ``bias``: per dense layer,
    whether it has one (fnn's MLP drops it before batch norm, whose β takes its place); ``drop_at``: the positions
    fnn's network gives its dropout blocks (the masks are drawn from ``fold_in(key, position)``, as fnn does)."""
    opt = optax.sgd(LR)
    n_hidden = len(sizes) - 2

    def forward(p: dict, stats: dict, x: jax.Array, key: jax.Array) -> tuple[jax.Array, dict]:
        h, new = x, {}
        for i in range(n_hidden):
            z = h @ p[f"W{i}"] + p[f"b{i}"] if bias[i] else h @ p[f"W{i}"]
            mu, var = jnp.mean(z, axis=0), jnp.var(z, axis=0)
            z = p[f"gamma{i}"] * (z - mu) * jax.lax.rsqrt(var + eps) + p[f"beta{i}"]
            n = z.shape[0]
            new[f"mean{i}"] = (1 - momentum) * stats[f"mean{i}"] + momentum * mu
            new[f"var{i}"] = (1 - momentum) * stats[f"var{i}"] + momentum * var * (n / (n - 1))
            h = jax.nn.relu(z)
            keep = jax.random.bernoulli(jax.random.fold_in(key, drop_at[i]), 1 - DROP_RATE, h.shape)
            h = jnp.where(keep, h / (1 - DROP_RATE), 0)
        z = h @ p[f"W{n_hidden}"]
        return (z + p[f"b{n_hidden}"] if bias[n_hidden] else z), new

    def loss(p: dict, stats: dict, x: jax.Array, y: jax.Array, key: jax.Array) -> tuple[jax.Array, dict]:
        logits, new = forward(p, stats, x, key)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean(), new

    def step(p: dict, stats: dict, opt_state: Any, x: jax.Array, y: jax.Array, key: jax.Array) -> tuple:
        (E, new), grads = jax.value_and_grad(loss, has_aux=True)(p, stats, x, y, key)
        updates, opt_state = opt.update(grads, opt_state, p)
        return optax.apply_updates(p, updates), new, opt_state, E

    def init(fnn_params: list[dict]) -> tuple[dict, dict, Any]:
        dense = [q for q in fnn_params if "W" in q]
        norms = [q for q in fnn_params if "gamma" in q]
        p = {f"W{i}": q["W"].T for i, q in enumerate(dense)} | {f"b{i}": q["b"] for i, q in enumerate(dense) if "b" in q}
        p |= {f"gamma{i}": q["gamma"] for i, q in enumerate(norms)} | {f"beta{i}": q["beta"] for i, q in enumerate(norms)}
        stats = {f"{k}{i}": q["state"][k] for i, q in enumerate(norms) for k in ("mean", "var")}
        return p, stats, opt.init(p)

    return init, step


def make_net(sizes: Sequence[int]) -> fnn.Network:
    """``fnn.MLP(sizes, "relu", "softmax", norm="batch", dropout=0.5)``: this network of blocks."""
    return fnn.Network.mlp(tuple(sizes), "relu", "softmax", norm="batch", dropout=DROP_RATE)


def network_fns(sizes: Sequence[int], batch: int, scan: int, key: jax.Array, dots_only: bool) -> tuple[dict, dict]:
    """The timed calls at one batch size: fnn manual / autodiff / plain JAX, per call and per scan of ``scan``
    steps (with ``dots_only``, also the scans of fnn manual and plain JAX compiled with :data:`DOTS_ONLY`); and the
    agreement of one step of each from the same weights, dropout key and batch."""
    net = make_net(sizes)
    k_p, k_x, k_y, k_keys = jax.random.split(key, 4)
    params = net.init(k_p)
    x = jax.random.normal(k_x, (batch, sizes[0]), jnp.float32)
    y = jax.random.randint(k_y, (batch,), 0, sizes[-1])
    keys = itertools.cycle(list(jax.random.split(k_keys, KEYS)))  # a fresh dropout key per step
    drop_at = [i for i, b in enumerate(net.blocks) if isinstance(b, fnn.blocks.Dropout)]
    bias = [b.bias for b in net.blocks if isinstance(b, fnn.blocks.Dense)]
    init, plain_step = plain_jax(sizes, bias, drop_at)
    plain_jit = jax.jit(plain_step)
    fns: dict[str, Callable[[], Any]] = {}
    spec: Any = net  # (make_step's annotation names the MLP only; it takes a Network)
    steps = {g: fnn.make_step(spec, "cross_entropy", optax.sgd(LR), grad=g) for g in ("manual", "autodiff")}
    for g, step in steps.items():
        box = [step.init(params)]

        def call(step: fnn.Step = step, box: list = box) -> jax.Array:
            box[0], m = step(box[0], x, y, key=next(keys))
            return m["loss"]

        fns[f"fnn {g}"] = call
    box_p = [init(params)]

    def plain_call() -> jax.Array:
        params, stats, opt_state, E = plain_jit(*box_p[0], x, y, next(keys))
        box_p[0] = (params, stats, opt_state)
        return E

    fns["plain JAX"] = plain_call
    n_out = sizes[-1]

    def fnn_run(step: fnn.Step) -> Callable:
        def run(state: Any, x: jax.Array, y: jax.Array, key: jax.Array) -> Any:
            t = fnn.losses.targets("cross_entropy", y, n_out, (x.shape[0],), x.dtype)  # as make_step's call does
            body = lambda c, i: (step.fn(c, x, t, None, jax.random.fold_in(key, i))[0], None)
            return jax.lax.scan(body, state, jnp.arange(scan))[0]

        return run

    def plain_run(carry: tuple, x: jax.Array, y: jax.Array, key: jax.Array) -> tuple:
        body = lambda c, i: (plain_step(*c, x, y, jax.random.fold_in(key, i))[:3], None)
        return jax.lax.scan(body, carry, jnp.arange(scan))[0]

    runs: list[tuple[str, Callable, Any, dict | None]] = [
        (f"fnn {g}", fnn_run(step), step.init(params), None) for g, step in steps.items()
    ]
    runs.append(("plain JAX", plain_run, init(params), None))
    if dots_only:  # the diagnostic: fnn manual and plain JAX compiled with YNNPACK for dots only
        runs += [(n + DIAG, f, s0, DOTS_ONLY) for n, f, s0, _ in (runs[0], runs[2])]
    for name, run, start, options in runs:
        run_jit, sbox = jax.jit(run, compiler_options=options), [start]

        def scan_call(run_jit: Callable = run_jit, sbox: list = sbox) -> Any:
            sbox[0] = run_jit(sbox[0], x, y, next(keys))
            return sbox[0]

        fns[name.replace(DIAG, "") + ", scan" + (DIAG if options else "")] = scan_call
    # one step of each from the same weights, batch and dropout key: the same loss and the same new weights
    k = jax.random.key(1)
    agree = {}
    p1, stats1, _, E_plain = plain_jit(*init(params), x, y, k)
    for g, step in steps.items():
        state, m = step(step.init(params), x, y, key=k)
        dense = [q for q in state.params if "W" in q]
        agree[g] = {
            "loss": rel_diff(m["loss"], E_plain),
            "weights": rel_diff([q["W"].T for q in dense], [p1[f"W{i}"] for i in range(len(dense))]),
            "running_stats": rel_diff(
                [q["state"][s] for q in state.params if "state" in q for s in ("mean", "var")],
                [stats1[f"{s}{i}"] for i in range(len(sizes) - 2) for s in ("mean", "var")],
            ),
        }
    return fns, agree


def baseline(name: str) -> str:
    """The plain-JAX variant an fnn variant is compared with (the same form: per call or scan, same options)."""
    return name.replace("fnn manual", "plain JAX").replace("fnn autodiff", "plain JAX")


def time_network(s: dict, key: jax.Array, torch: bool, dots_only: bool, echo: Callable[[str], Any]) -> dict:
    cases = {b: network_fns(s["sizes"], b, s["scan"], jax.random.fold_in(key, b), dots_only) for b in s["net_batches"]}
    reps = {b: calibrate(fns, s["min_s"]) for b, (fns, _) in cases.items()}
    samples: dict[int, dict] = {b: {} for b in cases}
    torch_samples: dict[int, list[float]] = {b: [] for b in cases}
    torch_info: dict = {}
    loads, p = [], 0
    net = make_net(s["sizes"])
    hidden_bias = [b.bias for b in net.blocks if isinstance(b, fnn.blocks.Dense)][:-1]
    cfg = {
        "sizes": s["sizes"], "batches": s["net_batches"], "drop_rate": DROP_RATE, "lr": LR, "samples": s["torch_samples"],
        "min_s": s["min_s"], "seed": 0, "threads": THREADS, "hidden_bias": all(hidden_bias),
    }  # fmt: skip
    if len(set(hidden_bias)) > 1:
        raise RuntimeError(f"the PyTorch peer gives every hidden layer the same bias setting, fnn's network has {hidden_bias}")
    for r in range(s["rounds"]):  # the JAX passes here, then PyTorch alone in a fresh process; again
        loads.append(os.getloadavg()[0])
        for b, (fns, _) in cases.items():
            p = alternate(fns, reps[b], s["passes"], p, samples[b])
        if torch:
            torch_info = call_torch(cfg)
            for t_row in torch_info["steps"]:
                torch_samples[t_row["batch"]] += t_row["samples_s"]
        echo(f"network: round {r + 1}/{s['rounds']} (load {loads[-1]:.2f})")
    rows = []
    for b, (_, agree) in cases.items():
        sm = samples[b]
        row: dict[str, Any] = {"batch": b, "us": {name: med_us(v) for name, v in sm.items()}}
        row["us_per_step"] = {n: v / s["scan"] if ", scan" in n else v for n, v in row["us"].items()}
        row["vs_plain"] = {n: ratio(sm, n, baseline(n)) for n in sm if n.startswith("fnn")}
        row["met"] = all(q["median"] <= TARGETS["step"] for n, q in row["vs_plain"].items() if DIAG not in n)
        if torch_samples[b]:
            t = med_us(torch_samples[b])
            row["torch_us"] = t
            row["torch_speedup"] = {n: t / v for n, v in row["us_per_step"].items()}  # PyTorch time / this time
        row |= {"agreement": agree, "reps": reps[b], "samples": sm, "torch_samples": torch_samples[b]}
        rows.append(row)
    out: dict[str, Any] = {"sizes": s["sizes"], "scan": s["scan"], "target": TARGETS["step"], "rows": rows, "load": loads}
    out["network"] = net.to_json()
    if torch:
        out["torch"] = {k: torch_info[k] for k in ("version", "threads")} | {"process": f"PyTorch alone, {THREADS} threads"}
    else:
        out["torch"] = None
    return out


def call_torch(cfg: dict, timeout: float = 900) -> dict:
    """PyTorch's steps timed alone in a fresh process (``benchmarks/_torch_blocks.py``); its JSON answer."""
    p = subprocess.run(
        [sys.executable, str(TORCH_WORKER), json.dumps(cfg)], capture_output=True, text=True, timeout=timeout, check=False
    )
    if p.returncode != 0:
        raise RuntimeError(f"the PyTorch worker failed (exit {p.returncode}):\n{p.stderr[-3000:]}")
    info = json.loads(p.stdout.strip().splitlines()[-1])
    if info["jax_imported"]:
        raise RuntimeError("the PyTorch worker imported JAX: it must run alone")
    return info


# ---- the run ---------------------------------------------------------------------------------------------------
def report(rec: dict, echo: Callable[[str], Any]) -> None:
    for r in rec["blocks"]:
        q = r["ratio"]
        echo(
            f"{r['block']:28s} manual {r['manual_us']:9.1f} µs  vjp {r['autodiff_us']:9.1f} µs  ratio {q['median']:.3f} "
            f"(IQR {q['iqr'][0]:.3f}-{q['iqr'][1]:.3f})  {'met' if r['met'] else 'MISSED'}  diff {r['max_rel_diff']:.1e}"
        )
    b = rec["batchnorm_backward"]
    echo(f"BatchNorm backward: closed {b['closed_us']:.1f} µs, staged {b['staged_us']:.1f} µs, ratio {b['ratio']['median']:.3f}")
    for r in rec["network"]["rows"]:
        parts = [f"{n} {v:.1f} µs" for n, v in r["us_per_step"].items()]
        if "torch_us" in r:
            parts.append(f"PyTorch {r['torch_us']:.1f} µs")
        echo(f"network batch {r['batch']} (per step): " + ", ".join(parts))
        echo("   fnn / plain JAX: " + ", ".join(f"{n} {q['median']:.3f}" for n, q in r["vs_plain"].items()))


def main(argv: Sequence[str] | None = None, echo: Callable[[str], Any] = print) -> dict[str, Any]:
    ap = argparse.ArgumentParser(prog=PROG, description=__doc__.strip().splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes, for the test of this script (numbers mean nothing)")
    ap.add_argument("--record", action="store_true", help=f"write the record to {RECORD}")
    ap.add_argument("--out", default=None, help="write the record here instead")
    ap.add_argument("--rounds", type=int, default=None, help="rounds of alternating passes (default: 6, quick 1)")
    ap.add_argument("--no-torch", action="store_true", help="leave PyTorch out")
    args = ap.parse_args(argv)
    settings = dict(QUICK if args.quick else FULL)
    if args.rounds is not None:
        if args.rounds < 1:
            ap.error("--rounds must be at least 1")
        settings["rounds"] = args.rounds
    import importlib.util

    torch = not args.no_torch and importlib.util.find_spec("torch") is not None  # found without importing it here
    from experiments.__main__ import git_state, run_facts

    started, git = datetime.datetime.now(datetime.timezone.utc), git_state()
    load_start, t = os.getloadavg(), time.perf_counter()
    key = jax.random.key(0)
    dots_only = accepted(DOTS_ONLY)
    blocks, bn = time_blocks(settings, jax.random.fold_in(key, 1), dots_only, echo)
    network = time_network(settings, jax.random.fold_in(key, 2), torch, dots_only, echo)
    rec: dict[str, Any] = {
        "schema": SCHEMA,
        "tool": PROG,
        "mode": "quick" if args.quick else "full",
        **run_facts(list(argv if argv is not None else sys.argv[1:]), started, prog=PROG, git=git),
        "settings": settings | {"dtype": "float32", "drop_rate": DROP_RATE, "lr": LR, "torch_threads": THREADS},
        "targets": TARGETS,
        "diagnostic_options": DOTS_ONLY if dots_only else None,
        "blocks": blocks,
        "batchnorm_backward": bn,
        "network": network,
        "wall_s": time.perf_counter() - t,
    }
    rec["machine"] |= {"load_average_start": list(load_start), "load_average_end": list(os.getloadavg())}
    if network["torch"]:
        rec["versions"]["torch"] = network["torch"]["version"]
    report(rec, echo)
    out = args.out or (RECORD if args.record else None)
    if out:
        path = pathlib.Path(out)
        path = path if path.is_absolute() else ROOT / path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(rec, indent=1) + "\n", encoding="utf-8")
        echo(f"wrote {path}")
    return rec


if __name__ == "__main__":
    main()
