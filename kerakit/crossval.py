"""K-fold cross-validation with out-of-fold predictions.

`make_folds` picks the splitter the task calls for (stratified k-fold for
classes, iterative stratification for multilabel, plain k-fold for
regression); `FoldRunner` trains one configuration on every fold with early
stopping, on input pipelines built once and reused; `cross_validate` is the
public entry point. `kerakit.tune` runs its k-fold objective through the same
`FoldRunner`.
"""

import dataclasses
import math
import os
import time

import numpy as np

from kerakit import metrics_registry
from kerakit.backend import set_random_seed
from kerakit.errors import ConfigError, DataError, closest
from kerakit.spec import ProblemSpec, class_indices, validate_labels

# Base metric names (no "val_") whose best value is the largest / smallest:
# views of the one table in kerakit.metrics_registry.
MAXIMIZED = frozenset(n for n, m in metrics_registry.METRICS.items() if m.direction == "max")
MINIMIZED = frozenset(n for n, m in metrics_registry.METRICS.items() if m.direction == "min")

# A fit of at most this many steps in all runs one step per call into
# TensorFlow (see `FoldRunner.steps_per_execution`).
SMALL_FIT_STEPS = 128

# Rows predicted per eager call when collecting out-of-fold predictions; an
# eager call skips tracing a predict function for every fold model.
PREDICT_CHUNK = 4096


def objective_direction(name):
    """Returns "min" or "max" for a logged metric name such as "val_auc".

    Example:

    >>> objective_direction("val_accuracy"), objective_direction("val_loss")
    ('max', 'min')
    """
    direction = metrics_registry.direction(name)
    if direction is not None:
        return direction
    from keras_tuner.src.engine import metrics_tracking

    direction = metrics_tracking.infer_metric_direction(name)
    if direction is None:
        raise ConfigError(
            f"Cannot tell whether the objective {name!r} should be minimized or maximized. "
            f"Pass it as keras_tuner.Objective({name!r}, direction='max') (or 'min')."
        )
    return direction


def check_objective(name, available, has_validation):
    """Refuses an objective the training logs will not contain, listing the valid names."""
    if name in available:
        return name
    if name.startswith("val_") and not has_validation and name[4:] in available:
        raise ConfigError(
            f"The objective {name!r} needs validation data, but there is none: pass cv=k, "
            f"validation_data=(x_val, y_val) or validation_split=0.2, or use {name[4:]!r}."
        )
    hint = closest(name, available)
    did_you_mean = f" Did you mean {hint!r}?" if hint else ""
    listed = ", ".join(repr(n) for n in available)
    raise ConfigError(
        f"The objective {name!r} is not a metric this model logs.{did_you_mean} "
        f"Available: {listed}."
    )


def logged_names(metric_names, has_validation):
    """Names Keras logs for a model with `metric_names` (loss first)."""
    names = ["loss"] + [n for n in metric_names if n != "loss"]
    return names + [f"val_{n}" for n in names] if has_validation else names


# Folds -------------------------------------------------------------------


def _check_folds(folds, rows):
    if isinstance(folds, bool) or not isinstance(folds, (int, np.integer)) or folds < 2:
        raise ConfigError(f"`folds` must be an integer of at least 2. Received: folds={folds!r}")
    if folds > rows:
        raise DataError(f"{folds} folds need at least {folds} rows; there are {rows}. Use fewer folds.")


def iterative_stratification(y, folds, seed=0):
    """Splits multilabel rows into folds that keep each label's share (Sechidis et al., 2011).

    Rows are placed label by label, rarest label first, each into the fold
    that still wants most of that label. Returns `[(train_idx, val_idx), ...]`.

    Example:

    >>> y = np.random.default_rng(0).integers(0, 2, size=(60, 4))
    >>> [len(v) for _, v in iterative_stratification(y, 3)]
    [20, 20, 20]
    """
    y = np.asarray(y).astype(bool)
    rows = len(y)
    _check_folds(folds, rows)
    rng = np.random.default_rng(seed)
    wanted_rows = np.full(folds, rows / folds)
    wanted_labels = np.tile(y.sum(axis=0) / folds, (folds, 1))
    fold_of = np.full(rows, -1)
    remaining = np.ones(rows, dtype=bool)

    def place(row, label=None):
        wants = wanted_rows if label is None else wanted_labels[:, label]
        candidates = np.flatnonzero(wants == wants.max())
        if label is not None and len(candidates) > 1:  # ties: the fold wanting more rows
            candidates = candidates[wanted_rows[candidates] == wanted_rows[candidates].max()]
        fold = rng.choice(candidates)
        fold_of[row] = fold
        remaining[row] = False
        wanted_rows[fold] -= 1
        wanted_labels[fold] -= y[row]

    while remaining.any():
        counts = y[remaining].sum(axis=0)
        if counts.max() == 0:  # rows with no label at all
            for row in rng.permutation(np.flatnonzero(remaining)):
                place(row)
            break
        label = int(np.argmin(np.where(counts > 0, counts, np.inf)))
        for row in rng.permutation(np.flatnonzero(remaining & y[:, label])):
            place(row, label)
    return [(np.flatnonzero(fold_of != f), np.flatnonzero(fold_of == f)) for f in range(folds)]


