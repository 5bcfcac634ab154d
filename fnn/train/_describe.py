"""What a training call is, written down: the facts a resumed run must share with the run it continues.

:func:`facts` describes a call's plan — network, dtype, loss, optimizer, gradient, data shape, batch
size, order, stop rules, history columns — as plain JSON values, so that a checkpoint can carry them
to another process; :func:`mismatches` names every fact that differs.

The optimizer is described by the walk over its closures that
:func:`fnn.train._fingerprint.fingerprint` (which keys the compilation cache within a process) reads too, but in
terms that mean the same in another process: a function by its module, qualified name and a digest
of its code, every captured number by its value, arrays by dtype, shape and a digest of their bytes.
A value it cannot read (an object of an unknown class) is written as opaque: two such optimizers
cannot be told apart and the comparison says so.
"""

from __future__ import annotations

import hashlib
import json
import types
from typing import Any

import numpy as np

from fnn.train._fingerprint import Policy, walk
from fnn.train._plan import Plan


class _Description(Policy):
    """JSON, the same in every process: a function by its module, qualified name and a digest of its
    code; a number by its repr; an array by dtype, shape and its values (a digest past 8 elements);
    an opaque part by what it is."""

    box = list

    def scalar(self, obj: Any) -> Any:
        if isinstance(obj, bytes):
            return self.opaque(obj)
        if isinstance(obj, (int, float, complex)) and not isinstance(obj, bool):
            return ["number", type(obj).__name__, repr(obj)]
        return obj  # None, a bool, a str

    def array(self, a: np.ndarray) -> Any:
        shown = repr(a.tolist()) if a.size <= 8 else hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()[:16]
        return ["array", a.dtype.str, list(a.shape), shown]

    def value(self, obj: Any) -> Any:
        return ["value", f"{getattr(obj, '__module__', '')}.{getattr(obj, '__qualname__', repr(obj))}"]

    def code(self, fn: types.FunctionType) -> tuple:
        return (f"{fn.__module__}.{fn.__qualname__}", _code_digest(fn.__code__))

    def kind(self, cls: type) -> Any:
        return cls.__qualname__

    def opaque(self, obj: Any, why: str | None = None) -> Any:
        return ["opaque", why or type(obj).__qualname__]


def describe(obj: Any) -> Any:
    """A JSON value that is equal for two objects computing the same, in any process (a part it cannot
    read is ``["opaque", what]``: :func:`opaque` tells).

    >>> import optax
    >>> describe(optax.sgd(0.5)) == describe(optax.sgd(0.5)), describe(optax.sgd(0.5)) == describe(optax.sgd(0.1))
    (True, False)
    """
    return walk(obj, _Description())


def _code_digest(code: types.CodeType) -> str:
    """A digest of a function's code that is the same in every process (nested code objects digested in turn)."""
    h = hashlib.sha256(code.co_code)
    h.update(repr(code.co_names).encode())
    for c in code.co_consts:
        h.update((_code_digest(c) if isinstance(c, types.CodeType) else repr(c)).encode())
    return h.hexdigest()[:16]


def difference(a: Any, b: Any, where: str = "", names: tuple[str, str] = ("one", "the other")) -> str | None:
    """The first place two :func:`describe` values differ, in words (``names`` say which is which); None when equal.

    >>> import optax
    >>> difference(describe(optax.sgd(0.5)), describe(optax.sgd(0.1)))
    'a captured value is -0.5 in one and -0.1 in the other (in optax._src.transform.scale)'
    """
    if a == b:
        return None
    tagged = bool(a) and isinstance(a, list) and isinstance(a[0], str)
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b) and (not tagged or a[0] == b[0] != "number"):
        here = where
        if a[:1] == ["function"] and a[1] == b[1]:
            here = a[1].split(".<locals>")[0]
        for x, y in zip(a, b):
            found = difference(x, y, here, names)
            if found is not None:
                return found
    if isinstance(a, list) and a[:1] == ["function"] and isinstance(b, list) and b[:1] == ["function"]:
        one, other = names
        what = f"the function {a[1]} has other code" if a[1] == b[1] else f"function {a[1]} in {one} and {b[1]} in {other}"
    else:
        what = f"a captured value is {_show(a)} in {names[0]} and {_show(b)} in {names[1]}"
    return what + (f" (in {where})" if where else "")


