"""L2 weight decay chosen on validation against "more units overfit" and against double descent.

The tutorial (§2) warns that a bigger network overfits; ``double_descent`` shows that, on noisy
labels and without regularisation, test error peaks near the interpolation threshold and falls
again beyond it. Nakkiran, Venkat, Kakade & Ma (2021, "Optimal regularization can mitigate double
descent", ICLR) prove for linear regression, and observe for networks, that with the L2 strength
tuned optimally for each size the peak disappears and test error becomes monotone in size: a
bigger model is then never worse.

Setup (``double_descent``'s, its helpers imported): the first 500 rows of MNIST-1D's training set
with 15 % of their labels redrawn uniformly at random (``noisy_labels``; a redrawn label may equal
the true one), the clean 1000-row test set; one hidden layer of w ReLU units (40-w-10, softmax,
cross-entropy), Adam 1e-3, batch 100, no early stopping. The objective is ``E + ½ λ Σ‖W‖²`` (weights
only, ``fnn.fit_many(..., l2=λ)``), λ = 0 or on a log grid: quick mode {1e-2, 3e-2, 1e-1} (measured
once on the quick widths: 1e-3 moves test error by at most 0.013 from λ = 0, and no width's best
λ was below 1e-2), full mode 1e-5 … 1e-1 in half decades (1, 3, 10, ...).

Validation: the NEXT 500 rows of MNIST-1D's training set (rows 500–999, never trained on), their
labels noised the same way by an independent draw (``noisy_labels(..., VAL_SEED + seed)``): a real
tuner sees noisy labels only. The networks train on exactly ``double_descent``'s 500 rows, so the
λ = 0 curve is that experiment's (interpolation threshold and peak where it found them). Carving
the split out of the 500 instead (tried: 400 + 100) moves the threshold and leaves the choice to
noise (a 100-row error has a standard error of ~0.04, more than the effects measured here). Per
width, λ is chosen on validation: the lowest validation error of the seeds' mean, ties to the
lower validation cross-entropy (``_common.choose``). Reported beside it, not used for a verdict:
λ by the lowest validation cross-entropy, and the "oracle" λ, the grid's best on the TEST set,
the empirical stand-in for the paper's optimally tuned λ (optimistic: picked on what it reports).

Widths: quick 4, 16, 24, 32, 256 (1000 epochs, 3 seeds; the λ = 0 peak shows at 1000 epochs about
as at 2000: measured once on widths 4 … 256, its prominence was +0.028/+0.038/+0.011 for data seeds
0/1/2 at 1000 epochs, +0.032/+0.035/+0.017 at 2000; seed 2's +0.011 ± 0.010 at 1000 is within 2 s.e.),
full ``double_descent``'s quick grid 4 … 512 (2000 epochs, 5 seeds). One ``fnn.fit_many``
per (λ, group of widths): widths up to 64 share one compiled program, each zero-padded to the
group's widest (a hidden unit whose in-weights, bias and out-weights are all zero gets exactly zero
gradient, from the data term, the L2 term and through Adam, so it stays zero and the padded network
is the narrow one, to float rounding; the test checks it). Each (width, seed) network has the same
initialisation and batch order at every λ (a paired comparison across λ).

Measured per (λ, width): training, validation and test error over seeds. Verdicts, with the seeds'
standard errors (s.e. of a difference of two widths' means): (1) at λ = 0 the test-error peak
shows at this number of epochs: its prominence (height above the higher of the lowest points on
either side) beyond 2 s.e., within a factor 2 in width of the interpolation threshold (the
smallest width with training error below 1 %); (2) with the chosen λ the peak flattens: the
prominence at that width is at most 2 s.e.; (3) test error no longer rises with width anywhere:
the largest rise from a width to any larger one is at most 2 s.e. (the paper's monotonicity);
(4) the tutorial's "more units overfit" under L2: the largest width against the smallest.

Run: python -m experiments.l2_double_descent [--quick] [--seed 0] [--out results/l2_double_descent]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from numpy.typing import ArrayLike

import fnn
from experiments import _common
from experiments.double_descent import ADAM, NOISE, noisy_labels, pad_groups, pad_hidden
from experiments.double_descent import WIDTHS as DD_WIDTHS

WIDTHS = {"full": DD_WIDTHS["quick"], "quick": [4, 16, 24, 32, 256], "smoke": [4, 16]}
LAMBDAS = {
    "full": [0.0, 1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1],
    "quick": [0.0, 1e-2, 3e-2, 1e-1],
    "smoke": [0.0, 1e-2],
}
VAL_SEED = 1000  # the validation rows' label noise: noisy_labels(..., VAL_SEED + seed), a draw apart from the training rows'


def scores(net: fnn.MLP, params: Any, x: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    """Error and mean cross-entropy of each of N stacked softmax networks on ``(x, y)``: two (N,) arrays."""
    probs = np.asarray(jax.vmap(net.apply, in_axes=(0, None))(params, x), np.float64)  # (N, B, K)
    y = np.asarray(y)
    err = (probs.argmax(-1) != y[None]).mean(1)
    ce = -np.log(np.maximum(np.take_along_axis(probs, y[None, :, None], -1)[..., 0], 1e-12)).mean(1)
    return err, ce


def largest_rise(curve: Sequence[float]) -> tuple[int, int, float]:
    """The largest increase of ``curve`` from an index to any later one: ``(i, j, curve[j] - curve[i])``
    with i < j (the least decrease when the curve falls throughout).

    >>> largest_rise([1.0, 4.0, 3.0, 0.5])
    (0, 1, 3.0)
    >>> largest_rise([3.0, 2.0, 1.5])
    (1, 2, -0.5)
    """
    c = np.asarray(curve, float)
    pairs = [(i, j) for i in range(len(c)) for j in range(i + 1, len(c))]
    i, j = max(pairs, key=lambda p: c[p[1]] - c[p[0]])
    return i, j, float(c[j] - c[i])


def prominence(curve: Sequence[float], i: int) -> tuple[float, int | None]:
    """How far ``curve[i]`` stands above the curve on both sides: its height above the lowest point to
    its left or above the lowest point to its right, whichever is less (the higher of the two minima),
    and that minimum's index. Negative when ``curve[i]`` is not a peak (a point of a monotone curve);
    ``(nan, None)`` at either end, where a peak cannot be told from a slope.

    >>> prominence([0.74, 0.72, 0.77, 0.75, 0.70], 2)  # 0.05 above the left side's 0.72, 0.07 above the right's
    (0.05, 1)
    >>> prominence([3.0, 2.0, 1.0], 1)
    (-1.0, 0)
    """
    c = np.asarray(curve, float)
    if i <= 0 or i >= len(c) - 1:
        return float("nan"), None
    left, right = int(np.argmin(c[:i])), i + 1 + int(np.argmin(c[i + 1 :]))
    side = left if c[left] >= c[right] else right
    return round(float(c[i] - c[side]), 12), side


def diff_se(a: ArrayLike, b: ArrayLike) -> float:
    """Standard error of the difference of the means of two independent sets of seeds (sample std)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) < 2 or len(b) < 2:
        return 0.0
    return float(np.sqrt(np.var(a, ddof=1) / len(a) + np.var(b, ddof=1) / len(b)))


