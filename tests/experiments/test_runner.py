"""The runner (``python -m experiments``): experiments in worker processes, the 100-column terminal summary."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

from experiments import __main__ as runner
from experiments import _worker

ROOT = pathlib.Path(__file__).resolve().parents[2]


def headline(claim, text, ok, readme=False):
    return {"claim": claim, "text": text, "anchor": "", "ok": ok, "basis": "tested", "readme": readme}


def test_terminal_lines_fit_100_columns_and_keep_the_verdict_first():
    long = "a very long setup: " + "MNIST-1D, 500 rows with 15% label noise, 40-w-10 ReLU, Adam, 1000 epochs, " * 3
    r = {"headline": [headline(long, "+0.024 ± 0.010 s.e. (λ=0: +0.05, a long measured text)", False, readme=True)]}
    (line,) = runner.terminal_lines("l2_double_descent", r)
    assert len(line) <= runner.WIDTH and line.startswith("NO   l2_double_descent ") and line.endswith("…")
    assert "+0.024 ± 0.010" in line


def test_terminal_lines_show_the_readme_rows_only_or_every_verdict():
    r = {"headline": [headline("a", "1", True, readme=True), headline("b", "2", False), headline("c", "3", None)]}
    assert [ln.split()[0] for ln in runner.terminal_lines("x", r)] == ["yes"]  # the README's row
    r = {"headline": [headline("a", "1", True), headline("b", "2", False), headline("c", "3", None)]}
    assert [ln.split()[0] for ln in runner.terminal_lines("x", r)] == ["yes", "NO"]  # no row flagged: those with a verdict


def test_terminal_summary_tallies_and_names_failures(tmp_path):
    results = {
        "a": {"headline": [headline("claim a", "1", True)]},
        "b": {"headline": [headline("claim b", "2", False)]},
        "c": {"error": "RuntimeError: boom\nsecond line"},
    }
    text = runner.terminal_summary(results, tmp_path, 12.0)
    assert all(len(line) <= runner.WIDTH for line in text.splitlines())
    assert "3 experiments, 12 s: 1 claims hold, 1 do not; FAILED: c" in text
    assert f"FAIL {'c':17} RuntimeError: boom second line" in text


def test_the_committed_record_summarises_within_100_columns():
    rec = json.loads((ROOT / "docs" / "results_quick.json").read_text())
    text = runner.terminal_summary(rec["experiments"], pathlib.Path("results"), rec["wall_s"])
    assert max(map(len, text.splitlines())) <= runner.WIDTH
    claims = sum(len(runner.select(e["headline"])[0]) for e in rec["experiments"].values())
    assert len(text.splitlines()) == claims + 5


def test_longest_first_orders_by_the_record_and_puts_unknown_ones_first(tmp_path):
    record = tmp_path / "r.json"
    record.write_text(json.dumps({"experiments": {"a": {"wall_s": 1.0}, "b": {"wall_s": 9.0}, "c": {"wall_s": None}}}))
    assert runner.longest_first(["a", "b", "c", "new"], record) == ["new", "b", "a", "c"]
    assert runner.longest_first(["a", "b"], tmp_path / "missing.json") == ["a", "b"]  # no record: as given


def test_the_timing_experiments_exist_and_every_other_one_times_nothing():
    assert set(runner.ALONE) <= set(runner.EXPERIMENTS)
    for name in set(runner.EXPERIMENTS) - set(runner.ALONE) - {"mnist1d_sweep"}:  # its sweep time is in no claim
        source = (ROOT / "experiments" / f"{name}.py").read_text()
        assert "perf_counter" not in source and "process_time" not in source, f"{name} times something: add it to ALONE"


def test_default_jobs():
    assert runner.default_jobs("gpu") == 1
    assert 1 <= runner.default_jobs(None) <= 4


def test_a_failing_experiment_is_reported_not_raised(tmp_path):
    log = tmp_path / "log.txt"
    name, r = _worker.work(("no_such_experiment", ["--out", str(tmp_path)], "quick", 3, str(log)))
    assert name == "no_such_experiment" and r["error"].startswith("ModuleNotFoundError") and r["seed"] == 3
    assert "Traceback" in log.read_text()


@pytest.mark.slow  # two experiments in smoke mode, in two spawned worker processes
def test_parallel_run_writes_the_report_and_summary(tmp_path):
    out = tmp_path / "res"
    only = "landscape,perceptron,digits"  # digits times its fits: it runs after the others, alone
    cmd = [sys.executable, "-m", "experiments", "--smoke", "--only", only, "--jobs", "2", "--out", str(out)]
    env = {**os.environ, "FNN_CACHE_DIR": str(tmp_path / "cache")}
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert p.returncode == 0, p.stderr[-3000:]
    s = json.loads((out / "summary.json").read_text())
    assert list(s["experiments"]) == ["landscape", "perceptron", "digits"]  # the order asked for, whichever ended first
    assert p.stdout.index("] digits (") > max(p.stdout.index("] landscape ("), p.stdout.index("] perceptron ("))
    assert s["jobs"] == 2 and s["mode"] == "smoke"
    assert all(e["error"] is None and e["headline"] for e in s["experiments"].values())
    assert (out / "REPORT.md").is_file() and (out / "perceptron" / "log.txt").stat().st_size > 0
    assert max(map(len, p.stdout.splitlines())) <= runner.WIDTH  # logs stay on disk; the terminal gets one line per claim
    assert "claims hold" in p.stdout
