"""Compiler options for programs that run briefly, where compiling dominates: on the CPU, XLA's
optimisation passes take most of a compilation and buy little for a program run once or for one
epoch. Measured on a 2-core CPU: a ``fit_many`` loop 0.9 -> 0.3 s to compile; ``compare_gradients``
of a 4-16-3 network 1.35 -> 0.9 s for its first call (the same numbers to the last bit or within
rounding; a large check runs slower, so only small ones use them).
"""

from __future__ import annotations

import jax

QUICK = {"xla_backend_optimization_level": 0, "xla_cpu_use_fusion_emitters": False}

# Below this many multiply-adds of work a program compiled with QUICK finishes before the time
# its optimisation would have taken has passed (gradcheck: a 64-128-10 check at batch 256 is ~5e10).
QUICK_WORK = 10**8


def quick_options() -> dict | None:
    """:data:`QUICK` on the CPU (where it was measured), None elsewhere."""
    return QUICK if jax.default_backend() == "cpu" else None


def use_quick(work: float) -> bool:
    """Whether a program of ``work`` multiply-adds should compile with :data:`QUICK`."""
    return work <= QUICK_WORK and jax.default_backend() == "cpu"
