"""Running one candidate: how it is built, trained on the folds, and reported.

`SpecBuilder` turns a search-space candidate into a `build_model` call;
`TrialRunner` trains it on every fold and writes the trial's files;
`TrialPool` runs trials in a child process renewed every N trials.
"""

import os

import numpy as np

from kerakit.atomic import atomic_path, atomic_write_json
from kerakit.crossval import FoldRunner
from kerakit.errors import ConfigError
from kerakit.tuning.checkpoints import TrialCheckpoint
from kerakit.tuning.spaces import FIT_OPTIONS

# build_model keywords a space may set; anything else is a hyperparameter
# name the body reads itself (depth, units_0, ...).
BUILD_OPTIONS = ("units", "dropout", "l1", "l2", "batchnorm", "optimizer", "learning_rate")
TRIAL_FILE = "kerakit_trial.json"


# Building models ------------------------------------------------------------


class SpecBuilder:
    """`build(hp)` for a search-space dict: decodes the trial's values and calls `build_model`.

    The body reads its settings from a fresh `HyperParameters` holding only
    this candidate's values, so a name the candidate does not set keeps the
    body's own default.
    """

    def __init__(self, spec, input_shape, body, space, tuner, preprocessor=None):
        from kerakit.builders import get_body

        self.spec, self.input_shape, self.space, self.tuner = spec, tuple(input_shape), space, tuner
        self.body = get_body(body)
        self.preprocessor = preprocessor
        self.build_options = set(BUILD_OPTIONS) | set(self.body.options)

    def split(self, values):
        options = {k: v for k, v in values.items() if k in self.build_options}
        raw = {k: v for k, v in values.items()
               if k not in self.build_options and k not in FIT_OPTIONS}
        return options, raw

    def build(self, values):
        import keras
        import keras_tuner

        from kerakit.builders import build_model

        options, raw = self.split(values)
        body_hp = keras_tuner.HyperParameters()
        for name, value in raw.items():
            body_hp.Fixed(name, value)
        if self.preprocessor is not None:
            inputs = keras.Input(shape=self.input_shape, name="features")
            return build_model(self.spec, inputs=inputs, preprocessor=self.preprocessor(),
                               body=self.body, hp=body_hp, **options)
        return build_model(self.spec, input_shape=self.input_shape, body=self.body, hp=body_hp,
                           **options)

    def __call__(self, hp):
        return self.build(self.space.decode(hp.values, self.tuner))

    def check(self):
        """Refuses, before any training, names no builder reads and values a builder refuses."""
        import keras_tuner

        from kerakit.builders import build_model
        from kerakit.errors import closest
        from kerakit.optimizers import get_optimizer

        # Build once with a fresh HyperParameters: it records every name read.
        probe = keras_tuner.HyperParameters()
        build_model(self.spec, input_shape=self.input_shape, body=self.body, hp=probe)
        read = set(probe.values)
        prefixes = {n.rsplit("_", 1)[0] for n in read if n.rsplit("_", 1)[-1].isdigit()}
        known = read | self.build_options | set(FIT_OPTIONS)
        for name in self.space.names:
            base, _, index = name.rpartition("_")
            if name in known or (index.isdigit() and base in prefixes):
                continue
            hint = closest(name, sorted(known))
            did_you_mean = f" Did you mean {hint!r}?" if hint else ""
            raise ConfigError(
                f"The search space sets {name!r}, which neither build_model nor the "
                f"{self.body.name!r} body reads.{did_you_mean} Names they read: "
                f"{', '.join(sorted(read | self.build_options))}; fit options: "
                f"{', '.join(FIT_OPTIONS)}."
            )
        grids = len(self.space.grids)
        for index, name, value in self.space.extremes():
            where = f"grid {index + 1} of the search space" if grids > 1 else "the search space"
            try:
                if name in ("batch_size", "epochs"):
                    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                        raise ConfigError(f"`{name}` must be a positive integer.")
                elif name == "optimizer":
                    get_optimizer(value)
                elif name == "learning_rate":
                    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                        raise ConfigError("`learning_rate` must be a positive number.")
                elif name in self.build_options:
                    self.body.pin(keras_tuner.HyperParameters(), **{name: value})
            except ConfigError as error:
                raise type(error)(
                    f"In {where}, {name}={value!r} cannot be used: {error} Remove it or change it "
                    f"before searching."
                ) from None


def fit_options(values, settings):
    """`(batch_size, epochs)` of a candidate: its own values, else the search's settings."""
    batch_size = values.get("batch_size", settings["batch_size"])
    epochs = values.get("epochs", settings["epochs"])
    return int(batch_size), int(epochs)


# Running one trial ----------------------------------------------------------


def memory_mb():
    """(current, peak) resident memory of this process in MB, from /proc (Linux)."""
    try:
        with open("/proc/self/status") as handle:
            fields = dict(line.split(":", 1) for line in handle if ":" in line)
        return (int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024)
    except (OSError, KeyError, ValueError):
        return (float("nan"), float("nan"))


