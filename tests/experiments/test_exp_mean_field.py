"""Mean-field theory of deep tanh networks: the quadrature against closed forms, and the experiment end to end."""

import json
import math

import numpy as np
import pytest

from experiments import mean_field


def test_quadrature_and_the_phase_boundary():
    # E[z²] = 1, E[z⁴] = 3 under N(0, 1): the quadrature the predictions use
    assert math.isclose(mean_field.expect(lambda z: z**2), 1.0, rel_tol=1e-12)
    assert math.isclose(mean_field.expect(lambda z: z**4), 3.0, rel_tol=1e-12)
    # at q = 0, tanh′ = 1: χ = σ_w²; the length map's fixed point is 0 for σ_w ≤ 1 at σ_b = 0
    assert math.isclose(mean_field.chi(0.0, 0.8), 0.64)
    assert mean_field.fixed_point(0.9, 0.0) < 1e-3 and mean_field.fixed_point(1.5, 0.0) > 0.5
    # order to chaos at σ_b = 0 is σ_w = 1: χ₁ < 1 below, > 1 above
    assert mean_field.chi(mean_field.fixed_point(0.95, 0.0), 0.95) < 1 < mean_field.chi(mean_field.fixed_point(1.2, 0.0), 1.2)
    # with σ_b > 0 the transition moves to σ_w > 1
    assert mean_field.chi(mean_field.fixed_point(1.1, 0.3), 1.1) < 1
    # small-q expansion of the length map: σ_w² E[tanh(√q z)²] ≈ σ_w² (q − 2q²)
    q = 1e-4
    assert math.isclose(mean_field.length_map(q, 1.0, 0.0), q - 2 * q**2, rel_tol=1e-3)


@pytest.mark.slow  # a whole experiment in smoke mode: the `slow` tier
def test_mean_field_smoke(tmp_path):
    r = mean_field.main(["--smoke", "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["experiment"] == "mean_field" and saved["mode"] == "smoke"
    assert len(r["sweep"]) == 2 * len(mean_field.SIGMA_W["smoke"])
    for row in r["sweep"]:  # vanishing where the mean field says so, exploding where it says so
        if abs(row["predicted_log_slope"]) > 0.1:
            assert np.sign(row["measured_log_slope"]) == np.sign(row["predicted_log_slope"])
    assert r["max_abs_slope_error"] < 0.15  # 10 layers of 64 in smoke mode: finite width
    assert (tmp_path / "mean_field.png").stat().st_size > 1000
    assert sum(h["readme"] for h in saved["headline"]) == 1
