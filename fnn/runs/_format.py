"""The checkpoint file format: named arrays and a JSON header in one ``.npz``, checksummed, written
atomically; read back verified. What the files hold (a network's parameters, a training run's state)
and the public ``save`` / ``load`` / ``save_state`` / ``read_state`` are :mod:`fnn.runs.checkpoint`'s.

File format (``fnn.checkpoint`` version 1, what :func:`save` writes), a plain numpy ``.npz`` (a zip of ``.npy`` files):

- ``layer{l}/W`` and ``layer{l}/b`` for l = 0..L-1: every leaf as a named array, in its own dtype
  (float16/32/64); dtypes numpy does not store natively (bfloat16, float8) are written as the raw
  unsigned integers of the same width, and the header names the real dtype.
- ``__fnn_header__``: UTF-8 JSON bytes as a uint8 array, holding ``format``, ``version``, the spec
  ``net.to_json()``, ``stacked`` (N for params stacked over a leading network axis, else null),
  ``metadata``, the ``leaves`` (name, shape, dtype, stored dtype) and ``sha256``: a SHA-256 over every
  leaf's name, dtype, shape and raw bytes in header order. Zip's CRC-32 catches most damage; the
  checksum also catches a leaf rewritten with a fresh CRC.

Version 2 adds a second kind of file, ``"kind": "train_state"``: the whole state of a ``fit`` or
``fit_many`` run that ``checkpoint_dir=`` writes (:func:`save_state`, :func:`read_state`): the same
``.npz`` with named leaves of any numpy dtype (``params/layer{l}/W``, ``opt_state[0].count``, ``key``,
``history/loss``, ...; each leaf entry also says whether it is a weakly typed jax value and, for a
random key, its implementation), the header's ``run`` object (the training plan, the epoch, the
stop rule state) and the same SHA-256. :func:`load` reads both kinds (of a training state, the
parameters ``fit`` would return at that epoch); a file of a newer version is refused with a message
that says so, as version-1 readers refuse version 2 by its number.

Networks other than an MLP (an ``fnn.Network`` of blocks, an ``fnn.Model``) are stored in two more kinds
of version 2, which a reader that does not know them refuses by their kind (a
:class:`CheckpointVersionError`, never taken for damage): ``"tree_params"`` (what ``save`` writes for
them) and ``"tree_state"`` (a training state of one). Their parameters are a pytree, and every leaf is
named ``params`` + its ``jax.tree_util.keystr`` key path (``params[0]['W']``,
``params[4]['blocks'][1]['state']['mean']``; ``best...`` for early stopping's); the header's ``tree``
(:func:`structure`) records the pytree's nodes, so that a loader can check that the network it rebuilds
(or the model it is given) makes the same tree before putting the leaves back into it.

Guarantees: nothing is ever pickled or unpickled (``allow_pickle=False`` on both sides); a write
either replaces the file whole or leaves the previous one untouched (temporary file in the same
directory, ``fsync``, ``os.replace``); a read is bit-exact or raises :class:`CheckpointError`.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import itertools
import json
import os
import pathlib
import secrets
import time
import zipfile
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

FORMAT = "fnn.checkpoint"  # the header's "format": what marks a .npz file as an fnn checkpoint
VERSION = 2  # the newest format this fnn reads; save() writes version 1 of an MLP (else kind tree_params), save_state() 2
PARAMS_VERSION = 1  # the format version save() writes for an MLP's parameters
STATE_KIND = "train_state"  # the header's "kind" of a training state (save_state)
TREE_PARAMS_KIND = "tree_params"  # version 2: the parameters of a Network or a Model, leaves by key path
TREE_STATE_KIND = "tree_state"  # version 2: a training state of a Network or a Model
KINDS = ((PARAMS_VERSION, "params"), (VERSION, STATE_KIND), (VERSION, TREE_PARAMS_KIND), (VERSION, TREE_STATE_KIND))
HEADER_KEY = "__fnn_header__"  # the array in the .npz that holds the JSON header
TEMP_SUFFIX = ".fnn-tmp"  # a save writes here first, then renames: a file is written whole or not at all
STALE_AFTER_S = 3600.0  # temp files of ours untouched this long are left over from a killed save
MAX_METADATA_ARRAY = 1024  # arrays up to this many elements go into metadata as nested lists
NATIVE = ("float16", "float32", "float64")  # float dtypes an .npy file stores as themselves
# what numpy and zipfile raise on a damaged file: zipfile's NotImplementedError ("compressed patched data",
# an unknown compression method) and RuntimeError ("File is encrypted") come from a damaged entry's flag bits
DAMAGED = (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile, NotImplementedError, RuntimeError)


class CheckpointError(ValueError):
    """The file is not a readable fnn checkpoint: truncated, corrupted, foreign or too new.

    Raised by :func:`fnn.load` and :func:`fnn.runs.checkpoint.read_state`; a subclass of ``ValueError``.

    >>> import tempfile, pathlib
    >>> from fnn import load
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "notes.npz"
    >>> _ = path.write_text("not a checkpoint")
    >>> load(path)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    fnn.runs.checkpoint.CheckpointError: '...notes.npz' is not a readable fnn checkpoint: ...
    """


class CheckpointVersionError(CheckpointError):
    """A checkpoint of a format version or kind this fnn does not read (a newer fnn wrote it, or it is
    another kind of file): not damaged, so a resumed run does not fall back past it."""


# Both are raised here but belong to the public module that re-exports them: tracebacks, reprs and pickles
# name fnn.runs.checkpoint, where users catch them.
CheckpointError.__module__ = CheckpointVersionError.__module__ = "fnn.runs.checkpoint"


def encode(arrays: Mapping[str, Any], info: Mapping[str, dict] | None = None) -> tuple[dict[str, np.ndarray], list[dict], str]:
    """The leaves as stored (dtypes numpy cannot store natively as unsigned ints of their width, C order),
    their header entries (plus ``info[name]``) and the SHA-256 over all of them, in order."""
    info = info or {}
    stored, leaves, digest = {}, [], hashlib.sha256()
    for name, value in arrays.items():
        a = np.asarray(value)
        native = a.dtype.name in NATIVE or a.dtype.kind in "biu"
        s = a if native else a.view(f"u{a.dtype.itemsize}")
        s = s if s.flags.c_contiguous else s.copy(order="C")  # (np.ascontiguousarray would make a scalar 1-d)
        leaves.append({"name": name, "shape": list(a.shape), "dtype": a.dtype.name, "stored": s.dtype.name, **info.get(name, {})})
        hash_leaf(digest, name, a.dtype.name, s)
        stored[name] = s
    return stored, leaves, digest.hexdigest()


def write(path: pathlib.Path, stored: dict[str, np.ndarray], header: dict) -> pathlib.Path:
    """``stored`` plus the JSON ``header`` written to ``path`` atomically (old temp files of ours removed first)."""
    stored[HEADER_KEY] = np.frombuffer(json.dumps(header).encode("utf-8"), np.uint8)
    remove_stale_temps(path)
    write_atomic(path, stored)
    return path


def jsonable(value: Any, where: str) -> Any:
    """``value`` as plain JSON types, or a TypeError naming ``where`` (the metadata key)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (np.generic, np.ndarray, jax.Array)):
        if np.size(value) > MAX_METADATA_ARRAY:
            raise TypeError(
                f"{where} is an array of shape {tuple(np.shape(value))}; metadata takes arrays of up to "
                f"{MAX_METADATA_ARRAY} elements (store large arrays as parameters or in a separate file)"
            )
        return jsonable(np.asarray(value).tolist(), where)
    if isinstance(value, Mapping):
        bad = [k for k in value if not isinstance(k, str)]
        if bad:
            raise TypeError(f"{where} has non-str keys {bad!r:.60}; JSON object keys must be str")
        return {k: jsonable(v, f"{where}[{k!r}]") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v, f"{where}[{i}]") for i, v in enumerate(value)]
    raise TypeError(
        f"{where} is a {type(value).__name__} ({value!r:.60}), which is not JSON-serialisable; "
        "metadata takes str, int, float, bool, None, lists, str-keyed dicts and small arrays"
    )


