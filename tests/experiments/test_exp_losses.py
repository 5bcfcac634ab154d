"""Smoke test: the losses experiment runs end to end and cross-entropy outpaces MSE (same step size; saturated start)."""

import json

import pytest

from experiments import losses

pytestmark = pytest.mark.slow  # a whole experiment in smoke mode: the `slow` tier (`-m slow`)


def test_losses_smoke(tmp_path):
    r = losses.main(["--smoke", "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["experiment"] == "losses" and saved["mode"] == "smoke"
    assert {"setup", "runs", "headline", "figures"} <= set(saved)
    ci = list(r["setup"]["learning_rates"]).index(r["setup"]["common_lr"])
    ce, mse = r["runs"]["usual"]["cross_entropy + softmax"], r["runs"]["usual"]["mse + softmax"]
    assert r["setup"]["n_val"] > 0 and r["setup"]["n_train"] + r["setup"]["n_val"] + r["setup"]["n_test"] == 1797
    # Same learning rate: cross-entropy reaches 90% validation accuracy in fewer epochs, with a larger output gradient.
    assert ce["epochs_to_target"][ci] < mse["epochs_to_target"][ci]
    assert ce["output_grad_norm_epoch1"][ci] > 2 * mse["output_grad_norm_epoch1"][ci]
    assert ce["final_test_accuracy"][ci] > 0.9
    # Saturated start (output weights ×10): cross-entropy recovers, MSE through the saturated softmax stalls.
    ce_sat, mse_sat = r["runs"]["saturated"]["cross_entropy + softmax"], r["runs"]["saturated"]["mse + softmax"]
    assert ce_sat["best_lr"]["epochs_to_target"] < mse_sat["best_lr"]["epochs_to_target"]
    assert ce_sat["best_lr"]["final_test_accuracy"] > mse_sat["best_lr"]["final_test_accuracy"]
    # The fastest rate is chosen on validation (fewest epochs to 90% validation accuracy, then the higher
    # final validation accuracy), and the reported test accuracy is the chosen rate's own.
    for start in ("usual", "saturated"):
        for run in saved["runs"][start].values():
            epochs = [float("inf") if e is None else e for e in run["epochs_to_target"]]
            val = [-1.0 if v is None else v for v in run["final_val_accuracy"]]  # None: every seed diverged
            want = min(range(len(epochs)), key=lambda j: (epochs[j], -val[j]))
            b = run["best_lr"]
            assert "validation" in b["by"] and b["index"] == want
            assert b["learning_rate"] == r["setup"]["learning_rates"][want]
            assert b["final_test_accuracy"] == run["final_test_accuracy"][want]
            assert b["final_val_accuracy"] == run["final_val_accuracy"][want]
    rows = [h for h in saved["headline"] if h["readme"]]
    assert len(rows) == 3 and all("mse + softmax" in h["claim"] for h in rows)
    for f in saved["figures"]:
        assert (tmp_path / f).stat().st_size > 1000
    assert len(saved["figures"]) >= 2
