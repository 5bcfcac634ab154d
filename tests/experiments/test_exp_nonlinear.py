"""Smoke test: the nonlinear experiment runs end to end and its numbers make the claim."""

import json

import pytest
from _helpers import verdicts

from experiments import nonlinear

pytestmark = pytest.mark.slow  # a whole experiment in smoke mode: the `slow` tier (`-m slow`)


def test_nonlinear_smoke(tmp_path):
    r = nonlinear.main(["--smoke", "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["experiment"] == "nonlinear" and saved["mode"] == "smoke"
    assert {"circles", "moons", "spirals", "headline", "figures"} <= set(saved)
    for name in ("circles", "moons", "spirals"):
        lin, mlp = r[name]["linear"], r[name]["mlp"]
        assert mlp["test_mean"] > lin["test_mean"] + 0.05, name  # the hidden layer helps on every dataset
        assert mlp["test_mean"] >= 0.9, name
        assert not any(lin["diverged"]) and not any(mlp["diverged"])
    assert r["circles"]["linear"]["test_mean"] <= 0.7  # no line separates rings
    assert r["spirals"]["linear"]["train_mean"] <= 0.6  # cs231n: 0.49
    assert r["spirals"]["mlp"]["train_mean"] >= 0.95  # cs231n: 0.98
    v = verdicts(saved["headline"])
    assert len(v) == 4 and all(v.values()), v
    # one row per dataset (linear → MLP on the test split) plus the cs231n training-accuracy comparison
    heads = saved["headline"]
    names = ["circles", "moons", "spirals (3 arms)", "spirals (3 arms, 150 training points)"]  # smoke: 300 points
    assert [h["claim"].split(":")[0] for h in heads] == names
    assert all(h["readme"] and h["basis"] == "tested" for h in heads)
    assert [h["value"] for h in heads] == [r[d]["mlp"]["test_mean"] for d in ("circles", "moons", "spirals")] + [
        r["spirals"]["mlp"]["train_mean"]
    ]
    assert (tmp_path / "boundaries.png").stat().st_size > 1000
