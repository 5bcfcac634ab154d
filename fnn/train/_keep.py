"""Compiled training programs kept on disk whole, so a fresh process neither compiles nor traces them.

JAX's persistent compilation cache (:mod:`fnn.train.cache`) keys a program by its lowered form: a
fresh process must still trace and lower the program before it can look it up, which is most of a
small first fit once the cache is warm (the README's cold-start table measures it: the ``traced`` row
against ``warm``). Here a program is kept as the serialized
executable (``jax.experimental.serialize_executable``) under a key fnn computes without tracing:
the plan written down in terms that mean the same in another process, the arguments' shapes and
dtypes, and everything else that decides what is compiled — the versions of fnn's own source, JAX,
jaxlib, optax and NumPy, the backend and its devices, ``XLA_FLAGS``, x64 mode.

It is used where JAX's cache is on (a directory set, by fnn or the user) and only for plans that
can be written down exactly: fnn's own losses, a network's JSON, an optimizer whose closures hold no
opaque value (fnn.sklearn's solvers), one device. Anything else runs through ``jax.jit`` as before.
A file that cannot be read back (another jaxlib, a truncated write) is compiled again and replaced.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import hashlib
import importlib.metadata
import json
import logging
import os
import pathlib
import sys
import tempfile
import threading
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

from fnn.core import losses as _losses
from fnn.train import cache as _cache
from fnn.train._describe import describe

SUBDIR = "fnn-executables"
HIT_EVENT = "/fnn/keep/hits"  # recorded (jax.monitoring) when a kept program is read from disk
HIT_LOG = "Kept program loaded"  # logged then, where JAX logs its compilations (JAX_LOG_COMPILES=1)
logger = logging.getLogger(__name__)
MAX_LOADED = 32  # executables held in this process (each holds its code in memory; JAX's own caches hold the rest)

_loaded: collections.OrderedDict[str, Any] = collections.OrderedDict()
_lock = threading.Lock()  # estimators fitted in threads (joblib's threading backend) share _loaded
# what call() did: "hit" (read from disk), "miss" (compiled: then kept, or "unkept"), "held" (in memory), "skip"
stats: collections.Counter[str] = collections.Counter()


def directory() -> pathlib.Path | None:
    """Where executables are kept: ``<JAX's compilation cache directory>/fnn-executables``, or None when
    JAX's persistent cache is off (no directory, or ``jax_enable_compilation_cache`` false)."""
    where = _cache.user_cache()  # the directory JAX writes to (set by fnn.compilation_cache or the user)
    if not where or not _cache._config("jax_enable_compilation_cache"):
        return None
    return pathlib.Path(where) / SUBDIR


