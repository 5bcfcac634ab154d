"""Reliability: numerical extremes stay finite, runs are deterministic, and properties hold
across random architectures, activations, losses, batch sizes and dtypes."""

import json
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from _helpers import make_labels, tree_rel_err
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fnn

GRADS = [fnn.manual_value_and_grad, fnn.autodiff_value_and_grad]


def _finite(tree) -> bool:
    return all(bool(jnp.all(jnp.isfinite(a))) for a in jax.tree_util.tree_leaves(tree))


@pytest.mark.parametrize(
    "output, loss", [("softmax", "cross_entropy"), ("sigmoid", "bce"), ("softmax", "mse"), ("sigmoid", "mse")]
)
def test_logits_of_1e4_stay_finite_float32(output, loss):
    net = fnn.MLP((2, 3, 3), hidden="tanh", output=output)
    params = net.init(jax.random.key(0))
    # saturate the hidden layer (|h| = 1) and scale the output layer so |z_L| ≈ 1e4
    params[0]["W"] = jnp.full((3, 2), 50.0)
    params[1]["W"] = jnp.array([[1e4, 0, 0], [-1e4, 0, 0], [0, 0, 1e4 / 3]], jnp.float32)
    x = jnp.array([[1.0, 1.0], [-1.0, -1.0]])
    _, cache = net.forward(params, x)
    assert float(jnp.max(jnp.abs(cache.z[-1]))) >= 9e3
    y = jnp.array([1, 0]) if loss != "bce" else jnp.array([[0.0, 1.0, 0.0], [1.0, 0.0, 1.0]])  # confidently wrong
    (E, g), (E_a, g_a) = (make(net, loss)(params, x, y) for make in GRADS)
    assert np.isfinite(float(E)) and _finite(g)
    # finite is not enough: the hand-derived gradient is jax.grad's, even out here
    assert float(E) == pytest.approx(float(E_a), rel=1e-6)
    assert tree_rel_err(g, g_a) <= 1e-5
    if loss == "cross_entropy":
        assert float(E) > 1e3  # the loss is huge, not inf and not NaN


@pytest.mark.parametrize("hidden", ["sigmoid", "tanh"])
def test_saturated_hidden_layers(hidden):
    net = fnn.MLP((4, 8, 8, 2), hidden=hidden, output="softmax")
    params = net.init(jax.random.key(1))
    x = jnp.full((3, 4), 1e4)  # every hidden unit pinned at its asymptote
    results = [make(net, "cross_entropy")(params, x, jnp.array([0, 1, 0])) for make in GRADS]
    for E, g in results:
        assert np.isfinite(float(E)) and _finite(g)
        assert float(jnp.max(jnp.abs(g[0]["W"]))) < 1e-3  # f'(z) ≈ 0: the gradient vanishes, it does not blow up
    assert tree_rel_err(results[0][1], results[1][1]) <= 1e-5  # manual == autodiff where f' underflows


def test_probabilities_exactly_0_and_1():
    """Targets of exactly 0 and 1 against outputs that round to exactly 0 and 1: manual == autodiff, finite."""
    net = fnn.MLP((1, 2), hidden=(), output="sigmoid")
    params = [{"W": jnp.array([[1e4], [-1e4]]), "b": jnp.zeros(2)}]
    x = jnp.array([[1.0], [-1.0]])
    assert net.apply(params, x).tolist() == [[1.0, 0.0], [0.0, 1.0]]  # σ rounds to 0 and 1 exactly
    right = jnp.array([[1.0, 0.0], [0.0, 1.0]])
    soft = fnn.MLP((1, 3), hidden=(), output="softmax")
    sp = [{"W": jnp.array([[1e4], [0.0], [-1e4]]), "b": jnp.zeros(3)}]
    cases = [
        (net, params, "bce", right, 0.0),
        (net, params, "bce", 1.0 - right, 2e4),
        (soft, sp, "cross_entropy", jnp.array([[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]]), None),  # zero-probability classes
    ]
    for model, p, loss, y, expected in cases:
        (E, g), (E_a, g_a) = (make(model, loss)(p, x, y) for make in GRADS)
        assert np.isfinite(float(E)) and _finite(g)
        if expected is not None:
            assert float(E) == pytest.approx(expected, rel=1e-6, abs=0.0)
        assert float(E) == pytest.approx(float(E_a), rel=1e-6)
        assert tree_rel_err(g, g_a) <= 1e-6


