"""Smoke test: the activations experiment runs end to end and its numbers point the claimed way."""

import json
import math

import pytest
from _helpers import verdicts

from experiments import activations

pytestmark = pytest.mark.slow  # a whole experiment in smoke mode: the `slow` tier (`-m slow`)


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
    assert 0.1 < ratios["elu"] < 10  # ELU (He init) keeps the gradient scale too
    assert len(r["grad_norms_at_init"]["auto"]["relu"]) == r["setup"]["deep_hidden_layers"] + 1
    # every (b) verdict follows from its ratio: < 1e-2 for sigmoid and tanh, within 0.1 … 10 for the ReLU family
    heads = {h["claim"].split(":")[0]: h for h in saved["headline"] if h["claim"].startswith("(b)")}
    assert len(heads) == len(activations.ACTIVATIONS)
    for a in activations.ACTIVATIONS:
        h = heads[f"(b) {a}"]
        assert h["value"] == ratios[a]
        assert h["ok"] is (ratios[a] < 1e-2 if a in ("sigmoid", "tanh") else 0.1 <= ratios[a] <= 10)
    assert heads["(b) elu"]["ok"] is True and heads["(b) elu"]["readme"]
    # the best rate is chosen on validation (highest mean validation accuracy, then the lower validation
    # loss) and the test accuracy reported for it is that rate's own
    assert r["setup"]["n_val"] > 0
    for a, t in saved["training"].items():
        val = [-1.0 if v is None else v for v in t["final_val_accuracy"]]  # None: every seed diverged
        vloss = [float("inf") if v is None else v for v in t["final_val_loss"]]
        want = max(range(len(val)), key=lambda j: (val[j], -vloss[j]))
        b = t["best_lr"]
        assert "validation" in b["by"] and b["index"] == want, a
        assert b["learning_rate"] == r["setup"]["learning_rates"][want]
        assert b["final_test_accuracy"] == t["final_test_accuracy"][want]
        assert b["final_val_accuracy"] == t["final_val_accuracy"][want]
    # (c) more dead ReLUs after training at the large learning rate than at the small one.
    dead = train["relu"]["dead_fraction"]
    assert dead[0] < 0.05 and math.isfinite(dead[-1]) and dead[-1] > dead[0]
    assert all(0 <= d <= 1 for d in dead if math.isfinite(d))
    # every other verdict holds; (b) tanh's follows its ratio above (at smoke sizes it does not vanish)
    descriptive = [": final train loss (test", ": test accuracy at the lr chosen", "(c) relu at lr ≥"]
    v = verdicts(saved["headline"], descriptive=descriptive)
    assert len(v) == 3 + len(activations.ACTIVATIONS)
    assert all(ok for claim, ok in v.items() if not claim.startswith("(b) tanh")), v
    for f in ("curves.png", "grad_norms.png", "dead_vs_lr.png"):
        assert (tmp_path / f).stat().st_size > 1000
