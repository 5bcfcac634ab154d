"""The one walk over an optimizer's closures (fnn/train/_fingerprint.py) and its two readings:
``fingerprint`` (OptimizerKey, the compilation cache) and ``describe`` (a checkpoint's optimizer)."""

import functools
import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from fnn.train._describe import describe, difference, opaque
from fnn.train._fingerprint import MAX_ARRAY, MAX_DEPTH, OptimizerKey, _Opaque, fingerprint

OPTIMIZERS = {
    "sgd 0.5": lambda: optax.sgd(0.5),
    "sgd 0.1": lambda: optax.sgd(0.1),
    "sgd momentum": lambda: optax.sgd(0.5, momentum=0.9),
    "adam": lambda: optax.adam(1e-3),
    "adamw": lambda: optax.adamw(1e-3),
    "chain": lambda: optax.chain(optax.clip_by_global_norm(1.0), optax.adam(1e-3)),
    "injected": lambda: optax.inject_hyperparams(optax.sgd)(learning_rate=0.1),
    "partial": lambda: functools.partial(optax.sgd, 0.5, nesterov=True),
    "array": lambda: optax.masked(optax.sgd(0.5), np.array([True, False])),
    "dict": lambda: optax.multi_transform({"a": optax.sgd(0.5), "b": optax.adam(1e-3)}, ("a", "b")),
}


def _scale(factor):
    def update(g, s, p=None):
        return jax.tree_util.tree_map(lambda a: factor * a, g), s

    return optax.GradientTransformation(lambda p: optax.EmptyState(), update)


def test_both_readings_tell_the_same_optimizers_apart():
    """Equal fingerprints exactly where the descriptions are equal, fresh objects each time."""
    names = list(OPTIMIZERS)
    for a in names:
        for b in names:
            same_fp = fingerprint(OPTIMIZERS[a]()) == fingerprint(OPTIMIZERS[b]())
            same_d = describe(OPTIMIZERS[a]()) == describe(OPTIMIZERS[b]())
            assert same_fp == same_d == (a == b), (a, b)
        assert OptimizerKey(OPTIMIZERS[a]()).by_structure
        assert hash(OptimizerKey(OPTIMIZERS[a]())) == hash(OptimizerKey(OPTIMIZERS[a]()))


def test_a_description_survives_json_and_names_the_captured_value_that_differs():
    d = describe(OPTIMIZERS["chain"]())
    assert json.loads(json.dumps(d)) == d and not opaque(d)
    assert difference(describe(_scale(0.5)), describe(_scale(0.25)), names=("saved", "now")) == (
        "a captured value is 0.5 in saved and 0.25 in now (in test_optimizer_walk._scale)"
    )


@pytest.mark.parametrize("n", [8, 9, MAX_ARRAY + 1])
def test_captured_arrays_small_ones_shown_large_ones_only_described(n):
    a, b = np.arange(n, dtype=np.float32), np.arange(n, dtype=np.float32)
    b[-1] = -1
    da, db = describe(_scale(a)), describe(_scale(b))
    assert da == describe(_scale(a.copy())) and da != db
    assert not opaque(da)
    cell = da[2][1][3][0]  # the update function's one captured value
    assert cell[:3] == ["array", "<f4", [n]]
    assert (cell[3] == repr(a.tolist())) == (n <= 8)
    if n <= MAX_ARRAY:
        assert fingerprint(_scale(a)) == fingerprint(_scale(a.copy())) != fingerprint(_scale(b))
    else:  # too large to compare by value within the process: the key falls back to identity
        with pytest.raises(_Opaque):
            fingerprint(_scale(a))
        opt = _scale(a)
        assert not OptimizerKey(opt).by_structure and OptimizerKey(opt) == OptimizerKey(opt) != OptimizerKey(_scale(a))


def _unreadable():
    """What neither reading can see through, each made fresh."""

    def empty_cell():
        def update(g, s, p=None):
            return later, s  # noqa: F821  (read after `del later`: an empty cell)

        made = optax.GradientTransformation(lambda p: optax.EmptyState(), update)
        later = 1.0
        del later
        return made

    def deleted():
        x = jnp.ones(3)
        x.delete()
        return _scale(x)

    def deep():
        return _scale(functools.reduce(lambda a, _: [a], range(MAX_DEPTH + 2), 1.0))

    return {"an object": lambda: _scale(object()), "an empty cell": empty_cell, "a deleted array": deleted, "deep": deep}


@pytest.mark.parametrize("what", list(_unreadable()))
def test_what_cannot_be_read_is_opaque_to_both_readings(what):
    make = _unreadable()[what]
    opt = make()
    with pytest.raises(_Opaque):
        fingerprint(opt)
    key = OptimizerKey(opt)
    assert not key.by_structure and key == OptimizerKey(opt) and key != OptimizerKey(make())
    assert hash(key) == hash(OptimizerKey(opt))
    d = describe(opt)
    assert opaque(d) and json.loads(json.dumps(d)) == d


def test_a_tracer_is_opaque_to_both_readings():
    seen = {}

    def f(x):
        opt = _scale(x)
        seen["key"], seen["description"] = OptimizerKey(opt), describe(opt)
        return x

    jax.jit(f)(1.0)
    assert not seen["key"].by_structure and opaque(seen["description"])


def test_the_readings_differ_where_their_uses_do():
    """Bytes are a value within the process but are not written to a checkpoint; -0.0 and 0.0 key one
    program (they compare equal) but are written apart (repr)."""
    assert fingerprint(_scale(b"ab")) == fingerprint(_scale(b"ab")) != fingerprint(_scale(b"ac"))
    assert opaque(describe(_scale(b"ab")))
    assert fingerprint(_scale(-0.0)) == fingerprint(_scale(0.0))
    assert describe(_scale(-0.0)) != describe(_scale(0.0))
    assert fingerprint(_scale(np.float32(0.5))) != fingerprint(_scale(0.5)) and describe(_scale(np.float32(0.5))) != describe(
        _scale(0.5)
    )
