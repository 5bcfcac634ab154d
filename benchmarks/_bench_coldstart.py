"""Cold start: the first ``fit`` of ``fnn.sklearn`` in a fresh process against scikit-learn's, with and
without the persistent compilation cache the estimators turn on (issue 28).

Run from the repository root::

    python -m benchmarks._bench_coldstart --out benchmarks/records/coldstart.json   # the committed record
    python -m benchmarks._bench_coldstart --repeats 1 --smoke                       # the machinery, tiny

Each figure is one ``Est(random_state=0, max_iter=M).fit(X, y)`` timed (``time.perf_counter``) in a fresh
Python process, after its imports and data: a user's first fit, as a script or a new notebook kernel
meets it. Six configurations per dataset (digits and breast cancer: ``MLPClassifier``; diabetes:
``MLPRegressor``; scikit-learn's loaders, ``X`` as they give it, float64):

- ``sklearn``: scikit-learn's own ``sklearn.neural_network`` estimator;
- ``none``: fnn.sklearn with no persistent cache (``FNN_SKLEARN_CACHE=0``): every process compiles, as
  every fnn release before issue 28 did;
- ``jax_cold`` and ``jax_warm``: fnn.sklearn with JAX's persistent cache alone (fnn's kept executables
  switched off in the child: ``fnn.train._keep.directory`` returns None), in a fresh directory, then the
  same directory again. JAX keys its cache by the traced and lowered program, so a warm process still
  traces and lowers before it loads: the estimators' cache as it was before ``fnn.train._keep``;
- ``cold`` and ``warm``: fnn.sklearn as it ships (``FNN_CACHE_DIR``), in a fresh directory, then the same
  directory again: the first process on a machine compiles and keeps the training program; every later
  one (a second script, a notebook kernel) loads it without tracing.

The README's quick tour, as a script in a fresh process (its own imports included, from the first line
to the last; the block ``tests/test_readme.py`` runs), in three configurations: ``none``, as written (it
turns no cache on); ``cold`` and ``warm``, with ``fnn.compilation_cache(<dir>)`` added at its top, a fresh
directory then the same one again: the one line the README offers scripts.

A repeat runs the six in turn for each dataset, each cold right before its warm on one directory, in an
order that alternates from one repeat to the next (sklearn none jax_cold jax_warm cold warm, then cold
warm jax_cold jax_warm none sklearn), so a slower stretch of a shared machine hits them all, and then the
tour's three (none cold warm, then cold warm none); medians over the repeats, every sample kept. The
ratios are each configuration's median over scikit-learn's.
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
from collections.abc import Callable, Sequence
from typing import Any

from benchmarks._fresh_record import parse_args, timed_record, write

ROOT = pathlib.Path(__file__).resolve().parents[1]
RECORD = "benchmarks/records/coldstart.json"
PROG = "python -m benchmarks._bench_coldstart"
SCHEMA = 1
CONFIGS = ("sklearn", "none", "jax_cold", "jax_warm", "cold", "warm")
CACHED = ("jax_cold", "jax_warm", "cold", "warm")  # the configurations with a cache directory
DATASETS = ("digits", "breast_cancer", "diabetes")
# Issue 28's targets, as ratios over scikit-learn's first fit: (cold, warm)
TARGETS = {"digits": (1.5, 1.0), "breast_cancer": (3.0, 1.0), "diabetes": (3.0, 1.0)}
TOUR = "tour"
TOUR_CONFIGS = ("none", "cold", "warm")
TOUR_TARGET = 3.5  # issue 28: the README's quick tour, cold, in seconds
FULL = {"max_iter": 200}
SMOKE = {"max_iter": 2}
# Everything that could turn a cache on in a child, removed before each configuration sets its own.
CACHE_ENV = ("JAX_COMPILATION_CACHE_DIR", "JAX_ENABLE_COMPILATION_CACHE", "FNN_CACHE_DIR", "FNN_SKLEARN_CACHE")

CHILD = r"""
import json, sys, time, warnings
warnings.filterwarnings("ignore")  # scikit-learn's ConvergenceWarning at small max_iter
lib, data, max_iter = sys.argv[1], sys.argv[2], int(sys.argv[3])
from sklearn import datasets
X, y = getattr(datasets, "load_" + data)(return_X_y=True)
if lib == "sklearn":
    from sklearn.neural_network import MLPClassifier, MLPRegressor
