"""The compiled training loop, for integrations that bring their own data layout and host-side rules.

``fit`` and ``fit_many`` stage a call into a :class:`Plan` and run it; ``fnn.sklearn`` runs the very
same compiled program (:func:`advance`) with the plan's other options: rows padded to a bucket and
masked (nearby data sizes share one program), a weight per row, an L2 term, epoch orders drawn on
the host (scikit-learn's ``RandomState`` shuffles) and the plateau rule (scikit-learn's stopping
rule and ``adaptive`` learning rate). One epoch is a loop over minibatches of
:func:`fnn.core.backprop.weighted_value_and_grad` and an optax update; the rule runs after it.

The protocol:

1. :func:`make_plan` — the static facts (hashable: equal plans share one compiled program);
2. :func:`new_carry` — the loop state for starting ``params`` (optimizer state, epoch 0, the rule's state);
3. :class:`Arrays` and :class:`Stops` — the data and the rules' values (traced: changing them does not
   recompile);
4. :func:`advance` — epochs ``base`` … ``until`` or until a stop rule fires; read ``carry.epoch``,
   ``carry.stop`` (:data:`STOP_REASONS`) and the chunk's rows ``carry.hist["loss"][: epoch - base]``.

This module is the engine's interface for fnn's own integrations; its names may change between
minor versions (``fit`` / ``fit_many`` are the stable API).
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
import optax

from fnn.core import losses as _losses
from fnn.core.mlp import MLP, Params
from fnn.train._compiled import (
    CHUNK,
    DIVERGED,
    PLATEAU,
    RUNNING,
    STOP_REASONS,
    Carry,
    Plateau,
    history_shapes,
    plateau_rule,
)
from fnn.train._fingerprint import OptimizerKey
from fnn.train._loop import advance as _advance
from fnn.train._plan import Arrays, Plan, Stops
from fnn.train.step import TrainState, check_grad

__all__ = [
    "CHUNK",
    "DIVERGED",
    "PLATEAU",
    "RUNNING",
    "STOP_REASONS",
    "Arrays",
    "Carry",
    "Plan",
    "Plateau",
    "Stops",
    "advance",
    "make_plan",
    "new_carry",
    "plateau_rule",
]


def make_plan(
    net: MLP,
    loss: _losses.LossLike,
    optimizer: optax.GradientTransformation,
    grad: str,
    *,
    rows: int,
    batch_size: int,
    l2: bool = False,
    report_scale: float = 1.0,
    plateau: str | None = None,
) -> Plan:
    """The plan of a masked, weighted run with host-drawn epoch orders.

    ``rows`` and ``batch_size`` are the padded sizes the program is compiled for (``Arrays.sizes``
    holds the real ones, at most these); ``plateau`` is None, ``"stop"`` or ``"reduce"`` (the latter
    needs an ``optax.inject_hyperparams`` optimizer with a ``learning_rate``).
    """
    check_grad(grad)
    if plateau not in (None, "stop", "reduce"):
        raise ValueError(f"`plateau` must be None, 'stop' or 'reduce', got {plateau!r}")
    return Plan(
        net=net,
        loss=_losses.check_pair(loss, net.output),
        optimizer=OptimizerKey(optimizer),
        grad=grad,
        n=int(rows),
        batch_size=int(batch_size),
        drop_last=False,
        shuffle=False,
        early_stopping=False,
        has_val=False,
        health=False,
        grad_norms=False,
        acc_kind=None,
        mesh=None,
        weighted=True,
        masked=True,
        host_orders=True,
        l2=bool(l2),
        report_scale=float(report_scale),
        plateau=plateau,
    )


def new_carry(plan: Plan, params: Params, opt_state: Any = None, plateau: Plateau | None = None) -> Carry:
    """The loop state at epoch 0 for ``params``: the optimizer's fresh state (``optimizer.init``, run
    eagerly) unless ``opt_state`` continues one; the plateau rule's state fresh unless given.

    Built on the host (NumPy where it can): nothing here compiles, so a first fit pays for the loop's
    program alone. The shuffling key is a placeholder: a plan with host orders never reads it.
    """
    if opt_state is None:
        opt_state = plan.optimizer.optimizer.init(params)
    dtype = np.dtype(jax.tree.leaves(params)[-1].dtype)
    zero = np.int32(0)
    inf = np.asarray(np.inf, dtype)
    if plateau is None and plan.plateau:
        plateau = Plateau(inf, zero)
    hist = {k: np.full((CHUNK, *shape), np.nan, dtype) for k, shape in history_shapes(plan).items()}
    state = TrainState(params, opt_state, zero)
    key: Any = np.zeros(2, np.uint32)
    # NumPy leaves: the compiled loop takes them as they are
    return Carry(state, key, zero, zero, params, inf, np.int32(-1), hist, plateau)  # type: ignore[arg-type]


def advance(plan: Plan, carry: Carry, arrays: Arrays, rules: Stops, base: int, until: int, keep: bool = False) -> Carry:
    """Epochs ``base`` … ``until`` of one network (``carry.epoch == base``), or until a stop rule fires.

    ``arrays.orders[e - base]`` is epoch ``e``'s order. An epoch that met a non-finite number is run
    again with the divergence guard on every step and the run stops there (``DIVERGED``) with the
    last finite parameters.

    ``keep``: where JAX's persistent compilation cache is on, the loop's program is kept on disk whole
    (``fnn.train._keep``), so that a later process loads it without tracing or lowering it: what
    fnn.sklearn's estimators ask for.
    """
    return _advance(plan, False, carry, arrays, rules, base, until, keep)
