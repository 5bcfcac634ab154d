"""A single neuron learns AND and OR but not XOR; one hidden layer learns XOR.

The neuron y = σ(wᵀx + b) draws one straight line through the plane: AND and OR are separable
by a line, XOR is not, so no weights get more than 3 of its 4 points right. A 2-layer MLP bends
the boundary and gets all 4.

Run: python -m experiments.perceptron [--quick] [--seed 0] [--out results/perceptron]
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

import fnn
from experiments import _common

X = jnp.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
GATES = {"AND": [0, 0, 0, 1], "OR": [0, 1, 1, 1], "XOR": [0, 1, 1, 0]}
# Module-level optimizers: the three gates reuse one compiled training loop.
OPTIMIZERS = {2.0: optax.sgd(2.0), 1.0: optax.sgd(1.0)}


def train(net: fnn.MLP, y: jax.Array, seeds: int, epochs: int, lr: float, key: jax.Array) -> tuple[fnn.mlp.Params, dict]:
    """Full-batch gradient descent on the 4 points, ``seeds`` networks at once."""
    return fnn.fit_many(
        net,
        (X, y),
        loss="bce",
        optimizer=OPTIMIZERS[lr],
        epochs=epochs,
        key=key,
        num_networks=seeds,
        validation=(X, y),
        progress=False,
    )


def main(argv: Sequence[str] | None = None) -> dict:
    args = _common.parse_args(__doc__, "perceptron", argv)
    seeds = _common.size(args, 32, 16, 4)
    epochs = _common.size(args, 3000, 2000, 1000)
    key = jax.random.key(args.seed)
    neuron = fnn.MLP((2, 1), hidden=(), output="sigmoid")
    mlp = fnn.MLP((2, 4, 1), hidden="tanh", output="sigmoid")

    results, rows, best_params = {}, [], {}
    for i, (gate, labels) in enumerate(GATES.items()):
        y = jnp.asarray(labels, jnp.float32)
        params, hist = train(neuron, y, seeds, epochs, lr=2.0, key=jax.random.fold_in(key, i))
        acc = hist["val_accuracy"]  # (seeds, epochs)
        results[f"neuron_{gate}"] = {"final_accuracy": acc[:, -1], "best_accuracy_any_epoch": float(np.nanmax(acc))}
        best = int(np.argmax(acc[:, -1]))
        best_params[f"neuron_{gate}"] = jax.tree_util.tree_map(lambda a, i=best: a[i], params)
        rows.append((f"neuron, {gate}", float(np.mean(acc[:, -1])), float(np.nanmax(acc)), float(np.mean(hist["loss"][:, -1]))))

    y = jnp.asarray(GATES["XOR"], jnp.float32)
    params, hist = train(mlp, y, seeds, epochs, lr=1.0, key=jax.random.fold_in(key, 9))
    acc = hist["val_accuracy"]
    solved = acc[:, -1] == 1.0
    first = [int(np.argmax(a == 1.0)) + 1 if (a == 1.0).any() else None for a in acc]
    results["mlp_XOR"] = {"final_accuracy": acc[:, -1], "solved_fraction": float(solved.mean()), "epochs_to_100": first}
    best_params["mlp_XOR"] = jax.tree_util.tree_map(lambda a: a[int(np.argmax(acc[:, -1]))], params)
    rows.append(("2-4-1 MLP, XOR", float(np.mean(acc[:, -1])), float(np.nanmax(acc)), float(np.mean(hist["loss"][:, -1]))))
    print(_common.table(rows, ["model, gate", f"mean final acc ({seeds} seeds)", "best acc (any seed/epoch)", "mean final loss"]))

    figures = []
    try:
        from fnn import plot

        fig, axes = plot.subplots(1, 4)
        for ax, (name, net) in zip(
            axes, [("neuron_AND", neuron), ("neuron_OR", neuron), ("neuron_XOR", neuron), ("mlp_XOR", mlp)]
        ):
            gate = name.split("_")[1]
            a = float(np.max(results[name]["final_accuracy"]))
            plot.decision_boundary(
                ax, net, best_params[name], X, jnp.asarray(GATES[gate]), title=f"{name.replace('_', ' ')}: acc {a:.2f}"
            )
        figures.append(plot.save(fig, args.out / "boundaries.png"))
    except ImportError as e:
        print(f"(no figures: {e})")

    xor_best = results["neuron_XOR"]["best_accuracy_any_epoch"]
    headlines = [
        _common.headline(
            "single neuron learns AND (best final accuracy)",
            float(np.max(results["neuron_AND"]["final_accuracy"])),
            anchor="1.0",
            ok=bool(np.max(results["neuron_AND"]["final_accuracy"]) == 1.0),
        ),
        _common.headline(
            "single neuron learns OR (best final accuracy)",
            float(np.max(results["neuron_OR"]["final_accuracy"])),
            anchor="1.0",
            ok=bool(np.max(results["neuron_OR"]["final_accuracy"]) == 1.0),
        ),
        _common.headline(
            f"single neuron on XOR: best accuracy, any of {seeds} seeds × {epochs} epochs",
            xor_best,
            anchor="≤ 0.75 (not separable)",
            ok=xor_best <= 0.75,
        ),
        _common.headline(
            "2-4-1 tanh MLP on XOR: best final accuracy",
            float(np.max(acc[:, -1])),
            anchor="1.0",
            ok=bool(np.max(acc[:, -1]) == 1.0),
        ),
        _common.headline(
            "2-4-1 MLP: fraction of seeds solving XOR", results["mlp_XOR"]["solved_fraction"], fmt="{:.2f}", anchor="most seeds"
        ),
    ]
    return _common.finish(args, results, headlines, figures)


if __name__ == "__main__":
    main()
