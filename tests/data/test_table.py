"""Raw-column models on every backend: text columns train, predict, save and load alike.

On TensorFlow a text column is looked up in the graph; on JAX and PyTorch it is
encoded on the host from the vocabulary saved in the model. These tests run on
each backend (the `backends` marker); the subprocess tests cross backends.
"""

import json
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import kerakit as kk
from kerakit.errors import ConfigError, DataError, DataTypeError

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.backends


def shops(n=160, seed=0):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "size": rng.normal(50, 10, n).round(1),
        "city": rng.choice(["Oslo", "Bergen", "Rome"], n),
        "floors": rng.integers(1, 4, n),
        "open now": rng.choice(["true", "false"], n),
    })
    frame.loc[::17, "city"] = None
    frame.loc[::13, "size"] = np.nan
    frame["busy"] = np.where((frame["city"] == "Oslo") | (frame["size"] > 55), "yes", "no")
    return frame


ODD_ROWS = [
    {"size": 52.0, "city": "Paris", "floors": 9, "open now": "true"},  # unseen city and floor count
    {"size": None, "city": None, "floors": 2, "open now": None},  # missing cells
    {"size": 40.0, "city": "Oslo", "floors": 1, "open now": "false"},
]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    frame = shops()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = kk.fit_table(frame, target="busy", epochs=2, seed=0, members=2, units=(16,),
                              crosses=[("city", "floors"), ("size", "city")], cross_bins=8)
    result.warnings = [str(w.message) for w in caught]
    return tmp_path_factory.mktemp("table"), frame, result


def _about_input_names(messages):
    return [m for m in messages if "inputs" in m and "names" in m]


def test_a_column_name_with_a_space_trains_and_loads_without_keras_warnings(trained):
    """'open now' is keyed by its name and carries a signature-safe one; Keras's warning about that stays out."""
    folder, frame, result = trained
    assert "open now" in result.model.input and _about_input_names(result.warnings) == []
    path = kk.save_table_model(result.model, folder / "named.keras")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        kk.load_table_model(path)
    assert _about_input_names([str(w.message) for w in caught]) == []


def test_text_columns_train_and_answer_unseen_and_missing_cells(trained):
    _, frame, result = trained
    assert {c.kind for c in result.schema.columns} >= {"string_categorical", "integer_categorical"}
    labels = kk.predict_table(result.model, ODD_ROWS)
    assert set(labels) <= {"yes", "no"} and labels.shape == (3,)
    proba = kk.predict_table(result.model, ODD_ROWS, proba=True)
    assert np.isfinite(proba).all() and np.allclose(proba.sum(axis=1), 1, atol=1e-5)
    # An unseen city is the out-of-vocabulary slot: the same answer as any other unseen city.
    other = kk.predict_table(result.model, [{**ODD_ROWS[0], "city": "Lima"}], proba=True)
    np.testing.assert_allclose(other[0], proba[0], rtol=1e-6)


def test_saved_file_predicts_the_same_after_load(trained):
    folder, frame, result = trained
    path = kk.save_table_model(result.model, folder / "shops.keras")
    loaded = kk.load_table_model(path)
    np.testing.assert_allclose(kk.predict_table(loaded, frame.head(12), proba=True),
                               kk.predict_table(result.model, frame.head(12), proba=True), rtol=1e-5)


def test_wrong_types_and_infinite_cells_are_refused_naming_rows_and_columns(trained):
    _, _, result = trained
    with pytest.raises(DataTypeError, match=r"Column 'size' is numeric.*'big'"):
        kk.predict_table(result.model, [{**ODD_ROWS[0], "size": "big"}])
    rows = pd.DataFrame([ODD_ROWS[2], {**ODD_ROWS[2], "size": np.inf}], index=[4, 7])
    with pytest.raises(DataError, match=r"Column 'size' has 1 infinite cell.*row\(s\) 7"):
        kk.predict_table(result.model, rows)


def test_table_inputs_give_text_as_the_backend_takes_it(trained):
    _, frame, result = trained
    inputs = kk.table_inputs(result.model, frame.head(3))
    text = keras_backend() == "tensorflow"
    assert (inputs["city"].dtype == object) == text
    if not text:  # codes in the saved vocabulary, 0 for unknown
        lookup = result.model.get_layer("city_lookup")
        assert inputs["city"].ravel().tolist() == lookup.codes(frame["city"].head(3).fillna("")).ravel().tolist()


def test_served_raw_rows_answer_as_predict_table(trained):
    httpx = pytest.importorskip("httpx")
    folder, _, result = trained
    path = kk.save_table_model(result.model, folder / "served.keras")
    rows = [{**row, "open now": {"true": True, "false": False}.get(row["open now"])} for row in ODD_ROWS]
    expected = kk.predict_table(result.model, rows, proba=True)[:, 1]
    with kk.serve(path, port=0, block=False, name="shops") as running, httpx.Client() as client:
        answer = client.post(running.model_url + ":predict", json={"instances": rows})
    assert answer.status_code == 200, answer.text
    np.testing.assert_allclose(np.ravel(answer.json()["predictions"]), expected, atol=1e-5)


