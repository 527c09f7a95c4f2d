"""`fit`, `evaluate` and `predict`: validated training on the engine that suits the backend.

`fit` means what `model.fit` means — same arguments, same History — but
checks the options and the data first, then hands validated arrays to one
training engine, chosen once (`kerakit.engines`): a cached `tf.data`
pipeline with several steps per call on TensorFlow, device-resident jitted
epochs on JAX, device-resident tensors on PyTorch, or a `tf.distribute`
strategy. `evaluate` computes held-out metrics with scikit-learn.
"""

import sys

import numpy as np

from kerakit import backend, checks, engines, metrics_registry
from kerakit.backend import set_random_seed
from kerakit.checks import class_weights, prepare, validate_features
from kerakit.errors import ConfigError, DataError
from kerakit.metadata import spec_of
from kerakit.spec import validate_labels

__all__ = ["PREDICT_CHUNK", "class_weights", "evaluate", "fit", "metrics_report", "predict",
           "predict_in_chunks", "predict_padded", "prepare", "set_seed", "validate_features"]


def set_seed(seed, deterministic=True):
    """Seeds Python, NumPy and Keras, and on TensorFlow asks for deterministic ops.

    With the same seed, two separate processes produce the same history.

    Args:
        seed: an integer.
        deterministic: on the TensorFlow backend, also call
            `tf.config.experimental.enable_op_determinism()`. Defaults to True.
    """
    set_random_seed(seed)
    if deterministic and backend.name() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


def resolve_verbose(verbose):
    """`"auto"` means a progress bar on a terminal and one plain line per epoch otherwise."""
    if verbose == "auto":
        return 1 if getattr(sys.stdout, "isatty", lambda: False)() else 2
    return verbose


def fit(
    model,
    x,
    y=None,
    *,
    batch_size=32,
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
    strategy=None,
    initial_epoch=0,
    engine="auto",
):
    """Trains `model` like `model.fit`, on the training engine that suits the backend.

    Same meaning as `keras.Model.fit` for the arguments it shares; returns the
    same `History`. Before anything runs it checks features (numeric, finite,
    right width) and labels (against the model's spec), so bad data fails
    with a clear message instead of a constant model or a graph error.

    Args:
        model: a compiled `keras.Model` (from `build_model`, or any).
        x: features (NumPy array, DataFrame, or dict of columns), or a
            `tf.data.Dataset` yielding `(x, y)` batches, used as is.
        y: labels.
        batch_size: examples per step. Defaults to 32.
        epochs: passes over the data. Defaults to 1.
        verbose: as in `model.fit`.
        callbacks: a list of Keras callbacks (see `default_callbacks`).
        validation_split: fraction of the data, taken from the end before
            shuffling, used for validation (as in Keras).
        validation_data: `(x_val, y_val)` for validation.
        shuffle: reshuffle the training data every epoch. Defaults to True.
        class_weight: "balanced" or `{class: weight}`; applied as sample weights.
        sample_weight: per-example weights.
        seed: seeds Keras's generators and the shuffle, so two runs (even in
            separate processes) give the same history; epochs are still
            reshuffled.
        steps_per_execution: batches per call into the backend, or "auto"
            (one epoch, up to 64 on TensorFlow; a whole epoch per call on JAX).
        initial_epoch: epoch to start from (for resuming), as in Keras.
        engine: "auto" (chosen from the backend, the strategy and the data),
            or one of `kerakit.engines.ENGINES`: "tensorflow", "jax", "torch",
            "keras" (Keras's own `model.fit`) or "distributed".
        spec: the `ProblemSpec`; defaults to the one `build_model` attached.
        strategy: a `tf.distribute.Strategy` or name ("mirrored",
            "multiworker", "default") the model was built under
            (`build_model(..., strategy=...)`). `batch_size` is then the
            global batch, split evenly over the replicas. See
            `kerakit.distribute`. Defaults to None: the model's own strategy.

    Example:

    ```python
    history = kerakit.fit(model, x, y, validation_split=0.2, epochs=20,
                          callbacks=kerakit.default_callbacks(spec))
    ```
    """
    checks.check_model(model)
    checks.check_fit_arguments(batch_size=batch_size, epochs=epochs, validation_data=validation_data,
                               sample_weight=sample_weight, class_weight=class_weight,
                               initial_epoch=initial_epoch, validation_split=validation_split,
                               seed=seed, steps_per_execution=steps_per_execution)
    callbacks = checks.check_callbacks(callbacks)
    name = engines.choose(model, x, strategy=strategy, engine=engine)
    spec = spec or spec_of(model)
    if seed is not None:
        set_seed(seed)
    options = engines.FitOptions(
        batch_size=int(batch_size), epochs=int(epochs), initial_epoch=int(initial_epoch),
        verbose=resolve_verbose(verbose), callbacks=callbacks, shuffle=bool(shuffle),
        seed=seed, steps_per_execution=steps_per_execution, strategy=strategy,
    )
    data = _training_data(model, x, y, spec, validation_split, validation_data, class_weight, sample_weight)
    checks.check_monitors(options.callbacks, data.validation is not None)
    return engines.get(name).fit(model, data, options)


