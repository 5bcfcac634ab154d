"""Data parallelism over a ``jax.sharding.Mesh``: batch split over a ``data`` axis, params replicated.

There is no hand-written communication: arrays carry a ``NamedSharding`` and XLA's SPMD
partitioner inserts the all-reduce of the gradient sums. On one device everything is the same
computation as plain training; on several, each device holds ``batch_size / n_devices`` rows of
every minibatch.

Multi-host (several machines, each with its own devices): call
``jax.distributed.initialize(coordinator_address, num_processes, process_id)`` in every process
before anything else, then ``data_mesh()`` spans ``jax.devices()`` — all devices of all hosts —
and ``fnn.fit(..., mesh=mesh)`` runs unchanged.

How the data is placed — two ways:

- **Replicated** (numpy or jax arrays each process holds in full): ``fit`` copies the whole dataset
  to every device of the mesh (:func:`replicate`, as the parameters), each epoch draws its
  minibatches by one shuffled gather from all rows, and inside the compiled step each minibatch is
  constrained to be split over ``"data"`` (:func:`constrain_batch`). The result equals training on
  one device (to float tolerance); the dataset's memory is per device.
- **Split** (a dataset too large for one device): each process passes only its own rows, made into
  one global array by :func:`from_local` (``jax.make_array_from_process_local_data``; in one
  process :func:`shard` does the same). Rows stay where they are: each device shuffles its own
  rows every epoch and minibatch k is the k-th local minibatch of every device, side by side
  (:func:`take_rows`, a ``shard_map`` gather with no communication). The dataset's memory is
  divided among the devices; the order of examples differs from the replicated mode's (and equals
  a loop over those local minibatches: tested against one).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from fnn.train import shuffle as _shuffle

#: The name of the mesh axis the batch is split over (:func:`fnn.data_mesh`).
AXIS = "data"


def data_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A 1-D mesh with axis ``"data"`` over ``devices`` (default: all of ``jax.devices()``).

    >>> data_mesh(jax.devices()[:1]).shape["data"]
    1
    """
    if isinstance(devices, (str, jax.Device)):
        raise TypeError(
            f"`devices` must be a list of jax.Device (e.g. jax.devices('cpu')), got {type(devices).__name__}: {devices!r}"
        )
    try:
        devices = list(jax.devices() if devices is None else devices)
    except TypeError:  # not iterable
        raise TypeError(
            f"`devices` must be a list of jax.Device (e.g. jax.devices('cpu')), got {type(devices).__name__}: {devices!r:.60}"
        ) from None
    if not devices:
        raise ValueError("`devices` is empty; pass at least one jax.Device")
    for d in devices:
        if not isinstance(d, jax.Device):
            raise TypeError(f"`devices` must hold jax.Device objects (see jax.devices()), got {type(d).__name__}: {d!r}")
    if len(set(devices)) != len(devices):
        raise ValueError(f"`devices` lists a device more than once: {devices}")
    return Mesh(np.asarray(devices), (AXIS,))


def check_mesh(mesh: Any) -> Mesh:
    """The mesh must be a ``jax.sharding.Mesh`` with a ``"data"`` axis.

    >>> check_mesh(data_mesh(jax.devices()[:1])).axis_names
    ('data',)
    """
    if not isinstance(mesh, Mesh):
        raise TypeError(f"`mesh` must be a jax.sharding.Mesh (see fnn.data_mesh()), got {type(mesh).__name__}")
    if AXIS not in mesh.axis_names:
        raise ValueError(f"`mesh` needs an axis named {AXIS!r} to split the batch over, got axes {mesh.axis_names}")
    return mesh


def num_shards(mesh: Mesh) -> int:
    """How many pieces the batch is split into.

    >>> num_shards(data_mesh(jax.devices()[:1]))
    1
    """
    return int(mesh.shape[AXIS])


def check_divisible(mesh: Mesh, n: int, what: str) -> None:
    """Every batch must split evenly over the data axis.

    Raises ValueError, naming ``what``, when ``n`` is not a multiple of the number of devices.

    >>> check_divisible(data_mesh(jax.devices()[:1]), 7, "batch_size") is None  # any size splits over one device
    True
    """
    k = num_shards(mesh)
    if n % k:
        raise ValueError(
            f"{what} is {n}, which does not split over the mesh's {k} devices; use a multiple of {k} (e.g. {max(k, n - n % k)})"
        )


def batch_sharding(mesh: Mesh, ndim: int = 2, axis: int = 0) -> NamedSharding:
    """Split dimension ``axis`` over ``"data"``, replicate the others.

    >>> mesh = data_mesh(jax.devices()[:1])
    >>> tuple(batch_sharding(mesh).spec), tuple(batch_sharding(mesh, ndim=3, axis=1).spec)
    (('data', None), (None, 'data', None))
    """
    spec: list[str | None] = [None] * ndim
    spec[axis] = AXIS
    return NamedSharding(mesh, PartitionSpec(*spec))


def replicated(mesh: Mesh) -> NamedSharding:
    """Every device holds a full copy.

    >>> replicated(data_mesh(jax.devices()[:1])).is_fully_replicated
    True
    """
    return NamedSharding(mesh, PartitionSpec())


def shard(mesh: Mesh, x: Any) -> jax.Array:
    """Place an array with its leading (batch) axis split over ``"data"``.

    >>> x = shard(data_mesh(jax.devices()[:1]), np.ones((4, 2), np.float32))
    >>> x.shape, tuple(x.sharding.spec)
    ((4, 2), ('data', None))
    """
    return jax.device_put(x, batch_sharding(mesh, np.ndim(x)))


