"""Optuna's TPE sampler as a Keras Tuner oracle (`tune(..., tuner="tpe")`).

Keras Tuner still runs the search (trial files, resume, the k-fold
objective, chief/worker mode); Optuna only proposes values. Each trial asks
an Optuna study (`study.ask()`) for its values, define-by-run: a
hyperparameter is asked only while it is active (Keras Tuner's
`conditional_scope`, and kerakit's per-layer names `units_i`, which the body
reads only when `depth > i`), so TPE never learns from values a model did
not use. Finished trials are told back (`study.tell`). The study lives in
memory and is rebuilt from the trial files on reload, so a resumed search
continues from everything that finished.

Optuna is an optional extra: `pip install "kerakit[optuna]"`.
"""

import re
import warnings

import keras_tuner
from keras_tuner.engine import trial as trial_module

from kerakit.errors import MissingExtraError

# A per-layer name of a body with a `depth` entry: units_0, dropout_2, ...
_LAYER_NAME = re.compile(r"^[A-Za-z_]\w*?_(\d+)$")


def import_optuna():
    """Optuna, or a kerakit error naming the extra that installs it."""
    try:
        import optuna
    except ImportError:
        raise MissingExtraError(
            "tuner='tpe' needs Optuna, which is not installed. Install the extra: "
            "pip install \"kerakit[optuna]\" (or pip install optuna), or use tuner='random' "
            "or 'bayesian'."
        ) from None
    return optuna


def distribution_of(optuna, hp):
    """The Optuna distribution of a Keras Tuner hyperparameter (None for a fixed one)."""
    dists = optuna.distributions
    if isinstance(hp, keras_tuner.engine.hyperparameters.Fixed):
        return None
    if isinstance(hp, keras_tuner.engine.hyperparameters.Boolean):
        return dists.CategoricalDistribution([False, True])
    if isinstance(hp, keras_tuner.engine.hyperparameters.Choice):
        return dists.CategoricalDistribution(list(hp.values))
    log = getattr(hp, "sampling", "linear") == "log"
    if isinstance(hp, keras_tuner.engine.hyperparameters.Int):
        step = hp.step or 1
        if log:  # Optuna's log scale takes no step; Keras Tuner's log step multiplies
            return dists.IntDistribution(hp.min_value, hp.max_value, log=True)
        return dists.IntDistribution(hp.min_value, hp.max_value, step=step)
    if isinstance(hp, keras_tuner.engine.hyperparameters.Float):
        step = None if (log or not hp.step) else hp.step
        return dists.FloatDistribution(hp.min_value, hp.max_value, log=log, step=step)
    return None


