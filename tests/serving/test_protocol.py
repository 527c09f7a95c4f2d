"""Request parsing: hundreds of malformed requests each get a 4xx with an error message.

Bad JSON, wrong shapes, strings and booleans for numbers, NaN and infinities,
bodies over the size limit, unknown models, versions, verbs and paths, and
wrong methods. Valid requests are interleaved and must keep being answered
correctly, before, during and after. Raw rows keyed by column name, raw
pixels and raw strings reach the model as it expects them.
"""

import concurrent.futures
import json
import random

import numpy as np
import pytest

import kerakit as kk

httpx = pytest.importorskip("httpx")

NAME = "fuzz"
WIDTH = 4
BODY_LIMIT = 64 * 1024


@pytest.fixture(scope="module")
def running():
    import kerakit as kk

    spec = kk.ProblemSpec(task="multiclass", num_classes=3)
    model = kk.build_model(spec, input_shape=(WIDTH,), units=(8,), seed=0)
    with kk.serve(model, port=0, block=False, name=NAME, max_body_bytes=BODY_LIMIT) as server:
        yield server, model


def _raw(value):
    """JSON text where NaN/Infinity/huge numbers may appear as written."""
    return json.dumps(value, allow_nan=True)


def malformed_requests(seed=0):
    """Returns (method, path, body bytes or None, label) tuples, at least 500 of them."""
    rng = random.Random(seed)
    predict = f"/v1/models/{NAME}:predict"
    good_row = [0.1, 0.2, 0.3, 0.4]
    valid = _raw({"instances": [good_row, good_row]}).encode()
    cases = []

    def post(body, label, path=predict):
        cases.append(("POST", path, body if isinstance(body, bytes) else body.encode(), label))

    # Bad JSON: every proper prefix of a valid body, garbage bytes, bad encodings, deep nesting.
    for cut in range(len(valid)):
        post(valid[:cut], "truncated JSON")
    for _ in range(80):
        post(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64))), "random bytes")
    for body in (b"\xff\xfe{\x00}", b'{"instances": [[0.1, 0.2, 0.3, 0.4]]', b"{'instances': [[1, 2, 3, 4]]}",
                 b'{"instances": [[1, 2, 3, 4],]}', b"[" * 100_000, b'{"instances": ' + b"[" * 50_000,
                 b'{"instances": [[01, 2, 3, 4]]}', b'{"instances": [[1, 2, 3, 4]]} trailing'):
        post(body, "invalid JSON")

    # Wrong structure.
    for payload in ([], "instances", 1, None, True, {}, {"instances": None}, {"instances": 1},
                    {"instances": "abc"}, {"instances": {}}, {"instances": []}, {"inputs": []},
                    {"inputs": None}, {"inputs": {}}, {"inputs": {"x": [good_row]}},
                    {"instances": [good_row], "inputs": [good_row]}, {"instance": [good_row]},
                    {"instances": [good_row], "extra": 1}, {"signature_name": "serving_default"},
                    {"instances": [good_row], "signature_name": "predict"},
                    {"instances": [good_row], "signature_name": None},
                    {"instances": [{"feature": good_row}]}, {"instances": [{"features": good_row, "x": 1}]},
                    {"instances": [{}]}, {"instances": [good_row, {"features": good_row}]},
                    {"instances": [{"features": good_row}, good_row]}):
        post(_raw(payload), "wrong structure")

    # Wrong shapes, in each request format.
    for width in range(0, 13):
        if width == WIDTH:
            continue
        row = [0.5] * width
        post(_raw({"instances": [row]}), "wrong width")
        post(_raw({"inputs": [row]}), "wrong width (columnar)")
        post(_raw({"instances": [{"features": row}]}), "wrong width (keyed)")
    for payload in ({"instances": [[good_row]]}, {"instances": [0.1, 0.2, 0.3, 0.4]},
                    {"instances": [good_row, good_row[:2]]}, {"instances": [[good_row, good_row]]},
                    {"inputs": good_row}, {"inputs": 0.5}, {"inputs": {"features": good_row}},
                    {"instances": [[[0.1], [0.2], [0.3], [0.4]]]}, {"instances": [[]]}):
        post(_raw(payload), "wrong shape")

    # Wrong types in one cell: strings, booleans, nulls, objects, lists, base64.
    bad_cells = ["0.5", "abc", "", True, False, None, {}, [], {"b64": "AAAA"}, [1, 2], "NaN"]
    for cell in bad_cells:
        for _ in range(10):
            rows = [list(good_row) for _ in range(rng.randrange(1, 4))]
            rows[rng.randrange(len(rows))][rng.randrange(WIDTH)] = cell
            post(_raw({"instances": rows}), f"bad cell {cell!r}")

    # Non-finite numbers (JSON extensions Python accepts, and overflow of float32/float64).
    for text in ("NaN", "Infinity", "-Infinity", "1e39", "-1e39", "1e400", "-1e400", "3.5e38"):
        for _ in range(10):
            cells = [str(v) for v in good_row]
            cells[rng.randrange(WIDTH)] = text
            post('{"instances": [[' + ", ".join(cells) + "]]}", f"non-finite {text}")

    # Bodies over the limit (declared length, and streamed without a length).
    big_row = _raw([0.25] * WIDTH)
    for size in (BODY_LIMIT + 1, 2 * BODY_LIMIT, 1024 * 1024, 5 * 1024 * 1024):
        count = size // (len(big_row) + 2) + 1
        post('{"instances": [' + ", ".join([big_row] * count) + "]}", f"huge body {size}")
    post(b" " * (BODY_LIMIT + 10) + valid, "huge whitespace body")

    # Unknown models, versions, verbs and paths; wrong methods.
    for name in ("digits", "Fuzz", "fuzz2", "f", "model", "fuzz.", "_fuzz", "fuzz%20", "..", "0"):
        post(valid, "unknown model", f"/v1/models/{name}:predict")
        cases.append(("GET", f"/v1/models/{name}", None, "unknown model status"))
        cases.append(("GET", f"/v1/models/{name}/metadata", None, "unknown model metadata"))
    for version in ("0", "2", "999", "abc", "-1", "1.0", "01x", "99999999999999999999"):
        post(valid, "unknown version", f"/v1/models/{NAME}/versions/{version}:predict")
        cases.append(("GET", f"/v1/models/{NAME}/versions/{version}", None, "unknown version"))
        cases.append(("GET", f"/v1/models/{NAME}/versions/{version}/metadata", None, "unknown version"))
    for verb in ("classify", "regress", "foo", "PREDICT", "predict:predict", "predict/x"):
        post(valid, "unsupported verb", f"/v1/models/{NAME}:{verb}")
    for method in ("GET", "PUT", "DELETE", "PATCH", "OPTIONS"):
        cases.append((method, predict, valid if method in ("PUT", "PATCH") else None, "wrong method"))
        cases.append((method, f"/v1/models/{NAME}/versions/1:predict", None, "wrong method"))
    for method in ("POST", "PUT", "DELETE"):
        cases.append((method, f"/v1/models/{NAME}", valid, "wrong method on status"))
        cases.append((method, f"/v1/models/{NAME}/metadata", valid, "wrong method on metadata"))
    for path in ("/", "/v1", "/v1/models", "/v1/models/", f"/v1/models/{NAME}/",
                 f"/v2/models/{NAME}:predict", f"/v1/models/{NAME}/extra",
                 f"/v1/models/{NAME}/versions/1/extra:predict", f"/v1/models/{NAME}/labels/x:predict",
                 f"/v1/models/{NAME}/versions/:predict", "/v1/models/:predict", "/favicon.ico"):
        cases.append(("GET", path, None, "unknown path"))
        post(valid, "unknown path", path)
    for _ in range(20):
        junk = "".join(rng.choice("abcxyz019/:._-") for _ in range(rng.randrange(1, 30)))
        post(valid, "random path", "/v1/models/" + junk + "/zz")
    return cases


