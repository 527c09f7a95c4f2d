"""Where the `jax` engine puts an epoch's arrays: one device, or a `keras.distribution` mesh.

Without a distribution, the arrays go to the default device. Under
`keras.distribution` (`DataParallel`, or `ModelParallel` with a `LayoutMap`)
the full batches are one `(steps, batch, ...)` array laid out with a
`NamedSharding` whose batch dimension is split over the mesh's batch axis,
so each device holds (and trains on) its slice of every batch. The last,
smaller batch is a separate `(rest, ...)` array: split the same way when
`rest` divides over the batch axis, otherwise replicated, so every device
still runs the same number of steps and each step sees exactly the rows it
would see on one device (nothing is padded or dropped).

In a multi-process run (`keras.distribution.initialize`) each process passes
its own rows; they become one global array with
`jax.make_array_from_process_local_data`, each process's rows filling its
devices' slice of every batch.
"""

import dataclasses

import numpy as np

from kerakit.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class Layout:
    """The active `keras.distribution.Distribution` (or None), seen from the engine."""

    distribution: object = None

    @classmethod
    def current(cls):
        """The layout of the distribution Keras is running under (`keras.distribution.distribution()`)."""
        import keras

        return cls(keras.distribution.distribution())

    @property
    def mesh(self):
        return self.distribution.device_mesh.backend_mesh

    @property
    def batch_axis(self):
        return self.distribution.batch_dim_name

    @property
    def shards(self):
        """How many slices each batch is split into (1 on one device)."""
        if self.distribution is None:
            return 1
        return self.mesh.shape[self.batch_axis]

    def local_shards(self):
        """How many of the batch's slices live on this process's devices."""
        import jax

        if self.distribution is None:
            return 1
        mesh = self.mesh
        devices = np.moveaxis(mesh.devices, mesh.axis_names.index(self.batch_axis), 0)
        devices = devices.reshape(devices.shape[0], -1)
        me = jax.process_index()
        return sum(any(d.process_index == me for d in row) for row in devices)

    def batch_sharding(self, shape):
        """The `NamedSharding` of a `(batch, ...)` array (the distribution's data layout)."""
        return self.distribution.get_data_layout(shape).backend_layout

    def steps_sharding(self, shape):
        """The `NamedSharding` of a `(steps, batch, ...)` array: the data layout, one axis down."""
        import jax

        axes = self.distribution.get_data_layout(shape[1:]).axes
        return jax.sharding.NamedSharding(self.mesh, jax.sharding.PartitionSpec(None, *axes))

    def replicated(self):
        import jax

        return jax.sharding.NamedSharding(self.mesh, jax.sharding.PartitionSpec())

    def check_batch_size(self, batch_size):
        shards = self.shards
        if batch_size % shards:
            lower = max(shards, batch_size - batch_size % shards)
            raise ConfigError(
                f"Under keras.distribution `batch_size` is the global batch, split evenly over "
                f"the {shards} devices of the mesh's {self.batch_axis!r} axis; {batch_size} does "
                f"not split. Use a multiple of {shards}, e.g. batch_size={lower} or "
                f"{lower + shards}. Received: batch_size={batch_size}"
            )


@dataclasses.dataclass
class Placed:
    """An epoch's arrays on the devices: `full` is `(steps, batch, ...)`, `rest` the last batch."""

    full: object  # tree of (steps, batch, ...) arrays, or None when there is no full batch
    rest: object  # tree of (rest, ...) arrays, or None when the batches come out even
    steps: int  # number of full batches
    batch_size: int  # global rows per full batch
    rest_rows: int  # global rows of the last batch
    rest_split: bool = True  # False: the last batch is replicated (it does not split evenly)

    @property
    def rows(self):
        return self.steps * self.batch_size + self.rest_rows


def _equal_rows_on_every_process(rows):
    from jax.experimental import multihost_utils

    counts = np.asarray(multihost_utils.process_allgather(np.asarray(rows, dtype=np.int64))).ravel()
    if len(set(counts.tolist())) > 1:
        raise ConfigError(
            f"In a multi-process run every process must pass kerakit.fit the same number of "
            f"rows, so that all of them run the same steps; they passed {counts.tolist()}. Give "
            f"each process an equal share (e.g. drop the remainder rows). Received: rows={rows}"
        )


def place(layout, tree, batch_size):
    """Puts a tree of NumPy arrays (this process's rows) on the devices as full batches and a rest.

    Args:
        layout: a `Layout`.
        tree: arrays with the same number of rows, e.g. `(x, y, sample_weight)`,
            `x` maybe a dict or list of arrays.
        batch_size: the global batch size (rows per step over all devices).

    Returns:
        A `Placed` whose `full` and `rest` have the structure of `tree`.
    """
    import jax

    leaves, structure = jax.tree_util.tree_flatten(tree)
    leaves = [np.asarray(a) for a in leaves]
    placed = _place_leaves(layout, leaves, batch_size)
    for name in ("full", "rest"):
        value = getattr(placed, name)
        if value is not None:
            setattr(placed, name, structure.unflatten(value))
    return placed