else:
    import jax, fnn.sklearn
    from fnn.sklearn import MLPClassifier, MLPRegressor
    assert fnn.sklearn.__file__.startswith(sys.argv[4]), fnn.sklearn.__file__
    if sys.argv[5] == "nokeep":  # JAX's persistent cache alone: no executable kept whole
        import fnn.train._keep
        fnn.train._keep.directory = lambda: None
Est = MLPRegressor if data == "diabetes" else MLPClassifier
t = time.perf_counter()
Est(random_state=0, max_iter=max_iter).fit(X, y)
s = time.perf_counter() - t
out = {"first_s": s}
if lib != "sklearn":
    out["cache_dir"] = jax.config.jax_compilation_cache_dir
print("RESULT " + json.dumps(out))
"""


TOUR_CHILD = r"""
import json, os, re, sys, tempfile, time
readme = open(os.path.join(sys.argv[2], "README.md"), encoding="utf-8").read()
tour = re.search(r"## Quick tour\n\n```python\n(.*?)```", readme, re.S).group(1)
tour = tour.replace("/tmp/xor.npz", os.path.join(tempfile.mkdtemp(), "xor.npz"))
if sys.argv[1]:  # the one line the README offers scripts, at the top
    tour = f"import fnn\nfnn.compilation_cache({sys.argv[1]!r})\n" + tour
