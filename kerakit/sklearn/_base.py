"""What `KerasClassifier` and `KerasRegressor` share: parameters, fitting, predicting, pickling."""

import math

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.model_selection import train_test_split

# No public scikit-learn function checks sample weights with its own messages
# (shape, finite, "Negative values in data passed to `sample_weight`"), which
# scikit-learn's estimator checks expect; this is the one its estimators call.
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from kerakit import heads
from kerakit.backend import set_random_seed
from kerakit.checks import check_count
from kerakit.errors import ConfigError, DataError, unknown_name
from kerakit.metadata import attach_spec
from kerakit.sklearn._build import (
    build_name,
    call_build_function,
    callbacks_for,
    check_output_width,
    loss_for,
    loss_name,
    optimizer_for,
)
from kerakit.sklearn._data import PREDICT_BATCH, SPARSE_FORMATS, densify, forward
from kerakit.sklearn._params import (
    DEFAULT_COMPILE_OPTIONS,
    FIT_OVERRIDES,
    FIT_PASSTHROUGH,
    MODEL_OPTIONS,
    PREDICT_OPTIONS,
    ROUTING_PREFIXES,
    check_routed,
    check_split,
    resolve_seed,
    routing_prefix,
)
from kerakit.sklearn._saving import model_from_bytes, model_to_bytes
from kerakit.spec import ProblemSpec


def _check_patience(name, value):
    if value is not None:
        check_count(name, value, minimum=0)


