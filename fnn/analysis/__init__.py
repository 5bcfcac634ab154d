"""Measuring what was trained: loss and accuracy (``metrics.py``: :func:`evaluate`, unit health, per-layer
and per-example gradient norms), the stacked results of :func:`fnn.fit_many` (``sweep.py``: one network,
the best one, all evaluated at once, the grid; a paired sweep's layout and starting weights, the best
setting over seeds), and figures (``plot.py``). It reads the core; it never imports the training engine."""

from fnn.analysis import metrics, plot, sweep
from fnn.analysis.metrics import evaluate

__all__ = ["evaluate", "metrics", "plot", "sweep"]
