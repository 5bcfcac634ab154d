"""The order of an epoch's examples: a uniformly random permutation, drawn by sorting packed keys.

``jax.random.permutation`` sorts random 32-bit keys together with the values (a two-operand sort,
whose comparator XLA:CPU calls per comparison). :func:`permutation` packs each key and its position
into one ``uint32`` — random bits above, the position below — and sorts that single array, which
XLA sorts as plain integers; the low bits of the sorted array are the permutation. Measured on a
2-core CPU, one compiled epoch's permutation: 300 examples 46 -> 30 µs, 60,000 examples 25.7 ->
7.2 ms, and for 256 networks of 300 examples each (``fit_many``) 9.0 -> 3.8 ms.

Uniformity: the position below the random bits breaks ties the way a stable sort does, so a round
is a uniform draw whenever its keys are distinct. With ``r = 32 - ⌈log₂ n⌉`` random bits per
round, rounds are repeated (each permuting the last) until ``rounds · r ≥ 3 log₂ n``, the bound
``jax.random.permutation`` uses for its 32-bit keys (tjablin's criterion, as in TensorFlow's
``random_ops``): the chance that some pair of examples is tied in every round is about 1/n.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from fnn import _checks

Array = jax.Array

# The fewest random bits a round may have: beyond 2**24 examples the position would take too much
# of the key, and :func:`permutation` falls back to ``jax.random.permutation``.
MIN_RANDOM_BITS = 8


def rounds(n: int) -> int:
    """The number of sorts :func:`permutation` makes for ``n`` examples (0 where it falls back to JAX's).

    >>> rounds(4), rounds(300), rounds(60000), rounds(2**30)
    (1, 2, 3, 0)
    """
    n = _checks.check_int(n, "n", 0)
    bits = max(1, (n - 1).bit_length())
    r = 32 - bits
    if r < MIN_RANDOM_BITS:
        return 0
    return max(1, math.ceil(3 * math.log2(max(n, 2)) / r))


def permutation(key: Array, n: int) -> Array:
    """A uniformly random permutation of ``range(n)`` (int32) drawn from ``key``.

    Under ``jax.vmap`` over keys, each row equals the call with its own key, bitwise.

    >>> p = permutation(jax.random.key(0), 10)
    >>> sorted(p.tolist()) == list(range(10)), p.dtype
    (True, dtype('int32'))
    """
    _checks.check_key(key, "key")
    n = _checks.check_int(n, "n", 0, np.iinfo(np.int32).max)  # positions are int32
    _checks.check_memory(2 * n, 4, f"a permutation of `n` = {n}")
    k = rounds(n)
    if k == 0:
        return jax.random.permutation(key, n).astype(jnp.int32)
    bits = max(1, (n - 1).bit_length())
    pos = jnp.arange(n, dtype=jnp.uint32)
    perm = pos
    for sub in jax.random.split(key, k):
        packed = jnp.sort(jax.random.bits(sub, (n,), jnp.uint32) >> bits << bits | pos)
        perm = perm[packed & ((1 << bits) - 1)]
    return perm.astype(jnp.int32)
