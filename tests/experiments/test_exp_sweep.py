"""Smoke test: the sweep experiment runs end to end, its numbers make the claim, its grid is ordered right."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _helpers import verdicts

import fnn
from experiments import sweep


@pytest.mark.slow  # a whole experiment in smoke mode: the `slow` tier
def test_sweep_smoke(tmp_path):
    r = sweep.main(["--smoke", "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["experiment"] == "sweep" and saved["mode"] == "smoke"
    assert {"test_accuracy", "val_accuracy", "mean_val_accuracy", "selected", "diverged", "num_networks"} <= set(saved)
    lrs, acc = r["learning_rates"], np.asarray(r["test_accuracy"])
    assert acc.shape == (len(lrs), r["seeds"]) and r["num_networks"] == acc.size
    assert np.asarray(r["diverged"]).shape == acc.shape == np.asarray(r["val_accuracy"]).shape
    # the three splits are disjoint parts of the n points
    d = r["data"]
    assert d["train"] + d["validation"] + d["test"] == d["n"] and d["validation"] > 0
    # the rate is chosen on validation: the argmax of the recorded mean validation accuracy over the
    # rates with no diverged seed, and the reported test number is that rate's, not the best test number
    div, val, test = np.asarray(r["diverged"]), np.asarray(r["mean_val_accuracy"]), np.asarray(r["mean_test_accuracy"])
    stable = np.flatnonzero(~div.any(axis=1))
    best = int(stable[np.argmax(val[stable])])
    sel = saved["selected"]
    assert "validation" in sel["by"] and sel["index"] == best and sel["lr"] == lrs[best] == r["best_learning_rate"]
    assert sel["test_acc"] == r["best_mean_test_accuracy"] == test[best] and sel["val_acc"] == val[best]
    head = saved["headline"][0]
    assert head["value"] == test[best] and "chosen on validation" in head["claim"] and head["readme"]
    # a moderate rate learns the spirals well above chance (1/3); the smallest rate has not converged yet
    assert r["best_mean_test_accuracy"] >= 0.8
    assert np.mean(acc[0]) < r["best_mean_test_accuracy"]
    assert np.all(acc[-1] <= 0.4)  # far too large a rate: stuck at chance
    assert 0 < best < len(lrs) - 1
    v = verdicts(
        saved["headline"], descriptive=["networks trained in one fit_many call", "runs flagged diverged", "runs stuck at chance"]
    )
    assert len(v) == 1 and all(v.values()), v
    assert (tmp_path / "sweep.png").stat().st_size > 1000


def test_grid_order():
    """Network i of the grid has rate lrs[i // n_seeds] and initial params of seed i % n_seeds."""
    net = fnn.MLP((2, 4, 3), hidden="relu", output="softmax")
    x, y = jnp.array([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]), jnp.array([0, 1, 2])
    lrs, n_seeds, key = [0.1, 1.0, 3.0], 2, jax.random.key(3)
    params, _ = sweep.train_grid(net, (x, y), lrs, n_seeds, epochs=1, batch_size=None, key=key)
    start = sweep.grid_params(net, len(lrs), n_seeds, jax.random.split(key)[0])
    # one full-batch SGD step: Δθ_i = −lr_i ∇E(θ0_i), so Δθ_i / lr_i depends only on the seed
    for leaf in ("W", "b"):
        d = np.asarray(params[0][leaf] - start[0][leaf]).reshape(len(lrs), n_seeds, -1) / np.asarray(lrs)[:, None, None]
        np.testing.assert_allclose(d, np.broadcast_to(d[:1], d.shape), rtol=1e-3, atol=1e-6)
        assert not np.allclose(d[0, 0], d[0, 1])  # the seeds differ
    w0 = np.asarray(start[0]["W"]).reshape(len(lrs), n_seeds, -1)
    np.testing.assert_array_equal(w0, np.broadcast_to(w0[:1], w0.shape))  # one init per column, shared by the rows


def test_compilation_cache_is_off_unless_a_command_line_run_turns_it_on(tmp_path, monkeypatch):
    from experiments import _common

    assert jax.config.jax_compilation_cache_dir in (None, "")  # importing fnn and running tests: off
    assert _common.compilation_cache(False) is None
    args = _common.parse_args("x", "sweep", ["--smoke", "--out", str(tmp_path)])  # smoke runs never turn it on
    assert args.cache is None and "cache" not in _common.compile_note(args)
    monkeypatch.setenv("FNN_CACHE_DIR", str(tmp_path / "c"))
    assert _common.cache_dir() == tmp_path / "c"
