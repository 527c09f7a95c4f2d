"""The spec saved with the model (kerakit.metadata) and the one metric table (kerakit.metrics_registry)."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pandas as pd
import pytest

import kerakit as kk
from kerakit import metrics_registry
from kerakit.metadata import SPEC_LAYER, attach_spec, spec_of

SPECS = {
    "binary": kk.ProblemSpec(task="binary"),
    "multiclass_sparse": kk.ProblemSpec(task="multiclass", num_classes=4),
    "multiclass_onehot_named": kk.ProblemSpec(task="multiclass", num_classes=3, label_format="onehot",
                                              class_names=np.array(["cat", "dog", "eel"])),
    "multilabel": kk.ProblemSpec(task="multilabel", num_labels=3, class_names=("a", "b", "c")),
    "regression": kk.ProblemSpec(task="regression", num_targets=2, robust=True),
}

X = np.random.default_rng(0).normal(size=(16, 5)).astype("float32")


def _without_spec_layer(model):
    """The model as kerakit built it before the spec layer: ends in the "output" Dense."""
    return keras.Model(model.input, model.get_layer("output").output, name=model.name)


# The spec travels inside the model ----------------------------------------------------


@pytest.mark.backends
@pytest.mark.parametrize("key", sorted(SPECS))
def test_spec_round_trips_through_save_and_keras_load_model(key, tmp_path):
    spec = SPECS[key]
    model = kk.build_model(spec, input_shape=(5,), units=(8,), seed=0)
    before = model.predict(X, verbose=0)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)  # plain Keras, safe mode
    assert spec_of(loaded) == spec
    assert spec_of(loaded).class_names == spec.class_names
    assert kk.load_model(path) is not None and spec_of(kk.load_model(path)) == spec
    np.testing.assert_array_equal(loaded.predict(X, verbose=0), before)


@pytest.mark.backends
def test_spec_layer_changes_no_prediction_parameter_or_dtype():
    spec = SPECS["multiclass_sparse"]
    model = kk.build_model(spec, input_shape=(5,), units=(8,), seed=0)
    plain = _without_spec_layer(model)
    assert model.layers[-1].name == SPEC_LAYER and not model.layers[-1].weights
    assert model.count_params() == plain.count_params()
    np.testing.assert_array_equal(model.predict(X, verbose=0), plain.predict(X, verbose=0))
    np.testing.assert_array_equal(np.asarray(model(X)), np.asarray(plain(X)))
    assert model.output_shape == plain.output_shape == (None, 4)


def test_mixed_precision_output_stays_float32():
    model = kk.build_model(SPECS["binary"], input_shape=(5,), units=(8,), mixed_precision="mixed_bfloat16")
    assert model.get_layer("body").layers[0].compute_dtype == "bfloat16"
    assert model.output.dtype == "float32"
    assert np.asarray(model.predict(X, verbose=0)).dtype == np.float32


def test_attach_spec_updates_the_saved_spec_and_remembers_user_models_in_memory(tmp_path):
    model = kk.build_model(SPECS["multiclass_sparse"], input_shape=(5,), units=(8,))
    renamed = kk.ProblemSpec(task="multiclass", num_classes=4, class_names=("w", "x", "y", "z"))
    assert attach_spec(model, renamed) is model and spec_of(model) == renamed
    model.save(tmp_path / "renamed.keras")
    assert spec_of(kk.load_model(tmp_path / "renamed.keras")) == renamed

    user = keras.Sequential([keras.Input((5,)), keras.layers.Dense(1, activation="sigmoid")])
    assert spec_of(user) is None
    attach_spec(user, SPECS["binary"])
    assert spec_of(user) == SPECS["binary"]
    assert not hasattr(user, "_kerakit_spec")
    user.save(tmp_path / "user.keras")  # a user's graph is not rewired: the spec stays in memory
    assert spec_of(keras.saving.load_model(tmp_path / "user.keras")) is None
    with pytest.raises(kk.KerakitError, match="must be a kerakit.ProblemSpec"):
        attach_spec(user, {"task": "binary"})


def test_old_model_without_spec_layer_loads_with_the_fallbacks(tmp_path):
    spec = SPECS["multiclass_onehot_named"]
    old = _without_spec_layer(kk.build_model(spec, input_shape=(5,), units=(8,)))
    old.compile(loss="categorical_crossentropy")
    run = tmp_path / "run"
    run.mkdir()
    old.save(run / "model.keras")
    old.save(tmp_path / "bare.keras")
    (run / "manifest.json").write_text(json.dumps({"spec": spec.to_config()}), encoding="utf-8")
    # A run directory: the manifest's spec, as before.
    assert spec_of(kk.load_model(run)) == spec
    assert kk.RunModel(str(run)).spec == spec
    # A bare file: the output layer's activation, as before.
    bare = kk.load_model(tmp_path / "bare.keras")
    assert spec_of(bare) is None
    from kerakit.analysis import spec_from_model

    assert spec_from_model(bare) == kk.ProblemSpec(task="multiclass", num_classes=3)


def test_raw_column_model_keeps_its_spec_through_save(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=60), "b": rng.choice(["u", "v"], 60),
                          "kind": rng.choice(["red", "green", "blue"], 60)})
    result = kk.fit_table(frame, target="kind", epochs=1, seed=0, units=(4,), verbose=0)
    assert spec_of(result.model).class_names == ("blue", "green", "red")
    result.model.save(tmp_path / "new.keras")
    assert spec_of(kk.load_table_model(tmp_path / "new.keras")) == spec_of(result.model)


def test_spec_config_is_plain_json_and_rebuilds_the_spec():
    for spec in SPECS.values():
        config = json.loads(json.dumps(spec.to_config()))
        assert kk.ProblemSpec.from_config(config) == spec
    assert kk.ProblemSpec.from_config({"task": "binary", "added_in_a_later_version": 1}) == SPECS["binary"]


def test_metadata_imports_no_keras_and_spec_output_lives_in_layers():
    from kerakit.layers import SpecOutput

    assert isinstance(kk.build_model(SPECS["binary"], input_shape=(3,)).layers[-1], SpecOutput)
    code = ("import sys, kerakit.metadata, kerakit.metrics_registry, kerakit.builders; "
            "print('keras' in sys.modules, 'tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["False", "False"], out.stderr[-2000:]


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_spec_round_trips_on_other_backends(backend, tmp_path):
    pytest.importorskip(backend, reason=f"{backend} is not installed (pip install -e '.[{backend}]')")
    code = f"""
