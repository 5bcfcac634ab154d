"""The cold-start benchmark's machinery (a fake runner: no processes) and its README block."""

import json
import pathlib

import pytest

from benchmarks import _bench_coldstart as bench
from tools import readme

ROOT = pathlib.Path(__file__).resolve().parents[2]


def fake_runner(calls):
    def run(config, data, settings, cache):
        calls.append((config, data, cache))
        if data == bench.TOUR:
            return {"first_s": {"none": 7.0, "cold": 7.5, "warm": 3.0}[config]}
        return {"first_s": {"sklearn": 0.5, "none": 1.0, "jax_cold": 1.2, "jax_warm": 0.4, "cold": 1.2, "warm": 0.25}[config]}

    return run


def test_every_configuration_runs_per_dataset_and_repeat_each_cold_right_before_its_warm():
    calls = []
    rec = bench.main(["--repeats", "2", "--smoke"], echo=lambda *_: None, runner=fake_runner(calls))
    assert len(calls) == 2 * (len(bench.DATASETS) * len(bench.CONFIGS) + len(bench.TOUR_CONFIGS))
    for i, (config, data, cache) in enumerate(calls):
        if config in ("cold", "jax_cold") and data != bench.TOUR:  # the same directory, next
            assert calls[i + 1] == (config.replace("cold", "warm"), data, cache)
    first = {c: cache for c, d, cache in calls[: len(bench.CONFIGS)]}  # the first repeat's digits
    assert first["cold"] != first["jax_cold"]  # JAX's cache alone in a directory of its own
    tour = [c for c, d, _ in calls if d == bench.TOUR]
    assert tour == ["none", "cold", "warm", "cold", "warm", "none"]  # cold right before warm, on one directory
    assert len({cache for _, d, cache in calls if d == bench.TOUR}) == 2  # a fresh one per repeat
    firsts = [c for c, d, _ in calls if d == "digits"]
    assert firsts[:6] == list(bench.CONFIGS) and firsts[6:] == ["cold", "warm", "jax_cold", "jax_warm", "none", "sklearn"]
    m = rec["medians"]["digits"]
    assert m["warm_ratio"] == pytest.approx(0.5) and m["none_ratio"] == pytest.approx(2.0)
    block = readme.coldstart_block(rec, "r.json")
    assert "0.25 s (0.50×)" in block and "1.00 s (2.00×)" in block and "0.40 s (0.80×)" in block
    assert "JAX's persistent cache alone, filled" in block
    assert "≤ 1.5× / ≤ 1.0×" in block
    assert "7.0 s as written; with `fnn.compilation_cache()` at its top 7.5 s the first time and 3.0 s" in block
    assert rec["medians"]["tour"] == {"none_s": 7.0, "cold_s": 7.5, "warm_s": 3.0}


def test_the_child_environments_set_only_their_own_cache(monkeypatch):
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", "/elsewhere")
    monkeypatch.setenv("FNN_SKLEARN_CACHE", "0")
    none, cold = bench.child_env("none", None), bench.child_env("cold", "/c")
    assert none["FNN_SKLEARN_CACHE"] == "0" and "FNN_CACHE_DIR" not in none
    assert cold["FNN_CACHE_DIR"] == "/c" and "FNN_SKLEARN_CACHE" not in cold
    assert "JAX_COMPILATION_CACHE_DIR" not in none and "JAX_COMPILATION_CACHE_DIR" not in cold


@pytest.mark.slow  # 12 fresh processes
def test_smoke_run_in_fresh_processes():
    rec = bench.main(["--repeats", "1", "--smoke"], echo=lambda *_: None)
    assert set(rec["medians"]) == {*bench.DATASETS, bench.TOUR}
    assert all(len(v) == 1 and v[0] > 0 for v in rec["samples"].values())
    assert all(n[0] > 0 for n in rec["cache_files_written"].values())  # the cold fit wrote its programs
    assert all(n[0] > 0 for n in rec["jax_cache_files_written"].values())


def test_the_committed_record_is_complete():
    rec = json.loads((ROOT / readme.COLDSTART_RECORD).read_text())
    assert rec["mode"] == "full" and rec["settings"]["repeats"] >= 3
    assert all(len(v) == rec["settings"]["repeats"] for v in rec["samples"].values())
