"""fit_many with one shuffling key per network (issue 25, item 3): networks given equal keys and equal
starting parameters see the same minibatch order and train identically, so a paired sweep's seeds are
paired in their data order too; a wrong number of keys, or keys without params, is refused by name."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import fnn

NET = fnn.MLP((2, 8, 3), hidden="tanh", output="softmax")
X, Y = fnn.datasets.spirals(jax.random.key(0), 120)
KW = {"loss": "cross_entropy", "optimizer": optax.sgd(0.1), "epochs": 5, "batch_size": 16, "progress": False}


def _two_seeds_twice():
    ps = NET.init_stacked(jax.random.key(0), 2)
    return jax.tree.map(lambda a: jnp.concatenate([a, a]), ps)  # networks 0, 2 and 1, 3 start alike


def test_equal_keys_and_starts_train_identically():
    k = jax.random.split(jax.random.key(5), 2)
    _, h = fnn.fit_many(NET, (X, Y), key=jnp.concatenate([k, k]), params=_two_seeds_twice(), **KW)
    np.testing.assert_array_equal(h["loss"][0], h["loss"][2])
    np.testing.assert_array_equal(h["loss"][1], h["loss"][3])
    assert not np.array_equal(h["loss"][0], h["loss"][1])
    # one key for all: each network shuffles with its own split, so equal starts part ways
    _, h1 = fnn.fit_many(NET, (X, Y), key=jax.random.key(5), params=_two_seeds_twice(), **KW)
    assert not np.array_equal(h1["loss"][0], h1["loss"][2])


def test_a_network_with_its_own_key_is_fit_with_that_key():
    keys = jax.random.split(jax.random.key(7), 4)
    ps = _two_seeds_twice()
    many, h = fnn.fit_many(NET, (X, Y), key=keys, params=ps, **KW)
    one, h_one = fnn.fit(NET, jax.tree.map(lambda a: a[3], ps), (X, Y), key=keys[3], **KW)
    np.testing.assert_allclose(h["loss"][3], h_one["loss"], rtol=1e-5)
    for a, b in zip(jax.tree.leaves(jax.tree.map(lambda a: a[3], many)), jax.tree.leaves(one)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_per_network_keys_are_checked():
    keys = jax.random.split(jax.random.key(5), 4)
    with pytest.raises(ValueError, match=r"`key` holds 3 keys: one shuffling key per network needs N = 4"):
        fnn.fit_many(NET, (X, Y), key=keys[:3], params=_two_seeds_twice(), **KW)
    with pytest.raises(ValueError, match="one shuffling key per network needs the starting `params`"):
        fnn.fit_many(NET, (X, Y), key=keys, num_networks=4, **KW)


def test_per_network_keys_checkpoint_and_resume_bitwise(tmp_path):
    keys = jax.random.split(jax.random.key(9), 4)
    want, h_want = fnn.fit_many(NET, (X, Y), key=keys, params=_two_seeds_twice(), **{**KW, "epochs": 8})
    run = tmp_path / "run"
    fnn.fit_many(NET, (X, Y), key=keys, params=_two_seeds_twice(), checkpoint=fnn.Checkpointing(run, every=2), **KW)
    with pytest.warns(fnn.Resumed):
        got, h = fnn.fit_many(
            NET,
            (X, Y),
            key=keys,
            params=_two_seeds_twice(),
            checkpoint=fnn.Checkpointing(run, resume=True),
            **{**KW, "epochs": 8},
        )
    np.testing.assert_array_equal(h["loss"], h_want["loss"])
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="key"):  # another set of keys is another run
        fnn.fit_many(NET, (X, Y), key=keys[::-1], params=_two_seeds_twice(), checkpoint=fnn.Checkpointing(run, resume=True), **KW)


def test_a_paired_grid_pairs_starts_and_minibatch_order():
    g = fnn.sweep.paired_grid(seeds=2, learning_rate=[0.1, 0.1])  # two equal settings: a paired seed trains alike
    opt = optax.inject_hyperparams(optax.sgd)(learning_rate=0.1)
    kw = {**KW, "optimizer": opt, "params": fnn.sweep.paired_params(NET, jax.random.key(0), g), "hyperparams": g.hyperparams}
    _, h = fnn.fit_many(NET, (X, Y), key=g.keys(jax.random.key(1)), **kw)
    for j in range(2):
        a, b = g.networks(0)[j], g.networks(1)[j]
        np.testing.assert_array_equal(h["loss"][a], h["loss"][b])
    _, h1 = fnn.fit_many(NET, (X, Y), key=jax.random.key(1), **kw)  # paired starts only: the orders differ
    assert not np.array_equal(h1["loss"][g.networks(0)[0]], h1["loss"][g.networks(1)[0]])
