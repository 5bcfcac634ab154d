"""Full-batch L-BFGS in one compiled loop: :func:`optax.lbfgs` with its zoom line search on fnn's
weighted objective, under scipy's L-BFGS-B stopping rules (``fnn.sklearn``'s ``solver="lbfgs"``).

The objective is :func:`fnn.core.backprop.weighted_value_and_grad` over all the rows at once, with
its L2 term:

.. math::

    J(\\theta) = \\Big(\\textstyle\\sum_i w_i E_i + \\tfrac12 \\lambda \\sum_l \\lVert W^{(l)} \\rVert^2\\Big) / \\sum_i w_i

Its gradient is the hand-derived backward pass (``grad="manual"``) or ``jax.grad`` (``"autodiff"``);
the line search asks for it through ``jax.value_and_grad``, so the objective is a ``jax.custom_vjp``
whose reverse pass returns that gradient. Each iteration is one L-BFGS direction (memory
:data:`MEMORY`) and one zoom line search (at most :data:`LINESEARCH_STEPS` evaluations of ``J`` and
∇J, strong Wolfe conditions, first trial step 1). The whole run is one ``lax.while_loop``: nothing
returns to the host until it stops.

It stops, in scipy's order (``scipy.optimize.minimize(method="L-BFGS-B")``, which scikit-learn uses):

- ``max_iter`` iterations done (:data:`MAX_ITER`); else more than ``max_fun`` evaluations of ``J``
  and ∇J, the line searches' included (:data:`MAX_FUN`); scipy checks both after an iteration;
- ``max |∇J| ≤ gtol`` (:data:`GTOL`, checked at the start too);
- a relative decrease ``(J_k − J_{k+1}) / max(|J_k|, |J_{k+1}|, 1) ≤ ftol`` (:data:`FTOL`; scipy's
  default ``ftol`` is :data:`SCIPY_FTOL`);
- a step that does not decrease ``J`` is undone and the run keeps the last iterate: converged
  (:data:`FTOL`) where ``J`` rose by no more than the line search's approximate Wolfe test allows
  (``APPROX_RISE · |J|``), else :data:`ABNORMAL` (a rise beyond that, or a value not finite).

Rows may be padded with weight-0 rows (they add nothing), so nearby data sizes share one program:
one compiled program per :class:`Plan` and shape of the data, reused by every call with equal ones.

Example:
  >>> import jax.numpy as jnp
  >>> from fnn.core.mlp import MLP
  >>> net = MLP((1, 4, 1), hidden="tanh")
  >>> x = jnp.linspace(-1, 1, 16)[:, None]
  >>> plan = make_plan(net, "mse", "manual")
  >>> res = minimize(plan, net.init(jax.random.key(0)), x, x**2, jnp.ones(16), jnp.zeros(()), Limits(200, 1000, 1e-6))
  >>> bool(res.value < 1e-3), STATUS[int(res.status)][0], bool(res.n_fev >= res.n_iter)
  (True, 0, True)
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from fnn import _compile
from fnn.core import losses as _losses
from fnn.core.backprop import weighted_value_and_grad
from fnn.core.mlp import MLP, Params
from fnn.train import _keep
from fnn.train.step import check_grad

Array = jax.Array

MEMORY = 10  # pairs of (Δθ, Δ∇J) the inverse-Hessian estimate keeps: scipy's L-BFGS-B default (maxcor)
LINESEARCH_STEPS = 20  # evaluations one line search may make: scipy's L-BFGS-B default (maxls)
SCIPY_FTOL = 2.220446049250313e-09  # scipy's default ftol: factr 1e7 × float64's machine epsilon
APPROX_RISE = 1e-6  # optax's zoom search: approx_dec_rtol, the rise its approximate Wolfe test allows

RUNNING, GTOL, FTOL, MAX_ITER, MAX_FUN, ABNORMAL = -1, 0, 1, 2, 3, 4
# stop code -> (scipy's status, message)
STATUS = {
    GTOL: (0, "CONVERGENCE: NORM OF PROJECTED GRADIENT <= PGTOL"),
    FTOL: (0, "CONVERGENCE: RELATIVE REDUCTION OF F <= FACTR*EPSMCH"),
    MAX_ITER: (1, "STOP: TOTAL NO. OF ITERATIONS REACHED LIMIT"),
    MAX_FUN: (1, "STOP: TOTAL NO. OF F,G EVALUATIONS EXCEEDS LIMIT"),
    ABNORMAL: (2, "ABNORMAL: THE LINE SEARCH FOUND NO STEP THAT DECREASES THE LOSS"),
}


@dataclasses.dataclass(frozen=True)
class Plan:
    """The static facts of a run (hashable: equal plans share one compiled program).

    Attributes:
      net: the network. loss: its :class:`fnn.Loss` (checked against the output).
      grad: ``"manual"`` or ``"autodiff"``.
      report_scale: the factor on the data term of the *reported* loss (:attr:`Result.loss`); the
        objective minimised is always ``J`` above (scikit-learn reports its squared error as a mean
        over the outputs while its gradient is that of their sum).
    """

    net: MLP
    loss: _losses.Loss
    grad: str
    report_scale: float = 1.0


class Limits(NamedTuple):
    """The stopping rules' numbers (traced: other values reuse the compiled program)."""

    max_iter: Any  # int, iterations
    max_fun: Any  # int, evaluations of J and ∇J
    gtol: Any  # float: stop when max |∇J| <= gtol
    ftol: Any = SCIPY_FTOL  # float: stop when the relative decrease of J <= ftol