def keras_backend():
    import keras

    return keras.backend.backend()


@pytest.mark.parametrize("option, value, match", [
    ("cross_bins", 0, "cross_bins"), ("cross_bins", 1, "cross_bins"),
    ("max_categories", 0, "max_categories"), ("max_categories", -2, "max_categories"),
])
def test_counts_that_would_train_nothing_are_refused_before_reading(option, value, match):
    with pytest.raises(ConfigError, match=match):
        kk.fit_table("no-such-file.csv", target="busy", **{option: value})


def test_duplicate_column_names_are_refused():
    frame = pd.DataFrame([[1.0, 2.0, 0], [3.0, 4.0, 1]] * 10, columns=["a", "a", "y"])
    with pytest.raises(DataError, match=r"duplicate column names \['a'\]"):
        kk.read_table(frame, target="y")


def test_streaming_reads_text_columns_through_tf_data_on_any_backend(tmp_path):
    pytest.importorskip("tensorflow")
    frame = shops(200, seed=3)
    path = tmp_path / "shops.csv"
    frame.to_csv(path, index=False)
    result = kk.fit_table(str(path), target="busy", streaming=True, epochs=1, members=2, units=(8,))
    assert result.splits["train"] > 100 and "accuracy" in result.report["test"]
    proba = kk.predict_table(result.model, ODD_ROWS, proba=True)
    assert np.isfinite(proba).all() and proba.shape == (3, 2)


def test_streaming_is_refused_by_name_where_tensorflow_is_absent(tmp_path, monkeypatch):
    import importlib.util

    path = tmp_path / "shops.csv"
    shops(40).to_csv(path, index=False)
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "tensorflow" else find_spec(name, *a))
    with pytest.raises(ConfigError, match="TensorFlow is not installed.*streaming=False"):
        kk.fit_table(str(path), target="busy", streaming=True)


# Across backends (subprocesses) -------------------------------------------------------------

FIT = """
import json, sys
import numpy as np, pandas as pd
import kerakit as kk
rng = np.random.default_rng(0)
n = 120
frame = pd.DataFrame({"size": rng.normal(50, 10, n), "city": rng.choice(["Oslo", "Bergen", "Rome"], n),
                      "floors": rng.integers(1, 4, n)})
frame["busy"] = np.where((frame["city"] == "Oslo") | (frame["size"] > 55), "yes", "no")
rows = [{"size": 52.0, "city": "Paris", "floors": 9}, {"size": None, "city": "Oslo", "floors": 2}]
"""


def _python(code, backend, *args):
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3",
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code), *map(str, args)], env=env,
                         capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.once
@pytest.mark.slow
@pytest.mark.parametrize("saved_on, loaded_on", [("tensorflow", "jax"), ("jax", "tensorflow")])
def test_a_file_saved_on_one_backend_predicts_the_same_on_the_other(saved_on, loaded_on, tmp_path):
    pytest.importorskip("jax")
    pytest.importorskip("tensorflow")
    path = tmp_path / "model.keras"
    saved = _python(FIT + """
result = kk.fit_table(frame, target="busy", epochs=1, seed=0, members=2, units=(8,),
                      crosses=[("city", "floors")], cross_bins=8)
kk.save_table_model(result.model, sys.argv[1])
print(json.dumps(kk.predict_table(result.model, rows, proba=True).tolist()))
""", saved_on, path)
    loaded = _python(FIT + """
model = kk.load_table_model(sys.argv[1])
print(json.dumps(kk.predict_table(model, rows, proba=True).tolist()))
""", loaded_on, path)
    np.testing.assert_allclose(loaded, saved, rtol=1e-5, atol=1e-6)


@pytest.mark.once
@pytest.mark.slow
def test_jax_trains_and_serves_text_tables_without_tensorflow(tmp_path):
    pytest.importorskip("jax")
    csv = tmp_path / "shops.csv"
    out = _python(FIT + """
frame.to_csv(sys.argv[1], index=False)
from_csv = kk.fit_table(sys.argv[1], target="busy", epochs=1, seed=0, members=2, units=(8,))
result = kk.fit_table(frame, target="busy", epochs=1, seed=0, members=2, units=(8,))
before = kk.predict_table(result.model, rows, proba=True)
kk.predict_table(from_csv.model, sys.argv[1])
imported = "tensorflow" in sys.modules
# Keras's own save looks TensorFlow up when it is installed: block it, as on a machine without it.
sys.modules["tensorflow"] = None
path = kk.save_table_model(result.model, sys.argv[2])
after = kk.predict_table(kk.load_table_model(path), rows, proba=True)
print(json.dumps({"imported": imported, "same": bool(np.allclose(before, after, rtol=1e-6)),
                  "backend": __import__("keras").backend.backend()}))
""", "jax", csv, tmp_path / "shops.keras")
    assert out == {"imported": False, "same": True, "backend": "jax"}
