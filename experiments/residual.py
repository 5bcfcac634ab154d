"""Skip connections undo the degradation of deep plain networks: deep plain MLPs train worse, residual ones do not.

He, Zhang, Ren & Sun (2016, "Deep residual learning for image recognition", CVPR; Figure 1 and
§4.1) found that a deeper plain network reaches a *higher training error* than a shallower one
(the degradation problem: not overfitting, an optimisation failure), and that the same networks
with identity skip connections, ``y = x + F(x)``, do not degrade. At MLP scale a public
replication on MNIST with width-16 MLPs reports test accuracies

    depth       2     8     32    64
    plain     0.93  0.88  0.11  0.11
    residual  0.94  0.95  0.95  0.35

(the reference numbers of the headline rows; its initialisation is not stated, and the digits
are not MNIST: compare the trends, not the values). Setup here: scikit-learn's 8×8 digits
(standardised, stratified 80/20 train/test split, 20 % of the training rows held out as a
validation split); MLPs of width 16, ReLU, softmax and cross-entropy, Adam, batch 64, a fixed
number of epochs. ``depth`` d counts the hidden dense layers, so plain and residual networks of a
depth have the same weights (the same parameter count):

* plain: ``[Dense(16), Activate("relu")] × d``, then ``Dense(10)`` (the blocks of ``fnn.blocks``);
* residual: ``Dense(16), Activate("relu")`` (64 → 16: no skip across a change of width), then
  d − 1 blocks ``Residual([Dense(16), Activate("relu")])`` — one dense layer per block,
  ``h ← h + relu(W h + b)`` (not He et al.'s two-layer block: so that the only difference from
  the plain net is the skip), then ``Dense(10)``.

Every dense layer is He-initialised (the library's "auto" before a ReLU). A residual net starts
from *the same weights* as the plain net of its seed. Unnormalised residual nets need one more
thing: each block adds a non-negative ``relu(W h)`` to h, whose squared length then grows by a
factor ≈ 2.6 per block with He weights (10⁷ in scale at depth 32), so the residual nets are
trained in two initialisations, in the same ``fit_many``: the branches' weights as He draws them
("residual, He") and scaled by 1/(d − 1) ("residual, branch ×1/L", L = d − 1 blocks), which
keeps the forward signal's scale independent of depth (the sum of the branches' scales stays
bounded, as Hanin & Rolnick 2018 require; Fixup, Zhang, Dauphin & Ma 2019, scales branches down
with depth for the same reason). The latter is *the* residual network of the verdicts.

One ``fit_many`` per (architecture, depth): learning rates × seeds (× the two initialisations
for residual nets), one compiled program each; each variant's learning rate is chosen on the
validation split (best mean final validation accuracy); the test split chooses nothing.
Reported per variant and depth: train and test accuracy, mean ± std over seeds. At
initialisation, on the training rows: ‖∂E/∂W⁽ˡ⁾‖ of every weight matrix by the hand-derived
backward pass (``fnn.manual_value_and_grad(net, loss)`` and ``net.weights(grads)``; the
tutorial's vanishing gradients) — the whole gradient's scale (geometric mean over the layers) at
the deepest depth against the shallowest, and the first layer's norm against the output
layer's — and the root mean square of the last hidden layer's output (the forward signal);
geometric means over seeds. Quick mode: depths 2 and 32, 30 epochs, 3 seeds (each depth and
architecture is a program of its own: compiling dominates the run); full mode: 2 to 64.

Run: python -m experiments.residual [--quick] [--seed 0] [--out results/residual]
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

WIDTH = 16
DEPTHS = {"full": [2, 4, 8, 16, 32, 64], "quick": [2, 32], "smoke": [2, 3]}
LRS = {"full": [1e-3, 3e-3, 1e-2], "quick": [3e-3, 1e-2], "smoke": [3e-3, 1e-2]}
OPT = optax.inject_hyperparams(optax.adam)(learning_rate=1e-3)  # one module-level optimizer: shared cache keys
VARIANTS = ("plain", "residual", "residual_he")
LABELS = {"plain": "plain", "residual": "residual, branch ×1/L", "residual_he": "residual, He (unscaled)"}
# the public MNIST replication (width 16): test accuracy by depth
REFERENCE = {"plain": {2: 0.93, 8: 0.88, 32: 0.11, 64: 0.11}, "residual": {2: 0.94, 8: 0.95, 32: 0.95, 64: 0.35}}


def network(kind: str, depth: int, n_in: int = 64, width: int = WIDTH) -> fnn.Network:
    """The plain or residual MLP of ``depth`` hidden dense layers of ``width`` ReLU units (module docstring).

    >>> [type(b).__name__ for b in network("residual", 3).blocks]
    ['Dense', 'Activate', 'Residual', 'Residual', 'Dense']
    >>> network("plain", 3).num_params == network("residual", 3).num_params
    True
    """
    relu = fnn.activations.get("relu")  # (Activate's field is typed as an Activation; "relu" works too)
    blocks: list[Any] = [fnn.blocks.Dense(width), fnn.blocks.Activate(relu)]
    for _ in range(depth - 1):
        layer = (fnn.blocks.Dense(width), fnn.blocks.Activate(relu))
        blocks += [fnn.blocks.Residual(layer)] if kind == "residual" else list(layer)
    return fnn.Network(n_in, [*blocks, fnn.blocks.Dense(10)], output="softmax")


def as_residual(plain: list, depth: int, scale: float = 1.0) -> list:
    """The residual network's parameters made of a plain network's (stacked or not): the same
    weights, the d − 1 hidden layers after the first moved into residual branches, their ``W``
    multiplied by ``scale`` (biases are 0 at initialisation).

    >>> p = network("plain", 3).init(jax.random.key(0))
    >>> r = as_residual(p, 3, scale=0.5)
    >>> w_plain, w_res = network("plain", 3).weights(p), network("residual", 3).weights(r)
    >>> [bool(jnp.allclose(a * s, b)) for a, b, s in zip(w_plain, w_res, [1, 0.5, 0.5, 1])]
    [True, True, True, True]
    """
    if len(plain) != 2 * depth + 1:
        raise ValueError(f"a plain network of depth {depth} has {2 * depth + 1} blocks, got params for {len(plain)}")
    branches = [{"blocks": [{"W": plain[i]["W"] * scale, "b": plain[i]["b"]}, {}]} for i in range(2, 2 * depth, 2)]
    return [plain[0], plain[1], *branches, plain[-1]]


def init_plain(key: jax.Array, depth: int, seeds: int, n_in: int = 64, width: int = WIDTH) -> list:
    """``seeds`` initialisations of the plain network of ``depth``, stacked (``fit_many``'s layout), as its
    "auto" initialiser draws them — He normal before each ReLU (``fnn.init.he_normal``), Glorot uniform
    for the output layer, zero biases — in one draw per shape (``net.init`` layer by layer costs seconds at
    depth 32).

    >>> p = init_plain(jax.random.key(0), 3, seeds=2)
    >>> network("plain", 3).check_params(jax.tree_util.tree_map(lambda a: a[0], p))
    >>> [tuple(q["W"].shape) for q in p[::2]]
    [(2, 16, 64), (2, 16, 16), (2, 16, 16), (2, 10, 16)]
    """
    k_first, k_hidden, k_out = jax.random.split(key, 3)
    first = fnn.init.he_normal(k_first, (seeds * width, n_in)).reshape(seeds, width, n_in)
    hidden = fnn.init.he_normal(k_hidden, (seeds * max(depth - 1, 1) * width, width)).reshape(seeds, -1, width, width)
    out = jax.vmap(lambda k: fnn.init.glorot_uniform(k, (10, width)))(jax.random.split(k_out, seeds))
    zeros = lambda n: jnp.zeros((seeds, n))
    params: list = [{"W": first, "b": zeros(width)}, {}]
    for i in range(depth - 1):
        params += [{"W": hidden[:, i], "b": zeros(width)}, {}]
    return [*params, {"W": out, "b": zeros(10)}]


def branch_scale(depth: int) -> float:
    """1/L for the L = depth − 1 residual blocks (1 when there is at most one)."""
    return 1.0 / max(depth - 1, 1)


def repeat(tree: Any, n: int) -> Any:
    """A stacked tree of N networks repeated n times along the network axis: (n·N, ...)."""
    return jax.tree_util.tree_map(lambda a: jnp.concatenate([a] * n), tree)


def geomean(a: Any, axis: int = 0) -> np.ndarray:
    return np.exp(np.mean(np.log(np.asarray(a, np.float64)), axis=axis))


def data(key: jax.Array) -> dict:
    """Standardised (fit, validation, test) splits of the digits."""
    x, y = fnn.datasets.digits()
    x_tr, y_tr, x_te, y_te = fnn.datasets.train_test_split(key, x, y, test_fraction=0.2, stratify=True)
    x_fit, y_fit, x_val, y_val = _common.carve_validation(jax.random.fold_in(key, 1), x_tr, y_tr)
    x_fit, x_val, x_te, _, _ = fnn.preprocessing.standardize(x_fit, x_val, x_te)
    return {"fit": (x_fit, y_fit), "val": (x_val, y_val), "test": (x_te, y_te)}


def at_init(net: fnn.Network, params: Any, x: jax.Array, y: jax.Array) -> tuple[np.ndarray, np.ndarray]:
    """For stacked params (N networks): ‖∂E/∂W⁽ˡ⁾‖ per weight matrix, (N, layers), by the hand-derived
    backward pass; and the RMS of the last hidden layer's output on x, (N,)."""
    vg = fnn.manual_value_and_grad(net, "cross_entropy")

    def one(p: Any) -> tuple[jax.Array, jax.Array]:
        _, grads = vg(p, x, y)
        norms = jnp.stack([jnp.linalg.norm(w) for w in net.weights(grads)])
        last_hidden = net.propagate(p, x)[1].res[-1]  # the output layer's input
        return norms, jnp.sqrt(jnp.mean(last_hidden**2))

    norms, rms = jax.jit(jax.vmap(one))(params)
    return np.asarray(norms, np.float64), np.asarray(rms, np.float64)


def accuracies(net: fnn.Network, params: Any, split: dict) -> dict[str, np.ndarray]:
    """Eval-mode accuracy of each stacked network on the fit, validation and test rows: one program."""
    names = ("fit", "val", "test")
    x = jnp.concatenate([split[s][0] for s in names])
    pred = np.asarray(jax.jit(jax.vmap(lambda p: jnp.argmax(net.propagate(p, x)[0], -1)))(params))
    out, start = {}, 0
    for s in names:
        y = np.asarray(split[s][1])
        out[s] = (pred[:, start : start + len(y)] == y).mean(axis=1)
        start += len(y)
    return out


def summarize(acc: dict, val_curve: np.ndarray, diverged: np.ndarray, lrs: np.ndarray, seeds: int) -> dict:
    """One variant at one depth: choose the learning rate on the validation split, report its seeds.

    ``acc``: accuracies per network (lr-major, seed-minor); ``val_curve`` (N, epochs)."""
    shape = (len(lrs), seeds)
    div = np.asarray(diverged).reshape(shape)
    a = {k: _common.mask_diverged(div, np.asarray(v).reshape(shape)) for k, v in acc.items()}
    i, choice = _common.choose(
        list(_common.nanmean(a["val"], axis=1)),
        by="mean final validation accuracy (non-diverged seeds)",
        learning_rate=lrs.tolist(),
        val_mean=_common.nanmean(a["val"], axis=1).tolist(),
        test_mean=_common.nanmean(a["test"], axis=1).tolist(),
    )
    return {
        "choice": choice,
        "train": a["fit"][i],
        "val": a["val"][i],
        "test": a["test"][i],
        "train_mean": float(np.nanmean(a["fit"][i])),
        "train_std": float(np.nanstd(a["fit"][i])),
        "test_mean": float(np.nanmean(a["test"][i])),
        "test_std": float(np.nanstd(a["test"][i])),
        "diverged": int(div[i].sum()),
        "val_curve": _common.nanmean(np.asarray(val_curve).reshape(*shape, -1)[i], axis=0),
    }


def main(argv: Sequence[str] | None = None) -> dict:
    args = _common.parse_args(__doc__, "residual", argv)
    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    depths, lrs = DEPTHS[mode], np.asarray(LRS[mode])
    seeds = _common.size(args, 5, 3, 2)
    epochs = _common.size(args, 60, 30, 3)
    key = jax.random.key(args.seed)
    split = data(jax.random.fold_in(key, 0))
    x_fit, y_fit = split["fit"]
    n_lr = len(lrs)
    rates = np.repeat(lrs, seeds)
    # network (lr i, seed s) shuffles with fold_in(k, s): every learning rate, architecture and
    # initialisation of a seed sees the minibatches in the same order (a paired comparison)
    k_shuffle = jax.random.fold_in(key, 2)

    def shuffle_keys(n_grid: int) -> jax.Array:
        return jax.vmap(lambda s: jax.random.fold_in(k_shuffle, s))(jnp.asarray(np.tile(np.arange(seeds), n_grid)))

    results: dict = {
        "width": WIDTH,
        "depths": depths,
        "learning_rates": lrs,
        "seeds": seeds,
        "epochs": epochs,
        "batch_size": 64,
        "n_fit": int(x_fit.shape[0]),
        "reference_mnist_width16": REFERENCE,
    }
    sweep: dict[str, dict[int, dict]] = {v: {} for v in VARIANTS}
    rows = []
    for depth in depths:
        plain_net, res_net = network("plain", depth), network("residual", depth)
        p_plain = init_plain(jax.random.fold_in(key, 100 + depth), depth, seeds)
        inits = {
            "plain": p_plain,
            "residual": as_residual(p_plain, depth, branch_scale(depth)),
            "residual_he": as_residual(p_plain, depth),
        }
        measured = {v: at_init(plain_net if v == "plain" else res_net, p, x_fit, y_fit) for v, p in inits.items()}
        fit_kw: dict[str, Any] = {
            "loss": "cross_entropy",
            "optimizer": OPT,
            "epochs": epochs,
            "batch_size": 64,
            "validation": split["val"],
            "progress": False,
        }
        # one program per architecture: plain (lrs × seeds); residual (2 initialisations × lrs × seeds)
        ps, hist = fnn.fit_many(
            plain_net,
            split["fit"],
            key=shuffle_keys(n_lr),
            params=repeat(inits["plain"], n_lr),
            hyperparams={"learning_rate": jnp.asarray(rates, jnp.float32)},
            **fit_kw,
        )
        runs = {"plain": (accuracies(plain_net, ps, split), hist["val_accuracy"], hist["diverged"])}
        ps, hist = fnn.fit_many(
            res_net,
            split["fit"],
            key=shuffle_keys(2 * n_lr),
            params=jax.tree_util.tree_map(
                lambda a, b: jnp.concatenate([a, b]), repeat(inits["residual"], n_lr), repeat(inits["residual_he"], n_lr)
            ),
            hyperparams={"learning_rate": jnp.asarray(np.tile(rates, 2), jnp.float32)},
            **fit_kw,
        )
        acc = accuracies(res_net, ps, split)
        half = n_lr * seeds
        for j, v in enumerate(("residual", "residual_he")):
            part = slice(j * half, (j + 1) * half)
            runs[v] = ({k: a[part] for k, a in acc.items()}, hist["val_accuracy"][part], hist["diverged"][part])
        for v in VARIANTS:
            r = summarize(*runs[v], lrs, seeds)
            norms, rms = measured[v]
            r.update(
                grad_norms_init=norms,  # (seeds, layers)
                grad_norms_init_geomean=geomean(norms),
                first_last_ratio=norms[:, 0] / norms[:, -1],
                first_last_ratio_geomean=float(geomean(norms[:, 0] / norms[:, -1])),
                grad_norm_all_layers_geomean=float(geomean(norms.ravel())),
                last_hidden_rms_init=rms,
                last_hidden_rms_init_geomean=float(geomean(rms)),
            )
            sweep[v][depth] = r
            ref = REFERENCE.get("plain" if v == "plain" else "residual", {}).get(depth) if v != "residual_he" else None
            rows.append(
                (
                    depth,
                    LABELS[v],
                    f"{r['choice']['learning_rate']:g}",
                    f"{r['train_mean']:.3f} ± {r['train_std']:.3f}",
                    f"{r['test_mean']:.3f} ± {r['test_std']:.3f}",
                    "" if ref is None else f"{ref:.2f}",
                    f"{r['first_last_ratio_geomean']:.3g}",
                    f"{r['last_hidden_rms_init_geomean']:.3g}",
                )
            )
    print(
        _common.table(
            rows,
            ["depth", "network", "lr", "train acc", "test acc", "MNIST ref", "‖∂E/∂W¹‖/‖∂E/∂Wᴸ‖ init", "rms h init"],
        )
    )
    results["sweep"] = sweep

    figures = []
    try:
        from fnn import plot

        fig, axes = plot.subplots(1, 3, size=3.4)
        colors = {"plain": "C3", "residual": "C0", "residual_he": "C2"}
        for ax, what in zip(axes[:2], ("train", "test")):
            for v in VARIANTS:
                m = [sweep[v][d][f"{what}_mean"] for d in depths]
                s = [sweep[v][d][f"{what}_std"] for d in depths]
                ax.errorbar(depths, m, yerr=s, fmt="o-", ms=3, capsize=2, color=colors[v], label=LABELS[v])
            if what == "test":
                for v, marker in (("plain", "s"), ("residual", "D")):
                    ax.plot(
                        list(REFERENCE[v]),
                        list(REFERENCE[v].values()),
                        marker,
                        mfc="none",
                        color=colors[v],
                        ls=":",
                        lw=0.8,
                        label=f"{v}, MNIST replication",
                    )
            ax.set_xscale("log", base=2)
            ax.set_xlabel("depth (hidden dense layers of 16)")
            ax.set_ylabel(f"{what} accuracy ({seeds} seeds, chosen lr)")
            ax.set_ylim(0, 1.02)
            ax.legend(fontsize=6)
            ax.grid(alpha=0.3)
        deep = depths[-1]
        plot.norm_profile(
            axes[2],
            {LABELS[v]: sweep[v][deep]["grad_norms_init_geomean"] for v in VARIANTS},
            title=f"depth {deep}, at initialisation ({seeds} seeds)",
        )
        for line, v in zip(axes[2].lines, VARIANTS):
            line.set_color(colors[v])
        axes[2].legend(fontsize=6)
        fig.suptitle("plain vs residual width-16 ReLU MLPs on the digits", fontsize=9)
        figures.append(plot.save(fig, args.out / "residual.png"))
    except ImportError as e:
        print(f"(no figures: {e})")

    deep, shallow = depths[-1], depths[0]
    P, R, H = sweep["plain"], sweep["residual"], sweep["residual_he"]
    setup = f"digits, width-16 ReLU MLPs, Adam, {epochs} epochs, {seeds} seeds, lr chosen on validation"

    def acc_text(r: dict, what: str = "test") -> str:
        return f"{r[f'{what}_mean']:.3f} ± {r[f'{what}_std']:.3f}"

    def grad_change(v: dict) -> float:  # the whole gradient's scale at init, deepest over shallowest
        return float(v[deep]["grad_norm_all_layers_geomean"] / v[shallow]["grad_norm_all_layers_geomean"])

    ref_deep = min(REFERENCE["plain"], key=lambda d: abs(np.log2(d / deep)))
    headlines = [
        _common.headline(
            f"{setup}: test accuracy at depth {deep}, plain vs residual (branch ×1/L)",
            R[deep]["test_mean"] - P[deep]["test_mean"],
            fmt=f"plain {acc_text(P[deep])} vs residual {acc_text(R[deep])} "
            f"(depth {shallow}: {acc_text(P[shallow])} vs {acc_text(R[shallow])}; residual with unscaled He branches "
            f"{acc_text(H[deep])})",
            anchor=f"MNIST, width 16, depth {ref_deep}: plain {REFERENCE['plain'][ref_deep]:.2f} vs residual "
            f"{REFERENCE['residual'][ref_deep]:.2f} (a public replication); He et al. 2016",
            ok=bool(np.nanmin(R[deep]["test"]) > np.nanmax(P[deep]["test"])),
            readme=True,
        ),
        _common.headline(
            f"{setup}: plain nets degrade — training accuracy at depth {deep} vs {shallow}",
            P[deep]["train_mean"] - P[shallow]["train_mean"],
            fmt=f"{{:+.3f}} ({acc_text(P[shallow], 'train')} → {acc_text(P[deep], 'train')})",
            anchor="lower training accuracy when deeper: an optimisation failure, not overfitting (He et al. 2016, Fig. 1)",
            ok=bool(P[deep]["train_mean"] < P[shallow]["train_mean"] - 0.05),
        ),
        _common.headline(
            f"{setup}: residual nets (branch ×1/L) do not — test accuracy at depth {deep} vs {shallow}",
            R[deep]["test_mean"] - R[shallow]["test_mean"],
            fmt=f"{{:+.3f}} ({acc_text(R[shallow])} → {acc_text(R[deep])})",
            anchor=f"MNIST replication: residual {REFERENCE['residual'][2]:.2f} → {REFERENCE['residual'][32]:.2f} "
            f"(depth 2 → 32), {REFERENCE['residual'][64]:.2f} at 64",
            ok=bool(R[deep]["test_mean"] >= R[shallow]["test_mean"] - 0.02),
        ),
        _common.headline(
            f"digits, depth {deep} at initialisation: RMS of the last hidden layer, residual with He branches vs ×1/L "
            f"vs plain (geometric mean of {seeds} seeds); test accuracy of the He-branch residual net",
            H[deep]["last_hidden_rms_init_geomean"],
            fmt=f"He {{:.3g}} vs ×1/L {R[deep]['last_hidden_rms_init_geomean']:.3g} vs plain "
            f"{P[deep]['last_hidden_rms_init_geomean']:.3g}; He-branch test {acc_text(H[deep])}",
            anchor="each unnormalised block adds relu(Wh) ≥ 0: the signal grows geometrically unless the branches shrink "
            "with depth (Hanin & Rolnick 2018); the replication's residual nets fail at depth 64",
            ok=bool(H[deep]["last_hidden_rms_init_geomean"] > 100 * R[deep]["last_hidden_rms_init_geomean"]),
        ),
        _common.headline(
            f"digits at initialisation, hand-derived backward pass: ‖∂E/∂W⁽ˡ⁾‖ (geometric mean over layers and "
            f"{seeds} seeds) at depth {deep} over depth {shallow}, plain vs residual (branch ×1/L); first-over-output-layer "
            f"ratio at depth {deep}",
            P[deep]["grad_norm_all_layers_geomean"] / P[shallow]["grad_norm_all_layers_geomean"],
            fmt=f"plain ×{{:.3g}} vs residual ×{grad_change(R):.3g}; ‖∂E/∂W⁽¹⁾‖/‖∂E/∂W⁽ᴸ⁾‖ plain "
            f"{P[deep]['first_last_ratio_geomean']:.2g} (seeds {np.min(P[deep]['first_last_ratio']):.2g}–"
            f"{np.max(P[deep]['first_last_ratio']):.2g}), residual {R[deep]['first_last_ratio_geomean']:.2g}",
            anchor="gradients vanish in deep plain nets (the tutorial); the skip path carries ∂E/∂h to every layer",
            ok=bool(grad_change(P) < 0.1 and 0.5 < grad_change(R) < 2),
        ),
    ]
    return _common.finish(args, results, headlines, figures)


if __name__ == "__main__":
    main()
