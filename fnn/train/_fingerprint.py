"""Structural equality of optimizers, so that an equal configuration compiles once.

optax builds a ``GradientTransformation`` from closures: two calls of ``optax.sgd(0.5)`` give two
objects that compute the same thing but compare unequal, so a compilation cache keyed on the
object recompiles for every fresh, equal optimizer. :class:`OptimizerKey` compares optimizers by
what their functions are made of instead: the code, the defining module, and every captured
value (numbers, strings, arrays, dtypes, and nested functions, partials and transformations,
recursively). Anything it cannot read as a value (an object of an unknown class, a tracer, a
large array, an empty cell) makes the key fall back to the object's identity: a program is then
recompiled, never reused for an optimizer that might differ.
"""

from __future__ import annotations

import enum
import functools
import types
from typing import Any

import jax
import numpy as np

MAX_ARRAY = 4096  # captured arrays up to this many elements are compared by value
MAX_DEPTH = 64


class _Opaque(Exception):
    """A value whose equality cannot be established."""


def fingerprint(obj: Any, depth: int = 0) -> Any:  # noqa: PLR0911  (one return per kind of value)
    """A hashable value equal for two objects that compute the same; raises _Opaque otherwise.

    >>> import optax
    >>> fingerprint(optax.sgd(0.5)) == fingerprint(optax.sgd(0.5)), fingerprint(optax.sgd(0.5)) == fingerprint(optax.sgd(0.1))
    (True, False)
    """
    if depth > MAX_DEPTH:
        raise _Opaque("too deep")
    fp = functools.partial(fingerprint, depth=depth + 1)
    if obj is None or isinstance(obj, (bool, int, float, complex, str, bytes)):
        return (type(obj).__name__, obj)
    if isinstance(obj, jax.core.Tracer):
        raise _Opaque("a tracer")
    if isinstance(obj, (np.ndarray, np.generic, jax.Array)):
        a = np.asarray(obj)
        if a.size > MAX_ARRAY:
            raise _Opaque("a large array")
        return ("array", a.dtype.str, a.shape, a.tobytes())
    if isinstance(obj, (np.dtype, type, enum.Enum, types.BuiltinFunctionType, types.ModuleType)):
        return ("value", obj)  # compared by equality / identity: the same class, dtype, builtin, module
    if isinstance(obj, functools.partial):
        return ("partial", fp(obj.func), fp(obj.args), fp(obj.keywords))
    if isinstance(obj, types.MethodType):
        return ("method", fp(obj.__func__), fp(obj.__self__))
    if isinstance(obj, types.FunctionType):
        try:
            cells = tuple(fp(c.cell_contents) for c in obj.__closure__ or ())
        except ValueError:  # an empty cell (a variable not yet assigned)
            raise _Opaque("an empty closure cell") from None
        # the code and the module it reads its globals from identify what the function does
        return ("function", obj.__code__, id(obj.__globals__), fp(obj.__defaults__), fp(obj.__kwdefaults__), cells)
    if isinstance(obj, tuple):  # named tuples too (GradientTransformation, optax states)
        return ("tuple", type(obj), tuple(fp(v) for v in obj))
    if isinstance(obj, list):
        return ("list", tuple(fp(v) for v in obj))
    if isinstance(obj, dict):
        return ("dict", tuple((fp(k), fp(v)) for k, v in obj.items()))
    raise _Opaque(f"a {type(obj).__name__}")


class OptimizerKey:
    """An optimizer in a compilation-cache key: equal when :func:`fingerprint` says the two compute
    the same, else (when either cannot be fingerprinted) only when they are the same object."""

    __slots__ = ("_key", "optimizer")

    def __init__(self, optimizer: Any) -> None:
        self.optimizer = optimizer
        try:
            self._key: tuple = ("structure", fingerprint(optimizer))
        except _Opaque:
            self._key = ("identity", id(optimizer))  # the cache holds the object: its id stays unique

    @property
    def by_structure(self) -> bool:
        return self._key[0] == "structure"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, OptimizerKey):
            return NotImplemented
        if self.by_structure and other.by_structure:
            return self._key == other._key
        return self.optimizer is other.optimizer

    def __hash__(self) -> int:
        return hash(self._key) if self.by_structure else id(self.optimizer)

    def __repr__(self) -> str:
        return f"OptimizerKey({'by structure' if self.by_structure else 'by identity'})"
