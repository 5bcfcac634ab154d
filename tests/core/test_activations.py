"""Every activation's hand-derived derivative against jax.grad, the kink conventions, stability."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from fnn import activations as A

NAMES = A.HIDDEN_NAMES  # every elementwise activation
PARAMETRISED = [A.get("leaky_relu", slope=0.2), A.get("elu", alpha=0.5)]


def _points(dtype):
    # Away from the kinks at 0 (|z| >= 1e-3), spanning the saturated ranges too.
    z = np.concatenate([-np.logspace(-3, 1.5, 40), np.logspace(-3, 1.5, 40)])
    return jnp.asarray(z, dtype)


@pytest.mark.parametrize("act", [A.get(n) for n in NAMES] + PARAMETRISED, ids=repr)
def test_derivative_matches_jax_grad(x64, act):
    z = _points(jnp.float64)
    h = act(z)
    auto = jax.vmap(jax.grad(act.f))(z)
    # atol: in the saturated tails autodiff's own formulas round (e.g. elu's expm1(z) + 1 for
    # alpha·e^z), a few ulps of the derivative's O(1) scale; elsewhere 1e-12 relative.
    np.testing.assert_allclose(act.df(z, h), auto, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(act.df(z, None), auto, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", NAMES)
def test_module_level_pairs(x64, name):
    f, df = getattr(A, name), getattr(A, f"{name}_grad")
    z = _points(jnp.float64)
    np.testing.assert_allclose(df(z), jax.vmap(jax.grad(f))(z), rtol=1e-12, atol=1e-14)


def test_hand_derivatives_keep_relative_accuracy_in_the_tails(x64):
    z = jnp.array([-30.0, -20.0])
    np.testing.assert_allclose(A.elu_grad(z), np.exp([-30.0, -20.0]), rtol=1e-14)
    np.testing.assert_allclose(A.sigmoid_grad(z), np.exp(z) / (1 + np.exp(z)) ** 2, rtol=1e-12)
    np.testing.assert_allclose(A.tanh_grad(jnp.array([-10.0])), 1 / np.cosh(-10.0) ** 2, rtol=1e-7)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_finite_at_extremes(x64, name, dtype):
    act = A.get(name)
    z = jnp.asarray([-1e4, -1e3, -100.0, 100.0, 1e3, 1e4], dtype)
    h = act(z)
    assert h.dtype == dtype
    assert bool(jnp.all(jnp.isfinite(h))), h
    assert bool(jnp.all(jnp.isfinite(act.df(z, h)))), act.df(z, h)
    assert bool(jnp.all(jnp.isfinite(jax.vmap(jax.grad(act.f))(z))))


def test_sigmoid_softplus_values_at_extremes():
    z = jnp.asarray([-1e4, 1e4], jnp.float32)
    np.testing.assert_array_equal(A.sigmoid(z), [0.0, 1.0])
    np.testing.assert_array_equal(A.sigmoid_grad(z), [0.0, 0.0])
    np.testing.assert_array_equal(A.softplus(z), [0.0, 1e4])
    np.testing.assert_array_equal(A.softplus_grad(z), [0.0, 1.0])


def test_kink_conventions():
    zero = jnp.zeros(3)
    assert A.relu_grad(zero).tolist() == [0.0] * 3
    np.testing.assert_allclose(A.get("leaky_relu", slope=0.3).df(zero, None), 0.3)
    np.testing.assert_allclose(A.get("elu", alpha=0.5).df(zero, None), 0.5)
    # jax.grad of the forward functions follows the same convention, so manual == autodiff at 0.
    assert float(jax.grad(A.relu)(0.0)) == 0.0
    assert float(jax.grad(lambda z: A.leaky_relu(z, 0.3))(0.0)) == pytest.approx(0.3)
    assert float(jax.grad(lambda z: A.elu(z, 0.5))(0.0)) == pytest.approx(0.5)


def test_known_values(x64):
    z = jnp.array([-2.0, 0.5])
    np.testing.assert_allclose(A.sigmoid(z), 1 / (1 + np.exp([2.0, -0.5])), rtol=1e-15)
    np.testing.assert_allclose(A.softplus(z), np.log1p(np.exp([-2.0, 0.5])), rtol=1e-15)
    np.testing.assert_allclose(A.elu(z), [np.expm1(-2.0), 0.5], rtol=1e-15)
    np.testing.assert_allclose(A.leaky_relu(z), [-0.02, 0.5], rtol=1e-15)
    c = np.sqrt(2 / np.pi)
    # 1e-14: the compiled tanh-form may round differently from numpy in the last ulp or two
    np.testing.assert_allclose(A.gelu(z), 0.5 * z * (1 + np.tanh(c * (z + 0.044715 * z**3))), rtol=1e-14)


def test_softmax(x64):
    z = jax.random.normal(jax.random.key(0), (4, 5), jnp.float64) * 3
    s = A.softmax(z)
    np.testing.assert_allclose(s.sum(-1), 1.0, rtol=1e-15)
    assert bool(jnp.all((s > 0) & (s < 1)))
    g = jax.random.normal(jax.random.key(1), (4, 5), jnp.float64)
    _, jvp = jax.jvp(A.softmax, (z,), (g,))
    np.testing.assert_allclose(A.softmax_jvp(s, g), jvp, rtol=1e-12, atol=1e-15)
    big = A.softmax(jnp.array([1e4, -1e4, 0.0], jnp.float32))
    assert bool(jnp.all(jnp.isfinite(big))) and float(big[0]) == 1.0


def test_activation_objects_are_hashable_values():
    a, b = fnn.activations.get("leaky_relu", slope=0.2), fnn.activations.get("leaky_relu", slope=0.2)
    assert a == b and hash(a) == hash(b)
    assert a != fnn.activations.get("leaky_relu")
    assert fnn.activations.get(a) is a
    assert A.get(**a.to_json()) == a
    assert not A.get("softmax").elementwise and A.get("tanh").elementwise


@pytest.mark.parametrize(
    "args, kwargs, err, match",
    [
        (("swish",), {}, ValueError, "unknown activation 'swish'; valid names are identity, sigmoid"),
        (("relu",), {"slope": 0.1}, ValueError, "takes parameters none"),
        (("leaky_relu",), {"alpha": 0.1}, ValueError, r"takes parameters \['slope'\]"),
        (("elu",), {"alpha": "big"}, TypeError, "`alpha` must be a finite number"),
        ((3,), {}, TypeError, "activation must be a name"),
    ],
)
def test_bad_activation(args, kwargs, err, match):
    with pytest.raises(err, match=match):
        A.get(*args, **kwargs)
