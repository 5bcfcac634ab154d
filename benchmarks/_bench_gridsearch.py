"""``GridSearchCV(n_jobs=2)`` with fnn.sklearn: what the workers' compilation costs, and what JAX's persistent
compilation cache shared with them buys (issue 25, item 6).

Run from the repository root (not part of the tests; ``--smoke`` is, on tiny settings)::

    python -m benchmarks._bench_gridsearch [--repeats 3] [--out benchmarks/records/gridsearch.json] [--smoke]

joblib's default backend (loky) runs ``n_jobs=2`` in worker processes; each imports fnn and compiles the
estimator's training program itself, so on a small machine a 2-worker search can take longer than 1.
Every figure here is the FIRST search of a FRESH Python process (``JAX_PLATFORMS=cpu``), as a user's
script meets it: the timer runs around ``GridSearchCV(...).fit(X, y)`` (worker start-up included), after
the imports and the data. The search is ``GridSearchCV(MLPClassifier(hidden_layer_sizes=(64,),
max_iter=20, random_state=0), {"alpha": [1e-4, 1e-3, 1e-2], "learning_rate_init": [1e-3, 1e-2]}, cv=3,
n_jobs=J).fit(X, y)`` on scikit-learn's digits (X / 16), ConvergenceWarning silenced. Configurations, each
for J = 1 and 2:

- ``sklearn``: scikit-learn's own ``sklearn.neural_network.MLPClassifier`` (its process never imports JAX);
- ``none``: fnn.sklearn with no persistent compilation cache (``FNN_SKLEARN_CACHE=0``: since issue 28 the
  estimators turn fnn's on at their first fit; importing fnn never does);
- ``cold``: fnn.sklearn with JAX's persistent compilation cache in a fresh, empty directory, shared with
  the workers through the environment (``JAX_COMPILATION_CACHE_DIR``,
  ``JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0``, ``JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES=-1``: every
  program is written, however small or quick to compile; loky's workers inherit the environment);
- ``warm``: the same search in another fresh process with the directory ``cold`` filled: what every
  later script gets from a cache kept between runs;
- ``startup`` (n_jobs=2 only): no search, the workers' start-up alone: ``joblib.Parallel(n_jobs=2)`` of two
  tasks that each import what a search's worker needs (JAX, fnn.sklearn, scikit-learn's model selection).

``none`` and ``sklearn`` also time a second search in the same process (``again_s``: loky keeps its
workers, and each worker its compiled programs). A repeat runs every configuration once, in an order
that reverses from one repeat to the next (``cold`` always right before its ``warm``), so a slower stretch
of a shared machine hits them all; the record keeps every sample, the load average around each, and the
medians. The cache directory's files are counted after ``cold`` and after ``warm`` (``warm`` must write
none), and one more, untimed process reruns the warm ``n_jobs=2`` search with JAX's compilation log on
(``JAX_LOG_COMPILES=1``, which logs each persistent-cache hit, and each training program fnn kept whole
and read back (``fnn.train._keep``); the workers write to the same stderr) to count the hits of the
whole process tree against those of the parent alone (``jax.monitoring``): the difference is what the
workers read from the cache.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import Any

from benchmarks._fresh_record import parse_args, timed_record, write

ROOT = pathlib.Path(__file__).resolve().parents[1]
RECORD = "benchmarks/records/gridsearch.json"
PROG = "python -m benchmarks._bench_gridsearch"
SCHEMA = 1

FULL = {
    "hidden": [64],
    "max_iter": 20,
    "grid": {"alpha": [1e-4, 1e-3, 1e-2], "learning_rate_init": [1e-3, 1e-2]},
    "cv": 3,
    "rows": None,  # all 1,797 digits
}
SMOKE = {"hidden": [8], "max_iter": 2, "grid": {"alpha": [1e-4, 1e-3]}, "cv": 2, "rows": 300}
N_JOBS = (1, 2)
LIBS = ("sklearn", "none", "cold", "warm")  # the configurations, per n_jobs
STARTUP = ("startup", max(N_JOBS))  # and one more: the workers' start-up alone
AGAIN = ("sklearn", "none")  # these also time a second search in the same process

# Everything that could turn a cache on (or log) in a child, removed before each configuration sets its own.
CACHE_ENV = (
    "JAX_COMPILATION_CACHE_DIR",
    "JAX_ENABLE_COMPILATION_CACHE",
    "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS",
    "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES",
    "JAX_DEBUG_LOG_MODULES",
    "JAX_LOG_COMPILES",
    "FNN_CACHE_DIR",
    "FNN_SKLEARN_CACHE",
)
HIT = "Persistent compilation cache hit"
KEPT_HIT = "Kept program loaded"  # fnn.train._keep.HIT_LOG: a kept program read from disk, in the same log

# One search (and, if asked, a second) in a fresh process; prints one line "RESULT {json}".
SEARCH = r"""
import collections, json, sys, time, warnings
t0 = time.perf_counter()
S = json.loads(sys.argv[1])
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
warnings.simplefilter("ignore", ConvergenceWarning)  # scikit-learn passes the filter on to its joblib workers
events = collections.Counter()
if S["lib"] == "sklearn":
    from sklearn.neural_network import MLPClassifier
