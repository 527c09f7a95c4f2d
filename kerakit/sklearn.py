"""scikit-learn estimators: kerakit models inside `Pipeline`, `GridSearchCV` and friends.

`KerasClassifier` and `KerasRegressor` wrap `build_model` + `fit` in the
scikit-learn estimator API, so a kerakit network can sit at the end of a
`Pipeline`, be tuned by `GridSearchCV` / `RandomizedSearchCV`, give
out-of-fold predictions with `cross_val_predict`, be `clone`d and pickled.
They pass scikit-learn's own estimator checks (see `tests/test_sklearn_checks.py`).

Every constructor argument is a plain value stored as given (scikit-learn's
rule): `build_model`'s options, the training options, and an optional
`ProblemSpec`. Learned state ends in `_`: `model_` (a plain `keras.Model`),
`history_`, `spec_`, `classes_`, `n_features_in_`, `feature_names_in_`.
"""

import math
import os
import tempfile
from types import MappingProxyType

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.model_selection import train_test_split
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from kerakit.errors import ConfigError, DataError, LabelError, RunError, SpecError
from kerakit.metadata import attach_spec
from kerakit.spec import ProblemSpec, validate_labels

# Rows per direct model call in predict. Calling the model eagerly skips
# tracing a predict function for every fitted model, which is most of the
# cost on the small inputs that cross-validation and scoring pass. Every call
# gets exactly this many rows (the last chunk is padded): float32 matrix
# products round differently for different batch sizes, and a fixed shape
# makes each row's prediction independent of what it is predicted with.
PREDICT_BATCH = 256

# build_model's options, in the order the estimators take them.
_MODEL_OPTIONS = ("body", "units", "dropout", "l1", "l2", "batchnorm", "optimizer",
                  "learning_rate", "loss", "metrics")


def _check_int(name, value, minimum, allow_none=False):
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        none = " or None" if allow_none else ""
        raise ConfigError(f"`{name}` must be an integer >= {minimum}{none}. Received: {name}={value!r}")


