"""A single neuron learns AND and OR but not XOR; one hidden layer learns XOR.

The neuron y = σ(wᵀx + b) draws one straight line through the plane: AND and OR are separable
by a line, XOR is not, so no weights get more than 3 of its 4 points right. A 2-layer MLP bends
the boundary and gets all 4.

The 4 points of a truth table are the whole input space, so they are the training set and the
only set there is: every accuracy here is measured on them (no held-out split exists, and none is
needed: nothing is chosen by it; the best seed only picks which boundary is drawn). That a neuron
stays at ≤ 3/4 on XOR is guaranteed by algebra (the four inequalities of a separating line sum to
a contradiction); the run illustrates it. That gradient descent finds the separating line for AND
and OR, and a hidden layer's solution for XOR, is what is tested.

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


def train(net: fnn.MLP, y: jax.Array, seeds: int, epochs: int, lr: float, key: jax.Array) -> tuple[fnn.core.mlp.Params, dict]:
    """Full-batch gradient descent on the 4 points, ``seeds`` networks at once."""
    return fnn.fit_many(
        net,
        (X, y),
        loss="bce",
        optimizer=OPTIMIZERS[lr],
        epochs=epochs,
        key=key,
        num_networks=seeds,
        validation=(X, y),  # the 4 training points themselves: per-epoch accuracy on the whole truth table
        progress=False,
    )


def main(argv: Sequence[str] | None = None) -> dict:
    args = _common.parse_args(__doc__, "perceptron", argv)
    seeds = _common.size(args, 32, 16, 4)
    epochs = _common.size(args, 3000, 2000, 1000)
    key = jax.random.key(args.seed)
    neuron = fnn.MLP((2, 1), hidden=(), output="sigmoid")
    mlp = fnn.MLP((2, 4, 1), hidden="tanh", output="sigmoid")

    results: dict = {
        "split": "the 4 points of each truth table are the training set and the whole input space; no held-out split"
    }
    rows, best_params = [], {}
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
    results["mlp_XOR"] = {
        "final_accuracy": acc[:, -1],
        "seeds_solved": int(solved.sum()),
        "solved_fraction": float(solved.mean()),
        "epochs_to_100": first,
    }
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
    n_solved = {g: int(np.sum(results[f"neuron_{g}"]["final_accuracy"] == 1.0)) for g in ("AND", "OR")}
    mlp_solved = results["mlp_XOR"]["seeds_solved"]
    for g in ("AND", "OR"):
        results[f"neuron_{g}"]["seeds_solved"] = n_solved[g]
    neuron = f"one sigmoid neuron, full-batch GD (lr 2, BCE), {epochs} epochs"
    headlines = [
        _common.headline(
            f"{neuron}: seeds that classify all 4 points of AND and of OR (the whole truth table), of {seeds}",
            min(n_solved.values()) / seeds,
            fmt=f"AND {n_solved['AND']}/{seeds}, OR {n_solved['OR']}/{seeds} seeds at accuracy 1.00",
            anchor="all (both are linearly separable)",
            ok=min(n_solved.values()) == seeds,
            readme=True,
        ),
        _common.headline(
            f"{neuron} on XOR: best accuracy of any of {seeds} seeds at any epoch; ≤ 0.75 holds by algebra "
            "(no line separates XOR: at most 3 of its 4 points)",
            xor_best,
            fmt="{:.2f}",
            anchor="≤ 0.75 (Minsky & Papert 1969)",
            ok=xor_best <= 0.75,
            basis="algebra",
            readme=True,
        ),
        _common.headline(
            f"2-4-1 tanh MLP, full-batch GD (lr 1, BCE), {epochs} epochs: seeds that classify all 4 XOR points",
            results["mlp_XOR"]["solved_fraction"],
            fmt=f"{mlp_solved}/{seeds} seeds at accuracy 1.00",
            anchor="most seeds (one hidden layer suffices)",
            ok=bool(results["mlp_XOR"]["solved_fraction"] > 0.5),
            readme=True,
        ),
    ]
    return _common.finish(args, results, headlines, figures)


if __name__ == "__main__":
    main()
