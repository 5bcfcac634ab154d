"""The hidden representation experiment: its data, its linear classifiers, and the run end to end."""

import json

import jax
import numpy as np
import pytest

from experiments import representation
from experiments.linear_collapse import best_line_accuracy


def test_two_spirals_are_two_point_symmetric_arms_no_line_separates():
    x, y = representation.two_spirals(jax.random.key(0), 400, noise=0.0)
    assert x.shape == (400, 2) and np.bincount(y).tolist() == [200, 200]
    np.testing.assert_allclose(x[y == 1], -x[y == 0], atol=1e-6)  # class 1 is class 0 turned by π
    assert best_line_accuracy(x, y) < 0.8  # 1.25 turns: every straight line misses a fifth or more


def test_hidden_is_the_last_hidden_layer():
    import fnn

    net = fnn.MLP(representation.SIZES, hidden="tanh", output="softmax")
    p = net.init(jax.random.key(0))
    x = np.ones((3, 2), np.float32)
    h = representation.hidden(net, p, x)
    z = np.asarray(net.apply(p, x))
    assert h.shape == (3, 2)
    # the output is softmax(W h + b) of that layer: the network's own classifier is linear in h
    logits = h @ np.asarray(p[-1]["W"]).T + np.asarray(p[-1]["b"])
    np.testing.assert_allclose(np.exp(logits) / np.exp(logits).sum(1, keepdims=True), z, rtol=1e-5)


@pytest.mark.slow  # a whole experiment in smoke mode: the `slow` tier
def test_representation_smoke(tmp_path):
    r = representation.main(["--smoke", "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["experiment"] == "representation" and saved["mode"] == "smoke"
    for name in ("rings", "two spirals"):
        assert set(r[name]["hidden"]) == {"line", "logistic", "network"}
        assert 0.5 <= r[name]["raw"]["line"][1] <= 1.0
    assert (tmp_path / "representation.png").stat().st_size > 1000
    assert sum(h["readme"] for h in saved["headline"]) == 2