def _check(client, case):
    method, path, body, label = case
    try:
        response = client.request(method, path, content=body)
    except httpx.HTTPError as error:
        return f"{label}: {method} {path}: no answer ({error!r})"
    if not 400 <= response.status_code < 500:
        return f"{label}: {method} {path}: status {response.status_code}: {response.text[:200]}"
    try:
        message = response.json()["error"]
    except (ValueError, KeyError, TypeError):
        return f"{label}: {method} {path}: no JSON error message: {response.text[:200]!r}"
    if not isinstance(message, str) or len(message) < 10:
        return f"{label}: {method} {path}: empty error message {message!r}"
    return None


def test_malformed_requests_get_4xx_errors_and_valid_ones_keep_working(running):
    server, model = running
    cases = malformed_requests()
    assert len(cases) >= 500
    x = np.random.default_rng(1).random((3, WIDTH), dtype=np.float32)
    expected = model.predict(x, verbose=0)

    def valid_request(client):
        answer = client.post(f"/v1/models/{NAME}:predict", json={"instances": x.tolist()})
        assert answer.status_code == 200, answer.text
        np.testing.assert_allclose(answer.json()["predictions"], expected, atol=1e-5)

    failures = []
    with httpx.Client(base_url=server.url, timeout=30) as client, \
            concurrent.futures.ThreadPoolExecutor(8) as pool:
        valid_request(client)
        for start in range(0, len(cases), 50):
            chunk = cases[start:start + 50]
            failures += [f for f in pool.map(lambda case: _check(client, case), chunk) if f]
            valid_request(client)  # the server still answers correctly mid-stream
        answers = list(pool.map(
            lambda i: client.post(f"/v1/models/{NAME}:predict", json={"instances": [x[i % 3].tolist()]}),
            range(24)))
    assert not failures, f"{len(failures)} of {len(cases)} malformed requests mishandled: {failures[:5]}"
    for i, answer in enumerate(answers):
        assert answer.status_code == 200
        np.testing.assert_allclose(answer.json()["predictions"][0], expected[i % 3], atol=1e-5)


