"""Distributed training: strategies, mirrored on 2 logical CPUs, two workers on 127.0.0.1.

Logical devices and MultiWorkerMirroredStrategy must be set up before
TensorFlow initializes, so those cases run in fresh processes.
"""

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import kerakit as kk
from kerakit import distribute
from kerakit.errors import ConfigError, UnknownNameError, WorkerTimeoutError

ROOT = Path(__file__).resolve().parents[1]


def _env():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(ROOT))
    env.pop("TF_CONFIG", None)
    return env


# Strategy names, batch sizes, TF_CONFIG: no TensorFlow work needed -------------


def test_unknown_strategy_name_suggests_the_closest():
    with pytest.raises(UnknownNameError, match="Did you mean 'mirrored'"):
        kk.get_strategy("mirored")


def test_strategy_of_wrong_type_is_refused():
    with pytest.raises(ConfigError, match="tf.distribute.Strategy or one of"):
        kk.get_strategy(3)


def test_multiworker_without_tf_config_says_how_to_set_it(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ConfigError, match="needs the TF_CONFIG environment variable"):
        kk.get_strategy("multiworker")


@pytest.mark.parametrize(
    "raw, message",
    [
        ("{not json", "must be JSON"),
        ('{"cluster": {"worker": ["a:1"]}}', "must be JSON"),
        ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 3}}', "is not in its cluster"),
    ],
)
def test_bad_tf_config_is_refused(monkeypatch, raw, message):
    monkeypatch.setenv("TF_CONFIG", raw)
    with pytest.raises(ConfigError, match=message):
        distribute.read_tf_config(required=True)


@pytest.mark.parametrize(
    "cluster, task, chief",
    [
        ({"worker": ["a:1", "b:1"]}, ("worker", 0), True),
        ({"worker": ["a:1", "b:1"]}, ("worker", 1), False),
        ({"chief": ["c:1"], "worker": ["a:1"]}, ("chief", 0), True),
        ({"chief": ["c:1"], "worker": ["a:1"]}, ("worker", 0), False),
    ],
)
def test_is_chief_follows_tf_config(monkeypatch, cluster, task, chief):
    config = {"cluster": cluster, "task": {"type": task[0], "index": task[1]}}
    monkeypatch.setenv("TF_CONFIG", json.dumps(config))
    assert kk.is_chief() is chief


class _Replicas:
    num_replicas_in_sync = 4


def test_global_batch_must_split_evenly_over_replicas():
    assert distribute.check_batch_size(64, _Replicas()) == 16
    with pytest.raises(ConfigError, match="batch_size=28 or 32"):
        distribute.check_batch_size(30, _Replicas())


# In-process: models, mixed precision, XLA, saving ---------------------------------



def test_mixed_float16_keeps_a_float32_output_and_trains(cancer_split):
    import keras

    x_train, x_test, y_train, y_test = cancer_split
    spec = kk.infer_spec(y_train)
    model = kk.build_model(spec, input_shape=(30,), units=(16,), dropout=0.0,
                           mixed_precision="mixed_float16", learning_rate=0.01, seed=0)
    assert keras.mixed_precision.global_policy().name == "float32"  # restored
    assert model.get_layer("body").layers[0].compute_dtype == "float16"
    assert model.get_layer("output").compute_dtype == "float32"
    assert model.output.dtype == "float32"
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    kk.fit(model, x_train, y_train, epochs=3, verbose=0, seed=0)
    assert kk.evaluate(model, x_test, y_test)["accuracy"] > 0.85


def test_unknown_precision_policy_fails_before_building():
    spec = kk.ProblemSpec(task="binary")
    with pytest.raises(UnknownNameError, match="Did you mean 'mixed_float16'"):
        kk.build_model(spec, input_shape=(4,), mixed_precision="mixed_float61")


def test_fit_refuses_a_model_built_under_another_strategy(cancer_split):
    x_train, _, y_train, _ = cancer_split
    model = kk.build_model(kk.infer_spec(y_train), input_shape=(30,), units=(8,))
    with pytest.raises(ConfigError, match="variables cannot move between strategies"):
        kk.fit(model, x_train, y_train, strategy="mirrored", verbose=0)


