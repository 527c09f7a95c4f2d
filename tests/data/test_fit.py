"""Raw-column models end to end: CSV → fit_table → save → a fresh process predicts raw rows.

Small and real: a few hundred generated rows, a few epochs, tmp_path files.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import kerakit as kk
from kerakit.data import csvfile, table_metadata, training_model

ROOT = Path(__file__).resolve().parents[2]


def houses(n=240, seed=0):
    """Mixed column kinds with missing cells; price depends on every feature."""
    rng = np.random.default_rng(seed)
    area = rng.normal(80, 20, n).round(1)
    city = rng.choice(["Oslo", "Bergen", "Bodo"], n).astype(object)
    rooms = rng.integers(1, 5, n)
    garden = rng.random(n) < 0.5
    price = (2000 * area + 30000 * rooms + np.where(city == "Oslo", 80000, 0)
             + 15000 * garden + rng.normal(0, 8000, n))
    frame = pd.DataFrame({"area": area, "city": city, "rooms": rooms, "garden": garden,
                          "price": price.round(0)})
    frame.loc[rng.random(n) < 0.1, "area"] = np.nan
    frame.loc[rng.random(n) < 0.1, "city"] = None
    return frame


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One model from a CSV with mixed kinds and missing cells: log1p target, two crosses."""
    folder = tmp_path_factory.mktemp("houses")
    frame = houses()
    path = folder / "houses.csv"
    frame.to_csv(path, index=False)
    result = kk.fit_table(path, target="price", target_transform="log1p",
                          crosses=[("city", "rooms"), ("city", "area")], cross_bins=16,
                          epochs=12, patience=10, seed=0, units=(32,), learning_rate=0.01)
    return folder, frame, result


def test_csv_with_mixed_kinds_and_missing_cells_trains_end_to_end(trained):
    _, frame, result = trained
    assert [c.kind for c in result.schema.columns] == \
        ["numeric", "string_categorical", "integer_categorical", "boolean"]
    assert result.splits == {"test": 36, "validation": 36, "train": 168}
    assert result.spec.task == "regression"
    # Learned from raw rows: far better than predicting the mean (R² = 0).
    assert result.report["test"]["r2"] > 0.6, result.report
    model = result.model
    import keras

    assert isinstance(model, keras.Model) and isinstance(model.input, dict)
    layers = {type(layer).__name__ for layer in model.layers}
    # The default "table" body scales numbers with SmoothClip (the "mlp" body: Normalization).
    assert {"TableInput", "CategoryLookup", "SmoothClip", "FillMissing",
            "MissingIndicator", "TableOutput"} <= layers


def test_predictions_are_in_original_units_and_unseen_values_do_not_crash(trained):
    _, frame, result = trained
    predicted = kk.predict_table(result.model, frame.head(50))
    assert predicted.shape == (50,)
    # The network trains on a standardized target; the model answers in the CSV's units.
    assert abs(predicted.mean() - frame["price"].head(50).mean()) < 0.2 * frame["price"].std()
    rows = [{"area": None, "city": "Paris", "rooms": 9, "garden": True},
            {"area": 70.0, "city": "", "rooms": 2, "garden": "false"}]
    odd = kk.predict_table(result.model, rows)
    assert np.isfinite(odd).all()
    raw = training_model(result.model).predict(kk.table_inputs(result.model, frame.head(5)),
                                                verbose=0)[:, 0]
    transform = table_metadata(result.model)["target_transform"]
    assert transform["kind"] == "log1p" and transform["log1p"]
    # The network learns log1p(price), standardized; TableOutput inverts both steps and
    # multiplies by Duan's smearing factor, so the answer estimates a mean.
    assert np.allclose(np.exp(raw * transform["scale"] + transform["mean"])
                       * transform["smearing"] - 1, predicted[:5], rtol=1e-4)


