"""kerakit.saving: the one safe loader (every loading path refuses untrusted files the same way)
and the atomic save."""

import copy
import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from kerakit import saving
from kerakit.errors import KerakitError, RunError


def _dense(config):
    return next(layer for layer in config["config"]["layers"] if layer["class_name"] == "Dense")


# Each takes the config of a model with one Dense layer and a marker path, and plants code
# that would touch the marker if it ever ran.
def _os_system(config, marker):
    _dense(config).update({"module": "os", "class_name": "system", "registered_name": None,
                           "config": {"command": f"touch {marker}"}})


def _builtins_exec(config, marker):
    _dense(config)["config"]["kernel_initializer"] = {
        "module": "builtins", "class_name": "function", "registered_name": "function",
        "config": "exec"}
    _dense(config)["config"]["name"] = f"open({str(marker)!r}, 'w')"


def _get_file_initializer(config, marker):
    _dense(config)["config"]["kernel_initializer"] = {
        "module": "keras.utils", "class_name": "get_file", "registered_name": None,
        "config": {"fname": marker.name, "origin": f"file://{marker}.source",
                   "cache_dir": str(marker.parent)}}


def _unsafe_activation_object(config, marker):
    _dense(config)["config"]["activation"] = {
        "module": "keras.config", "class_name": "function", "registered_name": "function",
        "config": "enable_unsafe_deserialization"}


def _unsafe_activation_name(config, marker):
    _dense(config)["config"]["activation"] = "enable_unsafe_deserialization"


PLANTS = {
    "os.system layer": _os_system,
    "builtins.exec initializer": _builtins_exec,
    "keras.utils.get_file initializer": _get_file_initializer,
    "enable_unsafe_deserialization activation": _unsafe_activation_object,
    "enable_unsafe_deserialization activation name": _unsafe_activation_name,
}


@pytest.fixture(scope="module")
def clean_file(tmp_path_factory):
    import kerakit as kk

    path = tmp_path_factory.mktemp("clean") / "model.keras"
    model = kk.build_model(kk.ProblemSpec(task="binary"), input_shape=(3,), units=(4,))
    model.save(path)
    return path


def _planted(clean_file, folder, plant):
    """A copy of `clean_file` whose config carries `plant`; returns (path, marker)."""
    marker = folder / "ran"
    (folder / "ran.source").write_text("payload")
    with zipfile.ZipFile(clean_file) as source:
        files = {name: source.read(name) for name in source.namelist()}
    config = copy.deepcopy(json.loads(files["config.json"]))
    plant(config, marker)
    path = folder / "planted.keras"
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, json.dumps(config) if name == "config.json" else data)
    return path, marker


def _load_with_saving(path):
    return saving.load_model(path)


def _load_with_kk(path):
    import kerakit as kk

    return kk.load_model(path)


def _load_with_run_model(path):
    from kerakit.runs import RunModel

    return RunModel(path)


def _load_with_servables(path):
    from kerakit.serving import load_servables

    return load_servables(path)


def _load_with_importance(path):
    import kerakit as kk

    return kk.permutation_importance(path, np.zeros((4, 3)), np.array([0, 1, 0, 1]))


LOADERS = {"saving.load_model": _load_with_saving, "kk.load_model": _load_with_kk,
           "RunModel": _load_with_run_model, "serving.load_servables": _load_with_servables,
           "kk.permutation_importance": _load_with_importance}


@pytest.mark.backends
@pytest.mark.parametrize("plant", sorted(PLANTS))
@pytest.mark.parametrize("loader", sorted(LOADERS))
def test_every_loading_path_refuses_planted_code_with_one_error(clean_file, tmp_path, plant, loader):
    path, marker = _planted(clean_file, tmp_path, PLANTS[plant])
    with pytest.raises(RunError, match="is not a safe model file: ") as error:
        LOADERS[loader](path)
    assert "could not be deserialized" not in str(error.value)
    assert not marker.exists()  # nothing in the file ran
    from keras.src.saving import serialization_lib

    assert serialization_lib.in_safe_mode() is not False  # safety was not switched off