import keras, numpy as np, kerakit as kk
from kerakit.metadata import spec_of
assert keras.backend.backend() == {backend!r}
spec = kk.ProblemSpec(task="multiclass", num_classes=3, class_names=("a", "b", "c"))
model = kk.build_model(spec, input_shape=(4,), units=(8,), seed=0)
x = np.random.default_rng(0).normal(size=(6, 4)).astype("float32")
model.fit(x, np.array([0, 1, 2, 0, 1, 2]), epochs=1, verbose=0)
before = model.predict(x, verbose=0)
model.save({str(tmp_path / 'm.keras')!r})
import kerakit.layers  # registers SpecOutput for plain keras.saving.load_model
loaded = keras.saving.load_model({str(tmp_path / 'm.keras')!r}, safe_mode=True)
assert spec_of(loaded) == spec, spec_of(loaded)
np.testing.assert_allclose(loaded.predict(x, verbose=0), before, rtol=1e-6)
print("ok")
"""
    env = dict(os.environ, KERAS_BACKEND=backend)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.stdout.strip().endswith("ok"), out.stderr[-3000:]


# One metric table -----------------------------------------------------------------------


def test_objective_directions_of_keras_log_names_are_unchanged():
    from kerakit.crossval import objective_direction

    maximized = ["accuracy", "acc", "binary_accuracy", "categorical_accuracy", "sparse_categorical_accuracy",
                 "top_k_accuracy", "top_k_categorical_accuracy", "sparse_top_k_categorical_accuracy", "auc",
                 "precision", "recall", "cosine_similarity", "f1_score", "fbeta_score", "r2_score", "r2"]
    minimized = ["loss", "mae", "mse", "rmse", "mean_absolute_error", "mean_squared_error",
                 "root_mean_squared_error", "mean_absolute_percentage_error", "huber", "log_cosh",
                 "kl_divergence", "binary_crossentropy", "categorical_crossentropy",
                 "sparse_categorical_crossentropy", "hinge", "squared_hinge"]
    assert {objective_direction(f"val_{n}") for n in maximized} == {"max"}
    assert {objective_direction(n) for n in minimized} == {"min"}
    assert metrics_registry.direction("my_own_metric") is None
    with pytest.raises(kk.KerakitError, match="Did you mean 'roc_auc'"):
        metrics_registry.get("roc_acu")