def train_grid(
    widths: Sequence[int], lambdas: Sequence[float], data: dict, seeds: int, epochs: int, key: jax.Array
) -> dict[str, np.ndarray]:
    """Train every (λ, width, seed) and score it: arrays (λ, width, seed) of ``train``, ``val``,
    ``test`` error and ``val_ce``, and ``diverged``. One ``fit_many`` per (pad group, λ)."""
    x, y = data["fit"]
    shape = (len(lambdas), len(widths), seeds)
    out = {k: np.full(shape, np.nan) for k in ("train", "val", "val_ce", "test")}
    out["diverged"] = np.zeros(shape, bool)
    init_key, shuffle_key = jax.random.split(key)
    for group in pad_groups(widths):
        wide = max(group)
        net = fnn.MLP((40, wide, 10), hidden="relu", output="softmax")
        parts = [
            pad_hidden(
                fnn.MLP((40, w, 10), hidden="relu", output="softmax").init_stacked(jax.random.fold_in(init_key, w), seeds), wide
            )
            for w in group
        ]
        params0 = jax.tree.map(lambda *a: jnp.concatenate(a), *parts)
        keys = jnp.concatenate([jax.random.split(jax.random.fold_in(shuffle_key, w), seeds) for w in group])
        cols = [widths.index(w) for w in group]
        for li, lam in enumerate(lambdas):
            ps, hist = fnn.fit_many(
                net,
                (x, y),
                loss="cross_entropy",
                optimizer=ADAM,
                epochs=epochs,
                batch_size=100,
                key=keys,
                params=params0,
                l2=float(lam),
                progress=False,
            )
            res = {split: scores(net, ps, *data[split]) for split in ("fit", "val", "test")}
            for k, (split, part) in {"train": ("fit", 0), "val": ("val", 0), "val_ce": ("val", 1), "test": ("test", 0)}.items():
                out[k][li, cols] = res[split][part].reshape(len(group), seeds)
            out["diverged"][li, cols] = np.asarray(hist["diverged"]).reshape(len(group), seeds)
    return out


