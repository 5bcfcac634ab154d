"""Plain vs residual MLPs: the networks, their shared weights, the measurements at init, and the experiment end to end."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from experiments import residual


def test_plain_and_residual_networks_of_a_depth_have_the_same_weights_count():
    for depth in (2, 3, 8):
        plain, res = residual.network("plain", depth), residual.network("residual", depth)
        assert plain.num_params == res.num_params
        assert plain.num_layers == res.num_layers == depth + 1
        assert sum(isinstance(b, fnn.blocks.Residual) for b in res.blocks) == depth - 1


def test_init_plain_draws_the_auto_initialisers_in_the_networks_layout():
    depth, seeds = 4, 3
    p = residual.init_plain(jax.random.key(0), depth, seeds)
    net = residual.network("plain", depth)
    for s in range(seeds):
        net.check_params(jax.tree_util.tree_map(lambda a, s=s: a[s], p))
    hidden = np.concatenate([np.asarray(q["W"]).ravel() for q in p[2:-1:2]])
    assert abs(hidden.std() - np.sqrt(2 / 16)) < 0.03  # He: N(0, 2 / n_in)
    assert abs(np.asarray(p[0]["W"]).std() - np.sqrt(2 / 64)) < 0.02
    assert np.abs(np.asarray(p[-1]["W"])).max() <= np.sqrt(6 / (16 + 10))  # Glorot uniform
    assert all(float(jnp.abs(q["b"]).max()) == 0 for q in p[::2])
    # the seeds differ
    assert not np.allclose(p[2]["W"][0], p[2]["W"][1])


def test_as_residual_moves_the_same_weights_into_the_branches_scaled():
    depth = 4
    p = residual.network("plain", depth).init(jax.random.key(1))
    r = residual.as_residual(p, depth, scale=0.25)
    w_plain = residual.network("plain", depth).weights(p)
    w_res = residual.network("residual", depth).weights(r)
    scales = [1.0] + [0.25] * (depth - 1) + [1.0]
    for a, b, s in zip(w_plain, w_res, scales):
        np.testing.assert_allclose(np.asarray(a) * s, np.asarray(b))
    with pytest.raises(ValueError, match="depth"):
        residual.as_residual(p, depth + 1)


def test_zero_branches_make_each_residual_block_the_identity():
    # relu(0·h + 0) = 0: the residual net is then its first layer and its output layer
    depth = 5
    p = residual.network("plain", depth).init(jax.random.key(2))
    r = residual.as_residual(p, depth, scale=0.0)
    x = jax.random.normal(jax.random.key(3), (7, 64))
    shallow = residual.network("plain", 1)
    np.testing.assert_allclose(
        residual.network("residual", depth).apply(r, x), shallow.apply([p[0], p[1], p[-1]], x), rtol=1e-6, atol=1e-7
    )


def test_branch_scale_is_one_over_the_number_of_blocks():
    assert residual.branch_scale(2) == 1.0
    assert residual.branch_scale(33) == 1 / 32


def test_at_init_norms_are_the_weight_gradients_norms_and_rms_the_last_hidden_layers():
    depth = 3
    net = residual.network("residual", depth)
    p = residual.as_residual(residual.init_plain(jax.random.key(4), depth, 2), depth, 0.5)
    x = jax.random.normal(jax.random.key(5), (32, 64))
    y = jnp.arange(32) % 10
    norms, rms = residual.at_init(net, p, x, y)
    assert norms.shape == (2, depth + 1) and rms.shape == (2,)
    one = jax.tree_util.tree_map(lambda a: a[1], p)
    grads = jax.grad(lambda q: fnn.objective(net, "cross_entropy")(q, x, y))(one)
    np.testing.assert_allclose(norms[1], [float(jnp.linalg.norm(w)) for w in net.weights(grads)], rtol=1e-4)
    h = x @ one[0]["W"].T + one[0]["b"]
    h = jnp.maximum(h, 0)
    for blk in one[2:-1]:
        q = blk["blocks"][0]
        h = h + jnp.maximum(h @ q["W"].T + q["b"], 0)
    np.testing.assert_allclose(rms[1], float(jnp.sqrt(jnp.mean(h**2))), rtol=1e-5)


def test_summarize_chooses_the_learning_rate_on_validation_and_masks_diverged_seeds():
    lrs, seeds = np.array([0.1, 0.3]), 2
    acc = {"fit": np.array([0.9, 0.8, 1.0, 0.2]), "val": np.array([0.5, 0.6, 0.9, 0.9]), "test": np.array([0.4, 0.5, 0.7, 0.1])}
    diverged = np.array([False, False, False, True])
    r = residual.summarize(acc, np.ones((4, 3)), diverged, lrs, seeds)
    assert r["choice"]["learning_rate"] == 0.3 and r["diverged"] == 1
    assert r["test_mean"] == pytest.approx(0.7) and r["train_mean"] == pytest.approx(1.0)


@pytest.mark.slow  # a whole experiment in smoke mode: the `slow` tier
def test_residual_smoke(tmp_path):
    r = residual.main(["--smoke", "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["experiment"] == "residual" and saved["mode"] == "smoke"
    depths = residual.DEPTHS["smoke"]
    for v in residual.VARIANTS:
        assert sorted(int(d) for d in saved["sweep"][v]) == depths
        for d in depths:
            s = r["sweep"][v][d]
            assert len(s["test"]) == r["seeds"] and 0 <= s["test_mean"] <= 1
            assert s["grad_norms_init"].shape == (r["seeds"], d + 1)
    # at depth 2 there is one residual block: scaling by 1/L = 1 changes nothing
    np.testing.assert_allclose(r["sweep"]["residual"][2]["test"], r["sweep"]["residual_he"][2]["test"])
    assert (tmp_path / "residual.png").stat().st_size > 1000
    assert sum(h["readme"] for h in saved["headline"]) == 1
