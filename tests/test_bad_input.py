"""The bad-input catalogue: each case asserts the exception type and that the message names the
offending argument and what was expected. Every check fires in Python, before JAX traces."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn

NET = fnn.MLP((2, 4, 3), hidden="tanh", output="softmax")
PARAMS = NET.init(jax.random.key(0))
X = jnp.ones((5, 2))
Y = jnp.array([0, 1, 2, 0, 1])


def _swap(layer, leaf, value):
    p = [dict(l) for l in PARAMS]
    p[layer][leaf] = value
    return p


SPEC_CASES = [
    # (id, callable, exception, message regex)
    ("unknown hidden", lambda: fnn.MLP((2, 3, 1), hidden="swish"), ValueError, "unknown activation 'swish'; valid names are identity, sigmoid, tanh"),
    ("unknown output", lambda: fnn.MLP((2, 3, 1), output="sofmax"), ValueError, "unknown activation 'sofmax'.*softmax"),
    ("softmax hidden", lambda: fnn.MLP((2, 3, 1), hidden="softmax"), ValueError, "`hidden` activation 'softmax' is only valid for the output layer"),
    ("sizes too short", lambda: fnn.MLP((2,)), ValueError, r"`sizes` needs at least 2 entries \(inputs, outputs\), got \(2,\)"),
    ("size zero", lambda: fnn.MLP((2, 0, 1)), ValueError, r"`sizes` entries must be positive, got \(2, 0, 1\)"),
    ("size negative", lambda: fnn.MLP((2, -3, 1)), ValueError, "`sizes` entries must be positive"),
    ("size float", lambda: fnn.MLP((2, 3.5, 1)), TypeError, r"`sizes` must hold ints.*entry 3.5"),
    ("sizes a string", lambda: fnn.MLP("2,3,1"), TypeError, "`sizes` must be a sequence of ints"),
    ("hidden count", lambda: fnn.MLP((2, 3, 3, 1), hidden=("relu",)), ValueError, r"`hidden` has 1 activations but sizes \(2, 3, 3, 1\) has 2 hidden layers"),
    ("unknown init", lambda: fnn.MLP((2, 3, 1), init="orthogonal"), ValueError, "unknown initialiser 'orthogonal'; valid names are auto"),
    ("init key not a key", lambda: NET.init(0), TypeError, r"`key` must be a single jax.random.key\(seed\)"),
    ("init key batch", lambda: NET.init(jax.random.split(jax.random.key(0), 2)), TypeError, "`key` must be a single jax.random.key"),
    ("init int dtype", lambda: NET.init(jax.random.key(0), jnp.int32), TypeError, "`dtype` must be a float dtype, got int32"),
]

FORWARD_CASES = [
    ("x wrong features", lambda: NET.apply(PARAMS, jnp.ones((5, 3))), ValueError, r"`x` has 3 features \(shape \(5, 3\)\) but the network expects 2"),
    ("x transposed", lambda: NET.apply(PARAMS, jnp.ones((2, 5))), ValueError, r"x looks transposed: pass x.T, of shape \(5, 2\)"),
    ("x rank 3", lambda: NET.apply(PARAMS, jnp.ones((4, 5, 2))), ValueError, r"`x` must be a batch \(B, 2\) or one example \(2,\), got shape \(4, 5, 2\); use jax.vmap"),
    ("x scalar", lambda: NET.apply(PARAMS, jnp.float32(1.0)), ValueError, r"`x` must be a batch \(B, 2\) or one example \(2,\), got shape \(\)"),
    ("x int", lambda: NET.apply(PARAMS, jnp.ones((5, 2), jnp.int32)), TypeError, r"`x` has dtype int32; the network needs floats: cast it"),
    ("x bool", lambda: NET.apply(PARAMS, jnp.ones((5, 2), bool)), TypeError, "`x` has dtype bool; the network needs floats"),
    ("x a string", lambda: NET.apply(PARAMS, "data"), TypeError, "`x` must be an array"),
    ("x ragged list", lambda: NET.apply(PARAMS, [[1.0, 2.0], [1.0]]), TypeError, "`x` must be a rectangular array"),
    ("params not a list", lambda: NET.apply({"W": 1}, X), TypeError, "`params` must be a list of 2 layers"),
    ("params too few layers", lambda: NET.apply(PARAMS[:1], X), ValueError, r"`params` has 1 layers but MLP\(sizes=\(2, 4, 3\).* has 2 \(params from a different network\?\)"),
    ("params wrong W shape", lambda: NET.apply(_swap(1, "W", jnp.ones((3, 5))), X), ValueError, r"`params\[1\]\['W'\]` has shape \(3, 5\) but layer 1 of .* expects \(3, 4\)"),
    ("params wrong b shape", lambda: NET.apply(_swap(0, "b", jnp.ones(3)), X), ValueError, r"`params\[0\]\['b'\]` has shape \(3,\) but layer 0 .* expects \(4,\)"),
    ("params missing leaf", lambda: NET.apply([{"W": PARAMS[0]["W"]}, PARAMS[1]], X), ValueError, r"`params\[0\]` must be a dict with keys 'W' and 'b', got \['W'\]"),
    ("params int leaf", lambda: NET.apply(_swap(0, "b", jnp.zeros(4, jnp.int32)), X), TypeError, r"`params\[0\]\['b'\]` has dtype int32; parameters must be floats"),
    ("params from other net", lambda: NET.apply(fnn.MLP((2, 5, 3)).init(jax.random.key(0)), X), ValueError, r"`params\[0\]\['W'\]` has shape \(5, 2\) but layer 0 .* expects \(4, 2\)"),
]

LOSS_CASES = [
    ("unknown loss", lambda: fnn.manual_value_and_grad(NET, "hinge"), ValueError, "unknown loss 'hinge'; valid names are mse, cross_entropy, bce"),
    ("loss not a str", lambda: fnn.objective(NET, None), TypeError, "`loss` must be a name"),
    ("ce without softmax", lambda: fnn.manual_value_and_grad(fnn.MLP((2, 3)), "cross_entropy"), ValueError, "loss 'cross_entropy' needs output='softmax'.*output is 'identity'"),
    ("bce without sigmoid", lambda: fnn.autodiff_value_and_grad(NET, "bce"), ValueError, "loss 'bce' needs output='sigmoid'.*output is 'softmax'"),
    ("net not an MLP", lambda: fnn.manual_value_and_grad("net", "mse"), TypeError, "`net` must be an fnn.MLP"),
    ("y float class labels", lambda: fnn.manual_value_and_grad(NET, "cross_entropy")(PARAMS, X, Y.astype(jnp.float32)), ValueError, "cast class indices to int"),
    ("y out of range", lambda: fnn.manual_value_and_grad(NET, "cross_entropy")(PARAMS, X, jnp.array([0, 1, 2, 3, 0])), ValueError, "class indices for 3 classes, but its values span"),
    ("y one-hot width", lambda: fnn.manual_value_and_grad(NET, "cross_entropy")(PARAMS, X, jnp.eye(4)[Y]), ValueError, "one-hot width 4 but the network has 3 outputs"),
    ("y batch length", lambda: fnn.autodiff_value_and_grad(NET, "cross_entropy")(PARAMS, X, Y[:4]), ValueError, r"`y` has shape \(4,\) but `x` is a batch of 5"),
    ("y scalar for batch", lambda: fnn.objective(NET, "cross_entropy")(PARAMS, X, jnp.array(1)), ValueError, r"`y` has shape \(\) but `x` is a batch of 5"),
    ("empty batch", lambda: fnn.manual_value_and_grad(NET, "cross_entropy")(PARAMS, jnp.ones((0, 2)), jnp.zeros(0, int)), ValueError, "`x` is an empty batch"),
    ("mse bad target shape", lambda: fnn.manual_value_and_grad(NET, "mse")(PARAMS, X, jnp.ones((5, 2))), ValueError, r"loss 'mse' expects targets of shape \(5, 3\)"),
    ("bce targets out of [0,1]", lambda: fnn.manual_value_and_grad(fnn.MLP((2, 1), output="sigmoid"), "bce")(fnn.MLP((2, 1), output="sigmoid").init(jax.random.key(0)), X, jnp.full(5, 2.0)), ValueError, r"targets in \[0, 1\]"),
    ("custom_vjp checks too", lambda: fnn.with_manual_vjp(NET, "cross_entropy")(PARAMS, jnp.ones((5, 3)), Y), ValueError, "`x` has 3 features"),
]


@pytest.mark.parametrize("case", SPEC_CASES + FORWARD_CASES + LOSS_CASES, ids=lambda c: c[0])
def test_bad_input(case):
    _, fn, err, match = case
    with pytest.raises(err, match=match):
        fn()


def test_errors_fire_before_tracing():
    """Inside jit the same static checks raise the same clear errors, not XLA shape errors."""
    f = jax.jit(fnn.manual_value_and_grad(NET, "cross_entropy"))
    with pytest.raises(ValueError, match="`x` has 3 features"):
        f(PARAMS, jnp.ones((5, 3)), Y)
    with pytest.raises(ValueError, match="one-hot width 4"):
        f(PARAMS, X, jnp.eye(4)[Y])


def test_lists_are_accepted_where_unambiguous():
    out = NET.apply(PARAMS, [[0.0, 1.0], [1.0, 0.0]])
    assert out.shape == (2, 3)
    E, _ = fnn.manual_value_and_grad(NET, "cross_entropy")(PARAMS, [[0.0, 1.0]], [2])
    assert np.isfinite(float(E))
