"""More units are not always better — but past the interpolation threshold, test error can fall again (double descent).

The tutorial (§2) warns that a bigger network overfits. The ``capacity`` experiment shows the
classical rise of test error on 4 sizes. Modern results qualify it: test error can peak where the
network just manages to fit the training set (the interpolation threshold) and fall again as the
network grows (Belkin et al. 2019, "Reconciling modern machine-learning practice and the
bias–variance trade-off"; Nakkiran et al. 2019, "Deep double descent"; the MNIST-1D paper
reproduces it with MLPs). Setup in their spirit: the first 500 rows of MNIST-1D's training set
with 15 % of their labels redrawn uniformly at random (label noise; a redrawn label may
equal the true one), the clean 1000-row test set; one hidden layer of w ReLU units (40-w-10,
softmax, cross-entropy), Adam 1e-3, batch 100, trained long enough to interpolate (2000 epochs,
full mode 4000), no early stopping, no weight decay; a dense sweep of widths through the threshold
(3 seeds each, full mode 5). The widths up to 64 train in one ``fit_many`` call, each zero-padded to
width 64 (one compiled program instead of eight; the padded units stay zero, so each network is its
own width's), then up to 256 and up to 1024 likewise; each width keeps the initial parameters and
shuffling keys that ``fit_many(key=fold_in(key, w), num_networks=seeds)`` would draw for it.

Measured per width: training error on the noisy labels and test error (mean ± std over seeds).
The interpolation threshold is the smallest width whose mean training error is below 1 %; the
parameter count n·K (training examples × classes) is marked too, the threshold the papers quote
for the squared loss. Verdict, honestly: where test error rises with size ("bigger overfits":
from the best width below the peak to the peak), whether the peak sits at the threshold (within
a factor 2 in width), and where it falls again ("bigger helps again": from the peak to the
largest width, beyond 2 standard errors of the seeds).

Run: python -m experiments.double_descent [--quick] [--seed 0] [--out results/double_descent]
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

NOISE = 0.15
ADAM = optax.adam(1e-3)  # one module-level optimizer: every width's loop shares its cache key structure
WIDTHS = {
    "full": [2, 4, 6, 8, 12, 16, 20, 24, 32, 48, 64, 96, 128, 256, 512, 1024],
    "quick": [4, 8, 12, 16, 24, 32, 48, 64, 128, 256, 512],
    "smoke": [4, 16, 64],
}
PAD_GROUPS = (64, 256, 1024)  # widths up to 64 share one padded program, then up to 256, then up to 1024


def pad_groups(widths: Sequence[int], bounds: Sequence[int] = PAD_GROUPS) -> list[list[int]]:
    """The widths grouped for one padded program each: by the first bound each fits under (a width
    above every bound alone); each group is padded to its own widest member.

    >>> pad_groups([4, 16, 32, 64, 256, 512, 2048])
    [[4, 16, 32, 64], [256], [512], [2048]]
    """
    groups: dict[Any, list[int]] = {}
    for w in sorted(widths):
        bound = next((b for b in bounds if w <= b), ("alone", w))
        groups.setdefault(bound, []).append(w)
    return list(groups.values())


def pad_hidden(params: list[dict], width: int) -> list[dict]:
    """Stacked parameters of 40-w-10 networks (``W``: (N, out, in)) as 40-``width``-10 networks whose
    extra hidden units have zero in-weights, bias and out-weights: the same function, and (the unit's
    ReLU input and output both 0, its out-weights 0) zero gradients for them, so training keeps them zero."""
    (first, second) = params
    extra = width - first["W"].shape[1]
    if extra < 0:
        raise ValueError(f"cannot pad {first['W'].shape[1]} hidden units down to {width}")
    return [
        {"W": jnp.pad(first["W"], ((0, 0), (0, extra), (0, 0))), "b": jnp.pad(first["b"], ((0, 0), (0, extra)))},
        {"W": jnp.pad(second["W"], ((0, 0), (0, 0), (0, extra))), "b": second["b"]},
    ]


def noisy_labels(y: np.ndarray, fraction: float, seed: int, classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """``y`` with ``fraction`` of its entries replaced by uniformly random classes (which may equal
    the true one), and the mask of the replaced entries.

    >>> y, replaced = noisy_labels(np.zeros(1000, int), 0.15, 0)
    >>> bool(abs(replaced.mean() - 0.15) < 0.03), bool((y[~replaced] == 0).all())
    (True, True)
    """
    rng = np.random.default_rng(seed)
    replaced = rng.random(y.shape[0]) < fraction
    noisy = y.copy()
    noisy[replaced] = rng.integers(0, classes, int(replaced.sum()))
    return noisy, replaced


def main(argv: Sequence[str] | None = None) -> dict:
    args = _common.parse_args(__doc__, "double_descent", argv)
    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    n = _common.size(args, 500, 500, 200)
    seeds = _common.size(args, 5, 3, 2)
    epochs = _common.size(args, 4000, 2000, 50)
    x_tr, y_tr, x_te, y_te = fnn.datasets.mnist1d()
    x, y_clean = np.asarray(x_tr)[:n], np.asarray(y_tr)[:n]
    y, replaced = noisy_labels(y_clean, NOISE, args.seed)
    x_te, y_te = np.asarray(x_te), np.asarray(y_te)
    key = jax.random.key(args.seed)
    rows, sweep = [], []
    # Each width draws its initial parameters and shuffling keys as fit_many(key=fold_in(key, w),
    # num_networks=seeds) would; the widths of a pad group train as one padded fit_many call (one
    # compiled program: the extra hidden units have zero weights in and out, so they stay zero and the
    # function is the width's own; sums that include their zeros may round differently).
    results_by_width: dict[int, tuple] = {}
    for group in pad_groups(WIDTHS[mode]):
        wide = max(group)
        net = fnn.MLP((40, wide, 10), hidden="relu", output="softmax")
        parts, keys = [], []
        for w in group:
            init_key, shuffle_key = jax.random.split(jax.random.fold_in(key, w))
            parts.append(pad_hidden(fnn.MLP((40, w, 10), hidden="relu", output="softmax").init_stacked(init_key, seeds), wide))
            keys.append(jax.random.split(shuffle_key, seeds))
        ps, hist = fnn.fit_many(
            net,
            (x, y),
            loss="cross_entropy",
            optimizer=ADAM,
            epochs=epochs,
            batch_size=100,
            key=jnp.concatenate(keys),
            params=jax.tree.map(lambda *a: jnp.concatenate(a), *parts),
            progress=False,
        )
        train_err = 1 - _common.evaluate_stacked(net, "cross_entropy", ps, x, y)["accuracy"]
        test_err = 1 - _common.evaluate_stacked(net, "cross_entropy", ps, x_te, y_te)["accuracy"]
        diverged = np.asarray(hist["diverged"])
        for g, w in enumerate(group):
            part = slice(g * seeds, (g + 1) * seeds)
            results_by_width[w] = (train_err[part], test_err[part], diverged[part])
    for w in WIDTHS[mode]:
        net = fnn.MLP((40, w, 10), hidden="relu", output="softmax")
        train_err, test_err, diverged = results_by_width[w]
        r = {
            "width": w,
            "params": net.num_params,
            "train_error": train_err,
            "test_error": test_err,
            "train_mean": float(train_err.mean()),
            "test_mean": float(test_err.mean()),
            "test_std": float(test_err.std()),
            "diverged": diverged,
        }
        sweep.append(r)
        rows.append((w, net.num_params, f"{r['train_mean']:.3f}", f"{r['test_mean']:.3f} ± {r['test_std']:.3f}"))
    print(_common.table(rows, ["width", "params", f"train error ({NOISE:.0%} noisy labels)", f"test error ({seeds} seeds)"]))

    test = np.asarray([r["test_mean"] for r in sweep])
    params = np.asarray([r["params"] for r in sweep])
    interp = next((i for i, r in enumerate(sweep) if r["train_mean"] < 0.01), None)
    peak = int(np.argmax(test))
    before = int(np.argmin(test[: peak + 1])) if peak > 0 else 0  # the best size up to the peak
    results = {
        "n_train": n,
        "label_noise": NOISE,
        "replaced": int(replaced.sum()),
        "seeds": seeds,
        "epochs": epochs,
        "sweep": sweep,
        "interpolation_width": None if interp is None else sweep[interp]["width"],
        "peak_width": sweep[peak]["width"],
        "nK_params": n * 10,
    }

    figures = []
    try:
        from matplotlib.ticker import NullFormatter

        from fnn import plot

        fig, (ax, bx) = plot.subplots(1, 2, size=3.4)
        for axis in (ax, bx):
            if interp is not None:
                axis.axvline(params[interp], color="0.4", ls="--", lw=0.8, label="interpolation (train error < 1%)")
            axis.axvline(n * 10, color="0.6", ls=":", lw=0.8, label="n·K parameters")
            axis.set_xscale("log")
            axis.xaxis.set_minor_formatter(NullFormatter())
            axis.set_xlabel("parameters (40-w-10 ReLU)")
        ax.plot(params, [r["train_mean"] for r in sweep], "o-", color="C0", label="train error (noisy labels)")
        ax.plot(params, test, "o-", color="C3", label="test error")
        ax.set_ylabel("error")
        ax.set_title("train and test error", fontsize=9)
        ax.legend(fontsize=6)
        bx.errorbar(
            params,
            test,
            yerr=[r["test_std"] for r in sweep],
            fmt="o-",
            color="C3",
            capsize=2,
            label=f"test error ({seeds} seeds)",
        )
        bx.plot(params[peak], test[peak], "v", color="k", ms=7, label=f"peak (w {sweep[peak]['width']})")
        bx.set_ylabel("test error (zoomed)")
        bx.set_title("test error near the threshold", fontsize=9)
        bx.legend(fontsize=6)
        fig.suptitle(f"double descent? MNIST-1D, {n} examples, {NOISE:.0%} label noise, {epochs} epochs of Adam", fontsize=9)
        figures.append(plot.save(fig, args.out / "double_descent.png"))
    except ImportError as e:
        print(f"(no figures: {e})")

    rise = float(test[peak] - test[before])
    fall = float(test[peak] - test[-1])

    def se(i: int, j: int) -> float:  # standard error of a difference of two widths' mean test errors (sample std)
        var = [np.var(np.asarray(sweep[k]["test_error"]), ddof=1) if seeds > 1 else 0.0 for k in (i, j)]
        return float(np.sqrt(sum(var) / seeds))

    last = len(sweep) - 1
    setup = f"MNIST-1D, {n} training examples with {NOISE:.0%} label noise, 40-w-10 ReLU, Adam, {epochs} epochs, {seeds} seeds"
    at_threshold = interp is not None and abs(np.log2(sweep[peak]["width"] / sweep[interp]["width"])) <= 1
    headlines = [
        _common.headline(
            f"{setup}: test error at its peak (width {sweep[peak]['width']}) minus at the largest width ({sweep[-1]['width']}); "
            f"the peak against the interpolation threshold (width "
            f"{'—' if interp is None else sweep[interp]['width']}, train error < 1%)",
            fall,
            fmt=f"{{:+.3f}} (peak {test[peak]:.3f}, largest {test[-1]:.3f}, ± {se(peak, last):.3f} s.e.; "
            f"peak {'at' if at_threshold else 'not at'} the threshold)",
            anchor="> 0 beyond 2 s.e., peak at the threshold: double descent (Nakkiran et al. 2019)",
            ok=bool(fall > 2 * se(peak, last) and at_threshold),
            readme=True,
        ),
        _common.headline(
            f"{setup}: test error rise from the best size below the peak (width {sweep[before]['width']}) to the peak",
            rise,
            fmt=f"{{:+.3f}} ({test[before]:.3f} → {test[peak]:.3f}, ± {se(before, peak):.3f} s.e.)",
            anchor="> 0 beyond 2 s.e.: the classical 'bigger overfits' regime, up to the threshold (the tutorial, §2)",
            ok=bool(peak > 0 and rise > 2 * se(before, peak)),
        ),
        _common.headline(
            f"{setup}: test error at the largest width ({sweep[-1]['width']}) minus at the best width below the peak "
            f"(width {sweep[before]['width']})",
            float(test[-1] - test[before]),
            fmt=f"{{:+.3f}} ({test[before]:.3f} → {test[-1]:.3f}, ± {se(before, last):.3f} s.e.)",
            anchor="< 0 beyond 2 s.e.: past the threshold the biggest network is the best one (Belkin et al. 2019)",
            ok=bool(test[-1] - test[before] < -2 * se(before, last)),
        ),
    ]
    return _common.finish(args, results, headlines, figures)


if __name__ == "__main__":
    main()
