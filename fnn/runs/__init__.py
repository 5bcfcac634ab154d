"""What a run leaves on disk (``checkpoint.py``): parameter files (:func:`save` / :func:`load`) and
run-state files (``save_state`` / ``read_state``), pickle-free, checksummed and written atomically.
Resuming a run from them is the training engine's business (``fnn.train._resume``)."""

from fnn.runs import checkpoint
from fnn.runs.checkpoint import CheckpointError, load, save

__all__ = ["CheckpointError", "checkpoint", "load", "save"]
