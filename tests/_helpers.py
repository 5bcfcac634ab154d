"""Helpers shared by the tests (imported as ``from _helpers import ...``)."""

import json
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np


def tree_rel_err(a, b) -> float:
    """Largest leaf-wise max|a−b| / max(‖a‖∞, ‖b‖∞, tiny) over two pytrees of the same structure."""
    la, ta = jax.tree_util.tree_flatten(a)
    lb, tb = jax.tree_util.tree_flatten(b)
    assert ta == tb, f"tree structures differ:\n{ta}\n{tb}"
    worst = 0.0
    for u, v in zip(la, lb):
        assert u.shape == v.shape and u.dtype == v.dtype, (u.shape, v.shape, u.dtype, v.dtype)
        u, v = np.asarray(u, np.float64), np.asarray(v, np.float64)  # noqa: PLW2901
        denom = max(np.max(np.abs(u), initial=0.0), np.max(np.abs(v), initial=0.0), 1e-300)
        worst = max(worst, float(np.max(np.abs(u - v), initial=0.0) / denom))
    return worst


def make_labels(loss: str, output: str, n_out: int, batch, key):
    """Targets that fit (loss, output): class indices, one-hot, 0/1 or real targets."""
    shape = tuple(batch)
    if loss == "cross_entropy":
        return jax.random.randint(key, shape, 0, n_out)
    if loss == "bce":
        return jax.random.bernoulli(key, 0.5, (*shape, n_out)).astype(jnp.result_type(float))
    if output == "softmax":
        return jax.nn.one_hot(jax.random.randint(key, shape, 0, n_out), n_out, dtype=jnp.result_type(float))
    return jax.random.uniform(key, (*shape, n_out), jnp.result_type(float), -0.9, 0.9)


def split_data_reference(net, params, x, y, loss, optimizer, batch, key, epochs, devices):
    """What ``fit`` on data split over ``devices`` devices computes, as a plain ``make_step`` loop:
    device d holds rows d·n/D … (d+1)·n/D − 1 and shuffles them with ``split(fold_in(key, e), D)[d]``;
    minibatch k is the k-th local minibatch of every device, side by side. Returns
    ``(params, per-epoch mean loss)`` (equal batches: no remainder)."""
    import fnn

    n = x.shape[0]
    n_local, per = n // devices, batch // devices
    assert n % devices == 0 and batch % devices == 0 and n_local % per == 0
    step = fnn.make_step(net, loss, optimizer)
    state, history = step.init(params), []
    for e in range(epochs):
        keys = jax.random.split(jax.random.fold_in(key, e), devices)
        perms = [np.asarray(fnn.shuffle.permutation(k, n_local)) for k in keys]
        losses = []
        for k in range(n_local // per):
            rows = np.concatenate([d * n_local + perms[d][k * per : (k + 1) * per] for d in range(devices)])
            state, m = step(state, x[rows], y[rows])
            losses.append(float(m["loss"]))
        history.append(np.mean(losses))
    return state.params, np.asarray(history)


def verdicts(headlines, descriptive=(), timing=()) -> dict:
    """The verdicts of an experiment's ``headline`` list, each checked for its form.

    A claim that contains one of the ``descriptive`` strings reports a number and claims nothing: its
    ``ok`` must be None. Every other claim must carry a verdict, True or False (a None there is a
    verdict that went missing, which ``ok is not False`` would let through). Each ``descriptive`` and
    ``timing`` string must match a claim, so the lists cannot go stale. Returns ``{claim: ok}`` of the
    verdicts, without the ``timing`` ones (wall-clock verdicts at smoke sizes depend on the machine).
    """
    out = {}
    for pattern in (*descriptive, *timing):
        assert any(pattern in h["claim"] for h in headlines), f"no headline claim contains {pattern!r}"
    for h in headlines:
        if any(p in h["claim"] for p in descriptive):
            assert h["ok"] is None, f"a descriptive row carries a verdict: {h}"
            continue
        assert isinstance(h["ok"], bool), f"a claim without its verdict: {h}"
        if not any(p in h["claim"] for p in timing):
            out[h["claim"]] = h["ok"]
    return out


def run_fresh(code: str, tmp_path, **env: str) -> dict:
    """``code`` in a fresh interpreter on the CPU, which prints one JSON line last: that line, parsed. The
    caller's JAX and fnn cache variables are dropped, only ``env``'s set (the user cache dir under tmp_path)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("JAX_COMPILATION", "JAX_PERSISTENT", "FNN_"))}
    p = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**base, "JAX_PLATFORMS": "cpu", "XDG_CACHE_HOME": str(tmp_path / "xdg"), **env},
    )
    assert p.returncode == 0, p.stderr[-3000:]
    return json.loads(p.stdout.strip().splitlines()[-1])
