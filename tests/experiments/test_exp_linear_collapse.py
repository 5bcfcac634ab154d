"""Smoke test: the linear-collapse experiment runs end to end and its numbers make the claim."""

import json

import jax
import numpy as np
import pytest
from _helpers import verdicts

from experiments import linear_collapse


@pytest.mark.slow  # a whole experiment in smoke mode: the `slow` tier
def test_linear_collapse_smoke(tmp_path):
    x64_before = jax.config.jax_enable_x64
    r = linear_collapse.main(["--smoke", "--out", str(tmp_path)])
    assert jax.config.jax_enable_x64 == x64_before  # the experiment turns x64 on for the fold only
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["experiment"] == "linear_collapse" and saved["mode"] == "smoke"
    assert {"fold", "deep_linear", "logistic", "deep_tanh", "deep_relu", "trained_fold", "best_line", "headline"} <= set(saved)
    # The fold is exact up to rounding, in both precisions, and float64 is far tighter.
    assert r["fold"]["float32"]["dtype"] == "float32" and r["fold"]["float64"]["dtype"] == "float64"
    assert r["fold"]["float32"]["rel_error"] < 1e-5
    assert r["fold"]["float64"]["rel_error"] < 1e-13
    assert min(r["trained_fold"]["prediction_agreement"]) == 1.0
    # Deep linear is a linear classifier: no better than the best line, and about logistic regression.
    line = r["best_line"]["test_accuracy"]
    assert r["deep_linear"]["test_mean"] <= line and r["logistic"]["test_mean"] <= line
    assert abs(r["deep_linear"]["test_mean"] - r["logistic"]["test_mean"]) < 0.1
    assert abs(r["final_loss_gap_deep_linear_minus_logistic"]) < 0.02  # same model class, same minimum
    assert r["deep_tanh"]["test_mean"] >= 0.9 and r["deep_relu"]["test_mean"] >= 0.9
    v = verdicts(saved["headline"], descriptive=["best test accuracy of any straight line"])
    assert len(v) == 5 and all(v.values()), v
    # the fold's verdicts are algebra (one affine map by construction); the rings' are tested claims
    algebra = [h for h in saved["headline"] if h["basis"] == "algebra"]
    assert len(algebra) == 2 and all("fold" in h["claim"] for h in algebra)
    assert all(h["basis"] == "tested" for h in saved["headline"] if "rings" in h["claim"])
    assert sum(h["readme"] for h in saved["headline"]) == 3
    assert (tmp_path / "boundaries.png").stat().st_size > 1000


def test_best_line_accuracy():
    x = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    assert linear_collapse.best_line_accuracy(x, np.array([0, 0, 1, 1])) == 1.0  # separable
    assert linear_collapse.best_line_accuracy(x, np.array([0, 1, 1, 0])) == 0.75  # XOR: 3 of 4
