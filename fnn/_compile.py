"""Compiler options fnn passes to XLA for some of its programs, each measured.

- :data:`QUICK`, for programs that run briefly, where compiling dominates: on the CPU, XLA's
  optimisation passes take most of a compilation and buy little for a program run once or for one
  epoch. Measured on a 2-core CPU: a ``fit_many`` loop 0.9 -> 0.3 s to compile;
  ``compare_gradients`` of a 4-16-3 network 1.35 -> 0.9 s for its first call (the same numbers to
  the last bit or within rounding; a large check runs slower, so only small ones use them).
- :data:`MANY`, for the ``fit_many`` loop: XLA:CPU (jaxlib 0.10) hands reductions to its YNNPACK
  library fusions by default, and with a network axis in front those become many tiny reductions
  (256 XOR networks: one layer's ``Σ_i h_i W_oi`` took 140 µs per step). Keeping YNNPACK for dots
  only made 256 XOR networks 168 -> 33 ms for 500 epochs and left the others as they were (spirals
  1000 -> 944 ms, one network unchanged).

Options a jaxlib does not know are dropped (checked once per process by compiling a tiny program):
they tune XLA:CPU, they never change what is computed.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

QUICK = {"xla_backend_optimization_level": 0, "xla_cpu_use_fusion_emitters": False}
MANY = {"xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_DOT"}

# Below this many multiply-adds of work a program compiled with QUICK finishes before the time
# its optimisation would have taken has passed (gradcheck: a 64-128-10 check at batch 256 is ~5e10).
QUICK_WORK = 10**8


def quick_options() -> dict | None:
    """:data:`QUICK` on the CPU (where it was measured), None elsewhere."""
    return QUICK if jax.default_backend() == "cpu" else None


def many_options() -> dict | None:
    """:data:`MANY` on the CPU where this jaxlib accepts it, None elsewhere."""
    return MANY if jax.default_backend() == "cpu" and _accepted(tuple(MANY.items())) else None


@functools.cache
def _accepted(options: tuple) -> bool:
    try:
        jax.jit(jnp.negative, compiler_options=dict(options))(jnp.zeros(()))
    except Exception:
        return False
    return True


def use_quick(work: float) -> bool:
    """Whether a program of ``work`` multiply-adds should compile with :data:`QUICK`."""
    return work <= QUICK_WORK and jax.default_backend() == "cpu"
