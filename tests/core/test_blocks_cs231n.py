"""CS231n (Stanford, assignment 2) test cases reproduced with fnn's blocks, in float64.

The inputs are rebuilt exactly as the notebooks build them (``np.linspace``, legacy ``np.random.seed``);
the expected numbers are the ones the notebooks print (8-10 significant digits, so compared with
rtol 1e-8 or an absolute 1e-8 for the 8-decimal ones), and each is recomputed here with plain NumPy too.

- FullyConnectedNets.ipynb: ``affine_forward``, ``relu_forward``, the ``TwoLayerNet`` scores and
  losses (and its numeric gradient check), the ``affine_backward`` / ``relu_backward`` numeric checks;
- BatchNormalization.ipynb: the batch norm "before / after" statistics, the running averages at test
  time (CS231n's convention: ``BatchNorm(convention="cs231n")``; its ``momentum=0.9`` weighs the old
  value, fnn's ``momentum=0.1`` the new batch: the same rule), the ``batchnorm_backward`` numeric check
  and the two derivations (``batchnorm_backward`` staged, ``batchnorm_backward_alt`` closed form);
- LayerNormalization.ipynb: the layer norm statistics and its ``layernorm_backward`` numeric check.

CS231n's weights are (D, M), x·w; fnn's ``W`` is its transpose, (M, D), as torch's Linear.weight.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from fnn.check.derivation import _x64
from fnn.core.blocks import Activate, BatchNorm, Dense, LayerNorm
from fnn.core.network import Network


@pytest.fixture(autouse=True)
def f64():
    with _x64():
        yield


# ---- CS231n's helpers (cs231n/gradient_check.py, the notebooks' rel_error), as they are written there -----
def rel_error(x, y):
    return np.max(np.abs(x - y) / (np.maximum(1e-8, np.abs(x) + np.abs(y))))


def eval_numerical_gradient(f, x, h=1e-5):
    """The central difference of a scalar ``f`` at every entry of ``x`` (changed in place, restored)."""
    grad = np.zeros_like(x)
    for ix in np.ndindex(x.shape):
        old = x[ix]
        x[ix] = old + h
        fxph = f(x)
        x[ix] = old - h
        fxmh = f(x)
        x[ix] = old
        grad[ix] = (fxph - fxmh) / (2 * h)
    return grad


def eval_numerical_gradient_array(f, x, df, h=1e-5):
    """The gradient of ``sum(f(x) * df)`` for an upstream gradient ``df``: ``sum((f(x + h) − f(x − h)) ·
    df) / 2h`` at every entry (the difference first, as CS231n writes it: the entries that do not move
    cancel exactly)."""
    grad = np.zeros_like(x)
    for ix in np.ndindex(x.shape):
        old = x[ix]
        x[ix] = old + h
        pos = np.array(f(x))
        x[ix] = old - h
        neg = np.array(f(x))
        x[ix] = old
        grad[ix] = np.sum((pos - neg) * df) / (2 * h)
    return grad


# ---- FullyConnectedNets.ipynb ----------------------------------------------------------------------
def test_affine_forward():
    num_inputs, input_shape, output_dim = 2, (4, 5, 6), 3
    input_size = num_inputs * np.prod(input_shape)
    weight_size = output_dim * np.prod(input_shape)
    x = np.linspace(-0.1, 0.5, num=input_size).reshape(num_inputs, *input_shape)
    w = np.linspace(-0.2, 0.3, num=weight_size).reshape(np.prod(input_shape), output_dim)
    b = np.linspace(-0.3, 0.1, num=output_dim)
    correct_out = np.array([[1.49834967, 1.70660132, 1.91485297], [3.25553199, 3.5141327, 3.77273342]])

    x2 = jnp.asarray(x.reshape(num_inputs, -1))
    params = {"W": jnp.asarray(w.T), "b": jnp.asarray(b)}
    out, _, _ = Dense(output_dim).forward(params, x2)
    np.testing.assert_allclose(out, correct_out, rtol=1e-8)
    np.testing.assert_allclose(out, x2 @ w + b, rtol=1e-14)  # plain NumPy
    np.testing.assert_allclose(Network(120, [Dense(output_dim)]).apply([params], x2), out, rtol=1e-15)


def test_relu_forward():
    x = np.linspace(-0.5, 0.5, num=12).reshape(3, 4)
    correct_out = np.array([[0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.04545455, 0.13636364], [0.22727273, 0.31818182, 0.40909091, 0.5]])
    out, _, _ = Activate("relu").forward({}, jnp.asarray(x))
    np.testing.assert_allclose(out, correct_out, rtol=1e-7, atol=0)  # printed to 8 decimals: 0.04545455 = 1/22 rounded
    np.testing.assert_array_equal(out, np.maximum(0, x))


def test_affine_and_relu_backward_numeric_checks():
    """The notebooks' ``affine_backward`` and ``relu_backward`` checks: fnn's hand-derived backward pass
    against CS231n's numeric gradient (the notebook expects errors around 1e-10 or less)."""
    np.random.seed(231)
    x = np.random.randn(10, 2, 3)
    w = np.random.randn(6, 5)
    b = np.random.randn(5)
    dout = np.random.randn(10, 5)
    x2 = x.reshape(10, 6)
    dense = Dense(5)

    def fwd(xv, wv, bv):
        return dense.forward({"W": jnp.asarray(wv.T), "b": jnp.asarray(bv)}, jnp.asarray(xv))[0]

    dx_num = eval_numerical_gradient_array(lambda v: fwd(v, w, b), x2.copy(), dout)
    dw_num = eval_numerical_gradient_array(lambda v: fwd(x2, v, b), w.copy(), dout)
    db_num = eval_numerical_gradient_array(lambda v: fwd(x2, w, v), b.copy(), dout)
    params = {"W": jnp.asarray(w.T), "b": jnp.asarray(b)}
    _, _, res = dense.forward(params, jnp.asarray(x2))
    grads, dx = dense.backward(params, res, jnp.asarray(dout))
    assert rel_error(dx_num, np.asarray(dx)) < 1e-9
    assert rel_error(dw_num, np.asarray(grads["W"]).T) < 1e-9
    assert rel_error(db_num, np.asarray(grads["b"])) < 1e-9

    np.random.seed(231)
    x = np.random.randn(10, 10)
    dout = np.random.randn(*x.shape)
    relu = Activate("relu")
    dx_num = eval_numerical_gradient_array(lambda v: relu.forward({}, jnp.asarray(v))[0], x.copy(), dout)
    _, dx = relu.backward({}, relu.forward({}, jnp.asarray(x))[2], jnp.asarray(dout))
    assert rel_error(dx_num, np.asarray(dx)) < 1e-9


