"""The `cnn` and `sequence` bodies and raw-text inputs."""

import numpy as np
import pytest

import kerakit as kk
from kerakit.errors import ConfigError, DataError
from kerakit.metadata import spec_of

SPEC = kk.ProblemSpec(task="multiclass", num_classes=3)
SMALL_CNN = dict(filters=(8,), units=16)
SMALL_SEQUENCE = dict(filters=(8,), key_dim=8, feedforward=16, units=8)


def _images(n=48, size=8, channels=None, dtype="uint8", seed=0):
    """Images whose class is the bright third (top, middle, bottom rows): learnable in a few steps."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    x = rng.integers(0, 60, (n, size, size)).astype(np.float32)
    band = size // 3
    for i, label in enumerate(y):
        x[i, label * band:(label + 1) * band] += 190
    if channels:
        x = np.repeat(x[..., None], channels, axis=-1)
    return x.astype(dtype), y


@pytest.mark.slow
@pytest.mark.backends
def test_cnn_body_trains_on_uint8_images_without_a_channel_axis():
    x, y = _images()
    model = kk.build_model(SPEC, input_shape=(8, 8), body="cnn", max_value=255, seed=0,
                           learning_rate=1e-2, **SMALL_CNN)
    names = [layer.name for layer in model.layers]
    assert {"add_channel", "rescale", "conv_0_0", "global_pool"} <= set(names)
    history = kk.fit(model, x, y, epochs=3, batch_size=16, seed=0, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert kk.predict(model, x).shape == (48, 3)


@pytest.mark.backends
def test_cnn_augmentation_is_inside_the_model_and_off_at_inference(tmp_path):
    import keras

    x, _ = _images(n=6, channels=3, dtype="float32")
    model = kk.build_model(SPEC, input_shape=(8, 8, 3), body="cnn", flip="horizontal",
                           rotation=0.1, zoom=0.1, contrast=0.2, seed=0, **SMALL_CNN)
    names = {layer.name for layer in model.layers}
    assert {"augment_flip", "augment_rotation", "augment_zoom", "augment_contrast"} <= names
    first = model.predict(x, verbose=0)
    np.testing.assert_allclose(first, model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    model.save(tmp_path / "cnn.keras")
    loaded = keras.saving.load_model(tmp_path / "cnn.keras", safe_mode=True)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), first, rtol=1e-5, atol=1e-6)
    assert spec_of(loaded) == SPEC


@pytest.mark.slow
@pytest.mark.backends
@pytest.mark.parametrize("shape", [(20,), (20, 3)])
def test_sequence_body_trains_on_n_t_and_n_t_f(shape):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, *shape)).astype("float32")
    y = np.arange(30) % 3
    model = kk.build_model(SPEC, input_shape=shape, body="sequence", seed=0, **SMALL_SEQUENCE)
    assert any(layer.name == "attention_0" for layer in model.layers)
    history = kk.fit(model, x, y, epochs=2, batch_size=10, seed=0, verbose=0)
    assert np.isfinite(history.history["loss"]).all()


@pytest.mark.backends
@pytest.mark.parametrize(("body", "shape", "expected"), [
    ("cnn", (64,), "takes images: (height, width) or (height, width, channels)"),
    ("cnn", (4, 4, 4, 1), "takes images"),
    ("sequence", (4, 5, 6), "takes sequences: (steps,) or (steps, features)"),
])
def test_a_body_refuses_the_wrong_rank_with_what_it_expects(body, shape, expected):
    with pytest.raises(ConfigError, match=r"(?s)" + expected.replace("(", r"\(").replace(")", r"\)")
                       + r".*given inputs of shape " + r"\(" + str(shape)[1:-1].replace("(", "")):
        kk.build_model(SPEC, input_shape=shape, body=body)


@pytest.mark.backends
def test_body_options_are_checked_and_searchable():
    import keras_tuner

    with pytest.raises(ConfigError, match="no option"):
        kk.build_model(SPEC, input_shape=(8, 8), body="cnn", heads=2)
    with pytest.raises(ConfigError, match="`filters` must be"):
        kk.build_model(SPEC, input_shape=(8, 8), body="cnn", filters=(0,))
    hp = keras_tuner.HyperParameters()
    kk.build_model(SPEC, input_shape=(8, 8), body="cnn", hp=hp)
    assert {"conv_blocks", "conv_filters_0", "dropout", "flip", "rotation"} <= set(hp.values)
    assert hp.values["conv_filters_1"] == 64 and hp.values["flip"] == "none"


@pytest.mark.slow
def test_text_model_takes_raw_strings_and_survives_saving(tmp_path):
    import keras

    words = {0: "goal match team", 1: "rain cloud storm", 2: "oven salt flour"}
    texts = [f"the {words[i % 3]} today" for i in range(30)]
    y = np.arange(30) % 3
    model = kk.build_model(SPEC, **kk.text_inputs(texts, sequence_length=8, embedding_dim=8),
                           body="sequence", seed=0, learning_rate=1e-2, **SMALL_SEQUENCE)
    kk.fit(model, texts, y, epochs=3, batch_size=10, seed=0, verbose=0)
    assert kk.evaluate(model, texts, y)["accuracy"] > 0.6
    path = tmp_path / "text.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(kk.predict(loaded, texts[:3]), kk.predict(model, texts[:3]),
                               rtol=1e-5, atol=1e-6)


def test_text_refuses_empty_strings_only_and_non_strings():
    with pytest.raises(DataError, match="only empty strings"):
        kk.text_inputs(["", "  ", ""])
    with pytest.raises(TypeError, match="must hold strings"):
        kk.text_inputs(["a text", 3.5])


def test_text_inputs_refuse_other_backends(monkeypatch):
    from kerakit import backend

    monkeypatch.setattr(backend, "name", lambda: "jax")
    with pytest.raises(ConfigError, match="needs the TensorFlow backend.*'jax'"):
        kk.text_inputs(["some text"])


@pytest.mark.slow
@pytest.mark.parametrize(("body", "shape", "tuner", "name"), [
    ("cnn", (8, 8), "random", "conv_blocks"),
    ("sequence", (12, 2), "grid", "transformer_blocks"),
])
def test_tune_searches_the_new_bodies_default_space(body, shape, tuner, name, tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(24, *shape)).astype("float32")
    y = np.arange(24) % 2
    result = kk.tune(kk.ProblemSpec(task="binary"), x, y, body=body, tuner=tuner, max_trials=1,
                     epochs=1, directory=tmp_path, seed=0)
    assert name in result.best_hyperparameters
