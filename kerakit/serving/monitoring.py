"""Prometheus metrics of a running service: `GET /monitoring/prometheus/metrics`.

The path is the one TensorFlow Serving uses. Each `Service` has its own
`prometheus_client.CollectorRegistry` (never the process-global one), so two
services in one process, or a test suite starting many, keep separate counts.
"""

# HTTP status of a refusal -> its reason label.
REFUSAL_REASONS = {
    400: "bad_request", 404: "not_found", 405: "method_not_allowed", 408: "timeout",
    413: "body_too_large", 500: "model_error", 503: "unavailable",
}

# Request latencies: 1 ms to 10 s.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Rows per model call: powers of two up to a large micro-batch.
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class ServingMetrics:
    """The service's counters and histograms, in a registry of their own.

    Metrics (every one labelled by `model`):

    - `kerakit_requests_total{model, version, method, status}`: answered requests;
    - `kerakit_request_latency_seconds{model, version, method}`: time to answer;
    - `kerakit_batch_size{model, version}`: rows in each model call (micro-batches);
    - `kerakit_refusals_total{model, reason}`: requests answered 4xx/5xx, by reason:
      the app's (`REFUSAL_REASONS`) and the connection layer's, made before a
      request reaches the app (`invalid_http`: unparseable HTTP such as
      `Content-Length: abc`; `header_timeout`: headers not whole within the
      request timeout; `too_many_connections`: over the connection cap).

    Example:

    ```python
    metrics = ServingMetrics("digits")
    metrics.observe_request("1", "predict", 200, 0.004)
    text = metrics.render()  # Prometheus text format
    ```
    """

    def __init__(self, model_name):
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.model_name = model_name
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("kerakit_requests", "Requests answered, by model, version, method "
                                "and HTTP status.", ["model", "version", "method", "status"],
                                registry=self.registry)
        self.latency = Histogram("kerakit_request_latency_seconds", "Seconds from a request's "
                                 "arrival to its answer.", ["model", "version", "method"],
                                 buckets=LATENCY_BUCKETS, registry=self.registry)
        self.batch_size = Histogram("kerakit_batch_size", "Rows per model call (one call may join "
                                    "several requests).", ["model", "version"],
                                    buckets=BATCH_BUCKETS, registry=self.registry)
        self.refusals = Counter("kerakit_refusals", "Requests answered with an error status, by "
                                "reason.", ["model", "reason"], registry=self.registry)

    def observe_request(self, version, method, status, seconds):
        version = "" if version is None else str(version)
        self.requests.labels(self.model_name, version, method, str(status)).inc()
        self.latency.labels(self.model_name, version, method).observe(seconds)
        if status >= 400:
            reason = REFUSAL_REASONS.get(status, f"http_{status}")
            self.refusals.labels(self.model_name, reason).inc()

    def observe_refusal(self, reason):
        """Counts a refusal made outside the app (the connection layer), by reason."""
        self.refusals.labels(self.model_name, reason).inc()

    def observe_batch(self, version, rows):
        self.batch_size.labels(self.model_name, str(version)).observe(rows)

    def render(self):
        """`(body bytes, content type)` in Prometheus's text exposition format."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST
