"""Differentiating E with respect to each parameter directly grows exponentially with depth; backprop's reuse makes it linear.

The tutorial's naive method (§4.1) is the chain rule written out for one parameter at a time: for a
weight W⁽ˡ⁾ᵢⱼ, ∂E/∂W⁽ˡ⁾ᵢⱼ = h⁽ˡ⁻¹⁾ⱼ · ∂E/∂z⁽ˡ⁾ᵢ, and ∂E/∂z⁽ˡ⁾ᵢ = f′(z⁽ˡ⁾ᵢ) Σₖ W⁽ˡ⁺¹⁾ₖᵢ ∂E/∂z⁽ˡ⁺¹⁾ₖ
expanded recursively down to the output, with nothing kept between calls: each parameter sums over
every path from its unit to the output, ∏ₖ₍ₖ₎ₗ₎ nₖ of them, so the work grows like width^depth.
Backpropagation is the same recursion with each δ⁽ˡ⁾ᵢ = ∂E/∂z⁽ˡ⁾ᵢ computed once and reused (dynamic
programming): its work is linear in the number of parameters P. Central finite differences, two
forward passes per parameter, are quadratic in P.

All three run here in plain Python/NumPy float64 on one example (a tanh MLP of width w and depth D,
one linear output, E = ½(y − d)²), in the same scalar code, so their operation counts (multiplies
and adds, counted as they run) and their times compare like for like. The counts are checked
against their closed forms, and the gradients against ``jax.grad`` of an independently written
forward pass. Two sweeps: depth 1 … D at width 3, and width 2 … w at depth 3.

References: the tutorial's claim; Griewank & Walther (2008), *Evaluating Derivatives*, the cheap
gradient principle (reverse mode costs a small constant times the function, ≤ 4 in their operation
count model); Baydin et al. (2018), *Automatic differentiation in machine learning: a survey*.

Run: python -m experiments.chain_rule [--quick] [--seed 0] [--out results/chain_rule]
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from experiments import _common

N_IN = 3
DEPTH_WIDTH = 3  # the depth sweep's width: paths multiply by it per added layer
WIDTH_DEPTH = 3  # the width sweep's depth (hidden layers)


class Net:
    """A tanh MLP ``(N_IN, w × depth, 1)`` on one example, its forward pass kept (float64 NumPy)."""

    def __init__(self, width: int, depth: int, rng: np.random.Generator) -> None:
        self.sizes = (N_IN,) + (width,) * depth + (1,)
        self.W = [rng.normal(0, 1 / math.sqrt(i), (o, i)) for i, o in zip(self.sizes, self.sizes[1:])]
        self.b = [rng.normal(0, 0.1, o) for o in self.sizes[1:]]
        self.x, self.d = rng.normal(size=N_IN), float(rng.normal())
        self.L = len(self.W)
        self.h, self.fp = self.forward(self.W, self.b)

    def forward(self, W: list, b: list) -> tuple[list, list]:
        """Every layer's output h⁽ˡ⁾ (h⁽⁰⁾ = x) and tanh′ of the hidden layers."""
        h, fp = [self.x], [None]
        for l in range(self.L):
            z = W[l] @ h[-1] + b[l]
            hidden = l < self.L - 1
            h.append(np.tanh(z) if hidden else z)
            fp.append(1 - np.tanh(z) ** 2 if hidden else None)
        return h, fp

    @property
    def num_params(self) -> int:
        return sum(w.size + b.size for w, b in zip(self.W, self.b))

    def loss(self, W: list, b: list) -> float:
        return 0.5 * (self.forward(W, b)[0][-1][0] - self.d) ** 2


def chain_rule(net: Net, reuse: bool) -> tuple[list, list, int]:
    """∂E/∂W⁽ˡ⁾ and ∂E/∂b⁽ˡ⁾ by the recursion over paths; ``reuse``: each δ once (backprop), else
    every parameter expands its own paths (the naive method). Returns (dW, db, operations)."""
    ops = 0
    memo: dict[tuple[int, int], float] = {}

    def delta(l: int, i: int) -> float:  # ∂E/∂z⁽ˡ⁾ᵢ, layers 1 … L
        nonlocal ops
        if reuse and (l, i) in memo:
            return memo[(l, i)]
        if l == net.L:
            ops += 1
            value = net.h[l][i] - net.d  # y − d
        else:
            s = 0.0
            for k in range(net.sizes[l + 1]):
                s += net.W[l][k, i] * delta(l + 1, k)  # W⁽ˡ⁺¹⁾ is net.W[l]
                ops += 2
            ops += 1
            value = s * net.fp[l][i]
        if reuse:
            memo[(l, i)] = value
        return value

    dW = [np.zeros_like(w) for w in net.W]
    db = [np.zeros_like(b) for b in net.b]
    for l in range(1, net.L + 1):
        for i in range(net.sizes[l]):
            for j in range(net.sizes[l - 1]):
                dW[l - 1][i, j] = delta(l, i) * net.h[l - 1][j]
                ops += 1
            db[l - 1][i] = delta(l, i)
    return dW, db, ops


