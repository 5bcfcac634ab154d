"""A resumed run says where it continues from (issue 25, item 6): a fnn.Resumed warning naming the
checkpoint file and its epoch, pointing at the user's call, silenced by its category; none for a fresh run."""

import warnings

import jax
import jax.numpy as jnp
import optax
import pytest

import fnn

NET = fnn.MLP((2, 4, 2), hidden="tanh", output="softmax")
X, Y = fnn.datasets.xor()
KW = {"loss": "cross_entropy", "optimizer": optax.sgd(0.5), "progress": False}


def test_a_resumed_fit_names_its_checkpoint_and_epoch(tmp_path):
    run = tmp_path / "run"
    with warnings.catch_warnings():
        warnings.simplefilter("error", fnn.Resumed)  # a fresh run (resume=True, nothing there yet) says nothing
        fnn.fit(
            NET, NET.init(jax.random.key(0)), (X, Y), epochs=40, checkpoint=fnn.Checkpointing(run, every=20, resume=True), **KW
        )
    with pytest.warns(fnn.Resumed, match=r"from state-000000040\.npz \(epoch 40\); the call runs on to epoch 70") as w:
        fnn.fit(NET, NET.init(jax.random.key(0)), (X, Y), epochs=70, checkpoint=fnn.Checkpointing(run, resume=True), **KW)
    assert w[0].filename == __file__  # it points at the user's call
    with pytest.warns(fnn.Resumed, match=r"\(epoch 70\); the call has reached this call's 70 epochs: nothing to run"):
        fnn.fit(NET, NET.init(jax.random.key(0)), (X, Y), epochs=70, checkpoint=fnn.Checkpointing(run, resume=True), **KW)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", category=fnn.Resumed)  # silenced by its category
        fnn.fit(NET, NET.init(jax.random.key(0)), (X, Y), epochs=70, checkpoint=fnn.Checkpointing(run, resume=True), **KW)


def test_a_resumed_fit_many_says_so_too(tmp_path):
    run = tmp_path / "many"
    kw = {**KW, "key": jax.random.key(1), "num_networks": 2}
    fnn.fit_many(NET, (X, Y), epochs=10, checkpoint=fnn.Checkpointing(run, every=5), **kw)
    with pytest.warns(fnn.Resumed, match=r"from state-000000010\.npz \(epoch 10\); the call runs on to epoch 15") as w:
        _, h = fnn.fit_many(NET, (X, Y), epochs=15, checkpoint=fnn.Checkpointing(run, resume=True), **kw)
    assert w[0].filename == __file__ and jnp.asarray(h["loss"]).shape == (2, 15)
