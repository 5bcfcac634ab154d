"""The weighted objective with its L2 term (fnn.core.backprop.weighted_value_and_grad), in float64,
against jax.grad of the objective written out independently and against central finite differences."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from fnn.core.backprop import manual_value_and_grad, weighted_value_and_grad

CASES = [  # (output, loss, targets K)
    ("identity", "mse", 2),
    ("softmax", "cross_entropy", 3),
    ("sigmoid", "bce", 2),
]


def _problem(output, loss, K, rng):
    net = fnn.MLP((3, 4, K), hidden="tanh", output=output)
    params = net.init(jax.random.key(1), dtype=jnp.float64)
    x = jnp.asarray(rng.normal(size=(6, 3)))
    if loss == "cross_entropy":
        t = jnp.asarray(np.eye(K)[rng.integers(0, K, 6)])
    elif loss == "bce":
        t = jnp.asarray(rng.integers(0, 2, (6, K)).astype(float))
    else:
        t = jnp.asarray(rng.normal(size=(6, K)))
    return net, params, x, t


def _written_out(net, loss, lam, report_scale=1.0):
    """J = (Σ w·E_i + ½λΣ‖W‖²)/Σw, E_i written here from the formulas (not fnn's Loss records)."""

    def per_example(params, x, t):
        h = x
        for i, p in enumerate(params):
            z = h @ p["W"].T + p["b"]
            h = jnp.tanh(z) if i < len(params) - 1 else z
        if loss == "mse":
            return 0.5 * jnp.sum((h - t) ** 2, axis=-1)
        if loss == "cross_entropy":
            return -jnp.sum(t * jax.nn.log_softmax(h), axis=-1)
        return jnp.sum(jnp.logaddexp(0, h) - t * h, axis=-1)  # bce from logits

    def J(params, x, t, w):
        s = jnp.sum(w)
        pen = 0.5 * lam * sum(jnp.sum(p["W"] ** 2) for p in params) / s
        return jnp.sum(w * per_example(params, x, t)) / s + pen, (report_scale * jnp.sum(w * per_example(params, x, t)) / s + pen)

    return J


@pytest.mark.parametrize("grad", ["manual", "autodiff"])
@pytest.mark.parametrize("case", CASES, ids=[c[1] for c in CASES])
def test_weighted_objective_against_jax_grad_and_finite_differences(x64, case, grad):
    output, loss, K = case
    rng = np.random.default_rng(0)
    net, params, x, t = _problem(output, loss, K, rng)
    w = jnp.asarray(rng.uniform(0.0, 2.0, 6)).at[2].set(0.0)  # a zero weight: padding
    lam, scale = 0.3, (1 / K if loss == "mse" else 1.0)
    E, g = weighted_value_and_grad(net, loss, grad, l2=True, report_scale=scale)(params, x, t, w, jnp.asarray(lam))
    J = _written_out(net, loss, lam, scale)
    g_ref, (reported,) = jax.grad(lambda p: J(p, x, t, w), has_aux=True)(params), (J(params, x, t, w)[1],)
    np.testing.assert_allclose(float(E), float(reported), rtol=1e-12)
    for a, b in zip(jax.tree.leaves(g), jax.tree.leaves(g_ref)):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-13)
    # central differences on two entries of the first weight matrix
    for i, j in itertools.product((0, 3), (1, 2)):
        h = 1e-6
        plus = [dict(p) for p in params]
        minus = [dict(p) for p in params]
        plus[0]["W"] = params[0]["W"].at[i, j].add(h)
        minus[0]["W"] = params[0]["W"].at[i, j].add(-h)
        fd = (J(plus, x, t, w)[0] - J(minus, x, t, w)[0]) / (2 * h)
        np.testing.assert_allclose(float(g[0]["W"][i, j]), float(fd), rtol=1e-6, atol=1e-9)


def test_unit_weights_without_l2_are_the_batch_mean(x64):
    rng = np.random.default_rng(1)
    net, params, x, t = _problem("softmax", "cross_entropy", 3, rng)
    E, g = weighted_value_and_grad(net, "cross_entropy")(params, x, t, jnp.ones(6), jnp.zeros(()))
    E2, g2 = manual_value_and_grad(net, "cross_entropy")(params, x, t)
    np.testing.assert_allclose(float(E), float(E2), rtol=1e-13)
    for a, b in zip(jax.tree.leaves(g), jax.tree.leaves(g2)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)


def test_integer_weights_are_repeated_rows_and_an_empty_batch_is_zero(x64):
    rng = np.random.default_rng(2)
    net, params, x, t = _problem("identity", "mse", 2, rng)
    counts = np.array([1, 3, 0, 2, 1, 1])
    fn = weighted_value_and_grad(net, "mse", l2=True)
    E, g = fn(params, x, t, jnp.asarray(counts, jnp.float64), jnp.asarray(0.5))
    rep = np.repeat(np.arange(6), counts)
    E2, g2 = fn(params, x[rep], t[rep], jnp.ones(len(rep)), jnp.asarray(0.5))
    np.testing.assert_allclose(float(E), float(E2), rtol=1e-12)
    for a, b in zip(jax.tree.leaves(g), jax.tree.leaves(g2)):
        np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-14)
    E0, g0 = fn(params, x, t, jnp.zeros(6), jnp.asarray(0.5))
    assert float(E0) == 0.0 and all(float(jnp.abs(leaf).max()) == 0.0 for leaf in jax.tree.leaves(g0))
