"""The nonlinearity maps the input into a space where the classes become linearly separable.

The tutorial (§6.2) says the hidden layers transform the input until a straight line separates
the classes. On two concentric rings and on the two-spirals problem (Lang & Witbrock 1988; each
arm winds 1.25 times), which no straight line separates in the plane, an MLP 2-32-32-2-2 (tanh;
the last hidden layer a 2-unit bottleneck, so its representation is a plane again and can be
drawn, in the spirit of Olah 2014, "Neural Networks, Manifolds, and Topology") is trained with
full-batch Adam. Then the same two linear classifiers are applied to the raw input x and to the
trained network's last hidden layer h⁽³⁾:

- the best straight line, found by brute force (every direction in 1/2 degree steps, every
  threshold): the ceiling of every linear classifier on those two features;
- logistic regression (scikit-learn, fitted on the training split of those features).

Train and test accuracy of each, mean ± std over seeds (one ``fit_many`` per dataset). The
network's own output layer is a linear classifier of h⁽³⁾, so separability there is what
training aims for; what is measured is how far it is reached, and the contrast with x.

Run: python -m experiments.representation [--quick] [--seed 0] [--out results/representation]
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import numpy as np
import optax

import fnn
from experiments import _common
from experiments.linear_collapse import best_line_accuracy

SIZES = (2, 32, 32, 2, 2)
ADAM = optax.adam(0.01)  # one module-level optimizer: both datasets share the compiled loop's cache


def two_spirals(key: jax.Array, n: int, turns: float = 1.25, noise: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """The two-spirals problem (Lang & Witbrock 1988): class 1 is class 0 turned by π, each arm
    winding ``turns`` times around the origin, radius growing with the angle."""
    k1, k2 = jax.random.split(key)
    t = np.sqrt(np.asarray(jax.random.uniform(k1, (n // 2,)))) * turns * 2 * np.pi  # denser near the centre
    arm = np.stack([t * np.cos(t), t * np.sin(t)], axis=1) / (turns * 2 * np.pi)
    x = np.concatenate([arm, -arm]) + noise * np.asarray(jax.random.normal(k2, (2 * (n // 2), 2)))
    return x.astype(np.float32), np.repeat(np.arange(2, dtype=np.int32), n // 2)


def hidden(net: fnn.MLP, params: list, x: np.ndarray) -> np.ndarray:
    """The last hidden layer's output h⁽ᴸ⁻¹⁾ (the 2-unit bottleneck) for each row of x."""
    return np.asarray(net.forward(params, x)[1].h[-2])


def logistic(f_tr: np.ndarray, y_tr: np.ndarray, f_te: np.ndarray, y_te: np.ndarray) -> tuple[float, float]:
    """Train and test accuracy of scikit-learn's logistic regression on features f."""
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(C=1e4, max_iter=5000).fit(f_tr, y_tr)
    return float(clf.score(f_tr, y_tr)), float(clf.score(f_te, y_te))


