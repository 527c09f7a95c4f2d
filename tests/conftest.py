import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(scope="session")
def digits():
    """Digits scaled to [0, 1]: (x_train, x_test, y_train, y_test), stratified, seed 0."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    return train_test_split(x, y, test_size=0.25, random_state=0, stratify=y)


# Breast cancer, standardized: 569 rows, 30 features, binary. The fixtures
# below are the subsets the tests were written with (each keeps its own name,
# because the subsets differ). Tests must not modify the arrays in place.


def _standardized_cancer():
    from sklearn.datasets import load_breast_cancer

    x, y = load_breast_cancer(return_X_y=True)
    return ((x - x.mean(0)) / x.std(0)).astype(np.float32), y


@pytest.fixture(scope="session")
def cancer():
    """100 shuffled rows (seed 1): (x, y)."""
    x, y = _standardized_cancer()
    idx = np.random.default_rng(1).permutation(len(x))[:100]
    return x[idx], y[idx]


@pytest.fixture(scope="session")
def cancer_120():
    """120 shuffled rows (seed 0): (x, y)."""
    x, y = _standardized_cancer()
    idx = np.random.default_rng(0).permutation(len(x))[:120]
    return x[idx], y[idx]


@pytest.fixture(scope="session")
def cancer_first_100():
    """The first 100 rows, file order: (x, y)."""
    x, y = _standardized_cancer()
    return x[:100], y[:100]


@pytest.fixture(scope="session")
def cancer_split():
    """Every row: (x_train, x_test, y_train, y_test), 25 % test, stratified, seed 0."""
    from sklearn.model_selection import train_test_split

    x, y = _standardized_cancer()
    return train_test_split(x, y, test_size=0.25, random_state=0, stratify=y)


def logistic_model(weights):
    """A one-layer binary model (input "features") whose weights are set by hand; no bias."""
    import keras

    inputs = keras.Input((len(weights),), name="features")
    outputs = keras.layers.Dense(1, activation="sigmoid", name="output")(inputs)
    model = keras.Model(inputs, outputs)
    model.get_layer("output").set_weights([np.array(weights, dtype="float32")[:, None], np.zeros(1)])
    return model


@pytest.fixture(scope="session")
def binary_runs():
    """Factory: run directories of hand-weighted binary models and a held-out CSV.

    `binary_runs(root, {"a": [2.0, 0.0, 0.3], ...}, csv_name)` returns
    `(run dirs by label, csv path, x, y)`: 400 rows of 3 features named alpha,
    beta, gamma with label = (2 alpha + beta > 0).
    """
    def make(root, weights_by_label, csv_name="test.csv"):
        import pandas as pd

        from kerakit.runs import Run

        rng = np.random.default_rng(5)
        x = rng.normal(size=(400, 3)).astype("float32")
        y = (2 * x[:, 0] + x[:, 1] > 0).astype(int)
        names = ["alpha", "beta", "gamma"]
        dirs = {}
        for label, weights in weights_by_label.items():
            run = Run("toy", root=root, run_id=f"run-{label}", quiet=True)
            run.save_model(logistic_model(weights))
            run.write_manifest(spec={"task": "binary"}, data={"feature_names": names, "target": "label"})
            dirs[label] = run.dir
        frame = pd.DataFrame(x, columns=names)
        frame["label"] = y
        csv = root / csv_name
        frame.to_csv(csv, index=False)
        return dirs, csv, x, y

    return make