class TrialRunner:
    """Runs one candidate on every fold and reports its score to the oracle."""

    def __init__(self, folds, build, space, settings):
        self.folds, self.build, self.space, self.settings = folds, build, space, settings

    def values(self, hp):
        if self.space is not None:
            return self.space.decode(hp.values, self.settings["tuner"])
        return dict(hp.values)

    def run(self, hp, trial_dir, tuner_id, warm_start=None, pruner=None, callbacks=()):
        """Trains `hp` on every fold; returns `(metrics for the oracle, fits)`.

        With `pruner` (a `SearchPruner`), the objective is reported at every
        epoch and a trial that trails the others stops at once, with
        `pruned: 1` among its metrics.

        Every epoch ends with a checkpoint in `trial_dir`
        (`kerakit.tuning.checkpoints`): a trial killed in the middle continues
        from there when it runs again. The checkpoint is removed when the
        trial ends (completed, pruned or failed).
        """
        import time

        from kerakit.tuning.pruning import TrialPruned, pruning_callback

        s = self.settings
        values = self.values(hp)
        # Every trial starts from the same draw (weights, fold shuffles), whatever
        # ran before it in this process: a resumed search scores as an uninterrupted one.
        self.folds.reset_pipelines()
        batch_size, epochs = fit_options(values, s)
        initial_epoch = 0
        if "tuner/epochs" in hp.values:  # Hyperband decides the epochs of each round
            epochs = int(hp.values["tuner/epochs"])
            if warm_start is not None:
                initial_epoch = int(hp.values.get("tuner/initial_epoch", 0))
        callbacks = list(s["callbacks"]) + list(callbacks)
        reporter = pruner.begin(epochs) if pruner is not None else None
        if reporter is not None:
            callbacks.append(pruning_callback(reporter))
        start = time.perf_counter()
        checkpoint = TrialCheckpoint(trial_dir)
        try:
            outcome = self.folds.run(
                self.build, hp, batch_size=batch_size, epochs=epochs, monitor=s["objective"],
                direction=s["direction"], patience=s["patience"], initial_epoch=initial_epoch,
                warm_start=warm_start, save_weights=trial_dir if s["save_weights"] else None,
                callbacks=callbacks, checkpoint=checkpoint)
        except TrialPruned:
            checkpoint.remove()
            pruner.end(reporter, None)
            return self._pruned(reporter, trial_dir, tuner_id, batch_size, time.perf_counter() - start)
        except Exception:
            checkpoint.remove()  # a failed trial that is retried starts over
            raise
        resumed = checkpoint.resume
        if reporter is not None:
            pruner.end(reporter, outcome.mean)
        if outcome.oof_predictions is not None:
            with atomic_path(os.path.join(trial_dir, "oof.npy")) as tmp:
                np.save(tmp, outcome.oof_predictions)
        rss, peak = memory_mb()
        atomic_write_json(os.path.join(trial_dir, TRIAL_FILE), {
            "worker": tuner_id, "pid": os.getpid(), "fold_scores": outcome.scores,
            "best_epochs": outcome.best_epochs, "seconds": outcome.seconds, "fits": outcome.fits,
            "batch_size": batch_size, "rss_mb": rss, "peak_rss_mb": peak,
            "curve": reporter.curve if reporter is not None else {},
            "resumed_from": None if resumed is None else {"fold": resumed.fold,
                                                          "epoch": resumed.next_epoch},
        })
        checkpoint.remove()
        name = s["objective"]
        metrics = {name: outcome.mean, f"{name}_std": outcome.std,
                   "epochs": float(np.mean(outcome.best_epochs)), "seconds": outcome.seconds,
                   "pruned": 0.0}
        return metrics, outcome.fits

    def _pruned(self, reporter, trial_dir, tuner_id, batch_size, seconds):
        """The metrics of a pruned trial: its last reported fold mean, marked `pruned`."""
        rss, peak = memory_mb()
        atomic_write_json(os.path.join(trial_dir, TRIAL_FILE), {
            "worker": tuner_id, "pid": os.getpid(), "fold_scores": [], "seconds": seconds,
            "fits": len(reporter.folds), "batch_size": batch_size, "rss_mb": rss,
            "peak_rss_mb": peak, "curve": reporter.curve, "pruned": True,
        })
        name = self.settings["objective"]
        epochs = max(len(curve) for curve in reporter.folds) if reporter.folds else 0
        metrics = {name: reporter.last, "epochs": float(epochs), "seconds": seconds, "pruned": 1.0}
        return metrics, len(reporter.folds)


# Trials in a fresh process --------------------------------------------------

_WORKER_RUNNER = None


def _init_worker(payload):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    global _WORKER_RUNNER
    folds = FoldRunner(payload["spec"], payload["x"], payload["y"], payload["splits"],
                       validation_data=payload["validation_data"], seed=payload["seed"])
    _WORKER_RUNNER = TrialRunner(folds, payload["build"], payload["space"], payload["settings"])


def _run_in_worker(hp_config, trial_dir, tuner_id, warm_start, callbacks=()):
    import keras_tuner

    hp = keras_tuner.HyperParameters.from_config(hp_config)
    return _WORKER_RUNNER.run(hp, trial_dir, tuner_id, warm_start, callbacks=callbacks)


class TrialPool:
    """Runs trials in a child process that is replaced every `trials_per_process` trials.

    TensorFlow keeps a few MB per model it has seen; a fresh process returns
    them, so a long search stays flat in memory. The data travel once per
    process, not once per trial.
    """

    def __init__(self, payload, trials_per_process=20):
        self.payload, self.limit = payload, int(trials_per_process)
        self._executor, self._used = None, 0

    def run(self, *args):
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        if self._executor is None or self._used >= self.limit:
            self.close()
            self._executor = ProcessPoolExecutor(
                max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker, initargs=(self.payload,))
            self._used = 0
        self._used += 1
        return self._executor.submit(_run_in_worker, *args).result()

    def close(self):
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
