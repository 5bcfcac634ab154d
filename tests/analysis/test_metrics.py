"""fnn.metrics: evaluate's accuracy on hand cases whose answer is worked out here.

Every network is one layer with W = I and b = 0, so its output is f(x) for the rows x chosen below:
σ(x) elementwise for a sigmoid output, softmax(x) for a softmax one (whose argmax is argmax(x)).
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import fnn


def _identity_layer(k, output):
    """MLP((k, k), hidden=(), output=output) with W = I, b = 0: the output is f(x)."""
    return fnn.MLP((k, k), hidden=(), output=output), [{"W": jnp.eye(k), "b": jnp.zeros(k)}]


def _accuracy(net, params, x, y, loss):
    return float(fnn.evaluate(net, params, jnp.asarray(x), y, loss=loss)["accuracy"])


# softmax rows: argmax(x) = 0, 1, 2, 1 (no ties)
SOFTMAX_X = np.array([[3.0, 1.0, 0.0], [0.0, 2.0, 1.0], [1.0, 0.0, 5.0], [2.0, 2.5, 0.0]])


def test_binary_accuracy_thresholds_each_output_strictly_above_one_half():
    """bce, one sigmoid output: predicted 1 where σ(x) > ½. σ(0) = ½ exactly counts as 0."""
    net, params = _identity_layer(1, "sigmoid")
    x = np.array([[0.0], [1e-3], [-1e-3], [2.0], [-2.0]])
    out = np.asarray(net.apply(params, jnp.asarray(x)))[:, 0]
    assert out[0] == 0.5 and 0.5 < out[1] < 0.501 and 0.499 < out[2] < 0.5  # the cases are what they claim
    # predicted [0, 1, 0, 1, 0] against [0, 1, 0, 0, 1]: right on the first three -> 3/5
    y = np.array([0.0, 1.0, 0.0, 0.0, 1.0])
    assert _accuracy(net, params, x, y, "bce") == pytest.approx(3 / 5)
    assert _accuracy(net, params, x, y.astype(int), "bce") == pytest.approx(3 / 5)  # integer 0/1 labels
    assert _accuracy(net, params, x, y[:, None], "bce") == pytest.approx(3 / 5)  # shape (N, 1)
    # a soft target of exactly ½ is class 0 as well (t > ½ is false): the last row becomes a hit -> 4/5
    assert _accuracy(net, params, x, np.array([0.0, 1.0, 0.0, 0.0, 0.5]), "bce") == pytest.approx(4 / 5)
    # all predictions flipped against the targets: the three hits become misses and the misses hits -> 2/5
    assert _accuracy(net, params, x, 1.0 - y, "bce") == pytest.approx(2 / 5)


def test_binary_accuracy_of_several_outputs_is_the_fraction_of_outputs_right():
    """bce, three sigmoid outputs: each (row, output) is one prediction; a row is not scored as a whole."""
    net, params = _identity_layer(3, "sigmoid")
    x = np.array([[1.0, -1.0, 0.0], [1.0, 1.0, -1.0]])  # predicted [[1, 0, 0], [1, 1, 0]] (σ(0) = ½ -> 0)
    y = np.array([[1.0, 0.0, 0.0], [1.0, 1.0, 1.0]])  # hits [[1, 1, 1], [1, 1, 0]]
    assert _accuracy(net, params, x, y, "bce") == pytest.approx(5 / 6)  # rows all right: 1/2
    reference = np.mean((1 / (1 + np.exp(-x)) > 0.5) == (y > 0.5))  # numpy, from the definition
    assert reference == pytest.approx(5 / 6)


@pytest.mark.parametrize(
    "loss, y",
    [
        ("cross_entropy", np.array([0, 1, 0, 0])),  # class indices
        ("cross_entropy", np.eye(3)[[0, 1, 0, 0]]),  # one-hot rows
        ("mse", np.array([0, 1, 0, 0])),  # mse with integer class indices: the seed's one-hot d
    ],
)
def test_argmax_accuracy_of_class_targets(loss, y):
    """softmax predicts classes 0, 1, 2, 1 against 0, 1, 0, 0: the first two right -> 1/2."""
    net, params = _identity_layer(3, "softmax")
    assert _accuracy(net, params, SOFTMAX_X, y, loss) == pytest.approx(1 / 2)


def test_argmax_accuracy_of_soft_targets_takes_the_targets_argmax():
    """cross_entropy with probability rows: a row's class is its largest entry ([0.6, 0.4, 0] is class 0)."""
    net, params = _identity_layer(3, "softmax")
    soft = np.array([[0.6, 0.4, 0.0], [0.3, 0.45, 0.25], [0.4, 0.35, 0.25], [0.1, 0.8, 0.1]])  # classes 0, 1, 0, 1
    # predicted 0, 1, 2, 1: hits 1, 1, 0, 1 -> 3/4 (no entry is above ½ in rows 2 and 3: a threshold would differ)
    assert _accuracy(net, params, SOFTMAX_X, soft, "cross_entropy") == pytest.approx(3 / 4)
    # and the loss is the definition's: mean over rows of -Σ_k t_k log softmax(x)_k
    logp = SOFTMAX_X - np.log(np.exp(SOFTMAX_X).sum(1, keepdims=True))
    loss = float(fnn.evaluate(net, params, jnp.asarray(SOFTMAX_X), soft, loss="cross_entropy")["loss"])
    assert loss == pytest.approx(np.mean(-(soft * logp).sum(1)), rel=1e-6)


