"""Mid-trial checkpoints: a trial killed in the middle continues from its last epoch.

At the end of every epoch, each trial writes one file into its folder
(`kerakit_checkpoint.npz`, atomically): the model's variables (weights and
the layers' seed-generator states), the optimizer's variables (slots, step
count, learning rate), the epoch and fold reached, the fold's history so
far, the state of the callbacks that decide what happens next
(EarlyStopping's counters and best weights, ReduceLROnPlateau's, the
pruning reporter's curve), the random states (Python, NumPy, Keras's global
seed generator) and, under `cv`, the finished folds' scores and out-of-fold
predictions. When a search resumes, Keras Tuner re-runs the trial that was
RUNNING; its `FoldRunner` then skips the finished folds, restores the rest in
the checkpoint callback's `on_train_begin` (after EarlyStopping has reset
itself) and trains from the next epoch. On TensorFlow the fold's input
pipeline is advanced past the epochs already seen, so even the shuffled
order matches; the JAX engine derives each epoch's order from the fold's
seed and the epoch. The file is removed when the trial ends.
"""

import dataclasses
import functools
import json
import random
import time
import warnings
import zipfile
from pathlib import Path

import numpy as np

from kerakit._compat import keras_global_seed_generator
from kerakit.atomic import atomic_path
from kerakit.errors import ConfigError
from kerakit.tuning.pruning import Reporter

CHECKPOINT_FILE = "kerakit_checkpoint.npz"

# Keras callbacks whose counters decide what happens next: the attributes
# kept for each (any `best_weights` list is kept too).
CALLBACK_STATE = {
    "EarlyStopping": ("wait", "stopped_epoch", "best", "best_epoch"),
    "ReduceLROnPlateau": ("wait", "best", "cooldown_counter"),
}


def random_state():
    """`(arrays, meta)` of Python's and NumPy's global random states."""
    version, internal, gauss = random.getstate()
    name, keys, position, has_gauss, cached = np.random.get_state()
    arrays = {"python": np.asarray(internal, dtype=np.int64), "numpy": np.asarray(keys)}
    meta = {"python": [version, gauss], "numpy": [name, int(position), int(has_gauss), float(cached)]}
    return arrays, meta


def set_random_state(arrays, meta):
    """Puts back what `random_state` returned."""
    version, gauss = meta["python"]
    random.setstate((version, tuple(int(v) for v in arrays["python"]), gauss))
    name, position, has_gauss, cached = meta["numpy"]
    np.random.set_state((name, arrays["numpy"], position, has_gauss, cached))


def _plain(value):
    if isinstance(value, (np.generic, np.ndarray)):
        return value.item() if np.ndim(value) == 0 else value.tolist()
    return value


def _stateful(callback):
    """The `CALLBACK_STATE` entry for a callback (matched on its Keras class), or None."""
    import keras

    for name, attributes in CALLBACK_STATE.items():
        if isinstance(callback, getattr(keras.callbacks, name)):
            return attributes
    return None


@dataclasses.dataclass
class Resume:
    """Where a trial stood at its last checkpoint."""

    fold: int
    epoch: int  # the last epoch finished in `fold`
    complete: bool  # the fold had finished (early stop or last epoch) when saved
    state: dict  # the JSON part
    arrays: dict  # name -> NumPy array

    @property
    def next_epoch(self):
        """The fold's `initial_epoch` on resume (its `epochs` when nothing is left to train)."""
        return self.state["epochs"] if self.complete else self.epoch + 1

    def restore_outcome(self, outcome):
        """Puts the finished folds' results into a `FoldsOutcome`."""
        finished = self.state["outcome"]
        outcome.scores[:] = finished["scores"]
        outcome.best_epochs[:] = finished["best_epochs"]
        outcome.fold_metrics.clear()
        outcome.fold_metrics.update(finished["fold_metrics"])
        outcome.fits = finished["fits"]
        if "oof" in self.arrays:
            outcome.oof_predictions = self.arrays["oof"].copy()

    def group(self, prefix):
        """The arrays saved as `prefix/0`, `prefix/1`, ... in order."""
        count = self.state["counts"].get(prefix, 0)
        return [self.arrays[f"{prefix}/{i}"] for i in range(count)]


