"""Export into numbered SavedModel versions, safe loading, and the `Servable` on every backend."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]

httpx = pytest.importorskip("httpx")


@pytest.fixture(scope="module")
def model():
    import kerakit as kk

    spec = kk.ProblemSpec(task="multiclass", num_classes=10)
    return kk.build_model(spec, input_shape=(64,), units=(32,), seed=0)



def test_export_writes_numbered_versions_with_named_inputs(model, digits, tmp_path):
    import keras
    import tensorflow as tf

    import kerakit as kk

    x = digits[1][:5]
    base = tmp_path / "models" / "digits"
    assert kk.export(model, base) == base / "1"
    assert kk.export(model, base) == base / "2"
    assert kk.export(model, base, version=7) == base / "7"
    with pytest.raises(ValueError, match="Version 7 already exists"):
        kk.export(model, base, version=7)
    with pytest.raises(ValueError, match="`version` must be >= 1"):
        kk.export(model, base, version=0)
    assert sorted(p.name for p in base.iterdir()) == ["1", "2", "7"]  # no temporary folders left

    signature = tf.saved_model.load(str(base / "2")).signatures["serving_default"]
    assert list(signature.structured_input_signature[1]) == ["features"]
    exported = signature(features=tf.constant(x))["output_0"].numpy()
    np.testing.assert_allclose(exported, model.predict(x, verbose=0), atol=1e-5)

    # A Sequential model's automatic input name ("keras_tensor_12") is exported as "features".
    sequential = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    path = kk.export(sequential, tmp_path / "seq")
    names = tf.saved_model.load(str(path)).signatures["serving_default"].structured_input_signature[1]
    assert list(names) == ["features"]



def test_load_model_refuses_code_in_files_and_reads_run_directories(model, tmp_path):
    import keras

    from kerakit.errors import KerakitError
    from kerakit.saving import load_model

    run_dir = tmp_path / "runs" / "digits" / "0001"
    run_dir.mkdir(parents=True)
    model.save(run_dir / "model.keras")
    (run_dir / "manifest.json").write_text(json.dumps({"recipe": "digits"}))
    loaded = load_model(run_dir)
    x = np.random.default_rng(0).random((3, 64), dtype=np.float32)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)

    inputs = keras.Input((2,))
    lambda_model = keras.Model(inputs, keras.layers.Lambda(lambda t: t * 2)(inputs))
    lambda_model.save(tmp_path / "lambda.keras")
    with pytest.raises(KerakitError, match="Lambda"):
        load_model(tmp_path / "lambda.keras")
    from keras.src.saving import serialization_lib

    assert serialization_lib.in_safe_mode() is not False  # safety was not switched off process-wide
    with pytest.raises(ValueError, match="No run directory or model file"):
        load_model(tmp_path / "missing.keras")



def test_export_folder_serves_every_version_and_the_latest_by_default(model, digits, tmp_path):
    import keras

    import kerakit as kk
    from kerakit.serving import load_servables

    base = tmp_path / "digits"
    kk.export(model, base)
    other = keras.models.clone_model(model)  # fresh weights: different predictions
    kk.export(other, base)
    x = digits[1][:2]
    name, servables = load_servables(base, versions="all")
    assert name == "digits" and sorted(servables) == [1, 2]
    with kk.serve(base, port=0, block=False, versions="all") as running, httpx.Client() as client:
        status = client.get(running.model_url).json()["model_version_status"]
        assert [s["version"] for s in status] == ["2", "1"]
        first = client.post(running.model_url + "/versions/1:predict", json={"instances": x.tolist()}).json()
        latest = client.post(running.model_url + ":predict", json={"instances": x.tolist()}).json()
    np.testing.assert_allclose(first["predictions"], model.predict(x, verbose=0), atol=1e-5)
    np.testing.assert_allclose(latest["predictions"], other.predict(x, verbose=0), atol=1e-5)



def test_a_run_directory_serves_model_keras_never_a_saved_model_planted_in_it(model, tmp_path):
    import keras

    import kerakit as kk
    from kerakit.saving import load_model
    from kerakit.serving import load_servables

    run_dir = tmp_path / "runs" / "digits" / "0001"
    run_dir.mkdir(parents=True)
    model.save(run_dir / "model.keras")
    (run_dir / "manifest.json").write_text(json.dumps({"recipe": "digits"}))
    planted = keras.models.clone_model(model)  # other weights: a different program
    kk.export(planted, run_dir)
    assert (run_dir / "1" / "saved_model.pb").is_file()
    x = np.random.default_rng(0).random((2, 64), dtype=np.float32)
    for source in (run_dir, run_dir / "model.keras"):
        name, servables = load_servables(source)
        assert name == "digits" and isinstance(servables[1]._keep, keras.Model)
        np.testing.assert_allclose(servables[1].predict({"features": x})["output_0"],
                                   model.predict(x, verbose=0), atol=1e-5)
    np.testing.assert_allclose(load_model(run_dir).predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5)
    # Named explicitly, the export folder is served (the user chose to trust it).
    _, explicit = load_servables(run_dir / "1")
    np.testing.assert_allclose(explicit[1].predict({"features": x})["output_0"],
                               planted.predict(x, verbose=0), atol=1e-5)




def test_predict_table_traces_once_per_input_signature(text_table_model):
    from kerakit import data

    model, frame = text_table_model
    model.steps_per_execution = 32  # as kerakit's fit leaves it: each batch count traced anew before
    layer = model.get_layer(data.table.OUTPUT_LAYER)
    traces, call = [], layer.call
    layer.call = lambda *args, **kwargs: (traces.append(1), call(*args, **kwargs))[1]
    first = None
    for rows in (3, 5, 7, 11, 13, 17, 19, 23):
        predicted = data.predict_table(model, frame.drop(columns="size").head(rows), batch_size=4)
        assert predicted.shape == (rows,)
        first = predicted if first is None else first
        np.testing.assert_array_equal(predicted[:3], first[:3])  # padding never changes a row
    assert len(traces) <= 3, f"traced {len(traces)} times over 8 calls"



SERVE_ON_BACKEND = """
import json, sys
import httpx
from kerakit.errors import RunError
from kerakit.serving import load_servables, serve
x = json.loads(sys.argv[3])
with serve(sys.argv[1], port=0, block=False, name="digits") as running:
    answers = [httpx.post(running.model_url + ":predict", json={"instances": x[:n]}, timeout=60).json()
               for n in (1, 3)]