def hash_leaf(digest: Any, name: str, dtype: str, stored: np.ndarray) -> None:
    digest.update(f"{name}:{dtype}:{list(stored.shape)}\n".encode())
    digest.update(np.ascontiguousarray(stored).data)


def write_atomic(path: pathlib.Path, arrays: dict[str, np.ndarray]) -> None:
    """np.savez into a fresh temp file beside ``path``, fsync, os.replace; clean up on any error."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(6)}{TEMP_SUFFIX}")
    # O_EXCL: never reuse a file; mode 0o666 minus the umask, the permissions of any new file
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, allow_pickle=False, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def fsync_dir(directory: pathlib.Path) -> None:
    """Make the rename itself durable (POSIX); skipped where directories cannot be opened or synced."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def remove_stale_temps(path: pathlib.Path) -> None:
    """Delete this target's temp files (our naming) untouched for STALE_AFTER_S: killed saves."""
    now = time.time()
    for tmp in path.parent.glob(f".{glob.escape(path.name)}.*{TEMP_SUFFIX}"):
        try:
            if now - tmp.stat().st_mtime > STALE_AFTER_S:
                tmp.unlink()
        except OSError:  # already removed by another save, or not removable: leave it
            pass


def read(
    path: pathlib.Path, fail: Callable[[str], CheckpointError], check: Callable[[dict, set], list]
) -> tuple[dict, dict[str, np.ndarray]]:
    """Read and verify a checkpoint: its header and every leaf as numpy, in its real dtype.

    ``check(header, entries)`` validates the header of a readable version against the archive's entry
    names and returns its leaf list (or raises); ``fail(what)`` makes the error that names the file.
    Every leaf is then checked against its entry (stored dtype, shape) and all against the SHA-256."""
    try:
        npz = np.load(path, allow_pickle=False)
        if not isinstance(npz, np.lib.npyio.NpzFile):
            raise fail(f"it holds a single {type(npz).__name__}, not an .npz archive")
        with npz:
            header = read_header(npz, fail)
            leaves = check(header, set(npz.files))
            digest, arrays = hashlib.sha256(), {}
            for leaf in leaves:
                a = npz[leaf["name"]]
                if a.dtype.name != leaf["stored"] or list(a.shape) != leaf["shape"]:
                    got, want = f"{a.dtype.name}{list(a.shape)}", f"{leaf['stored']}{leaf['shape']}"
                    raise fail(f"leaf {leaf['name']!r} is {got}, the header says {want}")
                hash_leaf(digest, leaf["name"], leaf["dtype"], a)
                arrays[leaf["name"]] = a
    except CheckpointError:
        raise
    except DAMAGED as e:
        raise fail(f"{type(e).__name__}: {e} (truncated or corrupted?)") from e
    if digest.hexdigest() != header["sha256"]:
        raise fail("the SHA-256 of the parameter bytes does not match the header (altered or corrupted)")

    def decode(leaf: dict) -> np.ndarray:  # stored dtype, possibly non-native byte order
        a = arrays[leaf["name"]]
        return a.astype(a.dtype.newbyteorder("="), copy=False).view(jnp.dtype(leaf["dtype"]))

    return header, {leaf["name"]: decode(leaf) for leaf in leaves}


