"""Data parallelism over a ``jax.sharding.Mesh``: batch split over a ``data`` axis, params replicated.

There is no hand-written communication: arrays carry a ``NamedSharding`` and XLA's SPMD
partitioner inserts the all-reduce of the gradient sums. On one device everything is the same
computation as plain training; on several, each device holds ``batch_size / n_devices`` rows of
every minibatch.

Multi-host (several machines, each with its own devices): call
``jax.distributed.initialize(coordinator_address, num_processes, process_id)`` in every process
before anything else, then ``data_mesh()`` spans ``jax.devices()`` — all devices of all hosts —
and ``fnn.fit(..., mesh=mesh)`` runs unchanged; every process must pass the same full dataset.

How the data is placed: ``fit`` replicates the whole dataset on every device of the mesh
(:func:`replicate`, as the parameters), because each epoch draws its minibatches by a shuffled
gather from all rows; inside the compiled step each minibatch is then constrained to be split
over ``"data"`` (:func:`constrain_batch`), so each device computes on its share of the rows. The
dataset's memory is therefore per device, not divided among them. :func:`shard`, which splits an
array's rows over the devices, is for your own loops over pre-split batches.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

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
    devices = list(jax.devices() if devices is None else devices)
    if not devices:
        raise ValueError("`devices` is empty; pass at least one jax.Device")
    for d in devices:
        if not isinstance(d, jax.Device):
            raise TypeError(f"`devices` must hold jax.Device objects (see jax.devices()), got {type(d).__name__}: {d!r}")
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
