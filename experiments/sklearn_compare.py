"""Does fnn.sklearn score what scikit-learn's MLP estimators score, in at most 1/5 of their time?

``fnn.sklearn.MLPClassifier`` / ``MLPRegressor`` follow scikit-learn's ``sklearn.neural_network``
training step by step (the same Glorot-uniform init drawn from ``random_state``, the same shuffle,
the same Adam updates and stopping rule) but run each epoch as one compiled JAX call, in float32.
So on the same data with the same parameters and ``random_state`` the two should reach the same
test score (up to float32 rounding) after about the same number of epochs; the question is the time.

Setup. Four datasets that ship with scikit-learn or are generated locally (no download), each one
fixed standardised train/test split (scikit-learn's ``train_test_split``, 20% test, stratified for
classes; ``StandardScaler`` fitted on the training rows):
- digits: 8×8 images, 1797 × 64, 10 classes (test accuracy);
- MNIST-1D: ``fnn.datasets.mnist1d()``, its own 4000 / 1000 split, 40 features, 10 classes,
  standardised by the generator (test accuracy);
- breast_cancer: 569 × 30, two classes: one logistic output (test accuracy);
- diabetes: 442 × 10, regression, the target standardised too (test R², which that leaves unchanged).
Both libraries get scikit-learn's default parameters (one hidden layer of 100 ReLU units, adam,
learning rate 1e-3, alpha 1e-4, batch ``auto`` = min(200, n), tol 1e-4, 10 epochs without
improvement to stop) and the same ``max_iter`` (200; quick mode: 40 on MNIST-1D, 20 in the grid
search), for several seeds as ``random_state``; per seed the test score, the epochs run
(``n_iter_``) and the fit time are recorded.
A score "matches" when the two means over seeds differ by at most the larger of the two standard
deviations over seeds (population std; 0.005 when both are 0).

Then ``GridSearchCV`` on digits, ``n_jobs=1``, the same 12 settings for both (hidden_layer_sizes
(32,), (64,), (128,) × alpha 1e-4, 1e-2 × learning_rate_init 1e-3, 1e-2) × 3 folds, plus the refit
of the best on the whole training split; its total ``fit`` time, and each library's best settings,
best cross-validated score and test score.

Timing. Wall-clock seconds of ``fit`` alone (the data prepared beforehand; CPU seconds recorded beside).
- scikit-learn runs alone, in a separate Python process that never imports JAX
  (``python -m experiments.sklearn_compare --worker JOBS.json OUT.json``; data through temporary
  .npz files, results back as JSON): two thread pools in one process slow each other down. Each fit is timed
  with its BLAS limited to one thread and (full mode) with the default threads, seed by seed in
  turn, after one untimed warm-up fit; the setting with the smaller median is the reference (on a
  busy 2-core machine two BLAS threads can be much slower than one; quick mode times one thread only).
- fnn in this process: "cold" is the first fit for a dataset's shapes in the process, which traces
  and compiles the epoch (JAX's persistent compilation cache, which the other experiments turn on,
  is off here: importing fnn never turns it on, so a user's first fit compiles); "warm" is the
  median of later fits, every seed fitted again, which reuse the compiled epoch. fnn.sklearn's
  epoch loop stays in Python as scikit-learn's does (the shuffle, the loss read back, the stopping
  rule), so per-epoch costs that are not arithmetic remain on both sides.
- The two sides take turns: scikit-learn's process for one dataset, then fnn's fits of it (quick mode:
  one process for the four datasets, then fnn's fits of them; then the grid search likewise).
- GridSearchCV is timed once for scikit-learn (its faster thread setting) and twice for fnn: the
  first search in the process (compiling one epoch per network shape and data size) and the same
  search again (all compiled).
The target under test: fnn's warm fit takes at most 1/5 of scikit-learn's time, on every dataset,
and the grid search likewise.

Run: python -m experiments.sklearn_compare [--quick] [--smoke] [--seed 0] [--out results/sklearn_compare]
"""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

# Nothing at module level imports JAX (nor fnn): the scikit-learn worker, this module run with
# --worker, must run alone. main() imports them.

