"""Shared data of the scikit-learn estimator tests: iris as a DataFrame, a small 40-row set."""

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.model_selection import train_test_split

from kerakit.sklearn import KerasClassifier


@pytest.fixture(scope="package")
def iris():
    """Iris as a DataFrame with string labels: (x_train, x_test, y_train, y_test)."""
    data = load_iris(as_frame=True)
    x = data.frame.drop(columns="target")
    y = np.asarray(data.target_names)[data.target]
    return train_test_split(x, y, test_size=0.3, random_state=0, stratify=y)


@pytest.fixture(scope="package")
def small():
    """40 rows, 4 features; binary, 3-class and 3-label targets."""
    rng = np.random.RandomState(0)
    x = rng.normal(size=(40, 4)).astype(np.float32)
    binary = (x[:, 0] + x[:, 1] > 0).astype(int)
    three = np.digitize(x[:, 0], [-0.5, 0.5])
    labels = np.column_stack([binary, x[:, 2] > 0, x[:, 3] > 0.5]).astype(int)
    return x, binary, three, labels


@pytest.fixture
def quick():
    """Options of a fast, seeded fit: quick(epochs=30) overrides one."""

    def options(**overrides):
        return {"epochs": 2, "validation_split": 0.0, "patience": None, "seed": 0, **overrides}

    return options


@pytest.fixture(scope="package")
def fitted(iris):
    """A classifier trained with a validation split and early stopping."""
    x_train, _, y_train, _ = iris
    model = KerasClassifier(units=(16,), learning_rate=0.02, epochs=60, validation_split=0.2,
                            patience=3, seed=0)
    return model.fit(x_train, y_train)
