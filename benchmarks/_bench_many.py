"""Benchmark section 4: many networks in one compiled call (``fit_many``), 1 … 1024 networks, and
what two of its parts contribute, each measured against the alternative in the same run:

- the compiler options of the ``fit_many`` loop (``fnn._compile.MANY``: XLA:CPU's library fusions
  for dots only) against XLA's defaults, in alternating blocks (the loop is cached per plan, so each
  block compiles its variant afresh and is timed warm);
- the epoch's shuffle, ``fnn.shuffle.permutation`` against ``jax.random.permutation``, interleaved:
  256 networks' permutations of 300 examples (vmapped, as ``fit_many`` draws them) and one of 60,000.
"""

from __future__ import annotations

import time
from typing import Any

import jax
import numpy as np
import optax

import fnn
from benchmarks._bench_common import interleaved
from experiments import _common
from fnn import _compile
from fnn.train import _loop


def _problems(args, key) -> dict[str, tuple]:
    """name -> (net, data, batch size, epochs): the two problems of issue #14."""
    xs, ys = fnn.datasets.spirals(key, 300, classes=3)
    problems = {
        "xor 2-8-2, full batch": (
            fnn.MLP((2, 8, 2), hidden="tanh", output="softmax"),
            fnn.datasets.xor(),
            None,
            _common.size(args, 500, 500, 20),
        ),
        "spirals 2-64-3 tanh, batch 100": (
            fnn.MLP((2, 64, 3), hidden="tanh", output="softmax"),
            (xs, ys),
            100,
            _common.size(args, 50, 50, 2),
        ),
    }
    if args.smoke:
        problems.pop("spirals 2-64-3 tanh, batch 100")
    return problems


def _caller(problem: tuple, n: int, key) -> Any:
    net, data, bs, epochs = problem

    def call():
        return fnn.fit_many(
            net,
            data,
            loss="cross_entropy",
            optimizer=optax.sgd(0.1),
            epochs=epochs,
            batch_size=bs,
            key=key,
            num_networks=n,
            progress=False,
        )[0]

    return call


def _block_min(f, seconds: float) -> float:
    """Warm ``f`` (compiling it), then the fastest of its calls within ``seconds`` (at least 3)."""
    jax.block_until_ready(f())
    best, spent, k = np.inf, 0.0, 0
    while k < 3 or spent < seconds:
        t = time.perf_counter()
        jax.block_until_ready(f())
        dt = time.perf_counter() - t
        best, spent, k = min(best, dt), spent + dt, k + 1
    return float(best)


def options_ab(problem: tuple, n: int, key, rounds: int) -> dict:
    """fit_many of ``n`` networks with fnn's loop options vs XLA's defaults, alternating blocks."""
    f = _caller(problem, n, key)
    saved, times = _compile.MANY, {"fnn": [], "xla_default": []}
    try:
        for _ in range(rounds):
            for variant, samples in times.items():
                _compile.MANY = saved if variant == "fnn" else {}
                _loop.compiled_runner.cache_clear()
                samples.append(_block_min(f, 0.3))
    finally:
        _compile.MANY = saved
        _loop.compiled_runner.cache_clear()
    ratios = np.asarray(times["xla_default"]) / np.asarray(times["fnn"])
    return {
        "networks": n,
        "fnn_s": float(np.median(times["fnn"])),
        "xla_default_s": float(np.median(times["xla_default"])),
        "speedup": float(np.median(ratios)),
        "applied": _compile.many_options() is not None,
    }


