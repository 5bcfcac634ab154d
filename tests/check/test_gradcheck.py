"""The three-way comparison: manual vs jax.grad vs central finite differences."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _helpers import make_labels, tree_rel_err

import fnn
from fnn import activations as A
from fnn.check import gradcheck
from fnn.check.derivation import _x64

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
    assert not jax.config.jax_enable_x64  # float64 finite differences need no global flag ...
    r = fnn.compare_gradients(net, params, x, y, loss="cross_entropy")
    assert not jax.config.jax_enable_x64  # ... and leave it alone
    assert r.dtype == "float32" and (r.autodiff_rtol, r.fd_rtol) == (1e-4, 2e-2)
    # finite differences in float64 (the CPU computes in it), with float64's step
    assert r.fd_dtype == "float64" and r.fd64_rtol == 1e-6
    assert r.eps == pytest.approx(float(np.finfo(np.float64).eps) ** (1 / 3))
    assert r.ok, str(r)
    assert r.max_autodiff_rel < 1e-5
    assert all(l.fd64_rel is not None and l.fd64_rel <= 1e-6 for l in r.leaves), str(r)
    assert all(l.rounding is not None and 0 < l.rounding < 1e-4 for l in r.leaves), str(r)
    assert "finite differences in float64" in str(r).splitlines()[0]
    assert "the derivation in float64 vs finite differences in float64" in str(r)
    assert r.manual[0]["W"].dtype == jnp.float32  # the report's gradients are the user's, in their dtype
    # fd64=False: in float32, with float32's step, as before
    r32 = fnn.compare_gradients(net, params, x, y, loss="cross_entropy", fd64=False)
    assert r32.fd_dtype == "float32" and r32.fd64_rtol is None and all(l.fd64_rel is None for l in r32.leaves)
    assert r32.eps == pytest.approx(float(jnp.finfo(jnp.float32).eps) ** (1 / 3))
    assert r32.ok, str(r32)
    assert r.max_fd_rel < r32.max_fd_rel  # float64 differences are the sharper oracle


# ---- float32 near a minimum (issue 25): float32 finite differences are noise there ----------------


def _mish(z):
    return z * jnp.tanh(jnp.logaddexp(z, 0.0))


def _mish_df(z, h):  # by hand: tanh(sp(z)) + z (1 − tanh²(sp(z))) σ(z), sp' = σ
    t = jnp.tanh(jnp.logaddexp(z, 0.0))
    return t + z * (1 - t * t) * jax.nn.sigmoid(z)


MISH = fnn.Activation("mish", _mish, _mish_df)


@pytest.fixture(scope="module")
def mish_near_a_minimum():
    """The issue's case: a mish network fitted in float32 to sin(2x) by Adam, to a loss ~3e-6."""
    import optax

    net = fnn.MLP((1, 16, 16, 1), hidden=MISH)
    x = jnp.linspace(-3, 3, 128, dtype=jnp.float32)[:, None]
    y = jnp.sin(2 * x)
    params = net.init(jax.random.key(0), jnp.float32)
    opt = optax.adam(0.01)
    _, t = fnn.backprop.prepare_batch(net, "mse", params, x, y)
    grad = fnn.backprop.manual_value_and_grad(net, "mse")

    @jax.jit
    def steps(params, state):
        def one(carry, _):
            p, s = carry
            _, g = grad(p, x, t)
            u, s = opt.update(g, s, p)
            return (optax.apply_updates(p, u), s), None

        return jax.lax.scan(one, (params, state), None, length=3000)[0]

    params, _ = steps(params, opt.init(params))
    return net, params, x, y