def test_default_strategy_applies_to_build_model_and_fit_follows_the_model(cancer_split):
    x_train, x_test, y_train, y_test = cancer_split
    spec = kk.infer_spec(y_train)
    strategy = kk.set_default_strategy("mirrored")  # one replica per CPU device here
    try:
        model = kk.build_model(spec, input_shape=(30,), units=(8,), learning_rate=0.01, seed=0)
    finally:
        kk.set_default_strategy(None)
    plain = kk.build_model(spec, input_shape=(30,), units=(8,))
    assert model.distribute_strategy is strategy
    assert distribute.model_strategy(model) is strategy
    assert distribute.model_strategy(plain) is None
    batch = 30 * strategy.num_replicas_in_sync
    history = kk.fit(model, x_train, y_train, batch_size=batch, epochs=2, verbose=0, seed=0)
    assert len(history.history["loss"]) == 2
    assert kk.evaluate(model, x_test, y_test)["accuracy"] > 0.8


def test_run_option_keeps_one_run_directory_per_cluster(monkeypatch, tmp_path):
    cluster = {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}
    try:
        monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 0}}))
        assert distribute.use_strategy_for_run("default", str(tmp_path), False) == (str(tmp_path), False)
        monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 1}}))
        folder, quiet = distribute.use_strategy_for_run("default", str(tmp_path), False)
        assert quiet is True and folder != str(tmp_path) and "kerakit-worker-" in folder
    finally:
        kk.set_default_strategy(None)


def test_save_on_chief_writes_once_and_atomically(cancer_split, tmp_path, monkeypatch):
    import keras

    x_train, _, y_train, _ = cancer_split
    model = kk.build_model(kk.infer_spec(y_train), input_shape=(30,), units=(8,), seed=0)
    cluster = {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 1}}))
    assert kk.save_on_chief(model, tmp_path / "m.keras") is None
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 0}}))
    assert kk.save_on_chief(model, tmp_path / "m.keras") == str(tmp_path / "m.keras")
    assert [p.name for p in tmp_path.iterdir()] == ["m.keras"]  # no temporary left behind
    loaded = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(loaded.predict(x_train[:5], verbose=0), model.predict(x_train[:5], verbose=0))
    with pytest.raises(ConfigError, match="must end in '.keras'"):
        kk.save_on_chief(model, tmp_path / "m.h5")


# The local launcher ----------------------------------------------------------------


def test_launch_local_gives_each_worker_its_own_tf_config():
    code = "import os; print(os.environ['TF_CONFIG'])"
    results = kk.launch_local([sys.executable, "-c", code], 2, timeout=60, capture=True)
    assert [r.returncode for r in results] == [0, 0]
    configs = [json.loads(r.output) for r in results]
    assert [c["task"] for c in configs] == [{"type": "worker", "index": 0}, {"type": "worker", "index": 1}]
    workers = configs[0]["cluster"]["worker"]
    assert configs[1]["cluster"]["worker"] == workers
    assert len(set(workers)) == 2 and all(w.startswith("127.0.0.1:") for w in workers)


def test_launch_local_kills_the_others_when_one_fails():
    code = "import os, sys, time; sys.exit(3) if os.environ['KERAKIT_WORKER_INDEX'] == '0' else time.sleep(60)"
    start = time.monotonic()
    results = kk.launch_local([sys.executable, "-c", code], 2, timeout=60, capture=True)
    assert time.monotonic() - start < 30
    assert results[0].returncode == 3
    assert results[1].returncode != 0  # killed, not left waiting on worker 0


def test_launch_local_timeout_kills_every_worker(tmp_path):
    code = (
        "import os, sys, time; "
        "open(os.path.join(sys.argv[1], os.environ['KERAKIT_WORKER_INDEX']), 'w').write(str(os.getpid())); "
        "time.sleep(60)"
    )
    with pytest.raises(WorkerTimeoutError, match="were killed"):
        kk.launch_local([sys.executable, "-c", code, str(tmp_path)], 2, timeout=3, capture=True)
    pids = [int(p.read_text()) for p in tmp_path.iterdir()]
    assert len(pids) == 2
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_module_command_runs_a_script_as_workers(tmp_path, capfd):
    script = tmp_path / "w.py"
    # One write per line (an f-string, not print's separate pieces): the two
    # workers share stdout, and unbuffered pieces would interleave.
    script.write_text("import json, os\nprint(f\"task {json.loads(os.environ['TF_CONFIG'])['task']['index']}\")\n")
    assert distribute.main(["--workers", "2", "--timeout", "60", str(script)]) == 0
    out = capfd.readouterr().out
    assert "task 0" in out and "task 1" in out
    code = "import os; print(f\"worker {os.environ['KERAKIT_WORKER_INDEX']}\")"
    assert distribute.main(["--workers", "2", "--", sys.executable, "-c", code]) == 0
    out = capfd.readouterr().out
    assert "worker 0" in out and "worker 1" in out
    assert distribute.main(["--workers", "2", "--timeout", "60", str(tmp_path / "missing.py")]) == 1