def shuffle_ab(pairs: int) -> list[dict]:
    """One epoch's permutation(s): fnn.shuffle vs jax.random.permutation, jitted, interleaved."""
    rows = []
    for label, nets, n in (("256 networks x 300 examples", 256, 300), ("1 x 60,000 examples", 1, 60000)):
        keys = jax.random.split(jax.random.key(0), nets)
        fns = {}
        for name, perm in (("fnn", fnn.shuffle.permutation), ("jax", jax.random.permutation)):
            draw = jax.jit(jax.vmap(lambda k, p=perm, n=n: p(k, n)))
            fns[name] = lambda draw=draw, keys=keys: draw(keys)
        t = interleaved(fns, pairs, min_s=0.02)
        rows.append({"case": label, "fnn_s": t["fnn"], "jax_s": t["jax"], "speedup": t["jax"] / t["fnn"]})
    return rows


def run(args, key) -> dict:
    counts = _common.size(args, (1, 16, 64, 256, 1024), (1, 16, 64, 256), (1, 4))
    rows = []
    for name, problem in _problems(args, key).items():
        # each sample repeats a call for at least 50 ms: one network's call is a few ms, mostly fixed
        # host work whose jitter would otherwise decide the ratio
        t = interleaved({n: _caller(problem, n, key) for n in counts}, max(3, args.pairs // 3), min_s=0.05)
        for n in counts:
            rows.append({"problem": name, "networks": n, "s": t[n], "vs_one": t[n] / t[counts[0]], "epochs": problem[3]})
    ab_n, rounds = _common.size(args, 256, 256, 4), _common.size(args, 3, 2, 1)
    options = {name: options_ab(problem, ab_n, key, rounds) for name, problem in _problems(args, key).items()}
    shuffle = shuffle_ab(_common.size(args, 10, 5, 2))
    print("\n4. many networks in one compiled call (fit_many), warm")
    print(
        _common.table(
            [(r["problem"], r["networks"], f"{r['s'] * 1e3:.1f}", f"{r['vs_one']:.1f}x") for r in rows],
            ["problem", "networks", "ms", "time vs 1 network"],
        )
    )
    print(
        _common.table(
            [
                (p, o["networks"], f"{o['fnn_s'] * 1e3:.1f} ms", f"{o['xla_default_s'] * 1e3:.1f} ms", f"{o['speedup']:.2f}x")
                for p, o in options.items()
            ]
            + [
                (s["case"], "shuffle", f"{s['fnn_s'] * 1e6:.0f} µs", f"{s['jax_s'] * 1e6:.0f} µs", f"{s['speedup']:.2f}x")
                for s in shuffle
            ],
            ["part", "networks", "fnn", "alternative", "gain"],
        )
    )
    return {"rows": rows, "options": options, "shuffle": shuffle}


def headlines(many: dict, row: Any) -> list[dict]:
    """The README rows of this section (``row`` makes a README headline)."""
    out = []
    top = max(r["networks"] for r in many["rows"])
    for n in sorted({256, top}):
        at = {r["problem"]: r for r in many["rows"] if r["networks"] == n}
        if not at:
            continue
        worst = max(r["vs_one"] for r in at.values())
        out.append(
            row(
                f"fit_many: time of {n} networks / 1 network, one compiled call each, warm: "
                + "; ".join(f"{p} ({r['epochs']} epochs)" for p, r in at.items()),
                worst,
                ", ".join(f"{p.split(',')[0]} {r['vs_one']:.1f}x" for p, r in at.items()),
                "≤ 15x" if n == 256 else "",
                worst <= 15 if n == 256 else None,
            )
        )
    opts, shuffle = many["options"], many["shuffle"]
    out.append(
        row(
            "what two parts of fit_many gain, each against its alternative in the same run: the loop's compiler options "
            "(XLA:CPU library fusions for dots only) vs XLA's defaults, 256 networks; the epoch's shuffle "
            "(fnn.shuffle.permutation) vs jax.random.permutation",
            min(o["speedup"] for o in opts.values()),
            "; ".join(f"options, {p.split(',')[0]} {o['speedup']:.2f}x" for p, o in opts.items())
            + "; "
            + "; ".join(f"shuffle, {s['case']} {s['speedup']:.2f}x" for s in shuffle),
            "",
            None,
        )
    )
    return out
