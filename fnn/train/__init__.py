"""Training: gradient descent until the loss is small enough or the epochs run out.

- ``step.py``: one optimizer step (:func:`make_step`) and its state, for hand-written loops;
- ``_fit.py``: :func:`fit` and :func:`fit_many` (many networks in one compiled call), their
  arguments checked at the door; :func:`per_example_grads`;
- ``_plan.py``: what a call trains, staged once (network, loss, optimizer, stop rules, data on device);
- ``_compiled.py``: the compiled loop (epochs in a ``lax.while_loop``, minibatches in a ``lax.scan`` or
  masked batches, stop rules in the graph); ``_loop.py``: the host-side driver that runs it in chunks;
- ``engine.py``: that loop's interface for integrations (``fnn.sklearn`` trains through it);
  ``optim.py``: scikit-learn's SGD and Adam as optax transformations;
- ``_options.py`` (:class:`Checkpointing`, :class:`Callback`: the options of a run that outlives a call),
  ``_state.py`` (:class:`FitState`, a run in memory), ``_resume.py`` (the hooks that write checkpoints,
  call the callback and answer Ctrl-C; a call that continues a run), ``_rundir.py`` (a run on disk),
  ``_describe.py``, ``_fingerprint.py`` (what identifies a run and its optimizer);
- ``cache.py``: JAX's persistent compilation cache where fnn keeps it (:func:`compilation_cache`);
  ``_keep.py``: beside it, the estimators' training programs kept whole (a fresh process skips tracing them);
- ``shuffle.py`` (the epoch's permutation), ``parallel.py`` (data parallel over a mesh),
  and the XLA options of the loops (``fnn._compile``, shared with the gradient check).
"""

from fnn.train import cache, engine, optim, parallel, shuffle, step
from fnn.train._fit import (
    DEFAULT_OPTIMIZER,
    Callback,
    Checkpointing,
    EarlyStopping,
    FitState,
    Resumed,
    Step,
    TrainingDiverged,
    TrainState,
    fit,
    fit_many,
    make_step,
    per_example_grads,
)
from fnn.train.cache import compilation_cache
from fnn.train.step import per_epoch, set_hyperparams, steps_per_epoch

__all__ = [
    "DEFAULT_OPTIMIZER",
    "Callback",
    "Checkpointing",
    "EarlyStopping",
    "FitState",
    "Resumed",
    "Step",
    "TrainState",
    "TrainingDiverged",
    "cache",
    "compilation_cache",
    "engine",
    "fit",
    "fit_many",
    "make_step",
    "optim",
    "parallel",
    "per_epoch",
    "per_example_grads",
    "set_hyperparams",
    "shuffle",
    "step",
    "steps_per_epoch",
]
