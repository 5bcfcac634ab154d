"""The shared argument checks (fnn/_checks.py): what each accepts and returns, and the message of each refusal."""

import math

import jax.numpy as jnp
import numpy as np
import pytest

from fnn import _checks as C


def test_check_int_accepts_ints_in_range_and_returns_python_ints():
    assert C.check_int(np.int32(3), "n", 1, 3) == 3 and type(C.check_int(np.int64(0), "n")) is int
    assert C.check_int(None, "every", 1, allow_none=True) is None


@pytest.mark.parametrize(
    "value, kwargs, err, match",
    [
        (True, {}, TypeError, "`n` must be an int >= 0, got bool: True"),
        (2.0, {"low": 1}, TypeError, "`n` must be an int >= 1, got float: 2.0"),
        (None, {"low": 1}, TypeError, "`n` must be an int >= 1, got NoneType: None"),
        ("3", {"allow_none": True}, TypeError, "`n` must be an int >= 0 or None, got str: '3'"),
        (0, {"low": 1}, ValueError, r"`n` must be an int in \[1, inf\), got 0"),
        (11, {"low": 1, "high": 10}, ValueError, r"`n` must be an int in \[1, 10\], got 11"),
    ],
)
def test_check_int_refusals(value, kwargs, err, match):
    with pytest.raises(err, match=match):
        C.check_int(value, "n", **kwargs)


def test_check_number_accepts_reals_in_the_interval():
    assert C.check_number(np.float32(0.5), "r", 0.0, low_open=True) == 0.5
    assert C.check_number(jnp.asarray(2), "r") == 2.0 and type(C.check_number(1, "r", 0, 1)) is float
    assert C.check_number(0, "r", 0, 1, high_open=True) == 0.0 and C.check_number(None, "r", allow_none=True) is None


@pytest.mark.parametrize(
    "value, kwargs, err, match",
    [
        (True, {}, TypeError, "`r` must be a real number, got bool: True"),
        (1j, {}, TypeError, r"`r` must be a real number, got complex: 1j"),
        ("1", {"allow_none": True}, TypeError, "`r` must be a real number or None, got str: '1'"),
        (np.ones(2), {}, TypeError, "`r` must be a real number, got ndarray"),
        (math.nan, {}, ValueError, "`r` must be a finite number, got nan"),
        (math.inf, {"low": 0.0}, ValueError, "`r` must be a finite number >= 0.0, got inf"),
        (0.0, {"low": 0.0, "low_open": True}, ValueError, "`r` must be a finite number > 0.0, got 0.0"),
        (1, {"low": 0, "high": 1, "low_open": True, "high_open": True}, ValueError, r"`r` must be a number in \(0, 1\), got 1.0"),
        (-0.5, {"low": 0, "high": 1, "high_open": True}, ValueError, r"`r` must be a number in \[0, 1\), got -0.5"),
        (2.5, {"low": 0, "high": 2}, ValueError, r"`r` must be a number in \[0, 2\], got 2.5"),
    ],
)
def test_check_number_refusals(value, kwargs, err, match):
    with pytest.raises(err, match=match):
        C.check_number(value, "r", **kwargs)


def test_check_flag_and_check_choice():
    assert C.check_flag(np.bool_(True), "f") is True and C.check_flag(None, "f", allow_none=True) is None
    with pytest.raises(TypeError, match="`f` must be True or False, got int: 1"):
        C.check_flag(1, "f")
    with pytest.raises(TypeError, match="`f` must be True or False or None, got str: 'no'"):
        C.check_flag("no", "f", allow_none=True)
    assert C.check_choice("adam", "solver", ("sgd", "adam")) == "adam"
    with pytest.raises(ValueError, match="`solver` must be one of 'sgd', 'adam', got str: 'lbfgs'"):
        C.check_choice("lbfgs", "solver", ("sgd", "adam"))
    with pytest.raises(ValueError, match="`solver` must be one of 'sgd', 'adam', got NoneType: None"):
        C.check_choice(None, "solver", ("sgd", "adam"))