class TPESearch:
    """Mixin for a Keras Tuner `Oracle`: values come from Optuna's `TPESampler`.

    `kerakit.tuning.oracles.TPEOracle` is this mixin on Keras Tuner's
    `Oracle` with kerakit's crash-safe state files.

    Args:
        objective, max_trials, seed, hyperparameters, tune_new_entries,
            allow_new_entries: as for `keras_tuner.Oracle`.
        n_startup_trials: random trials before TPE models the results.
            Defaults to 5 (Optuna's default is 10, too many for small budgets).
        **kwargs: passed to `keras_tuner.Oracle`.

    Example:

    ```python
    result = kk.tune(spec, x, y, tuner="tpe", max_trials=25)
    ```
    """

    def __init__(self, objective=None, max_trials=10, seed=None, hyperparameters=None,
                 tune_new_entries=True, allow_new_entries=True, n_startup_trials=5, **kwargs):
        import_optuna()
        super().__init__(objective=objective, max_trials=max_trials, seed=seed,
                         hyperparameters=hyperparameters, tune_new_entries=tune_new_entries,
                         allow_new_entries=allow_new_entries, **kwargs)
        self.n_startup_trials = n_startup_trials
        self.max_duplicate_asks = 20
        self._study = None
        self._asked = {}  # Keras Tuner trial id -> Optuna trial (asked, not yet told)
        self._told = set()  # Keras Tuner trial ids the study has learned

    # The Optuna side ------------------------------------------------------

    def _direction(self):
        direction = getattr(self.objective, "direction", "min")
        return "maximize" if direction == "max" else "minimize"

    @property
    def study(self):
        """The Optuna study; made on first use, with every finished trial told."""
        if self._study is None:
            optuna = import_optuna()
            optuna.logging.set_verbosity(optuna.logging.WARNING)
            finished = [t for t in self.trials.values() if t.status in ("COMPLETED", "FAILED")]
            # A resumed search must not replay the random start of the first run.
            seed = None if self.seed is None else self.seed + len(finished)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                # constant_liar: trials running on other workers count as pending,
                # so a distributed search does not ask the same point twice.
                sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=self.n_startup_trials,
                                                     constant_liar=True)
            self._study = optuna.create_study(direction=self._direction(), sampler=sampler)
            for trial_id in sorted(self.trials):
                self._tell(self.trials[trial_id])
        return self._study

    def _layer_active(self, name, values):
        """kerakit's per-layer names: `units_i` is read by the body only when depth > i."""
        match = _LAYER_NAME.match(name)
        if match is None or "depth" not in values or name == "depth":
            return True
        try:
            return int(values["depth"]) > int(match.group(1))
        except (TypeError, ValueError):
            return True

    def _active(self, hps, hp):
        return hps.is_active(hp) and self._layer_active(hp.name, hps.values)

    def active_values(self, values):
        """`{name: (value, distribution)}` of the values a trial actually used."""
        optuna = import_optuna()
        hps = keras_tuner.HyperParameters()
        out = {}
        for hp in self.hyperparameters.space:
            hps.merge([hp])
            if hp.name in values:
                hps.values[hp.name] = values[hp.name]
            if not self._active(hps, hp):
                continue
            dist = distribution_of(optuna, hp)
            value = hps.values.get(hp.name)
            if dist is not None and _contains(optuna, dist, value):
                out[hp.name] = (value, dist)
        return out

    def _tell(self, trial):
        """Reports a finished Keras Tuner trial to the study (asked or not)."""
        optuna = import_optuna()
        # A resumed search may end a retried trial before anything was asked:
        # the study is then built here, and has told this trial already.
        study = self.study
        if trial.trial_id in self._told:
            return
        asked = self._asked.pop(trial.trial_id, None)
        pruned = trial.metrics.exists("pruned") and trial.metrics.get_last_value("pruned")
        if trial.status == trial_module.TrialStatus.COMPLETED and pruned:
            # Stopped early by the search's pruner: its partial score is no final one.
            state, value = optuna.trial.TrialState.PRUNED, None
        elif trial.status == trial_module.TrialStatus.COMPLETED and trial.score is not None:
            state, value = optuna.trial.TrialState.COMPLETE, float(trial.score)
        elif trial.status == trial_module.TrialStatus.FAILED:
            state, value = optuna.trial.TrialState.FAIL, None
        else:
            if asked is not None:  # sent for a retry: asked again when it reruns
                study.tell(asked, state=optuna.trial.TrialState.FAIL)
            return
        self._told.add(trial.trial_id)
        if asked is not None:
            study.tell(asked, value, state=state)
            return
        # Finished before this study existed (a reload), or created by a retry.
        used = self.active_values(trial.hyperparameters.values)
        study.add_trial(optuna.trial.create_trial(
            params={name: v for name, (v, _) in used.items()},
            distributions={name: d for name, (_, d) in used.items()},
            value=value, state=state))

    # The Keras Tuner side -------------------------------------------------

    def _ask(self, optuna):
        asked = self.study.ask()
        hps = keras_tuner.HyperParameters()
        for hp in self.hyperparameters.space:
            hps.merge([hp])
            if not self._active(hps, hp):
                continue  # inactive: keeps its default, and TPE never sees it
            dist = distribution_of(optuna, hp)
            if dist is not None:
                hps.values[hp.name] = suggest(asked, hp.name, dist)
        return asked, hps.values

    def populate_space(self, trial_id):
        optuna = import_optuna()
        for _ in range(self.max_duplicate_asks):
            asked, values = self._ask(optuna)
            digest = self._compute_values_hash(values)
            if digest not in self._tried_so_far:
                self._asked[trial_id] = asked
                return {"status": trial_module.TrialStatus.RUNNING, "values": values}
            # A candidate already tried: TPE learns its known score instead of training it again.
            twins = [self.trials[t] for t, h in self._id_to_hash.items() if h == digest and t in self.trials]
            done = [t for t in twins if t.status == "COMPLETED" and t.score is not None]
            if done:
                self.study.tell(asked, float(done[0].score))
            else:
                self.study.tell(asked, state=optuna.trial.TrialState.FAIL)
        # Every recent proposal was a repeat: the space is (nearly) exhausted.
        if self.ongoing_trials:
            return {"status": trial_module.TrialStatus.IDLE, "values": None}
        return {"status": trial_module.TrialStatus.STOPPED, "values": None}

    @keras_tuner.synchronized  # a chief's gRPC threads end trials concurrently
    def end_trial(self, trial):
        super().end_trial(trial)
        self._tell(self.trials[trial.trial_id])

    def reload(self):
        super().reload()
        self._study, self._asked, self._told = None, {}, set()  # rebuilt from the trials on first use


def suggest(asked, name, dist):
    """One define-by-run suggestion through Optuna's public `suggest_*` calls."""
    optuna = import_optuna()
    dists = optuna.distributions
    if isinstance(dist, dists.CategoricalDistribution):
        return asked.suggest_categorical(name, list(dist.choices))
    if isinstance(dist, dists.IntDistribution):
        return asked.suggest_int(name, dist.low, dist.high, step=dist.step, log=dist.log)
    return asked.suggest_float(name, dist.low, dist.high, step=dist.step, log=dist.log)


def _contains(optuna, dist, value):
    if value is None:
        return False
    if isinstance(dist, optuna.distributions.CategoricalDistribution):
        return value in dist.choices
    return dist.low <= value <= dist.high
