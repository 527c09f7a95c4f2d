"""Objectives and `FoldRunner`: one configuration trained on every fold, pipelines reused."""

import dataclasses
import math
import os
import time

import numpy as np

from kerakit import metrics_registry
from kerakit._compat import fit_iterators_per_epoch
from kerakit.backend import set_random_seed
from kerakit.errors import ConfigError, DataError, closest
from kerakit.spec import ProblemSpec, validate_labels

# Base metric names (no "val_") whose best value is the largest / smallest:
# views of the one table in kerakit.metrics_registry.
MAXIMIZED = frozenset(n for n, m in metrics_registry.METRICS.items() if m.direction == "max")
MINIMIZED = frozenset(n for n, m in metrics_registry.METRICS.items() if m.direction == "min")

# A fit of at most this many steps in all runs one step per call into
# TensorFlow (see `FoldRunner.steps_per_execution`).
SMALL_FIT_STEPS = 128


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
            callbacks=None, keep_models=False, verbose=0, checkpoint=None):
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
            checkpoint: a `kerakit.tuning.checkpoints.TrialCheckpoint`: saves
                every epoch and, when it holds a saved point, skips the finished
                folds and continues the fold reached from its next epoch.
        """
        import copy

        import keras

        from kerakit.callbacks import TerminateOnNaN
        from kerakit.engines import is_dataset
        from kerakit.training import predict_in_chunks

        if checkpoint is not None and keep_models:
            raise ConfigError("`keep_models=True` cannot be combined with a `checkpoint`: the folds "
                              "finished before a resume have no model in memory. Pass one or the other.")

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
        resume = checkpoint.load() if checkpoint is not None else None
        if resume is not None:
            resume.restore_outcome(outcome)
        for fold in range(len(self.splits)):
            if resume is not None and fold < resume.fold:
                continue  # finished before the kill: its results are in the checkpoint
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
            start_epoch = int(initial_epoch)
            if resume is not None and fold == resume.fold:
                start_epoch = resume.next_epoch
                if is_dataset(train):  # a tf.data pipeline draws a new order at each iter()
                    for _ in range((start_epoch - int(initial_epoch)) * fit_iterators_per_epoch(train)):
                        iter(train)
            if checkpoint is not None:
                fold_callbacks.append(checkpoint.callback(fold, epochs, outcome, fold_callbacks))
            if start_epoch < int(epochs):
                history = self._fit(model, train, val, batch_size=batch_size, epochs=epochs,
                                    initial_epoch=start_epoch, callbacks=fold_callbacks,
                                    verbose=verbose)
                logs, epoch_numbers = history.history, history.epoch
            else:  # the fold had finished before a kill: its callbacks end it as `fit` would
                ending = keras.callbacks.CallbackList(fold_callbacks, model=model)
                ending.on_train_begin()
                ending.on_train_end()
            outcome.fits += 1
            if checkpoint is not None:  # the fold's whole history, the epochs before a kill included
                logs, epoch_numbers = fold_callbacks[-1].history, fold_callbacks[-1].epoch_numbers
            if monitor not in logs:
                raise ConfigError(
                    f"Training did not log {monitor!r}. Logged: {', '.join(sorted(logs))}."
                )
            values = np.asarray(logs[monitor], dtype=np.float64)
            best = int(np.nanargmax(values) if direction == "max" else np.nanargmin(values))
            outcome.scores.append(float(values[best]))
            outcome.best_epochs.append(int(epoch_numbers[best]) + 1)
            for name, series in logs.items():
                outcome.fold_metrics.setdefault(name, []).append(float(series[best]))
            if self.cross_validated:
                rows = self.splits[fold][1]
                # Direct calls in chunks: no predict function is traced for each fold model.
                outcome.oof_predictions[rows] = predict_in_chunks(model, self.x[rows]).reshape(len(rows), -1)
            if save_weights is not None:
                final = _weights_path(save_weights, fold)
                partial = final[: -len(".weights.h5")] + ".partial.weights.h5"
                model.save_weights(partial)
                os.replace(partial, final)
            if keep_models:
                kept = build(hp)
                kept.set_weights(model.get_weights())
                outcome.models.append(kept)
        outcome.seconds = time.perf_counter() - start if checkpoint is None else checkpoint.seconds
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
