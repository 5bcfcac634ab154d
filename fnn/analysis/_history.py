"""Reading :func:`fnn.fit_many`'s history: each network's value of a metric at the epoch its returned
parameters come from, checked, for :func:`fnn.sweep.best` (one network) and :func:`fnn.sweep.best_setting`
(a setting over its seeds).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def check_history(history: Any, n: int) -> None:
    """``history`` is fit_many's: a dict with ``epochs_run`` (and ``diverged``, ``best_epoch`` if there) of N ints."""
    if not isinstance(history, dict) or "epochs_run" not in history:
        raise TypeError("`history` must be the history dict fit_many returns")
    for key in ("epochs_run", "diverged", "best_epoch"):
        if key in history:
            v = np.asarray(history[key])
            if v.shape != (n,) or v.dtype.kind not in "biu":
                raise ValueError(f"`history[{key!r}]` must hold one int per network ({n}), got shape {v.shape} dtype {v.dtype}")


def final(values: np.ndarray, history: dict[str, Any]) -> np.ndarray:
    """Each network's value at the epoch its returned parameters come from: its best epoch under early
    stopping (``fit_many`` then returns the best parameters), else its last epoch run. (N, epochs, ...) -> (N, ...)."""
    last = np.asarray(history["epochs_run"]) - 1
    if "best_epoch" in history:
        best = np.asarray(history["best_epoch"])
        last = np.where(best >= 0, best, last)
    idx = np.clip(last, 0, values.shape[1] - 1)
    return values[np.arange(values.shape[0]), idx]


def final_metric(history: Any, n: int, metric: Any, mode: Any) -> tuple[np.ndarray, str]:
    """Each of the ``n`` networks' final ``history[metric]`` (float64, NaN for a diverged network) and the
    mode (``"min"`` or ``"max"``, from the metric's name when None), every argument checked."""
    check_history(history, n)
    per_epoch = sorted(k for k, v in history.items() if isinstance(v, np.ndarray) and v.ndim >= 2 and v.shape[0] == n)
    if not isinstance(metric, str) or metric not in per_epoch:
        raise ValueError(f"`metric` {metric!r:.60} is not in this history; it has {per_epoch}")
    mode = ("max" if "accuracy" in metric else "min") if mode is None else mode
    if mode not in ("min", "max"):
        raise ValueError(f"`mode` must be 'min' or 'max', got {mode!r:.40}")
    try:
        values = final(np.asarray(history[metric], np.float64), history)
    except (TypeError, ValueError):  # not numbers
        raise TypeError(f"`history[{metric!r}]` must hold numbers, got dtype {np.asarray(history[metric]).dtype}") from None
    if values.ndim > 1:
        raise ValueError(f"`metric` {metric!r} has one value per layer; choose by a scalar metric such as 'val_loss'")
    return np.where(np.asarray(history.get("diverged", np.zeros(n, bool))), np.nan, values), mode
