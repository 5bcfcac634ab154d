"""Before/after timings of two commits of fnn, measured side by side in one run.

Run from the repository root::

    python -m tools.before_after --before d2799e6                      # against HEAD, 5 repeats
    python -m tools.before_after --before d2799e6 --after HEAD --repeats 5 --out benchmarks/records/before_after.json
    python -m tools.before_after --before HEAD --after HEAD --repeats 1 --smoke   # the machinery on tiny sizes
    python -m tools.before_after --before HEAD --after WORKTREE     # uncommitted changes against HEAD

A side is a commit name (a SHA, a tag, ``HEAD``) or ``WORKTREE``: a snapshot of the working tree as it is
now (tracked and untracked, not ignored files, copied to a temporary folder once at the start), for
uncommitted changes; its record names HEAD's SHA, the list of changed files and a hash of the diff.

How it measures
  Both commits are checked out into temporary git worktrees (``git worktree add --detach``; removed at the
  end, also on an error or Ctrl-C; a ``WORKTREE`` side is a temporary copy instead). Each figure is timed
  by a small Python snippet run in a FRESH subprocess of this interpreter with ``PYTHONPATH`` and the
  working directory set to one worktree, ``JAX_PLATFORMS=cpu`` and no persistent compilation cache
  (``JAX_COMPILATION_CACHE_DIR`` removed from the environment, ``jax_enable_compilation_cache`` off by
  environment and by ``jax.config.update``); each snippet checks that ``fnn`` really came from its
  worktree. Before any timing, every worktree is imported once (untimed), so that both sides' bytecode
  caches exist and their files are in the OS cache. The snippets use only the public API both trees share:
  ``fnn.MLP``, ``net.init``, ``fnn.datasets.xor``, ``fnn.fit``, ``fnn.fit_many``, ``fnn.make_step`` and
  ``fnn.sklearn.MLPClassifier``.

  A repeat runs each group of figures once per side, in a fresh process each; the side that goes first
  alternates from one repeat to the next (A B, B A, A B, ...), so slow drifts of the machine's load hit
  both sides alike. Two groups:

  core     ``import_s``       ``import fnn`` in the fresh process (after ``import jax, numpy, optax``,
                              which both trees share: fnn's own import cost; the dependencies' time is
                              kept in the record as ``deps_import_s``).
           ``first_fit_s``    the first ``fnn.fit`` of the process, compilation included: the README's
                              quick-tour XOR problem (the 4 points, MLP (2, 8, 2) tanh/softmax,
                              cross_entropy, ``optax.sgd(0.5)``, ``grad="manual"``, full batch) for 300
                              epochs without ``tol`` (a fixed amount of work on both sides).
           ``warm_fit_s``     the same call again in that process, median of 5.
           ``warm_step_us``   one jitted ``make_step`` step, MLP (64, 128, 10) relu/softmax, batch 128,
                              ``optax.sgd(0.1)``, warm; median over 200 steps, each ``block_until_ready``.
           ``loop_epoch_ms``  a warm ``fnn.fit`` on 2048 x 64 random data, MLP (64, 128, 10) relu/softmax,
                              batch 128, 20 epochs: the call's time / 20, median of 3 calls after a warm-up.
           ``fit_many_s``     a warm ``fnn.fit_many`` of 32 XOR networks (the README's example: 300 epochs,
                              ``inject_hyperparams(sgd)``, learning rates 0.1 and 1.0, 16 each), median of 3.
  sklearn  ``sklearn_first_fit_s``  ``fnn.sklearn.MLPClassifier(hidden_layer_sizes=(64,), max_iter=50,
                              random_state=0).fit(X, y)`` on scikit-learn's digits scaled to [0, 1], the
                              first fit of a fresh process (ConvergenceWarning silenced);
           ``sklearn_warm_fit_s``   a new estimator fitted the same way again, median of 3.

  Every call is timed with ``time.perf_counter`` around the call and a ``jax.block_until_ready`` of
  what it returns. ``--smoke`` shrinks every size (for the test of this tool; its numbers mean nothing).

The verdict (one rule for every figure, stated in the table's legend and the record)
  A figure's samples are its per-process values, one per repeat and side. The table shows each side's
  median, the ratio of medians (after / before), each side's spread (max - min) / median, and a 90%
  bootstrap interval of the ratio of medians (both sides resampled, 2000 draws, seed 0).
  "worse beyond noise" is YES when the after median is above the largest before sample, i.e. the after
  side's typical value lies outside everything the before side showed in this run; "better beyond noise"
  likewise when it is below the smallest before sample. With 5 repeats a figure that did not change
  gives YES by chance with probability 21/252 = 1/12 (all 5 before draws below the 3rd of 5 after
  draws), so among 8 figures one false YES is not rare: a YES is a flag to rerun and look at, not proof;
  a NO on a figure whose spread is large says only that this run could not see a change of that size.

The record (``--out``, JSON) holds both commits' SHAs, the machine (``platform``, ``os.cpu_count()``,
Python, jax and jaxlib versions, the load average at the start and the end), the settings, the order the
processes ran in, every raw sample, and the summary the table prints.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import hashlib
import json
import math
import os
import pathlib
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

REPO = pathlib.Path(__file__).resolve().parents[1]

# figure -> (group, unit); the table's order
FIGURES: dict[str, tuple[str, str]] = {
    "import_s": ("core", "s"),
    "first_fit_s": ("core", "s"),
    "warm_fit_s": ("core", "s"),
    "warm_step_us": ("core", "us"),
    "loop_epoch_ms": ("core", "ms"),
    "fit_many_s": ("core", "s"),
    "sklearn_first_fit_s": ("sklearn", "s"),
    "sklearn_warm_fit_s": ("sklearn", "s"),
}
GROUPS = ("core", "sklearn")

FULL = {
    "xor_epochs": 300,
    "warm_fit_calls": 5,
    "step_sizes": [64, 128, 10],
    "step_batch": 128,
    "step_warmup": 20,
    "step_samples": 200,
    "loop_rows": 2048,
    "loop_sizes": [64, 128, 10],
    "loop_batch": 128,
    "loop_epochs": 20,
    "loop_calls": 3,
    "many_networks": 32,
    "many_epochs": 300,
    "many_calls": 3,
    "sk_hidden": [64],
    "sk_max_iter": 50,
    "sk_warm_calls": 3,
}
SMOKE = {
    "xor_epochs": 20,
    "warm_fit_calls": 2,
    "step_sizes": [8, 16, 4],
    "step_batch": 16,
    "step_warmup": 2,
    "step_samples": 10,
    "loop_rows": 256,
    "loop_sizes": [8, 16, 4],
    "loop_batch": 32,
    "loop_epochs": 2,
    "loop_calls": 1,
    "many_networks": 4,
    "many_epochs": 20,
    "many_calls": 1,
    "sk_hidden": [8],
    "sk_max_iter": 3,
    "sk_warm_calls": 1,
}

MIN_JUDGED = 3  # samples a side below which no verdict is given
RULE = (
    "worse beyond noise = the after median is above the largest before sample (better beyond noise: below "
    "the smallest); noise = (max - min) / median of each side's per-process samples; ratio CI = 90% bootstrap "
    "interval of median(after) / median(before), 2000 draws, seed 0; no verdict with fewer than 3 repeats"
)

# ---------------------------------------------------------------------------------------------------------------------
# the snippets: run as `python -c SNIPPET CONFIG_JSON` in a worktree; print one JSON object on the last line

_PRELUDE = r"""
import json, os, statistics, sys, time
cfg = json.loads(sys.argv[1])
out, info = {}, {}
t = time.perf_counter()
import jax
import numpy as np
import optax
out["deps_import_s"] = time.perf_counter() - t
try:
    jax.config.update("jax_enable_compilation_cache", False)
