"""Bring your own block: check_derivation(block, n_in=...), the first-use check in fnn.Network, and
compare_gradients on networks of blocks and models.

The references read only a block's forward pass (``jax.vjp`` of it, and central finite differences), so a
backward pass written wrong on purpose must be caught: dropout ignoring its mask, batch norm dividing by
(σ² + ε)² instead of its square root (an early ``jax.example_libraries.stax.BatchNorm`` slip), layer norm
missing the x̂ Σ ĝ x̂ term, a layer norm that forgets γ (right only at init, where γ = 1).
Shapes are few and small: n_in = 4, the default batch of 6.
"""

import dataclasses
import warnings
import weakref

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from fnn.check import first_use
from fnn.core import blocks as B
from fnn.core.blocks import _normalise_backward

N_IN = 4


# ---- blocks of a user's own: one right, four wrong on purpose ---------------------------------------
@dataclasses.dataclass(frozen=True)
class Scale(B.Block):
    """y = a ⊙ x + c, a learned scale and shift (right)."""

    def init(self, key, n_in, dtype):
        return {"a": jnp.ones((n_in,), dtype), "c": jnp.zeros((n_in,), dtype)}

    def forward(self, params, x, key=None, train=True):
        return params["a"] * x + params["c"], None, x

    def backward(self, params, res, dy):
        return {"a": jnp.sum(dy * res, axis=0), "c": jnp.sum(dy, axis=0)}, dy * params["a"]


@dataclasses.dataclass(frozen=True)
class MasklessDropout(B.Dropout):
    def backward(self, params, res, dy):
        return {}, dy  # the mask (and 1/(1 − p)) forgotten


@dataclasses.dataclass(frozen=True)
class StaxBatchNorm(B.BatchNorm):
    def backward(self, params, res, dy):
        xhat, inv, batch_stats = res
        grads = {"gamma": jnp.sum(dy * xhat, 0), "beta": jnp.sum(dy, 0), "state": jax.tree.map(jnp.zeros_like, params["state"])}
        if not batch_stats:
            return grads, dy * params["gamma"] * inv
        return grads, _normalise_backward(dy, xhat, inv**4, params["gamma"], 0)  # 1/(σ² + ε)², not 1/√(σ² + ε)


@dataclasses.dataclass(frozen=True)
class LayerNormMissingTerm(B.LayerNorm):
    def backward(self, params, res, dy):
        xhat, inv = res
        g = dy * params["gamma"]
        D = g.shape[-1]
        dx = (inv / D) * (D * g - jnp.sum(g, -1, keepdims=True))  # − x̂ Σ ĝ x̂ missing
        return {"gamma": jnp.sum(dy * xhat, 0), "beta": jnp.sum(dy, 0)}, dx


@dataclasses.dataclass(frozen=True)
class LayerNormForgetsGamma(B.LayerNorm):
    def backward(self, params, res, dy):
        xhat, inv = res
        return {"gamma": jnp.sum(dy * xhat, 0), "beta": jnp.sum(dy, 0)}, _normalise_backward(dy, xhat, inv, 1.0, -1)


WRONG = [MasklessDropout(0.3), StaxBatchNorm(), LayerNormMissingTerm(), LayerNormForgetsGamma()]


@pytest.fixture(autouse=True)
def fresh_first_use(monkeypatch):
    """Each test meets its blocks for the first time (the compiled checks are reused across tests)."""
    monkeypatch.setattr(first_use, "_BLOCKS", weakref.WeakKeyDictionary())
    monkeypatch.setattr(first_use, "_BLOCKS_HELD", {})


# ---- check_derivation of a block --------------------------------------------------------------------
@pytest.mark.parametrize(
    "block",
    [B.BatchNorm(), B.Dropout(0.4), B.Residual([B.Dense(5), B.LayerNorm(), B.Activate("relu")])],  # (a projection: 4 → 5)
    ids=["batchnorm", "dropout", "residual"],
)
def test_builtin_blocks_pass(block):
    r = fnn.check_derivation(block, n_in=N_IN)
    assert r.ok, r.table()
    assert r.kind == "block" and [reg for reg, _ in r.comparisons[0].by_regime] == ["train", "eval"]
    assert all(c.points > 0 for c in r.comparisons)