def test_mse_with_float_targets_has_no_accuracy():
    """Documented in accuracy_kind: mse scores argmax only for integer class indices; float rows (one-hot or
    soft, even under a softmax output) are regression targets, and the accuracy is NaN."""
    net, params = _identity_layer(3, "softmax")
    assert _accuracy(net, params, SOFTMAX_X, np.array([0, 1, 0, 0]), "mse") == pytest.approx(1 / 2)
    assert np.isnan(_accuracy(net, params, SOFTMAX_X, np.eye(3)[[0, 1, 0, 0]], "mse"))
    assert np.isnan(_accuracy(net, params, SOFTMAX_X, np.array([[0.6, 0.4, 0.0]] * 4), "mse"))


def test_accuracy_is_nan_when_an_output_or_target_is_nan():
    out, t = jnp.array([[0.9, 0.1], [0.2, 0.8]]), jnp.array([[1.0, 0.0], [1.0, 0.0]])
    assert float(fnn.metrics.accuracy("argmax", out, t)) == 0.5
    assert float(fnn.metrics.accuracy("threshold", out, t)) == 0.5  # row 0: both outputs right, row 1: both wrong
    assert np.isnan(float(fnn.metrics.accuracy("argmax", out.at[0, 0].set(jnp.nan), t)))
    assert np.isnan(float(fnn.metrics.accuracy("threshold", out, t.at[1, 1].set(jnp.nan))))
    assert np.isnan(float(fnn.metrics.accuracy(None, out, t)))  # regression: no accuracy


def test_fractions_keep_a_float64_runs_precision(x64):
    """2 of 3 right is 2/3 to float64's precision, in float64 (jnp.mean of booleans alone is float32)."""
    net = fnn.MLP((3, 3), hidden=(), output="softmax")
    params = [{"W": jnp.eye(3, dtype=jnp.float64), "b": jnp.zeros(3, jnp.float64)}]
    m = fnn.evaluate(net, params, jnp.eye(3, dtype=jnp.float64), jnp.array([0, 1, 0]), loss="cross_entropy")
    assert m["accuracy"] == 2 / 3  # a Python float read from the float64 value: float32's 2/3 would differ
    relu = fnn.MLP((3, 3, 1), hidden="relu")
    p = [{"W": -jnp.eye(3, dtype=jnp.float64), "b": jnp.array([0.0, 2.0, 5.0])}, {"W": jnp.ones((1, 3)), "b": jnp.zeros(1)}]
    # on rows of ones z = -1, 1, 4: one unit of three dead
    health = fnn.metrics.unit_health(relu, p, jnp.ones((2, 3), jnp.float64))
    assert health["dead_fraction"].dtype == jnp.float64 and float(health["dead_fraction"][0]) == 1 / 3


