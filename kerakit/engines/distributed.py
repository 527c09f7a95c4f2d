"""The `distributed` engine: training under a `tf.distribute` strategy (TensorFlow only).

Under "mirrored" (or any single-machine strategy) this is the `tensorflow`
engine, which Keras distributes over the replicas; one step per call into
TensorFlow, because Keras 3's multi-step loop does not run under
MirroredStrategy (keras-team/keras#19246). Under "multiworker", Keras 3's
`Model.fit` fails (keras-team/keras#20585), so this engine runs a
strategy-aware loop around Keras's own `train_step` (see `kerakit.distribute`).
"""

import dataclasses
import math

from kerakit.engines import is_dataset, tensorflow
from kerakit.engines.keras_fit import steps_per_execution
from kerakit.errors import ConfigError, DataError
from kerakit.strategies import check_batch_size, get_strategy, is_chief, is_multiworker


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


def fit(model, data, options):
    """Trains under `options.strategy` (or the model's own); `batch_size` is the global batch."""
    from kerakit.strategies import model_strategy

    strategy = get_strategy(options.strategy) if options.strategy is not None else model_strategy(model)
    _check_model_strategy(model, strategy)
    check_batch_size(options.batch_size, strategy)
    if not is_multiworker(strategy):
        if strategy.num_replicas_in_sync > 1:
            options = dataclasses.replace(options, steps_per_execution=1)
        return tensorflow.fit(model, data, options)
    return _fit_multiworker(model, data, options, strategy)


def _fit_multiworker(model, data, options, strategy):
    import keras
    import tensorflow as tf

    if is_dataset(data.x):
        raise DataError(
            "Under strategy='multiworker' kerakit.fit takes arrays (each worker loads the "
            "same data and reads its own shard). Received a tf.data.Dataset; pass NumPy "
            "arrays or a DataFrame."
        )
    if tf.distribute.has_strategy():
        raise ConfigError(
            "Call kerakit.fit outside `with strategy.scope():` under strategy='multiworker'; "
            "the model already carries its strategy."
        )
    evaluator = _Validator(model, data.validation) if data.validation is not None else None
    rows, batch_size, seed = data.rows, options.batch_size, options.seed
    if rows < batch_size:
        raise DataError(
            f"{rows} training rows are fewer than one global batch ({batch_size}); every "
            f"worker needs data for every step. Pass a smaller batch_size."
        )
    parts = tuple(p for p in (data.x, data.y, data.sample_weight) if p is not None)

    def dataset_fn(context):
        # Each worker reads its own shard of the rows; repeating keeps all
        # workers stepping in lockstep for exactly `steps` steps per epoch.
        ds = tf.data.Dataset.from_tensor_slices(parts)
        ds = ds.shard(context.num_input_pipelines, context.input_pipeline_id).cache()
        if options.shuffle:
            ds = ds.shuffle(math.ceil(rows / context.num_input_pipelines), seed=seed,
                            reshuffle_each_iteration=True)
        per_replica = context.get_per_replica_batch_size(batch_size)
        return ds.repeat().batch(per_replica).prefetch(tf.data.AUTOTUNE)

    input_options = tf.distribute.InputOptions(experimental_fetch_to_device=True)
    iterator = iter(strategy.distribute_datasets_from_function(dataset_fn, input_options))
    steps = math.ceil(rows / batch_size)
    per_call = steps_per_execution(model, rows, options)

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
    verbose = options.verbose
    callback_list = keras.callbacks.CallbackList(
        options.callbacks,
        add_history=True,
        add_progbar=chief and verbose != 0,
        verbose=verbose if chief else 0,
        epochs=options.epochs,
        steps=steps,
        model=model,
    )
    model.stop_training = False
    callback_list.on_train_begin()
    logs = epoch_logs = {}
    for epoch in range(options.initial_epoch, options.epochs):
        model.reset_metrics()
        callback_list.on_epoch_begin(epoch)
        step = 0
        while step < steps:
            chunk = min(per_call, steps - step)
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

    def __init__(self, model, validation_data):
        import keras

        self.x, self.y = validation_data[0], validation_data[1]
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
