"""One compiled call trains a whole grid of networks: seeds × learning rates on the spirals, with vmap.

Gradient descent θ ← θ − η ∂E/∂θ has one knob, the learning rate η. ``fnn.fit_many`` trains every
(η, seed) pair of a grid at once — one jax.vmap-ed, compiled loop over a leading network axis — on
three interleaved spirals with a one-hidden-layer ReLU MLP (softmax + cross-entropy). Each column
of the grid shares its initial weights across learning rates, so rows differ only in η. Too small
an η has not converged after the epoch budget; too large a one oscillates or diverges, and the
diverged networks are flagged (``history["diverged"]``) without stopping the others.

The best learning rate is chosen on a validation split carved from the training points (highest
mean validation accuracy over the seeds, among the rates at which no seed diverged); the test
split is read only to report the chosen rate's accuracy.

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


def grid_params(net: fnn.MLP, n_lrs: int, n_seeds: int, key: jax.Array) -> fnn.core.mlp.Params:
    """Initial params stacked over N = n_lrs · n_seeds networks; network i uses seed i mod n_seeds.

    ``jnp.tile`` repeats the whole block of seeds once per learning rate, which matches
    ``jnp.repeat(lrs, n_seeds)`` (network i has rate i // n_seeds): row r of the (n_lrs, n_seeds)
    grid is one learning rate, column s one initialisation shared by every row.
    """
    seeds = _common.stacked_init(net, key, n_seeds)  # leaves (n_seeds, ...)
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
) -> tuple[fnn.core.mlp.Params, dict]:
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
    n = _common.size(args, 1875, 750, 375)  # 60 % train / 15 % validation / 25 % test
    lrs = _common.size(
        args, [0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0], [0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0], [0.01, 0.3, 30.0]
    )
    n_seeds = _common.size(args, 16, 6, 2)
    epochs = _common.size(args, 300, 150, 40)
    batch_size = 64
    hidden = 64
    key = jax.random.key(args.seed)
    k_data, k_split, k_train, k_val = jax.random.split(key, 4)

    x, y = datasets.spirals(k_data, n, noise=0.2, classes=3)
    x_tr, y_tr, x_te, y_te = datasets.train_test_split(k_split, x, y, test_fraction=0.25, stratify=True)
    x_tr, y_tr, x_val, y_val = _common.carve_validation(k_val, x_tr, y_tr, 0.2)
    net = fnn.MLP((2, hidden, 3), hidden="relu", output="softmax")

    t = time.perf_counter()
    params, hist = train_grid(
        net, (x_tr, y_tr), lrs, n_seeds, epochs=epochs, batch_size=batch_size, key=k_train, validation=(x_val, y_val)
    )
    jax.block_until_ready(params)
    fit_s = time.perf_counter() - t
    n_nets = len(lrs) * n_seeds

    # Accuracy of every network on the three splits, and its dead ReLUs, from one vmap-ed forward pass.
    out, cache = jax.vmap(net.forward, in_axes=(0, None))(params, jnp.concatenate([x_tr, x_val, x_te]))
    probs = np.asarray(out)  # (N, n, 3)
    dead = np.asarray(jnp.all(cache.z[0] <= 0, axis=1).mean(-1)).reshape(len(lrs), n_seeds)  # units never active
    correct = probs.argmax(-1) == np.concatenate([np.asarray(y_tr), np.asarray(y_val), np.asarray(y_te)])[None]
    n_tr, n_val = x_tr.shape[0], x_val.shape[0]
    train_acc = correct[:, :n_tr].mean(1).reshape(len(lrs), n_seeds)
    val_acc = correct[:, n_tr : n_tr + n_val].mean(1).reshape(len(lrs), n_seeds)
    test_acc = correct[:, n_tr + n_val :].mean(1).reshape(len(lrs), n_seeds)
    val_loss = np.asarray(hist["val_loss"])[:, -1].reshape(len(lrs), n_seeds)  # nan where a run stopped early
    diverged = np.asarray(hist["diverged"]).reshape(len(lrs), n_seeds)
    kept = _common.mask_diverged(diverged, test_acc)  # a diverged run's "accuracy" is that of its last finite params
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # every seed diverged at a rate: the mean is nan
        mean, std = np.nanmean(kept, axis=1), np.nanstd(kept, axis=1)
        val_mean = np.nanmean(_common.mask_diverged(diverged, val_acc), axis=1)
        train_mean = np.nanmean(_common.mask_diverged(diverged, train_acc), axis=1)
    n_div = diverged.sum(axis=1)
    chance = test_acc <= 0.4  # no better than guessing one of 3 classes
    rows = [
        (lr, float(vm), f"{m:.3f} ± {s:.3f}", float(tm), f"{d}/{n_seeds}", f"{c}/{n_seeds}", float(dd))
        for lr, vm, m, s, tm, d, c, dd in zip(lrs, val_mean, mean, std, train_mean, n_div, chance.sum(1), dead.mean(1))
    ]
    print(
        _common.table(
            rows,
            [
                "learning rate",
                "val accuracy (mean)",
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

    # The rate is chosen on the validation split: highest mean validation accuracy among the rates at
    # which no seed diverged; its test accuracy is reported, never the best test accuracy.
    stable = [i for i in range(len(lrs)) if n_div[i] == 0]
    best, selected = _common.choose(
        val_mean,
        by=f"mean validation accuracy ({n_seeds} seeds), among rates with no diverged seed",
        among=stable,
        lr=lrs,
        val_acc=val_mean,
        test_acc=mean,
        test_std=std,
    )
    print(f"chosen on validation: η = {lrs[best]:g} (val {val_mean[best]:.3f}) -> test {mean[best]:.3f} ± {std[best]:.3f}")
    results = {
        "data": {
            "n": n,
            "train": int(x_tr.shape[0]),
            "validation": int(x_val.shape[0]),
            "test": int(x_te.shape[0]),
            "noise": 0.2,
            "classes": 3,
        },
        "net": {"sizes": list(net.sizes), "hidden": "relu", "output": "softmax", "num_params": net.num_params},
        "learning_rates": lrs,
        "seeds": n_seeds,
        "epochs": epochs,
        "batch_size": batch_size,
        "num_networks": n_nets,
        "fit_many_wall_s": fit_s,
        "test_accuracy": test_acc,
        "val_accuracy": val_acc,
        "train_accuracy": train_acc,
        "val_loss": val_loss,
        "diverged": diverged,
        "mean_val_accuracy": val_mean,
        "mean_test_accuracy": mean,
        "std_test_accuracy": std,
        "diverged_per_rate": n_div,
        "at_chance_per_rate": chance.sum(1),
        "dead_relu_fraction": dead,
        "stop_reason": np.asarray(hist["stop_reason"]).reshape(len(lrs), n_seeds),
        "selected": selected,
        "best_learning_rate": lrs[best],
        "best_mean_test_accuracy": float(mean[best]),  # the test accuracy of the rate chosen on validation
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
            curves = {f"η={lr:g}": np.nanmean(_common.mask_diverged(diverged[i], val[i]), axis=0) for i, lr in enumerate(lrs)}
        plot.curves(axes[1], curves, ylabel="validation accuracy (mean over seeds)")
        figures.append(plot.save(fig, args.out / "sweep.png"))
    except ImportError as e:
        print(f"(no figures: {e})")

    dead_at_chance = float(dead[chance].mean()) if chance.any() else 0.0
    headlines = [
        _common.headline(
            f"spirals, 2-{hidden}-3 ReLU MLP: test accuracy at the learning rate chosen on validation "
            f"(best mean validation accuracy of {len(lrs)} rates × {n_seeds} seeds, no seed diverged)",
            mean[best],
            fmt=f"{{:.3f}} ± {std[best]:.3f} at η = {lrs[best]:g} (validation {val_mean[best]:.3f}; {len(y_te)} test points)",
            anchor="≥ 0.9 (not linearly separable: cs231n's linear softmax gets 0.49)",
            ok=bool(mean[best] >= 0.9),
            readme=True,
        ),
        _common.headline(
            "networks trained in one fit_many call (one compiled loop), and its wall time with compilation"
            + _common.compile_note(args),
            n_nets,
            fmt=f"{{:.0f}} ({len(lrs)} rates × {n_seeds} seeds) in {fit_s:.1f} s",
            readme=True,
        ),
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
