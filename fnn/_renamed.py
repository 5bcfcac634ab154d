"""Module paths of fnn 0.1 that moved in 0.2, kept importable for one release.

``import fnn.mlp`` / ``from fnn.gradcheck import compare_gradients`` load the module's new home
(``fnn.core.mlp``, ``fnn.check.gradcheck``): the same module object, so a monkeypatch through either
name patches both. Paths that name a module fnn still offers at the top level (``fnn.datasets``,
``fnn.checkpoint``, ...) stay silent; the others warn with a DeprecationWarning that names the new path.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import warnings
from types import FrameType, ModuleType

# old path -> (new path, warn?)
MOVED = {
    "fnn.activations": ("fnn.core.activations", False),
    "fnn.losses": ("fnn.core.losses", False),
    "fnn.init": ("fnn.core.init", False),
    "fnn.backprop": ("fnn.core.backprop", False),
    "fnn.mlp": ("fnn.core.mlp", True),
    "fnn.products": ("fnn.core.layer", True),
    "fnn.derivation": ("fnn.check.derivation", True),
    "fnn.gradcheck": ("fnn.check.gradcheck", True),
    "fnn.datasets": ("fnn.data.datasets", False),
    "fnn.preprocessing": ("fnn.data.preprocessing", False),
    "fnn.metrics": ("fnn.analysis.metrics", False),
    "fnn.plot": ("fnn.analysis.plot", False),
    "fnn.ensemble": ("fnn.analysis.sweep", True),
    "fnn.step": ("fnn.train.step", False),
    "fnn.shuffle": ("fnn.train.shuffle", False),
    "fnn.parallel": ("fnn.train.parallel", False),
    "fnn.checkpoint": ("fnn.runs.checkpoint", False),
    # not moved: a short path of the public API (fnn.blocks is fnn.core.blocks)
    "fnn.blocks": ("fnn.core.blocks", False),
}


def message(old: str) -> str:
    new = MOVED[old][0]
    return f"`{old}` moved to `{new}` in fnn 0.2; the old path will be removed in 0.3: import `{new}`"


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds an old path and hands back the module at its new path (no second copy)."""

    def find_spec(self, name: str, path: object = None, target: object = None) -> importlib.machinery.ModuleSpec | None:
        return importlib.machinery.ModuleSpec(name, self) if name in MOVED else None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        new, warn = MOVED[spec.name]
        if warn:
            warnings.warn(message(spec.name), DeprecationWarning, stacklevel=_caller_level())
        return importlib.import_module(new)

    def exec_module(self, module: ModuleType) -> None:
        """Nothing to run: the module at the new path is already loaded."""


def _caller_level() -> int:
    """The stack level of the first frame outside importlib and this module (the user's import)."""
    frame: FrameType | None = sys._getframe(1)
    level = 1
    while frame is not None and (frame.f_code.co_filename.startswith("<frozen") or frame.f_code.co_filename == __file__):
        frame, level = frame.f_back, level + 1
    return level


def install() -> None:
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())