@functools.cache
def _source_digest() -> str:
    """A digest of fnn's own source: a changed fnn never loads a program an older one compiled."""
    root = pathlib.Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for f in sorted(root.rglob("*.py")):
        h.update(f.relative_to(root).as_posix().encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "?"


@functools.cache
def _installed() -> list[Any]:
    """The versions, backend and devices of this process (fixed once JAX has started)."""
    backend = jax.devices()[0].client
    return [
        _source_digest(),
        [jax.__version__, _version("jaxlib"), _version("optax"), np.__version__],
        [backend.platform, backend.platform_version, [d.device_kind for d in jax.devices()]],
    ]


def environment() -> list[Any]:
    """What decides a compiled program beside the plan and the arguments (JSON values)."""
    return [
        *_installed(),
        os.environ.get("XLA_FLAGS", ""),
        np.dtype(jax.dtypes.canonicalize_dtype(np.float64)).name,  # x64 mode, as this thread sees it now
    ]


def plan_label(plan: Any) -> list[Any] | None:
    """A plan (the training loop's :class:`~fnn.train._plan.Plan`, L-BFGS's) as JSON values that mean the
    same in another process, or None when some part cannot be written down exactly (a loss or an
    activation of the user's, an optimizer holding an opaque value, a mesh)."""
    out: list[Any] = [type(plan).__module__, type(plan).__qualname__]
    fields = plan._asdict() if hasattr(plan, "_asdict") else {f.name: getattr(plan, f.name) for f in dataclasses.fields(plan)}
    for name, field in fields.items():
        value: Any = field
        if name == "net":
            value = json.dumps(field.to_json(), sort_keys=True)
            if '"custom": true' in value:  # an activation (or block) of the user's: its name does not say its code
                return None
        elif name == "loss":
            name_of: str = field.name
            if not getattr(field, "builtin", False) or _losses.LOSSES.get(name_of) is not field:
                return None
            value = name_of
        elif name == "optimizer":
            value = json.dumps(describe(field.optimizer))
            if '["opaque",' in value:
                return None
        elif name == "mesh":
            if field is not None:
                return None
        elif not (field is None or isinstance(field, (bool, int, float, str))):
            return None  # a field this reading does not know: no label rather than a wrong one
        out.append([name, value])
    return out


def _arguments(args: Sequence[Any]) -> list[Any] | None:
    """The arguments' tree and each leaf's shape, dtype and weak type; None when one is placed
    otherwise than on the default device (the kept program runs there)."""
    leaves, tree = jax.tree_util.tree_flatten((tuple(args), {}))
    default = jax.devices()[0]
    out = []
    for leaf in leaves:
        if isinstance(leaf, jax.Array):
            if leaf.is_deleted() or leaf.devices() != {default}:
                return None
            out.append([list(leaf.shape), leaf.dtype.name, bool(getattr(leaf, "weak_type", False))])
        else:
            a = np.asarray(leaf)
            if a.dtype == object:
                return None
            weak = not isinstance(leaf, (np.ndarray, np.generic))  # a Python number: weakly typed under jit
            out.append([list(a.shape), np.dtype(jax.dtypes.canonicalize_dtype(a.dtype)).name, weak])
    return [str(tree), out]


def call(jitted: Any, label: list[Any] | None, args: Sequence[Any], returns: Any = None) -> Any:
    """``jitted(*args)``, through an executable kept on disk where :func:`directory` says and ``label``
    (from :func:`plan_label`, plus which program of the plan) allows; the same executable, so the same
    numbers, either way. ``returns(args)``: a tree shaped like what the program returns (default: its
    first argument, as the loop returns a carry like the one it takes)."""
    where = directory()
    described = _arguments(args) if where is not None and label is not None else None
    if described is None:
        stats["skip"] += 1
        return jitted(*args)
    key = hashlib.sha256(json.dumps([label, described, environment()], default=str).encode()).hexdigest()[:40]
    with _lock:
        compiled = _loaded.get(key)
        if compiled is not None:
            _loaded.move_to_end(key)
    if compiled is not None:
        stats["held"] += 1
        return compiled(*args)
    path = where / f"{key}.bin"  # type: ignore[operator]
    compiled = _read(path, args, (returns or (lambda a: a[0]))(args))
    if compiled is None:
        stats["miss"] += 1
        compiled, fresh = _compile_fresh(jitted.lower(*args))
        if fresh:
            _write(path, compiled)
        else:
            stats["unkept"] += 1
    else:
        stats["hit"] += 1
        jax.monitoring.record_event(HIT_EVENT)
        if _cache._config("jax_log_compiles"):  # beside JAX's own "Persistent compilation cache hit" lines
            logger.warning("%s: %s", HIT_LOG, path)
    with _lock:
        _loaded[key] = compiled
        while len(_loaded) > MAX_LOADED:
            _loaded.popitem(last=False)
    return compiled(*args)


_HIT = "/jax/compilation_cache/cache_hits"  # the event JAX records when it loads a program from its cache
_local = threading.local()
_compiling = threading.Lock()


def _on_event(event: str, **_: Any) -> None:
    if event == _HIT:
        _local.hits = getattr(_local, "hits", 0) + 1


@functools.cache
def _listen() -> None:
    jax.monitoring.register_event_listener(_on_event)


def _compile_fresh(lowered: Any) -> tuple[Any, bool]:
    """``lowered.compile()`` past JAX's persistent cache, and whether it was compiled here.

    An executable JAX loaded from its own cache serializes into a blob that loads but fails when run
    (jaxlib 0.10 on the CPU: "NOT_FOUND: Function add_divide_fusion not found"), so only a fresh
    compilation is kept. JAX consults its cache where ``jax._src.compilation_cache.is_cache_used``
    says so; for this one compilation it says no (a private function: where a JAX lacks it, the
    cache is consulted and a program loaded from it is run but not kept, as the event JAX records
    for a cache hit tells)."""
    _listen()
    before = getattr(_local, "hits", 0)
    jax_cache: Any = sys.modules.get("jax._src.compilation_cache")  # loaded with jax; None in a JAX without it
    used = getattr(jax_cache, "is_cache_used", None)
    with _compiling:
        if used is not None:
            jax_cache.is_cache_used = lambda backend: False
        try:
            compiled = lowered.compile()
        finally:
            if used is not None:
                jax_cache.is_cache_used = used
    return compiled, getattr(_local, "hits", 0) == before


def _read(path: pathlib.Path, args: Sequence[Any], returned: Any) -> Any:
    """The executable kept at ``path`` (its trees: the arguments' and ``returned``'s), or None."""
    try:
        blob = path.read_bytes()
    except OSError:
        return None
    from jax.experimental import serialize_executable

    in_tree = jax.tree_util.tree_structure((tuple(args), {}))
    out_tree = jax.tree_util.tree_structure(returned)
    try:
        return serialize_executable.deserialize_and_load(blob, in_tree, out_tree)
    except Exception:  # written by another jaxlib, or cut short: compile again (and replace it)
        return None


def _write(path: pathlib.Path, compiled: Any) -> None:
    """Keep ``compiled`` at ``path`` (written whole or not at all); a cache that cannot be written is skipped."""
    from jax.experimental import serialize_executable

    tmp = None
    try:
        blob, _, _ = serialize_executable.serialize(compiled)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
        os.replace(tmp, path)
    except Exception:  # an unwritable directory, a backend that cannot serialize: run without keeping it
        stats["unwritten"] += 1
        if tmp is not None:
            pathlib.Path(tmp).unlink(missing_ok=True)
