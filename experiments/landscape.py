"""Gradient descent walks down the loss surface: along the line from initialisation to solution, and on a 2-D slice.

The tutorial (§6) pictures training as walking downhill. Two measurements on an MLP 64-32-10
(tanh, softmax, cross-entropy) trained by plain minibatch SGD on scikit-learn's 8×8 digits
(standardised, stratified 80/20 split; the training loss is the surface):

1. The loss along the straight line θ(α) = (1 − α) θ₀ + α θ* from the initialisation θ₀ to the
   trained θ*, α ∈ [−0.25, 1.25]. Goodfellow, Vinyals & Saxe (2015, "Qualitatively characterizing
   neural network optimization problems") found it monotonically decreasing for such networks;
   measured: the largest rise between consecutive α in [0, 1], relative to the loss at θ₀.
2. The loss on the plane through θ* spanned by the top two principal directions of the training
   trajectory θ₁ − θ*, …, θ_E − θ* (one point per epoch), with the trajectory projected onto it
   (Li et al. 2018, "Visualizing the Loss Landscape of Neural Nets", §7: the path lies in a very
   low-dimensional space); measured: the fraction of the trajectory's variance the two directions
   explain, and how far the projected path descends the contours.

Run: python -m experiments.landscape [--quick] [--seed 0] [--out results/landscape]
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree

import fnn
from experiments import _common

SIZES = (64, 32, 10)
LR = 0.05
SGD = optax.sgd(LR)  # one module-level optimizer: every epoch's call reuses the compiled loop


def digits(key: jax.Array) -> tuple[np.ndarray, np.ndarray]:
    """The standardised training split (stratified 80 %) of scikit-learn's digits."""
    x, y = fnn.datasets.digits()
    x_tr, y_tr, _, _ = fnn.datasets.train_test_split(key, x, y, test_fraction=0.2, stratify=True)
    x_tr = np.asarray(x_tr, np.float32)
    return (x_tr - x_tr.mean(0)) / (x_tr.std(0) + 1e-6), np.asarray(y_tr)


