"""The cold-start benchmark's machinery (a fake runner: no processes) and its README block."""

import json
import pathlib

import pytest

from benchmarks import _bench_coldstart as bench
from fnn.train import _keep
from tools import readme

ROOT = pathlib.Path(__file__).resolve().parents[2]


def fake_runner(calls):
    def run(config, data, settings, cache):
        calls.append((config, data, cache))
        return {"first_s": {"sklearn": 0.5, "none": 1.0, "cold": 1.2, "traced": 0.4, "warm": 0.25}[config]}

    return run


def test_every_configuration_runs_per_dataset_and_repeat_cold_traced_warm_in_a_row():
    calls = []
    rec = bench.main(["--repeats", "2", "--smoke"], echo=lambda *_: None, runner=fake_runner(calls))
    assert len(calls) == 2 * len(bench.DATASETS) * len(bench.CONFIGS)
    for i, (config, data, cache) in enumerate(calls):
        if config == "cold":  # the same directory, next
            assert [c[:3] for c in calls[i + 1 : i + 3]] == [("traced", data, cache), ("warm", data, cache)]
    firsts = [c for c, d, _ in calls if d == "digits"]
    assert firsts[:5] == list(bench.CONFIGS) and firsts[5:] == ["cold", "traced", "warm", "none", "sklearn"]  # alternating
    assert bench.KEPT == _keep.SUBDIR  # "traced" removes the kept executables where fnn keeps them
    m = rec["medians"]["digits"]
    assert m["warm_ratio"] == pytest.approx(0.5) and m["none_ratio"] == pytest.approx(2.0)
    block = readme.coldstart_block(rec, "r.json")
    assert "0.25 s (0.50×)" in block and "1.00 s (2.00×)" in block and "0.40 s (0.80×)" in block
    assert "≤ 1.5× / ≤ 1.0×" in block


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
    assert set(rec["medians"]) == set(bench.DATASETS)
    assert all(len(v) == 1 and v[0] > 0 for v in rec["samples"].values())
    assert all(n[0] > 0 for n in rec["cache_files_written"].values())  # the cold fit wrote its programs


def test_the_committed_record_is_complete():
    rec = json.loads((ROOT / readme.COLDSTART_RECORD).read_text())
    assert rec["mode"] == "full" and rec["settings"]["repeats"] >= 3
    assert all(len(v) == rec["settings"]["repeats"] for v in rec["samples"].values())