ROOT = pathlib.Path(__file__).resolve().parents[1]
TARGET = 0.2  # fnn's fit time at most 1/5 of scikit-learn's
STD_FLOOR = 0.005  # the score tolerance when both libraries' seeds all score the same
DATASETS = {  # name: (estimator kind, label, score name)
    "digits": ("classifier", "digits", "accuracy"),
    "mnist1d": ("classifier", "MNIST-1D", "accuracy"),
    "breast_cancer": ("classifier", "breast cancer", "accuracy"),
    "diabetes": ("regressor", "diabetes", "R²"),
}
# scikit-learn's defaults, written out (both libraries get exactly these, plus max_iter and random_state)
PARAMS: dict[str, Any] = {
    "hidden_layer_sizes": (100,),
    "activation": "relu",
    "solver": "adam",
    "alpha": 1e-4,
    "batch_size": "auto",
    "learning_rate_init": 1e-3,
    "tol": 1e-4,
    "n_iter_no_change": 10,
}
GRID: dict[str, list] = {
    "hidden_layer_sizes": [(32,), (64,), (128,)],
    "alpha": [1e-4, 1e-2],
    "learning_rate_init": [1e-3, 1e-2],
}
SMOKE_GRID: dict[str, list] = {"hidden_layer_sizes": [(16,), (32,)], "alpha": [1e-4]}


# ---- what both sides run: one timed fit, one timed grid search ------------------------------------------------


def estimator(lib: str, kind: str, params: dict) -> Any:
    """``lib`` (``sklearn`` or ``fnn``)'s MLPClassifier or MLPRegressor (``kind``) with ``params``."""
    if lib == "sklearn":
        from sklearn.neural_network import MLPClassifier, MLPRegressor
    elif lib == "fnn":
        from fnn.sklearn import MLPClassifier, MLPRegressor
    else:
        raise ValueError(f"`lib` must be 'sklearn' or 'fnn', got {lib!r}")
    params = dict(params)
    if "hidden_layer_sizes" in params:  # JSON turns tuples into lists
        params["hidden_layer_sizes"] = tuple(params["hidden_layer_sizes"])
    return (MLPClassifier if kind == "classifier" else MLPRegressor)(**params)


def fit_once(est: Any, data: dict[str, np.ndarray]) -> dict:
    """``est.fit`` on the training split, timed (wall and CPU seconds); its test score and epochs."""
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # max_iter reached: expected in quick and smoke mode
        wall, cpu = time.perf_counter(), time.process_time()
        est.fit(data["x_tr"], data["y_tr"])
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    n_iter = int(est.n_iter_)
    return {
        "seed": est.random_state,
        "wall_s": wall,
        "cpu_s": cpu,
        "n_iter": n_iter,
        "wall_s_per_epoch": wall / n_iter,
        "score": float(est.score(data["x_te"], data["y_te"])),
        "final_loss": float(est.loss_),
    }


