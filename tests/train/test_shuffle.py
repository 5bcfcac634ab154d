"""fnn.shuffle.permutation: a permutation, uniform, the same under vmap, and the bound on its rounds;
fnn._compile's option probe."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

import fnn
from fnn import _compile


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 3000), st.integers(0, 2**31 - 1))
def test_permutation_is_a_permutation_of_range_n(n, seed):
    p = np.asarray(fnn.shuffle.permutation(jax.random.key(seed), n))
    assert p.dtype == np.int32 and p.shape == (n,)
    assert np.array_equal(np.sort(p), np.arange(n))


def test_rounds_give_the_random_bits_jax_permutation_asks_for():
    for n in [2, 3, 4, 100, 255, 256, 257, 300, 1000, 60000, 2**20, 2**24]:
        r = 32 - max(1, (n - 1).bit_length())
        assert fnn.shuffle.rounds(n) * r >= 3 * math.log2(n), n
        assert (fnn.shuffle.rounds(n) - 1) * r < 3 * math.log2(n), n  # no more sorts than needed
    assert fnn.shuffle.rounds(2**25) == 0  # fewer than MIN_RANDOM_BITS: JAX's permutation


def test_all_24_orders_of_4_are_equally_likely():
    draws = 48000
    ps = np.asarray(jax.jit(jax.vmap(lambda k: fnn.shuffle.permutation(k, 4)))(jax.random.split(jax.random.key(1), draws)))
    codes = ps @ np.array([64, 16, 4, 1])
    counts = np.unique(codes, return_counts=True)[1]
    assert counts.size == 24
    assert stats.chisquare(counts).pvalue > 1e-4


def test_each_example_lands_in_each_position_equally_often():
    # 300 examples (two sorts): the first position's occupant and example 0's position, each uniform
    draws = 30000
    ps = np.asarray(jax.jit(jax.vmap(lambda k: fnn.shuffle.permutation(k, 300)))(jax.random.split(jax.random.key(2), draws)))
    first = np.bincount(ps[:, 0], minlength=300)
    where0 = np.bincount(np.argmax(ps == 0, axis=1), minlength=300)
    assert stats.chisquare(first).pvalue > 1e-4
    assert stats.chisquare(where0).pvalue > 1e-4


def test_vmapped_rows_equal_separate_calls_bitwise():
    keys = jax.random.split(jax.random.key(3), 5)
    many = np.asarray(jax.vmap(lambda k: fnn.shuffle.permutation(k, 37))(keys))
    for k, row in zip(keys, many):
        assert np.array_equal(np.asarray(fnn.shuffle.permutation(k, 37)), row)


def test_past_the_packed_range_it_is_jaxs_permutation(monkeypatch):
    monkeypatch.setattr(fnn.shuffle, "MIN_RANDOM_BITS", 40)  # no n leaves that many random bits
    key = jax.random.key(4)
    assert fnn.shuffle.rounds(10) == 0
    assert np.array_equal(np.asarray(fnn.shuffle.permutation(key, 10)), np.asarray(jax.random.permutation(key, 10)))


def test_an_option_this_jaxlib_does_not_know_is_dropped(monkeypatch):
    assert _compile._accepted((("xla_no_such_option_anywhere", 1),)) is False
    monkeypatch.setattr(_compile, "MANY", {"xla_no_such_option_anywhere": 1})
    assert _compile.many_options() is None
    monkeypatch.undo()
    try:  # the real one: known to jaxlib 0.10 and 0.11 on the CPU, not to 0.6 (the lowest jaxlib fnn supports)
        jax.jit(jnp.negative, compiler_options=dict(_compile.MANY))(jnp.zeros(()))
        known = jax.default_backend() == "cpu"
    except Exception:  # XlaRuntimeError: "No such compile option"
        known = False
    assert _compile.many_options() == (_compile.MANY if known else None)
    f = jax.jit(jnp.negative, compiler_options=_compile.many_options())
    assert float(f(jnp.ones(()))) == -1.0


@pytest.mark.parametrize("grad", ["manual", "autodiff"])
def test_fit_many_with_its_options_equals_separate_fits(grad):
    # the shapes the options were measured on: tiny products, many networks, per-network shuffles
    net = fnn.MLP((2, 8, 2), hidden="tanh", output="softmax")
    x, y = fnn.datasets.xor()
    key, opt = jax.random.key(6), optax.sgd(0.5)
    kw = {"loss": "cross_entropy", "optimizer": opt, "epochs": 30, "batch_size": 2, "grad": grad, "progress": False}
    ps, hist = fnn.fit_many(net, (x, y), key=key, num_networks=3, **kw)
    init_key, shuffle_key = jax.random.split(key)
    for i, (ki, ks) in enumerate(zip(jax.random.split(init_key, 3), jax.random.split(shuffle_key, 3))):
        p, h = fnn.fit(net, net.init(ki), (x, y), key=ks, **kw)
        for a, b in zip(jax.tree_util.tree_leaves(fnn.sweep.network(net, ps, i)), jax.tree_util.tree_leaves(p)):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(hist["loss"][i], h["loss"], rtol=1e-5)
