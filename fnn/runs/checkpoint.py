"""Save and load a network spec, its parameters and metadata: one ``.npz`` file, no pickle.

:func:`save` writes a network and its parameters (format version 1), :func:`save_state` the whole state
of a ``fit`` or ``fit_many`` run that ``checkpoint_dir=`` writes (version 2, kind ``"train_state"``),
which :func:`read_state` reads back; :func:`load` reads both kinds (of a training state, the parameters
``fit`` would return at that epoch). A file of a newer version is refused with a message that says
so, as version-1 readers refuse version 2 by its number. The bytes on disk (named arrays, a JSON
header, a SHA-256) are :mod:`fnn.runs._format`'s.

Guarantees: nothing is ever pickled or unpickled (``allow_pickle=False`` on both sides); a save
either replaces the file whole or leaves the previous one untouched (temporary file in the same
directory, ``fsync``, ``os.replace``); a load is bit-exact or raises :class:`CheckpointError`.
"""

from __future__ import annotations

import itertools
import os
import pathlib
from collections.abc import Mapping
from typing import Any, Union

import jax
import jax.numpy as jnp
import numpy as np

from fnn import _checks
from fnn.core.activations import Activation
from fnn.core.mlp import MLP, Params, custom_activations
from fnn.runs._format import (
    FORMAT,
    HEADER_KEY,
    NATIVE,
    PARAMS_VERSION,
    STALE_AFTER_S,
    STATE_KIND,
    TEMP_SUFFIX,
    VERSION,
    CheckpointError,
    CheckpointVersionError,
    encode,
    jsonable,
    read,
    write,
)

__all__ = [
    "FORMAT",
    "HEADER_KEY",
    "PARAMS_VERSION",
    "STALE_AFTER_S",
    "STATE_KIND",
    "TEMP_SUFFIX",
    "VERSION",
    "CheckpointError",
    "CheckpointVersionError",
    "PathLike",
    "load",
    "read_state",
    "save",
    "save_state",
]

PathLike = Union[str, "os.PathLike[str]"]


# ---- save ---------------------------------------------------------------------------------------
def save(path: PathLike, net: MLP, params: Params, **metadata: Any) -> pathlib.Path:
    """Write ``net``, ``params`` and ``metadata`` to ``path`` atomically, without pickle.

    The file is written exactly at ``path`` (no suffix is added). It goes first to a temporary file
    ``.{name}.{pid}.{random}.fnn-tmp`` beside the target, is flushed and ``fsync``-ed, and then
    ``os.replace``-d onto ``path``: readers see the old checkpoint or the new one, never a mix. On
    any error the temporary file is removed and the old checkpoint is untouched. A process killed
    mid-save leaves its temporary file behind; later saves to the same path delete such files once
    they are older than :data:`STALE_AFTER_S` seconds (an hour).

    Args:
      path: target file (str or PathLike, not empty); its directory must exist.
      net: the :class:`~fnn.MLP` spec.
      params: ``[{"W": (n_out, n_in), "b": (n_out,)}, ...]`` from ``net.init``, or the same stacked
        over a leading network axis, every leaf ``(N, ...)`` (as an ensemble trainer returns).
      **metadata: JSON-serialisable values (str keys, lists, dicts, numbers, str, None); numpy and
        jax scalars and arrays of up to 1024 elements are stored via ``.tolist()``.

    Returns:
      The path written, as a :class:`pathlib.Path`.

    Raises:
      TypeError: ``path`` is not a str or PathLike, ``net`` is not an MLP, or a metadata value cannot
        be stored (the key is named).
      ValueError: ``params`` does not match ``net``.
      FileNotFoundError: the directory of ``path`` does not exist.

    Example:
      >>> import tempfile
      >>> net = MLP((2, 4, 1))
      >>> p = save(f"{tempfile.mkdtemp()}/net.npz", net, net.init(jax.random.key(0)), epoch=3)
      >>> load(p)[2]
      {'epoch': 3}
    """
    path = _checks.check_path(path)
    if not isinstance(net, MLP):
        raise TypeError(f"`net` must be an fnn.MLP, got {type(net).__name__}: {net!r:.60}")
    stacked = _stack_size(net, params)
    meta = {k: jsonable(v, f"metadata[{k!r}]") for k, v in metadata.items()}
    directory = path.parent
    if not directory.exists():
        raise FileNotFoundError(f"cannot save checkpoint {str(path)!r}: directory {str(directory)!r} does not exist")
    if not directory.is_dir():
        raise NotADirectoryError(f"cannot save checkpoint {str(path)!r}: {str(directory)!r} is not a directory")

    named = {f"layer{l}/{leaf}": layer[leaf] for l, layer in enumerate(params) for leaf in ("W", "b")}
    stored, leaves, sha256 = encode(named)
    header = {
        "format": FORMAT,
        "version": PARAMS_VERSION,
        "net": net.to_json(),
        "stacked": stacked,
        "metadata": meta,
        "leaves": leaves,
        "sha256": sha256,
    }
    return write(path, stored, header)