def grid_once(est: Any, grid: dict, cv: int, data: dict[str, np.ndarray]) -> dict:
    """``GridSearchCV(est, grid, cv=cv, n_jobs=1).fit`` on the training split, timed; what it chose."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import GridSearchCV

    grid = {k: [tuple(v) if isinstance(v, list) else v for v in vs] for k, vs in grid.items()}
    search = GridSearchCV(est, grid, cv=cv, n_jobs=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        wall, cpu = time.perf_counter(), time.process_time()
        search.fit(data["x_tr"], data["y_tr"])
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    res = search.cv_results_
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "fits": len(res["params"]) * cv + 1,
        "best_params": search.best_params_,
        "best_score": float(search.best_score_),
        "test_score": float(search.score(data["x_te"], data["y_te"])),
        "mean_test_score": [float(s) for s in res["mean_test_score"]],
        "mean_fit_time": [float(s) for s in res["mean_fit_time"]],
        "params": res["params"],
    }


# ---- the scikit-learn worker (a process of its own, without JAX) ----------------------------------------------


def _thread_label(threads: int | None) -> str:
    return "default" if threads is None else str(threads)


def _blas_threads() -> int | None:
    from threadpoolctl import threadpool_info

    return max((p["num_threads"] for p in threadpool_info() if p.get("user_api") == "blas"), default=None)


def run_job(job: dict) -> dict:
    """One scikit-learn job of the worker, in this process.

    ``job["kind"]``:
      ``fits``: ``{"npz", "estimator", "params", "seeds", "threads"}``: one fit per seed and thread
        setting (an int caps the BLAS pools, None leaves the default), seed by seed, after one untimed
        warm-up fit; ``runs`` maps each setting ("1", "default") to its fits, in seed order.
      ``grid``: ``{"npz", "estimator", "params", "grid", "cv", "threads"}``: one timed GridSearchCV per
        thread setting; ``searches`` maps each setting to :func:`grid_once`'s record.
    """
    import sklearn
    from threadpoolctl import threadpool_limits

    with np.load(job["npz"]) as f:
        data = {k: f[k] for k in f.files}
    kind, params, threads = job["estimator"], job["params"], job["threads"]
    blas: dict[str, int | None] = {}
    out: dict[str, Any] = {"name": job.get("name"), "kind": job["kind"], "version": sklearn.__version__, "blas_threads": blas}
    if job["kind"] == "fits":
        fit_once(estimator("sklearn", kind, {**params, "max_iter": 2, "random_state": 0}), data)  # warm-up, untimed
        runs: dict[str, list] = {_thread_label(t): [] for t in threads}
        for seed in job["seeds"]:
            for t in threads:
                with threadpool_limits(t):
                    blas[_thread_label(t)] = _blas_threads()
                    runs[_thread_label(t)].append(fit_once(estimator("sklearn", kind, {**params, "random_state": seed}), data))
        out["runs"] = runs
    elif job["kind"] == "grid":
        searches = {}
        for t in threads:
            with threadpool_limits(t):
                blas[_thread_label(t)] = _blas_threads()
                searches[_thread_label(t)] = grid_once(estimator("sklearn", kind, params), job["grid"], job["cv"], data)
        out["searches"] = searches
    else:
        raise ValueError(f"unknown job kind {job['kind']!r}")
    return out


def worker_main(jobs_path: str | pathlib.Path, out_path: str | pathlib.Path) -> list[dict]:
    """The worker: run every job of the JSON file ``jobs_path`` in order, write the list of results to ``out_path``."""
    jobs = json.loads(pathlib.Path(jobs_path).read_text())
    results = [run_job(job) for job in jobs]
    for r in results:
        r["jax_imported"] = "jax" in sys.modules  # False in the worker process: scikit-learn ran alone
    pathlib.Path(out_path).write_text(json.dumps(results))
    return results


def call_worker(jobs: list[dict], tmp: str | pathlib.Path, timeout: float = 3600) -> list[dict]:
    """Run ``jobs`` in a fresh Python process (``python -m experiments.sklearn_compare --worker``); their results."""
    tmp = pathlib.Path(tmp)
    jobs_path, out_path = tmp / "jobs.json", tmp / "results.json"
    jobs_path.write_text(json.dumps(jobs))
    out_path.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "experiments.sklearn_compare", "--worker", str(jobs_path), str(out_path)]
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False)
    if p.returncode != 0:
        raise RuntimeError(f"scikit-learn worker failed (exit {p.returncode}):\n{p.stderr[-3000:]}")
    return json.loads(out_path.read_text())


# ---- summaries (pure) -----------------------------------------------------------------------------------------------


def agreement(fnn_scores: Sequence[float], sk_scores: Sequence[float], floor: float = STD_FLOOR) -> dict:
    """Whether two sets of per-seed scores match: |mean difference| ≤ the larger std over seeds.

    The stds are population stds (ddof 0); when both are 0 the tolerance is ``floor``. Also the
    paired (same seed) differences, which are only float32 rounding when the training is the same.

    >>> a = agreement([0.90, 0.92], [0.91, 0.91])
    >>> round(a["diff"], 6), round(a["tol"], 6), a["ok"]
    (0.0, 0.01, True)
    >>> agreement([0.5, 0.5], [0.51, 0.51])["ok"], agreement([0.5, 0.5], [0.504, 0.504])["ok"]
    (False, True)
    """
    f, s = np.asarray(fnn_scores, float), np.asarray(sk_scores, float)
    tol = max(float(f.std()), float(s.std()))
    tol = tol if tol > 1e-12 else floor
    diff = float(f.mean() - s.mean())
    paired = f - s if f.shape == s.shape else np.full(1, np.nan)
    return {
        "fnn_mean": float(f.mean()),
        "fnn_std": float(f.std()),
        "sklearn_mean": float(s.mean()),
        "sklearn_std": float(s.std()),
        "diff": diff,
        "tol": tol,
        "ok": bool(abs(diff) <= tol),
        "paired_max_abs_diff": float(np.max(np.abs(paired))),
    }


def reference(runs: dict[str, list[dict]]) -> str:
    """The thread setting whose median fit wall time is the smallest (the conservative reference)."""
    return min(runs, key=lambda t: float(np.median([r["wall_s"] for r in runs[t]])))


def _plain_params(params: dict) -> dict:
    """Parameters as JSON gives them back (tuples as lists), for comparing the two libraries' choices."""
    return json.loads(json.dumps(params))


