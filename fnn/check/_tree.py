"""Parameter trees as the checks see them: every leaf with a readable name, and all of them as one flat vector.

A network of blocks keeps its parameters as a list of nested dicts (``[{"W", "b"}, {"blocks": [...], "proj":
{"W"}}, ...]``), a block as one dict, a :class:`~fnn.Model` as any pytree. The checks perturb one coordinate
at a time, so they see a tree as a flat vector ``θ`` (:meth:`Layout.ravel` / :meth:`Layout.unravel`) and name
a leaf by its path (``blocks[0].W``, ``state.mean``: :func:`leaf_name`).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array


def leaf_name(path: tuple) -> str:
    """A key path as it reads in code, without the quotes: ``blocks[0].W``, ``gamma``, ``[2].state.var``.

    >>> leaf_name((jax.tree_util.DictKey("blocks"), jax.tree_util.SequenceKey(0), jax.tree_util.DictKey("W")))
    'blocks[0].W'
    """
    out = ""
    for k in path:
        if isinstance(k, jax.tree_util.SequenceKey):
            out += f"[{k.idx}]"
        elif isinstance(k, jax.tree_util.DictKey):
            out += f"{'.' if out else ''}{k.key}"
        elif isinstance(k, jax.tree_util.GetAttrKey):
            out += f"{'.' if out else ''}{k.name}"
        else:
            out += str(k)
    return out or "(root)"


@dataclasses.dataclass(frozen=True)
class Layout:
    """Where each leaf of a tree sits in the flat vector: its structure, names and shapes (hashable: a
    static argument of the checks' compiled functions)."""

    treedef: Any
    paths: tuple[tuple, ...]
    shapes: tuple[tuple[int, ...], ...]

    @classmethod
    def of(cls, tree: Any) -> Layout:
        flat, treedef = jax.tree_util.tree_flatten_with_path(tree)
        return cls(treedef, tuple(tuple(p) for p, _ in flat), tuple(tuple(int(n) for n in a.shape) for _, a in flat))

    @property
    def sizes(self) -> list[int]:
        return [math.prod(s) for s in self.shapes]

    @property
    def names(self) -> list[str]:
        return [leaf_name(p) for p in self.paths]

    def ravel(self, tree: Any, dtype: Any) -> Array:
        """Every leaf, flattened and concatenated in ``dtype`` (exactly, for a dtype at least as wide)."""
        leaves = jax.tree_util.tree_leaves(tree)
        if not leaves:
            return jnp.zeros((0,), dtype)
        return jnp.concatenate([jnp.ravel(jnp.asarray(a)).astype(dtype) for a in leaves])

    def ravel_np(self, tree: Any) -> np.ndarray:
        """:meth:`ravel` of concrete arrays, in NumPy (nothing to compile), in their common dtype."""
        leaves = [np.ravel(np.asarray(a)) for a in jax.tree_util.tree_leaves(tree)]
        return np.concatenate(leaves) if leaves else np.zeros(0)

    def unravel(self, theta: Array) -> Any:
        """The tree back from its flat vector (in ``theta``'s dtype)."""
        leaves, offset = [], 0
        for shape, n in zip(self.shapes, self.sizes):
            leaves.append(theta[offset : offset + n].reshape(shape))
            offset += n
        return jax.tree_util.tree_unflatten(self.treedef, leaves)

    def split(self, flat: np.ndarray) -> list[np.ndarray]:
        """A flat NumPy vector in this layout, cut into the leaves' flat parts."""
        return np.split(np.asarray(flat), np.cumsum(self.sizes)[:-1]) if self.shapes else []


def coordinate(shape: tuple[int, ...], k: int) -> str:
    """The index of the ``k``-th entry of an array of ``shape`` (row-major), as it is written: ``[2, 1]``."""
    return "[" + ", ".join(str(int(i)) for i in np.unravel_index(k, shape)) + "]" if shape else ""
