"""The Keras Tuner `Tuner` that runs kerakit's trials (`tuner_class`).

Keras Tuner's oracles choose the candidates; this tuner runs each one
through a `TrialRunner` (in this process) or a `TrialPool` (a child
process), writes its state files atomically, and plays the chief or a
worker of Keras Tuner's distributed mode. Keras Tuner is imported only when
the class is made.
"""

import os

from kerakit._compat import tuner_is_worker, tuner_state_file
from kerakit.atomic import atomic_write_json
from kerakit.tuning import distributed


def tuner_class():
    """`KerakitTuner`, a `keras_tuner.Tuner` whose trials are k-fold (or one-split) kerakit trainings."""
    import keras_tuner

    class KerakitTuner(keras_tuner.Tuner):
        """A Keras Tuner `Tuner` whose trials are k-fold (or one-split) kerakit trainings."""

        def __init__(self, oracle, runner, pool=None, worker_timeout=60.0, chief_timeout=None,
                     print_fn=print, pruner=None, tracking=None, **kwargs):
            self.runner, self.pool, self.pruner, self.tracking = runner, pool, pruner, tracking
            self.worker_timeout, self.chief_timeout, self.print_fn = worker_timeout, chief_timeout, print_fn
            self.fits, self.trials_run = 0, []
            # Keras Tuner reloads only when its tuner file exists, which is first
            # written after the first trial ends: a search killed in between would
            # start over. The oracle file is the sign that there is a search to resume.
            project = os.path.join(str(kwargs["directory"]), kwargs["project_name"])
            tuner_file = os.path.join(project, f"{os.environ.get('KERASTUNER_TUNER_ID', 'tuner0')}.json")
            if (not kwargs.get("overwrite") and os.path.exists(os.path.join(project, "oracle.json"))
                    and not os.path.exists(tuner_file)):
                atomic_write_json(tuner_file, {})
            super().__init__(oracle=oracle, **kwargs)

        @property
        def is_worker(self):
            return tuner_is_worker(self)

        def run_trial(self, trial, *args, **kwargs):
            from kerakit.tracking import trial_run

            hp = trial.hyperparameters
            parent = hp.values.get("tuner/trial_id")
            warm = self.get_trial_dir(parent) if parent is not None else None
            trial_dir = self.get_trial_dir(trial.trial_id)
            if hasattr(self.pruner, "trial_id"):  # a shared search's pruning: this trial's reports
                self.pruner.trial_id = trial.trial_id
            with trial_run(trial.trial_id, self.runner.values(hp), parent=self.tracking) as logged:
                # The run pickles: a trial in a child process logs to it too.
                callbacks = [logged.callback()] if logged is not None else []
                if self.pool is not None:
                    metrics, fits = self.pool.run(hp.get_config(), trial_dir, self.tuner_id, warm, callbacks)
                else:
                    metrics, fits = self.runner.run(hp, trial_dir, self.tuner_id, warm, pruner=self.pruner,
                                                    callbacks=callbacks)
                if logged is not None:
                    logged.log_metrics({k: v for k, v in metrics.items() if k != "pruned"})
                    if metrics.get("pruned"):
                        logged.mark_pruned()
            self.fits += fits
            self.trials_run.append(trial.trial_id)
            return metrics

        def save(self):
            if not self.is_worker:
                self.oracle.save()
            atomic_write_json(tuner_state_file(self), self.get_state())

        def search(self, *args, **kwargs):
            role = distributed.role()
            if role == "chief":
                self.oracle.verbose = kwargs.get("verbose", 1)
                self.save()
                distributed.serve_chief(self.oracle, self.chief_timeout, print_fn=self.print_fn)
                return
            if role == "worker":
                import grpc

                distributed.bound_worker_calls(self.worker_timeout)
                try:
                    return super().search(*args, **kwargs)
                except grpc.RpcError as error:
                    raise distributed.worker_error(error, self.worker_timeout) from None
            return super().search(*args, **kwargs)

    return KerakitTuner
