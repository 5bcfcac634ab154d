"""Shared plumbing for the experiment scripts: arguments, device choice, results.json, tables.

Every experiment is ``python -m experiments.<name> [--seed N] [--out DIR] [--quick] [--device cpu|gpu]``
and calls :func:`parse_args` first and :func:`finish` last. ``--smoke`` shrinks everything to a
few seconds for the test suite (numbers are then only sanity checks, not results).
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import pathlib
import platform
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import fnn


def parse_args(
    doc: str,
    name: str,
    argv: Sequence[str] | None = None,
    extra: Callable[[argparse.ArgumentParser], None] | None = None,
    prog: str | None = None,
) -> argparse.Namespace:
    """Parse the common flags (and any ``extra`` ones), pick the device, create ``--out``. ``prog``: the
    command, if not ``python -m experiments.<name>`` (the benchmark and the GPU check live in ``benchmarks``)."""
    ap = argparse.ArgumentParser(prog=prog or f"python -m experiments.{name}", description=doc.strip().splitlines()[0])
    ap.add_argument("--seed", type=int, default=0, help="seed of every jax.random key (default 0)")
    ap.add_argument("--out", default=f"results/{name}", help=f"folder for results.json and figures (default results/{name})")
    ap.add_argument("--quick", action="store_true", help="smaller settings: minutes on two CPU cores")
    ap.add_argument("--smoke", action="store_true", help="tiny settings for the test suite (seconds; not results)")
    ap.add_argument("--device", choices=["cpu", "gpu"], default=None, help="default: whatever JAX finds")
    ap.add_argument(
        "--no-cache",
        action="store_true",
        help="compile everything afresh: no persistent compilation cache (it is on by default, except in smoke "
        "mode and for the benchmark, which times compilation)",
    )
    if extra is not None:
        extra(ap)
    args = ap.parse_args(argv)
    args.quick = args.quick or args.smoke
    args.name = name
    args.cache = compilation_cache(not (args.no_cache or args.smoke or name == "benchmark"))
    args.platform = select_device(args.device)
    args.out = pathlib.Path(args.out)
    args.out.mkdir(parents=True, exist_ok=True)
    args.started = time.perf_counter()
    return args


def cache_dir() -> pathlib.Path:
    """Where the command-line runs keep compiled programs: :func:`fnn.train.cache.default_cache_dir`
    (``$FNN_CACHE_DIR``, else the user's cache directory / ``fnn/jax-<version>``)."""
    return fnn.train.cache.default_cache_dir()


def compilation_cache(enabled: bool) -> str | None:
    """Turn on JAX's persistent compilation cache for this process (command-line runs only: importing
    fnn never does this) in :func:`cache_dir`: a second run loads the compiled programs instead of
    compiling them again. Returns the directory, or None when off (nothing is changed then)."""
    if not enabled:  # and kept off: fnn.sklearn's estimators would otherwise turn it on at their first fit
        os.environ[fnn.train.cache.ENV_SKLEARN] = "0"
        return None
    return fnn.compilation_cache(cache_dir())


def compile_note(args: argparse.Namespace) -> str:
    """For a claim that times compilation: says when a run may have loaded programs from the cache."""
    return "" if args.cache is None else " (persistent compilation cache on: a compilation may be a load from it)"


def select_device(device: str | None) -> str:
    """Make ``device`` (cpu / gpu) JAX's default; None keeps JAX's own choice. Returns the platform."""
    if device is None:
        return jax.devices()[0].platform
    try:
        devices = jax.devices(device)
    except RuntimeError as e:
        raise SystemExit(
            f"--device {device}: JAX finds no such device here ({e}); install jax with CUDA: pip install -e '.[cuda]'"
        ) from None
    jax.config.update("jax_default_device", devices[0])
    return devices[0].platform


def size(args: argparse.Namespace, full: Any, quick: Any, smoke: Any) -> Any:
    """Pick a setting by mode."""
    return smoke if args.smoke else quick if args.quick else full


def stacked_init(net: fnn.MLP, key: jax.Array, n: int) -> Any:
    """``n`` initialisations of ``net`` stacked on a leading network axis, for ``fnn.fit_many``:
    ``net.init(k)`` for each ``k`` of ``split(key, n)`` (the values of ``jax.vmap(net.init)``, bitwise).

    One program per (sizes, initialisers, n), shared by networks that differ only in activations,
    drawing the networks in a loop: vmapping the draws makes a program that takes about twice as
    long to compile (1.35 s vs 0.74 s for 64-128-64-10).
    """
    return net.init_stacked(key, n)


def stacked_accuracy(net: fnn.MLP, params: Any, x: Any, y: Any) -> np.ndarray:
    """Accuracy of each of N stacked networks, shape (N,): argmax over the outputs, or one sigmoid
    output thresholded at ½ (labels as class indices or 0/1)."""
    out = np.asarray(jax.vmap(net.apply, in_axes=(0, None))(params, x))  # (N, B, n_out)
    pred = (out[..., 0] > 0.5) if out.shape[-1] == 1 else out.argmax(-1)
    return (pred == np.asarray(y).reshape(pred.shape[1:])[None]).mean(axis=1)


def fit_lr_grid(
    net: fnn.MLP, train: tuple, lrs: Any, seeds: int, key: jax.Array, params0: Any = None, **fit_kwargs: Any
) -> tuple:
    """Train ``len(lrs) × seeds`` networks in one ``fnn.fit_many`` call; network i trains at
    ``lrs[i // seeds]`` (the optimizer must come from ``optax.inject_hyperparams``).

    ``params0`` defaults to ``stacked_init(net, fold_in(key, 0), N)``; shuffling uses
    ``fold_in(key, 1)``. Returns ``(params0, params, history)``.
    """
    if params0 is None:
        params0 = stacked_init(net, jax.random.fold_in(key, 0), len(lrs) * seeds)
    rates = jnp.asarray(np.repeat(lrs, seeds), jnp.float32)
    params, hist = fnn.fit_many(
        net,
        train,
        key=jax.random.fold_in(key, 1),
        params=params0,
        hyperparams={"learning_rate": rates},
        progress=False,
        **fit_kwargs,
    )
    return params0, params, hist


def mask_diverged(diverged: np.ndarray, a: Any) -> np.ndarray:
    """``a`` with NaN for the networks that diverged: ``diverged`` (…,) against ``a`` (…, ...)."""
    a = np.asarray(a, float)
    return np.where(np.reshape(diverged, diverged.shape + (1,) * (a.ndim - diverged.ndim)), np.nan, a)


def nanmean(a: np.ndarray, axis: int | None = None) -> np.ndarray:
    """``np.nanmean`` without the warning for all-NaN slices (they stay NaN, e.g. every seed diverged)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(a, axis=axis)


@functools.cache
def _evaluate_stacked(net: fnn.MLP, loss: str) -> Callable:
    return jax.jit(jax.vmap(lambda p, x, y: fnn.evaluate(net, p, x, y, loss=loss), in_axes=(0, None, None)))


def evaluate_stacked(net: fnn.MLP, loss: str, params: Any, x: Any, y: Any) -> dict[str, np.ndarray]:
    """``fnn.evaluate`` of each of N stacked networks (``fit_many``'s params): ``loss`` and ``accuracy``, (N,).

    One compiled call per (net, loss, shapes), cached: e.g. the test set after training.
    """
    return {k: np.asarray(v) for k, v in _evaluate_stacked(net, loss)(params, x, y).items()}


def carve_validation(key: jax.Array, x: Any, y: Any, fraction: float = 0.2) -> tuple:
    """Hold out a stratified ``fraction`` of the TRAINING rows as a validation split.

    Every choice an experiment makes (a learning rate, a size, an epoch) is made on this split;
    the test split is only ever read for the chosen setting's reported number.

    Returns:
      ``(x_fit, y_fit, x_val, y_val)``.
    """
    return fnn.datasets.train_test_split(key, x, y, fraction, stratify=True)


def choose(score: Sequence[Any], *, by: str, among: Sequence[int] | None = None, **report: Sequence[Any]) -> tuple[int, dict]:
    """The setting with the highest validation ``score``, and the record of that choice for results.json.

    ``score[i]`` is a number or a tuple (compared lexicographically, e.g. ``(-epochs, accuracy)``);
    NaN entries (every seed diverged) rank last. ``among`` restricts the candidates (e.g. the
    rates at which no seed diverged; all settings when it leaves none). Ties go to the first.
    ``report`` names per-setting sequences (the setting itself, its validation and test numbers);
    the record holds ``by``, ``index`` and each of them at the chosen index.

    Example:
      >>> choose([0.8, 0.9, 0.9], by="validation accuracy", lr=[0.1, 0.3, 1.0], test_acc=[0.7, 0.85, 0.95])
      (1, {'by': 'validation accuracy', 'index': 1, 'lr': 0.3, 'test_acc': 0.85})
    """

    def rank(i: int) -> tuple:
        s = score[i] if isinstance(score[i], tuple) else (score[i],)
        return tuple(-math.inf if not math.isfinite(float(v)) else float(v) for v in s)

    candidates = [int(i) for i in among] if among is not None and len(among) else list(range(len(score)))
    best = max(candidates, key=rank)  # max keeps the first of equal ranks
    return best, {"by": by, "index": best, **{k: _scalar(v[best]) for k, v in report.items()}}


def _scalar(x: Any) -> Any:
    """A numpy scalar as the Python number it holds (inf and NaN stay numbers until results.json)."""
    return x.item() if isinstance(x, np.generic) else x


BASES = ("tested", "algebra")


def headline(
    claim: str,
    value: float,
    *,
    fmt: str = "{:.3f}",
    anchor: str = "",
    ok: bool | None = None,
    basis: str = "tested",
    readme: bool = False,
) -> dict:
    """One number of the report: the claim it tests, the measured value, a reference, and a verdict.

    ``basis`` says what the verdict rests on: ``"tested"`` (the measurement could have come out
    either way) or ``"algebra"`` (the verdict is guaranteed by algebra or by construction, e.g. one
    neuron cannot exceed 3/4 on XOR; the number only illustrates it). ``readme=True`` marks the rows
    the README's generated experiment table shows (every row is in results/REPORT.md).
    """
    if basis not in BASES:
        raise ValueError(f"`basis` must be one of {BASES}, got {basis!r}")
    return {
        "claim": claim,
        "value": float(value),
        "text": fmt.format(value),
        "anchor": anchor,
        "ok": None if ok is None else bool(ok),  # numpy bools are not JSON
        "basis": basis,
        "readme": bool(readme),
    }


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    """A fixed-width text table."""
    cells = [[str(h) for h in headers]] + [[f"{c:.4g}" if isinstance(c, float) else str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _plain(x: Any) -> Any:  # noqa: PLR0911 (one return per type)
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, (np.ndarray, jax.Array)):
        return _plain(np.asarray(x).tolist())
    if isinstance(x, (np.floating, float)):
        return None if not math.isfinite(float(x)) else float(x)
    if isinstance(x, (np.integer, np.bool_)):
        return x.item()
    if isinstance(x, pathlib.Path):
        return str(x)
    return x


def finish(args: argparse.Namespace, results: dict, headlines: list[dict], figures: Sequence[pathlib.Path | str]) -> dict:
    """Write ``results.json`` (numbers, headlines, figure paths, run facts), print the headline table."""
    record = {
        "experiment": args.name,
        "seed": args.seed,
        "mode": "smoke" if args.smoke else "quick" if args.quick else "full",
        "platform": args.platform,
        "device": str(jax.devices()[0].device_kind),
        "jax": jax.__version__,
        "fnn": fnn.__version__,
        "python": platform.python_version(),
        "wall_s": round(time.perf_counter() - args.started, 2),
        "compilation_cache": args.cache,
        "headline": headlines,
        "figures": [pathlib.Path(f).name for f in figures],
        **results,
    }
    (args.out / "results.json").write_text(json.dumps(_plain(record), indent=1))
    rows = [(h["claim"], h["text"], h["anchor"], {True: "yes", False: "NO", None: ""}[h["ok"]]) for h in headlines]
    print(f"\n{args.name} ({record['mode']}, {args.platform}, {record['wall_s']} s) -> {args.out / 'results.json'}")
    print(table(rows, ["claim", "measured", "reference", "holds"]))
    return record