def count_formulas(sizes: Sequence[int]) -> dict[str, int]:
    """The operation counts :func:`chain_rule` and :func:`finite_differences` make, in closed form.

    A naive δ⁽ˡ⁾ costs C(l) = n₍ₗ₊₁₎ (2 + C(l+1)) + 1 with C(L) = 1 (≈ 3 × the ∏ₖ₍ₖ₎ₗ₎ nₖ paths to
    the output); the naive method pays it for each of layer l's n₍ₗ₋₁₎ + 1 parameters per unit.
    Backprop pays C once per unit with each C(l+1) replaced by its stored value.
    """
    L = len(sizes) - 1
    C = [0] * (L + 1)
    C[L] = 1
    for l in range(L - 1, 0, -1):
        C[l] = sizes[l + 1] * (2 + C[l + 1]) + 1
    weights = sum(sizes[l] * sizes[l - 1] for l in range(1, L + 1))
    naive = sum(sizes[l] * (sizes[l - 1] + 1) * C[l] for l in range(1, L + 1)) + weights
    backprop = 1 + sum(sizes[l] * (2 * sizes[l + 1] + 1) for l in range(1, L)) + weights
    forward = sum(sizes[l] * (2 * sizes[l - 1] + 1) for l in range(1, L + 1)) + sum(sizes[1:L])  # products, biases, tanh
    P = weights + sum(sizes[1:])
    return {
        "naive": naive,
        "backprop": backprop,
        "forward": forward,
        "finite_differences": 2 * P * forward,
        "paths_from_first_layer": math.prod(sizes[2:]),
    }


def finite_differences(net: Net, eps: float = 1e-6) -> tuple[list, list]:
    """Central differences, (E(θ + ε) − E(θ − ε)) / 2ε, one parameter at a time: two forward passes each."""
    grads = []
    for group in (net.W, net.b):
        out = []
        for a in group:
            g = np.zeros_like(a)
            for idx in np.ndindex(a.shape):
                old = a[idx]
                a[idx] = old + eps
                up = net.loss(net.W, net.b)
                a[idx] = old - eps
                down = net.loss(net.W, net.b)
                a[idx] = old
                g[idx] = (up - down) / (2 * eps)
            out.append(g)
        grads.append(out)
    return grads[0], grads[1]


def jax_grads(net: Net) -> tuple[list, list]:
    """``jax.grad`` (float64) of E written here in jax.numpy, independently of the recursion."""

    def E(W, b):
        h = jnp.asarray(net.x)
        for l in range(net.L):
            z = W[l] @ h + b[l]
            h = jnp.tanh(z) if l < net.L - 1 else z
        return 0.5 * (h[0] - net.d) ** 2

    gW, gb = jax.grad(E, argnums=(0, 1))([jnp.asarray(w) for w in net.W], [jnp.asarray(b) for b in net.b])
    return [np.asarray(g) for g in gW], [np.asarray(g) for g in gb]


def _timed(fn, budget: float = 0.05) -> tuple[float, object]:
    """The fastest of repeated calls within ``budget`` seconds (one call if it takes longer), and its result."""
    best, spent, out = np.inf, 0.0, None
    while spent < budget or out is None:
        t = time.perf_counter()
        out = fn()
        dt = time.perf_counter() - t
        best, spent = min(best, dt), spent + dt
    return float(best), out


def _max_err(a: tuple[list, list], b: tuple[list, list]) -> float:
    return max(float(np.max(np.abs(u - v))) for xs, ys in zip(a, b) for u, v in zip(xs, ys))


