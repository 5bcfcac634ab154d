"""Smoke test: the complexity experiment runs end to end and labels what it measured vs extrapolated.

Slopes and times are not compared (on a shared machine a smoke-sized timing can be off by several
times; the experiment's own headlines judge the slopes). What is checked: the structure, that the
finite-difference slope is fitted on fully timed sizes only, that every extrapolated point says so,
and the cost of finite differences as a count, not a time: 2P evaluations of the objective."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

import fnn
from experiments import complexity

pytestmark = pytest.mark.slow  # a whole experiment in smoke mode: the `slow` tier (`-m slow`)


def test_complexity_smoke(tmp_path, monkeypatch):
    r = complexity.main(["--smoke", "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["experiment"] == "complexity" and saved["mode"] == "smoke"
    assert {
        "setting",
        "sizes",
        "slopes",
        "slopes_cpu_time",
        "slopes_on_fd_measured_sizes",
        "fit_range_params",
        "fd_fit_range_params",
        "fd_measured_sizes_in_fit",
        "fd_source",
        "manual_over_forward_median",
        "headline",
        "figures",
    } <= set(saved)
    assert set(r["slopes"]) == {"forward", "manual", "autodiff", "fd"}
    sizes = r["sizes"]
    assert [s["params"] for s in sizes] == sorted(s["params"] for s in sizes)
    for s in sizes:
        assert all(s[f"{n}_s"] > 0 for n in ("forward", "manual", "autodiff", "fd_k", "fd", "fd_extrapolated"))
        assert s["fd_vs_backprop_rel_err"] < 0.1  # the finite differences do compute the gradient

    # Measured vs extrapolated: each size says which, the measured ones carry the full timing.
    limit = r["setting"]["fd_full_max_params"]
    for s in sizes:
        assert s["fd_source"] == ("measured" if s["params"] <= limit else "extrapolated")
        if s["fd_source"] == "measured":
            assert s["fd_s"] == s["fd_full_s"] and s["fd_full_vs_backprop_rel_err"] < 0.1
        else:
            assert "fd_full_s" not in s and s["fd_s"] == s["fd_extrapolated_s"]
    assert {s["fd_source"] for s in sizes} == {"measured", "extrapolated"}  # the smoke run has both

    # The finite-difference slope is the fit over the measured sizes in the fit range, nothing else.
    fd = [s for s in sizes if s["fd_source"] == "measured" and s["in_fit_range"]]
    assert len(fd) >= 3 and r["fd_measured_sizes_in_fit"] == len(fd)
    expected = np.polyfit(np.log([s["params"] for s in fd]), np.log([s["fd_full_s"] for s in fd]), 1)[0]
    assert abs(r["slopes"]["fd"] - expected) < 1e-9
    assert r["fd_fit_range_params"] == [fd[0]["params"], fd[-1]["params"]]

    # Finite differences cost 2P forward passes (backprop about three): counted, not timed. The experiment's
    # finite-difference function, on every coordinate at the largest measured size (P = 816), evaluates the
    # objective 2P times, each time with exactly one coordinate moved, every coordinate once up and once down.
    largest = fd[-1]
    width, P = largest["width"], largest["params"]
    net = fnn.MLP((width,) * 4, hidden="tanh")
    params = net.init(jax.random.key(0))
    base = np.asarray(ravel_pytree(params)[0])
    x = jax.random.normal(jax.random.key(1), (r["setting"]["batch"], width))
    passes = []
    objective = fnn.objective

    def counted(net, loss):
        E = objective(net, loss)

        def E_counted(params, x, y):  # each evaluation hands its parameters to the host as it runs
            jax.debug.callback(lambda flat: passes.append(np.asarray(flat)), ravel_pytree(params)[0])
            return E(params, x, y)

        return E_counted

    monkeypatch.setattr(fnn, "objective", counted)
    jax.block_until_ready(jax.jit(complexity.fd_gradient(net))(params, jnp.arange(P), x, x))
    jax.effects_barrier()
    n_passes = len(passes)
    assert n_passes == 2 * P
    moved = [np.flatnonzero(flat != base) for flat in passes]
    assert all(len(i) == 1 for i in moved)  # one coordinate moved in each, no more
    moved = [(int(i), int(np.sign(flat[i] - base[i]))) for (i,), flat in zip(moved, passes)]
    assert sorted(moved) == [(i, s) for i in range(P) for s in (-1, 1)]

    # Labels: the table's headline for finite differences says measured sizes, the extrapolated one says so.
    claims = [h["claim"] for h in saved["headline"]]
    fd_slope = next(c for c in claims if c.startswith("slope, finite differences"))
    assert "every one of the P coordinates timed" in fd_slope and f"{len(fd)} measured sizes" in fd_slope
    assert any("extrapolated from" in c for c in claims)
    readme = {h["claim"].split(",")[0] for h in saved["headline"] if h["readme"]}
    assert {"slope of log time vs log P", "slope"} <= readme and sum(h["readme"] for h in saved["headline"]) == 4
    assert (tmp_path / "complexity.png").stat().st_size > 1000