try:
    load_servables(sys.argv[2])
    refused = ""
except RunError as error:
    refused = str(error)
rows = json.loads(sys.argv[5])
with serve(sys.argv[4], port=0, block=False, name="houses") as running:
    table = httpx.post(running.model_url + ":predict", json={"instances": rows}, timeout=60).json()
    drift = httpx.get(running.model_url + "/drift", timeout=60).json()
print(json.dumps({"predictions": answers[1]["predictions"], "one": answers[0]["predictions"],
                  "tensorflow": "tensorflow" in sys.modules, "refused": refused,
                  "table": table["predictions"], "drift": drift}))
"""


@pytest.mark.slow
def test_keras_files_are_served_on_jax_without_tensorflow(model, digits, numeric_table_model, tmp_path):
    """A `.keras` file, raw table rows and the drift endpoint: no TensorFlow import under JAX."""
    import kerakit as kk
    from kerakit import data

    model.save(tmp_path / "digits.keras")
    export = kk.export(model, tmp_path / "export")
    table_model = numeric_table_model
    data.save_table_model(table_model, tmp_path / "houses.keras")
    rows = [{"area": float(a), "garden": bool(i % 2)} for i, a in enumerate(np.linspace(30, 150, 120))]
    x = digits[1][:3]
    out = subprocess.run(
        [sys.executable, "-c", SERVE_ON_BACKEND, str(tmp_path / "digits.keras"), str(export),
         json.dumps(x.tolist()), str(tmp_path / "houses.keras"), json.dumps(rows)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env=dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="3"))
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    np.testing.assert_allclose(result["predictions"], model.predict(x, verbose=0), atol=1e-4)
    np.testing.assert_allclose(result["one"], model.predict(x[:1], verbose=0), atol=1e-4)
    assert result["tensorflow"] is False
    assert "'jax'" in result["refused"] and "kerakit serve model.keras" in result["refused"]
    expected = data.predict_table(table_model, rows, proba=True)[:, 1]
    np.testing.assert_allclose(np.ravel(result["table"]), expected, atol=1e-4)
    area = result["drift"]["features"]["area"]  # true/false columns carry no statistics
    assert result["drift"]["rows"] == 120 and area["rows"] == 120 and "psi" in area
