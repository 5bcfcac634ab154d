"""The private routes into other libraries fnn takes where no public one exists, each isolated in one
function (fnn 0.2, item 4): a JAX upgrade or a scikit-learn upgrade that breaks one fails here, by name."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fnn.train import _rundir


@pytest.mark.parametrize("value", [np.asarray(0.5, np.float32), np.asarray(3, np.int32), np.arange(3.0, dtype=np.float32)])
def test_weak_typed_restore_keeps_value_dtype_and_weak_type(value):
    # a restored checkpoint's weakly typed leaves (an inject_hyperparams number) must be weak again: the
    # compiled loop is keyed on weak types. jax._src.lax.lax._convert_element_type is the only way to make one.
    a = _rundir._weak(value)
    assert isinstance(a, jax.Array) and a.dtype == value.dtype and a.shape == value.shape
    np.testing.assert_array_equal(np.asarray(a), value)
    assert a.weak_type
    assert (a + jnp.ones((), jnp.float16)).dtype == jnp.float16  # it gives way to a strong dtype, as a weak number does
