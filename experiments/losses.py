"""Softmax + cross-entropy trains a classifier faster than the squared error E = ½ Σₖ (ŷₖ − dₖ)².

Both losses on the same task and network: scikit-learn's 8×8 digits (stratified 80/20 train/test
split; 20 % of the training rows, stratified, held out as a validation split; standardised on the
rest), an MLP 64-64-10 with ReLU hidden units, init "auto", plain minibatch SGD (batch 32),
trained over a grid of learning rates × seeds in one ``fit_many`` per loss.

- cross-entropy on a softmax output: the output error is δ⁽ᴸ⁾ = ŷ − d, large whenever the
  prediction is wrong, however confident.
- MSE on a softmax output (the tutorial's own pairing: a softmax output layer, E = ½ Σ (ŷ − d)²
  with one-hot d): δ⁽ᴸ⁾ = J_softmax (ŷ − d) with J = diag(ŷ) − ŷŷᵀ, which shrinks toward 0 as
  the softmax saturates, on wrong answers too.
- MSE on sigmoid outputs (one-vs-rest with one-hot targets): δₖ = (ŷₖ − dₖ) ŷₖ (1 − ŷₖ), the
  same saturation unit by unit; the other usual way to put MSE on a classifier.

Two starts: the usual one (init "auto"; softmax outputs near uniform, not saturated), and a
saturated one, where the initial output weights are multiplied by 10 (logits of std ≈ 10: the
network starts confidently wrong on most digits). The speed measure is the number of epochs
until the VALIDATION accuracy (mean of the seeds, measured after every epoch) first reaches 90%,
at a common learning rate and at each loss's own fastest rate, chosen on the validation split
(fewest epochs to 90%, then the higher final validation accuracy), so that MSE is not judged at a
step size tuned for cross-entropy. The test split chooses nothing: it is read once, after
training, for every network's final test accuracy.

Run: python -m experiments.losses [--quick] [--seed 0] [--out results/losses]
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import numpy as np
import optax

import fnn
from experiments import _common
from fnn import datasets

# name -> (loss, output activation)
VARIANTS = {
    "cross_entropy + softmax": ("cross_entropy", "softmax"),
    "mse + softmax": ("mse", "softmax"),
    "mse + sigmoid": ("mse", "sigmoid"),
}
CE = "cross_entropy + softmax"
SMOKE_VARIANTS = (CE, "mse + softmax")  # each variant compiles its own training loop: --smoke keeps two
STARTS = {"usual": 1.0, "saturated": 10.0}  # start -> gain on the initial output-layer weights
HIDDEN = 64
BATCH = 32
COMMON_LR = 0.1
TARGET_ACC = 0.9
OPTIMIZER = optax.inject_hyperparams(optax.sgd)(learning_rate=COMMON_LR)  # one object: the rates go in as hyperparams


def epochs_to(acc: np.ndarray, target: float) -> float:
    """First epoch (1-based) whose accuracy reaches ``target``; inf if none."""
    hit = np.flatnonzero(np.nan_to_num(acc) >= target)
    return float(hit[0] + 1) if hit.size else float("inf")


def train_grid(
    loss: str, output: str, data: tuple, lrs: np.ndarray, seeds: int, epochs: int, key: jax.Array, out_gain: float = 1.0
) -> dict:
    """``len(lrs) × seeds`` networks in one fit_many call; per-rate curves (mean over the non-diverged seeds).

    ``out_gain`` scales the initial output-layer weights (> 1: the output starts saturated).
    Only starting values change, so both starts share one compiled training loop.
    """
    x_tr, y_tr, x_val, y_val, x_te, y_te = data
    net = fnn.MLP((64, HIDDEN, 10), hidden="relu", output=output)
    params0 = _common.stacked_init(net, jax.random.fold_in(key, 0), len(lrs) * seeds)
    params0[-1]["W"] = params0[-1]["W"] * out_gain
    _, params, h = _common.fit_lr_grid(
        net,
        (x_tr, y_tr),
        lrs,
        seeds,
        key,
        params0,
        loss=loss,
        optimizer=OPTIMIZER,
        epochs=epochs,
        batch_size=BATCH,
        drop_last=True,
        validation=(x_val, y_val),
        grad_norms=True,
    )
    shape = (len(lrs), seeds)
    div = np.asarray(h["diverged"]).reshape(shape)  # diverged seeds are left out of every mean below
    acc = _common.mask_diverged(div, np.asarray(h["val_accuracy"]).reshape((*shape, -1)))
    loss_c = _common.mask_diverged(div, np.asarray(h["loss"]).reshape((*shape, -1)))
    test = _common.mask_diverged(div, _common.evaluate_stacked(net, loss, params, x_te, y_te)["accuracy"].reshape(shape))
    gn_out = np.asarray(h["grad_norm"])[:, 0, -1].reshape(shape)  # ‖∂E/∂W⁽ᴸ⁾‖, mean over the first epoch's steps
    acc_curve, loss_curve = _common.nanmean(acc, 1), _common.nanmean(loss_c, 1)  # (lrs, epochs)
    r = {
        "learning_rates": lrs,
        "diverged": div.sum(1),
        "val_accuracy_curve": acc_curve,
        "loss_curve": loss_curve,
        "epochs_to_target": [epochs_to(a, TARGET_ACC) for a in acc_curve],  # on the validation split
        "final_val_accuracy": acc_curve[:, -1],
        "final_test_accuracy": _common.nanmean(test, 1),  # read after training; chooses nothing
        "final_train_loss": loss_curve[:, -1],
        "output_grad_norm_epoch1": _common.nanmean(gn_out, 1),
    }
    # The fastest rate, chosen on validation: fewest epochs to the target, then the higher final validation accuracy.
    _, r["best_lr"] = _common.choose(
        [(-e, a) for e, a in zip(r["epochs_to_target"], r["final_val_accuracy"])],
        by=f"fewest epochs to {TARGET_ACC:.0%} validation accuracy, then the higher final validation accuracy",
        learning_rate=lrs,
        epochs_to_target=r["epochs_to_target"],
        final_val_accuracy=r["final_val_accuracy"],
        final_test_accuracy=r["final_test_accuracy"],
    )
    return r


def main(argv: Sequence[str] | None = None) -> dict:
    args = _common.parse_args(__doc__, "losses", argv)
    names = _common.size(args, tuple(VARIANTS), tuple(VARIANTS), SMOKE_VARIANTS)
    lrs = np.asarray(_common.size(args, [0.01, 0.03, 0.1, 0.3, 1.0, 3.0], [0.03, 0.1, 0.3, 1.0, 3.0], [0.1, 1.0]))
    seeds = _common.size(args, 5, 3, 2)
    epochs = _common.size(args, 100, 40, 10)
    key = jax.random.key(args.seed)
    x, y = datasets.digits()
    x_tr, y_tr, x_te, y_te = datasets.train_test_split(jax.random.fold_in(key, 0), x, y, 0.2, stratify=True)
    x_tr, y_tr, x_val, y_val = _common.carve_validation(jax.random.fold_in(key, 1), x_tr, y_tr, 0.2)
    x_tr, x_val, x_te, _, _ = datasets.standardize(x_tr, x_val, x_te)
    data = (x_tr, y_tr, x_val, y_val, x_te, y_te)
    ci = int(np.argmin(np.abs(lrs - COMMON_LR)))

    runs = {start: {} for start in STARTS}
    k = jax.random.fold_in(key, 10)  # the same keys everywhere: paired starts and minibatch orders; only the gain differs
    for name in names:
        for start, gain in STARTS.items():
            runs[start][name] = train_grid(*VARIANTS[name], data, lrs, seeds, epochs, k, out_gain=gain)

    print(f"64-{HIDDEN}-10 ReLU on digits, SGD batch {BATCH}, {epochs} epochs, {seeds} seeds per rate; accuracy: mean of seeds")
    for start, gain in STARTS.items():
        rows = [
            (
                name,
                r["epochs_to_target"][ci],
                float(r["final_test_accuracy"][ci]),
                float(r["output_grad_norm_epoch1"][ci]),
                r["best_lr"]["learning_rate"],
                r["best_lr"]["epochs_to_target"],
                r["best_lr"]["final_test_accuracy"],
            )
            for name, r in runs[start].items()
        ]
        print(f"\n{start} start (output weights ×{gain:g})")
        print(
            _common.table(
                rows,
                [
                    "loss + output",
                    f"epochs to {TARGET_ACC:.0%} val @lr {lrs[ci]:g}",
                    "final test acc",
                    "‖∂E/∂W⁽ᴸ⁾‖ epoch 1",
                    "fastest lr (on val)",
                    f"epochs to {TARGET_ACC:.0%} val @fastest",
                    "final test acc @fastest",
                ],
            )
        )
    print(f"\nepochs to {TARGET_ACC:.0%} validation accuracy per learning rate, usual | saturated start (inf: never)")
    cell = lambda r, j: f"{r['epochs_to_target'][j]:.0f}" + (f" ({r['diverged'][j]} div)" if r["diverged"][j] else "")
    print(
        _common.table(
            [
                (float(lr), *[f"{cell(runs['usual'][n], j)} | {cell(runs['saturated'][n], j)}" for n in names])
                for j, lr in enumerate(lrs)
            ],
            ["lr", *names],
        )
    )

    figures = make_figures(args, runs, lrs, ci)
    headlines = make_headlines(runs, lrs, ci, epochs)
    setup = {
        "task": "digits (stratified 80/20 train/test; 20 % of train held out for validation; standardised on the rest)",
        "n_train": int(x_tr.shape[0]),
        "n_val": int(x_val.shape[0]),
        "n_test": int(x_te.shape[0]),
        "selection": "every choice (the fastest rate, epochs to 90 %) is read on the validation split; test only reports",
        "sizes": (64, HIDDEN, 10),
        "hidden": "relu",
        "batch_size": BATCH,
        "epochs": epochs,
        "seeds": seeds,
        "learning_rates": lrs,
        "common_lr": float(lrs[ci]),
        "optimizer": "sgd",
        "target_accuracy": TARGET_ACC,
        "starts": {s: f"initial output weights × {g:g}" for s, g in STARTS.items()},
    }
    results = {"setup": setup, "runs": runs}
    return _common.finish(args, results, headlines, figures)


def make_figures(args, runs: dict, lrs: np.ndarray, ci: int) -> list:
    try:
        from fnn import plot
    except ImportError as e:
        print(f"(no figures: {e})")
        return []
    figures = []
    usual, sat = runs["usual"], runs["saturated"]
    fig, axes = plot.subplots(1, 3, size=3.4)
    plot.curves(
        axes[0],
        {n: r["val_accuracy_curve"][ci] for n, r in usual.items()},
        ylabel="validation accuracy",
        title=f"usual start, SGD lr {lrs[ci]:g} (common)",
    )

    def fastest(rs: dict) -> dict:
        return {
            f"{n} (lr {r['best_lr']['learning_rate']:g})": r["val_accuracy_curve"][r["best_lr"]["index"]] for n, r in rs.items()
        }

    plot.curves(axes[1], fastest(usual), ylabel="validation accuracy", title="usual start, each at its fastest lr")
    plot.curves(axes[2], fastest(sat), ylabel="test accuracy", title=f"saturated start (output W ×{STARTS['saturated']:g})")
    for ax in axes:
        ax.axhline(TARGET_ACC, color="gray", ls=":", lw=0.8)
        ax.set_ylim(0, 1)
    figures.append(plot.save(fig, args.out / "curves.png"))

    fig, axes = plot.subplots(1, 2, size=3.8)
    for i, n in enumerate(usual):
        for start, ls in (("usual", "-"), ("saturated", "--")):
            r = runs[start][n]
            e = np.asarray(r["epochs_to_target"], float)
            kw = {"ls": ls, "marker": "o", "ms": 3, "color": f"C{i}", "label": f"{n}, {start}"}
            axes[0].plot(lrs, np.where(np.isfinite(e), e, np.nan), **kw)
            axes[1].plot(lrs, r["final_test_accuracy"], **kw)
    axes[0].set(yscale="log", ylabel=f"epochs to {TARGET_ACC:.0%} validation accuracy (missing: never)")
    axes[1].set(ylabel="final test accuracy (non-diverged seeds)")
    for ax in axes:
        ax.set(xscale="log", xlabel="SGD learning rate")
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=6)
    figures.append(plot.save(fig, args.out / "epochs_vs_lr.png"))
    return figures


def make_headlines(runs: dict, lrs: np.ndarray, ci: int, epochs: int) -> list[dict]:
    H = _common.headline
    usual, sat = runs["usual"], runs["saturated"]
    seeds = "mean of the seeds"
    to = f"epochs to {TARGET_ACC:.0%} validation accuracy ({seeds})"
    headlines = []
    for n, r in usual.items():
        claim = f"{n}: {to} at lr {lrs[ci]:g} (final test accuracy after {epochs} epochs)"
        headlines.append(H(claim, r["epochs_to_target"][ci], fmt=f"{{:.0f}} ({r['final_test_accuracy'][ci]:.3f})"))
    for start, rs in runs.items():
        for n, r in rs.items():
            b = r["best_lr"]
            claim = (
                f"{n}, {start} start, at its fastest lr chosen on validation ({b['learning_rate']:g}): {to} (final test accuracy)"
            )
            headlines.append(H(claim, b["epochs_to_target"], fmt=f"{{:.0f}} ({b['final_test_accuracy']:.3f})"))

    def ratio(e: float, e_ce: float) -> float:  # epochs of MSE ÷ epochs of CE; nan when neither gets there
        return e / e_ce if math.isfinite(e_ce) else math.nan

    ce, ce_sat = usual[CE], sat[CE]
    for n in usual:
        if n == CE:
            continue
        r, r_sat = usual[n], sat[n]
        e, e_ce = r["epochs_to_target"][ci], ce["epochs_to_target"][ci]
        eb, eb_ce = r["best_lr"]["epochs_to_target"], ce["best_lr"]["epochs_to_target"]
        es, es_ce = r_sat["best_lr"]["epochs_to_target"], ce_sat["best_lr"]["epochs_to_target"]
        g, g_ce = r["output_grad_norm_epoch1"][ci], ce["output_grad_norm_epoch1"][ci]
        main = n == "mse + softmax"  # the tutorial's own pairing: the README rows
        headlines += [
            H(
                f"digits 64-{HIDDEN}-10, SGD: {to}, {n} ÷ cross-entropy + softmax, usual start, same lr {lrs[ci]:g}",
                ratio(e, e_ce),
                fmt=f"{{:.2f}}× ({e:.0f} epochs vs CE's {e_ce:.0f})",
                anchor="> 1: CE trains faster",
                ok=bool(e_ce < e),
                readme=main,
            ),
            H(
                f"digits 64-{HIDDEN}-10, SGD: {to}, {n} ÷ cross-entropy + softmax, usual start, "
                "each at its fastest lr chosen on validation",
                ratio(eb, eb_ce),
                fmt=f"{{:.2f}}× ({eb:.0f} epochs at lr {r['best_lr']['learning_rate']:g} vs CE's {eb_ce:.0f} at lr "
                f"{ce['best_lr']['learning_rate']:g})",
                anchor="> 1",
                ok=bool(eb_ce < eb),
                readme=main,
            ),
            H(
                f"digits 64-{HIDDEN}-10, SGD: {to}, {n} ÷ cross-entropy + softmax, saturated start (output weights "
                f"×{STARTS['saturated']:g}), each at its fastest lr chosen on validation",
                ratio(es, es_ce),
                fmt=f"{{:.2f}}× ({es:.0f} epochs vs CE's {es_ce:.0f}; inf: never in {epochs})",
                anchor="> 1 (saturation stalls MSE)",
                ok=bool(es_ce < es),
                readme=main,
            ),
            H(
                f"cross-entropy ÷ {n}: output-layer gradient ‖∂E/∂W⁽ᴸ⁾‖ in epoch 1, usual start, lr {lrs[ci]:g}",
                g_ce / g,
                fmt="{:.1f}×",
                anchor="> 1 (MSE's error is damped)",
                ok=bool(g_ce > g),
            ),
        ]
    return headlines


if __name__ == "__main__":
    main()