except Exception:  # an older jax without the option has no cache to turn off
    pass
"""

_IMPORT_FNN = r"""
t = time.perf_counter()
import fnn
out["import_s"] = time.perf_counter() - t
"""

_CHECK_TREE = r"""
import fnn
_root = os.path.dirname(os.path.dirname(os.path.abspath(fnn.__file__)))
if not os.path.samefile(_root, cfg["tree"]):
    raise SystemExit(f"fnn was imported from {_root}, not from the worktree {cfg['tree']}")
info.update(fnn_version=fnn.__version__, fnn_file=fnn.__file__, jax=jax.__version__, python=sys.version.split()[0])
import jaxlib
info["jaxlib"] = jaxlib.__version__
import jax.numpy as jnp


def timed(f):
    t = time.perf_counter()
    jax.block_until_ready(f())
    return time.perf_counter() - t
"""

_EMIT = r"""
print(json.dumps({"figures": out, "info": info}))
"""

CORE = (
    _PRELUDE
    + _IMPORT_FNN
    + _CHECK_TREE
    + r"""
# the README's quick-tour XOR fit: first call (compiles), then warm
net = fnn.MLP((2, 8, 2), hidden="tanh", output="softmax")
params = jax.block_until_ready(net.init(jax.random.key(0)))
x, y = fnn.datasets.xor()


