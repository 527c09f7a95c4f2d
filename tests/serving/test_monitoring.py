"""Prometheus metrics of a running service: requests, latency, batch sizes, refusals by reason."""

import pytest

pytest.importorskip("httpx")
pytest.importorskip("prometheus_client")

# Backend-neutral: CI runs this file on TensorFlow and again on JAX (scripts/dev.py).
pytestmark = pytest.mark.backends


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