def test_float32_near_a_minimum_is_not_called_a_mismatch(mish_near_a_minimum):
    net, params, x, y = mish_near_a_minimum
    r = fnn.compare_gradients(net, params, x, y, loss="mse")
    assert r.dtype == "float32" and r.loss < 1e-4
    assert r.max_autodiff_rel < 1e-5  # manual and jax.grad agree ...
    # ... and float32 central differences are noise here: the complaint, reproduced (fd64=False is the old check)
    old = fnn.compare_gradients(net, params, x, y, loss="mse", fd64=False)
    assert old.max_fd_rel > old.fd_rtol, str(old)
    # the old rule called that a mismatch; now the report says why it cannot tell, and how to
    assert not old.mismatch and not old.ok and "UNRESOLVED" in str(old), str(old)
    assert all(old.status(l) in ("ok", "unresolved") for l in old.leaves)
    assert all(l.fd_rel <= l.fd_spread for l in old.unresolved)  # the differences disagree with themselves
    assert "float32 finite differences cannot resolve gradients this small" in str(old)
    assert "rerun in float64" in str(old)
    # by default the finite differences are float64's: the report vouches for every leaf
    assert r.fd_dtype == "float64" and r.ok and not r.mismatch, str(r)
    assert r.max_fd_rel < 1e-2 < old.max_fd_rel
    # and agrees with the same network checked in float64 by the user
    with _x64():  # for this block only (jax.enable_x64, or jax.experimental's on older JAX)
        p64 = jax.tree.map(lambda a: jnp.asarray(np.asarray(a, np.float64)), params)
        r64 = fnn.compare_gradients(net, p64, np.asarray(x, np.float64), np.asarray(y, np.float64), loss="mse")
    assert r64.dtype == "float64" and r64.ok, str(r64)
    assert max(l.fd64_rel for l in r.leaves) == pytest.approx(r64.max_fd_rel, rel=1e-3)


def test_float32_still_catches_a_one_percent_error(mish_near_a_minimum, monkeypatch):
    """The guarantee kept: a 1% error shared by manual and autodiff (so only finite differences can see
    it) is a mismatch in float32 too, both near a minimum and at a generic point."""
    net, params, x, y = mish_near_a_minimum
    _inject(monkeypatch, 1, "W", 1.01)
    r = fnn.compare_gradients(net, params, x, y, loss="mse")
    leaf = next(l for l in r.leaves if (l.layer, l.leaf) == (1, "W"))
    assert r.status(leaf) == "mismatch" and r.mismatch and "MISMATCH" in str(r), str(r)
    assert leaf.fd64_rel == pytest.approx(0.01 / 1.01, rel=0.05)
    assert all(r.status(l) == "ok" for l in r.leaves if l is not leaf), str(r)
    net, params, x, y = _setup("tanh", "softmax", "cross_entropy", jnp.float32)
    _inject(monkeypatch, 1, "b", 1.01)
    r = fnn.compare_gradients(net, params, x, y, loss="cross_entropy")
    leaf = next(l for l in r.leaves if (l.layer, l.leaf) == (1, "b"))
    assert r.status(leaf) == "mismatch" and not r.ok
    assert leaf.fd64_rel == pytest.approx(0.01 / 1.01, rel=1e-2)


def test_fd64_argument(monkeypatch):
    net, params, x, y = _setup("tanh", "identity", "mse", jnp.float32)
    r = fnn.compare_gradients(net, params, x, y, loss="mse", fd64=True)
    assert r.fd_dtype == "float64" and r.ok
    with pytest.raises(TypeError, match="`fd64` must be True, False or None, got str: 'yes'"):
        fnn.compare_gradients(net, params, x, y, loss="mse", fd64="yes")
    monkeypatch.setattr(gradcheck, "_platform", lambda params: "tpu")
    with pytest.raises(ValueError, match=r"`fd64=True`: the 'tpu' platform does not compute in float64"):
        fnn.compare_gradients(net, params, x, y, loss="mse", fd64=True)


def test_without_float64_the_check_falls_back_to_the_dtype(monkeypatch):
    """Where the platform has no float64 (a TPU), the default takes the differences in the dtype."""
    monkeypatch.setattr(gradcheck, "_platform", lambda params: "tpu")
    net, params, x, y = _setup("tanh", "identity", "mse", jnp.float32)
    r = fnn.compare_gradients(net, params, x, y, loss="mse")
    assert r.fd_dtype == "float32" and r.ok and "finite differences in" not in str(r).splitlines()[0]


def test_float64_parameters_are_unchanged_by_fd64(x64):
    net, params, x, y = _setup("tanh", "identity", "mse", jnp.float64)
    r = fnn.compare_gradients(net, params, x, y, loss="mse")
    assert r.fd_dtype == "float64" and r.fd64_rtol is None and all(l.fd64_rel is None and l.rounding is None for l in r.leaves)
    assert r.ok and all(0 <= l.fd_spread < 1e-6 for l in r.leaves), str(r)


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
    with pytest.raises(ValueError, match="derivative is WRONG"):  # fnn checks a user-made f' on first use
        fnn.MLP((3, 4, 4, 3), hidden=bad_tanh, output="softmax")
    with fnn.check.on_first_use("warn"), pytest.warns(UserWarning, match="derivative is WRONG"):  # built on purpose
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
