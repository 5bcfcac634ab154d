"""fnn.metrics: evaluate's accuracy on hand cases whose answer is worked out here.

Every network is one layer with W = I and b = 0, so its output is f(x) for the rows x chosen below:
σ(x) elementwise for a sigmoid output, softmax(x) for a softmax one (whose argmax is argmax(x)).
"""

import jax.numpy as jnp
import numpy as np
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
    assert m["accuracy"].dtype == jnp.float64 and float(m["accuracy"]) == 2 / 3
    relu = fnn.MLP((3, 3, 1), hidden="relu")
    p = [{"W": -jnp.eye(3, dtype=jnp.float64), "b": jnp.array([0.0, 2.0, 5.0])}, {"W": jnp.ones((1, 3)), "b": jnp.zeros(1)}]
    # on rows of ones z = -1, 1, 4: one unit of three dead
    health = fnn.metrics.unit_health(relu, p, jnp.ones((2, 3), jnp.float64))
    assert health["dead_fraction"].dtype == jnp.float64 and float(health["dead_fraction"][0]) == 1 / 3