def replicate(mesh: Mesh, tree: Any) -> Any:
    """Place every leaf of ``tree`` on all devices of the mesh.

    >>> params = replicate(data_mesh(jax.devices()[:1]), [{"W": np.ones((3, 2), np.float32), "b": np.zeros(3, np.float32)}])
    >>> params[0]["W"].shape, params[0]["W"].sharding.is_fully_replicated
    ((3, 2), True)
    """
    return jax.device_put(tree, replicated(mesh))


def constrain_batch(mesh: Mesh | None, x: jax.Array, axis: int = 0) -> jax.Array:
    """Inside ``jit``: ask XLA to keep ``x`` split over ``"data"`` along ``axis`` (no-op without a mesh).

    >>> mesh, x = data_mesh(jax.devices()[:1]), np.ones((4, 2), np.float32)
    >>> jax.jit(lambda a: constrain_batch(mesh, a) * 2)(x).tolist()[0], constrain_batch(None, x) is x
    ([2.0, 2.0], True)
    """
    if mesh is None:
        return x
    return jax.lax.with_sharding_constraint(x, batch_sharding(mesh, x.ndim, axis))


def to_host(a: Any) -> np.ndarray:
    """A numpy copy of ``a`` on every process: ``np.asarray`` when this process holds all of it, else
    gathered from the processes that hold its shards (``fit_many`` over a mesh that spans hosts).

    >>> to_host(np.arange(3)).tolist()
    [0, 1, 2]
    """
    if isinstance(a, jax.Array) and not a.is_fully_addressable and not a.is_fully_replicated:
        from jax.experimental import multihost_utils

        return np.asarray(multihost_utils.process_allgather(a, tiled=True))
    return np.asarray(a)


def split_leading(mesh: Mesh, tree: Any) -> Any:
    """Place every leaf of ``tree`` (each process holding all of it) with its leading axis split over
    ``"data"``; each process keeps only the shards of its own devices, so this also works when the
    mesh spans several processes (where ``jax.device_put`` refuses devices it cannot address)."""

    def place(a: Any) -> jax.Array:
        if jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key):  # typed keys: place their data, wrap it again
            return jax.random.wrap_key_data(place(jax.random.key_data(a)), impl=jax.random.key_impl(a))
        host = np.asarray(a)
        return jax.make_array_from_callback(host.shape, batch_sharding(mesh, host.ndim), lambda idx: host[idx])

    return jax.tree_util.tree_map(place, tree)


def from_local(mesh: Mesh, local: Any) -> jax.Array:
    """One global array from each process's own rows (``jax.make_array_from_process_local_data``):
    the rows of all processes, in process order, split over ``"data"``. Pass the result (x and y
    alike) to ``fit(..., mesh=mesh)`` to train on data no single device holds.

    >>> x = from_local(data_mesh(jax.devices()[:1]), np.ones((4, 2), np.float32))
    >>> x.shape, tuple(x.sharding.spec)
    ((4, 2), ('data', None))
    """
    local = np.asarray(local) if not isinstance(local, jax.Array) else local
    return jax.make_array_from_process_local_data(batch_sharding(mesh, local.ndim), local)


def is_split(mesh: Mesh, a: Any) -> bool:
    """Whether ``a`` is a jax array whose rows are split over ``mesh``'s ``"data"`` axis, as
    :func:`shard` and :func:`from_local` place them.

    >>> mesh = data_mesh(jax.devices()[:1])
    >>> is_split(mesh, np.ones((4, 2))), is_split(mesh, shard(mesh, np.ones((4, 2))))
    (False, True)
    """
    sharding = getattr(a, "sharding", None)
    if not isinstance(sharding, NamedSharding):
        return False
    spec = tuple(sharding.spec)
    same_mesh = sharding.mesh.shape == mesh.shape and set(sharding.mesh.devices.flat) == set(mesh.devices.flat)
    return bool(spec) and spec[0] == AXIS and same_mesh


def local_order(perms: jax.Array, batch_size: int) -> jax.Array:
    """The epoch's order for split data: ``perms`` (D, n/D) holds each device's own row order (local
    indices); the result (n,) lists, batch after batch, each device's ``batch_size/D`` rows side by
    side, so that a batch's slice, split over ``"data"``, gives every device its own rows.

    >>> local_order(jnp.array([[0, 1, 2, 3], [3, 2, 1, 0]]), 4).tolist()  # 2 devices, batches of 4
    [0, 1, 3, 2, 2, 3, 1, 0]
    """
    d, n_local = perms.shape
    per = batch_size // d
    full = n_local // per
    head = perms[:, : full * per].reshape(d, full, per).transpose(1, 0, 2).reshape(-1)
    return jnp.concatenate([head, perms[:, full * per :].reshape(-1)])


def local_perms(mesh: Mesh, key: jax.Array, n: int, shuffle: bool) -> jax.Array:
    """Each device's own order of its ``n/D`` rows, (D, n/D): a permutation from ``split(key, D)[d]``,
    or ``0 … n/D − 1`` without shuffling."""
    d = num_shards(mesh)
    if not shuffle:
        return jnp.broadcast_to(jnp.arange(n // d, dtype=jnp.int32), (d, n // d))
    return jax.vmap(lambda k: _shuffle.permutation(k, n // d))(jax.random.split(key, d))


def take_rows(mesh: Mesh, a: jax.Array, local_idx: jax.Array) -> jax.Array:
    """Inside ``jit``: rows of split data, each device taking from its own rows only (no communication).

    ``local_idx`` (B,) is split over ``"data"`` like ``a``; device d's part indexes d's rows.
    """
    spec = PartitionSpec(AXIS)
    return jax.shard_map(lambda rows, i: rows[i], mesh=mesh, in_specs=(spec, spec), out_specs=spec)(a, local_idx)
