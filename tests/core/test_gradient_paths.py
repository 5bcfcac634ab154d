"""Every path of the hand-derived backward pass against ``jax.grad`` of an independent objective.

The oracle below is written from first principles with ``jax.nn`` / ``optax`` functions and plain
``jnp`` (its own forward pass, its own target conversion, its own losses); it shares no code with
``fnn.losses`` or ``fnn.backprop``. For every (output activation, loss) pair and every target form
the API accepts, hypothesis draws the targets (and the inputs), and the test compares, leaf by leaf:

- δ⁽ᴸ⁾ from ``fnn.manual_backprop`` with ``jax.grad`` of the oracle with respect to z⁽ᴸ⁾;
- every parameter gradient of ``fnn.manual_value_and_grad`` with ``jax.grad`` of the oracle;
- ``jax.grad`` through ``fnn.with_manual_vjp`` for params, x and (float targets) y;
- ``fnn.per_example_grads`` with ``vmap`` of the oracle's single-example gradient;

for one example and for a batch, in float32 and float64. (A derivative is never checked against
the formula it implements: that test could not catch the formula's bug.)
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from _helpers import tree_rel_err
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fnn

K = 3  # outputs
SIZES = (2, 4, K)
SETTINGS = settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
# worst relative error seen per (dtype): manual vs the oracle; the tolerance leaves room for rounding only
RTOL = {"float64": 1e-12, "float32": 2e-5}

# ---- the oracle: an objective written without fnn ---------------------------------------------
ORACLE_ACT = {
    "identity": lambda z: z,
    "sigmoid": jax.nn.sigmoid,
    "tanh": jnp.tanh,
    "relu": jax.nn.relu,
    "leaky_relu": lambda z: jax.nn.leaky_relu(z, negative_slope=0.01),
    "elu": jax.nn.elu,
    "softplus": jax.nn.softplus,
    "gelu": lambda z: jax.nn.gelu(z, approximate=True),
    "softmax": jax.nn.softmax,
    "exp": jnp.exp,
}


def oracle_targets(loss: str, y, n_out: int, x_ndim: int, dtype):
    """Class indices -> one-hot (cross_entropy, mse); a 1-output net's targets without the output axis -> with it."""
    y = jnp.asarray(y)
    if jnp.issubdtype(y.dtype, jnp.integer) and loss != "bce":
        return jax.nn.one_hot(y, n_out, dtype=dtype)
    y = y.astype(dtype)
    return y[..., None] if y.ndim == x_ndim - 1 else y


def oracle_loss_of_z(loss: str, output: str, z, t):
    """E(z⁽ᴸ⁾): the loss of one example (rows: batch mean), from the logits."""
    if loss == "mse":
        e = 0.5 * jnp.sum((ORACLE_ACT[output](z) - t) ** 2, axis=-1)
    elif loss == "cross_entropy":
        e = -jnp.sum(t * jax.nn.log_softmax(z, axis=-1), axis=-1)
    elif loss == "poisson":  # half the Poisson deviance of ŷ = exp(z): ŷ − t log ŷ + (t log t − t)
        e = jnp.sum(jnp.exp(z) - t * jnp.log(jnp.exp(z)) + jax.scipy.special.xlogy(t, t) - t, axis=-1)
    else:
        e = jnp.sum(optax.sigmoid_binary_cross_entropy(z, t), axis=-1)
    return jnp.mean(e)


def oracle_forward(net: fnn.MLP, params, x):
    h = x
    for l, p in enumerate(params):
        z = h @ p["W"].T + p["b"]
        h = ORACLE_ACT[net.activations[l].name](z) if l < len(params) - 1 else z
    return z  # the output layer's logits z⁽ᴸ⁾


def oracle_objective(net: fnn.MLP, loss: str):
    def E(params, x, y):
        t = oracle_targets(loss, y, net.sizes[-1], x.ndim, x.dtype)
        return oracle_loss_of_z(loss, net.output.name, oracle_forward(net, params, x), t)

    return E