def save_state(path: PathLike, net: MLP, arrays: Mapping[str, np.ndarray], run: dict, **metadata: Any) -> pathlib.Path:
    """Write a training state (format version 2, kind ``"train_state"``) to ``path``, atomically.

    Used by ``fit(..., checkpoint_dir=...)``; you rarely call it yourself.

    Args:
      path: the target file; its directory must exist.
      net: the network the state trains.
      arrays: named leaves, numpy arrays of any dtype (``params/layer{l}/W`` and ``params/layer{l}/b``
        must be among them). Per-leaf facts (a weak type, a key's implementation) come in
        ``run["leaf_info"]``, ``{name: {"weak": True}}``, and are written into that leaf's header entry.
      run: JSON-serialisable facts of the run (the plan, epochs, stop rule state).
      **metadata: as for :func:`save`; :func:`load` returns them.

    Returns:
      The path written.

    >>> import tempfile
    >>> net = MLP((2, 1))
    >>> p = save_state(f"{tempfile.mkdtemp()}/s.npz", net, {"params/layer0/W": np.ones((1, 2), np.float32),
    ...                "params/layer0/b": np.zeros(1, np.float32), "epoch": np.int32(3)}, {"epoch": 3}, epoch=3)
    >>> header, arrays = read_state(p)
    >>> header["run"]["epoch"], int(arrays["epoch"]), load(p)[2]
    (3, 3, {'epoch': 3})
    """
    path = _checks.check_path(path)
    if not isinstance(net, MLP):
        raise TypeError(f"`net` must be an fnn.MLP, got {type(net).__name__}: {net!r:.60}")
    stored, leaves, sha256 = encode(arrays, run.get("leaf_info"))
    header = {
        "format": FORMAT,
        "version": VERSION,
        "kind": STATE_KIND,
        "net": net.to_json(),
        "metadata": {k: jsonable(v, f"metadata[{k!r}]") for k, v in metadata.items()},
        "run": jsonable({k: v for k, v in run.items() if k != "leaf_info"}, "run"),
        "leaves": leaves,
        "sha256": sha256,
    }
    return write(path, stored, header)


def read_state(path: PathLike) -> tuple[dict, dict[str, np.ndarray]]:
    """Read a training state written by :func:`save_state`: ``(header, arrays)``, every leaf as numpy in
    its real dtype (bfloat16 included), verified against the header and its SHA-256.

    Raises:
      FileNotFoundError: no file at ``path``.
      CheckpointError: unreadable, corrupted, of a newer format, or a parameters checkpoint
        (:func:`save`, version 1) rather than a training state (the message says which).
    """
    path = _checks.check_path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {str(path)!r}")

    def fail(what: str) -> CheckpointError:
        return CheckpointError(f"{str(path)!r} is not a readable fnn training state: {what}")

    def check(header: dict, files: set) -> list:
        if header["version"] == PARAMS_VERSION:
            what = "it is a parameters checkpoint (fnn.save, format version 1), not a training state; load it with fnn.load"
            raise CheckpointVersionError(fail(what).args[0])
        # a network the user built is compared by its spec, never rebuilt here: no activations needed
        return _check_state_header(header, files, fail)

    return read(path, fail, check)