def main(argv: Sequence[str] | None = None) -> dict:
    args = _common.parse_args(__doc__, "l2_double_descent", argv)
    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    n = _common.size(args, 500, 500, 200)
    seeds = _common.size(args, 5, 3, 2)
    epochs = _common.size(args, 2000, 1000, 30)
    widths, lambdas = WIDTHS[mode], LAMBDAS[mode]
    x_tr, y_tr, x_te, y_te = fnn.datasets.mnist1d()
    xs, ys = np.asarray(x_tr), np.asarray(y_tr)
    x_fit, (y_fit, replaced) = xs[:n], noisy_labels(ys[:n], NOISE, args.seed)  # double_descent's training set
    x_val, (y_val, _) = xs[n : 2 * n], noisy_labels(ys[n : 2 * n], NOISE, VAL_SEED + args.seed)  # the next n rows
    key = jax.random.key(args.seed)
    data = {"fit": (x_fit, y_fit), "val": (x_val, y_val), "test": (np.asarray(x_te), np.asarray(y_te))}
    g = train_grid(widths, lambdas, data, seeds, epochs, jax.random.fold_in(key, 2))

    mean = {k: _common.nanmean(g[k], axis=2) for k in ("train", "val", "val_ce", "test")}  # (λ, width)
    params = [fnn.MLP((40, w, 10)).num_params for w in widths]
    chosen, by_ce, oracle, records = [], [], [], []
    for wi, w in enumerate(widths):
        i, rec = _common.choose(
            [(-mean["val"][li, wi], -mean["val_ce"][li, wi]) for li in range(len(lambdas))],
            by="lowest mean validation error over seeds, ties to the lower validation cross-entropy",
            lam=lambdas,
            val_error=mean["val"][:, wi].tolist(),
            val_ce=mean["val_ce"][:, wi].tolist(),
            test_error=mean["test"][:, wi].tolist(),
            train_error=mean["train"][:, wi].tolist(),
        )
        chosen.append(i)
        by_ce.append(int(np.nanargmin(mean["val_ce"][:, wi])))  # the alternative rule, reported beside it
        oracle.append(int(np.nanargmin(mean["test"][:, wi])))  # for reference only: picked on the test set
        records.append({"width": w, **rec})

    def along(split: str, picks: list[int]) -> np.ndarray:  # (width, seed) at each width's picked λ
        return np.stack([g[split][picks[wi], wi] for wi in range(len(widths))])

    curves = {  # per-seed test errors (width, seed) of each curve
        "λ=0": g["test"][0],
        "chosen λ": along("test", chosen),
        "chosen by val CE": along("test", by_ce),
        "oracle λ": along("test", oracle),
    }
    train_curves = {"λ=0": g["train"][0], "chosen λ": along("train", chosen)}
    m = {k: v.mean(1) for k, v in curves.items()}
    rows = [
        (
            w,
            params[wi],
            f"{train_curves['λ=0'][wi].mean():.3f}",
            f"{m['λ=0'][wi]:.3f} ± {curves['λ=0'][wi].std():.3f}",
            f"{lambdas[chosen[wi]]:g}",
            f"{train_curves['chosen λ'][wi].mean():.3f}",
            f"{m['chosen λ'][wi]:.3f} ± {curves['chosen λ'][wi].std():.3f}",
            f"{lambdas[by_ce[wi]]:g}: {m['chosen by val CE'][wi]:.3f}",
            f"{lambdas[oracle[wi]]:g}: {m['oracle λ'][wi]:.3f}",
        )
        for wi, w in enumerate(widths)
    ]
    heads = ["width", "params", "train err λ=0", "test err λ=0", "λ (val error)", "train err", "test err", "λ (val CE): test"]
    print(_common.table(rows, [*heads, "oracle λ: test"]))

    # the λ = 0 curve: interpolation threshold and peak
    interp = next((wi for wi in range(len(widths)) if train_curves["λ=0"][wi].mean() < 0.01), None)
    peak = int(np.argmax(m["λ=0"]))

    def peak_at(name: str) -> tuple[float, float, int]:  # prominence at λ=0's peak width, its s.e., the side setting it
        value, side = prominence(m[name], peak)
        return value, (np.nan if side is None else diff_se(curves[name][peak], curves[name][side])), -1 if side is None else side

    prom = {k: peak_at(k) for k in curves}
    rise = {k: largest_rise(m[k]) for k in curves}

    def rise_se(name: str) -> float:
        i, j, _ = rise[name]
        return diff_se(curves[name][i], curves[name][j])

    last = len(widths) - 1
    gain = {k: float(m[k][last] - m[k][0]) for k in curves}  # largest minus smallest width
    gain_se = {k: diff_se(curves[k][last], curves[k][0]) for k in curves}

    results = {
        "n_train": n,
        "n_val": len(y_val),
        "validation_rows": [n, 2 * n],
        "label_noise": NOISE,
        "replaced": int(replaced.sum()),
        "seeds": seeds,
        "epochs": epochs,
        "widths": widths,
        "params": params,
        "lambdas": lambdas,
        "pad_groups": pad_groups(widths),
        "train_error": g["train"],
        "val_error": g["val"],
        "val_cross_entropy": g["val_ce"],
        "test_error": g["test"],
        "diverged": g["diverged"],
        "selected": records,
        "chosen_lambda": [lambdas[i] for i in chosen],
        "oracle_lambda": [lambdas[i] for i in oracle],
        "interpolation_width": None if interp is None else widths[interp],
        "peak_width": widths[peak],
        "chosen_lambda_by_val_ce": [lambdas[i] for i in by_ce],
        "chosen_is_oracle": [c == o for c, o in zip(chosen, oracle)],
        "curves": curves,  # per-seed test errors (width, seed)
        "peak_prominence": {k: {"value": v, "se": e} for k, (v, e, _) in prom.items()},  # at peak_width
        "largest_minus_smallest_width": {k: {"value": gain[k], "se": gain_se[k]} for k in curves},
        "largest_rise": {k: {"from": widths[i], "to": widths[j], "rise": r, "se": rise_se(k)} for k, (i, j, r) in rise.items()},
    }

    figures = []
    try:
        from fnn import plot

        fig, (ax, bx, cx) = plot.subplots(1, 3, size=3.6)
        styles = {"λ=0": ("C3", "o-"), "chosen λ": ("C0", "s-"), "chosen by val CE": ("C2", "^:"), "oracle λ": ("0.5", "x--")}
        for name, c in curves.items():
            color, fmt = styles[name]
            label = {"chosen λ": "chosen λ (val error)", "oracle λ": "oracle λ (test set)"}.get(name, name)
            ax.errorbar(widths, c.mean(1), yerr=c.std(1), fmt=fmt, color=color, capsize=2, ms=4, label=f"test, {label}")
        for name, c in train_curves.items():
            bx.plot(widths, c.mean(1), styles[name][1], color=styles[name][0], ms=4, label=f"train, {name}")
        for axis in (ax, bx):
            if interp is not None:
                axis.axvline(widths[interp], color="0.4", ls="--", lw=0.8, label="interpolation at λ=0")
            axis.set_xscale("log", base=2)
            axis.set_xticks(widths, [str(w) for w in widths], fontsize=7)
            axis.minorticks_off()
            axis.set_xlabel("hidden width w (40-w-10 ReLU)")
            axis.legend(fontsize=5.5, framealpha=0.7)
        low, high = ax.get_ylim()
        ax.set_ylim(low, high + 0.35 * (high - low))  # room for the legend above the curves
        ax.set_ylabel("test error (mean ± std over seeds)")
        ax.set_title("test error: λ=0 vs λ chosen on validation", fontsize=9)
        bx.set_ylabel("training error (noisy labels)")
        bx.set_title("training error", fontsize=9)
        plot.heatmap(
            cx,
            mean["test"],
            xticks=widths,
            yticks=[f"{lam:g}" for lam in lambdas],
            xlabel="hidden width w",
            ylabel="L2 strength λ",
            fmt="{:.3f}",
            title="mean test error (o: val error's λ, x: oracle)",
        )
        cx.plot(range(len(widths)), chosen, "o", mfc="none", mec="r", ms=13, mew=0.8)
        cx.plot(range(len(widths)), oracle, "x", color="r", ms=8)
        fig.suptitle(
            f"L2 vs double descent: MNIST-1D, {len(y_fit)} training rows ({NOISE:.0%} label noise), "
            f"{len(y_val)} validation rows, {epochs} epochs of Adam, {seeds} seeds",
            fontsize=9,
        )
        figures.append(plot.save(fig, args.out / "l2_double_descent.png"))
    except ImportError as e:
        print(f"(no figures: {e})")

    setup = f"MNIST-1D, {len(y_fit)} rows with {NOISE:.0%} label noise, 40-w-10 ReLU, Adam, {epochs} epochs, {seeds} seeds"
    at_threshold = interp is not None and abs(np.log2(widths[peak] / widths[interp])) <= 1
    h0, se0, side0 = prom["λ=0"]
    hc, sec, _ = prom["chosen λ"]
    is_peak = bool(np.isfinite(h0) and h0 > 2 * se0 and at_threshold)  # a double-descent peak to flatten

    def rise_text(k: str) -> str:
        i, j, r = rise[k]
        return f"{r:+.3f} ± {rise_se(k):.3f} ({widths[i]} → {widths[j]})"

    ci, cj, cr = rise["chosen λ"]
    agree = sum(results["chosen_is_oracle"])
    headlines = [
        _common.headline(
            f"{setup}, λ=0: prominence of the test-error peak (width {widths[peak]}): its height above the higher of the "
            f"lowest points on either side (width {widths[side0] if side0 >= 0 else '—'}); interpolation threshold "
            f"(train error < 1%) at width {'—' if interp is None else widths[interp]}",
            h0,
            fmt=f"{{:+.3f}} ± {se0:.3f} s.e. (peak {'at' if at_threshold else 'not at'} the threshold)",
            anchor="> 0 beyond 2 s.e., at the threshold: the double-descent peak shows at this many epochs (double_descent)",
            ok=is_peak,
        ),
        _common.headline(
            f"{setup}, λ chosen per width on {len(y_val)} validation rows (lowest validation error): prominence of the "
            f"test-error curve at λ=0's peak width ({widths[peak]}; λ chosen there {lambdas[chosen[peak]]:g})",
            hc,
            fmt=f"{{:+.3f}} ± {sec:.3f} s.e. (λ=0: {h0:+.3f} ± {se0:.3f}; λ by validation cross-entropy: "
            f"{prom['chosen by val CE'][0]:+.3f} ± {prom['chosen by val CE'][1]:.3f})",
            anchor="≤ 0 within 2 s.e.: tuned L2 flattens the peak (Nakkiran et al. 2021)",
            ok=bool(hc <= 2 * sec) if is_peak and np.isfinite(hc) else None,
            readme=True,
        ),
        _common.headline(
            f"{setup}, λ chosen on validation: largest rise of test error from a width to a larger one "
            f"({widths[ci]} → {widths[cj]})",
            cr,
            fmt=f"{{:+.3f}} ± {rise_se('chosen λ'):.3f} s.e. (λ=0: {rise_text('λ=0')}; "
            f"λ by validation cross-entropy: {rise_text('chosen by val CE')})",
            anchor="≤ 0 within 2 s.e.: with tuned L2 test error is monotone in size (Nakkiran et al. 2021)",
            ok=bool(cr <= 2 * rise_se("chosen λ")),
        ),
        _common.headline(
            f"{setup}, λ chosen on validation: test error of the largest width ({widths[last]}) minus the smallest ({widths[0]})",
            gain["chosen λ"],
            fmt=f"{{:+.3f}} ± {gain_se['chosen λ']:.3f} s.e. ({m['chosen λ'][0]:.3f} → {m['chosen λ'][last]:.3f}; "
            f"λ=0: {gain['λ=0']:+.3f} ± {gain_se['λ=0']:.3f})",
            anchor="> 0 would be the tutorial's 'more units overfit' (§2); with tuned L2 < 0 beyond 2 s.e.: more units help",
            ok=bool(gain["chosen λ"] < -2 * gain_se["chosen λ"]),
            readme=True,
        ),
        _common.headline(
            f"{setup}, for reference the oracle λ (the grid's best on the TEST set: not a selection, the stand-in for "
            f"the paper's optimal λ; validation error picked it at {agree} of {len(widths)} widths): largest rise of "
            f"test error from a width to a larger one",
            rise["oracle λ"][2],
            fmt=f"{rise_text('oracle λ')} (prominence at width {widths[peak]}: {prom['oracle λ'][0]:+.3f} ± "
            f"{prom['oracle λ'][1]:.3f})",
            anchor="≤ 0: monotone in size (Nakkiran et al. 2021); optimistic, λ picked on the test set",
            ok=None,
        ),
    ]
    return _common.finish(args, results, headlines, figures)


if __name__ == "__main__":
    main()
