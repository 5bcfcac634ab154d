"""What the benchmark and its peers share: the timed problems and configurations, interleaved timing,
compiled step scans and the HLO instruction counts. Both ``benchmark.py`` and ``_bench_peers.py``
import this module (and neither imports the other).
"""

from __future__ import annotations

import collections
import itertools
import re
import time
from collections.abc import Callable, Sequence

import jax
import numpy as np
import optax

import fnn

STEP_CONFIGS = {  # name: (sizes, batch)
    "xor 2-8-2": ((2, 8, 2), 4),
    "mlp 64-128-128-10": ((64, 128, 128, 10), 128),
    "large 784-1024-1024-10": ((784, 1024, 1024, 10), 1024),
    "deep 10x64": ((64,) + (64,) * 10 + (10,), 256),
}


def interleaved(
    fns: dict[str, Callable[[], object]], pairs: int, min_s: float = 0.02, samples_out: dict | None = None
) -> dict[str, float]:
    """Median seconds per call of each zero-argument function, timed in alternation.

    Each sample repeats a function enough times to last ``min_s`` (found during warm-up), so
    timer resolution and dispatch jitter do not dominate small workloads. ``samples_out``, if
    given, receives every sample (for per-pair ratios).
    """
    reps = {}
    for name, f in fns.items():
        jax.block_until_ready(f())  # compile
        t = time.perf_counter()
        jax.block_until_ready(f())
        dt = max(time.perf_counter() - t, 1e-7)
        reps[name] = max(1, int(min_s / dt))
    samples: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(pairs):
        for name, f in fns.items():
            t = time.perf_counter()
            for _ in range(reps[name]):
                out = f()
            jax.block_until_ready(out)
            samples[name].append((time.perf_counter() - t) / reps[name])
    if samples_out is not None:
        samples_out.update(samples)
    return {k: float(np.median(v)) for k, v in samples.items()}


def _problem(sizes: tuple[int, ...], batch: int, key: jax.Array):
    net = fnn.MLP(sizes, hidden="relu", output="softmax")
    k1, k2 = jax.random.split(key)
    x = jax.random.normal(k1, (batch, sizes[0]))
    y = jax.random.randint(k2, (batch,), 0, sizes[-1])
    return net, net.init(key), x, y


def step_flops(sizes: Sequence[int], batch: int) -> dict[str, int]:
    """Floating-point operations (2 per multiply-add) of the matrix products one training step computes.

    Forward ``z⁽ˡ⁾ = h⁽ˡ⁻¹⁾ W⁽ˡ⁾ᵀ`` and ``∂E/∂W⁽ˡ⁾ = δ⁽ˡ⁾ᵀ h⁽ˡ⁻¹⁾`` for every layer, and ``δ⁽ˡ⁾ W⁽ˡ⁾`` (the
    error for the layer below) for every layer but the first: the step never computes ∂E/∂x. That
    is 3L − 1 products for L layers. Elementwise work (activations, biases, loss, update) is not counted.
    """
    mac = [i * o for i, o in itertools.pairwise(sizes)]
    f = {"forward": 2 * batch * sum(mac), "grad_W": 2 * batch * sum(mac), "delta": 2 * batch * sum(mac[1:])}
    return f | {"total": sum(f.values()), "products": 3 * len(mac) - 1}


_RUNS: dict = {}  # one jitted scan per (net, grad, steps): repeated sections reuse the compiled program


def compiled_steps(net: fnn.MLP, params, x, y, grad: str, steps: int, hlo_out: dict | None = None) -> Callable[[], object]:
    """``steps`` SGD steps as one compiled scan: the step's own cost, without Python dispatch.

    ``hlo_out``, if given, receives ``"text"``: the optimized HLO of exactly the program timed.
    """
    step = fnn.make_step(net, "cross_entropy", optax.sgd(1e-3), grad=grad)
    state = step.init(params)
    key = (net, grad, steps)
    if key not in _RUNS:
        _RUNS[key] = jax.jit(lambda s, x, y: jax.lax.scan(lambda c, _: (step.fn(c, x, y)[0], None), s, None, length=steps)[0])
    run = _RUNS[key]
    if hlo_out is not None:  # compiles once: the jit call below reuses this executable
        hlo_out["text"] = run.lower(state, x, y).compile().as_text()
    return lambda: run(state, x, y)


def hlo_counts(text: str) -> dict:
    """Instruction counts of an optimized HLO module (every computation, fused ones included).

    ``dots``: matrix products (``dot``, ``convolution``, and matmul library calls); ``fusions``:
    ``fusion`` instructions (each a kernel XLA generated from several ops); ``instructions``: all.
    """
    ops: collections.Counter = collections.Counter()
    for raw in text.splitlines():
        line = raw.strip()
        if " = " not in line or line.endswith("{"):  # not an instruction (module and computation headers)
            continue
        rhs = line.split(" = ", 1)[1]
        if rhs.startswith("("):  # a tuple type: skip to its closing parenthesis
            depth, end = 0, 0
            for end, ch in enumerate(rhs):  # noqa: B007 (the index after the loop is the point)
                depth += {"(": 1, ")": -1}.get(ch, 0)
                if depth == 0:
                    break
            rest = rhs[end + 1 :].strip()
        else:
            rest = rhs.split(" ", 1)[1] if " " in rhs else ""
        m = re.match(r"([a-z][a-z0-9-]*)\(", rest)
        if m:
            op = m.group(1)
            if op == "custom-call" and re.search(r'custom_call_target="[^"]*(matmul|gemm|dot)', rest, re.IGNORECASE):
                op = "custom-call matmul"
            ops[op] += 1
    dots = ops["dot"] + ops["convolution"] + ops["custom-call matmul"]
    return {"dots": dots, "fusions": ops["fusion"], "instructions": sum(ops.values()), "opcodes": dict(sorted(ops.items()))}


SMOKE_CONFIGS = {"xor 2-8-2": ((2, 8, 2), 4), "mlp 16-32-4": ((16, 32, 4), 32)}  # seconds, for the test suite