# Mirrored: 2 replicas on 2 logical CPU devices (fresh process) ---------------------

MIRRORED_SCRIPT = """
import json
import kerakit as kk
from kerakit.errors import ConfigError
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split

kk.split_cpu(2)
strategy = kk.get_strategy("mirrored")
x, y = load_breast_cancer(return_X_y=True)
x = ((x - x.mean(0)) / x.std(0)).astype("float32")
x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, random_state=0, stratify=y)
spec = kk.infer_spec(y_train)

# XLA: no `seed` in fit here, because op determinism (which seed turns on)
# makes Keras fall back to jit_compile=False.
xla = kk.build_model(spec, input_shape=(30,), units=(16,), learning_rate=0.01, jit_compile=True,
                     metrics=["accuracy"])
xla_jit = xla.jit_compile
kk.fit(xla, x_train, y_train, epochs=2, verbose=0)

model = kk.build_model(spec, input_shape=(30,), units=(16,), learning_rate=0.01, seed=0,
                       strategy="mirrored")
try:  # no strategy= here: fit follows the model's own strategy
    kk.fit(model, x_train, y_train, batch_size=33)
    odd_batch = "accepted"
except ConfigError as error:
    odd_batch = str(error)
history = kk.fit(model, x_train, y_train, batch_size=64, epochs=3, validation_split=0.2,
                 callbacks=kk.default_callbacks(spec, patience=2), verbose=0, seed=0,
                 strategy="mirrored")
kernel = model.get_layer("output").kernel.value
copies = [c.numpy().tolist() for c in strategy.experimental_local_results(kernel)]
print("RESULT " + json.dumps({
    "replicas": strategy.num_replicas_in_sync,
    "model_replicas": model.distribute_strategy.num_replicas_in_sync,
    "kernel_copies": copies,
    "epochs": len(history.history["loss"]),
    "val_loss": history.history["val_loss"],
    "accuracy": kk.evaluate(model, x_test, y_test)["accuracy"],
    "odd_batch": odd_batch,
    "xla_jit_compile": xla_jit,
    "xla_accuracy": kk.evaluate(xla, x_test, y_test)["accuracy"],
}))
"""


def _result(output):
    lines = [line for line in output.splitlines() if line.startswith("RESULT ")]
    assert lines, output[-3000:]
    return json.loads(lines[-1][len("RESULT "):])


def test_mirrored_trains_with_two_replicas_on_two_logical_cpus(mirrored_result):
    result = mirrored_result
    assert result["replicas"] == 2 and result["model_replicas"] == 2
    first, second = result["kernel_copies"]
    np.testing.assert_allclose(first, second)  # the replicas stayed in sync
    assert result["epochs"] == 3 and all(np.isfinite(result["val_loss"]))
    assert result["accuracy"] > 0.85
    assert "33 does not split" in result["odd_batch"]


def test_xla_jit_compile_trains_on_cpu(mirrored_result):
    # Runs in the same fresh process as the mirrored case (see MIRRORED_SCRIPT).
    result = mirrored_result
    assert result["xla_jit_compile"] is True
    assert result["xla_accuracy"] > 0.85


# Multi-worker: two processes on 127.0.0.1 -------------------------------------------

