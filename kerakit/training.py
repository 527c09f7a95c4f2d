"""`fit`, `evaluate` and `predict`: validated training on the engine that suits the backend.

`fit` means what `model.fit` means — same arguments, same History — but
checks the options and the data first, then hands validated arrays to one
training engine, chosen once (`kerakit.engines`): a cached `tf.data`
pipeline with several steps per call on TensorFlow, device-resident jitted
epochs on JAX, device-resident tensors on PyTorch, or a `tf.distribute`
strategy. `evaluate` computes held-out metrics with scikit-learn.
"""

import math
import sys

import numpy as np

from kerakit import backend, checks, engines
from kerakit.backend import set_random_seed
from kerakit.checks import class_weights, prepare, validate_features
from kerakit.errors import ConfigError, DataError
from kerakit.metadata import spec_of
from kerakit.spec import class_indices, validate_labels

__all__ = ["class_weights", "evaluate", "fit", "metrics_report", "predict", "prepare", "set_seed",
           "validate_features"]


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
    checks.check_fit_arguments(batch_size=batch_size, epochs=epochs, validation_data=validation_data,
                               sample_weight=sample_weight, class_weight=class_weight,
                               initial_epoch=initial_epoch)
    name = engines.choose(model, x, strategy=strategy, engine=engine)
    spec = spec or spec_of(model)
    if seed is not None:
        set_seed(seed)
    options = engines.FitOptions(
        batch_size=int(batch_size), epochs=int(epochs), initial_epoch=int(initial_epoch),
        verbose=resolve_verbose(verbose), callbacks=list(callbacks or []), shuffle=bool(shuffle),
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


# Evaluation -----------------------------------------------------------------


def predict(model, x, batch_size=256):
    """Predicts with a validated input and a large batch (fast for small models)."""
    if not isinstance(x, dict):
        x, _ = prepare(model, x)  # numbers, or texts for a text model
    x, batch_size, rows = engines.pad_to_devices(x, batch_size)  # under keras.distribution
    if not isinstance(x, dict) and x.dtype == object:
        # texts (TensorFlow only): Keras's array adapter takes no strings
        import tensorflow as tf

        x = tf.constant(x)
    return np.asarray(model.predict(x, batch_size=batch_size, verbose=0))[:rows]


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

    ```python
    report = kerakit.evaluate(model, x_test, y_test, spec)
    report["accuracy"], report["f1"]
    ```
    """
    spec = spec or spec_of(model)
    if spec is None:
        raise ConfigError(
            "evaluate needs the problem spec for a model not built by kerakit: pass spec=... ."
        )
    x, _ = prepare(model, x, None, spec)
    checks.check_same_rows(x, y)
    return metrics_report(spec, y, predict(model, x, batch_size), threshold)
