"""Double descent: the label noise, and the experiment end to end."""

import json

import numpy as np
import pytest

from experiments import double_descent


def test_noisy_labels_redraw_the_given_fraction_and_keep_the_rest():
    y = np.arange(10_000) % 10
    noisy, replaced = double_descent.noisy_labels(y, 0.15, seed=3)
    assert abs(replaced.mean() - 0.15) < 0.01
    np.testing.assert_array_equal(noisy[~replaced], y[~replaced])
    # redrawn uniformly over the 10 classes: about 1 in 10 lands on the true class again
    assert abs((noisy[replaced] == y[replaced]).mean() - 0.1) < 0.03
    assert np.bincount(noisy[replaced], minlength=10).min() > 0.7 * replaced.sum() / 10
    again, _ = double_descent.noisy_labels(y, 0.15, seed=3)
    np.testing.assert_array_equal(again, noisy)  # seeded


@pytest.mark.slow  # a whole experiment in smoke mode: the `slow` tier
def test_double_descent_smoke(tmp_path):
    r = double_descent.main(["--smoke", "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["experiment"] == "double_descent" and saved["mode"] == "smoke"
    assert [s["width"] for s in r["sweep"]] == double_descent.WIDTHS["smoke"]
    params = [s["params"] for s in r["sweep"]]
    assert params == sorted(params) and params[0] == 40 * 4 + 4 + 4 * 10 + 10
    for s in r["sweep"]:
        assert len(s["test_error"]) == r["seeds"] and 0 <= s["train_mean"] <= 1
    assert (tmp_path / "double_descent.png").stat().st_size > 1000
    assert sum(h["readme"] for h in saved["headline"]) == 1
