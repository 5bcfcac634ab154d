"""Dropout reduces overfitting: a smaller train–test gap and a higher test accuracy for a wide MLP on little data.

Srivastava, Hinton, Krizhevsky, Sutskever & Salakhutdinov (2014, JMLR 15, "Dropout: a simple way
to prevent neural networks from overfitting") drop each hidden unit with probability p during
training and use the whole network, scaled, at test time; it lowered the test error of every
network they tried (§6). Three of their measurements are repeated here: the effect of the drop
rate (§7.3, Figure 9: test error flat over a middle range of rates, worse at the extremes), of
the training-set size (§7.4, Figure 10: "for extremely small data sets (100, 500) dropout does not
give any improvements", the gain grows with the data and then declines), and the sparsity of the
hidden activations (§7.2, Figure 8: with dropout the mean activation is lower, about 0.7 against
2.0, and the histogram of activations peaks at zero).

Setup: MNIST-1D (the package's published setting, 4000 training / 1000 test sequences, generated
locally) with 20 % of the training rows (stratified) held out as a validation split, the rest
standardised; a wide MLP 40-256-256-10 (ReLU, He initialisation, softmax, cross-entropy) with
``fnn.MLP(..., dropout=p)``'s layout — ``fnn.blocks.Dropout(p)`` after each hidden ReLU (inverted dropout:
kept units scaled by 1/(1 − p) in training, the identity in eval mode, which equals their
scaling of the weights by the retention probability at test time), no input dropout, no weight
decay or max-norm; Adam 1e-3, batch 64, a fixed number of epochs. Every network is returned at
its best epoch on the validation split (``EarlyStopping(patience=epochs,
monitor="val_accuracy")``: it never stops early, it picks the epoch): so the epoch is chosen on
validation for every rate, and no rate loses for want of its own training length (dropout nets
learn more slowly; the networks without dropout get early stopping, a regulariser of their own).

* Drop rates: one ``fit_many`` per rate (the rate is part of the network) over seeds, on R rows
  (the whole fit split in the full mode); a seed starts from the same weights and sees the same
  minibatches at every rate. The rate p* is chosen on the validation split (best mean
  validation accuracy). Reported: train and test accuracy (eval mode) and the gap, mean ± std.
* Training-set sizes: the first n rows of the fit split, n from 100 to R, repeated R/n times so
  that every size trains the same number of steps through the same compiled program (an epoch
  is R rows: R/n passes over the n examples), without dropout and at p*. Reported: the gain
  test(p*) − test(0) per size.
* Sparsity: on the test set, eval mode, for the networks of the rate sweep: each ReLU hidden
  layer's mean activation, the fraction of activations that are exactly 0 (the unit is off) and
  below 0.1 (near zero; inputs are standardised), and each unit's mean activation (a histogram
  as their Figure 8).

Run: python -m experiments.dropout [--quick] [--seed 0] [--out results/dropout]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

import fnn
from experiments import _common

WIDTH = 256
NEAR_ZERO = 0.1
ADAM = optax.adam(1e-3)  # one module-level optimizer: every rate's loop shares its cache key structure
RATES = {"full": [0.0, 0.1, 0.25, 0.5, 0.75], "quick": [0.0, 0.25, 0.5], "smoke": [0.0, 0.5]}
SIZES = {"full": [100, 200, 400, 800, 1600, 3200], "quick": [100, 1600], "smoke": [80, 320]}


def network(rate: float, n_in: int = 40, width: int = WIDTH) -> fnn.Network:
    """The 2-hidden-layer ReLU MLP with ``fnn.blocks.Dropout(rate)`` after each hidden ReLU (none at rate 0)."""
    return fnn.Network.mlp((n_in, width, width, 10), "relu", "softmax", dropout=rate)


def with_dropout_slots(net: fnn.Network, base: list) -> list:
    """The parameters of a network without dropout (``base``, one dict per block) for ``net``, the same
    network with Dropout blocks inserted: an empty dict at each Dropout, the same weights elsewhere.

    >>> p = network(0.0).init(jax.random.key(0))
    >>> q = with_dropout_slots(network(0.5), p)
    >>> [sorted(d) for d in q]
    [['W', 'b'], [], [], ['W', 'b'], [], [], ['W', 'b']]
    >>> q[3]["W"] is p[2]["W"]
    True
    """
    rest = iter(base)
    out = [{} if isinstance(b, fnn.blocks.Dropout) else next(rest) for b in net.blocks]
    if next(rest, None) is not None:
        raise ValueError("`base` has more blocks than `net` without its Dropout blocks")
    return out


def tiled(n: int, rows: int) -> np.ndarray:
    """Indices of the first ``n`` rows repeated to ``rows`` entries (``np.resize``): a training set of n
    examples with the shape of one of ``rows``.

    >>> tiled(3, 7).tolist()
    [0, 1, 2, 0, 1, 2, 0]
    """
    if not 1 <= n <= rows:
        raise ValueError(f"need 1 <= n <= rows, got n={n}, rows={rows}")
    return np.resize(np.arange(n), rows)


def hidden_stats(net: fnn.Network, params: Any, x: jax.Array) -> dict[str, jax.Array]:
    """Eval-mode statistics of each ReLU hidden layer's output on x (one network, traceable): the mean
    activation, the fraction exactly 0, the fraction below ``NEAR_ZERO``, each unit's mean (layers, width)."""
    res = net.propagate(params, x)[1].res
    hs = [res[i][1] for i, b in enumerate(net.blocks) if isinstance(b, fnn.blocks.Activate)]  # Activate keeps (z, h)
    return {
        "mean": jnp.stack([jnp.mean(h) for h in hs]),
        "zero": jnp.stack([jnp.mean(h == 0) for h in hs]),
        "near_zero": jnp.stack([jnp.mean(h < NEAR_ZERO) for h in hs]),
        "unit_mean": jnp.stack([jnp.mean(h, axis=0) for h in hs]),
    }


