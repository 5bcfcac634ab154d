"""Run every experiment (quick mode by default) and write results/REPORT.md and results/summary.json.

Run from the repository root:
     python -m experiments            (all, quick mode: minutes on two CPU cores)
     python -m experiments --full     (the full settings)
     python -m experiments --list     (what there is)
     python -m experiments --only perceptron,sweep --device gpu
     python -m experiments --jobs 1   (one experiment at a time, in this process; default: one worker
                                       process per usable CPU core, up to 4, sharing the compilation cache)
     python -m experiments --record   (a quick run of all, then made the committed record:
                                       docs/results_quick.json and the README's figures in docs/)
     python -m experiments --record-only  (make the last run in results/ the committed record, without rerunning)

After a record, ``python -m tools.readme`` regenerates the README's tables from it.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import importlib
import importlib.metadata
import json
import math
import multiprocessing
import os
import pathlib
import platform
import shlex
import shutil
import subprocess
import sys
import time
import traceback
from collections.abc import Iterator, Sequence
from typing import Any

from experiments import _common, _worker
from tools.readme import README_FIGURES, cell, select

ROOT = pathlib.Path(__file__).resolve().parents[1]
RECORD = ROOT / "docs" / "results_quick.json"  # the committed record of a quick run; the README's tables come from it
SCHEMA = 1

# One question of the tutorial per script, in the order a reader meets them.
EXPERIMENTS = [
    "perceptron",
    "linear_collapse",
    "nonlinear",
    "representation",
    "activations",
    "mean_field",
    "zero_centred",
    "losses",
    "loss_speed",
    "gradients",
    "landscape",
    "digits",
    "mnist1d",
    "mnist1d_sweep",
    "sweep",
    "capacity",
    "double_descent",
    "complexity",
    "bn_weight_scale",
    "bn_learning_rate",
    "norm_batch_size",
    "bn_smoothness",
    "dropout",
    "residual",
    "l2_double_descent",
    "chain_rule",
    "sklearn_compare",
]
# Experiments whose claims are timings: with --jobs > 1 each runs alone (after the others), so no other
# experiment's process competes with what it times.
ALONE = ("chain_rule", "complexity", "digits", "gradients", "sklearn_compare", "sweep")
# Distributions whose versions a run records (None when not installed).
PACKAGES = ("jax", "jaxlib", "optax", "numpy", "fnn", "scikit-learn", "mnist1d", "matplotlib")


def describe(name: str) -> str:
    doc = importlib.import_module(f"experiments.{name}").__doc__ or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def verdict(h: dict) -> str:
    """The `holds` cell of a headline: yes / **no** / blank, with "(algebra)" when no measurement could refute it."""
    ok = {True: "yes", False: "**no**", None: ""}[h.get("ok")]
    return f"{ok} (algebra)" if ok and h.get("basis") == "algebra" else ok


def report(results: dict[str, dict], out: pathlib.Path, total_s: float) -> str:
    """REPORT.md: one table of every headline number, with links to the figures."""
    lines = [
        "# fnn experiments — report",
        "",
        f"Mode: {', '.join(sorted({r.get('mode', '?') for r in results.values()}))}; "
        f"platform: {', '.join(sorted({r.get('platform', '?') for r in results.values()}))}; "
        f"total wall time {total_s:.0f} s. Each row is measured by the script named on its left; "
        "`holds` says whether the tutorial's claim (or the published number) is reproduced; "
        '"(algebra)" marks a verdict that algebra guarantees (the number only illustrates it).',
        "",
        "| experiment | claim | measured | reference | holds |",
        "|---|---|---|---|---|",
    ]
    for name, r in results.items():
        if "error" in r:
            lines.append(f"| {name} | **failed**: {cell(r['error'])} | | | NO |")
            continue
        lines += [
            f"| {name} | {cell(h['claim'])} | {cell(h['text'])} | {cell(h.get('anchor', ''))} | {verdict(h)} |"
            for h in r.get("headline", [])
        ]
    lines += ["", "## Figures", ""]
    for name, r in results.items():
        figs = r.get("figures", [])
        if figs:
            lines.append(f"- **{name}**: " + ", ".join(f"[{f}]({name}/{f})" for f in figs))
    text = "\n".join(lines) + "\n"
    (out / "REPORT.md").write_text(text)
    return text


WIDTH = 100  # the terminal summary's columns


def _fit(text: str, width: int) -> str:
    """``text`` with its runs of white space made single spaces, cut to ``width`` columns (``…`` where cut)."""
    return _cut(" ".join(str(text).split()), width)


def _cut(line: str, width: int) -> str:
    return line if len(line) <= width else line[: width - 1] + "…"


def terminal_lines(name: str, r: dict, width: int = WIDTH) -> list[str]:
    """An experiment's claims for the terminal, one line each, at most ``width`` columns: the verdict
    (``yes`` / ``NO``), the experiment, the measurement and the claim, each cut to fit (``…``). The claims are the README table's
    rows (:func:`tools.readme.select`); every row, with its reference, is in REPORT.md."""
    if r.get("error"):
        return [_cut(f"FAIL {name:17} {_fit(r['error'], width)}", width)]
    lines = []
    for h in select(r.get("headline", []))[0]:
        mark = {True: "yes", False: "NO", None: "-"}[h.get("ok")]
        measured = _fit(h.get("text", ""), 28)
        lines.append(_cut(f"{mark:4} {name:17} {measured:28} {_fit(h['claim'], width)}", width))
    return lines


def terminal_summary(results: dict[str, dict], out: pathlib.Path, total_s: float, width: int = WIDTH) -> str:
    """The run's last words: one line per claim (:func:`terminal_lines`), then the tally and where the details are."""
    header = f"{'holds':4} {'experiment':17} {'measured':28} claim (all of it, and the reference: REPORT.md)"
    lines = ["─" * width, _cut(header, width)]
    for name, r in results.items():
        lines += terminal_lines(name, r, width)
    heads = [h for r in results.values() for h in select(r.get("headline", []))[0]]
    tally = {k: sum(h.get("ok") is v for h in heads) for k, v in (("yes", True), ("no", False))}
    failed = [n for n, r in results.items() if r.get("error")]
    lines += [
        "─" * width,
        _fit(
            f"{len(results)} experiments, {total_s:.0f} s: {tally['yes']} claims hold, {tally['no']} do not"
            + (f"; FAILED: {', '.join(failed)}" if failed else ""),
            width,
        ),
        _fit(f"details: {out / 'REPORT.md'} (every row, its reference) and {out / 'summary.json'}", width),
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------------------
# run facts: what a number was measured on


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def git_state(root: pathlib.Path = ROOT) -> dict[str, Any]:
    """The commit of the tree that ran (``git rev-parse HEAD``) and whether tracked files differed from it.

    Without git or outside a repository: commit and dirty are None and ``error`` says why.
    """

    def git(*a: str) -> str:
        return subprocess.run(["git", *a], cwd=root, capture_output=True, text=True, check=True, timeout=30).stdout

    try:
        commit = git("rev-parse", "HEAD").strip()
        changed = [line[3:] for line in git("status", "--porcelain", "--untracked-files=no").splitlines() if line.strip()]
    except (OSError, subprocess.SubprocessError) as e:
        err = e.stderr.strip() if isinstance(e, subprocess.CalledProcessError) and e.stderr else str(e)
        return {"commit": None, "dirty": None, "changed": [], "error": err or type(e).__name__}
    return {"commit": commit, "dirty": bool(changed), "changed": changed}


def _cpu_model() -> str:
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def run_facts(
    argv: Sequence[str], started: datetime.datetime, prog: str = "python -m experiments", git: dict | None = None
) -> dict[str, Any]:
    """Machine, versions, date, command line (``prog`` + ``argv``) and git commit of a run.

    ``started`` is the run's start in UTC; ``git`` the :func:`git_state` taken then (default: now).
    Any script that commits a record can call this (the benchmark too).
    """
    import jax

    device = jax.devices()[0]
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = os.cpu_count()
    return {
        "command": " ".join([prog, shlex.join(argv)]).strip(),
        "date": started.isoformat(timespec="seconds"),
        "machine": {
            "machine": platform.machine(),
            "processor": platform.processor(),
            "cpu_model": _cpu_model(),
            "cpu_count": os.cpu_count(),
            "cpus_usable": usable,
            "device_kind": str(device.device_kind),
            "platform": device.platform,
            "devices": jax.device_count(),
            "os": platform.platform(),
        },
        "versions": {"python": platform.python_version(), **{p: _version(p) for p in PACKAGES}},
        "git": git_state() if git is None else git,
    }


def _sha256(path: pathlib.Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def summary(results: dict[str, dict], out: pathlib.Path, facts: dict, total_s: float) -> dict[str, Any]:
    """results/summary.json: the run's facts and, per experiment, its settings, headline numbers and figures."""
    exps: dict[str, dict] = {}
    for name, r in results.items():
        figs = [out / name / f for f in r.get("figures", [])]
        exps[name] = {
            "mode": r.get("mode"),
            "seed": r.get("seed"),
            "platform": r.get("platform"),
            "settings": r.get("settings", r.get("setting")),
            "wall_s": r.get("wall_s"),
            "error": r.get("error"),
            "headline": r.get("headline", []),
            "figures": [{"file": f.name, "sha256": _sha256(f)} for f in figs if f.is_file()],
        }
    modes = sorted({e["mode"] for e in exps.values() if e["mode"]})
    return {
        "schema": SCHEMA,
        "mode": modes[0] if len(modes) == 1 else ",".join(modes) or None,
        "seed": next((e["seed"] for e in exps.values() if e["seed"] is not None), None),
        "wall_s": round(total_s, 1),
        **facts,
        "experiments": exps,
    }


# ---------------------------------------------------------------------------------------------------------------------
# running the experiments: one by one here, or in worker processes


def default_jobs(device: str | None) -> int:
    """Worker processes for a run: one per usable CPU core up to 4 (most of a quick run is XLA compiling,
    one core per program), or 1 on a GPU (processes would share, and each preallocate, its memory)."""
    if device == "gpu":
        return 1
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = os.cpu_count() or 1
    return max(1, min(4, usable))


def flags_for(name: str, args: argparse.Namespace, out: pathlib.Path) -> list[str]:
    """The command-line flags the runner passes to ``experiments.<name>.main``."""
    flags = ["--out", str(out / name), "--seed", str(args.seed)]
    flags += [] if args.full else ["--smoke"] if args.smoke else ["--quick"]
    flags += ["--device", args.device] if args.device else []
    flags += ["--no-cache"] if args.no_cache or args.record else []  # a record times compilation from scratch
    return flags


def run_here(tasks: Sequence[tuple[str, list[str], str, int]], start: float) -> dict[str, dict]:
    """Each experiment in turn, in this process, its output straight to the terminal."""
    results: dict[str, dict] = {}
    for i, (name, flags, mode, seed) in enumerate(tasks, 1):
        print(f"\n=== [{i}/{len(tasks)}] {name}: {describe(name)}  ({time.perf_counter() - start:.0f} s elapsed)", flush=True)
        try:
            results[name] = importlib.import_module(f"experiments.{name}").main(flags)
        except Exception as e:  # one failing experiment must not hide the others' results
            traceback.print_exc()
            results[name] = _worker.failure(e, mode, seed)
    return results


def longest_first(names: Sequence[str], record: pathlib.Path = RECORD) -> list[str]:
    """``names`` ordered by the committed record's wall time, longest first (unknown ones first of all): a
    greedy pool then finishes close to the shortest possible time."""
    try:
        walls = {n: e.get("wall_s") or 0.0 for n, e in json.loads(record.read_text())["experiments"].items()}
    except (OSError, ValueError, KeyError, AttributeError):
        walls = {}
    return sorted(names, key=lambda n: -walls.get(n, math.inf))


def run_parallel(tasks: Sequence[tuple[str, list[str], str, int]], jobs: int, out: pathlib.Path, start: float) -> dict[str, dict]:
    """The experiments in ``jobs`` worker processes (spawned: each imports JAX afresh), longest first; those
    that time something (:data:`ALONE`) afterwards, one at a time. Each one's output goes to
    ``<out>/<name>/log.txt``; when it ends, its claims are printed one line each (its whole log if it
    failed). Results come back in the order of ``tasks``."""
    by_name = {t[0]: t for t in tasks}
    logs = {}
    for name in by_name:
        (out / name).mkdir(parents=True, exist_ok=True)
        logs[name] = out / name / "log.txt"
    if jobs > 1:  # on a GPU, workers must not each take most of its memory up front
        os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    print(_cut(f"running {len(tasks)} experiments in {jobs} worker processes; logs: {out}/<name>/log.txt", WIDTH), flush=True)
    done: dict[str, dict] = {}
    ctx = multiprocessing.get_context("spawn")
    order = longest_first(list(by_name))
    shared = [(*by_name[n], str(logs[n])) for n in order if n not in ALONE]
    alone = [(*by_name[n], str(logs[n])) for n in order if n in ALONE]

    def ended(pool: Any) -> Iterator[tuple[str, dict]]:  # the shared ones side by side, then each timing one alone
        yield from pool.imap_unordered(_worker.work, shared)
        for task in alone:
            yield pool.apply(_worker.work, (task,))

    with ctx.Pool(jobs) as pool:
        for i, (name, result) in enumerate(ended(pool), 1):
            status = "FAILED" if "error" in result else f"{result.get('wall_s', float('nan')):.0f} s"
            print(f"\n=== [{i}/{len(tasks)}] {name} ({status}; {time.perf_counter() - start:.0f} s elapsed)", flush=True)
            if "error" in result:  # the traceback, to see at once; an experiment that ran has its log on disk
                print(logs[name].read_text(encoding="utf-8", errors="replace").rstrip(), flush=True)
            else:
                print("\n".join(terminal_lines(name, result)), flush=True)
            done[name] = result
    return {t[0]: done[t[0]] for t in tasks}


# ---------------------------------------------------------------------------------------------------------------------
# the committed record


def record(out: pathlib.Path, docs: pathlib.Path = ROOT / "docs") -> list[pathlib.Path]:
    """Make the run in ``out`` the committed record: ``out/summary.json`` -> ``docs/results_quick.json``
    (byte for byte) and each figure the README shows ``out/<experiment>/<file>`` -> ``docs/<name>.png``.

    Refused (SystemExit) when the run failed, was not in quick mode, or a figure no longer matches the
    checksum the run wrote into summary.json (a later run overwrote it). Returns the files written.
    """
    src = out / "summary.json"
    if not src.is_file():
        raise SystemExit(f"--record: no {src}; run `python -m experiments` first")
    s = json.loads(src.read_text())
    if s.get("schema") != SCHEMA or "experiments" not in s:
        raise SystemExit(f"--record: {src} is not a summary of this runner's schema {SCHEMA}; rerun `python -m experiments`")
    failed = [n for n, e in s["experiments"].items() if e.get("error")]
    if failed:
        raise SystemExit(f"--record: not recording a run in which {', '.join(failed)} failed")
    if s.get("mode") != "quick":
        raise SystemExit(f"--record: the committed record is a quick run; {src} is mode {s.get('mode')!r}")
    copies = []
    for f in README_FIGURES:
        exp = s["experiments"].get(f.experiment)
        if exp is None:
            continue
        want = {g["file"]: g["sha256"] for g in exp["figures"]}.get(f.source)
        fig = out / f.experiment / f.source
        if want is None:
            print(f"--record: {f.experiment} made no {f.source}; docs/{f.name} left as it is (and not shown)")
            continue
        if not fig.is_file() or _sha256(fig) != want:
            raise SystemExit(f"--record: {fig} is not the figure of the run in {src} (missing or overwritten); rerun")
        copies.append((fig, docs / f.name))
    docs.mkdir(parents=True, exist_ok=True)
    written = [docs / RECORD.name]
    shutil.copyfile(src, written[0])
    for a, b in copies:
        shutil.copyfile(a, b)
        written.append(b)
    print("recorded: " + ", ".join(str(p.relative_to(docs.parent)) if p.is_relative_to(docs.parent) else str(p) for p in written))
    print("next: python -m tools.readme   (regenerates docs/results.md, the results page, from the record), then commit both")
    return written


def main(argv: list[str] | None = None) -> dict[str, dict]:
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(
        prog="python -m experiments",
        description="Run the fnn experiments and write results/REPORT.md and results/summary.json. Run from the repository root.",
    )
    ap.add_argument("--list", action="store_true", help="list the experiments and exit")
    ap.add_argument("--full", action="store_true", help="full settings instead of quick mode")
    ap.add_argument("--smoke", action="store_true", help="tiny settings, seconds each (a check of the runner; not results)")
    ap.add_argument(
        "--jobs",
        type=int,
        default=None,
        help="experiments run at once, each in a worker process (they share the persistent compilation cache); "
        "default: the usable CPU cores, up to 4, or 1 with --device gpu; 1 runs them one by one in this process",
    )
    ap.add_argument("--only", default="", help="comma-separated subset, e.g. perceptron,sweep")
    ap.add_argument("--out", default="results", help="results folder (default results/)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", choices=["cpu", "gpu"], default=None)
    ap.add_argument(
        "--record", action="store_true", help="after the run, make it the committed record (docs/results_quick.json + figures)"
    )
    ap.add_argument("--record-only", action="store_true", help="run nothing; make the last run in --out the committed record")
    ap.add_argument(
        "--no-cache",
        action="store_true",
        help=f"compile everything afresh (default: JAX's persistent compilation cache in {_common.cache_dir()}, so a "
        "second run loads the compiled programs; --record always compiles afresh)",
    )
    args = ap.parse_args(argv)
    if args.list:
        for name in EXPERIMENTS:
            print(f"{name:16} {describe(name)}")
        return {}
    out = pathlib.Path(args.out)
    if args.record_only:
        record(out)
        return {}
    if args.record and args.full:
        raise SystemExit("--record: the committed record is a quick run; drop --full")
    if args.full and args.smoke:
        raise SystemExit("--full and --smoke exclude each other")
    names = [n.strip() for n in args.only.split(",") if n.strip()] or EXPERIMENTS
    unknown = sorted(set(names) - set(EXPERIMENTS))
    if unknown:
        raise SystemExit(f"unknown experiment(s) {unknown}; choose from {', '.join(EXPERIMENTS)}")
    if args.record and args.smoke:
        raise SystemExit("--record: the committed record is a quick run; drop --smoke")
    jobs = default_jobs(args.device) if args.jobs is None else args.jobs
    if jobs < 1:
        raise SystemExit(f"--jobs must be >= 1, got {jobs}")
    out.mkdir(parents=True, exist_ok=True)
    started, git = datetime.datetime.now(datetime.timezone.utc), git_state()  # the tree as the run starts
    start = time.perf_counter()
    mode = "full" if args.full else "smoke" if args.smoke else "quick"
    tasks = [(name, flags_for(name, args, out), mode, args.seed) for name in names]
    if jobs == 1 or len(tasks) == 1:
        results = run_here(tasks, start)
    else:
        results = run_parallel(tasks, min(jobs, len(tasks)), out, start)
    total = time.perf_counter() - start
    report(results, out, total)
    s = summary(results, out, {**run_facts(argv, started, git=git), "jobs": min(jobs, len(tasks))}, total)
    (out / "summary.json").write_text(json.dumps(s, indent=1, ensure_ascii=False) + "\n")
    failed = [n for n, r in results.items() if "error" in r]
    print("\n" + terminal_summary(results, out, total))
    if failed:
        raise SystemExit(1)
    if args.record:
        record(out)
    return results


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    main()