def _model_to_bytes(model):
    """Serialises a model to the bytes of a `.keras` file."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.keras")
        model.save(path)
        with open(path, "rb") as handle:
            return handle.read()


def _model_from_bytes(data):
    """Loads a model from `.keras` bytes, refusing Lambda code (safe_mode=True)."""
    import keras

    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.keras")
        with open(path, "wb") as handle:
            handle.write(data)
        try:
            return keras.saving.load_model(path, safe_mode=True)
        except ValueError as error:
            if "safe_mode" not in str(error) and "unsafe" not in str(error):
                raise
            raise RunError(
                "The pickled estimator's model contains Python code (such as a Lambda layer), "
                "which kerakit refuses to unpickle because loading would run it. Build the body "
                "from layers registered with keras.saving.register_keras_serializable instead "
                f"of Lambda. Keras said: {error}"
            ) from None


# scikit-learn's estimator checks that a network trained by minibatch
# gradient descent cannot pass, each with the reason (see
# `expected_failed_checks`).
EXPECTED_FAILED_CHECKS = MappingProxyType(
    {
        "check_sample_weight_equivalence_on_dense_data": (
            "minibatch training on rows repeated k times takes other gradient steps "
            "(more batches per epoch, another shuffle, a loss averaged over more rows) "
            "than on the same rows weighted k, so the two networks differ"
        ),
    }
)


def expected_failed_checks(estimator):
    """Returns {check name: reason} for the scikit-learn checks `estimator` cannot pass.

    Pass it to scikit-learn's own runners, which then mark those checks as
    expected failures instead of skipping anything else.

    Example:

    ```python
    from sklearn.utils.estimator_checks import parametrize_with_checks

    @parametrize_with_checks([KerasClassifier(seed=0)],
                             expected_failed_checks=expected_failed_checks)
    def test_sklearn_compatible(estimator, check):
        check(estimator)
    ```
    """
    if not isinstance(estimator, _KerasEstimator):
        raise ConfigError(
            f"expected_failed_checks describes KerasClassifier and KerasRegressor. "
            f"Received: {type(estimator).__name__}"
        )
    return dict(EXPECTED_FAILED_CHECKS)


class _KerasEstimator(BaseEstimator):
    """Shared fit / predict / pickling of `KerasClassifier` and `KerasRegressor`."""

    def __init__(
        self,
        *,
        spec=None,
        body="mlp",
        units=None,
        dropout=None,
        l1=None,
        l2=None,
        batchnorm=None,
        optimizer="auto",
        learning_rate="auto",
        loss="auto",
        metrics=None,
        body_options=None,
        epochs=100,
        batch_size=32,
        validation_split=0.1,
        patience=10,
        seed=None,
        verbose=0,
    ):
        self.spec = spec
        self.body = body
        self.units = units
        self.dropout = dropout
        self.l1 = l1
        self.l2 = l2
        self.batchnorm = batchnorm
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.loss = loss
        self.metrics = metrics
        self.body_options = body_options
        self.epochs = epochs
        self.batch_size = batch_size
        self.validation_split = validation_split
        self.patience = patience
        self.seed = seed
        self.verbose = verbose

    # Tags ------------------------------------------------------------------

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # Without a seed, weight initialisation, dropout and shuffling differ
        # from one fit to the next; with one, two fits are identical.
        tags.non_deterministic = self.seed is None
        return tags

    # Fitting ---------------------------------------------------------------

    def _check_params(self):
        _check_int("epochs", self.epochs, 1)
        _check_int("batch_size", self.batch_size, 1)
        _check_int("patience", self.patience, 0, allow_none=True)
        if self.seed is not None:
            _check_int("seed", self.seed, 0)
        split = self.validation_split
        if isinstance(split, bool) or not isinstance(split, (int, float)) or not 0 <= split < 1:
            raise ConfigError(
                f"`validation_split` must be a fraction in [0, 1) (0 trains on every row). "
                f"Received: validation_split={split!r}"
            )
        if self.spec is not None and not isinstance(self.spec, ProblemSpec):
            raise ConfigError(
                f"`spec` must be a kerakit.ProblemSpec or None (inferred from y). "
                f"Received: spec={self.spec!r}"
            )
        if self.body_options is not None and not isinstance(self.body_options, dict):
            raise ConfigError(
                f"`body_options` must be a dict of the body's options or None. "
                f"Received: body_options={self.body_options!r}"
            )

    def _split(self, n_samples, stratify):
        """Indices of the training and validation rows (a seeded, shuffled split)."""
        index = np.arange(n_samples)
        if not self.validation_split:
            return index, None
        n_val = math.ceil(self.validation_split * n_samples)
        if n_samples - n_val < 1:
            raise DataError(
                f"validation_split={self.validation_split} leaves no rows to train on with "
                f"n_samples={n_samples}. Pass more rows or validation_split=0."
            )
        if stratify is not None:
            counts = np.bincount(stratify)
            counts = counts[counts > 0]
            # Stratifying needs two rows of each class and a validation slice
            # with room for every class; otherwise split at random.
            if counts.min() < 2 or n_val < len(counts) or n_samples - n_val < len(counts):
                stratify = None
        return train_test_split(index, test_size=n_val, random_state=self.seed, stratify=stratify)

    def _fit_keras(self, X, y, spec, sample_weight, stratify):
        import kerakit

        train, val = self._split(len(X), stratify)
        weights = None if sample_weight is None else sample_weight[train]
        validation_data = None if val is None else (X[val], y[val])
        options = {name: getattr(self, name) for name in _MODEL_OPTIONS}
        if not isinstance(self.optimizer, (str, type(None))):
            # An optimizer object trains one model only; each fit gets a fresh copy.
            optimizer = self.optimizer
            options["optimizer"] = type(optimizer).from_config(optimizer.get_config())
        model = kerakit.build_model(
            spec, input_shape=(X.shape[1],), seed=self.seed, **options, **(self.body_options or {})
        )
        callbacks = kerakit.default_callbacks(
            spec, patience=self.patience, monitor="val_loss" if val is not None else "loss"
        )
        history = kerakit.fit(
            model, X[train], y[train], sample_weight=weights, validation_data=validation_data,
            epochs=self.epochs, batch_size=self.batch_size, callbacks=callbacks,
            verbose=self.verbose, seed=self.seed, spec=spec,
        )
        self.model_ = model
        self.spec_ = spec
        self.history_ = {key: [float(v) for v in values] for key, values in history.history.items()}
        return self

    def _sample_weight(self, sample_weight, X):
        if sample_weight is None:
            return None
        return _check_sample_weight(sample_weight, X, dtype=np.float32, ensure_non_negative=True)

    # Prediction ------------------------------------------------------------

    def _forward(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float32)
        outputs = []
        for start in range(0, len(X), PREDICT_BATCH):
            batch = X[start:start + PREDICT_BATCH]
            rows = len(batch)
            if rows < PREDICT_BATCH:
                padding = np.zeros((PREDICT_BATCH - rows,) + X.shape[1:], np.float32)
                batch = np.concatenate([batch, padding])
            outputs.append(np.asarray(self.model_(batch, training=False))[:rows])
        return np.concatenate(outputs).astype(np.float64)

    # Pickling --------------------------------------------------------------

    def __getstate__(self):
        state = super().__getstate__()
        state = dict(state)
        model = state.pop("model_", None)
        if model is not None:
            state["_model_keras_bytes"] = _model_to_bytes(model)
        return state

    def __setstate__(self, state):
        state = dict(state)
        data = state.pop("_model_keras_bytes", None)
        super().__setstate__(state)
        if data is not None:
            self.model_ = attach_spec(_model_from_bytes(data), self.spec_)


class KerasClassifier(ClassifierMixin, _KerasEstimator):
    """A kerakit network as a scikit-learn classifier.

    Binary and multiclass labels of any type (integers, strings, -1/1...)
    are mapped to class indices; `classes_` holds the original labels and
    `predict` returns them. The problem spec (sigmoid + binary cross-entropy
    for two classes, softmax + sparse categorical cross-entropy for more) is
    inferred from `y` unless `spec` is given, which fixes the classes even
    when a fold lacks some of them.

    Args:
        spec: a `kerakit.ProblemSpec`, or None (default) to infer it from `y`
            at each `fit`.
        body: a registered body name, or a `build(spec, hp)` callable.
            Defaults to "mlp".
        units, dropout, l1, l2, batchnorm: options of the "mlp" body; None
            (default) keeps `build_model`'s default (units=(128, 64),
            dropout=0.2, l1=0, l2=1e-4, no batch norm).
        optimizer: "adam", "adamw", "rmsprop", "sgd", "adagrad", "auto"
            (Adam), or a Keras optimizer (copied at each fit). Defaults to
            "auto".
        learning_rate: a float, or "auto" for the optimizer's usual rate.
        loss: "auto" for the spec's loss, or a Keras loss name.
        metrics: Keras metrics logged in `history_`; "auto" for the spec's.
            Defaults to None (loss only: scikit-learn's scorers measure the
            model, and compiled metrics slow every epoch).
        body_options: dict of options of a custom body (e.g.
            `{"activation": "gelu"}` for "mlp"). Defaults to None.
        epochs: most passes over the training rows. Defaults to 100.
        batch_size: rows per step. Defaults to 32.
        validation_split: fraction of the rows held out, shuffled with
            `seed` and stratified by class, to watch for early stopping.
            0 trains on every row and early stopping watches the training
            loss. Defaults to 0.1.
        patience: epochs without improvement before training stops and the
            best weights are restored; None trains every epoch. Defaults to 10.
        seed: makes fits reproducible (weights, shuffling, the validation
            split, deterministic TensorFlow ops). Defaults to None.
        verbose: Keras's progress output (0, 1 or 2). Defaults to 0.
        class_weight: "balanced" or a dict {label: weight}, applied as
            per-row weights. Defaults to None.

    Example:

    ```python
    from sklearn.model_selection import GridSearchCV
    from kerakit.sklearn import KerasClassifier

    search = GridSearchCV(KerasClassifier(epochs=20, seed=0),
                          {"units": [(32,), (64, 32)], "learning_rate": [1e-3, 1e-2]}, cv=3)
    search.fit(x, y)
    search.best_estimator_.predict(x_test)
    ```
    """

    def __init__(
        self,
        *,
        spec=None,
        body="mlp",
        units=None,
        dropout=None,
        l1=None,
        l2=None,
        batchnorm=None,
        optimizer="auto",
        learning_rate="auto",
        loss="auto",
        metrics=None,
        body_options=None,
        epochs=100,
        batch_size=32,
        validation_split=0.1,
        patience=10,
        seed=None,
        verbose=0,
        class_weight=None,
    ):
        super().__init__(
            spec=spec, body=body, units=units, dropout=dropout, l1=l1, l2=l2,
            batchnorm=batchnorm, optimizer=optimizer, learning_rate=learning_rate, loss=loss,
            metrics=metrics, body_options=body_options, epochs=epochs, batch_size=batch_size,
            validation_split=validation_split, patience=patience, seed=seed, verbose=verbose,
        )
        self.class_weight = class_weight

    def _classes_and_spec(self, y):
        """Returns (classes_, class indices of y, spec)."""
        spec = self.spec
        if spec is None:
            classes, encoded = np.unique(y, return_inverse=True)
            if len(classes) < 2:
                raise LabelError(
                    f"KerasClassifier needs at least 2 classes; y has one class only "
                    f"({classes[0]!r}). Check that the data was not filtered to one class."
                )
            names = tuple(classes.tolist())
            spec = (ProblemSpec(task="binary", class_names=names) if len(classes) == 2
                    else ProblemSpec(task="multiclass", num_classes=len(classes), class_names=names))
            return classes, encoded, spec
        if spec.task not in ("binary", "multiclass") or spec.label_format != "sparse":
            raise SpecError(
                f"KerasClassifier takes one label per row: a binary or a sparse multiclass spec. "
                f"Received: task={spec.task!r}, label_format={spec.label_format!r}. Pass class "
                f"labels (not one-hot rows or probabilities), or use kerakit.build_model directly."
            )
        classes = np.asarray(spec.class_names if spec.class_names else range(spec.num_outputs if
                             spec.task == "multiclass" else 2))
        index = {label: i for i, label in enumerate(classes.tolist())}
        unknown = sorted({label for label in y.tolist() if label not in index}, key=str)
        if unknown:
            raise LabelError(
                f"Labels {unknown[:5]!r} are not among the spec's classes {classes.tolist()!r}. "
                f"Fix the labels, or pass a spec with these classes (or spec=None to infer it)."
            )
        encoded = np.array([index[label] for label in y.tolist()], dtype=np.int64)
        return classes, encoded, spec

    def fit(self, X, y, sample_weight=None):
        """Builds and trains a fresh network on `(X, y)`; returns `self`.

        Args:
            X: features, shape (n_samples, n_features): an array or DataFrame.
            y: class labels, shape (n_samples,).
            sample_weight: optional non-negative weight per row.
        """
        self._check_params()
        X, y = validate_data(self, X, y, dtype=np.float32)
        check_classification_targets(y)
        sample_weight = self._sample_weight(sample_weight, X)
        classes, encoded, spec = self._classes_and_spec(y)
        if self.class_weight is not None:
            # Weights keyed by the original labels, as scikit-learn's classifiers take them.
            by_class = compute_sample_weight(self.class_weight, y).astype(np.float32)
            sample_weight = by_class if sample_weight is None else sample_weight * by_class
        labels = validate_labels(spec, encoded)
        self.classes_ = classes
        return self._fit_keras(X, labels, spec, sample_weight, stratify=encoded)

    def predict_proba(self, X):
        """Class probabilities, shape (n_samples, n_classes), columns in `classes_` order."""
        out = self._forward(X)
        if self.spec_.task == "binary":
            positive = out.reshape(len(out))
            return np.column_stack([1.0 - positive, positive])
        return out / out.sum(axis=1, keepdims=True)

    def predict(self, X):
        """The most probable class of each row, as one of `classes_`."""
        proba = self.predict_proba(X)
        return self.classes_[proba.argmax(axis=1)]


class KerasRegressor(RegressorMixin, _KerasEstimator):
    """A kerakit network as a scikit-learn regressor.

    One output per target column: `y` of shape (n,) gives predictions of
    shape (n,), `y` of shape (n, m) gives (n, m). The spec is
    `ProblemSpec(task="regression", num_targets=m)` (linear output, mean
    squared error) unless `spec` is given, e.g. with `robust=True` for the
    Huber loss.

    Args:
        spec: a `kerakit.ProblemSpec`, or None (default) to infer it from `y`
            at each `fit`.
        body: a registered body name, or a `build(spec, hp)` callable.
            Defaults to "mlp".
        units, dropout, l1, l2, batchnorm: options of the "mlp" body; None
            (default) keeps `build_model`'s default (units=(128, 64),
            dropout=0.2, l1=0, l2=1e-4, no batch norm).
        optimizer: "adam", "adamw", "rmsprop", "sgd", "adagrad", "auto"
            (Adam), or a Keras optimizer (copied at each fit). Defaults to
            "auto".
        learning_rate: a float, or "auto" for the optimizer's usual rate.
        loss: "auto" for the spec's loss, or a Keras loss name.
        metrics: Keras metrics logged in `history_`; "auto" for the spec's.
            Defaults to None (loss only: scikit-learn's scorers measure the
            model, and compiled metrics slow every epoch).
        body_options: dict of options of a custom body (e.g.
            `{"activation": "gelu"}` for "mlp"). Defaults to None.
        epochs: most passes over the training rows. Defaults to 100.
        batch_size: rows per step. Defaults to 32.
        validation_split: fraction of the rows held out, shuffled with
            `seed`, to watch for early stopping. 0 trains on every row and
            early stopping watches the training loss. Defaults to 0.1.
        patience: epochs without improvement before training stops and the
            best weights are restored; None trains every epoch. Defaults to 10.
        seed: makes fits reproducible (weights, shuffling, the validation
            split, deterministic TensorFlow ops). Defaults to None.
        verbose: Keras's progress output (0, 1 or 2). Defaults to 0.

    Example:

    ```python
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from kerakit.sklearn import KerasRegressor

    model = make_pipeline(StandardScaler(), KerasRegressor(units=(64,), epochs=50, seed=0))
    model.fit(x, y).score(x_test, y_test)   # R²
    ```
    """

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True  # one linear output per target column
        return tags

    def fit(self, X, y, sample_weight=None):
        """Builds and trains a fresh network on `(X, y)`; returns `self`.

        Args:
            X: features, shape (n_samples, n_features): an array or DataFrame.
            y: targets, shape (n_samples,) or (n_samples, n_targets).
            sample_weight: optional non-negative weight per row.
        """
        self._check_params()
        X, y = validate_data(self, X, y, dtype=np.float32, multi_output=True, y_numeric=True)
        sample_weight = self._sample_weight(sample_weight, X)
        width = 1 if y.ndim == 1 else y.shape[1]
        spec = self.spec
        if spec is None:
            spec = ProblemSpec(task="regression", num_targets=width)
        elif spec.task != "regression":
            raise SpecError(
                f"KerasRegressor needs a regression spec. Received: task={spec.task!r}. Use "
                f"KerasClassifier for classes, or ProblemSpec(task='regression', "
                f"num_targets={width})."
            )
        targets = validate_labels(spec, np.asarray(y, dtype=np.float32))
        self._target_ndim = y.ndim
        return self._fit_keras(X, targets, spec, sample_weight, stratify=None)

    def predict(self, X):
        """Predicted targets, shape (n_samples,) or (n_samples, n_targets) like `y` in fit."""
        out = self._forward(X)
        return out.reshape(len(out)) if self._target_ndim == 1 else out

