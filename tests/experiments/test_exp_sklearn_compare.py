"""The sklearn_compare experiment: its helpers (fast) and a smoke run end to end (slow)."""

import doctest
import json

import numpy as np
import pytest

from experiments import sklearn_compare as sc


def test_agreement_rule():
    assert doctest.testmod(sc, verbose=False).failed == 0  # agreement's examples
    a = sc.agreement([0.9, 0.9, 0.9], [0.9, 0.9, 0.9])
    assert a["diff"] == 0 and a["tol"] == sc.STD_FLOOR and a["ok"] and a["paired_max_abs_diff"] == 0
    # the larger of the two stds is the tolerance
    a = sc.agreement([0.80, 0.90], [0.86, 0.86])
    assert a["tol"] == pytest.approx(0.05) and a["diff"] == pytest.approx(-0.01) and a["ok"]
    assert a["paired_max_abs_diff"] == pytest.approx(0.06)
    assert not sc.agreement([0.70, 0.72], [0.80, 0.82])["ok"]


def test_timing_takes_the_faster_sklearn_setting():
    def run(wall, n_iter=10, score=0.9):
        return {"wall_s": wall, "cpu_s": 2 * wall, "n_iter": n_iter, "wall_s_per_epoch": wall / n_iter, "score": score}

    sk = {"1": [run(1.0), run(1.2), run(0.8)], "default": [run(2.0), run(2.0), run(2.0)]}
    t = sc.timing(sk, run(5.0), [run(0.1), run(0.3, n_iter=12), run(0.2)])
    assert t["sklearn_threads"] == "1" and t["sklearn_wall_s"] == 1.0
    assert t["warm_over_sklearn"] == pytest.approx(0.2) and t["cold_over_sklearn"] == pytest.approx(5.0)
    assert t["sklearn_median_wall_s"] == {"1": 1.0, "default": 2.0}
    assert t["same_epochs"] == 2 and t["fnn_mean_epochs"] == pytest.approx(32 / 3)


def test_worker_json_round_trip(tmp_path):
    """The worker's jobs in this process: JSON in, JSON out, with what main() reads."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 4))
    y = (x[:, 0] + x[:, 1] > 0).astype(int)
    npz = tmp_path / "d.npz"
    np.savez(npz, x_tr=x[:40], y_tr=y[:40], x_te=x[40:], y_te=y[40:])
    params = {**sc.PARAMS, "hidden_layer_sizes": (8,), "max_iter": 3}
    jobs = [
        {
            "kind": "fits",
            "name": "toy",
            "npz": str(npz),
            "estimator": "classifier",
            "params": params,
            "seeds": [0, 1],
            "threads": [1, None],
        },
        {
            "kind": "grid",
            "name": "grid",
            "npz": str(npz),
            "estimator": "classifier",
            "params": {**params, "random_state": 0},
            "grid": {"hidden_layer_sizes": [(4,), (8,)]},
            "cv": 2,
            "threads": [1],
        },
    ]
    (tmp_path / "jobs.json").write_text(json.dumps(jobs))
    sc.worker_main(tmp_path / "jobs.json", tmp_path / "out.json")
    fits, grid = json.loads((tmp_path / "out.json").read_text())
    assert fits["name"] == "toy" and set(fits["runs"]) == {"1", "default"} and fits["blas_threads"]["1"] in (1, None)
    for runs in fits["runs"].values():
        assert [r["seed"] for r in runs] == [0, 1]
        assert all(r["n_iter"] == 3 and 0 <= r["score"] <= 1 and r["wall_s"] > 0 for r in runs)
    # same seed, same data: the same fit whatever the threads
    assert [r["score"] for r in fits["runs"]["1"]] == [r["score"] for r in fits["runs"]["default"]]
    s = grid["searches"]["1"]
    assert s["fits"] == 2 * 2 + 1 and len(s["mean_test_score"]) == 2
    assert s["best_params"]["hidden_layer_sizes"] in ([4], [8])
    assert sc._plain_params({"hidden_layer_sizes": (4,)}) == {"hidden_layer_sizes": [4]}


@pytest.mark.slow
def test_sklearn_compare_smoke(tmp_path):
    r = sc.main(["--smoke", "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["experiment"] == "sklearn_compare" and saved["mode"] == "smoke"
    assert {"settings", "datasets", "grid_search", "headline", "figures"} <= set(saved)
    assert set(r["datasets"]) == set(sc.DATASETS)
    seeds = r["settings"]["seeds"]
    for name, p in r["datasets"].items():
        sk = p["sklearn_runs"][p["timing"]["sklearn_threads"]]
        assert [q["seed"] for q in sk] == [q["seed"] for q in p["fnn_warm"]] == seeds
        # the same training up to float32 rounding: the same epochs, and scores equal seed by seed (to a test example or two)
        a = p["agreement"]
        assert a["paired_max_abs_diff"] <= (0.02 if name != "diabetes" else 0.01), (name, a)
        assert all(q["n_iter"] == p["max_iter"] for q in sk + p["fnn_warm"])  # smoke stops at max_iter
        assert p["cold_same_as_warm"]
        t = p["timing"]
        assert t["warm_over_sklearn"] == pytest.approx(t["fnn_warm_wall_s"] / t["sklearn_wall_s"])
        assert t["sklearn_wall_s"] == min(t["sklearn_median_wall_s"].values())
    g = r["grid_search"]
    assert g["fits"] == g["settings"] * g["folds"] + 1
    assert g["cv_score_max_abs_diff"] <= 0.03
    assert g["fnn_first"]["best_score"] == g["fnn_again"]["best_score"]  # the same search twice
    # the verdicts follow from the numbers; three rows for the README
    heads = saved["headline"]
    assert sum(h["readme"] for h in heads) == 3
    assert heads[1]["ok"] == all(p["timing"]["warm_over_sklearn"] <= sc.TARGET for p in r["datasets"].values())
    assert heads[0]["ok"] == all(p["agreement"]["ok"] for p in r["datasets"].values())
    assert saved["settings"]["sklearn_process_imported_jax"] is False  # scikit-learn ran alone
    assert (tmp_path / "sklearn_compare.png").stat().st_size > 1000
