"""Smoke test: the benchmark script runs end to end (tiny shapes) and reports every section.

Timings are never asserted: they are noisy on shared machines; only structure and sanity."""

import json

from experiments import benchmark


def test_benchmark_smoke(tmp_path):
    benchmark.main(["--smoke", "--out", str(tmp_path)])
    r = json.loads((tmp_path / "results.json").read_text())
    assert {"steps", "roofline", "loop", "many", "peers", "memory", "headline"} <= set(r)
    assert [s["config"] for s in r["steps"]] == list(benchmark.SMOKE_CONFIGS)
    assert all(s["manual_us"] > 0 and s["autodiff_us"] > 0 and s["ratio"] > 0 for s in r["steps"])
    assert r["loop"]["scan"] > 0 and r["loop"]["python"] > 0 and r["loop"]["fit"] > 0
    assert {m["networks"] for m in r["many"]} == {1, 4}
    assert r["roofline"]["gflops"] > 0 and r["roofline"]["products_s"] > 0
    claims = [h["claim"] for h in r["headline"]]
    assert any("manual/autodiff" in c for c in claims) and any("XOR scan" in c for c in claims)
