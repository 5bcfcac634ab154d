"""scikit-learn's two minibatch optimizers as optax transformations (``fnn.sklearn`` trains with them;
``fit`` takes them like any optax optimizer).

- :func:`sklearn_sgd` — ``sklearn.neural_network``'s SGD: the velocity holds steps already scaled by
  the learning rate, ``v ← μ v − η g``, and the update is ``v`` (``μ v − η g`` with Nesterov).
- :func:`sklearn_adam` — its Adam, Kingma & Ba's Algorithm 1 in their "efficient" ordering:
  ``−η √(1−β₂ᵗ)/(1−β₁ᵗ) · m / (√v + ε)``. ε is added to the *uncorrected* √v, so this is not
  :func:`optax.adam` with other numbers: the two differ while √v is near ε.

Both are plain ``optax.GradientTransformation`` factories, so ``optax.inject_hyperparams`` makes
their numbers part of the optimizer state (``fnn.sklearn`` does, to change the rate between epochs).

Example:
  >>> import jax.numpy as jnp
  >>> tx = sklearn_adam(0.1)
  >>> params = {"w": jnp.ones(2)}
  >>> updates, state = tx.update({"w": jnp.array([1.0, -2.0])}, tx.init(params), params)
  >>> [round(float(u), 4) for u in updates["w"]]  # the first step is −η·sign(g), up to ε
  [-0.1, 0.1]
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

__all__ = ["SklearnAdamState", "sklearn_adam", "sklearn_sgd"]


def sklearn_sgd(learning_rate: Any, momentum: Any = 0.9, nesterov: bool = True) -> optax.GradientTransformation:
    """scikit-learn's SGD with momentum: ``v ← μ v − η g``; the update is ``v``, or ``μ v − η g`` with Nesterov.

    The velocity holds steps already scaled by η (a later η leaves it as it is), so η is applied
    before the momentum trace: ``trace(−η g)`` is that velocity.
    """
    return optax.chain(optax.scale(-learning_rate), optax.trace(decay=momentum, nesterov=nesterov))


class SklearnAdamState(NamedTuple):
    """State of :func:`sklearn_adam`: the step count and the two moment estimates."""

    t: jax.Array  # int32, steps taken
    mu: optax.Updates
    nu: optax.Updates


def sklearn_adam(learning_rate: Any, b1: Any = 0.9, b2: Any = 0.999, eps: Any = 1e-8) -> optax.GradientTransformation:
    """scikit-learn's Adam: ``−η √(1−β₂ᵗ)/(1−β₁ᵗ) · m / (√v + ε)`` with ``m``, ``v`` the uncorrected moments."""

    def init(params: optax.Params) -> SklearnAdamState:
        zeros = jax.tree.map(jnp.zeros_like, params)
        return SklearnAdamState(jnp.zeros((), jnp.int32), zeros, zeros)

    def update(
        grads: optax.Updates, state: SklearnAdamState, params: optax.Params | None = None
    ) -> tuple[optax.Updates, SklearnAdamState]:
        count = state.t + 1
        mu = jax.tree.map(lambda m, g: b1 * m + (1 - b1) * g, state.mu, grads)
        nu = jax.tree.map(lambda v, g: b2 * v + (1 - b2) * g * g, state.nu, grads)
        t = count.astype(jnp.result_type(b1))
        rate = learning_rate * jnp.sqrt(1 - b2**t) / (1 - b1**t)
        updates = jax.tree.map(lambda m, v: -rate * m / (jnp.sqrt(v) + eps), mu, nu)
        return updates, SklearnAdamState(count, mu, nu)

    return optax.GradientTransformation(init, update)