def xor_fit():
    return fnn.fit(
        net, params, (x, y), loss="cross_entropy", optimizer=optax.sgd(0.5), epochs=cfg["xor_epochs"],
        grad="manual", key=jax.random.key(1), progress=False,
    )[0]


out["first_fit_s"] = timed(xor_fit)
out["warm_fit_s"] = statistics.median(timed(xor_fit) for _ in range(cfg["warm_fit_calls"]))

# one jitted make_step step, warm
snet = fnn.MLP(tuple(cfg["step_sizes"]), hidden="relu", output="softmax")
kx, ky = jax.random.split(jax.random.key(2))
xb = jax.random.normal(kx, (cfg["step_batch"], cfg["step_sizes"][0]))
yb = jax.random.randint(ky, (cfg["step_batch"],), 0, cfg["step_sizes"][-1])
step = fnn.make_step(snet, "cross_entropy", optax.sgd(0.1))
state = step.init(snet.init(jax.random.key(0)))
for _ in range(cfg["step_warmup"]):
    state, m = step(state, xb, yb)
jax.block_until_ready((state, m))
times = []
for _ in range(cfg["step_samples"]):
    t = time.perf_counter()
    state, m = step(state, xb, yb)
    jax.block_until_ready((state, m))
    times.append(time.perf_counter() - t)
out["warm_step_us"] = statistics.median(times) * 1e6

# the compiled loop: a warm fit on random data, per epoch
lnet = fnn.MLP(tuple(cfg["loop_sizes"]), hidden="relu", output="softmax")
kx, ky = jax.random.split(jax.random.key(3))
lx = jax.random.normal(kx, (cfg["loop_rows"], cfg["loop_sizes"][0]))
ly = jax.random.randint(ky, (cfg["loop_rows"],), 0, cfg["loop_sizes"][-1])
lparams = jax.block_until_ready(lnet.init(jax.random.key(0)))


def loop_fit():
    return fnn.fit(
        lnet, lparams, (lx, ly), loss="cross_entropy", optimizer=optax.sgd(0.1), epochs=cfg["loop_epochs"],
        batch_size=cfg["loop_batch"], key=jax.random.key(1), progress=False,
    )[0]


timed(loop_fit)
out["loop_epoch_ms"] = statistics.median(timed(loop_fit) for _ in range(cfg["loop_calls"])) / cfg["loop_epochs"] * 1e3

# fit_many: the README's example with more networks, warm
half = cfg["many_networks"] // 2


def many_fit():
    return fnn.fit_many(
        net, (x, y), loss="cross_entropy", optimizer=optax.inject_hyperparams(optax.sgd)(learning_rate=0.1),
        epochs=cfg["many_epochs"], key=jax.random.key(1),
        hyperparams={"learning_rate": jnp.repeat(jnp.array([0.1, 1.0]), half)}, progress=False,
    )[0]


timed(many_fit)
out["fit_many_s"] = statistics.median(timed(many_fit) for _ in range(cfg["many_calls"]))
"""
    + _EMIT
)

SKLEARN = (
    _PRELUDE
    + r"""
import warnings
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning

warnings.simplefilter("ignore", ConvergenceWarning)
digits = load_digits()
X, Y = digits.data / 16.0, digits.target
t = time.perf_counter()
import fnn.sklearn
out["sklearn_import_s"] = time.perf_counter() - t
"""
    + _CHECK_TREE
    + r"""


def sk_fit():
    return fnn.sklearn.MLPClassifier(
        hidden_layer_sizes=tuple(cfg["sk_hidden"]), max_iter=cfg["sk_max_iter"], random_state=0
    ).fit(X, Y).coefs_


