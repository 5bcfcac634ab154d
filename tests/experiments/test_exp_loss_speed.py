"""Steps to 95 % and 97 %: cross-entropy vs squared error at their best rates, end to end."""

import json

import numpy as np
import pytest

from experiments import loss_speed


@pytest.mark.slow  # a whole experiment in smoke mode: the `slow` tier
def test_loss_speed_smoke(tmp_path):
    r = loss_speed.main(["--smoke", "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["experiment"] == "loss_speed" and saved["mode"] == "smoke"
    per_epoch = r["steps_per_epoch"]
    for name in (loss_speed.CE, "mse + softmax"):
        for t in loss_speed.TARGETS:
            s = np.asarray(r[name][f"steps_to_{t:.2f}"], float)
            s = s[np.isfinite(s)]
            assert np.all(s % per_epoch == 0) and np.all(s >= per_epoch)  # whole epochs, at least one
        # a stricter target never comes sooner
        a, b = (np.asarray(r[name][f"steps_to_{t:.2f}"], float) for t in loss_speed.TARGETS)
        assert np.all((b >= a) | np.isnan(a) | np.isnan(b))
    assert (tmp_path / "loss_speed.png").stat().st_size > 1000
    assert sum(h["readme"] for h in saved["headline"]) == 1
