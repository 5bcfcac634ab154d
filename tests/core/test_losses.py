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
    ("poisson", "exp"),
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


# ---- poisson: half the Poisson deviance of an exp output -------------------------------------------


def _poisson_oracle(z, y):
    """Half the deviance written in ŷ = exp(z), averaged over the batch: Σ_k ŷ − y log ŷ + (y log y − y), the
    last term a constant of y (0 log 0 = 0); jax.grad differentiates it through exp and log."""
    yhat = jnp.exp(z)
    return jnp.mean(jnp.sum(yhat - y * jnp.log(yhat) + jax.scipy.special.xlogy(y, y) - y, axis=-1))


@pytest.fixture
def counts():
    z = jax.random.normal(jax.random.key(3), (6, 2), jnp.float64) * 1.5
    y = jnp.asarray(np.random.default_rng(0).poisson(2.0, (6, 2)), jnp.float64)
    return z, y.at[0, 0].set(0.0).at[1, 1].set(0.4)  # a zero count and a rate among them


def test_poisson_value_is_sklearns_half_deviance(x64, counts):
    from scipy.special import xlogy

    z, y = counts
    yhat, yn = np.exp(np.asarray(z)), np.asarray(y)
    ref = np.average(xlogy(yn, yn / yhat) - yn + yhat, axis=0).sum()  # scikit-learn's: mean over rows, sum over outputs
    E, _ = L.value_and_delta("poisson", A.get("exp"), z, jnp.exp(z), y)
    assert float(E) == pytest.approx(ref, rel=1e-13)
    y1 = y + 1  # ŷ = y: the deviance is zero
    assert float(L.value("poisson", jnp.log(y1), y1, y1)) == pytest.approx(0.0, abs=1e-13)


def test_poisson_delta_against_jax_grad_and_finite_differences(x64, counts):
    z, y = counts
    _, delta = L.value_and_delta("poisson", A.get("exp"), z, jnp.exp(z), y)
    np.testing.assert_allclose(delta, jax.grad(_poisson_oracle)(z, y), rtol=1e-13, atol=1e-15)
    eps, fd = 1e-6, np.zeros(z.shape)
    for idx in np.ndindex(*z.shape):  # central differences of the oracle, entry by entry
        step = jnp.zeros(z.shape).at[idx].set(eps)
        fd[idx] = (float(_poisson_oracle(z + step, y)) - float(_poisson_oracle(z - step, y))) / (2 * eps)
    np.testing.assert_allclose(delta, fd, rtol=1e-7, atol=1e-9)


def test_poisson_targets_and_pairing():
    assert L.get("poisson").targets == "counts" and L.get("poisson").builtin
    with pytest.raises(ValueError, match=r"loss 'poisson' needs output='exp'.*output is 'identity'"):
        L.check_pair("poisson", A.get("identity"))
    with pytest.raises(ValueError, match=r"`y` must be non-negative targets \(counts or rates\)"):
        L.targets("poisson", np.array([1.0, -1.0]), 1, (2,), jnp.float32)
    with pytest.raises(ValueError, match=r"loss 'poisson' expects non-negative targets of shape \(2, 3\)"):
        L.targets("poisson", np.array([1, 2]), 3, (2,), jnp.float32)  # counts are no class indices
    np.testing.assert_array_equal(L.targets("poisson", np.array([3, 0]), 1, (2,), jnp.float32), [[3.0], [0.0]])
