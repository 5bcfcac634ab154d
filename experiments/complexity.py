"""Backpropagation computes every gradient in time linear in the network size; one parameter at a time costs quadratic time.

Square tanh MLPs ``(w, w, w, w)`` (three weight layers, P = 3(w² + w) parameters, ~10³ … 10⁶) on a
fixed batch of random examples (512; the smoke run 32) with the MSE loss. Timed, each jitted, warmed up, the median of
several interleaved rounds (``block_until_ready``): the forward pass alone (the loss), the hand-derived
backward pass (``fnn.manual_value_and_grad``: forward + δ recursion), ``jax.grad``
(``fnn.autodiff_value_and_grad``), and the central finite-difference gradient, which needs two
forward passes per parameter.

Finite differences are timed in full — every one of the P coordinates, one jitted ``lax.map`` —
at the sizes where that takes seconds (P up to ~10⁴; at least 3 sizes inside the fit range). Those
measured points are the only ones its slope is fitted on. At the larger sizes the full gradient
would take minutes to hours, so its time there is extrapolated from a jitted batch of k
coordinates, P/k × time(k coordinates), and labelled as such everywhere: ``fd_source`` in
results.json, the table, the figure (hollow markers, dashed) and the headlines. The extrapolation
is checked against the full timing at the measured sizes.

The slopes of log time against log P are fitted by least squares over P >= a few thousand, where
each method's time grows with P rather than being the fixed cost of a call.

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

# The batch makes each forward pass compute-bound rather than the fixed cost of a call: at 64
# examples a width-32..48 pass took ~30 µs whatever its size (dispatch), which flattened every slope
# fitted through those sizes (0.65 for backprop, 1.35 for finite differences, whose per-coordinate
# cost is a forward pass). At 512 a width-32 pass is ~3 MFLOP. The smoke run only checks plumbing.
BATCH = {"full": 512, "quick": 512, "smoke": 32}
LOSS = "mse"
H = 1e-2  # finite-difference step; float32, so not small (the timing does not depend on it)
# Slopes are fitted over P >= this: below it a call's fixed overhead (~50 µs of dispatch here) is
# most of the forward pass. The smoke run fits over its tiny sizes (only a check of the plumbing).
FIT_MIN_PARAMS = {"full": 3_000, "quick": 3_000, "smoke": 0}
# Finite differences are timed over every coordinate up to this P (seconds each at most), and
# extrapolated from k coordinates above it.
FD_FULL_MAX_PARAMS = {"full": 20_000, "quick": 7_100, "smoke": 1_000}
WIDTHS = {
    "full": [6, 10, 18, 32, 40, 48, 56, 64, 80, 100, 180, 320, 577],
    "quick": [16, 32, 40, 48, 128, 256, 577],
    "smoke": [4, 8, 16, 32],
}
MEASURED, EXTRAPOLATED = "measured", "extrapolated"


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

    def add(self, fn: Callable, *args, warm: bool = True) -> int:
        """Register ``fn(*args)``; ``warm=False``: the caller has compiled and run it already (one call per sample)."""
        calls = 1
        if warm:
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


def prepare(timer: Timer, fd_timer: Timer, width: int, k: int, full_fd: bool, key: jax.Array, batch: int) -> dict:
    """Compile and register forward, manual backward, jax.grad and finite differences for one width.

    The full finite-difference gradient (every coordinate) goes to ``fd_timer`` when ``full_fd``:
    a call takes up to seconds, so it gets fewer rounds than the millisecond-scale calls.
    """
    net = fnn.MLP((width,) * 4, hidden="tanh")
    P = net.num_params
    k = min(k, P)

    def setup(key):  # one jit: eager ops would each compile a kernel
        kp, kx, ky, ki = jax.random.split(key, 4)
        return (
            net.init(kp),
            jax.random.normal(kx, (batch, width)),
            jax.random.normal(ky, (batch, width)),
            jax.random.choice(ki, P, (k,), replace=False),
        )

    params, x, y, idx = setup(key)  # run once, eagerly (nothing of it is timed)
    fd = jax.jit(fd_gradient(net))
    manual = jax.jit(fnn.manual_value_and_grad(net, LOSS))
    entries = {
        "forward": (timer, timer.add(jax.jit(fnn.objective(net, LOSS)), params, x, y)),
        "manual": (timer, timer.add(manual, params, x, y)),
        "autodiff": (timer, timer.add(jax.jit(fnn.autodiff_value_and_grad(net, LOSS)), params, x, y)),
        "fd_k": (timer, timer.add(fd, params, idx, x, y)),
    }
    g_bp = np.concatenate([np.ravel(g) for g in jax.tree_util.tree_leaves(manual(params, x, y)[1])])
    row = {"width": width, "params": P, "k": k, "batch": batch}
    if full_fd:  # every coordinate, timed for real; seconds a call, so it is run no more than needed
        every = jnp.arange(P)
        fd.lower(params, every, x, y).compile()  # the jitted call below reuses this executable
        g_full = np.asarray(fd(params, every, x, y))  # also the warm-up
        entries["fd_full"] = (fd_timer, fd_timer.add(fd, params, every, x, y, warm=False))
        # the full finite-difference gradient is the gradient (float32 central differences: ~1e-3 relative)
        row["fd_full_vs_backprop_rel_err"] = float(np.max(np.abs(g_full - g_bp)) / max(float(np.max(np.abs(g_bp))), 1e-12))
    # Sanity: the k timed coordinates are the gradient too.
    g_fd = np.asarray(fd(params, idx, x, y))
    g_k = g_bp[np.asarray(idx)]
    row["fd_vs_backprop_rel_err"] = float(np.max(np.abs(g_fd - g_k)) / max(float(np.max(np.abs(g_k))), 1e-12))
    row["_entries"] = entries
    return row


def collect(row: dict) -> dict:
    """Fill ``row`` with the timings: ``<name>_s`` (median wall), ``_min_s``, ``_cpu_s``.

    ``fd_extrapolated*_s`` = P/k × the k-coordinate time, always; ``fd*_s`` = the full measured time
    where it was measured, else the extrapolated one, with ``fd_source`` saying which.
    """
    for name, (timer, i) in row.pop("_entries").items():
        t = timer.result(i)
        row[f"{name}_s"], row[f"{name}_min_s"], row[f"{name}_cpu_s"] = t["median"], t["min"], t["cpu"]
    measured = "fd_full_s" in row
    for stat in ("", "_min", "_cpu"):
        row[f"fd_extrapolated{stat}_s"] = row[f"fd_k{stat}_s"] * row["params"] / row["k"]
        row[f"fd{stat}_s"] = row[f"fd_full{stat}_s"] if measured else row[f"fd_extrapolated{stat}_s"]
    row["fd_source"] = MEASURED if measured else EXTRAPOLATED
    return row


def slope(p: np.ndarray, t: np.ndarray) -> float:
    """Least-squares slope of log t against log p."""
    return float(np.polyfit(np.log(p), np.log(t), 1)[0])


def main(argv: Sequence[str] | None = None) -> dict:
    args = _common.parse_args(__doc__, "complexity", argv)
    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    k = _common.size(args, 16, 8, 4)
    rounds = _common.size(args, 15, 9, 5)
    fd_rounds = _common.size(args, 3, 3, 3)
    min_time = _common.size(args, 0.02, 0.01, 0.003)
    fd_full_max = FD_FULL_MAX_PARAMS[mode]
    key = jax.random.key(args.seed)

    timer, fd_timer = Timer(min_time), Timer(0.0)
    rows = [
        prepare(timer, fd_timer, w, k, 3 * (w * w + w) <= fd_full_max, jax.random.fold_in(key, i), BATCH[mode])
        for i, w in enumerate(WIDTHS[mode])
    ]
    for _ in range(fd_rounds):  # the long full finite-difference calls between batches of the short ones
        timer.run(max(1, rounds // fd_rounds))
        fd_timer.run(1)
    rows = [collect(r) for r in rows]

    p = np.array([r["params"] for r in rows], float)
    fit = p >= FIT_MIN_PARAMS[mode]
    measured = np.array([r["fd_source"] == MEASURED for r in rows])
    fd_fit = fit & measured
    if fd_fit.sum() < 3:
        raise RuntimeError(f"only {fd_fit.sum()} sizes with the full finite-difference gradient timed inside the fit range")
    names = ("forward", "manual", "autodiff", "fd")
    masks = {"forward": fit, "manual": fit, "autodiff": fit, "fd": fd_fit}  # finite differences: measured sizes only

    def slopes_of(suffix: str, mask_of: dict) -> dict:
        return {n: slope(p[mask_of[n]], np.array([r[f"{n}{suffix}"] for r in rows])[mask_of[n]]) for n in names}

    slopes = slopes_of("_s", masks)
    slopes_min = slopes_of("_min_s", masks)
    slopes_cpu = slopes_of("_cpu_s", masks)
    same = dict.fromkeys(names, fd_fit)  # every method on the sizes where finite differences were measured
    slopes_fd_sizes = slopes_of("_s", same)
    for r in rows:
        r["in_fit_range"] = bool(r["params"] >= FIT_MIN_PARAMS[mode])
        r["manual_over_forward"] = r["manual_s"] / r["forward_s"]
        r["autodiff_over_forward"] = r["autodiff_s"] / r["forward_s"]
        r["fd_over_manual"] = r["fd_s"] / r["manual_s"]
        if r["fd_source"] == MEASURED:
            r["fd_full_over_extrapolated"] = r["fd_full_s"] / r["fd_extrapolated_s"]
    ratio = float(np.median([r["manual_over_forward"] for r, f in zip(rows, fit) if f]))
    ratio_ad = float(np.median([r["autodiff_over_forward"] for r, f in zip(rows, fit) if f]))
    checks = [r["fd_full_over_extrapolated"] for r in rows if "fd_full_over_extrapolated" in r]
    print(
        _common.table(
            [
                (
                    r["width"],
                    r["params"],
                    "yes" if r["in_fit_range"] else "no",
                    r["forward_s"],
                    r["manual_s"],
                    r["autodiff_s"],
                    f"{r['fd_s']:.4g} ({r['fd_source']})",
                    r["fd_extrapolated_s"],
                    r["manual_over_forward"],
                )
                for r in rows
            ],
            [
                "width",
                "params",
                "in fit",
                "forward s",
                "manual s",
                "jax.grad s",
                "FD s, all P coordinates",
                f"FD s, P/{k} × {k} (extrapolated)",
                "manual/forward",
            ],
        )
    )

    largest = rows[-1]
    largest_measured = [r for r in rows if r["fd_source"] == MEASURED][-1]
    fit_range = [int(p[fit].min()), int(p[fit].max())]
    fd_range = [int(p[fd_fit].min()), int(p[fd_fit].max())]
    n_fd = int(fd_fit.sum())
    results = {
        "setting": {
            "net": "(w, w, w, w) tanh, identity output",
            "loss": LOSS,
            "batch": BATCH[mode],
            "dtype": "float32",
            "k": k,
            "fd_step": H,
            "rounds": rounds,
            "fd_full_rounds": fd_rounds,
            "min_time_s": min_time,
            "fd_full_max_params": fd_full_max,
            "timer": "jitted, warmed up, block_until_ready; median wall time over interleaved rounds (*_s); "
            "also the minimum (*_min_s) and the median process CPU time (*_cpu_s)",
        },
        "sizes": rows,
        "fit_range_params": fit_range,
        "fd_fit_range_params": fd_range,
        "fd_measured_sizes_in_fit": n_fd,
        "slopes": slopes,
        "slopes_min_wall": slopes_min,
        "slopes_cpu_time": slopes_cpu,
        "slopes_on_fd_measured_sizes": slopes_fd_sizes,
        "manual_over_forward_median": ratio,
        "autodiff_over_forward_median": ratio_ad,
        "fd_full_over_extrapolated": checks,
        "fd_source": f"fd_s is the full finite-difference gradient, every coordinate timed (fd_source '{MEASURED}'), "
        f"for P <= {fd_full_max:,}; above that it is P/{k} × the measured time of {k} coordinates (lax.map), "
        f"fd_source '{EXTRAPOLATED}'. The finite-difference slope is fitted on the {MEASURED} sizes only.",
        "note": "the tutorial says differentiating each parameter separately grows exponentially; finite differences, "
        "the per-parameter method timed here, grow as P² (polynomial). Exponential growth is what expanding the "
        "chain rule into a sum over all paths, without reusing the shared δ's, would cost.",
    }

    figures = []
    try:
        from fnn import plot

        figures.append(_plot(plot, rows, p, fit, fd_fit, slopes, k, args.out / "complexity.png"))
    except ImportError as e:
        print(f"(no figures: {e})")

    fr = f"fit over {int(fit.sum())} sizes, P = {fit_range[0]:,}…{fit_range[1]:,}"
    headlines = [
        _common.headline(
            f"slope of log time vs log P, hand-derived backprop ({fr})",
            slopes["manual"],
            fmt="{:.2f}",
            anchor="≈ 1 (linear time)",
            ok=bool(0.7 <= slopes["manual"] <= 1.3),
            readme=True,
        ),
        _common.headline(
            f"slope, jax.grad ({fr})",
            slopes["autodiff"],
            fmt="{:.2f}",
            anchor="≈ 1",
            ok=bool(0.7 <= slopes["autodiff"] <= 1.3),
            readme=True,
        ),
        _common.headline(f"slope, forward pass alone ({fr})", slopes["forward"], fmt="{:.2f}", anchor="≈ 1"),
        _common.headline(
            f"slope, finite differences, every one of the P coordinates timed, fitted on the {n_fd} measured sizes "
            f"P = {fd_range[0]:,}…{fd_range[1]:,} (larger sizes extrapolated, not fitted)",
            slopes["fd"],
            fmt="{:.2f}"
            + f" (backprop on the same {n_fd} sizes: {slopes_fd_sizes['manual']:.2f})".replace("{", "{{").replace("}", "}}"),
            anchor="≈ 2 (P coordinates × O(P) each)",
            ok=bool(1.7 <= slopes["fd"] <= 2.3),
            readme=True,
        ),
        _common.headline(
            f"time of backprop (forward + backward) / forward alone, median over the {int(fit.sum())} sizes of the fit range",
            ratio,
            fmt="{:.2f}×",
            anchor="small constant, ~2–3",
            ok=bool(1.0 <= ratio <= 4.0),
            readme=True,
        ),
        _common.headline(
            f"finite differences / backprop at P = {largest_measured['params']:,} (every coordinate timed)",
            largest_measured["fd_over_manual"],
            fmt="{:.3g}×",
            anchor="≫ 1: far costlier",
            ok=bool(largest_measured["fd_over_manual"] > 100),
        ),
    ]
    if largest is not largest_measured:
        headlines.append(
            _common.headline(
                f"finite differences / backprop at P = {largest['params']:,} "
                f"(finite differences extrapolated from {k} coordinates)",
                largest["fd_over_manual"],
                fmt="{:.3g}×",
                anchor="≫ 1: far costlier",
                ok=bool(largest["fd_over_manual"] > 100),
            )
        )
    headlines.append(
        _common.headline(
            f"finite differences at the {len(checks)} measured sizes: all coordinates timed / extrapolated from {k} (median)",
            float(np.median(checks)),
            fmt="{:.2f}",
            anchor="≈ 1 where the extrapolation holds (< 1: the fixed cost of a short call; > 1: a long call lost CPU share "
            "on a busy machine, or runs slower per coordinate)",
        )
    )
    return _common.finish(args, results, headlines, figures)


def _plot(plot, rows: list[dict], p: np.ndarray, fit: np.ndarray, fd_fit: np.ndarray, slopes: dict, k: int, path):
    fig, (ax, ax_r) = plot.subplots(1, 2, size=4.2)
    styles = {
        "forward": ("forward_s", "C2", "forward (loss) only"),
        "manual": ("manual_s", "C0", "backprop, hand-derived"),
        "autodiff": ("autodiff_s", "C1", "jax.grad"),
    }
    for name, (col, color, lab) in styles.items():
        t = np.array([r[col] for r in rows])
        ax.plot(p, t, marker="o", ms=4, color=color, label=f"{lab}: slope {slopes[name]:.2f}")
        a, b = np.polyfit(np.log(p[fit]), np.log(t[fit]), 1)
        ax.plot(p[fit], np.exp(b) * p[fit] ** a, color=color, lw=3, alpha=0.25)
    measured = np.array([r["fd_source"] == MEASURED for r in rows])
    t_fd = np.array([r["fd_s"] for r in rows])
    ax.plot(
        p[measured],
        t_fd[measured],
        marker="o",
        ms=4,
        color="C3",
        label=f"finite differences, every coordinate timed: slope {slopes['fd']:.2f} ({int(fd_fit.sum())} sizes)",
    )
    a, b = np.polyfit(np.log(p[fd_fit]), np.log(t_fd[fd_fit]), 1)
    ax.plot(p[fd_fit], np.exp(b) * p[fd_fit] ** a, color="C3", lw=3, alpha=0.25)
    t_ex = np.array([r["fd_extrapolated_s"] for r in rows])
    ax.plot(
        p,
        t_ex,
        marker="o",
        ms=5,
        mfc="none",
        color="C3",
        ls="--",
        lw=0.8,
        label=f"finite differences, extrapolated: P/{k} × time of {k} coords (not fitted)",
    )
    for power, t_end in ((1, rows[-1]["manual_s"]), (2, t_fd[measured][-1])):  # guides
        ref = p[-1] if power == 1 else p[measured][-1]
        ax.plot(p, t_end * (p / ref) ** power, color="0.5", ls=":", lw=0.8, label=f"slope {power} guide")
    ax.axvspan(p[fit].min(), p[fit].max(), color="0.9", zorder=0, label="fit range")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("parameters P")
    ax.set_ylabel("seconds per call")
    ax.set_title(f"gradient time vs size (batch {rows[0]['batch']})", fontsize=9)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=5.5, loc="upper left")
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
