"""Save and load a network spec, its parameters and metadata: one ``.npz`` file, no pickle.

:func:`save` writes a network and its parameters (an MLP: format version 1; a :class:`~fnn.Network`
of blocks or a :class:`~fnn.Model`: version 2, kind ``"tree_params"``, every leaf of the parameter
pytree by its key path, running statistics included), :func:`save_state` the whole state of a ``fit``
or ``fit_many`` run that ``checkpoint_dir=`` writes (version 2, kind ``"train_state"``; of a Network or
a Model, ``"tree_state"``), which :func:`read_state` reads back; :func:`load` reads them all (of a
training state, the parameters ``fit`` would return at that epoch). A file of a newer version or of a
kind this fnn does not know is refused with a message that says so. The bytes on disk (named arrays, a
JSON header, a SHA-256) are ``fnn.runs._format``'s.

A checkpoint stores a network's spec, never code: the blocks and activations you wrote are named in it
and supplied again to :func:`load` (``blocks=``, ``activations=``), and a Model's functions are its
own (``load(path, model=...)``).

Guarantees: nothing is ever pickled or unpickled (``allow_pickle=False`` on both sides); a save
either replaces the file whole or leaves the previous one untouched (temporary file in the same
directory, ``fsync``, ``os.replace``); a load is bit-exact or raises :class:`CheckpointError`.
"""

from __future__ import annotations

import functools
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
from fnn.core.blocks import Block
from fnn.core.mlp import MLP, custom_activations
from fnn.core.network import Model, Network
from fnn.runs._format import (
    FORMAT,
    HEADER_KEY,
    NATIVE,
    PARAMS_VERSION,
    STALE_AFTER_S,
    STATE_KIND,
    TEMP_SUFFIX,
    TREE_PARAMS_KIND,
    TREE_STATE_KIND,
    VERSION,
    CheckpointError,
    CheckpointVersionError,
    check_entry,
    encode,
    first_difference,
    jsonable,
    leaf_paths,
    paths_of,
    read,
    structure,
    write,
)

__all__ = [
    "FORMAT",
    "HEADER_KEY",
    "PARAMS_VERSION",
    "STALE_AFTER_S",
    "STATE_KIND",
    "TEMP_SUFFIX",
    "TREE_PARAMS_KIND",
    "TREE_STATE_KIND",
    "VERSION",
    "CheckpointError",
    "CheckpointVersionError",
    "PathLike",
    "load",
    "param_names",
    "read_state",
    "save",
    "save_state",
]

#: A path: a string or an ``os.PathLike``.
PathLike = Union[str, "os.PathLike[str]"]
Net = MLP | Network | Model