def read_header(npz: Any, fail: Any) -> dict:
    if HEADER_KEY not in npz.files:
        raise fail(f"no {HEADER_KEY!r} entry (a foreign .npz?); entries: {sorted(npz.files)[:8]}")
    raw = npz[HEADER_KEY]
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise fail(f"header is {raw.dtype}{raw.shape}, expected a 1-d uint8 array")
    try:
        header = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise fail(f"header is not UTF-8 JSON ({e})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        got = header.get("format") if isinstance(header, dict) else type(header).__name__
        raise fail(f"header format is {got!r}, expected {FORMAT!r}")
    version = header.get("version")
    if type(version) is not int or not 1 <= version <= VERSION:
        newer = " (written by a newer fnn: upgrade fnn to read it)" if type(version) is int and version > VERSION else ""
        raise CheckpointVersionError(fail(f"format version {version!r}; this fnn reads versions 1 to {VERSION}{newer}").args[0])
    kind = header.get("kind", "params" if version == PARAMS_VERSION else None)
    if (version, kind) not in KINDS:
        known = ", ".join(f"{k!r} (version {v})" for v, k in KINDS)
        what = f"format version {version} has no kind {kind!r} (written by a newer fnn?); this fnn reads {known}"
        raise CheckpointVersionError(fail(what).args[0])
    return header


def check_entry(leaf: dict) -> np.dtype:
    """A header's leaf entry (name, shape, dtype, stored dtype) checked for consistency: its real dtype, or a
    ValueError (a header that says so is malformed)."""
    dtype = np.dtype(jnp.dtype(leaf["dtype"]))
    native = dtype.name in NATIVE or dtype.kind in "biu"
    if (
        not isinstance(leaf["name"], str)
        or leaf["stored"] != (dtype.name if native else f"uint{8 * dtype.itemsize}")
        or not isinstance(leaf["shape"], list)
        or not all(type(d) is int and d >= 0 for d in leaf["shape"])
    ):
        raise ValueError(f"leaf {leaf} has an inconsistent dtype or shape")
    return dtype


# ---- pytrees: leaves by key path, nodes as JSON ----------------------------------------------------
def leaf_paths(tree: Any) -> list[str]:
    """Each leaf's key path (``jax.tree_util.keystr``), in flatten order.

    >>> leaf_paths([{"W": 1.0, "b": 2.0}, {}, {"state": {"mean": 3.0}}])
    ["[0]['W']", "[0]['b']", "[2]['state']['mean']"]
    """
    return [jax.tree_util.keystr(path) for path, _ in jax.tree_util.tree_flatten_with_path(tree)[0]]


def structure(tree: Any) -> Any:
    """The pytree's nodes as JSON: a leaf is its number in flatten order; a node is ``{"type": its type's
    name, "children": [[key, child], ...]}`` with each child's key path step (a dict's children in key
    order, as jax flattens them; ``None`` is a node without children). Lists, tuples, dicts, named tuples
    and registered nodes all keep their type, so a tuple and a list differ.

    >>> structure(({"W": 0.0}, [None]))["children"][0]
    ['[0]', {'type': 'dict', 'children': [["['W']", 0]]}]
    >>> structure(({"W": 0.0}, [None]))["children"][1]
    ['[1]', {'type': 'list', 'children': [['[0]', {'type': 'NoneType', 'children': []}]]}]
    """
    count = itertools.count()

    def node(x: Any) -> Any:
        leaves = jax.tree_util.tree_leaves(x)
        if len(leaves) == 1 and leaves[0] is x:
            return next(count)
        kids = jax.tree_util.tree_flatten_with_path(x, is_leaf=lambda y: y is not x)[0]  # x's own children
        return {"type": type(x).__qualname__, "children": [[jax.tree_util.keystr(k), node(c)] for k, c in kids]}

    return node(tree)


def first_difference(saved: Any, made: Any, ours: str, theirs: str, where: str = "params") -> str | None:
    """Where the :func:`structure` ``saved`` (``ours``: the file's, the params given) first differs from
    ``made`` (``theirs``: what the network's init makes), in words; None where they are the same.

    >>> first_difference(structure([{"W": 0}]), structure([{"W": 0, "b": 1}]), "the file", "net.init's")
    "params[0] has the entries ['W'] in the file, ['W', 'b'] in net.init's"
    """
    saved_leaf, made_leaf = isinstance(saved, int), isinstance(made, int)
    if saved_leaf or made_leaf:
        if saved_leaf and made_leaf:
            return None
        what = ("an array", f"a {made['type']}") if saved_leaf else (f"a {saved['type']}", "an array")
        return f"{where} is {what[0]} in {ours}, {what[1]} in {theirs}"
    if saved["type"] != made["type"]:
        return f"{where} is a {saved['type']} in {ours}, a {made['type']} in {theirs}"
    keys, want = [k for k, _ in saved["children"]], [k for k, _ in made["children"]]
    if keys != want:
        return f"{where} has the entries {_entries(keys)} in {ours}, {_entries(want)} in {theirs}"
    for (k, a), (_, b) in zip(saved["children"], made["children"]):
        found = first_difference(a, b, ours, theirs, where + k)
        if found:
            return found
    return None


def paths_of(tree: Any, where: str = "") -> list[str]:
    """The key paths of a :func:`structure`'s leaves, in flatten order (what :func:`leaf_paths` gives of the tree).

    >>> paths_of(structure([{"W": 0.0}, None, (1.0,)]))
    ["[0]['W']", '[2][0]']
    """
    if isinstance(tree, int) and not isinstance(tree, bool):
        return [where]
    return [p for key, child in tree["children"] for p in paths_of(child, where + key)]


def _entries(keys: list[str]) -> str:
    """``["['W']", "[0]"]`` as ``['W', 0]``: the keys as the user wrote them (where the path step shows them)."""
    shown = [k[2:-2] if k.startswith("['") and k.endswith("']") else k[1:-1] if k.startswith("[") else k for k in keys]
    return "[" + ", ".join(repr(k) if key.startswith("['") else k for k, key in zip(shown, keys)) + "]"