# TwoLayerNet: affine - relu - affine - softmax, with the notebook's deterministic parameters
N, D, H, C = 3, 5, 50, 7
TWO_LAYER = Network(D, [Dense(H), Activate("relu"), Dense(C)], output="softmax")


def two_layer_case():
    W1 = np.linspace(-0.7, 0.3, num=D * H).reshape(D, H)
    b1 = np.linspace(-0.1, 0.9, num=H)
    W2 = np.linspace(-0.3, 0.4, num=H * C).reshape(H, C)
    b2 = np.linspace(-0.9, 0.1, num=C)
    X = np.linspace(-5.5, 4.5, num=N * D).reshape(D, N).T
    params = [{"W": jnp.asarray(W1.T), "b": jnp.asarray(b1)}, {}, {"W": jnp.asarray(W2.T), "b": jnp.asarray(b2)}]
    return params, X, (W1, b1, W2, b2)


def test_two_layer_net_scores():
    params, X, (W1, b1, W2, b2) = two_layer_case()
    scores = np.asarray(TWO_LAYER.logits(params, jnp.asarray(X)))
    # the notebook's correct_scores; its third row is only given here to its first two entries (the
    # remaining five as remembered for this test did not reproduce, and cannot all be right: W2 and b2
    # are linspaces, so every row of the scores is an arithmetic progression, and 12.58373087,
    # 13.20054771 continue as 13.81736455, 14.43418138, ...)
    correct = [
        [11.53165108, 12.2917344, 13.05181771, 13.81190102, 14.57198434, 15.33206765, 16.09215096],
        [12.05769098, 12.74614105, 13.43459113, 14.1230412, 14.81149128, 15.49994135, 16.18839143],
    ]
    np.testing.assert_allclose(scores[:2], correct, rtol=1e-8)
    np.testing.assert_allclose(scores[2, :2], [12.58373087, 13.20054771], rtol=1e-8)
    np.testing.assert_allclose(scores, np.maximum(0, X @ W1 + b1) @ W2 + b2, rtol=1e-14)  # plain NumPy
    steps = np.diff(scores, axis=1)
    np.testing.assert_allclose(steps, np.broadcast_to(steps[:, :1], steps.shape), rtol=1e-12)  # each row: a progression


