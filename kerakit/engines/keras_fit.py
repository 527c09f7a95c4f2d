"""The `keras` engine: Keras's own `model.fit` on validated arrays, on any backend."""

import math

MAX_STEPS_PER_EXECUTION = 64


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
    set_steps_per_execution(model, steps_per_execution(model, data.rows, options))
    return model.fit(
        data.x, data.y, sample_weight=data.sample_weight, batch_size=options.batch_size,
        epochs=options.epochs, initial_epoch=options.initial_epoch, verbose=options.verbose,
        callbacks=options.callbacks, validation_data=data.validation, shuffle=options.shuffle,
    )
