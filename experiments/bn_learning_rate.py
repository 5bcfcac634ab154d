"""Batch normalisation trains faster and tolerates larger learning rates.

Ioffe & Szegedy (2015, "Batch Normalization", §4.1, Figure 1a) train an MNIST network of three
fully connected hidden layers of 100 sigmoid units, with and without batch norm after each hidden
layer's linear map, and report that the batch-normalised network reaches a higher test accuracy
faster; §3.3 argues that batch norm makes training resilient to the parameters' scale, so higher
learning rates no longer make it blow up. Setup in their spirit, with no MNIST download:

- data: scikit-learn's 8×8 digits, standardised, a stratified 80/20 train/test split, 20 % of the
  training rows held out (stratified) as the validation split; every choice is made on it, the
  test split is read only at the chosen rates;
- network: 64-100-100-100-10, sigmoid hidden units, softmax output, cross-entropy; plain
  (Linear with bias → sigmoid) or batch norm (Linear → BatchNorm → sigmoid, no bias before batch
  norm; PyTorch's conventions, momentum 0.1, ε = 1e-5); weights Glorot uniform (what fnn's
  "auto" draws before a sigmoid), biases 0, γ 1, β 0. The paper drew "small random Gaussian
  values"; Glorot gives the plain network its best chance (a plain sigmoid network started from
  N(0, 0.01²) barely moves in this budget), so the comparison is against a well-started baseline;
- training: plain minibatch SGD, batch 60 (the paper's; the last partial batch dropped: 19 steps
  an epoch), 40 epochs (quick 20), validation accuracy after every epoch, in eval mode (batch norm
  with its running statistics);
- a log grid of learning rates (half decades from 0.01 to 300; quick: 0.03 to 100) × 5 seeds
  (quick 3), ONE ``fnn.fit_many`` per variant (``optax.inject_hyperparams``); paired: every rate
  of a seed, in both variants, starts from the same weight matrices and sees the same minibatch order.

Measured. Failure: a network fails at a rate when its run diverged (``history["diverged"]``:
a non-finite loss) or its last epoch's mean training loss is still ≥ ln 10 ≈ 2.303, the
cross-entropy of a uniform guess over the 10 classes (a sigmoid network driven into saturation
does not produce NaN: its loss sits at or above chance level). The largest stable rate of a variant is
the largest grid rate at which no seed fails. Speed: steps until the validation accuracy first
reaches ``TARGET`` (90 %), per network, read after each epoch (so a multiple of 19 steps; a network
that never reaches it counts as one epoch more than the run); each variant at its own best rate,
chosen on validation among the rates where no seed failed: fewest mean steps to the target, then
the higher final validation accuracy. Reported: mean ± std over seeds at that rate, how many seeds
reached the target, and the final validation and test accuracy there.

Run: python -m experiments.bn_learning_rate [--quick] [--seed 0] [--out results/bn_learning_rate]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, cast

import jax
import jax.numpy as jnp
import numpy as np
import optax

import fnn
from experiments import _common, bn_weight_scale

TARGET = 0.90
BATCH = 60
CHANCE_LOSS = math.log(10)  # cross-entropy of the uniform guess over 10 classes
OPT = optax.inject_hyperparams(optax.sgd)(learning_rate=0.1)
VARIANTS = ("plain", "batch norm")
GRID = [0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0]  # full; quick drops the ends


def data(key: jax.Array) -> dict:
    """Standardised (fit, validation, test) splits of digits."""
    x, y = fnn.datasets.digits()
    x_tr, y_tr, x_te, y_te = fnn.datasets.train_test_split(key, x, y, test_fraction=0.2, stratify=True)
    x_fit, y_fit, x_val, y_val = _common.carve_validation(jax.random.fold_in(key, 1), x_tr, y_tr)
    x_fit, x_val, x_te, _, _ = fnn.preprocessing.standardize(x_fit, x_val, x_te)
    return {"fit": (x_fit, y_fit), "val": (x_val, y_val), "test": (x_te, y_te)}


def steps_to(acc: np.ndarray, target: float, steps_per_epoch: int) -> np.ndarray:
    """Steps until the accuracy first reaches ``target``, per row of ``acc`` (N, epochs), read after
    each epoch: ``epoch · steps_per_epoch`` (epochs from 1); ``(epochs + 1) · steps_per_epoch`` where it
    never does (NaN counts as never).

    >>> steps_to(np.array([[0.5, 0.91, 0.97], [0.5, 0.6, 0.7], [0.95, 0.1, np.nan]]), 0.9, 10).tolist()
    [20, 40, 10]
    """
    hit = np.nan_to_num(acc, nan=-1.0) >= target
    return np.where(hit.any(axis=1), hit.argmax(axis=1) + 1, acc.shape[1] + 1) * steps_per_epoch


def failed(diverged: np.ndarray, final_loss: np.ndarray, chance: float = CHANCE_LOSS) -> np.ndarray:
    """A network failed when it diverged or its final training loss is not below chance level (or not finite).

    >>> failed(np.array([False, True, False, False]), np.array([0.1, 0.1, 2.4, np.nan])).tolist()
    [False, True, True, True]
    """
    loss = np.asarray(final_loss, float)
    return np.asarray(diverged, bool) | ~np.isfinite(loss) | (loss >= chance)


def largest_stable(lrs: np.ndarray, fails: np.ndarray) -> float:
    """The largest rate at which no seed failed (``fails``: (rates, seeds)); NaN if none.

    >>> largest_stable(np.array([0.1, 1.0, 10.0, 100.0]), np.array([[0, 0], [0, 0], [0, 1], [1, 1]], bool))
    1.0
    """
    ok = ~np.asarray(fails).any(axis=1)
    return float(np.asarray(lrs)[ok].max()) if ok.any() else math.nan


def glorot_uniform(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """U(±√(6 / (n_in + n_out))) for a W of shape (n_out, n_in): what ``fnn.init`` draws for a sigmoid
    layer ("auto"), here in numpy.

    >>> w = glorot_uniform(np.random.default_rng(0), (100, 300))
    >>> bool(np.abs(w).max() <= np.sqrt(6 / 400)), round(float(w.std() ** 2 * 200), 1)
    (True, 1.0)
    """
    limit = math.sqrt(6.0 / sum(shape))
    return rng.uniform(-limit, limit, shape)


def run_variant(
    net: fnn.Network, split: dict, lrs: np.ndarray, seeds: int, seed: int, key: jax.Array, epochs: int
) -> dict[str, Any]:
    """All rates × seeds of one variant in one ``fit_many``; the per-rate measures and the chosen rate."""
    n_rates = len(lrs)
    steps_per_epoch = int(split["fit"][0].shape[0]) // BATCH
    params, hist = fnn.fit_many(
        cast(Any, net),  # a Network of blocks: fit_many takes one, though annotated `MLP`
        split["fit"],
        loss="cross_entropy",
        optimizer=OPT,
        epochs=epochs,
        batch_size=BATCH,
        drop_last=True,  # batch norm needs 2+ examples a batch; the plain network gets the same steps
        key=jnp.tile(jax.random.split(key, seeds), n_rates),  # one minibatch order per seed
        params=bn_weight_scale.scaled_params(net, seed, np.ones(n_rates), seeds, draw=glorot_uniform),
        hyperparams={"learning_rate": jnp.asarray(np.repeat(lrs, seeds), jnp.float32)},
        validation=split["val"],
        progress=False,
    )
    diverged = np.asarray(hist["diverged"]).reshape(n_rates, seeds)
    final_loss = np.asarray(hist["loss"])[:, -1].reshape(n_rates, seeds)
    fails = failed(diverged, final_loss)
    val = np.asarray(hist["val_accuracy"])  # (N, epochs)
    to_target = steps_to(val, TARGET, steps_per_epoch).reshape(n_rates, seeds).astype(float)
    to_target = np.where(fails, np.nan, to_target)
    final_val = np.where(fails, np.nan, val[:, -1].reshape(n_rates, seeds))
    (test_acc,) = bn_weight_scale.accuracies(net, params, [split["test"]])
    test = np.where(fails, np.nan, test_acc.reshape(n_rates, seeds))
    mean_steps = _common.nanmean(to_target, axis=1)
    stable = np.flatnonzero(~fails.any(axis=1))
    i, choice = _common.choose(
        [(-m, v) for m, v in zip(mean_steps, _common.nanmean(final_val, axis=1))],
        by=f"fewest mean steps to {TARGET:.0%} validation accuracy, then final validation accuracy, "
        "among rates where no seed failed",
        among=stable.tolist(),
        lr=lrs.tolist(),
        mean_steps=mean_steps.tolist(),
    )
    never = (epochs + 1) * steps_per_epoch
    return {
        "steps_per_epoch": steps_per_epoch,
        "diverged": diverged,
        "final_loss": final_loss,
        "failed": fails,
        "largest_stable_lr": largest_stable(lrs, fails),
        "steps_to_target": to_target,
        "final_val": final_val,
        "test": test,
        "choice": choice,
        "steps_mean": float(_common.nanmean(to_target[i])),
        "steps_std": float(bn_weight_scale.nanstd(to_target[i : i + 1])[0]),
        "reached": int(np.sum(to_target[i] < never)),
        "never": never,
        "val_mean": float(_common.nanmean(final_val[i])),
        "val_std": float(bn_weight_scale.nanstd(final_val[i : i + 1])[0]),
        "test_mean": float(_common.nanmean(test[i])),
        "test_std": float(bn_weight_scale.nanstd(test[i : i + 1])[0]),
        "val_curve": _common.nanmean(val.reshape(n_rates, seeds, -1)[i], axis=0),
        "final_val_by_lr": _common.nanmean(val[:, -1].reshape(n_rates, seeds), axis=1),
    }


def main(argv: Sequence[str] | None = None) -> dict:
    args = _common.parse_args(__doc__, "bn_learning_rate", argv)
    seeds = _common.size(args, 5, 3, 2)
    lrs = np.asarray(_common.size(args, GRID, GRID[1:-1], [0.3, 30.0]))
    epochs = _common.size(args, 40, 20, 2)
    hidden = _common.size(args, (100, 100, 100), (100, 100, 100), (16, 16, 16))
    key = jax.random.key(args.seed)
    split = data(jax.random.fold_in(key, 1))
    sizes = (int(split["fit"][0].shape[1]), *hidden, 10)
    results: dict[str, Any] = {
        "seeds": seeds,
        "learning_rates": lrs,
        "epochs": epochs,
        "sizes": sizes,
        "target": TARGET,
        "batch_size": BATCH,
        "failure": f"history['diverged'] or final training loss (last epoch's mean) >= ln 10 = {CHANCE_LOSS:.3f}",
    }
    for variant, norm in zip(VARIANTS, (None, "batch")):
        net = fnn.Network.mlp(sizes, "sigmoid", "softmax", norm=norm)
        # the same key for both variants: the same minibatch orders
        results[variant] = run_variant(net, split, lrs, seeds, args.seed, jax.random.fold_in(key, 2), epochs)

    rows = []
    for k, lr in enumerate(lrs):
        row: list[Any] = [f"{lr:g}"]
        for v in VARIANTS:
            r = results[v]
            nf = int(r["failed"][k].sum())
            st = r["steps_to_target"][k]
            reached = int(np.sum(st < r["never"]))
            row += [
                f"{r['final_val_by_lr'][k]:.3f}" + (f" ({nf} failed)" if nf else ""),
                "-" if nf == seeds else "never" if not reached else f"{_common.nanmean(st):.0f} ({reached}/{seeds - nf})",
            ]
        rows.append(row)
    print(
        _common.table(
            rows,
            ["lr", "plain: final val acc", f"plain: steps to {TARGET:.0%}", "BN: final val acc", f"BN: steps to {TARGET:.0%}"],
        )
    )
    for v in VARIANTS:
        r = results[v]
        print(
            f"{v}: best lr {r['choice']['lr']:g}: {r['steps_mean']:.0f} ± {r['steps_std']:.0f} steps to {TARGET:.0%} "
            f"({r['reached']}/{seeds} reached), final val {r['val_mean']:.3f}, test {r['test_mean']:.3f} ± {r['test_std']:.3f}; "
            f"largest stable lr {r['largest_stable_lr']:g}"
        )

    figures = []
    try:
        from fnn import plot

        fig, (ax, bx) = plot.subplots(1, 2, size=3.4)
        for v, color in zip(VARIANTS, ("C1", "C0")):
            r = results[v]
            c = r["val_curve"]
            ax.plot(np.arange(1, len(c) + 1) * r["steps_per_epoch"], c, color=color, label=f"{v} (lr {r['choice']['lr']:g})")
            bx.plot(lrs, r["final_val_by_lr"], "o-", color=color, label=v)
            bad = r["failed"].any(axis=1)
            bx.plot(lrs[bad], np.nan_to_num(r["final_val_by_lr"][bad], nan=0.1), "x", color=color, ms=8)
            bx.axvline(r["largest_stable_lr"], color=color, ls=":", lw=0.9)
        ax.axhline(TARGET, color="0.6", lw=0.7, ls="--")
        ax.set_xlabel("SGD steps")
        ax.set_ylabel(f"validation accuracy (mean of {seeds} seeds)")
        ax.set_title("each at its best learning rate (dashed: target)", fontsize=8)
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
        bx.set_xscale("log")
        bx.set_xlabel("learning rate")
        bx.set_ylabel("final validation accuracy (mean)")
        bx.set_title("x: a seed failed; dotted: largest stable rate", fontsize=8)
        bx.legend(fontsize=7)
        bx.grid(alpha=0.3)
        fig.suptitle(f"digits, sigmoid MLP {'-'.join(map(str, sizes))}, SGD batch {BATCH}: batch norm vs none", fontsize=9)
        figures.append(plot.save(fig, args.out / "bn_learning_rate.png"))
    except ImportError as e:
        print(f"(no figures: {e})")

    p, b = results["plain"], results["batch norm"]
    setup = f"digits, sigmoid MLP {'-'.join(map(str, sizes))}, SGD batch {BATCH}, {epochs} epochs, {seeds} seeds"
    judged = not args.smoke
    headlines = [
        _common.headline(
            f"{setup}, each variant at its best learning rate (validation): SGD steps to {TARGET:.0%} validation accuracy, "
            "batch norm vs plain",
            b["steps_mean"],
            fmt=f"batch norm {{:.0f}} ± {b['steps_std']:.0f} (lr {b['choice']['lr']:g}, {b['reached']}/{seeds}) vs plain "
            f"{p['steps_mean']:.0f} ± {p['steps_std']:.0f} (lr {p['choice']['lr']:g}, {p['reached']}/{seeds})",
            anchor="batch norm faster (Ioffe & Szegedy 2015, §4.1, Fig. 1a)",
            ok=b["steps_mean"] < p["steps_mean"] if judged else None,
            readme=True,
        ),
        _common.headline(
            f"{setup}: the largest learning rate of the grid at which no seed fails (diverged, or final training loss "
            "≥ ln 10), batch norm vs plain",
            b["largest_stable_lr"],
            fmt=f"batch norm {{:g}} vs plain {p['largest_stable_lr']:g}",
            anchor="batch norm tolerates larger rates (Ioffe & Szegedy 2015, §3.3)",
            ok=b["largest_stable_lr"] > p["largest_stable_lr"] if judged else None,
            readme=True,
        ),
        _common.headline(
            "the same networks at their chosen rates: test accuracy, batch norm vs plain",
            b["test_mean"],
            fmt=f"batch norm {{:.3f}} ± {b['test_std']:.3f} vs plain {p['test_mean']:.3f} ± {p['test_std']:.3f}",
            anchor="batch norm higher (Fig. 1a)",
            ok=b["test_mean"] > p["test_mean"] if judged else None,
        ),
    ]
    return _common.finish(args, results, headlines, figures)


if __name__ == "__main__":
    main()