def make_folds(spec, y, folds=5, *, seed=0):
    """Returns `[(train_idx, val_idx), ...]` for `folds`-fold cross-validation of `spec`.

    Binary and multiclass labels get `sklearn.model_selection.StratifiedKFold`
    (one-hot and soft labels are stratified on their most likely class),
    multilabel targets get `iterative_stratification`, regression targets get
    a shuffled `KFold`.

    Args:
        spec: the `ProblemSpec`.
        y: labels, as `validate_labels` accepts them.
        folds: number of folds (at least 2). Defaults to 5.
        seed: seeds the shuffle. Defaults to 0.

    Example:

    >>> spec = ProblemSpec(task="binary")
    >>> len(make_folds(spec, [0, 1] * 10, folds=4))
    4
    """
    y = validate_labels(spec, y)
    _check_folds(folds, len(y))
    from sklearn.model_selection import KFold, StratifiedKFold

    if spec.task == "multilabel":
        return iterative_stratification(y, folds, seed)
    if spec.task == "regression":
        splitter = KFold(n_splits=folds, shuffle=True, random_state=seed)
        return list(splitter.split(np.zeros(len(y))))
    classes = np.asarray(class_indices(spec, y)).astype(np.int64)
    values, counts = np.unique(classes, return_counts=True)
    if counts.min() < folds:
        few = {int(v): int(c) for v, c in zip(values, counts, strict=True) if c < folds}
        raise DataError(
            f"Stratified {folds}-fold cross-validation needs at least {folds} rows of every "
            f"class; class(es) {few} (class: rows) have fewer. Use folds={int(counts.min())} "
            f"or fewer, or collect more rows of those classes."
        )
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(len(y)), classes))


# Training on folds ---------------------------------------------------------


@dataclasses.dataclass
class FoldsOutcome:
    """What training one configuration on every fold produced."""

    scores: list
    best_epochs: list
    fold_metrics: dict
    oof_predictions: object = None
    models: list = dataclasses.field(default_factory=list)
    seconds: float = 0.0
    fits: int = 0

    @property
    def mean(self):
        return float(np.mean(self.scores))

    @property
    def std(self):
        return float(np.std(self.scores)) if len(self.scores) > 1 else 0.0


def predict_eager(model, x):
    """Predicts with direct calls, in chunks: no predict function is traced."""
    import keras

    parts = [keras.ops.convert_to_numpy(model(x[i : i + PREDICT_CHUNK], training=False))
             for i in range(0, len(x), PREDICT_CHUNK)]
    return np.concatenate(parts).astype(np.float32)


def _on_tensorflow():
    import keras

    return keras.backend.backend() == "tensorflow"


def _weights_path(directory, fold):
    return os.path.join(str(directory), f"fold_{fold}.weights.h5")