def _check_state_header(header: dict, files: set, fail: Any) -> list:
    """The leaf list of a version-2 training-state header, cross-checked with the entries and the spec's sizes."""
    try:
        leaves, sizes = header["leaves"], header["net"]["sizes"]
        if (
            not isinstance(header["metadata"], dict)
            or not isinstance(header["run"], dict)
            or not isinstance(header["sha256"], str)
        ):
            raise TypeError("metadata and run must be objects and sha256 a string")
        by_name = {}
        for leaf in leaves:
            dtype = np.dtype(jnp.dtype(leaf["dtype"]))
            native = dtype.name in NATIVE or dtype.kind in "biu"
            if leaf["stored"] != (dtype.name if native else f"uint{8 * dtype.itemsize}") or not all(
                type(d) is int and d >= 0 for d in leaf["shape"]
            ):
                raise ValueError(f"leaf {leaf} has an inconsistent dtype or shape")
            by_name[leaf["name"]] = leaf
        for l, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
            for k, shape in (("W", [n_out, n_in]), ("b", [n_out])):
                got = by_name[f"params/layer{l}/{k}"]["shape"]
                if got[len(got) - len(shape) :] != shape:
                    raise ValueError(f"leaf params/layer{l}/{k} has shape {got}, the network needs {shape}")
    except (KeyError, TypeError, ValueError, IndexError) as e:
        raise fail(f"malformed header ({type(e).__name__}: {e})") from None
    if len(by_name) != len(leaves) or files != set(by_name) | {HEADER_KEY}:
        raise fail(f"entries {sorted(files)[:8]}... do not match the header's {len(leaves)} leaves")
    return leaves


def _stack_size(net: MLP, params: Any) -> int | None:
    """Validate ``params`` against ``net``; N when every leaf carries one extra leading axis N."""
    shapes = [s for layer in net.shapes for s in (layer["W"], layer["b"])]
    try:
        leaves = [layer[k] for layer in params for k in ("W", "b")]
        ranks = [len(a.shape) for a in leaves]
    except (TypeError, KeyError, AttributeError):
        leaves, ranks = [], []
    stacked = len(leaves) == len(shapes) and ranks == [len(s) + 1 for s in shapes]
    if not stacked:
        _checks.check_params(net, params)
        return None
    n = {a.shape[0] for a in leaves}
    if len(n) != 1:
        got = [tuple(a.shape) for a in leaves]
        raise ValueError(f"`params` looks stacked over a network axis, but the leading sizes differ: shapes {got}")
    # check the per-network shapes without slicing device arrays
    _checks.check_params(net, [{k: jax.ShapeDtypeStruct(v.shape[1:], v.dtype) for k, v in layer.items()} for layer in params])
    return int(n.pop())


# ---- load ---------------------------------------------------------------------------------------
def load(path: PathLike, activations: Mapping[str, Activation] | None = None) -> tuple[MLP, Params, dict]:
    """Read a checkpoint written by :func:`save`: ``(net, params, metadata)``, bit-exact.

    Also reads a training state that ``fit(..., checkpoint_dir=...)`` wrote (format version 2): its
    ``params`` are those ``fit`` would return at that epoch (the best ones under early stopping).

    Reads with ``np.load(..., allow_pickle=False)``, so loading an untrusted file never runs code.
    Checks the header, the leaf names, shapes and dtypes, and the SHA-256 of the leaf bytes.

    Args:
      path: the checkpoint file (str or PathLike).
      activations: the activations you built, by name, that the saved network uses: a checkpoint
        stores an activation's name and parameters, never its code (nothing is unpickled), so
        ``load(path, activations={"swish": swish})`` supplies them; without them ``load`` names what
        is missing.

    Returns:
      ``net`` (an :class:`~fnn.MLP` equal to the saved one), ``params`` as jax arrays in the
      saved dtypes (``[{"W": (n_out, n_in), "b": (n_out,)}, ...]``, or every leaf ``(N, ...)`` when
      stacked params were saved), and the ``metadata`` dict (tuples come back as lists).

    Raises:
      TypeError / ValueError: ``path`` is not a str or PathLike, or is empty or holds a NUL.
      FileNotFoundError: no file at ``path``.
      CheckpointError: truncated, corrupted (CRC or checksum), not an fnn checkpoint, or written in a
        newer format version (the message names the version); or the network uses an activation you built and ``activations`` does
        not supply it (the message names it).
      ValueError: the file holds float64 leaves but x64 is off (jax would round them to float32);
        enable it first with ``jax.config.update("jax_enable_x64", True)``.

    Example:
      >>> import tempfile
      >>> net = MLP((2, 3))
      >>> net2, params, meta = load(save(f"{tempfile.mkdtemp()}/a.npz", net, net.init(jax.random.key(0))))
      >>> net2 == net, params[0]["W"].shape, meta
      (True, (3, 2), {})
    """
    path = _checks.check_path(path)
    if activations is not None:
        if not isinstance(activations, Mapping):
            raise TypeError(f"`activations` must map names to fnn.Activation objects, got {type(activations).__name__}")
        for name, act in activations.items():
            if not isinstance(act, Activation):
                raise TypeError(f"`activations[{name!r}]` must be an fnn.Activation, got {type(act).__name__}: {act!r:.60}")
    if path.is_dir():
        raise IsADirectoryError(f"checkpoint path {str(path)!r} is a directory, not a file")
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {str(path)!r}")

    def fail(what: str) -> CheckpointError:
        return CheckpointError(f"{str(path)!r} is not a readable fnn checkpoint: {what}")

    header, arrays = read(path, fail, _params_leaves(path, fail, activations))
    if header["version"] == PARAMS_VERSION:
        leaves, prefix = header["leaves"], "layer"
    else:  # a training state: the parameters fit would return at that epoch
        leaves, prefix = header["leaves"], "best/layer" if header["run"].get("early_stopping") else "params/layer"
    if any(leaf["dtype"] == "float64" and leaf["name"].startswith(prefix) for leaf in leaves) and not jax.config.read(
        "jax_enable_x64"
    ):
        raise ValueError(
            f"checkpoint {str(path)!r} holds float64 parameters but jax_enable_x64 is off, so jax would "
            'round them to float32; call jax.config.update("jax_enable_x64", True) before loading'
        )
    try:
        net = MLP.from_json(header["net"], activations)
        params = [{k: jnp.asarray(arrays[f"{prefix}{l}/{k}"]) for k in ("W", "b")} for l in range(net.num_layers)]
    except (KeyError, TypeError, ValueError) as e:
        raise fail(f"malformed header ({type(e).__name__}: {e})") from None
    return net, params, header["metadata"]