elif S["lib"] == "startup":  # the workers' start-up alone: each imports what a search's worker needs, nothing runs
    import os
    from joblib import Parallel, delayed
    def ready():
        import jax, fnn.sklearn, sklearn.model_selection
        return os.getpid()
    t = time.perf_counter()
    pids = Parallel(n_jobs=S["n_jobs"])(delayed(ready)() for _ in range(S["n_jobs"]))
    print("RESULT " + json.dumps({"search_s": time.perf_counter() - t, "workers": len(set(pids)), "best_score": None,
                                  "jax_imported": "jax" in sys.modules, "import_s": time.perf_counter() - t0}))
    sys.exit()
else:
    import jax
    from fnn.sklearn import MLPClassifier
    jax.monitoring.register_event_listener(lambda name, **kw: events.update([name]))
X, y = load_digits(return_X_y=True)
X = X / 16.0
if S["rows"]:
    X, y = X[: S["rows"]], y[: S["rows"]]
imported = time.perf_counter() - t0
def search():
    est = MLPClassifier(hidden_layer_sizes=tuple(S["hidden"]), max_iter=S["max_iter"], random_state=0)
    gs = GridSearchCV(est, S["grid"], cv=S["cv"], n_jobs=S["n_jobs"])
    t = time.perf_counter()
    gs.fit(X, y)
    return time.perf_counter() - t, float(gs.best_score_)
out = {"import_s": imported}
out["search_s"], out["best_score"] = search()
if S["again"]:
    out["again_s"] = search()[0]
out["jax_imported"] = "jax" in sys.modules
if S["lib"] != "sklearn":
    out["cache_dir"] = jax.config.jax_compilation_cache_dir
    out["fnn_file"] = sys.modules["fnn"].__file__
    # JAX's cache hits and fnn's kept programs read from disk (fnn.train._keep.HIT_EVENT)
    out["parent_hits"] = events["/jax/compilation_cache/cache_hits"] + events["/fnn/keep/hits"]
    out["parent_misses"] = events["/jax/compilation_cache/cache_misses"]
