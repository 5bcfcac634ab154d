"""benchmarks/_bench_gridsearch.py: GridSearchCV by n_jobs, with and without a shared compilation cache.

The fast tests run the script's plumbing with a fake runner (no process started): the order of the
configurations, the environment each gets, the record and its medians. The slow one runs it end to end in
smoke mode (tiny settings, real fresh processes and joblib workers); its timings are never compared.
"""

import json
import os

import pytest

from benchmarks import _bench_gridsearch as gs
from tools import readme


def test_order_alternates_and_cold_comes_right_before_its_warm():
    first, second = gs.order(0), gs.order(1)
    assert sorted(first) == sorted(second) == sorted([gs.STARTUP] + [(lib, j) for lib in gs.LIBS for j in gs.N_JOBS])
    assert first != second and first[0] != second[0]
    for o in (first, second):
        for j in gs.N_JOBS:
            assert o.index(("warm", j)) == o.index(("cold", j)) + 1


def test_child_env_drops_the_users_cache_and_sets_the_shared_one(monkeypatch):
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", "/users/own")
    monkeypatch.setenv("FNN_CACHE_DIR", "/users/fnn")
    monkeypatch.setenv("JAX_PLATFORMS", "cuda")
    none = gs.child_env(None)
    assert set(gs.CACHE_ENV) & set(none) == {"FNN_SKLEARN_CACHE"} and none["JAX_PLATFORMS"] == "cpu"
    assert none["FNN_SKLEARN_CACHE"] == "0"  # the estimators' own cache off: "none" compiles in every process
    shared = gs.child_env("/tmp/c")
    assert "FNN_SKLEARN_CACHE" not in shared
    assert shared["JAX_COMPILATION_CACHE_DIR"] == "/tmp/c"
    assert shared["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] == "0"
    assert shared["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] == "-1"
    assert "JAX_LOG_COMPILES" not in shared and gs.child_env("/tmp/c", log=True)["JAX_LOG_COMPILES"] == "1"
    assert os.environ["JAX_COMPILATION_CACHE_DIR"] == "/users/own"  # the caller's own environment untouched


def fake_runner(calls):
    """Stands in for run_search: times from the configuration, a cache directory that fills on a cold run."""
    base = {"sklearn": 1.0, "none": 4.0, "cold": 3.5, "warm": 1.5, "startup": 2.0}

    def run(lib, n_jobs, settings, cache, log=False):
        calls.append((lib, n_jobs, cache, log))
        if lib == "cold":
            os.makedirs(cache, exist_ok=True)
            for i in range(3):
                open(os.path.join(cache, f"k{i}-cache"), "w").close()
                open(os.path.join(cache, f"k{i}-atime"), "w").close()
        out = {"search_s": base[lib] * n_jobs + len(calls) / 100, "load_before": 0.5, "load_after": 0.7, "process_s": 9.0}
        if lib in gs.AGAIN:
            out["again_s"] = 0.25
        if lib not in ("sklearn", "startup"):
            out |= {"parent_hits": 1 if lib == "warm" else 0, "parent_misses": 0}
        if log:
            out["tree_hits"] = 5
        return out

    return run


def test_main_records_every_sample_medians_and_the_workers_hits(tmp_path):
    calls, said = [], []
    out = tmp_path / "r" / "gridsearch.json"
    rec = gs.main(["--smoke", "--repeats", "2", "--out", str(out)], echo=said.append, runner=fake_runner(calls))
    assert json.loads(out.read_text()) == json.loads(json.dumps(rec))
    assert rec["mode"] == "smoke" and rec["settings"]["repeats"] == 2 and rec["settings"]["n_jobs"] == [1, 2]
    assert rec["order"] == [[gs.key(*c) for c in gs.order(r)] for r in range(2)]
    assert all(len(v) == 2 for v in rec["samples"].values())
    # the configurations without a cache get none; each cold/warm pair shares a directory, fresh per repeat
    assert all(c is None for lib, _, c, _ in calls if lib in ("sklearn", "none", "startup"))
    dirs = {(lib, j, c) for lib, j, c, log in calls if lib in ("cold", "warm") and not log}
    assert len({c for *_, c in dirs}) == 4 and all((("warm", j, c) in dirs) for lib, j, c in dirs if lib == "cold")
    assert not os.path.exists(os.path.dirname(calls[-1][2]))  # the cache directories are removed at the end
    w = rec["samples"]["warm/1"][0]
    assert (w["cache_files_before"], w["cache_files_after"]) == (3, 3)  # -atime files not counted
    c = rec["samples"]["cold/2"][1]
    assert (c["cache_files_before"], c["cache_files_after"]) == (0, 3)
    assert calls[-1][:2] == ("warm", 2) and calls[-1][3]  # the untimed check: the warm n_jobs=2 search, logged
    assert rec["verify"] | {"search_s": None} == {
        "n_jobs": 2, "cache_files": 3, "cache_files_after": 3, "tree_hits": 5, "parent_hits": 1, "parent_misses": 0,
        "worker_hits": 4, "search_s": None,
    }  # fmt: skip
    s = rec["samples"]["none/2"]
    assert rec["medians"]["none/2"]["search_s"] == pytest.approx((s[0]["search_s"] + s[1]["search_s"]) / 2)
    assert rec["medians"]["none/1"]["again_s"] == 0.25 and "again_s" not in rec["medians"]["warm/1"]
    f = rec["readme"]
    assert f["load"] == [0.5, 0.7] and f["cache_written_cold"] == [3, 3] and f["cache_written_warm"] == 0
    assert f["worker_hits"] == 4 and f["search_s"]["sklearn/1"] == rec["medians"]["sklearn/1"]["search_s"]
    assert rec["machine"]["platform"] == "cpu" and "load_average_start" in rec["machine"]
    assert {"jax", "scikit-learn"} <= set(rec["versions"]) and "commit" in rec["git"]
    assert any(line.startswith("median none/2") for line in said)
    block = readme.gridsearch_block(rec)  # and the README block renders from it
    assert "| fnn.sklearn, no persistent compilation cache (the default before issue 28) |" in block


def test_bad_repeats_is_refused():
    with pytest.raises(SystemExit):
        gs.main(["--repeats", "0"], runner=fake_runner([]))


@pytest.mark.slow  # fresh processes and joblib workers, each importing JAX and scikit-learn: about a minute
def test_smoke_end_to_end(tmp_path):
    out = tmp_path / "gridsearch.json"
    rec = gs.main(["--smoke", "--repeats", "1", "--out", str(out)], echo=lambda _: None)
    assert json.loads(out.read_text())["mode"] == "smoke"
    assert rec["samples"]["startup/2"][0]["workers"] == 2  # two workers started, each did its imports
    for k, (s,) in rec["samples"].items():
        assert s["search_s"] > 0 and (k == "startup/2" or 0 <= s["best_score"] <= 1), k
        # JAX only where fnn trains in the parent (startup's parent only starts the workers)
        assert s["jax_imported"] == (k.split("/")[0] not in ("sklearn", "startup")), k
        assert "convergence_warnings_shown" not in s, k  # silenced, in the workers too
    for j in gs.N_JOBS:
        cold, warm = rec["samples"][f"cold/{j}"][0], rec["samples"][f"warm/{j}"][0]
        assert cold["cache_files_after"] > 0 == cold["cache_files_before"]  # the shared cache is written ...
        assert warm["cache_files_after"] == warm["cache_files_before"] == cold["cache_files_after"]  # ... then only read
        assert warm["parent_hits"] > 0 and rec["samples"][f"none/{j}"][0]["parent_hits"] == 0
    assert rec["verify"]["worker_hits"] > 0  # the workers read the shared cache
