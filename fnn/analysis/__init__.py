"""Measuring what was trained: loss and accuracy (``metrics.py``: :func:`evaluate`, unit health, per-layer
and per-example gradient norms), the stacked results of :func:`fnn.fit_many` (``sweep.py``, which is
``fnn.sweep``: one network, the best one, all evaluated at once, the grid; ``paired.py``: a paired sweep's
layout and starting weights, the best setting over seeds, also exported by ``sweep.py``; ``_history.py``:
each network's final value of a history metric, for both), and figures (``plot.py``). It reads the core;
it never imports the training engine."""

from fnn.analysis import metrics, paired, plot, sweep
from fnn.analysis.metrics import evaluate

__all__ = ["evaluate", "metrics", "paired", "plot", "sweep"]
