"""Smoke test: the GPU check runs end to end on the CPU (tiny sizes) and its gradient check holds here too."""

import json

import pytest

from benchmarks import gpu_check


@pytest.mark.slow  # an end-to-end script: the `slow` tier
def test_gpu_check_smoke(tmp_path):
    gpu_check.main(["--smoke", "--out", str(tmp_path)])
    r = json.loads((tmp_path / "results.json").read_text())
    assert r["experiment"] == "gpu_check" and r["mode"] == "smoke"
    assert 0 <= r["gradients"]["float32"] <= 2e-5 and 0 <= r["gradients"]["float64"] <= 1e-12
    # the ensemble rows: each count timed, "vs one" is each time over the single network's time
    many = r["ensembles"]
    assert [e["networks"] for e in many] == [1, 4] and all(e["s"] > 0 for e in many)
    assert [e["vs_one"] for e in many] == pytest.approx([e["s"] / many[0]["s"] for e in many], rel=1e-12)
    # the roofline: the smoke step (16-32-32-4, batch 32) counts its products by hand: forward z = h Wᵀ and
    # ∂E/∂W = δᵀh for each of the 3 layers, δW for the 2 upper ones; 2 flops per multiply-add
    roof, mac = r["roofline"], 16 * 32 + 32 * 32 + 32 * 4
    assert roof["sizes"] == [16, 32, 32, 4] and roof["batch"] == 32
    assert roof["flops"]["total"] == 2 * 32 * (mac + mac + 32 * 32 + 32 * 4) == 286_720
    assert roof["products_dots"] == 3 + 3 + 2  # the bare-products program holds exactly those 8 products
    assert roof["gflops"] == pytest.approx(roof["flops"]["total"] / roof["step_s"] / 1e9, rel=1e-12)
    assert roof["matmul_gflops"] > 0
    # the headlines: the gradient check holds on this device; the other two are timings (smoke sizes on a
    # CPU: no verdict is asserted), but their values are the ones recorded above
    heads = r["headline"]
    assert len(heads) == 3 and heads[0]["ok"] is True
    assert heads[1]["value"] == pytest.approx(roof["gflops"] / roof["matmul_gflops"], rel=1e-12)
    assert heads[2]["value"] == pytest.approx(many[-1]["vs_one"], rel=1e-12)
