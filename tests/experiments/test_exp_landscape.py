"""The loss-landscape experiment end to end: the straight line, the principal plane, the figure."""

import json

import numpy as np
import pytest

from experiments import landscape


@pytest.mark.slow  # a whole experiment in smoke mode: the `slow` tier
def test_landscape_smoke(tmp_path):
    r = landscape.main(["--smoke", "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["experiment"] == "landscape" and saved["mode"] == "smoke"
    line, alphas = np.asarray(r["line_loss"]), np.asarray(r["alphas"])
    assert line.shape == alphas.shape == (61,)
    # the ends of the segment are the initial and the trained parameters, whose losses the path recorded
    np.testing.assert_allclose(line[np.argmin(abs(alphas))], r["path_loss"][0], rtol=1e-4)
    np.testing.assert_allclose(line[np.argmin(abs(alphas - 1))], r["path_loss"][-1], rtol=1e-4)
    assert r["path_loss"][-1] < r["path_loss"][0]  # SGD went down
    assert 0 < r["explained_variance_2pc"] <= 1 and np.asarray(r["surface"]).shape == (7, 7)
    assert (tmp_path / "landscape.png").stat().st_size > 1000
