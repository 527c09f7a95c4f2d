"""The Keras Tuner oracles (four of its own, Optuna's TPE in `tpe.py`), with crash-safe state and an exact union-of-grids oracle.

Keras Tuner's oracles do the searching. kerakit adds two things they lack:
state files written atomically (a search killed mid-write still reloads),
a reload that never re-runs a completed trial and never loses a started one,
and `UnionGridOracle`, which enumerates a union of grids exactly, candidate
by candidate, so 15 candidates are 15 trials.
"""

import os

import keras_tuner
from keras_tuner.engine import trial as trial_module

from kerakit.atomic import atomic_write_json
from kerakit.tuning.tpe import TPESearch

DONE = (trial_module.TrialStatus.COMPLETED, trial_module.TrialStatus.FAILED)


class CrashSafeOracle:
    """Mixin for Keras Tuner oracles: atomic state files and a careful reload."""

    # Names declared by the search space; other names a model builder reads
    # are left out of the duplicate check (see `_compute_values_hash`).
    declared_names = None

    def save(self):
        atomic_write_json(self._get_oracle_fname(), self.get_state())

    def _save_trial(self, trial):
        atomic_write_json(os.path.join(self._get_trial_dir(trial.trial_id), "trial.json"),
                          trial.get_state())

    def _compute_values_hash(self, values):
        # A builder registers extra names (the body's own settings) in each
        # trial; hashing them would hide repeats of the same candidate.
        if self.declared_names is not None:
            values = {k: v for k, v in values.items()
                      if k in self.declared_names or k.startswith("tuner/")}
        return super()._compute_values_hash(values)

    def reload(self):
        super().reload()
        # The trial files are the truth; the oracle file may be one step behind
        # when the process was killed between the two writes.
        retry = [t for t in dict.fromkeys(self._retry_queue)
                 if t in self.trials and self.trials[t].status not in DONE]
        for trial_id, trial in sorted(self.trials.items()):
            if trial.status in DONE:
                if trial_id not in self.end_order:
                    self.end_order.append(trial_id)
            elif trial_id not in retry:
                retry.append(trial_id)
        self._retry_queue = retry


class RandomSearchOracle(CrashSafeOracle, keras_tuner.oracles.RandomSearchOracle):
    pass


class BayesianOptimizationOracle(CrashSafeOracle, keras_tuner.oracles.BayesianOptimizationOracle):
    pass


class HyperbandOracle(CrashSafeOracle, keras_tuner.oracles.HyperbandOracle):
    def reload(self):
        super().reload()
        # Keras Tuner writes a new trial's file before the oracle file that
        # places it in its bracket: killed in between, the trial is retried but
        # its bracket would still wait for it and add one more. Put it back.
        placed = {info["id"] for bracket in self._brackets for round_ in bracket["rounds"]
                  for info in round_}
        for trial_id, trial in sorted(self.trials.items()):
            values = trial.hyperparameters.values
            if trial_id in placed or "tuner/bracket" not in values:
                continue
            for bracket in self._brackets:
                rounds = bracket["rounds"]
                if bracket["bracket_num"] == values["tuner/bracket"] and values["tuner/round"] < len(rounds):
                    rounds[values["tuner/round"]].append(
                        {"past_id": values.get("tuner/trial_id"), "id": trial_id})
                    break


class UnionGridOracle(CrashSafeOracle, keras_tuner.oracles.GridSearchOracle):
    """Grid search over an explicit list of candidates (a union of grids).

    Keras Tuner's `GridSearchOracle` walks the product of one space. This
    oracle is handed the candidates (`SearchSpace.candidates()`) and gives
    each one to exactly one trial, in order; which candidates are taken is
    read from the trials themselves, so it survives a restart.

    Args:
        candidates: a list of `{name: value}` dicts (Keras Tuner values).
        **kwargs: as for `keras_tuner.oracles.GridSearchOracle`.
    """

    def __init__(self, candidates=None, **kwargs):
        super().__init__(**kwargs)
        self.candidates = None if candidates is None else [dict(c) for c in candidates]

    def _key(self, values):
        return tuple(repr(values.get(name)) for name in sorted(self.candidates[0]))

    def enumerate_space(self):
        # A build(hp) function declares its own space: walk its product.
        import itertools

        params = list(self.hyperparameters.space)
        if any(p.conditions for p in params):
            raise keras_tuner.errors.FatalValueError(
                "Grid search over a build(hp) function with conditional hyperparameters is not "
                "supported. Use tuner='random' or a search-space dict."
            )
        names = [p.name for p in params]
        grids = [list(p.values) if hasattr(p, "values") else [p.value] for p in params]
        return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*grids)]

    def populate_space(self, trial_id):
        if self.candidates is None:
            self.candidates = self.enumerate_space()
        taken = {self._key(t.hyperparameters.values) for t in self.trials.values()}
        for values in self.candidates:
            if self._key(values) not in taken:
                return {"status": trial_module.TrialStatus.RUNNING, "values": dict(values)}
        if self.ongoing_trials:
            return {"status": trial_module.TrialStatus.IDLE, "values": None}
        return {"status": trial_module.TrialStatus.STOPPED, "values": None}

    def end_trial(self, trial):
        # Skip GridSearchOracle's own bookkeeping of the next combination.
        return keras_tuner.Oracle.end_trial(self, trial)


class TPEOracle(CrashSafeOracle, TPESearch, keras_tuner.Oracle):
    __doc__ = TPESearch.__doc__


def _random(objective, max_trials, seed, hyperparameters, tune_new_entries, **_):
    return RandomSearchOracle(objective=objective, max_trials=max_trials, seed=seed,
                              hyperparameters=hyperparameters, tune_new_entries=tune_new_entries)


def _bayesian(objective, max_trials, seed, hyperparameters, tune_new_entries, **_):
    return BayesianOptimizationOracle(objective=objective, max_trials=max_trials, seed=seed,
                                      hyperparameters=hyperparameters,
                                      tune_new_entries=tune_new_entries)


def _hyperband(objective, max_trials, seed, hyperparameters, tune_new_entries, max_epochs=50,
               factor=3, **_):
    oracle = HyperbandOracle(objective=objective, max_epochs=max_epochs, factor=factor, seed=seed,
                             hyperparameters=hyperparameters, tune_new_entries=tune_new_entries)
    # Hyperband sizes its brackets from max_epochs; max_trials only caps them.
    oracle.max_trials = max_trials
    return oracle


def _grid(objective, max_trials, seed, hyperparameters, tune_new_entries, candidates=None, **_):
    return UnionGridOracle(candidates, objective=objective, max_trials=max_trials, seed=seed,
                           hyperparameters=hyperparameters, tune_new_entries=tune_new_entries)


def _tpe(objective, max_trials, seed, hyperparameters, tune_new_entries, **_):
    return TPEOracle(objective=objective, max_trials=max_trials, seed=seed,
                     hyperparameters=hyperparameters, tune_new_entries=tune_new_entries)


# tuner name → oracle factory
ORACLES = {
    "random": _random,
    "grid": _grid,
    "bayesian": _bayesian,
    "hyperband": _hyperband,
    "tpe": _tpe,
}


def hyperband_trials(oracle):
    """Number of trials one Hyperband iteration of `oracle` runs (its bracket sizes)."""
    from kerakit._compat import hyperband_round_sizes

    return sum(hyperband_round_sizes(oracle)) * oracle.hyperband_iterations
