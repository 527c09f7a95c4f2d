"""Pruning: a trial whose objective, epoch by epoch, trails the others' is stopped at once.

Keras Tuner has no pruner API; Optuna's pruners decide here, for every
tuner. Each trial reports its objective at the end of every epoch to an
Optuna study kept only for pruning (the oracle still chooses the values):
with one validation split, step `e` is epoch `e`; with k folds, which train
one after another, step `f * epochs + e` is the mean at epoch `e` of folds
0..f, so trials are compared at the same fold and epoch. A pruned trial
raises `TrialPruned` from its Keras callback, which ends its fit and its
remaining folds; it is recorded with status "PRUNED" and never chosen as
the best. On resume the study is rebuilt from the trials' files, so a
pruner judges against every finished trial.
"""

import math

PRUNERS = ("median", "halving", "hyperband")


class TrialPruned(Exception):
    """Raised by the pruning callback: the trial's objective trails the others'."""


def optuna_pruner(name, max_steps):
    """The Optuna pruner kerakit means by `name` ("median", "halving", "hyperband")."""
    from kerakit.tuning.tpe import import_optuna

    optuna = import_optuna()
    # Tuned for kerakit's small budgets: the median pruner waits for 3 finished
    # trials and one epoch (Optuna's defaults, 5 and 0, rarely prune 10 trials).
    factories = {
        "median": lambda: optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1),
        "halving": lambda: optuna.pruners.SuccessiveHalvingPruner(min_resource=1),
        "hyperband": lambda: optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max_steps),
    }
    return factories[name]()


def check_pruner(pruner):
    """`pruner` as given (a name or None), or a kerakit error listing the valid names."""
    from kerakit.errors import unknown_name

    if pruner is not None and pruner not in PRUNERS:
        raise unknown_name("pruner", pruner, PRUNERS)
    return pruner


class Reporter:
    """One trial's reports: per-fold curves in, fold means out to its Optuna trial."""

    def __init__(self, trial, monitor, epochs):
        self.trial, self.monitor, self.epochs = trial, monitor, int(epochs)
        self.folds, self.curve, self.pruned = [], {}, False

    def start_fold(self):
        self.folds.append({})

    def report(self, epoch, logs):
        value = (logs or {}).get(self.monitor)
        if value is None or not math.isfinite(float(value)):
            return
        fold = len(self.folds) - 1
        self.folds[fold][int(epoch)] = float(value)
        # Earlier folds that stopped early count with their last value.
        values = [curve.get(int(epoch), curve[max(curve)]) for curve in self.folds if curve]
        step = fold * self.epochs + int(epoch)
        mean = float(sum(values) / len(values))
        self.trial.report(mean, step)
        self.curve[step] = mean
        if self.trial.should_prune():
            self.pruned = True
            raise TrialPruned(f"pruned at step {step} ({self.monitor} {mean:.4g})")

    @property
    def last(self):
        return self.curve[max(self.curve)] if self.curve else float("nan")


class SearchPruner:
    """The Optuna study a search prunes with (one per process running trials).

    Args:
        name: "median", "halving" or "hyperband" (Optuna's `MedianPruner`,
            `SuccessiveHalvingPruner`, `HyperbandPruner`).
        direction: "min" or "max", the objective's.
        monitor: the logged metric reported each epoch.
        max_steps: the most steps a trial reports (epochs × folds).
    """

    def __init__(self, name, direction, monitor, max_steps):
        self.name, self.direction, self.monitor, self.max_steps = name, direction, monitor, max_steps
        self._study, self._trials = None, {}

    @property
    def study(self):
        if self._study is None:
            from kerakit.tuning.tpe import import_optuna

            optuna = import_optuna()
            optuna.logging.set_verbosity(optuna.logging.WARNING)
            self._study = optuna.create_study(
                direction="maximize" if self.direction == "max" else "minimize",
                pruner=optuna_pruner(self.name, self.max_steps))
        return self._study

    def load(self, finished):
        """Adds finished trials, `[(curve, score, pruned)]`, read back on resume."""
        from kerakit.tuning.tpe import import_optuna

        optuna = import_optuna()
        for curve, score, pruned in finished:
            if not curve:
                continue
            state = optuna.trial.TrialState.PRUNED if pruned else optuna.trial.TrialState.COMPLETE
            value = None if pruned or score is None or not math.isfinite(score) else float(score)
            if value is None:
                state = optuna.trial.TrialState.PRUNED
            self.study.add_trial(optuna.trial.create_trial(
                state=state, value=value, params={}, distributions={},
                intermediate_values={int(step): float(v) for step, v in curve.items()}))

    def begin(self, epochs):
        """A `Reporter` for a new trial training up to `epochs` epochs per fold."""
        return Reporter(self.study.ask(), self.monitor, epochs)

    def end(self, reporter, score):
        from kerakit.tuning.tpe import import_optuna

        optuna = import_optuna()
        if reporter.pruned:
            self.study.tell(reporter.trial, state=optuna.trial.TrialState.PRUNED)
        elif score is None or not math.isfinite(score):
            self.study.tell(reporter.trial, state=optuna.trial.TrialState.FAIL)
        else:
            self.study.tell(reporter.trial, float(score))


def pruning_callback(reporter):
    """A Keras callback reporting each epoch's objective to `reporter` (it may raise `TrialPruned`)."""
    import keras

    class PruningCallback(keras.callbacks.Callback):
        """Reports the objective at each epoch's end; raising `TrialPruned` ends the fit at once."""

        def __init__(self):
            super().__init__()
            self.reporter = reporter

        def __deepcopy__(self, memo):
            return pruning_callback(self.reporter)  # every fold's copy reports to the same trial

        def on_train_begin(self, logs=None):
            self.reporter.start_fold()

        def on_epoch_end(self, epoch, logs=None):
            self.reporter.report(epoch, logs)

    return PruningCallback()
