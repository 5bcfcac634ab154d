"""Hand-derived backward pass == jax.grad (float64, ≤ 1e-12 relative), leaf by leaf."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _helpers import make_labels, tree_rel_err
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fnn
from fnn import activations as A
from fnn import losses as L

HIDDEN = A.HIDDEN_NAMES
PAIRS = [
    ("identity", "mse"),
    ("sigmoid", "mse"),
    ("tanh", "mse"),
    ("softmax", "mse"),
    ("softmax", "cross_entropy"),
    ("sigmoid", "bce"),
]
N_IN, WIDTH, N_OUT, B = 3, 4, 3, 5


def _case(hidden, output, loss, n_hidden, batch, seed=0):
    net = fnn.MLP((N_IN,) + (WIDTH,) * n_hidden + (N_OUT,), hidden=hidden, output=output)
    k1, k2, k3 = jax.random.split(jax.random.key(seed), 3)
    params = net.init(k1, jnp.float64)
    # non-zero biases so no ReLU-like unit sits exactly on its kink by construction
    params = [
        {"W": p["W"], "b": 0.1 * jax.random.normal(jax.random.fold_in(k1, i), p["b"].shape, jnp.float64)}
        for i, p in enumerate(params)
    ]
    x = jax.random.normal(k2, (*batch, N_IN), jnp.float64)
    y = make_labels(loss, output, N_OUT, batch, k3)
    return net, params, x, y


# A covering design instead of the full grid (8 hidden × 6 pairs × 3 depths × 2 batch forms = 288
# compiled programs): every hidden activation, every (output, loss) pair and every depth appears, each
# as a batch and as a single example. The (output, loss, target form) paths are swept against an
# independent oracle in test_gradient_paths.py; random combinations in the property test below.
# (8 hidden activations ≥ 6 pairs, so cycling the pairs along the activations covers both.)
COVER = [(hidden, *PAIRS[i % len(PAIRS)], 1 + i % 3) for i, hidden in enumerate(HIDDEN)]


def _cover_id(c):
    return "-".join(map(str, c))


def test_cover_is_complete():
    assert {c[0] for c in COVER} == set(HIDDEN)
    assert {(c[1], c[2]) for c in COVER} == set(PAIRS)
    assert {c[3] for c in COVER} == {1, 2, 3}


@pytest.mark.parametrize("hidden, output, loss, n_hidden", COVER, ids=[_cover_id(c) for c in COVER])
@pytest.mark.parametrize("batch", [(B,), ()], ids=["batch", "single"])
def test_manual_equals_autodiff(x64, hidden, output, loss, n_hidden, batch):
    net, params, x, y = _case(hidden, output, loss, n_hidden, batch)
    # one program for both (new shapes compile faster as one jit than op by op)
    both = jax.jit(
        lambda p, a, b: (fnn.manual_value_and_grad(net, loss)(p, a, b), fnn.autodiff_value_and_grad(net, loss)(p, a, b))
    )
    (E_m, g_m), (E_a, g_a) = both(params, x, y)
    assert float(E_m) == pytest.approx(float(E_a), rel=1e-14)
    assert tree_rel_err(g_m, g_a) <= 1e-12


@pytest.mark.parametrize("output, loss", PAIRS)
@pytest.mark.parametrize("batch", [(B,), ()], ids=["batch", "single"])
def test_no_hidden_layer(x64, output, loss, batch):
    net, params, x, y = _case("tanh", output, loss, 0, batch)
    _, g_m = fnn.manual_value_and_grad(net, loss)(params, x, y)
    _, g_a = fnn.autodiff_value_and_grad(net, loss)(params, x, y)
    assert tree_rel_err(g_m, g_a) <= 1e-12


def _shifted_objective(net, loss, params, x, t, shifts):
    """E with z⁽ˡ⁾ + s⁽ˡ⁾: its gradient in s⁽ˡ⁾ at 0 is δ⁽ˡ⁾ = ∂E/∂z⁽ˡ⁾, per example."""
    h = x
    for layer, act, s in zip(params, net.activations, shifts):
        z = fnn.core.mlp.linear(layer["W"], layer["b"], h) + s
        h = act(z)
    return L.value(loss, z, h, t)


@pytest.mark.parametrize(
    "hidden, output, loss",
    [("tanh", "softmax", "cross_entropy"), ("relu", "sigmoid", "mse"), ("elu", "softmax", "mse"), ("gelu", "sigmoid", "bce")],
)
def test_deltas_and_input_error(x64, hidden, output, loss):
    net, params, x, y = _case(hidden, output, loss, 2, (B,))
    _E, bp = fnn.manual_backprop(net, loss)(params, x, y)
    t = L.targets(loss, y, N_OUT, (B,), jnp.float64)
    zeros = [jnp.zeros((B, n), jnp.float64) for n in net.sizes[1:]]
    deltas = jax.grad(lambda s: _shifted_objective(net, loss, params, x, t, s))(zeros)
    assert len(bp.deltas) == net.num_layers
    for mine, ref in zip(bp.deltas, deltas):
        np.testing.assert_allclose(mine, ref, rtol=1e-12, atol=1e-16)
    dx = jax.grad(fnn.objective(net, loss), argnums=1)(params, x, y)
    np.testing.assert_allclose(bp.dx, dx, rtol=1e-12, atol=1e-16)
    # the seed's ∂E/∂W = δᵀ h_prev and ∂E/∂b = Σ δ, read straight off the deltas
    _, cache = net.forward(params, x)
    np.testing.assert_allclose(bp.grads[1]["W"], bp.deltas[1].T @ cache.h[0], rtol=1e-13)
    np.testing.assert_allclose(bp.grads[2]["b"], bp.deltas[2].sum(0), rtol=1e-13)


def test_backward_low_level_api(x64):
    net, params, x, y = _case("tanh", "identity", "mse", 1, (B,))
    out, cache = net.forward(params, x)
    grads = fnn.backward_pass(net, params, cache, (out - y) / B).grads
    _, ref = fnn.autodiff_value_and_grad(net, "mse")(params, x, y)
    assert tree_rel_err(grads, ref) <= 1e-12
    with pytest.raises(ValueError, match="`delta_out` has shape"):
        fnn.backward_pass(net, params, cache, out[0])


@pytest.mark.parametrize("grad", ["manual", "autodiff"])
def test_jit_and_per_example_vmap(x64, grad):
    net, params, x, y = _case("tanh", "softmax", "cross_entropy", 2, (B,))
    make = fnn.manual_value_and_grad if grad == "manual" else fnn.autodiff_value_and_grad
    fn = make(net, "cross_entropy")
    _E_jit, g_jit = jax.jit(fn)(params, x, y)
    E, g = fn(params, x, y)
    assert tree_rel_err(g_jit, g) <= 1e-12
    E_each, g_each = jax.vmap(fn, in_axes=(None, 0, 0))(params, x, y)
    assert E_each.shape == (B,) and g_each[0]["W"].shape == (B, WIDTH, N_IN)
    one = jax.jit(fn)  # one compiled single-example call, not every op compiled eagerly per example
    loop = [one(params, x[i], y[i])[1] for i in range(B)]
    assert tree_rel_err(g_each, jax.tree_util.tree_map(lambda *a: jnp.stack(a), *loop)) <= 1e-12
    # the batch gradient is the mean of the per-example gradients
    assert tree_rel_err(jax.tree_util.tree_map(lambda a: a.mean(0), g_each), g) <= 1e-12
    assert float(E_each.mean()) == pytest.approx(float(E), rel=1e-14)


@pytest.mark.parametrize(
    "output, loss, y_float",
    [("softmax", "cross_entropy", False), ("softmax", "cross_entropy", True), ("tanh", "mse", True), ("sigmoid", "bce", True)],
)
def test_custom_vjp_routes_jax_grad_through_manual(x64, output, loss, y_float):
    net, params, x, y = _case("relu", output, loss, 2, (B,))
    if y_float and loss == "cross_entropy":
        y = jax.nn.one_hot(y, N_OUT, dtype=jnp.float64)
    E_vjp = fnn.with_manual_vjp(net, loss)
    E_ref = fnn.objective(net, loss)
    argnums = (0, 1, 2) if y_float else (0, 1)
    g = jax.jit(jax.grad(E_vjp, argnums=argnums))(params, x, y)
    ref = jax.grad(E_ref, argnums=argnums)(params, x, y)
    assert tree_rel_err(g, ref) <= 1e-12
    assert float(E_vjp(params, x, y)) == pytest.approx(float(E_ref(params, x, y)), rel=1e-14)
    # vmap over single examples and a cotangent other than 1 (scaled loss)
    per = jax.vmap(jax.grad(lambda p, a, b: 3.0 * E_vjp(p, a, b)), in_axes=(None, 0, 0))(params, x, y)
    per_ref = jax.vmap(jax.grad(lambda p, a, b: 3.0 * E_ref(p, a, b)), in_axes=(None, 0, 0))(params, x, y)
    assert tree_rel_err(per, per_ref) <= 1e-12


def test_float32_agreement():
    net = fnn.MLP((N_IN, WIDTH, WIDTH, N_OUT), hidden="tanh", output="softmax")
    params = net.init(jax.random.key(0))
    x = jax.random.normal(jax.random.key(1), (B, N_IN))
    y = jnp.arange(B) % N_OUT
    _, g_m = jax.jit(fnn.manual_value_and_grad(net, "cross_entropy"))(params, x, y)
    _, g_a = jax.jit(fnn.autodiff_value_and_grad(net, "cross_entropy"))(params, x, y)
    assert g_m[0]["W"].dtype == jnp.float32
    assert tree_rel_err(g_m, g_a) <= 1e-5


@pytest.mark.slow  # random architectures, one compile per example: the `slow` tier
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    sizes=st.lists(st.integers(1, 5), min_size=2, max_size=5),
    hidden=st.sampled_from(HIDDEN),
    pair=st.sampled_from(PAIRS),
    batch=st.sampled_from([(), (1,), (3,), (7,)]),
    seed=st.integers(0, 2**16),
)
def test_property_manual_equals_autodiff(x64, sizes, hidden, pair, batch, seed):
    output, loss = pair
    if output == "softmax" and sizes[-1] < 2:
        sizes = [*sizes[:-1], 2]
    net = fnn.MLP(sizes, hidden=hidden, output=output)
    k1, k2, k3 = jax.random.split(jax.random.key(seed), 3)
    params = net.init(k1, jnp.float64)
    x = jax.random.normal(k2, (*batch, sizes[0]), jnp.float64)
    y = make_labels(loss, output, sizes[-1], batch, k3)
    # one jit per example: new shapes compile faster as one program than op by op
    both = jax.jit(
        lambda p, a, b: (fnn.manual_value_and_grad(net, loss)(p, a, b)[1], fnn.autodiff_value_and_grad(net, loss)(p, a, b)[1])
    )
    g_m, g_a = both(params, x, y)
    assert tree_rel_err(g_m, g_a) <= 1e-12
