"""Sigmoid's gradients vanish with depth while ReLU's do not; ReLU units die at large learning rates, Leaky ReLU's cannot.

The tutorial's §4 in three measurements, all on scikit-learn's 8×8 digits (stratified 80/20
train/test split; 20 % of the training rows, stratified, held out as a validation split;
standardised on the rest), softmax output and cross-entropy, plain minibatch SGD (batch 64):

(a) Training curves. The same MLP 64-32-32-32-10 with each hidden activation (sigmoid, tanh,
    ReLU, Leaky ReLU (slope 0.01), ELU), init "auto" (Glorot for sigmoid/tanh, He for the ReLU
    family), trained over a grid of learning rates × seeds in one ``fit_many`` per activation:
    training loss per epoch at a common learning rate (0.1), final training loss and test
    accuracy there and at each activation's best rate, chosen on the validation split (best mean
    validation accuracy, so that no activation loses only for want of its own step size; the test
    split chooses nothing), and the first/last-layer gradient-norm ratio per epoch
    (``history["grad_norm"]``). Every activation gets the same keys: networks with the same
    initialiser (the ReLU family; sigmoid and tanh) start from identical weights, and all see
    the minibatches in the same order.
(b) Vanishing gradients. A deep MLP (10 hidden layers of 32) at initialisation: the per-layer
    ‖∂E/∂W⁽ˡ⁾‖ of the hand-derived backward pass (``fnn.manual_value_and_grad``) on 1024 training
    digits, geometric mean over seeds, with init "auto" and with Glorot for every layer. The
    headline is the ratio of the first layer's norm to the last layer's. Each layer multiplies
    the error δ by W⁽ˡ⁾ᵀ and f′(z): sigmoid's f′ ≤ 1/4 shrinks it at every layer; tanh's f′ ≤ 1
    (= 1 at 0) and ReLU's f′ ∈ {0, 1} do not, given an initialiser that keeps the scale.
(c) Dead ReLUs. From the same runs as (a): the fraction of ReLU hidden units that output 0 on
    every one of 1024 training digits after training (``history["dead_fraction"]``,
    ``health=True``), per learning rate; for Leaky ReLU the same count of units negative on every
    digit (they are not dead: their gradient is 0.01, not 0). Diverged networks (NaN/inf,
    ``history["diverged"]``) are counted and left out of the means; networks that stay finite
    but end at chance accuracy are counted as collapsed.

Run: python -m experiments.activations [--quick] [--seed 0] [--out results/activations]
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import numpy as np
import optax

import fnn
from experiments import _common
from fnn import datasets

ACTIVATIONS = ("sigmoid", "tanh", "relu", "leaky_relu", "elu")
SMOKE_ACTIVATIONS = ("sigmoid", "relu")  # each activation compiles its own training loop: --smoke keeps two
HIDDEN = (32, 32, 32)  # the network of (a) and (c): 64-32-32-32-10
BATCH = 64
COMMON_LR = 0.1  # the learning rate of the curves in (a) (it is in every grid)
TARGET_LOSS = 0.1  # "epochs until the training loss is below 0.1"
HIGH_LR = 1.5  # (c) counts collapsed / diverged networks at learning rates from here up
COLLAPSED = 0.2  # a finite network whose test accuracy stays below this (chance: 0.1) learned nothing
PROBE = 1024  # dead / saturated units are counted on the first 1024 training digits, as fit's health=True does
# Compilation dominates the cost: one training loop per activation. health=True only where the
# brief's dead fraction is read from it (ReLU), no validation (test accuracy is computed once,
# after training): each adds seconds of compile time.
HEALTH = ("relu",)
LRS_FULL = [0.01, 0.03, 0.1, 0.3, 1.0, 1.5, 2.0, 3.0]
LRS_QUICK = [0.03, 0.1, 0.3, 1.0, 1.5, 2.0, 3.0]
# One optimizer object for every activation and learning rate: the rates go in as fit_many hyperparams.
OPTIMIZER = optax.inject_hyperparams(optax.sgd)(learning_rate=COMMON_LR)


def load_digits(key: jax.Array) -> tuple[jax.Array, ...]:
    """Stratified 80/20 train/test split of the digits, 20 % of the training rows held out for
    validation (stratified), standardised on the remaining training rows.

    Returns ``(x_tr, y_tr, x_val, y_val, x_te, y_te)``.
    """
    x, y = datasets.digits()
    x_tr, y_tr, x_te, y_te = datasets.train_test_split(key, x, y, 0.2, stratify=True)
    x_tr, y_tr, x_val, y_val = _common.carve_validation(jax.random.fold_in(key, 1), x_tr, y_tr, 0.2)
    x_tr, x_val, x_te, _, _ = datasets.standardize(x_tr, x_val, x_te)
    return x_tr, y_tr, x_val, y_val, x_te, y_te


def unit_stats(
    net: fnn.MLP, params: fnn.core.mlp.Params, probe: jax.Array, splits: dict[str, tuple[jax.Array, jax.Array]] | None = None
) -> dict[str, np.ndarray]:
    """For each of N stacked networks: per hidden layer, the fraction of units with z ≤ 0 on every
    probe example (dead, for ReLU) and of saturated outputs (sigmoid/tanh within 1% of their
    asymptotes): ``fnn.metrics.unit_health``'s inactive and saturated fractions, vmapped; for each
    named split ``(x, y)``, accuracy and cross-entropy.

    Returns ``negative`` and ``saturated`` (N, L-1) and, per split ``name``, ``name_accuracy`` and
    ``name_loss`` (N,).
    """
    health = jax.vmap(fnn.metrics.unit_health, in_axes=(None, 0, None))(net, params, probe)  # each (N, L-1)
    out = {"negative": np.asarray(health["inactive_fraction"]), "saturated": np.asarray(health["saturated_fraction"])}
    for name, (x, y) in (splits or {}).items():
        prob = np.asarray(jax.vmap(net.apply, in_axes=(0, None))(params, x), np.float64)  # (N, B, 10)
        labels = np.asarray(y)
        out[f"{name}_accuracy"] = np.mean(np.argmax(prob, -1) == labels, axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):  # a diverged network's NaNs stay NaN
            out[f"{name}_loss"] = -np.mean(np.log(prob[:, np.arange(len(labels)), labels]), axis=1)
    return out


def final(h: np.ndarray, epochs_run: np.ndarray) -> np.ndarray:
    """Each network's last recorded value (its last epoch run): (N, E, ...) -> (N, ...)."""
    return h[np.arange(h.shape[0]), np.asarray(epochs_run) - 1]


