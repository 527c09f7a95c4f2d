"""Mid-trial checkpoints: a trial stopped in the middle continues from its last epoch, with the same result."""

import functools
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

import kerakit as kk
from kerakit.crossval import FoldRunner, make_folds
from kerakit.tuning.checkpoints import CHECKPOINT_FILE, TrialCheckpoint

ROOT = Path(__file__).resolve().parents[2]


class Stop(Exception):
    """Stands for a kill: raised at the start of one epoch of one fold."""


class EpochLog(keras.callbacks.Callback):
    """Records `(fold, epoch)` of every epoch begun; raises `Stop` at `stop_at` (the first time)."""

    def __init__(self, stop_at=None):
        super().__init__()
        self.begun, self.fold, self.stop_at = [], -1, stop_at

    def __deepcopy__(self, memo):
        return self  # one log for every fold's copy

    def on_train_begin(self, logs=None):
        self.fold += 1

    def on_epoch_begin(self, epoch, logs=None):
        if (self.fold, epoch) == self.stop_at:
            self.stop_at = None
            raise Stop()
        self.begun.append((self.fold, epoch))


def _data(n=60, features=5):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, features)).astype("float32")
    y = (x[:, 0] + 0.5 * x[:, 1] + rng.normal(scale=0.5, size=n) > 0).astype("int32")
    return x, y


def _build(hp=None, learning_rate=0.05):
    inputs = keras.Input((5,))
    hidden = keras.layers.Dense(8, activation="relu")(inputs)
    hidden = keras.layers.Dropout(0.3)(hidden)  # a seed generator whose state must survive
    outputs = keras.layers.Dense(1, activation="sigmoid")(hidden)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="binary_crossentropy")
    return model


def _runner(x, y):
    spec = kk.ProblemSpec(task="binary")
    return FoldRunner(spec, x, y, make_folds(spec, y, 2, seed=0), seed=0)


def _run(runner, checkpoint, callbacks, build=_build, epochs=5):
    callbacks = callbacks if isinstance(callbacks, list) else [callbacks]
    return runner.run(build, batch_size=16, epochs=epochs, monitor="val_loss", patience=3,
                      callbacks=callbacks, checkpoint=checkpoint)


@pytest.mark.backends
def test_a_stopped_fold_run_resumes_at_its_fold_and_epoch_with_the_same_result(tmp_path):
    x, y = _data()
    # A fast learning rate: fold 1's validation loss is best at epoch 2 and worse from epoch 3
    # on, so the resumed fold ends on EarlyStopping's best weights only if they were kept.
    build = functools.partial(_build, learning_rate=0.5)

    def plateau():
        return keras.callbacks.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=1, min_delta=0.01)

    whole_log = EpochLog()
    whole = _run(_runner(x, y), TrialCheckpoint(tmp_path / "whole"), [whole_log, plateau()], build, 6)
    # Stop fold 1 two epochs after its best one (or at its last epoch): the checkpoint then
    # holds EarlyStopping's best weights from before the stop.
    last = max(epoch for fold, epoch in whole_log.begun if fold == 1)
    stop = min(whole.best_epochs[1] + 1, last)

    checkpoint = TrialCheckpoint(tmp_path / "stopped")
    with pytest.raises(Stop):
        _run(_runner(x, y), checkpoint, [EpochLog(stop_at=(1, stop)), plateau()], build, 6)
    saved = np.load(checkpoint.path)
    state = json.loads(str(saved["state"]))
    assert (state["fold"], state["epoch"]) == (1, stop - 1)
    assert state["outcome"]["scores"] == whole.scores[:1]  # fold 0 finished before the stop
    early_stopping = state["callbacks"]["0"]
    assert set(early_stopping) == {"wait", "stopped_epoch", "best", "best_epoch"}
    assert early_stopping["best"] is not None and "best_weights/0/0" in saved.files
    assert set(state["callbacks"]["3"]) == {"wait", "best", "cooldown_counter"}  # ReduceLROnPlateau

    # A new process: other random states, fresh pipelines, a model built again.
    random.seed(123)
    np.random.seed(123)
    log = EpochLog()
    resumed = _run(_runner(x, y), TrialCheckpoint(tmp_path / "stopped"), [log, plateau()], build, 6)
    assert log.begun[0] == (0, stop)  # the first fold run here is fold 1, from the stopped epoch
    assert log.fold == 0 and all(epoch >= stop for _, epoch in log.begun)
    np.testing.assert_allclose(resumed.scores, whole.scores, rtol=1e-5, atol=1e-6)
    assert resumed.best_epochs == whole.best_epochs and resumed.fits == whole.fits == 2
    np.testing.assert_allclose(resumed.oof_predictions, whole.oof_predictions, rtol=1e-4, atol=1e-5)
    for name, values in whole.fold_metrics.items():
        np.testing.assert_allclose(resumed.fold_metrics[name], values, rtol=1e-5, atol=1e-6)