def measure(width: int, depth: int, rng: np.random.Generator) -> dict:
    net = Net(width, depth, rng)
    t_naive, (nW, nb, naive_ops) = _timed(lambda: chain_rule(net, reuse=False))
    t_bp, (bW, bb, bp_ops) = _timed(lambda: chain_rule(net, reuse=True))
    t_fd, fd = _timed(lambda: finite_differences(net))
    scale = max(float(np.max(np.abs(g))) for gs in (bW, bb) for g in gs)
    return {
        "width": width,
        "depth": depth,
        "params": net.num_params,
        "ops": {
            "naive": naive_ops,
            "backprop": bp_ops,
            "finite_differences": 2 * net.num_params * count_formulas(net.sizes)["forward"],
        },
        "formula": count_formulas(net.sizes),
        "time_s": {"naive": t_naive, "backprop": t_bp, "finite_differences": t_fd},
        "naive_vs_backprop_max_abs": _max_err((nW, nb), (bW, bb)),
        "backprop_vs_jax_rel": _max_err((bW, bb), jax_grads(net)) / scale,
        "fd_vs_backprop_rel": _max_err(fd, (bW, bb)) / scale,
    }


def _slope(x, y) -> float:
    return float(np.polyfit(np.asarray(x, float), np.log(np.asarray(y, float)), 1)[0])


def _loglog(x, y) -> float:
    return float(np.polyfit(np.log(np.asarray(x, float)), np.log(np.asarray(y, float)), 1)[0])