def test_a_right_block_of_your_own_passes_and_its_report_reads_like_the_activations():
    r = fnn.check_derivation(Scale(), n_in=N_IN)
    assert r.ok and r.verdict.startswith("block Scale() at n_in=4: backward pass OK")
    assert [c.against for c in r.comparisons] == [
        "∂E/∂x: jax.vjp",
        "∂E/∂x: finite diff.",
        "∂E/∂a: jax.vjp",
        "∂E/∂a: finite diff.",
        "∂E/∂c: jax.vjp",
        "∂E/∂c: finite diff.",
    ]
    assert [c.points for c in r.comparisons[:2]] == [2 * 6 * N_IN] * 2  # every entry of x, in both modes
    table = str(r)
    assert table.splitlines()[0] == "check_derivation: block Scale() at n_in=4, float64" and "train" in table and "eval" in table
    fnn.Network(N_IN, [Scale(), B.Dense(2)])  # and a network takes it


@pytest.mark.parametrize("block", WRONG, ids=lambda b: type(b).__name__)
def test_a_wrong_backward_pass_is_caught_against_both_references(block):
    r = fnn.check_derivation(block, n_in=N_IN)
    assert not r.ok
    bad = {c.against for c in r.comparisons if not c.ok}
    assert bad == {"∂E/∂x: jax.vjp", "∂E/∂x: finite diff."}, r.table()  # the parameters' gradients are right
    assert "the hand-derived backward pass is WRONG" in r.verdict and "train mode, x[" in r.verdict


def test_forgetting_gamma_is_caught_only_because_the_parameters_are_moved_from_init():
    wrong_at_init = LayerNormForgetsGamma()
    r = fnn.check_derivation(wrong_at_init, n_in=N_IN)
    assert not r.ok  # γ = 1 at init: a check there would pass it
    params = wrong_at_init.init(jax.random.key(0), N_IN, jnp.float32)
    x, dy = jax.random.normal(jax.random.key(1), (6, N_IN)), jax.random.normal(jax.random.key(2), (6, N_IN))
    _, _, res = wrong_at_init.forward(params, x)
    right = B.LayerNorm().backward(params, res, dy)[1]
    np.testing.assert_allclose(wrong_at_init.backward(params, res, dy)[1], right, rtol=1e-6)  # ... as shown here


@pytest.mark.parametrize("block", WRONG[:3], ids=lambda b: type(b).__name__)
def test_a_wrong_block_is_refused_on_first_use_and_warned_under_warn(block):
    assert fnn.check.on_first_use().mode == "raise"
    with pytest.raises(ValueError) as info:
        fnn.Network(N_IN, [B.Dense(N_IN), block, B.Dense(2)])
    msg = str(info.value)
    assert f"block {block!r:.60} at n_in=4: the hand-derived backward pass is WRONG" in msg
    assert "fnn refuses an fnn.Block" in msg and f"fnn.check_derivation(block, n_in={N_IN})" in msg
    assert 'fnn.check.on_first_use("warn")' in msg
    with fnn.check.on_first_use("warn"):
        with pytest.warns(UserWarning, match="backward pass is WRONG") as record:
            net = fnn.Network(N_IN, [B.Dense(N_IN), block, B.Dense(2)])
        assert record[0].filename == __file__  # the warning points at the user's line
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            fnn.Network(N_IN, [B.Dense(N_IN), block, B.Dense(3)])  # once per (block, width)
    assert net.blocks[1] is block
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with fnn.check.on_first_use("off"):
            fnn.Network(N_IN, [block])


def test_first_use_checks_once_per_block_and_width_and_skips_fnn_blocks(monkeypatch):
    calls = []
    real = fnn.check.derivation.check_derivation
    monkeypatch.setattr(fnn.check.derivation, "check_derivation", lambda b, **kw: calls.append((b, kw["n_in"])) or real(b, **kw))
    fnn.Network(N_IN, [Scale(), B.Dense(3), Scale(), B.BatchNorm(), B.Residual([Scale()])])
    fnn.Network(N_IN, [Scale()])  # an equal block (a new instance) at a width already checked
    assert calls == [(Scale(), N_IN), (Scale(), 3)]  # not the built-ins, not twice at one width


# ---- malformed blocks: named, whatever the first-use mode -----------------------------------------
@dataclasses.dataclass(frozen=True)
class TwoOutputs(Scale):
    def forward(self, params, x, key=None, train=True):
        return params["a"] * x, x


@dataclasses.dataclass(frozen=True)
class Widens(Scale):
    def forward(self, params, x, key=None, train=True):
        return jnp.concatenate([x, x], axis=-1), None, x  # width 2·n_in, out_size not defined


@dataclasses.dataclass(frozen=True)
class GradsMissAShift(Scale):
    def backward(self, params, res, dy):
        return {"a": jnp.sum(dy * res, axis=0)}, dy * params["a"]


