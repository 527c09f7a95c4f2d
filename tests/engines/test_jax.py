"""The jax engine under keras.distribution: batches sharded over the mesh, state keeps its layouts.

XLA fixes the number of CPU devices when JAX starts, so the distributed cases
run in one fresh process with 4 CPU devices
(`XLA_FLAGS=--xla_force_host_platform_device_count=4 KERAS_BACKEND=jax`) and
report back as JSON; the engine's `place` is wrapped there to record the
arrays it put on the devices.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]

FOUR_DEVICES = r"""
import json
import numpy as np
import jax
import keras
import kerakit as kk
from kerakit.engines import jax as engine
from kerakit.errors import ConfigError

placed = []
original_place = engine.place


def recording_place(layout, tree, batch_size):
    result = original_place(layout, tree, batch_size)
    placed.append(result)
    return result


engine.place = recording_place


def describe(array):
    return {"spec": [None if axis is None else str(axis) for axis in array.sharding.spec], "devices": len(array.sharding.device_set),
            "shape": list(array.shape), "shard": list(array.addressable_shards[0].data.shape)}


rng = np.random.default_rng(0)
x = rng.normal(size=(60, 5)).astype("float32")
y = ((x[:, 0] + x[:, 1]) > 0).astype(int)
spec = kk.infer_spec(y)


def model():
    return kk.build_model(spec, input_shape=(5,), units=(8,), optimizer="adam", learning_rate=0.05,
                          seed=0, dropout=0.0)


def train(rows):
    m = model()
    history = kk.fit(m, x[:rows], y[:rows], validation_data=(x[48:], y[48:]), batch_size=16, epochs=3,
                     shuffle=False, verbose=0)
    return m.get_weights(), history.history


result = {"devices": jax.device_count()}
one = {rows: train(rows) for rows in (42, 44)}  # last batch: 10 rows (replicated), 12 (split)
keras.distribution.set_distribution(keras.distribution.DataParallel())
result["parity"] = {}
for rows in (42, 44):
    placed.clear()
    weights, history = train(rows)
    result["parity"][rows] = {
        "weight_diff": max(float(np.max(np.abs(a - b))) for a, b in zip(weights, one[rows][0])),
        "loss": [history["loss"], one[rows][1]["loss"]],
        "val_loss": [history["val_loss"], one[rows][1]["val_loss"]],
        "full": describe(placed[0].full[0]),
        "rest": describe(placed[0].rest[0]),
        "validation": describe(placed[1].full[0]),
    }

try:
    kk.fit(model(), x, y, batch_size=30, epochs=1, verbose=0)
    result["odd_batch"] = "accepted"
except ConfigError as error:
    result["odd_batch"] = str(error)

shuffled = model()
history = kk.fit(shuffled, x, y, batch_size=16, epochs=15, seed=1, verbose=0)
result["shuffled_accuracy"] = history.history["accuracy"][-1]
result["kernel_after_fit"] = describe(shuffled.trainable_variables[0].value)
placed.clear()
history = kk.fit(model(), x[:42], y[:42], batch_size=16, epochs=3, seed=1, verbose=0)
result["shuffled_replicated_rest"] = {"loss": history.history["loss"], "rest": describe(placed[0].rest[0])}
predictions = kk.predict(shuffled, x[:30])  # 30 rows do not split over 4 devices
result["predictions"] = [list(predictions.shape), float(np.max(np.abs(
    predictions - np.asarray(shuffled(x[:30])))))]

keras.distribution.set_distribution(None)
outside = model()  # variables on one device
keras.distribution.set_distribution(keras.distribution.DataParallel())
kk.fit(outside, x, y, batch_size=16, epochs=1, verbose=0)
result["built_outside"] = describe(outside.trainable_variables[0].value)

