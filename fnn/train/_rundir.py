"""A training run on disk: the carry's leaves by name, and ``checkpoint_dir``'s files.

A checkpoint of a run (format version 2 of :mod:`fnn.checkpoint`, kind ``train_state``) names every
leaf of the loop's carry: ``params/layer{l}/W``, ``best/layer{l}/b`` (a network of blocks' by their tree
path, running statistics included: ``params[1]['state']['mean']``), the optimizer state's leaves by
their tree path (``opt_state[0].mu[0]['W']``), ``step``, ``key`` (its data; the header names the
implementation), ``epoch``, ``stop``, ``best_val``, ``best_epoch``; :func:`restore` rebuilds the carry
in the structure of the one the call would start with, weak types included, or says what does not fit.
:class:`Directory` keeps the files ``state-{epoch:09d}.npz`` of one run.
"""

from __future__ import annotations

import hashlib
import os
import pathlib
import re
import warnings
from typing import Any

import jax
import numpy as np

from fnn.core.mlp import Params
from fnn.runs import checkpoint as _checkpoint
from fnn.train import _loop
from fnn.train.step import TrainState

Array = jax.Array

FILE = "state-{epoch:09d}.npz"
_FILE_RE = re.compile(r"state-(\d{9,})\.npz")


def _param_leaves(tag: str, params: Any, tree: bool) -> dict[str, Any]:
    """A parameter tree's leaves by name: an MLP's ``{tag}/layer{l}/W`` (as since 0.1); with ``tree`` (a network
    of blocks, a model: a checkpoint of kind ``tree_state``) by its tree path, ``{tag}[1]['state']['mean']``."""
    if not tree:
        return {f"{tag}/layer{l}/{k}": layer[k] for l, layer in enumerate(params) for k in ("W", "b")}
    return {tag + jax.tree_util.keystr(path): leaf for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]}


def named(c: _loop.Carry, tree: bool = False) -> dict[str, Any]:
    """The carry's leaves by name, as a checkpoint stores them (the history buffers aside); ``tree``: the
    parameters of a network of blocks or a model, by their tree paths."""
    out: dict[str, Any] = {}
    for tag, params in (("params", c.state.params), ("best", c.best)):
        out.update(_param_leaves(tag, params, tree))
    for path, leaf in jax.tree_util.tree_flatten_with_path(c.state.opt_state)[0]:
        out["opt_state" + jax.tree_util.keystr(path)] = leaf
    out.update(step=c.state.step, key=c.key, epoch=c.epoch, stop=c.stop, best_val=c.best_val, best_epoch=c.best_epoch)
    return out


def to_host(leaves: dict[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, dict]]:
    """Numpy copies of ``leaves`` (one transfer) and each one's facts numpy cannot hold: a weak type, a key's implementation."""
    info: dict[str, dict] = {}
    out = {}
    for name, leaf in leaves.items():
        if isinstance(leaf, jax.Array) and jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            info[name] = {"key_impl": str(jax.random.key_impl(leaf))}
            out[name] = jax.random.key_data(leaf)
            continue
        if getattr(leaf, "weak_type", False):
            info[name] = {"weak": True}
        out[name] = leaf
    return jax.device_get(out), info


def key_data(key: Array) -> list:
    typed = jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key)
    return np.asarray(jax.random.key_data(key) if typed else key).tolist()


def digest(params: Params) -> str:
    """SHA-256 of the parameters' bytes: which starting point a checkpoint's run began from."""
    h = hashlib.sha256()
    for a in jax.device_get(jax.tree_util.tree_leaves(params)):
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def _weak(a: np.ndarray) -> Any:
    """``a`` weakly typed, as the run held it (the compiled loop is keyed on weak types, and they steer promotion)."""
    try:
        from jax._src.lax.lax import _convert_element_type  # no public way to make a weakly typed array

        return _convert_element_type(a, a.dtype, weak_type=True)
    except (ImportError, TypeError):
        return jax.numpy.asarray(a)