def test_error_messages_say_what_was_wrong(running):
    server, _ = running
    predict = f"{server.url}/v1/models/{NAME}:predict"
    checks = {
        b'{"instances": [["0.5", 1, 2, 3]]}': "must hold numbers",
        b'{"instances": [[NaN, 1, 2, 3]]}': "NaN or infinite",
        b'{"instances": [[1, 2, 3]]}': "must have shape [4]; received [3]",
        b'{"instances": [[1, 2, 3, 4]]': "not valid JSON",
        b'{"instances": [[true, 1, 2, 3]]}': "true/false",
        b'{"instance": [[1, 2, 3, 4]]}': "Unknown key(s) ['instance']",
    }
    with httpx.Client(timeout=30) as client:
        for body, text in checks.items():
            answer = client.post(predict, content=body)
            assert answer.status_code == 400 and text in answer.json()["error"], answer.text
        huge = client.post(predict, content=b" " * (BODY_LIMIT + 1))
        assert huge.status_code == 413 and str(BODY_LIMIT) in huge.json()["error"]
        wrong = client.get(predict)
        assert wrong.status_code == 405 and "Allowed: POST" in wrong.json()["error"]
        unknown = client.post(f"{server.url}/v1/models/other:predict", content=b"{}")
        assert unknown.status_code == 404 and f"serves '{NAME}'" in unknown.json()["error"]


def test_integer_category_columns_accept_integral_floats_as_pandas_and_csv_send_them(text_table_model):
    from kerakit import data
    from kerakit.errors import RequestError
    from kerakit.serving import Servable, parse_request

    model, _ = text_table_model
    servable = Servable.from_keras(model, "houses")
    row = {"area": 120.0, "rooms": 3.0, "city": "Oslo"}
    feeds, rows, _ = parse_request(servable, json.dumps({"instances": [row]}).encode())
    expected = data.predict_table(model, [{**row, "rooms": 3}], proba=True)[:, 1]
    np.testing.assert_allclose(np.ravel(servable.predict(feeds)["output_0"]), expected, atol=1e-5)
    for bad in (3.5, "3", True):
        with pytest.raises(RequestError, match="must be a whole number or null"):
            parse_request(servable, json.dumps({"instances": [{**row, "rooms": bad}]}).encode())


IMAGE_TEXT_SPEC = kk.ProblemSpec(task="multiclass", num_classes=3)


# Raw inputs of image and text models ----------------------------------------------


@pytest.mark.slow
def test_an_image_model_serves_raw_pixel_rows_as_nested_lists(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(30, 8, 8, 1)).astype("uint8")
    y = np.arange(30) % 3
    model = kk.build_model(IMAGE_TEXT_SPEC, input_shape=(8, 8, 1), body="cnn", seed=0, max_value=255,
                           filters=(4,), units=8)
    kk.fit(model, x, y, epochs=1, batch_size=10, seed=0, verbose=0)
    path = tmp_path / "images.keras"
    model.save(path)
    expected = kk.predict(model, x[:4])
    with kk.serve(str(path), port=0, block=False, name="images") as running:
        answer = httpx.post(running.model_url + ":predict", json={"instances": x[:4].tolist()},
                            timeout=60)
    assert answer.status_code == 200, answer.text
    np.testing.assert_allclose(np.asarray(answer.json()["predictions"]), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_a_text_model_serves_raw_strings():
    import keras

    if keras.backend.backend() != "tensorflow":
        pytest.skip("text models hold TextVectorization: TensorFlow only")
    words = {0: "goal match team", 1: "rain cloud storm", 2: "oven salt flour"}
    texts = [f"the {words[i % 3]} today" for i in range(30)]
    y = np.arange(30) % 3
    model = kk.build_model(IMAGE_TEXT_SPEC, **kk.text_inputs(texts, sequence_length=8, embedding_dim=8),
                           body="sequence", seed=0, filters=(4,), key_dim=4, feedforward=8, units=8)
    kk.fit(model, texts, y, epochs=1, batch_size=10, seed=0, verbose=0)
    expected = kk.predict(model, texts[:3])
    with kk.serve(model, port=0, block=False, name="text") as running:
        answer = httpx.post(running.model_url + ":predict", json={"instances": texts[:3]}, timeout=60)
    assert answer.status_code == 200, answer.text
    np.testing.assert_allclose(np.asarray(answer.json()["predictions"]), expected, rtol=1e-4, atol=1e-5)