@pytest.mark.backends
def test_a_fold_that_had_finished_when_stopped_is_not_trained_again(tmp_path):
    x, y = _data()
    spec = kk.ProblemSpec(task="binary")
    runner = FoldRunner(spec, x, y, validation_data=_data(20), seed=0)
    whole = runner.run(_build, batch_size=16, epochs=3, patience=None,
                       checkpoint=TrialCheckpoint(tmp_path / "whole"))
    # The last epoch's checkpoint is written, then the process dies before the trial ends.
    checkpoint = TrialCheckpoint(tmp_path / "stopped")
    runner.reset_pipelines()
    runner.run(_build, batch_size=16, epochs=3, patience=None, checkpoint=checkpoint)
    assert checkpoint.path.exists()
    runner.reset_pipelines()
    log = EpochLog()
    resumed = runner.run(_build, batch_size=16, epochs=3, patience=None, callbacks=[log],
                         checkpoint=TrialCheckpoint(tmp_path / "stopped"))
    assert log.begun == []
    np.testing.assert_allclose(resumed.scores, whole.scores, rtol=1e-6)
    assert resumed.best_epochs == whole.best_epochs


@pytest.mark.backends
def test_a_resumed_trial_reports_its_whole_curve_to_the_pruner(tmp_path):
    pytest.importorskip("optuna")
    from kerakit.tuning.pruning import SearchPruner, pruning_callback

    x, y = _data()
    pruner = SearchPruner("median", "min", "val_loss", max_steps=10)
    whole = pruner.begin(5)
    _run(_runner(x, y), TrialCheckpoint(tmp_path / "whole"), pruning_callback(whole))
    stopped = pruner.begin(5)
    with pytest.raises(Stop):
        _run(_runner(x, y), TrialCheckpoint(tmp_path / "stopped"), [pruning_callback(stopped), EpochLog((1, 3))])
    assert max(stopped.curve) == 7  # fold 1 (steps 5-9) reported up to epoch 2
    resumed = pruner.begin(5)
    _run(_runner(x, y), TrialCheckpoint(tmp_path / "stopped"), pruning_callback(resumed))
    assert sorted(resumed.curve) == sorted(whole.curve)
    np.testing.assert_allclose([resumed.curve[s] for s in sorted(whole.curve)],
                               [whole.curve[s] for s in sorted(whole.curve)], rtol=1e-5)
    # The new Optuna trial holds the steps reported before the stop too.
    assert sorted(pruner.study.trials[resumed.trial.number].intermediate_values) == sorted(whole.curve)


