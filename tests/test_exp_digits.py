"""Smoke test: the digits experiment (fnn vs scikit-learn's MLPClassifier) runs end to end."""

import json

import pytest

from experiments import digits


def test_digits_smoke(tmp_path):
    r = digits.main(["--smoke", "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["experiment"] == "digits" and saved["mode"] == "smoke"
    assert {"settings", "sklearn", "fnn", "accuracy", "ratio", "headline", "figures"} <= set(saved)
    # both models learn the digits (chance is 0.1) and fnn ran as many epochs as scikit-learn did
    assert r["accuracy"]["sklearn_mean"] > 0.85 and r["accuracy"]["fnn_mean"] > 0.85
    assert all(run["epochs"] == r["settings"]["fnn_epochs"] for run in r["fnn"]["runs"])
    assert r["settings"]["fnn_epochs"] == r["sklearn"][0]["runs"][0]["n_iter"]
    # the first call pays for compilation; later calls reuse the compiled loop
    assert r["fnn"]["first_call_wall_s"] > r["fnn"]["warm_median_wall_s"] > 0
    ref = min(s["median_wall_s"] for s in r["sklearn"])
    assert r["ratio"]["fnn_warm_over_sklearn"] == pytest.approx(r["fnn"]["warm_median_wall_s"] / ref)
    claims = {h["claim"]: h for h in saved["headline"]}
    assert any("fraction of sklearn" in c and h["ok"] is not None for c, h in claims.items())
    assert (tmp_path / "digits.png").stat().st_size > 1000