DETERMINISM = textwrap.dedent("""
    import hashlib, jax, jax.numpy as jnp, numpy as np, optax, fnn
    x, y = fnn.datasets.spirals(jax.random.key(0), 60, classes=3)
    net = fnn.MLP((2, 16, 3), hidden="relu", output="softmax")
    p, h = fnn.fit(net, net.init(jax.random.key(1)), (x, y), loss="cross_entropy", optimizer=optax.adam(0.01),
                   epochs=10, batch_size=20, key=jax.random.key(2), grad_norms=True, progress=False)
    d = hashlib.sha256()
    for a in jax.tree_util.tree_leaves(p) + [h["loss"], h["grad_norm"]]:
        d.update(np.asarray(a).tobytes())
    print(d.hexdigest())
""")


@pytest.mark.slow  # two fresh Python processes: the `slow` tier
def test_same_seed_is_bitwise_identical_across_processes():
    runs = [subprocess.run([sys.executable, "-c", DETERMINISM], capture_output=True, text=True, timeout=300) for _ in range(2)]
    for r in runs:
        assert r.returncode == 0, r.stderr[-2000:]
    digests = [r.stdout.strip().splitlines()[-1] for r in runs]
    assert len(digests[0]) == 64 and digests[0] == digests[1]


SETTINGS = settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
PAIRS = [("identity", "mse"), ("sigmoid", "mse"), ("softmax", "mse"), ("softmax", "cross_entropy"), ("sigmoid", "bce")]


@pytest.mark.slow  # random architectures, one compile per example: the `slow` tier
@SETTINGS
@given(
    sizes=st.lists(st.integers(1, 6), min_size=2, max_size=4),
    hidden=st.sampled_from(fnn.activations.HIDDEN_NAMES),
    output=st.sampled_from(fnn.activations.OUTPUT_NAMES),
    batch=st.integers(1, 9),
    seed=st.integers(0, 999),
    dtype=st.sampled_from(["float32", "float64"]),
)
def test_property_batch_apply_equals_vmap_of_examples(x64, sizes, hidden, output, batch, seed, dtype):
    net = fnn.MLP(sizes, hidden=hidden, output=output)
    params = net.init(jax.random.key(seed), dtype)
    x = jax.random.normal(jax.random.key(seed + 1), (batch, sizes[0]), dtype)
    f = jax.jit(lambda p, a: (net.apply(p, a), jax.vmap(net.apply, in_axes=(None, 0))(p, a)))
    batched, each = f(params, x)
    assert batched.dtype == jnp.dtype(dtype) and batched.shape == (batch, sizes[-1])
    np.testing.assert_allclose(
        batched, each, rtol=1e-5 if dtype == "float32" else 1e-13, atol=1e-6 if dtype == "float32" else 1e-14
    )


