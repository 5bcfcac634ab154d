"""MNIST-1D sweep: the shifted copies, and the experiment end to end."""

import json

import numpy as np
import pytest

from experiments import mnist1d_sweep


def test_shifted_copies_are_circular_shifts_within_the_bound_and_keep_labels():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(50, 40)), rng.integers(0, 10, 50)
    xs, ys = mnist1d_sweep.shifted_copies(x, y, 4, 3, seed=1)
    assert xs.shape == (200, 40) and np.array_equal(ys, np.tile(y, 4))
    np.testing.assert_array_equal(xs[:50], x)  # the first copy is the data itself
    shifts = []
    for i, row in enumerate(xs[50:]):
        k = [k for k in range(-3, 4) if np.array_equal(row, np.roll(x[i % 50], k))]
        assert k, f"row {i} is not a shift of its source within ±3"
        shifts.append(k[0])
    assert len(set(shifts)) == 7  # every shift of the range is drawn
    same, _ = mnist1d_sweep.shifted_copies(x, y, 3, 0, seed=1)
    np.testing.assert_array_equal(same, np.tile(x, (3, 1)))  # s = 0: identical copies, the same steps


@pytest.mark.slow  # a whole experiment in smoke mode: the `slow` tier
def test_mnist1d_sweep_smoke(tmp_path):
    r = mnist1d_sweep.main(["--smoke", "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["experiment"] == "mnist1d_sweep" and saved["mode"] == "smoke"
    widths, lrs, wds, shifts, *_ = mnist1d_sweep.GRID["smoke"]
    assert len(r["sweep"]) == len(widths) * len(lrs) * len(wds) * len(shifts)
    best = max(s["val_mean"] for s in r["sweep"])
    assert r["chosen"]["choice"]["val_mean"] == best  # chosen on validation
    assert r["chosen_without_shifts"]["choice"]["shift"] == 0
    assert len(r["chosen"]["test"]) == mnist1d_sweep.FINAL_SEEDS
    assert (tmp_path / "mnist1d_sweep.png").stat().st_size > 1000
    assert sum(h["readme"] for h in saved["headline"]) == 1