class TrialCheckpoint:
    """One trial's checkpoint file, in its folder.

    `FoldRunner.run(checkpoint=...)` calls `load` once, `callback` right
    before each fold's fit, and `seconds` at the end; the trial's runner calls
    `remove` when the trial ends.

    Args:
        directory: the trial's folder.

    Example:

    ```python
    checkpoint = TrialCheckpoint(trial_dir)
    outcome = fold_runner.run(build, hp, epochs=20, checkpoint=checkpoint)
    checkpoint.remove()
    ```
    """

    def __init__(self, directory):
        self.path = Path(directory) / CHECKPOINT_FILE
        self.resume = None
        self._start = time.perf_counter()
        self._seconds_before = 0.0

    def load(self):
        """The saved point as a `Resume`, or None when the trial starts afresh."""
        self._start = time.perf_counter()
        if not self.path.exists():
            return None
        try:
            with np.load(self.path, allow_pickle=False) as data:
                arrays = {name: data[name] for name in data.files}
            state = json.loads(str(arrays.pop("state")))
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as error:
            warnings.warn(f"The checkpoint {self.path} cannot be read ({error}); the trial starts "
                          f"over from its first epoch.", stacklevel=2)
            self.path.unlink(missing_ok=True)
            return None
        self._seconds_before = float(state["seconds"])
        self.resume = Resume(fold=int(state["fold"]), epoch=int(state["epoch"]),
                             complete=bool(state["complete"]), state=state, arrays=arrays)
        return self.resume

    @property
    def seconds(self):
        """Training time of the trial, the runs before a kill included."""
        return self._seconds_before + time.perf_counter() - self._start

    def callback(self, fold, epochs, outcome, callbacks):
        """The Keras callback that saves (and, resuming, restores) fold `fold`; call it right before the fit.

        It goes last in the fold's callbacks, so it sees what the others
        decided at each epoch's end. Resuming this fold, it first puts the
        random states back where they were when the fold began (the JAX
        engine draws its shuffle seed before any callback runs).
        """
        resume = self.resume if self.resume is not None and self.resume.fold == fold else None
        if resume is not None:
            set_random_state({k: resume.arrays[f"fold_random/{k}"] for k in ("python", "numpy")},
                             resume.state["fold_random"])
        return _checkpoint_class()(self, fold, epochs, outcome, list(callbacks), resume)

    def save(self, arrays, state):
        """Writes the checkpoint atomically: the previous one stays whole until the new one is.

        Not fsynced (most of the cost of an epoch's write): after a power cut
        the file may be unreadable, and `load` then starts the trial over.
        """
        state = dict(state, seconds=self.seconds)
        arrays = dict(arrays, state=np.asarray(json.dumps(state)))
        with atomic_path(self.path, durable=False) as tmp, open(tmp, "wb") as handle:
            np.savez(handle, **arrays)

    def remove(self):
        """Deletes the checkpoint (the trial has ended)."""
        self.path.unlink(missing_ok=True)
        self.resume = None


