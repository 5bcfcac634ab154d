"""Benchmark section 8: what writing checkpoints costs a run (issue 17, ``fit(..., checkpoint=fnn.Checkpointing(dir))``).

The same ``fit`` three ways, interleaved call by call in one run (medians of per-pair ratios):

- ``plain``: no checkpoints (the program and host work every ``fit`` had before);
- ``default``: ``checkpoint=`` at the default interval (a checkpoint every 60 seconds, and one
  when the run ends; while it writes checkpoints the loop returns to the host about once a second,
  so that Ctrl-C is answered);
- ``every 1 s``: a checkpoint every second, 60 times the default rate: the cost of the saves themselves.

Beside them, the time one save of the problem's state takes (written as ``fit`` writes it: ``np.savez``,
``fsync``, rename; median of 7), and the file's size.

Each checkpointed call writes into a fresh directory (made and filled inside the timed call, removed
after the measurement). Problems: a minibatch run of a few seconds (``mlp``, the kind of run one would
checkpoint) and XOR, a run of a fraction of a second whose epochs take microseconds (the worst case:
fixed costs against almost no work).
"""

from __future__ import annotations

import itertools
import pathlib
import shutil
import tempfile
import time
from typing import Any

import jax
import numpy as np
import optax

import fnn
from benchmarks._bench_common import interleaved
from experiments import _common


def _problems(args, key) -> dict[str, dict]:
    k1, k2 = jax.random.split(key)
    n, d = _common.size(args, 16384, 16384, 512), _common.size(args, 64, 64, 16)
    x = jax.random.normal(k1, (n, d))
    y = jax.random.randint(k2, (n,), 0, 10)
    mlp = fnn.MLP((d, 128, 128, 10) if not args.smoke else (d, 32, 10), hidden="relu", output="softmax")
    xor = fnn.MLP((2, 8, 2), hidden="tanh", output="softmax")
    return {
        "mlp": {
            "label": f"{'-'.join(map(str, mlp.sizes))} ReLU, adam, {n:,} examples, batch 128",
            "net": mlp,
            "data": (x, y),
            "kw": {"optimizer": optax.adam(1e-3), "batch_size": 128, "key": key},
            "epochs": _common.size(args, 100, 40, 3),
        },
        "xor": {
            "label": "XOR 2-8-2, full batch, sgd",
            "net": xor,
            "data": fnn.datasets.xor(),
            "kw": {"optimizer": optax.sgd(0.5)},
            "epochs": _common.size(args, 20000, 20000, 500),
        },
    }


def _caller(problem: dict, root: pathlib.Path | None, **ckpt: Any):
    net, params = problem["net"], problem["net"].init(jax.random.key(0))
    counter = itertools.count()

    def call():
        extra = {}
        if root is not None:  # a fresh directory per call: a directory with checkpoints would be resumed
            extra["checkpoint"] = fnn.Checkpointing(root / f"run{next(counter)}", **ckpt)
        p, _ = fnn.fit(
            net, params, problem["data"], loss="cross_entropy", epochs=problem["epochs"], progress=False, **problem["kw"], **extra
        )
        return p

    return call


def _save_time(net: fnn.MLP, path: pathlib.Path, target: pathlib.Path, repeats: int = 7) -> float:
    """Median seconds to write one checkpoint like ``path`` (what fit writes: np.savez, fsync, rename)."""
    header, arrays = fnn.checkpoint.read_state(path)
    run = dict(header["run"], leaf_info={leaf["name"]: {} for leaf in header["leaves"]})
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fnn.checkpoint.save_state(target, net, arrays, run, **header["metadata"])
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def run(args, key) -> dict:
    pairs = _common.size(args, 4, 3, 1)
    rows = []
    root = pathlib.Path(tempfile.mkdtemp(prefix="fnn-bench-resume-"))
    try:
        for name, problem in _problems(args, key).items():
            fns = {
                "plain": _caller(problem, None),
                "default": _caller(problem, root / "default", keep=1000),
                "every 1 s": _caller(problem, root / "every", every_s=1.0, keep=1000),
            }
            samples: dict = {}
            t = interleaved(fns, pairs, min_s=0.0, samples_out=samples)
            plain = np.asarray(samples["plain"])
            ratio = {k: float(np.median(np.asarray(samples[k]) / plain)) for k in ("default", "every 1 s")}
            # saves a call wrote (every file is kept; the warm-up calls count too: they ran the same epochs)
            saves = {
                k: len(list((root / d).glob("run*/state-*.npz"))) / len(list((root / d).iterdir()))
                for k, d in (("default", "default"), ("every 1 s", "every"))
            }
            newest = max(root.glob("every/run*/state-*.npz"), key=lambda f: f.stat().st_mtime)
            size_mb = newest.stat().st_size / 2**20
            per_save = _save_time(problem["net"], newest, root / "timing.npz")
            rows.append(
                {
                    "problem": name,
                    "label": problem["label"],
                    "epochs": problem["epochs"],
                    "plain_s": t["plain"],
                    "default_s": t["default"],
                    "every_1s_s": t["every 1 s"],
                    "default_ratio": ratio["default"],
                    "every_1s_ratio": ratio["every 1 s"],
                    "saves_per_call": saves,
                    "file_mb": size_mb,
                    "per_save_ms": per_save * 1e3,
                    "pairs": pairs,
                }
            )
            shutil.rmtree(root)
            root.mkdir()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print("\n8. checkpoints as fit goes (checkpoint=): the same fit without, at the default interval, and every second")
    print(
        _common.table(
            [
                (
                    r["label"],
                    r["epochs"],
                    f"{r['plain_s']:.3f}",
                    f"{r['default_s']:.3f} ({r['default_ratio']:.3f}x)",
                    f"{r['every_1s_s']:.3f} ({r['every_1s_ratio']:.3f}x)",
                    f"{r['saves_per_call']['every 1 s']:.1f}",
                    f"{r['per_save_ms']:.1f}",
                    f"{r['file_mb']:.2f}",
                )
                for r in rows
            ],
            [
                "problem",
                "epochs",
                "plain s",
                "default interval s (ratio)",
                "every 1 s (ratio)",
                "saves/call",
                "ms/save",
                "MB/file",
            ],
        )
    )
    return {"rows": rows}


TARGET = 1.05  # the target: at most 5% slower at the default interval


def headlines(res: dict, row: Any) -> list[dict]:
    """The README rows of this section (``row`` makes a README headline)."""
    out = []
    for r in res["rows"]:
        realistic = r["problem"] == "mlp"
        out.append(
            row(
                "fit with checkpoints at the default interval (checkpoint=, a checkpoint every 60 s and at the end) / "
                f"the same fit without: {r['label']}, {r['epochs']:,} epochs ({r['plain_s']:.2f} s a call); "
                f"median of per-pair ratios of {r['pairs']} interleaved pairs",
                r["default_ratio"],
                f"{r['default_ratio']:.3f}; with a checkpoint every second (60x the default rate, "
                f"{r['saves_per_call']['every 1 s']:.1f} a call): {r['every_1s_ratio']:.3f}"
                + f"; one save of its {r['file_mb']:.2f} MB state takes {r['per_save_ms']:.1f} ms",
                "≤ 1.05" if realistic else "",
                r["default_ratio"] <= TARGET if realistic else None,
            )
        )
    return out
