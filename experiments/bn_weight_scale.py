"""Batch normalisation makes a deep network's training robust to the scale of its initial weights.

Ioffe & Szegedy (2015, "Batch Normalization", §3.3) argue that batch norm makes a layer's output
invariant to the scale of its weights, so training no longer hinges on a careful initialisation.
CS231n's assignment 2 (BatchNormalization.ipynb, "Batch normalization and initialization")
demonstrates it: a deep fully connected ReLU network trained from weights drawn N(0, 1) times a
``weight_scale`` on a log grid, with and without batch norm; without it only a narrow band of scales
trains. Its setup, reproduced here on scikit-learn's 8×8 digits (standardised; a stratified 20 %
test split never read, and 20 % of the rest held out as the validation split) instead of CIFAR-10:

- network: 7 hidden layers of 50 ReLU units and a softmax output (8 weight layers, 64-50×7-10),
  either Linear → ReLU (with biases) or Linear → BatchNorm → ReLU (no bias before batch norm: β takes
  its place; PyTorch's conventions, momentum 0.1, ε = 1e-5). Quick mode: the same network; smoke
  mode: 2 hidden layers of 16 and 5 scales;
- initial weights: every weight matrix (the output layer's too) N(0, 1) · s, biases 0, γ = 1, β = 0,
  for 20 scales s on a log grid from 1e-4 to 1 (CS231n's ``np.logspace(-4, 0, 20)``);
- training: Adam, learning rate 1e-3, batch 50 (the last partial batch dropped), 10 epochs
  (CS231n: 1000 CIFAR images, batch 50, 10 epochs, Adam 1e-3: 200 steps; here 23 steps an epoch);
- seeds: 5 (quick 3), paired: seed j draws one N(0, 1) matrix per layer and one minibatch order,
  shared by every scale and by both variants, so a scale's networks differ only by s; all
  scales × seeds of one variant are ONE ``fnn.fit_many`` call (the stacked parameters scaled).

Measured per scale: final training and validation accuracy in eval mode (batch norm with its running
statistics), mean ± std over seeds. Verdict: the range of scales that train, per variant: the
contiguous run of grid scales around the variant's best whose mean validation accuracy is within
``TOLERANCE`` (5 points) of that best, reported as its width in decades (log10 of the largest over
the smallest scale of the run; one grid point is 0 decades, a grid step 4/19 ≈ 0.21). Batch norm
is judged robust when its range is at least twice as wide as the plain network's and at least one
decade wider.

Run: python -m experiments.bn_weight_scale [--quick] [--seed 0] [--out results/bn_weight_scale]
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any, cast

import jax
import jax.numpy as jnp
import numpy as np
import optax

import fnn
from experiments import _common

TOLERANCE = 0.05  # a scale "trains" when its mean validation accuracy is within this of the variant's best
ADAM = optax.adam(1e-3)
VARIANTS = ("plain", "batch norm")


def data(key: jax.Array) -> dict:
    """Standardised (fit, validation) splits of digits (the test split is set aside and never read)."""
    x, y = fnn.datasets.digits()
    x_tr, y_tr, _, _ = fnn.datasets.train_test_split(key, x, y, test_fraction=0.2, stratify=True)
    x_fit, y_fit, x_val, y_val = _common.carve_validation(jax.random.fold_in(key, 1), x_tr, y_tr)
    x_fit, x_val, _, _ = fnn.preprocessing.standardize(x_fit, x_val)
    return {"fit": (x_fit, y_fit), "val": (x_val, y_val)}


def standard_normal(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """N(0, 1) entries (CS231n's ``np.random.randn``)."""
    return rng.standard_normal(shape)


def scaled_params(
    net: fnn.Network,
    seed: int,
    scales: np.ndarray,
    seeds: int,
    draw: Callable[[np.random.Generator, tuple[int, int]], np.ndarray] = standard_normal,
) -> list[dict]:
    """Starting parameters of ``len(scales) × seeds`` networks stacked for ``fit_many`` (network
    ``i·seeds + j``: scale ``i``, seed ``j``): every Dense ``W`` (shape (n_out, n_in)) is seed ``j``'s
    ``draw`` (default N(0, 1): CS231n's ``weight_scale * np.random.randn``) times ``scales[i]``, its
    bias (if any) 0; the other blocks' parameters as their own ``init`` makes them (batch norm: γ 1,
    β 0, running mean 0, variance 1). The draws (numpy, ``default_rng((seed, j))``) depend only on the
    seed and the layers' shapes, so networks whose weight matrices have the same shapes (with and
    without batch norm) start from the same weights. (No JAX program: ``net.init_stacked`` compiles
    its random draws, 1.5-2 s of CPU here per network shape.)

    >>> net = fnn.Network(3, [fnn.blocks.Dense(4), fnn.blocks.Activate("relu"), fnn.blocks.Dense(2)])
    >>> p = scaled_params(net, 0, np.array([1e-2, 1.0]), seeds=2)
    >>> p[0]["W"].shape, bool(np.allclose(p[0]["W"][2], 100 * p[0]["W"][0]))
    ((4, 4, 3), True)
    >>> bool(np.allclose(p[2]["W"][1], p[2]["W"][3] / 100)), float(np.abs(p[0]["b"]).max())
    (True, 0.0)
    """
    n = len(scales) * seeds
    factor = np.repeat(np.asarray(scales, np.float32), seeds)[:, None, None]
    rngs = [np.random.default_rng((seed, j)) for j in range(seeds)]
    out: list[dict] = []
    width = net.n_in
    for block in net.blocks:
        if isinstance(block, fnn.blocks.Dense):
            z = np.stack([draw(r, (block.width, width)).astype(np.float32) for r in rngs])
            p: dict = {"W": np.tile(z, (len(scales), 1, 1)) * factor}
            if block.bias:
                p["b"] = np.zeros((n, block.width), np.float32)
        else:  # batch norm's γ, β and running statistics, an activation's nothing: no random draws
            one = block.init(jax.random.key(0), width, jnp.float32)
            p = jax.tree_util.tree_map(lambda a: np.broadcast_to(np.asarray(a), (n, *a.shape)).copy(), one)
        out.append(p)
        width = block.out_size(width)
    return out


def trained_range(val_mean: np.ndarray, tolerance: float = TOLERANCE) -> tuple[int, int]:
    """The contiguous run ``(lo, hi)`` (inclusive indices) of scales around the best mean validation
    accuracy whose means are within ``tolerance`` of it (NaN: never).

    >>> trained_range(np.array([0.1, 0.8, 0.92, 0.95, 0.89, 0.93]))
    (2, 3)
    >>> trained_range(np.array([0.1, 0.9, 0.92, np.nan]), tolerance=0.05)
    (1, 2)
    """
    v = np.nan_to_num(np.asarray(val_mean, float), nan=-np.inf)
    best = int(np.argmax(v))
    ok = v >= v[best] - tolerance
    lo = hi = best
    while lo > 0 and ok[lo - 1]:
        lo -= 1
    while hi < len(v) - 1 and ok[hi + 1]:
        hi += 1
    return lo, hi


def decades(scales: np.ndarray, lo: int, hi: int) -> float:
    """Width of the scale range ``scales[lo..hi]`` in decades.

    >>> round(decades(np.logspace(-4, 0, 20), 0, 19), 6)
    4.0
    """
    return float(np.log10(scales[hi] / scales[lo]))


def nanstd(a: np.ndarray) -> np.ndarray:
    """Standard deviation over the seeds (axis 1), ignoring NaN (diverged); all NaN stays NaN, silently."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanstd(a, axis=1)


def accuracies(net: fnn.Network, params: list[dict], splits: Sequence[tuple]) -> list[np.ndarray]:
    """Eval-mode accuracy of each stacked network on each ``(x, y)`` split, (N,) per split: one
    compiled program for all splits (their rows concatenated), not one per split's shape."""
    xs = np.concatenate([np.asarray(x) for x, _ in splits])
    predict = jax.jit(jax.vmap(lambda p: jnp.argmax(net.apply(p, xs), axis=-1)))
    pred = np.asarray(predict(params))
    out, start = [], 0
    for _, labels in splits:
        y = np.asarray(labels)
        out.append((pred[:, start : start + len(y)] == y[None]).mean(axis=1))
        start += len(y)
    return out


def run_variant(
    net: fnn.Network, split: dict, scales: np.ndarray, seeds: int, seed: int, key: jax.Array, epochs: int
) -> dict[str, Any]:
    """All scales × seeds of one variant in one ``fit_many``; eval-mode accuracies per scale and seed."""
    params0 = scaled_params(net, seed, scales, seeds)
    keys = jnp.tile(jax.random.split(key, seeds), len(scales))  # one minibatch order per seed
    params, hist = fnn.fit_many(
        cast(Any, net),  # a Network of blocks: fit_many takes one, though annotated `MLP`
        split["fit"],
        loss="cross_entropy",
        optimizer=ADAM,
        epochs=epochs,
        batch_size=50,
        drop_last=True,  # batch norm needs 2+ examples in a batch; the plain network gets the same steps
        key=keys,
        params=params0,
        progress=False,
    )
    diverged = np.asarray(hist["diverged"]).reshape(len(scales), seeds)
    acc = {
        name: _common.mask_diverged(diverged, a.reshape(len(scales), seeds))
        for name, a in zip(("fit", "val"), accuracies(net, params, [split["fit"], split["val"]]))
    }
    val_mean = _common.nanmean(acc["val"], axis=1)
    lo, hi = trained_range(val_mean)
    return {
        "train_accuracy": acc["fit"],
        "val_accuracy": acc["val"],
        "train_mean": _common.nanmean(acc["fit"], axis=1),
        "train_std": nanstd(acc["fit"]),
        "val_mean": val_mean,
        "val_std": nanstd(acc["val"]),
        "diverged": diverged,
        "best_scale": float(scales[int(np.nanargmax(np.nan_to_num(val_mean, nan=-1.0)))]),
        "best_val": float(np.nanmax(np.nan_to_num(val_mean, nan=-1.0))),
        "range": (float(scales[lo]), float(scales[hi])),
        "range_points": hi - lo + 1,
        "decades": decades(scales, lo, hi),
        "final_loss": np.asarray(hist["loss"])[:, -1].reshape(len(scales), seeds),
    }


def main(argv: Sequence[str] | None = None) -> dict:
    args = _common.parse_args(__doc__, "bn_weight_scale", argv)
    seeds = _common.size(args, 5, 3, 2)
    hidden = _common.size(args, (50,) * 7, (50,) * 7, (16,) * 2)
    scales = np.logspace(-4, 0, _common.size(args, 20, 20, 5))
    epochs = _common.size(args, 10, 10, 1)
    key = jax.random.key(args.seed)
    split = data(jax.random.fold_in(key, 1))
    sizes = (int(split["fit"][0].shape[1]), *hidden, 10)
    results: dict[str, Any] = {
        "seeds": seeds,
        "sizes": sizes,
        "scales": scales,
        "epochs": epochs,
        "tolerance": TOLERANCE,
        "steps": epochs * (int(split["fit"][0].shape[0]) // 50),
    }
    for variant, norm in zip(VARIANTS, (None, "batch")):
        net = fnn.Network.mlp(sizes, "relu", "softmax", norm=norm)
        # the same key for both: the same N(0, 1) draws and minibatch orders (paired variants)
        results[variant] = run_variant(net, split, scales, seeds, args.seed, jax.random.fold_in(key, 2), epochs)

    rows = []
    for i, s in enumerate(scales):
        row: list[Any] = [f"{s:.2e}"]
        for v in VARIANTS:
            r = results[v]
            row += [f"{r['train_mean'][i]:.3f} ± {r['train_std'][i]:.3f}", f"{r['val_mean'][i]:.3f} ± {r['val_std'][i]:.3f}"]
        rows.append(row)
    print(_common.table(rows, ["weight scale", "plain: train", "plain: val", "batch norm: train", "batch norm: val"]))
    for v in VARIANTS:
        r = results[v]
        print(
            f"{v}: best val {r['best_val']:.3f} at {r['best_scale']:.2e}; within {TOLERANCE} of it: "
            f"{r['range'][0]:.2e} .. {r['range'][1]:.2e} ({r['range_points']} scales, {r['decades']:.2f} decades)"
        )

    figures = []
    try:
        from fnn import plot

        fig, axes = plot.subplots(1, 2, size=3.4)
        for ax, (name, what) in zip(axes, (("train", "training"), ("val", "validation"))):
            for v, color in zip(VARIANTS, ("C1", "C0")):
                r = results[v]
                ax.errorbar(scales, r[f"{name}_mean"], yerr=r[f"{name}_std"], fmt="o-", ms=3, color=color, capsize=2, label=v)
                if name == "val":
                    ax.axvspan(*r["range"], color=color, alpha=0.12)
            ax.set_xscale("log")
            ax.set_xlabel("weight scale s (W ~ s · N(0, 1))")
            ax.set_ylabel(f"final {what} accuracy ({seeds} seeds)")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
        axes[1].set_title(f"shaded: within {TOLERANCE:.2f} of each variant's best", fontsize=8)
        fig.suptitle(f"digits, ReLU MLP {'-'.join(map(str, sizes))}, Adam 1e-3, {epochs} epochs: batch norm vs none", fontsize=9)
        figures.append(plot.save(fig, args.out / "bn_weight_scale.png"))
    except ImportError as e:
        print(f"(no figures: {e})")

    p, b = results["plain"], results["batch norm"]
    depth = len(sizes) - 1
    headlines = [
        _common.headline(
            f"digits, ReLU MLP of {depth} layers ({len(hidden)}×{hidden[0]} hidden), Adam 1e-3, {epochs} epochs, "
            f"weights s·N(0, 1) for {len(scales)} scales s in [1e-4, 1], {seeds} seeds: the range of s whose mean validation "
            f"accuracy is within {TOLERANCE:.2f} of the variant's best, in decades, batch norm vs plain",
            b["decades"],
            fmt=f"batch norm {{:.2f}} decades (×{10 ** b['decades']:.0f}: {b['range'][0]:.0e}..{b['range'][1]:.0e}, best "
            f"{b['best_val']:.3f}) vs plain {p['decades']:.2f} (×{10 ** p['decades']:.1f}: {p['range'][0]:.0e}.."
            f"{p['range'][1]:.0e}, best {p['best_val']:.3f})",
            anchor="batch norm: a much wider range (CS231n assignment 2; Ioffe & Szegedy 2015 §3.3)",
            ok=(b["decades"] >= 2 * p["decades"] and b["decades"] >= p["decades"] + 1.0) if not args.smoke else None,
            readme=True,
        ),
    ]
    for v, r in (("plain", p), ("batch norm", b)):
        ends = (0, len(scales) - 1)
        headlines.append(
            _common.headline(
                f"{v}: validation accuracy at the smallest and largest scale (1e-4, 1) and at its best scale",
                r["best_val"],
                fmt=f"{r['val_mean'][ends[0]]:.3f} ± {r['val_std'][ends[0]]:.3f} / {r['val_mean'][ends[1]]:.3f} ± "
                f"{r['val_std'][ends[1]]:.3f}; best {{:.3f}} at s = {r['best_scale']:.1e}",
                anchor="chance 0.10",
            )
        )
    return _common.finish(args, results, headlines, figures)


if __name__ == "__main__":
    main()