def epochs_below(loss: np.ndarray, target: float) -> float:
    """First epoch (1-based) whose mean training loss is below ``target``; inf if none."""
    hit = np.flatnonzero(np.nan_to_num(loss, nan=np.inf) < target)
    return float(hit[0] + 1) if hit.size else float("inf")


def train_grid(act: str, data: tuple, lrs: np.ndarray, seeds: int, epochs: int, key: jax.Array) -> dict:
    """Train ``len(lrs) × seeds`` networks with hidden activation ``act`` in one fit_many call."""
    x_tr, y_tr, x_val, y_val, x_te, y_te = data
    net = fnn.MLP((64, *HIDDEN, 10), hidden=act, output="softmax")
    params0, params, hist = _common.fit_lr_grid(
        net,
        (x_tr, y_tr),
        lrs,
        seeds,
        key,
        loss="cross_entropy",
        optimizer=OPTIMIZER,
        epochs=epochs,
        batch_size=BATCH,
        drop_last=True,
        health=act in HEALTH,
        grad_norms=True,
    )
    probe = x_tr[:PROBE]  # the examples fit's health metrics use
    splits = {"val": (x_val, y_val), "test": (x_te, y_te)}
    return {"hist": hist, "init": unit_stats(net, params0, probe), "final": unit_stats(net, params, probe, splits)}


