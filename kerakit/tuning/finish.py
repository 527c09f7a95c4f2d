"""The last step of a search: the trials table and plot, the best trial, its refit and ensemble.

`finish_search(plan, tuner)` turns a finished Keras Tuner search into a
`TuneResult` and writes its files (trials.csv, trials.png,
best_hyperparameters.json, oof_predictions.npy, best_model.keras).
"""

from pathlib import Path

import numpy as np

from kerakit.atomic import atomic_path, atomic_write_json
from kerakit.crossval import FoldRunner, average_ensemble
from kerakit.plots.tuning import plot_trials
from kerakit.tuning.results import TuneResult, is_pruned, trials_table
from kerakit.tuning.trials import fit_options


def _best_epochs(trial):
    if trial.metrics.exists("epochs"):
        return max(1, int(round(trial.metrics.get_last_value("epochs"))))
    return None


def finish_search(plan, tuner_obj):
    """The `TuneResult` of `plan` (a `SearchPlan`) once `tuner_obj` has searched."""
    table = trials_table(tuner_obj, plan.trial_runner, plan.objective)
    result = TuneResult(best_model=None, best_hyperparameters={}, best_score=float("nan"),
                        best_score_std=float("nan"), best_trial_id=None, objective=plan.objective,
                        direction=plan.direction, trials=table, oof_predictions=None, fold_models=[],
                        ensemble=None, directory=Path(tuner_obj.project_dir), plan=tuner_obj.plan_text,
                        fits=tuner_obj.fits, role=plan.role, tuner=tuner_obj,
                        trials_run=list(tuner_obj.trials_run))
    if plan.role == "worker":
        return result
    _write_table(result)
    trials = tuner_obj.oracle.get_best_trials(len(tuner_obj.oracle.trials))
    best = [t for t in trials if t.status == "COMPLETED" and not is_pruned(t)]
    if best:
        _take_best(result, best[0], tuner_obj, plan)
    return result


def _write_table(result):
    with atomic_path(result.directory / "trials.csv") as tmp:
        result.trials.to_csv(tmp, index=False)
    with atomic_path(result.directory / "trials.png") as tmp:
        plot_trials(result.trials, result.objective, result.direction).savefig(tmp)


def _take_best(result, best, tuner_obj, plan):
    """Fills the best trial's score, values and OOF predictions; refits it; loads its fold models."""
    import keras_tuner

    options, project = plan.options, result.directory
    hp = best.hyperparameters
    values = plan.trial_runner.values(hp)
    metrics = best.metrics
    result.best_trial_id = best.trial_id
    result.best_hyperparameters = values
    result.best_score = float(metrics.get_last_value(result.objective))
    std_name = f"{result.objective}_std"
    result.best_score_std = float(metrics.get_last_value(std_name)) if metrics.exists(std_name) else 0.0
    trial_dir = Path(tuner_obj.get_trial_dir(best.trial_id))
    atomic_write_json(project / "best_hyperparameters.json",
                      {"trial": best.trial_id, "score": result.best_score,
                       "score_std": result.best_score_std,
                       "values": {k: (list(v) if isinstance(v, tuple) else v) for k, v in values.items()}})
    folds = options.folds
    if folds and (trial_dir / "oof.npy").exists():
        result.oof_predictions = np.load(trial_dir / "oof.npy")
        with atomic_path(project / "oof_predictions.npy") as tmp:
            np.save(tmp, result.oof_predictions)
    if options.refit.model:
        batch_size, _ = fit_options(values, plan.settings)
        refitter = FoldRunner(plan.spec, plan.refit_data[0], plan.refit_data[1], seed=options.seed)
        epochs = _best_epochs(best) or plan.settings["epochs"]
        result.best_model = refitter.fit_all(plan.build, keras_tuner.HyperParameters.from_config(
            hp.get_config()), batch_size=batch_size, epochs=epochs)
        with atomic_path(project / "best_model.keras") as tmp:
            result.best_model.save(tmp)
    if options.refit.ensemble and folds:
        models = []
        for fold in range(folds):
            model = plan.build(hp)
            model.optimizer.build(model.trainable_variables)  # so its saved state loads too
            model.load_weights(str(trial_dir / f"fold_{fold}.weights.h5"))
            models.append(model)
        result.fold_models = models
        result.ensemble = average_ensemble(models)