# ---- target forms ------------------------------------------------------------------------------
def draw_targets(draw, loss: str, form: str, batch: tuple[int, ...], n_out: int, dtype):
    """Targets of one form, values drawn by hypothesis."""
    shape = (*batch, n_out)
    size = int(np.prod(shape))
    unit = st.floats(0.0, 1.0, allow_nan=False, width=32)
    if form == "indices":
        idx = draw(
            st.lists(st.integers(0, n_out - 1), min_size=max(1, int(np.prod(batch))), max_size=max(1, int(np.prod(batch))))
        )
        return np.asarray(idx, np.int32).reshape(batch)
    if form == "one_hot":
        idx = draw(
            st.lists(st.integers(0, n_out - 1), min_size=max(1, int(np.prod(batch))), max_size=max(1, int(np.prod(batch))))
        )
        return np.eye(n_out, dtype=dtype)[np.asarray(idx)].reshape(shape)
    if form == "soft":  # probability rows (sum to 1), some classes possibly 0
        w = np.asarray(draw(st.lists(unit, min_size=size, max_size=size)), np.float64).reshape(shape) + 1e-3
        w[..., 0] *= draw(st.sampled_from([0.0, 1.0]))  # a zero-probability class now and then
        return (w / w.sum(-1, keepdims=True)).astype(dtype)
    if form == "smoothed":  # label smoothing: (1 − ε) one-hot + ε / K
        eps = draw(st.floats(0.0, 0.5))
        idx = draw(
            st.lists(st.integers(0, n_out - 1), min_size=max(1, int(np.prod(batch))), max_size=max(1, int(np.prod(batch))))
        )
        return ((1 - eps) * np.eye(n_out)[np.asarray(idx)].reshape(shape) + eps / n_out).astype(dtype)
    if form == "unnormalised":  # non-negative rows of any sum (e.g. [.5, .5, .5])
        return (np.asarray(draw(st.lists(st.floats(0.0, 3.0, width=32), min_size=size, max_size=size))).reshape(shape)).astype(
            dtype
        )
    if form == "zero_rows":  # all-zero rows (an example masked out) mixed with one-hot rows
        n = max(1, int(np.prod(batch)))
        idx = np.asarray(draw(st.lists(st.integers(0, n_out - 1), min_size=n, max_size=n)))
        mask = np.asarray(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
        return (np.eye(n_out)[idx] * mask[:, None]).reshape(shape).astype(dtype)
    if form == "real":  # any real targets (mse)
        return (
            np.asarray(draw(st.lists(st.floats(-2.0, 2.0, width=32), min_size=size, max_size=size))).reshape(shape).astype(dtype)
        )
    if form == "counts":  # non-negative counts (poisson)
        return np.asarray(draw(st.lists(st.integers(0, 5), min_size=size, max_size=size))).reshape(shape).astype(dtype)
    if form == "binary":  # 0/1 targets (bce)
        return np.asarray(draw(st.lists(st.sampled_from([0.0, 1.0]), min_size=size, max_size=size))).reshape(shape).astype(dtype)
    if form == "interval":  # targets in (0, 1) (bce)
        return np.asarray(draw(st.lists(unit, min_size=size, max_size=size))).reshape(shape).astype(dtype)
    if form == "flat":  # a 1-output network's targets without the output axis: shape `batch`
        return (
            np.asarray(draw(st.lists(unit, min_size=max(1, int(np.prod(batch))), max_size=max(1, int(np.prod(batch))))))
            .reshape(batch)
            .astype(dtype)
        )
    raise AssertionError(form)


# (output, loss, target form, number of outputs): every pairing the API accepts
PATHS = (
    [("softmax", "cross_entropy", f, K) for f in ("indices", "one_hot", "soft", "smoothed", "unnormalised", "zero_rows")]
    + [("sigmoid", "bce", f, K) for f in ("binary", "interval", "zero_rows")]
    + [("sigmoid", "bce", "flat", 1)]
    + [("exp", "poisson", "counts", K)]
    + [(o, "mse", "real", K) for o in fnn.activations.OUTPUT_NAMES]
    + [("softmax", "mse", "indices", K), ("sigmoid", "mse", "one_hot", K), ("identity", "mse", "flat", 1)]
)
IDS = [f"{o}-{l}-{f}-K{k}" for o, l, f, k in PATHS]
# Single examples and float32 share every line of code with the float64 batch except the batch
# scale and the dtype, which do not depend on the output activation: there, mse is checked with one
# output of each kind (linear, elementwise saturating, kinked, softmax) instead of all nine.
REDUCED = [p for p in PATHS if p[1] != "mse" or p[0] in ("identity", "sigmoid", "relu", "softmax")]
REDUCED_IDS = [f"{o}-{l}-{f}-K{k}" for o, l, f, k in REDUCED]


def _net(output: str, n_out: int) -> fnn.MLP:
    return fnn.MLP((*SIZES[:-1], n_out), hidden="tanh", output=output)


def _params(net, dtype, seed):
    params = net.init(jax.random.key(seed), dtype)
    # non-zero biases so that no pre-activation sits on a kink by construction
    return [
        {"W": p["W"], "b": (0.3 * jax.random.normal(jax.random.key(seed + l + 7), p["b"].shape)).astype(dtype)}
        for l, p in enumerate(params)
    ]


def _x(draw, batch, dtype):
    n = int(np.prod(batch)) * SIZES[0] if batch else SIZES[0]
    vals = draw(st.lists(st.floats(-2.0, 2.0, width=32), min_size=n, max_size=n))
    return np.asarray(vals).reshape((*batch, SIZES[0])).astype(dtype)


def _rel(a, b):
    """Largest leaf-wise max|a−b| / max(‖a‖∞, ‖b‖∞, tiny), traced (one compiled check per case).

    In float64 each leaf is measured against its own scale (the strict check). In float32 against the
    largest scale of the whole tree: a leaf summed over examples of both signs (∂E/∂b = Σᵢ δᵢ) can cancel
    to a small value whose float32 rounding, relative to itself, exceeds the bound without any bug
    (seen: 2.9e-5 on a bias leaf while δ⁽ᴸ⁾ agreed to 5e-8); float64 catches wrong formulas, float32
    checks that the dtype runs through without a loss of precision.
    """
    pairs = list(zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)))
    scales = [jnp.maximum(jnp.max(jnp.abs(u)), jnp.max(jnp.abs(v))) for u, v in pairs]
    if pairs and pairs[0][0].dtype == jnp.float32:
        scales = [jnp.max(jnp.stack(scales))] * len(scales)
    errs = [jnp.max(jnp.abs(u - v)) / jnp.maximum(s, jnp.finfo(u.dtype).tiny) for (u, v), s in zip(pairs, scales)]
    return jnp.max(jnp.stack(errs))


