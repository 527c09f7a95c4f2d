"""`fit` and `evaluate`: the fast training path and honest held-out metrics.

`fit` means what `model.fit` means — same arguments, same History — but
validates the data first, feeds a `tf.data` pipeline (cached, reshuffled
every epoch, batched, prefetched) and runs several steps per call into
TensorFlow (`steps_per_execution`), which is where the time goes on small
tabular data. `evaluate` computes metrics with scikit-learn.
"""

import math

import numpy as np

from kerakit.builders import spec_of
from kerakit.errors import ConfigError, DataError, DataTypeError
from kerakit.spec import class_indices, validate_labels

# One call into TensorFlow runs at most this many batches: enough to hide
# Python overhead, few enough that progress bars and callbacks stay live.
MAX_STEPS_PER_EXECUTION = 64
VALIDATION_BATCH_SIZE = 1024


def set_seed(seed, deterministic=True):
    """Seeds Python, NumPy and Keras, and asks TensorFlow for deterministic ops.

    With the same seed, two separate processes produce the same history.

    Args:
        seed: an integer.
        deterministic: also call `tf.config.experimental.enable_op_determinism()`.
            Defaults to True.
    """
    import keras

    keras.utils.set_random_seed(int(seed))
    if deterministic:
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


# Validation -----------------------------------------------------------------


def _rows(x):
    if isinstance(x, dict):
        return len(next(iter(x.values()))) if x else 0
    return len(x)


def validate_features(x, input_shape=None, what="x"):
    """Checks a feature array and returns it as float32.

    Refuses object or string dtypes, NaN or infinite cells (naming where the
    first ones are), empty data and a width that differs from the model's.
    """
    if hasattr(x, "to_numpy") and not isinstance(x, dict):
        x = x.to_numpy()
    x = np.asarray(x)
    if x.size == 0 or x.ndim == 0:
        raise DataError(f"`{what}` is empty (shape {x.shape}). Pass at least one example.")
    if x.dtype.kind not in "biuf":
        sample = x.ravel()[:3].tolist()
        raise DataTypeError(
            f"`{what}` must be numeric; received dtype {x.dtype} (values such as {sample!r}). "
            f"Encode text or categorical columns first (see kerakit.data for raw-column "
            f"models) or convert with x.astype('float32')."
        )
    if x.ndim == 1:
        x = x[:, None]
    x = x.astype(np.float32, copy=False)
    bad = ~np.isfinite(x)
    if bad.any():
        where = np.argwhere(bad)[:3].tolist()
        raise DataError(
            f"`{what}` has {int(bad.sum())} NaN or infinite cell(s) in "
            f"{int(bad.reshape(len(x), -1).any(axis=1).sum())} row(s); first at (row, column) "
            f"{where}. A single NaN turns the whole model into NaN. Impute or drop them "
            f"(e.g. sklearn.impute.SimpleImputer), or use a raw-column model from kerakit.data."
        )
    if input_shape is not None:
        expected = tuple(input_shape[1:])
        if len(expected) == x.ndim - 1 and any(
            e is not None and e != a for e, a in zip(expected, x.shape[1:], strict=True)
        ):
            raise DataError(
                f"The model expects {expected[-1] if len(expected) == 1 else expected} feature(s) "
                f"per row; `{what}` has {x.shape[1] if x.ndim == 2 else x.shape[1:]}. Use the "
                f"same columns as at build time."
            )
    return x


def _check_same_rows(x, y, what="x"):
    if y is not None and _rows(x) != len(y):
        raise DataError(
            f"`{what}` has {_rows(x)} rows but the labels have {len(y)}. Each example needs "
            f"exactly one label row."
        )


def _model_input_shape(model):
    try:
        shape = model.input_shape
    except (AttributeError, ValueError):
        return None
    return shape if isinstance(shape, tuple) else None


