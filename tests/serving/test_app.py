"""The TensorFlow-Serving-compatible REST service: status, metadata, predict (loopback only)."""

import numpy as np
import pytest

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



@pytest.mark.backends
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


@pytest.mark.backends
def test_metadata_names_the_positive_class_and_the_class_order(tmp_path):
    from starlette.testclient import TestClient

    import kerakit as kk
    from kerakit.serving import Service

    def metadata(model):
        with TestClient(Service(model, name="m").app) as client:
            return client.get("/v1/models/m/metadata").json()["kerakit"]

    binary = kk.build_model(kk.ProblemSpec(task="binary", class_names=("healthy", "sick")),
                            input_shape=(3,), units=(4,), seed=0)
    described = metadata(binary)
    assert described["task"] == "binary" and described["positive_class"] == "sick"
    assert described["class_names"] == ["healthy", "sick"]
    assert "probability" in described["outputs"]["output_0"] and "'sick'" in described["outputs"]["output_0"]

    unnamed = metadata(kk.build_model(kk.ProblemSpec(task="binary"), input_shape=(3,), units=(4,), seed=0))
    assert unnamed["positive_class"] == 1 and unnamed["class_names"] == [0, 1]

    spec = kk.ProblemSpec(task="multiclass", num_classes=3, class_names=("setosa", "versicolor", "virginica"))
    multiclass = metadata(kk.build_model(spec, input_shape=(3,), units=(4,), seed=0))
    assert multiclass["class_names"] == ["setosa", "versicolor", "virginica"]
    assert "positive_class" not in multiclass and "order of class_names" in multiclass["outputs"]["output_0"]

    # A .keras file keeps the spec, so a served file names its classes too.
    binary.save(tmp_path / "binary.keras")
    assert metadata(str(tmp_path / "binary.keras"))["positive_class"] == "sick"


@pytest.mark.slow
def test_an_exported_saved_model_keeps_the_class_names(tmp_path):
    import keras
    from starlette.testclient import TestClient

    import kerakit as kk
    from kerakit.serving import Service

    if keras.backend.backend() != "tensorflow":
        pytest.skip("a SavedModel export needs the TensorFlow backend")
    spec = kk.ProblemSpec(task="binary", class_names=("healthy", "sick"))
    kk.export(kk.build_model(spec, input_shape=(3,), units=(4,), seed=0), tmp_path / "m")
    with TestClient(Service(tmp_path / "m", name="m").app) as client:
        described = client.get("/v1/models/m/metadata").json()["kerakit"]
    assert described["positive_class"] == "sick" and described["class_names"] == ["healthy", "sick"]


@pytest.mark.backends
def test_a_raw_column_model_serves_raw_rows_and_drift_on_every_backend(numeric_table_model, tmp_path):
    from starlette.testclient import TestClient

    from kerakit import data
    from kerakit.serving import Service

    data.save_table_model(numeric_table_model, tmp_path / "houses.keras")
    rows = [{"area": float(a), "garden": bool(i % 2)} for i, a in enumerate(np.linspace(30, 150, 120))]
    rows[0] = {"area": None, "garden": None}  # missing cells: imputed by the model
    with TestClient(Service(tmp_path / "houses.keras", name="houses").app) as client:
        answer = client.post("/v1/models/houses:predict", json={"instances": rows})
        assert answer.status_code == 200, answer.text
        drift = client.get("/v1/models/houses/drift").json()
        metadata = client.get("/v1/models/houses/metadata").json()["kerakit"]
    expected = data.predict_table(numeric_table_model, rows, proba=True)[:, 1]
    np.testing.assert_allclose(np.ravel(answer.json()["predictions"]), expected, atol=1e-5)
    assert drift["features"]["area"]["rows"] == 119 and "psi" in drift["features"]["area"]
    assert metadata["positive_class"] == "small" and metadata["target"] == "size"
