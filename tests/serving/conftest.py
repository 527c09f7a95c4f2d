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