@functools.cache
def _checkpoint_class():
    # Made on first use: importing kerakit.tuning must not import Keras (and TensorFlow).
    import keras

    class EpochCheckpoint(keras.callbacks.Callback):
        """Saves the fold's whole training state at each epoch's end; restores it when resuming.

        It also keeps the fold's history from its first epoch, across a kill:
        `history` (name -> values) and `epochs`, read by `FoldRunner`.
        """

        def __init__(self, checkpoint, fold, epochs, outcome, callbacks, resume):
            super().__init__()
            self.checkpoint, self.fold, self.epochs, self.outcome = checkpoint, fold, int(epochs), outcome
            self.others, self.resume = [c for c in callbacks if c is not self], resume
            self.fold_random = random_state()
            self.history, self.epoch_numbers = {}, []
            if resume is not None:
                self.history = {k: list(v) for k, v in resume.state["history"].items()}
                self.epoch_numbers = list(resume.state["epoch_numbers"])

        def _reporters(self):
            return [c.reporter for c in self.others if isinstance(getattr(c, "reporter", None), Reporter)]

        def on_train_begin(self, logs=None):
            if self.resume is not None:  # after EarlyStopping & co. have reset themselves
                self._restore(self.resume)

        def _restore(self, resume):
            model = self.model
            state = resume.state
            for name, variables in (("model", model.variables), ("optimizer", model.optimizer.variables)):
                values = resume.group(name)
                shapes = [tuple(v.shape) for v in variables]
                if [tuple(v.shape) for v in values] != shapes:
                    raise ConfigError(
                        f"The checkpoint {self.checkpoint.path} holds {name} variables of other "
                        f"shapes than this trial's model; it belongs to another model. Delete the "
                        f"file to train the trial from its start. Received: {len(values)} saved "
                        f"variables for {len(shapes)} in the model."
                    )
                for variable, value in zip(variables, values, strict=True):
                    variable.assign(value)
            for index, saved in state["callbacks"].items():
                callback = self.others[int(index)]
                for attribute, value in saved.items():
                    setattr(callback, attribute, value)
                best = resume.group(f"best_weights/{index}")
                if best:
                    callback.best_weights = best
            for reporter, saved in zip(self._reporters(), state["reporters"], strict=False):
                reporter.folds = [{int(e): v for e, v in curve.items()} for curve in saved["folds"]]
                reporter.curve = {int(step): v for step, v in saved["curve"].items()}
                for step, value in sorted(reporter.curve.items()):
                    reporter.trial.report(value, step)  # the pruning study sees the whole curve
            generator = keras_global_seed_generator()
            if generator is not None and "keras_seed" in resume.arrays:
                generator.state.assign(resume.arrays["keras_seed"])
            set_random_state({k: resume.arrays[f"random/{k}"] for k in ("python", "numpy")},
                             state["random"])
            self.resume = None

        def on_epoch_end(self, epoch, logs=None):
            self.epoch_numbers.append(int(epoch))
            for name, value in (logs or {}).items():
                self.history.setdefault(name, []).append(float(value))
            self._save(int(epoch))

        def _save(self, epoch):
            model = self.model
            arrays, counts = {}, {}

            def put(prefix, values):
                counts[prefix] = len(values)
                for i, value in enumerate(values):
                    arrays[f"{prefix}/{i}"] = np.asarray(keras.ops.convert_to_numpy(value))

            put("model", model.variables)
            put("optimizer", model.optimizer.variables)
            callbacks = {}
            for index, callback in enumerate(self.others):
                attributes = _stateful(callback)
                if attributes is None:
                    continue
                callbacks[str(index)] = {a: _plain(getattr(callback, a, None)) for a in attributes}
                if getattr(callback, "best_weights", None) is not None:
                    put(f"best_weights/{index}", callback.best_weights)
            fold_arrays, fold_meta = self.fold_random
            now_arrays, now_meta = random_state()
            for key in ("python", "numpy"):
                arrays[f"fold_random/{key}"] = fold_arrays[key]
                arrays[f"random/{key}"] = now_arrays[key]
            generator = keras_global_seed_generator()
            if generator is not None:
                arrays["keras_seed"] = np.asarray(keras.ops.convert_to_numpy(generator.state.value))
            outcome = self.outcome
            if outcome.oof_predictions is not None:
                arrays["oof"] = outcome.oof_predictions
            self.checkpoint.save(arrays, {
                "fold": self.fold, "epoch": epoch, "epochs": self.epochs,
                "complete": bool(model.stop_training) or epoch + 1 >= self.epochs,
                "history": self.history, "epoch_numbers": self.epoch_numbers, "counts": counts,
                "callbacks": callbacks, "fold_random": fold_meta, "random": now_meta,
                "reporters": [{"folds": r.folds, "curve": r.curve} for r in self._reporters()],
                "outcome": {"scores": outcome.scores, "best_epochs": outcome.best_epochs,
                            "fold_metrics": outcome.fold_metrics, "fits": outcome.fits},
            })

    return EpochCheckpoint
