"""One experiment in a worker process of ``python -m experiments --jobs N`` (a module of its own: a spawned
worker finds functions by module, and a package's ``__main__`` is not one it re-imports)."""

from __future__ import annotations

import contextlib
import importlib
import json
import pathlib
import traceback


def failure(e: BaseException, mode: str, seed: int) -> dict:
    """The record of an experiment that raised: its error, mode and seed (the runner reports it and goes on)."""
    return {"error": f"{type(e).__name__}: {e}", "mode": mode, "seed": seed}


def work(task: tuple[str, list[str], str, int, str]) -> tuple[str, dict]:
    """Run experiment ``name`` with ``flags``, its output to the file ``log``; return its results.json."""
    name, flags, mode, seed, log = task
    with open(log, "w", encoding="utf-8") as f, contextlib.redirect_stdout(f), contextlib.redirect_stderr(f):
        try:
            importlib.import_module(f"experiments.{name}").main(flags)
            out = pathlib.Path(flags[flags.index("--out") + 1])
            return name, json.loads((out / "results.json").read_text())
        except Exception as e:  # reported like a failure in the runner's own process; the other workers go on
            traceback.print_exc()
            return name, failure(e, mode, seed)
