"""What an optimizer is made of: one walk over its closures, read for two uses.

optax builds a ``GradientTransformation`` from closures: two calls of ``optax.sgd(0.5)`` give two
objects that compute the same thing but compare unequal. :func:`walk` reads such an object by what
its functions are made of — the code, and every captured value (numbers, strings, arrays, dtypes,
and nested functions, methods, partials, named tuples, lists and dicts, recursively) — and hands
each part to a :class:`Policy` that says how that part is written down:

- here, :func:`fingerprint` and :class:`OptimizerKey`: a hashable value that keys the compilation
  cache within this process (a function by its code object and the module it reads its globals
  from, an array by its bytes). Anything it cannot read as a value (an object of an unknown class,
  a tracer, a large array, an empty cell) makes the key fall back to the object's identity: a
  program is then recompiled, never reused for an optimizer that might differ;
- :func:`fnn.train._describe.describe`: a JSON value that means the same in another process, which
  a checkpoint carries so that a resumed run can compare its optimizer with the saved one.
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
_SCALARS = (bool, int, float, complex, str, bytes)  # (numpy's float64 and Python int subclasses among them)
_VALUES = (np.dtype, type, enum.Enum, types.BuiltinFunctionType, types.ModuleType)  # equal by equality / identity


class Policy:
    """How :func:`walk` writes each part down. ``box`` makes a node from its parts (a tagged tuple or
    list: ``box(["partial", func, args, keywords])``); the other methods write the leaves."""

    box: Any = tuple

    def scalar(self, obj: Any) -> Any:
        """None, a bool, a number (Python's, or a numpy scalar that subclasses one), a str or bytes."""
        raise NotImplementedError

    def array(self, a: np.ndarray) -> Any:
        """A numpy or jax array, or a numpy scalar, as a numpy array."""
        raise NotImplementedError

    def value(self, obj: Any) -> Any:
        """A dtype, a class, an enum member, a builtin function or a module."""
        raise NotImplementedError

    def code(self, fn: types.FunctionType) -> tuple:
        """The parts that say what a Python function's code is (its captured values come apart)."""
        raise NotImplementedError

    def kind(self, cls: type) -> Any:
        """What names a tuple's class (a named tuple: ``GradientTransformation``, an optax state)."""
        raise NotImplementedError

    def opaque(self, obj: Any, why: str | None = None) -> Any:
        """A part that cannot be read as a value (``why``: a reason, else the object's class tells)."""
        raise NotImplementedError


def walk(obj: Any, policy: Policy, depth: int = 0) -> Any:  # noqa: PLR0911  (one return per kind of value)
    """``obj`` written down part by part by ``policy``: the one reading of an optimizer's closures."""
    if depth > MAX_DEPTH:
        return policy.opaque(obj, "nested too deeply")
    box, w = policy.box, functools.partial(walk, policy=policy, depth=depth + 1)
    if obj is None or isinstance(obj, _SCALARS):
        return policy.scalar(obj)
    if isinstance(obj, jax.core.Tracer):
        return policy.opaque(obj)
    if isinstance(obj, (np.ndarray, np.generic, jax.Array)):
        try:
            a = np.asarray(obj)
        except Exception:  # a deleted buffer, an array on other processes
            return policy.opaque(obj)
        return policy.array(a)
    if isinstance(obj, _VALUES):
        return policy.value(obj)
    if isinstance(obj, functools.partial):
        return box(["partial", w(obj.func), w(list(obj.args)), w(obj.keywords)])
    if isinstance(obj, types.MethodType):
        return box(["method", w(obj.__func__), w(obj.__self__)])
    if isinstance(obj, types.FunctionType):
        try:
            cells = [w(c.cell_contents) for c in obj.__closure__ or ()]
        except ValueError:  # an empty cell (a variable not yet assigned)
            cells = [policy.opaque(None, "an empty closure cell")]
        return box(["function", *policy.code(obj), box(cells), w(obj.__defaults__), w(obj.__kwdefaults__)])
    if isinstance(obj, tuple):  # named tuples too (GradientTransformation, optax states)
        return box(["tuple", policy.kind(type(obj)), box([w(v) for v in obj])])
    if isinstance(obj, list):
        return box(["list", box([w(v) for v in obj])])
    if isinstance(obj, dict):
        return box(["dict", box([box([w(k), w(v)]) for k, v in obj.items()])])
    return policy.opaque(obj)


class _Opaque(Exception):
    """A value whose equality cannot be established."""


class _Fingerprint(Policy):
    """Hashable, for this process only: leaves compared by value or identity; an opaque part raises."""

    def scalar(self, obj: Any) -> Any:
        return (type(obj).__name__, obj)

    def array(self, a: np.ndarray) -> Any:
        if a.size > MAX_ARRAY:
            raise _Opaque("a large array")
        return ("array", a.dtype.str, a.shape, a.tobytes())

    def value(self, obj: Any) -> Any:
        return ("value", obj)

    def code(self, fn: types.FunctionType) -> tuple:
        # the code and the module it reads its globals from identify what the function does
        return (fn.__code__, id(fn.__globals__))

    def kind(self, cls: type) -> Any:
        return cls

    def opaque(self, obj: Any, why: str | None = None) -> Any:
        raise _Opaque(why or f"a {type(obj).__name__}")


def fingerprint(obj: Any) -> Any:
    """A hashable value equal for two objects that compute the same; raises _Opaque otherwise.

    >>> import optax
    >>> fingerprint(optax.sgd(0.5)) == fingerprint(optax.sgd(0.5)), fingerprint(optax.sgd(0.5)) == fingerprint(optax.sgd(0.1))
    (True, False)
    """
    return walk(obj, _Fingerprint())


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