@dataclasses.dataclass(frozen=True)
class IntegerParams(Scale):
    def init(self, key, n_in, dtype):
        return {"a": jnp.ones((n_in,), jnp.int32), "c": jnp.zeros((n_in,), dtype)}


@dataclasses.dataclass(frozen=True)
class NumpyInside(Scale):
    def forward(self, params, x, key=None, train=True):
        return np.asarray(x) * 2.0, None, x


@dataclasses.dataclass(frozen=True)
class BackwardOneValue(Scale):
    def backward(self, params, res, dy):
        return dy * params["a"]


@pytest.mark.parametrize(
    "block, err, match",
    [
        (TwoOutputs(), TypeError, r"block TwoOutputs: `forward` must return a tuple \(y, state, res\).*got a tuple of 2"),
        (Widens(), ValueError, r"block Widens: `forward` returned y of float64\[6, 8\].*out_size\(4\) = 4.*defines out_size"),
        (GradsMissAShift(), ValueError, r"block GradsMissAShift: `backward` returned grads \{'a': 'float64\[4\]'\}.*params are"),
        (IntegerParams(), TypeError, r"block IntegerParams: params\['a'\] has dtype int32; .* must be floats"),
        (NumpyInside(), TypeError, r"block NumpyInside: `forward / backward in train mode` cannot be traced by JAX"),
        (BackwardOneValue(), TypeError, r"block BackwardOneValue: `backward` must return a tuple \(grads, dx\)"),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, B.Block) else "",
)
def test_a_malformed_block_is_named_with_what_is_wrong(block, err, match):
    with pytest.raises(err, match=match):
        fnn.check_derivation(block, n_in=N_IN)
    with fnn.check.on_first_use("warn"), pytest.raises(err, match=match):
        fnn.Network(N_IN, [block])


@pytest.mark.parametrize(
    "obj, kwargs, err, match",
    [
        (Scale(), {}, TypeError, r"needs `n_in`, the width of its input"),
        (Scale(), {"n_in": 4, "batch": 1}, ValueError, "batch"),
        (Scale(), {"n_in": 4, "kinks": (0.0,)}, TypeError, "a block is checked with n_in="),
        (fnn.activations.get("tanh"), {"n_in": 4}, TypeError, "`n_in`, `batch` and `key` apply to a block"),
    ],
)
def test_check_derivation_of_a_block_bad_arguments(obj, kwargs, err, match):
    with pytest.raises(err, match=match):
        fnn.check_derivation(obj, **kwargs)


# ---- compare_gradients on networks of blocks and on models -------------------------------------------
def _bn_dropout_residual(n_out=3):
    return fnn.Network(
        N_IN,
        [
            B.Dense(5),
            B.BatchNorm(),
            B.Activate("tanh"),
            B.Dropout(0.25),
            B.Residual([B.Dense(5), B.LayerNorm(), B.Activate("relu")]),
            B.Residual([B.Dense(6), B.BatchNorm(), B.Activate("elu")]),  # a projection 5 → 6
            B.Dense(n_out),
        ],
        output="softmax",
    )


def _data(dtype=None):
    x = jax.random.normal(jax.random.key(1), (6, N_IN), dtype)
    return x, jnp.array([0, 1, 2, 2, 1, 0])


def _trained_stats(params):
    """Running statistics away from init (eval mode refuses untrained ones): means 0.3, variances 1.7."""

    def moved(path, a):
        name = jax.tree_util.keystr(path)
        return a + 0.3 if name.endswith("['state']['mean']") else a + 0.7 if name.endswith("['state']['var']") else a

    return jax.tree_util.tree_map_with_path(moved, params)


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
def test_compare_gradients_on_a_bn_dropout_residual_network_agrees_in_float64(x64, train):
    net = _bn_dropout_residual()
    params = _trained_stats(net.init(jax.random.key(0), jnp.float64))
    x, y = _data()
    r = fnn.compare_gradients(net, params, x, y, loss="cross_entropy", key=jax.random.key(3), train=train)
    assert r.ok, r.table()
    assert r.dtype == "float64" and r.has_manual and r.max_autodiff_rel < 1e-12
    assert [(leaf.layer, leaf.leaf) for leaf in r.leaves][:4] == [(0, "W"), (0, "b"), (1, "beta"), (1, "gamma")]
    assert (5, "proj.W") in [(leaf.layer, leaf.leaf) for leaf in r.leaves]
    assert r.skipped == (
        "params[1].state.mean",
        "params[1].state.var",
        "params[5].blocks[1].state.mean",
        "params[5].blocks[1].state.var",
    )
    assert "running statistics left out" in r.table()
    # the manual gradients are the ones training takes, with zeros for the running statistics
    _, g = fnn.manual_value_and_grad(net, "cross_entropy", train=train)(params, x, y, jax.random.key(3))
    assert jax.tree.structure(r.manual) == jax.tree.structure(g)
    np.testing.assert_allclose(r.manual[4]["blocks"][0]["W"], g[4]["blocks"][0]["W"], rtol=1e-12)