def main(argv: Sequence[str] | None = None) -> dict:
    args = _common.parse_args(__doc__, "chain_rule", argv)
    rng = np.random.default_rng(args.seed)
    depths = list(range(1, _common.size(args, 9, 7, 3) + 1))
    widths = list(range(2, _common.size(args, 7, 5, 3) + 1))
    x64 = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)  # the jax.grad oracle in float64, as the recursion
    try:
        by_depth = [measure(DEPTH_WIDTH, d, rng) for d in depths]
        by_width = [measure(w, WIDTH_DEPTH, rng) for w in widths]
    finally:
        jax.config.update("jax_enable_x64", x64)
    rows = by_depth + by_width
    print(
        _common.table(
            [
                (
                    r["width"],
                    r["depth"],
                    r["params"],
                    r["ops"]["naive"],
                    r["ops"]["backprop"],
                    r["ops"]["finite_differences"],
                    f"{r['time_s']['naive'] * 1e3:.2f}",
                    f"{r['time_s']['backprop'] * 1e3:.3f}",
                    f"{r['time_s']['finite_differences'] * 1e3:.2f}",
                )
                for r in rows
            ],
            ["width", "depth", "P", "naive ops", "backprop ops", "FD ops", "naive ms", "backprop ms", "FD ms"],
        )
    )
    P = [r["params"] for r in by_depth]
    fit = {
        # per added layer at width 3: exp(slope of log ops / log time against depth), depths ≥ 2 (at
        # depth 1 a gradient is a few dozen operations: fixed costs, not paths)
        "naive_ops_growth_per_layer": math.exp(_slope(depths[1:], [r["ops"]["naive"] for r in by_depth[1:]])),
        # the last added layer's factor: the fixed parts fade as depth grows, the ratio tends to the width
        "naive_ops_last_layer_factor": by_depth[-1]["ops"]["naive"] / by_depth[-2]["ops"]["naive"],
        "naive_time_growth_per_layer": math.exp(_slope(depths[1:], [r["time_s"]["naive"] for r in by_depth[1:]])),
        # exponents against P over the depth sweep (P grows linearly with depth)
        "backprop_ops_exponent": _loglog(P, [r["ops"]["backprop"] for r in by_depth]),
        "backprop_time_exponent": _loglog(P[1:], [r["time_s"]["backprop"] for r in by_depth[1:]]),
        "fd_ops_exponent": _loglog(P, [r["ops"]["finite_differences"] for r in by_depth]),
        "fd_time_exponent": _loglog(P[1:], [r["time_s"]["finite_differences"] for r in by_depth[1:]]),
        # the width sweep at depth 3: naive work against width, log-log (paths ∝ w^depth)
        "naive_ops_width_exponent": _loglog(widths, [r["ops"]["naive"] for r in by_width]),
    }
    formulas_hold = all(
        r["ops"]["naive"] == r["formula"]["naive"] and r["ops"]["backprop"] == r["formula"]["backprop"] for r in rows
    )
    cheap = max((r["formula"]["forward"] + r["ops"]["backprop"]) / r["formula"]["forward"] for r in rows)
    deepest = by_depth[-1]
    results = {
        "by_depth": by_depth,
        "by_width": by_width,
        "fit": fit,
        "formulas_hold": formulas_hold,
        "gradient_over_forward": cheap,
    }

    figures = []
    try:
        from fnn import plot

        fig, axes = plot.subplots(1, 2, size=3.4)
        styles = {
            "naive": ("naive chain rule", "C3"),
            "backprop": ("backprop", "C0"),
            "finite_differences": ("finite differences", "C2"),
        }
        for ax, what, label in ((axes[0], "ops", "operations (multiply, add)"), (axes[1], "time_s", "time per gradient (s)")):
            for k, (name, color) in styles.items():
                ax.semilogy(depths, [r[what][k] for r in by_depth], "o-", color=color, label=name)
            ax.set_xlabel(f"hidden layers (width {DEPTH_WIDTH})")
            ax.set_ylabel(label)
            ax.grid(alpha=0.3)
        axes[0].legend(fontsize=7)
        axes[0].set_title(f"naive: ×{fit['naive_ops_last_layer_factor']:.2f} for the last layer; backprop: ∝ P", fontsize=8)
        axes[1].set_title("the same scalar code, timed", fontsize=8)
        fig.suptitle("per-parameter chain rule is exponential in depth; backprop is linear", fontsize=9)
        figures.append(plot.save(fig, args.out / "chain_rule.png"))
    except ImportError as e:
        print(f"(no figures: {e})")

    sweep = f"tanh MLPs of width {DEPTH_WIDTH}, 1 … {depths[-1]} hidden layers, one example, float64 Python"
    headlines = [
        _common.headline(
            "naive per-parameter chain rule, backprop (each δ once) and jax.grad give the same gradient: max |naive − backprop| "
            "(same arithmetic), and backprop vs jax.grad relative to the largest entry, every network of both sweeps",
            max(r["backprop_vs_jax_rel"] for r in rows),
            fmt=f"{{:.1e}} (naive − backprop: {max(r['naive_vs_backprop_max_abs'] for r in rows):.0e})",
            anchor="≤ 1e-12",
            ok=bool(
                max(r["backprop_vs_jax_rel"] for r in rows) <= 1e-12 and max(r["naive_vs_backprop_max_abs"] for r in rows) == 0
            ),
        ),
        _common.headline(
            f"{sweep}: the naive method's operations (counted as it runs, equal to its closed form), factor of the last "
            "added layer (fitted over depths ≥ 2 in brackets)",
            fit["naive_ops_last_layer_factor"],
            fmt=f"×{{:.2f}} (×{fit['naive_ops_growth_per_layer']:.2f})",
            anchor=f"→ ×{DEPTH_WIDTH} (the paths to the output multiply by the width)",
            # by algebra the factor tends to the width; at 3 layers or fewer it is still far from its limit
            ok=formulas_hold and abs(fit["naive_ops_last_layer_factor"] - DEPTH_WIDTH) / DEPTH_WIDTH < 0.05
            if depths[-1] >= 5
            else None,
            basis="algebra",
        ),
        _common.headline(
            f"{sweep}: time of the naive method per added layer (fitted, depths ≥ 2) vs backprop's time exponent in P",
            fit["naive_time_growth_per_layer"],
            fmt=f"×{{:.2f}} per layer (exponential); backprop time ∝ P^{fit['backprop_time_exponent']:.2f}",
            anchor=f"×{DEPTH_WIDTH} per layer; P^1 (linear)",
            ok=abs(fit["naive_time_growth_per_layer"] - DEPTH_WIDTH) / DEPTH_WIDTH < 0.25
            and abs(fit["backprop_time_exponent"] - 1) < 0.25,
            readme=True,
        ),
        _common.headline(
            f"{sweep}: time of central finite differences against P (two forward passes per parameter)",
            fit["fd_time_exponent"],
            fmt="P^{:.2f}",
            anchor="P^2 (quadratic)",
            ok=abs(fit["fd_time_exponent"] - 2) < 0.35,
        ),
        _common.headline(
            f"{sweep}, deepest ({deepest['depth']} layers, P = {deepest['params']}): naive time / backprop time",
            deepest["time_s"]["naive"] / deepest["time_s"]["backprop"],
            fmt=f"{{:.0f}}× ({deepest['ops']['naive']:,} vs {deepest['ops']['backprop']:,} operations)",
            anchor="grows ×3 per layer",
        ),
        _common.headline(
            "cheap gradient principle: (forward + backprop) operations / forward operations, worst network of both sweeps",
            cheap,
            fmt="{:.2f}",
            anchor="≤ 4 (Griewank & Walther 2008)",
            ok=cheap <= 4,
            basis="algebra",
        ),
    ]
    return _common.finish(args, results, headlines, figures)


if __name__ == "__main__":
    main()