out["sklearn_first_fit_s"] = timed(sk_fit)
out["sklearn_warm_fit_s"] = statistics.median(timed(sk_fit) for _ in range(cfg["sk_warm_calls"]))
"""
    + _EMIT
)

SNIPPETS = {"core": CORE, "sklearn": SKLEARN}
WARM_UP = "import fnn, fnn.sklearn"  # untimed, once per worktree: bytecode caches and the OS file cache


# ---------------------------------------------------------------------------------------------------------------------
# git worktrees and the subprocesses


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()


WORKTREE = "WORKTREE"


def resolve(ref: str) -> str:
    """The full SHA of a commit name (``HEAD``, a short SHA, a tag); ``WORKTREE`` stays itself."""
    return ref if ref == WORKTREE else _git("rev-parse", "--verify", f"{ref}^{{commit}}")


def describe(ref: str, sha: str) -> dict:
    """What a side is, for the record."""
    if sha != WORKTREE:
        return {"ref": ref, "sha": sha, "subject": _git("log", "-1", "--format=%s", sha)[:200]}
    head = resolve("HEAD")
    diff = subprocess.run(["git", "diff", "HEAD", "--binary"], cwd=REPO, capture_output=True, check=True).stdout
    return {
        "ref": ref,
        "sha": f"{head}+uncommitted",
        "head": head,
        "changed": _git("status", "--porcelain", "--untracked-files=all").splitlines(),
        "diff_sha256": hashlib.sha256(diff).hexdigest(),
    }


@contextlib.contextmanager
def checkout(sha: str, side: str) -> Iterator[pathlib.Path]:
    """``sha``'s files under a fresh ``/tmp/fnn-<side>-<sha>-*`` folder, removed on exit: a detached git worktree,
    or for ``WORKTREE`` a copy of the working tree's tracked and untracked, not ignored files."""
    parent = pathlib.Path(tempfile.mkdtemp(prefix=f"fnn-{side}-{sha[:10]}-"))
    tree = parent / "fnn"
    added = False
    try:
        if sha == WORKTREE:
            names = _git("ls-files", "--cached", "--others", "--exclude-standard").splitlines()
            for name in names:
                src = REPO / name
                if src.is_file():  # a tracked file deleted in the working tree is left out
                    (tree / name).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(src, tree / name)
        else:
            _git("worktree", "add", "--detach", str(tree), sha)
            added = True
        yield tree
    finally:
        if added:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=REPO, capture_output=True)
        shutil.rmtree(parent, ignore_errors=True)


def child_env(tree: pathlib.Path) -> dict[str, str]:
    env = dict(os.environ)
    for name in list(env):
        if name.startswith(("JAX_COMPILATION_CACHE", "JAX_PERSISTENT_CACHE")):
            del env[name]
    env.update(
        PYTHONPATH=str(tree),
        JAX_PLATFORMS="cpu",
        JAX_ENABLE_COMPILATION_CACHE="false",
        PYTHONHASHSEED="0",
    )
    return env