def summarize(run: dict, lrs: np.ndarray, seeds: int, ci: int) -> dict:
    """Per learning rate: means over the seeds that did not diverge; curves at ``lrs[ci]``; the best rate
    (chosen on the validation split)."""
    h, shape = run["hist"], (len(lrs), seeds)
    div = np.asarray(h["diverged"]).reshape(shape)
    loss = final(h["loss"], h["epochs_run"]).reshape(shape)
    acc = run["final"]["test_accuracy"].reshape(shape)

    def mean_ok(a):  # mean over the non-diverged seeds (and layers), NaN where all diverged
        a = _common.mask_diverged(div.reshape(shape), a)
        return [float(_common.nanmean(r)) for r in a.reshape(len(lrs), -1)]

    def per_layer(a):
        return a.reshape((*shape, -1))

    s = {
        "learning_rates": lrs,
        "diverged": div.sum(1),
        "collapsed": ((acc < COLLAPSED) & ~div).sum(1),
        "final_train_loss": mean_ok(loss),
        "final_val_accuracy": mean_ok(run["final"]["val_accuracy"].reshape(shape)),
        "final_val_loss": mean_ok(run["final"]["val_loss"].reshape(shape)),
        "final_test_accuracy": mean_ok(acc),
        "negative_fraction": mean_ok(per_layer(run["final"]["negative"])),
        "negative_fraction_at_init": mean_ok(per_layer(run["init"]["negative"])),
        "saturated_fraction": mean_ok(per_layer(run["final"]["saturated"])),
    }
    if "dead_fraction" in h:  # the library's health metric (ReLU layers)
        dead = per_layer(final(h["dead_fraction"], h["epochs_run"]))
        s["dead_fraction"] = mean_ok(dead)
        s["dead_fraction_per_layer"] = _common.nanmean(_common.mask_diverged(div, dead), 1)
    sl = slice(ci * seeds, (ci + 1) * seeds)
    loss_curve = _common.nanmean(h["loss"][sl], 0)
    s["common_lr"] = {
        "learning_rate": float(lrs[ci]),
        "loss_curve": loss_curve,
        "epochs_to_loss": epochs_below(loss_curve, TARGET_LOSS),
        "grad_ratio_first_last_per_epoch": _common.nanmean(h["grad_norm"][sl, :, 0] / h["grad_norm"][sl, :, -1], 0),
    }
    # The best rate is chosen on validation: highest mean validation accuracy, then the lower validation loss.
    _, s["best_lr"] = _common.choose(
        [(a, -v) for a, v in zip(s["final_val_accuracy"], s["final_val_loss"])],
        by="mean validation accuracy (non-diverged seeds), then the lower validation loss",
        learning_rate=lrs,
        final_val_accuracy=s["final_val_accuracy"],
        final_train_loss=s["final_train_loss"],
        final_test_accuracy=s["final_test_accuracy"],
    )
    return s


def grad_norms_at_init(act: str, init: str, x: jax.Array, y: jax.Array, depth: int, seeds: int, key: jax.Array) -> np.ndarray:
    """Geometric mean over ``seeds`` inits of ‖∂E/∂W⁽ˡ⁾‖ per layer (L,), hand-derived backward pass."""
    net = fnn.MLP((64, *(32,) * depth, 10), hidden=act, output="softmax", init=init)
    vg = fnn.manual_value_and_grad(net, "cross_entropy")
    norms = []
    for s in range(seeds):  # eager, op by op: the ops' compiled kernels are shared by every config
        _, grads = vg(net.init(jax.random.fold_in(key, s)), x, y)
        norms.append([np.linalg.norm(np.asarray(g["W"], np.float64)) for g in grads])
    return np.exp(np.mean(np.log(norms), axis=0))  # (L,)


