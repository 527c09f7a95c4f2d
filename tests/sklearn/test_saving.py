"""Pickling an estimator: the network travels as `.keras` bytes and loads safely."""

import copy
import io
import json
import pickle
import zipfile

import numpy as np
import pytest

from kerakit.errors import KerakitError
from kerakit.sklearn import KerasClassifier, KerasRegressor

# Backend-neutral: CI runs this file on TensorFlow and again on JAX (scripts/dev.py).
pytestmark = pytest.mark.backends


def test_pickle_round_trip_keeps_the_trained_network(fitted, iris):
    _, x_test, _, _ = iris
    data = pickle.dumps(fitted)
    restored = pickle.loads(data)

    assert restored.model_ is not fitted.model_
    np.testing.assert_array_equal(restored.predict_proba(x_test), fitted.predict_proba(x_test))
    np.testing.assert_array_equal(restored.classes_, fitted.classes_)
    assert restored.history_ == fitted.history_
    assert restored.get_params() == fitted.get_params()
    assert "_model_keras_bytes" not in vars(fitted)  # pickling leaves the original alone
    deep = copy.deepcopy(fitted)  # deepcopy goes through the same state
    np.testing.assert_array_equal(deep.predict(x_test), fitted.predict(x_test))
    unfitted = pickle.loads(pickle.dumps(KerasRegressor(units=(8,))))
    assert unfitted.units == (8,) and not hasattr(unfitted, "model_")


def lambda_body(spec, hp):
    """A body with a Lambda layer: Python code that would run when the model loads."""
    import keras

    return keras.Sequential([keras.layers.Lambda(lambda t: t * 2.0), keras.layers.Dense(4)])


def test_unpickling_refuses_lambda_layers(iris):
    x_train, _, y_train, _ = iris
    model = KerasClassifier(body=lambda_body, epochs=1, validation_split=0.0, patience=None,
                            seed=0).fit(x_train, y_train)
    data = pickle.dumps(model)
    with pytest.raises(KerakitError, match="Lambda") as info:
        pickle.loads(data)
    assert isinstance(info.value, ValueError)


def _tampered(data, layer):
    """The `.keras` bytes `data` with its first Dense layer's config replaced by `layer`."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(files["config.json"])
    layers = config["config"]["layers"]
    index = next(i for i, entry in enumerate(layers) if entry["class_name"] == "Dense")
    layers[index] = {**layers[index], **layer}
    files["config.json"] = json.dumps(config).encode()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return out.getvalue()


@pytest.mark.parametrize(
    "layer",
    [
        {"module": "os", "class_name": "system", "config": {"command": "echo planted"}},
        {"module": "builtins", "class_name": "exec", "config": {"source": "print(1)"}},
    ],
    ids=["os.system", "builtins.exec"],
)
def test_unpickling_an_unsafe_model_file_is_refused_with_a_kerakit_error(small, quick, layer):
    x, binary, _, _ = small
    state = KerasClassifier(units=(4,), **quick(epochs=1)).fit(x, binary).__getstate__()
    state["_model_keras_bytes"] = _tampered(state["_model_keras_bytes"], layer)
    restored = KerasClassifier.__new__(KerasClassifier)
    with pytest.raises(KerakitError, match="not a safe model file") as info:
        restored.__setstate__(state)  # what pickle.loads calls
    assert isinstance(info.value, ValueError)


def test_unpickling_bytes_that_are_no_keras_file_says_so(small, quick):
    x, binary, _, _ = small
    state = KerasClassifier(units=(4,), **quick(epochs=1)).fit(x, binary).__getstate__()
    state["_model_keras_bytes"] = b"not a zip archive"
    with pytest.raises(KerakitError, match="not a Keras model file"):
        KerasClassifier.__new__(KerasClassifier).__setstate__(state)
