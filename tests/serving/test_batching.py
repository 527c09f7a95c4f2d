"""Micro-batching: concurrent requests share model calls and each gets its own rows."""

import concurrent.futures

import numpy as np
import pytest

httpx = pytest.importorskip("httpx")

# Backend-neutral: JAX and PyTorch pad each batch to a power of two (one compile per size).
pytestmark = pytest.mark.backends


@pytest.fixture(scope="module")
def model():
    import kerakit as kk

    spec = kk.ProblemSpec(task="multiclass", num_classes=10)
    return kk.build_model(spec, input_shape=(64,), units=(32,), seed=0)



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
