"""tools/before_after.py: the verdict rule and the table on synthetic samples, the checkouts (a git worktree of
HEAD, a copy of the working tree) and their removal, and (slow tier) the whole tool in smoke mode, HEAD
against HEAD, whose record must hold every figure for both sides as a positive finite number."""

import json
import math
import os
import pathlib
import subprocess
import sys

import pytest

from tools import before_after as ba

ROOT = pathlib.Path(__file__).parents[2]


def _git_worktrees() -> str:
    return subprocess.run(["git", "worktree", "list", "--porcelain"], cwd=ROOT, capture_output=True, text=True).stdout


needs_git = pytest.mark.skipif(
    subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True).returncode != 0,
    reason="not a git checkout",
)

# ---------------------------------------------------------------------------------------------------------------------
# the rule


def test_worse_beyond_noise_is_the_after_median_above_every_before_sample():
    before = [1.0, 1.1, 0.9, 1.05, 0.95]
    s = ba.summarize(before, [1.2, 1.3, 1.15, 1.25, 1.0])  # median 1.2 > max 1.1
    assert s["worse_beyond_noise"] is True and s["better_beyond_noise"] is False
    assert s["ratio"] == pytest.approx(1.2) and s["before_median"] == 1.0 and s["after_median"] == 1.2
    assert s["noise_before"] == pytest.approx(0.2) and s["noise_after"] == pytest.approx(0.3 / 1.2)
    lo, hi = s["ratio_ci90"]
    assert lo <= s["ratio"] <= hi
    # inside the before's range: no verdict either way
    s = ba.summarize(before, [1.08, 1.0, 1.09, 1.2, 0.9])
    assert s["worse_beyond_noise"] is False and s["better_beyond_noise"] is False
    s = ba.summarize(before, [0.5, 0.6, 0.55, 0.8, 1.2])
    assert s["worse_beyond_noise"] is False and s["better_beyond_noise"] is True
    # too few repeats: no verdict at all
    s = ba.summarize([1.0, 1.0], [2.0, 2.0])
    assert s["worse_beyond_noise"] is None and s["better_beyond_noise"] is None


def test_the_table_has_a_row_per_figure_and_states_the_rule():
    summary = {name: ba.summarize([1.0, 1.1, 0.9], [2.0, 2.1, 1.9]) for name in ba.FIGURES}
    summary["warm_step_us"] = ba.summarize([1.0, 1.1, 0.9], [0.5, 0.6, 0.4])
    text = ba.table(summary)
    rows = {line.split()[0]: line for line in text.splitlines() if line.split() and line.split()[0] in ba.FIGURES}
    assert set(rows) == set(ba.FIGURES)
    assert rows["import_s"].endswith("YES") and rows["warm_step_us"].endswith("no (better)")
    assert " 2.000 " in rows["import_s"] and "worse beyond noise" in text and ba.RULE in text
    assert "n/a" in ba.table({"import_s": ba.summarize([1.0], [2.0])})


def test_the_child_environment_has_no_compilation_cache_and_the_tree_first(monkeypatch, tmp_path):
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", "/tmp/somewhere")
    monkeypatch.setenv("JAX_PLATFORMS", "cuda")
    env = ba.child_env(tmp_path)
    assert "JAX_COMPILATION_CACHE_DIR" not in env
    assert env["JAX_PLATFORMS"] == "cpu" and env["JAX_ENABLE_COMPILATION_CACHE"] == "false"
    assert env["PYTHONPATH"] == str(tmp_path)


def test_both_groups_cover_every_figure_and_the_sizes_agree():
    assert {g for g, _ in ba.FIGURES.values()} == set(ba.GROUPS) == set(ba.SNIPPETS)
    assert ba.SMOKE.keys() == ba.FULL.keys()
    for name in ba.FIGURES:
        assert f'out["{name}"]' in ba.SNIPPETS[ba.FIGURES[name][0]]


# ---------------------------------------------------------------------------------------------------------------------
# the checkouts


@needs_git
def test_a_commit_is_checked_out_as_a_worktree_and_removed_after():
    sha = ba.resolve("HEAD")
    assert len(sha) == 40
    with ba.checkout(sha, "test") as tree:
        assert (tree / "fnn" / "__init__.py").is_file()
        assert str(tree) in _git_worktrees()
    assert not tree.exists() and not tree.parent.exists()
    assert str(tree) not in _git_worktrees()


@needs_git
def test_the_working_tree_is_copied_and_removed_after():
    assert ba.resolve(ba.WORKTREE) == ba.WORKTREE
    with ba.checkout(ba.WORKTREE, "test") as tree:
        assert (tree / "fnn" / "__init__.py").read_bytes() == (ROOT / "fnn" / "__init__.py").read_bytes()
        assert (tree / "tools" / "before_after.py").is_file()
        assert not (tree / ".git").exists() and not (tree / ".venv").exists()
    assert not tree.parent.exists()
    d = ba.describe(ba.WORKTREE, ba.WORKTREE)
    assert d["sha"].endswith("+uncommitted") and len(d["diff_sha256"]) == 64


# ---------------------------------------------------------------------------------------------------------------------
# the whole tool


@needs_git
@pytest.mark.slow
def test_smoke_run_head_against_head_records_every_figure(tmp_path):
    out = tmp_path / "record.json"
    env = {k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"}
    args = ["--before", "HEAD", "--after", "HEAD", "--repeats", "1", "--smoke", "--out", str(out)]
    r = subprocess.run(
        [sys.executable, "-m", "tools.before_after", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert r.returncode == 0, r.stderr[-4000:]
    record = json.loads(out.read_text())
    head = ba.resolve("HEAD")
    assert record["commits"]["before"]["sha"] == record["commits"]["after"]["sha"] == head
    assert record["settings"]["smoke"] is True and record["settings"]["repeats"] == 1
    for side in ("before", "after"):
        assert set(record["samples"][side]) == set(ba.FIGURES)
        for name, values in record["samples"][side].items():
            assert len(values) == 1 and all(math.isfinite(v) and v > 0 for v in values), (side, name, values)
        assert record["info"][side]["fnn_file"].startswith(record["checkouts"][side])
        assert not pathlib.Path(record["checkouts"][side]).exists()
    assert set(record["summary"]) == set(ba.FIGURES)
    assert record["machine"]["cpu_count"] == os.cpu_count() and record["machine"]["jax"]
    assert len(record["order"]) == 2 * len(ba.GROUPS)
    for name in ba.FIGURES:
        assert name in r.stdout
