"""Peers for the benchmark: PyTorch eager on the same shapes, scikit-learn's MLPClassifier on digits.

Both are optional: when a peer is not importable its section is skipped with a note. PyTorch is
not a dependency of fnn (``pip install torch`` pulls a multi-GB CUDA build on most machines); on
the CPU a ``torch==2.13.0`` CPU wheel was used for the committed numbers.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable

import jax
import numpy as np
import optax

import fnn
from experiments import _common


def _torch_step(sizes, batch, hidden, lr, seed):
    import torch

    torch.manual_seed(seed)
    layers = []
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
        return loss

    return step, x, y


def run(args, key: jax.Array, interleaved: Callable) -> dict:
    out: dict = {}
    try:
        import torch
    except ImportError:
        out["torch"] = "skipped: torch is not importable"
        print("\n5a. PyTorch eager: skipped (torch not importable)")
    else:
        out["torch"] = _vs_torch(args, key, interleaved, torch)
    try:
        import sklearn  # noqa: F401
    except ImportError:
        out["sklearn"] = "skipped: scikit-learn is not importable"
    else:
        out["sklearn"] = _vs_sklearn(args, key)
    return out


def _vs_torch(args, key, interleaved, torch) -> dict:
    from experiments.benchmark import STEP_CONFIGS, _problem, compiled_steps

    rows = []
    for name in ("mlp 64-128-128-10", "large 784-1024-1024-10"):
        sizes, batch = STEP_CONFIGS[name]
        net, params, x, y = _problem(sizes, batch, key)
        tstep, _, _ = _torch_step(sizes, batch, "relu", 1e-3, args.seed)
        step = fnn.make_step(net, "cross_entropy", optax.sgd(1e-3))
        state = [step.init(params)]

        def fnn_call(step=step, state=state, x=x, y=y):
            state[0], m = step(state[0], x, y)
            return m["loss"]

        scan = compiled_steps(net, params, x, y, "manual", 20)
        t = interleaved({"torch": lambda f=tstep: f().detach(), "fnn_call": fnn_call, "fnn_scan20": scan}, args.pairs)
        rows.append(
            {
                "config": name,
                "torch_us": t["torch"] * 1e6,
                "fnn_call_us": t["fnn_call"] * 1e6,
                "fnn_scan_us": t["fnn_scan20"] / 20 * 1e6,
                "speedup_call": t["torch"] / t["fnn_call"],
                "speedup_scan": t["torch"] / (t["fnn_scan20"] / 20),
            }
        )
    # XOR full training: 2,000 full-batch steps
    x, y = fnn.datasets.xor()
    net = fnn.MLP((2, 8, 2), hidden="tanh", output="softmax")
    scan = compiled_steps(net, net.init(key), x, y, "manual", 2000)
    tstep, _tx, _ = _torch_step((2, 8, 2), 4, "tanh", 0.5, args.seed)

    def torch_xor():
        for _ in range(2000):
            loss = tstep()
        return loss.detach()

    t = interleaved({"torch": torch_xor, "fnn": scan}, max(3, args.pairs // 3), min_s=0.0)
    xor = {"torch_s": t["torch"], "fnn_s": t["fnn"], "speedup": t["torch"] / t["fnn"]}
    print(f"\n5a. PyTorch {torch.__version__} eager ({torch.get_num_threads()} threads) vs fnn, SGD float32, same init scheme")
    print(
        _common.table(
            [
                (
                    r["config"],
                    f"{r['torch_us']:.1f}",
                    f"{r['fnn_call_us']:.1f}",
                    f"{r['fnn_scan_us']:.1f}",
                    f"{r['speedup_call']:.2f}x",
                    f"{r['speedup_scan']:.2f}x",
                )
                for r in rows
            ]
            + [
                (
                    "XOR training, 2,000 steps",
                    f"{xor['torch_s'] * 1e6:.0f}",
                    "",
                    f"{xor['fnn_s'] * 1e6:.0f}",
                    "",
                    f"{xor['speedup']:.1f}x",
                )
            ],
            ["config", "torch µs", "fnn µs/call", "fnn µs (in scan)", "speed-up (call)", "speed-up (scan)"],
        )
    )
    return {"version": torch.__version__, "threads": torch.get_num_threads(), "steps": rows, "xor": xor}


def _vs_sklearn(args, key) -> dict:
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    x, y = fnn.datasets.digits()
    x_tr, y_tr, x_te, y_te = fnn.datasets.train_test_split(key, x, y, test_fraction=0.2, stratify=True)
    x_tr, x_te, _, _ = fnn.datasets.standardize(x_tr, x_te)
    a_tr, a_te, b_tr, b_te = (np.asarray(v) for v in (x_tr, x_te, y_tr, y_te))
    clf = MLPClassifier(hidden_layer_sizes=(64,), learning_rate_init=1e-3, batch_size=200, max_iter=200, random_state=args.seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        t = time.perf_counter()
        clf.fit(a_tr, b_tr)
        sk_s = time.perf_counter() - t
    sk_acc = float(clf.score(a_te, b_te))
    net = fnn.MLP((64, 64, 10), hidden="relu", output="softmax")
    opt = optax.adam(1e-3)
    kw = {"loss": "cross_entropy", "optimizer": opt, "batch_size": 200, "key": key, "validation": (x_te, y_te), "progress": False}
    t = time.perf_counter()
    _, h = fnn.fit(net, net.init(key), (x_tr, y_tr), epochs=clf.n_iter_, **kw)
    first_s = time.perf_counter() - t
    reached = np.nonzero(h["val_accuracy"] >= sk_acc)[0]
    epochs = int(reached[0]) + 1 if reached.size else clf.n_iter_
    t = time.perf_counter()
    fnn.fit(net, net.init(key), (x_tr, y_tr), epochs=epochs, **kw)  # compiles again if the epoch count changed
    again_s = time.perf_counter() - t
    t = time.perf_counter()
    _, h3 = fnn.fit(net, net.init(key), (x_tr, y_tr), epochs=epochs, **kw)  # warm
    warm_s = time.perf_counter() - t
    r = {
        "sklearn_acc": sk_acc,
        "sklearn_s": sk_s,
        "sklearn_epochs": int(clf.n_iter_),
        "fnn_epochs_to_match": epochs,
        "fnn_reached": bool(reached.size),
        "fnn_acc": float(h3["val_accuracy"][-1]),
        "fnn_first_call_s": first_s,
        "fnn_second_call_s": again_s,
        "fnn_warm_s": warm_s,
        "warm_fraction": warm_s / sk_s,
        "with_compile_fraction": first_s / sk_s,
    }
    print("\n5b. digits: scikit-learn MLPClassifier vs fnn.fit reaching the same test accuracy")
    print(
        _common.table(
            [
                ("scikit-learn (64 ReLU, adam)", f"{sk_acc:.3f}", r["sklearn_epochs"], f"{sk_s:.2f}", ""),
                (
                    "fnn, first call (compile + run)",
                    f"{float(h['val_accuracy'][-1]):.3f}",
                    r["sklearn_epochs"],
                    f"{first_s:.2f}",
                    f"{first_s / sk_s:.2f}",
                ),
                ("fnn, warm", f"{r['fnn_acc']:.3f}", epochs, f"{warm_s:.2f}", f"{warm_s / sk_s:.2f}"),
            ],
            ["model", "test acc", "epochs", "wall s", "fraction of sklearn"],
        )
    )
    return r


def headlines(peers: dict) -> list[dict]:
    out = []
    if isinstance(peers.get("torch"), dict):
        for r in peers["torch"]["steps"]:
            target = 1.3 if r["config"].startswith("mlp") else 1.0
            out.append(
                _common.headline(
                    f"speed vs PyTorch eager, {r['config']} (jitted call)",
                    r["speedup_call"],
                    fmt="{:.2f}x",
                    anchor=f"≥ {target}x",
                    ok=r["speedup_call"] >= target,
                )
            )
        s = peers["torch"]["xor"]["speedup"]
        out.append(_common.headline("XOR training speed vs PyTorch eager", s, fmt="{:.0f}x", anchor="≥ 50x", ok=s >= 50))
    if isinstance(peers.get("sklearn"), dict):
        f = peers["sklearn"]["warm_fraction"]
        out.append(
            _common.headline(
                "digits: fnn (warm) time to sklearn's accuracy / sklearn time",
                f,
                fmt="{:.2f}",
                anchor="≤ 0.20",
                ok=f <= 0.2 and peers["sklearn"]["fnn_reached"],
            )
        )
    return out