def prepare(model, x, y=None, spec=None, what="x"):
    """Validates features and labels for `model`; returns arrays ready for tf.data."""
    spec = spec or spec_of(model)
    if not isinstance(x, dict):
        x = validate_features(x, _model_input_shape(model), what=what)
    if y is not None:
        if spec is not None:
            y = validate_labels(spec, y)
        else:
            y = np.asarray(y)
        _check_same_rows(x, y, what)
    return x, y


def class_weights(spec, y, class_weight):
    """Returns per-example weights for `class_weight` ("balanced" or {class: weight})."""
    from sklearn.utils.class_weight import compute_class_weight

    if spec is None or spec.task not in ("binary", "multiclass"):
        raise ConfigError(
            "`class_weight` applies to binary and multiclass problems with a known spec. "
            f"Received task={getattr(spec, 'task', None)!r}."
        )
    labels = class_indices(spec, y).astype(np.int64)
    classes = np.arange(spec.num_outputs if spec.task == "multiclass" else 2)
    if class_weight == "balanced":
        present = np.unique(labels)
        table = dict(zip(present, compute_class_weight("balanced", classes=present, y=labels), strict=True))
    elif isinstance(class_weight, dict):
        names = spec.class_names or ()
        table = {names.index(k) if k in names else int(k): float(v) for k, v in class_weight.items()}
        unknown = sorted(set(table) - set(classes.tolist()))
        if unknown:
            raise ConfigError(f"`class_weight` names classes {unknown} that the spec does not have.")
    else:
        raise ConfigError(
            f"`class_weight` must be 'balanced' or a dict {{class: weight}}. "
            f"Received: class_weight={class_weight!r}"
        )
    return np.array([table.get(c, 1.0) for c in labels], dtype=np.float32)


# Pipeline -------------------------------------------------------------------