def test_saved_model_predicts_raw_rows_in_a_fresh_process(trained):
    folder, frame, result = trained
    path = kk.save_table_model(result.model, folder / "model.keras")
    assert os.path.isfile(path) and not [f for f in os.listdir(folder) if ".tmp" in f]
    expected = kk.predict_table(result.model, frame.head(4))
    rows = frame.head(4).drop(columns="price").astype(object).where(frame.head(4).notna(), None)
    code = (
        "import json, sys, numpy as np, keras\n"
        "import kerakit.layers\n"  # registers kerakit's layers, nothing else
        "model = keras.saving.load_model(sys.argv[1], safe_mode=True)\n"
        "rows = json.loads(sys.argv[2])\n"
        "columns = {k: [r[k] for r in rows] for k in rows[0]}\n"
        "inputs = {'area': np.array([np.nan if v is None else v for v in columns['area']], 'float32'),\n"
        "          'city': np.array(['' if v is None else v for v in columns['city']], object),\n"
        "          'rooms': np.array(columns['rooms'], 'int64'),\n"
        "          'garden': np.array(columns['garden'], 'float32')}\n"
        "print(json.dumps(model.predict(inputs, verbose=0)[:, 0].tolist()))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(path), json.dumps(rows.to_dict("records"), default=bool)],
        capture_output=True, text=True, cwd=ROOT, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert np.allclose(json.loads(out.stdout.strip().splitlines()[-1]), expected, rtol=1e-4)


def test_class_names_travel_with_the_model(tmp_path):
    frame = houses(160, seed=1)
    frame["band"] = pd.cut(frame["price"], 3, labels=["cheap", "mid", "dear"]).astype(str)
    result = kk.fit_table(frame.drop(columns="price"), target="band", epochs=2, seed=0)
    assert result.class_names == ("cheap", "dear", "mid")
    assert result.spec.task == "multiclass" and result.spec.class_names == result.class_names
    path = kk.save_table_model(result.model, tmp_path / "bands.keras")
    loaded = kk.load_table_model(path)
    labels = kk.predict_table(loaded, frame.head(8))
    assert set(labels) <= {"cheap", "mid", "dear"} and labels.shape == (8,)
    assert np.array_equal(labels, result.predict(frame.head(8)))
    proba = kk.predict_table(loaded, frame.head(8), proba=True)
    assert proba.shape == (8, 3) and np.allclose(proba.sum(axis=1), 1, atol=1e-5)
    assert table_metadata(loaded)["class_names"] == ["cheap", "dear", "mid"]


def test_crossed_features_are_built_from_layers_that_run_on_every_backend(trained):
    _, _, result = trained
    crosses = [layer for layer in result.model.layers if type(layer).__name__ == "CrossHash"]
    assert len(crosses) == 2 and crosses[0].num_bins == 16
    assert "Discretization" in {type(layer).__name__ for layer in result.model.layers}


def test_numpy_features_train_a_raw_column_model():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(120, 2))
    y = (x[:, 0] + 0.3 * rng.normal(size=120) > 0).astype(int)
    result = kk.fit_table(x, y=y, epochs=3, seed=0, validation=0.2, test=0)
    assert result.schema.names == ["x0", "x1"] and result.class_names == (0, 1)
    assert set(result.predict({"x0": x[:10, 0], "x1": x[:10, 1]})) <= {0, 1}
    assert set(result.report) == {"validation"}


def test_balanced_class_weight_raises_minority_recall_on_a_95_5_problem():
    rng = np.random.default_rng(0)
    n = 1000
    minority = rng.random(n) < 0.05
    x = rng.normal(size=(n, 2)) + np.where(minority[:, None], 1.4, 0.0)
    frame = pd.DataFrame({"a": x[:, 0], "b": x[:, 1],
                          "label": np.where(minority, "rare", "common")})
    options = dict(epochs=15, seed=0, units=(8,), test=0.3, validation=0.2, patience=None)
    plain = kk.fit_table(frame, target="label", **options)
    balanced = kk.fit_table(frame, target="label", class_weight="balanced", **options)
    assert plain.class_names == ("common", "rare")  # "rare" is the positive class
    recall_plain = plain.report["test"]["recall"]
    recall_balanced = balanced.report["test"]["recall"]
    assert recall_balanced >= recall_plain + 0.3, (recall_plain, recall_balanced)


def test_streaming_path_trains_from_disk_and_matches_the_schema(tmp_path, monkeypatch):
    monkeypatch.setattr(csvfile, "BLOCK_BYTES", 4096)  # several blocks even for a small file
    frame = houses(300, seed=4)
    frame["area"] = frame["area"].astype(object)
    frame.loc[::40, "area"] = "?"  # a token that means "missing" in this file
    path = tmp_path / "big.csv"
    frame.to_csv(path, index=False)
    result = kk.fit_table(path, target="price", streaming=True, batch_size=16, epochs=8,
                          seed=0, units=(32,), learning_rate=0.01, na_values=["?"])
    assert [c.kind for c in result.schema.columns] == \
        ["numeric", "string_categorical", "integer_categorical", "boolean"]
    assert sum(result.splits.values()) == 300 and result.splits["test"] == 45
    assert result.report["test"]["r2"] > 0.5, result.report
    assert result.schema["area"].kind == "numeric"
    # The file's own "missing" token is kept in the model, so new rows read the same way.
    assert table_metadata(result.model)["na_values"] == ["?"]
    predicted = kk.predict_table(result.model, path)
    assert predicted.shape == (300,) and np.isfinite(predicted).all()
