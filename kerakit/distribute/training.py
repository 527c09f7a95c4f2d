"""`fit` under a strategy, and the multi-worker training loop (see `kerakit.distribute`)."""

import math

from kerakit.distribute.strategies import (
    _DISPATCHED,
    _is_multiworker,
    check_batch_size,
    get_strategy,
    is_chief,
)
from kerakit.errors import ConfigError, DataError

# fit under a strategy ----------------------------------------------------------


def _check_model_strategy(model, strategy):
    built_under = getattr(model, "distribute_strategy", None)
    if built_under is strategy:
        return
    raise ConfigError(
        f"The model's variables were created under {type(built_under).__name__}, but fit was "
        f"asked to train with {type(strategy).__name__}; variables cannot move between "
        f"strategies. Build the model with the same strategy: build_model(..., strategy=...) "
        f"or inside `with strategy.scope():`."
    )


def fit(model, x, y=None, *, strategy, batch_size=32, **fit_options):
    """Trains `model` with a distribution strategy; called by `kerakit.fit(strategy=...)`.

    `batch_size` is the global batch: each step consumes `batch_size` examples
    in total, `batch_size / num_replicas_in_sync` on each replica. The model
    must have been built under the same strategy.

    Under "mirrored" (or any single-machine strategy) this is Keras's
    `Model.fit` on kerakit's pipeline, which Keras distributes over the
    replicas; one step per call into TensorFlow, because Keras 3's
    multi-step loop does not run under MirroredStrategy
    (keras-team/keras#19246). Under "multiworker" it is a strategy-aware loop
    around Keras's own `train_step` (see the module docstring).

    Example:

    ```python
    kerakit.split_cpu(2)                      # or run on a machine with 2 GPUs
    model = kerakit.build_model(spec, input_shape=(64,), strategy="mirrored")
    history = kerakit.fit(model, x, y, epochs=5, batch_size=64, strategy="mirrored")
    ```
    """
    from kerakit import training

    strategy = get_strategy(strategy)
    _check_model_strategy(model, strategy)
    check_batch_size(batch_size, strategy)
    if not _is_multiworker(strategy):
        if strategy.num_replicas_in_sync > 1:
            fit_options["steps_per_execution"] = 1
        token = _DISPATCHED.set(True)
        try:
            return training.fit(model, x, y, batch_size=batch_size, **fit_options)
        finally:
            _DISPATCHED.reset(token)
    return _fit_multiworker(model, x, y, strategy=strategy, batch_size=batch_size, **fit_options)