def restore(template: _loop.Carry, arrays: dict[str, np.ndarray], header: dict) -> _loop.Carry:
    """The carry a checkpoint holds, in the structure, shapes and dtypes of ``template`` (abstract)."""
    info = {leaf["name"]: leaf for leaf in header["leaves"]}
    tree = header.get("kind") == _checkpoint.TREE_STATE_KIND
    want = named(template, tree)
    have = {k for k in arrays if not k.startswith("history/")}
    opt_want, opt_have = (
        sorted(k for k in want if k.startswith("opt_state")),
        sorted(k for k in have if k.startswith("opt_state")),
    )
    if opt_want != opt_have or any(arrays[k].shape != want[k].shape or arrays[k].dtype != want[k].dtype for k in opt_want):
        shown = [f"{k} {arrays[k].dtype}{list(arrays[k].shape)}" for k in opt_have][:6]
        raise ValueError(
            f"the optimizer's state has another structure than the checkpoint's (it holds {shown}, this optimizer "
            f"{[f'{k} {want[k].dtype}{list(want[k].shape)}' for k in opt_want][:6]}): it cannot be carried over"
        )
    if set(want) != have:
        raise _checkpoint.CheckpointError(f"the checkpoint's leaves {sorted(have ^ set(want))} do not fit this run")

    def value(name: str) -> Any:
        a, t, leaf = arrays[name], want[name], info[name]
        if "key_impl" in leaf:
            return jax.random.wrap_key_data(jax.numpy.asarray(a), impl=leaf["key_impl"])
        if a.shape != t.shape or a.dtype != t.dtype:
            raise _checkpoint.CheckpointError(
                f"leaf {name!r} is {a.dtype}{list(a.shape)}, this run needs {t.dtype}{list(t.shape)}"
            )
        return _weak(a) if leaf.get("weak") else a

    def params(tag: str) -> Params:
        like = template.state.params
        if not tree:
            return [{k: value(f"{tag}/layer{l}/{k}") for k in ("W", "b")} for l in range(len(like))]
        return jax.tree_util.tree_unflatten(
            jax.tree_util.tree_structure(like), [value(k) for k in _param_leaves(tag, like, True)]
        )

    treedef = jax.tree_util.tree_structure(template.state.opt_state)
    order = ["opt_state" + jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(template.state.opt_state)[0]]
    opt_state = jax.tree_util.tree_unflatten(treedef, [value(k) for k in order])
    state = TrainState(params("params"), opt_state, value("step"))
    return _loop.Carry(
        state, value("key"), value("epoch"), value("stop"), params("best"), value("best_val"), value("best_epoch"), {}
    )


class Directory:
    """``checkpoint_dir``: the files ``state-{epoch:09d}.npz``, newest by epoch; the last ``keep`` kept."""

    def __init__(self, path: pathlib.Path, keep: int) -> None:
        self.path, self.keep = path, keep

    def files(self) -> list[pathlib.Path]:
        if not self.path.is_dir():
            return []
        found = [(int(m.group(1)), p) for p in self.path.iterdir() if (m := _FILE_RE.fullmatch(p.name))]
        return [p for _, p in sorted(found)]

    def latest(self) -> tuple[pathlib.Path, dict, dict[str, np.ndarray]] | None:
        """The newest readable checkpoint; a damaged newer one is moved aside (``.corrupt``) with a warning.
        A file of a newer format (or not a training state) is an error, never skipped."""
        bad: list[tuple[pathlib.Path, str]] = []
        for path in reversed(self.files()):
            try:
                header, arrays = _checkpoint.read_state(path)
            except _checkpoint.CheckpointVersionError:
                raise  # not damaged: a newer fnn's file, or a parameters file, is no reason to go back
            except _checkpoint.CheckpointError as e:
                bad.append((path, str(e)))
                continue
            for damaged, why in bad:
                aside = damaged.with_name(damaged.name + ".corrupt")
                os.replace(damaged, aside)
                warnings.warn(
                    f"checkpoint {str(damaged)!r} is unreadable ({why}); moved aside to {aside.name}, resuming from "
                    f"the one before it, {path.name}",
                    RuntimeWarning,
                    stacklevel=4,
                )
            return path, header, arrays
        if bad:
            raise _checkpoint.CheckpointError(
                f"no readable checkpoint in {str(self.path)!r}: " + "; ".join(f"{p.name}: {why}" for p, why in bad)
            )
        return None

    def save(self, net: Any, arrays: dict[str, np.ndarray], run: dict, at: int, **metadata: Any) -> pathlib.Path:
        """Write the state of epoch ``at`` atomically, then delete all but the newest ``keep`` files."""
        path = _checkpoint.save_state(self.path / FILE.format(epoch=at), net, arrays, run, **metadata)
        for old in self.files()[: -self.keep]:
            old.unlink(missing_ok=True)
        return path

    def clean(self) -> None:
        """Remove the temporary files that killed saves left (their process is gone; POSIX only)."""
        if os.name != "posix" or not self.path.is_dir():
            return
        for tmp in self.path.glob(f".state-*{_checkpoint.TEMP_SUFFIX}"):
            m = re.fullmatch(r"\.state-\d+\.npz\.(\d+)\.[0-9a-f]+" + re.escape(_checkpoint.TEMP_SUFFIX), tmp.name)
            if m is None or int(m.group(1)) == os.getpid():
                continue
            try:
                os.kill(int(m.group(1)), 0)
            except ProcessLookupError:
                tmp.unlink(missing_ok=True)
            except OSError:  # alive under another user: not ours to remove
                pass