class Result(NamedTuple):
    """Where a run stopped."""

    params: Params  # the last accepted iterate
    value: Array  # J there, shape ()
    loss: Array  # the reported loss there (``report_scale`` on the data term), shape ()
    grad_max: Array  # max |∇J| there, shape ()
    n_iter: Array  # int32, iterations done
    n_fev: Array  # int32, evaluations of J and ∇J, the line searches' included
    status: Array  # int32, a key of STATUS


def make_plan(net: MLP, loss: _losses.LossLike, grad: str = "manual", *, report_scale: float = 1.0) -> Plan:
    """The plan of a run: ``loss`` resolved to its record and checked against ``net``'s output.

    >>> make_plan(MLP((2, 3, 1)), "mse").loss.name
    'mse'
    """
    check_grad(grad)
    return Plan(net, _losses.check_pair(loss, net.output), grad, float(report_scale))


def minimize(plan: Plan, params: Params, x: Any, t: Any, w: Any, lam: Any, limits: Limits, keep: bool = False) -> Result:
    """L-BFGS from ``params`` until a stopping rule fires (see the module docstring).

    Args:
      plan: from :func:`make_plan`.
      params: the starting parameters (NumPy or JAX leaves, all of one float dtype).
      x: (rows, n_in) inputs; t: (rows, K) targets in the output's form (:func:`fnn.losses.targets`);
      w: (rows,) non-negative weights (0 for a padding row); lam: () the L2 strength λ.
      limits: the stopping rules' numbers.
      keep: where JAX's persistent compilation cache is on, keep the compiled run on disk whole
        (``fnn.train._keep``), so that a later process loads it without tracing it (fnn.sklearn does).

    Returns:
      A :class:`Result` (JAX arrays).
    """
    dtype = np.dtype(jax.tree.leaves(params)[0].dtype)
    lim = Limits(
        np.asarray(limits.max_iter, np.int32),
        np.asarray(limits.max_fun, np.int32),
        np.asarray(limits.gtol, dtype),
        np.asarray(limits.ftol, dtype),
    )
    args = (params, x, t, w, np.asarray(lam, dtype), lim)
    quick = _quick(plan, np.shape(x))
    label = _keep.plan_label(plan) if keep else None
    if label is None:
        return _jitted(plan, quick)(*args)
    returns = lambda a: Result._make([a[0], *[np.int32(0)] * 6])  # its tree: the params and six scalars
    return _keep.call(_jitted(plan, quick), [*label, "lbfgs", quick], args, returns)


def compiled(plan: Plan, x_shape: tuple[int, ...]) -> Any:
    """The jitted run for ``plan`` and data of ``x_shape`` (compiled on its first call for each shape and
    dtype; with :data:`fnn._compile.QUICK` on the CPU for evaluations of at most :data:`QUICK_EVAL_WORK`)."""
    return _jitted(plan, _quick(plan, x_shape))


def _quick(plan: Plan, x_shape: tuple[int, ...]) -> bool:
    return _work(plan, x_shape) <= QUICK_EVAL_WORK and jax.default_backend() == "cpu"


def _optimizer() -> optax.GradientTransformationExtraArgs:
    linesearch = optax.scale_by_zoom_linesearch(max_linesearch_steps=LINESEARCH_STEPS, initial_guess_strategy="one")
    return optax.lbfgs(memory_size=MEMORY, linesearch=linesearch)


def _objective(plan: Plan) -> Any:
    """``J(params, x, t, w, lam)`` as a ``custom_vjp``: the forward pass also runs the plan's backward
    pass, and the reverse pass hands that gradient back (what ``jax.value_and_grad`` of it returns)."""
    value_and_grad = weighted_value_and_grad(plan.net, plan.loss, plan.grad, l2=True)

    @jax.custom_vjp
    def J(params: Params, x: Array, t: Array, w: Array, lam: Array) -> Array:
        return value_and_grad(params, x, t, w, lam)[0]

    def fwd(params: Params, x: Array, t: Array, w: Array, lam: Array) -> tuple[Array, tuple]:
        E, g = value_and_grad(params, x, t, w, lam)
        return E, (g, x, t, w, lam)

    def bwd(res: tuple, ct: Array) -> tuple:
        g, *data = res
        return (jax.tree.map(lambda a: ct * a, g), *(jnp.zeros_like(d) for d in data))

    J.defvjp(fwd, bwd)
    return J