# ---- evaluate's numbers, the per-layer norms' meaning, per-example gradient norms ----

NET3 = fnn.MLP((3, 5, 4, 2), hidden="tanh", output="softmax")
P3 = NET3.init(jax.random.key(0))
X3 = jax.random.normal(jax.random.key(1), (7, 3))
Y3 = jnp.arange(7) % 2


def test_evaluate_returns_python_floats_outside_jit_and_arrays_inside():
    m = fnn.evaluate(NET3, P3, X3, Y3, loss="cross_entropy")
    assert type(m["loss"]) is float and type(m["accuracy"]) is float
    out = np.asarray(NET3.apply(P3, X3), np.float64)
    assert m["accuracy"] == pytest.approx(np.mean(out.argmax(-1) == np.asarray(Y3)), rel=1e-6)
    assert m["loss"] == pytest.approx(-np.mean(np.log(out[np.arange(7), np.asarray(Y3)])), rel=1e-5)
    jitted = jax.jit(lambda p, x: fnn.evaluate(NET3, p, x, Y3, loss="cross_entropy"))(P3, X3)
    assert all(isinstance(v, jax.Array) and v.shape == () for v in jitted.values())
    assert float(jitted["loss"]) == pytest.approx(m["loss"], rel=1e-6) and float(jitted["accuracy"]) == m["accuracy"]
    stacked = NET3.init_stacked(jax.random.key(2), 3)
    many = jax.vmap(lambda p: fnn.evaluate(NET3, p, X3, Y3, loss="cross_entropy"))(stacked)
    assert many["loss"].shape == (3,) and np.isfinite(many["loss"]).all()
    g = jax.grad(lambda p: fnn.evaluate(NET3, p, X3, Y3, loss="cross_entropy")["loss"])(P3)  # differentiable
    _, want = fnn.autodiff_value_and_grad(NET3, "cross_entropy")(P3, X3, Y3)
    np.testing.assert_allclose(g[0]["W"], want[0]["W"], rtol=1e-5, atol=1e-7)
    assert np.isnan(fnn.evaluate(NET3, P3, X3, jnp.zeros((7, 2)), loss="mse")["accuracy"])  # regression: a NaN float


def test_layer_norms_are_of_the_weights_only_unless_the_biases_are_asked_for():
    tree = [
        {"W": jnp.array([[1.0, 2.0], [2.0, 0.0]]), "b": jnp.array([4.0, 0.0])},
        {"W": jnp.array([[0.0, 3.0]]), "b": jnp.array([4.0])},
    ]
    np.testing.assert_allclose(fnn.metrics.layer_norms(tree), [3.0, 3.0])  # √(1+4+4), √9
    np.testing.assert_allclose(fnn.metrics.layer_norms(tree, leaves=("W", "b")), [5.0, 5.0])  # √(9+16)
    np.testing.assert_allclose(fnn.metrics.layer_norms(tree, leaves=("b",)), [4.0, 4.0])
    with pytest.raises(ValueError, match=r"`leaves` must be \('W',\), \('b',\) or \('W', 'b'\), got \('w',\)"):
        fnn.metrics.layer_norms(tree, leaves=("w",))
    with pytest.raises(TypeError, match=r"`tree\[0\]` must be a dict with an array 'b'"):
        fnn.metrics.layer_norms([{"W": jnp.ones((2, 2))}], leaves=("W", "b"))


def test_the_historys_grad_norm_is_the_weights_gradient_norm():
    """fit(grad_norms=True), one full-batch step: grad_norm is ‖∂E/∂W⁽ˡ⁾‖ at the start, the biases left out."""
    _, h = fnn.fit(NET3, P3, (X3, Y3), loss="cross_entropy", optimizer=optax.sgd(0.1), epochs=1, grad_norms=True, progress=False)
    _, g = fnn.autodiff_value_and_grad(NET3, "cross_entropy")(P3, X3, Y3)
    weights = [np.linalg.norm(np.asarray(layer["W"], np.float64)) for layer in g]
    both = [
        np.sqrt(np.linalg.norm(np.asarray(layer["W"], np.float64)) ** 2 + np.sum(np.asarray(layer["b"], np.float64) ** 2))
        for layer in g
    ]
    np.testing.assert_allclose(h["grad_norm"][0], weights, rtol=1e-5)
    assert not np.allclose(h["grad_norm"][0], both, rtol=1e-3)  # the biases' share is visible, and left out