def make_eval(net: fnn.Network) -> Any:
    """A compiled ``(stacked params, x_train, x_test) -> (train predictions, test predictions, hidden stats
    on x_test)`` for N networks; one program per network and shapes."""

    def one(p: Any, x_tr: jax.Array, x_te: jax.Array) -> tuple:
        pred = lambda x: jnp.argmax(net.propagate(p, x)[0], axis=-1)
        return pred(x_tr), pred(x_te), hidden_stats(net, p, x_te)

    return jax.jit(jax.vmap(one, in_axes=(0, None, None)))


def data(key: jax.Array, smoke: bool) -> dict:
    """Standardised (fit, validation, test) splits of MNIST-1D."""
    x_tr, y_tr, x_te, y_te = fnn.datasets.mnist1d(num_samples=1000 if smoke else 5000)
    x_fit, y_fit, x_val, y_val = _common.carve_validation(key, x_tr, y_tr)
    x_fit, x_val, x_te, _, _ = fnn.preprocessing.standardize(x_fit, x_val, x_te)
    return {"fit": (x_fit, y_fit), "val": (x_val, y_val), "test": (x_te, y_te)}


def paired_gain(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Mean and standard error of the seed-paired differences b − a.

    >>> [round(v, 4) for v in paired_gain(np.array([0.5, 0.6, 0.7]), np.array([0.6, 0.6, 0.9]))]
    [0.1, 0.0577]
    """
    d = np.asarray(b, float) - np.asarray(a, float)
    se = float(np.std(d, ddof=1) / np.sqrt(len(d))) if len(d) > 1 else float("nan")
    return float(np.mean(d)), se


def main(argv: Sequence[str] | None = None) -> dict:
    args = _common.parse_args(__doc__, "dropout", argv)
    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    rates, sizes = RATES[mode], SIZES[mode]
    seeds = _common.size(args, 3, 2, 2)
    epochs = _common.size(args, 100, 50, 3)
    rows_per_epoch = sizes[-1]  # R: the rate sweep's training set; smaller sets are tiled to it
    key = jax.random.key(args.seed)
    split = data(jax.random.fold_in(key, 0), args.smoke)
    x_fit, y_fit = (np.asarray(a) for a in split["fit"])
    x_te, y_te = split["test"]
    y_te_np = np.asarray(y_te)
    base = network(0.0)
    params0 = base.init_stacked(jax.random.fold_in(key, 1), seeds)  # seed s: the same weights at every rate
    k_fit = jax.random.fold_in(key, 2)  # the same minibatch order (and per-network keys) in every call
    nets = {p: network(p) for p in rates}
    evals = {p: make_eval(nets[p]) for p in rates}

    def train(p: float, n: int) -> dict:
        idx = tiled(n, rows_per_epoch)
        xs, ys = x_fit[idx], y_fit[idx]
        ps, hist = fnn.fit_many(
            nets[p],
            (xs, ys),
            loss="cross_entropy",
            optimizer=ADAM,
            epochs=epochs,
            batch_size=64,
            key=k_fit,
            params=with_dropout_slots(nets[p], params0),
            validation=split["val"],
            early_stopping=fnn.EarlyStopping(epochs, monitor="val_accuracy"),
            progress=False,
        )
        pred_tr, pred_te, stats = evals[p](ps, xs, x_te)
        train_acc = (np.asarray(pred_tr) == ys).mean(axis=1)
        test_acc = (np.asarray(pred_te) == y_te_np).mean(axis=1)
        val = np.asarray(hist["val_accuracy"])
        best = np.asarray(hist["best_epoch"])
        return {
            "rate": p,
            "n_train": n,
            "train": train_acc,
            "test": test_acc,
            "gap": train_acc - test_acc,
            "val": val[np.arange(seeds), best],
            "best_epoch": best + 1,
            "diverged": np.asarray(hist["diverged"]),
            "val_curve": val,
            "hidden": {k: np.asarray(v) for k, v in stats.items()},
        }

    def summary(r: dict) -> dict:
        return {
            f"{k}_{s}": float(f(r[k]))
            for k in ("train", "test", "gap", "val", "best_epoch")
            for s, f in (("mean", np.mean), ("std", np.std))
        }

    # ---- drop rates, on R rows ----
    sweep = [train(p, rows_per_epoch) for p in rates]
    for r in sweep:
        r.update(summary(r))
    i_best, choice = _common.choose(
        [r["val_mean"] for r in sweep],
        by="mean validation accuracy at each network's best epoch",
        rate=rates,
        val_mean=[r["val_mean"] for r in sweep],
        test_mean=[r["test_mean"] for r in sweep],
    )
    p_star = rates[i_best]
    none, best = sweep[0], sweep[i_best]
    print(
        _common.table(
            [
                (
                    r["rate"],
                    f"{r['train_mean']:.3f} ± {r['train_std']:.3f}",
                    f"{r['val_mean']:.3f}",
                    f"{r['test_mean']:.3f} ± {r['test_std']:.3f}",
                    f"{r['gap_mean']:.3f} ± {r['gap_std']:.3f}",
                    f"{r['best_epoch_mean']:.0f}",
                    " / ".join(f"{m:.2f}" for m in r["hidden"]["mean"].mean(axis=0)),
                    " / ".join(f"{m:.2f}" for m in r["hidden"]["zero"].mean(axis=0)),
                )
                for r in sweep
            ],
            ["drop rate", "train acc", "val acc", "test acc", "gap", "best epoch", "mean h (layer 1/2)", "h = 0 (1/2)"],
        )
    )

    # ---- training-set sizes: without dropout and at p*, the same steps for every size ----
    by_size: list[dict] = []
    for n in sizes:
        if n == rows_per_epoch:
            pair = (none, best)
        else:
            r0 = train(0.0, n)
            pair = (r0, train(p_star, n) if p_star > 0 else r0)
        gain, se = paired_gain(pair[0]["test"], pair[1]["test"])
        by_size.append(
            {
                "n_train": n,
                "passes_per_epoch": rows_per_epoch // n,
                "test_none": pair[0]["test"],
                "test_dropout": pair[1]["test"],
                "train_none": pair[0]["train"],
                "train_dropout": pair[1]["train"],
                "gain_mean": gain,
                "gain_se": se,
            }
        )
    print(
        _common.table(
            [
                (
                    s["n_train"],
                    f"{np.mean(s['train_none']):.3f} / {np.mean(s['train_dropout']):.3f}",
                    f"{np.mean(s['test_none']):.3f} / {np.mean(s['test_dropout']):.3f}",
                    f"{s['gain_mean']:+.3f} ± {s['gain_se']:.3f}",
                )
                for s in by_size
            ],
            ["n train", f"train acc p=0 / p={p_star:g}", f"test acc p=0 / p={p_star:g}", "gain (± s.e.)"],
        )
    )

    results = {
        "data": "MNIST-1D",
        "n_fit": int(x_fit.shape[0]),
        "n_val": int(split["val"][0].shape[0]),
        "n_test": int(x_te.shape[0]),
        "rows_per_epoch": rows_per_epoch,
        "width": WIDTH,
        "rates": rates,
        "sizes": sizes,
        "seeds": seeds,
        "epochs": epochs,
        "batch_size": 64,
        "near_zero": NEAR_ZERO,
        "choice": choice,
        "rate_sweep": sweep,
        "size_sweep": by_size,
    }

    figures = []
    try:
        from fnn import plot

        fig, axes = plot.subplots(1, 4, size=3.2)
        ax = axes[0]
        for what, color in (("train", "C0"), ("test", "C3"), ("gap", "0.4")):
            ax.errorbar(
                rates,
                [r[f"{what}_mean"] for r in sweep],
                yerr=[r[f"{what}_std"] for r in sweep],
                fmt="o-",
                ms=3,
                capsize=2,
                color=color,
                label=what if what != "gap" else "gap (train − test)",
            )
        ax.axvline(p_star, color="0.6", ls="--", lw=0.8, label=f"chosen p* = {p_star:g}")
        ax.set_xlabel("drop rate p")
        ax.set_ylabel(f"accuracy ({seeds} seeds, best epoch)")
        ax.set_title(f"{rows_per_epoch} training rows", fontsize=9)
        ax.legend(fontsize=6)
        ax.grid(alpha=0.3)
        ax = axes[1]
        ns = [s["n_train"] for s in by_size]
        color_of = {r: f"C{i}" for i, r in enumerate(rates)}  # as the training curves draw them
        for what, label, color in (("test_none", "p = 0", color_of[0.0]), ("test_dropout", f"p = {p_star:g}", color_of[p_star])):
            m = [np.mean(s[what]) for s in by_size]
            sd = [np.std(s[what]) for s in by_size]
            ax.errorbar(ns, m, yerr=sd, fmt="o-", ms=3, capsize=2, color=color, label=f"test, {label}")
        ax.set_xscale("log")
        ax.set_xlabel("training examples (same steps for each)")
        ax.set_ylabel("test accuracy")
        ax.set_title("training-set size (their Fig. 10)", fontsize=9)
        ax.legend(fontsize=6)
        ax.grid(alpha=0.3)
        ax = axes[2]
        layer = -1
        top = max(float(np.max(r["hidden"]["unit_mean"][0, layer])) for r in (none, best))
        bins = np.linspace(0, top, 30)
        for r, label, color in ((none, "p = 0", color_of[0.0]), (best, f"p = {p_star:g}", color_of[p_star])):
            ax.hist(r["hidden"]["unit_mean"][0, layer], bins=bins, alpha=0.5, color=color, label=label)
        ax.set_xlabel("a unit's mean activation (test set)")
        ax.set_ylabel("units (hidden layer 2, seed 0)")
        ax.set_title("sparsity (their Fig. 8)", fontsize=9)
        ax.legend(fontsize=6)
        plot.curves(
            axes[3],
            {f"p = {r['rate']:g}": r["val_curve"].mean(axis=0) for r in sweep},
            ylabel="validation accuracy (mean of seeds)",
            title="training curves",
        )
        fig.suptitle(f"dropout on MNIST-1D, 40-{WIDTH}-{WIDTH}-10 ReLU, Adam, {epochs} epochs", fontsize=9)
        figures.append(plot.save(fig, args.out / "dropout.png"))
    except ImportError as e:
        print(f"(no figures: {e})")

    setup = (
        f"MNIST-1D, {rows_per_epoch} training rows, 40-{WIDTH}-{WIDTH}-10 ReLU, Adam, {epochs} epochs "
        f"(best epoch on validation), {seeds} seeds"
    )
    gain, gain_se = paired_gain(none["test"], best["test"])
    gap_cut = none["gap"] - best["gap"]
    gains = [s["gain_mean"] for s in by_size]
    h0, h1 = none["hidden"], best["hidden"]
    m0, m1 = h0["mean"].mean(axis=0), h1["mean"].mean(axis=0)
    z0, z1 = h0["zero"].mean(axis=0), h1["zero"].mean(axis=0)
    nz0, nz1 = h0["near_zero"].mean(axis=0), h1["near_zero"].mean(axis=0)
    headlines = [
        _common.headline(
            f"{setup}: test accuracy without dropout vs at the drop rate chosen on validation (p* = {p_star:g})",
            gain,
            fmt=f"{none['test_mean']:.3f} ± {none['test_std']:.3f} → {best['test_mean']:.3f} ± {best['test_std']:.3f} "
            f"({{:+.3f}} ± {gain_se:.3f} s.e., paired; best epoch {none['best_epoch_mean']:.0f} vs "
            f"{best['best_epoch_mean']:.0f} of {epochs})",
            anchor="higher with dropout: lower test error on every benchmark (Srivastava et al. 2014, §6)",
            ok=bool(p_star > 0 and np.all(best["test"] > none["test"])),
            readme=True,
        ),
        _common.headline(
            f"{setup}: generalisation gap (train − test accuracy), p = 0 vs p* = {p_star:g}",
            float(np.mean(best["gap"])),
            fmt=f"{none['gap_mean']:.3f} ± {none['gap_std']:.3f} → {{:.3f}} ± {best['gap_std']:.3f} "
            f"(train {none['train_mean']:.3f} → {best['train_mean']:.3f})",
            anchor="smaller with dropout: it prevents overfitting (Srivastava et al. 2014, title and §1)",
            ok=bool(p_star > 0 and np.all(gap_cut > 0)),
        ),
        _common.headline(
            f"{setup}: test accuracy by drop rate",
            float(best["test_mean"]),
            fmt=", ".join(f"p {r['rate']:g}: {r['test_mean']:.3f}" for r in sweep),
            anchor="flat over a middle range, worse at the extremes (§7.3, Fig. 9: retention 0.4–0.8 about equal)",
            ok=None,
        ),
        _common.headline(
            f"MNIST-1D, 40-{WIDTH}-{WIDTH}-10, the same {epochs}×{rows_per_epoch} examples' steps for every size, "
            f"{seeds} seeds: test-accuracy gain from dropout (p* = {p_star:g}) by training-set size",
            gains[0],
            fmt=", ".join(f"{s['n_train']}: {s['gain_mean']:+.3f}" for s in by_size),
            anchor="little or no gain for the smallest sets, more with more data (§7.4, Fig. 10): smallest < half the largest",
            ok=bool(len(gains) > 1 and gains[0] < 0.5 * max(gains[1:])),
        ),
        _common.headline(
            f"{setup}: hidden layers 1 / 2 on the test set (eval mode), p = 0 vs p* = {p_star:g}: mean activation; "
            f"fraction exactly 0; fraction < {NEAR_ZERO:g}",
            float(np.mean(m1 - m0)),
            fmt=f"mean {m0[0]:.2f}/{m0[1]:.2f} → {m1[0]:.2f}/{m1[1]:.2f}; zero {z0[0]:.2f}/{z0[1]:.2f} → "
            f"{z1[0]:.2f}/{z1[1]:.2f}; near zero {nz0[0]:.2f}/{nz0[1]:.2f} → {nz1[0]:.2f}/{nz1[1]:.2f}",
            anchor="sparser with dropout: lower mean activation (≈ 2.0 → 0.7 in their Fig. 8), more activations at 0",
            ok=bool(p_star > 0 and np.all(m1 < m0) and np.all(z1 > z0)),
        ),
    ]
    return _common.finish(args, results, headlines, figures)


if __name__ == "__main__":
    main()
