"""Issue 16: a saved image or text model serves raw inputs over REST."""

import numpy as np
import pytest

import kerakit as kk

httpx = pytest.importorskip("httpx")

SPEC = kk.ProblemSpec(task="multiclass", num_classes=3)


@pytest.mark.slow
def test_an_image_model_serves_raw_pixel_rows_as_nested_lists(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(30, 8, 8, 1)).astype("uint8")
    y = np.arange(30) % 3
    model = kk.build_model(SPEC, input_shape=(8, 8, 1), body="cnn", seed=0, max_value=255,
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
    model = kk.build_model(SPEC, **kk.text_inputs(texts, sequence_length=8, embedding_dim=8),
                           body="sequence", seed=0, filters=(4,), key_dim=4, feedforward=8, units=8)
    kk.fit(model, texts, y, epochs=1, batch_size=10, seed=0, verbose=0)
    expected = kk.predict(model, texts[:3])
    with kk.serve(model, port=0, block=False, name="text") as running:
        answer = httpx.post(running.model_url + ":predict", json={"instances": texts[:3]}, timeout=60)
    assert answer.status_code == 200, answer.text
    np.testing.assert_allclose(np.asarray(answer.json()["predictions"]), expected, rtol=1e-4, atol=1e-5)