def _median(runs: Sequence[dict], field: str) -> float:
    return float(np.median([r[field] for r in runs]))


def timing(sk_runs: dict[str, list[dict]], fnn_cold: dict, fnn_warm: Sequence[dict]) -> dict:
    """Medians, and fnn's time as a fraction of scikit-learn's (its faster thread setting)."""
    ref = reference(sk_runs)
    sk = sk_runs[ref]
    sk_wall, warm_wall = _median(sk, "wall_s"), _median(fnn_warm, "wall_s")
    return {
        "sklearn_threads": ref,
        "sklearn_median_wall_s": {t: _median(r, "wall_s") for t, r in sk_runs.items()},
        "sklearn_median_cpu_s": {t: _median(r, "cpu_s") for t, r in sk_runs.items()},
        "sklearn_wall_s": sk_wall,
        "fnn_cold_wall_s": fnn_cold["wall_s"],
        "fnn_warm_wall_s": warm_wall,
        "fnn_warm_cpu_s": _median(fnn_warm, "cpu_s"),
        "warm_over_sklearn": warm_wall / sk_wall,
        "cold_over_sklearn": fnn_cold["wall_s"] / sk_wall,
        "cpu_warm_over_sklearn": _median(fnn_warm, "cpu_s") / _median(sk, "cpu_s"),
        "per_epoch_warm_over_sklearn": _median(fnn_warm, "wall_s_per_epoch") / _median(sk, "wall_s_per_epoch"),
        "sklearn_mean_epochs": float(np.mean([r["n_iter"] for r in sk])),
        "fnn_mean_epochs": float(np.mean([r["n_iter"] for r in fnn_warm])),
        "same_epochs": sum(a["n_iter"] == b["n_iter"] for a, b in zip(sk, fnn_warm)),
    }


# ---- data -----------------------------------------------------------------------------------------------------------


def load(name: str, seed: int, smoke: bool) -> dict[str, np.ndarray]:
    """``name``'s fixed split, standardised on the training rows, as float64 arrays (labels int)."""
    from sklearn import datasets as skd
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    if name == "mnist1d":
        from fnn import datasets

        x_tr, y_tr, x_te, y_te = (np.asarray(a) for a in datasets.mnist1d(num_samples=1000 if smoke else 5000))
        return {"x_tr": x_tr.astype(np.float64), "y_tr": y_tr, "x_te": x_te.astype(np.float64), "y_te": y_te}
    loader = {"digits": skd.load_digits, "breast_cancer": skd.load_breast_cancer, "diabetes": skd.load_diabetes}[name]
    x, y = loader(return_X_y=True)
    classes = DATASETS[name][0] == "classifier"
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.2, random_state=seed, stratify=y if classes else None)
    scaler = StandardScaler().fit(x_tr)
    x_tr, x_te = scaler.transform(x_tr), scaler.transform(x_te)
    if not classes:  # R² is unchanged by standardising the target with the training mean and std
        mu, sd = y_tr.mean(), y_tr.std()
        y_tr, y_te = (y_tr - mu) / sd, (y_te - mu) / sd
    return {"x_tr": x_tr, "y_tr": y_tr, "x_te": x_te, "y_te": y_te}


# ---- the experiment ---------------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> dict:
    from experiments import _common

    args = _common.parse_args(__doc__, "sklearn_compare", argv)
    # The first fit's time is meant to include compilation, as in a fresh process that imports fnn (which never
    # turns JAX's persistent compilation cache on): the cache the command-line runs use is off here.
    import jax

    cache_was = jax.config.jax_enable_compilation_cache
    jax.config.update("jax_enable_compilation_cache", False)
    args.cache = None
    try:
        return _run(args)
    finally:  # the runner's later experiments (and a test session) keep their setting
        jax.config.update("jax_enable_compilation_cache", cache_was)


