"""`cross_validate` and its `CrossValidationResult`."""

import dataclasses

import numpy as np

from kerakit.crossval._folds import check_splits, make_folds
from kerakit.crossval._runner import (
    FoldRunner,
    average_ensemble,
    check_objective,
    logged_names,
    objective_direction,
)
from kerakit.errors import ConfigError
from kerakit.spec import validate_labels

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
    if isinstance(folds, (list, tuple)):
        splits = check_splits(folds, len(y_checked))
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