def run_snippet(code: str, tree: pathlib.Path, cfg: dict, timeout: float = 1800) -> dict:
    """Run one snippet in a fresh process in ``tree``; its JSON (``figures`` and ``info``)."""
    r = subprocess.run(
        [sys.executable, "-c", code, json.dumps({**cfg, "tree": str(tree)})],
        cwd=tree,
        env=child_env(tree),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if r.returncode != 0:
        raise RuntimeError(f"snippet failed in {tree} (exit {r.returncode}):\n{r.stderr[-4000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------------------------------------------
# statistics and the table


def bootstrap_ratio(before: list[float], after: list[float], draws: int = 2000, seed: int = 0) -> tuple[float, float]:
    """A 90% percentile bootstrap interval of median(after) / median(before)."""
    rng = random.Random(seed)
    ratios = sorted(
        statistics.median(rng.choices(after, k=len(after))) / statistics.median(rng.choices(before, k=len(before)))
        for _ in range(draws)
    )
    return ratios[int(0.05 * (draws - 1))], ratios[math.ceil(0.95 * (draws - 1))]


def summarize(before: list[float], after: list[float]) -> dict:
    """The medians, spreads, ratio and verdicts of one figure (see the module docstring's rule)."""
    mb, ma = statistics.median(before), statistics.median(after)
    judged = min(len(before), len(after)) >= MIN_JUDGED
    lo, hi = bootstrap_ratio(before, after)
    return {
        "before_median": mb,
        "after_median": ma,
        "before_min": min(before),
        "before_max": max(before),
        "after_min": min(after),
        "after_max": max(after),
        "ratio": ma / mb,
        "ratio_ci90": [lo, hi],
        "noise_before": (max(before) - min(before)) / mb,
        "noise_after": (max(after) - min(after)) / ma,
        # None: too few repeats to judge (fewer than MIN_JUDGED samples on a side)
        "worse_beyond_noise": ma > max(before) if judged else None,
        "better_beyond_noise": ma < min(before) if judged else None,
    }


def table(summary: dict[str, dict]) -> str:
    head = (
        "figure",
        "unit",
        "before",
        "after",
        "after/before",
        "ratio 90% CI",
        "noise before",
        "noise after",
        "worse beyond noise",
    )
    rows = [head]
    for name, s in summary.items():
        if s["worse_beyond_noise"] is None:
            verdict = "n/a (too few repeats)"
        else:
            verdict = "YES" if s["worse_beyond_noise"] else ("no (better)" if s["better_beyond_noise"] else "no")
        rows.append(
            (
                name,
                FIGURES[name][1],
                f"{s['before_median']:.4g}",
                f"{s['after_median']:.4g}",
                f"{s['ratio']:.3f}",
                f"{s['ratio_ci90'][0]:.3f}-{s['ratio_ci90'][1]:.3f}",
                f"{100 * s['noise_before']:.1f}%",
                f"{100 * s['noise_after']:.1f}%",
                verdict,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join([*lines, "", f"rule: {RULE}"])


# ---------------------------------------------------------------------------------------------------------------------
# the run


def measure(before: str, after: str, repeats: int, smoke: bool, log=print) -> dict:
    """Time both commits; the record (every sample, the summary, the machine)."""
    cfg = SMOKE if smoke else FULL
    shas = {"before": resolve(before), "after": resolve(after)}
    record: dict = {
        "tool": "tools/before_after.py",
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "commits": {side: describe(ref, shas[side]) for side, ref in (("before", before), ("after", after))},
        "machine": {
            "platform": platform.platform(),
            "machine": platform.machine(),
            "processor": platform.processor(),
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_start": list(os.getloadavg()),
        },
        "settings": {
            "repeats": repeats,
            "smoke": smoke,
            "sizes": cfg,
            "groups": {g: [f for f, v in FIGURES.items() if v[0] == g] for g in GROUPS},
        },
        "rule": RULE,
        "order": [],
        "samples": {"before": {}, "after": {}},
        "extras": {"before": {}, "after": {}},
        "info": {},
    }
    t0 = time.perf_counter()
    with checkout(shas["before"], "before") as tb, checkout(shas["after"], "after") as ta:
        trees = {"before": tb, "after": ta}
        record["checkouts"] = {side: str(tree) for side, tree in trees.items()}  # removed by the end of the run
        for side, tree in trees.items():
            r = subprocess.run([sys.executable, "-c", WARM_UP], cwd=tree, env=child_env(tree), capture_output=True, text=True)
            if r.returncode != 0:
                raise RuntimeError(f"`{WARM_UP}` failed in the {side} tree {tree}:\n{r.stderr[-4000:]}")
        for rep in range(repeats):
            sides = ("before", "after") if rep % 2 == 0 else ("after", "before")
            for group in GROUPS:
                for side in sides:
                    res = run_snippet(SNIPPETS[group], trees[side], cfg)
                    record["order"].append([rep, group, side])
                    record["info"].setdefault(side, res["info"])
                    for name, value in res["figures"].items():
                        bucket = "samples" if name in FIGURES else "extras"
                        record[bucket][side].setdefault(name, []).append(value)
                    shown = ", ".join(f"{k}={v:.4g}" for k, v in res["figures"].items() if k in FIGURES)
                    log(f"[{time.perf_counter() - t0:6.0f}s] repeat {rep + 1}/{repeats} {group:7s} {side:6s} {shown}")
    info = record["info"].get("after") or record["info"].get("before") or {}
    record["machine"].update(jax=info.get("jax"), jaxlib=info.get("jaxlib"))
    record["machine"]["load_average_end"] = list(os.getloadavg())
    record["wall_s"] = time.perf_counter() - t0
    record["summary"] = {name: summarize(record["samples"]["before"][name], record["samples"]["after"][name]) for name in FIGURES}
    return record


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tools.before_after", description=__doc__.split("\n\n")[0])
    ap.add_argument("--before", required=True, help="the older commit (a SHA, tag, HEAD) or WORKTREE")
    ap.add_argument("--after", default="HEAD", help="the newer commit (default HEAD, without uncommitted changes) or WORKTREE")
    ap.add_argument("--repeats", type=int, default=5, help="fresh-process pairs per figure group (default 5)")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, for testing the tool (the numbers mean nothing)")
    ap.add_argument("--out", type=pathlib.Path, help="write the JSON record here")
    args = ap.parse_args(argv)
    if args.repeats < 1:
        ap.error("--repeats must be at least 1")
    log = lambda s: print(s, file=sys.stderr, flush=True)
    record = measure(args.before, args.after, args.repeats, args.smoke, log=log)
    c, m = record["commits"], record["machine"]
    print(f"before {c['before']['sha'][:10]} ({c['before']['ref']})  after {c['after']['sha'][:10]} ({c['after']['ref']})")
    print(
        f"{m['platform']}, {m['cpu_count']} CPUs, jax {m['jax']} / jaxlib {m['jaxlib']}; {args.repeats} repeats; "
        f"load average {m['load_average_start'][0]:.2f} at the start, {m['load_average_end'][0]:.2f} at the end"
    )
    print()
    print(table(record["summary"]))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
        print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