code = compile(tour, "README.md", "exec")
t = time.perf_counter()
exec(code, {})
s = time.perf_counter() - t
import fnn, jax
assert fnn.__file__.startswith(sys.argv[2]), fnn.__file__
print("RESULT " + json.dumps({"first_s": s, "cache_dir": jax.config.jax_compilation_cache_dir}))
"""


def child_env(config: str, cache: str | None) -> dict[str, str]:
    """A configuration's environment: no cache variable of the caller's, then its own."""
    env = {k: v for k, v in os.environ.items() if k not in CACHE_ENV}
    env["JAX_PLATFORMS"] = "cpu"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    if config == "none":
        env["FNN_SKLEARN_CACHE"] = "0"
    elif config in CACHED:
        assert cache is not None
        env["FNN_CACHE_DIR"] = cache
    return env


def run_child(config: str, data: str, settings: dict, cache: str | None) -> dict:
    """One fresh process: the first fit of ``config`` on ``data``."""
    lib = "sklearn" if config == "sklearn" else "fnn"
    if data == TOUR:
        cmd = [sys.executable, "-c", TOUR_CHILD, cache if config in ("cold", "warm") else "", str(ROOT)]
    else:
        keep = "nokeep" if config.startswith("jax_") else "keep"
        cmd = [sys.executable, "-c", CHILD, lib, data, str(settings["max_iter"]), str(ROOT), keep]
    p = subprocess.run(cmd, check=False, capture_output=True, text=True, env=child_env(config, cache), cwd=ROOT, timeout=600)
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("RESULT ")]
    if p.returncode != 0 or not lines:
        raise RuntimeError(f"{config}/{data} failed ({p.returncode}):\n{p.stderr[-3000:]}")
    out = json.loads(lines[-1][len("RESULT ") :])
    if config in CACHED and out.get("cache_dir") != cache:
        raise RuntimeError(f"{config}/{data}: JAX's cache directory is {out.get('cache_dir')!r}, expected {cache!r}")
    if config == "none" and out.get("cache_dir") is not None:
        raise RuntimeError(f"none/{data}: a cache was on ({out['cache_dir']!r})")
    return out


def measure(settings: dict, repeats: int, echo: Callable[[str], Any], runner: Callable[..., dict] | None = None) -> dict:
    """Every sample: ``samples["<data>/<config>"]`` is a list of seconds, one per repeat."""
    runner = runner or run_child
    samples: dict[str, list[float]] = {f"{d}/{c}": [] for d in DATASETS for c in CONFIGS}
    samples.update({f"{TOUR}/{c}": [] for c in TOUR_CONFIGS})
    written: dict[str, dict[str, list[int]]] = {c: {d: [] for d in DATASETS} for c in ("cold", "jax_cold")}
    for r in range(repeats):
        order = CONFIGS if r % 2 == 0 else ("cold", "warm", "jax_cold", "jax_warm", "none", "sklearn")  # each cold, then its warm
        for data in DATASETS:
            caches = {"jax": tempfile.mkdtemp(prefix="fnn-coldstart-jax-"), "fnn": tempfile.mkdtemp(prefix="fnn-coldstart-")}
            try:
                for config in order:
                    cache = caches["jax" if config.startswith("jax_") else "fnn"]
                    out = runner(config, data, settings, cache)
                    samples[f"{data}/{config}"].append(out["first_s"])
                    if config in written:
                        written[config][data].append(sum(1 for _ in pathlib.Path(cache).rglob("*") if _.is_file()))
                    echo(f"repeat {r + 1}/{repeats} {data:14s} {config:8s} {out['first_s']:.3f} s")
            finally:
                for cache in caches.values():
                    shutil.rmtree(cache, ignore_errors=True)
        cache = tempfile.mkdtemp(prefix="fnn-coldstart-tour-")
        try:
            for config in TOUR_CONFIGS if r % 2 == 0 else ("cold", "warm", "none"):
                out = runner(config, TOUR, settings, cache)
                samples[f"{TOUR}/{config}"].append(out["first_s"])
                echo(f"repeat {r + 1}/{repeats} {'quick tour':14s} {config:8s} {out['first_s']:.3f} s")
        finally:
            shutil.rmtree(cache, ignore_errors=True)
    return {"samples": samples, "cache_files_written": written["cold"], "jax_cache_files_written": written["jax_cold"]}


def summarize(samples: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    """Per dataset: each configuration's median and its ratio over scikit-learn's median."""
    out: dict[str, dict[str, float]] = {}
    for data in DATASETS:
        med = {c: statistics.median(samples[f"{data}/{c}"]) for c in CONFIGS}
        out[data] = {**{f"{c}_s": med[c] for c in CONFIGS}, **{f"{c}_ratio": med[c] / med["sklearn"] for c in CONFIGS[1:]}}
    if all(samples.get(f"{TOUR}/{c}") for c in TOUR_CONFIGS):
        out[TOUR] = {f"{c}_s": statistics.median(samples[f"{TOUR}/{c}"]) for c in TOUR_CONFIGS}
    return out


def main(
    argv: Sequence[str] | None = None, echo: Callable[[str], Any] = print, runner: Callable[..., dict] | None = None
) -> dict[str, Any]:
    args = parse_args(PROG, __doc__, RECORD, 5, argv)
    settings = SMOKE if args.smoke else FULL

    info = {
        **settings,
        "repeats": args.repeats,
        "datasets": "sklearn.datasets.load_<name>(return_X_y=True), float64 as loaded",
        "estimator": "MLPClassifier / MLPRegressor (diabetes)(random_state=0, max_iter), every other parameter its default",
        "timer": "time.perf_counter around Est.fit in a fresh process, after imports and data",
        "targets": {d: {"cold": c, "warm": w} for d, (c, w) in TARGETS.items()},
        "tour_target_s": TOUR_TARGET,
    }
    argv = list(argv if argv is not None else sys.argv[1:])
    mode = "smoke" if args.smoke else "full"
    rec = timed_record(PROG, SCHEMA, mode, argv, info, lambda: measure(settings, args.repeats, echo, runner))
    rec["medians"] = summarize(rec["samples"])
    for d, m in rec["medians"].items():
        echo(f"median {d:14s} " + ", ".join(f"{k} {v:.2f}" for k, v in m.items()))
    write(rec, args.out, echo)
    return rec


if __name__ == "__main__":
    main()
