"""The `jax` engine: device-resident data, one jitted call per epoch.

Textbook `model.fit` feeds the device from the host one batch (or one
`steps_per_execution` chunk) at a time; on a GPU that leaves most of it idle.
Here the arrays are put on the device once, and an epoch is one compiled
call: the rows are shuffled on the device, `lax.scan` runs Keras's own
stateless `train_step` over the full batches (the last, smaller batch runs
after the scan with its own shape, exactly as Keras would see it), and the
validation set is evaluated on the device with `test_step`. Everything Keras
keeps in state travels through the scan: weights, optimizer slots, metric
accumulators, batch-norm statistics and the dropout seed.

Between epochs the state is written back into the model's variables, so
callbacks see what they see under `model.fit` (EarlyStopping with
`restore_best_weights`, ReduceLROnPlateau, ModelCheckpoint, CSVLogger,
TerminateOnNaN); a callback's change to the weights or the learning rate is
read back before the next epoch.

Under `keras.distribution` (see `kerakit.engines.placement`) the full
batches are one `(steps, batch, ...)` array sharded over the mesh's batch
axis, the epoch's `out_shardings` keep every variable, optimizer slot and
metric where its layout put it (replicated under DataParallel, split under a
ModelParallel `LayoutMap`), and XLA inserts the gradient all-reduce. The last,
smaller batch runs as its own step, split over the devices when it divides
and replicated when it does not: nothing is padded or dropped, so every
device and process runs the same steps and, without shuffling, N devices
train to one device's weights. `batch_size` is the global batch and must
divide over the batch axis. With several processes each passes its own
rows (the same number on each); the seed is taken from process 0.

Falls back to Keras's `fit` (and says so once) when the data would take
more than half of the device's memory, or when `steps_per_execution` asks
for callbacks more often than once per epoch.
"""

import dataclasses
import math
import weakref

import numpy as np

from kerakit.backend import is_dataset
from kerakit.engines import keras_fit, say_once
from kerakit.engines.loop import build_for_training, run_epochs
from kerakit.engines.placement import Layout, constrain, place
from kerakit.errors import ConfigError

VALIDATION_BATCH_SIZE = 1024
# Share of the device's memory the data may take before falling back.
DEVICE_MEMORY_SHARE = 0.5

# model → {signature: (train_epoch, validate)}: folds and trials that train
# the same model on data of the same shape reuse the compiled epoch.
_COMPILED = weakref.WeakKeyDictionary()


def _nbytes(tree):
    import jax

    return sum(np.asarray(a).nbytes for a in jax.tree_util.tree_leaves(tree))


def fits_on_device(data):
    """True when the arrays take at most `DEVICE_MEMORY_SHARE` of the device's memory."""
    import jax

    stats = jax.local_devices()[0].memory_stats() or {}
    limit = stats.get("bytes_limit")
    if not limit:  # CPU: the arrays already live in this memory
        return True
    return _nbytes((data.x, data.y, data.sample_weight, data.validation)) <= DEVICE_MEMORY_SHARE * limit


def _signature(tree):
    import jax

    leaves, structure = jax.tree_util.tree_flatten(tree)
    return structure, tuple((a.shape, str(a.dtype)) for a in leaves)


def _model_state(model):
    return (
        [v.value for v in model.trainable_variables],
        [v.value for v in model.non_trainable_variables],
        [v.value for v in model.optimizer.variables],
        [v.value for v in model.metrics_variables],
    )


def _assign(variables, values):
    for variable, value in zip(variables, values, strict=True):
        variable.assign(value)


def _shardings(layout, state):
    """The epoch's `out_shardings`: every state array keeps the sharding it came in with."""
    import jax

    if layout.distribution is None:
        return None
    return jax.tree_util.tree_map(lambda a: a.sharding, state)


