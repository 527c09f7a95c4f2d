"""A search kept in Optuna's storage (`tune(..., storage=URL)`): many workers, one budget.

Keras Tuner still runs every trial (the tuner, the k-fold objective, the
trial folders); `StorageOracle` keeps its bookkeeping in an Optuna study
instead of `oracle.json`: which trials exist, their values, their status and
score. The study lives in an RDB (`sqlite:///search.db` on one machine,
`postgresql://user@host/db` for many) or a journal file (any other string:
a path, through `optuna.storages.JournalStorage`). Its name comes from the
search's project name and fingerprint, so every worker running the same call
on the same data joins the same study.

- Budget: before asking, a worker counts the study's live trials (complete,
  pruned, running, waiting). A trial asked beyond the budget, or repeating
  the values of an earlier one, is abandoned (recorded FAIL, tagged
  `kerakit.abandoned`, never shown), so concurrent workers split
  `max_trials` exactly, decided by Optuna's trial numbers.
- Failures: a worker records a heartbeat on its running trial every
  `heartbeat_interval` seconds. A running trial silent for `grace_period`
  seconds (its worker was killed) is marked FAIL by whichever worker sees it
  first, and its values are enqueued again, so the budget is still met. The
  heartbeat is a user attribute, so it works on every storage (Optuna 5's
  JournalStorage has no heartbeat of its own).
- Tuners: "random" is Optuna's `RandomSampler`, "tpe" its `TPESampler`,
  "bayesian" its multivariate `TPESampler` (a model-based sampler that needs
  no PyTorch, unlike `GPSampler`), "grid" the search's candidates in order,
  and "hyperband" a `RandomSampler` with Optuna's `HyperbandPruner`
  (Keras Tuner's brackets cannot be shared between workers).
"""

import json
import os
import threading
import time

import keras_tuner
from keras_tuner.engine import trial as trial_module

from kerakit.tuning.tpe import TPESearch, distribution_of, import_optuna, suggest

ABANDONED = "kerakit.abandoned"
VALUES = "kerakit.values"
METRICS = "kerakit.metrics"
WORKER = "kerakit.worker"
HEARTBEAT = "kerakit.heartbeat"


def _key(values):
    return json.dumps({k: v for k, v in values.items() if not k.startswith("tuner/")},
                      sort_keys=True, default=str)


