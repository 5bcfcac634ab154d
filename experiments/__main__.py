"""Run every experiment (quick mode by default) and write results/REPORT.md.

Run: python -m experiments            (all, quick mode: minutes on two CPU cores)
     python -m experiments --full     (the full settings)
     python -m experiments --list     (what there is)
     python -m experiments --only perceptron,sweep --device gpu
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import pathlib
import time
import traceback

# One question of the tutorial per script, in the order a reader meets them.
EXPERIMENTS = [
    "perceptron",
    "linear_collapse",
    "nonlinear",
    "activations",
    "losses",
    "gradients",
    "digits",
    "mnist1d",
    "sweep",
    "capacity",
    "complexity",
]


def describe(name: str) -> str:
    doc = importlib.import_module(f"experiments.{name}").__doc__ or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def report(results: dict[str, dict], out: pathlib.Path, total_s: float) -> str:
    """REPORT.md: one table of every headline number, with links to the figures."""
    lines = [
        "# fnn experiments — report",
        "",
        f"Mode: {', '.join(sorted({r.get('mode', '?') for r in results.values()}))}; "
        f"platform: {', '.join(sorted({r.get('platform', '?') for r in results.values()}))}; "
        f"total wall time {total_s:.0f} s. Each row is measured by the script named on its left; "
        "`holds` says whether the tutorial's claim (or the published number) is reproduced.",
        "",
        "| experiment | claim | measured | reference | holds |",
        "|---|---|---|---|---|",
    ]
    for name, r in results.items():
        if "error" in r:
            lines.append(f"| {name} | **failed**: {r['error']} | | | NO |")
            continue
        for h in r.get("headline", []):
            ok = {True: "yes", False: "**no**", None: ""}[h.get("ok")]
            lines.append(f"| {name} | {h['claim']} | {h['text']} | {h.get('anchor', '')} | {ok} |")
    lines += ["", "## Figures", ""]
    for name, r in results.items():
        figs = r.get("figures", [])
        if figs:
            lines.append(f"- **{name}**: " + ", ".join(f"[{f}]({name}/{f})" for f in figs))
    text = "\n".join(lines) + "\n"
    (out / "REPORT.md").write_text(text)
    return text


def main(argv: list[str] | None = None) -> dict[str, dict]:
    ap = argparse.ArgumentParser(prog="python -m experiments", description="Run the fnn experiments and write results/REPORT.md.")
    ap.add_argument("--list", action="store_true", help="list the experiments and exit")
    ap.add_argument("--full", action="store_true", help="full settings instead of quick mode")
    ap.add_argument("--only", default="", help="comma-separated subset, e.g. perceptron,sweep")
    ap.add_argument("--out", default="results", help="results folder (default results/)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", choices=["cpu", "gpu"], default=None)
    args = ap.parse_args(argv)
    if args.list:
        for name in EXPERIMENTS:
            print(f"{name:16} {describe(name)}")
        return {}
    names = [n.strip() for n in args.only.split(",") if n.strip()] or EXPERIMENTS
    unknown = sorted(set(names) - set(EXPERIMENTS))
    if unknown:
        raise SystemExit(f"unknown experiment(s) {unknown}; choose from {', '.join(EXPERIMENTS)}")
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict] = {}
    start = time.perf_counter()
    for i, name in enumerate(names, 1):
        print(f"\n=== [{i}/{len(names)}] {name}: {describe(name)}  ({time.perf_counter() - start:.0f} s elapsed)", flush=True)
        flags = ["--out", str(out / name), "--seed", str(args.seed)] + ([] if args.full else ["--quick"])
        flags += ["--device", args.device] if args.device else []
        try:
            results[name] = importlib.import_module(f"experiments.{name}").main(flags)
        except Exception as e:  # one failing experiment must not hide the others' results
            traceback.print_exc()
            results[name] = {"error": f"{type(e).__name__}: {e}"}
    total = time.perf_counter() - start
    report(results, out, total)
    (out / "summary.json").write_text(
        json.dumps({n: {k: r.get(k) for k in ("headline", "wall_s", "mode", "error")} for n, r in results.items()}, indent=1)
    )
    failed = [n for n, r in results.items() if "error" in r]
    print(
        f"\nwrote {out / 'REPORT.md'} ({len(names)} experiments, {total:.0f} s)"
        + (f"; FAILED: {', '.join(failed)}" if failed else "")
    )
    if failed:
        raise SystemExit(1)
    return results


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    main()