def test_a_search_keeps_a_checkpoint_per_epoch_and_removes_it_when_the_trial_ends(tmp_path):
    seen = []

    class Look(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            seen.append(len(list(tmp_path.glob(f"**/{CHECKPOINT_FILE}"))))

    x, y = _data()
    result = kk.tune(kk.ProblemSpec(task="binary"), x, y, {"units": [4, 8]}, tuner="grid", epochs=3,
                     verbose=0, refit=False, directory=tmp_path, callbacks=[Look()])
    assert len(result.trials) == 2
    assert seen == [0, 1, 1] * 2  # written from the first epoch's end on, gone after each trial
    assert list(tmp_path.glob(f"**/{CHECKPOINT_FILE}")) == []


SEARCH_SCRIPT = """
import os, signal, sys
import keras
import numpy as np
import kerakit as kk

class KillOnce(keras.callbacks.Callback):
    # SIGKILLs this process when fold 1 begins epoch 2, the first time only; logs every epoch begun.
    def __init__(self):
        super().__init__()
        self.fold = -1
    def __deepcopy__(self, memo):
        return self
    def on_train_begin(self, logs=None):
        self.fold += 1
    def on_epoch_begin(self, epoch, logs=None):
        marker = sys.argv[2] + ".killed"
        if sys.argv[3] == "kill" and (self.fold, epoch) == (1, 2) and not os.path.exists(marker):
            open(marker, "w").close()
            os.kill(os.getpid(), signal.SIGKILL)
        with open(sys.argv[2] + ".epochs", "a") as log:
            log.write(f"{self.fold} {epoch}\\n")

def build(hp):
    inputs = keras.Input((5,))
    hidden = keras.layers.Dense(hp.Choice("units", [8]), activation="relu")(inputs)
    hidden = keras.layers.Dropout(0.3)(hidden)
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(hidden))
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="binary_crossentropy")
    return model

data = np.load(sys.argv[1])
kk.tune(kk.ProblemSpec(task="binary"), data["x"], data["y"], build, tuner="random", max_trials=1,
        cv=2, epochs=5, patience=2, verbose=0, refit=False, directory=sys.argv[2],
        callbacks=[KillOnce()])
"""


@pytest.mark.slow
def test_a_search_killed_mid_trial_resumes_that_trial_at_its_epoch_with_the_same_result(tmp_path):
    x, y = _data()
    np.savez(tmp_path / "data.npz", x=x, y=y)
    script = tmp_path / "search.py"
    script.write_text(SEARCH_SCRIPT)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", KERAS_BACKEND="tensorflow",
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    for name in ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT"):
        env.pop(name, None)

    def search(directory, mode):
        return subprocess.run([sys.executable, str(script), str(tmp_path / "data.npz"),
                               str(tmp_path / directory), mode], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=300)

    whole = search("whole", "run")
    assert whole.returncode == 0, whole.stderr[-2000:]
    killed = search("killed", "kill")
    assert killed.returncode == -9, killed.stderr[-2000:]
    trial = tmp_path / "killed" / "search" / "trial_0"
    assert (trial / CHECKPOINT_FILE).exists() and not (trial / "kerakit_trial.json").exists()
    resumed = search("killed", "kill")
    assert resumed.returncode == 0, resumed.stderr[-2000:]

    runs = (tmp_path / "killed.epochs").read_text().split("\n")
    before = runs.index("1 1") + 1  # the killed process logged fold 1 up to epoch 1
    assert runs[before] == "0 2"  # the resumed process starts with fold 1 (its first fit) at epoch 2
    done = json.loads((trial / "kerakit_trial.json").read_text())
    expected = json.loads((tmp_path / "whole" / "search" / "trial_0" / "kerakit_trial.json").read_text())
    assert done["resumed_from"] == {"fold": 1, "epoch": 2} and expected["resumed_from"] is None
    np.testing.assert_allclose(done["fold_scores"], expected["fold_scores"], rtol=1e-5, atol=1e-6)
    assert done["best_epochs"] == expected["best_epochs"]
    np.testing.assert_allclose(np.load(trial / "oof.npy"),
                               np.load(tmp_path / "whole" / "search" / "trial_0" / "oof.npy"),
                               rtol=1e-4, atol=1e-5)
    assert not (trial / CHECKPOINT_FILE).exists()