def main(argv: Sequence[str] | None = None) -> dict:
    args = _common.parse_args(__doc__, "activations", argv)
    acts = _common.size(args, ACTIVATIONS, ACTIVATIONS, SMOKE_ACTIVATIONS)
    lrs = np.asarray(_common.size(args, LRS_FULL, LRS_QUICK, [0.1, 1.5]))
    seeds = _common.size(args, 6, 3, 3)
    epochs = _common.size(args, 60, 30, 8)
    deep, grad_seeds = _common.size(args, (10, 16), (10, 4), (8, 2))
    key = jax.random.key(args.seed)
    data = load_digits(jax.random.fold_in(key, 0))
    ci = int(np.argmin(np.abs(lrs - COMMON_LR)))

    # (a) + (c): one fit_many per activation over the grid of learning rates × seeds.
    # The same keys for every activation: same-initialiser networks start from identical weights and
    # all see the minibatches in the same order (a paired comparison).
    k = jax.random.fold_in(key, 10)
    summary = {act: summarize(train_grid(act, data, lrs, seeds, epochs, k), lrs, seeds, ci) for act in acts}
    rows = []
    for a, s in summary.items():
        c, b = s["common_lr"], s["best_lr"]
        ratio = c["grad_ratio_first_last_per_epoch"]
        rows.append(
            (
                a,
                s["final_train_loss"][ci],
                s["final_test_accuracy"][ci],
                c["epochs_to_loss"],
                float(ratio[0]),
                float(ratio[-1]),
                s["saturated_fraction"][ci],
                b["learning_rate"],
                b["final_train_loss"],
                b["final_test_accuracy"],
            )
        )
    print(f"(a) 64-{'-'.join(map(str, HIDDEN))}-10 on digits, SGD, batch {BATCH}, {epochs} epochs, {seeds} seed(s) per rate")
    print(
        _common.table(
            rows,
            [
                "activation",
                f"loss @lr {lrs[ci]:g}",
                "test acc",
                f"epochs to loss<{TARGET_LOSS:g}",
                "‖g₁‖/‖g_L‖ ep 1",
                "‖g₁‖/‖g_L‖ last",
                "saturated",
                "best lr (on val)",
                "loss @best",
                "test acc @best",
            ],
        )
    )

    # (b): per-layer gradient norms at initialisation of a deep network (no training, no loop to compile).
    xb, yb = data[0][:PROBE], data[1][:PROBE]
    norms: dict[str, dict] = {"auto": {}, "glorot": {}}
    k = jax.random.fold_in(key, 100)  # the same draws for every activation (identical weights where the init is the same)
    for act in ACTIVATIONS:
        norms["auto"][act] = grad_norms_at_init(act, "auto", xb, yb, deep, grad_seeds, k)
        # "auto" is Glorot for sigmoid and tanh already: the same numbers, not computed twice.
        same = fnn.init.resolve("auto", act) == fnn.init.resolve("glorot", act)
        norms["glorot"][act] = norms["auto"][act] if same else grad_norms_at_init(act, "glorot", xb, yb, deep, grad_seeds, k)
    ratios = {init: {a: float(v[0] / v[-1]) for a, v in d.items()} for init, d in norms.items()}
    print(f"\n(b) 64-32×{deep}-10 at init: ‖∂E/∂W⁽¹⁾‖ / ‖∂E/∂W⁽ᴸ⁾‖ (geometric mean of {grad_seeds} seeds)")
    print(
        _common.table(
            [(a, ratios["auto"][a], ratios["glorot"][a]) for a in ACTIVATIONS], ["activation", "init auto", "init glorot"]
        )
    )

    # (c): dead ReLUs vs learning rate, Leaky ReLU for comparison.
    relu_like = [a for a in ("relu", "leaky_relu") if a in summary]
    crow = []
    for j, lr in enumerate(lrs):
        row: list = [float(lr)]
        for a in relu_like:
            s = summary[a]
            row += [
                s["dead_fraction" if a == "relu" else "negative_fraction"][j],
                s["negative_fraction_at_init"][j],
                f"{s['diverged'][j]}/{s['collapsed'][j]}",
                s["final_test_accuracy"][j],
            ]
        crow.append(row)
    print(
        f"\n(c) after {epochs} epochs: units with z ≤ 0 on all {PROBE} probe digits (ReLU: dead), mean over hidden layers"
        f" and non-diverged seeds; networks diverged / collapsed (finite, test acc < {COLLAPSED}) of {seeds}"
    )
    print(_common.table(crow, ["lr", *[f"{a} {c}" for a in relu_like for c in ("z≤0 all", "@init", "div/coll", "test acc")]]))

    figures = make_figures(args, summary, norms, lrs, ci, seeds, epochs, deep)
    headlines = make_headlines(summary, ratios, lrs, ci, seeds, epochs, deep, grad_seeds)
    setup = {
        "task": "digits (stratified 80/20 train/test; 20 % of train held out for validation; standardised on the rest)",
        "n_train": int(data[0].shape[0]),
        "n_val": int(data[2].shape[0]),
        "n_test": int(data[4].shape[0]),
        "hidden_sizes": HIDDEN,
        "batch_size": BATCH,
        "epochs": epochs,
        "seeds": seeds,
        "learning_rates": lrs,
        "common_lr": float(lrs[ci]),
        "optimizer": "sgd",
        "init": "auto (Glorot for sigmoid/tanh, He for the ReLU family)",
        "deep_hidden_layers": deep,
        "grad_seeds": grad_seeds,
    }
    results = {"setup": setup, "training": summary, "grad_norms_at_init": norms, "grad_ratio_first_last": ratios}
    return _common.finish(args, results, headlines, figures)


