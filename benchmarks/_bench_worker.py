"""The benchmark's peers, each timed alone in a process of its own: PyTorch eager steps, scikit-learn on digits.

Run by ``benchmarks/_bench_peers.py`` as ``python benchmarks/_bench_worker.py MODE 'CONFIG-JSON'``; prints
one JSON object on stdout. It never imports JAX (nor fnn, which imports JAX): two thread pools in one
process distort both, e.g. a PyTorch step timed right after JAX calls in the same process ran ~5x slower
than alone, because JAX's worker threads were still spinning on the same two cores. The one exception
is ``torch_beside_fnn``, a diagnostic that reproduces that old in-process arrangement on purpose, to
record how large the distortion is; its numbers are never a comparison.

Modes:
  torch             config {"steps": [[name, sizes, batch], ...], "xor_steps": n, "samples": n, "min_s": s,
                    "xor_samples": n, "seed": n}: seconds per eager SGD step of each network, and of
                    ``xor_steps`` full-batch XOR steps.
  torch_beside_fnn  config {"sizes", "batch", "samples", "min_s", "seed"}: the same PyTorch step timed
                    alternately with an fnn jitted step of the same shapes in this one process.
  sklearn           config {"npz": path with x_tr, y_tr, x_te, y_te, "repeats": n, "max_iter": n, "seed": n}:
                    MLPClassifier(64 ReLU, adam 1e-3, batch 200) fit times and its test accuracy.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import time
from collections.abc import Callable

# Run as a script, Python puts experiments/ first on sys.path, where our module names could shadow
# installed packages; the worker needs only installed ones.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]


def _samples(f: Callable[[], object], n: int, min_s: float) -> list[float]:
    """Seconds per call of ``f``: ``n`` samples after a warm-up, each repeating ``f`` to last ``min_s``."""
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


def torch_step(sizes: list[int], batch: int, hidden: str, lr: float, seed: int) -> Callable[[], object]:
    """One eager SGD step of a PyTorch MLP with fnn's initialisation scheme, on fixed random data."""
    import torch

    torch.manual_seed(seed)
    layers: list = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        lin = torch.nn.Linear(a, b)
        last = i == len(sizes) - 2
        # fnn's init="auto": He normal before ReLU, Glorot uniform otherwise; zero biases
        (torch.nn.init.xavier_uniform_ if last or hidden != "relu" else torch.nn.init.kaiming_normal_)(lin.weight)
        torch.nn.init.zeros_(lin.bias)
        layers += [lin] if last else [lin, torch.nn.ReLU() if hidden == "relu" else torch.nn.Tanh()]
    model = torch.nn.Sequential(*layers)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    loss_fn = torch.nn.CrossEntropyLoss()
    x = torch.randn(batch, sizes[0])
    y = torch.randint(0, sizes[-1], (batch,))

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss.detach()

    return step


def run_torch(cfg: dict) -> dict:
    import torch

    steps = []
    for name, sizes, batch in cfg["steps"]:
        f = torch_step(sizes, batch, "relu", 1e-3, cfg["seed"])
        steps.append({"config": name, "samples_s": _samples(f, cfg["samples"], cfg["min_s"])})
    xor = torch_step([2, 8, 2], 4, "tanh", 0.5, cfg["seed"])
    n = cfg["xor_steps"]

    def xor_training():
        for _ in range(n):
            loss = xor()
        return loss

    xor_s = _samples(xor_training, cfg["xor_samples"], 0.0)
    return {"version": torch.__version__, "threads": torch.get_num_threads(), "steps": steps, "xor_samples_s": xor_s}


def run_torch_beside_fnn(cfg: dict) -> dict:
    """The distortion this file exists to avoid: PyTorch steps alternating with fnn steps in one process."""
    import jax
    import optax
    import torch

    import fnn

    sizes, batch = cfg["sizes"], cfg["batch"]
    f = torch_step(sizes, batch, "relu", 1e-3, cfg["seed"])
    net = fnn.MLP(tuple(sizes), hidden="relu", output="softmax")
    key = jax.random.key(cfg["seed"])
    x = jax.random.normal(key, (batch, sizes[0]))
    y = jax.random.randint(key, (batch,), 0, sizes[-1])
    step = fnn.make_step(net, "cross_entropy", optax.sgd(1e-3))
    state = [step.init(net.init(key))]

    def fnn_step():
        state[0], m = step(state[0], x, y)
        return m["loss"]

    jax.block_until_ready(fnn_step())
    torch_s = []
    for _ in range(cfg["samples"]):  # the old arrangement: an fnn sample, then a PyTorch sample, ...
        _samples(lambda: jax.block_until_ready(fnn_step()), 1, cfg["min_s"])
        torch_s += _samples(f, 1, cfg["min_s"])
    return {"version": torch.__version__, "threads": torch.get_num_threads(), "torch_samples_s": torch_s}


def run_sklearn(cfg: dict) -> dict:
    import warnings

    import numpy as np

    d = np.load(cfg["npz"])
    import sklearn
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier
    from threadpoolctl import threadpool_info

    times, accs, iters = [], [], []
    for _ in range(cfg["repeats"]):
        clf = MLPClassifier(
            hidden_layer_sizes=(64,), learning_rate_init=1e-3, batch_size=200, max_iter=cfg["max_iter"], random_state=cfg["seed"]
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            t = time.perf_counter()
            clf.fit(d["x_tr"], d["y_tr"])
            times.append(time.perf_counter() - t)
        accs.append(float(clf.score(d["x_te"], d["y_te"])))
        iters.append(int(clf.n_iter_))
    blas = [p for p in threadpool_info() if p.get("user_api") == "blas"]
    return {
        "version": sklearn.__version__,
        "blas_threads": max((p["num_threads"] for p in blas), default=None),
        "fit_s": times,
        "test_accuracy": accs[-1],
        "epochs": iters[-1],
        "epochs_all": iters,
    }


MODES = {"torch": run_torch, "torch_beside_fnn": run_torch_beside_fnn, "sklearn": run_sklearn}


def main(argv: list[str]) -> None:
    mode, cfg = argv[1], json.loads(argv[2])
    out = MODES[mode](cfg)
    out["pid"] = os.getpid()
    out["jax_imported"] = "jax" in sys.modules  # False for the peers: they ran alone
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv)