def _show(v: Any) -> str:
    if isinstance(v, list) and v[:1] == ["number"]:
        return v[2]
    if isinstance(v, list) and v[:1] == ["array"]:
        return f"array {v[1]}{v[2]} {v[3]}"
    text = json.dumps(v)
    return text if len(text) <= 60 else text[:57] + "..."


def opaque(value: Any) -> bool:
    """Whether a :func:`describe` value has a part it could not read."""
    if isinstance(value, list):
        return value[:1] == ["opaque"] or any(opaque(v) for v in value)
    return False


def facts(plan: Plan, dtype: Any, target: tuple, validation: tuple | None, n: int | None) -> dict[str, Any]:
    """The facts of a training call that a continued run must share (JSON values, by argument name):
    ``target`` is the shape of one target row, ``validation`` the validation set's x shape."""
    return {
        "network": json.loads(json.dumps(plan.net.to_json())),  # as a checkpoint's header holds it (tuples as lists)
        "dtype": np.dtype(dtype).name,
        "networks": n,
        "loss": plan.loss.name,
        "optimizer": describe(plan.optimizer.optimizer),
        "grad": plan.grad,
        "data": {"examples": plan.n, "target": list(target)},
        "batch_size": plan.batch_size,
        "shuffle": plan.shuffle,
        "drop_last": plan.drop_last,
        "validation": list(validation) if plan.has_val and validation is not None else None,
        "patience": plan.early_stopping,
        "health": plan.health,
        "grad_norms": plan.grad_norms,
        # what early stopping watches: its best value is in the run's state (absent for the validation loss,
        # as in the checkpoints of fnn 0.1 and 0.2.0, which watched nothing else)
        **({"monitor": plan.monitor} if plan.early_stopping and plan.monitor != "val_loss" else {}),
    }


def mismatches(saved: dict[str, Any], now: dict[str, Any], names: tuple[str, ...], origin: str) -> dict[str, str]:
    """``{name: what differs}`` for every fact of ``names`` on which ``saved`` (from ``origin``) and ``now`` disagree."""
    out = {}
    for name in names:
        a: Any = saved.get(name)
        b: Any = now.get(name)
        if a == b:
            continue
        if name == "optimizer":
            out[name] = difference(a, b, names=(origin, "this call")) or "it differs"
        elif name == "network" and isinstance(a, dict) and isinstance(b, dict) and "sizes" in a and "sizes" in b:
            out[name] = (
                f"{origin}: sizes {a.get('sizes')} ({_activations(a)}); this call: sizes {b.get('sizes')} ({_activations(b)})"
            )
        elif name == "network":  # a network of blocks or a model: its spec, shortened
            out[name] = f"{origin}: {_short(a)}; this call: {_short(b)}"
        else:
            out[name] = f"{origin}: {_short(a)}; this call: {_short(b)}"
    return out


def refuse(found: dict[str, str], override: frozenset, origin: str, overridable: tuple[str, ...]) -> None:
    """Raise a ValueError naming every difference ``found`` that ``override`` does not allow."""
    bad = {k: v for k, v in found.items() if k not in override}
    if not bad:
        return
    lines = "\n".join(f"  {k}: {v}" for k, v in bad.items())
    fixed = [k for k in bad if k not in overridable]
    if fixed:
        hint = f"{', '.join(fixed)} cannot change in a continued run: start a new run (or another checkpoint_dir)"
    else:
        hint = f"to continue with this call's {', '.join(bad)} on purpose, pass override={tuple(bad)!r}"
    raise ValueError(f"cannot continue {origin}: this call differs in {', '.join(bad)}:\n{lines}\n{hint}")


def _activations(spec: dict) -> str:
    try:
        return ", ".join(a["name"] for a in [*spec["hidden"], spec["output"]])
    except (KeyError, TypeError):
        return "?"


def _short(v: Any) -> str:
    if v is True or v is False or v is None:
        return {True: "on", False: "off", None: "none"}[v]
    if isinstance(v, dict):
        return ", ".join(f"{k} {_short(x)}" for k, x in v.items())
    return str(v)
