"""Fixtures of the serving tests."""

import numpy as np
import pytest


@pytest.fixture(scope="module")
def numeric_table_model():
    """A raw-column model with number and true/false columns (no text: those build on every backend)."""
    import pandas as pd

    from kerakit import data

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"area": rng.uniform(30, 150, 60), "garden": rng.choice([True, False], 60)})
    frame["size"] = np.where(frame["area"] > 90, "big", "small")
    table = data.read_table(frame, "size")
    encoder = data.TargetEncoder().fit(table.frame["size"], "size", table.where)
    columns = data.to_inputs(table.frame, table.schema, table.where)
    stats = data.StatsAccumulator(table.schema).update(columns).result()
    return data.build_table_model(table.schema, stats, encoder, seed=0)[0]


@pytest.fixture(scope="module")
def text_table_model():
    """A raw-column model with number, integer-category and text columns, and its frame."""
    import pandas as pd

    from kerakit import data

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"area": rng.uniform(30, 150, 60), "rooms": rng.integers(1, 5, 60),
                          "city": rng.choice(["Oslo", "Bergen"], 60)})
    frame["size"] = np.where(frame["area"] > 90, "big", "small")
    table = data.read_table(frame, "size", types={"rooms": "integer_categorical"})
    encoder = data.TargetEncoder().fit(table.frame["size"], "size", table.where)
    columns = data.to_inputs(table.frame, table.schema, table.where)
    stats = data.StatsAccumulator(table.schema).update(columns).result()
    model, _ = data.build_table_model(table.schema, stats, encoder, seed=0)
    return model, frame


@pytest.fixture(scope="module")
def train():
    """1,000 rows of 3 normal features with a linear binary label (the drift and metrics tests)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1000, 3)).astype("float32")
    return x, (x[:, 0] + x[:, 1] > 0).astype("int64")


@pytest.fixture(scope="module")
def model():
    """An untrained binary model on 3 features; a test file may define its own `model`."""
    import kerakit as kk

    return kk.build_model(kk.ProblemSpec(task="binary"), input_shape=(3,), units=(4,), seed=0)