class _Loop(NamedTuple):
    params: Params
    opt_state: Any
    value: Array
    grad: Params
    n_iter: Array
    n_fev: Array
    status: Array


def _grad_max(g: Params) -> Array:
    return jnp.max(jnp.stack([jnp.max(jnp.abs(leaf)) for leaf in jax.tree.leaves(g)]))


def _compiled(plan: Plan) -> Any:
    """The run of ``plan``, to be jitted (:func:`_jitted`: compiled once per shape and dtype of its arguments)."""
    J = _objective(plan)
    opt = _optimizer()

    def run(params: Params, x: Array, t: Array, w: Array, lam: Array, lim: Limits) -> Result:
        params = jax.tree.map(jnp.asarray, params)
        value_fn = lambda p: J(p, x, t, w, lam)
        value, grad = jax.value_and_grad(value_fn)(params)
        one = jnp.ones((), jnp.int32)
        status = jnp.where(_grad_max(grad) <= lim.gtol, GTOL, RUNNING).astype(jnp.int32)
        status = jnp.where(jnp.isfinite(value), status, ABNORMAL).astype(jnp.int32)
        start = _Loop(params, opt.init(params), value, grad, 0 * one, one, status)

        def step(c: _Loop) -> _Loop:
            updates, opt_state = opt.update(c.grad, c.opt_state, c.params, value=c.value, grad=c.grad, value_fn=value_fn)
            search = opt_state[-1]  # the zoom line search's state: J and ∇J at the step it took
            params = optax.apply_updates(c.params, updates)
            value, grad = search.value, search.grad
            n_iter, n_fev = c.n_iter + 1, c.n_fev + search.info.num_linesearch_steps.astype(jnp.int32)
            bad = ~jnp.isfinite(value) | (value > c.value)  # no decrease: the step is undone
            scale = jnp.maximum(jnp.maximum(jnp.abs(c.value), jnp.abs(value)), 1)
            # the zoom search's approximate Wolfe test accepts a rise of up to APPROX_RISE·|J|: no decrease is
            # left to find at this precision (scipy's relative-reduction test would stop there too)
            flat = jnp.isfinite(value) & (value - c.value <= APPROX_RISE * jnp.abs(c.value))
            status = jnp.where(bad, jnp.where(flat, FTOL, ABNORMAL), RUNNING)
            status = jnp.where((status == RUNNING) & (n_iter >= lim.max_iter), MAX_ITER, status)
            status = jnp.where((status == RUNNING) & (n_fev > lim.max_fun), MAX_FUN, status)
            status = jnp.where((status == RUNNING) & (_grad_max(grad) <= lim.gtol), GTOL, status)
            status = jnp.where((status == RUNNING) & (c.value - value <= lim.ftol * scale), FTOL, status)
            keep = lambda new, old: jax.tree.map(lambda a, b: jnp.where(bad, b, a), new, old)
            status = status.astype(jnp.int32)
            return _Loop(keep(params, c.params), opt_state, keep(value, c.value), keep(grad, c.grad), n_iter, n_fev, status)

        end = jax.lax.while_loop(lambda c: c.status == RUNNING, step, start)
        loss = end.value
        if plan.report_scale != 1.0:  # the reported loss: the data term rescaled, the L2 term as it is
            s = jnp.sum(w)
            penalty = 0.5 * lam / jnp.where(s > 0, s, 1) * sum(jnp.sum(p["W"] * p["W"]) for p in end.params)
            loss = plan.report_scale * (end.value - penalty) + penalty
        return Result(end.params, end.value, loss, _grad_max(end.grad), end.n_iter, end.n_fev, end.status)

    return run


def _work(plan: Plan, x_shape: tuple[int, ...]) -> int:
    """Multiply-adds of one evaluation of J and ∇J (forward and backward: ~3 per weight and row)."""
    sizes = plan.net.sizes
    return 3 * x_shape[0] * sum(a * b for a, b in itertools.pairwise(sizes))


# Evaluations of at most this many multiply-adds compile with fnn._compile.QUICK on the CPU. The run is one
# long program, and XLA's optimisation passes take most of its compile: measured on a 2-core CPU (tanh
# 64-50-3 on 150 rows, 12 iterations): 2.2 -> 0.8 s to compile, the run 0.05 s either way; 64-256-3 on
# 2000 rows (1e8 per evaluation, 26 iterations): 2.3 -> 0.9 s to compile, the run 0.10 -> 0.33 s.
QUICK_EVAL_WORK = 10**7


@functools.cache
def _jitted(plan: Plan, quick: bool) -> Any:
    return jax.jit(_compiled(plan), compiler_options=_compile.QUICK if quick else None)
