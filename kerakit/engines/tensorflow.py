"""The `tensorflow` engine: a cached `tf.data` pipeline and several steps per call.

The pipeline is sliced from the arrays once, cached, reshuffled every epoch
with a seed (stock `fit` on NumPy with a fixed seed repeats one order),
batched and prefetched; `steps_per_execution` runs up to 64 batches per call
into TensorFlow, which is where the time goes on small tabular data.
"""

from kerakit.checks import rows
from kerakit.engines.keras_fit import (
    quiet_retracing_warning,
    set_steps_per_execution,
    steps_per_execution,
)

# Validation metrics are averaged over examples, so a larger batch gives the
# same numbers in fewer steps.
VALIDATION_BATCH_SIZE = 1024


def make_dataset(x, y=None, sample_weight=None, batch_size=32, shuffle=False, seed=None, cache=True):
    """Builds the input pipeline: slices → cache → (reshuffle each epoch) → batch → prefetch."""
    import tensorflow as tf

    parts = tuple(p for p in (x, y, sample_weight) if p is not None)
    ds = tf.data.Dataset.from_tensor_slices(parts if len(parts) > 1 else parts[0])
    if cache:
        ds = ds.cache()
    if shuffle:
        ds = ds.shuffle(rows(x), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def build_optimizer_slots(model):
    """Creates the optimizer's slot variables before the first step.

    Keras otherwise creates them while tracing the first step, and TensorFlow
    then traces the step a second time; building them first (as Keras does
    when loading a model) roughly halves the start-up cost of a small fit.
    """
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None and not optimizer.built:
        # Slots belong to the strategy the model was built under.
        with model.distribute_strategy.scope():
            optimizer.build(model.trainable_variables)


def validation_pipeline(validation, batch_size):
    """The validation set as a pipeline (a tf.data.Dataset is used as is)."""
    from kerakit.engines import is_dataset

    if validation is None or is_dataset(validation):
        return validation
    return make_dataset(*validation, batch_size=max(batch_size, VALIDATION_BATCH_SIZE))


def fit_dataset(model, train, validation, options, steps=None):
    """Trains on ready pipelines (a user's tf.data.Dataset, or cached fold pipelines)."""
    quiet_retracing_warning()
    if steps is not None:
        set_steps_per_execution(model, steps)
    build_optimizer_slots(model)
    # The pipeline already reshuffles; Keras's own shuffle flag does not apply to it.
    return model.fit(train, epochs=options.epochs, initial_epoch=options.initial_epoch,
                     verbose=options.verbose, callbacks=options.callbacks,
                     validation_data=validation, shuffle=False)


def fit(model, data, options):
    from kerakit.engines import is_dataset

    if is_dataset(data.x):
        steps = None if options.steps_per_execution == "auto" else int(options.steps_per_execution)
        return fit_dataset(model, data.x, data.validation, options, steps)
    train = make_dataset(data.x, data.y, data.sample_weight, batch_size=options.batch_size,
                         shuffle=options.shuffle, seed=options.seed)
    return fit_dataset(model, train, validation_pipeline(data.validation, options.batch_size),
                       options, steps_per_execution(model, data.rows, options))
