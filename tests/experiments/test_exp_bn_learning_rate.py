"""Batch norm and the learning rate: the speed and failure measures, and the experiment end to end."""

import json
import math

import numpy as np
import pytest

import fnn
from experiments import bn_learning_rate, bn_weight_scale


def test_steps_to_target_reads_after_each_epoch_and_counts_never_as_one_epoch_more():
    acc = np.array([[0.5, 0.91, 0.97], [0.5, 0.6, 0.7], [0.95, 0.1, np.nan], [np.nan] * 3])
    assert bn_learning_rate.steps_to(acc, 0.9, 19).tolist() == [38, 76, 19, 76]


def test_failure_is_divergence_or_a_loss_at_chance_level():
    diverged = np.array([False, True, False, False, False])
    loss = np.array([0.1, 0.1, math.log(10), np.inf, 2.2])
    assert bn_learning_rate.failed(diverged, loss).tolist() == [False, True, True, True, False]
    lrs = np.array([0.1, 1.0, 10.0, 100.0])
    fails = np.array([[0, 0], [0, 0], [0, 1], [0, 0]], bool)  # a larger rate that survives counts
    assert bn_learning_rate.largest_stable(lrs, fails) == 100.0
    assert math.isnan(bn_learning_rate.largest_stable(lrs, np.ones((4, 2), bool)))


def test_glorot_draws_match_fnns_bounds_and_pair_rates_and_variants():
    net = fnn.Network.mlp((64, 100, 10), "sigmoid", "softmax")
    bn = fnn.Network.mlp((64, 100, 10), "sigmoid", "softmax", norm="batch")
    p = bn_weight_scale.scaled_params(net, 0, np.ones(3), 2, draw=bn_learning_rate.glorot_uniform)
    b = bn_weight_scale.scaled_params(bn, 0, np.ones(3), 2, draw=bn_learning_rate.glorot_uniform)
    w = net.weights(p)[0]
    assert w.shape == (6, 100, 64)
    assert float(np.abs(w).max()) <= math.sqrt(6 / 164)
    assert float(np.var(w[0])) == pytest.approx(2 / 164, rel=0.1)
    np.testing.assert_array_equal(w[0], w[2])  # seed 0 at every rate
    np.testing.assert_array_equal(w, bn.weights(b)[0])  # and in both variants


@pytest.mark.slow  # a whole experiment in smoke mode: the `slow` tier
def test_bn_learning_rate_smoke(tmp_path):
    r = bn_learning_rate.main(["--smoke", "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["experiment"] == "bn_learning_rate" and saved["mode"] == "smoke"
    shape = (len(saved["learning_rates"]), saved["seeds"])
    for v in ("plain", "batch norm"):
        for k in ("failed", "steps_to_target", "final_val", "test", "final_loss"):
            assert np.asarray(r[v][k]).shape == shape
        assert r[v]["choice"]["lr"] in saved["learning_rates"]
        assert r[v]["steps_per_epoch"] == 19  # 1151 fit rows, batch 60, the last partial batch dropped
    assert (tmp_path / "bn_learning_rate.png").stat().st_size > 1000
    assert sum(h["readme"] for h in saved["headline"]) == 2
    assert all(h["ok"] is None for h in saved["headline"])
