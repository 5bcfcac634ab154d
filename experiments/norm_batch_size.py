"""Batch norm depends on the batch size; layer norm does not.

Batch normalisation (Ioffe & Szegedy 2015) normalises each unit with the mean and variance of the
current minibatch; with few examples those statistics are noisy (with two examples every unit's
normalised value is ±1), and at test time the network runs on running averages of them, which
then describe a different network from the one trained. Layer normalisation (Ba, Kiros & Hinton
2016, "Layer normalization", §1 and §6) normalises each example over its own units, so it does not
depend on the batch at all; CS231n assignment 2 (BatchNormalization.ipynb and its layer-norm part)
shows the same with a batch-size sweep.

Setup: MNIST-1D (the package's published setting, 4000 train / 1000 test), standardised; 20 % of
the training rows held out as a validation split, the remaining rows cut to a multiple of 128
(3072) so that every batch size divides them (no partial last batch; a batch of one cannot be
batch-normalised in train mode). The MLP 40-100-100-100-10 (ReLU, He initialisation, softmax,
cross-entropy) in three variants, ``fnn.MLP(..., norm=None | "batch" | "layer")`` (Linear → Norm →
ReLU; no bias before batch norm; batch norm's running averages with PyTorch's momentum 0.1), all three
starting from the same weight matrices. Batch sizes 2, 4, 8, …, 128 (quick mode: 2 and 32, since
each (variant, batch size) is one compiled program), SGD with momentum 0.9 for the same number of
examples seen at every batch size: 20 epochs (quick: 4), so a batch of 2 takes 64 times the steps
of a batch of 128.

Learning rate: per variant and batch size, chosen on the validation split from a grid that scales
linearly with the batch size, η = m · 0.05 · b/32 for a few multipliers m. Why: with SGD the noise
of a step grows as η/b (the linear scaling rule, Goyal et al. 2017; Smith & Le 2018), so one fixed
rate would be 16 times too hot at b = 2 or too cold at b = 128, and a fixed grid wide enough for both
would need twice the networks; the multipliers leave the choice to validation. The grid × seeds of
one (variant, batch size) train as ONE ``fit_many`` call (one compiled program per cell); every cell
of a variant starts from the same stacked initial parameters, so network i is paired across batch sizes.

Measured: accuracy in eval mode (batch norm on its running averages) on the validation split (to
choose the rate) and on the test split at the chosen rate (mean ± std over the seeds). Verdict: the
spread (max − min over batch sizes) of each variant's test accuracy, and the drop from its best batch
size to the smallest one, against the seeds' standard errors. Mechanism, batch norm only: the same
networks on the validation split in train mode, normalised with the batch statistics of validation
batches of the training batch size (what the network saw while it trained): if that is much better
than eval mode, the running averages are to blame; if it is as bad, the tiny batches spoilt training
itself (with b = 2 every normalised unit is ±1, one bit per unit).

Run: python -m experiments.norm_batch_size [--quick] [--seed 0] [--out results/norm_batch_size]
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

import fnn
from experiments import _common

VARIANTS = ("none", "batch", "layer")
LABELS = {"none": "no normalisation", "batch": "batch norm", "layer": "layer norm"}
BASE_LR, BASE_BATCH = 0.05, 32
OPT = optax.inject_hyperparams(optax.sgd)(learning_rate=BASE_LR, momentum=0.9)
HIDDEN = (100, 100, 100)


def scaled_rates(batch: int, multipliers: Sequence[float]) -> np.ndarray:
    """The learning-rate grid of one batch size: ``m · BASE_LR · batch / BASE_BATCH`` for each multiplier.

    >>> scaled_rates(64, [0.5, 1.0]).tolist()
    [0.05, 0.1]
    """
    return np.asarray(multipliers, float) * BASE_LR * batch / BASE_BATCH


def spread(means: Sequence[float]) -> float:
    """max − min over batch sizes (NaN cells, e.g. every seed diverged, left out).

    >>> round(spread([0.5, 0.7, float("nan"), 0.6]), 6)
    0.2
    """
    a = np.asarray(means, float)
    return float(np.nanmax(a) - np.nanmin(a))


def data(key: jax.Array, smoke: bool) -> dict:
    """Standardised (fit, validation, test) splits of MNIST-1D; the fit rows cut to a multiple of 128."""
    x_tr, y_tr, x_te, y_te = fnn.datasets.mnist1d(num_samples=1000 if smoke else 5000)
    x_fit, y_fit, x_val, y_val = _common.carve_validation(key, x_tr, y_tr)
    n = (x_fit.shape[0] // 128) * 128
    x_fit, x_val, x_te, _, _ = fnn.preprocessing.standardize(x_fit[:n], x_val, x_te)
    return {"fit": (x_fit, y_fit[:n]), "val": (x_val, y_val), "test": (x_te, y_te)}


def outputs(net: Any, params: Any, x: Any, train: bool = False) -> Any:
    """The network's output without argument checks (traceable): a plain ``fnn.MLP`` (``norm=None``)
    has no modes; a network of blocks runs in eval mode unless ``train``."""
    if isinstance(net, fnn.Network):
        return net.propagate(params, x, train=train)[0]
    return net.apply(params, x)


@functools.cache
def _predict(net: Any) -> Callable:
    """Eval-mode class predictions of N stacked networks: (N, B)."""
    return jax.jit(jax.vmap(lambda p, x: jnp.argmax(outputs(net, p, x), -1), in_axes=(0, None)))


@functools.cache
def _predict_batches(net: Any) -> Callable:
    """Train-mode predictions of N stacked networks on groups of rows (G, b, n_in): each group
    normalised with its own batch statistics; (N, G, b)."""

    def one(p: Any, xg: Any) -> Any:
        return jnp.argmax(outputs(net, p, xg, train=True), -1)

    return jax.jit(jax.vmap(jax.vmap(one, in_axes=(None, 0)), in_axes=(0, None)))


def predictions(net: Any, params: Any, x: Any) -> np.ndarray:
    """Eval-mode class predictions of each stacked network, (N, B)."""
    return np.asarray(_predict(net)(params, jnp.asarray(x)))


def accuracy_batch_stats(net: Any, params: Any, x: Any, y: Any, batch: int) -> np.ndarray:
    """Train-mode accuracy of each stacked network with the rows cut into batches of ``batch`` (the
    rows past the last whole batch left out), (N,)."""
    n = (x.shape[0] // batch) * batch
    groups = jnp.asarray(x[:n]).reshape(n // batch, batch, -1)
    pred = np.asarray(_predict_batches(net)(params, groups)).reshape(params_count(params), n)
    return (pred == np.asarray(y[:n])[None]).mean(axis=1)


def same_start(net: Any, plain: list) -> Any:
    """The stacked parameters of ``net`` (an ``fnn.MLP(..., norm=...)``) that start from the weight
    matrices of ``plain`` (the stacked parameters of the plain MLP of the same sizes): every Dense
    block takes the next layer's ``W`` (and ``b`` where it has a bias; zero at initialisation), every
    other block its own initial values (γ = 1, β = 0, running mean 0 and variance 1), broadcast over
    the networks. One draw (one compiled init) for all variants, and the variants start paired.
    A plain MLP gets ``plain`` back."""
    if not isinstance(net, fnn.Network):
        return plain
    n = params_count(plain)
    layers = iter(plain)
    out, width = [], net.n_in
    for block in net.blocks:
        if isinstance(block, fnn.blocks.Dense):
            layer = next(layers)
            out.append({"W": layer["W"], **({"b": layer["b"]} if block.bias else {})})
        else:
            own = block.init(jax.random.key(0), width, layer["W"].dtype)  # (these blocks draw nothing)
            out.append(jax.tree_util.tree_map(lambda a: jnp.broadcast_to(a, (n, *a.shape)), own))
        width = block.out_size(width)
    return out


def params_count(params: Any) -> int:
    """N, the leading axis of stacked parameters."""
    return int(jax.tree_util.tree_leaves(params)[0].shape[0])


def main(argv: Sequence[str] | None = None) -> dict:
    args = _common.parse_args(__doc__, "norm_batch_size", argv)
    # one compiled program per (variant, batch size): the quick mode keeps two sizes, a tiny and a usual one
    batches = _common.size(args, [2, 4, 8, 16, 32, 64, 128], [2, 32], [2, 32])
    multipliers = _common.size(args, [0.125, 0.25, 0.5, 1.0, 2.0, 4.0], [0.25, 1.0, 4.0], [0.5, 2.0])
    seeds = _common.size(args, 5, 3, 2)
    epochs = _common.size(args, 20, 4, 1)
    key = jax.random.key(args.seed)
    split = data(jax.random.fold_in(key, 0), args.smoke)
    n_fit = int(split["fit"][0].shape[0])
    n_in = int(split["fit"][0].shape[1])
    n_val = int(split["val"][0].shape[0])
    x_eval = np.concatenate([np.asarray(split["val"][0]), np.asarray(split["test"][0])])
    y_eval = np.concatenate([np.asarray(split["val"][1]), np.asarray(split["test"][1])])
    results: dict = {
        "batch_sizes": batches,
        "lr_multipliers": multipliers,
        "base_lr": BASE_LR,
        "base_batch": BASE_BATCH,
        "seeds": seeds,
        "epochs": epochs,
        "examples_seen": n_fit * epochs,
        "n_fit": n_fit,
        "hidden": HIDDEN,
    }
    rows = []
    n_net = len(multipliers) * seeds
    # one draw of the weight matrices, shared by the three variants and by every batch size (paired)
    plain = fnn.MLP((n_in, *HIDDEN, 10), hidden="relu", output="softmax").init_stacked(jax.random.fold_in(key, 1), n_net)
    for variant in VARIANTS:
        net = fnn.MLP((n_in, *HIDDEN, 10), hidden="relu", output="softmax", norm=None if variant == "none" else variant)
        params0 = same_start(net, plain)
        cells = []
        for b in batches:
            lrs = scaled_rates(b, multipliers)
            _, params, hist = _common.fit_lr_grid(
                net,
                split["fit"],
                lrs,
                seeds,
                jax.random.fold_in(key, 100 + b),
                params0=params0,
                loss="cross_entropy",
                optimizer=OPT,
                epochs=epochs,
                batch_size=b,
            )
            diverged = np.asarray(hist["diverged"]).reshape(len(lrs), seeds)
            correct = predictions(net, params, x_eval) == y_eval[None]  # validation and test rows in one call
            val = _common.mask_diverged(diverged, correct[:, :n_val].mean(axis=1).reshape(len(lrs), seeds))
            test = _common.mask_diverged(diverged, correct[:, n_val:].mean(axis=1).reshape(len(lrs), seeds))
            i, choice = _common.choose(
                list(_common.nanmean(val, axis=1)),
                by="mean validation accuracy (eval mode)",
                lr=list(lrs),
                multiplier=multipliers,
            )
            cell = {
                "batch": b,
                "steps": n_fit // b * epochs,
                "choice": choice,
                "val": val,
                "test": test,
                "diverged": diverged,
                "val_mean": float(_common.nanmean(val[i])),
                "test_mean": float(_common.nanmean(test[i])),
                "test_std": float(np.nanstd(test[i])),
                "test_var": float(np.nanvar(test[i], ddof=1)) if seeds > 1 else 0.0,
            }
            if variant == "batch":
                chosen = jax.tree_util.tree_map(lambda a, i=i: a[i * seeds : (i + 1) * seeds], params)
                bs = accuracy_batch_stats(net, chosen, split["val"][0], split["val"][1], b)
                cell["val_batch_stats"] = bs
                cell["val_batch_stats_mean"] = float(np.mean(bs))
            cells.append(cell)
            rows.append(
                (
                    LABELS[variant],
                    b,
                    cell["steps"],
                    f"{lrs[i]:.4g}",
                    f"{cell['val_mean']:.3f}",
                    f"{cell['test_mean']:.3f} ± {cell['test_std']:.3f}",
                    f"{cell['val_batch_stats_mean']:.3f}" if variant == "batch" else "",
                )
            )
        means = [c["test_mean"] for c in cells]
        best = int(np.nanargmax(means))
        results[variant] = {
            "cells": cells,
            "test_mean": means,
            "test_std": [c["test_std"] for c in cells],
            "spread": spread(means),
            "best_batch": batches[best],
            "drop_to_smallest": float(means[best] - means[0]),
            # standard error of (best − smallest) over the seeds
            "drop_se": float(np.sqrt((cells[best]["test_var"] + cells[0]["test_var"]) / seeds)),
        }
    print(
        _common.table(
            rows,
            ["variant", "batch", "steps", "chosen lr", "val acc", f"test acc ({seeds} seeds)", "BN val acc, batch stats"],
        )
    )

    figures = []
    try:
        from matplotlib.ticker import FixedLocator, NullFormatter

        from fnn import plot

        fig, (ax, bx) = plot.subplots(1, 2, size=3.4)
        for variant, color in zip(VARIANTS, ("C7", "C3", "C0")):
            r = results[variant]
            ax.errorbar(batches, r["test_mean"], yerr=r["test_std"], fmt="o-", color=color, capsize=2, label=LABELS[variant])
            bx.plot(batches, [c["choice"]["lr"] for c in r["cells"]], "o-", color=color, label=LABELS[variant])
        ax.plot(
            batches,
            [c["val_batch_stats_mean"] for c in results["batch"]["cells"]],
            "s--",
            color="C3",
            alpha=0.6,
            label="batch norm, batch statistics (val)",
        )
        for axis in (ax, bx):
            axis.set_xscale("log")
            axis.xaxis.set_major_locator(FixedLocator(batches))
            axis.xaxis.set_major_formatter(lambda t, _: f"{t:g}")
            axis.xaxis.set_minor_formatter(NullFormatter())
            axis.set_xlabel("batch size")
        ax.set_ylabel(f"test accuracy, eval mode (mean ± std, {seeds} seeds)")
        ax.set_title(f"same examples seen ({n_fit * epochs}), lr chosen on validation", fontsize=8)
        ax.legend(fontsize=6)
        bx.set_yscale("log")
        bx.set_ylabel("chosen learning rate")
        bx.set_title("chosen rates (grid ∝ batch size)", fontsize=8)
        bx.legend(fontsize=6)
        fig.suptitle("MNIST-1D, MLP 40-100-100-100-10, SGD momentum 0.9", fontsize=9)
        figures.append(plot.save(fig, args.out / "norm_batch_size.png"))
    except ImportError as e:
        print(f"(no figures: {e})")

    bn, ln, no = results["batch"], results["layer"], results["none"]
    b0 = batches[0]
    setup = (
        f"MNIST-1D, MLP 3×100 ReLU, SGD momentum 0.9, {n_fit * epochs} examples seen at every batch size "
        f"({', '.join(map(str, batches))}), lr per cell chosen on validation, {seeds} seeds"
    )
    gap = bn["drop_to_smallest"] - ln["drop_to_smallest"]
    gap_se = float(np.hypot(bn["drop_se"], ln["drop_se"]))
    spread_se = float(np.hypot(ln["drop_se"], no["drop_se"]))
    small = bn["cells"][0]
    headlines = [
        _common.headline(
            f"{setup}: test accuracy (eval mode) lost from each variant's best batch size to batch {b0}, "
            "batch norm vs layer norm (vs none)",
            gap,
            fmt=f"BN −{bn['drop_to_smallest']:.3f} (best b={bn['best_batch']} {max(bn['test_mean']):.3f} → "
            f"{bn['test_mean'][0]:.3f}) vs LN −{ln['drop_to_smallest']:.3f} vs none −{no['drop_to_smallest']:.3f}; "
            f"difference {{:+.3f}} ± {gap_se:.3f} s.e.",
            anchor="batch norm collapses at small batches, layer norm does not (Ba et al. 2016; CS231n a2)",
            ok=bool(gap > 2 * gap_se and bn["drop_to_smallest"] > 0.05),
            readme=True,
        ),
        _common.headline(
            f"{setup}: spread (max − min over batch sizes) of test accuracy, layer norm vs no normalisation (vs batch norm)",
            ln["spread"],
            fmt=f"LN {{:.3f}} vs none {no['spread']:.3f} (BN {bn['spread']:.3f}; ± {spread_se:.3f} s.e.)",
            anchor="layer norm no more batch-size dependent than no normalisation",
            ok=bool(ln["spread"] <= no["spread"] + 2 * spread_se),
        ),
        _common.headline(
            f"{setup}: batch norm at batch {b0}, validation accuracy with the batch statistics of validation batches "
            f"of {b0} (train mode) vs with the running averages (eval mode)",
            small["val_batch_stats_mean"] - small["val_mean"],
            fmt=f"{{:+.3f}} ({small['val_batch_stats_mean']:.3f} vs {small['val_mean']:.3f})",
            anchor="> 0 if the running averages (eval mode) are what fails at tiny batches; ≤ 0: the batch "
            "statistics fail already, in training",
            ok=bool(small["val_batch_stats_mean"] > small["val_mean"]),
        ),
    ]
    return _common.finish(args, results, headlines, figures)


if __name__ == "__main__":
    main()
