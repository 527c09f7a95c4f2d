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


# Hardening (issue 14: 15-20, 22-23) and backends (issue 12) --------------------------


def _raw_exchange(url, data, wait=6.0, close_after_send=False):
    """Sends raw bytes on a new socket; returns (everything received, seconds until EOF)."""
    import socket
    from urllib.parse import urlparse

    address = urlparse(url)
    sock = socket.create_connection((address.hostname, address.port), timeout=wait)
    start = time.monotonic()
    try:
        if data:
            sock.sendall(data)
        if close_after_send:
            return b"", 0.0
        received = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return received, time.monotonic() - start
            received += chunk
    except TimeoutError:
        return received + b"<no EOF>", time.monotonic() - start
    finally:
        sock.close()


def _json_body(response):
    head, _, body = response.partition(b"\r\n\r\n")
    assert b"application/json" in head.lower(), response
    return int(head.split(b" ", 2)[1]), json.loads(body)["error"]


def test_versions_must_be_short_digit_strings(server):
    with httpx.Client(base_url=server.url, timeout=10) as client:
        assert client.get("/v1/models/digits/versions/1").status_code == 200
        for version in ("9" * 5000, "1%0A", "1%20", "%2B1", "1" * 19):
            answer = client.get(f"/v1/models/digits/versions/{version}")
            assert answer.status_code == 400, (version, answer.text)
            assert "1 to 18 digits" in answer.json()["error"]
        answer = client.post("/v1/models/digits/versions/" + "9" * 5000 + ":predict", content=b"{}")
        assert answer.status_code == 400 and "not a version number" in answer.json()["error"]
        missing = client.get("/v1/models/digits/versions/" + "9" * 18)
        assert missing.status_code == 404 and "Loaded version(s): 1" in missing.json()["error"]


def test_variable_length_requests_are_batched_by_shape_and_the_batcher_survives():
    import keras

    import kerakit as kk

    inputs = keras.Input((None, 2), name="sequence")
    outputs = keras.layers.Dense(1)(keras.layers.GlobalAveragePooling1D()(inputs))
    model = keras.Model(inputs, outputs)
    rng = np.random.default_rng(0)
    requests = [rng.random((1, 3 + (i % 2) * 2, 2), dtype=np.float32) for i in range(8)]
    with kk.serve(model, port=0, block=False, name="seq", batch_wait_ms=200) as running, \
            httpx.Client(base_url=running.url, timeout=20) as client, \
            concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(
            lambda x: client.post("/v1/models/seq:predict", json={"instances": x.tolist()}), requests))
        for x, answer in zip(requests, answers, strict=True):
            assert answer.status_code == 200, answer.text
            np.testing.assert_allclose(answer.json()["predictions"], model.predict(x, verbose=0), atol=1e-5)
        assert running.service.batchers[1].calls < 8  # same-shape requests still share a call
        status = client.get("/v1/models/seq").json()["model_version_status"][0]
        assert status["state"] == "AVAILABLE" and running.service.batchers[1].alive
        again = client.post("/v1/models/seq:predict", json={"instances": requests[0].tolist()})
        assert again.status_code == 200


def test_incomplete_requests_are_answered_or_closed_within_the_timeout(model):
    import kerakit as kk

    head = b"POST /v1/models/m:predict HTTP/1.1\r\nHost: x\r\n"
    with kk.serve(model, port=0, block=False, name="m", request_timeout=1,
                  keep_alive_timeout=1) as running:
        half_headers, took = _raw_exchange(running.url, head + b"Content-Le")
        assert took < 4 and _json_body(half_headers)[0] == 408
        half_body, took = _raw_exchange(running.url, head + b"Content-Length: 100\r\n\r\n{\"inst")
        status, message = _json_body(half_body)
        assert took < 5 and status == 408 and "within 1 s" in message
        both = head + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\nhello"
        answer, took = _raw_exchange(running.url, both)
        status, message = _json_body(answer)
        assert took < 4 and status == 400 and "Transfer-Encoding" in message
        silent, took = _raw_exchange(running.url, b"")
        assert silent == b"" and took < 4  # an idle connection is closed, not kept forever
        garbage, _ = _raw_exchange(running.url, b"NOT HTTP AT ALL\r\n\r\n")
        status, message = _json_body(garbage)  # uvicorn's plain-text 400, now JSON
        assert status == 400 and "Invalid HTTP request" in message
        ok = httpx.post(running.model_url + ":predict", json={"instances": np.zeros((1, 64)).tolist()})
        assert ok.status_code == 200


def test_connections_over_the_cap_are_refused_with_json(model):
    import socket

    import kerakit as kk

    with kk.serve(model, port=0, block=False, name="m", max_connections=2,
                  request_timeout=10) as running:
        idle = [socket.create_connection((running.host, running.port)) for _ in range(2)]
        try:
            time.sleep(0.2)
            request = (b"GET /v1/models/m HTTP/1.1\r\nHost: x\r\n\r\n")
            refused, took = _raw_exchange(running.url, request)
            status, message = _json_body(refused)
            assert status == 503 and "2 open connections" in message and took < 4
        finally:
            for sock in idle:
                sock.close()
        time.sleep(0.3)
        assert httpx.get(running.model_url, timeout=10).status_code == 200


