"""The MLP spec, initialisation, the forward pass and the linear-collapse argument."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import fnn
from fnn import activations as A


@pytest.mark.parametrize("sizes", [(3, 2), (3, 4, 2), (3, 4, 4, 2), (3, 4, 4, 4, 2)])
def test_shapes_batch_and_single(sizes):
    net = fnn.MLP(sizes, hidden="tanh", output="softmax")
    params = net.init(jax.random.key(0))
    assert len(params) == len(sizes) - 1 == net.num_layers
    for layer, (n_in, n_out) in zip(params, itertools.pairwise(sizes)):
        assert layer["W"].shape == (n_out, n_in) and layer["b"].shape == (n_out,)
        assert layer["W"].dtype == jnp.float32
    x = jax.random.normal(jax.random.key(1), (5, sizes[0]))
    out, cache = net.forward(params, x)
    assert out.shape == (5, sizes[-1])
    assert [z.shape for z in cache.z] == [(5, n) for n in sizes[1:]]
    assert cache.h[-1] is out and cache.x.shape == x.shape
    single = net.apply(params, x[2])
    assert single.shape == (sizes[-1],)
    np.testing.assert_allclose(single, out[2], rtol=1e-6)
    assert net.num_params == sum(p.size for p in jax.tree_util.tree_leaves(params))


def test_forward_follows_the_seed_equations(x64):
    net = fnn.MLP((3, 4, 2), hidden="sigmoid", output="tanh")
    p = net.init(jax.random.key(0), jnp.float64)
    p[0]["b"] = jnp.arange(4.0) / 10
    x = np.random.default_rng(0).normal(size=3)
    W1, b1, W2, b2 = (np.asarray(p[0]["W"]), np.asarray(p[0]["b"]), np.asarray(p[1]["W"]), np.asarray(p[1]["b"]))
    h1 = 1 / (1 + np.exp(-(W1 @ x + b1)))
    np.testing.assert_allclose(net.apply(p, x), np.tanh(W2 @ h1 + b2), rtol=1e-14)


def test_single_neuron_is_f_of_wx_plus_b(x64):
    net = fnn.MLP((4, 1), hidden=(), output="sigmoid")
    p = net.init(jax.random.key(3), jnp.float64)
    w, b = np.asarray(p[0]["W"][0]), 0.25
    p[0]["b"] = jnp.array([b])
    x = np.random.default_rng(1).normal(size=(6, 4))
    np.testing.assert_allclose(net.apply(p, x)[:, 0], 1 / (1 + np.exp(-(x @ w + b))), rtol=1e-14)


@pytest.mark.parametrize("depth", [1, 2, 5])
def test_linear_network_collapses_to_one_affine_map(x64, depth):
    net = fnn.MLP((3,) + (6,) * depth + (2,), hidden="identity", output="identity")
    p = net.init(jax.random.key(depth), jnp.float64)
    p = [{"W": l["W"], "b": jax.random.normal(jax.random.key(9 + i), l["b"].shape, jnp.float64)} for i, l in enumerate(p)]
    W, b = fnn.fold_affine(net, p)
    assert W.shape == (2, 3) and b.shape == (2,)
    x = jax.random.normal(jax.random.key(7), (32, 3), jnp.float64) * 3
    np.testing.assert_allclose(net.apply(p, x), x @ W.T + b, rtol=1e-12, atol=1e-12)


def test_fold_affine_refuses_nonlinear():
    net = fnn.MLP((3, 4, 2), hidden="relu")
    with pytest.raises(ValueError, match=r"fold_affine needs identity activations everywhere.*\['relu'\]"):
        fnn.fold_affine(net, net.init(jax.random.key(0)))


def test_spec_is_static_and_hashable():
    a = fnn.MLP((2, 8, 8, 3), hidden="tanh", output="softmax")
    b = fnn.MLP([2, 8, 8, 3], hidden=("tanh", "tanh"), output="softmax")
    assert a == b and hash(a) == hash(b)
    assert a != fnn.MLP((2, 8, 8, 3), hidden="relu", output="softmax")
    assert fnn.MLP.from_json(a.to_json()) == a
    c = fnn.MLP((2, 8, 3), hidden=fnn.activations.get("leaky_relu", slope=0.2))
    assert fnn.MLP.from_json(c.to_json()) == c
    assert repr(a) == "MLP(sizes=(2, 8, 8, 3), hidden='tanh', output='softmax', init='auto')"
    assert not any(hasattr(v, "shape") for v in vars(a).values())  # no arrays inside
    # usable as a static argument of jit
    f = jax.jit(lambda net, p, x: net.apply(p, x), static_argnums=0)
    assert f(a, a.init(jax.random.key(0)), jnp.ones((1, 2))).shape == (1, 3)


def test_per_layer_activations():
    net = fnn.MLP((2, 3, 3, 1), hidden=("relu", fnn.activations.get("elu", alpha=0.5)), output="sigmoid")
    assert [a.name for a in net.activations] == ["relu", "elu", "sigmoid"]
    assert dict(net.hidden[1].params) == {"alpha": 0.5}


@pytest.mark.parametrize(
    "init, act, var",
    [
        ("he", "relu", lambda i, o: 2 / i),
        ("glorot", "tanh", lambda i, o: 2 / (i + o)),
        ("lecun", "tanh", lambda i, o: 1 / i),
        ("auto", "relu", lambda i, o: 2 / i),
        ("auto", "tanh", lambda i, o: 2 / (i + o)),
        ("normal", "tanh", lambda i, o: 1e-4),
        ("glorot_normal", "tanh", lambda i, o: 2 / (i + o)),
        ("he_uniform", "relu", lambda i, o: 2 / i),
        ("lecun_uniform", "relu", lambda i, o: 1 / i),
    ],
)
def test_initialiser_variance(init, act, var):
    net = fnn.MLP((400, 300, 10), hidden=act, init=init)
    W = np.asarray(net.init(jax.random.key(0))[0]["W"])
    assert W.var() == pytest.approx(var(400, 300), rel=0.03)
    assert abs(W.mean()) < 0.05 * np.sqrt(var(400, 300))


def test_init_dtype_follows_x64(x64):
    net = fnn.MLP((2, 3, 1))
    assert net.init(jax.random.key(0))[0]["W"].dtype == jnp.float64
    assert net.init(jax.random.key(0), jnp.float32)[0]["W"].dtype == jnp.float32
    assert net.init(jax.random.PRNGKey(0))[1]["b"].dtype == jnp.float64  # legacy keys work


def test_init_takes_every_form_of_a_dtype_and_refuses_an_array(x64):
    net, key = fnn.MLP((2, 3, 1)), jax.random.key(0)
    x = jnp.ones((4, 2), jnp.float32)
    for dtype in (jnp.dtype("float32"), np.dtype("float32"), x.dtype, "float32", jnp.float32, np.float32):
        assert net.init(key, dtype)[0]["W"].dtype == jnp.float32, dtype  # e.g. net.init(key, x.dtype)
    for bad in (x, np.ones(2), "bogus"):
        with pytest.raises(TypeError, match="`dtype`"):
            net.init(key, bad)


def test_init_is_deterministic_per_key():
    net = fnn.MLP((2, 5, 1))
    a, b, c = net.init(jax.random.key(1)), net.init(jax.random.key(1)), net.init(jax.random.key(2))
    np.testing.assert_array_equal(a[0]["W"], b[0]["W"])
    assert not np.array_equal(a[0]["W"], c[0]["W"])


def test_forward_under_jit_and_vmap():
    net = fnn.MLP((3, 4, 2), hidden="gelu", output="softmax")
    p = net.init(jax.random.key(0))
    x = jax.random.normal(jax.random.key(1), (6, 3))
    batched = jax.jit(net.apply)(p, x)
    per_example = jax.vmap(net.apply, in_axes=(None, 0))(p, x)
    np.testing.assert_allclose(batched, per_example, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(batched.sum(-1), 1.0, rtol=1e-6)
    assert A.get("softmax") == net.output


def test_stacked_initialisations_are_those_of_init_bitwise():
    """The one-program draws of many networks (net.init_stacked, fit_many's start) give exactly net.init(k)."""
    net = fnn.MLP((3, 7, 5, 2), hidden=("relu", "tanh"), output="softmax")
    key = jax.random.key(11)
    stacked = net.init_stacked(key, 4)
    for i, k in enumerate(jax.random.split(key, 4)):
        for a, b in zip(jax.tree_util.tree_leaves(stacked), jax.tree_util.tree_leaves(net.init(k))):
            assert np.array_equal(np.asarray(a[i]), np.asarray(b))
    # fit_many without params starts from init_stacked(split(key)[0], n): one step at learning rate 0 keeps the start
    x, y = jnp.ones((4, 3)), jnp.array([0, 1, 0, 1])
    kw = {"loss": "cross_entropy", "optimizer": optax.sgd(0.0), "epochs": 1, "key": key, "num_networks": 3, "progress": False}
    params, _ = fnn.fit_many(net, (x, y), **kw)
    for a, b in zip(jax.tree_util.tree_leaves(params), jax.tree_util.tree_leaves(net.init_stacked(jax.random.split(key)[0], 3))):
        assert np.array_equal(np.asarray(a), np.asarray(b))
    for bad, err in [(0, ValueError), (2.5, TypeError), ("3", TypeError)]:
        with pytest.raises(err, match="`n`"):
            net.init_stacked(key, bad)
