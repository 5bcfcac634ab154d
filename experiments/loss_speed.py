"""Softmax + cross-entropy trains a classifier in fewer steps than the squared error, each at its best learning rate.

The ``losses`` experiment measures epochs to 90 % validation accuracy; at each loss's best rate
every loss reaches 90 % within the first epoch, so that measure cannot separate them. Here the
resolution is raised: optimisation steps (epochs × steps per epoch) to stricter targets, 95 %
and 97 % validation accuracy, counted per network over ≥ 8 seeds, and the final test accuracy.
Same task as ``losses``: scikit-learn's 8×8 digits (stratified 80/20 split, 20 % of the training
rows held out for validation, standardised), MLP 64-64-10 ReLU, plain minibatch SGD (batch 32,
the last partial batch dropped), a grid of learning rates × seeds in one ``fit_many`` per loss.
Each loss is judged at its own best rate, chosen on the validation split (fewest mean steps to
97 %, a network that never gets there counting one epoch more than the run; then the higher final
validation accuracy). The test split chooses nothing. The validation accuracy is read after every
epoch, so a step count is resolved to one epoch (35 steps); 8 seeds average that out.

Published references: Golik, Doetsch & Ney (2013, "Cross-entropy vs. squared error training: a
theoretical and experimental comparison") found cross-entropy better from a random start (squared
error getting stuck), squared error usable after a cross-entropy start; Hui & Belkin (2021,
"Evaluation of neural architectures trained with square loss vs cross-entropy in classification
tasks") found the square loss competitive, often equal, when its learning rate is tuned.

Run: python -m experiments.loss_speed [--quick] [--seed 0] [--out results/loss_speed]
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import numpy as np

import fnn
from experiments import _common
from experiments.losses import BATCH, HIDDEN, OPTIMIZER, VARIANTS
from experiments.zero_centred import epochs_to

TARGETS = (0.95, 0.97)
CE = "cross_entropy + softmax"


def main(argv: Sequence[str] | None = None) -> dict:
    args = _common.parse_args(__doc__, "loss_speed", argv)
    names = _common.size(args, tuple(VARIANTS), tuple(VARIANTS), (CE, "mse + softmax"))
    lrs = np.asarray(_common.size(args, [0.03, 0.1, 0.3, 1.0, 3.0], [0.1, 0.3, 1.0, 3.0], [0.3, 1.0]))
    seeds = _common.size(args, 10, 8, 2)
    epochs = _common.size(args, 60, 30, 2)
    key = jax.random.key(args.seed)
    x, y = fnn.datasets.digits()
    x_tr, y_tr, x_te, y_te = fnn.datasets.train_test_split(jax.random.fold_in(key, 0), x, y, 0.2, stratify=True)
    x_tr, y_tr, x_val, y_val = _common.carve_validation(jax.random.fold_in(key, 1), x_tr, y_tr, 0.2)
    x_tr, x_val, x_te, _, _ = fnn.preprocessing.standardize(x_tr, x_val, x_te)
    steps_per_epoch = int(x_tr.shape[0]) // BATCH
    results: dict = {
        "learning_rates": lrs,
        "seeds": seeds,
        "epochs": epochs,
        "steps_per_epoch": steps_per_epoch,
        "targets": TARGETS,
    }
    rows = []
    for name in names:
        loss, output = VARIANTS[name]
        net = fnn.MLP((64, HIDDEN, 10), hidden="relu", output=output)
        # the same keys for every loss: identical initial weights and minibatch orders
        _, params, hist = _common.fit_lr_grid(
            net,
            (x_tr, y_tr),
            lrs,
            seeds,
            jax.random.fold_in(key, 10),
            loss=loss,
            optimizer=OPTIMIZER,
            epochs=epochs,
            batch_size=BATCH,
            drop_last=True,
            validation=(x_val, y_val),
        )
        shape = (len(lrs), seeds)
        div = np.asarray(hist["diverged"]).reshape(shape)
        val = np.asarray(hist["val_accuracy"])
        steps = {t: np.where(div, np.nan, epochs_to(val, t).reshape(shape) * steps_per_epoch).astype(float) for t in TARGETS}
        final_val = _common.mask_diverged(div, val[:, -1].reshape(shape))
        test = _common.mask_diverged(div, _common.evaluate_stacked(net, loss, params, x_te, y_te)["accuracy"].reshape(shape))
        hardest = steps[TARGETS[-1]]
        i, choice = _common.choose(
            [(-m, v) for m, v in zip(_common.nanmean(hardest, 1), _common.nanmean(final_val, 1))],
            by=f"fewest mean steps to {TARGETS[-1]:.0%} validation accuracy, then final validation accuracy",
            lr=lrs,
        )
        never = (epochs + 1) * steps_per_epoch
        r = {
            "choice": choice,
            "diverged": div.sum(1),
            **{f"steps_to_{t:.2f}": steps[t] for t in TARGETS},
            **{f"steps_to_{t:.2f}_mean": float(np.nanmean(steps[t][i])) for t in TARGETS},
            **{f"steps_to_{t:.2f}_std": float(np.nanstd(steps[t][i])) for t in TARGETS},
            **{f"reached_{t:.2f}": int(np.sum(steps[t][i] < never)) for t in TARGETS},
            "test_mean": float(np.nanmean(test[i])),
            "test_std": float(np.nanstd(test[i])),
            "val_curve": _common.nanmean(val.reshape((*shape, -1))[i], 0),
        }
        results[name] = r
        reach = [
            f"{r[f'steps_to_{t:.2f}_mean']:.0f} ± {r[f'steps_to_{t:.2f}_std']:.0f} ({r[f'reached_{t:.2f}']}/{seeds})"
            for t in TARGETS
        ]
        rows.append((name, lrs[i], *reach, f"{r['test_mean']:.3f} ± {r['test_std']:.3f}"))
    print(_common.table(rows, ["loss", "best lr", *(f"steps to {t:.0%} val (reached)" for t in TARGETS), "test accuracy"]))

    figures = []
    try:
        from fnn import plot

        fig, ax = plot.subplots(1, 1, size=3.6)
        for n in names:
            c = results[n]["val_curve"]
            ax.plot(np.arange(1, len(c) + 1) * steps_per_epoch, c, label=f"{n} (lr {results[n]['choice']['lr']:g})")
        for t in TARGETS:
            ax.axhline(t, color="0.6", lw=0.7, ls="--")
        ax.set_ylim(0.85, 1.0)
        ax.set_xlabel("optimisation steps")
        ax.set_ylabel(f"validation accuracy (mean of {seeds} seeds)")
        ax.legend(fontsize=6)
        ax.set_title("digits, each loss at its best learning rate", fontsize=9)
        figures.append(plot.save(fig, args.out / "loss_speed.png"))
    except ImportError as e:
        print(f"(no figures: {e})")

    ce, mse = results[CE], results["mse + softmax"]
    t = TARGETS[-1]
    k = f"steps_to_{t:.2f}"
    faster = ce[f"{k}_mean"] + ce[f"{k}_std"] < mse[f"{k}_mean"] - mse[f"{k}_std"]
    headlines = [
        _common.headline(
            f"digits, MLP 64-{HIDDEN}-10 ReLU, SGD batch {BATCH}, {seeds} seeds, each loss at its best learning rate "
            f"(validation): optimisation steps to {t:.0%} validation accuracy, cross-entropy + softmax vs mse + softmax",
            ce[f"{k}_mean"],
            fmt=f"CE {{:.0f}} ± {ce[f'{k}_std']:.0f} vs MSE {mse[f'{k}_mean']:.0f} ± {mse[f'{k}_std']:.0f} "
            f"(test {ce['test_mean']:.3f} vs {mse['test_mean']:.3f})",
            anchor="CE fewer, beyond one std (Golik et al. 2013); or equal (Hui & Belkin 2021)",
            ok=bool(faster),
            readme=True,
        ),
        _common.headline(
            f"the same, final test accuracy after {epochs} epochs: cross-entropy vs mse + softmax (mean ± std of the seeds)",
            ce["test_mean"] - mse["test_mean"],
            fmt=f"{{:+.3f}} ({ce['test_mean']:.3f} ± {ce['test_std']:.3f} vs {mse['test_mean']:.3f} ± {mse['test_std']:.3f})",
            anchor="≈ 0 once both are tuned (Hui & Belkin 2021)",
        ),
    ]
    return _common.finish(args, results, headlines, figures)


if __name__ == "__main__":
    main()
