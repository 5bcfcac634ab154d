"""Per-example gradients of networks of blocks: network_per_example_grads and per_example_grad_norms.

Each example's gradient is that of its own loss term within the batch (batch statistics and dropout's mask
shared), so their mean is the batch gradient; without anything coupling the examples it is the gradient
of the example alone. The manual path (the blocks' backward passes vmapped over one-hot output errors)
must equal autodiff's (jax.jacrev of the per-example losses) to rounding, in float64.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from fnn.analysis.metrics import network_per_example_grads, per_example_grad_norms
from fnn.core import blocks as B
from fnn.core import losses as L
from fnn.core.network import trainable

B_SIZE, N_IN, N_OUT = 6, 4, 3
CE = L.get("cross_entropy")
per_example = jax.jit(network_per_example_grads, static_argnums=(0, 1, 2, 7))


def _coupled():
    """Batch norm (train mode couples the examples), dropout, two residuals (one with a projection)."""
    return fnn.Network(
        N_IN,
        [
            B.Dense(5),
            B.BatchNorm(),
            B.Activate("tanh"),
            B.Dropout(0.25),
            B.Residual([B.Dense(5), B.LayerNorm(), B.Activate("tanh")]),
            B.Residual([B.Dense(6), B.Activate("elu")]),
            B.Dense(N_OUT),
        ],
        output="softmax",
    )


def _uncoupled():
    """Nothing couples the examples: layer norm, residuals, no dropout in train mode."""
    return fnn.Network(
        N_IN,
        [B.Dense(5), B.LayerNorm(), B.Activate("tanh"), B.Residual([B.Dense(5), B.Activate("elu")]), B.Dense(N_OUT)],
        output="softmax",
    )


def _data():
    x = jax.random.normal(jax.random.key(1), (B_SIZE, N_IN), jnp.float64)
    y = jnp.array([0, 1, 2, 2, 1, 0])
    return x, y, jax.nn.one_hot(y, N_OUT, dtype=jnp.float64)


def _max_diff(a, b):
    return max(float(jnp.max(jnp.abs(u - v))) for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
def test_manual_equals_autodiff_and_their_mean_is_the_batch_gradient(x64, train):
    net = _coupled()
    params = net.init(jax.random.key(0), jnp.float64)
    if not train:  # running statistics away from init
        params[1] = {**params[1], "state": {"mean": jnp.full(5, 0.3), "var": jnp.full(5, 1.7)}}
    x, y, t = _data()
    key = jax.random.key(2)
    manual = per_example(net, CE, "manual", params, x, t, key, train)
    auto = per_example(net, CE, "autodiff", params, x, t, key, train)
    assert jax.tree.structure(manual) == jax.tree.structure(params) == jax.tree.structure(auto)
    assert manual[0]["W"].shape == (B_SIZE, 5, N_IN) and manual[1]["state"]["var"].shape == (B_SIZE, 5)
    assert _max_diff(manual, auto) < 1e-12
    assert float(jnp.max(jnp.abs(manual[1]["state"]["mean"]))) == 0.0  # running statistics are not trained
    _, batch = fnn.manual_value_and_grad(net, "cross_entropy", train=train)(params, x, y, key)
    for g in (manual, auto):
        assert _max_diff(jax.tree.map(lambda a: a.mean(0), g), batch) < 1e-13
    if train:  # the examples interact through the batch statistics: not the per-example vmap
        alone = jax.vmap(lambda xi, ti: per_example(net, CE, "autodiff", params, xi[None], ti[None], None, False))(x, t)
        assert _max_diff(jax.tree.map(lambda a: a[:, 0], alone), manual) > 1e-3


def test_without_batch_coupling_it_is_the_vmap_of_single_example_gradients(x64):
    net = _uncoupled()
    params = net.init(jax.random.key(0), jnp.float64)
    x, y, t = _data()
    manual = per_example(net, CE, "manual", params, x, t, None, True)
    single = fnn.manual_value_and_grad(net, "cross_entropy")
    alone = jax.vmap(lambda xi, yi: single(params, xi, yi)[1])(x, y)  # one example at a time
    assert _max_diff(manual, alone) < 1e-13
    assert _max_diff(manual, per_example(net, CE, "autodiff", params, x, t, None, True)) < 1e-12


def test_per_example_grad_norms_of_a_network(x64):
    net = _coupled()
    params = net.init(jax.random.key(0), jnp.float64)
    x, y, t = _data()
    key = jax.random.key(2)
    g = per_example(net, CE, "manual", params, x, t, key, True)
    want = np.sqrt(sum(np.sum(np.square(a).reshape(B_SIZE, -1), 1) for a in jax.tree.leaves(trainable(g))))
    for grad in ("manual", "autodiff"):
        norms = per_example_grad_norms(net, params, x, y, loss="cross_entropy", grad=grad, key=key)
        np.testing.assert_allclose(norms, want, rtol=1e-12)
    per_block = per_example_grad_norms(net, params, x, y, loss="cross_entropy", key=key, per_layer=True)
    assert per_block.shape == (B_SIZE, len(net.blocks))
    np.testing.assert_array_equal(per_block[:, [2, 3]], 0.0)  # tanh and dropout have no parameters
    np.testing.assert_allclose(np.sqrt(np.sum(np.square(per_block), 1)), want, rtol=1e-12)


def test_per_example_grad_norms_of_a_model_and_bad_arguments(x64):
    model = fnn.Model(lambda k: {"w": jax.random.normal(k, (N_IN, N_OUT))}, lambda p, x: x @ p["w"], (N_IN, N_OUT), "softmax")
    params = model.init(jax.random.key(0), jnp.float64)
    x, y, _ = _data()
    norms = per_example_grad_norms(model, params, x, y, loss="cross_entropy", grad="autodiff")
    w = jax.vmap(jax.grad(lambda p, xi, yi: fnn.objective(model, "cross_entropy")(p, xi[None], yi[None])), in_axes=(None, 0, 0))(
        params, x, y
    )
    np.testing.assert_allclose(norms, np.linalg.norm(np.asarray(w["w"]).reshape(B_SIZE, -1), axis=1), rtol=1e-12)
    with pytest.raises(ValueError, match="a Model has no hand-derived backward pass"):
        per_example_grad_norms(model, params, x, y, loss="cross_entropy")
    with pytest.raises(ValueError, match="`per_layer` needs layers"):
        per_example_grad_norms(model, params, x, y, loss="cross_entropy", grad="autodiff", per_layer=True)
    net = _coupled()
    with pytest.raises(ValueError, match="dropout: train mode needs `key="):
        per_example_grad_norms(net, net.init(jax.random.key(0), jnp.float64), x, y, loss="cross_entropy")
    mlp = fnn.MLP((N_IN, 3, N_OUT), output="softmax")
    with pytest.raises(TypeError, match="an MLP has no mode"):
        per_example_grad_norms(mlp, mlp.init(jax.random.key(0)), x, y, loss="cross_entropy", train=False)
