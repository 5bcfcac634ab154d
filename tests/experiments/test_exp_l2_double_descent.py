"""L2 against double descent: the padding that lets widths share one program, the curve measures, end to end."""

import json

import jax
import numpy as np
import optax
import pytest

import fnn
from experiments import l2_double_descent as exp


def test_pad_groups_share_a_program_up_to_each_bound():
    assert exp.pad_groups([256, 4, 64, 16, 32]) == [[4, 16, 32, 64], [256]]
    assert exp.pad_groups([4, 8, 12, 16, 24, 32, 48, 64, 128, 256, 512]) == [[4, 8, 12, 16, 24, 32, 48, 64], [128, 256], [512]]
    assert exp.pad_groups([2048]) == [[2048]]


def test_a_padded_network_trains_as_the_narrow_one_with_l2():
    """Zero hidden units get zero gradients (data term, L2 term, Adam's update of a zero gradient), so
    the 40-4-10 network padded to 16 units stays the 40-4-10 network through training, to rounding."""
    x, y = np.random.default_rng(0).normal(size=(64, 40)).astype(np.float32), np.arange(64) % 10
    narrow = fnn.MLP((40, 4, 10), hidden="relu", output="softmax")
    wide = fnn.MLP((40, 16, 10), hidden="relu", output="softmax")
    p0 = narrow.init_stacked(jax.random.key(0), 2)
    padded0 = exp.pad_hidden(p0, 16)
    np.testing.assert_allclose(
        jax.vmap(wide.apply, in_axes=(0, None))(padded0, x), jax.vmap(narrow.apply, in_axes=(0, None))(p0, x), atol=1e-6
    )
    keys = jax.random.split(jax.random.key(1), 2)
    fit = {"loss": "cross_entropy", "optimizer": optax.adam(1e-3), "epochs": 10, "batch_size": 16}
    fit |= {"key": keys, "l2": 0.03, "progress": False}
    p, _ = fnn.fit_many(narrow, (x, y), params=p0, **fit)
    q, _ = fnn.fit_many(wide, (x, y), params=padded0, **fit)
    assert float(abs(q[0]["W"][:, 4:]).max()) == 0 and float(abs(q[0]["b"][:, 4:]).max()) == 0
    assert float(abs(q[1]["W"][:, :, 4:]).max()) == 0
    for a, b in zip(jax.tree.leaves(exp.pad_hidden(p, 16)), jax.tree.leaves(q)):
        np.testing.assert_allclose(a, b, atol=1e-4)
    with pytest.raises(ValueError, match="cannot pad"):
        exp.pad_hidden(padded0, 8)


def test_prominence_and_largest_rise():
    assert exp.prominence([0.74, 0.72, 0.77, 0.75, 0.70], 2) == (0.05, 1)
    assert exp.prominence([0.80, 0.75, 0.78, 0.77], 2) == (0.01, 3)  # the right side sets it
    value, side = exp.prominence([3.0, 2.0, 1.0], 1)
    assert value == -1.0 and side == 0  # a monotone curve has no peak: negative
    assert np.isnan(exp.prominence([1.0, 2.0], 0)[0]) and exp.prominence([1.0, 2.0], 1)[1] is None
    assert exp.largest_rise([0.75, 0.74, 0.76, 0.70, 0.71]) == pytest.approx((1, 2, 0.02))
    assert exp.largest_rise([3.0, 2.0, 1.5]) == (1, 2, -0.5)
    assert exp.diff_se([1.0, 3.0], [0.0, 0.0]) == pytest.approx(1.0)  # sqrt(2 / 2 + 0)


def test_scores_are_error_and_cross_entropy():
    net = fnn.MLP((40, 4, 10), hidden="relu", output="softmax")
    ps = net.init_stacked(jax.random.key(0), 3)
    x, y = np.random.default_rng(0).normal(size=(50, 40)).astype(np.float32), np.arange(50) % 10
    err, ce = exp.scores(net, ps, x, y)
    ev = jax.vmap(lambda p: fnn.evaluate(net, p, x, y, loss="cross_entropy"))(ps)
    np.testing.assert_allclose(err, 1 - np.asarray(ev["accuracy"]), atol=1e-6)
    np.testing.assert_allclose(ce, ev["loss"], rtol=1e-4)


@pytest.mark.slow  # a whole experiment in smoke mode: the `slow` tier
def test_l2_double_descent_smoke(tmp_path):
    r = exp.main(["--smoke", "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["experiment"] == "l2_double_descent" and saved["mode"] == "smoke"
    shape = [len(exp.LAMBDAS["smoke"]), len(exp.WIDTHS["smoke"]), r["seeds"]]
    for k in ("train_error", "val_error", "val_cross_entropy", "test_error", "diverged"):
        assert list(np.shape(saved[k])) == shape, k
    assert saved["n_val"] == saved["n_train"] and saved["validation_rows"] == [saved["n_train"], 2 * saved["n_train"]]
    assert [s["width"] for s in saved["selected"]] == exp.WIDTHS["smoke"]
    assert all(lam in exp.LAMBDAS["smoke"] for lam in saved["chosen_lambda"] + saved["oracle_lambda"])
    test = np.asarray(saved["test_error"])
    assert ((test >= 0) & (test <= 1)).all()
    # the chosen λ is the validation's pick, never the test set's
    val = np.asarray(saved["val_error"]).mean(2)
    for wi, lam in enumerate(saved["chosen_lambda"]):
        assert val[exp.LAMBDAS["smoke"].index(lam), wi] == val[:, wi].min()
    for k in ("λ=0", "chosen λ", "chosen by val CE", "oracle λ"):
        assert list(np.shape(saved["curves"][k])) == shape[1:], k
    assert (tmp_path / "l2_double_descent.png").stat().st_size > 1000
    assert len(saved["headline"]) == 5 and sum(h["readme"] for h in saved["headline"]) == 2