class FoldRunner:
    """Trains one configuration on each fold, reusing the input pipelines.

    Features and labels are validated once. The `tf.data` pipelines (cached,
    reshuffled, batched, prefetched) are built once per fold and batch size
    and reused by every configuration that trains on them.

    Args:
        spec: the `ProblemSpec`.
        x, y: training features and labels.
        folds: `[(train_idx, val_idx), ...]` from `make_folds`, or None to
            train on all of `x` and validate on `validation_data` (if given).
        validation_data: `(x_val, y_val)` for the single split when `folds`
            is None.
        seed: seeds each fold's model and shuffle, so every configuration
            starts from the same draw. Defaults to 0.
    """

    def __init__(self, spec, x, y, folds=None, *, validation_data=None, seed=0):
        from kerakit.training import validate_features

        if not isinstance(spec, ProblemSpec):
            raise ConfigError(f"`spec` must be a kerakit.ProblemSpec. Received: {spec!r}")
        self.spec = spec
        self.x = validate_features(x)
        self.y = validate_labels(spec, y)
        if len(self.x) != len(self.y):
            raise DataError(
                f"`x` has {len(self.x)} rows but `y` has {len(self.y)}. Each example needs "
                f"exactly one label row."
            )
        self.seed = int(seed)
        if folds is None:
            splits = [(np.arange(len(self.x)), None)]
            if validation_data is not None:
                x_val = validate_features(validation_data[0], (None,) + self.x.shape[1:],
                                          what="validation x")
                self.x_val, self.y_val = x_val, validate_labels(spec, validation_data[1])
                if len(self.x_val) != len(self.y_val):
                    raise DataError("`validation_data` has a different number of rows in x and y.")
            else:
                self.x_val = self.y_val = None
        else:
            splits = [(np.asarray(t), np.asarray(v)) for t, v in folds]
            self.x_val = self.y_val = None
        self.splits = splits
        self.cross_validated = folds is not None
        self._pipelines = {}

    @property
    def has_validation(self):
        return self.cross_validated or self.x_val is not None

    @property
    def input_shape(self):
        return self.x.shape[1:]

    def _validation_arrays(self, fold):
        if self.cross_validated:
            rows = self.splits[fold][1]
            return self.x[rows], self.y[rows]
        return self.x_val, self.y_val

    def pipelines(self, fold, batch_size):
        """Returns `(train, validation)` for a fold, built on first use.

        On TensorFlow these are cached `tf.data` pipelines, reused by every
        configuration; on other backends, `(x, y)` array pairs that the
        engine puts on the device.
        """
        key = (fold, int(batch_size))
        if key not in self._pipelines:
            rows = self.splits[fold][0]
            x_val, y_val = self._validation_arrays(fold)
            val = None if x_val is None else (x_val, y_val)
            train = (self.x[rows], self.y[rows])
            if _on_tensorflow():
                from kerakit.engines.tensorflow import make_dataset, validation_pipeline

                train = make_dataset(*train, batch_size=int(batch_size), shuffle=True, seed=self.seed + fold)
                val = validation_pipeline(val, int(batch_size))
            self._pipelines[key] = (train, val)
        return self._pipelines[key]

    def reset_pipelines(self):
        """Drops the built pipelines, so the next shuffles start from `seed` again.

        A pipeline reshuffles every epoch, so one reused by a later
        configuration hands it an order that depends on how many ran before;
        a search calls this per trial, so a resumed search repeats an
        uninterrupted one.
        """
        self._pipelines.clear()

    def _fit(self, model, train, val, *, batch_size, epochs, **options):
        from kerakit import training

        if _on_tensorflow():
            return training.fit(model, train, validation_data=val, epochs=int(epochs),
                                steps_per_execution=self.steps_per_execution(batch_size, epochs), **options)
        return training.fit(model, *train, validation_data=val, epochs=int(epochs),
                            batch_size=int(batch_size), **options)

    def steps_per_execution(self, batch_size, epochs):
        """Batches per call into TensorFlow for a fit of `epochs` on this data.

        Several steps per call save Python overhead on every step but make
        Keras trace a loop, which costs about as much as 100-odd single steps:
        a fit that takes fewer steps than that in all runs one step per call.
        """
        from kerakit.engines.keras_fit import MAX_STEPS_PER_EXECUTION

        steps = math.ceil(len(self.splits[0][0]) / int(batch_size))
        if steps * int(epochs) <= SMALL_FIT_STEPS:
            return 1
        return max(1, min(steps, MAX_STEPS_PER_EXECUTION))

    def run(self, build, hp=None, *, batch_size=32, epochs=100, monitor="val_loss",
            direction="min", patience=10, initial_epoch=0, warm_start=None, save_weights=None,
            callbacks=None, keep_models=False, verbose=0):
        """Trains the configuration `build(hp)` on each fold.

        The model is built once and each fold starts it from the same initial
        weights with a fresh optimizer state, so its training step is traced
        once per configuration instead of once per fold. Each fold stops early
        on `monitor` (best weights restored); its score is the best `monitor`
        value. With cross-validation every fold predicts its held-out rows,
        which gives one out-of-fold prediction per training row.

        Args:
            build: `build(hp)` returning a compiled `keras.Model`.
            hp: Keras Tuner `HyperParameters` passed to `build`.
            batch_size, epochs: as in `fit`.
            monitor: the logged metric that scores a fold.
            direction: "min" or "max" for `monitor`.
            patience: early-stopping patience; None trains all epochs.
            initial_epoch: epoch to resume from (Hyperband's later rounds).
            warm_start: folder holding `fold_<i>.weights.h5` to start from.
            save_weights: folder to write each fold's trained weights into.
            callbacks: extra Keras callbacks; each fold gets deep copies.
            keep_models: also return one trained model per fold.
            verbose: as in `fit`.
        """
        import copy

        import keras

        from kerakit.callbacks import TerminateOnNaN

        start = time.perf_counter()
        outcome = FoldsOutcome(scores=[], best_epochs=[], fold_metrics={})
        if self.cross_validated:
            width = self.spec.num_outputs
            outcome.oof_predictions = np.full((len(self.x), width), np.nan, dtype=np.float32)
        # A fresh graph state per configuration keeps metric names stable ("auc",
        # not "auc_1"); free_memory=False skips a full gc.collect per model.
        keras.backend.clear_session(free_memory=False)
        set_random_seed(self.seed)
        model = build(hp)
        initial_weights = model.get_weights()
        optimizer = model.optimizer
        if not optimizer.built:
            optimizer.build(model.trainable_variables)
        initial_state = [keras.ops.convert_to_numpy(v) for v in optimizer.variables]
        for fold in range(len(self.splits)):
            if warm_start is not None:
                model.load_weights(_weights_path(warm_start, fold))
            else:
                model.set_weights(initial_weights)
            for variable, value in zip(optimizer.variables, initial_state, strict=True):
                variable.assign(value)
            train, val = self.pipelines(fold, batch_size)
            fold_callbacks = [TerminateOnNaN()] + copy.deepcopy(list(callbacks or []))
            if patience is not None and val is not None:
                fold_callbacks.insert(0, keras.callbacks.EarlyStopping(
                    monitor=monitor, mode=direction, patience=int(patience), restore_best_weights=True))
            history = self._fit(model, train, val, batch_size=batch_size, epochs=epochs,
                                initial_epoch=int(initial_epoch), callbacks=fold_callbacks,
                                verbose=verbose)
            outcome.fits += 1
            logs = history.history
            if monitor not in logs:
                raise ConfigError(
                    f"Training did not log {monitor!r}. Logged: {', '.join(sorted(logs))}."
                )
            values = np.asarray(logs[monitor], dtype=np.float64)
            best = int(np.nanargmax(values) if direction == "max" else np.nanargmin(values))
            outcome.scores.append(float(values[best]))
            outcome.best_epochs.append(int(history.epoch[best]) + 1)
            for name, series in logs.items():
                outcome.fold_metrics.setdefault(name, []).append(float(series[best]))
            if self.cross_validated:
                rows = self.splits[fold][1]
                outcome.oof_predictions[rows] = predict_eager(model, self.x[rows]).reshape(len(rows), -1)
            if save_weights is not None:
                final = _weights_path(save_weights, fold)
                partial = final[: -len(".weights.h5")] + ".partial.weights.h5"
                model.save_weights(partial)
                os.replace(partial, final)
            if keep_models:
                kept = build(hp)
                kept.set_weights(model.get_weights())
                outcome.models.append(kept)
        outcome.seconds = time.perf_counter() - start
        return outcome

    def fit_all(self, build, hp=None, *, batch_size=32, epochs=10, verbose=0):
        """Trains `build(hp)` on every training row (no validation) for `epochs`."""
        import keras

        keras.backend.clear_session(free_memory=False)
        set_random_seed(self.seed)
        model = build(hp)
        key = ("all", int(batch_size))
        if key not in self._pipelines:
            train = (self.x, self.y)
            if _on_tensorflow():
                from kerakit.engines.tensorflow import make_dataset

                train = make_dataset(*train, batch_size=int(batch_size), shuffle=True, seed=self.seed)
            self._pipelines[key] = (train, None)
        self._fit(model, self._pipelines[key][0], None, batch_size=batch_size, epochs=epochs,
                  verbose=verbose)
        return model


