"""The hand-derived backward pass gives the same gradients as jax.grad, and finite differences agree.

The δ recursion of the tutorial (§4.2–4.3: ∂E/∂W⁽ˡ⁾ = δ⁽ˡ⁾ᵀ h⁽ˡ⁻¹⁾, δ⁽ˡ⁻¹⁾ = (δ⁽ˡ⁾ W⁽ˡ⁾) ⊙ f'(z⁽ˡ⁻¹⁾))
is checked three ways with ``fnn.compare_gradients`` — manual vs ``jax.grad`` vs central finite
differences — over every hidden activation × (output, loss) pair × a few depths and widths, in
float32 and float64. In float64 manual and autodiff should agree to rounding (≤ 1e-12 relative)
and finite differences to their truncation error (≤ 1e-6); coordinates whose ±ε step crosses a
ReLU kink are counted and left out of the finite-difference error. Then the cost: one jitted
training step with manual gradients against the same step with ``jax.grad``, timed interleaved.

Run: python -m experiments.gradients [--quick] [--seed 0] [--out results/gradients]
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

import fnn
from experiments import _common

ACTIVATIONS = ("identity", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "softplus", "gelu")
PAIRS = (("identity", "mse"), ("sigmoid", "mse"), ("softmax", "mse"), ("softmax", "cross_entropy"), ("sigmoid", "bce"))
N_IN, N_OUT = 3, 3
# One optimizer object for every timed step (the step function is the same update for both modes).
OPTIMIZER = optax.sgd(0.01)
FLOOR = 1e-17  # relative errors of exactly 0 are drawn at log10 = -17


@contextlib.contextmanager
def _x64(enabled: bool) -> Iterator[None]:
    """Turn float64 on (or off) for the block, then restore the caller's setting."""
    old = bool(jax.config.jax_enable_x64)
    jax.config.update("jax_enable_x64", enabled)
    try:
        yield
    finally:
        jax.config.update("jax_enable_x64", old)


def _targets(rng: np.random.Generator, output: str, loss: str, batch: int, dtype) -> np.ndarray:
    """Targets that suit (output, loss): class indices, 0/1 labels, one-hot or values in the output's range."""
    if loss == "cross_entropy":
        return rng.integers(0, N_OUT, batch).astype(np.int32)
    if loss == "bce":
        return (rng.random((batch, N_OUT)) < 0.5).astype(dtype)
    if output == "softmax":
        return np.eye(N_OUT, dtype=dtype)[rng.integers(0, N_OUT, batch)]
    if output == "sigmoid":
        return rng.uniform(0.05, 0.95, (batch, N_OUT)).astype(dtype)
    return rng.standard_normal((batch, N_OUT)).astype(dtype)


def grid_cells(
    archs: Sequence[tuple[int, ...]], acts: Sequence[str], pairs: Sequence[tuple[str, str]], diagonal: bool = False
) -> list[tuple[tuple[int, ...], str, tuple[str, str]]]:
    """Every architecture × activation × (output, loss); ``diagonal``: activation i only with pair i mod P."""
    return [
        (h, a, p) for h in archs for i, a in enumerate(acts) for j, p in enumerate(pairs) if not diagonal or j == i % len(pairs)
    ]


