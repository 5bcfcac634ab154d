"""Smoke test: the gradients experiment runs end to end and its numbers make the claim."""

import json

import jax

from experiments import gradients


def test_gradients_smoke(tmp_path):
    x64_before = bool(jax.config.jax_enable_x64)
    r = gradients.main(["--smoke", "--out", str(tmp_path)])
    assert bool(jax.config.jax_enable_x64) == x64_before  # the float64 part restores the flag
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["experiment"] == "gradients" and saved["mode"] == "smoke"
    assert {"cells", "worst", "cells_ok", "kinks", "timing", "time_ratio_manual_over_autodiff", "headline"} <= set(saved)
    cells64, cells32 = r["cells"]["float64"], r["cells"]["float32"]
    assert cells64 and cells32
    assert {c["dtype"] for c in cells64} == {"float64"} and {c["dtype"] for c in cells32} == {"float32"}
    # the claim: the hand-derived backward pass is jax.grad up to rounding, and finite differences agree
    assert r["worst"]["float64"]["autodiff_rel"] <= 1e-12
    assert r["worst"]["float64"]["fd_rel"] <= 1e-6
    assert r["worst"]["float32"]["autodiff_rel"] <= 1e-4
    assert all(c["ok"] for c in cells64 + cells32)
    assert any(c["activation"] == "relu" for c in cells64)
    t = r["timing"][0]
    assert t["manual_ms"] > 0 and t["autodiff_ms"] > 0 and t["pairs"] >= 10
    # every verdict but the (noisy) timing one must hold
    assert all(h["ok"] is not False for h in saved["headline"] if "time" not in h["claim"])
    assert (tmp_path / "rel_errors.png").stat().st_size > 1000
