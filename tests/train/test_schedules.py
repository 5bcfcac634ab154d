"""A learning rate by the epoch, and set by hand (issue 25, item 5): per_epoch / steps_per_epoch against
the plumbing they replace (a hand-written loop that writes the rate into an inject_hyperparams state
every epoch), and set_hyperparams against the two _replace calls it replaces."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import fnn


@pytest.mark.parametrize(
    "n, batch, drop_last", [(100, 32, False), (100, 32, True), (96, 32, False), (7, None, False), (5, 9, False)]
)
def test_steps_per_epoch_is_what_fit_takes(n, batch, drop_last):
    net = fnn.MLP((2, 1))
    x, y = jnp.ones((n, 2)), jnp.zeros((n, 1))
    _, h = fnn.fit(
        net, net.init(jax.random.key(0)), (x, y), loss="mse", epochs=3, batch_size=batch, drop_last=drop_last,
        key=jax.random.key(1), progress=False,
    )  # fmt: skip
    assert fnn.steps_per_epoch(n, batch, drop_last) * 3 == h["steps"]


def test_per_epoch_schedule_in_fit_is_the_hand_written_plumbing(x64):
    rng = np.random.default_rng(0)
    x, y = jnp.asarray(rng.normal(size=(50, 3))), jnp.asarray(rng.integers(0, 2, 50))
    net = fnn.MLP((3, 6, 2), hidden="tanh", output="softmax")
    params = net.init(jax.random.key(0), dtype=jnp.float64)
    sched = optax.exponential_decay(0.5, transition_steps=1, decay_rate=0.7)  # a rate per epoch
    steps = fnn.steps_per_epoch(50, 16)
    got, _ = fnn.fit(
        net, params, (x, y), loss="cross_entropy", optimizer=optax.sgd(fnn.per_epoch(sched, steps)), epochs=5,
        batch_size=16, shuffle=False, progress=False,
    )  # fmt: skip

    # the plumbing: inject_hyperparams, and the rate written into the state by hand at each epoch
    step = fnn.make_step(net, "cross_entropy", optax.inject_hyperparams(optax.sgd)(learning_rate=0.5))
    state = step.init(params)
    for epoch in range(5):
        rate = sched(jnp.asarray(epoch, jnp.int32))  # as the optimizer computes it from its int32 step count
        hyper = {**state.opt_state.hyperparams, "learning_rate": jnp.asarray(rate, jnp.float64)}
        state = state._replace(opt_state=state.opt_state._replace(hyperparams=hyper))
        for lo in range(0, 50, 16):
            state, _ = step(state, x[lo : lo + 16], y[lo : lo + 16])
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(state.params)):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15)


def test_set_hyperparams_is_the_two_replace_calls():
    net = fnn.MLP((2, 3, 1), hidden="tanh")
    step = fnn.make_step(net, "mse", optax.inject_hyperparams(optax.sgd)(learning_rate=0.1, momentum=0.9))
    state = step.init(net.init(jax.random.key(0)))
    by_hand = state._replace(
        opt_state=state.opt_state._replace(hyperparams={**state.opt_state.hyperparams, "learning_rate": jnp.float32(0.01)})
    )
    mine = fnn.set_hyperparams(state, learning_rate=0.01)
    for a, b in zip(jax.tree.leaves(mine), jax.tree.leaves(by_hand)):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)
    x, y = jnp.ones((4, 2)), jnp.zeros((4, 1))
    np.testing.assert_array_equal(step(mine, x, y)[0].params[0]["W"], step(by_hand, x, y)[0].params[0]["W"])


def test_set_hyperparams_reaches_inside_a_chain_and_names_mistakes():
    net = fnn.MLP((2, 1))
    tx = optax.chain(optax.clip_by_global_norm(1.0), optax.inject_hyperparams(optax.adam)(learning_rate=1e-3))
    state = fnn.make_step(net, "mse", tx).init(net.init(jax.random.key(0)))
    new = fnn.set_hyperparams(state, learning_rate=5e-4)
    assert float(new.opt_state[1].hyperparams["learning_rate"]) == pytest.approx(5e-4)
    assert float(state.opt_state[1].hyperparams["learning_rate"]) == pytest.approx(1e-3)  # the old state is untouched
    with pytest.raises(ValueError, match=r"\['decay'\] are not hyperparameters"):
        fnn.set_hyperparams(state, decay=0.1)
    plain = fnn.make_step(net, "mse", optax.sgd(0.1)).init(net.init(jax.random.key(0)))
    with pytest.raises(ValueError, match="needs an optimizer made with optax.inject_hyperparams"):
        fnn.set_hyperparams(plain, learning_rate=0.1)
    with pytest.raises(TypeError, match="`state` must be a TrainState"):
        fnn.set_hyperparams({"learning_rate": 0.1}, learning_rate=0.1)
    with pytest.raises(ValueError, match="at least one name=value"):
        fnn.set_hyperparams(state)


def test_per_epoch_and_steps_per_epoch_name_bad_input():
    with pytest.raises(TypeError, match="`schedule` must be callable"):
        fnn.per_epoch(0.1, 10)
    with pytest.raises(ValueError, match=r"`steps` must be an int in \[1, 2147483647\], got 0"):
        fnn.per_epoch(optax.constant_schedule(0.1), 0)
    with pytest.raises(ValueError, match=r"`batch_size` must be an int in \[1, inf\), got 0"):
        fnn.steps_per_epoch(10, 0)


def test_set_hyperparams_inside_jit():
    """A rate computed inside a compiled loop (a traced value) is set as a concrete one is."""
    net = fnn.MLP((2, 1))
    step = fnn.make_step(net, "mse", optax.inject_hyperparams(optax.sgd)(learning_rate=0.1))
    state = step.init(net.init(jax.random.key(0)))
    traced = jax.jit(lambda s, r: fnn.set_hyperparams(s, learning_rate=r * 2))(state, jnp.float32(0.005))
    assert float(traced.opt_state.hyperparams["learning_rate"]) == pytest.approx(0.01)
    assert traced.opt_state.hyperparams["learning_rate"].dtype == state.opt_state.hyperparams["learning_rate"].dtype
