"""Smoke test: the complexity experiment runs end to end; finite differences scale worse than backprop."""

import json

from experiments import complexity


def test_complexity_smoke(tmp_path):
    r = complexity.main(["--smoke", "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["experiment"] == "complexity" and saved["mode"] == "smoke"
    assert {
        "setting",
        "sizes",
        "slopes",
        "slopes_cpu_time",
        "fit_range_params",
        "manual_over_forward_median",
        "headline",
        "figures",
    } <= set(saved)
    assert set(r["slopes"]) == {"forward", "manual", "autodiff", "fd"}
    sizes = r["sizes"]
    assert [s["params"] for s in sizes] == sorted(s["params"] for s in sizes)
    for s in sizes:
        assert all(s[f"{n}_s"] > 0 for n in ("forward", "manual", "autodiff", "fd_k", "fd"))
        assert s["fd_vs_backprop_rel_err"] < 0.1  # the finite differences do compute the gradient
    # One forward pass per coordinate pair makes finite differences scale worse than backprop.
    assert r["slopes"]["manual"] < r["slopes"]["fd"]
    assert r["slopes"]["autodiff"] < r["slopes"]["fd"]
    assert sizes[-1]["fd_s"] > 10 * sizes[-1]["manual_s"]
    assert (tmp_path / "complexity.png").stat().st_size > 1000
