"""tanh is zero-centred and usually converges faster than sigmoid.

The tutorial (§4.2) repeats LeCun, Bottou, Orr & Müller (1998, "Efficient BackProp", §4.4):
symmetric sigmoids such as tanh converge faster than the logistic sigmoid, because sigmoid outputs
are all positive (mean ≈ 0.5), so the weight updates of a unit's inputs share one sign and the
descent zig-zags. Measured on two datasets, scikit-learn's 8×8 digits (standardised, stratified
80/20 split) and MNIST-1D (the package's published setting, 4000 train / 1000 test), each with
20 % of the training rows held out as a validation split: the same MLP with two hidden layers of
64 units, sigmoid or tanh (Glorot initialisation for both), softmax and cross-entropy, plain
minibatch SGD (batch 32), over a grid of learning rates × seeds in one ``fit_many`` per
activation and dataset.

Speed: epochs until the validation accuracy first reaches a target (digits 95 %, MNIST-1D 55 %),
per network; a network that never reaches it counts as one epoch more than the run. Each
activation is judged at its own best learning rate, chosen on the validation split (fewest mean
epochs to the target, then the higher final validation accuracy). Reported: mean ± std over the
seeds at that rate, and the test accuracy there (the test split chooses nothing). Mechanism: the
mean activation of each hidden layer on the training set, at initialisation and after training.

Run: python -m experiments.zero_centred [--quick] [--seed 0] [--out results/zero_centred]
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import numpy as np
import optax

import fnn
from experiments import _common

ACTIVATIONS = ("sigmoid", "tanh")
TARGETS = {"digits": 0.95, "mnist1d": 0.55}
OPT = optax.inject_hyperparams(optax.sgd)(learning_rate=0.1)


def data(name: str, key: jax.Array, smoke: bool) -> dict:
    """Standardised (fit, validation, test) splits of one dataset."""
    if name == "digits":
        x, y = fnn.datasets.digits()
        x_tr, y_tr, x_te, y_te = fnn.datasets.train_test_split(key, x, y, test_fraction=0.2, stratify=True)
    else:
        x_tr, y_tr, x_te, y_te = fnn.datasets.mnist1d(num_samples=1000 if smoke else 5000)
    x_fit, y_fit, x_val, y_val = _common.carve_validation(jax.random.fold_in(key, 1), x_tr, y_tr)
    x_fit, x_val, x_te, _, _ = fnn.preprocessing.standardize(x_fit, x_val, x_te)
    return {"fit": (x_fit, y_fit), "val": (x_val, y_val), "test": (x_te, y_te)}


def epochs_to(acc: np.ndarray, target: float) -> np.ndarray:
    """First epoch (1-based) whose accuracy reaches ``target``, per row of ``acc`` (N, epochs);
    epochs + 1 where it never does.

    >>> epochs_to(np.array([[0.5, 0.96, 0.97], [0.5, 0.6, 0.7]]), 0.95).tolist()
    [2, 4]
    """
    hit = np.nan_to_num(acc, nan=-1.0) >= target
    return np.where(hit.any(axis=1), hit.argmax(axis=1) + 1, acc.shape[1] + 1)


def mean_activation(net: fnn.MLP, params: list, x: np.ndarray) -> list[float]:
    """The mean output of each hidden layer over the rows of x."""
    return [float(np.mean(np.asarray(h))) for h in net.forward(params, x)[1].h[:-1]]


def main(argv: Sequence[str] | None = None) -> dict:
    args = _common.parse_args(__doc__, "zero_centred", argv)
    seeds = _common.size(args, 10, 8, 2)
    lrs = np.asarray(_common.size(args, [0.03, 0.1, 0.3, 1.0, 3.0], [0.3, 1.0, 3.0], [0.3, 1.0]))
    epochs = {"digits": _common.size(args, 40, 25, 2), "mnist1d": _common.size(args, 60, 30, 2)}
    key = jax.random.key(args.seed)
    results: dict = {"seeds": seeds, "learning_rates": lrs, "targets": TARGETS, "epochs": epochs}
    rows, headlines, curves = [], [], {}
    for d, name in enumerate(("digits", "mnist1d")):
        split = data(name, jax.random.fold_in(key, d), args.smoke)
        n_in = int(split["fit"][0].shape[1])
        results[name] = {}
        for act in ACTIVATIONS:
            net = fnn.MLP((n_in, 64, 64, 10), hidden=act, output="softmax")
            # the same keys for both activations: identical initial weights (both Glorot) and minibatch order
            params0, params, hist = _common.fit_lr_grid(
                net,
                split["fit"],
                lrs,
                seeds,
                jax.random.fold_in(key, 10 + d),
                loss="cross_entropy",
                optimizer=OPT,
                epochs=epochs[name],
                batch_size=32,
                validation=split["val"],
            )
            diverged = np.asarray(hist["diverged"]).reshape(len(lrs), seeds)
            val = np.asarray(hist["val_accuracy"]).reshape(len(lrs), seeds, -1)
            to_target = epochs_to(val.reshape(len(lrs) * seeds, -1), TARGETS[name]).reshape(len(lrs), seeds).astype(float)
            to_target = np.where(diverged, np.nan, to_target)
            final_val = _common.mask_diverged(diverged, val[..., -1])
            test = _common.mask_diverged(
                diverged,
                _common.evaluate_stacked(net, "cross_entropy", params, *split["test"])["accuracy"].reshape(len(lrs), seeds),
            )
            mean_epochs = _common.nanmean(to_target, axis=1)
            i, choice = _common.choose(
                [(-m, v) for m, v in zip(mean_epochs, _common.nanmean(final_val, axis=1))],
                by="fewest mean epochs to the validation target, then final validation accuracy",
                lr=lrs,
                mean_epochs=mean_epochs,
            )
            chosen = slice(i * seeds, (i + 1) * seeds)
            p_init = fnn.sweep.network(net, params0, i * seeds)
            p_end = fnn.sweep.network(net, params, i * seeds)
            x_fit = np.asarray(split["fit"][0])
            r = {
                "choice": choice,
                "epochs_to_target": to_target,
                "epochs_mean": float(np.nanmean(to_target[i])),
                "epochs_std": float(np.nanstd(to_target[i])),
                "reached": int(np.sum(to_target[i] <= epochs[name])),
                "test_mean": float(np.nanmean(test[i])),
                "test_std": float(np.nanstd(test[i])),
                "diverged": diverged,
                "mean_activation_init": mean_activation(net, p_init, x_fit),
                "mean_activation_trained": mean_activation(net, p_end, x_fit),
            }
            results[name][act] = r
            curves[(name, act)] = _common.nanmean(np.asarray(hist["val_accuracy"])[chosen], axis=0)
            rows.append(
                (
                    name,
                    act,
                    lrs[i],
                    f"{r['epochs_mean']:.1f} ± {r['epochs_std']:.1f} ({r['reached']}/{seeds})",
                    f"{r['test_mean']:.3f} ± {r['test_std']:.3f}",
                    " / ".join(f"{m:+.2f}" for m in r["mean_activation_trained"]),
                )
            )
    print(_common.table(rows, ["data", "hidden", "best lr", "epochs to target (reached)", "test accuracy", "mean h per layer"]))

    figures = []
    try:
        from fnn import plot

        fig, axes = plot.subplots(1, 2, size=3.4)
        for ax, name in zip(axes, ("digits", "mnist1d")):
            for act, color in zip(ACTIVATIONS, ("C1", "C0")):
                c = curves[(name, act)]
                ax.plot(np.arange(1, len(c) + 1), c, color=color, label=f"{act} (lr {results[name][act]['choice']['lr']:g})")
            ax.axhline(TARGETS[name], color="0.6", lw=0.7, ls="--")
            ax.set_xlabel("epoch")
            ax.set_ylabel(f"validation accuracy (mean of {seeds} seeds)")
            ax.set_title(name, fontsize=9)
            ax.legend(fontsize=7)
        fig.suptitle("sigmoid vs tanh, each at its best learning rate (dashed: target)", fontsize=9)
        figures.append(plot.save(fig, args.out / "zero_centred.png"))
    except ImportError as e:
        print(f"(no figures: {e})")

    for name in ("digits", "mnist1d"):
        s, t = results[name]["sigmoid"], results[name]["tanh"]
        headlines.append(
            _common.headline(
                f"{name}, MLP 2×64 hidden, SGD batch 32, {seeds} seeds, each activation at its best learning rate (validation): "
                f"epochs to {TARGETS[name]:.0%} validation accuracy, tanh vs sigmoid",
                t["epochs_mean"],
                fmt=f"tanh {{:.1f}} ± {t['epochs_std']:.1f} vs sigmoid {s['epochs_mean']:.1f} ± {s['epochs_std']:.1f} "
                f"(test {t['test_mean']:.3f} vs {s['test_mean']:.3f})",
                anchor="tanh faster (LeCun et al. 1998, §4.4)",
                ok=t["epochs_mean"] < s["epochs_mean"],
                readme=True,
            )
        )
    d = results["digits"]
    headlines.append(
        _common.headline(
            "digits: mean hidden activation on the training set at initialisation (first and second layer), sigmoid vs tanh",
            float(np.mean(d["sigmoid"]["mean_activation_init"])),
            fmt=f"sigmoid {d['sigmoid']['mean_activation_init'][0]:.2f} / {d['sigmoid']['mean_activation_init'][1]:.2f}, "
            f"tanh {d['tanh']['mean_activation_init'][0]:+.2f} / {d['tanh']['mean_activation_init'][1]:+.2f}",
            anchor="sigmoid ≈ 0.5 (all positive), tanh ≈ 0",
            ok=all(abs(m - 0.5) < 0.1 for m in d["sigmoid"]["mean_activation_init"])
            and all(abs(m) < 0.1 for m in d["tanh"]["mean_activation_init"]),
        )
    )
    return _common.finish(args, results, headlines, figures)


if __name__ == "__main__":
    main()
