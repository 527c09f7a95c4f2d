"""A server you can watch (issue 17, item 2): Prometheus metrics, input drift, `kerakit promote`."""

import numpy as np
import pytest

pytest.importorskip("httpx")
pytest.importorskip("prometheus_client")

# Backend-neutral: CI runs this file on TensorFlow and again on JAX (scripts/dev.py).
pytestmark = pytest.mark.backends


@pytest.fixture(scope="module")
def train():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1000, 3)).astype("float32")
    return x, (x[:, 0] + x[:, 1] > 0).astype("int64")


@pytest.fixture(scope="module")
def model():
    import kerakit as kk

    return kk.build_model(kk.ProblemSpec(task="binary"), input_shape=(3,), units=(4,), seed=0)


def _client(service):
    from starlette.testclient import TestClient

    return TestClient(service.app)


def test_metrics_endpoint_is_prometheus_text_with_requests_latency_batches_and_refusals(model):
    from prometheus_client.parser import text_string_to_metric_families

    from kerakit.serving import Service

    service = Service(model, name="tiny")
    with _client(service) as client:
        for _ in range(3):
            assert client.post("/v1/models/tiny:predict", json={"instances": [[0.1, 0.2, 0.3]] * 5}
                               ).status_code == 200
        assert client.post("/v1/models/tiny:predict", json={"instances": [[1.0]]}).status_code == 400
        assert client.get("/v1/models/other").status_code == 404
        response = client.get("/monitoring/prometheus/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    requests = {(s.labels["version"], s.labels["method"], s.labels["status"]): s.value
                for s in families["kerakit_requests"].samples if s.name == "kerakit_requests_total"}
    assert requests[("1", "predict", "200")] == 3 and requests[("1", "predict", "400")] == 1
    refusals = {s.labels["reason"]: s.value for s in families["kerakit_refusals"].samples
                if s.name == "kerakit_refusals_total"}
    assert refusals == {"bad_request": 1.0, "not_found": 1.0}
    latency = [s for s in families["kerakit_request_latency_seconds"].samples
               if s.name.endswith("_count") and s.labels["method"] == "predict"]
    assert latency[0].value == 4
    batches = {s.name: s.value for s in families["kerakit_batch_size"].samples}
    assert batches["kerakit_batch_size_count"] == 3 and batches["kerakit_batch_size_sum"] == 15
    # A per-app registry: a second service starts from zero.
    assert "kerakit_requests_total{" not in Service(model, name="tiny").metrics.render()[0].decode()


def _served_drift(service, x):
    with _client(service) as client:
        for start in range(0, len(x), 50):
            rows = x[start:start + 50].tolist()
            assert client.post("/v1/models/tiny:predict", json={"instances": rows}).status_code == 200
        return client.get("/v1/models/tiny/drift").json()


def test_drift_flags_the_one_shifted_feature_and_not_an_unshifted_stream(model, train, tmp_path):
    from kerakit.serving import Service, save_reference

    x, _ = train
    fresh = np.random.default_rng(1).normal(size=(400, 3)).astype("float32")
    report = _served_drift(Service(model, name="tiny", drift_reference=x), fresh)
    assert report["verdict"] == "no drift" and report["rows"] == 400
    assert all(f["psi"] < 0.1 for f in report["features"].values())

    shifted = fresh.copy()
    shifted[:, 1] += 1.5
    # The reference stored beside a .keras file is found by the service.
    path = tmp_path / "tiny.keras"
    model.save(path)
    save_reference(x, path)
    report = _served_drift(Service(path, name="tiny"), shifted)
    assert report["verdict"] == "drift" and report["drifted_features"] == ["features[1]"]
    assert report["features"]["features[0]"]["verdict"] == "no drift"


def test_drift_without_training_statistics_says_how_to_add_them(model):
    from kerakit.serving import Service

    with _client(Service(model, name="tiny")) as client:
        response = client.get("/v1/models/tiny/drift")
    assert response.status_code == 404 and "save_reference" in response.json()["error"]


# `kerakit promote` -------------------------------------------------------------------


def _logistic(weights):
    import keras

    inputs = keras.Input((len(weights),), name="features")
    outputs = keras.layers.Dense(1, activation="sigmoid", name="output")(inputs)
    model = keras.Model(inputs, outputs)
    model.get_layer("output").set_weights([np.array(weights, dtype="float32")[:, None], np.zeros(1)])
    return model


@pytest.fixture(scope="module")
def good_and_bad_runs(tmp_path_factory):
    """Run directories of a good and a worse binary model (weights set by hand), a held-out CSV."""
    import pandas as pd

    from kerakit.runs import Run

    root = tmp_path_factory.mktemp("runs")
    rng = np.random.default_rng(5)
    x = rng.normal(size=(400, 3)).astype("float32")
    y = (2 * x[:, 0] + x[:, 1] > 0).astype(int)
    names = ["alpha", "beta", "gamma"]
    dirs = {}
    for label, weights in (("good", [2.0, 1.0, 0.0]), ("bad", [0.3, 0.0, 2.0])):
        run = Run("toy", root=root, run_id=f"run-{label}", quiet=True)
        run.save_model(_logistic(weights))
        run.write_manifest(spec={"task": "binary"}, data={"feature_names": names, "target": "label"})
        dirs[label] = run.dir
    frame = pd.DataFrame(x, columns=names)
    frame["label"] = y
    csv = root / "holdout.csv"
    frame.to_csv(csv, index=False)
    return dirs, csv


def test_promote_refuses_a_worse_candidate_and_exports_a_good_one(good_and_bad_runs, tmp_path, capsys):
    import keras

    from kerakit import cli

    if keras.backend.backend() != "tensorflow":
        pytest.skip("the export is a SavedModel, which needs the TensorFlow backend")
    dirs, csv = good_and_bad_runs
    export = tmp_path / "models" / "toy"
    code = cli.main(["promote", str(dirs["bad"]), "--current", str(dirs["good"]), "--csv", str(csv),
                     "--export", str(export), "--resamples", "200"])
    out = capsys.readouterr().out
    assert code == 3 and "REFUSED" in out and "A is better" in out
    assert not export.exists()

    code = cli.main(["promote", str(dirs["good"]), "--current", str(dirs["bad"]), "--csv", str(csv),
                     "--export", str(export), "--resamples", "200"])
    assert code == 0 and "PROMOTED" in capsys.readouterr().out
    assert sorted(p.name for p in export.iterdir()) == ["1"]


@pytest.mark.slow
def test_a_raw_column_model_carries_its_own_drift_reference():
    import keras
    import pandas as pd

    import kerakit as kk
    from kerakit.serving import Service

    if keras.backend.backend() != "tensorflow":
        pytest.skip("a raw-column model's text columns run on TensorFlow only")
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"size": rng.normal(5, 2, 300), "color": rng.choice(["red", "blue"], 300)})
    frame["label"] = (frame["size"] > 5).astype(int)
    result = kk.fit_table(frame, "label", epochs=1, verbose=0)
    service = Service(getattr(result, "model", result), name="t")  # no reference given
    served = [{"size": float(v), "color": "green" if i % 3 == 0 else "red"}
              for i, v in enumerate(rng.normal(5, 2, 200))]
    with _client(service) as client:
        assert client.post("/v1/models/t:predict", json={"instances": served}).status_code == 200
        report = client.get("/v1/models/t/drift").json()
    assert report["features"]["size"]["verdict"] == "no drift"
    assert report["features"]["color"]["unseen_rate"] == pytest.approx(67 / 200)
    assert report["drifted_features"] == ["color"]
