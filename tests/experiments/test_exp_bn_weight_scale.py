"""Batch norm and the initial weight scale: the starting parameters, the range measure, and the experiment end to end."""

import json

import numpy as np
import pytest

import fnn
from experiments import bn_weight_scale


def test_scaled_params_scale_one_draw_per_seed_shared_by_both_variants():
    scales = np.array([1e-3, 1e-1, 1.0])
    plain = fnn.Network.mlp((5, 4, 4, 3), "relu", "softmax")
    bn = fnn.Network.mlp((5, 4, 4, 3), "relu", "softmax", norm="batch")
    p, b = (bn_weight_scale.scaled_params(net, 7, scales, seeds=2) for net in (plain, bn))
    wp, wb = plain.weights(p), bn.weights(b)
    for a, c in zip(wp, wb):
        assert a.shape[0] == 6 and a.dtype == np.float32
        np.testing.assert_array_equal(a, c)  # the same draws with and without batch norm
        for i, s in enumerate(scales):  # network i·seeds + j: scale i, seed j
            for j in range(2):
                np.testing.assert_allclose(a[i * 2 + j], s / scales[-1] * a[(len(scales) - 1) * 2 + j], rtol=1e-6)
        assert not np.allclose(a[0], a[1])  # the seeds differ
    w = wp[1][-2:]  # scale 1: N(0, 1) entries
    assert 0.5 < float(np.std(w)) < 1.6
    assert all(float(np.abs(layer["b"]).max()) == 0.0 for layer in p if "b" in layer)
    norms = [layer for layer in b if "gamma" in layer]
    assert len(norms) == 2
    for layer in norms:  # batch norm's parameters as its own init makes them
        assert layer["gamma"].shape == (6, 4) and (layer["gamma"] == 1).all() and (layer["beta"] == 0).all()
        assert (layer["state"]["mean"] == 0).all() and (layer["state"]["var"] == 1).all()
    bn.check_params(fnn.sweep.network(bn, b, 0))  # each network's params are what the network takes
    plain.check_params(fnn.sweep.network(plain, p, 5))


def test_trained_range_is_the_contiguous_run_around_the_best():
    v = np.array([0.1, 0.93, 0.2, 0.92, 0.95, 0.94, 0.5, 0.97])
    assert bn_weight_scale.trained_range(v, tolerance=0.05) == (7, 7)
    assert bn_weight_scale.trained_range(v[:7], tolerance=0.05) == (3, 5)  # 0.93 at 1 is cut off by the 0.2
    assert bn_weight_scale.trained_range(np.array([np.nan, 0.5, np.nan]), tolerance=0.05) == (1, 1)
    scales = np.logspace(-4, 0, 20)
    assert bn_weight_scale.decades(scales, 3, 3) == 0.0
    assert bn_weight_scale.decades(scales, 14, 16) == pytest.approx(8 / 19)


@pytest.mark.slow  # a whole experiment in smoke mode: the `slow` tier
def test_bn_weight_scale_smoke(tmp_path):
    r = bn_weight_scale.main(["--smoke", "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["experiment"] == "bn_weight_scale" and saved["mode"] == "smoke"
    n = len(saved["scales"])
    for v in ("plain", "batch norm"):
        assert np.asarray(r[v]["val_accuracy"]).shape == (n, saved["seeds"])
        assert len(saved[v]["train_mean"]) == n and len(saved[v]["val_std"]) == n
        lo, hi = r[v]["range"]
        assert lo <= r[v]["best_scale"] <= hi and r[v]["decades"] >= 0
    assert (tmp_path / "bn_weight_scale.png").stat().st_size > 1000
    assert sum(h["readme"] for h in saved["headline"]) == 1
    assert all(h["ok"] is None for h in saved["headline"])  # smoke numbers judge nothing
