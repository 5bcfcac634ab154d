"""Backpropagation computes every gradient in time linear in the network size; one parameter at a time costs quadratic time.

Square tanh MLPs ``(w, w, w, w)`` (three weight layers, P = 3(w² + w) parameters, ~10² … 10⁶) on a
fixed batch of 64 random examples with the MSE loss. Timed, each jitted, warmed up, the median of
several interleaved rounds (``block_until_ready``): the forward pass alone (the loss), the hand-derived
backward pass (``fnn.manual_value_and_grad``: forward + δ recursion), ``jax.grad``
(``fnn.autodiff_value_and_grad``), and the central finite-difference gradient, which needs two
forward passes per parameter. The finite-difference time for all P parameters is extrapolated
from a jitted batch of k coordinates (lax.map over perturbations): P/k × time(k coordinates);
at the smaller sizes the full finite-difference gradient is also timed, to check the extrapolation.
The slopes of log time against log P are fitted by least squares over the larger sizes only,
where fixed per-call overheads no longer dominate.

Run: python -m experiments.complexity [--quick] [--seed 0] [--out results/complexity]
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

import fnn
from experiments import _common

BATCH = 64
LOSS = "mse"
H = 1e-2  # finite-difference step; float32, so not small (the timing does not depend on it)
# Slopes are fitted over P >= this: below it a call's fixed overhead (~50 µs of dispatch here) is
# a large part of the forward pass (the smallest network's forward time is that overhead).
FIT_MIN_PARAMS = 30_000
WIDTHS = {
    "full": [6, 10, 18, 32, 56, 100, 180, 320, 577],
    "quick": [8, 40, 128, 256, 577],
    "smoke": [16, 128],
}


class Timer:
    """Seconds per call of jitted functions, measured in interleaved rounds.

    ``add`` compiles a function, warms it up and picks how many back-to-back calls make one sample
    last ``min_time``; ``run`` then takes one sample of every function per round, round after
    round, so that other jobs on a shared machine slow all of them alike instead of whichever
    happened to run at a bad moment. Each result is the median over the rounds (also the minimum,
    and the median process CPU time).
    """

    def __init__(self, min_time: float) -> None:
        self.min_time, self.entries, self.samples = min_time, [], []

    def add(self, fn: Callable, *args) -> int:
        jax.block_until_ready(fn(*args))  # compile
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))  # warm-up, and a first estimate
        calls = max(1, math.ceil(self.min_time / max(time.perf_counter() - t0, 1e-7)))
        self.entries.append((fn, args, calls))
        self.samples.append([])
        return len(self.entries) - 1

    def run(self, rounds: int) -> None:
        for _ in range(rounds):
            for (fn, args, calls), samples in zip(self.entries, self.samples):
                t0, c0 = time.perf_counter(), time.process_time()
                for _ in range(calls):
                    out = fn(*args)
                jax.block_until_ready(out)
                samples.append(((time.perf_counter() - t0) / calls, (time.process_time() - c0) / calls))

    def result(self, i: int) -> dict[str, float]:
        wall, cpu = np.array(self.samples[i]).T
        return {"median": float(np.median(wall)), "min": float(np.min(wall)), "cpu": float(np.median(cpu))}


def fd_gradient(net: fnn.MLP) -> Callable:
    """``fd(params, idx, x, y) -> ∂E/∂θ_i`` for the coordinates ``idx`` (k,) of the flattened θ.

    Central differences: each coordinate costs two forward passes of the whole network,
    (E(θ + h eᵢ) − E(θ − h eᵢ)) / 2h. The coordinates run one after another (``lax.map``), so each
    forward pass is the same computation as the forward pass timed alone; a ``vmap`` over the
    perturbed copies would turn every matmul into a batched one with k different weight matrices,
    which runs several times slower per pass on CPU and would exaggerate the cost.
    """
    E = fnn.objective(net, LOSS)

    def fd(params, idx, x, y):
        flat, unravel = ravel_pytree(params)

        def one(i):
            return (E(unravel(flat.at[i].add(H)), x, y) - E(unravel(flat.at[i].add(-H)), x, y)) / (2 * H)

        return jax.lax.map(one, idx)

    return fd


def prepare(timer: Timer, width: int, k: int, full_fd: bool, key: jax.Array) -> dict:
    """Compile and register forward, manual backward, jax.grad and finite differences for one width."""
    net = fnn.MLP((width,) * 4, hidden="tanh")
    P = net.num_params
    k = min(k, P)

    def setup(key):  # one jit: eager ops would each compile a kernel
        kp, kx, ky, ki = jax.random.split(key, 4)
        return (
            net.init(kp),
            jax.random.normal(kx, (BATCH, width)),
            jax.random.normal(ky, (BATCH, width)),
            jax.random.choice(ki, P, (k,), replace=False),
        )

    params, x, y, idx = jax.jit(setup)(key)
    fd = jax.jit(fd_gradient(net))
    manual = jax.jit(fnn.manual_value_and_grad(net, LOSS))
    entries = {
        "forward": timer.add(jax.jit(fnn.objective(net, LOSS)), params, x, y),
        "manual": timer.add(manual, params, x, y),
        "autodiff": timer.add(jax.jit(fnn.autodiff_value_and_grad(net, LOSS)), params, x, y),
        "fd_k": timer.add(fd, params, idx, x, y),
    }
    if full_fd:  # every coordinate, timed for real
        entries["fd_full"] = timer.add(fd, params, jnp.arange(P), x, y)
    # Sanity: the finite differences are the gradient (float32 central differences: ~1e-3 relative).
    g_fd = np.asarray(fd(params, idx, x, y))
    g_bp = np.concatenate([np.ravel(g) for g in jax.tree_util.tree_leaves(manual(params, x, y)[1])])[np.asarray(idx)]
    err = float(np.max(np.abs(g_fd - g_bp)) / max(float(np.max(np.abs(g_bp))), 1e-12))
    return {"width": width, "params": P, "k": k, "fd_vs_backprop_rel_err": err, "_entries": entries}


def collect(timer: Timer, row: dict) -> dict:
    """Fill ``row`` with the timings: ``<name>_s`` (median wall), ``_min_s``, ``_cpu_s``; FD extrapolated."""
    for name, i in row.pop("_entries").items():
        t = timer.result(i)
        row[f"{name}_s"], row[f"{name}_min_s"], row[f"{name}_cpu_s"] = t["median"], t["min"], t["cpu"]
    for stat in ("", "_min", "_cpu"):  # all P coordinates, from the k timed ones
        row[f"fd{stat}_s"] = row[f"fd_k{stat}_s"] * row["params"] / row["k"]
    return row


def slope(p: np.ndarray, t: np.ndarray) -> float:
    """Least-squares slope of log t against log p."""
    return float(np.polyfit(np.log(p), np.log(t), 1)[0])


def main(argv: Sequence[str] | None = None) -> dict:
    args = _common.parse_args(__doc__, "complexity", argv)
    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    k = _common.size(args, 16, 8, 4)
    rounds = _common.size(args, 15, 9, 5)
    min_time = _common.size(args, 0.02, 0.01, 0.003)
    full_fd_max = _common.size(args, 10_000, 2_000, 0)
    key = jax.random.key(args.seed)

    timer = Timer(min_time)
    rows = [prepare(timer, w, k, 3 * (w * w + w) <= full_fd_max, jax.random.fold_in(key, i)) for i, w in enumerate(WIDTHS[mode])]
    timer.run(rounds)
    rows = [collect(timer, r) for r in rows]

    p = np.array([r["params"] for r in rows], float)
    fit = p >= FIT_MIN_PARAMS
    if fit.sum() < 2:  # tiny settings: the two largest sizes
        fit = p >= np.sort(p)[-2]
    names = ("forward", "manual", "autodiff", "fd")
    slopes = {name: slope(p[fit], np.array([r[f"{name}_s"] for r in rows])[fit]) for name in names}
    slopes_min = {name: slope(p[fit], np.array([r[f"{name}_min_s"] for r in rows])[fit]) for name in names}
    slopes_cpu = {name: slope(p[fit], np.array([r[f"{name}_cpu_s"] for r in rows])[fit]) for name in names}
    for r in rows:
        r["manual_over_forward"] = r["manual_s"] / r["forward_s"]
        r["autodiff_over_forward"] = r["autodiff_s"] / r["forward_s"]
        r["fd_over_manual"] = r["fd_s"] / r["manual_s"]
        if "fd_full_s" in r:
            r["fd_full_over_extrapolated"] = r["fd_full_s"] / r["fd_s"]
    ratio = float(np.median([r["manual_over_forward"] for r, f in zip(rows, fit) if f]))
    ratio_ad = float(np.median([r["autodiff_over_forward"] for r, f in zip(rows, fit) if f]))
    checks = [r["fd_full_over_extrapolated"] for r in rows if "fd_full_over_extrapolated" in r]
    print(
        _common.table(
            [
                (
                    r["width"],
                    r["params"],
                    r["forward_s"],
                    r["manual_s"],
                    r["autodiff_s"],
                    r["fd_s"],
                    r.get("fd_full_s", "-"),
                    r["manual_over_forward"],
                )
                for r in rows
            ],
            [
                "width",
                "params",
                "forward s",
                "manual s",
                "jax.grad s",
                f"FD s (P/{k} × {k})",
                "FD s (all, measured)",
                "manual/forward",
            ],
        )
    )

    largest = rows[-1]
    fit_range = [int(p[fit].min()), int(p[fit].max())]
    results = {
        "setting": {
            "net": "(w, w, w, w) tanh, identity output",
            "loss": LOSS,
            "batch": BATCH,
            "dtype": "float32",
            "k": k,
            "fd_step": H,
            "rounds": rounds,
            "min_time_s": min_time,
            "timer": "jitted, warmed up, block_until_ready; median wall time over interleaved rounds (*_s); "
            "also the minimum (*_min_s) and the median process CPU time (*_cpu_s)",
        },
        "sizes": rows,
        "fit_range_params": fit_range,
        "slopes": slopes,
        "slopes_min_wall": slopes_min,
        "slopes_cpu_time": slopes_cpu,
        "manual_over_forward_median": ratio,
        "autodiff_over_forward_median": ratio_ad,
        "fd_full_over_extrapolated": checks,
        "fd_is_extrapolated": f"finite-difference time for all P coordinates = P/{k} × measured time of {k} coordinates "
        f"(lax.map); measured in full only for P <= {full_fd_max}",
        "note": "the tutorial says differentiating each parameter separately grows exponentially; finite differences, "
        "the per-parameter method timed here, grow as P² (polynomial). Exponential growth is what expanding the "
        "chain rule into a sum over all paths, without reusing the shared δ's, would cost.",
    }

    figures = []
    try:
        from fnn import plot

        figures.append(_plot(plot, rows, p, fit, slopes, k, args.out / "complexity.png"))
    except ImportError as e:
        print(f"(no figures: {e})")

    fr = f"fit over P = {fit_range[0]:,}…{fit_range[1]:,}"
    headlines = [
        _common.headline(
            f"slope of log time vs log P, hand-derived backprop ({fr})",
            slopes["manual"],
            fmt="{:.2f}",
            anchor="≈ 1 (linear time)",
            ok=bool(0.7 <= slopes["manual"] <= 1.3),
        ),
        _common.headline(
            f"slope, jax.grad ({fr})", slopes["autodiff"], fmt="{:.2f}", anchor="≈ 1", ok=bool(0.7 <= slopes["autodiff"] <= 1.3)
        ),
        _common.headline(f"slope, forward pass alone ({fr})", slopes["forward"], fmt="{:.2f}", anchor="≈ 1"),
        _common.headline(
            f"slope, finite differences, all P coordinates (extrapolated from {k} per size; {fr})",
            slopes["fd"],
            fmt="{:.2f}",
            anchor="≈ 2 (P coordinates × O(P) each)",
            ok=bool(1.7 <= slopes["fd"] <= 2.3),
        ),
        _common.headline(
            "time of backprop (forward + backward) / forward alone, median over the fit range",
            ratio,
            fmt="{:.2f}×",
            anchor="small constant, ~2–3",
            ok=bool(1.0 <= ratio <= 4.0),
        ),
        _common.headline(
            f"finite differences / backprop at P = {largest['params']:,} (extrapolated)",
            largest["fd_over_manual"],
            fmt="{:.3g}×",
            anchor="≫ 1: far costlier",
            ok=bool(largest["fd_over_manual"] > 100),
        ),
    ]
    if checks:
        headlines.append(
            _common.headline(
                "finite differences at small sizes: all coordinates timed / extrapolated (median)",
                float(np.median(checks)),
                fmt="{:.2f}",
                anchor="≈ 1 (< 1: fixed per-call overhead in the k-coordinate timing)",
            )
        )
    return _common.finish(args, results, headlines, figures)


def _plot(plot, rows: list[dict], p: np.ndarray, fit: np.ndarray, slopes: dict, k: int, path):
    fig, (ax, ax_r) = plot.subplots(1, 2, size=4.2)
    styles = {
        "forward": ("forward_s", "C2", "forward (loss) only"),
        "manual": ("manual_s", "C0", "backprop, hand-derived"),
        "autodiff": ("autodiff_s", "C1", "jax.grad"),
        "fd": ("fd_s", "C3", f"finite differences (P/{k} × {k} coords)"),
    }
    for name, (col, color, lab) in styles.items():
        t = np.array([r[col] for r in rows])
        ax.plot(p, t, marker="o", ms=4, color=color, ls="--" if name == "fd" else "-", label=f"{lab}: slope {slopes[name]:.2f}")
        a, b = np.polyfit(np.log(p[fit]), np.log(t[fit]), 1)
        ax.plot(p[fit], np.exp(b) * p[fit] ** a, color=color, lw=3, alpha=0.25)
    full = [(r["params"], r["fd_full_s"]) for r in rows if "fd_full_s" in r]
    if full:
        ax.scatter(*zip(*full), marker="x", s=40, color="k", zorder=3, label="finite differences, all coords measured")
    for power, t_end in ((1, rows[-1]["manual_s"]), (2, rows[-1]["fd_s"])):  # guides through the largest size
        ax.plot(p, t_end * (p / p[-1]) ** power, color="0.5", ls=":", lw=0.8, label=f"slope {power} guide")
    ax.axvspan(p[fit].min(), p[fit].max(), color="0.9", zorder=0, label="fit range")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("parameters P")
    ax.set_ylabel("seconds per call")
    ax.set_title(f"gradient time vs size (batch {BATCH})", fontsize=9)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=6, loc="upper left")
    ax_r.plot(p, [r["manual_over_forward"] for r in rows], marker="o", label="backprop / forward")
    ax_r.plot(p, [r["autodiff_over_forward"] for r in rows], marker="s", label="jax.grad / forward")
    ax_r.axvspan(p[fit].min(), p[fit].max(), color="0.9", zorder=0, label="fit range")
    ax_r.set_xscale("log")
    ax_r.set_xlabel("parameters P")
    ax_r.set_ylabel("time ratio")
    ax_r.set_title("gradient cost in forward passes", fontsize=9)
    ax_r.grid(alpha=0.3)
    ax_r.legend(fontsize=7)
    return plot.save(fig, path)


if __name__ == "__main__":
    main()
