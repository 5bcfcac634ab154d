"""Loss values against their formulas, δ_out against jax.grad, label handling, extremes."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from fnn import activations as A
from fnn import losses as L

PAIRS = [
    ("mse", "identity"),
    ("mse", "sigmoid"),
    ("mse", "tanh"),
    ("mse", "relu"),
    ("mse", "softmax"),
    ("cross_entropy", "softmax"),
    ("bce", "sigmoid"),
]


def test_values_match_formulas(x64):
    z = jnp.array([[1.0, -2.0, 0.5], [0.0, 3.0, -1.0]])
    d = jnp.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    yhat = A.sigmoid(z)
    assert float(L.mse(yhat, d)) == pytest.approx(np.mean(0.5 * np.sum((np.asarray(yhat) - np.asarray(d)) ** 2, -1)), rel=1e-14)
    p = np.exp(np.asarray(z)) / np.exp(np.asarray(z)).sum(-1, keepdims=True)
    assert float(L.cross_entropy(z, d)) == pytest.approx(np.mean(-np.log(p[[0, 1], [0, 2]])), rel=1e-14)
    s = 1 / (1 + np.exp(-np.asarray(z)))
    ref = np.mean(np.sum(-(np.asarray(d) * np.log(s) + (1 - np.asarray(d)) * np.log(1 - s)), -1))
    assert float(L.bce(z, d)) == pytest.approx(ref, rel=1e-13)
    # a single example is not averaged
    assert float(L.mse(yhat[0], d[0])) == pytest.approx(0.5 * float(jnp.sum((yhat[0] - d[0]) ** 2)), rel=1e-14)


@pytest.mark.parametrize("loss, output", PAIRS)
@pytest.mark.parametrize("batch", [(), (4,)])
def test_delta_is_dE_dz(x64, loss, output, batch):
    act = A.get(output)
    z = jax.random.normal(jax.random.key(0), (*batch, 3), jnp.float64) * 2
    if loss == "cross_entropy" or output == "softmax":
        y = jax.nn.one_hot(jax.random.randint(jax.random.key(1), batch, 0, 3), 3, dtype=jnp.float64)
    else:
        y = jax.random.uniform(jax.random.key(1), (*batch, 3), jnp.float64)
    E, delta = L.value_and_delta(loss, act, z, act(z), y)
    E_ref, grad_ref = jax.value_and_grad(lambda t: L.value(loss, t, act(t), y))(z)
    assert float(E) == pytest.approx(float(E_ref), rel=1e-14)
    np.testing.assert_allclose(delta, grad_ref, rtol=1e-12, atol=1e-15)


# Independent oracles (jax.nn / optax, not fnn.losses): E of the logits for one batch.
ORACLE = {
    "cross_entropy": lambda z, y: jnp.mean(-jnp.sum(y * jax.nn.log_softmax(z), axis=-1)),
    "bce": lambda z, y: jnp.mean(jnp.sum(optax.sigmoid_binary_cross_entropy(z, y), axis=-1)),
}


@pytest.mark.parametrize(
    "y",
    [
        [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]],  # one-hot
        [[0.5, 0.5, 0.5], [0.0, 1.0, 0.0]],  # a row summing to 1.5 (the reported bug: δ ≠ ŷ − y there)
        [[0.0, 0.0, 0.0], [0.2, 0.3, 0.5]],  # an all-zero row (masked example) and a soft row
        [[2.0, 0.0, 1.0], [0.1, 0.1, 0.1]],  # unnormalised weights
    ],
)
@pytest.mark.parametrize("loss, output", [("cross_entropy", "softmax"), ("bce", "sigmoid")])
def test_fused_deltas_equal_jax_grad_of_independent_oracle(x64, loss, output, y):
    z = jnp.array([[2.0, -1.0, 0.5], [0.3, 0.0, -2.0]])
    y = jnp.asarray(y)
    if loss == "bce":
        y = jnp.clip(y, 0.0, 1.0)
    act = A.get(output)
    E, delta = L.value_and_delta(loss, act, z, act(z), y)
    E_ref, g_ref = jax.value_and_grad(ORACLE[loss])(z, y)
    assert float(E) == pytest.approx(float(E_ref), rel=1e-14)
    np.testing.assert_allclose(delta, g_ref, rtol=1e-13, atol=1e-16)


@pytest.mark.parametrize(
    "loss, output", [("cross_entropy", "softmax"), ("bce", "sigmoid"), ("mse", "softmax"), ("mse", "sigmoid")]
)
def test_finite_at_extreme_logits_float32(loss, output):
    act = A.get(output)
    z = jnp.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4]], jnp.float32)
    y = jnp.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]], jnp.float32)  # confidently wrong
    E, delta = L.value_and_delta(loss, act, z, act(z), y)
    assert bool(jnp.isfinite(E)) and bool(jnp.all(jnp.isfinite(delta)))
    g = jax.grad(lambda t: L.value(loss, t, act(t), y))(z)
    assert bool(jnp.all(jnp.isfinite(g)))
    np.testing.assert_allclose(delta, g, rtol=1e-5, atol=1e-7)  # and the hand-derived δ is jax.grad's
    if loss == "cross_entropy":
        # row 0: −log softmax = 1e4 − (−1e4); row 1: 1e4 + log 2 − (−1e4)
        assert float(E) == pytest.approx(2e4 + np.log(2) / 2, rel=1e-6)


def test_zero_probability_classes_in_soft_labels(x64):
    z = jnp.array([[3.0, -3.0, 0.0]])
    y = jnp.array([[0.7, 0.0, 0.3]])
    E, delta = L.value_and_delta("cross_entropy", A.get("softmax"), z, A.softmax(z), y)
    assert np.isfinite(float(E))
    np.testing.assert_allclose(delta, jax.grad(ORACLE["cross_entropy"])(z, y), rtol=1e-14)


def test_check_pair():
    L.check_pair("mse", A.get("softmax"))
    with pytest.raises(ValueError, match="loss 'cross_entropy' needs output='softmax'.*output is 'sigmoid'"):
        L.check_pair("cross_entropy", A.get("sigmoid"))
    with pytest.raises(ValueError, match="loss 'bce' needs output='sigmoid'"):
        L.check_pair("bce", A.get("identity"))
    with pytest.raises(ValueError, match="unknown loss 'hinge'; valid names are mse, cross_entropy, bce"):
        L.check_pair("hinge", A.get("identity"))
