"""`KerasRegressor`: a kerakit network as a scikit-learn regressor."""

import numpy as np
from sklearn.base import RegressorMixin
from sklearn.utils.multiclass import type_of_target

from kerakit.errors import DataError, SpecError
from kerakit.sklearn._base import BaseKerasEstimator
from kerakit.spec import ProblemSpec, validate_labels


class KerasRegressor(RegressorMixin, BaseKerasEstimator):
    """A kerakit network as a scikit-learn regressor.

    One output per target column: `y` of shape (n,) gives predictions of
    shape (n,), `y` of shape (n, m) gives (n, m). The spec is
    `ProblemSpec(task="regression", num_targets=m)` (linear output, mean
    squared error) unless `spec` is given, e.g. with `robust=True` for the
    Huber loss.

    Args:
        model: None (default) for kerakit's network; a build function
            (called with `meta`, `compile_kwargs` and the `model__`
            parameters it names) or a `keras.Model` (cloned at each fit).
            See `KerasClassifier`.
        spec: a `kerakit.ProblemSpec`, or None (default) to infer it from `y`
            at each `fit`.
        body: a registered body name, or a `build(spec, hp)` callable.
            Defaults to "mlp".
        units, dropout, l1, l2, batchnorm: options of the "mlp" body; None
            (default) keeps `build_model`'s default (units=(128, 64),
            dropout=0.2, l1=0, l2=1e-4, no batch norm).
        optimizer: "adam", "adamw", "rmsprop", "sgd", "adagrad", "auto"
            (Adam), a Keras optimizer class, or a Keras optimizer (copied at
            each fit). Defaults to "auto".
        learning_rate: a float, or "auto" for the optimizer's usual rate.
        loss: "auto" for the spec's loss, or a Keras loss name, class or object.
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
        callbacks: Keras callbacks (instances copied, classes built, each
            fit). Defaults to None.
        warm_start: when True, a later `fit` continues training the fitted
            network. Defaults to False.
        seed: makes fits reproducible (weights, shuffling, the validation
            split, deterministic TensorFlow ops). Defaults to None.
        random_state: scikit-learn's name for the seed (an integer, a
            `numpy.random.RandomState` or None), as in `KerasClassifier`.
        verbose: Keras's progress output (0, 1 or 2). Defaults to 0.
        **kwargs: routed parameters and build-function arguments, as in
            `KerasClassifier`.

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

    def _fit_regressor(self, X, y, sample_weight, overrides, warm, partial=False):
        seed = self._check_params()
        X, y = self._validate(X, y, reset=not warm, multi_output=True, y_numeric=True)
        sample_weight = self._sample_weight(sample_weight, X)
        width = 1 if y.ndim == 1 else y.shape[1]
        spec = self.spec_ if warm else self.spec
        if spec is None:
            spec = ProblemSpec(task="regression", num_targets=width)
        elif spec.task != "regression":
            raise SpecError(
                f"KerasRegressor needs a regression spec. Received: task={spec.task!r}. Use "
                f"KerasClassifier for classes, or ProblemSpec(task='regression', "
                f"num_targets={width})."
            )
        if warm and spec.num_outputs != width:
            raise DataError(
                f"y has {width} target columns, but the fitted network predicts "
                f"{spec.num_outputs}. Pass targets like the first fit's, or set warm_start=False."
            )
        targets = validate_labels(spec, np.asarray(y, dtype=np.float32))
        self._target_ndim = y.ndim
        meta = self._meta(X, y, spec, type_of_target(y))
        return self._train(X, targets, spec, sample_weight, None, meta, overrides, warm, seed, partial)

    def fit(self, X, y, sample_weight=None, **kwargs):
        """Trains on `(X, y)`: a fresh network, or the fitted one with `warm_start=True`; returns `self`.

        Args:
            X: features, shape (n_samples, n_features): an array, a DataFrame
                or a SciPy sparse matrix (densified a block of rows at a time).
            y: targets, shape (n_samples,) or (n_samples, n_targets).
            sample_weight: optional non-negative weight per row.
            **kwargs: this fit's `epochs`, `batch_size`, `verbose`,
                `validation_split` or `patience`, or kerakit.fit's `shuffle`,
                `steps_per_execution`, `engine`.
        """
        warm = bool(self.warm_start) and hasattr(self, "model_")
        return self._fit_regressor(X, y, sample_weight, kwargs, warm)

    def partial_fit(self, X, y, sample_weight=None):
        """Trains one epoch on `(X, y)`, continuing the fitted network; returns `self`."""
        return self._fit_regressor(X, y, sample_weight, {}, warm=hasattr(self, "model_"), partial=True)

    def predict(self, X):
        """Predicted targets, shape (n_samples,) or (n_samples, n_targets) like `y` in fit."""
        out = self._forward(X)
        return out.reshape(len(out)) if self._target_ndim == 1 else out
