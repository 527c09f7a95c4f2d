"""`KerasClassifier`: a kerakit network as a scikit-learn classifier."""

import warnings

import numpy as np
from scipy import sparse
from sklearn.base import ClassifierMixin
from sklearn.exceptions import DataConversionWarning
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.multiclass import check_classification_targets, type_of_target

from kerakit.errors import ConfigError, LabelError, SpecError
from kerakit.sklearn._base import BaseKerasEstimator
from kerakit.spec import ProblemSpec, validate_labels


class KerasClassifier(ClassifierMixin, BaseKerasEstimator):
    """A kerakit network as a scikit-learn classifier.

    Binary and multiclass labels of any type (integers, strings, -1/1...)
    are mapped to class indices; `classes_` holds the original labels and
    `predict` returns them. A 0/1 label matrix of shape (n, k) is a
    multilabel problem (k independent sigmoid outputs): `classes_` is
    `arange(k)`, `predict_proba` gives one probability per label, shape
    (n, k), and `predict` a 0/1 matrix, as scikit-learn's `MLPClassifier`
    does. The problem spec (sigmoid + binary cross-entropy for two classes,
    softmax + sparse categorical cross-entropy for more) is inferred from `y`
    unless `spec` is given, which fixes the classes even when a fold lacks
    some of them.

    Args:
        model: None (default) for kerakit's network for the spec (`body`,
            `units`, ...); a build function returning a `keras.Model`, called
            at each fit with `meta` (a dict of `n_features_in_`,
            `n_classes_`, `classes_`, `target_type_`, `spec`, ...) when it
            has a `meta` argument, `compile_kwargs` when it has that one, and
            the `model__` parameters; or a `keras.Model`, cloned (new
            weights) at each fit and compiled like the original. A network
            returned uncompiled is compiled with `optimizer`, `loss`,
            `metrics` and the `compile__` parameters.
        spec: a `kerakit.ProblemSpec`, or None (default) to infer it from `y`
            at each `fit`.
        body: a registered body name, or a `build(spec, hp)` callable.
            Defaults to "mlp".
        units, dropout, l1, l2, batchnorm: options of the "mlp" body; None
            (default) keeps `build_model`'s default (units=(128, 64),
            dropout=0.2, l1=0, l2=1e-4, no batch norm).
        optimizer: "adam", "adamw", "rmsprop", "sgd", "adagrad", "auto"
            (Adam), a Keras optimizer class, or a Keras optimizer (copied at
            each fit). `optimizer__momentum=...` and the like set its options.
            Defaults to "auto".
        learning_rate: a float, or "auto" for the optimizer's usual rate.
        loss: "auto" for the spec's loss, or a Keras loss name, class or
            object; `loss__from_logits=...` and the like set its options.
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
        callbacks: Keras callbacks added to kerakit's early stopping: instances
            (a fresh copy each fit) or classes (built each fit with the
            `callbacks__` parameters; `callbacks__0__...` for the first
            only). Defaults to None.
        warm_start: when True, a later `fit` continues training the fitted
            network (same features and classes) instead of building a new
            one. Defaults to False.
        seed: makes fits reproducible (weights, shuffling, the validation
            split, deterministic TensorFlow ops). Defaults to None.
        random_state: scikit-learn's (and SciKeras's) name for the seed: an
            integer, a `numpy.random.RandomState` (each fit draws a fresh
            seed from it) or None. Pass `seed` or `random_state`, not two
            different values. Defaults to None.
        verbose: Keras's progress output (0, 1 or 2). Defaults to 0.
        class_weight: "balanced" or a dict {label: weight}, applied as
            per-row weights. Defaults to None.
        **kwargs: routed parameters (`model__`, `fit__`, `compile__`,
            `optimizer__`, `loss__`, `callbacks__`, `predict__`; see
            `ROUTING_PREFIXES`), and arguments of the build function. They
            are parameters like any other: `get_params`, `set_params`,
            `GridSearchCV` and `clone` see them.

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
        model=None,
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
        callbacks=None,
        warm_start=False,
        seed=None,
        random_state=None,
        verbose=0,
        class_weight=None,
        **kwargs,
    ):
        super().__init__(
            model, spec=spec, body=body, units=units, dropout=dropout, l1=l1, l2=l2,
            batchnorm=batchnorm, optimizer=optimizer, learning_rate=learning_rate, loss=loss,
            metrics=metrics, body_options=body_options, epochs=epochs, batch_size=batch_size,
            validation_split=validation_split, patience=patience, callbacks=callbacks,
            warm_start=warm_start, seed=seed, random_state=random_state, verbose=verbose,
            **kwargs,
        )
        self.class_weight = class_weight

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True  # a 0/1 label matrix: one sigmoid per label
        return tags

    def _spec_from_classes(self, classes):
        names = tuple(classes.tolist())
        if len(classes) == 2:
            return ProblemSpec(task="binary", class_names=names)
        return ProblemSpec(task="multiclass", num_classes=len(classes), class_names=names)

    @staticmethod
    def _encode(y, classes, source="the fitted"):
        index = {label: i for i, label in enumerate(classes.tolist())}
        unknown = sorted({label for label in y.tolist() if label not in index}, key=str)
        if unknown:
            raise LabelError(
                f"Labels {unknown[:5]!r} are not among {source} classes {classes.tolist()!r}. "
                f"Fix the labels, or pass a spec (or partial_fit classes) with these classes "
                f"(or spec=None to infer them)."
            )
        return np.array([index[label] for label in y.tolist()], dtype=np.int64)

    def _multilabel_spec(self, y):
        width = y.shape[1]
        spec = self.spec
        if spec is None:
            return ProblemSpec(task="multilabel", num_labels=width)
        if spec.task != "multilabel" or spec.num_outputs != width:
            raise SpecError(
                f"y is a 0/1 matrix of {width} labels (multilabel), but the spec says "
                f"task={spec.task!r} with {spec.num_outputs} outputs. Pass "
                f"ProblemSpec(task='multilabel', num_labels={width}), or spec=None."
            )
        return spec

    def _classes_and_spec(self, y, classes=None):
        """Returns (classes_, class indices of y, spec) for one label per row."""
        spec = self.spec
        if spec is None:
            if classes is not None:
                classes = np.unique(np.asarray(classes))
                encoded = self._encode(y, classes, "partial_fit's")
            else:
                classes, encoded = np.unique(y, return_inverse=True)
            if len(classes) < 2:
                raise LabelError(
                    f"KerasClassifier needs at least 2 classes; y has one class only "
                    f"({classes[0]!r}). Check that the data was not filtered to one class."
                )
            return classes, encoded, self._spec_from_classes(classes)
        if spec.task not in ("binary", "multiclass") or spec.label_format != "sparse":
            raise SpecError(
                f"KerasClassifier takes one label per row (a binary or a sparse multiclass spec) "
                f"or a 0/1 label matrix (a multilabel spec). Received: task={spec.task!r}, "
                f"label_format={spec.label_format!r}. Pass class labels (not one-hot rows or "
                f"probabilities), or use kerakit.build_model directly."
            )
        classes = np.asarray(spec.class_names if spec.class_names else range(spec.num_outputs if
                             spec.task == "multiclass" else 2))
        return classes, self._encode(y, classes, "the spec's"), spec

    def _targets(self, y):
        """y as a NumPy array: 1-D labels or a dense multilabel matrix; its target type."""
        if sparse.issparse(y):
            y = y.toarray()
        if y.dtype == object:
            missing = np.flatnonzero(np.equal(y, None).reshape(len(y), -1).any(axis=1))
            if missing.size:
                raise LabelError(
                    f"y holds None (a missing label) in {missing.size} row(s), first at rows "
                    f"{missing[:5].tolist()}. Drop those rows, or give them a label of their own "
                    f"(such as the string 'missing'). Received: y[{missing[0]}]=None"
                )
        if y.ndim == 2 and y.shape[1] == 1:
            warnings.warn(
                "A column-vector y was passed when a 1d array was expected. Please change the "
                "shape of y to (n_samples,), for example using ravel().",
                DataConversionWarning, stacklevel=3,
            )
            y = y.ravel()
        check_classification_targets(y)
        target_type = type_of_target(y)
        if target_type == "multiclass-multioutput":
            raise LabelError(
                f"y has {y.shape[1]} columns of several classes each (multiclass-multioutput), "
                f"which KerasClassifier does not take. Pass one label per row, or a 0/1 matrix "
                f"(multilabel), or wrap it in sklearn.multioutput.MultiOutputClassifier."
            )
        return y, target_type

    def _fit_classifier(self, X, y, sample_weight, overrides, warm, classes=None, partial=False):
        seed = self._check_params()
        X, y = self._validate(X, y, reset=not warm, multi_output=True)
        y, target_type = self._targets(y)
        sample_weight = self._sample_weight(sample_weight, X)
        stratify = None
        if target_type == "multilabel-indicator":
            if warm and (self.spec_.task != "multilabel" or y.shape[1] != len(self.classes_)):
                raise LabelError(
                    f"y is a matrix of {y.shape[1]} labels, but the fitted network predicts "
                    f"{self.spec_.task} over {len(self.classes_)} classes. Pass labels like the "
                    f"first fit's, or set warm_start=False."
                )
            spec = self.spec_ if warm else self._multilabel_spec(y)
            classes, encoded = np.arange(y.shape[1]), y.astype(np.int64)
            self._label_dtype = y.dtype
        elif warm:
            if self.spec_.task == "multilabel":
                raise LabelError(
                    f"The fitted network predicts {len(self.classes_)} labels (a 0/1 matrix), "
                    f"but y has one label per row. Pass a 0/1 matrix, or set warm_start=False."
                )
            classes, spec = self.classes_, self.spec_
            encoded = self._encode(y, classes)
            stratify = encoded
        else:
            classes, encoded, spec = self._classes_and_spec(y, classes)
            stratify = encoded
        if self.class_weight is not None:
            # Weights keyed by the original labels, as scikit-learn's classifiers take them.
            by_class = compute_sample_weight(self.class_weight, y).astype(np.float32)
            sample_weight = by_class if sample_weight is None else sample_weight * by_class
        labels = validate_labels(spec, encoded)
        self.classes_ = classes
        meta = self._meta(X, y, spec, target_type)
        return self._train(X, labels, spec, sample_weight, stratify, meta, overrides, warm, seed,
                           partial)

    def fit(self, X, y, sample_weight=None, **kwargs):
        """Trains on `(X, y)`: a fresh network, or the fitted one with `warm_start=True`; returns `self`.

        Args:
            X: features, shape (n_samples, n_features): an array, a DataFrame
                or a SciPy sparse matrix (densified a block of rows at a time).
            y: class labels, shape (n_samples,), or a 0/1 matrix
                (n_samples, n_labels) for multilabel.
            sample_weight: optional non-negative weight per row.
            **kwargs: this fit's `epochs`, `batch_size`, `verbose`,
                `validation_split` or `patience` (instead of the parameters),
                or kerakit.fit's `shuffle`, `steps_per_execution`, `engine`.
        """
        warm = bool(self.warm_start) and hasattr(self, "model_")
        return self._fit_classifier(X, y, sample_weight, kwargs, warm)

    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """Trains one epoch on `(X, y)`, continuing the fitted network; returns `self`.

        Args:
            X: features, as in `fit`.
            y: labels, as in `fit`.
            classes: every class `y` may ever hold; required on the first
                call (as scikit-learn's `partial_fit` asks) unless `y` is a
                multilabel matrix or `spec` names the classes.
            sample_weight: optional non-negative weight per row.
        """
        first = not hasattr(self, "model_")
        y_array = np.asarray(y) if not sparse.issparse(y) else y
        multilabel = y_array.ndim == 2 and y_array.shape[1] > 1
        if first and classes is None and self.spec is None and not multilabel:
            raise LabelError(
                "partial_fit needs `classes` on its first call: every class y may ever hold "
                "(a later batch may have classes the first lacks). Pass classes=np.unique(y_all)."
            )
        if not first and classes is not None and not multilabel:
            if not np.array_equal(np.unique(np.asarray(classes)), self.classes_):
                raise LabelError(
                    f"`classes` changed between partial_fit calls: {np.unique(classes).tolist()!r} "
                    f"after {self.classes_.tolist()!r}. Pass the first call's classes, or None."
                )
        return self._fit_classifier(X, y, sample_weight, {}, warm=not first,
                                    classes=classes, partial=True)

    def predict_proba(self, X):
        """Class probabilities, shape (n_samples, n_classes), columns in `classes_` order.

        For a multilabel fit, one probability per label: shape (n_samples, n_labels).
        """
        out = self._forward(X)
        if self.spec_.task == "multilabel":
            return out
        if out.ndim == 1 or out.shape[1] == 1:
            positive = out.reshape(len(out))
            return np.column_stack([1.0 - positive, positive])
        if out.shape[1] != len(self.classes_):
            raise ConfigError(
                f"The network has {out.shape[1]} outputs for {len(self.classes_)} classes. "
                f"Give it one output per class (softmax), or one sigmoid output for two classes: "
                f"meta['n_classes_'] in the build function."
            )
        return out / out.sum(axis=1, keepdims=True)

    def predict(self, X):
        """The most probable class of each row, as one of `classes_` (a 0/1 matrix for multilabel)."""
        proba = self.predict_proba(X)
        if self.spec_.task == "multilabel":
            return (proba > 0.5).astype(getattr(self, "_label_dtype", np.int64))
        return self.classes_[proba.argmax(axis=1)]