def test_a_client_that_leaves_mid_body_logs_one_line(model):
    import logging

    import kerakit as kk

    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record)

    handler = Keep(logging.DEBUG)
    loggers = [logging.getLogger(n) for n in ("kerakit.serving", "uvicorn.error")]
    with kk.serve(model, port=0, block=False, name="m") as running:
        for logger in loggers:
            logger.addHandler(handler)
        try:
            request = b"POST /v1/models/m:predict HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"in"
            _raw_exchange(running.url, request, close_after_send=True)
            for _ in range(50):
                if records:
                    break
                time.sleep(0.1)
            time.sleep(0.3)
        finally:
            for logger in loggers:
                logger.removeHandler(handler)
    assert len(records) == 1, [r.getMessage() for r in records]
    assert records[0].exc_info is None and "before sending the whole request body" in records[0].getMessage()


def test_a_run_directory_serves_model_keras_never_a_saved_model_planted_in_it(model, tmp_path):
    import keras

    import kerakit as kk
    from kerakit.serving import load_model, load_servables

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


def _table_model(with_codes=True):
    import pandas as pd

    from kerakit import data

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"area": rng.uniform(30, 150, 60), "rooms": rng.integers(1, 5, 60),
                          "city": rng.choice(["Oslo", "Bergen"], 60)})
    frame["size"] = np.where(frame["area"] > 90, "big", "small")
    table = data.read_table(frame, "size", types={"rooms": "integer_categorical"})
    encoder = data.TargetEncoder().fit(table.frame["size"], "size", table.where)
    columns = data.to_inputs(table.frame, table.schema, table.where)
    stats = data.StatsAccumulator(table.schema).update(columns).result()
    model, _ = data.build_table_model(table.schema, stats, encoder, seed=0)
    return model, frame


def test_integer_category_columns_accept_integral_floats_as_pandas_and_csv_send_them():
    from kerakit import data
    from kerakit.errors import RequestError
    from kerakit.serving import Servable, parse_request

    model, _ = _table_model()
    servable = Servable.from_keras(model, "houses")
    row = {"area": 120.0, "rooms": 3.0, "city": "Oslo"}
    feeds, rows, _ = parse_request(servable, json.dumps({"instances": [row]}).encode())
    expected = data.predict_table(model, [{**row, "rooms": 3}], proba=True)[:, 1]
    np.testing.assert_allclose(np.ravel(servable.predict(feeds)["output_0"]), expected, atol=1e-5)
    for bad in (3.5, "3", True):
        with pytest.raises(RequestError, match="must be a whole number or null"):
            parse_request(servable, json.dumps({"instances": [{**row, "rooms": bad}]}).encode())


def test_predict_table_traces_once_per_input_signature():
    from kerakit import data

    model, frame = _table_model()
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
tensorflow = "tensorflow" in sys.modules
try:  # a raw-column model with text columns serves on JAX too (codes from its vocabularies)
    load_servables(sys.argv[4])
    text = ""
except RunError as error:
    text = str(error)
print(json.dumps({"predictions": answers[1]["predictions"], "one": answers[0]["predictions"],
                  "tensorflow": tensorflow, "refused": refused, "text": text}))
"""


@pytest.mark.slow
def test_a_keras_file_is_served_on_jax_without_tensorflow(model, digits, tmp_path):
    import kerakit as kk
    from kerakit import data

    model.save(tmp_path / "digits.keras")
    export = kk.export(model, tmp_path / "export")
    data.save_table_model(_table_model()[0], tmp_path / "table.keras")
    x = digits[1][:3]
    out = subprocess.run(
        [sys.executable, "-c", SERVE_ON_BACKEND, str(tmp_path / "digits.keras"), str(export),
         json.dumps(x.tolist()), str(tmp_path / "table.keras")],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env=dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="3"))
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    np.testing.assert_allclose(result["predictions"], model.predict(x, verbose=0), atol=1e-4)
    np.testing.assert_allclose(result["one"], model.predict(x[:1], verbose=0), atol=1e-4)
    assert result["tensorflow"] is False
    assert "'jax'" in result["refused"] and "kerakit serve model.keras" in result["refused"]
    assert result["text"] == ""


def test_serve_command_passes_the_server_limits(monkeypatch, tmp_path):
    """Issue 14, item 17: the timeouts and the connection cap can be set from the shell."""
    import kerakit.serving
    from kerakit import cli

    seen = {}
    monkeypatch.setattr(kerakit.serving, "serve", lambda model, **options: seen.update(options))
    assert cli.main(["serve", str(tmp_path / "m.keras"), "--request-timeout", "2.5",
                     "--keep-alive-timeout", "1", "--max-connections", "7"]) == 0
    assert (seen["request_timeout"], seen["keep_alive_timeout"], seen["max_connections"]) == (2.5, 1.0, 7)
    assert cli.main(["serve", str(tmp_path / "m.keras"), "--max-connections", "0"]) == 2
