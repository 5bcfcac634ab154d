"""Smoke test: the GPU check runs end to end on the CPU (tiny sizes) and its gradient check holds here too."""

import json

import pytest

from experiments import gpu_check


@pytest.mark.slow  # an end-to-end script: the `slow` tier
def test_gpu_check_smoke(tmp_path):
    gpu_check.main(["--smoke", "--out", str(tmp_path)])
    r = json.loads((tmp_path / "results.json").read_text())
    assert r["experiment"] == "gpu_check" and r["mode"] == "smoke"
    assert 0 <= r["gradients"]["float32"] <= 2e-5 and 0 <= r["gradients"]["float64"] <= 1e-12
    assert [e["networks"] for e in r["ensembles"]] == [1, 4] and r["ensembles"][0]["vs_one"] == 1.0
    assert r["roofline"]["gflops"] > 0 and r["roofline"]["matmul_gflops"] > 0
    assert len(r["headline"]) == 3 and r["headline"][0]["ok"]