def _fit_multiworker(
    model,
    x,
    y,
    *,
    strategy,
    batch_size,
    epochs=1,
    verbose="auto",
    callbacks=None,
    validation_split=0.0,
    validation_data=None,
    shuffle=True,
    class_weight=None,
    sample_weight=None,
    seed=None,
    steps_per_execution="auto",
    spec=None,
):
    import keras
    import numpy as np
    import tensorflow as tf

    from kerakit import training
    from kerakit.builders import spec_of

    if isinstance(x, tf.data.Dataset):
        raise DataError(
            "Under strategy='multiworker' kerakit.fit takes arrays (each worker loads the "
            "same data and reads its own shard). Received a tf.data.Dataset; pass NumPy "
            "arrays or a DataFrame."
        )
    if y is None:
        raise DataError("`y` is required when `x` is not a tf.data.Dataset.")
    if tf.distribute.has_strategy():
        raise ConfigError(
            "Call kerakit.fit outside `with strategy.scope():` under strategy='multiworker'; "
            "the model already carries its strategy."
        )
    spec = spec or spec_of(model)
    if seed is not None:
        training.set_seed(seed)
    x, y = training.prepare(model, x, y, spec)
    weights = None
    if class_weight is not None:
        weights = training.class_weights(spec, y, class_weight)
    if sample_weight is not None:
        sample_weight = np.asarray(sample_weight, dtype=np.float32).reshape(-1)
        if len(sample_weight) != len(y):
            raise DataError(
                f"`sample_weight` has {len(sample_weight)} rows but the labels have {len(y)}. "
                f"Pass one weight per example."
            )
        weights = sample_weight if weights is None else weights * sample_weight
    if validation_split and validation_data is None:
        (x, y, weights), (xv, yv, _) = training._split([x, y, weights], validation_split)
        validation_data = (xv, yv)
    training._check_monitors(callbacks, validation_data is not None)
    evaluator = _Validator(model, validation_data, spec) if validation_data is not None else None

    rows = training._rows(x)
    if rows < batch_size:
        raise DataError(
            f"{rows} training rows are fewer than one global batch ({batch_size}); every "
            f"worker needs data for every step. Pass a smaller batch_size."
        )
    parts = tuple(p for p in (x, y, weights) if p is not None)

    def dataset_fn(context):
        # Each worker reads its own shard of the rows; repeating keeps all
        # workers stepping in lockstep for exactly `steps` steps per epoch.
        ds = tf.data.Dataset.from_tensor_slices(parts)
        ds = ds.shard(context.num_input_pipelines, context.input_pipeline_id).cache()
        if shuffle:
            ds = ds.shuffle(math.ceil(rows / context.num_input_pipelines), seed=seed,
                            reshuffle_each_iteration=True)
        per_replica = context.get_per_replica_batch_size(batch_size)
        return ds.repeat().batch(per_replica).prefetch(tf.data.AUTOTUNE)

    options = tf.distribute.InputOptions(experimental_fetch_to_device=True)
    iterator = iter(strategy.distribute_datasets_from_function(dataset_fn, options))
    steps = math.ceil(rows / batch_size)
    if steps_per_execution == "auto":
        steps_per_execution = max(1, min(steps, training.MAX_STEPS_PER_EXECUTION))
    steps_per_execution = int(steps_per_execution)

    if not model.optimizer.built:
        with strategy.scope():
            # Optimizer slots must exist before the step is traced: variables
            # cannot be created inside `strategy.run`.
            model.optimizer.build(model.trainable_variables)

    @tf.function
    def train_function(iterator, num_steps):
        for _ in tf.range(num_steps):
            strategy.run(model.train_step, args=(next(iterator),))
        # Metric variables are sync-on-read: reading them here sums over
        # every replica of every worker, so all workers see the same logs
        # (and callbacks such as EarlyStopping decide the same way).
        return model.get_metrics_result()

    chief = is_chief(strategy)
    callback_list = keras.callbacks.CallbackList(
        callbacks,
        add_history=True,
        add_progbar=chief and verbose != 0,
        verbose=verbose if chief else 0,
        epochs=epochs,
        steps=steps,
        model=model,
    )
    model.stop_training = False
    callback_list.on_train_begin()
    logs = epoch_logs = {}
    for epoch in range(epochs):
        model.reset_metrics()
        callback_list.on_epoch_begin(epoch)
        step = 0
        while step < steps:
            chunk = min(steps_per_execution, steps - step)
            callback_list.on_train_batch_begin(step)
            logs = {k: float(v) for k, v in train_function(iterator, tf.constant(chunk)).items()}
            step += chunk
            callback_list.on_train_batch_end(step - 1, logs)
        epoch_logs = dict(logs)
        if evaluator is not None:
            epoch_logs.update(evaluator.logs())
        callback_list.on_epoch_end(epoch, epoch_logs)
        if model.stop_training:
            break
    callback_list.on_train_end(logs=epoch_logs)
    return model.history


class _Validator:
    """Validation metrics under multi-worker training, the same on every worker.

    Keras's `evaluate` fails under MultiWorkerMirroredStrategy for the same
    reason as `fit`. Every worker holds identical weights, so each evaluates
    the whole validation set with a plain (non-distributed) Keras model that
    shares the trained model's layers and its compile settings: exact Keras
    `val_*` numbers, identical across workers.
    """

    def __init__(self, model, validation_data, spec):
        import keras

        from kerakit import training

        xv, yv = validation_data[0], validation_data[1]
        self.x, self.y = training.prepare(model, xv, yv, spec, what="validation x")
        if not getattr(model, "inputs", None):
            raise ConfigError(
                "Validation under strategy='multiworker' needs a functional or Sequential model "
                "(with known inputs), like build_model's. Build it with build_model or pass no "
                "validation data."
            )
        self.model = keras.Model(model.inputs, model.outputs, name=f"{model.name}_validation")
        self.model.compile_from_config(model.get_compile_config())

    def logs(self):
        results = self.model.evaluate(
            self.x, self.y, batch_size=1024, verbose=0, return_dict=True
        )
        return {f"val_{k}": float(v) for k, v in results.items()}