def _training_data(model, x, y, spec, validation_split, validation_data, class_weight, sample_weight):
    """Checks features, labels and weights once, for every engine; splits off validation rows."""
    if engines.is_dataset(x):
        ignored = {"class_weight": class_weight, "sample_weight": sample_weight,
                   "validation_split": validation_split or None, "y": y}
        given = sorted(k for k, v in ignored.items() if v is not None)
        if given:
            raise ConfigError(
                f"{', '.join(given)} cannot be applied to a tf.data.Dataset, which is used as "
                f"is. Put labels and weights in the dataset as (x, y, sample_weight) elements "
                f"and pass validation_data=..., or pass arrays instead."
            )
        return engines.TrainingData(x, None, validation=validation_data)
    if y is None:
        raise DataError("`y` is required when `x` is not a tf.data.Dataset.")
    x, y = prepare(model, x, y, spec)
    checks.check_magnitude(x)
    weights = checks.example_weights(spec, y, class_weight, checks.check_weights(sample_weight))
    if validation_split and validation_data is None:
        (x, y, weights), (xv, yv, _) = checks.split_validation([x, y, weights], validation_split)
        validation_data = (xv, yv)
    if validation_data is not None and not engines.is_dataset(validation_data):
        xv, yv = prepare(model, validation_data[0], validation_data[1], spec, what="validation x")
        checks.check_magnitude(xv, "validation x")
        wv = checks.check_weights(validation_data[2], "validation sample_weight") \
            if len(validation_data) == 3 else None
        validation_data = (xv, yv) if wv is None else (xv, yv, wv)
    return engines.TrainingData(x, y, weights, validation_data)


# Prediction -----------------------------------------------------------------

# Rows per call of the model in `predict_in_chunks`, unless the caller says otherwise.
PREDICT_CHUNK = 256


def predict_in_chunks(model, x, batch_size=PREDICT_CHUNK):
    """Calls `model` on inputs that are already checked, in chunks; the one chunked predict.

    The model is called directly (`model(chunk, training=False)`), so no
    predict function is traced per model: cross-validation and permutation
    importance call fresh models or the same model hundreds of times. Every
    call gets exactly `batch_size` rows: the last chunk is padded with copies
    of its last row and the padding dropped. One shape per model means JAX
    compiles each op once, whatever the row count, and each row's prediction
    does not depend on the rows it is predicted with (float32 matrix products
    round differently for different batch sizes), which scikit-learn's
    subset- and order-invariance checks rely on.

    Args:
        model: a `keras.Model`.
        x: an array (texts as an object array of strings), or a dict of
            arrays for a model with named inputs, as `prepare` returns them.
        batch_size: rows per call. Defaults to `PREDICT_CHUNK` (256).

    Returns:
        The outputs as a NumPy array (float32 for kerakit's models).

    Example:

    ```python
    proba = predict_in_chunks(model, x_checked, batch_size=1024)
    ```
    """
    import contextlib

    import keras

    checks.check_count("batch_size", batch_size)
    n = checks.rows(x)
    no_grad = contextlib.nullcontext()
    if keras.backend.backend() == "torch":
        import torch

        no_grad = torch.no_grad()
    parts = []
    with no_grad:
        for start in range(0, n, batch_size):
            chunk = _map(x, lambda v, s=start: v[s:s + batch_size])
            size = min(batch_size, n - start)
            if size < batch_size:  # copies of the last row, dropped again below
                chunk = _map(chunk, lambda v, extra=int(batch_size) - size: _pad(v, extra))
            out = model(_map(chunk, _as_tensor), training=False)
            parts.append(np.asarray(keras.ops.convert_to_numpy(out))[:size])
    if not parts:
        raise DataError("There are no rows to predict. Pass at least one row.")
    return np.concatenate(parts)


def predict_padded(model, x, batch_size=1024):
    """`model.predict_on_batch` over chunks of at most `batch_size` rows, each padded to a power of two.

    The compiled counterpart of `predict_in_chunks`, for bulk and served
    predictions: the model's predict step is traced (TensorFlow) or compiled
    (JAX) once per chunk shape, and padding with copies of the last row keeps
    the shapes to a handful (1, 2, 4, ... `batch_size`) whatever the row
    counts callers bring. The padding is dropped from the answer.

    Args:
        model: a `keras.Model`.
        x: an array, or a dict of arrays for a model with named inputs,
            already in the form the model takes (`prepare`, `table_inputs`).
        batch_size: the most rows per call. Defaults to 1024.

    Returns:
        The outputs as a NumPy array, or a dict of them for a model with
        named outputs.

    Example:

    ```python
    proba = predict_padded(model, table_inputs(model, rows))
    ```
    """
    checks.check_count("batch_size", batch_size)
    n = checks.rows(x)
    if n == 0:
        raise DataError("There are no rows to predict. Pass at least one row.")
    parts = []
    for start in range(0, n, batch_size):
        chunk = _map(x, lambda v, s=start: v[s:s + batch_size])
        size = min(batch_size, n - start)
        padded = min(int(batch_size), 1 << (size - 1).bit_length())
        if padded > size:  # copies of the last row, dropped again below
            chunk = _map(chunk, lambda v, extra=padded - size: _pad(v, extra))
        out = model.predict_on_batch(chunk)
        parts.append({k: np.asarray(v)[:size] for k, v in out.items()} if isinstance(out, dict)
                     else np.asarray(out)[:size])
    if isinstance(parts[0], dict):
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    return np.concatenate(parts)