def make_figures(args, summary: dict, norms: dict, lrs: np.ndarray, ci: int, seeds: int, epochs: int, deep: int) -> list:
    try:
        from fnn import plot
    except ImportError as e:
        print(f"(no figures: {e})")
        return []
    figures = []
    fig, axes = plot.subplots(1, 3, size=3.5)
    plot.curves(
        axes[0],
        {a: s["common_lr"]["loss_curve"] for a, s in summary.items()},
        ylabel="training loss (cross-entropy)",
        logy=True,
        title=f"64-{'-'.join(map(str, HIDDEN))}-10 on digits, SGD lr {lrs[ci]:g}",
    )
    plot.curves(
        axes[1],
        {a: s["common_lr"]["grad_ratio_first_last_per_epoch"] for a, s in summary.items()},
        ylabel="‖∂E/∂W⁽¹⁾‖ / ‖∂E/∂W⁽ᴸ⁾‖ (epoch mean)",
        logy=True,
        title="first / last layer gradient norm",
    )
    for a, s in summary.items():
        axes[2].plot(lrs, s["final_train_loss"], marker="o", ms=3, label=a)
    axes[2].set(xscale="log", yscale="log", xlabel="SGD learning rate", ylabel=f"final training loss ({epochs} epochs)")
    axes[2].set_title("every rate (gaps: all seeds diverged)", fontsize=9)
    axes[2].grid(alpha=0.3)
    axes[2].legend(fontsize=7)
    figures.append(plot.save(fig, args.out / "curves.png"))

    fig, axes = plot.subplots(1, 2, size=3.6)
    for ax, init in zip(axes, norms):
        plot.norm_profile(ax, norms[init], title=f"{deep} hidden layers of 32 at init, init={init!r}")
    figures.append(plot.save(fig, args.out / "grad_norms.png"))

    fig, axes = plot.subplots(1, 2, size=3.6)
    for act, label in (("relu", "ReLU: dead (0 on every probe)"), ("leaky_relu", "Leaky ReLU: z ≤ 0 on every probe")):
        if act not in summary:
            continue
        s = summary[act]
        axes[0].plot(lrs, s["dead_fraction" if act == "relu" else "negative_fraction"], marker="o", label=label)
        axes[1].plot(lrs, s["final_test_accuracy"], marker="o", label=act)
        for j in np.flatnonzero(s["diverged"]):
            y = 0.15 + 0.4 * (act == "relu")
            axes[1].annotate(f"{act}: {s['diverged'][j]}/{seeds} diverged", (lrs[j], y), fontsize=6, rotation=90)
    axes[0].plot(lrs, summary["relu"]["negative_fraction_at_init"], ls=":", color="gray", label="ReLU: dead at init")
    for ax, yl in zip(axes, ("fraction of hidden units", "final test accuracy (non-diverged)")):
        ax.set(xscale="log", xlabel="SGD learning rate", ylabel=yl)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    axes[0].set_title(f"after {epochs} epochs, mean of non-diverged seeds", fontsize=9)
    figures.append(plot.save(fig, args.out / "dead_vs_lr.png"))
    return figures


