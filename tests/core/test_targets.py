"""Target forms (fnn/core/targets.py): the forms each loss accepts, converted to the output's shape
and dtype; what is refused and how the message says so."""

import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from fnn.core import losses
from fnn.core import targets as T


def test_the_target_forms_keep_their_old_names():
    assert T.targets is losses.targets is fnn.losses.targets
    assert T.TARGET_FORMS is losses.TARGET_FORMS == ("real", "classes", "binary", "counts")
    forms = r"\('real', 'classes', 'binary', 'counts'\)"
    with pytest.raises(ValueError, match=rf"Loss `targets` must be one of {forms}, got 'ordinal'"):
        fnn.Loss("mine", lambda u, y: u, lambda u, y: u, targets="ordinal")


def test_a_loss_of_ones_own_gets_its_form():
    """A user-made loss is resolved by the record it is, and its form (binary here) is what is checked."""
    mine = fnn.Loss("mine", lambda u, y: ((u - y) ** 2).sum(-1), lambda u, y: 2 * (u - y), targets="binary")
    np.testing.assert_array_equal(T.targets(mine, np.array([1, 0]), 1, (2,), jnp.float32), [[1.0], [0.0]])
    with pytest.raises(ValueError, match=r"`y` must be targets in \[0, 1\], but its values span \[0.0, 2.0\]"):
        T.targets(mine, np.array([0.0, 2.0]), 1, (2,), jnp.float32)
    y = np.array([[0.5, 1.0]])
    assert T.targets(mine, y, 2, (1,), None, convert=False) is y  # validated only, returned as it came


@pytest.mark.parametrize(
    "loss, y, n_out, batch, expected",
    [
        ("cross_entropy", np.array([0, 2]), 3, (2,), np.eye(3)[[0, 2]]),
        ("cross_entropy", np.eye(3)[[1, 0]], 3, (2,), np.eye(3)[[1, 0]]),
        ("cross_entropy", np.array(1), 3, (), np.eye(3)[1]),
        ("mse", np.array([1, 0]), 2, (2,), np.eye(2)[[1, 0]]),
        ("mse", np.array([0.5, -1.0]), 1, (2,), np.array([[0.5], [-1.0]])),
        ("bce", np.array([1, 0, 1]), 1, (3,), np.array([[1.0], [0.0], [1.0]])),
        ("bce", np.array([[1.0, 0.0]]), 2, (1,), np.array([[1.0, 0.0]])),
    ],
)
def test_targets_accepted_forms(loss, y, n_out, batch, expected):
    t = T.targets(loss, y, n_out, batch, jnp.float32)
    assert t.dtype == jnp.float32 and t.shape == (*batch, n_out)
    np.testing.assert_array_equal(t, expected)


@pytest.mark.parametrize(
    "loss, y, n_out, batch, err, match",
    [
        ("cross_entropy", np.array([0.0, 1.0]), 3, (2,), ValueError, r"float labels of shape \(B,\): cast class indices to int"),
        ("cross_entropy", np.array([0, 3]), 3, (2,), ValueError, r"class indices for 3 classes, but its values span \[0, 3\]"),
        ("cross_entropy", np.array([-1, 0]), 3, (2,), ValueError, "values span"),
        ("cross_entropy", np.eye(4)[[0, 1]], 3, (2,), ValueError, "one-hot width 4 but the network has 3 outputs"),
        ("cross_entropy", np.array([0, 1, 2]), 3, (2,), ValueError, "y has 3 rows but x is a batch of 2"),
        ("bce", np.array([[2.0], [0.0]]), 1, (2,), ValueError, r"targets in \[0, 1\]"),
        ("mse", np.array([[1.0, 2.0]]), 3, (1,), ValueError, "one-hot width 2 but the network has 3 outputs"),
        ("mse", "labels", 3, (1,), TypeError, "`y` must be an array"),
        ("mse", np.array(["a"]), 1, (1,), TypeError, "`y` must hold numbers"),
    ],
)
def test_targets_bad_input(loss, y, n_out, batch, err, match):
    with pytest.raises(err, match=match):
        T.targets(loss, y, n_out, batch, jnp.float32)