@pytest.mark.backends
@pytest.mark.parametrize("command", ["evaluate", "predict"])
@pytest.mark.parametrize("plant", sorted(PLANTS))
def test_evaluate_and_predict_refuse_planted_code_by_name(clean_file, tmp_path, capsys, command, plant):
    from kerakit import cli

    path, marker = _planted(clean_file, tmp_path, PLANTS[plant])
    (tmp_path / "rows.csv").write_text("a,b,c,target\n1,2,3,0\n")
    extra = ["--out", str(tmp_path / "out.csv")] if command == "predict" else []
    assert cli.main([command, str(path), "--csv", str(tmp_path / "rows.csv"), *extra]) == 1
    err = capsys.readouterr().err
    assert f"kerakit {command}: error: " in err and "is not a safe model file: " in err
    assert "Traceback" not in err and not marker.exists()


@pytest.mark.backends
def test_a_lambda_layer_is_refused_as_code(tmp_path):
    import keras

    inputs = keras.Input((2,))
    keras.Model(inputs, keras.layers.Lambda(lambda t: t * 2)(inputs)).save(tmp_path / "lambda.keras")
    with pytest.raises(RunError, match="not a safe model file: it holds Python code"):
        saving.load_model(tmp_path / "lambda.keras")


@pytest.mark.backends
def test_garbage_and_missing_files_are_named_as_such(tmp_path):
    (tmp_path / "garbage.keras").write_bytes(b"\x00not a zip archive")
    with pytest.raises(RunError, match="is not a Keras model file"):
        saving.load_model(tmp_path / "garbage.keras")
    with zipfile.ZipFile(tmp_path / "no_config.keras", "w") as archive:
        archive.writestr("metadata.json", "{}")
    with pytest.raises(RunError, match="is not a Keras model file"):
        saving.load_model(tmp_path / "no_config.keras")
    with pytest.raises(RunError, match="No run directory or model file at"):
        saving.load_model(tmp_path / "missing.keras")
    with pytest.raises(KerakitError, match="Expected a keras.Model"):
        saving.load_model(42)


@pytest.mark.slow
def test_kerakit_models_load_in_a_fresh_process_without_registering_anything(tmp_path):
    """A raw-column model, an ensemble and a plain kerakit model: one import, no set-up."""
    import pandas as pd

    import kerakit as kk

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=40), "city": rng.choice(["a", "b"], 40),
                          "y": rng.choice(["yes", "no"], 40)})
    table = kk.fit_table(frame, target="y", epochs=1, verbose=0).model
    table.save(tmp_path / "table.keras")
    spec = kk.ProblemSpec(task="binary")
    members = [kk.build_model(spec, input_shape=(3,), units=(4,), seed=s) for s in (0, 1)]
    members[0].save(tmp_path / "plain.keras")
    kk.ensemble(members).save(tmp_path / "team.keras")
    code = ("import sys; from kerakit.saving import load_model\n"
            "for name in sys.argv[1:]:\n"
            "    print(type(load_model(name)).__name__)")
    result = subprocess.run(
        [sys.executable, "-c", code, *(str(tmp_path / f"{n}.keras") for n in ("table", "plain", "team"))],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["Functional"] * 3


@pytest.mark.backends
def test_save_model_is_atomic_and_round_trips_the_spec(tmp_path):
    import kerakit as kk
    from kerakit.metadata import spec_of

    spec = kk.ProblemSpec(task="multiclass", num_classes=3, class_names=["a", "b", "c"])
    model = kk.build_model(spec, input_shape=(2,), units=(4,))
    path = saving.save_model(model, tmp_path / "out" / "m.keras")
    assert path == tmp_path / "out" / "m.keras" and os.listdir(tmp_path / "out") == ["m.keras"]
    assert spec_of(saving.load_model(path)) == spec
    with pytest.raises(RunError, match="must end in .keras"):
        saving.save_model(model, tmp_path / "m.h5")
    assert not (tmp_path / "m.h5").exists()


@pytest.mark.backends
def test_a_users_registered_layer_loads_and_bytes_load_like_a_file(clean_file, tmp_path):
    import keras

    @keras.saving.register_keras_serializable(package="my_project")
    class Doubler(keras.layers.Layer):
        def call(self, inputs):
            return inputs * 2

    inputs = keras.Input((2,))
    keras.Model(inputs, Doubler()(inputs)).save(tmp_path / "mine.keras")
    loaded = saving.load_model(tmp_path / "mine.keras")
    np.testing.assert_allclose(loaded.predict(np.ones((1, 2)), verbose=0), [[2.0, 2.0]])

    assert saving.load_model(clean_file.read_bytes()).output_shape == (None, 1)
    path, marker = _planted(clean_file, tmp_path, _os_system)
    with pytest.raises(RunError, match="The model's bytes is not a safe model file: "):
        saving.load_model(path.read_bytes())
    assert not marker.exists()
