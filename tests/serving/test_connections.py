"""The connection layer: header deadlines, the connection cap, JSON refusals of unparseable HTTP."""

import json
import time

import numpy as np
import pytest

httpx = pytest.importorskip("httpx")


@pytest.fixture(scope="module")
def model():
    import kerakit as kk

    spec = kk.ProblemSpec(task="multiclass", num_classes=10)
    return kk.build_model(spec, input_shape=(64,), units=(32,), seed=0)



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


def test_refusals_before_the_app_are_counted_by_reason_in_the_metrics(model):
    import socket

    from prometheus_client.parser import text_string_to_metric_families

    import kerakit as kk

    with kk.serve(model, port=0, block=False, name="m", request_timeout=1, max_connections=3) as running:
        bad_length = b"POST /v1/models/m:predict HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n{}"
        status, message = _json_body(_raw_exchange(running.url, bad_length)[0])
        assert status == 400 and "Invalid HTTP request" in message
        status, _ = _json_body(_raw_exchange(running.url, b"GET /v1/models/m HTTP/1.1\r\nHo")[0])
        assert status == 408
        idle = [socket.create_connection((running.host, running.port)) for _ in range(3)]
        try:
            time.sleep(0.2)
            status, _ = _json_body(_raw_exchange(running.url, b"GET /v1/models/m HTTP/1.1\r\n\r\n")[0])
            assert status == 503
        finally:
            for sock in idle:
                sock.close()
        time.sleep(0.3)
        text = httpx.get(running.url + "/monitoring/prometheus/metrics", timeout=10).text
    refusals = {s.labels["reason"]: s.value for f in text_string_to_metric_families(text)
                for s in f.samples if s.name == "kerakit_refusals_total"}
    assert refusals == {"invalid_http": 1.0, "header_timeout": 1.0, "too_many_connections": 1.0}