def make_dataset(x, y=None, sample_weight=None, batch_size=32, shuffle=False, seed=None, cache=True):
    """Builds the input pipeline: slices → cache → (reshuffle each epoch) → batch → prefetch."""
    import tensorflow as tf

    parts = tuple(p for p in (x, y, sample_weight) if p is not None)
    ds = tf.data.Dataset.from_tensor_slices(parts if len(parts) > 1 else parts[0])
    if cache:
        ds = ds.cache()
    if shuffle:
        # A seeded shuffle that still gives a new order every epoch; stock
        # `fit` on NumPy with a fixed seed repeats the same order.
        ds = ds.shuffle(_rows(x), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def _split(arrays, validation_split):
    """Keeps Keras's meaning: the last `validation_split` fraction, before shuffling."""
    if not 0 < validation_split < 1:
        raise ConfigError(f"`validation_split` must be in (0, 1). Received: {validation_split!r}")
    n = _rows(arrays[0])
    cut = int(math.floor(n * (1 - validation_split)))
    if cut == 0 or cut == n:
        raise DataError(
            f"validation_split={validation_split} leaves no rows for training or validation "
            f"with {n} rows. Pass more data or another fraction."
        )

    def take(a, sl):
        if a is None:
            return None
        if isinstance(a, dict):
            return {k: v[sl] for k, v in a.items()}
        return a[sl]

    return [take(a, slice(0, cut)) for a in arrays], [take(a, slice(cut, None)) for a in arrays]


def _set_steps_per_execution(model, steps):
    if model.steps_per_execution != steps:
        model.steps_per_execution = steps
        # Compiled functions bake the value in; force them to be rebuilt.
        model.train_function = model.test_function = model.predict_function = None


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


def _check_monitors(callbacks, has_validation):
    if has_validation:
        return
    for callback in callbacks or ():
        monitor = getattr(callback, "monitor", None)
        if isinstance(monitor, str) and monitor.startswith("val_"):
            raise ConfigError(
                f"{type(callback).__name__} watches {monitor!r}, but there is no validation "
                f"data. Pass validation_data=(x_val, y_val) or validation_split=0.2, or watch "
                f"{monitor[4:]!r}."
            )


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
):
    """Trains `model` like `model.fit`, on a fast validated input pipeline.

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
        steps_per_execution: batches per call into TensorFlow, or "auto"
            (one epoch, up to 64).
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
    import tensorflow as tf

    from kerakit import distribute

    # A model built under a strategy trains under it (as with model.fit).
    strategy = strategy if strategy is not None else distribute.model_strategy(model)
    if strategy is not None:
        return distribute.fit(
            model, x, y, strategy=strategy, batch_size=batch_size, epochs=epochs,
            verbose=verbose, callbacks=callbacks, validation_split=validation_split,
            validation_data=validation_data, shuffle=shuffle, class_weight=class_weight,
            sample_weight=sample_weight, seed=seed, steps_per_execution=steps_per_execution,
            spec=spec,
        )
    spec = spec or spec_of(model)
    if seed is not None:
        set_seed(seed)
    if isinstance(x, tf.data.Dataset):
        ignored = {"class_weight": class_weight, "sample_weight": sample_weight,
                   "validation_split": validation_split or None}
        given = sorted(k for k, v in ignored.items() if v is not None)
        if given:
            raise ConfigError(
                f"{', '.join(given)} cannot be applied to a tf.data.Dataset, which is used as "
                f"is. Put weights in the dataset as (x, y, sample_weight) elements and pass "
                f"validation_data=..., or pass arrays instead."
            )
        if steps_per_execution != "auto":
            _set_steps_per_execution(model, int(steps_per_execution))
        _check_monitors(callbacks, validation_data is not None)
        build_optimizer_slots(model)
        return model.fit(x, epochs=epochs, verbose=verbose, callbacks=callbacks,
                         validation_data=validation_data, shuffle=False)
    if y is None:
        raise DataError("`y` is required when `x` is not a tf.data.Dataset.")
    x, y = prepare(model, x, y, spec)
    weights = None
    if class_weight is not None:
        weights = class_weights(spec, y, class_weight)
    if sample_weight is not None:
        sample_weight = np.asarray(sample_weight, dtype=np.float32).reshape(-1)
        _check_same_rows(x, sample_weight, "sample_weight")
        weights = sample_weight if weights is None else weights * sample_weight
    if validation_split and validation_data is None:
        (x, y, weights), (xv, yv, _) = _split([x, y, weights], validation_split)
        validation_data = (xv, yv)
    _check_monitors(callbacks, validation_data is not None)
    train = make_dataset(x, y, weights, batch_size=batch_size, shuffle=shuffle, seed=seed)
    val = None
    if validation_data is not None:
        if isinstance(validation_data, tf.data.Dataset):
            val = validation_data
        else:
            xv, yv = validation_data[0], validation_data[1]
            xv, yv = prepare(model, xv, yv, spec, what="validation x")
            # Validation metrics are averaged over examples, so a larger batch
            # gives the same numbers in fewer steps.
            val = make_dataset(xv, yv, batch_size=max(batch_size, VALIDATION_BATCH_SIZE))
    steps = math.ceil(_rows(x) / batch_size)
    if steps_per_execution == "auto":
        steps_per_execution = max(1, min(steps, MAX_STEPS_PER_EXECUTION))
    _set_steps_per_execution(model, int(steps_per_execution))
    build_optimizer_slots(model)
    # The pipeline already reshuffles; Keras's own shuffle flag does not apply to it.
    return model.fit(train, epochs=epochs, verbose=verbose, callbacks=callbacks,
                     validation_data=val, shuffle=False)


# Evaluation -----------------------------------------------------------------


def predict(model, x, batch_size=256):
    """Predicts with a validated input and a large batch (fast for small models)."""
    if not isinstance(x, dict):
        x = validate_features(x, _model_input_shape(model))
    return np.asarray(model.predict(x, batch_size=batch_size, verbose=0))


def _binary_report(y, proba, threshold=0.5):
    from sklearn import metrics

    proba = proba.reshape(-1)
    pred = (proba >= threshold).astype(int)
    report = {
        "accuracy": metrics.accuracy_score(y, pred),
        "precision": metrics.precision_score(y, pred, zero_division=0),
        "recall": metrics.recall_score(y, pred, zero_division=0),
        "f1": metrics.f1_score(y, pred, zero_division=0),
    }
    if len(np.unique(y)) == 2:
        report["roc_auc"] = metrics.roc_auc_score(y, proba)
        report["log_loss"] = metrics.log_loss(y, np.clip(proba, 1e-7, 1 - 1e-7))
    return report


def _multiclass_report(y, proba):
    from sklearn import metrics

    pred = proba.argmax(axis=1)
    report = {
        "accuracy": metrics.accuracy_score(y, pred),
        "precision": metrics.precision_score(y, pred, average="macro", zero_division=0),
        "recall": metrics.recall_score(y, pred, average="macro", zero_division=0),
        "f1": metrics.f1_score(y, pred, average="macro", zero_division=0),
    }
    labels = np.arange(proba.shape[1])
    if len(np.unique(y)) == proba.shape[1]:
        report["roc_auc"] = metrics.roc_auc_score(y, proba, multi_class="ovr", labels=labels)
    # float32 softmax rows sum to 1 only up to rounding; scikit-learn warns on that.
    proba = np.clip(proba, 1e-7, 1)
    report["log_loss"] = metrics.log_loss(y, proba / proba.sum(axis=1, keepdims=True), labels=labels)
    return report


def _multilabel_report(y, proba, threshold=0.5):
    from sklearn import metrics

    pred = (proba >= threshold).astype(int)
    y = y.astype(int)
    report = {
        "subset_accuracy": metrics.accuracy_score(y, pred),
        "hamming_loss": metrics.hamming_loss(y, pred),
        "precision": metrics.precision_score(y, pred, average="micro", zero_division=0),
        "recall": metrics.recall_score(y, pred, average="micro", zero_division=0),
        "f1": metrics.f1_score(y, pred, average="micro", zero_division=0),
        "f1_macro": metrics.f1_score(y, pred, average="macro", zero_division=0),
    }
    usable = [j for j in range(y.shape[1]) if len(np.unique(y[:, j])) == 2]
    if usable:
        report["roc_auc"] = metrics.roc_auc_score(y[:, usable], proba[:, usable], average="macro")
    return report


def _regression_report(y, pred):
    from sklearn import metrics

    y = y.reshape(len(y), -1)
    pred = pred.reshape(len(pred), -1)
    mse = metrics.mean_squared_error(y, pred)
    return {
        "mse": mse,
        "rmse": math.sqrt(mse),
        "mae": metrics.mean_absolute_error(y, pred),
        "r2": metrics.r2_score(y, pred) if len(y) > 1 else float("nan"),
    }


def metrics_report(spec, y, predictions, threshold=0.5):
    """Held-out metrics for predictions, computed with scikit-learn.

    Classification: accuracy, precision, recall, F1 (macro for multiclass,
    micro for multilabel), ROC-AUC where defined, log loss. Regression: MSE,
    RMSE, MAE, R².
    """
    y = validate_labels(spec, y)
    predictions = np.asarray(predictions, dtype=np.float64)
    if spec.task == "binary":
        report = _binary_report(y.astype(int), predictions, threshold)
    elif spec.task == "multiclass":
        report = _multiclass_report(class_indices(spec, y), predictions)
    elif spec.task == "multilabel":
        report = _multilabel_report(y, predictions, threshold)
    else:
        report = _regression_report(y, predictions)
    report = {k: float(v) for k, v in report.items()}
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

    >>> report = kerakit.evaluate(model, x_test, y_test, spec)
    >>> report["accuracy"], report["f1"]
    """
    spec = spec or spec_of(model)
    if spec is None:
        raise ConfigError(
            "evaluate needs the problem spec for a model not built by kerakit: pass spec=... ."
        )
    x, _ = prepare(model, x, None, spec)
    _check_same_rows(x, y)
    return metrics_report(spec, y, predict(model, x, batch_size), threshold)
