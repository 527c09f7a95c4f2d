"""tune_splits: search on train/validation, refit, one report on the test split, saved models."""

import numpy as np
import pytest

import kerakit as kk
from kerakit.errors import ConfigError
from kerakit.tuning import Refit, tune_splits


def _numeric_splits(cancer):
    x, y = cancer
    x = x * 50 + 100  # far from standardized: the model must scale its inputs itself
    return {"x_train": x[:60], "y_train": y[:60], "x_val": x[60:80], "y_val": y[60:80],
            "x_test": x[80:], "y_test": y[80:], "spec": kk.ProblemSpec(task="binary")}


def test_numeric_splits_are_scaled_inside_the_model_and_reported_once(cancer, tmp_path):
    import keras

    data = _numeric_splits(cancer)
    found = tune_splits(data, {"units": [4, 8]}, tuner="grid", cv=2, epochs=2,
                        refit=Refit(ensemble=True), directory=tmp_path, verbose=0)
    assert found.search.fits == 4 and len(found.search.trials) == 2
    assert found.test_metrics["n"] == 20 and found.ensemble_test_metrics["n"] == 20
    assert found.model_path == found.search.directory / "best_model.keras" and found.model_path.exists()
    assert found.ensemble_path.exists()
    assert any(isinstance(layer, keras.layers.Normalization) for layer in found.model.layers)
    # The saved model takes raw rows, as the reported test metrics did.
    loaded = keras.models.load_model(found.model_path)
    np.testing.assert_allclose(loaded.predict(data["x_test"], verbose=0),
                               found.model.predict(data["x_test"], verbose=0), atol=1e-5)


@pytest.mark.slow
def test_raw_table_columns_give_a_model_of_raw_rows(tmp_path):
    from kerakit import recipes

    module = recipes.load("csv")
    config, _ = recipes.parse_args(module, ["--smoke"], name="csv", prog="test")
    data = recipes.check_data(module.data(config), "csv")
    found = tune_splits(data, body="table", max_trials=1, epochs=1, directory=tmp_path, verbose=0)
    assert found.model_path.name == "table_model.keras" and found.model_path.exists()
    assert found.test_metrics["n"] == len(data["y_test"]) and np.isfinite(found.test_metrics["r2"])
    model = kk.load_table_model(found.model_path)
    assert kk.table_metadata(model)["body"] == "table"


def test_splits_that_are_missing_or_options_it_sets_itself_are_refused(cancer, tmp_path):
    data = _numeric_splits(cancer)
    with pytest.raises(ConfigError, match="missing x_test, y_test"):
        tune_splits({k: v for k, v in data.items() if k not in ("x_test", "y_test")},
                    directory=tmp_path)
    with pytest.raises(ConfigError, match="chooses the preprocessor"):
        tune_splits(data, preprocessor=object, directory=tmp_path)
    assert not list(tmp_path.iterdir())
