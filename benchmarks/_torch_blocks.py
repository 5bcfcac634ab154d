"""PyTorch's side of ``benchmarks/_bench_blocks.py``: the eager training step of the batch-norm + dropout
network, timed alone in a process of its own.

Run by the benchmark as ``python benchmarks/_torch_blocks.py 'CONFIG-JSON'``; prints one JSON object on
stdout. It never imports JAX (nor fnn): two thread pools in one process distort both (see
``benchmarks/_bench_worker.py``). PyTorch runs with ``torch.set_num_threads(threads)`` (the config's, 2).

Config: ``{"sizes": [784, 1024, 1024, 10], "batches": [128, 1024], "drop_rate": 0.5, "lr": 0.1,
"samples": n, "min_s": s, "seed": n, "threads": 2, "hidden_bias": false}``. The network is ``nn.Sequential`` of
``Linear → BatchNorm1d → ReLU → Dropout`` per hidden layer (``Linear(bias=hidden_bias)``, as fnn's MLP, which
drops the bias before batch norm) and a last ``Linear``, trained in train mode
(batch statistics, running averages updated, a fresh dropout mask each step) with ``CrossEntropyLoss`` and
``torch.optim.SGD``; initialised as fnn's ``init="auto"`` (He normal before a ReLU, Glorot uniform for the
last layer, zero biases; γ = 1, β = 0). Each sample repeats the step enough times to last ``min_s``.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import time
from collections.abc import Callable

# Run as a script, Python puts benchmarks/ first on sys.path, where our module names could shadow
# installed packages; this worker needs only installed ones.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]


def samples(f: Callable[[], object], n: int, min_s: float) -> list[float]:
    """Seconds per call of ``f``: ``n`` samples after two warm-up calls, each repeating ``f`` to last ``min_s``."""
    f()
    t = time.perf_counter()
    f()
    reps = max(1, int(min_s / max(time.perf_counter() - t, 1e-7)))
    out = []
    for _ in range(n):
        t = time.perf_counter()
        for _ in range(reps):
            f()
        out.append((time.perf_counter() - t) / reps)
    return out


def step(sizes: list[int], batch: int, drop_rate: float, lr: float, seed: int, hidden_bias: bool) -> Callable[[], object]:
    """One eager SGD step of the network (train mode) on fixed random data; ``hidden_bias``: whether the hidden
    ``Linear`` layers (each before a ``BatchNorm1d``) have a bias."""
    import torch

    torch.manual_seed(seed)
    layers: list = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        last = i == len(sizes) - 2
        lin = torch.nn.Linear(a, b, bias=last or hidden_bias)
        (torch.nn.init.xavier_uniform_ if last else torch.nn.init.kaiming_normal_)(lin.weight)
        if lin.bias is not None:
            torch.nn.init.zeros_(lin.bias)
        layers += [lin] if last else [lin, torch.nn.BatchNorm1d(b), torch.nn.ReLU(), torch.nn.Dropout(drop_rate)]
    model = torch.nn.Sequential(*layers).train()
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    loss_fn = torch.nn.CrossEntropyLoss()
    x = torch.randn(batch, sizes[0])
    y = torch.randint(0, sizes[-1], (batch,))

    def run() -> object:
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss.detach()

    return run


def main(argv: list[str]) -> None:
    cfg = json.loads(argv[1])
    import torch

    torch.set_num_threads(cfg["threads"])
    out: dict = {"version": torch.__version__, "threads": torch.get_num_threads(), "steps": []}
    for batch in cfg["batches"]:
        f = step(cfg["sizes"], batch, cfg["drop_rate"], cfg["lr"], cfg["seed"], cfg["hidden_bias"])
        s = samples(f, cfg["samples"], cfg["min_s"])
        out["steps"].append({"batch": batch, "samples_s": s, "last_loss": float(f())})  # type: ignore[arg-type]
    out["pid"] = os.getpid()
    out["jax_imported"] = "jax" in sys.modules  # False: PyTorch ran alone
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv)
