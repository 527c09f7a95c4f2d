"""What a search found: `TuneResult`, the trials table and its plot."""

import dataclasses
import os
from pathlib import Path

from kerakit.tuning.trials import TRIAL_FILE


@dataclasses.dataclass
class TuneResult:
    """What a search found.

    Attributes:
        best_model: the best configuration refit on all training rows (epochs
            from its early stopping), or None with `refit=False` or on a worker.
        best_hyperparameters: the best candidate's values, as the model was built.
        best_score, best_score_std: its objective (mean over folds) and spread.
        best_trial_id: the Keras Tuner trial id of the best candidate.
        objective, direction: what was optimized, "min" or "max".
        trials: a `pandas.DataFrame`, one row per trial (values, score ± std,
            epochs, seconds, worker), also saved as `trials.csv`.
        oof_predictions: with `cv`, the best candidate's out-of-fold
            predictions, one row per training row (also `oof_predictions.npy`).
        fold_models / ensemble: with `cv` and `refit=Refit(ensemble=True)`, the best
            candidate's fold models and their average as one `keras.Model`.
        directory: the search's folder (Keras Tuner's project directory).
        plan: the plan printed before the search ("15 candidates × 3 folds = 45 fits").
        fits: models trained by this process's search (the refit not counted).
        role: "local", "chief" or "worker".
        tuner: the Keras Tuner tuner that ran the search.
        trials_run: ids of the trials this process ran (a resumed search skips
            finished ones; a worker runs its share).
    """

    best_model: object
    best_hyperparameters: dict
    best_score: float
    best_score_std: float
    best_trial_id: object
    objective: str
    direction: str
    trials: object
    oof_predictions: object
    fold_models: list
    ensemble: object
    directory: Path
    plan: str
    fits: int
    role: str
    tuner: object = dataclasses.field(repr=False, default=None)
    trials_run: list = dataclasses.field(default_factory=list)

    def summary(self):
        if self.best_trial_id is None:
            return f"No completed trial ({self.role}). Trials: {len(self.trials)}."
        return (f"best {self.objective} {self.best_score:.4g} ± {self.best_score_std:.2g} "
                f"(trial {self.best_trial_id}) with {self.best_hyperparameters}")


def read_json(path):
    """The JSON object stored at `path`, or {} when it is missing or unreadable."""
    import json

    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return {}


def trials_table(tuner, runner, objective):
    """One row per trial: values, score ± std, epochs, seconds, worker, status."""
    import pandas as pd

    rows = []
    trials = tuner.oracle.trials if not tuner.is_worker else {}
    for trial_id, trial in sorted(trials.items()):
        metrics = trial.metrics

        def last(name, metrics=metrics):
            return metrics.get_last_value(name) if metrics.exists(name) else float("nan")

        info = read_json(os.path.join(tuner.project_dir, f"trial_{trial_id}", TRIAL_FILE))
        row = {"trial": trial_id, "status": "PRUNED" if is_pruned(trial) else trial.status}
        if "grid" in trial.hyperparameters.values:  # a union of grids: which grid (from 1)
            row["grid"] = int(trial.hyperparameters.values["grid"]) + 1
        values = runner.values(trial.hyperparameters)
        row.update({k: (str(v) if isinstance(v, (tuple, list)) else v) for k, v in values.items()})
        row[objective] = last(objective)
        row[f"{objective}_std"] = last(f"{objective}_std")
        for i, score in enumerate(info.get("fold_scores", [])):
            row[f"fold_{i}"] = score
        row["epochs"] = last("epochs")
        row["seconds"] = last("seconds")
        row["worker"] = info.get("worker")
        rows.append(row)
    return pd.DataFrame(rows)


def is_pruned(trial):
    """Whether a Keras Tuner trial was stopped by the search's pruner."""
    metrics = trial.metrics
    return bool(metrics.exists("pruned") and metrics.get_last_value("pruned"))


def finished_curves(tuner):
    """`[(curve, score, pruned)]` of the finished trials: what a pruner learns on resume."""
    finished = []
    for trial_id, trial in sorted(tuner.oracle.trials.items()):
        if trial.status != "COMPLETED":
            continue
        info = read_json(os.path.join(tuner.project_dir, f"trial_{trial_id}", TRIAL_FILE))
        finished.append((info.get("curve") or {}, trial.score, is_pruned(trial)))
    return finished