print("RESULT " + json.dumps(out))
"""


def child_env(cache: str | None, log: bool = False) -> dict[str, str]:
    """The environment of a configuration's process (and, through loky, of its workers)."""
    env = {k: v for k, v in os.environ.items() if k not in CACHE_ENV}
    env["JAX_PLATFORMS"] = "cpu"
    if cache is None:  # the estimators' own cache (on by default since issue 28) off: "none" compiles every process
        env["FNN_SKLEARN_CACHE"] = "0"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    if cache is not None:
        env["JAX_COMPILATION_CACHE_DIR"] = cache
        env["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"  # default 1 s: most of these compile faster
        env["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "-1"  # no size floor, and no filesystem override
    if log:
        env["JAX_LOG_COMPILES"] = "1"  # every compilation, and every persistent-cache hit, logged as a warning
    return env


def cache_files(path: str | None) -> int:
    """Entries in a persistent compilation cache directory (JAX's ``-atime`` side files not counted)."""
    if path is None or not os.path.isdir(path):
        return 0
    return sum(1 for p in pathlib.Path(path).rglob("*") if p.is_file() and not p.name.endswith("-atime"))


def run_search(lib: str, n_jobs: int, settings: dict, cache: str | None, log: bool = False, timeout: float = 900) -> dict:
    """One fresh process running the search; its result, the load average around it and its own wall time."""
    spec = {
        **settings,
        "lib": lib if lib in ("sklearn", "startup") else "fnn",
        "n_jobs": n_jobs,
        "again": lib in AGAIN and not log,
    }
    load_before = os.getloadavg()[0]
    t = time.perf_counter()
    p = subprocess.run(
        [sys.executable, "-c", SEARCH, json.dumps(spec)],
        cwd=ROOT,
        env=child_env(cache, log),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    wall = time.perf_counter() - t
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("RESULT ")]
    if p.returncode != 0 or not lines:
        raise RuntimeError(f"{lib} n_jobs={n_jobs}: the search process failed ({p.returncode}):\n{p.stderr[-4000:]}")
    out = json.loads(lines[-1][len("RESULT ") :])
    out |= {"process_s": wall, "load_before": load_before, "load_after": os.getloadavg()[0]}
    if lib == "startup":
        return out
    if lib == "sklearn" and out["jax_imported"]:
        raise RuntimeError("the scikit-learn process imported JAX")
    if lib != "sklearn" and not pathlib.Path(out["fnn_file"]).resolve().is_relative_to(ROOT):
        raise RuntimeError(f"fnn came from {out['fnn_file']}, not from this tree ({ROOT})")
    if lib != "sklearn" and out["cache_dir"] != cache:
        raise RuntimeError(f"{lib}: JAX's cache directory is {out['cache_dir']!r}, expected {cache!r}")
    if log:
        out["tree_hits"] = p.stderr.count(HIT) + p.stderr.count(KEPT_HIT)
    if "ConvergenceWarning" in p.stderr:
        out["convergence_warnings_shown"] = p.stderr.count("ConvergenceWarning")
    return out


def order(repeat: int) -> list[tuple[str, int]]:
    """The configurations of one repeat, reversed on odd repeats; ``cold`` always just before its ``warm``."""
    units = [[("sklearn", j)] for j in N_JOBS] + [[STARTUP]] + [[("none", j)] for j in N_JOBS]
    units += [[("cold", j), ("warm", j)] for j in N_JOBS]
    if repeat % 2:
        units.reverse()
    return [c for u in units for c in u]


def key(lib: str, n_jobs: int) -> str:
    return f"{lib}/{n_jobs}"


def median(xs: Sequence[float]) -> float | None:
    return float(statistics.median(xs)) if xs else None


def summarize(samples: dict[str, list[dict]]) -> dict[str, dict[str, float | None]]:
    """Per configuration, the median of each timed figure over the repeats."""
    out = {}
    for k, rows in samples.items():
        out[k] = {f: median([r[f] for r in rows if r.get(f) is not None]) for f in ("search_s", "again_s", "process_s")}
        out[k] = {f: v for f, v in out[k].items() if v is not None}
    return out


def measure(
    settings: dict, repeats: int, echo: Callable[[str], Any] = print, runner: Callable[..., dict] | None = None
) -> dict[str, Any]:
    """Every sample of every configuration, the order they ran in, and the untimed check of the workers' hits.

    ``runner`` (default :func:`run_search`) runs one configuration; the tests pass a fake one."""
    runner = runner or run_search
    samples: dict[str, list[dict]] = {key(lib, j): [] for j in N_JOBS for lib in LIBS} | {key(*STARTUP): []}
    ran, verify = [], {}
    root = tempfile.mkdtemp(prefix="fnn-gridsearch-cache-")
    try:
        for r in range(repeats):
            ran.append([key(*c) for c in order(r)])
            caches = {j: os.path.join(root, f"r{r}-j{j}") for j in N_JOBS}
            for lib, j in order(r):
                cache = caches[j] if lib in ("cold", "warm") else None
                before = cache_files(cache)
                s = runner(lib, j, settings, cache)
                s |= {"repeat": r, "cache_files_before": before, "cache_files_after": cache_files(cache)}
                samples[key(lib, j)].append(s)
                again = f", again {s['again_s']:.2f} s" if "again_s" in s else ""
                load = f"(load {s['load_before']:.2f})"
                echo(f"repeat {r + 1}/{repeats} {key(lib, j):10s} search {s['search_s']:6.2f} s{again}  {load}")
        # untimed: the warm n_jobs=2 search again, with JAX's compiler log, to count what the workers read
        last = caches[max(N_JOBS)]
        files = cache_files(last)
        v = runner("warm", max(N_JOBS), settings, last, log=True)
        verify = {
            "n_jobs": max(N_JOBS),
            "cache_files": files,
            "cache_files_after": cache_files(last),
            "tree_hits": v["tree_hits"],
            "parent_hits": v["parent_hits"],
            "parent_misses": v["parent_misses"],
            "worker_hits": v["tree_hits"] - v["parent_hits"],
            "search_s": v["search_s"],
        }
        echo(
            f"check: warm n_jobs={max(N_JOBS)} search: {verify['tree_hits']} cache hits in the process tree, "
            f"{verify['parent_hits']} of them in the parent; cache files {files} -> {verify['cache_files_after']}"
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return {"order": ran, "samples": samples, "verify": verify}


def readme_figures(rec: dict) -> dict[str, Any]:
    """The figures the README shows, from the medians (every one traceable to ``samples``)."""
    m = rec["medians"]
    get = lambda k, f="search_s": m.get(k, {}).get(f)
    loads = [x for rows in rec["samples"].values() for r in rows for x in (r["load_before"], r["load_after"])]
    cold_written = [r["cache_files_after"] - r["cache_files_before"] for j in N_JOBS for r in rec["samples"][key("cold", j)]]
    warm_written = [r["cache_files_after"] - r["cache_files_before"] for j in N_JOBS for r in rec["samples"][key("warm", j)]]
    return {
        "n_jobs": list(N_JOBS),
        "search_s": {k: get(k) for k in m},
        "again_s": {k: get(k, "again_s") for k in m if get(k, "again_s") is not None},
        "load": [min(loads), max(loads)] if loads else None,
        "cache_written_cold": [min(cold_written), max(cold_written)] if cold_written else None,
        "cache_written_warm": max(warm_written) if warm_written else None,
        "worker_hits": rec.get("verify", {}).get("worker_hits"),
        "tree_hits": rec.get("verify", {}).get("tree_hits"),
    }


def main(
    argv: Sequence[str] | None = None, echo: Callable[[str], Any] = print, runner: Callable[..., dict] | None = None
) -> dict[str, Any]:
    args = parse_args(PROG, __doc__, RECORD, 3, argv)
    settings = SMOKE if args.smoke else FULL

    info = {
        **settings,
        "n_jobs": list(N_JOBS),
        "repeats": args.repeats,
        "dataset": "sklearn.datasets.load_digits, X / 16" + (f", first {settings['rows']} rows" if settings["rows"] else ""),
        "estimator": "MLPClassifier(hidden_layer_sizes, max_iter, random_state=0), every other parameter its default",
        "cache_env": {k: v for k, v in child_env("<dir>").items() if k.startswith("JAX_") and k != "JAX_PLATFORMS"},
        "timer": "time.perf_counter around GridSearchCV.fit in a fresh process, after imports and data",
    }
    argv = list(argv if argv is not None else sys.argv[1:])
    mode = "smoke" if args.smoke else "full"
    rec = timed_record(PROG, SCHEMA, mode, argv, info, lambda: measure(settings, args.repeats, echo, runner))
    rec["medians"] = summarize(rec["samples"])
    rec["readme"] = readme_figures(rec)
    for k, v in rec["medians"].items():
        echo(f"median {k:10s} " + ", ".join(f"{f} {x:.2f}" for f, x in v.items()))
    write(rec, args.out, echo)
    return rec


if __name__ == "__main__":
    main()
