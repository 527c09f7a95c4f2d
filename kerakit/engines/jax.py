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

Falls back to Keras's `fit` (and says so once) when the data would take
more than half of the device's memory, or when `steps_per_execution` asks
for callbacks more often than once per epoch.
"""

import math
import weakref

import numpy as np

from kerakit.backend import is_dataset
from kerakit.engines import keras_fit, say_once
from kerakit.engines.loop import build_for_training, run_epochs

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

    stats = jax.devices()[0].memory_stats() or {}
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


def _batches(n, batch_size):
    full = n // batch_size
    return full, n - full * batch_size


def _make_train_epoch(model, n, batch_size, shuffle):
    import jax
    import jax.numpy as jnp

    full, rest = _batches(n, batch_size)

    def epoch(state, data, key):
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

    # The old state is dead once the epoch returns: let the device reuse its
    # memory (CPUs cannot, and would warn).
    donate = () if jax.devices()[0].platform == "cpu" else (0,)
    return jax.jit(epoch, donate_argnums=donate)


def _make_validate(model, n, batch_size):
    import jax
    import jax.numpy as jnp

    full, rest = _batches(n, batch_size)

    def validate(state, data):
        def take(start, size):
            return jax.tree_util.tree_map(lambda a: jax.lax.dynamic_slice_in_dim(a, start, size), data)

        def step(state, start):
            _, state = model.test_step(state, take(start, batch_size))
            return state, None

        if full:
            state, _ = jax.lax.scan(step, state, jnp.arange(full) * batch_size)
        if rest:
            _, state = model.test_step(state, jax.tree_util.tree_map(lambda a: a[full * batch_size:], data))
        return state[2]

    return jax.jit(validate)


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

    train = parts(data.x, data.y, data.sample_weight)
    batch_size = min(options.batch_size, data.rows)
    build_for_training(model, jax.tree_util.tree_map(lambda a: a[:batch_size], train))
    device_train = jax.device_put(train)
    n = data.rows
    train_epoch = _compiled(model, ("train", n, batch_size, options.shuffle, _signature(train)),
                            lambda: _make_train_epoch(model, n, batch_size, options.shuffle))

    validate = None
    if data.validation is not None:
        validation = parts(*data.validation) if len(data.validation) == 3 else tuple(data.validation)
        device_validation = jax.device_put(validation)
        rows = len(validation[1])
        val_batch = max(options.batch_size, VALIDATION_BATCH_SIZE)
        val_batch = min(val_batch, rows)
        validate_fn = _compiled(model, ("validate", rows, val_batch, _signature(validation)),
                                lambda: _make_validate(model, rows, val_batch))
        model.reset_metrics()
        reset = [v.value for v in model.metrics_variables]

        def validate():
            state = ([v.value for v in model.trainable_variables],
                     [v.value for v in model.non_trainable_variables], reset)
            _assign(model.metrics_variables, validate_fn(state, device_validation))
            return model.get_metrics_result()

    seed = options.seed if options.seed is not None else int(np.random.randint(2**31 - 1))
    base_key = jax.random.key(seed)

    def run_train_epoch(epoch):
        model.reset_metrics()
        # Read the state each epoch: a callback may have changed the weights
        # or the learning rate since the last one.
        state = train_epoch(_model_state(model), device_train, jax.random.fold_in(base_key, epoch))
        trainable, non_trainable, optimizer_variables, metrics = state
        _assign(model.trainable_variables, trainable)
        _assign(model.non_trainable_variables, non_trainable)
        _assign(model.optimizer.variables, optimizer_variables)
        _assign(model.metrics_variables, metrics)
        return model.get_metrics_result()

    steps = math.ceil(n / batch_size)
    return run_epochs(model, options, steps, run_train_epoch, validate if data.validation is not None else None)
