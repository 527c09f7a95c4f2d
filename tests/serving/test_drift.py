"""Input drift: served features against training statistics (PSI), and the reference files."""

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
