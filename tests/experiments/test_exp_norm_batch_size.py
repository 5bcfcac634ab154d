"""Batch norm vs layer norm over batch sizes: the rate grid, the paired start, the train-mode
evaluation in batches, and the experiment end to end."""

import json

import jax
import numpy as np
import pytest

import fnn
from experiments import norm_batch_size as nbs


def test_rate_grid_scales_linearly_with_the_batch_size():
    small, large = nbs.scaled_rates(2, [0.5, 1, 2]), nbs.scaled_rates(128, [0.5, 1, 2])
    np.testing.assert_allclose(large / small, 64.0)
    np.testing.assert_allclose(nbs.scaled_rates(nbs.BASE_BATCH, [1.0]), [nbs.BASE_LR])


def test_spread_leaves_out_cells_where_every_seed_diverged():
    assert nbs.spread([0.3, float("nan"), 0.5]) == pytest.approx(0.2)
    assert nbs.spread([0.4]) == 0.0


@pytest.mark.parametrize("norm", [None, "batch", "layer"])
def test_every_variant_starts_from_the_plain_mlps_weights(norm):
    sizes = (5, 4, 4, 3)
    plain = fnn.MLP(sizes, output="softmax").init_stacked(jax.random.key(0), 2)
    net = fnn.MLP(sizes, output="softmax", norm=norm)
    params = nbs.same_start(net, plain)
    one = jax.tree_util.tree_map(lambda a: a[1], params)
    if isinstance(net, fnn.Network):
        net.check_params(one)  # the structure net.init makes
        weights = net.weights(params)
    else:
        assert norm is None and params is plain
        weights = [p["W"] for p in params]
    for w, p in zip(weights, plain):
        np.testing.assert_array_equal(np.asarray(w), np.asarray(p["W"]))
    if norm == "batch":  # running averages at their initial values: eval mode is the identity affine map
        assert float(one[1]["state"]["var"][0]) == 1.0 and float(one[1]["state"]["mean"][0]) == 0.0


def test_batch_statistics_evaluation_groups_rows_and_matches_eval_mode_for_layer_norm():
    # layer norm does not look at the batch: train mode in groups of any size predicts as eval mode does
    net = fnn.MLP((6, 8, 3), output="softmax", norm="layer")
    params = net.init_stacked(jax.random.key(1), 2)
    x = np.asarray(jax.random.normal(jax.random.key(2), (10, 6)))
    y = np.asarray(nbs.predictions(net, params, x))[0]
    acc = nbs.accuracy_batch_stats(net, params, x, y, 4)  # 8 of the 10 rows, in two batches of 4
    assert acc.shape == (2,) and acc[0] == 1.0


def test_a_batch_of_two_leaves_each_batch_normalised_unit_one_bit():
    # the mechanism the docstring names: with b = 2 batch norm's train-mode output is ±1 per unit (γ = 1, β = 0)
    net = fnn.Network(6, [fnn.blocks.Dense(8, bias=False), fnn.blocks.BatchNorm()])
    x = jax.random.normal(jax.random.key(4), (2, 6))
    z = np.asarray(net.propagate(net.init(jax.random.key(5)), x, train=True)[0])
    np.testing.assert_allclose(np.abs(z), 1.0, atol=2e-2)  # (ε = 1e-5 shaves units whose two values are close)
    np.testing.assert_allclose(z[0], -z[1], atol=1e-6)


@pytest.mark.slow  # a whole experiment in smoke mode: the `slow` tier
def test_norm_batch_size_smoke(tmp_path):
    r = nbs.main(["--smoke", "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["experiment"] == "norm_batch_size" and saved["mode"] == "smoke"
    assert saved["n_fit"] % 128 == 0 and saved["examples_seen"] == saved["n_fit"] * saved["epochs"]
    for variant in nbs.VARIANTS:
        cells = r[variant]["cells"]
        assert [c["batch"] for c in cells] == r["batch_sizes"]
        # the same examples at every batch size: steps × batch is constant
        assert len({c["steps"] * c["batch"] for c in cells}) == 1
        for c in cells:
            assert c["choice"]["lr"] in list(nbs.scaled_rates(c["batch"], r["lr_multipliers"]))
            assert 0.0 <= c["test_mean"] <= 1.0
    assert all("val_batch_stats_mean" in c for c in r["batch"]["cells"])
    assert (tmp_path / "norm_batch_size.png").stat().st_size > 1000
    assert len(saved["headline"]) == 3 and sum(h["readme"] for h in saved["headline"]) == 1
