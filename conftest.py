"""Test-session setup that has to run before anything imports JAX (this file is loaded first).

The suite is dominated by XLA compile time (each new shape or configuration compiles; on a
2-core CPU a trivial op takes ~70 ms to compile, a training loop ~4 s). Two XLA CPU flags halve
that: no LLVM optimisation passes and the older loop emitters. They change how fast the compiled
code runs, not what it computes; tests never assert timings. Set FNN_TEST_XLA_DEFAULTS=1 to test
with XLA's own defaults instead.
"""

import os

FAST_COMPILE = "--xla_cpu_use_fusion_emitters=false --xla_backend_optimization_level=0"

if os.environ.get("FNN_TEST_XLA_DEFAULTS") != "1" and FAST_COMPILE not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {FAST_COMPILE}".strip()