@functools.cache
def _checks(output: str, loss: str, n_out: int, full: bool):
    """One jitted function per case: every manual quantity next to its oracle, as relative errors.

    jit retraces per dtype and target shape; hypothesis's examples then only change values. Cases
    with the same target shape and dtype (one-hot, soft, smoothed, unnormalised, zero rows) share
    one compiled check. ``full`` adds jax.grad through the custom_vjp and the per-example gradients
    (batches only): each compiled check costs seconds, so those run for the float64 batch cases.
    """
    net = _net(output, n_out)
    oracle = oracle_objective(net, loss)

    def run(params, x, y):
        out = {}
        E, bp = fnn.manual_backprop(net, loss)(params, x, y)
        E_ref, g_ref = jax.value_and_grad(oracle)(params, x, y)
        out["E"] = jnp.abs(E - E_ref) / jnp.maximum(jnp.abs(E_ref), 1.0)
        out["grads"] = _rel(bp.grads, g_ref)
        z_L = oracle_forward(net, params, x)
        t = oracle_targets(loss, y, n_out, x.ndim, x.dtype)
        out["delta_L"] = _rel(bp.deltas[-1], jax.grad(lambda z: oracle_loss_of_z(loss, output, z, t))(z_L))
        out["dx"] = _rel(bp.dx, jax.grad(oracle, argnums=1)(params, x, y))
        if not full:
            return out
        # jax.grad routed through the custom_vjp: params, x and, for float targets, y
        float_y = jnp.issubdtype(y.dtype, jnp.floating)
        argnums = (0, 1, 2) if float_y else (0, 1)
        g_vjp = jax.grad(fnn.with_manual_vjp(net, loss), argnums=argnums)(params, x, y)

        def differentiable_oracle(p, xx, yy):  # the oracle, differentiable in float targets too
            tt = yy[..., None] if yy.ndim == xx.ndim - 1 else yy
            return oracle_loss_of_z(loss, output, oracle_forward(net, p, xx), tt)

        ref = jax.grad(differentiable_oracle if float_y else oracle, argnums=argnums)(params, x, y)
        for name, a, b in zip(("vjp_params", "vjp_x", "vjp_y"), g_vjp, ref):
            out[name] = _rel(a, b)
        # one gradient per example against vmap of the oracle on one-example batches
        ref_pe = jax.vmap(lambda a, b: jax.grad(oracle)(params, a[None], b[None]))(x, y)
        for grad in ("manual", "autodiff"):
            out[f"per_example_{grad}"] = _rel(fnn.per_example_grads(net, params, x, y, grad=grad, loss=loss), ref_pe)
        return out

    return jax.jit(run)


