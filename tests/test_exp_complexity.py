"""Smoke test: the complexity experiment runs end to end and labels what it measured vs extrapolated.

Slopes and times are not compared (on a shared machine a smoke-sized timing can be off by several
times; the experiment's own headlines judge the slopes). What is checked: the structure, that the
finite-difference slope is fitted on fully timed sizes only, that every extrapolated point says so,
and one cost ratio with a wide margin."""

import json

import numpy as np
import pytest

from experiments import complexity

pytestmark = pytest.mark.slow  # a whole experiment in smoke mode: the `slow` tier (`-m slow`)


def test_complexity_smoke(tmp_path):
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

    # Finite differences cost 2P forward passes, backprop about three: at the largest measured size
    # (P = 816) the expected time ratio is ~2P/3 ≈ 540, and even with all fixed per-call overheads on
    # backprop's side it stays above 50. A tenth of that leaves room for a badly timed sample on a
    # shared machine (several-fold) and still fails if finite differences were not P passes.
    largest = fd[-1]
    assert largest["fd_full_s"] / largest["manual_s"] > 5

    # Labels: the table's headline for finite differences says measured sizes, the extrapolated one says so.
    claims = [h["claim"] for h in saved["headline"]]
    fd_slope = next(c for c in claims if c.startswith("slope, finite differences"))
    assert "every one of the P coordinates timed" in fd_slope and f"{len(fd)} measured sizes" in fd_slope
    assert any("extrapolated from" in c for c in claims)
    readme = {h["claim"].split(",")[0] for h in saved["headline"] if h["readme"]}
    assert {"slope of log time vs log P", "slope"} <= readme and sum(h["readme"] for h in saved["headline"]) == 4
    assert (tmp_path / "complexity.png").stat().st_size > 1000