def _map(x, function):
    return {k: function(v) for k, v in x.items()} if isinstance(x, dict) else function(x)


def _pad(value, extra):
    if isinstance(value, np.ndarray):
        return np.concatenate([value, np.repeat(value[-1:], extra, axis=0)])
    import keras  # a backend tensor (string columns as tf.string)

    return keras.ops.concatenate([value, keras.ops.repeat(value[-1:], extra, axis=0)])


def _as_tensor(value):
    """A backend tensor: Keras refuses a dict of inputs that mixes tensors and arrays.

    Texts become string tensors (TensorFlow only): Keras takes no NumPy strings.
    """
    import keras

    if not isinstance(value, np.ndarray):
        return value
    if value.dtype.kind in "OUS":
        import tensorflow as tf

        return tf.constant(value.astype(object).astype(str))
    return keras.ops.convert_to_tensor(value)


def predict(model, x, batch_size=256):
    """Predicts with a checked input, in chunks (`predict_in_chunks`).

    Under a `keras.distribution` (JAX), Keras's own `predict` splits each
    batch over the devices instead; the rows are padded to a multiple of
    them (`kerakit.engines.pad_to_devices`) and the padding dropped. In a
    run of several processes each predicts its own rows alone
    (`kerakit.engines.predict_on_this_process`).

    Args:
        model: a trained `keras.Model`.
        x: features (array, DataFrame, texts for a text model, or a dict of
            inputs), checked as `fit` checks them.
        batch_size: rows per call of the model. Defaults to 256.

    Example:

    ```python
    proba = kerakit.predict(model, x_test)
    ```
    """
    x, _ = prepare(model, x)
    if backend.name() == "jax":  # keras.distribution exists on JAX only
        local = engines.predict_on_this_process(model, x, batch_size)
        if local is not None:
            return local
        padded, sharded_batch, rows = engines.pad_to_devices(x, batch_size)
        if rows is not None:
            return np.asarray(model.predict(padded, batch_size=sharded_batch, verbose=0))[:rows]
    return predict_in_chunks(model, x, batch_size)


# Evaluation -----------------------------------------------------------------


def metrics_report(spec, y, predictions, threshold=0.5):
    """Held-out metrics for predictions, as `kerakit.metrics_registry` computes them.

    Classification: accuracy, precision, recall, F1 (macro for multiclass,
    micro for multilabel), ROC-AUC where defined, log loss. Regression: MSE,
    RMSE, MAE, R². A metric undefined on these rows (ROC-AUC with one class
    present) is left out. Binary precision, recall and F1 count the positive
    class (the second of `spec.class_names`);
    `kerakit.metrics_registry.metric_notes(spec, report)` says so, and how
    classes are averaged, in words for printing beside the values.
    """
    checks.check_fraction("threshold", threshold, example=0.5)
    y = validate_labels(spec, y)
    predictions = np.asarray(predictions, dtype=np.float64)
    if len(predictions) != len(y):
        raise DataError(
            f"There are {len(predictions)} prediction rows for {len(y)} label rows. Predict on "
            f"the rows the labels belong to: one label row per example."
        )
    report = {}
    for metric in metrics_registry.for_task(spec.task):
        value = metrics_registry.compute(metric.name, spec, y, predictions, threshold)
        if metric.name != "roc_auc" or not np.isnan(value):
            report[metric.name] = value
    report["n"] = int(len(y))
    return report


def evaluate(model, x, y, spec=None, threshold=0.5, batch_size=256):
    """Returns a dict of held-out metrics for `model` on `(x, y)`.

    Args:
        model: a trained `keras.Model`.
        x, y: held-out features and labels.
        spec: the `ProblemSpec`; defaults to the one `build_model` attached.
        threshold: decision threshold for binary and multilabel outputs.
            Defaults to 0.5.

    Example:

    ```python
    report = kerakit.evaluate(model, x_test, y_test, spec)
    report["accuracy"], report["f1"]
    metric_notes(spec, report)["f1"]  # 'macro average over 3 classes'
    ```

    What each metric refers to (the positive class, the averaging over
    classes): `kerakit.metrics_registry.metric_notes`.
    """
    checks.check_fraction("threshold", threshold, example=0.5)
    spec = spec or spec_of(model)
    if spec is None:
        raise ConfigError(
            "evaluate needs the problem spec for a model not built by kerakit: pass spec=... ."
        )
    x, _ = prepare(model, x, None, spec)
    checks.check_same_rows(x, y)
    return metrics_report(spec, y, predict(model, x, batch_size), threshold)