def main(argv: Sequence[str] | None = None) -> dict:
    args = _common.parse_args(__doc__, "landscape", argv)
    epochs = _common.size(args, 60, 30, 4)
    grid = _common.size(args, 41, 31, 7)
    key = jax.random.key(args.seed)
    x, y = digits(jax.random.fold_in(key, 0))
    net = fnn.MLP(SIZES, hidden="tanh", output="softmax")
    params = net.init(jax.random.fold_in(key, 1))
    flat0, unravel = ravel_pytree(params)
    trajectory = [np.asarray(flat0)]
    for e in range(epochs):  # one epoch per call (plain SGD has no state to carry), the compiled loop reused
        params, _ = fnn.fit(
            net,
            params,
            (x, y),
            loss="cross_entropy",
            optimizer=SGD,
            epochs=1,
            batch_size=64,
            key=jax.random.fold_in(key, 100 + e),
            progress=False,
        )
        trajectory.append(np.asarray(ravel_pytree(params)[0]))
    path = np.stack(trajectory)  # (epochs + 1, P)
    theta0, theta_star = path[0], path[-1]

    loss_of = jax.jit(jax.vmap(lambda v: fnn.objective(net, "cross_entropy")(unravel(v), x, y)))

    # 1. the straight line from θ₀ to θ*
    alphas = np.linspace(-0.25, 1.25, 61)
    line = np.asarray(loss_of(jnp.asarray(theta0[None] + alphas[:, None] * (theta_star - theta0)[None], jnp.float32)))
    inside = (alphas >= 0) & (alphas <= 1 + 1e-9)
    rises = np.diff(line[inside])
    max_rise = float(max(rises.max(), 0.0) / line[inside][0])
    along_path = np.asarray(loss_of(jnp.asarray(path, jnp.float32)))

    # 2. the plane of the trajectory's top two principal directions, through θ*
    centred = path[:-1] - theta_star
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    explained = float((s[:2] ** 2).sum() / (s**2).sum())
    d1, d2 = vt[0], vt[1]
    coords = centred @ np.stack([d1, d2]).T  # (epochs, 2): the path projected
    pad = 0.25 * (coords.max(0) - coords.min(0)) + 1e-3
    lo, hi = np.minimum(coords.min(0), 0) - pad, np.maximum(coords.max(0), 0) + pad
    a = np.linspace(lo[0], hi[0], grid)
    b = np.linspace(lo[1], hi[1], grid)
    A, B = np.meshgrid(a, b)
    points = theta_star[None] + A.reshape(-1, 1) * d1[None] + B.reshape(-1, 1) * d2[None]
    surface = np.concatenate(
        [np.asarray(loss_of(jnp.asarray(c, jnp.float32))) for c in np.array_split(points, max(1, len(points) // 256))]
    )
    surface = surface.reshape(grid, grid)
    # the loss at the projected path points (on the plane) should fall epoch after epoch, as the real path's does
    on_plane = np.asarray(loss_of(jnp.asarray(theta_star[None] + coords @ np.stack([d1, d2]), jnp.float32)))
    plane_rises = int(np.sum(np.diff(on_plane) > 1e-6 * on_plane[0]))

    results = {
        "sizes": SIZES,
        "epochs": epochs,
        "lr": LR,
        "alphas": alphas,
        "line_loss": line,
        "path_loss": along_path,
        "max_relative_rise_on_line": max_rise,
        "monotone_on_line": bool(max_rise == 0.0),
        "explained_variance_2pc": explained,
        "singular_values": s[:10],
        "plane_path_loss": on_plane,
        "plane_path_rises": plane_rises,
        "surface": surface,
        "grid": [a, b],
    }
    print(
        f"straight line θ₀ → θ*: loss {line[inside][0]:.4f} -> {line[inside][-1]:.4f}, largest rise "
        f"{max_rise:.2e} of the start; top-2 principal directions explain {explained:.1%} of the path; "
        f"loss at the projected path rises {plane_rises} times in {epochs} epochs"
    )

    figures = []
    try:
        from fnn import plot

        fig, axes = plot.subplots(1, 2, size=3.5)
        axes[0].plot(alphas, line, "C0-", label="straight line θ(α)")
        axes[0].axvline(0, color="0.6", lw=0.6)
        axes[0].axvline(1, color="0.6", lw=0.6)
        axes[0].set_xlabel("α  (0: initialisation, 1: trained)")
        axes[0].set_ylabel("training loss")
        axes[0].set_title("monotone along the line" if max_rise == 0 else f"largest rise {max_rise:.1e}", fontsize=8)
        cs = axes[1].contour(
            A, B, surface, levels=np.quantile(surface, np.linspace(0.02, 0.95, 14)), cmap="viridis", linewidths=0.8
        )
        axes[1].clabel(cs, fontsize=5, fmt="%.2f")
        axes[1].plot(coords[:, 0], coords[:, 1], "C3.-", ms=3, lw=0.8, label="SGD path (projected)")
        axes[1].plot([0], [0], "k*", ms=8, label="θ*")
        axes[1].set_xlabel(f"PC 1 of the path ({explained:.1%} with PC 2)")
        axes[1].set_ylabel("PC 2")
        axes[1].legend(fontsize=6)
        axes[1].set_title("loss on the plane of the path's top two directions", fontsize=8)
        fig.suptitle(f"digits, MLP {'-'.join(map(str, SIZES))} tanh, SGD {LR}, {epochs} epochs", fontsize=9)
        figures.append(plot.save(fig, args.out / "landscape.png"))
    except ImportError as e:
        print(f"(no figures: {e})")

    setup = f"digits, MLP {'-'.join(map(str, SIZES))} tanh, SGD lr {LR}, batch 64, {epochs} epochs"
    headlines = [
        _common.headline(
            f"{setup}: training loss along the straight line from initialisation to the trained weights, largest rise "
            "between consecutive points (61 points, α in steps of 0.025) relative to the starting loss",
            max_rise,
            fmt=f"{{:.1e}} (loss {line[inside][0]:.3f} → {line[inside][-1]:.3f})",
            anchor="0: monotone (Goodfellow, Vinyals & Saxe 2015)",
            ok=max_rise == 0.0,
            readme=True,
        ),
        _common.headline(
            f"{setup}: fraction of the SGD trajectory's variance in its top two principal directions",
            explained,
            fmt="{:.3f}",
            anchor="most of it: the path is low-dimensional (Li et al. 2018)",
            ok=explained >= 0.5,
        ),
    ]
    return _common.finish(args, results, headlines, figures)


if __name__ == "__main__":
    main()