# ---- save ---------------------------------------------------------------------------------------
def save(path: PathLike, net: Net, params: Any, **metadata: Any) -> pathlib.Path:
    """Write ``net``, ``params`` and ``metadata`` to ``path`` atomically, without pickle.

    The file is written exactly at ``path`` (no suffix is added). It goes first to a temporary file
    ``.{name}.{pid}.{random}.fnn-tmp`` beside the target, is flushed and ``fsync``-ed, and then
    ``os.replace``-d onto ``path``: readers see the old checkpoint or the new one, never a mix. On
    any error the temporary file is removed and the old checkpoint is untouched. A process killed
    mid-save leaves its temporary file behind; later saves to the same path delete such files once
    they are older than :data:`STALE_AFTER_S` seconds (an hour).

    Args:
      path: target file (str or PathLike, not empty); its directory must exist.
      net: the :class:`~fnn.MLP`, :class:`~fnn.Network` of blocks or :class:`~fnn.Model`.
      params: what ``net.init`` makes (an MLP's ``[{"W": (n_out, n_in), "b": (n_out,)}, ...]``; a
        Network's one dict per block, running statistics included; a Model's pytree, which must have
        the structure of its ``init``'s), or the same stacked over a leading network axis, every leaf
        ``(N, ...)`` (as ``fit_many`` returns them).
      **metadata: JSON-serialisable values (str keys, lists, dicts, numbers, str, None); numpy and
        jax scalars and arrays of up to 1024 elements are stored via ``.tolist()``.

    Returns:
      The path written, as a :class:`pathlib.Path`.

    Raises:
      TypeError: ``path`` is not a str or PathLike, ``net`` is not an MLP, Network or Model, or a
        metadata value cannot be stored (the key is named).
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
    _check_net(net)
    if isinstance(net, MLP):
        stacked = _stack_size(net, params)
    else:
        spec = jsonable(net.to_json(), "the network's spec (net.to_json())")
        tree, names, leaves, stacked = _layout(net, params)
    meta = {k: jsonable(v, f"metadata[{k!r}]") for k, v in metadata.items()}
    directory = path.parent
    if not directory.exists():
        raise FileNotFoundError(f"cannot save checkpoint {str(path)!r}: directory {str(directory)!r} does not exist")
    if not directory.is_dir():
        raise NotADirectoryError(f"cannot save checkpoint {str(path)!r}: {str(directory)!r} is not a directory")

    if not isinstance(net, MLP):  # version 2, a tree: every leaf by its key path
        stored, entries, sha256 = encode(dict(zip(names, jax.device_get(leaves))))
        return write(
            path,
            stored,
            {
                "format": FORMAT,
                "version": VERSION,
                "kind": TREE_PARAMS_KIND,
                "net": spec,
                "tree": tree,
                "stacked": stacked,
                "metadata": meta,
                "leaves": entries,
                "sha256": sha256,
            },
        )
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


def _check_net(net: Any) -> None:
    if not isinstance(net, (MLP, Network, Model)):
        raise TypeError(
            f"`net` must be an fnn.MLP, got {type(net).__name__}: {net!r:.60} (a checkpoint takes an fnn.MLP, an "
            "fnn.Network of blocks or an fnn.Model)"
        )


def save_state(path: PathLike, net: Net, arrays: Mapping[str, np.ndarray], run: dict, **metadata: Any) -> pathlib.Path:
    """Write a training state (format version 2, kind ``"train_state"``; of a Network or a Model,
    ``"tree_state"``) to ``path``, atomically.

    Used by ``fit(..., checkpoint_dir=...)``; you rarely call it yourself.

    Args:
      path: the target file; its directory must exist.
      net: the network the state trains.
      arrays: named leaves, numpy arrays of any dtype. Of an MLP, ``params/layer{l}/W`` and
        ``params/layer{l}/b`` must be among them; of a Network or a Model, every leaf of the parameters
        by the names :func:`param_names` gives (``params[0]['W']``, ...: ``"params"`` and the leaf's key
        path), each of the shape ``net.init`` makes or with one leading network axis. Per-leaf facts (a
        weak type, a key's implementation) come in ``run["leaf_info"]``, ``{name: {"weak": True}}``, and
        are written into that leaf's header entry.
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
    _check_net(net)
    if isinstance(net, MLP):
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
    template = _template(net)
    shapes = {k: tuple(np.shape(v)) for k, v in arrays.items()}
    _stack_of(param_names(net), jax.tree_util.tree_leaves(template), shapes, ValueError, ("`arrays`", "net.init's"))
    spec = jsonable(net.to_json(), "the network's spec (net.to_json())")
    meta = {k: jsonable(v, f"metadata[{k!r}]") for k, v in metadata.items()}
    facts = jsonable({k: v for k, v in run.items() if k != "leaf_info"}, "run")
    stored, leaves, sha256 = encode(arrays, run.get("leaf_info"))
    header = {
        "format": FORMAT,
        "version": VERSION,
        "kind": TREE_STATE_KIND,
        "net": spec,
        "tree": structure(template),
        "metadata": meta,
        "run": facts,
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
        (:func:`save`) rather than a training state (the message says which).
    """
    path = _checks.check_path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {str(path)!r}")

    def fail(what: str) -> CheckpointError:
        return CheckpointError(f"{str(path)!r} is not a readable fnn training state: {what}")

    def check(header: dict, files: set) -> list:
        kind = header.get("kind")
        if header["version"] == PARAMS_VERSION or kind == TREE_PARAMS_KIND:
            saved_as = "format version 1" if header["version"] == PARAMS_VERSION else f"kind {TREE_PARAMS_KIND!r}"
            what = f"it is a parameters checkpoint (fnn.save, {saved_as}), not a training state; load it with fnn.load"
            raise CheckpointVersionError(fail(what).args[0])
        # a network the user built is compared by its spec, never rebuilt here: no activations or blocks needed
        if kind == TREE_STATE_KIND:
            return _check_tree_state_header(header, files, fail)
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
            check_entry(leaf)
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


def _check_tree_state_header(header: dict, files: set, fail: Any) -> list:
    """The leaf list of a ``tree_state`` header (a Network's or a Model's run), cross-checked with the entries
    and the parameters its tree names (the network itself is not rebuilt: its spec may need your code)."""
    try:
        leaves, spec, tree = header["leaves"], header["net"], header["tree"]
        if spec["kind"] not in ("network", "model"):
            raise ValueError(f"net kind {spec['kind']!r} is not a network's or a model's")
        if not all(isinstance(header[k], t) for k, t in (("metadata", dict), ("run", dict), ("sha256", str))):
            raise TypeError("metadata and run must be objects and sha256 a string")
        by_name = {}
        for leaf in leaves:
            check_entry(leaf)
            by_name[leaf["name"]] = leaf
        missing = [name for name in ("params" + p for p in paths_of(tree)) if name not in by_name]
        if missing:
            raise ValueError(f"the parameter leaves {missing[:4]} of its tree are missing")
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as e:
        raise fail(f"malformed header ({type(e).__name__}: {e})") from None
    if len(by_name) != len(leaves) or files != set(by_name) | {HEADER_KEY}:
        raise fail(f"entries {sorted(files)[:8]}... do not match the header's {len(leaves)} leaves")
    return leaves


# ---- a tree of parameters (a Network's, a Model's) ----------------------------------------------
def param_names(net: Network | Model, prefix: str = "params") -> list[str]:
    """The names a checkpoint gives the leaves of ``net``'s parameters, in flatten order: ``prefix`` and the
    leaf's key path (``jax.tree_util.keystr``), running statistics included.

    >>> from fnn.core.blocks import Dense, BatchNorm
    >>> param_names(Network(2, [Dense(3), BatchNorm()]))[:3]
    ["params[0]['W']", "params[0]['b']", "params[1]['beta']"]
    >>> param_names(Network(2, [Dense(3), BatchNorm()]))[-1]
    "params[1]['state']['var']"
    """
    return [prefix + p for p in leaf_paths(_template(net))]


def _template(net: Network | Model) -> Any:
    """The pytree ``net.init`` makes, as ``jax.ShapeDtypeStruct`` leaves (traced, not run; cached per network)."""
    try:
        hash(net)
    except TypeError:  # a Model of unhashable functions: not cached
        return _make_template(net)
    return _cached_template(net)


@functools.lru_cache(maxsize=32)
def _cached_template(net: Network | Model) -> Any:
    return _make_template(net)


def _make_template(net: Network | Model) -> Any:
    key = jax.random.key(0)
    if isinstance(net, Network):
        return jax.eval_shape(lambda: net.init(key))
    try:
        return jax.eval_shape(net.init_fn, key)
    except Exception:  # an init that cannot be traced (numpy on the key, a branch on a value): run it once
        made = net.init_fn(key)
        return jax.tree_util.tree_map(lambda a: jax.ShapeDtypeStruct(np.shape(a), jnp.result_type(a)), made)


def _layout(net: Network | Model, params: Any) -> tuple[Any, list[str], list, int | None]:
    """``params`` validated against ``net``: the tree ``net.init`` makes (:func:`structure`), the leaves'
    names, the leaves in the same order, and N when every leaf carries one extra leading axis N."""
    template = _template(net)
    names = param_names(net)
    if isinstance(net, Network):
        stacked = _network_stack(net, params)
        leaves = jax.tree_util.tree_leaves(params)
    else:  # the floats here; the tree and shapes below, against the model's init, stacked or not
        net.check_leaves(params)
        diff = first_difference(structure(params), structure(template), "`params`", "the model's init(key)")
        if diff:
            raise ValueError(f"`params` do not have the structure of the model's init(key) result: {diff}")
        leaves = jax.tree_util.tree_leaves(params)
        shapes = {n: tuple(np.shape(a)) for n, a in zip(names, leaves)}
        stacked = _stack_of(names, jax.tree_util.tree_leaves(template), shapes, ValueError, ("`params`", "the model's init(key)"))
    if len(set(names)) != len(names):
        raise ValueError(f"two leaves of `params` have the same key path: {sorted(n for n in names if names.count(n) > 1)[:4]}")
    return structure(template), names, leaves, stacked


def _network_stack(net: Network, params: Any) -> int | None:
    """Validate ``params`` against a Network (its own checks and errors); N when stacked over a network axis."""
    try:
        net.check_params(params)
        return None
    except (TypeError, ValueError) as e:
        first = e
    leaves = jax.tree_util.tree_leaves(params)
    if not leaves or not all(hasattr(a, "shape") and hasattr(a, "dtype") and len(a.shape) >= 1 for a in leaves):
        raise first
    try:  # the per-network shapes, without slicing device arrays
        net.check_params(jax.tree_util.tree_map(lambda a: jax.ShapeDtypeStruct(a.shape[1:], a.dtype), params))
    except (TypeError, ValueError):
        raise first from None
    n = {a.shape[0] for a in leaves}
    if len(n) != 1:
        got = [tuple(a.shape) for a in leaves]
        raise ValueError(f"`params` looks stacked over a network axis, but the leading sizes differ: shapes {got}")
    return int(n.pop())


def _stack_of(names: list[str], want: list, shapes: Mapping[str, tuple], error: Any, labels: tuple[str, str]) -> int | None:
    """Leaves ``names`` (of ``shapes``, ``labels[0]``'s) against the network's leaves ``want`` (``labels[1]``):
    None when every one has its shape, N when every one has it after one leading axis N; else ``error(message)``."""
    ours, theirs = labels
    missing = [n for n in names if n not in shapes]
    if missing:
        raise error(f"{ours} lacks the parameter leaves {missing[:4]} (of the {len(names)} in {theirs} tree)")
    got, exp = [tuple(shapes[n]) for n in names], [tuple(w.shape) for w in want]
    if got == exp:
        return None
    stacked = bool(got) and len(got[0]) == len(exp[0]) + 1 and got[0][1:] == exp[0]
    for n, g, e in zip(names, got, exp):
        if (g[1:] != e or len(g) != len(e) + 1) if stacked else g != e:
            how = "(N" + "".join(f", {d}" for d in e) + ") (stacked, as the first leaf is)" if stacked else str(e)
            raise error(f"leaf {n} has shape {g} in {ours}, {how} in {theirs}")
    sizes = {g[0] for g in got}
    if len(sizes) != 1:
        raise error(f"{ours} looks stacked over a network axis, but the leading sizes differ: shapes {got}")
    return int(sizes.pop())


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
def load(
    path: PathLike,
    activations: Mapping[str, Activation] | None = None,
    *,
    blocks: Mapping[str, type[Block]] | None = None,
    model: Model | None = None,
) -> tuple[Net, Any, dict]:
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
      blocks: the block classes you wrote (subclasses of :class:`fnn.blocks.Block`), by class name, that
        the saved :class:`~fnn.Network` uses: ``load(path, blocks={"Scale": Scale})``; without them
        ``load`` names what is missing.
      model: for a checkpoint of an :class:`~fnn.Model`, the model itself (its functions are not in the
        file): its spec (name, sizes, output) must be the saved one and its ``init`` must make the saved
        parameter tree.

    Returns:
      ``net`` (an :class:`~fnn.MLP` or :class:`~fnn.Network` equal to the saved one, or ``model``),
      ``params`` as jax arrays in the saved dtypes, in the structure ``net.init`` makes (an MLP's
      ``[{"W": (n_out, n_in), "b": (n_out,)}, ...]``; a Network's one dict per block, running statistics
      included), every leaf ``(N, ...)`` when stacked params were saved, and the ``metadata`` dict
      (tuples come back as lists).

    Raises:
      TypeError: ``path`` is not a str or PathLike; an ``activations``, ``blocks`` or ``model`` argument of
        the wrong type.
      ValueError: ``path`` is empty or holds a NUL; a bad ``activations``, ``blocks`` or ``model`` value.
      FileNotFoundError: no file at ``path``.
      CheckpointError: truncated, corrupted (CRC or checksum), not an fnn checkpoint, or written in a
        newer format version (the message names the version); or the network uses an activation or a
        block you built and ``activations`` / ``blocks`` does not supply it, or it holds a Model and
        ``model`` is missing or makes other parameters (the message says what to pass).
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
    if blocks is not None:
        if not isinstance(blocks, Mapping):
            raise TypeError(f"`blocks` must map class names to your fnn.blocks.Block classes, got {type(blocks).__name__}")
        for name, cls in blocks.items():
            if not (isinstance(cls, type) and issubclass(cls, Block)):
                raise TypeError(f"`blocks[{name!r}]` must be a subclass of fnn.blocks.Block (the class), got {cls!r:.60}")
    if model is not None and not isinstance(model, Model):
        raise TypeError(f"`model` must be the fnn.Model whose parameters the file holds, got {type(model).__name__}")
    if path.is_dir():
        raise IsADirectoryError(f"checkpoint path {str(path)!r} is a directory, not a file")
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {str(path)!r}")

    def fail(what: str) -> CheckpointError:
        return CheckpointError(f"{str(path)!r} is not a readable fnn checkpoint: {what}")

    rebuilt: dict[str, Any] = {}
    header, arrays = read(path, fail, _params_leaves(path, fail, activations, blocks, model, rebuilt))
    if "names" in rebuilt:  # a Network's or a Model's tree
        names = rebuilt["names"]
        _check_x64(path, [str(arrays[n].dtype) for n in names])
        treedef = jax.tree_util.tree_structure(rebuilt["template"])
        params = jax.tree_util.tree_unflatten(treedef, [jnp.asarray(arrays[n]) for n in names])
        return rebuilt["net"], params, header["metadata"]
    if header["version"] == PARAMS_VERSION:
        leaves, prefix = header["leaves"], "layer"
    else:  # a training state: the parameters fit would return at that epoch
        leaves, prefix = header["leaves"], "best/layer" if header["run"].get("early_stopping") else "params/layer"
    _check_x64(path, [leaf["dtype"] for leaf in leaves if leaf["name"].startswith(prefix)])
    try:
        net = MLP.from_json(header["net"], activations)
        params = [{k: jnp.asarray(arrays[f"{prefix}{l}/{k}"]) for k in ("W", "b")} for l in range(net.num_layers)]
    except (KeyError, TypeError, ValueError) as e:
        raise fail(f"malformed header ({type(e).__name__}: {e})") from None
    return net, params, header["metadata"]


def _check_x64(path: pathlib.Path, dtypes: list[str]) -> None:
    if "float64" in dtypes and not jax.config.read("jax_enable_x64"):
        raise ValueError(
            f"checkpoint {str(path)!r} holds float64 parameters but jax_enable_x64 is off, so jax would "
            'round them to float32; call jax.config.update("jax_enable_x64", True) before loading'
        )


def _params_leaves(path: pathlib.Path, fail: Any, activations: Any, blocks: Any, model: Any, rebuilt: dict) -> Any:
    """The header check :func:`load` reads with: the network rebuilt (a network with activations or blocks
    the user built needs them supplied; a model, ``model``) and checked against the header; then the
    leaf list of any kind. A tree's network, template and leaf names go into ``rebuilt``."""

    def check(header: dict, files: set) -> list:
        if header.get("kind") in (TREE_PARAMS_KIND, TREE_STATE_KIND):
            net = _rebuild(header.get("net"), path, activations, blocks, model)
            try:
                template = _template(net)
            except Exception as e:  # the model's init (your code) failed: not the file's fault
                raise CheckpointError(
                    f"cannot load {str(path)!r} into `model`: its init(key) failed ({type(e).__name__}: {e})"
                ) from e
            leaves, names = _check_tree_header(header, files, fail, net, template, path)
            rebuilt.update(net=net, template=template, names=names)
            return leaves
        if model is not None:
            raise CheckpointError(f"checkpoint {str(path)!r} holds an fnn.MLP, not an fnn.Model: load it without `model=`")
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


def _rebuild(spec: Any, path: pathlib.Path, activations: Any, blocks: Any, model: Model | None) -> Network | Model:
    """The Network a tree checkpoint's spec describes, or ``model`` checked against the saved model's spec."""
    where = repr(str(path))
    kind = spec.get("kind") if isinstance(spec, Mapping) else None
    if kind == "model":
        if model is None:
            sizes = spec.get("sizes")
            raise CheckpointError(
                f"checkpoint {where} holds the parameters of an fnn.Model {spec.get('name')!r} (sizes {sizes}); a checkpoint "
                "stores a model's name and sizes, not its code: load it with load(path, model=<your fnn.Model>)"
            )
        mine = model.to_json()
        if mine != spec:
            keys = sorted(set(spec) | set(mine))
            differ = ", ".join(f"{k} {spec.get(k)!r} (yours: {mine.get(k)!r})" for k in keys if spec.get(k) != mine.get(k))
            raise CheckpointError(
                f"checkpoint {where} holds another model than `model`: the saved one has {differ}; pass the model that was saved"
            )
        return model
    if kind != "network":
        raise CheckpointError(f"{where} is not a readable fnn checkpoint: malformed header (net kind {kind!r})")
    if model is not None:
        raise CheckpointError(f"checkpoint {where} holds an fnn.Network of blocks, not an fnn.Model: load it without `model=`")
    need_blocks, need_acts = _custom_names(spec)
    missing_blocks = [n for n in need_blocks if n not in (blocks or {})]
    missing_acts = [n for n in need_acts if n not in (activations or {})]
    if missing_blocks or missing_acts:
        what = [f"block(s) {missing_blocks}"] * bool(missing_blocks) + [f"activation(s) {missing_acts}"] * bool(missing_acts)
        args = [f"blocks={{{', '.join(f'{n!r}: {n}' for n in missing_blocks)}}}"] * bool(missing_blocks) + [
            f"activations={{{', '.join(f'{n!r}: <your fnn.Activation>' for n in missing_acts)}}}"
        ] * bool(missing_acts)
        raise CheckpointError(
            f"checkpoint {where} holds a network with {' and '.join(what)} that you wrote; a checkpoint stores their names "
            f"and settings, not their code: load it with load(path, {', '.join(args)})"
        )
    try:
        return Network.from_json(spec, activations, blocks)
    except Exception as e:  # a block of yours that does not take its saved settings, or is refused on first use
        raise CheckpointError(f"the network in {where} could not be rebuilt from its spec: {type(e).__name__}: {e}") from e


def _custom_names(spec: Mapping) -> tuple[list[str], list[str]]:
    """The names of the blocks and activations a Network spec marks ``custom`` (the user's own), at any depth."""
    blocks, acts = set(), set()

    def activation(a: Any) -> None:
        if isinstance(a, Mapping) and a.get("custom") and isinstance(a.get("name"), str):
            acts.add(a["name"])

    def walk(entries: Any) -> None:
        for b in entries if isinstance(entries, list) else []:
            if not isinstance(b, Mapping):
                continue
            if b.get("custom") and isinstance(b.get("block"), str):
                blocks.add(b["block"])
            for v in b.values():  # an activation among its settings (Activate's, or one of a block of yours)
                activation(v)
            walk(b.get("blocks"))  # a residual's sub-stack

    walk(spec.get("blocks"))
    activation(spec.get("output"))
    return sorted(blocks), sorted(acts)


def _check_tree_header(
    header: dict, files: set, fail: Any, net: Network | Model, template: Any, path: pathlib.Path
) -> tuple[list, list[str]]:
    """A tree header (kind ``tree_params`` or ``tree_state``) against the network rebuilt from it: its leaf
    list and the names of the parameters :func:`load` returns."""
    made_by = "model.init's" if isinstance(net, Model) else "the rebuilt network's"
    try:
        leaves = header["leaves"]
        if not isinstance(header["metadata"], dict) or not isinstance(header["sha256"], str):
            raise TypeError("metadata must be an object and sha256 a string")
        by_name = {}
        for leaf in leaves:
            check_entry(leaf)
            by_name[leaf["name"]] = leaf
        if header["kind"] == TREE_STATE_KIND:  # the parameters fit would return at that epoch
            prefix = "best" if header["run"].get("early_stopping") else "params"
        else:
            prefix, stacked = "params", header["stacked"]
            if stacked is not None and (type(stacked) is not int or stacked < 1):
                raise ValueError(f"stacked must be null or a positive int, got {stacked!r}")
        diff = first_difference(header["tree"], structure(template), "the file", made_by)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as e:
        raise fail(f"malformed header ({type(e).__name__}: {e})") from None
    if diff:
        hint = "is it the model that was saved?" if isinstance(net, Model) else "a block of yours whose init changed since?"
        raise CheckpointError(f"checkpoint {str(path)!r} holds another parameter tree than {made_by}: {diff} ({hint})")
    names = [prefix + p for p in leaf_paths(template)]
    shapes = {n: tuple(leaf["shape"]) for n, leaf in by_name.items()}

    def mismatch(what: str) -> CheckpointError:
        return CheckpointError(f"checkpoint {str(path)!r} does not fit: {what}")

    found = _stack_of(names, jax.tree_util.tree_leaves(template), shapes, mismatch, ("the file", made_by))
    if header["kind"] == TREE_PARAMS_KIND and (found != stacked or [leaf["name"] for leaf in leaves] != names):
        raise fail(f"its leaves {[leaf['name'] for leaf in leaves][:6]}... (stacked {stacked}) do not match its tree")
    for n in names:
        if not jnp.issubdtype(jnp.dtype(by_name[n]["dtype"]), jnp.floating):
            raise fail(f"parameter leaf {n} has dtype {by_name[n]['dtype']}, not a float")
    if len(by_name) != len(leaves) or files != set(by_name) | {HEADER_KEY}:
        raise fail(f"entries {sorted(files)[:8]}... do not match the header's {len(leaves)} leaves")
    return leaves, names


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
