"""One compiled call trains a whole grid of networks: seeds × learning rates on the spirals, with vmap.

Gradient descent θ ← θ − η ∂E/∂θ has one knob, the learning rate η. ``fnn.fit_many`` trains every
(η, seed) pair of a grid at once — one jax.vmap-ed, compiled loop over a leading network axis — on
three interleaved spirals with a one-hidden-layer ReLU MLP (softmax + cross-entropy). Each column
of the grid shares its initial weights across learning rates, so rows differ only in η. Too small
an η has not converged after the epoch budget; too large a one oscillates or diverges, and the
diverged networks are flagged (``history["diverged"]``) without stopping the others.

Run: python -m experiments.sweep [--quick] [--seed 0] [--out results/sweep]
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

import fnn
from experiments import _common
from fnn import datasets

LOSS = "cross_entropy"
# The one optimizer object: its learning rate is a per-network array injected by fit_many.
OPTIMIZER = optax.inject_hyperparams(optax.sgd)(learning_rate=0.1)


def grid_params(net: fnn.MLP, n_lrs: int, n_seeds: int, key: jax.Array) -> fnn.mlp.Params:
    """Initial params stacked over N = n_lrs · n_seeds networks; network i uses seed i mod n_seeds.

    ``jnp.tile`` repeats the whole block of seeds once per learning rate, which matches
    ``jnp.repeat(lrs, n_seeds)`` (network i has rate i // n_seeds): row r of the (n_lrs, n_seeds)
    grid is one learning rate, column s one initialisation shared by every row.
    """
    seeds = jax.vmap(net.init)(jax.random.split(key, n_seeds))  # leaves (n_seeds, ...)
    return jax.tree_util.tree_map(lambda a: jnp.tile(a, (n_lrs,) + (1,) * (a.ndim - 1)), seeds)


def train_grid(
    net: fnn.MLP,
    data: tuple,
    lrs: Sequence[float],
    n_seeds: int,
    *,
    epochs: int,
    batch_size: int | None,
    key: jax.Array,
    validation: tuple | None = None,
) -> tuple[fnn.mlp.Params, dict]:
    """``fit_many`` over the grid: returns stacked params and history, network i = (i // n_seeds, i mod n_seeds)."""
    k_init, k_fit = jax.random.split(key)
    params = grid_params(net, len(lrs), n_seeds, k_init)
    return fnn.fit_many(
        net,
        data,
        loss=LOSS,
        optimizer=OPTIMIZER,
        epochs=epochs,
        key=k_fit,
        params=params,
        hyperparams={"learning_rate": jnp.repeat(jnp.asarray(lrs, jnp.float32), n_seeds)},
        batch_size=batch_size,
        validation=validation,
        progress=False,
    )


def main(argv: Sequence[str] | None = None) -> dict:
    args = _common.parse_args(__doc__, "sweep", argv)
    n = _common.size(args, 1500, 600, 300)
    lrs = _common.size(
        args, [0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0], [0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0], [0.01, 0.3, 30.0]
    )
    n_seeds = _common.size(args, 16, 6, 2)
    epochs = _common.size(args, 300, 150, 40)
    batch_size = 64
    hidden = 64
    key = jax.random.key(args.seed)
    k_data, k_split, k_train = jax.random.split(key, 3)

    x, y = datasets.spirals(k_data, n, noise=0.2, classes=3)
    x_tr, y_tr, x_te, y_te = datasets.train_test_split(k_split, x, y, test_fraction=0.25, stratify=True)
    net = fnn.MLP((2, hidden, 3), hidden="relu", output="softmax")

    t = time.perf_counter()
    params, hist = train_grid(
        net, (x_tr, y_tr), lrs, n_seeds, epochs=epochs, batch_size=batch_size, key=k_train, validation=(x_te, y_te)
    )
    jax.block_until_ready(params)
    fit_s = time.perf_counter() - t
    n_nets = len(lrs) * n_seeds

    # Accuracy of every network on both splits, and its dead ReLUs, from one vmap-ed forward pass.
    out, cache = jax.vmap(net.forward, in_axes=(0, None))(params, jnp.concatenate([x_tr, x_te]))
    probs = np.asarray(out)  # (N, n, 3)
    dead = np.asarray(jnp.all(cache.z[0] <= 0, axis=1).mean(-1)).reshape(len(lrs), n_seeds)  # units never active
    correct = probs.argmax(-1) == np.concatenate([np.asarray(y_tr), np.asarray(y_te)])[None]
    n_tr = x_tr.shape[0]
    train_acc = correct[:, :n_tr].mean(1).reshape(len(lrs), n_seeds)
    test_acc = correct[:, n_tr:].mean(1).reshape(len(lrs), n_seeds)
    test_loss = np.asarray(hist["val_loss"])[:, -1].reshape(len(lrs), n_seeds)  # nan where a run stopped early
    diverged = np.asarray(hist["diverged"]).reshape(len(lrs), n_seeds)
    kept = np.where(diverged, np.nan, test_acc)  # a diverged run's "accuracy" is that of its last finite params
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # every seed diverged at a rate: the mean is nan
        mean, std = np.nanmean(kept, axis=1), np.nanstd(kept, axis=1)
        train_mean = np.nanmean(np.where(diverged, np.nan, train_acc), axis=1)
    n_div = diverged.sum(axis=1)
    chance = test_acc <= 0.4  # no better than guessing one of 3 classes
    rows = [
        (lr, f"{m:.3f} ± {s:.3f}", float(tm), f"{d}/{n_seeds}", f"{c}/{n_seeds}", float(dd))
        for lr, m, s, tm, d, c, dd in zip(lrs, mean, std, train_mean, n_div, chance.sum(1), dead.mean(1))
    ]
    print(
        _common.table(
            rows,
            [
                "learning rate",
                "test accuracy (mean ± std)",
                "train accuracy",
                "diverged (NaN/inf)",
                "at chance",
                "dead ReLU fraction",
            ],
        )
    )
    print(
        f"{n_nets} networks ({len(lrs)} rates × {n_seeds} seeds, {net.num_params} params each), {epochs} epochs "
        f"of batch {batch_size} on {x_tr.shape[0]} points: one fit_many call, {fit_s:.1f} s including compilation"
    )

    # Best rate: highest mean test accuracy among rates where no seed diverged.
    stable = [i for i in range(len(lrs)) if n_div[i] == 0]
    best = max(stable or range(len(lrs)), key=lambda i: (np.nan_to_num(mean[i], nan=-1.0), -std[i]))
    results = {
        "data": {"n": n, "train": int(x_tr.shape[0]), "test": int(x_te.shape[0]), "noise": 0.2, "classes": 3},
        "net": {"sizes": list(net.sizes), "hidden": "relu", "output": "softmax", "num_params": net.num_params},
        "learning_rates": lrs,
        "seeds": n_seeds,
        "epochs": epochs,
        "batch_size": batch_size,
        "num_networks": n_nets,
        "fit_many_wall_s": fit_s,
        "test_accuracy": test_acc,
        "train_accuracy": train_acc,
        "test_loss": test_loss,
        "diverged": diverged,
        "mean_test_accuracy": mean,
        "std_test_accuracy": std,
        "diverged_per_rate": n_div,
        "at_chance_per_rate": chance.sum(1),
        "dead_relu_fraction": dead,
        "stop_reason": np.asarray(hist["stop_reason"]).reshape(len(lrs), n_seeds),
        "best_learning_rate": lrs[best],
        "best_mean_test_accuracy": float(mean[best]),
    }

    figures = []
    try:
        from fnn import plot

        fig, axes = plot.subplots(1, 2, size=4.6)
        plot.heatmap(
            axes[0],
            kept,
            xticks=list(range(n_seeds)),
            yticks=lrs,
            xlabel="seed (shared init per column)",
            ylabel="learning rate η",
            fmt="{:.2f}",
            vmin=0.0,
            vmax=1.0,
            title=f"final test accuracy ({n_nets} nets, one fit_many; nan = diverged)",
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            val = np.asarray(hist["val_accuracy"]).reshape(len(lrs), n_seeds, -1)
            curves = {f"η={lr:g}": np.nanmean(np.where(diverged[i][:, None], np.nan, val[i]), axis=0) for i, lr in enumerate(lrs)}
        plot.curves(axes[1], curves, ylabel="test accuracy (mean over seeds)")
        figures.append(plot.save(fig, args.out / "sweep.png"))
    except ImportError as e:
        print(f"(no figures: {e})")

    dead_at_chance = float(dead[chance].mean()) if chance.any() else 0.0
    headlines = [
        _common.headline("best learning rate (highest mean test accuracy, no seed diverged)", lrs[best], fmt="{:g}"),
        _common.headline(
            f"mean test accuracy at η={lrs[best]:g} ({n_seeds} seeds)",
            mean[best],
            anchor="≥ 0.9 (not linearly separable: cs231n linear softmax 0.49)",
            ok=bool(mean[best] >= 0.9),
        ),
        _common.headline("networks trained in one fit_many call", n_nets, fmt="{:.0f}"),
        _common.headline("wall time of that call, compilation included (s)", fit_s, fmt="{:.1f}"),
        _common.headline(f"runs flagged diverged (of {n_nets}; others keep training)", int(diverged.sum()), fmt="{:.0f}"),
        _common.headline(
            f"runs stuck at chance accuracy (of {n_nets}), large η",
            int(chance.sum()),
            fmt="{:.0f}",
            anchor=f"too large a step overshoots (their dead-ReLU fraction: {dead_at_chance:.2f})",
        ),
    ]
    return _common.finish(args, results, headlines, figures)


if __name__ == "__main__":
    main()