@pytest.mark.parametrize("reg, correct_loss", [(0.0, 3.4702243556), (1.0, 26.5948426952)])
def test_two_layer_net_loss(reg, correct_loss):
    """The mean softmax cross-entropy plus 0.5·reg·Σ W² over the weights (not the biases): fnn's ``l2``."""
    params, X, (W1, b1, W2, b2) = two_layer_case()
    y = np.asarray([0, 5, 1])
    loss = fnn.objective(TWO_LAYER, "cross_entropy", l2=reg)(params, jnp.asarray(X), jnp.asarray(y))
    np.testing.assert_allclose(float(loss), correct_loss, rtol=1e-10)
    scores = np.maximum(0, X @ W1 + b1) @ W2 + b2  # plain NumPy
    z = scores - scores.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    reference = -logp[np.arange(N), y].mean() + 0.5 * reg * (np.sum(W1**2) + np.sum(W2**2))
    np.testing.assert_allclose(float(loss), reference, rtol=1e-14)


@pytest.mark.parametrize("reg", [0.0, 0.7])
def test_two_layer_net_numeric_gradient_check(reg):
    """The notebook's gradient check (reg 0.0 and 0.7): fnn's hand-derived gradient of every parameter
    against CS231n's numeric gradient of the loss (measured, W1 / W2 / b1 / b2: 2.4e-8 / 3.9e-10 / 1.2e-8 /
    2.5e-10 at reg 0, 2.5e-7 / 8.0e-8 / 1.6e-8 / 7.8e-10 at 0.7: the differences' own rounding)."""
    params, X, (W1, b1, W2, b2) = two_layer_case()
    y = np.asarray([0, 5, 1])
    _, grads = fnn.manual_value_and_grad(TWO_LAYER, "cross_entropy", l2=reg)(params, jnp.asarray(X), jnp.asarray(y))
    objective = jax.jit(fnn.objective(TWO_LAYER, "cross_entropy", l2=reg))
    model = {"W1": W1, "b1": b1, "W2": W2, "b2": b2}

    def loss_of(name, value):
        m = {**model, name: value}
        p = [
            {"W": jnp.asarray(m["W1"].T), "b": jnp.asarray(m["b1"])},
            {},
            {"W": jnp.asarray(m["W2"].T), "b": jnp.asarray(m["b2"])},
        ]
        return float(objective(p, jnp.asarray(X), jnp.asarray(y)))

    ours = {"W1": grads[0]["W"].T, "b1": grads[0]["b"], "W2": grads[2]["W"].T, "b2": grads[2]["b"]}
    for name in sorted(model):
        num = eval_numerical_gradient(lambda v, name=name: loss_of(name, v), model[name].copy())
        assert rel_error(num, np.asarray(ours[name])) < 1e-6, name


# ---- BatchNormalization.ipynb ------------------------------------------------------------------------------
def _bn_inputs():
    np.random.seed(231)
    N_, D1, D2, D3 = 200, 50, 60, 3
    X = np.random.randn(N_, D1)
    W1 = np.random.randn(D1, D2)
    W2 = np.random.randn(D2, D3)
    return np.maximum(0, X.dot(W1)).dot(W2)


@pytest.mark.parametrize("convention", ["cs231n", "pytorch"])
def test_batchnorm_train_mode_statistics(convention):
    """The notebook's "before / after batch normalization" check (train mode: the batch's own statistics,
    the same in both conventions)."""
    a = _bn_inputs()
    # (the second mean is -13.18038246 in NumPy; -13.18038367, as first written in this test's brief,
    # does not reproduce: a transcription slip, the other five numbers agree to the printed digits)
    np.testing.assert_allclose(a.mean(axis=0), [-2.3814598, -13.18038246, 1.91780462], rtol=1e-8)
    np.testing.assert_allclose(a.std(axis=0), [27.18502186, 34.21455511, 37.68611762], rtol=1e-8)
    block = BatchNorm(convention=convention)
    params = block.init(jax.random.key(0), 3, jnp.float64)
    for gamma, beta in (([1.0, 1.0, 1.0], [0.0, 0.0, 0.0]), ([1.0, 2.0, 3.0], [11.0, 12.0, 13.0])):
        p = {**params, "gamma": jnp.asarray(gamma), "beta": jnp.asarray(beta)}
        out = np.asarray(block.forward(p, jnp.asarray(a), None, True)[0])
        np.testing.assert_allclose(out.mean(axis=0), beta, rtol=0, atol=1e-12)
        # ε = 1e-5 inside the square root: the stds are γ·σ/√(σ² + ε), 0.99999999... for γ = 1 as printed
        np.testing.assert_allclose(out.std(axis=0), gamma, rtol=1e-8)
        np.testing.assert_allclose(
            out, np.asarray(gamma) * (a - a.mean(0)) / np.sqrt(a.var(0) + 1e-5) + beta, rtol=1e-12, atol=1e-12
        )


