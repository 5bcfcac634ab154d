"""fnn.train.engine: the compiled loop's options for integrations (masked, weighted, host orders, the
plateau rule) against fit's own run and against scikit-learn's rule written out here."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import fnn
from fnn.train import engine
from fnn.train.optim import sklearn_adam, sklearn_sgd


def _sklearn_rule(losses, tol, n_iter_no_change, adaptive, lr=0.1):
    """scikit-learn's _fit_stochastic stopping (training loss) and SGD's adaptive rate, as it reads there."""
    best, count, rates = np.inf, 0, []
    for epoch, loss in enumerate(losses, 1):
        if loss > best - tol:
            count += 1
        else:
            count = 0
        best = min(best, loss)
        if count > n_iter_no_change:
            if not adaptive or lr <= 1e-6:
                return epoch, rates
            lr /= 5.0
            count = 0
        rates.append(lr)
    return None, rates


@pytest.mark.parametrize("adaptive", [False, True])
def test_plateau_rule_is_sklearns_on_host_and_in_the_graph(adaptive):
    rng = np.random.default_rng(0)
    losses = np.concatenate([np.linspace(1.0, 0.5, 5), 0.5 + rng.uniform(-0.004, 0.004, 200)])
    rules = engine.Stops(-np.inf, 0, 0.01, 2.0, 5.0, 1e-6)
    expected_stop, expected_rates = _sklearn_rule(losses, 0.01, 2, adaptive, lr=1e-4)
    for xp in (np, jnp):
        state, rate, stopped_at, rates = engine.Plateau(xp.asarray(np.inf), xp.asarray(0)), 1e-4, None, []
        if xp is jnp:
            rule = jax.jit(lambda s, loss, r: engine.plateau_rule(s, loss, r, rules, adaptive), static_argnums=())
        else:
            rule = lambda s, loss, r: engine.plateau_rule(s, loss, r, rules, adaptive, xp=np)
        for epoch, loss in enumerate(losses, 1):
            state, rate, _, stop = rule(state, loss, rate)
            if bool(stop):
                stopped_at = epoch
                break
            rates.append(float(rate))
        assert stopped_at == expected_stop is not None
        np.testing.assert_allclose(rates, expected_rates, rtol=1e-12 if xp is np else 1e-6)


def test_masked_weighted_run_with_host_orders_is_fits_run(x64):
    """Rows padded to 12 and the batch to 6 (masked lanes), weights 1, the orders fit's unshuffled ones:
    the same batches (4, 4, 2) and updates as fit, to rounding."""
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(10, 3)), rng.integers(0, 2, 10)
    net = fnn.MLP((3, 5, 2), hidden="tanh", output="softmax")
    params = net.init(jax.random.key(0), dtype=jnp.float64)
    want, hist = fnn.fit(
        net, params, (x, y), loss="cross_entropy", optimizer=optax.sgd(0.3), epochs=4, batch_size=4, shuffle=False
    )

    plan = engine.make_plan(net, "cross_entropy", optax.sgd(0.3), "manual", rows=12, batch_size=6)
    X, T, w = np.zeros((12, 3)), np.zeros((12, 2)), np.zeros(12)
    X[:10], T[:10], w[:10] = x, np.eye(2)[y], 1.0
    orders = np.zeros((4, 12), np.int32)
    orders[:, :10] = np.arange(10)
    arrays = engine.Arrays(
        jnp.asarray(X), jnp.asarray(T), None, None, None, w=jnp.asarray(w), sizes=np.array([10, 4], np.int32), orders=orders
    )
    carry = engine.advance(plan, engine.new_carry(plan, params), arrays, engine.Stops(-np.inf, 0), 0, 4)
    assert int(carry.epoch) == 4 and int(carry.stop) == engine.RUNNING and int(carry.state.step) == 12
    np.testing.assert_allclose(np.asarray(carry.hist["loss"][:4]), hist["loss"], rtol=1e-12)
    for a, b in zip(jax.tree.leaves(carry.state.params), jax.tree.leaves(want)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)


def test_plateau_reduce_changes_the_optimizer_rate_in_the_graph(x64):
    net = fnn.MLP((2, 1))
    params = net.init(jax.random.key(0), dtype=jnp.float64)
    tx = optax.inject_hyperparams(sklearn_sgd, static_args=("nesterov",))(0.5, 0.0, False)
    plan = engine.make_plan(net, "mse", tx, "manual", rows=4, batch_size=4, plateau="reduce")
    X, T = jnp.zeros((4, 2)), jnp.zeros((4, 1))  # zero inputs and targets: the loss stops improving at once
    arrays = engine.Arrays(
        X,
        T,
        None,
        None,
        None,
        w=jnp.ones(4),
        sizes=np.array([4, 4], np.int32),
        orders=np.tile(np.arange(4, dtype=np.int32), (9, 1)),
    )
    rules = engine.Stops(-np.inf, 0, 1e-3, 1.0, 5.0, 0.5 / 5**2 + 1e-9)
    carry = engine.advance(plan, engine.new_carry(plan, params), arrays, rules, 0, 9)
    # epochs 2, 3 do not improve -> fires after epoch 3 (0.5 -> 0.1), after 5 (-> 0.02 ≤ min_rate), stops after 7
    assert int(carry.stop) == engine.PLATEAU and int(carry.epoch) == 7
    assert float(carry.state.opt_state.hyperparams["learning_rate"]) == pytest.approx(0.02)
    assert engine.STOP_REASONS[int(carry.stop)] == "plateau"


def test_make_plan_names_a_bad_plateau():
    with pytest.raises(ValueError, match="`plateau` must be None, 'stop' or 'reduce', got 'halve'"):
        engine.make_plan(fnn.MLP((2, 1)), "mse", optax.sgd(0.1), "manual", rows=4, batch_size=4, plateau="halve")


def test_sklearn_optimizers_are_sklearns(x64):
    """Against scikit-learn's own _stochastic_optimizers (an independent implementation), four steps."""
    from sklearn.neural_network._stochastic_optimizers import AdamOptimizer, SGDOptimizer

    rng = np.random.default_rng(4)
    shapes = [(3, 2), (2,)]
    for ours, theirs in [
        (sklearn_adam(0.01, 0.8, 0.9, 1e-3), lambda p: AdamOptimizer(p, 0.01, 0.8, 0.9, 1e-3)),
        (sklearn_sgd(0.05, 0.7, True), lambda p: SGDOptimizer(p, 0.05, "constant", 0.7, True)),
        (sklearn_sgd(0.05, 0.7, False), lambda p: SGDOptimizer(p, 0.05, "constant", 0.7, False)),
    ]:
        start = [rng.normal(size=s) for s in shapes]
        mine, ref = [jnp.asarray(a) for a in start], [a.copy() for a in start]
        opt, state = theirs(ref), ours.init(mine)
        for _ in range(4):
            grads = [rng.normal(size=s) for s in shapes]
            updates, state = ours.update([jnp.asarray(g) for g in grads], state, mine)
            mine = optax.apply_updates(mine, updates)
            opt.update_params(ref, grads)
        for a, b in zip(mine, ref):
            np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15)
