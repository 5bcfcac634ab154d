"""XOR with hand-derived and automatic gradients, side by side.

Run: python -m experiments.xor_demo
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp

import fnn

X = jnp.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
Y = jnp.array([0, 1, 1, 0])


def train(net: fnn.MLP, params, grad_fn, lr: float, steps: int):
    """Plain gradient descent θ ← θ − lr ∇E, the whole loop compiled as one lax.scan."""

    def step(p, _):
        E, g = grad_fn(p, X, Y)
        return jax.tree_util.tree_map(lambda w, dw: w - lr * dw, p, g), E

    return jax.jit(lambda p: jax.lax.scan(step, p, None, length=steps))(params)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--lr", type=float, default=0.5)
    args = ap.parse_args(argv)
    net = fnn.MLP((2, 8, 2), hidden="tanh", output="softmax")
    params0 = net.init(jax.random.key(args.seed))
    results = {}
    for name, make in [("manual", fnn.manual_value_and_grad), ("autodiff", fnn.autodiff_value_and_grad)]:
        params, losses = train(net, params0, make(net, "cross_entropy"), args.lr, args.steps)
        acc = float(jnp.mean(jnp.argmax(net.apply(params, X), -1) == Y))
        results[name] = {"loss": float(losses[-1]), "accuracy": acc, "params": params}
        print(f"{name:>8}: final loss {float(losses[-1]):.2e}, accuracy {acc:.0%}, predictions {net.apply(params, X)[:, 1].round(3).tolist()}")
    diff = max(float(jnp.max(jnp.abs(a - b))) for a, b in zip(jax.tree_util.tree_leaves(results["manual"]["params"]), jax.tree_util.tree_leaves(results["autodiff"]["params"])))
    print(f"max |manual − autodiff| over the trained parameters: {diff:.2e}")
    print(fnn.compare_gradients(net, "cross_entropy", params0, X, Y))
    return results


if __name__ == "__main__":
    main()