def main(argv: Sequence[str] | None = None) -> dict:
    args = _common.parse_args(__doc__, "representation", argv)
    n = _common.size(args, 1000, 600, 200)
    seeds = _common.size(args, 8, 4, 2)
    epochs = _common.size(args, 3000, 1500, 100)
    key = jax.random.key(args.seed)
    net = fnn.MLP(SIZES, hidden="tanh", output="softmax")
    problems = {
        "rings": fnn.datasets.circles(jax.random.fold_in(key, 0), n, noise=0.1, factor=0.5),
        "two spirals": two_spirals(jax.random.fold_in(key, 1), n),
    }
    results: dict = {"sizes": SIZES, "n": n, "seeds": seeds, "epochs": epochs}
    rows, drawn = [], {}
    for i, (name, (x, y)) in enumerate(problems.items()):
        x_tr, y_tr, x_te, y_te = fnn.datasets.train_test_split(
            jax.random.fold_in(key, 10 + i), x, y, test_fraction=0.3, stratify=True
        )
        ps, hist = fnn.fit_many(
            net,
            (x_tr, y_tr),
            loss="cross_entropy",
            optimizer=ADAM,
            epochs=epochs,
            key=jax.random.fold_in(key, 20 + i),
            num_networks=seeds,
            progress=False,
        )
        x_tr, y_tr, x_te, y_te = (np.asarray(a) for a in (x_tr, y_tr, x_te, y_te))
        raw = {
            "line": (best_line_accuracy(x_tr, y_tr), best_line_accuracy(x_te, y_te)),
            "logistic": logistic(x_tr, y_tr, x_te, y_te),
        }
        per_seed = {"line": [], "logistic": [], "network": []}
        for s in range(seeds):
            p = fnn.sweep.network(net, ps, s)
            h_tr, h_te = hidden(net, p, x_tr), hidden(net, p, x_te)
            per_seed["line"].append((best_line_accuracy(h_tr, y_tr), best_line_accuracy(h_te, y_te)))
            per_seed["logistic"].append(logistic(h_tr, y_tr, h_te, y_te))
            acc = [float(np.mean(np.argmax(np.asarray(net.apply(p, a)), -1) == b)) for a, b in ((x_tr, y_tr), (x_te, y_te))]
            per_seed["network"].append(tuple(acc))
            if s == 0:
                drawn[name] = (x_te, y_te, h_te)
        stats = {k: np.asarray(v) for k, v in per_seed.items()}  # (seeds, 2): train, test
        results[name] = {
            "raw": raw,
            "hidden": {k: v.tolist() for k, v in stats.items()},
            "hidden_test_mean": {k: float(v[:, 1].mean()) for k, v in stats.items()},
            "hidden_test_std": {k: float(v[:, 1].std()) for k, v in stats.items()},
            "diverged": np.asarray(hist["diverged"]),
            "final_loss": np.asarray(hist["loss"][:, -1]),
        }
        for feature, acc in (("x (raw input)", raw), ("h⁽³⁾ (bottleneck)", {k: stats[k].mean(0) for k in ("line", "logistic")})):
            rows.append(
                (
                    name,
                    feature,
                    f"{acc['line'][0]:.3f} / {acc['line'][1]:.3f}",
                    f"{acc['logistic'][0]:.3f} / {acc['logistic'][1]:.3f}",
                )
            )
    print(_common.table(rows, ["data", "features", "best line train / test", "logistic regression train / test"]))

    figures = []
    try:
        from fnn import plot

        fig, axes = plot.subplots(1, 4, size=2.9)
        for j, (name, (x_te, y_te, h_te)) in enumerate(drawn.items()):
            for ax, f, label in ((axes[2 * j], x_te, "x (input)"), (axes[2 * j + 1], h_te, "h⁽³⁾ (last hidden layer)")):
                ax.scatter(f[:, 0], f[:, 1], c=y_te, cmap="coolwarm", s=5)
                ax.set_xlabel(f"{label}, unit 1")
                ax.set_ylabel("unit 2")
                best = best_line_accuracy(f, y_te)
                ax.set_title(f"{name}: best straight line {best:.2f}", fontsize=8)
        fig.suptitle("the hidden layers make the classes linearly separable (test points, seed 0)", fontsize=9)
        figures.append(plot.save(fig, args.out / "representation.png"))
    except ImportError as e:
        print(f"(no figures: {e})")

    headlines = []
    for name in problems:
        r = results[name]
        raw_line, hid_line = r["raw"]["line"][1], r["hidden_test_mean"]["line"]
        headlines.append(
            _common.headline(
                f"{name} ({n} points, 30% test, {seeds} seeds, MLP {'-'.join(map(str, SIZES))} tanh): test accuracy of the best "
                "straight line (brute force) on the raw input x vs on the trained network's 2-unit last hidden layer",
                hid_line,
                fmt=f"{{:.3f}} ± {r['hidden_test_std']['line']:.3f} on h vs {raw_line:.3f} on x "
                f"(logistic regression {r['hidden_test_mean']['logistic']:.3f} vs {r['raw']['logistic'][1]:.3f})",
                anchor="h ≥ 0.95; on x every line is ≥ 0.15 worse",
                ok=hid_line >= 0.95 and hid_line - raw_line >= 0.15,
                readme=True,
            )
        )
    return _common.finish(args, results, headlines, figures)


if __name__ == "__main__":
    main()
