"""Smoke test: the capacity experiment runs end to end and training accuracy grows with size."""

import json

import pytest

from experiments import capacity

pytestmark = pytest.mark.slow  # a whole experiment in smoke mode: the `slow` tier (`-m slow`)


def test_capacity_smoke(tmp_path):
    r = capacity.main(["--smoke", "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["experiment"] == "capacity" and saved["mode"] == "smoke"
    assert {"setting", "architectures", "turning_point", "largest", "test_accuracy_drop", "headline", "figures"} <= set(saved)
    archs = r["architectures"]
    assert len(archs) >= 2
    params = [a["params"] for a in archs]
    assert params == sorted(params)
    for a in archs:
        assert {
            "label",
            "params",
            "train_accuracy",
            "val_accuracy",
            "test_accuracy",
            "train_loss",
            "val_loss",
            "test_loss",
            "mean_train_accuracy",
            "mean_val_accuracy",
            "mean_test_accuracy",
        } <= set(a)
        assert 0.5 <= a["mean_test_accuracy"] <= 1.0 and 0.5 <= a["mean_train_accuracy"] <= 1.0
        assert 0.5 <= a["mean_val_accuracy"] <= 1.0
    # More units fit the (noisy) training set better: the claim's first half.
    assert archs[-1]["mean_train_accuracy"] > archs[0]["mean_train_accuracy"]
    assert archs[-1]["mean_train_loss"] < archs[0]["mean_train_loss"]
    # The turning point is chosen on validation (first of ties) and reported with its own test accuracy.
    val = [a["mean_val_accuracy"] for a in archs]
    chosen = archs[val.index(max(val))]
    sel, tp = saved["selected"], r["turning_point"]
    assert "validation" in sel["by"] and sel["params"] == tp["params"] == chosen["params"] and sel["label"] == chosen["label"]
    assert sel["test_acc"] == tp["test_accuracy"] == chosen["mean_test_accuracy"]
    assert sel["val_acc"] == tp["val_accuracy"] == max(val)
    assert r["test_accuracy_drop"] == tp["test_accuracy"] - r["largest"]["test_accuracy"]
    assert r["setting"]["n_val"] > 0
    assert sum(h["readme"] for h in saved["headline"]) >= 1
    assert (tmp_path / "capacity.png").stat().st_size > 1000