def _case(data, output, loss, form, n_out, batch, dtype, full=False):
    net = _net(output, n_out)
    params = _params(net, dtype, data.draw(st.integers(0, 3), label="seed"))
    x = jnp.asarray(_x(data.draw, batch, dtype))
    y = jnp.asarray(draw_targets(data.draw, loss, form, batch, n_out, dtype))
    errs = {k: float(v) for k, v in _checks(output, loss, n_out, full)(params, x, y).items()}
    worst = max(errs, key=errs.get)
    assert errs[worst] <= RTOL[dtype], f"{output}/{loss}/{form} {dtype} batch={batch}: {worst} rel err {errs[worst]:.2e}; {errs}"
    return errs


@pytest.mark.parametrize("output, loss, form, n_out", PATHS, ids=IDS)
@SETTINGS
@given(data=st.data())
def test_every_path_batch_float64(x64, data, output, loss, form, n_out):
    errs = _case(data, output, loss, form, n_out, (5,), "float64", full=True)
    assert {"delta_L", "grads", "dx", "vjp_params", "vjp_x", "per_example_manual", "per_example_autodiff"} <= set(errs)


@pytest.mark.parametrize("output, loss, form, n_out", REDUCED, ids=REDUCED_IDS)
@SETTINGS
@given(data=st.data())
def test_every_path_single_example_float64(x64, data, output, loss, form, n_out):
    _case(data, output, loss, form, n_out, (), "float64")


@pytest.mark.parametrize("output, loss, form, n_out", REDUCED, ids=REDUCED_IDS)
@SETTINGS
@given(data=st.data())
def test_every_path_batch_float32(data, output, loss, form, n_out):
    _case(data, output, loss, form, n_out, (5,), "float32")


def test_the_issue_example_unnormalised_soft_targets(x64):
    """The reported case: 3-4-3 tanh/softmax, targets [[.5,.5,.5],[0,1,0]] (manual was off by 0.038 in W⁽²⁾)."""
    net = fnn.MLP((3, 4, 3), hidden="tanh", output="softmax")
    params = net.init(jax.random.key(0), jnp.float64)
    x = jax.random.normal(jax.random.key(1), (2, 3), jnp.float64)
    y = jnp.array([[0.5, 0.5, 0.5], [0.0, 1.0, 0.0]])
    _, manual = fnn.manual_value_and_grad(net, "cross_entropy")(params, x, y)
    ref = jax.grad(oracle_objective(net, "cross_entropy"))(params, x, y)
    assert tree_rel_err(manual, ref) <= 1e-13
    assert fnn.compare_gradients(net, params, x, y, loss="cross_entropy").ok
    # and training on it follows the true gradient: one SGD step equals the oracle's step
    p1, _ = fnn.fit(net, params, (x, y), loss="cross_entropy", optimizer=optax.sgd(0.1), epochs=1, progress=False)
    expected = jax.tree.map(lambda p, g: p - 0.1 * g, params, ref)
    assert tree_rel_err(p1, expected) <= 1e-12


def test_negative_cross_entropy_targets_are_refused():
    net = fnn.MLP((3, 4, 3), hidden="tanh", output="softmax")
    params = net.init(jax.random.key(0))
    with pytest.raises(ValueError, match=r"`y` must be non-negative rows .*values span \[-0.5, 1"):
        fnn.manual_value_and_grad(net, "cross_entropy")(params, jnp.ones((2, 3)), jnp.array([[1.0, -0.5, 0.0], [0, 1, 0]]))
