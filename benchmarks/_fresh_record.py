"""What the fresh-process benchmarks (``_bench_gridsearch``, ``_bench_coldstart``) share: their command line,
the record of a measurement with its run facts and the load around it, and writing it."""

from __future__ import annotations

import argparse
import datetime
import json
import os
import pathlib
import time
from collections.abc import Callable, Sequence
from typing import Any


def parse_args(prog: str, doc: str, record: str, repeats: int, argv: Sequence[str] | None) -> argparse.Namespace:
    """``--repeats`` (at least 1; default ``repeats``), ``--out`` (the record's path; default: print only) and
    ``--smoke``, with the command's name and the first line of its docstring."""
    ap = argparse.ArgumentParser(prog=prog, description=doc.strip().splitlines()[0])
    ap.add_argument("--repeats", type=int, default=repeats, help=f"rounds of every configuration (default {repeats})")
    ap.add_argument("--out", default=None, help=f"where to write the record (e.g. {record}); default: print only")
    ap.add_argument("--smoke", action="store_true", help="tiny settings, for the test of this script (numbers mean nothing)")
    args = ap.parse_args(argv)
    if args.repeats < 1:
        ap.error("--repeats must be at least 1")
    return args


def timed_record(tool: str, schema: int, mode: str, argv: Sequence[str], settings: dict, measure: Callable[[], dict]) -> dict:
    """``measure()``'s result as a record: schema, tool, mode, the run's facts (machine, versions, git commit
    as the run starts), ``settings``, the result's keys, its wall time and the load average at both ends.
    The timed processes run JAX on the CPU: the record's platform says so."""
    from experiments.__main__ import git_state, run_facts

    started, git = datetime.datetime.now(datetime.timezone.utc), git_state()
    load_start = os.getloadavg()
    t = time.perf_counter()
    result = measure()
    rec: dict[str, Any] = {
        "schema": schema,
        "tool": tool,
        "mode": mode,
        **run_facts(list(argv), started, prog=tool, git=git),
        "settings": settings,
        **result,
        "wall_s": time.perf_counter() - t,
    }
    rec["machine"] |= {"load_average_start": list(load_start), "load_average_end": list(os.getloadavg())}
    rec["machine"] |= {"platform": "cpu", "device_kind": "cpu", "devices": 1}  # the timed processes' JAX_PLATFORMS
    return rec


def write(rec: dict, out: str | None, echo: Callable[[str], Any]) -> None:
    """Write ``rec`` as JSON to ``out`` (folders made), if given."""
    if out:
        path = pathlib.Path(out)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(rec, indent=1) + "\n", encoding="utf-8")
        echo(f"wrote {path}")
