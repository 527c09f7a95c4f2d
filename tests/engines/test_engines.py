"""The training engines: same results as Keras's own `fit`, on whatever backend runs the tests.

These tests run on the backend in `KERAS_BACKEND` (CI runs them on TensorFlow
and again on JAX; PyTorch where it is installed), each engine against
`engine="keras"` (Keras's `model.fit`) on the same data.
"""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import kerakit as kk
from kerakit import engines

pytestmark = pytest.mark.backends

BACKEND = keras.backend.backend()


def _problem(n=50, features=5, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features)).astype(np.float32)
    y = (x[:, 0] > 0).astype(int) + (x[:, 1] > 0.5).astype(int)
    return x, y % classes


def _model(spec, features=5, seed=0, **options):
    # No dropout: Keras's own PyTorch fit draws from torch's global generator
    # each epoch (its DataLoader's seed), so dropout masks would differ there.
    options.setdefault("dropout", 0.0)
    return kk.build_model(spec, input_shape=(features,), units=(8,), optimizer="sgd",
                          learning_rate=0.1, seed=seed, **options)


def test_auto_picks_the_engine_of_the_backend():
    spec = kk.ProblemSpec(task="binary")
    assert engines.choose(_model(spec)) == engines.BACKEND_ENGINES[BACKEND]


def test_unknown_engine_names_the_valid_ones():
    x, y = _problem()
    with pytest.raises(kk.KerakitError, match="Did you mean 'jax'"):
        kk.fit(_model(kk.infer_spec(y)), x, y, engine="jaxx")


def test_each_engine_trains_exactly_like_keras_fit_without_shuffling():
    """Same weights and the same logs as model.fit, last (smaller) batch and validation included."""
    x, y = _problem(n=50)
    spec = kk.infer_spec(y)
    weights = np.linspace(0.5, 1.5, 40).astype(np.float32)
    results = []
    for engine in ("auto", "keras"):
        model = _model(spec)
        history = kk.fit(model, x[:40], y[:40], validation_data=(x[40:], y[40:]), batch_size=16,
                         epochs=3, shuffle=False, sample_weight=weights, verbose=0, engine=engine)
        results.append((model.get_weights(), history.history))
    (ours, our_logs), (keras_weights, keras_logs) = results
    assert sorted(our_logs) == sorted(keras_logs)
    for name in keras_logs:
        np.testing.assert_allclose(our_logs[name], keras_logs[name], rtol=2e-4, atol=1e-5, err_msg=name)
    for a, b in zip(ours, keras_weights, strict=True):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=1e-5)


def test_shuffled_training_learns_and_reshuffles_each_epoch():
    x, y = _problem(n=400, seed=1)
    spec = kk.infer_spec(y)
    model = _model(spec)
    history = kk.fit(model, x, y, batch_size=32, epochs=30, seed=0, verbose=0)
    assert history.history["accuracy"][-1] > 0.75  # chance is about 0.4
    again = _model(spec)
    repeat = kk.fit(again, x, y, batch_size=32, epochs=30, seed=0, verbose=0)
    np.testing.assert_allclose(history.history["loss"], repeat.history["loss"], rtol=1e-5)


def test_zero_weight_rows_do_not_teach_the_model():
    x, y = _problem(n=300, classes=2, seed=2)
    y = (x[:, 0] > 0).astype(int)
    noisy_x = np.concatenate([x, x])
    noisy_y = np.concatenate([y, 1 - y])  # the second half contradicts the first
    weights = np.concatenate([np.ones(len(y)), np.zeros(len(y))]).astype(np.float32)
    model = _model(kk.ProblemSpec(task="binary"))
    kk.fit(model, noisy_x, noisy_y, sample_weight=weights, batch_size=32, epochs=20, seed=0, verbose=0)
    assert kk.evaluate(model, x, y)["accuracy"] > 0.9


