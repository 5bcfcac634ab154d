"""Shared fixtures: float64 on demand (restored afterwards).

Shapes are kept few and small so that JAX compiles each primitive once and the suite stays fast.
"""

import jax
import pytest


@pytest.fixture
def x64():
    """Enable float64 for one test, then restore the caller's setting."""
    old = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    try:
        yield
    finally:
        jax.config.update("jax_enable_x64", old)
