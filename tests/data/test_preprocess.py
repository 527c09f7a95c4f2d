"""The statistics a table model's preprocessing is built from: vocabularies and their caps."""

import pandas as pd

from kerakit.data.preprocess import MAX_CATEGORIES, StatsAccumulator
from kerakit.data.schema import infer_schema, to_inputs


def _vocabulary(frame, **options):
    schema = infer_schema(frame)
    return StatsAccumulator(schema, **options).update(to_inputs(frame, schema)).result()["city"]["vocabulary"]


def test_values_seen_once_share_the_out_of_vocabulary_slot():
    """An identifier column (every value once) gets no vocabulary; a value seen twice gets its slot."""
    ids = pd.DataFrame({"city": [f"C{i:04d}" for i in range(300)]})
    assert _vocabulary(ids) == []
    cities = pd.DataFrame({"city": ["Oslo"] * 5 + ["Rome"] * 2 + ["Lima"]})
    assert _vocabulary(cities) == ["Oslo", "Rome"]


def test_the_cap_keeps_the_most_frequent_values():
    """A 210-level column keeps all its levels under the default cap, and the most frequent under a lower one."""
    frame = pd.DataFrame({"city": [f"c{i:03d}" for i in range(210) for _ in range(2 + (i < 5))]})
    assert MAX_CATEGORIES >= 210 and len(_vocabulary(frame)) == 210
    assert _vocabulary(frame, max_categories=5) == [f"c{i:03d}" for i in range(5)]
