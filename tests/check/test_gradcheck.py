"""The three-way comparison: manual vs jax.grad vs central finite differences."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _helpers import make_labels, tree_rel_err

import fnn
from fnn import activations as A
from fnn.check import gradcheck

PAIRS = [("identity", "mse"), ("tanh", "mse"), ("softmax", "mse"), ("softmax", "cross_entropy"), ("sigmoid", "bce")]


def _setup(hidden, output, loss, dtype, batch=(6,), sizes=(3, 4, 4, 3), seed=0):
    net = fnn.MLP(sizes, hidden=hidden, output=output)
    k1, k2, k3 = jax.random.split(jax.random.key(seed), 3)
    params = net.init(k1, dtype)
    params = [
        {"W": p["W"], "b": (0.1 * jax.random.normal(jax.random.fold_in(k1, i), p["b"].shape)).astype(dtype)}
        for i, p in enumerate(params)
    ]
    x = jax.random.normal(k2, (*batch, sizes[0]), dtype)
    y = make_labels(loss, output, sizes[-1], batch, k3)
    return net, params, x, y


# A covering design instead of the 8 hidden × 5 pairs grid (40 finite-difference runs, each compiled
# on its own): every hidden activation and every (output, loss) pair appears once or more. Each
# (output, loss, target form) path is checked against jax.grad of an independent oracle in
# test_gradient_paths.py; this file checks the three-way report itself.
COVER = [(hidden, *PAIRS[i % len(PAIRS)]) for i, hidden in enumerate(A.HIDDEN_NAMES)]


def test_cover_is_complete():
    assert {c[0] for c in COVER} == set(A.HIDDEN_NAMES) and {c[1:] for c in COVER} == set(PAIRS)


@pytest.mark.parametrize("hidden, output, loss", COVER, ids=["-".join(c) for c in COVER])
def test_manual_matches_finite_differences_float64(x64, hidden, output, loss):
    net, params, x, y = _setup(hidden, output, loss, jnp.float64)
    r = fnn.compare_gradients(net, params, x, y, loss=loss)
    assert r.dtype == "float64"
    assert r.max_fd_rel <= 1e-6, str(r)
    assert r.max_autodiff_rel <= 1e-12, str(r)
    assert r.ok
    assert sum(l.checked for l in r.leaves) == net.num_params  # every coordinate, small network
    assert len(r.leaves) == 2 * net.num_layers


def test_float32_report_uses_float32_tolerances():
    net, params, x, y = _setup("tanh", "softmax", "cross_entropy", jnp.float32)
    r = fnn.compare_gradients(net, params, x, y, loss="cross_entropy")
    assert r.dtype == "float32" and (r.autodiff_rtol, r.fd_rtol) == (1e-4, 2e-2)
    assert r.eps == pytest.approx(float(jnp.finfo(jnp.float32).eps) ** (1 / 3))
    assert r.ok, str(r)
    assert r.max_autodiff_rel < 1e-5


def test_report_table_is_readable(x64):
    net, params, x, y = _setup("tanh", "softmax", "cross_entropy", jnp.float64)
    text = str(fnn.compare_gradients(net, params, x, y, loss="cross_entropy"))
    lines = text.splitlines()
    assert lines[0].startswith("gradient check: loss=") and "dtype=float64" in lines[0]
    assert "|man-ad|" in lines[1] and "|man-fd|" in lines[1]
    assert len(lines) == 3 + 6 + 1 and lines[-1].startswith("OK: max rel")


def test_detects_a_wrong_gradient(x64):
    """The check is not vacuous: a broken backward pass is reported."""
    net, params, x, y = _setup("tanh", "softmax", "cross_entropy", jnp.float64)
    good = fnn.compare_gradients(net, params, x, y, loss="cross_entropy")
    assert good.ok
    wrong = fnn.GradientReport(
        **{
            **good.__dict__,
            "leaves": tuple(
                fnn.LeafReport(**{**l.__dict__, "autodiff_rel": 0.3}) if i == 2 else l for i, l in enumerate(good.leaves)
            ),
        }
    )
    assert not wrong.ok and "MISMATCH" in str(wrong)
    # and a genuinely wrong derivative (tanh' replaced by 1) is caught end to end
    bad_tanh = fnn.Activation("tanh", A.tanh, lambda z, h: jnp.ones_like(z))
    with pytest.warns(UserWarning, match="derivative is WRONG"):  # fnn checks a user-made f' on first use
        bad = fnn.MLP((3, 4, 4, 3), hidden=bad_tanh, output="softmax")
    r = fnn.compare_gradients(bad, params, x, y, loss="cross_entropy")
    assert not r.ok and r.max_autodiff_rel > 1e-3 and r.max_fd_rel > 1e-3


def test_relu_kinks_are_flagged_and_an_all_kink_leaf_is_unresolved(x64):
    net = fnn.MLP((3, 4, 3), hidden="relu", output="softmax")
    params = net.init(jax.random.key(0), jnp.float64)
    x = jnp.zeros((2, 3), jnp.float64)  # z⁽¹⁾ = b = 0: every hidden unit on its kink
    r = fnn.compare_gradients(net, params, x, jnp.array([0, 1]), loss="cross_entropy")
    assert r.kink_margin == 0.0
    assert r.kinks == 4  # the 4 biases of layer 0 move z across 0
    b0 = next(l for l in r.leaves if (l.layer, l.leaf) == (0, "b"))
    assert (b0.kinks, b0.checked, b0.fd_rel) == (4, 0, 0.0)
    # no coordinate of that leaf was compared: the report cannot vouch for it
    assert r.status(b0) == "unresolved" and r.unresolved == (b0,)
    assert not r.ok and not r.mismatch
    text = str(r)
    assert "UNRESOLVED" in text and "no coordinate of layer 0 b could be compared" in text
    assert "straddle a ReLU-like kink" in text
    # the other leaves were checked and are fine
    assert all(r.status(l) == "ok" for l in r.leaves if l is not b0)


def test_kinks_in_a_relu_output_layer_are_detected(x64):
    net = fnn.MLP((3, 4, 2), hidden="tanh", output="relu")
    params = net.init(jax.random.key(0), jnp.float64)
    params[1] = {"W": jnp.zeros((2, 4), jnp.float64), "b": jnp.zeros(2, jnp.float64)}  # z⁽ᴸ⁾ = 0: on the output kink
    x = jax.random.normal(jax.random.key(1), (2, 3), jnp.float64)
    r = fnn.compare_gradients(net, params, x, jnp.ones((2, 2), jnp.float64), loss="mse")
    assert r.kink_margin == 0.0
    out_b = next(l for l in r.leaves if (l.layer, l.leaf) == (1, "b"))
    assert out_b.kinks == 2 and out_b.checked == 0 and r.status(out_b) == "unresolved"
    assert not r.ok and not r.mismatch  # a kink is not a bug, and not a pass either


def _inject(monkeypatch, layer: int, leaf: str, factor: float):
    """Scale one leaf of both exact gradients (as a bug shared by manual and autodiff would), in
    both compiled forms of the exact program (a small check uses the quickly compiled one)."""
    for name in ("_exact", "_exact_quick"):
        exact = getattr(gradcheck, name)

        def wrong(*args, exact=exact):
            E, manual, auto, margin = exact(*args)
            for g in (manual, auto):
                g[layer] = {**g[layer], leaf: g[layer][leaf] * factor}
            return E, manual, auto, margin

        monkeypatch.setattr(gradcheck, name, wrong)


def _small_gradient_setup():
    """float64, a large loss (≈ 1.5e4) and a saturated first layer (tanh'(10) ≈ 8e-9): finite
    differences' rounding floor for layer 0 W is ≈ 50% relative, far above the 1e-6 tolerance."""
    net = fnn.MLP((3, 4, 3), hidden="tanh", output="identity")
    params = net.init(jax.random.key(0), jnp.float64)
    params[0] = {"W": params[0]["W"], "b": jnp.full((4,), 10.0)}
    x = jax.random.normal(jax.random.key(1), (6, 3), jnp.float64)
    y = jnp.full((6, 3), 100.0)
    return net, params, x, y


def test_floor_cannot_excuse_an_injected_error_on_a_small_gradient_leaf(x64, monkeypatch):
    net, params, x, y = _small_gradient_setup()
    clean = fnn.compare_gradients(net, params, x, y, loss="mse")
    w0 = clean.leaves[0]
    assert (w0.layer, w0.leaf) == (0, "W")
    assert 0.1 < w0.fd_noise < 1.0  # the floor, not the tolerance, decides for this leaf
    # even the correct gradient is only "unresolved" there: finite differences cannot vouch for it
    assert clean.status(w0) == "unresolved" and not clean.ok and not clean.mismatch
    # 1% wrong on that leaf, in both manual and autodiff, so only finite differences can see it
    _inject(monkeypatch, 0, "W", 1.01)
    r = fnn.compare_gradients(net, params, x, y, loss="mse")
    leaf = r.leaves[0]
    assert leaf.fd_rel <= leaf.fd_noise  # the old rule (ok within the floor) would have passed it
    assert r.status(leaf) == "unresolved" and not r.ok and "UNRESOLVED" in str(r)
    # a 20% error is a mismatch although the uncapped floor (≈ 50%) would excuse it: the floor is capped
    _inject(monkeypatch, 0, "W", 1.2)
    r = fnn.compare_gradients(net, params, x, y, loss="mse")
    leaf = r.leaves[0]
    assert gradcheck.FD_FLOOR_CAP < leaf.fd_rel <= leaf.fd_noise
    assert r.status(leaf) == "mismatch" and r.mismatch and "MISMATCH" in str(r)


def test_injected_one_percent_error_is_a_mismatch_in_float64(x64, monkeypatch):
    net, params, x, y = _setup("tanh", "softmax", "cross_entropy", jnp.float64)
    _inject(monkeypatch, 1, "b", 1.01)
    r = fnn.compare_gradients(net, params, x, y, loss="cross_entropy")
    leaf = next(l for l in r.leaves if (l.layer, l.leaf) == (1, "b"))
    assert r.status(leaf) == "mismatch" and r.mismatch and not r.ok
    assert leaf.fd_rel == pytest.approx(0.01 / 1.01, rel=1e-3)


def test_random_subset_for_large_networks(x64):
    net, params, x, y = _setup("tanh", "identity", "mse", jnp.float64, sizes=(20, 30, 5))
    r = fnn.compare_gradients(net, params, x, y, max_coords=50, key=jax.random.key(3), loss="mse")
    assert sum(l.checked for l in r.leaves) == 50 < net.num_params
    # every leaf gets at least min(size, 8) coordinates: none is left unchecked by the sampling
    assert all(l.checked >= min(int(np.prod(l.shape)), 8) for l in r.leaves)
    assert r.ok
    r2 = fnn.compare_gradients(net, params, x, y, max_coords=50, key=jax.random.key(3), loss="mse")
    assert [l.checked for l in r2.leaves] == [l.checked for l in r.leaves]  # same key, same subset


@pytest.mark.parametrize(
    "kwargs, err, match",
    [
        ({"max_coords": 0}, ValueError, r"`max_coords` must be an int in \[1, inf\), got 0"),
        ({"max_coords": 2.0}, TypeError, "`max_coords` must be an int >= 1 or None, got float: 2.0"),
        ({"max_coords": True}, TypeError, "`max_coords` must be an int >= 1 or None, got bool: True"),
        ({"eps": 2.0}, ValueError, r"`eps` must be a float in \(0, 1\)"),
        ({"key": 3}, TypeError, "`key` must be a single jax.random.key"),
    ],
)
def test_bad_arguments(kwargs, err, match):
    net, params, x, y = _setup("tanh", "identity", "mse", jnp.float32)
    with pytest.raises(err, match=match):
        fnn.compare_gradients(net, params, x, y, **kwargs, loss="mse")


def test_quickly_compiled_check_programs_compute_the_same_numbers(x64):
    """A small check compiles its programs without XLA's optimisation passes (fnn/_compile.py);
    both forms give the same loss, gradients and finite differences, to rounding. (The suite compiles
    everything with fast-compile flags, so both forms are alike here; FNN_TEST_XLA_DEFAULTS=1 compares
    them under XLA's defaults.)"""
    net = fnn.MLP((3, 6, 2), hidden="tanh", output="softmax")
    params = net.init(jax.random.key(0), jnp.float64)
    x, y = jax.random.normal(jax.random.key(1), (5, 3), jnp.float64), jnp.array([0, 1, 1, 0, 1])
    _, t = fnn.backprop.prepare_batch(net, "cross_entropy", params, x, y)
    slow, quick = (
        gradcheck._exact(net, "cross_entropy", (), params, x, t),
        gradcheck._exact_quick(net, "cross_entropy", (), params, x, t),
    )
    assert abs(float(slow[0]) - float(quick[0])) <= 1e-15 * abs(float(slow[0]))
    assert tree_rel_err(slow[1], quick[1]) <= 1e-14 and tree_rel_err(slow[2], quick[2]) <= 1e-14
    theta = jnp.concatenate([a.reshape(-1) for a in jax.tree_util.tree_leaves(params)])
    ks, steps = jnp.arange(8), jnp.full(8, 1e-5)
    e_slow = gradcheck._fd_chunk(net, "cross_entropy", (), theta, x, t, ks, steps)[0]
    e_quick = gradcheck._fd_chunk_quick(net, "cross_entropy", (), theta, x, t, ks, steps)[0]
    np.testing.assert_allclose(np.asarray(e_quick), np.asarray(e_slow), rtol=1e-15)