def average_ensemble(models, name="fold_ensemble"):
    """Returns one `keras.Model` whose output is the mean of `models`' outputs.

    The members keep their weights; the result saves and loads like any
    Keras model.

    Example:

    ```python
    result = kerakit.cross_validate(spec, x, y, folds=5, return_models=True)
    ensemble = kerakit.crossval.average_ensemble(result.models)
    ```
    """
    if not models:
        raise ConfigError("average_ensemble needs at least one model. Received none.")
    if len(models) == 1:
        return models[0]
    from kerakit.analysis import ensemble

    return ensemble(models, name=name)


# cross_validate -------------------------------------------------------------


@dataclasses.dataclass
class CrossValidationResult:
    """Per-fold scores, their spread, and out-of-fold predictions.

    Attributes:
        monitor: the metric each fold was scored and early-stopped on.
        scores: the best `monitor` value of each fold.
        fold_metrics: every logged metric at each fold's best epoch.
        best_epochs: each fold's best epoch (1-based).
        oof_predictions: one prediction row per training row, each made by
            the fold model that did not see it.
        oof_report: held-out metrics (scikit-learn) of the out-of-fold
            predictions against the labels.
        folds: the `(train_idx, val_idx)` pairs.
        models: the fold models when `return_models=True`.
    """

    monitor: str
    scores: list
    fold_metrics: dict
    best_epochs: list
    oof_predictions: np.ndarray
    oof_report: dict
    folds: list
    models: list
    seconds: float

    @property
    def mean(self):
        return float(np.mean(self.scores))

    @property
    def std(self):
        return float(np.std(self.scores))

    def ensemble(self):
        """The fold models averaged into one `keras.Model` (needs `return_models=True`)."""
        if not self.models:
            raise ConfigError("The fold models were not kept: call cross_validate(..., return_models=True).")
        return average_ensemble(self.models)

    def summary(self):
        return (f"{self.monitor} {self.mean:.4g} ± {self.std:.2g} over {len(self.scores)} folds "
                f"(best epochs {self.best_epochs})")


