"""KerasRegressor: one linear output per target column."""


import numpy as np
import pytest

from kerakit.sklearn import KerasRegressor
from kerakit.spec import ProblemSpec

# Backend-neutral: CI runs this file on TensorFlow and again on JAX (scripts/dev.py).
pytestmark = pytest.mark.backends


def test_multi_output_regression_with_a_robust_spec():
    rng = np.random.RandomState(0)
    x = rng.normal(size=(60, 4))
    y = np.column_stack([x[:, 0] + x[:, 1], x[:, 2] - x[:, 3]])
    spec = ProblemSpec(task="regression", num_targets=2, robust=True)
    model = KerasRegressor(spec=spec, units=(16,), learning_rate=0.02, epochs=40,
                           validation_split=0.0, patience=None, seed=0).fit(x, y)
    assert model.model_.loss == spec.loss  # Huber, from the spec
    pred = model.predict(x)
    assert pred.shape == (60, 2)
    assert model.score(x, y) > 0.5