def test_compare_gradients_finds_a_wrong_block_in_a_network(x64):
    with fnn.check.on_first_use("off"):  # built unchecked: what the first-use check prevents
        net = fnn.Network(N_IN, [B.Dense(5), StaxBatchNorm(), B.Activate("tanh"), B.Dense(3)], output="softmax")
    r = fnn.compare_gradients(net, net.init(jax.random.key(0), jnp.float64), *_data(), loss="cross_entropy")
    assert r.mismatch
    assert {(leaf.layer, leaf.leaf) for leaf, s in zip(r.leaves, r.statuses) if s == "mismatch"} == {(0, "W")}  # below the bad BN
    assert "MISMATCH" in r.table()


def test_compare_gradients_of_a_float32_network_takes_finite_differences_in_float64():
    net = fnn.Network(
        N_IN, [B.Dense(5), B.BatchNorm(), B.Activate("tanh"), B.Residual([B.Dense(5)]), B.Dense(3)], output="softmax"
    )
    r = fnn.compare_gradients(net, net.init(jax.random.key(0)), *_data(), loss="cross_entropy")
    assert r.ok, r.table()
    assert (r.dtype, r.fd_dtype) == ("float32", "float64") and not jax.config.jax_enable_x64


def test_compare_gradients_of_a_model_compares_autodiff_with_finite_differences(x64):
    model = fnn.Model(
        lambda k: {"w": jax.random.normal(k, (N_IN, 3)), "v": jnp.ones(3)},
        lambda p, x: jnp.tanh(x @ p["w"]) * p["v"],
        (N_IN, 3),
        "softmax",
    )
    r = fnn.compare_gradients(model, model.init(jax.random.key(0), jnp.float64), *_data(), loss="cross_entropy")
    assert r.ok and not r.has_manual and r.manual is None, r.table()
    assert [leaf.leaf for leaf in r.leaves] == ["v", "w"] and r.skipped == ()
    assert "a Model: no hand-derived backward pass; jax.grad vs finite differences" in r.table()
    assert "autodiff-vs-finite-diff" in r.table()


def test_compare_gradients_network_arguments():
    net = _bn_dropout_residual()
    params = net.init(jax.random.key(0))
    x, y = _data()
    with pytest.raises(ValueError, match="dropout: train mode needs `key="):
        fnn.compare_gradients(net, params, x, y, loss="cross_entropy")
    with pytest.raises(ValueError, match="were never trained"):
        fnn.compare_gradients(net, params, x, y, loss="cross_entropy", train=False)
    mlp = fnn.MLP((N_IN, 3, 3), output="softmax")
    with pytest.raises(TypeError, match="an MLP has no mode"):
        fnn.compare_gradients(mlp, mlp.init(jax.random.key(0)), x, y, loss="cross_entropy", train=False)


@dataclasses.dataclass(frozen=True)
class FlagDropout(B.Dropout):
    """Dropout drawing with a Python float probability: under jax.enable_x64 the draw is in float64, so its
    mask depends on the x64 flag (not on the data's dtype)."""

    def forward(self, params, x, key=None, train=True):
        if not train:
            return x, None, None
        scale = jax.random.bernoulli(key, 0.75, x.shape).astype(x.dtype) / 0.75
        return x * scale, None, scale


def test_random_draws_that_change_under_x64_fall_back_to_finite_differences_in_the_dtype():
    net = fnn.Network(N_IN, [B.Dense(5), B.Activate("tanh"), FlagDropout(0.25), B.Dense(3)], output="softmax")
    params, (x, y) = net.init(jax.random.key(0)), _data()
    r = fnn.compare_gradients(net, params, x, y, loss="cross_entropy", key=jax.random.key(3))
    assert r.fd_dtype == "float32" and "random draws differ under float64" in r.table()
    assert not r.mismatch, r.table()
    with pytest.raises(ValueError, match="`fd64=True`: the network's random draws differ in float64"):
        fnn.compare_gradients(net, params, x, y, loss="cross_entropy", key=jax.random.key(3), fd64=True)