def cross_validate(spec, x, y, folds=5, *, build=None, epochs=100, patience=10, batch_size=32,
                   monitor="auto", seed=0, return_models=False, callbacks=None, verbose=0,
                   **model_options):
    """K-fold cross-validation of one configuration, with out-of-fold predictions.

    Each fold trains a fresh model with early stopping on `monitor`, and
    predicts its held-out rows; together they give one out-of-fold
    prediction per row, scored with scikit-learn in `oof_report`.

    Args:
        spec: the `ProblemSpec`.
        x, y: features and labels.
        folds: number of folds, or a list of `(train_idx, val_idx)` pairs.
            Defaults to 5 (stratified for classes; see `make_folds`).
        build: optional `build(hp)` returning a compiled model; by default
            `build_model(spec, input_shape=..., **model_options)`.
        epochs: most epochs per fold. Defaults to 100.
        patience: early-stopping patience; None trains every epoch. Defaults to 10.
        batch_size: examples per step. Defaults to 32.
        monitor: the validation metric to score folds on; "auto" is the spec's
            (`val_loss`).
        seed: seeds folds, weights and shuffles. Defaults to 0.
        return_models: keep the fold models (see `CrossValidationResult.ensemble`).
        callbacks: extra Keras callbacks, copied for each fold.
        verbose: as in `fit`.
        **model_options: `build_model` options (units, dropout, optimizer...).

    Example:

    ```python
    result = kerakit.cross_validate(spec, x, y, folds=5, units=(64,))
    result.summary()          # 'val_loss 0.21 ± 0.03 over 5 folds ...'
    result.oof_predictions.shape, result.oof_report["accuracy"]
    ```
    """
    from kerakit.builders import build_model

    if build is not None and model_options:
        raise ConfigError(
            f"Pass either `build` or build_model options, not both. Received build={build!r} and "
            f"options {sorted(model_options)}."
        )
    y_checked = validate_labels(spec, y)
    if isinstance(folds, (list, tuple)) and len(folds) >= 2:
        splits = list(folds)
    else:
        splits = make_folds(spec, y_checked, folds, seed=seed)
    runner = FoldRunner(spec, x, y_checked, splits, seed=seed)
    monitor = spec.monitor if monitor == "auto" else monitor
    if build is None:
        build_model(spec, input_shape=runner.input_shape, **model_options)  # validates options now
        names = spec.metrics if model_options.get("metrics", "auto") == "auto" else None

        def build(hp):
            return build_model(spec, input_shape=runner.input_shape, hp=hp, **model_options)
    else:
        names = None
    if names is not None:
        check_objective(monitor, logged_names(names, True), True)
    direction = objective_direction(monitor)
    outcome = runner.run(build, None, batch_size=batch_size, epochs=epochs, monitor=monitor,
                         direction=direction, patience=patience, callbacks=callbacks,
                         keep_models=return_models, verbose=verbose)
    from kerakit.training import metrics_report

    return CrossValidationResult(
        monitor=monitor, scores=outcome.scores, fold_metrics=outcome.fold_metrics,
        best_epochs=outcome.best_epochs, oof_predictions=outcome.oof_predictions,
        oof_report=metrics_report(spec, runner.y, outcome.oof_predictions), folds=list(splits),
        models=outcome.models, seconds=outcome.seconds,
    )