WORKER_SCRIPT = """
import json, os, sys
import numpy as np
import kerakit as kk

strategy = kk.get_strategy("multiworker")  # first: before any other TensorFlow work
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split

out = sys.argv[1]
index = os.environ["KERAKIT_WORKER_INDEX"]
x, y = load_breast_cancer(return_X_y=True)
x = ((x - x.mean(0)) / x.std(0)).astype("float32")
x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, random_state=0, stratify=y)
spec = kk.infer_spec(y_train)
model = kk.build_model(spec, input_shape=(30,), units=(16,), learning_rate=0.01, seed=0,
                       strategy="multiworker")
history = kk.fit(model, x_train, y_train, batch_size=32, epochs=3, validation_data=(x_test, y_test),
                 callbacks=kk.default_callbacks(spec, patience=2), verbose=0, seed=0,
                 strategy="multiworker")
saved = kk.save_on_chief(model, os.path.join(out, "model.keras"))
np.save(os.path.join(out, f"pred_{index}.npy"), kk.predict(model, x_test))

# keras-team/keras#20585: Keras's own fit under the same strategy.
import tensorflow as tf
try:
    model.fit(tf.data.Dataset.from_tensor_slices((x_train, y_train)).batch(32), epochs=1, verbose=0)
    keras_fit = "ok"
except ValueError as error:
    keras_fit = str(error)[:200]
print("RESULT " + json.dumps({
    "replicas": strategy.num_replicas_in_sync,
    "history": history.history,
    "saved": saved,
    "keras_fit": keras_fit,
}))
"""


@pytest.fixture(scope="module")
def fresh_runs(tmp_path_factory):
    """Runs the mirrored script and the two workers at the same time (3 processes)."""
    out = tmp_path_factory.mktemp("multiworker")
    script = out / "train.py"
    script.write_text(textwrap.dedent(WORKER_SCRIPT))
    log = out / "mirrored.log"
    with open(log, "w") as handle:
        mirrored = subprocess.Popen([sys.executable, "-c", MIRRORED_SCRIPT], env=_env(), cwd=ROOT,
                                    stdout=handle, stderr=subprocess.STDOUT)
        try:
            workers = kk.launch_local([sys.executable, str(script), str(out)], 2, timeout=240,
                                      capture=True, env=_env(), cwd=str(ROOT))
            mirrored.wait(timeout=240)
        finally:
            if mirrored.poll() is None:
                mirrored.kill()
                mirrored.wait()
    return {"mirrored": (mirrored.returncode, log.read_text()), "out": out, "workers": workers}


@pytest.fixture(scope="module")
def mirrored_result(fresh_runs):
    returncode, output = fresh_runs["mirrored"]
    assert returncode == 0, output[-3000:]
    return _result(output)


@pytest.fixture(scope="module")
def two_workers(fresh_runs):
    return fresh_runs["out"], fresh_runs["workers"]


def test_two_workers_train_in_step_and_finish(two_workers):
    _, results = two_workers
    assert [r.returncode for r in results] == [0, 0], [r.output[-3000:] for r in results]
    chief, other = (_result(r.output) for r in results)
    assert chief["replicas"] == other["replicas"] == 2
    # Metrics are read across both workers, so both see the same history.
    assert chief["history"] == other["history"]
    assert len(chief["history"]["loss"]) == 3
    assert chief["history"]["loss"][-1] < chief["history"]["loss"][0]


def test_multiworker_model_is_saved_once_and_predicts(two_workers, cancer_split):
    import keras

    out, results = two_workers
    chief, other = (_result(r.output) for r in results)
    assert chief["saved"] == str(out / "model.keras") and other["saved"] is None
    assert sorted(p.name for p in out.glob("*.keras")) == ["model.keras"]
    _, x_test, _, y_test = cancer_split
    loaded = keras.models.load_model(out / "model.keras")
    prediction = loaded.predict(x_test, verbose=0)
    np.testing.assert_allclose(prediction, np.load(out / "pred_0.npy"), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(prediction, np.load(out / "pred_1.npy"), rtol=1e-5, atol=1e-6)
    accuracy = np.mean((prediction.ravel() > 0.5) == y_test)
    assert accuracy > 0.85
    # The saved weights are one epoch's weights; that epoch's validation
    # accuracy, computed during multi-worker training, must be exactly this.
    assert any(abs(a - accuracy) < 1e-6 for a in chief["history"]["val_accuracy"])


def test_keras_fit_under_multiworker_still_fails_upstream(two_workers):
    """keras-team/keras#20585, open: the reason kerakit has its own loop here.

    When this starts failing, Keras fixed it: kerakit can hand multi-worker
    training back to `Model.fit`.
    """
    _, results = two_workers
    for result in results:
        assert "Attempt to convert a value (PerReplica" in _result(result.output)["keras_fit"]