def test_callbacks_see_epoch_logs_and_can_change_weights_and_learning_rate(tmp_path):
    """ReduceLROnPlateau, EarlyStopping(restore_best_weights) and CSVLogger act as under model.fit."""
    x, y = _problem(n=120, seed=3)
    spec = kk.infer_spec(y)
    runs = {}
    for engine in ("auto", "keras"):
        model = _model(spec)
        log = tmp_path / f"{engine}.csv"
        # Every epoch "fails" to improve the loss by 10, so the rate halves after each one.
        reduce = keras.callbacks.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=0, min_delta=10.0)
        stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=1, restore_best_weights=True,
                                             start_from_epoch=3)
        history = kk.fit(model, x[:100], y[:100], validation_data=(x[100:], y[100:]), epochs=40,
                         callbacks=[reduce, stop, keras.callbacks.CSVLogger(str(log))], shuffle=False,
                         verbose=0, engine=engine)
        runs[engine] = (history.history, model.get_weights(), log.read_text().splitlines())
    ours, theirs = runs["auto"], runs["keras"]
    assert len(ours[0]["loss"]) == len(theirs[0]["loss"]) < 40
    np.testing.assert_allclose(ours[0]["learning_rate"], theirs[0]["learning_rate"], rtol=1e-6)
    assert ours[0]["learning_rate"][-1] < ours[0]["learning_rate"][0] / 4
    for a, b in zip(ours[1], theirs[1], strict=True):  # the restored best weights
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=1e-5)
    assert len(ours[2]) == len(theirs[2]) == len(ours[0]["loss"]) + 1


def test_terminate_on_nan_stops_training():
    x, y = _problem(n=64)
    model = kk.build_model(kk.infer_spec(y), input_shape=(5,), units=(8,), optimizer="sgd",
                           learning_rate=1e30, seed=0)
    history = kk.fit(model, x * 1e6, y, epochs=20, callbacks=[keras.callbacks.TerminateOnNaN()],
                     verbose=0)
    assert len(history.history["loss"]) < 20


def test_dropout_and_batch_norm_state_is_carried_through_training():
    x, y = _problem(n=64)
    inputs = keras.Input((5,))
    hidden = keras.layers.BatchNormalization()(keras.layers.Dense(8, activation="relu")(inputs))
    outputs = keras.layers.Dense(3, activation="softmax")(keras.layers.Dropout(0.5, seed=1)(hidden))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    norm = model.layers[2]
    kk.fit(model, x, y, epochs=2, verbose=0, spec=kk.infer_spec(y))
    moved = keras.ops.convert_to_numpy(norm.moving_mean)
    assert np.abs(moved).sum() > 0  # starts at zero; only training updates it
    dropout = model.layers[3]
    before = [keras.ops.convert_to_numpy(v) for v in dropout.seed_generator.state.value[None]]
    kk.fit(model, x, y, epochs=1, verbose=0, spec=kk.infer_spec(y))
    after = [keras.ops.convert_to_numpy(v) for v in dropout.seed_generator.state.value[None]]
    assert not np.array_equal(before[0], after[0])  # new dropout masks every step


def test_progress_is_one_plain_line_per_epoch_when_not_a_terminal(capsys):
    x, y = _problem()
    kk.fit(_model(kk.infer_spec(y)), x, y, epochs=2, verbose="auto")
    out = capsys.readouterr().out
    assert "\x1b[" not in out and "\r" not in out and "Epoch 2/2" in out


@pytest.mark.skipif(BACKEND != "jax", reason="the jax engine's fallback")
def test_jax_engine_falls_back_to_keras_fit_for_small_steps_and_says_so():
    # The fallback warns once per process and message; 3 is a value no other test asks for, so
    # whichever tests ran before in this worker, this one sees its own message first.
    x, y = _problem(n=64)
    with pytest.warns(UserWarning, match="steps_per_execution=3"):
        kk.fit(_model(kk.infer_spec(y)), x, y, batch_size=8, epochs=1, steps_per_execution=3, verbose=0)


@pytest.mark.skipif(BACKEND == "tensorflow", reason="checks the other backends")
def test_core_paths_do_not_import_tensorflow_on_other_backends():
    code = (
        "import sys, numpy as np, kerakit as kk\n"
        "x = np.random.default_rng(0).normal(size=(60, 4)); y = (x[:, 0] > 0).astype(int)\n"
        "spec = kk.infer_spec(y)\n"
        "m = kk.build_model(spec, input_shape=(4,), seed=0)\n"
        "kk.fit(m, x, y, epochs=2, validation_split=0.2, seed=0, verbose=0,\n"
        "       callbacks=kk.default_callbacks(spec, patience=2))\n"
        "kk.evaluate(m, x, y); kk.predict(m, x)\n"
        "kk.cross_validate(spec, x, y, folds=2, epochs=2)\n"
        "print('tensorflow' in sys.modules)\n"
    )
    env = dict(os.environ, KERAS_BACKEND=BACKEND)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "False"


@pytest.mark.skipif(BACKEND == "tensorflow", reason="checks the other backends")
def test_tensorflow_only_features_refuse_other_backends_by_name():
    x, y = _problem()
    with pytest.raises(kk.KerakitError, match=f"Keras is running on '{BACKEND}'"):
        kk.fit(_model(kk.infer_spec(y)), x, y, strategy="mirrored", verbose=0)
