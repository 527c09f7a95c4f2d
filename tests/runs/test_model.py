"""`kerakit.runs` model helpers: checks of a CSV's columns against a run's manifest, before any model loads."""

import json

import pandas as pd
import pytest

from kerakit.errors import RunError
from kerakit.runs import check_feature_columns, check_label_columns


@pytest.fixture
def run_dir(tmp_path):
    folder = tmp_path / "runs" / "csv" / "20250101-120000-abcd"
    folder.mkdir(parents=True)
    (folder / "model.keras").write_bytes(b"never read")
    (folder / "manifest.json").write_text(json.dumps(
        {"recipe": "csv", "status": "completed", "spec": {"task": "binary"},
         "data": {"target": "label", "feature_names": ["a", "b"]}}))
    return folder


def test_check_label_columns_returns_the_columns_it_checked(run_dir):
    frame = pd.DataFrame({"a": [1], "b": [2], "label": [0], "y": [1]})
    assert check_label_columns(frame, run_dir) == ["label"]
    assert check_label_columns(frame, run_dir, target="y") == ["y"]


def test_feature_columns_read_by_position_are_accepted(run_dir):
    # Renamed columns, as many as the model takes besides the label: an array model reads them in order.
    check_feature_columns(pd.DataFrame({"x1": [1], "x2": [2], "label": [0]}), run_dir)
    check_feature_columns(pd.DataFrame({"b": [2], "a": [1], "extra": [3]}), run_dir)


def test_missing_feature_columns_are_refused_by_name(run_dir):
    with pytest.raises(RunError, match=r"lacks 1 of the run's 2 feature column\(s\): b\. .*Its columns "
                                       r"besides the label: a, c, d\."):
        check_feature_columns(pd.DataFrame({"a": [1], "c": [2], "d": [3], "label": [0]}), run_dir)