def make_headlines(
    summary: dict, ratios: dict, lrs: np.ndarray, ci: int, seeds: int, epochs: int, deep: int, grad_seeds: int
) -> list[dict]:
    H = _common.headline
    relu, sig = summary["relu"], summary["sigmoid"]
    net = f"64-{'-'.join(map(str, HIDDEN))}-10 on digits, SGD batch {BATCH}, {epochs} epochs, mean of {seeds} seeds"
    headlines = []
    for a, s in summary.items():
        text = f"{{:.3g}} ({s['final_test_accuracy'][ci]:.3f}; {s['common_lr']['epochs_to_loss']:.0f})"
        headlines.append(
            H(
                f"(a) {a}, {net}: final train loss (test accuracy; epochs to loss < {TARGET_LOSS:g}), lr {lrs[ci]:g}",
                s["final_train_loss"][ci],
                fmt=text,
            )
        )
    for a, s in summary.items():
        b = s["best_lr"]
        headlines.append(
            H(
                f"(a) {a}, {net}: test accuracy at the lr chosen on validation accuracy (of {len(lrs)} rates)",
                b["final_test_accuracy"],
                fmt=f"{{:.3f}} at lr {b['learning_rate']:g} (validation {b['final_val_accuracy']:.3f})",
            )
        )
    relu_family = min(s["final_train_loss"][ci] for a, s in summary.items() if a in ("relu", "leaky_relu", "elu"))
    sig_best, relu_best = sig["best_lr"], relu["best_lr"]
    headlines += [
        H(
            f"(a) sigmoid's final train loss ÷ the best ReLU-family one, both at lr {lrs[ci]:g}",
            sig["final_train_loss"][ci] / relu_family,
            fmt="{:.3g}×",
            anchor="> 1: sigmoid trains slowest",
            ok=bool(sig["final_train_loss"][ci] > relu_family),
        ),
        H(
            "(a) sigmoid's final train loss ÷ ReLU's, each at its lr chosen on validation accuracy "
            f"(sigmoid {sig_best['learning_rate']:g}, ReLU {relu_best['learning_rate']:g})",
            sig_best["final_train_loss"] / relu_best["final_train_loss"],
            fmt="{:.3g}×",
            anchor="> 1",
            ok=bool(sig_best["final_train_loss"] > relu_best["final_train_loss"]),
        ),
    ]
    readme = ("sigmoid", "tanh", "relu", "elu")
    for a in ACTIVATIONS:
        r = ratios["auto"][a]
        if a == "sigmoid":
            anchor, ok = "< 1e-2 (vanishes: f′ ≤ 1/4 per layer)", r < 1e-2
        elif a == "tanh":
            anchor, ok = "< 1e-2 (the tutorial: tanh vanishes too)", r < 1e-2
        else:
            anchor, ok = "~ 1 (0.1 … 10: does not vanish)", 0.1 <= r <= 10
        init = "Glorot" if a in ("sigmoid", "tanh") else "He"
        claim = (
            f"(b) {a}: ‖∂E/∂W⁽¹⁾‖ / ‖∂E/∂W⁽ᴸ⁾‖ at init, {deep} hidden layers of 32 ({init} init), "
            f"geometric mean of {grad_seeds} seeds on {PROBE} training digits"
        )
        headlines.append(H(claim, r, fmt="{:.2e}", anchor=anchor, ok=bool(ok), readme=a in readme))
    finite = np.flatnonzero(np.isfinite(relu["dead_fraction"]))
    lo, hi = int(finite[0]), int(finite[-1])
    dead = relu["dead_fraction"]
    headlines.append(
        H(
            f"(c) ReLU, {net}: fraction of hidden units dead after training (0 on all {PROBE} probe digits; "
            "non-diverged seeds), smallest lr → largest lr with a non-diverged seed",
            dead[hi],
            fmt=f"{dead[lo]:.3f} at lr {lrs[lo]:g} → {{:.3f}} at lr {lrs[hi]:g}",
            anchor="rises with the lr",
            ok=bool(dead[hi] > dead[lo]),
            readme=True,
        )
    )
    high = lrs >= HIGH_LR
    for a in ("relu", "leaky_relu"):
        if a in summary:
            s = summary[a]
            n = int(high.sum()) * seeds
            claim = f"(c) {a} at lr ≥ {HIGH_LR:g}: networks collapsed (finite, test acc < {COLLAPSED:g}) / diverged, of {n}"
            collapsed = int(np.sum(s["collapsed"][high]))
            anchor, ok = ("0 collapsed: no unit loses its gradient", collapsed == 0) if a == "leaky_relu" else ("", None)
            headlines.append(H(claim, collapsed, fmt=f"{{:.0f}} / {int(np.sum(s['diverged'][high]))}", anchor=anchor, ok=ok))
    return headlines


if __name__ == "__main__":
    main()
