"""A hidden layer with a nonlinearity bends the boundary: rings, moons and spirals beat a linear model.

Softmax regression (no hidden layer, one straight boundary per pair of classes) against a 2-layer
ReLU MLP with 100 hidden units, on three 2-D problems that no line separates. The spiral setting
follows cs231n's "Putting it together" (3 arms × 100 points, full-batch SGD with step 1 and L2 1e-3
on the weights), whose published training accuracies are 49% (linear) and 98% (MLP, 10,000
iterations). Every dataset is split in half, stratified: train and test accuracy are both reported,
mean ± std over seeds trained together with ``fit_many``.

Run: python -m experiments.nonlinear [--quick] [--seed 0] [--out results/nonlinear]
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import numpy as np
import optax

import fnn
from experiments import _common
from fnn import datasets

HIDDEN = 100
# cs231n's recipe: gradient step 1.0 and L2 0.5·λ‖W‖² with λ = 1e-3 on the weights (not the biases).
# One module-level optimizer, so each (net, data shape) compiles once.
SGD_L2 = optax.chain(
    optax.add_decayed_weights(1e-3, mask=lambda params: [{"W": True, "b": False} for _ in params]), optax.sgd(1.0)
)
ANCHORS = {"spirals": {"linear": 0.49, "mlp": 0.98}}  # cs231n, training accuracy


def make_data(name: str, key: jax.Array, n: int) -> tuple[jax.Array, ...]:
    """(x_train, y_train, x_test, y_test): n points, half of them held out, stratified."""
    k_data, k_split = jax.random.split(key)
    sample = {
        "circles": lambda: datasets.circles(k_data, n, noise=0.1, factor=0.5),
        "moons": lambda: datasets.moons(k_data, n, noise=0.1),
        "spirals": lambda: datasets.spirals(k_data, n, noise=0.2, classes=3),
    }[name]
    x, y = sample()
    return datasets.train_test_split(k_split, x, y, test_fraction=0.5, stratify=True)


def main(argv: Sequence[str] | None = None) -> dict:
    args = _common.parse_args(__doc__, "nonlinear", argv)
    n = _common.size(args, 600, 600, 300)  # 600 → 300 train points: cs231n's spiral size
    seeds = _common.size(args, 5, 3, 2)
    # Full-batch steps. cs231n: 200 for softmax regression (convex, converged long before), 10,000 for the MLP.
    epochs = {"linear": _common.size(args, 1000, 300, 100), "mlp": _common.size(args, 10000, 1500, 500)}
    key = jax.random.key(args.seed)

    results = {"n_train": n // 2, "n_test": n - n // 2, "seeds": seeds, "epochs": epochs, "hidden": HIDDEN}
    rows, shown = [], {}
    for d, name in enumerate(["circles", "moons", "spirals"]):
        x_tr, y_tr, x_te, y_te = make_data(name, jax.random.fold_in(key, d), n)
        k = int(np.max(np.asarray(y_tr))) + 1
        models = {
            "linear": fnn.MLP((2, k), hidden=(), output="softmax"),
            "mlp": fnn.MLP((2, HIDDEN, k), hidden="relu", output="softmax"),
        }
        results[name] = {}
        for m, (model, net) in enumerate(models.items()):
            params, hist = fnn.fit_many(
                net,
                (x_tr, y_tr),
                loss="cross_entropy",
                optimizer=SGD_L2,
                epochs=epochs[model],
                key=jax.random.fold_in(key, 10 * d + m + 100),
                num_networks=seeds,
                progress=False,
            )
            tr, te = _common.stacked_accuracy(net, params, x_tr, y_tr), _common.stacked_accuracy(net, params, x_te, y_te)
            results[name][model] = {
                "net": repr(net),
                "train_accuracy": tr,
                "test_accuracy": te,
                "train_mean": float(tr.mean()),
                "train_std": float(tr.std()),
                "test_mean": float(te.mean()),
                "test_std": float(te.std()),
                "final_loss": np.asarray(hist["loss"][:, -1]),
                "diverged": np.asarray(hist["diverged"]),
            }
            shown[name, model] = (net, jax.tree_util.tree_map(lambda a: a[0], params), x_te, y_te, float(te[0]))
            anchor = ANCHORS.get(name, {}).get(model)
            rows.append(
                (
                    name,
                    model,
                    f"{tr.mean():.3f} ± {tr.std():.3f}",
                    f"{te.mean():.3f} ± {te.std():.3f}",
                    f"{anchor:.2f} (train)" if anchor else "",
                    float(np.mean(hist["loss"][:, -1])),
                )
            )
    print(_common.table(rows, ["data", "model", f"train acc ({seeds} seeds)", "test acc", "cs231n", "final loss"]))

    figures = []
    try:
        from fnn import plot

        fig, axes = plot.subplots(2, 3)
        for j, name in enumerate(["circles", "moons", "spirals"]):
            for i, model in enumerate(["linear", "mlp"]):
                net, p, x_te, y_te, acc = shown[name, model]
                label = "softmax regression" if model == "linear" else f"ReLU MLP (2-{HIDDEN}-K)"
                plot.decision_boundary(axes[i, j], net, p, x_te, y_te, title=f"{name}, {label}: test {acc:.2f}")
        figures.append(plot.save(fig, args.out / "boundaries.png"))
    except ImportError as e:
        print(f"(no figures: {e})")

    c, mo, s = results["circles"], results["moons"], results["spirals"]
    mlp = f"2-{HIDDEN}-K ReLU MLP"
    where = f"{n - n // 2} test points, mean of {seeds} seeds"

    def arrow(d: dict, split: str) -> str:  # "linear ± → {MLP} ± (…)", the MLP's value filled in by headline()
        lin, m = d["linear"], d["mlp"]
        return f"{lin[split + '_mean']:.3f} ± {lin[split + '_std']:.3f} → {{:.3f}} ± {m[split + '_std']:.3f}"

    headlines = [
        _common.headline(
            f"circles: test accuracy, softmax regression → {mlp} ({where})",
            c["mlp"]["test_mean"],
            fmt=arrow(c, "test"),
            anchor="≈ 0.5 → ≈ 1.0 (no line separates rings)",
            ok=c["linear"]["test_mean"] <= 0.7 and c["mlp"]["test_mean"] >= 0.95,
            readme=True,
        ),
        _common.headline(
            f"moons: test accuracy, softmax regression → {mlp} ({where})",
            mo["mlp"]["test_mean"],
            fmt=arrow(mo, "test"),
            anchor="a line gets most points; the MLP ≈ 1.0 and > 0.05 better",
            ok=mo["linear"]["test_mean"] < mo["mlp"]["test_mean"] - 0.05 and mo["mlp"]["test_mean"] >= 0.95,
            readme=True,
        ),
        _common.headline(
            f"spirals (3 arms): test accuracy, softmax regression → {mlp} ({where})",
            s["mlp"]["test_mean"],
            fmt=arrow(s, "test"),
            anchor="≈ 0.5 → ≥ 0.9",
            ok=s["linear"]["test_mean"] <= 0.6 and s["mlp"]["test_mean"] >= 0.9,
            readme=True,
        ),
        _common.headline(
            f"spirals (3 arms, {n // 2} training points): TRAIN accuracy, softmax regression → {mlp}, cs231n's recipe "
            f"(mean of {seeds} seeds)",
            s["mlp"]["train_mean"],
            fmt=arrow(s, "train"),
            anchor="0.49 → 0.98 (cs231n, 'Putting it together', training accuracy)",
            ok=abs(s["linear"]["train_mean"] - 0.49) <= 0.07 and s["mlp"]["train_mean"] >= 0.95,
            readme=True,
        ),
    ]
    return _common.finish(args, results, headlines, figures)


if __name__ == "__main__":
    main()