def _loop_norms(net, params, x, y, loss):
    """The reference: jax.grad of each example's own loss, one example at a time, in float64 numpy norms."""
    E = fnn.objective(net, loss)
    rows = []
    for i in range(x.shape[0]):
        g = jax.grad(E)(params, x[i], y[i])
        rows.append([np.sqrt(sum(np.sum(np.asarray(a, np.float64) ** 2) for a in layer.values())) for layer in g])
    return np.array(rows)  # (B, L)


@pytest.mark.parametrize(
    ("net", "loss", "y"),
    [
        (NET3, "cross_entropy", Y3),
        (fnn.MLP((3, 6, 2), hidden="relu"), "mse", jax.random.normal(jax.random.key(3), (7, 2))),
        (fnn.MLP((3, 4, 1), hidden="sigmoid", output="sigmoid"), "bce", jnp.arange(7) % 2),
    ],
)
@pytest.mark.parametrize("grad", ["manual", "autodiff"])
def test_per_example_grad_norms_equal_a_loop_of_jax_grad(net, loss, y, grad):
    params = net.init(jax.random.key(4))
    want = _loop_norms(net, params, X3, y, loss)
    got = fnn.metrics.per_example_grad_norms(net, params, X3, y, loss=loss, grad=grad)
    assert got.shape == (7,) and got.dtype == jnp.float32
    np.testing.assert_allclose(got, np.sqrt(np.sum(want**2, 1)), rtol=2e-5)
    per_layer = fnn.metrics.per_example_grad_norms(net, params, X3, y, loss=loss, grad=grad, per_layer=True)
    np.testing.assert_allclose(per_layer, want, rtol=2e-5)
    jitted = jax.jit(lambda p, x: fnn.metrics.per_example_grad_norms(net, p, x, y, loss=loss, grad=grad))(params, X3)
    np.testing.assert_allclose(jitted, got, rtol=1e-6)


def test_per_example_grad_norms_agree_with_per_example_grads_in_float64(x64):
    params = NET3.init(jax.random.key(5), jnp.float64)
    x = X3.astype(jnp.float64)
    g = fnn.per_example_grads(NET3, params, x, Y3, loss="cross_entropy")
    want = np.sqrt(sum(np.sum(np.asarray(a) ** 2, axis=tuple(range(1, a.ndim))) for a in jax.tree_util.tree_leaves(g)))
    got = fnn.per_example_grad_norms(NET3, params, x, Y3, loss="cross_entropy")
    assert got.dtype == jnp.float64
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_per_example_grad_norms_bad_input_is_named():
    f = fnn.metrics.per_example_grad_norms
    with pytest.raises(ValueError, match="`grad` must be 'manual' or 'autodiff', got 'fd'"):
        f(NET3, P3, X3, Y3, loss="cross_entropy", grad="fd")
    with pytest.raises(ValueError, match=r"`x` must be a batch \(B, 3\) for per-example gradient norms, got shape \(3,\)"):
        f(NET3, P3, X3[0], Y3[0], loss="cross_entropy")
    with pytest.raises(TypeError, match="`per_layer` must be True or False"):
        f(NET3, P3, X3, Y3, loss="cross_entropy", per_layer="yes")
    with pytest.raises(ValueError, match="`x`.*NaN"):
        f(NET3, P3, X3.at[0, 0].set(jnp.nan), Y3, loss="cross_entropy")
    with pytest.raises(ValueError, match="rows"):
        f(NET3, P3, X3, Y3[:5], loss="cross_entropy")
    with pytest.raises(TypeError, match="`net` must be an fnn.MLP"):
        f("net", P3, X3, Y3, loss="cross_entropy")
