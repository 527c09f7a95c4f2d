"""Export, safe loading and the TensorFlow-Serving-compatible REST service (loopback only)."""

import concurrent.futures
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent

httpx = pytest.importorskip("httpx")


@pytest.fixture(scope="module")
def model():
    import kerakit as kk

    spec = kk.ProblemSpec(task="multiclass", num_classes=10)
    return kk.build_model(spec, input_shape=(64,), units=(32,), seed=0)


@pytest.fixture(scope="module")
def server(model):
    import kerakit as kk

    with kk.serve(model, port=0, block=False, name="digits", batch_wait_ms=20) as running:
        yield running


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
    with pytest.raises(ValueError, match="positive integer"):
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
    from kerakit.serving import load_model

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
    with pytest.raises(ValueError, match="No .keras model file"):
        load_model(tmp_path / "missing.keras")


def test_status_metadata_and_both_request_formats(server, model, digits):
    x = digits[1][:3]
    expected = model.predict(x, verbose=0)
    with httpx.Client(base_url=server.url) as client:
        status = client.get("/v1/models/digits").json()
        assert status["model_version_status"][0]["state"] == "AVAILABLE"
        signature = client.get("/v1/models/digits/metadata").json()["metadata"]["signature_def"]
        inputs = signature["signature_def"]["serving_default"]["inputs"]
        assert inputs["features"]["dtype"] == "DT_FLOAT"
        assert [d["size"] for d in inputs["features"]["tensor_shape"]["dim"]] == ["-1", "64"]

        rows = client.post("/v1/models/digits:predict", json={"instances": x.tolist()})
        assert rows.status_code == 200
        np.testing.assert_allclose(rows.json()["predictions"], expected, atol=1e-5)
        keyed = client.post("/v1/models/digits/versions/1:predict",
                            json={"instances": [{"features": r} for r in x.tolist()]})
        np.testing.assert_allclose(keyed.json()["predictions"], expected, atol=1e-5)
        columns = client.post("/v1/models/digits:predict",
                              json={"inputs": {"features": x.tolist()}, "signature_name": "serving_default"})
        np.testing.assert_allclose(columns.json()["outputs"], expected, atol=1e-5)

        missing = client.post("/v1/models/digits/versions/2:predict", json={"instances": x.tolist()})
        assert missing.status_code == 404 and "Loaded version(s): 1" in missing.json()["error"]


def test_concurrent_requests_share_one_model_call_and_get_their_own_rows(model, digits):
    import kerakit as kk

    x = digits[1][:16]
    expected = model.predict(x, verbose=0)

    def burst(running):
        with httpx.Client(base_url=running.url) as client:
            client.post("/v1/models/m:predict", json={"instances": x[:1].tolist()})  # warm up
            before = running.service.batchers[1].calls
            with concurrent.futures.ThreadPoolExecutor(16) as pool:
                answers = list(pool.map(
                    lambda i: client.post("/v1/models/m:predict", json={"instances": [x[i].tolist()]}),
                    range(16)))
            return answers, running.service.batchers[1].calls - before

    for batching in (True, False):
        with kk.serve(model, port=0, block=False, name="m", batching=batching,
                      batch_wait_ms=200) as running:
            answers, calls = burst(running)
        for i, answer in enumerate(answers):
            assert answer.status_code == 200
            np.testing.assert_allclose(answer.json()["predictions"][0], expected[i], atol=1e-5)
        if batching:
            assert calls < 16, "concurrent requests were not batched"
        else:
            assert calls == 16


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


def test_raw_column_model_takes_rows_keyed_by_column_name(tmp_path):
    import pandas as pd

    import kerakit as kk
    from kerakit import data

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({
        "area m2": rng.uniform(30, 150, 60), "city": rng.choice(["Oslo", "Bergen"], 60),
        "garden": rng.choice([True, False], 60),
    })
    frame["size"] = np.where(frame["area m2"] > 90, "big", "small")
    # The raw-column model fit_table would train, built without training (serving is under test).
    table = data.read_table(frame, "size")
    encoder = data.TargetEncoder().fit(table.frame["size"], "size", table.where)
    columns = data.to_inputs(table.frame, table.schema, table.where)
    stats = data.StatsAccumulator(table.schema).update(columns).result()
    model, _ = data.build_table_model(table.schema, stats, encoder, seed=0)
    data.save_table_model(model, tmp_path / "houses.keras")
    export = kk.export(model, tmp_path / "export" / "houses")
    rows = [{"area m2": 120.5, "city": "Oslo", "garden": True},
            {"area m2": None, "city": None, "garden": None}]  # missing cells: imputed by the model
    expected = data.predict_table(model, rows, proba=True)[:, 1]
    for source in (tmp_path / "houses.keras", export.parent):
        with kk.serve(source, port=0, block=False, name="houses") as running, httpx.Client() as client:
            predict = running.model_url + ":predict"
            answer = client.post(predict, json={"instances": rows})
            assert answer.status_code == 200, answer.text
            np.testing.assert_allclose(np.ravel(answer.json()["predictions"]), expected, atol=1e-5)
            metadata = client.get(running.model_url + "/metadata").json()
            assert metadata["kerakit"]["class_names"] == ["big", "small"]
            typo = {"area": 1.0, "city": "Oslo", "garden": False}
            answer = client.post(predict, json={"instances": [typo]})
            assert answer.status_code == 400 and "Did you mean 'area m2'" in answer.json()["error"]
            text = {"area m2": "12", "city": "Oslo", "garden": False}
            answer = client.post(predict, json={"instances": [text]})
            assert answer.status_code == 400 and "must be a number or null" in answer.json()["error"]


def test_kerakit_serve_command_answers_a_curl_style_request(model, digits, tmp_path):
    run_dir = tmp_path / "runs" / "digits" / "20250101-000000"
    run_dir.mkdir(parents=True)
    model.save(run_dir / "model.keras")
    (run_dir / "manifest.json").write_text(json.dumps({"recipe": "digits"}))
    process = subprocess.Popen(
        [sys.executable, "-m", "kerakit.cli", "serve", str(run_dir), "--port", "0"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    try:
        line = process.stdout.readline()
        assert "model 'digits'" in line and "http://127.0.0.1:" in line, process.stderr.read()
        url = line.split(" at ", 1)[1].strip()
        x = digits[1][:2]
        answer = None
        for _ in range(100):  # the socket is bound; wait until the app answers
            try:
                answer = httpx.post(url + ":predict", content=json.dumps({"instances": x.tolist()}),
                                    timeout=10)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        assert answer is not None and answer.status_code == 200
        np.testing.assert_allclose(answer.json()["predictions"], model.predict(x, verbose=0), atol=1e-5)
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_serve_help_is_instant_and_bad_paths_fail_cleanly(tmp_path, capsys):
    code = ("import sys\ntry:\n    from kerakit.cli import main\n    main(['serve', '--help'])\n"
            "except SystemExit:\n    pass\nprint('tensorflow loaded:', 'tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert "--max-body-bytes" in out.stdout and "tensorflow loaded: False" in out.stdout

    from kerakit.cli import main

    assert main(["serve", str(tmp_path / "nothing.keras"), "--port", "0"]) == 2
    assert "No .keras model file" in capsys.readouterr().err
