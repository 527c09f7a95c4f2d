"""fit (fast path), default callbacks, evaluate, reproducibility."""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
from sklearn import metrics

import kerakit as kk
from kerakit.callbacks import TerminateOnNaN, TrainingDivergedError
from kerakit.engines.tensorflow import make_dataset

# Backend-neutral: CI runs this file on TensorFlow and again on JAX (scripts/dev.py).
pytestmark = pytest.mark.backends


def test_fit_learns_digits_better_than_chance(digits):
    x_train, x_test, y_train, y_test = digits
    spec = kk.infer_spec(y_train)
    model = kk.build_model(spec, input_shape=(64,), units=(64,), seed=0)
    history = kk.fit(model, x_train, y_train, validation_split=0.2, epochs=5, verbose=0,
                     callbacks=kk.default_callbacks(spec, patience=3), seed=0)
    assert len(history.history["loss"]) == 5
    assert {"val_loss", "val_accuracy", "accuracy"} <= set(history.history)
    if keras.backend.backend() == "tensorflow":
        # steps_per_execution chosen automatically: one call per epoch here.
        assert model.steps_per_execution > 1
    report = kk.evaluate(model, x_test, y_test)
    assert report["accuracy"] > 0.85


def test_fit_matches_model_fit_meaning_for_validation_split():
    x = np.arange(40, dtype="float32").reshape(20, 2)
    y = (np.arange(20) % 2).astype("float32")
    spec = kk.ProblemSpec(task="binary")
    model = kk.build_model(spec, input_shape=(2,), units=(4,))
    seen = {}

    class Capture(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.update(logs)

    kk.fit(model, x, y, validation_split=0.25, epochs=1, verbose=0, callbacks=[Capture()])
    # Keras holds out the *last* 25 % before shuffling; so do we.
    val = model.evaluate(x[15:], y[15:], verbose=0, return_dict=True)
    assert np.isclose(seen["val_loss"], val["loss"], rtol=1e-4)


def test_pipeline_reshuffles_every_epoch_with_a_fixed_seed():
    x = np.arange(64, dtype="float32")[:, None]
    ds = make_dataset(x, batch_size=64, shuffle=True, seed=3)
    first, second = (next(iter(ds)).numpy().ravel() for _ in range(2))
    assert sorted(first) == sorted(second)
    assert not np.array_equal(first, second)
    again = next(iter(make_dataset(x, batch_size=64, shuffle=True, seed=3))).numpy().ravel()
    assert np.array_equal(first, again)


def test_class_weight_balanced_weights_the_minority():
    spec = kk.ProblemSpec(task="binary")
    y = np.array([0] * 18 + [1] * 2)
    weights = kk.training.class_weights(spec, y, "balanced")
    assert np.isclose(weights[y == 1][0] / weights[y == 0][0], 9.0)
    weights = kk.training.class_weights(spec, y, {0: 1.0, 1: 5.0})
    assert weights[-1] == 5.0 and weights[0] == 1.0


def test_default_callbacks_early_stopping_restores_best_weights(tmp_path):
    spec = kk.ProblemSpec(task="binary")
    callbacks = kk.default_callbacks(spec, patience=4, reduce_lr_patience=2, backup_dir=tmp_path / "b",
                                     csv_log=tmp_path / "log.csv", tensorboard_dir=tmp_path / "tb")
    names = [type(c).__name__ for c in callbacks]
    assert names == ["EarlyStopping", "ReduceLROnPlateau", "TerminateOnNaN", "BackupAndRestore",
                     "CSVLogger", "TensorBoard"]
    early = callbacks[0]
    assert early.monitor == "val_loss" and early.restore_best_weights and early.patience == 4
    assert all(isinstance(c, keras.callbacks.Callback) for c in callbacks)


def test_terminate_on_nan_raises_and_keeps_the_backup(tmp_path):
    spec = kk.ProblemSpec(task="regression")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype("float32")
    y = (x.sum(axis=1) * 1e3).astype("float32")
    model = kk.build_model(spec, input_shape=(4,), units=(8,), optimizer="sgd", learning_rate=10.0)
    backup = tmp_path / "backup"
    callbacks = [keras.callbacks.BackupAndRestore(str(backup)), TerminateOnNaN()]
    with pytest.raises(TrainingDivergedError, match="learning_rate"):
        kk.fit(model, x, y, epochs=50, verbose=0, callbacks=callbacks, steps_per_execution=1)
    assert backup.exists() and any(backup.iterdir())


def test_evaluate_matches_scikit_learn_binary():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(80, 3)).astype("float32")
    y = (x[:, 0] > 0).astype(int)
    spec = kk.ProblemSpec(task="binary")
    model = kk.build_model(spec, input_shape=(3,), units=(8,), seed=0)
    kk.fit(model, x, y, epochs=3, verbose=0)
    report = kk.evaluate(model, x, y)
    proba = model.predict(x, verbose=0).ravel()
    assert np.isclose(report["roc_auc"], metrics.roc_auc_score(y, proba))
    assert np.isclose(report["f1"], metrics.f1_score(y, proba >= 0.5))
    assert {"accuracy", "precision", "recall", "f1", "roc_auc"} <= set(report)