@pytest.mark.slow  # random architectures, one compile per example: the `slow` tier
@SETTINGS
@given(
    sizes=st.lists(st.integers(2, 6), min_size=2, max_size=4),
    hidden=st.sampled_from(fnn.activations.HIDDEN_NAMES),
    pair=st.sampled_from(PAIRS),
    batch=st.sampled_from([(), (1,), (5,)]),
    seed=st.integers(0, 999),
    dtype=st.sampled_from(["float32", "float64"]),
)
def test_property_manual_equals_autodiff_any_dtype(x64, sizes, hidden, pair, batch, seed, dtype):
    output, loss = pair
    net = fnn.MLP(sizes, hidden=hidden, output=output)
    params = net.init(jax.random.key(seed), dtype)
    x = jax.random.normal(jax.random.key(seed + 1), (*batch, sizes[0]), dtype)
    y = make_labels(loss, output, sizes[-1], batch, jax.random.key(seed + 2))
    both = jax.jit(
        lambda p, a, b: (fnn.manual_value_and_grad(net, loss)(p, a, b), fnn.autodiff_value_and_grad(net, loss)(p, a, b))
    )
    (_E_m, g_m), (_E_a, g_a) = both(params, x, y)
    assert g_m[0]["W"].dtype == jnp.dtype(dtype)
    assert tree_rel_err(g_m, g_a) <= (2e-5 if dtype == "float32" else 1e-12)


@pytest.mark.slow  # random architectures, one compile per example: the `slow` tier
@SETTINGS
@given(
    sizes=st.lists(st.integers(1, 6), min_size=2, max_size=4),
    hidden=st.sampled_from(["relu", "tanh", "gelu"]),
    slope=st.floats(0.001, 0.5),
    seed=st.integers(0, 999),
    dtype=st.sampled_from(["float32", "float64", "float16"]),
    meta=st.dictionaries(st.text("abcdef", min_size=1, max_size=5), st.integers(-5, 5) | st.text(max_size=5), max_size=3),
)
def test_property_save_load_round_trip(x64, tmp_path_factory, sizes, hidden, slope, seed, dtype, meta):
    hidden_act = fnn.activations.get("leaky_relu", slope=slope) if hidden == "relu" else hidden
    net = fnn.MLP(sizes, hidden=hidden_act, output="identity")
    params = net.init(jax.random.key(seed), dtype)
    path = tmp_path_factory.mktemp("ckpt") / "model.npz"
    fnn.save(path, net, params, **{f"m_{k}": v for k, v in meta.items()})
    net2, params2, meta2 = fnn.load(path)
    assert net2 == net
    for a, b in zip(jax.tree_util.tree_leaves(params), jax.tree_util.tree_leaves(params2)):
        assert a.dtype == b.dtype and np.asarray(a).tobytes() == np.asarray(b).tobytes()
    assert {k: v for k, v in meta2.items() if k.startswith("m_")} == {f"m_{k}": v for k, v in meta.items()}


@pytest.mark.parametrize("many", [False, True])
def test_history_is_json_ready(many):
    """What fit and fit_many return can be written straight to results files: every value is a host numpy
    array, a Python int or str, or a list of str, so ``json.dumps(history, default=np.ndarray.tolist)``
    writes it, converting only numpy arrays (no device arrays, numpy scalars or other objects), and the
    values come back exactly."""
    x, y = fnn.datasets.xor()
    net = fnn.MLP((2, 4, 2), hidden="tanh", output="softmax")
    kw = {"loss": "cross_entropy", "epochs": 3, "validation": (x, y), "patience": 2, "health": True, "progress": False}
    if many:
        _, h = fnn.fit_many(net, (x, y), optimizer=optax.sgd(0.1), num_networks=2, key=jax.random.key(0), **kw)
    else:
        _, h = fnn.fit(net, net.init(jax.random.key(0)), (x, y), **kw)
    converted = []

    def default(o):
        assert type(o) is np.ndarray, f"fit returned a {type(o).__name__}, which json cannot write"
        converted.append(o)
        return o.tolist()

    back = json.loads(json.dumps(h, default=default))
    assert set(back) == set(h) and {id(a) for a in converted} == {id(v) for v in h.values() if isinstance(v, np.ndarray)}
    for k, v in h.items():  # every value survives the round trip exactly
        if isinstance(v, np.ndarray):
            np.testing.assert_array_equal(np.asarray(back[k], dtype=v.dtype), v)
        else:
            assert type(v) in (int, str, list) and back[k] == v, (k, v)