def _place_leaves(layout, arrays, batch_size):
    import jax

    rows = len(arrays[0])
    if layout.distribution is None:
        steps, rest = divmod(rows, batch_size)
        full = jax.device_put([a[: steps * batch_size].reshape(steps, batch_size, *a.shape[1:])
                               for a in arrays]) if steps else None
        last = jax.device_put([a[steps * batch_size:] for a in arrays]) if rest else None
        return Placed(full, last, steps, batch_size, rest)

    layout.check_batch_size(batch_size)
    processes = jax.process_count()
    if processes > 1:
        _equal_rows_on_every_process(rows)
    local_shards = layout.local_shards()
    local_batch = batch_size * local_shards // layout.shards
    steps, local_rest = divmod(rows, local_batch)
    full = None
    if steps:
        full = [
            jax.make_array_from_process_local_data(
                layout.steps_sharding((steps, batch_size, *a.shape[1:])),
                a[: steps * local_batch].reshape(steps, local_batch, *a.shape[1:]),
            )
            for a in arrays
        ]
    last, rest_rows, rest_split = None, 0, True
    if local_rest:
        parts = [a[steps * local_batch:] for a in arrays]
        rest_rows = local_rest * processes
        if local_rest % local_shards == 0 and rest_rows % layout.shards == 0:
            last = [jax.make_array_from_process_local_data(layout.batch_sharding((rest_rows, *p.shape[1:])), p)
                    for p in parts]
        else:  # the last batch does not split over the devices: every device runs all of it
            rest_split = False
            if processes > 1:
                from jax.experimental import multihost_utils

                parts = [np.asarray(multihost_utils.process_allgather(p, tiled=True)) for p in parts]
            replicated = layout.replicated()
            last = [jax.make_array_from_callback(p.shape, replicated, lambda index, p=p: p[index])
                    for p in parts]
    return Placed(full, last, steps, batch_size, rest_rows, rest_split)


def constrain(layout, batch, replicated=False):
    """Inside a jitted function: lays a gathered `(batch, ...)` tree out as `place` would."""
    import jax

    if layout.distribution is None:
        return batch

    def one(a):
        sharding = layout.replicated() if replicated else layout.batch_sharding(a.shape)
        return jax.lax.with_sharding_constraint(a, sharding)

    return jax.tree_util.tree_map(one, batch)


def pad_to_devices(x, batch_size):
    """Pads `x` for Keras's `predict` under a distribution; returns `(x, batch_size, rows)`.

    Keras splits every batch over the mesh's batch axis and cannot split a
    batch whose rows do not divide (a last batch of 30 rows on 4 devices), so
    the rows are padded with copies of the last one, the batch size rounded
    up to a multiple of the devices, and the caller keeps the first `rows`
    predictions. Without a distribution nothing changes (`rows` is None).
    """
    import jax

    if Layout.current().shards == 1:
        return x, batch_size, None
    shards = Layout.current().shards
    leaves = jax.tree_util.tree_leaves(x)
    rows = len(leaves[0]) if leaves else 0
    missing = -rows % shards

    def pad(a):
        a = np.asarray(a)
        return np.concatenate([a, np.repeat(a[-1:], missing, axis=0)]) if missing else a

    return jax.tree_util.tree_map(pad, x), -(-batch_size // shards) * shards, rows


def predict_on_this_process(model, x, batch_size):
    """Predicts this process's rows in a multi-process `keras.distribution` run; else None.

    Keras's `predict` cannot gather outputs sharded over several processes
    (it asks for a sharded `tf.data.Dataset`), and each process of a recipe
    run holds the same rows. So each process runs the model on its own rows
    alone, with a copy of the replicated variables on its first device.
    Returns None outside a multi-process run; refuses variables that are
    split over processes (`ModelParallel`), which no process holds whole.
    """
    import jax

    if jax.process_count() == 1 or Layout.current().distribution is None:
        return None
    device = jax.local_devices()[0]

    def local(variable):
        value = variable.value
        if not getattr(value, "is_fully_replicated", True):
            raise ConfigError(
                f"Variable {variable.path!r} is split over the processes of this run, so no "
                f"process can predict alone. Predict with keras.distribution.DataParallel "
                f"(every variable replicated), or in one process."
            )
        return jax.device_put(value.addressable_data(0), device)

    trainable = [local(v) for v in model.trainable_variables]
    non_trainable = [local(v) for v in model.non_trainable_variables]
    call = jax.jit(lambda t, n, batch: model.stateless_call(t, n, batch, training=False)[0])
    leaves = jax.tree_util.tree_leaves(x)
    rows = len(leaves[0]) if leaves else 0
    outputs = [
        np.asarray(call(trainable, non_trainable,
                        jax.tree_util.tree_map(lambda a, s=start: jax.device_put(a[s:s + batch_size], device), x)))
        for start in range(0, rows, batch_size)
    ]
    return np.concatenate(outputs)