def _run(args) -> dict:
    from experiments import _common

    n_seeds = _common.size(args, 5, 3, 2)
    seeds = [args.seed + i for i in range(n_seeds)]
    threads = _common.size(args, [1, None], [1], [1])
    grid_threads = _common.size(args, [1, None], [1], [1])
    max_iter = {
        "digits": _common.size(args, 200, 200, 10),
        "mnist1d": _common.size(args, 200, 40, 10),
        "breast_cancer": _common.size(args, 200, 200, 10),
        "diabetes": _common.size(args, 200, 200, 10),
    }
    grid = SMOKE_GRID if args.smoke else GRID
    cv = _common.size(args, 3, 3, 2)
    grid_max_iter = _common.size(args, 200, 20, 5)

    data = {name: load(name, args.seed, args.smoke) for name in DATASETS}
    sk_out: dict[str, dict] = {}
    fnn_out: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        jobs = {}
        for name, (kind, _, _) in DATASETS.items():
            npz = pathlib.Path(tmp) / f"{name}.npz"
            np.savez(npz, **data[name])
            jobs[name] = {
                "kind": "fits",
                "name": name,
                "npz": str(npz),
                "estimator": kind,
                "params": {**PARAMS, "max_iter": max_iter[name]},
                "seeds": seeds,
                "threads": threads,
            }
        grid_params = {**PARAMS, "max_iter": grid_max_iter, "random_state": args.seed}
        jobs["grid"] = {
            "kind": "grid",
            "name": "grid",
            "npz": jobs["digits"]["npz"],
            "estimator": "classifier",
            "params": grid_params,
            "grid": grid,
            "cv": cv,
            "threads": grid_threads,
        }
        # scikit-learn's process for a dataset, then fnn's fits of it; quick mode: one process for the four datasets
        # and one for the grid search, smoke mode one for all (a process start-up costs ~1.5 s)
        steps = list(jobs)
        batches = _common.size(args, [[s] for s in steps], [list(DATASETS), ["grid"]], [steps])
        for batch in batches:
            for r in call_worker([jobs[s] for s in batch], tmp):
                sk_out[r["name"]] = r
            for s in batch:
                if s == "grid":
                    est = estimator("fnn", "classifier", grid_params)
                    fnn_out[s] = {
                        "first": grid_once(est, grid, cv, data["digits"]),
                        "again": grid_once(est, grid, cv, data["digits"]),
                    }
                    continue
                job, kind = jobs[s], DATASETS[s][0]
                make = lambda seed, job=job, kind=kind: estimator("fnn", kind, {**job["params"], "random_state": seed})
                cold = fit_once(make(seeds[0]), data[s])  # the first fit of these shapes: compiles
                fnn_out[s] = {"cold": cold, "warm": [fit_once(make(seed), data[s]) for seed in seeds]}
    assert not any(r["jax_imported"] for r in sk_out.values()), "the scikit-learn worker imported JAX"

    per: dict[str, dict] = {}
    for name in DATASETS:
        sk_runs = sk_out[name]["runs"]
        t = timing(sk_runs, fnn_out[name]["cold"], fnn_out[name]["warm"])
        sk_ref = sk_runs[t["sklearn_threads"]]
        per[name] = {
            "n_train": len(data[name]["y_tr"]),
            "n_test": len(data[name]["y_te"]),
            "n_features": data[name]["x_tr"].shape[1],
            "score": DATASETS[name][2],
            "max_iter": max_iter[name],
            "agreement": agreement([r["score"] for r in fnn_out[name]["warm"]], [r["score"] for r in sk_ref]),
            "timing": t,
            "sklearn_blas_threads": sk_out[name]["blas_threads"],
            "sklearn_runs": sk_runs,
            "fnn_cold": fnn_out[name]["cold"],
            "fnn_warm": fnn_out[name]["warm"],
        }
        # the cold fit is the first seed's fit with compilation on top: the same training, so the same score
        per[name]["cold_same_as_warm"] = fnn_out[name]["cold"]["score"] == fnn_out[name]["warm"][0]["score"]
    sk_searches = sk_out["grid"]["searches"]
    g_ref = min(sk_searches, key=lambda t: sk_searches[t]["wall_s"])
    sk_g, fnn_g = sk_searches[g_ref], fnn_out["grid"]
    search = {
        "settings": int(np.prod([len(v) for v in grid.values()])),
        "folds": cv,
        "fits": sk_g["fits"],
        "max_iter": grid_max_iter,
        "grid": grid,
        "sklearn_threads": g_ref,
        "sklearn": sk_searches,
        "fnn_first": fnn_g["first"],
        "fnn_again": fnn_g["again"],
        "sklearn_wall_s": sk_g["wall_s"],
        "first_over_sklearn": fnn_g["first"]["wall_s"] / sk_g["wall_s"],
        "again_over_sklearn": fnn_g["again"]["wall_s"] / sk_g["wall_s"],
        "same_best_params": _plain_params(fnn_g["first"]["best_params"]) == _plain_params(sk_g["best_params"]),
        "cv_score_max_abs_diff": float(np.max(np.abs(np.subtract(fnn_g["first"]["mean_test_score"], sk_g["mean_test_score"])))),
    }
    results = {
        "settings": {
            "params": PARAMS,
            "max_iter": max_iter,
            "seeds": seeds,
            "sklearn_threads_tried": [_thread_label(t) for t in threads],
            "target_fraction": TARGET,
            "score_floor": STD_FLOOR,
            "sklearn_version": sk_out["digits"]["version"],
            "sklearn_process_imported_jax": any(r["jax_imported"] for r in sk_out.values()),
        },
        "datasets": per,
        "grid_search": search,
    }

    # ---- table, figure, headlines ----------------------------------------------------------------
    rows = []
    for name, p in per.items():
        a, t = p["agreement"], p["timing"]
        rows.append(
            (
                DATASETS[name][1],
                f"{p['n_train']}×{p['n_features']}",
                f"{a['sklearn_mean']:.3f} ± {a['sklearn_std']:.3f}",
                f"{a['fnn_mean']:.3f} ± {a['fnn_std']:.3f}",
                f"{t['sklearn_mean_epochs']:.0f} / {t['fnn_mean_epochs']:.0f}",
                f"{t['sklearn_wall_s']:.3f} ({t['sklearn_threads']})",
                f"{t['fnn_warm_wall_s']:.3f}",
                f"{t['fnn_cold_wall_s']:.2f}",
                f"{t['warm_over_sklearn']:.2f}",
            )
        )
    rows.append(
        (
            f"GridSearchCV digits {search['settings']}×{cv}",
            f"{search['fits']} fits",
            f"{sk_g['best_score']:.3f} (cv)",
            f"{fnn_g['first']['best_score']:.3f} (cv)",
            "",
            f"{sk_g['wall_s']:.2f} ({g_ref})",
            f"{fnn_g['again']['wall_s']:.2f}",
            f"{fnn_g['first']['wall_s']:.2f}",
            f"{search['again_over_sklearn']:.2f}",
        )
    )
    headers = [
        "data",
        "train",
        "sklearn score",
        "fnn score",
        "epochs sk/fnn",
        "sklearn s (thr)",
        "fnn warm s",
        "fnn 1st s",
        "warm/sk",
    ]
    print(_common.table(rows, headers))

    figures = []
    try:
        figures.append(figure(args.out / "sklearn_compare.png", per, search, n_seeds))
    except ImportError as e:
        print(f"(no figures: {e})")

    return _common.finish(args, results, headlines(per, search, n_seeds, _common.compile_note(args)), figures)