def _params_leaves(path: pathlib.Path, fail: Any, activations: Any) -> Any:
    """The header check :func:`load` reads with: a network with activations the user built needs them
    supplied; then the leaf list of either kind."""

    def check(header: dict, files: set) -> list:
        missing = [n for n in custom_activations(header.get("net")) if n not in (activations or {})]
        if missing:
            wanted = ", ".join(f"{n!r}: <your fnn.Activation>" for n in missing)
            raise CheckpointError(
                f"checkpoint {str(path)!r} holds a network with activation(s) {missing} that you built; a "
                f"checkpoint stores their names, not their code: load it with load(path, activations={{{wanted}}})"
            )
        if header["version"] == PARAMS_VERSION:
            return _check_header(header, files, fail, activations)[1]
        return _check_state_header(header, files, fail)

    return check


def _check_header(header: dict, files: set, fail: Any, activations: Any = None) -> tuple[MLP, list]:
    """The spec and leaf list of a version-1 header, cross-checked with the spec and the entries."""
    try:
        net = MLP.from_json(header["net"], activations)
        stacked, leaves, meta, sha = header["stacked"], header["leaves"], header["metadata"], header["sha256"]
        if stacked is not None and (type(stacked) is not int or stacked < 1):
            raise ValueError(f"stacked must be null or a positive int, got {stacked!r}")
        if not isinstance(meta, dict) or not isinstance(sha, str):
            raise TypeError("metadata must be an object and sha256 a string")
        names = [leaf["name"] for leaf in leaves]
        prefix = [] if stacked is None else [stacked]
        want = [prefix + list(s) for layer in net.shapes for s in (layer["W"], layer["b"])]
        for leaf, shape in zip(leaves, want):
            dtype = jnp.dtype(leaf["dtype"])
            stored = dtype.name if dtype.name in NATIVE else f"uint{8 * dtype.itemsize}"
            if not jnp.issubdtype(dtype, jnp.floating) or leaf["stored"] != stored or leaf["shape"] != shape:
                raise ValueError(f"leaf {leaf} does not fit {net!r} (expected shape {shape}, stored as {stored})")
    except (KeyError, TypeError, ValueError) as e:
        raise fail(f"malformed header ({type(e).__name__}: {e})") from None
    expected = [f"layer{l}/{k}" for l in range(net.num_layers) for k in ("W", "b")]
    if names != expected or files != set(expected) | {HEADER_KEY}:
        raise fail(f"entries {sorted(files)} do not match the header's leaves {names} for {net!r}")
    return net, leaves
