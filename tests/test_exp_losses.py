"""Smoke test: the losses experiment runs end to end and cross-entropy outpaces MSE (same step size; saturated start)."""

import json

from experiments import losses


def test_losses_smoke(tmp_path):
    r = losses.main(["--smoke", "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["experiment"] == "losses" and saved["mode"] == "smoke"
    assert {"setup", "runs", "headline", "figures"} <= set(saved)
    ci = list(r["setup"]["learning_rates"]).index(r["setup"]["common_lr"])
    ce, mse = r["runs"]["usual"]["cross_entropy + softmax"], r["runs"]["usual"]["mse + softmax"]
    # Same learning rate: cross-entropy reaches 90% test accuracy in fewer epochs, with a larger output gradient.
    assert ce["epochs_to_target"][ci] < mse["epochs_to_target"][ci]
    assert ce["output_grad_norm_epoch1"][ci] > 2 * mse["output_grad_norm_epoch1"][ci]
    assert ce["final_test_accuracy"][ci] > 0.9
    # Saturated start (output weights ×10): cross-entropy recovers, MSE through the saturated softmax stalls.
    ce_sat, mse_sat = r["runs"]["saturated"]["cross_entropy + softmax"], r["runs"]["saturated"]["mse + softmax"]
    assert ce_sat["best_lr"]["epochs_to_target"] < mse_sat["best_lr"]["epochs_to_target"]
    assert ce_sat["best_lr"]["final_test_accuracy"] > mse_sat["best_lr"]["final_test_accuracy"]
    for f in saved["figures"]:
        assert (tmp_path / f).stat().st_size > 1000
    assert len(saved["figures"]) >= 2