def headlines(per: dict[str, dict], search: dict, n_seeds: int, note: str = "") -> list[dict]:
    """The report's rows: the three that matter (scores, warm time, grid search), then each dataset's."""
    from experiments._common import headline

    labels = {n: DATASETS[n][1] for n in per}
    agree = {n: p["agreement"] for n, p in per.items()}
    ratio = {n: p["timing"]["warm_over_sklearn"] for n, p in per.items()}
    worst_score = max(per, key=lambda n: abs(agree[n]["diff"]) / agree[n]["tol"])
    worst_time = max(ratio, key=ratio.__getitem__)
    out = [
        headline(
            f"fnn.sklearn vs scikit-learn's MLP (defaults: 100 ReLU, adam 1e-3; same max_iter and random_state): test score, "
            f"mean ± std of {n_seeds} seeds (digits, MNIST-1D, breast cancer: accuracy; diabetes: R²)",
            agree[worst_score]["diff"],
            fmt="; ".join(
                f"{labels[n]} {a['fnn_mean']:.3f} ± {a['fnn_std']:.3f} vs {a['sklearn_mean']:.3f} ± {a['sklearn_std']:.3f}"
                for n, a in agree.items()
            ),
            anchor="|Δ mean| ≤ 1 std of the seeds, each dataset",
            ok=all(a["ok"] for a in agree.values()),
            readme=True,
        ),
        headline(
            "fnn.sklearn warm fit time / scikit-learn's (medians over seeds; scikit-learn alone in its own process, its "
            "faster BLAS thread setting)",
            ratio[worst_time],
            fmt="; ".join(
                f"{labels[n]} {r:.2f} ({p['timing']['fnn_warm_wall_s']:.2f} s vs {p['timing']['sklearn_wall_s']:.2f} s)"
                for (n, r), p in zip(ratio.items(), per.values())
            ),
            anchor=f"≤ {TARGET:.2f} on each (target)",
            ok=all(r <= TARGET for r in ratio.values()),
            readme=True,
        ),
        headline(
            f"GridSearchCV on digits, {search['settings']} settings × {search['folds']} folds + refit, n_jobs=1, "
            f"max_iter {search['max_iter']}: fnn.sklearn's total fit time / scikit-learn's, first search in the process "
            f"(compiles){note}",
            search["first_over_sklearn"],
            fmt=(
                f"{search['first_over_sklearn']:.2f} ({search['fnn_first']['wall_s']:.1f} s "
                f"vs {search['sklearn_wall_s']:.1f} s); "
                f"again, compiled: {search['again_over_sklearn']:.2f} ({search['fnn_again']['wall_s']:.1f} s); "
                f"best cv accuracy {search['fnn_first']['best_score']:.3f} vs "
                f"{search['sklearn'][search['sklearn_threads']]['best_score']:.3f}"
                + ("" if search["same_best_params"] else " (different best settings)")
            ),
            anchor=f"≤ {TARGET:.2f} (target)",
            ok=search["first_over_sklearn"] <= TARGET,
            readme=True,
        ),
        headline(
            "GridSearchCV run again (every epoch compiled): fnn.sklearn's time / scikit-learn's",
            search["again_over_sklearn"],
            fmt="{:.2f}",
            anchor=f"≤ {TARGET:.2f} (target)",
            ok=search["again_over_sklearn"] <= TARGET,
        ),
    ]
    for n, p in per.items():
        a, t = p["agreement"], p["timing"]
        out += [
            headline(
                f"{labels[n]} ({p['n_train']} train × {p['n_features']}, max_iter {p['max_iter']}): fnn.sklearn test "
                f"{p['score']} − scikit-learn's (means of {n_seeds} seeds; largest same-seed |Δ| {a['paired_max_abs_diff']:.3f})",
                a["diff"],
                fmt=f"{round(a['diff'], 4) + 0.0:+.4f}",  # no "-0.0000"
                anchor=f"|Δ| ≤ {a['tol']:.4f} (1 std of the seeds)",
                ok=a["ok"],
            ),
            headline(
                f"{labels[n]}: fnn.sklearn warm fit time / scikit-learn's ({t['sklearn_threads']} BLAS thread setting; "
                f"epochs run {t['fnn_mean_epochs']:.0f} vs {t['sklearn_mean_epochs']:.0f}, the same on "
                f"{t['same_epochs']} of {n_seeds} seeds)",
                t["warm_over_sklearn"],
                fmt="{:.2f}" + f" (per epoch {t['per_epoch_warm_over_sklearn']:.2f}; CPU time {t['cpu_warm_over_sklearn']:.2f})",
                anchor=f"≤ {TARGET:.2f} (target)",
                ok=t["warm_over_sklearn"] <= TARGET,
            ),
            headline(
                f"{labels[n]}: fnn.sklearn first fit (incl. compile){note} / scikit-learn's fit",
                t["cold_over_sklearn"],
                fmt="{:.2f}" + f" ({t['fnn_cold_wall_s']:.2f} s)",
                anchor=f"≤ {TARGET:.2f} (target)",
                ok=t["cold_over_sklearn"] <= TARGET,
            ),
        ]
    return out


