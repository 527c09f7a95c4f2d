"""The `keras` engine: Keras's own `model.fit` on validated arrays, on any backend."""

import logging
import math

MAX_STEPS_PER_EXECUTION = 64

# TensorFlow's warning when many `tf.function`s are traced; see `quiet_retracing_warning`.
RETRACING_MESSAGE = "triggered tf.function retracing"


class _RetracingFilter(logging.Filter):
    def filter(self, record):
        return RETRACING_MESSAGE not in record.getMessage()


def quiet_retracing_warning():
    """Keeps TensorFlow's "triggered tf.function retracing" warning out of users' output.

    Every new model gets its own compiled train and test functions, so fitting
    several fresh models in one process (recipes, cross-validation, tuning)
    traces each once, by design; TensorFlow counts these traces across
    functions and warns after five as if a loop were rebuilding one function.
    Only that message is dropped from the `tensorflow` logger; its other
    warnings still show. Idempotent.
    """
    logger = logging.getLogger("tensorflow")
    if not any(isinstance(f, _RetracingFilter) for f in logger.filters):
        logger.addFilter(_RetracingFilter())


def steps_per_execution(model, rows, options):
    """Batches per call into the backend: one epoch up to 64 ("auto"); always 1 on PyTorch."""
    import keras

    if keras.backend.backend() == "torch":
        return 1
    if options.steps_per_execution != "auto":
        return int(options.steps_per_execution)
    steps = math.ceil(rows / options.batch_size)
    return max(1, min(steps, MAX_STEPS_PER_EXECUTION))


def set_steps_per_execution(model, steps):
    """Sets the model's steps per call; compiled step functions bake it in, so they are rebuilt."""
    if model.steps_per_execution != steps:
        model.steps_per_execution = steps
        model.train_function = model.test_function = model.predict_function = None


def fit(model, data, options):
    quiet_retracing_warning()
    set_steps_per_execution(model, steps_per_execution(model, data.rows, options))
    return model.fit(
        data.x, data.y, sample_weight=data.sample_weight, batch_size=options.batch_size,
        epochs=options.epochs, initial_epoch=options.initial_epoch, verbose=options.verbose,
        callbacks=options.callbacks, validation_data=data.validation, shuffle=options.shuffle,
    )
