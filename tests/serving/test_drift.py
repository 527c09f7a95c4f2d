"""Input drift: served features against training statistics (PSI), and the reference files."""

import numpy as np
import pytest

pytest.importorskip("httpx")
pytest.importorskip("prometheus_client")

# Backend-neutral: CI runs this file on TensorFlow and again on JAX (scripts/dev.py).
pytestmark = pytest.mark.backends


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


def test_category_counts_stay_bounded_and_the_overflow_is_reported():
    from kerakit.serving import DriftMonitor
    from kerakit.serving.drift import MAX_CATEGORIES

    reference = {"features": {"city": {"kind": "category", "expected": {"Oslo": 0.5, "Bergen": 0.5}}}}
    cities = np.array([f"city-{i}" for i in range(20_000)], dtype=object)
    capped = DriftMonitor(reference, max_categories=50)
    default = DriftMonitor(reference)
    for start in range(0, len(cities), 500):
        feeds = {"city": cities[start:start + 500]}
        capped.observe(feeds)
        default.observe(feeds)
    capped.observe({"city": np.array(["Oslo"] * 10, dtype=object)})
    assert len(capped.counts["city"]) <= 50 + 2 + 1  # the reference's values, 50 new ones, the rest
    assert len(default.counts["city"]) <= MAX_CATEGORIES + 2 + 1
    city = capped.report()["features"]["city"]
    assert city["rows"] == 20_010 and city["overflow_rows"] == 20_000 - 50
    assert city["unseen_rate"] == pytest.approx(20_000 / 20_010)
    assert "50 distinct unseen values" in city["note"] and city["verdict"] == "drift"
    assert "overflow_rows" not in DriftMonitor(reference).report()["features"]["city"]


BAD_REFERENCES = {
    "not JSON": ("{'features': ", "not a readable JSON file"),
    "a list": ([1, 2, 3], "must be an object"),
    "no features": ({"columns": {}}, "must be an object"),
    "no edges": ({"features": {"x": {"kind": "number", "expected": [1.0]}}}, "under 'edges'"),
    "lengths differ": ({"features": {"x": {"kind": "number", "edges": [0.0, 1.0], "expected": [0.5, 0.5]}}},
                       "2 edges and 2 shares"),
    "unsorted edges": ({"features": {"x": {"kind": "number", "edges": [1.0, 0.0],
                                           "expected": [0.3, 0.4, 0.3]}}}, "out of order"),
    "negative shares": ({"features": {"x": {"kind": "number", "edges": [0.0],
                                            "expected": [1.5, -0.5]}}}, "negative shares"),
    "negative category shares": ({"features": {"c": {"kind": "category", "expected": {"a": -1.0, "b": 2.0}}}},
                                 "negative shares"),
    "unknown kind": ({"features": {"x": {"kind": "histogram"}}}, "expected 'number' or 'category'"),
}


@pytest.mark.parametrize("case", sorted(BAD_REFERENCES))
def test_bad_drift_references_are_refused_at_start_up_by_name(model, tmp_path, case):
    import json

    from kerakit.errors import ConfigError
    from kerakit.serving import Service

    content, expected = BAD_REFERENCES[case]
    path = tmp_path / "reference.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    with pytest.raises(ConfigError, match="drift reference") as raised:
        Service(model, name="tiny", drift_reference=path)
    assert expected in str(raised.value) and str(path) in str(raised.value)


def test_a_missing_drift_reference_file_is_named(model, tmp_path):
    from kerakit.errors import ConfigError
    from kerakit.serving import Service, save_reference

    with pytest.raises(ConfigError, match="does not exist"):
        Service(model, name="tiny", drift_reference=tmp_path / "nowhere.json")
    # A bad file found beside the model is refused at start-up too, not at the first request.
    path = tmp_path / "tiny.keras"
    model.save(path)
    reference = save_reference(np.zeros((10, 3)), path)
    reference.write_text('{"features": {"features[0]": {"kind": "number", "edges": [0, 1], "expected": [1]}}}')
    with pytest.raises(ConfigError, match="2 edges and 1 shares"):
        Service(path, name="tiny")