class StorageOracle(TPESearch, keras_tuner.Oracle):
    """A Keras Tuner oracle whose trials live in an Optuna study (see the module's notes).

    Args:
        storage: a `Storage`.
        study_name: the study's name, shared by every worker of the search.
        tuner: "random", "grid", "bayesian", "hyperband" or "tpe".
        budget: the trials of the whole search, over all workers.
        candidates: the candidates of a grid search, in order.
        pruner: an Optuna pruner, or None.
        **kwargs: as for `keras_tuner.Oracle`.
    """

    poll_seconds = 1.0

    def __init__(self, storage, study_name, tuner, budget, candidates=None, pruner=None, **kwargs):
        super().__init__(**kwargs)
        self.storage_options, self.study_name, self.tuner = storage, study_name, tuner
        self.budget, self.candidates, self.optuna_pruner = int(budget), candidates, pruner
        self._storage = None
        self._running = {}  # Keras Tuner trial id -> (Optuna trial id, stop event)
        self._failures, self._exhausted = 0, False

    # The study ---------------------------------------------------------------

    def open_study(self, trials=0):
        optuna = import_optuna()
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        if self._storage is None:
            self._storage = self.storage_options.open()
        # Workers must not draw the same values: the seed differs by process and by trial.
        seed = None if self.seed is None else (self.seed * 1_000_003 + trials * 7919 + os.getpid()) % 2**32
        samplers = {
            "tpe": lambda: optuna.samplers.TPESampler(seed=seed, n_startup_trials=self.n_startup_trials,
                                                      constant_liar=True),
            "bayesian": lambda: optuna.samplers.TPESampler(
                seed=seed, n_startup_trials=self.n_startup_trials, constant_liar=True, multivariate=True),
        }
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            sampler = samplers.get(self.tuner, lambda: optuna.samplers.RandomSampler(seed=seed))()
        return optuna.create_study(storage=self._storage, study_name=self.study_name,
                                   direction=self._direction(), sampler=sampler,
                                   pruner=self.optuna_pruner or optuna.pruners.NopPruner(),
                                   load_if_exists=True)

    def _fail_stale(self, study, trials):
        """Marks running trials whose worker went silent as failed, and enqueues them again."""
        optuna = import_optuna()
        now = time.time()
        for t in trials:
            if t.state != optuna.trial.TrialState.RUNNING or t.user_attrs.get(ABANDONED):
                continue
            alive = max(float(t.user_attrs.get(HEARTBEAT, 0.0)), t.datetime_start.timestamp()
                        if t.datetime_start else 0.0)
            if now - alive < self.storage_options.grace:
                continue
            try:
                self._storage.set_trial_state_values(t._trial_id, optuna.trial.TrialState.FAIL)
            except optuna.exceptions.UpdateFinishedTrialError:
                continue  # another worker took it back first
            study.add_trial(optuna.trial.create_trial(
                state=optuna.trial.TrialState.WAITING, params=t.params, distributions=t.distributions,
                user_attrs={VALUES: t.user_attrs.get(VALUES), "kerakit.retry_of": t.number}))

    def _heartbeat(self, trial_id):
        stop = threading.Event()

        def beat():
            while True:
                try:
                    self._storage.set_trial_user_attr(trial_id, HEARTBEAT, time.time())
                except Exception:  # noqa: BLE001 - the trial ended meanwhile
                    return
                if stop.wait(self.storage_options.heartbeat_interval):
                    return

        self._storage.set_trial_user_attr(trial_id, HEARTBEAT, time.time())
        threading.Thread(target=beat, daemon=True, name=f"kerakit-heartbeat-{trial_id}").start()
        return stop

    # The Keras Tuner side ----------------------------------------------------

    def _live(self, trials):
        optuna = import_optuna()
        states = optuna.trial.TrialState
        live = (states.COMPLETE, states.PRUNED, states.RUNNING, states.WAITING)
        return [t for t in trials if t.state in live and not t.user_attrs.get(ABANDONED)]

    def _values(self, asked):
        """The Keras Tuner values of an asked Optuna trial: enqueued, a grid candidate, or suggested."""
        stored = self._storage.get_trial(asked._trial_id).user_attrs.get(VALUES)
        if stored is not None:  # a dead worker's trial, enqueued again
            return dict(stored)
        if self.tuner == "grid":
            taken = {_key(t.user_attrs.get(VALUES) or {}) for t in self._live(
                asked.study.get_trials(deepcopy=False))}
            free = [c for c in self.candidates if _key(c) not in taken]
            return dict(free[0]) if free else None
        hps = keras_tuner.HyperParameters()
        for hp in self.hyperparameters.space:
            hps.merge([hp])
            if not self._active(hps, hp):
                continue
            dist = distribution_of(import_optuna(), hp)
            if dist is not None:
                hps.values[hp.name] = suggest(asked, hp.name, dist)
        return dict(hps.values)

    def _abandon(self, asked):
        optuna = import_optuna()
        asked.set_user_attr(ABANDONED, True)
        asked.study.tell(asked, state=optuna.trial.TrialState.FAIL)

    def _idle_or_stop(self, trials):
        """STOPPED once the budget is met (or every candidate is taken and none runs), else IDLE."""
        optuna = import_optuna()
        states = optuna.trial.TrialState
        live = self._live(trials)
        done = sum(t.state in (states.COMPLETE, states.PRUNED) for t in live)
        if done >= self.budget or (self._exhausted and done == len(live)):
            return trial_module.Trial(self.get_space(), status=trial_module.TrialStatus.STOPPED)
        time.sleep(self.poll_seconds)  # other workers' trials may still fail and come back
        return trial_module.Trial(self.get_space(), status=trial_module.TrialStatus.IDLE)

    @keras_tuner.synchronized
    def create_trial(self, tuner_id):
        self._exhausted = False
        for _ in range(self.max_duplicate_asks):
            study = self.open_study()
            trials = study.get_trials(deepcopy=False)
            self._fail_stale(study, trials)
            trials = study.get_trials(deepcopy=False)
            live = self._live(trials)
            waiting = any(t.state == import_optuna().trial.TrialState.WAITING for t in live)
            if len(live) >= self.budget and not waiting:  # a waiting retry is asked next
                return self._idle_or_stop(trials)
            study = self.open_study(len(trials))
            asked = study.ask()
            values = self._values(asked)
            if values is None:  # a grid with every candidate taken
                self._abandon(asked)
                self._exhausted = True
                return self._idle_or_stop(study.get_trials(deepcopy=False))
            asked.set_user_attr(VALUES, values)
            asked.set_user_attr(WORKER, tuner_id)
            earlier = [t for t in self._live(study.get_trials(deepcopy=False)) if t.number < asked.number]
            if len(earlier) >= self.budget or any(
                    _key(t.user_attrs.get(VALUES) or {}) == _key(values) for t in earlier):
                self._abandon(asked)  # over the budget, or a repeat: decided by trial number
                continue
            trial_id = f"{asked.number:04d}"
            hps = self.hyperparameters.copy()
            hps.values = dict(values)
            trial = trial_module.Trial(hps, trial_id=trial_id, status=trial_module.TrialStatus.RUNNING)
            self._running[trial_id] = (asked, self._heartbeat(asked._trial_id))
            self.trials[trial_id] = trial
            self.ongoing_trials[tuner_id] = trial
            self._save_trial(trial)
            return trial
        self._exhausted = True
        return self._idle_or_stop(self.open_study().get_trials(deepcopy=False))

    def current_trial(self, trial_id):
        """The Optuna trial behind a running Keras Tuner trial (pruning reports to it)."""
        return self._running[trial_id][0]

    @keras_tuner.synchronized
    def end_trial(self, trial):
        optuna = import_optuna()
        asked, stop = self._running.pop(trial.trial_id)
        stop.set()
        for tuner_id, ongoing in list(self.ongoing_trials.items()):
            if ongoing.trial_id == trial.trial_id:
                del self.ongoing_trials[tuner_id]
        metrics = {name: trial.metrics.get_last_value(name) for name in trial.metrics.metrics}
        asked.set_user_attr(METRICS, {k: (None if v is None else float(v)) for k, v in metrics.items()})
        score = metrics.get(self.objective.name)
        states = optuna.trial.TrialState
        if trial.status == trial_module.TrialStatus.COMPLETED and metrics.get("pruned"):
            asked.study.tell(asked, state=states.PRUNED)
        elif trial.status == trial_module.TrialStatus.COMPLETED and score is not None:
            self._failures = 0
            asked.study.tell(asked, float(score))
        else:
            self._failures += 1
            asked.study.tell(asked, state=states.FAIL)
            if self._failures >= 3:
                raise keras_tuner.errors.FatalError(
                    f"3 trials in a row failed on this worker; the last one said:\n{trial.message}")
        self.trials[trial.trial_id] = trial
        self._save_trial(trial)

    def sync(self):
        """Fills `trials` with every trial of the study, from all workers (the trials table)."""
        optuna = import_optuna()
        states = optuna.trial.TrialState
        status = {states.COMPLETE: "COMPLETED", states.PRUNED: "COMPLETED", states.FAIL: "FAILED",
                  states.RUNNING: "RUNNING", states.WAITING: "IDLE"}
        self.trials = {}
        for t in self.open_study().get_trials(deepcopy=False):
            if t.user_attrs.get(ABANDONED) or t.user_attrs.get(VALUES) is None:
                continue
            hps = self.hyperparameters.copy()
            hps.values = dict(t.user_attrs[VALUES])
            trial = trial_module.Trial(hps, trial_id=f"{t.number:04d}", status=status[t.state])
            for name, value in (t.user_attrs.get(METRICS) or {}).items():
                if value is not None:
                    trial.metrics.register(name, direction=self.objective.direction
                                           if name == self.objective.name else "min")
                    trial.metrics.update(name, value)
            if t.state == states.PRUNED and not trial.metrics.exists("pruned"):
                trial.metrics.register("pruned", direction="min")
                trial.metrics.update("pruned", 1.0)
            trial.score = t.value
            self.trials[trial.trial_id] = trial
        return self.trials

    def count(self):
        """`(finished, budget)`: trials complete or pruned in the study, and the search's budget."""
        optuna = import_optuna()
        finished = [t for t in self._live(self.open_study().get_trials(deepcopy=False))
                    if t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)]
        return len(finished), self.budget

    def save(self):
        pass  # the study is the state

    def reload(self):
        self.sync()


class StoragePruning:
    """`SearchPruner`'s interface for a shared search: reports go to the trial's Optuna trial.

    The study's pruner (`StorageOracle.optuna_pruner`) then judges each epoch
    against every worker's trials.
    """

    def __init__(self, oracle, monitor):
        self.oracle, self.monitor = oracle, monitor
        self.trial_id = None

    def begin(self, epochs):
        from kerakit.tuning.pruning import Reporter

        return Reporter(self.oracle.current_trial(self.trial_id), self.monitor, epochs)

    def end(self, reporter, score):
        pass  # the oracle tells the study when the trial ends
