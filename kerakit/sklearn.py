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

What SciKeras users rely on is here too: `model=` (a `build(meta, ...)`
function or a prebuilt `keras.Model`), routed parameters with scikit-learn's
double-underscore convention (`model__`, `fit__`, `compile__`,
`optimizer__`, `loss__`, `callbacks__`, `predict__`; see `ROUTING_PREFIXES`),
`callbacks=`, per-call `fit(..., epochs=...)` overrides, `warm_start` and
`partial_fit`, SciPy sparse `X` and multilabel 0/1 label matrices.
"""

import copy
import inspect
import math
import os
import tempfile
import warnings
from types import MappingProxyType

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import DataConversionWarning
from sklearn.model_selection import train_test_split
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from kerakit import heads
from kerakit.backend import set_random_seed
from kerakit.errors import ConfigError, DataError, LabelError, RunError, SpecError, unknown_name
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

# Parameter prefixes routed with scikit-learn's double-underscore convention
# (`optimizer__momentum=0.9`), SciKeras's names: where each group goes.
ROUTING_PREFIXES = MappingProxyType(
    {
        "model": "the build function's keyword arguments (build_model's options by default)",
        "fit": "kerakit.fit's options (epochs, batch_size, verbose, shuffle, ...)",
        "compile": "model.compile's options (jit_compile, metrics, ...)",
        "optimizer": "the optimizer's constructor (momentum, beta_1, ...)",
        "loss": "the loss's constructor (from_logits, delta, ...)",
        "callbacks": "the callback classes in `callbacks` (callbacks__0__patience for one)",
        "predict": "predict's options (batch_size)",
    }
)

# Training options a `fit(X, y, **overrides)` call (or `fit__`) may change for that call.
_FIT_OVERRIDES = ("epochs", "batch_size", "verbose", "validation_split", "patience")
# Further kerakit.fit options that `fit(...)` / `fit__` pass through.
_FIT_PASSTHROUGH = ("shuffle", "steps_per_execution", "engine")
# compile__ options a kerakit-built network takes (build_model's arguments).
_DEFAULT_COMPILE_OPTIONS = ("jit_compile", "metrics")

# Densifying a sparse X makes float32 rows; more bytes than this are refused
# before anything is allocated (raise it, or reduce the features first).
MAX_DENSE_BYTES = 2 * 1024**3
# Rows densified at a time, so the float64 / int copies SciPy makes stay small.
_DENSIFY_ROWS = 4096
_SPARSE_FORMATS = ("csr", "csc", "coo")


def _check_int(name, value, minimum, allow_none=False):
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        none = " or None" if allow_none else ""
        raise ConfigError(f"`{name}` must be an integer >= {minimum}{none}. Received: {name}={value!r}")


def _check_split(split):
    if isinstance(split, bool) or not isinstance(split, (int, float)) or not 0 <= split < 1:
        raise ConfigError(
            f"`validation_split` must be a fraction in [0, 1) (0 trains on every row). "
            f"Received: validation_split={split!r}"
        )


def densify(X, max_bytes=None):
    """Returns a dense float32 copy of a SciPy sparse matrix, built a block of rows at a time.

    Dense arrays pass through. The dense size is checked first, so a matrix
    too large for memory fails at once with the numbers instead of after
    minutes of swapping.

    Args:
        X: a SciPy sparse matrix or array, or a dense array.
        max_bytes: the largest dense result allowed; None (default) uses
            `MAX_DENSE_BYTES` (2 GiB).

    Example:

    >>> from scipy import sparse
    >>> densify(sparse.eye(3, format="csr"))
    array([[1., 0., 0.],
           [0., 1., 0.],
           [0., 0., 1.]], dtype=float32)
    """
    if not sparse.issparse(X):
        return X
    limit = MAX_DENSE_BYTES if max_bytes is None else max_bytes
    rows, columns = X.shape
    needed = rows * columns * 4
    if needed > limit:
        raise DataError(
            f"The sparse X of shape {X.shape} would take {needed / 2**30:.2f} GiB as dense "
            f"float32, over the limit of {limit / 2**30:.2f} GiB (kerakit.sklearn.MAX_DENSE_BYTES). "
            f"Reduce the features first (sklearn.decomposition.TruncatedSVD, "
            f"sklearn.feature_selection.SelectKBest), or raise kerakit.sklearn.MAX_DENSE_BYTES "
            f"if the memory is there."
        )
    X = X.tocsr()
    out = np.empty((rows, columns), dtype=np.float32)
    for start in range(0, rows, _DENSIFY_ROWS):
        out[start:start + _DENSIFY_ROWS] = X[start:start + _DENSIFY_ROWS].toarray()
    return out


def _routing_prefix(name):
    head, sep, _ = name.partition("__")
    return head if sep and head in ROUTING_PREFIXES else None


def _class_of(module, name, kind):
    """The class in `module` (keras.losses, ...) whose name matches `name` ("binary_crossentropy")."""
    key = name.replace("_", "").lower()
    for attribute in dir(module):
        value = getattr(module, attribute)
        if attribute.lower() == key and inspect.isclass(value):
            return value
    names = [a for a in dir(module) if inspect.isclass(getattr(module, a)) and not a.startswith("_")]
    raise unknown_name(kind, name, names)


def _configured(identifier, options, module, kind):
    """`identifier` (a name, class or object of `module`) built with `options`."""
    if not options:
        return identifier
    if inspect.isclass(identifier):
        return identifier(**options)
    if isinstance(identifier, str):
        return _class_of(module, identifier, kind)(**options)
    if hasattr(identifier, "get_config"):
        return type(identifier).from_config({**identifier.get_config(), **options})
    raise ConfigError(
        f"{kind}__ options need a {kind} given by name, class or object with get_config. "
        f"Received: {kind}={identifier!r} with {sorted(options)}"
    )


def _loss_name(loss):
    if isinstance(loss, str):
        return loss.lower()
    return str(getattr(loss, "name", None) or getattr(loss, "__name__", "")).lower()


def _clone_callback(callback):
    """A fresh copy of a callback for one fit, without the model it last trained."""
    model = getattr(callback, "_model", None)
    memo = {} if model is None else {id(model): None}
    return copy.deepcopy(callback, memo)


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


_WEIGHTS_VS_REPEATS = (
    "minibatch training on rows repeated k times takes other gradient steps "
    "(more batches per epoch, another shuffle, a loss averaged over more rows) "
    "than on the same rows weighted k, so the two networks differ"
)

# scikit-learn's estimator checks that a network trained by minibatch
# gradient descent cannot pass, each with the reason (see
# `expected_failed_checks`).
EXPECTED_FAILED_CHECKS = MappingProxyType(
    {
        "check_sample_weight_equivalence_on_dense_data": _WEIGHTS_VS_REPEATS,
        # Sparse X is densified, then trained like dense X: the same reason.
        "check_sample_weight_equivalence_on_sparse_data": _WEIGHTS_VS_REPEATS,
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
            if _routing_prefix(name) is not None:
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
                if _routing_prefix(name) is None}

    # Tags ------------------------------------------------------------------

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # Without a seed, weight initialisation, dropout and shuffling differ
        # from one fit to the next; with one, two fits are identical.
        tags.non_deterministic = self.seed is None
        tags.input_tags.sparse = True  # densified a block of rows at a time (see `densify`)
        return tags

    # Fitting ---------------------------------------------------------------

    def _check_params(self):
        _check_int("epochs", self.epochs, 1)
        _check_int("batch_size", self.batch_size, 1)
        _check_int("patience", self.patience, 0, allow_none=True)
        if self.seed is not None:
            _check_int("seed", self.seed, 0)
        _check_split(self.validation_split)
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

    def _fit_settings(self, overrides, partial):
        """The training options of one fit: the parameters, then fit__, then fit(**overrides)."""
        settings = {name: getattr(self, name) for name in _FIT_OVERRIDES}
        passthrough = {}
        for source in (self._routed("fit"), overrides):
            for name, value in source.items():
                if name in _FIT_OVERRIDES:
                    settings[name] = value
                elif name in _FIT_PASSTHROUGH:
                    passthrough[name] = value
                else:
                    raise unknown_name("fit option", name, _FIT_OVERRIDES + _FIT_PASSTHROUGH)
        _check_int("epochs", settings["epochs"], 1)
        _check_int("batch_size", settings["batch_size"], 1)
        _check_int("patience", settings["patience"], 0, allow_none=True)
        _check_split(settings["validation_split"])
        if partial:
            # partial_fit is one epoch on the rows given: nothing held out, no early stopping.
            settings.update(epochs=1, validation_split=0.0, patience=None)
        return settings, passthrough

    def _split(self, n_samples, stratify, validation_split):
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
        if stratify is not None:
            counts = np.bincount(stratify)
            counts = counts[counts > 0]
            # Stratifying needs two rows of each class and a validation slice
            # with room for every class; otherwise split at random.
            if counts.min() < 2 or n_val < len(counts) or n_samples - n_val < len(counts):
                stratify = None
        return train_test_split(index, test_size=n_val, random_state=self.seed, stratify=stratify)

    def _optimizer(self):
        """The optimizer object of one fit, with optimizer__ options (a fresh one each fit)."""
        import keras

        from kerakit.optimizers import OPTIMIZERS, get_optimizer

        options = self._routed("optimizer")
        optimizer, rate = self.optimizer, options.pop("learning_rate", self.learning_rate)
        if isinstance(optimizer, keras.optimizers.Optimizer):
            config = optimizer.get_config()
            if rate not in ("auto", None):
                config["learning_rate"] = rate
            return type(optimizer).from_config({**config, **options})
        if inspect.isclass(optimizer):
            return optimizer(**options, **({} if rate in ("auto", None) else {"learning_rate": rate}))
        name = "adam" if optimizer in ("auto", None) else optimizer
        base = get_optimizer(name, rate)  # checks the name and the rate
        if not options:
            return base
        fixed = OPTIMIZERS[str(name).lower()][2]
        return type(base)(learning_rate=float(base.learning_rate.numpy()), **{**fixed, **options})

    def _loss(self, spec):
        loss = spec.loss if self.loss in ("auto", None) else self.loss
        import keras

        return _configured(loss, self._routed("loss"), keras.losses, "loss")

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

    def _build_model(self, X, spec, meta):
        """A fresh compiled network: kerakit's default, the build function's, or a clone of `model`."""
        import keras

        import kerakit

        if self.model is None:
            options = {name: getattr(self, name) for name in _MODEL_OPTIONS}
            options["optimizer"] = self._optimizer()
            options["learning_rate"] = "auto"  # already in the optimizer
            if self._routed("loss"):
                options["loss"] = self._loss(spec)
            compile_options = self._routed("compile")
            unknown = sorted(set(compile_options) - set(_DEFAULT_COMPILE_OPTIONS))
            if unknown:
                raise unknown_name("compile option", unknown[0], _DEFAULT_COMPILE_OPTIONS)
            options.update(compile_options)
            options.update(self._routed("model"))  # build_model's options, model__units=...
            body_options = {**(self.body_options or {}), **options.pop("body_options", {})}
            return kerakit.build_model(spec, input_shape=(X.shape[1],), seed=self.seed,
                                       **options, **body_options)
        if self.seed is not None:
            set_random_seed(int(self.seed))
        if isinstance(self.model, keras.Model):
            # A model trains once; each fit starts from a fresh copy with new weights.
            model = keras.models.clone_model(self.model)
            if getattr(self.model, "compiled", False):
                model.compile_from_config(self.model.get_compile_config())
        elif callable(self.model):
            model = self._call_build(meta, spec)
        else:
            raise ConfigError(
                f"`model` must be a build function `build(meta, **params)` returning a "
                f"keras.Model, a keras.Model, or None (kerakit's network for the spec). "
                f"Received: model={self.model!r}"
            )
        if not getattr(model, "compiled", False):
            model.compile(**self._compile_options(spec))
        return model

    def _call_build(self, meta, spec):
        import keras

        build = self.model
        parameters = inspect.signature(build).parameters
        takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
        arguments = {}
        if "meta" in parameters:
            arguments["meta"] = meta
        if "compile_kwargs" in parameters:
            arguments["compile_kwargs"] = self._compile_options(spec)
        for name, value in {**self._unrouted(), **self._routed("model")}.items():
            if name not in parameters and not takes_any:
                raise ConfigError(
                    f"The build function {getattr(build, '__name__', build)!r} takes no argument "
                    f"{name!r} (its arguments: {', '.join(parameters) or 'none'}). Add it to "
                    f"the function, or drop the parameter model__{name}."
                )
            arguments[name] = value
        model = build(**arguments)
        if not isinstance(model, keras.Model):
            raise ConfigError(
                f"The build function {getattr(build, '__name__', build)!r} must return a "
                f"keras.Model. Received: {type(model).__name__}"
            )
        return model

    def _callbacks(self):
        """The user's callbacks for one fit: instances copied, classes built with callbacks__."""
        given = self.callbacks
        if given is None:
            return []
        if isinstance(given, dict):  # {"stop": EarlyStopping}: callbacks__stop__patience=3
            entries = [(str(key), value) for key, value in given.items()]
        else:
            entries = list(enumerate(given if isinstance(given, (list, tuple)) else [given]))
        routed = self._routed("callbacks")
        shared = {k: v for k, v in routed.items() if "__" not in k}
        result = []
        for index, callback in entries:
            own = {k.split("__", 1)[1]: v for k, v in routed.items() if k.startswith(f"{index}__")}
            if inspect.isclass(callback):
                result.append(callback(**{**shared, **own}))
            elif hasattr(callback, "set_model"):
                fresh = _clone_callback(callback)
                for name, value in own.items():
                    setattr(fresh, name, value)
                result.append(fresh)
            else:
                raise ConfigError(
                    f"`callbacks` must hold keras.callbacks.Callback instances or classes. "
                    f"Received: {callback!r} at index {index}"
                )
        return result

    def _labels_for(self, model, labels, spec):
        """Labels in the form the compiled loss expects (one-hot for categorical cross-entropy)."""
        if self.model is None or spec.task not in ("binary", "multiclass"):
            return labels
        name = _loss_name(getattr(model, "loss", None))
        if "categorical_crossentropy" in name and "sparse" not in name:
            width = spec.num_outputs if spec.task == "multiclass" else 2
            return np.eye(width, dtype=np.float32)[labels.astype(np.int64).reshape(-1)]
        return labels

    def _train(self, X, y, spec, sample_weight, stratify, meta, overrides, warm, partial=False):
        import kerakit

        settings, passthrough = self._fit_settings(overrides, partial)
        X = densify(X)
        train, val = self._split(len(X), stratify, settings["validation_split"])
        model = self.model_ if warm else self._build_model(X, spec, meta)
        y = self._labels_for(model, y, spec)
        weights = None if sample_weight is None else sample_weight[train]
        validation_data = None if val is None else (X[val], y[val])
        callbacks = kerakit.default_callbacks(
            spec, patience=settings["patience"], monitor="val_loss" if val is not None else "loss"
        ) + self._callbacks()
        done = len(self.history_.get("loss", [])) if warm else 0
        history = kerakit.fit(
            model, X[train], y[train], sample_weight=weights, validation_data=validation_data,
            epochs=done + settings["epochs"], initial_epoch=done,
            batch_size=settings["batch_size"], callbacks=callbacks, verbose=settings["verbose"],
            seed=self.seed, spec=spec if self.model is None else None, **passthrough,
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
        return validate_data(self, X, y, accept_sparse=_SPARSE_FORMATS, dtype=np.float32,
                             reset=reset, **options)

    # Prediction ------------------------------------------------------------

    def _forward(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float32, accept_sparse=_SPARSE_FORMATS)
        if sparse.issparse(X):
            X = X.tocsr()
        options = self._routed("predict")
        unknown = sorted(set(options) - {"batch_size"})
        if unknown:
            raise unknown_name("predict option", unknown[0], ["batch_size"])
        size = options.get("batch_size", PREDICT_BATCH)
        _check_int("predict__batch_size", size, 1)
        from keras import ops

        outputs = []
        for start in range(0, X.shape[0], size):
            batch = densify(X[start:start + size])
            rows = len(batch)
            if rows < size:
                padding = np.zeros((size - rows,) + batch.shape[1:], np.float32)
                batch = np.concatenate([batch, padding])
            # convert_to_numpy: a PyTorch output carries autograd state np.asarray refuses.
            outputs.append(ops.convert_to_numpy(self.model_(batch, training=False))[:rows])
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
        verbose=0,
        class_weight=None,
        **kwargs,
    ):
        super().__init__(
            model, spec=spec, body=body, units=units, dropout=dropout, l1=l1, l2=l2,
            batchnorm=batchnorm, optimizer=optimizer, learning_rate=learning_rate, loss=loss,
            metrics=metrics, body_options=body_options, epochs=epochs, batch_size=batch_size,
            validation_split=validation_split, patience=patience, callbacks=callbacks,
            warm_start=warm_start, seed=seed, verbose=verbose, **kwargs,
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
        self._check_params()
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
        return self._train(X, labels, spec, sample_weight, stratify, meta, overrides, warm, partial)

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


class KerasRegressor(RegressorMixin, _KerasEstimator):
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
        self._check_params()
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
        return self._train(X, targets, spec, sample_weight, None, meta, overrides, warm, partial)

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