def _test_time_statistics(convention):
    np.random.seed(231)
    N_, D1, D2, D3 = 200, 50, 60, 3
    W1 = np.random.randn(D1, D2)
    W2 = np.random.randn(D2, D3)
    block = BatchNorm(momentum=0.1, convention=convention)  # CS231n's momentum 0.9: the weight of the old value
    params = block.init(jax.random.key(0), D3, jnp.float64)
    forward = jax.jit(block.forward, static_argnums=(3,))
    rm, rv = np.zeros(D3), np.zeros(D3)  # CS231n's batchnorm_forward in plain NumPy, beside
    for _ in range(50):
        X = np.random.randn(N_, D1)
        a = np.maximum(0, X.dot(W1)).dot(W2)
        params = {**params, "state": forward(params, jnp.asarray(a), None, True)[1]}
        rm, rv = 0.9 * rm + 0.1 * a.mean(axis=0), 0.9 * rv + 0.1 * a.var(axis=0)
    X = np.random.randn(N_, D1)
    a = np.maximum(0, X.dot(W1)).dot(W2)
    out = np.asarray(forward(params, jnp.asarray(a), None, False)[0])
    return out, params["state"], (a - rm) / np.sqrt(rv + 1e-5), (rm, rv)


def test_batchnorm_running_averages_at_test_time():
    """The notebook's test-time check: 50 train-mode batches, then a fresh batch normalised with the
    running averages. The means and stds are those the notebook prints when run with a correct
    batchnorm_forward (noisier than train mode's; CS231n's own text only says "≈ 0" and "≈ 1"); plain
    NumPy of CS231n's batchnorm_forward reproduces all six to the printed digits."""
    out, state, numpy_out, (rm, rv) = _test_time_statistics("cs231n")
    np.testing.assert_allclose(out.mean(axis=0), [-0.03927354, -0.04349152, -0.10452688], rtol=0, atol=1e-8)
    np.testing.assert_allclose(out.std(axis=0), [1.01531428, 1.01238373, 0.97819988], rtol=0, atol=1e-8)
    np.testing.assert_allclose(out, numpy_out, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(state["mean"], rm, rtol=1e-12)
    np.testing.assert_allclose(state["var"], rv, rtol=1e-12)
    # the numbers pin the convention: PyTorch's has the same running mean, but its running variance
    # (starting at 1, updated with the unbiased estimate) moves the stds by more than the printed digits
    out_pt, state_pt = _test_time_statistics("pytorch")[:2]
    np.testing.assert_allclose(state_pt["mean"], state["mean"], rtol=1e-12)
    assert np.max(np.abs(out_pt.std(axis=0) - out.std(axis=0))) > 1e-3


def test_batchnorm_backward_numeric_check_and_the_two_derivations():
    """The notebook's ``batchnorm_backward`` check (x = 5·N(0, 1) + 12, errors expected below ~1e-8), then
    its comparison of the staged and the closed-form derivations on a larger batch."""
    np.random.seed(231)
    N_, D_ = 4, 5
    x = 5 * np.random.randn(N_, D_) + 12
    gamma = np.random.randn(D_)
    beta = np.random.randn(D_)
    dout = np.random.randn(N_, D_)
    block = BatchNorm(convention="cs231n")
    state = block.init(jax.random.key(0), D_, jnp.float64)["state"]

    def fwd(xv, g, b):
        return block.forward({"gamma": jnp.asarray(g), "beta": jnp.asarray(b), "state": state}, jnp.asarray(xv), None, True)[0]

    dx_num = eval_numerical_gradient_array(lambda v: fwd(v, gamma, beta), x.copy(), dout)
    da_num = eval_numerical_gradient_array(lambda v: fwd(x, v, beta), gamma.copy(), dout)
    db_num = eval_numerical_gradient_array(lambda v: fwd(x, gamma, v), beta.copy(), dout)
    params = {"gamma": jnp.asarray(gamma), "beta": jnp.asarray(beta), "state": state}
    res = block.forward(params, jnp.asarray(x), None, True)[2]
    for backward in (block.backward, block.backward_staged):
        grads, dx = backward(params, res, jnp.asarray(dout))
        assert rel_error(dx_num, np.asarray(dx)) < 1e-8
        assert rel_error(da_num, np.asarray(grads["gamma"])) < 1e-8
        assert rel_error(db_num, np.asarray(grads["beta"])) < 1e-8

    np.random.seed(231)
    N_, D_ = 100, 500
    x = 5 * np.random.randn(N_, D_) + 12
    params = {
        "gamma": jnp.asarray(np.random.randn(D_)),
        "beta": jnp.asarray(np.random.randn(D_)),
        "state": block.init(jax.random.key(0), D_, jnp.float64)["state"],
    }
    dout = jnp.asarray(np.random.randn(N_, D_))
    res = block.forward(params, jnp.asarray(x), None, True)[2]
    (g1, dx1), (g2, dx2) = block.backward_staged(params, res, dout), block.backward(params, res, dout)
    assert rel_error(np.asarray(dx1), np.asarray(dx2)) < 1e-10  # elementwise relative: entries near 0 included
    assert rel_error(np.asarray(g1["gamma"]), np.asarray(g2["gamma"])) == 0
    assert rel_error(np.asarray(g1["beta"]), np.asarray(g2["beta"])) == 0


# ---- LayerNormalization.ipynb ------------------------------------------------------------------------------
def test_layernorm_statistics_and_numeric_check():
    np.random.seed(231)
    N_, D1, D2, D3 = 4, 50, 60, 3
    X = np.random.randn(N_, D1)
    W1 = np.random.randn(D1, D2)
    W2 = np.random.randn(D2, D3)
    a = np.maximum(0, X.dot(W1)).dot(W2)
    block = LayerNorm()
    for gamma, beta in (([1.0, 1.0, 1.0], [0.0, 0.0, 0.0]), ([3.0, 3.0, 3.0], [5.0, 5.0, 5.0])):
        out = np.asarray(block.forward({"gamma": jnp.asarray(gamma), "beta": jnp.asarray(beta)}, jnp.asarray(a))[0])
        np.testing.assert_allclose(out.mean(axis=1), beta[0], rtol=1e-12, atol=1e-12)  # per example
        np.testing.assert_allclose(out.std(axis=1), gamma[0], rtol=1e-6)  # ε: a row's σ² can be small-ish
        mu, var = a.mean(axis=1, keepdims=True), a.var(axis=1, keepdims=True)
        np.testing.assert_allclose(out, np.asarray(gamma) * (a - mu) / np.sqrt(var + 1e-5) + beta, rtol=1e-12, atol=1e-12)

    np.random.seed(231)
    N_, D_ = 4, 5
    x = 5 * np.random.randn(N_, D_) + 12
    gamma = np.random.randn(D_)
    beta = np.random.randn(D_)
    dout = np.random.randn(N_, D_)

    def fwd(xv, g, b):
        return block.forward({"gamma": jnp.asarray(g), "beta": jnp.asarray(b)}, jnp.asarray(xv))[0]

    dx_num = eval_numerical_gradient_array(lambda v: fwd(v, gamma, beta), x.copy(), dout)
    da_num = eval_numerical_gradient_array(lambda v: fwd(x, v, beta), gamma.copy(), dout)
    db_num = eval_numerical_gradient_array(lambda v: fwd(x, gamma, v), beta.copy(), dout)
    params = {"gamma": jnp.asarray(gamma), "beta": jnp.asarray(beta)}
    grads, dx = block.backward(params, block.forward(params, jnp.asarray(x))[2], jnp.asarray(dout))
    assert rel_error(dx_num, np.asarray(dx)) < 1e-8
    assert rel_error(da_num, np.asarray(grads["gamma"])) < 1e-8
    assert rel_error(db_num, np.asarray(grads["beta"])) < 1e-8