def check_grid(
    cells: Sequence[tuple[tuple[int, ...], str, tuple[str, str]]], dtype, batch: int, key: jax.Array, seed: int
) -> list[dict]:
    """``fnn.compare_gradients`` on every cell (hidden sizes, activation, (output, loss)); one row each.

    The data are drawn with numpy (seeded): eager ``jax.random`` calls would each add a compile.
    The parameters are a generic point: ``net.init``'s weights plus biases drawn N(0, 0.1²) instead of
    its zeros. With zero biases, a ReLU unit whose inputs are all 0 (every unit before it inactive on
    an example) sits exactly on its kink, z = 0, where the derivative is a convention that finite
    differences cannot check (compare_gradients would call that leaf unresolved).
    """
    rows = []
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, N_IN)).astype(dtype)
    for c, (hidden, act, (output, loss)) in enumerate(cells):
        net = fnn.MLP((N_IN, *hidden, N_OUT), hidden=act, output=output)
        params = [
            {"W": p["W"], "b": jnp.asarray(rng.normal(0.0, 0.1, p["b"].shape), dtype)}
            for p in net.init(jax.random.fold_in(key, c), dtype)
        ]
        y = _targets(rng, output, loss, batch, dtype)
        # the float32 cells measure float32 central differences (ε = ∛u), the tutorial's point about them: fd64=False
        # (compare_gradients' default takes a float32 network's finite differences in float64)
        r = fnn.compare_gradients(net, params, x, y, max_coords=None, loss=loss, fd64=None if dtype == jnp.float64 else False)
        rows.append(
            {
                "hidden": list(hidden),
                "activation": act,
                "output": output,
                "loss": loss,
                "dtype": r.dtype,
                "num_params": net.num_params,
                "autodiff_rel": r.max_autodiff_rel,
                "fd_rel": r.max_fd_rel,
                "kinks": r.kinks,
                "checked": sum(leaf.checked for leaf in r.leaves),
                "leaf_status": list(r.statuses),  # per leaf: ok / unresolved (FD could not check it) / mismatch
                "mismatch": bool(r.mismatch),
                "unresolved": len(r.unresolved),
                "ok": bool(r.ok),
                "autodiff_rtol": r.autodiff_rtol,
                "fd_rtol": r.fd_rtol,
            }
        )
    return rows


def worst_matrix(rows: list[dict], field: str, acts: Sequence[str], pairs: Sequence[tuple[str, str]]) -> np.ndarray:
    """(activation, pair) matrix of the worst ``field`` over architectures."""
    m = np.full((len(acts), len(pairs)), np.nan)
    for r in rows:
        i, j = acts.index(r["activation"]), pairs.index((r["output"], r["loss"]))
        m[i, j] = np.nanmax([m[i, j], r[field]])
    return m


def time_steps(sizes: Sequence[tuple[tuple[int, ...], int]], pairs: int, key: jax.Array, seed: int) -> list[dict]:
    """Seconds per jitted training step, manual vs autodiff, measured interleaved (A B A B …).

    Each size gets both steps compiled and warmed up, then ``pairs`` rounds of one manual and
    one autodiff step on the same state (the step is pure, so the state is reused). The ratio is
    the median of the per-round ratios, which cancels load that drifts between rounds.
    """
    rows = []
    for s, (sizes_, batch) in enumerate(sizes):
        net = fnn.MLP(sizes_, hidden="tanh", output="softmax")
        params = jax.jit(net.init)(jax.random.fold_in(key, s))  # one compile instead of many eager ones
        rng = np.random.default_rng(seed + s)
        x = jnp.asarray(rng.standard_normal((batch, sizes_[0])), jnp.float32)
        y = jnp.asarray(rng.integers(0, sizes_[-1], batch), jnp.int32)
        steps = {g: fnn.make_step(net, "cross_entropy", OPTIMIZER, grad=g) for g in ("manual", "autodiff")}
        states = {g: st.init(params) for g, st in steps.items()}
        t0 = time.perf_counter()
        for g, step in steps.items():  # compile + warm up
            for _ in range(3):
                jax.block_until_ready(step(states[g], x, y))
        compile_s = time.perf_counter() - t0
        times = {"manual": [], "autodiff": []}
        for _ in range(pairs):
            for g in ("manual", "autodiff"):
                t = time.perf_counter()
                jax.block_until_ready(steps[g](states[g], x, y))
                times[g].append(time.perf_counter() - t)
        tm, ta = np.asarray(times["manual"]), np.asarray(times["autodiff"])
        rows.append(
            {
                "sizes": list(sizes_),
                "batch": batch,
                "num_params": net.num_params,
                "pairs": pairs,
                "manual_ms": 1e3 * float(np.median(tm)),
                "autodiff_ms": 1e3 * float(np.median(ta)),
                "ratio": float(np.median(tm / ta)),
                "ratio_q25": float(np.quantile(tm / ta, 0.25)),
                "ratio_q75": float(np.quantile(tm / ta, 0.75)),
                "warmup_s": compile_s,
            }
        )
    return rows