class BaseKerasEstimator(BaseEstimator):
    """Shared fit / predict / routing / pickling of `KerasClassifier` and `KerasRegressor`."""

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
        **kwargs,
    ):
        self.model = model
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
        self.callbacks = callbacks
        self.warm_start = warm_start
        self.seed = seed
        self.random_state = random_state
        self.verbose = verbose
        # Routed (`optimizer__momentum`) and build-function parameters, stored
        # as given so that get_params returns exactly what __init__ got (clone).
        vars(self).update(kwargs)

    # Parameters ------------------------------------------------------------

    def _extra_param_names(self):
        """The **kwargs parameters: routed ones and the build function's own."""
        named = set(super()._get_param_names())
        return sorted(k for k in vars(self)
                      if k not in named and not k.startswith("_") and not k.endswith("_"))

    def _get_param_names(self):
        # scikit-learn lists __init__'s named arguments; the **kwargs ones are
        # parameters too (GridSearchCV sets them, clone copies them).
        return sorted(set(super()._get_param_names()) | set(self._extra_param_names()))

    def set_params(self, **params):
        """Sets parameters, routed ones (`optimizer__momentum=0.9`) included; returns `self`.

        A routed name is a parameter of this estimator, not of a nested one,
        even when its prefix is `model`: `model__width` goes to the build
        function.
        """
        plain = {}
        for name, value in params.items():
            if routing_prefix(name) is not None:
                setattr(self, name, value)
            else:
                plain[name] = value
        return super().set_params(**plain) if plain else self

    def _routed(self, prefix):
        """{option: value} of the parameters `prefix__option`."""
        start = prefix + "__"
        return {name[len(start):]: getattr(self, name) for name in self._extra_param_names()
                if name.startswith(start)}

    def _unrouted(self):
        """Extra parameters without a routing prefix: the build function's own arguments."""
        return {name: getattr(self, name) for name in self._extra_param_names()
                if routing_prefix(name) is None}

    # Tags ------------------------------------------------------------------

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # Deterministic given a random_state (or seed), scikit-learn's meaning of
        # the tag: its checks set random_state=0 before comparing two fits.
        tags.non_deterministic = False
        tags.input_tags.sparse = True  # densified a block of rows at a time (see `densify`)
        return tags

    # Fitting ---------------------------------------------------------------

    def _check_params(self):
        """Checks every parameter before anything trains; returns this fit's seed (or None)."""
        check_count("epochs", self.epochs, 1)
        check_count("batch_size", self.batch_size, 1)
        _check_patience("patience", self.patience)
        check_split(self.validation_split)
        seed = resolve_seed(self.seed, self.random_state)
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
        unrouted = self._unrouted()
        if unrouted and self.model is None:
            raise ConfigError(
                f"Unknown parameters {sorted(unrouted)}: without `model=`, only routed extra "
                f"parameters are taken ({', '.join(p + '__' for p in ROUTING_PREFIXES)}). "
                f"Pass a build function as `model=` that takes them, or write model__{sorted(unrouted)[0]}."
            )
        predict = self._routed("predict")
        check_routed("predict", predict, PREDICT_OPTIONS, "predict")
        if "batch_size" in predict:
            check_count("predict__batch_size", predict["batch_size"], 1)
        if self.model is None:
            check_routed("compile", self._routed("compile"), DEFAULT_COMPILE_OPTIONS,
                         "kerakit's network (build_model)")
        return seed

    def _fit_settings(self, overrides, partial):
        """The training options of one fit: the parameters, then fit__, then fit(**overrides)."""
        settings = {name: getattr(self, name) for name in FIT_OVERRIDES}
        passthrough = {}
        for source in (self._routed("fit"), overrides):
            for name, value in source.items():
                if name in FIT_OVERRIDES:
                    settings[name] = value
                elif name in FIT_PASSTHROUGH:
                    passthrough[name] = value
                else:
                    raise unknown_name("fit option", name, FIT_OVERRIDES + FIT_PASSTHROUGH)
        check_count("epochs", settings["epochs"], 1)
        check_count("batch_size", settings["batch_size"], 1)
        _check_patience("patience", settings["patience"])
        check_split(settings["validation_split"])
        if partial:
            # partial_fit is one epoch on the rows given: nothing held out, no early stopping.
            settings.update(epochs=1, validation_split=0.0, patience=None)
        return settings, passthrough

    @staticmethod
    def _split(n_samples, stratify, validation_split, seed):
        """Indices of the training and validation rows (a seeded, shuffled split)."""
        index = np.arange(n_samples)
        if not validation_split:
            return index, None
        n_val = math.ceil(validation_split * n_samples)
        if n_samples - n_val < 1:
            raise DataError(
                f"validation_split={validation_split} leaves no rows to train on with "
                f"n_samples={n_samples}. Pass more rows or validation_split=0."
            )
        if stratify is None:
            return train_test_split(index, test_size=n_val, random_state=seed)
        counts = np.bincount(stratify)
        counts = counts[counts > 0]
        # Every class on both sides (a one-class validation slice cannot be
        # scored); when the rows are too few for that, nothing is held out and
        # early stopping watches the training loss.
        n_val = max(n_val, len(counts))
        if counts.min() < 2 or n_samples - n_val < len(counts):
            return index, None
        return train_test_split(index, test_size=n_val, random_state=seed, stratify=stratify)

    def _optimizer(self):
        return optimizer_for(self.optimizer, self.learning_rate, self._routed("optimizer"))

    def _loss(self, spec):
        return loss_for(spec.loss if self.loss in ("auto", None) else self.loss, self._routed("loss"))

    def _compile_options(self, spec):
        """What a network the build function left uncompiled is compiled with."""
        options = {"optimizer": self._optimizer(), "loss": self._loss(spec),
                   "metrics": (heads.make_metrics(spec) if self.metrics == "auto" else self.metrics)}
        options.update(self._routed("compile"))
        return options

    def _meta(self, X, y, spec, target_type):
        meta = {"n_features_in_": X.shape[1], "X_shape_": X.shape, "X_dtype_": X.dtype,
                "y_shape_": y.shape, "target_type_": target_type, "spec": spec,
                "n_outputs_": 1 if y.ndim == 1 else y.shape[1]}
        if hasattr(self, "classes_"):
            meta.update(classes_=self.classes_, n_classes_=len(self.classes_))
        return meta

    def _build_model(self, X, spec, meta, seed):
        """A fresh compiled network: kerakit's default, the build function's, or a clone of `model`."""
        import keras

        import kerakit

        if self.model is None:
            options = {name: getattr(self, name) for name in MODEL_OPTIONS}
            options["optimizer"] = self._optimizer()
            options["learning_rate"] = "auto"  # already in the optimizer
            if self._routed("loss"):
                options["loss"] = self._loss(spec)
            options.update(self._routed("compile"))
            options.update(self._routed("model"))  # build_model's options, model__units=...
            body_options = {**(self.body_options or {}), **options.pop("body_options", {})}
            return kerakit.build_model(spec, input_shape=(X.shape[1],), seed=seed,
                                       **options, **body_options)
        if seed is not None:
            set_random_seed(seed)
        if isinstance(self.model, keras.Model):
            # A model trains once; each fit starts from a fresh copy with new weights.
            model = keras.models.clone_model(self.model)
            if getattr(self.model, "compiled", False):
                model.compile_from_config(self.model.get_compile_config())
            source = f"The model given as model= ({self.model.name!r})"
        elif callable(self.model):
            model = call_build_function(self.model, meta, lambda: self._compile_options(spec),
                                        {**self._unrouted(), **self._routed("model")})
            source = f"The build function {build_name(self.model)!r}"
        else:
            raise ConfigError(
                f"`model` must be a build function `build(meta, **params)` returning a "
                f"keras.Model, a keras.Model, or None (kerakit's network for the spec). "
                f"Received: model={self.model!r}"
            )
        check_output_width(model, source, spec, meta)
        if not getattr(model, "compiled", False):
            model.compile(**self._compile_options(spec))
        return model

    def _labels_for(self, model, labels, spec):
        """Labels in the form the compiled loss expects (one-hot for categorical cross-entropy)."""
        if self.model is None or spec.task not in ("binary", "multiclass"):
            return labels
        name = loss_name(getattr(model, "loss", None))
        if "categorical_crossentropy" in name and "sparse" not in name:
            width = spec.num_outputs if spec.task == "multiclass" else 2
            return np.eye(width, dtype=np.float32)[labels.astype(np.int64).reshape(-1)]
        return labels

    def _train(self, X, y, spec, sample_weight, stratify, meta, overrides, warm, seed, partial=False):
        import kerakit

        settings, passthrough = self._fit_settings(overrides, partial)
        user_callbacks = callbacks_for(self.callbacks, self._routed("callbacks"))
        X = densify(X)
        train, val = self._split(len(X), stratify, settings["validation_split"], seed)
        model = self.model_ if warm else self._build_model(X, spec, meta, seed)
        y = self._labels_for(model, y, spec)
        weights = None if sample_weight is None else sample_weight[train]
        validation_data = None if val is None else (X[val], y[val])
        if val is not None and sample_weight is not None:
            # The held-out loss early stopping watches is weighted like the training loss.
            validation_data += (sample_weight[val],)
        callbacks = kerakit.default_callbacks(
            spec, patience=settings["patience"], monitor="val_loss" if val is not None else "loss"
        ) + user_callbacks
        done = len(self.history_.get("loss", [])) if warm else 0
        history = kerakit.fit(
            model, X[train], y[train], sample_weight=weights, validation_data=validation_data,
            epochs=done + settings["epochs"], initial_epoch=done,
            batch_size=settings["batch_size"], callbacks=callbacks, verbose=settings["verbose"],
            seed=seed, spec=spec if self.model is None else None, **passthrough,
        )
        new = {key: [float(v) for v in values] for key, values in history.history.items()}
        if warm:
            new = {key: self.history_.get(key, []) + values for key, values in new.items()}
        self.model_ = model
        self.spec_ = spec
        self.history_ = new
        return self

    def _sample_weight(self, sample_weight, X):
        if sample_weight is None:
            return None
        return _check_sample_weight(sample_weight, X, dtype=np.float32, ensure_non_negative=True)

    def _validate(self, X, y, reset, **options):
        return validate_data(self, X, y, accept_sparse=SPARSE_FORMATS, dtype=np.float32,
                             reset=reset, **options)

    # Prediction ------------------------------------------------------------

    def _forward(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float32, accept_sparse=SPARSE_FORMATS)
        # Checked at fit time too; again here for a set_params after fit.
        size = self._routed("predict").get("batch_size", PREDICT_BATCH)
        return forward(self.model_, X, check_count("predict__batch_size", size, 1))

    # Pickling --------------------------------------------------------------

    def __getstate__(self):
        state = dict(super().__getstate__())
        model = state.pop("model_", None)
        if model is not None:
            state["_model_keras_bytes"] = model_to_bytes(model)
        return state

    def __setstate__(self, state):
        state = dict(state)
        data = state.pop("_model_keras_bytes", None)
        super().__setstate__(state)
        if data is not None:
            self.model_ = attach_spec(model_from_bytes(data), self.spec_)