def _take(layout, placed, rows, replicated=False):
    """Gathers `rows` (indices into the epoch's rows, full batches first) from the placed arrays."""
    import jax
    import jax.numpy as jnp

    in_full = placed.steps * placed.batch_size

    def pick(full, rest):
        if rest is None:
            return full[rows // placed.batch_size, rows % placed.batch_size]
        from_rest = rest[jnp.clip(rows - in_full, 0, placed.rest_rows - 1)]
        if full is None:
            return from_rest
        safe = jnp.minimum(rows, in_full - 1)
        from_full = full[safe // placed.batch_size, safe % placed.batch_size]
        mask = (rows < in_full).reshape((-1,) + (1,) * (from_full.ndim - 1))
        return jnp.where(mask, from_full, from_rest)

    if placed.full is None:
        batch = jax.tree_util.tree_map(lambda r: pick(None, r), placed.rest)
    elif placed.rest is None:
        batch = jax.tree_util.tree_map(lambda f: pick(f, None), placed.full)
    else:
        batch = jax.tree_util.tree_map(pick, placed.full, placed.rest)
    return constrain(layout, batch, replicated=replicated)


def _make_train_epoch(model, n, batch_size, shuffle):
    """One device: the rows stay in one array, and each step gathers its batch from it."""
    import jax
    import jax.numpy as jnp

    full, rest = divmod(n, batch_size)

    def epoch(state, data, seed, epoch_index):
        key = jax.random.fold_in(jax.random.key(seed), epoch_index)
        order = jax.random.permutation(key, n) if shuffle else jnp.arange(n)

        def take(rows):
            return jax.tree_util.tree_map(lambda a: a[rows], data)

        def step(state, rows):
            _, state = model.train_step(state, take(rows))
            return state, None

        if full:
            state, _ = jax.lax.scan(step, state, order[: full * batch_size].reshape(full, batch_size))
        if rest:
            state, _ = step(state, order[full * batch_size:])
        return state

    return jax.jit(epoch, donate_argnums=_donate())


def _donate():
    import jax

    # The old state is dead once the epoch returns: let the device reuse its
    # memory (CPUs cannot, and would warn).
    return () if jax.local_devices()[0].platform == "cpu" else (0,)


def _make_sharded_train_epoch(model, placed, shuffle, layout, out_shardings):
    """A mesh: full batches and the last one as placed by `placement.place`."""
    import jax

    steps, batch_size, rest_rows = placed.steps, placed.batch_size, placed.rest_rows

    def epoch(state, arrays, seed, epoch_index):
        full, rest = arrays
        data = dataclasses.replace(placed, full=full, rest=rest)

        def step(state, batch):
            _, state = model.train_step(state, batch)
            return state, None

        if shuffle:
            key = jax.random.fold_in(jax.random.key(seed), epoch_index)
            order = jax.random.permutation(key, data.rows)
            if steps:
                state, _ = jax.lax.scan(lambda s, rows: step(s, _take(layout, data, rows)), state,
                                        order[: steps * batch_size].reshape(steps, batch_size))
            if rest_rows:
                last = _take(layout, data, order[steps * batch_size:], replicated=not data.rest_split)
                state, _ = step(state, last)
            return state
        if steps:
            state, _ = jax.lax.scan(step, state, full)
        if rest_rows:
            state, _ = step(state, rest)
        return state

    return jax.jit(epoch, donate_argnums=_donate(), out_shardings=out_shardings)


def _make_validate(model, placed, out_shardings):
    import jax

    def validate(state, full, rest):
        def step(state, batch):
            _, state = model.test_step(state, batch)
            return state, None

        if placed.steps:
            state, _ = jax.lax.scan(step, state, full)
        if placed.rest_rows:
            state, _ = step(state, rest)
        return state[2]

    return jax.jit(validate, out_shardings=out_shardings)


def _compiled(model, key, make):
    cache = _COMPILED.setdefault(model, {})
    # A recompiled model has a new optimizer and new metrics: start afresh.
    owner = (id(model.optimizer), len(model.metrics_variables))
    if cache.get("owner") != owner:
        cache.clear()
        cache["owner"] = owner
    if key not in cache:
        cache[key] = make()
    return cache[key]


def fit(model, data, options):
    import jax

    if options.steps_per_execution not in ("auto", None) and \
            int(options.steps_per_execution) < math.ceil(data.rows / options.batch_size):
        say_once("kerakit's jax engine runs whole epochs on the device; steps_per_execution="
                 f"{options.steps_per_execution} asks for smaller steps, so Keras's fit trains instead.")
        return keras_fit.fit(model, data, options)
    if is_dataset(data.validation):
        say_once("Validation data given as a tf.data.Dataset is read by Keras's fit; kerakit's jax "
                 "engine needs arrays to keep it on the device.")
        return keras_fit.fit(model, data, options)
    if not fits_on_device(data):
        say_once("The training data takes more than half of the device's memory, so kerakit "
                 "trains with Keras's fit (batches fed from the host) instead of on-device epochs.")
        return keras_fit.fit(model, data, options)

    def parts(x, y, w):
        return (x, y) if w is None else (x, y, w)

    layout = Layout.current()
    train = parts(data.x, data.y, data.sample_weight)
    batch_size = options.batch_size if layout.distribution is not None else min(options.batch_size, data.rows)
    layout.check_batch_size(batch_size)
    build_for_training(model, jax.tree_util.tree_map(lambda a: a[:batch_size], train))
    if layout.distribution is not None:
        on_mesh(model, layout)
    if layout.distribution is None:
        device_train, n = jax.device_put(train), data.rows
        steps = math.ceil(n / batch_size)
        train_epoch = _compiled(model, ("train", n, batch_size, options.shuffle, _signature(train)),
                                lambda: _make_train_epoch(model, n, batch_size, options.shuffle))
    else:
        placed = place(layout, train, batch_size)
        device_train = (placed.full, placed.rest)
        steps = placed.steps + (1 if placed.rest_rows else 0)
        state = _model_state(model)
        train_epoch = _compiled(model, ("train", options.shuffle, layout.distribution,
                                        _signature(device_train)),
                                lambda: _make_sharded_train_epoch(model, placed, options.shuffle, layout,
                                                                  _shardings(layout, state)))

    validate = None
    if data.validation is not None:
        validation = parts(*data.validation) if len(data.validation) == 3 else tuple(data.validation)
        rows = len(validation[1])
        val_batch = min(max(options.batch_size, VALIDATION_BATCH_SIZE), rows)
        val_batch = max(layout.shards, val_batch - val_batch % layout.shards)
        placed_validation = place(layout, validation, val_batch)
        model.reset_metrics()
        reset = [v.value for v in model.metrics_variables]
        validate_fn = _compiled(model, ("validate", layout.distribution, _signature(placed_validation.full),
                                        _signature(placed_validation.rest)),
                                lambda: _make_validate(model, placed_validation, _shardings(layout, reset)))

        def validate():
            state = ([v.value for v in model.trainable_variables],
                     [v.value for v in model.non_trainable_variables], reset)
            _assign(model.metrics_variables,
                    validate_fn(state, placed_validation.full, placed_validation.rest))
            return model.get_metrics_result()

    seed = options.seed if options.seed is not None else int(np.random.randint(2**31 - 1))
    if jax.process_count() > 1:  # every process must shuffle the same way
        from jax.experimental import multihost_utils

        seed = int(multihost_utils.broadcast_one_to_all(np.int32(seed)))
    seed = np.uint32(seed)

    def run_train_epoch(epoch):
        model.reset_metrics()
        # Read the state each epoch: a callback may have changed the weights
        # or the learning rate since the last one.
        state = train_epoch(_model_state(model), device_train, seed, np.int32(epoch))
        trainable, non_trainable, optimizer_variables, metrics = state
        _assign(model.trainable_variables, trainable)
        _assign(model.non_trainable_variables, non_trainable)
        _assign(model.optimizer.variables, optimizer_variables)
        _assign(model.metrics_variables, metrics)
        return model.get_metrics_result()

    return run_epochs(model, options, steps, run_train_epoch, validate if data.validation is not None else None)


def on_mesh(model, layout):
    """Moves variables created outside the distribution (one device) onto their layouts on the mesh."""
    import jax

    mesh_devices = set(layout.mesh.devices.flat)
    variables = (model.trainable_variables + model.non_trainable_variables + model.optimizer.variables
                 + model.metrics_variables)
    for variable in variables:
        if set(variable.value.sharding.device_set) == mesh_devices:
            continue
        if jax.process_count() > 1:
            raise ConfigError(
                f"Variable {variable.path!r} was created outside keras.distribution, on one "
                f"device; in a multi-process run every variable must be created under the "
                f"distribution. Call keras.distribution.set_distribution(...) (or "
                f"kerakit.distribute.use_data_parallel()) before building the model."
            )
        sharding = layout.distribution.get_variable_layout(variable).backend_layout
        variable.assign(jax.device_put(variable.value, sharding))