mesh = keras.distribution.DeviceMesh((2, 2), ["batch", "model"], keras.distribution.list_devices())
layout_map = keras.distribution.LayoutMap(mesh)
layout_map["hidden/kernel"] = (None, "model")
parallel = keras.distribution.ModelParallel(layout_map=layout_map, batch_dim_name="batch")
keras.distribution.set_distribution(parallel)
inputs = keras.Input((5,))
hidden = keras.layers.Dense(8, activation="relu", name="hidden")(inputs)
outputs = keras.layers.Dense(1, activation="sigmoid", name="out")(hidden)
split = keras.Model(inputs, outputs)
split.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
placed.clear()
history = kk.fit(split, x, y, batch_size=16, epochs=5, verbose=0, seed=0)
kernel = split.get_layer("hidden").kernel
slots = [v for v in split.optimizer.variables if v.shape == kernel.shape]
result["model_parallel"] = {
    "kernel": describe(kernel.value),
    "slots": [describe(v.value) for v in slots],
    "full": describe(placed[0].full[0]),
    "loss": history.history["loss"],
}
print("RESULT " + json.dumps(result))
"""


def _four_devices(code, timeout=300):
    env = dict(os.environ, KERAS_BACKEND="jax", XLA_FLAGS="--xla_force_host_platform_device_count=4",
               PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def four_devices():
    out = _four_devices(FOUR_DEVICES)
    lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
    assert out.returncode == 0 and lines, out.stderr[-3000:]
    return json.loads(lines[-1][len("RESULT "):])


pytestmark = pytest.mark.slow


def test_batches_are_sharded_over_the_batch_axis(four_devices):
    assert four_devices["devices"] == 4
    for rows, parity in four_devices["parity"].items():
        full = parity["full"]
        # (steps, batch, features), each device holding a quarter of every batch
        assert full["spec"] == [None, "batch", None]
        assert full["devices"] == 4 and full["shape"] == [int(rows) // 16, 16, 5] and full["shard"] == [
            int(rows) // 16, 4, 5]
    # The last batch is split when it divides over the 4 devices, else every device runs all of it.
    assert four_devices["parity"]["44"]["rest"]["shard"] == [3, 5]
    assert four_devices["parity"]["42"]["rest"]["shard"] == [10, 5]
    assert four_devices["parity"]["42"]["rest"]["spec"] == []
    # Validation rows are placed the same way (12 rows: one batch of 3 per device).
    assert four_devices["parity"]["42"]["validation"]["shard"] == [1, 3, 5]


def test_four_devices_train_to_the_weights_of_one_without_shuffling(four_devices):
    for parity in four_devices["parity"].values():
        assert parity["weight_diff"] < 1e-5
        np.testing.assert_allclose(*parity["loss"], rtol=1e-5)
        np.testing.assert_allclose(*parity["val_loss"], rtol=1e-5)


def test_global_batch_must_split_over_the_devices(four_devices):
    assert "30 does not split" in four_devices["odd_batch"]
    assert "batch_size=28 or 32" in four_devices["odd_batch"]


def test_shuffled_data_parallel_training_learns_and_keeps_variables_replicated(four_devices):
    assert four_devices["shuffled_accuracy"] > 0.85
    kernel = four_devices["kernel_after_fit"]
    assert kernel["devices"] == 4 and kernel["shard"] == kernel["shape"]  # replicated
    assert four_devices["built_outside"]["devices"] == 4
    # A shuffled epoch draws its last batch from every row; 10 rows run replicated.
    last = four_devices["shuffled_replicated_rest"]
    assert last["rest"]["spec"] == [] and last["loss"][-1] < last["loss"][0]


def test_predict_pads_rows_that_do_not_split_over_the_devices(four_devices):
    shape, difference = four_devices["predictions"]
    assert shape == [30, 1] and difference < 1e-5


def test_model_parallel_variables_keep_their_layouts(four_devices):
    result = four_devices["model_parallel"]
    assert result["kernel"]["spec"] == [None, "model"]
    assert result["kernel"]["shard"] == [5, 4]
    assert result["slots"] and all(s["spec"] == [None, "model"] for s in result["slots"])
    assert result["full"]["spec"] == [None, "batch", None]
    assert result["loss"][-1] < result["loss"][0]


def test_recipe_flag_trains_data_parallel_on_jax(tmp_path):
    code = (
        "import sys\n"
        "from kerakit.cli import main\n"
        f"sys.exit(main(['run', 'breast-cancer', '--smoke', '--strategy', 'data_parallel', "
        f"'--runs-dir', {str(tmp_path)!r}, '--json']))\n"
    )
    out = _four_devices(code)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout[out.stdout.index("{"):])
    assert result["recipe"] == "breast-cancer"
    assert result["metrics"]["accuracy"] > 0.6  # a smoke run: a few epochs on 4 devices