def figure(path: pathlib.Path, per: dict[str, dict], search: dict, n_seeds: int) -> pathlib.Path:
    """Time ratios (warm, first fit) per dataset and for the grid search; test-score differences per dataset."""
    from matplotlib.ticker import FixedLocator, NullLocator

    from fnn import plot

    fig, (ax_t, ax_s) = plot.subplots(1, 2, size=4.4)
    labels = [DATASETS[n][1] for n in per] + ["GridSearchCV\n(digits)"]
    warm = [p["timing"]["warm_over_sklearn"] for p in per.values()] + [search["again_over_sklearn"]]
    cold = [p["timing"]["cold_over_sklearn"] for p in per.values()] + [search["first_over_sklearn"]]
    xs, w = np.arange(len(labels)), 0.38
    bars = ax_t.bar(xs - w / 2, warm, w, color="tab:blue", label="warm: compiled epoch reused (search run again)")
    ax_t.bar_label(bars, fmt="%.2f", fontsize=7)
    bars = ax_t.bar(xs + w / 2, cold, w, color="tab:orange", label="first fit / first search (incl. compile)")
    ax_t.bar_label(bars, fmt="%.2f", fontsize=7)
    ax_t.axhline(TARGET, color="k", ls="--", lw=1, label=f"target: {TARGET:g} of scikit-learn's time")
    ax_t.axhline(1.0, color="gray", lw=0.8)
    ax_t.set_yscale("log")
    lo, hi = min([*warm, *cold, TARGET]) / 1.6, max([*warm, *cold, 1.0]) * 6
    ax_t.set_ylim(lo, hi)
    ticks = [t for t in (0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50) if lo <= t <= hi]
    ax_t.yaxis.set_major_locator(FixedLocator(ticks))
    ax_t.yaxis.set_minor_locator(NullLocator())
    ax_t.set_yticks(ticks, [f"{t:g}" for t in ticks])
    ax_t.set_xticks(xs, labels, fontsize=7)
    ax_t.set_ylabel("fnn.sklearn fit time / scikit-learn's")
    ax_t.legend(fontsize=7, loc="upper left")
    ax_t.set_title("fit wall time as a fraction of scikit-learn's (medians)", fontsize=9)

    names = list(per)
    xs = np.arange(len(names))
    tol = [per[n]["agreement"]["tol"] for n in names]
    ax_s.errorbar(
        xs, np.zeros(len(names)), yerr=tol, fmt="none", ecolor="gray", elinewidth=8, alpha=0.35, label="±1 std of the seeds"
    )
    for i, n in enumerate(names):
        a = per[n]["agreement"]
        sk = per[n]["sklearn_runs"][per[n]["timing"]["sklearn_threads"]]
        paired = [f["score"] - k["score"] for f, k in zip(per[n]["fnn_warm"], sk)]
        ax_s.plot(np.full(len(paired), i + 0.12), paired, "x", color="tab:purple", ms=5, label="same seed" if i == 0 else None)
        ax_s.plot(i, a["diff"], "o", color="tab:green" if a["ok"] else "tab:red", ms=7, label="mean" if i == 0 else None)
        ax_s.annotate(
            f"{round(a['diff'], 4) + 0.0:+.4f}", (i, a["tol"]), textcoords="offset points", xytext=(0, 4), ha="center", fontsize=7
        )
    ax_s.axhline(0.0, color="k", lw=0.8)
    ax_s.set_xlim(-0.6, len(names) - 0.4)
    ax_s.set_xticks(xs, [f"{DATASETS[n][1]}\n({DATASETS[n][2]})" for n in names], fontsize=7)
    ax_s.set_ylabel("test score, fnn.sklearn − scikit-learn")
    ax_s.legend(fontsize=7, loc="lower left")
    ax_s.set_title(f"test score difference, same random_state, {n_seeds} seeds", fontsize=9)
    return plot.save(fig, path)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        worker_main(sys.argv[2], sys.argv[3])
    else:
        main()