@pytest.mark.parametrize(
    "spec, y, keys",
    [
        (kk.ProblemSpec(task="regression"), lambda x: x[:, 0] * 2, {"mse", "rmse", "mae", "r2"}),
        (kk.ProblemSpec(task="multilabel", num_labels=2),
         lambda x: np.stack([x[:, 0] > 0, x[:, 1] > 0], 1).astype(int), {"f1", "roc_auc", "hamming_loss"}),
        (kk.ProblemSpec(task="multiclass", num_classes=3, label_format="soft"),
         lambda x: keras.ops.convert_to_numpy(keras.ops.softmax(x[:, :3])), {"accuracy", "f1", "log_loss"}),
    ],
)
def test_evaluate_reports_per_task(spec, y, keys):
    x = np.random.default_rng(2).normal(size=(40, 3)).astype("float32")
    labels = y(x)
    model = kk.build_model(spec, input_shape=(3,), units=(8,))
    kk.fit(model, x, labels, epochs=1, verbose=0)
    report = kk.evaluate(model, x, labels)
    assert keys <= set(report)
    if "rmse" in report:
        assert np.isclose(report["rmse"] ** 2, report["mse"])


_REPRO = textwrap.dedent(
    """
    import json, os
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import numpy as np
    import kerakit as kk
    from sklearn.datasets import load_iris
    x, y = load_iris(return_X_y=True)
    spec = kk.infer_spec(y)
    model = kk.build_model(spec, input_shape=(4,), units=(16,), dropout=0.2, seed=11)
    h = kk.fit(model, x.astype("float32"), y, validation_split=0.2, epochs=4, batch_size=16,
               verbose=0, seed=11)
    print(json.dumps(h.history))
    """
)


def test_seed_gives_identical_history_in_two_processes():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    procs = [subprocess.Popen([sys.executable, "-c", _REPRO], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env) for _ in range(2)]
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err[-2000:]
        outputs.append(json.loads(out.strip().splitlines()[-1]))
    assert outputs[0] == outputs[1]
    losses = outputs[0]["loss"]
    assert len(losses) == 4 and len(set(losses)) == 4


@pytest.mark.slow
@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="TensorFlow's own log lines")
def test_training_scripts_do_not_print_tensorflow_error_lines():
    """No "E0000 ... use_unbounded_threadpool" / cuInit lines from a kerakit script."""
    code = textwrap.dedent("""
        import numpy as np, pandas as pd, kerakit as kk
        rng = np.random.default_rng(0)
        frame = pd.DataFrame({"a": rng.normal(size=120), "c": rng.choice(["x", "y"], 120)})
        frame["y"] = (frame.a > 0).astype(int)
        kk.fit_table(frame, target="y", epochs=1, verbose=0)
        x = rng.normal(size=(60, 3)); y = (x[:, 0] > 0).astype(int)
        kk.fit(kk.build_model(kk.infer_spec(y), input_shape=(3,)), x, y, epochs=1, verbose=0)
        print("trained")
    """)
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "KERAKIT_TF_LOGS")}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "trained" in result.stdout
    assert "E0000" not in result.stderr, result.stderr[-2000:]


def test_predict_in_chunks_pads_the_last_chunk_and_drops_the_padding():
    from kerakit.training import predict_in_chunks

    rng = np.random.default_rng(3)
    x = rng.normal(size=(11, 3)).astype("float32")
    model = kk.build_model(kk.ProblemSpec(task="multiclass", num_classes=3), input_shape=(3,), units=(4,))
    calls = []
    original = model.call

    def spy(inputs, *args, **kwargs):
        calls.append(int(inputs.shape[0]))
        return original(inputs, *args, **kwargs)

    model.call = spy
    out = predict_in_chunks(model, x, batch_size=4)
    model.call = original
    # 11 rows in chunks of 4: 4, 4, then 3 padded to 4: every call has one shape.
    assert calls == [4, 4, 4]
    # ... so a row's prediction does not depend on the rows predicted with it
    np.testing.assert_array_equal(predict_in_chunks(model, x[:3], batch_size=4), out[:3])
    expected = keras.ops.convert_to_numpy(model(x, training=False))
    assert out.shape == (11, 3)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(kk.predict(model, x), expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(kk.KerakitError, match="no rows to predict"):
        predict_in_chunks(model, x[:0])
    with pytest.raises(kk.KerakitError, match="`batch_size` must be"):
        predict_in_chunks(model, x, batch_size=0)


def test_metrics_report_reads_the_registry_and_refuses_mismatched_rows():
    from kerakit.training import metrics_report

    rng = np.random.default_rng(4)
    spec = kk.ProblemSpec(task="multiclass", num_classes=3)
    y = np.r_[0, 1, 2, rng.integers(0, 3, 37)]
    proba = rng.dirichlet(np.ones(3), len(y))
    report = metrics_report(spec, y, proba)
    assert np.isclose(report["roc_auc"], metrics.roc_auc_score(y, proba, multi_class="ovr"))
    assert np.isclose(report["f1"], metrics.f1_score(y, proba.argmax(1), average="macro"))
    assert np.isclose(report["log_loss"], metrics.log_loss(y, proba))
    # ROC-AUC is undefined with a class missing from the labels: left out, not NaN.
    assert "roc_auc" not in metrics_report(spec, np.r_[0, 1, 1, 0], proba[:4])
    with pytest.raises(kk.KerakitError, match="39 prediction rows for 40 label rows"):
        metrics_report(spec, y, proba[:-1])
