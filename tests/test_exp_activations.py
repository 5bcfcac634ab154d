"""Smoke test: the activations experiment runs end to end and its numbers point the claimed way."""

import json
import math

from experiments import activations


def test_activations_smoke(tmp_path):
    r = activations.main(["--smoke", "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["experiment"] == "activations" and saved["mode"] == "smoke"
    assert {"setup", "training", "grad_norms_at_init", "grad_ratio_first_last", "headline", "figures"} <= set(saved)
    train = r["training"]
    # (a) sigmoid trains slower than ReLU at the same learning rate.
    ci = activations.np.argmin(abs(activations.np.asarray(r["setup"]["learning_rates"]) - activations.COMMON_LR))
    assert train["sigmoid"]["final_train_loss"][ci] > 2 * train["relu"]["final_train_loss"][ci]
    assert train["relu"]["final_test_accuracy"][ci] > 0.85
    # (b) gradients vanish through sigmoid layers, not through ReLU layers (He init).
    ratios = r["grad_ratio_first_last"]["auto"]
    assert ratios["sigmoid"] < 1e-2 < 0.1 < ratios["relu"] < 10
    assert len(r["grad_norms_at_init"]["auto"]["relu"]) == r["setup"]["deep_hidden_layers"] + 1
    # (c) more dead ReLUs after training at the large learning rate than at the small one.
    dead = train["relu"]["dead_fraction"]
    assert dead[0] < 0.05 and math.isfinite(dead[-1]) and dead[-1] > dead[0]
    assert all(0 <= d <= 1 for d in dead if math.isfinite(d))
    for h in saved["headline"]:
        if h["claim"].startswith(("(a)", "(c)")) or "sigmoid" in h["claim"] or "relu" in h["claim"]:
            assert h["ok"] is not False, h
    for f in ("curves.png", "grad_norms.png", "dead_vs_lr.png"):
        assert (tmp_path / f).stat().st_size > 1000
