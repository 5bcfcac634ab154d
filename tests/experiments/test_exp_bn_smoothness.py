"""Batch norm and the smoothness of the loss along the gradient: the probe against a plain loop,
the paired ratio, the minibatches, and the experiment end to end."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from experiments import bn_smoothness as bns


def _norm(tree):
    return float(np.sqrt(sum(np.sum(np.asarray(a, np.float64) ** 2) for a in jax.tree_util.tree_leaves(tree))))


@pytest.mark.parametrize("norm", [None, "batch"])
def test_probe_matches_a_loop_over_the_step_sizes(norm):
    net = fnn.MLP((5, 6, 6, 3), output="softmax", norm=norm)
    params = net.init(jax.random.key(0))
    x = jax.random.normal(jax.random.key(1), (16, 5))
    y = jnp.arange(16) % 3
    scales = [0.1, 0.3, 0.7]
    got = jax.device_get(bns.make_probe(net, x, y, scales)(params))
    vg = fnn.manual_value_and_grad(net, "cross_entropy")
    loss, g = vg(params, x, y)
    losses, changes = [float(loss)], []
    for s in scales:
        e, h = vg(jax.tree_util.tree_map(lambda p, d, s=s: p - s * d, params, g), x, y)
        losses.append(float(e))
        changes.append(_norm(jax.tree_util.tree_map(jnp.subtract, h, g)))
    gn = _norm(g)
    assert got["loss"] == pytest.approx(float(loss), rel=1e-5)
    assert got["loss_range"] == pytest.approx(max(losses) - min(losses), rel=1e-4, abs=1e-6)
    assert got["grad_norm"] == pytest.approx(gn, rel=1e-4)
    assert got["grad_change"] == pytest.approx(max(changes), rel=1e-4)
    assert got["beta"] == pytest.approx(max(c / (s * gn) for c, s in zip(changes, scales)), rel=1e-4)
    assert got["beta"] > 0


def test_probe_of_batch_norm_leaves_the_running_statistics_alone():
    # the running averages have zero gradient, so the probe points keep them; the probe runs in train mode
    net = fnn.MLP((4, 5, 2), output="softmax", norm="batch")
    params = net.init(jax.random.key(2))
    _, g = fnn.manual_value_and_grad(net, "cross_entropy")(params, jnp.ones((3, 4)).at[0].set(0.0), jnp.array([0, 1, 0]))
    assert all(float(jnp.abs(v).max()) == 0.0 for v in jax.tree_util.tree_leaves(g[1]["state"]))


def test_paired_ratio_is_per_seed_then_over_seeds():
    r = bns.paired_ratio(np.array([[4.0, 4.0], [1.0, 3.0]]), np.array([[2.0, 2.0], [1.0, 1.0]]))
    assert r["per_seed"] == [2.0, 2.0] and r["mean"] == 2.0 and r["std"] == 0.0 and r["se"] == 0.0


def test_minibatches_are_permutations_within_each_epoch():
    n = 3 * bns.BATCH + 5  # 3 whole batches an epoch, 5 rows dropped
    idx = bns.minibatches(n, 7, seed=0)
    assert idx.shape == (7, bns.BATCH)
    for epoch in range(2):
        rows = idx[3 * epoch : 3 * epoch + 3].ravel()
        assert len(set(rows.tolist())) == rows.size  # no row twice within an epoch
    np.testing.assert_array_equal(idx, bns.minibatches(n, 7, seed=0))


@pytest.mark.slow  # a whole experiment in smoke mode: the `slow` tier
def test_bn_smoothness_smoke(tmp_path):
    r = bns.main(["--smoke", "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["experiment"] == "bn_smoothness" and saved["mode"] == "smoke"
    probes = len(r["probe_steps"])
    for variant in bns.VARIANTS:
        for m in bns.MEASURES:
            a = np.asarray(r[variant][m])
            assert a.shape == (r["seeds"], probes) and np.all(np.isfinite(a)) and np.all(a >= 0)
        assert np.all(np.asarray(r[variant]["loss_min"]) <= np.asarray(r[variant]["loss"]) + 1e-6)
    for m in bns.MEASURES:
        assert len(r["ratios"][m]["per_seed"]) == r["seeds"]
        assert len(saved["ratio_over_training"][m]) == probes
    assert (tmp_path / "bn_smoothness.png").stat().st_size > 1000
    assert len(saved["headline"]) == 4 and sum(h["readme"] for h in saved["headline"]) == 1
