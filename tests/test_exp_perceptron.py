"""Smoke test: the perceptron experiment runs end to end and its numbers make the claim."""

import json

from experiments import perceptron


def test_perceptron_smoke(tmp_path):
    r = perceptron.main(["--smoke", "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["experiment"] == "perceptron" and saved["mode"] == "smoke"
    assert {"neuron_AND", "neuron_OR", "neuron_XOR", "mlp_XOR", "headline", "figures"} <= set(saved)
    assert max(r["neuron_AND"]["final_accuracy"]) == 1.0 and max(r["neuron_OR"]["final_accuracy"]) == 1.0
    assert r["neuron_XOR"]["best_accuracy_any_epoch"] <= 0.75  # no line separates XOR
    assert max(r["mlp_XOR"]["final_accuracy"]) == 1.0
    assert all(h["ok"] is not False for h in saved["headline"])
    assert (tmp_path / "boundaries.png").stat().st_size > 1000
