"""JAX's persistent compilation cache, where fnn keeps it: :func:`compilation_cache`, a one-liner for scripts.

A fresh Python process compiles every training program it meets (XLA, about 0.3–3 s each on a CPU).
JAX can keep compiled programs on disk and load them in later processes instead of compiling again;
it is off unless a program turns it on. ``import fnn`` never does. These do:

- ``fnn.compilation_cache()`` in a script (a second run of the script, a second notebook kernel then
  loads what the first compiled);
- the command-line runs (``python -m experiments``, unless ``--no-cache``);
- ``fnn.sklearn``'s estimators, at their first fit in a process, unless ``FNN_SKLEARN_CACHE=0`` is set
  in the environment (scikit-learn users restart processes often: a grid search's workers, a notebook).

A cache the user set up wins: when ``jax_compilation_cache_dir`` is already set (by
``jax.config.update`` or ``JAX_COMPILATION_CACHE_DIR``) or ``jax_enable_compilation_cache`` is off,
nothing is changed. JAX reads these settings once, at the first compilation of a process: turned on
after that, the cache takes effect in the next process.
"""

from __future__ import annotations

import os
import pathlib
import warnings
from typing import Any

import jax

from fnn import _checks

#: The environment variable that sets the compilation cache directory of fnn.compilation_cache and the CLI.
ENV_DIR = "FNN_CACHE_DIR"
#: The environment variable that turns the estimators' compilation cache off: ``0`` (or ``false``, ``no``, ``off``).
ENV_SKLEARN = "FNN_SKLEARN_CACHE"


def default_cache_dir() -> pathlib.Path:
    """Where fnn keeps compiled programs: ``$FNN_CACHE_DIR``, else the user's cache directory
    (``$XDG_CACHE_HOME`` or ``~/.cache``) / ``fnn/jax-<version>`` (one folder per JAX version).

    >>> default_cache_dir().name.startswith("jax-") or bool(os.environ.get("FNN_CACHE_DIR"))
    True
    """
    if os.environ.get(ENV_DIR):
        return pathlib.Path(os.environ[ENV_DIR])
    base = pathlib.Path(os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache")
    return base / "fnn" / f"jax-{jax.__version__}"


def _config(name: str) -> Any:
    """A JAX config value by name (``jax.config.<name>``)."""
    return getattr(jax.config, name)


def user_cache() -> str | None:
    """The cache directory the user set up for JAX (config or environment), if any."""
    return _config("jax_compilation_cache_dir") or os.environ.get("JAX_COMPILATION_CACHE_DIR") or None


def compilation_cache(path: str | os.PathLike[str] | None = None) -> str | None:
    """Turn on JAX's persistent compilation cache for this process, so later processes load the
    programs this one compiles: ``fnn.compilation_cache()`` at the top of a script.

    Every program is kept, however quickly it compiled (fnn's are small: JAX's default keeps only
    those that took a second or more). A directory the user already gave JAX wins and is returned
    unchanged; with ``jax_enable_compilation_cache`` off nothing is turned on. Set it before the
    process's first compilation: JAX reads it then.

    Args:
      path: the directory (made if missing); default :func:`default_cache_dir`.

    Returns:
      The directory in use, or None when the cache stays off (disabled by the user, or the directory
      cannot be made: then a warning says why and the process runs without it).

    Raises:
      TypeError: ``path`` not a str or path.
    """
    if path is not None:
        path = _checks.check_path(path, "path", "a directory path")
    if not _config("jax_enable_compilation_cache"):
        return None
    mine = user_cache()
    if mine is not None and path is None:
        return mine
    where = pathlib.Path(path) if path is not None else default_cache_dir()
    try:
        where.mkdir(parents=True, exist_ok=True)
    except OSError as e:  # an unwritable home: run without the cache rather than fail
        warnings.warn(f"no persistent compilation cache ({where}: {e})", stacklevel=2)
        return None
    jax.config.update("jax_compilation_cache_dir", str(where))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return str(where)


def for_estimators() -> str | None:
    """What ``fnn.sklearn``'s estimators call at each fit: :func:`compilation_cache` with the default
    directory, unless ``FNN_SKLEARN_CACHE=0`` (or ``false``, ``no``, ``off``) or the user set one up."""
    if os.environ.get(ENV_SKLEARN, "").strip().lower() in ("0", "false", "no", "off"):
        return None
    return compilation_cache()
