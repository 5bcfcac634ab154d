"""sigmoid vs tanh: the epochs-to-target measure, and the experiment end to end."""

import json

import numpy as np
import pytest

from experiments import zero_centred


def test_epochs_to_target_counts_from_one_and_marks_never_as_one_more():
    acc = np.array([[0.5, 0.96, 0.97], [0.5, 0.6, 0.7], [0.95, 0.1, 0.1], [np.nan, np.nan, np.nan]])
    assert zero_centred.epochs_to(acc, 0.95).tolist() == [2, 4, 1, 4]


@pytest.mark.slow  # a whole experiment in smoke mode: the `slow` tier
def test_zero_centred_smoke(tmp_path):
    r = zero_centred.main(["--smoke", "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["experiment"] == "zero_centred" and saved["mode"] == "smoke"
    for name in ("digits", "mnist1d"):
        for act in ("sigmoid", "tanh"):
            assert len(r[name][act]["mean_activation_init"]) == 2
    # the mechanism holds by construction at init: sigmoid outputs are positive, tanh's are centred
    d = r["digits"]
    assert all(0.3 < m < 0.7 for m in d["sigmoid"]["mean_activation_init"])
    assert all(abs(m) < 0.2 for m in d["tanh"]["mean_activation_init"])
    assert (tmp_path / "zero_centred.png").stat().st_size > 1000
    assert sum(h["readme"] for h in saved["headline"]) == 2
