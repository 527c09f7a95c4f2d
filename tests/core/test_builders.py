"""build_model: compiled plain keras.Model, optimizers, losses, body registry."""

import keras
import keras_tuner
import numpy as np
import pytest

import kerakit as kk
from kerakit.builders import BODIES, get_body
from kerakit.errors import ConfigError

# Backend-neutral: CI runs this file on TensorFlow and again on JAX (scripts/dev.py).
pytestmark = pytest.mark.backends

SPEC = kk.ProblemSpec(task="multiclass", num_classes=5)


def test_returns_compiled_plain_keras_model():
    model = kk.build_model(SPEC, input_shape=(8,))
    assert isinstance(model, keras.Model) and type(model).__module__.startswith("keras.")
    assert model.compiled
    assert model.loss == "sparse_categorical_crossentropy"
    assert model.output_shape == (None, 5)
    assert model.get_layer("output").activation.__name__ == "softmax"
    assert model.optimizer.__class__.__name__ == "Adam"
    x = np.random.default_rng(0).normal(size=(3, 8)).astype("float32")
    assert np.allclose(model.predict(x, verbose=0).sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize(
    "spec, activation, loss",
    [
        (kk.ProblemSpec(task="binary"), "sigmoid", "binary_crossentropy"),
        (kk.ProblemSpec(task="multilabel", num_labels=3), "sigmoid", "binary_crossentropy"),
        (kk.ProblemSpec(task="multiclass", num_classes=3, label_format="soft"), "softmax", "kl_divergence"),
        (kk.ProblemSpec(task="regression", num_targets=2), "linear", "mean_squared_error"),
        (kk.ProblemSpec(task="regression", robust=True), "linear", "huber"),
    ],
)
def test_head_follows_spec(spec, activation, loss):
    model = kk.build_model(spec, input_shape=(4,), units=(8,))
    assert model.get_layer("output").activation.__name__ == activation
    assert model.loss == loss
    assert model.output_shape == (None, spec.num_outputs)


def test_compiled_metrics_carry_the_spec_names():
    spec = kk.ProblemSpec(task="binary")
    model = kk.build_model(spec, input_shape=(4,), units=(8,))
    x = np.zeros((4, 4), "float32")
    logs = model.evaluate(x, np.array([0, 1, 0, 1]), verbose=0, return_dict=True)
    assert set(spec.metrics) <= set(logs)


@pytest.mark.parametrize(
    "name, cls, rate",
    [("sgd", "SGD", 1e-2), ("rmsprop", "RMSprop", 1e-3), ("adam", "Adam", 1e-3),
     ("adamw", "AdamW", 1e-3), ("adagrad", "Adagrad", 1e-2)],
)
def test_optimizers_by_name_with_default_rates(name, cls, rate):
    model = kk.build_model(SPEC, input_shape=(4,), units=(8,), optimizer=name)
    assert model.optimizer.__class__.__name__ == cls
    assert np.isclose(float(model.optimizer.learning_rate), rate)
    if name == "sgd":
        assert model.optimizer.momentum == 0.9


def test_explicit_learning_rate_and_optimizer_object_pass_through():
    model = kk.build_model(SPEC, input_shape=(4,), optimizer="adam", learning_rate=0.05)
    assert np.isclose(float(model.optimizer.learning_rate), 0.05)
    optimizer = keras.optimizers.Nadam(learning_rate=0.002)
    model = kk.build_model(SPEC, input_shape=(4,), optimizer=optimizer)
    assert model.optimizer is optimizer
    with pytest.raises(ConfigError, match="learning_rate"):
        kk.build_model(SPEC, input_shape=(4,), learning_rate=-1)


def test_explicit_loss_and_metrics_are_used_as_given():
    spec = kk.ProblemSpec(task="regression")
    model = kk.build_model(spec, input_shape=(4,), loss="mae", metrics=["mse"])
    assert model.loss == "mean_absolute_error"
    model.evaluate(np.zeros((4, 4)), np.zeros(4), verbose=0)
    assert [m.name for m in model.metrics[-1].metrics] == ["mse"]
    loss_object = keras.losses.LogCosh()
    assert kk.build_model(spec, input_shape=(4,), loss=loss_object).loss is loss_object


def test_mlp_options_shape_the_body():
    model = kk.build_model(SPEC, input_shape=(4,), units=(32, 16, 8), dropout=0.3, l1=1e-5,
                           l2=1e-3, batchnorm=True)
    body = model.get_layer("body")
    dense = [layer for layer in body.layers if isinstance(layer, keras.layers.Dense)]
    assert [layer.units for layer in dense] == [32, 16, 8]
    assert all(np.isclose(layer.kernel_regularizer.l2, 1e-3) for layer in dense)
    assert all(np.isclose(layer.kernel_regularizer.l1, 1e-5) for layer in dense)
    assert [layer.rate for layer in body.layers if isinstance(layer, keras.layers.Dropout)] == [0.3] * 3
    assert sum(isinstance(layer, keras.layers.BatchNormalization) for layer in body.layers) == 3


def test_no_dropout_no_regularizer_when_zero():
    model = kk.build_model(SPEC, input_shape=(4,), units=(8,), dropout=0.0, l1=0.0, l2=0.0)
    body = model.get_layer("body")
    assert not any(isinstance(layer, keras.layers.Dropout) for layer in body.layers)
    assert body.layers[0].kernel_regularizer is None


def test_bad_mlp_options_are_refused():
    with pytest.raises(ConfigError, match="dropout"):
        kk.build_model(SPEC, input_shape=(4,), dropout=1.5)
    with pytest.raises(ConfigError, match="units"):
        kk.build_model(SPEC, input_shape=(4,), units=(8, 0))
    with pytest.raises(ConfigError, match="no option"):
        kk.build_model(SPEC, input_shape=(4,), widht=3)


def test_fresh_hyperparameters_yield_defaults_and_tuner_values_are_read():
    hp = keras_tuner.HyperParameters()
    kk.build_model(SPEC, input_shape=(4,), hp=hp)
    assert hp.values["depth"] == 2 and hp.values["units_0"] == 128
    assert hp.values["optimizer"] == "adam" and np.isclose(hp.values["learning_rate"], 1e-3)

    chosen = keras_tuner.HyperParameters()
    chosen.Fixed("depth", 1)
    chosen.Fixed("units_0", 48)
    chosen.Fixed("optimizer", "rmsprop")
    model = kk.build_model(SPEC, input_shape=(4,), hp=chosen)
    dense = [layer for layer in model.get_layer("body").layers if isinstance(layer, keras.layers.Dense)]
    assert [layer.units for layer in dense] == [48]
    assert model.optimizer.__class__.__name__ == "RMSprop"


def test_register_custom_body_function_and_class():
    @kk.register_body("test_wide")
    def wide(spec, hp):
        return keras.layers.Dense(hp.Int("width", 8, 64, default=16), activation="relu")

    class Tower(keras.layers.Layer):
        def __init__(self, spec, hp):
            super().__init__()
            self.dense = keras.layers.Dense(hp.Int("tower_units", 4, 32, default=12))

        def call(self, inputs):
            return self.dense(inputs)

    kk.register_body("test_tower", Tower)
    try:
        model = kk.build_model(SPEC, input_shape=(4,), body="test_wide", width=24)
        assert model.layers[1].units == 24
        model = kk.build_model(SPEC, input_shape=(4,), body="test_tower")
        assert model.layers[1].dense.units == 12
        # A builder callable works without registering it.
        assert get_body(wide).name == "wide"
    finally:
        BODIES.pop("test_wide", None)
        BODIES.pop("test_tower", None)


def test_seed_makes_weights_reproducible():
    a = kk.build_model(SPEC, input_shape=(4,), seed=7).get_weights()
    b = kk.build_model(SPEC, input_shape=(4,), seed=7).get_weights()
    c = kk.build_model(SPEC, input_shape=(4,), seed=8).get_weights()
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c, strict=True))


def test_spec_must_be_a_problem_spec():
    with pytest.raises(ConfigError, match="ProblemSpec"):
        kk.build_model("binary", input_shape=(4,))
    with pytest.raises(ConfigError, match="input_shape"):
        kk.build_model(SPEC)


def test_an_output_layer_beyond_the_limit_is_refused_and_the_limit_can_be_raised(monkeypatch):
    from kerakit import builders
    from kerakit.errors import SpecError

    with pytest.raises(SpecError, match="MAX_OUTPUTS") as info:
        kk.build_model(kk.ProblemSpec(task="multiclass", num_classes=10**7), input_shape=(4,))
    assert "10,000,000 units" in str(info.value) and "num_classes" in str(info.value)
    monkeypatch.setattr(builders, "MAX_OUTPUTS", 6)
    with pytest.raises(SpecError, match="MAX_OUTPUTS = 7"):
        kk.build_model(kk.ProblemSpec(task="multiclass", num_classes=7), input_shape=(4,))
    model = kk.build_model(kk.ProblemSpec(task="multiclass", num_classes=6), input_shape=(4,), units=(4,))
    assert model.output_shape == (None, 6)
