"""Batch norm makes the loss landscape smoother along training: the loss and its gradient change less along the gradient.

Santurkar, Tsipras, Ilyas & Mądry (2018, "How does batch normalization help optimization?", §3.1 and
their Figure 4) argue that batch norm helps because it smooths the landscape the optimizer walks,
not by reducing internal covariate shift: at points of training, they move from the current
parameters along the current gradient by several step sizes and find that, with batch norm, (a) the
loss varies less over those points ("loss landscape"), (b) the gradient changes less
("gradient predictiveness": the ℓ2 change of the gradient as one moves), and (c) the "effective
β-smoothness" (the largest change of the gradient per distance moved) is smaller. They use VGG on
CIFAR-10 and cap the move at a step of 0.4 × the gradient.

Setup here: MNIST-1D (the package's published setting), standardised, 20 % of the training rows
held out as a validation split. A deep MLP 40-(64×6)-10 (ReLU, He initialisation, softmax,
cross-entropy) without and with batch norm (``fnn.MLP(..., norm="batch")``: Linear → BatchNorm →
ReLU, no bias before batch norm); both start from the same weight matrices (seed by seed) and see
the same minibatches (64 rows, drawn without replacement each epoch), trained by plain SGD at
the same rate η = 0.1 (as the paper compares both at one rate) in a hand loop of ``fnn.make_step``.

Probes, every few steps, between two training steps: on one fixed probe batch (512 training rows)
and in train mode (batch norm normalises with the probe batch's own statistics, as training does),
g = ∇L(θ); the points θ − s·g for s = 0.05, 0.10, …, 0.40 (½ to 4 training steps; the paper's cap of
0.4), all evaluated at once by ``jax.vmap`` over s of ``fnn.manual_value_and_grad``. Recorded:

- loss variation: max − min of L over θ and the eight points;
- gradient predictiveness: max over s of ‖∇L(θ − s·g) − ∇L(θ)‖₂ (all trained parameters; smaller is
  more predictive);
- effective β-smoothness: max over s of ‖∇L(θ − s·g) − ∇L(θ)‖₂ / (s‖g‖₂);
- ‖g‖₂ itself, for context (a smaller gradient also moves the points less far).

Reported: for each measure, the ratio without / with batch norm of its mean over the probes, per
seed (paired), then mean ± std over the seeds, and at how many probes the unnormalised network's
value (mean over seeds) is the higher one; the curves over training in the figure. Context: each
variant's validation accuracy (eval mode) at the end, paired by seed. The probe rows are training
rows: in a long run (full mode, 3000 steps ≈ 60 epochs) the unnormalised network memorises them
late in training, its gradient there vanishes and its measures fall below batch norm's; the
comparison is of the phase in which both still learn, which the mean over the probes weights
by its length (the count of probes says how much of the run it was).

Run: python -m experiments.bn_smoothness [--quick] [--seed 0] [--out results/bn_smoothness]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

import fnn
from experiments import _common
from experiments.norm_batch_size import same_start

LR = 0.1
SCALES = np.arange(1, 9) * 0.05  # s = 0.05 … 0.40
BATCH, PROBE_ROWS = 64, 512
HIDDEN = (64,) * 6
VARIANTS = ("none", "batch")
LABELS = {"none": "no batch norm", "batch": "batch norm"}
MEASURES = ("loss_range", "grad_change", "beta", "grad_norm")


def _sq(tree: Any) -> Any:
    return sum(jnp.sum(a * a) for a in jax.tree_util.tree_leaves(tree))


def make_probe(net: Any, x: Any, y: Any, scales: Any) -> Callable:
    """``probe(params) -> {loss, loss_range, grad_change, beta, grad_norm}`` on the batch (x, y), jitted.

    g = ∇L(θ) by the hand-derived backward pass (a network of blocks: train mode, the batch's own
    statistics); the points θ − s·g for every s, vmapped; the running statistics are not moved (their
    gradient is zero). ``loss_range`` spans θ and the points.
    """
    value_and_grad = fnn.manual_value_and_grad(net, "cross_entropy")
    s = jnp.asarray(scales, jnp.float32)
    x, y = jnp.asarray(x), jnp.asarray(y)

    @jax.jit
    def probe(params: Any) -> dict:
        loss, g = value_and_grad(params, x, y)

        def at(step: Any) -> tuple:
            return value_and_grad(jax.tree_util.tree_map(lambda p, d: p - step * d, params, g), x, y)

        losses, grads = jax.vmap(at)(s)
        change = jax.vmap(lambda h: jnp.sqrt(_sq(jax.tree_util.tree_map(jnp.subtract, h, g))))(grads)
        norm = jnp.sqrt(_sq(g))
        every = jnp.concatenate([loss[None], losses])
        return {
            "loss": loss,
            "loss_min": jnp.min(every),
            "loss_max": jnp.max(every),
            "loss_range": jnp.max(every) - jnp.min(every),
            "grad_change": jnp.max(change),
            "beta": jnp.max(change / (s * norm)),
            "grad_norm": norm,
        }

    return probe


def paired_ratio(without: np.ndarray, with_: np.ndarray) -> dict:
    """Per seed the ratio of the means over the probes (rows: seeds, columns: probes), then their
    mean, std and standard error over the seeds.

    >>> r = paired_ratio(np.array([[2.0, 4.0], [3.0, 3.0]]), np.array([[1.0, 1.0], [1.0, 2.0]]))
    >>> r["per_seed"], r["mean"]
    ([3.0, 2.0], 2.5)
    """
    per_seed = np.mean(without, axis=1) / np.mean(with_, axis=1)
    n = per_seed.size
    return {
        "per_seed": per_seed.tolist(),
        "mean": float(per_seed.mean()),
        "std": float(per_seed.std()),
        "se": float(per_seed.std(ddof=1) / np.sqrt(n)) if n > 1 else 0.0,
    }


def minibatches(n: int, steps: int, seed: int) -> np.ndarray:
    """Row indices of ``steps`` minibatches of BATCH rows, each epoch a fresh permutation (the last
    partial batch of an epoch dropped), (steps, BATCH)."""
    rng = np.random.default_rng(seed)
    per_epoch = n // BATCH
    epochs = -(-steps // per_epoch)
    idx = np.concatenate([rng.permutation(n)[: per_epoch * BATCH] for _ in range(epochs)])
    return idx[: steps * BATCH].reshape(steps, BATCH)


def main(argv: Sequence[str] | None = None) -> dict:
    args = _common.parse_args(__doc__, "bn_smoothness", argv)
    seeds = _common.size(args, 5, 3, 2)
    steps = _common.size(args, 3000, 400, 40)
    every = _common.size(args, 50, 20, 10)
    x_tr, y_tr, _, _ = fnn.datasets.mnist1d(num_samples=1000 if args.smoke else 5000)
    key = jax.random.key(args.seed)
    x_fit, y_fit, x_val, y_val = _common.carve_validation(jax.random.fold_in(key, 0), x_tr, y_tr)
    x_fit, x_val, _, _ = fnn.preprocessing.standardize(x_fit, x_val)
    x_fit, y_fit = np.asarray(x_fit), np.asarray(y_fit)
    n_in, n = x_fit.shape[1], x_fit.shape[0]
    probe_rows = np.random.default_rng(args.seed).choice(n, min(PROBE_ROWS, n), replace=False)
    sizes = (n_in, *HIDDEN, 10)
    plain = fnn.MLP(sizes, hidden="relu", output="softmax").init_stacked(jax.random.fold_in(key, 1), seeds)
    at_steps = list(range(0, steps, every))
    results: dict = {
        "lr": LR,
        "scales": SCALES,
        "batch": BATCH,
        "probe_rows": int(probe_rows.size),
        "hidden": HIDDEN,
        "seeds": seeds,
        "steps": steps,
        "probe_steps": at_steps,
    }
    # the minibatches of each seed (row indices), the same for both variants
    batches = [minibatches(n, steps, args.seed * 1000 + s) for s in range(seeds)]
    for variant in VARIANTS:
        net = fnn.MLP(sizes, hidden="relu", output="softmax", norm=None if variant == "none" else variant)
        params0 = same_start(net, plain)
        probe = make_probe(net, x_fit[probe_rows], y_fit[probe_rows], SCALES)
        step = fnn.make_step(net, "cross_entropy", optax.sgd(LR))
        record: dict = {k: np.zeros((seeds, len(at_steps))) for k in ("loss", "loss_min", "loss_max", *MEASURES)}
        val_acc = []
        for s in range(seeds):
            state = step.init(jax.tree_util.tree_map(lambda a, s=s: a[s], params0))
            xs, ys = x_fit[batches[s]], y_fit[batches[s]]
            for t in range(steps):
                if t % every == 0:
                    for k, v in jax.device_get(probe(state.params)).items():
                        record[k][s, t // every] = float(v)
                # jnp.asarray: a copy to the device (no program to compile, unlike unstacking a device array)
                state, _ = step(state, jnp.asarray(xs[t]), jnp.asarray(ys[t]))
            val_acc.append(float(fnn.evaluate(net, state.params, x_val, y_val, loss="cross_entropy")["accuracy"]))
        record["val_accuracy"] = np.asarray(val_acc)
        results[variant] = record
        print(
            f"{LABELS[variant]}: probe loss {record['loss'][:, 0].mean():.3f} → {record['loss'][:, -1].mean():.3f}, "
            f"validation accuracy {np.mean(val_acc):.3f} ± {np.std(val_acc):.3f}"
        )

    ratios = {m: paired_ratio(results["none"][m], results["batch"][m]) for m in MEASURES}
    results["ratios"] = ratios
    results["ratio_over_training"] = {
        m: (results["none"][m].mean(axis=0) / results["batch"][m].mean(axis=0)).tolist() for m in MEASURES
    }
    rows = [
        (
            m,
            f"{results['none'][m].mean():.4g}",
            f"{results['batch'][m].mean():.4g}",
            f"{ratios[m]['mean']:.2f} ± {ratios[m]['std']:.2f}",
        )
        for m in MEASURES
    ]
    print(_common.table(rows, ["measure (mean over probes)", "no batch norm", "batch norm", f"ratio ({seeds} seeds)"]))

    figures = []
    try:
        from fnn import plot

        fig, axes = plot.subplots(1, 3, size=3.2)
        x = np.asarray(at_steps)
        for variant, color in zip(VARIANTS, ("C3", "C0")):
            r = results[variant]
            axes[0].fill_between(x, r["loss_min"].mean(axis=0), r["loss_max"].mean(axis=0), color=color, alpha=0.3)
            axes[0].plot(x, r["loss"].mean(axis=0), color=color, lw=0.8, label=LABELS[variant])
            axes[1].plot(x, r["grad_change"].mean(axis=0), color=color, label=LABELS[variant])
            axes[2].plot(x, r["beta"].mean(axis=0), color=color, label=LABELS[variant])
        titles = (
            "(a) loss, shaded: its range along −s·g",
            "(b) gradient predictiveness: max ‖Δ∇L‖",
            "(c) effective β-smoothness",
        )
        for ax, title in zip(axes, titles):
            ax.set_xlabel("training step")
            ax.set_title(title, fontsize=8)
            ax.legend(fontsize=6)
        axes[1].set_yscale("log")
        axes[2].set_yscale("log")
        fig.suptitle(
            f"MNIST-1D, MLP 6×64 ReLU, SGD η={LR}; probes on {results['probe_rows']} training rows, "
            f"s ∈ [{SCALES[0]:.2f}, {SCALES[-1]:.2f}] (mean of {seeds} seeds)",
            fontsize=8,
        )
        figures.append(plot.save(fig, args.out / "bn_smoothness.png"))
    except ImportError as e:
        print(f"(no figures: {e})")

    setup = (
        f"MNIST-1D, MLP 6×64 ReLU, SGD η={LR}, {steps} steps, probes every {every} on {results['probe_rows']} training rows "
        f"(train mode), steps s·∇L for s ∈ [0.05, 0.4], {seeds} paired seeds"
    )
    names = {
        "loss_range": ("loss variation (max − min of the loss) along the gradient", "Figure 4a"),
        "grad_change": ("gradient predictiveness, max ‖∇L(θ − s·g) − ∇L(θ)‖", "Figure 4b"),
        "beta": ("effective β-smoothness, max ‖Δ∇L‖ / ‖Δθ‖", "Figure 4c"),
    }
    headlines = []
    probes = len(at_steps)
    results["probes_without_above"] = {}  # per measure: probes at which the unnormalised mean is the higher
    for m, (what, fig_name) in names.items():
        r = ratios[m]
        above = int(np.sum(results["none"][m].mean(axis=0) > results["batch"][m].mean(axis=0)))
        results["probes_without_above"][m] = above
        headlines.append(
            _common.headline(
                f"{setup}: {what}, mean over the probes, ratio without / with batch norm",
                r["mean"],
                fmt=f"{{:.2f}} ± {r['std']:.2f} (no BN {results['none'][m].mean():.3g}, BN {results['batch'][m].mean():.3g}; "
                f"no BN higher at {above}/{probes} probes)",
                anchor=f"> 1: batch norm smoother (Santurkar et al. 2018, {fig_name})",
                ok=bool(min(r["per_seed"]) > 1 and r["mean"] - 2 * r["se"] > 1),
                readme=m == "grad_change",
            )
        )
    # context: the accuracy each reaches, paired by seed (same weights, same minibatches)
    va = {v: results[v]["val_accuracy"] for v in VARIANTS}
    diff = va["batch"] - va["none"]
    diff_se = float(diff.std(ddof=1) / np.sqrt(seeds)) if seeds > 1 else 0.0
    headlines.append(
        _common.headline(
            f"{setup}: validation accuracy (eval mode) after the {steps} steps, batch norm minus without (paired by seed)",
            float(diff.mean()),
            fmt=f"{{:+.3f}} ± {diff_se:.3f} s.e. ({va['batch'].mean():.3f} ± {va['batch'].std():.3f} "
            f"vs {va['none'].mean():.3f} ± {va['none'].std():.3f})",
            anchor="context: > 0 beyond 2 s.e., batch norm ahead at the same rate (Santurkar et al. 2018, Figure 1)",
            ok=bool(diff.mean() > 2 * diff_se),
        )
    )
    return _common.finish(args, results, headlines, figures)


if __name__ == "__main__":
    main()
