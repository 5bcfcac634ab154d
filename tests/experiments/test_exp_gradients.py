"""Smoke test: the gradients experiment runs end to end and its numbers make the claim."""

import json

import jax
import pytest
from _helpers import verdicts

from experiments import gradients

pytestmark = pytest.mark.slow  # a whole experiment in smoke mode: the `slow` tier (`-m slow`)


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
    # every leaf of every cell checked and within tolerance: the parameters are a generic point (random
    # biases), so no leaf is left unresolved by coordinates sitting exactly on a ReLU kink
    assert all(c["ok"] for c in cells64 + cells32)
    assert not any(c["mismatch"] for c in cells64 + cells32)
    assert r["leaves_unresolved"] == {"float64": 0, "float32": 0}
    assert all(c["leaf_status"] == ["ok"] * 6 for c in cells64)  # 3 layers × (W, b)
    assert any(c["activation"] == "relu" for c in cells64)
    # smoke grid: 2 activations × 2 (output, loss) pairs × 1 architecture in float64, the diagonal (one pair per
    # activation) in float32
    assert r["cells_total"] == {"float64": 4, "float32": 2}
    assert {(c["activation"], c["output"], c["loss"]) for c in cells64} == {
        (a, o, lo) for a in ("tanh", "relu") for o, lo in (("softmax", "cross_entropy"), ("sigmoid", "bce"))
    }
    # timing: one size, the 10 interleaved pairs asked for, and the recorded ratio is the median of the per-size ratios
    # (wall-clock values themselves are not asserted: timings belong in benchmarks/benchmark.py)
    assert len(r["timing"]) == 1 and r["timing"][0]["pairs"] == 10
    assert r["time_ratio_manual_over_autodiff"] == r["timing"][0]["ratio"]
    # every verdict but the (noisy) timing one must hold, and the README rows are the float64 ones
    v = verdicts(saved["headline"], timing=["jitted step time"])
    assert len(v) == 6 and all(v.values()), v
    assert [h["claim"][:7] for h in saved["headline"] if h["readme"]] == ["float64", "float64"]
    assert (tmp_path / "rel_errors.png").stat().st_size > 1000
