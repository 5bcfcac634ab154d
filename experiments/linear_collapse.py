"""A deep network with identity activations is one affine map, and no better than logistic regression.

Without activations, W⁽ᴸ⁾(… W⁽²⁾(W⁽¹⁾x + b⁽¹⁾) + b⁽²⁾ …) + b⁽ᴸ⁾ = W x + b (seed §3): ``fnn.fold_affine``
multiplies the layers out, and the folded map matches ``net.apply`` to rounding (float32 and float64).
On two concentric rings, which no straight line separates, a 6-hidden-layer identity network
therefore does no better than a single sigmoid neuron (both near chance), while the same depth with
tanh or ReLU separates the rings. The best any straight line can do on the test set is found by brute
force, as the ceiling for every linear model.

Run: python -m experiments.linear_collapse [--quick] [--seed 0] [--out results/linear_collapse]
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

import fnn
from experiments import _common
from fnn import datasets

WIDTH = 16
FOLD_DEPTH = 6  # hidden layers of the random network that is folded
# One module-level optimizer: the deep tanh / ReLU / identity nets share its compiled-loop cache.
ADAM = optax.adam(0.01)


def fold_error(seed: int, dtype: str, n: int = 1000) -> dict:
    """max |net.apply(x) − (x Wᵀ + b)| for a random deep identity network (random biases too).

    The parameters come from numpy (W ~ N(0, 1/n_in), b ~ N(0, ½²)), the same draw for both dtypes,
    so the float32 and float64 errors are comparable (and no jax.random kernels are compiled).
    """
    net = fnn.MLP((8,) + (32,) * FOLD_DEPTH + (4,), hidden="identity", output="identity")
    rng = np.random.default_rng(seed)
    params = [
        {
            "W": jnp.asarray(rng.normal(0, 1 / np.sqrt(s["W"][1]), s["W"]), dtype),
            "b": jnp.asarray(rng.normal(0, 0.5, s["b"]), dtype),
        }
        for s in net.shapes
    ]
    x = jnp.asarray(rng.normal(size=(n, 8)), dtype)
    W, b = fnn.fold_affine(net, params)
    out = net.apply(params, x)
    err = float(jnp.max(jnp.abs(out - (x @ W.T + b))))
    scale = float(jnp.max(jnp.abs(out)))
    return {
        "dtype": str(out.dtype),
        "max_abs_error": err,
        "max_abs_output": scale,
        "rel_error": err / scale,
        "eps": float(jnp.finfo(out.dtype).eps),
    }


def best_line_accuracy(x: np.ndarray, y: np.ndarray, directions: int = 720) -> float:
    """The best accuracy any straight line reaches on (x, y), two classes, by brute force.

    For every direction u (``directions`` angles in [0, π)) the points are sorted by uᵀx and every
    threshold is tried with both orientations; no linear classifier can beat the maximum.
    """
    x, y = np.asarray(x, np.float64), np.asarray(y).astype(int)
    theta = np.linspace(0, np.pi, directions, endpoint=False)
    proj = x @ np.stack([np.cos(theta), np.sin(theta)])  # (n, directions)
    ys = y[np.argsort(proj, axis=0)]  # labels sorted along each direction, (n, directions)
    zeros_below = np.vstack([np.zeros((1, directions)), np.cumsum(ys == 0, axis=0)])  # (n+1, directions)
    ones_above = np.vstack([np.cumsum((ys == 1)[::-1], axis=0)[::-1], np.zeros((1, directions))])
    acc = (zeros_below + ones_above) / len(y)  # class 0 below the threshold, 1 above
    return float(np.max(np.maximum(acc, 1.0 - acc)))


def main(argv: Sequence[str] | None = None) -> dict:
    args = _common.parse_args(__doc__, "linear_collapse", argv)
    n = _common.size(args, 1000, 600, 300)
    seeds = _common.size(args, 8, 3, 2)
    epochs = _common.size(args, 2000, 500, 200)
    depth = _common.size(args, 6, 6, 2)  # hidden layers; smaller in smoke mode to save compile time
    key = jax.random.key(args.seed)
    k_data, k_split, k_train = jax.random.split(key, 3)

    # ---- 1. the fold: one affine map, float32 and float64 ---------------------------------
    fold = {"float32": fold_error(args.seed, "float32")}
    x64_was = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    try:
        fold["float64"] = fold_error(args.seed, "float64")
    finally:
        jax.config.update("jax_enable_x64", x64_was)
    print(
        _common.table(
            [(k, v["max_abs_error"], v["rel_error"], v["eps"]) for k, v in fold.items()],
            ["dtype", "max |apply − fold|", "relative to max |out|", "machine eps"],
        )
    )

    # ---- 2. rings: deep linear vs logistic vs deep tanh / ReLU ----------------------------
    x, y = datasets.circles(k_data, n, noise=0.1, factor=0.5)
    x_tr, y_tr, x_te, y_te = datasets.train_test_split(k_split, x, y, test_fraction=0.3, stratify=True)
    deep = (2,) + (WIDTH,) * depth + (2,)
    models = {
        "deep_linear": (fnn.MLP(deep, hidden="identity", output="softmax"), "cross_entropy"),
        "logistic": (fnn.MLP((2, 1), hidden=(), output="sigmoid"), "bce"),
        "deep_tanh": (fnn.MLP(deep, hidden="tanh", output="softmax"), "cross_entropy"),
        "deep_relu": (fnn.MLP(deep, hidden="relu", output="softmax"), "cross_entropy"),
    }
    results, trained, rows = (
        {
            "fold": fold,
            "n_train": len(y_tr),
            "n_test": len(y_te),
            "seeds": seeds,
            "epochs": epochs,
            "depth": depth,
            "width": WIDTH,
        },
        {},
        [],
    )
    for i, (name, (net, loss)) in enumerate(models.items()):
        ytr = y_tr.astype(jnp.float32) if loss == "bce" else y_tr
        # Full-batch Adam, all seeds in one compiled call (no validation: it would double the compile).
        params, hist = fnn.fit_many(
            net,
            (x_tr, ytr),
            loss=loss,
            optimizer=ADAM,
            epochs=epochs,
            key=jax.random.fold_in(k_train, i),
            num_networks=seeds,
            progress=False,
        )
        train_acc, test_acc = _common.stacked_accuracy(net, params, x_tr, y_tr), _common.stacked_accuracy(net, params, x_te, y_te)
        results[name] = {
            "net": repr(net),
            "num_params": net.num_params,
            "train_accuracy": train_acc,
            "test_accuracy": test_acc,
            "train_mean": float(train_acc.mean()),
            "train_std": float(train_acc.std()),
            "test_mean": float(test_acc.mean()),
            "test_std": float(test_acc.std()),
            "final_loss": np.asarray(hist["loss"][:, -1]),
            "diverged": np.asarray(hist["diverged"]),
        }
        trained[name] = (net, params)
        rows.append(
            (
                name,
                net.num_params,
                f"{train_acc.mean():.3f} ± {train_acc.std():.3f}",
                f"{test_acc.mean():.3f} ± {test_acc.std():.3f}",
                float(np.mean(hist["loss"][:, -1])),
            )
        )

    # A trained deep linear net, folded: its logits are one affine map, so the boundary is a line.
    net_dl, params_dl = trained["deep_linear"]
    logits_net = fnn.MLP(deep, hidden="identity", output="identity")  # same params, softmax dropped
    agree, errs, folded = [], [], []
    for s in range(seeds):
        p = jax.tree_util.tree_map(lambda a, s=s: a[s], params_dl)
        W, b = fnn.fold_affine(logits_net, p)
        z_fold = x_te @ W.T + b
        errs.append(float(jnp.max(jnp.abs(logits_net.apply(p, x_te) - z_fold))))
        agree.append(float(jnp.mean(jnp.argmax(net_dl.apply(p, x_te), -1) == jnp.argmax(z_fold, -1))))
        folded.append([{"W": W, "b": b}])
    results["trained_fold"] = {"max_abs_logit_error": errs, "prediction_agreement": agree}
    # Two softmax logits of a deep linear net differ by one affine function: the same model class as
    # the sigmoid neuron, so gradient descent should reach the same minimum of the training loss.
    loss_gap = float(np.mean(results["deep_linear"]["final_loss"]) - np.mean(results["logistic"]["final_loss"]))
    results["final_loss_gap_deep_linear_minus_logistic"] = loss_gap
    line_te = best_line_accuracy(np.asarray(x_te), np.asarray(y_te))
    line_tr = best_line_accuracy(np.asarray(x_tr), np.asarray(y_tr))
    results["best_line"] = {"test_accuracy": line_te, "train_accuracy": line_tr}
    rows.append(("best straight line (brute force)", 3, f"{line_tr:.3f}", f"{line_te:.3f} (ceiling)", float("nan")))
    print(_common.table(rows, ["model", "params", f"train acc ({seeds} seeds)", "test acc", "final loss"]))

    figures = []
    try:
        from fnn import plot

        fig, axes = plot.subplots(1, 5)
        for ax, name in zip(axes, models):
            net, params = trained[name]
            p0 = jax.tree_util.tree_map(lambda a: a[0], params)
            r = results[name]
            plot.decision_boundary(ax, net, p0, x_te, y_te, title=f"{name.replace('_', ' ')}: test {r['test_accuracy'][0]:.2f}")
        plot.decision_boundary(
            axes[4],
            fnn.MLP((2, 2), hidden=(), output="softmax"),
            folded[0],
            x_te,
            y_te,
            title=f"deep linear folded: agree {agree[0]:.2f}",
        )
        figures.append(plot.save(fig, args.out / "boundaries.png"))
    except ImportError as e:
        print(f"(no figures: {e})")

    f32, f64 = fold["float32"], fold["float64"]
    acc = {k: results[k]["test_mean"] for k in models}
    std = {k: results[k]["test_std"] for k in models}
    rings = f"rings ({len(y_tr)} train / {len(y_te)} test points), full-batch Adam, {epochs} epochs, mean ± std of {seeds} seeds"
    headlines = [
        _common.headline(
            f"stacked identity layers are one affine map (algebra): max |net.apply − (Wx+b)| of fnn.fold_affine, "
            f"random {FOLD_DEPTH}-hidden-layer net, float64 (float32)",
            f64["max_abs_error"],
            fmt=f"{{:.1e}} ({f32['max_abs_error']:.1e} in float32)",
            anchor="rounding: < 100 ε of the output scale",
            ok=f64["rel_error"] < 100 * f64["eps"] and f32["rel_error"] < 100 * f32["eps"],
            basis="algebra",
            readme=True,
        ),
        _common.headline(
            "trained deep linear net vs its folded affine map: test predictions that agree (algebra: the same map)",
            float(np.min(agree)),
            fmt="{:.3f}",
            anchor="1.0",
            ok=float(np.min(agree)) == 1.0,
            basis="algebra",
        ),
        _common.headline(
            "rings: best test accuracy of any straight line (brute force over 720 directions, every threshold)",
            line_te,
            anchor="ceiling for every linear model",
        ),
        _common.headline(
            f"{rings}: test accuracy, deep linear ({depth} hidden identity layers of {WIDTH}) vs logistic regression "
            "(one sigmoid neuron)",
            acc["deep_linear"],
            fmt=f"{{:.3f}} ± {std['deep_linear']:.3f} vs {acc['logistic']:.3f} ± {std['logistic']:.3f} (best line {line_te:.3f})",
            anchor="equal within 0.1: both are one straight boundary",
            ok=abs(acc["deep_linear"] - acc["logistic"]) < 0.1,
            readme=True,
        ),
        _common.headline(
            "rings: final training loss, deep linear − logistic",
            loss_gap,
            fmt="{:+.4f}",
            anchor="≈ 0 (same model class, same minimum)",
            ok=abs(loss_gap) < 0.01,
        ),
        _common.headline(
            f"{rings}: test accuracy, deep tanh and deep ReLU ({depth} hidden layers of {WIDTH})",
            min(acc["deep_tanh"], acc["deep_relu"]),
            fmt=f"tanh {acc['deep_tanh']:.3f} ± {std['deep_tanh']:.3f}, ReLU {acc['deep_relu']:.3f} ± {std['deep_relu']:.3f}",
            anchor="≥ 0.95 (a nonlinearity separates the rings)",
            ok=min(acc["deep_tanh"], acc["deep_relu"]) >= 0.95,
            readme=True,
        ),
    ]
    return _common.finish(args, results, headlines, figures)


if __name__ == "__main__":
    main()
