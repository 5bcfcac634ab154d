"""An equal configuration compiles once; a different one never reuses a program it should not.

Counted with the training loop's compilation cache (``fnn.train._loop.compiled_runner``) and with JAX's
own trace counter, never with timings.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import fnn
from fnn.train import _compiled, _fingerprint, _loop

X, Y = fnn.datasets.xor()


def _misses():
    return _loop.compiled_runner.cache_info().misses


def _fit(opt, net=None, **kw):
    net = net or fnn.MLP((2, 5, 2), hidden="tanh", output="softmax")
    kw = {"loss": "cross_entropy", "epochs": 40, "progress": False} | kw
    return fnn.fit(net, net.init(jax.random.key(0)), (X, Y), optimizer=opt, **kw)


def test_idiomatic_calls_compile_once():
    _fit(optax.sgd(0.5))  # compiles (or finds) the program
    before = _misses()
    variants = [
        {},  # a fresh, equal optimizer and a re-created, equal MLP
        {"loss": fnn.losses.CROSS_ENTROPY},  # the loss as a record instead of its name
        {"epochs": 25},
        {"epochs": 3000},  # more epochs than one compiled chunk holds
        {"tol": 0.05},
        {"key": jax.random.key(7)},
    ]
    for kw in variants:
        _fit(optax.sgd(0.5), **kw)
    x2 = X + 0.25  # new data of the same shapes
    net = fnn.MLP((2, 5, 2), hidden="tanh", output="softmax")
    fnn.fit(net, net.init(jax.random.key(3)), (x2, Y), loss="cross_entropy", optimizer=optax.sgd(0.5), epochs=9, progress=False)
    assert _misses() == before


def test_validation_tol_and_patience_values_do_not_recompile():
    kw = {"validation": (X, Y), "patience": 3}
    _fit(optax.adam(0.01), **kw)
    before = _misses()
    _fit(optax.adam(0.01), **kw | {"patience": 10, "tol": 0.1, "validation": (X * 0.5, Y)})
    assert _misses() == before


def test_optimizers_with_other_hyperparameters_never_share_a_program():
    before = _misses()
    p_a, _ = _fit(optax.sgd(0.11))
    p_b, _ = _fit(optax.sgd(0.37))
    assert _misses() == before + 2
    held = optax.sgd(0.37)
    p_held, _ = _fit(held)
    assert jax.tree_util.tree_all(jax.tree_util.tree_map(lambda u, v: bool(jnp.array_equal(u, v)), p_b, p_held))
    assert not np.allclose(p_a[0]["W"], p_b[0]["W"])
    # a different transformation of the same rate, and momentum, are different programs too
    assert _fingerprint.OptimizerKey(optax.sgd(0.37)) != _fingerprint.OptimizerKey(optax.sgd(0.37, momentum=0.9))
    assert _fingerprint.OptimizerKey(optax.adam(1e-3)) != _fingerprint.OptimizerKey(optax.adamw(1e-3))


def test_an_optimizer_that_cannot_be_fingerprinted_falls_back_to_identity():
    def make():
        scale = 0.3

        def update(g, s, p=None):
            return jax.tree_util.tree_map(lambda a: -scale * a, g), s

        return optax.GradientTransformation(lambda p: optax.EmptyState(), update)

    class Opaque:  # a captured object of a class the fingerprint does not know
        pass

    thing, other = Opaque(), Opaque()
    a = optax.GradientTransformation(lambda p, t=thing: optax.EmptyState(), make().update)
    b = optax.GradientTransformation(lambda p, t=other: optax.EmptyState(), make().update)
    ka, kb = _fingerprint.OptimizerKey(a), _fingerprint.OptimizerKey(b)
    assert not ka.by_structure and ka != kb and ka == _fingerprint.OptimizerKey(a)
    assert _fingerprint.OptimizerKey(make()).by_structure  # plain closures over numbers are values
    before = _misses()
    _fit(a)
    _fit(b)
    assert _misses() == before + 2


@pytest.mark.parametrize(
    "value, same, other",
    [
        (lambda: optax.chain(optax.clip_by_global_norm(1.0), optax.adam(1e-3)), True, lambda: optax.adam(1e-3)),
        (lambda: optax.inject_hyperparams(optax.sgd)(learning_rate=0.1), True, lambda: optax.sgd(0.1)),
        (lambda: np.arange(3.0), True, lambda: np.arange(3)),
    ],
)
def test_fingerprint_values(value, same, other):
    assert _fingerprint.fingerprint(value()) == _fingerprint.fingerprint(value())
    assert _fingerprint.fingerprint(value()) != _fingerprint.fingerprint(other())


def _chunked(monkeypatch, rows):
    """Make the loop hold ``rows`` epochs of history per call; count the compiled loop's calls."""
    monkeypatch.setattr(_compiled, "CHUNK", rows)  # the compiled side makes the buffers
    _loop.compiled_init.cache_clear()  # its buffers are made at the new size
    calls = []
    runner = _loop.compiled_runner

    def counting(cfg, many, guarded=False):
        fn = runner(cfg, many, guarded)
        return lambda *a: calls.append(1) or fn(*a)

    monkeypatch.setattr(_loop, "compiled_runner", counting)
    return calls


def _fit_three():
    """Three networks in lockstep, one of which may stop early (tol)."""
    net = fnn.MLP((2, 5, 2), hidden="tanh", output="softmax")
    opt = optax.sgd(0.5)
    return fnn.fit_many(
        net,
        (X, Y),
        loss="cross_entropy",
        optimizer=opt,
        epochs=12,
        key=jax.random.key(0),
        num_networks=3,
        tol=0.3,
        progress=False,
    )


def test_history_is_the_same_whatever_the_chunk(monkeypatch):
    kw = {"epochs": 23, "validation": (X, Y), "health": True}
    _, h_one = _fit(optax.sgd(0.5), **kw)
    calls = _chunked(monkeypatch, 5)  # 23 epochs in chunks of 5
    _, h_many = _fit(optax.sgd(0.5), **kw)
    assert len(calls) == 5
    for k in ("loss", "grad_norm", "val_loss", "val_accuracy", "dead_fraction", "update_ratio"):
        assert h_one[k].shape == h_many[k].shape and np.array_equal(h_one[k], h_many[k], equal_nan=True), k
    _, hm = _fit_three()
    monkeypatch.undo()
    _loop.compiled_init.cache_clear()
    _, hm2 = _fit_three()
    assert np.array_equal(hm["loss"], hm2["loss"], equal_nan=True) and list(hm["epochs_run"]) == list(hm2["epochs_run"])