def main(argv: Sequence[str] | None = None) -> dict:
    args = _common.parse_args(__doc__, "gradients", argv)
    archs = _common.size(args, [(8,), (4, 4), (16, 16, 16)], [(4, 4)], [(4, 4)])
    acts = _common.size(args, ACTIVATIONS, ACTIVATIONS, ("tanh", "relu"))
    pairs = _common.size(args, PAIRS, PAIRS, (PAIRS[3], PAIRS[4]))
    # float64 is the claim (every cell); float32 in quick/smoke mode: each activation with one pair.
    cells = {"float64": grid_cells(archs, acts, pairs), "float32": grid_cells(archs, acts, pairs, diagonal=args.quick)}
    batch = _common.size(args, 16, 8, 8)
    sizes = _common.size(
        args,
        [((64, 256, 256, 10), 256), ((128, 512, 512, 10), 256), ((784, 512, 512, 10), 512), ((32, 64, 64, 64, 64, 10), 128)],
        [((128, 512, 512, 10), 256)],
        [((16, 64, 10), 64)],
    )
    n_pairs = _common.size(args, 50, 20, 10)
    key = jax.random.key(args.seed)

    grids, grid_s = {}, {}
    for name, dtype, x64 in (("float64", jnp.float64, True), ("float32", jnp.float32, False)):
        t = time.perf_counter()
        with _x64(x64):
            grids[name] = check_grid(cells[name], dtype, batch, jax.random.fold_in(key, int(x64)), args.seed)
        grid_s[name] = time.perf_counter() - t

    rows = []
    for name, g in grids.items():
        for act in acts:
            sub = [r for r in g if r["activation"] == act]
            rows.append(
                (
                    name,
                    act,
                    max(r["autodiff_rel"] for r in sub),
                    max(r["fd_rel"] for r in sub),
                    sum(r["kinks"] for r in sub),
                    f"{sum(r['ok'] for r in sub)}/{len(sub)}",
                )
            )
    print(
        _common.table(
            rows, ["dtype", "hidden activation", "max rel manual-autodiff", "max rel manual-FD", "kink coords", "ok cells"]
        )
    )
    bad = [r for g in grids.values() for r in g if not r["ok"]]
    for r in bad:
        print(
            f"not ok: {r['dtype']} {r['activation']} hidden={r['hidden']} {r['output']}+{r['loss']}: "
            f"autodiff rel {r['autodiff_rel']:.2e} (tol {r['autodiff_rtol']:.0e}), "
            f"FD rel {r['fd_rel']:.2e} (tol {r['fd_rtol']:.0e})"
        )

    timing = time_steps(sizes, n_pairs, jax.random.fold_in(key, 7), args.seed)
    print(
        _common.table(
            [
                (
                    str(r["sizes"]),
                    r["batch"],
                    r["manual_ms"],
                    r["autodiff_ms"],
                    r["ratio"],
                    f"{r['ratio_q25']:.2f}–{r['ratio_q75']:.2f}",
                )
                for r in timing
            ],
            ["sizes", "batch", "manual ms/step", "autodiff ms/step", "ratio (median)", "IQR"],
        )
    )

    worst = {name: {f: float(np.nanmax([r[f] for r in g])) for f in ("autodiff_rel", "fd_rel")} for name, g in grids.items()}
    n_ok = {name: sum(r["ok"] for r in g) for name, g in grids.items()}
    leaves = {name: sum(len(r["leaf_status"]) for r in g) for name, g in grids.items()}
    n_mismatch = {name: sum(r["leaf_status"].count("mismatch") for r in g) for name, g in grids.items()}
    n_unresolved = {name: sum(r["unresolved"] for r in g) for name, g in grids.items()}
    ratio = float(np.median([r["ratio"] for r in timing]))
    results = {
        "grid": {
            "hidden": [list(h) for h in archs],
            "activations": list(acts),
            "pairs": [list(p) for p in pairs],
            "batch": batch,
            "wall_s": grid_s,
        },
        "cells": grids,
        "worst": worst,
        "cells_ok": n_ok,
        "cells_total": {name: len(g) for name, g in grids.items()},
        "leaves_total": leaves,
        "leaves_mismatch": n_mismatch,
        "leaves_unresolved": n_unresolved,
        "kinks": {name: sum(r["kinks"] for r in g) for name, g in grids.items()},
        "not_ok": bad,
        "timing": timing,
        "time_ratio_manual_over_autodiff": ratio,
    }

    figures = []
    try:
        from fnn import plot

        fig, axes = plot.subplots(2, 2, size=4.2, squeeze=False)
        labels = [f"{o}+{lo}".replace("cross_entropy", "CE") for o, lo in pairs]
        for r, name in enumerate(("float64", "float32")):
            for c, (field, what) in enumerate((("autodiff_rel", "manual vs jax.grad"), ("fd_rel", "manual vs finite diff"))):
                m = np.log10(np.maximum(worst_matrix(grids[name], field, acts, pairs), FLOOR))
                plot.heatmap(
                    axes[r, c],
                    m,
                    xticks=labels,
                    yticks=acts,
                    fmt="{:.1f}",
                    vmin=-17,
                    vmax=0,
                    title=f"{name}: log10 max rel error, {what}",
                )
                axes[r, c].tick_params(axis="x", labelrotation=30)
        fig.suptitle(
            f"worst over hidden sizes {[list(h) for h in archs]}; −17: bitwise equal; nan: cell not run"
            + (" (quick: float32 on a diagonal)" if args.quick else ""),
            fontsize=9,
        )
        figures.append(plot.save(fig, args.out / "rel_errors.png"))
    except ImportError as e:
        print(f"(no figures: {e})")

    tol64, tol32 = ((g[0]["autodiff_rtol"], g[0]["fd_rtol"]) for g in (grids["float64"], grids["float32"]))
    n64 = len(grids["float64"])
    grid = f"{n64} cells: {len(acts)} hidden activations × {len(pairs)} (output, loss) × {len(archs)} architecture(s)"
    headlines = [
        _common.headline(
            f"float64, worst over {grid}: manual backprop vs jax.grad, max relative error",
            worst["float64"]["autodiff_rel"],
            fmt="{:.1e}" + f" (every leaf of the {n64} cells)",
            anchor="≤ 1e-12 (same math, rounding only)",
            ok=worst["float64"]["autodiff_rel"] <= 1e-12,
            readme=True,
        ),
        _common.headline(
            f"float64, worst over {grid}: manual backprop vs central finite differences, max relative error "
            "(coordinates straddling a ReLU kink left out)",
            worst["float64"]["fd_rel"],
            fmt="{:.1e}" + f" ({n_ok['float64']}/{n64} cells pass report.ok, {n_unresolved['float64']} leaves unresolved)",
            anchor="≤ 1e-6 (O(ε²) truncation)",
            ok=worst["float64"]["fd_rel"] <= 1e-6,
            readme=True,
        ),
        _common.headline(
            f"float32, worst over {len(grids['float32'])} cells: manual vs jax.grad, max relative error",
            worst["float32"]["autodiff_rel"],
            fmt="{:.1e}" + f" (vs finite differences {worst['float32']['fd_rel']:.1e})",
            anchor=f"≤ {tol32[0]:.0e}",
            ok=worst["float32"]["autodiff_rel"] <= tol32[0],
        ),
        _common.headline(
            f"float32, worst over {len(grids['float32'])} cells: manual vs central finite differences",
            worst["float32"]["fd_rel"],
            fmt="{:.1e}",
            anchor=f"≤ {tol32[1]:.0e} (ε = ∛u ≈ 5e-3)",
            ok=worst["float32"]["fd_rel"] <= tol32[1],
        ),
        _common.headline(
            f"float64 grid cells passing report.ok: every leaf checked and within tolerance (of {len(grids['float64'])})",
            n_ok["float64"],
            fmt="{:.0f}"
            + f" ({n_mismatch['float64']} of {leaves['float64']} leaves mismatched, {n_unresolved['float64']} unresolved)",
            anchor=f"all (tol {tol64[0]:.0e}, {tol64[1]:.0e})",
            ok=n_ok["float64"] == len(grids["float64"]),
        ),
        _common.headline(
            f"float32 grid cells passing report.ok: every leaf checked and within tolerance (of {len(grids['float32'])})",
            n_ok["float32"],
            fmt="{:.0f}"
            + f" ({n_mismatch['float32']} of {leaves['float32']} leaves mismatched, {n_unresolved['float32']} unresolved)",
            anchor=f"all (tol {tol32[0]:.0e}, {tol32[1]:.0e})",
            ok=n_ok["float32"] == len(grids["float32"]),
        ),
        _common.headline(
            f"jitted step time, manual / jax.grad: median over {len(timing)} size(s) of {n_pairs} interleaved pairs each",
            ratio,
            fmt="{:.2f}",
            anchor="≈ 1 (reverse mode is backprop: same FLOPs)",
            ok=0.5 <= ratio <= 2.0,
        ),
    ]
    return _common.finish(args, results, headlines, figures)


if __name__ == "__main__":
    main()
