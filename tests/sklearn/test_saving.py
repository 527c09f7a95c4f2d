"""Pickling an estimator: the network travels as `.keras` bytes and loads safely."""

import copy
import pickle

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
