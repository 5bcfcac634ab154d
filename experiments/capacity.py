"""More hidden units and layers are not always better: past a point the network overfits the noise.

A few dozen to a hundred noisy two-moons points (noise 0.35, so even the best boundary misclassifies
some of them) are fitted by ReLU MLPs of growing width (one hidden layer, 1 … 512 units) and depth
(2–3 hidden layers of 64–128 units), several seeds each, full-batch Adam with no regularisation and
no early stopping, long enough for the large networks to reach ~100 % training accuracy. Training
accuracy keeps rising with the parameter count; held-out accuracy peaks at a small network (a few
to a few dozen parameters, depending on the draw) and then falls, and the held-out loss climbs
steeply (confident wrong answers on the noise the big networks memorised).

The turning point is chosen on a validation split: the training draw holds ``n_train + 500``
points, and the last 500 (rows come shuffled) are held out as validation; the architecture with
the best mean validation accuracy is the turning point. The test set, a second, independent draw
of 1000 points, is read only to report every architecture's accuracy, the chosen one's included.

Run: python -m experiments.capacity [--quick] [--seed 0] [--out results/capacity]
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import jax
import numpy as np
import optax

import fnn
from experiments import _common
from fnn import datasets

NOISE = 0.35
N_TEST = 1000
N_VAL = 500  # carved from the training draw; chooses the turning point
LOSS = "cross_entropy"
# One optimizer object for every architecture (the compiled loop is cached on it).
OPTIMIZER = optax.adam(0.01)
# Hidden-layer sizes, one tuple per architecture; they are sorted by parameter count afterwards.
ARCHS = {
    "full": [(1,), (2,), (4,), (8,), (16,), (32,), (64,), (128,), (256,), (512,), (64, 64), (128, 128), (128, 128, 128)],
    "quick": [(2,), (8,), (64,), (64, 64)],
    "smoke": [(1,), (64,)],
}


def label(hidden: tuple[int, ...]) -> str:
    return "2-" + "-".join(map(str, hidden)) + "-2"


def setup(nets: list[fnn.MLP], n_train: int, seeds: int, key: jax.Array) -> tuple:
    """The data ``(x_tr, y_tr, x_val, y_val, x_te, y_te)`` and every architecture's ``seeds``
    initialisations, under one jit.

    One draw of ``n_train + N_VAL`` noisy moons is split into training and validation rows (its
    rows come in random order, so the first ``n_train`` are a random subset); the test set is a
    second, independent draw. One jit, because eager ops would compile one small kernel apiece,
    which costs more than the training here.
    """

    def make(k):
        k_tr, k_te, k_init = jax.random.split(k, 3)
        x, y = datasets.moons(k_tr, n_train + N_VAL, noise=NOISE)
        data = (x[:n_train], y[:n_train], x[n_train:], y[n_train:], *datasets.moons(k_te, N_TEST, noise=NOISE))
        inits = [_common.stacked_init(net, ki, seeds) for net, ki in zip(nets, jax.random.split(k_init, len(nets)))]
        return data, inits

    return jax.jit(make)(key)


def train_all(nets: list[fnn.MLP], inits: list, train: tuple, val: tuple, test: tuple, epochs: int, key: jax.Array) -> list[dict]:
    """Train the stacked seeds of each architecture (one fit_many each); final train/val/test loss and accuracy."""
    trained = []
    for net, start, k in zip(nets, inits, jax.random.split(key, len(nets))):
        params, _ = fnn.fit_many(net, train, loss=LOSS, optimizer=OPTIMIZER, epochs=epochs, key=k, params=start, progress=False)
        trained.append(params)

    def metrics(all_params):  # every architecture, one jit
        return [
            jax.vmap(lambda p, net=net: tuple(fnn.evaluate(net, p, *split, loss=LOSS) for split in (train, val, test)))(ps)
            for net, ps in zip(nets, all_params)
        ]

    runs = []
    for net, params, (tr, va, te) in zip(nets, trained, jax.jit(metrics)(trained)):
        hidden = net.sizes[1:-1]
        runs.append(
            {
                "hidden": list(hidden),
                "label": label(hidden),
                "params": net.num_params,
                "train_accuracy": np.asarray(tr["accuracy"]),
                "val_accuracy": np.asarray(va["accuracy"]),
                "test_accuracy": np.asarray(te["accuracy"]),
                "train_loss": np.asarray(tr["loss"]),
                "val_loss": np.asarray(va["loss"]),
                "test_loss": np.asarray(te["loss"]),
                "_net": net,
                "_params0": jax.tree_util.tree_map(lambda a: a[0], params),
            }
        )
    return runs


def mean_se(v: np.ndarray) -> tuple[float, float]:
    return float(np.mean(v)), float(np.std(v, ddof=1) / math.sqrt(len(v))) if len(v) > 1 else 0.0


def main(argv: Sequence[str] | None = None) -> dict:
    args = _common.parse_args(__doc__, "capacity", argv)
    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    seeds = _common.size(args, 8, 4, 2)
    epochs = _common.size(args, 4000, 1500, 600)
    n_train = _common.size(args, 100, 100, 60)
    key = jax.random.key(args.seed)
    nets = [fnn.MLP((2, *h, 2), hidden="relu", output="softmax") for h in ARCHS[mode]]
    (x_tr, y_tr, x_val, y_val, x_te, y_te), inits = setup(nets, n_train, seeds, jax.random.fold_in(key, 0))
    runs = train_all(nets, inits, (x_tr, y_tr), (x_val, y_val), (x_te, y_te), epochs, jax.random.fold_in(key, 1))
    runs.sort(key=lambda r: r["params"])
    for r in runs:
        for k in ("train_accuracy", "val_accuracy", "test_accuracy", "train_loss", "val_loss", "test_loss"):
            r[f"mean_{k}"], r[f"se_{k}"] = mean_se(r[k])
    print(
        _common.table(
            [
                (
                    r["label"],
                    r["params"],
                    r["mean_train_accuracy"],
                    r["mean_val_accuracy"],
                    r["mean_test_accuracy"],
                    r["se_test_accuracy"],
                    r["mean_train_loss"],
                    r["mean_test_loss"],
                )
                for r in runs
            ],
            ["architecture", "params", "train acc", "val acc", f"test acc ({seeds} seeds)", "± s.e.", "train loss", "test loss"],
        )
    )

    # The turning point is chosen on validation; the test set only reports the chosen one's accuracy.
    b, selected = _common.choose(
        [r["mean_val_accuracy"] for r in runs],
        by=f"mean validation accuracy ({seeds} seeds, {N_VAL} validation points carved from the training draw)",
        label=[r["label"] for r in runs],
        params=[r["params"] for r in runs],
        val_acc=[r["mean_val_accuracy"] for r in runs],
        test_acc=[r["mean_test_accuracy"] for r in runs],
    )
    best = runs[b]
    largest, smallest = runs[-1], runs[0]
    drop = best["mean_test_accuracy"] - largest["mean_test_accuracy"]
    drop_se = math.hypot(best["se_test_accuracy"], largest["se_test_accuracy"])
    # Seed-to-seed scatter on one draw of the data; the drop counts if it clears 2 standard errors.
    overfits = drop > 2 * drop_se and drop > 0.005 and best is not largest
    train_acc = [r["mean_train_accuracy"] for r in runs]
    results = {
        "setting": {
            "data": f"moons, noise {NOISE}",
            "n_train": n_train,
            "n_val": N_VAL,
            "n_test": N_TEST,
            "seeds": seeds,
            "epochs": epochs,
            "optimizer": "adam(0.01), full batch, no regularisation, no early stopping",
            "hidden": "relu",
            "loss": LOSS,
        },
        "architectures": [{k: v for k, v in r.items() if not k.startswith("_")} for r in runs],
        "selected": selected,
        "turning_point": {
            "label": best["label"],
            "params": best["params"],
            "val_accuracy": best["mean_val_accuracy"],
            "test_accuracy": best["mean_test_accuracy"],
            "train_accuracy": best["mean_train_accuracy"],
        },
        "largest": {
            "label": largest["label"],
            "params": largest["params"],
            "val_accuracy": largest["mean_val_accuracy"],
            "test_accuracy": largest["mean_test_accuracy"],
            "train_accuracy": largest["mean_train_accuracy"],
        },
        "test_accuracy_drop": drop,
        "test_accuracy_drop_se": drop_se,
        "note": "± are standard errors over the seeds (initialisations) on one draw of the data; the validation rows "
        "are carved from the training draw and choose the turning point; the test set is a second, independent draw "
        "of the same noisy moons and chooses nothing.",
        "test_loss_ratio_largest_vs_best": largest["mean_test_loss"] / best["mean_test_loss"],
    }

    figures = []
    try:
        from fnn import plot

        figures.append(_plot_curves(plot, runs, best, args.out / "capacity.png"))
        if not args.smoke:  # eager forward passes on a grid: seconds of small compiles
            figures.append(_plot_boundaries(plot, [smallest, best, largest], x_tr, y_tr, args.out / "boundaries.png"))
    except ImportError as e:
        print(f"(no figures: {e})")

    where = f"noisy moons ({n_train} training points), {len(runs)} ReLU MLPs, mean of {seeds} seeds"
    headlines = [
        _common.headline(
            f"{where}: training accuracy, smallest ({smallest['label']}, {smallest['params']} params) → largest "
            f"({largest['label']}, {largest['params']} params)",
            largest["mean_train_accuracy"],
            fmt=f"{smallest['mean_train_accuracy']:.3f} → {{:.3f}} (training set)",
            anchor="grows to ≈ 1 (the big net fits the noise)",
            ok=bool(largest["mean_train_accuracy"] >= 0.98 and largest["mean_train_accuracy"] > smallest["mean_train_accuracy"]),
            readme=True,
        ),
        _common.headline(
            f"{where}: turning point, the size with the best mean validation accuracy ({N_VAL} points carved from the "
            "training draw); its test accuracy",
            best["mean_test_accuracy"],
            fmt=f"{{:.3f}} at {best['params']} params ({best['label']}; validation {best['mean_val_accuracy']:.3f})",
            anchor=f"test on {N_TEST} independent points",
        ),
        _common.headline(
            f"{where}: test accuracy of the largest model vs the size chosen on validation",
            largest["mean_test_accuracy"],
            fmt=f"{{:.3f}} at {largest['params']} params vs {best['mean_test_accuracy']:.3f} at {best['params']} "
            f"(−{drop:.3f} ± {drop_se:.3f} s.e.; {N_TEST} test points)",
            anchor="lower by > 2 s.e.: too many units overfit (tutorial §2)",
            ok=bool(overfits),
            readme=True,
        ),
        _common.headline(
            "test loss, largest model / the size chosen on validation",
            results["test_loss_ratio_largest_vs_best"],
            fmt="{:.1f}×",
            anchor="> 1",
            ok=bool(results["test_loss_ratio_largest_vs_best"] > 1),
        ),
        _common.headline(
            "training accuracy never falls as parameters grow (largest decrease between neighbours)",
            max([0.0] + [a - b for a, b in itertools.pairwise(train_acc)]),
            anchor="≈ 0",
        ),
    ]
    return _common.finish(args, results, headlines, figures)


def _plot_curves(plot, runs: list[dict], best: dict, path):
    fig, (ax_acc, ax_loss) = plot.subplots(1, 2, size=4.2)
    p = np.array([r["params"] for r in runs], float)
    for ax, what, ylabel in ((ax_acc, "accuracy", "accuracy"), (ax_loss, "loss", "cross-entropy")):
        for split, color in (("train", "C0"), ("val", "C2"), ("test", "C3")):
            m = np.array([r[f"mean_{split}_{what}"] for r in runs])
            se = np.array([r[f"se_{split}_{what}"] for r in runs])
            ax.errorbar(p, m, yerr=se, marker="o", ms=4, capsize=2, color=color, label=f"{split} (mean ± s.e.)")
            for r in runs:  # every seed, faint
                ax.scatter(np.full(len(r[f"{split}_{what}"]), r["params"]), r[f"{split}_{what}"], s=5, color=color, alpha=0.25)
        ax.axvline(best["params"], color="k", ls="--", lw=0.8, label=f"chosen on validation: {best['label']}")
        ax.set_xscale("log")
        ax.set_xlabel("parameters")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower left" if what == "accuracy" else "upper left")  # "best" is slow with many points
    ax_loss.set_yscale("log")
    top = ax_acc.secondary_xaxis("top")  # the architectures along the top edge
    top.set_xticks(p, [r["label"] for r in runs], rotation=90, fontsize=5)
    top.minorticks_off()
    ax_acc.set_title("training, validation and test accuracy (noisy moons)", fontsize=9)
    ax_loss.set_title("training, validation and test loss", fontsize=9)
    return plot.save(fig, path)


def _plot_boundaries(plot, picks: list[dict], x, y, path):
    fig, axes = plot.subplots(1, len(picks))
    for ax, r in zip(np.atleast_1d(axes), picks):
        title = f"{r['label']} ({r['params']} params)\ntrain {r['train_accuracy'][0]:.2f}, test {r['test_accuracy'][0]:.2f}"
        plot.decision_boundary(ax, r["_net"], r["_params0"], x, y, title=title)
    return plot.save(fig, path)


if __name__ == "__main__":
    main()
