"""Dropout: the paired parameters, the tiled training sets, the sparsity statistics, and the experiment end to end."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from experiments import dropout


def test_with_dropout_slots_keeps_the_weights_and_adds_empty_dicts_at_dropout_blocks():
    base = dropout.network(0.0)
    assert not any(isinstance(b, fnn.blocks.Dropout) for b in base.blocks)
    p = base.init_stacked(jax.random.key(0), 3)
    net = dropout.network(0.25)
    q = dropout.with_dropout_slots(net, p)
    assert len(q) == len(net.blocks)
    np.testing.assert_array_equal(np.asarray(net.weights(q)[1]), np.asarray(base.weights(p)[1]))
    net.check_params(jax.tree_util.tree_map(lambda a: a[0], q))
    with pytest.raises(ValueError, match="more blocks"):
        dropout.with_dropout_slots(net, [*p, {}])


def test_tiled_repeats_the_first_n_rows_evenly():
    idx = dropout.tiled(100, 1600)
    assert idx.shape == (1600,) and set(idx.tolist()) == set(range(100))
    assert np.all(np.bincount(idx) == 16)
    with pytest.raises(ValueError):
        dropout.tiled(0, 10)
    with pytest.raises(ValueError):
        dropout.tiled(11, 10)


def test_hidden_stats_by_hand():
    net = fnn.Network(2, [fnn.blocks.Dense(3), fnn.blocks.Activate("relu"), fnn.blocks.Dense(2)], output="softmax")
    W = jnp.array([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]])
    params = [{"W": W, "b": jnp.zeros(3)}, {}, {"W": jnp.ones((2, 3)), "b": jnp.zeros(2)}]
    x = jnp.array([[1.0, -2.0], [0.05, 0.5]])
    h = np.maximum(np.asarray(x) @ np.asarray(W).T, 0)  # [[1, 0, 1], [0.05, 0.5, 0]]
    s = dropout.hidden_stats(net, params, x)
    np.testing.assert_allclose(s["mean"], [h.mean()], rtol=1e-6)
    np.testing.assert_allclose(s["zero"], [(h == 0).mean()])
    np.testing.assert_allclose(s["near_zero"], [(h < dropout.NEAR_ZERO).mean()])
    np.testing.assert_allclose(s["unit_mean"], [h.mean(axis=0)], rtol=1e-6)


def test_hidden_stats_are_eval_mode_dropout_changes_nothing():
    p = dropout.network(0.0).init(jax.random.key(1))
    x = jax.random.normal(jax.random.key(2), (50, 40))
    a = dropout.hidden_stats(dropout.network(0.0), p, x)
    b = dropout.hidden_stats(dropout.network(0.5), dropout.with_dropout_slots(dropout.network(0.5), p), x)
    for k in a:
        np.testing.assert_allclose(a[k], b[k])
    assert a["unit_mean"].shape == (2, dropout.WIDTH)


def test_paired_gain_is_the_mean_and_standard_error_of_the_differences():
    gain, se = dropout.paired_gain(np.array([0.5, 0.6, 0.7]), np.array([0.6, 0.6, 0.9]))
    assert gain == pytest.approx(0.1) and se == pytest.approx(np.std([0.1, 0.0, 0.2], ddof=1) / np.sqrt(3))


@pytest.mark.slow  # a whole experiment in smoke mode: the `slow` tier
def test_dropout_smoke(tmp_path):
    r = dropout.main(["--smoke", "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["experiment"] == "dropout" and saved["mode"] == "smoke"
    assert [s["rate"] for s in saved["rate_sweep"]] == dropout.RATES["smoke"]
    assert [s["n_train"] for s in saved["size_sweep"]] == dropout.SIZES["smoke"]
    assert saved["choice"]["rate"] in dropout.RATES["smoke"]
    for s in r["rate_sweep"]:
        assert len(s["test"]) == r["seeds"] and np.all((s["best_epoch"] >= 1) & (s["best_epoch"] <= r["epochs"]))
        assert s["hidden"]["mean"].shape == (r["seeds"], 2)
        np.testing.assert_allclose(s["gap"], s["train"] - s["test"])
    assert (tmp_path / "dropout.png").stat().st_size > 1000
    assert sum(h["readme"] for h in saved["headline"]) == 1
