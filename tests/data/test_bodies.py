"""The "table" body (robust scaling, piecewise-linear encodings, a TabM-style ensemble), the
automatic target transform, and the defaults fit_table and the csv recipe share."""

import inspect

import keras
import numpy as np
import pandas as pd
import pytest

import kerakit as kk
from kerakit import layers
from kerakit.data.bodies import TABLE_DEFAULTS, table_options
from kerakit.data.targets import TargetEncoder, auto_target_transform
from kerakit.errors import ConfigError


def _round_trip(layer, x, tmp_path):
    inputs = keras.Input(shape=x.shape[1:])
    model = keras.Model(inputs, layer(inputs))
    path = tmp_path / "layer.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    return np.asarray(model.predict(x, verbose=0)), np.asarray(loaded.predict(x, verbose=0))


@pytest.mark.parametrize("make, shape", [
    (lambda: layers.SmoothClip(1.0, 2.0), (5, 1)),
    (lambda: layers.PiecewiseLinearEncoding([-1.0, 0.0, 0.5, 2.0]), (5, 1)),
    (lambda: layers.EnsembleDense(6, members=3, activation="relu", random_signs=True), (5, 4)),
    (lambda: layers.EnsembleHead(2, activation="softmax"), (5, 3, 4)),
    (lambda: layers.EnsembleMean(), (5, 3, 2)),
    (lambda: layers.ValueIndicators([-1.0, 0.0, 2.5]), (5, 1)),
])
def test_table_layers_predict_identically_after_load_model(make, shape, tmp_path):
    x = np.random.default_rng(0).normal(size=shape).astype("float32") * 3
    before, after = _round_trip(make(), x, tmp_path)
    np.testing.assert_allclose(before, after, rtol=1e-6, atol=1e-6)


def test_smooth_clip_is_monotone_and_bounded():
    x = np.array([[-1e6], [-1.0], [0.0], [1.0], [1e6]], dtype="float32")
    y = np.asarray(layers.SmoothClip(0.0, 1.0, limit=3.0)(x))[:, 0]
    assert np.all(np.diff(y) > 0) and np.abs(y).max() <= 3.0 + 1e-4
    assert y[2] == 0.0 and abs(y[3] - 1 / np.sqrt(1 + 1 / 9)) < 1e-6


def test_piecewise_linear_encoding_fills_bins_up_to_the_value():
    encode = layers.PiecewiseLinearEncoding([0.0, 1.0, 3.0, 4.0])
    out = np.asarray(encode(np.array([[2.0], [-1.0], [5.0]], dtype="float32")))
    np.testing.assert_allclose(out, [[1.0, 0.5, 0.0], [-1.0, 0.0, 0.0], [1.0, 1.0, 2.0]])
    with pytest.raises(ConfigError, match="ascending"):
        layers.PiecewiseLinearEncoding([0.0, 0.0])


def test_the_ensemble_averages_k_distinct_members():
    x = np.random.default_rng(1).normal(size=(7, 5)).astype("float32")
    dense = layers.EnsembleDense(8, members=4, activation="relu", random_signs=True)
    head = layers.EnsembleHead(3, activation="softmax")
    members = np.asarray(head(dense(x)))
    assert members.shape == (7, 4, 3)
    # Random-sign adapters start the members apart; each member's probabilities sum to 1.
    assert np.abs(members[:, 0] - members[:, 1]).max() > 1e-3
    np.testing.assert_allclose(members.sum(-1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(layers.EnsembleMean()(members)), members.mean(axis=1),
                               rtol=1e-6)
    # Shared kernel, per-member adapters and biases: k members cost far less than k layers.
    assert dense.kernel.shape == (5, 8) and dense.r.shape == (4, 5) and dense.bias.shape == (4, 8)


def test_auto_target_transform_picks_log1p_for_a_skewed_count_only():
    rng = np.random.default_rng(0)
    counts = rng.negative_binomial(1.0, 1.0 / (1.0 + np.exp(rng.normal(1.0, 1.0, 2000))))
    assert auto_target_transform(counts) == "log1p"
    assert auto_target_transform(rng.normal(50, 10, 2000)) == "standardize"
    assert auto_target_transform(rng.uniform(0, 10, 2000)) == "standardize"
    assert auto_target_transform(counts - 5) == "standardize"  # negative values: no log1p
    encoder = TargetEncoder("regression").fit(pd.Series(counts.astype(float)), "visits")
    assert encoder.transform_["kind"] == "log1p"
    assert TargetEncoder("regression", "standardize").fit(
        pd.Series(counts.astype(float))).transform_["kind"] == "standardize"


def test_fit_table_and_the_csv_recipe_share_the_table_defaults():
    from kerakit import recipes

    defaults = inspect.signature(kk.fit_table).parameters
    assert defaults["epochs"].default == "auto"  # TABLE_DEFAULTS.epochs_for, at most .epochs
    assert TABLE_DEFAULTS.epochs_for(1) == TABLE_DEFAULTS.epochs
    assert defaults["patience"].default == TABLE_DEFAULTS.patience
    config = recipes.load("csv").Config()
    # epochs, batch size and members: None, fit_table's plan by row count (the recipe's `plan`).
    assert (config.body, config.epochs, config.batch_size, config.patience, config.units, config.members,
            config.learning_rate, config.dropout) == (
        TABLE_DEFAULTS.body, None, None, TABLE_DEFAULTS.patience,
        TABLE_DEFAULTS.units, None, TABLE_DEFAULTS.learning_rate,
        TABLE_DEFAULTS.dropout)
    assert TABLE_DEFAULTS.body == "table"
    # build_model's "table" body starts from the same network.
    import keras_tuner

    from kerakit import bodies
    hp = keras_tuner.HyperParameters()
    bodies.table(kk.ProblemSpec(task="regression"), hp)
    assert (hp.get("members"), hp.get("dropout"), tuple(hp.get(f"units_{i}")
            for i in range(hp.get("depth")))) == (TABLE_DEFAULTS.members, TABLE_DEFAULTS.dropout,
                                                  TABLE_DEFAULTS.units)


def test_table_options_name_the_valid_ones():
    assert table_options(units=32)["units"] == (32,)
    with pytest.raises(ConfigError, match="members, units"):
        table_options(l2=1e-4)
    with pytest.raises(ConfigError, match="members"):
        table_options(members=0)


def _counts_frame(n=300, seed=0):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"a": rng.normal(size=n), "b": rng.exponential(size=n),
                          "city": rng.choice(["x", "y", "z"], n)})
    frame.loc[::17, "b"] = np.nan
    frame["visits"] = rng.poisson(np.exp(frame.a + (frame.city == "x")))
    return frame


@pytest.mark.slow
def test_fit_table_defaults_to_the_table_body_and_its_saved_model_predicts_raw_rows(tmp_path):
    frame = _counts_frame()
    result = kk.fit_table(frame, target="visits", task="regression", epochs=2, seed=0,
                          units=(16,), members=2)
    metadata = kk.table_metadata(result.model)
    assert metadata["body"] == "table" and metadata["target_transform"]["kind"] == "log1p"
    # Duan's smearing, measured on the validation rows, turns exp(log answer) into a mean.
    assert 0.0 < metadata["target_transform"]["smearing"] < 100.0
    names = {type(layer).__name__ for layer in result.model.layers}
    assert {"SmoothClip", "PiecewiseLinearEncoding", "EnsembleDense", "EnsembleHead",
            "EnsembleMean"} <= names
    assert result.model.get_layer("ensemble_output").output.shape[1:] == (2, 1)
    path = kk.save_table_model(result.model, tmp_path / "visits.keras")
    loaded = kk.load_table_model(path)
    rows = frame.head(20).drop(columns="visits")
    np.testing.assert_allclose(kk.predict_table(loaded, rows), kk.predict_table(result.model, rows),
                               rtol=1e-5)
    assert isinstance(loaded.optimizer, keras.optimizers.AdamW)


@pytest.mark.slow
def test_the_csv_recipe_records_the_body_and_the_defaults_in_its_manifest(tmp_path):
    import json

    from kerakit import cli

    assert cli.main(["run", "csv", "--smoke", "--units", "16", "--members", "2",
                     "--runs-dir", str(tmp_path), "--quiet"]) == 0
    run_dir = next((tmp_path / "csv").iterdir())
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "completed" and manifest["body"] == "table"
    assert manifest["config"]["body"] == "table" and manifest["config"]["members"] == 2
    assert manifest["table_defaults"] == TABLE_DEFAULTS.to_dict()


def test_build_model_table_body_is_an_ensemble_with_one_head_per_member(tmp_path):
    spec = kk.ProblemSpec(task="multiclass", num_classes=3)
    model = kk.build_model(spec, input_shape=(5,), body="table", units=(16, 8), members=3,
                           dropout=0.0, optimizer="adamw", seed=0)
    assert model.get_layer("ensemble_dense_1").output.shape[1:] == (3, 8)
    assert model.get_layer("ensemble_output").output.shape[1:] == (3, 3)
    x = np.random.default_rng(0).normal(size=(6, 5)).astype("float32")
    probabilities = np.asarray(model.predict(x, verbose=0))
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, rtol=1e-5)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(np.asarray(loaded.predict(x, verbose=0)), probabilities, rtol=1e-5)
    with pytest.raises(ConfigError, match="no option"):
        kk.build_model(spec, input_shape=(5,), body="table", l2=1e-3)
    with pytest.raises(ConfigError, match="members"):
        kk.build_model(spec, input_shape=(5,), body="table", members=0)
    with pytest.raises(ConfigError, match="rows of numbers"):
        kk.build_model(spec, input_shape=(4, 4), body="table")


def test_tune_searches_the_table_body_default_space(tmp_path):
    from kerakit.tuning.spaces import BODY_SPACES

    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 4)).astype("float32")
    y = (x[:, 0] * x[:, 1] > 0).astype(int)
    result = kk.tune(kk.infer_spec(y), x, y, body="table", max_trials=2, epochs=2,
                     directory=tmp_path, verbose=0)
    searched = set(BODY_SPACES["table"][0])
    assert len(result.trials) == 2
    assert {"members", "depth", "units_0", "learning_rate"} <= set(result.best_hyperparameters)
    assert set(result.best_hyperparameters) <= searched
    assert result.best_hyperparameters["members"] in (4, 8, 16)
    assert result.best_model.get_layer("ensemble_output").output.shape[1] == \
        result.best_hyperparameters["members"]
    assert isinstance(result.best_model.optimizer, keras.optimizers.AdamW)


def test_kerakit_tune_body_flag_searches_the_table_space(tmp_path, capsys):
    import json

    from kerakit import cli

    code = cli.main(["tune", "breast_cancer", "--body", "table", "--max-trials", "2",
                     "--epochs", "2", "--directory", str(tmp_path), "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["best_hyperparameters"]["optimizer"] == "adamw"
    assert report["best_hyperparameters"]["members"] in (4, 8, 16)
    # Resumed, stdout is still the JSON alone (Keras Tuner's "Reloading Tuner" goes to stderr).
    assert cli.main(["tune", "breast_cancer", "--body", "table", "--max-trials", "2",
                     "--epochs", "2", "--directory", str(tmp_path), "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["best_trial"] == report["best_trial"] and "Reloading" in err
    code = cli.main(["tune", "breast_cancer", "--body", "tabel", "--max-trials", "1",
                     "--epochs", "1", "--directory", str(tmp_path / "typo")])
    assert code == 1 and "table" in capsys.readouterr().err


def test_smearing_turns_a_log_scale_answer_back_into_a_mean():
    from kerakit.data.targets import smearing_factor

    rng = np.random.default_rng(0)
    residuals = rng.normal(0, 0.8, 200_000)  # log-scale noise around a perfect fit
    # E[exp(e)] for normal e is exp(σ²/2): the factor recovers the mean of a lognormal.
    assert abs(smearing_factor(residuals, np.zeros_like(residuals), scale=1.0)
               - np.exp(0.8 ** 2 / 2)) < 0.01
    assert smearing_factor(residuals / 2, np.zeros_like(residuals), scale=2.0) == \
        pytest.approx(smearing_factor(residuals, np.zeros_like(residuals), scale=1.0))
    assert smearing_factor([], [], scale=1.0) == 1.0
    layer = layers.TableOutput({"target_transform": {"kind": "log1p", "log1p": True,
                                                     "mean": 0.0, "scale": 1.0}})
    x = np.array([[0.0], [1.0]], dtype="float32")
    np.testing.assert_allclose(np.asarray(layer(x)), np.expm1(x), rtol=1e-6)  # old files: 1.0
    layer.set_smearing(1.5)
    np.testing.assert_allclose(np.asarray(layer(x)), np.exp(x) * 1.5 - 1, rtol=1e-6)
    assert layers.TableOutput(layer.metadata)._smearing == 1.5  # kept in the saved config


@pytest.mark.backends
def test_table_models_train_on_encoded_rows_on_every_backend(tmp_path):
    from kerakit.data.train import encode_rows, split_at_features

    rng = np.random.default_rng(0)
    # "mean radius": a column whose name is not a valid layer name (breast_cancer's are such).
    frame = pd.DataFrame({"mean radius": rng.normal(size=240), "b": rng.exponential(size=240),
                          "k": rng.integers(0, 4, 240)})
    frame["visits"] = rng.poisson(np.exp(frame["mean radius"] + (frame.k == 1)))
    result = kk.fit_table(frame, target="visits", task="regression", epochs=3, units=(16,),
                          members=2, seed=0)
    assert len(result.history.history["loss"]) == 3
    # The trainable layers after "features" are the ones that trained: the raw-row model
    # and the features → output view answer alike.
    encode, core = split_at_features(kk.data.training_model(result.model))
    assert core is not None and not encode.trainable_weights
    rows = {k: v[:20] for k, v in kk.data.table_inputs(result.model, frame.head(20)).items()}
    transform = kk.table_metadata(result.model)["target_transform"]
    network = np.asarray(core.predict(encode_rows(encode, rows), verbose=0))[:, 0]
    expected = np.exp(network * transform["scale"] + transform["mean"]) * transform["smearing"] - 1
    np.testing.assert_allclose(kk.predict_table(result.model, frame.head(20)), expected,
                               rtol=1e-4, atol=1e-4)
    path = kk.save_table_model(result.model, tmp_path / "visits.keras")
    np.testing.assert_allclose(kk.predict_table(kk.load_table_model(path), frame.head(20)),
                               expected, rtol=1e-4, atol=1e-4)
    # A text column trains on every backend (encoded on the host off TensorFlow).
    text = frame.assign(city=np.where(frame.k == 1, "x", "y"))
    fitted = kk.fit_table(text, target="visits", task="regression", epochs=1, units=(8,), members=2)
    assert np.isfinite(kk.predict_table(fitted.model, text.head(5))).all()
    assert fitted.model.get_layer("city").kind == "string_categorical"


@pytest.mark.slow
def test_kerakit_tune_csv_searches_the_table_body_on_raw_columns(tmp_path, capsys):
    import json

    from kerakit import cli

    code = cli.main(["tune", "csv", "--smoke", "--body", "table", "--max-trials", "2",
                     "--directory", str(tmp_path), "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["best_hyperparameters"]["members"] in (4, 8, 16)
    assert np.isfinite(report["test_metrics"]["r2"]) and report["test_metrics"]["n"] > 0
    # The searched network joined to the table's preprocessing: a model of raw rows.
    model = kk.load_table_model(report["table_model"])
    metadata = kk.table_metadata(model)
    assert metadata["body"] == "table" and metadata["target"] == "price"
    rows = [{c["name"]: 1 for c in metadata["columns"]}]
    assert np.isfinite(kk.predict_table(model, rows)).all()


def test_the_poisson_transform_is_a_log_link_on_the_training_mean():
    from kerakit.errors import DataError

    visits = pd.Series([0.0, 1.0, 2.0, 5.0, 12.0])
    encoder = TargetEncoder("regression", "poisson").fit(visits, "visits")
    transform = encoder.transform_
    assert (transform["kind"], transform["link"], transform["mean"]) == ("poisson", "log", 0.0)
    assert transform["scale"] == pytest.approx(4.0)
    np.testing.assert_allclose(encoder.encode(visits), visits / 4.0)
    layer = layers.TableOutput({"target_transform": transform})
    np.testing.assert_allclose(np.asarray(layer(np.log(np.array([[0.5], [2.0]], "float32")))),
                               [[2.0], [8.0]], rtol=1e-6)
    # The deviance is smallest where exp(z) is the mean of y.
    y = np.array([[1.0], [3.0]], "float32")
    losses = [float(np.mean(np.asarray(layers.log_poisson(y, np.full((2, 1), np.log(m), "float32")))))
              for m in (1.0, 2.0, 3.0)]
    assert losses[1] < min(losses[0], losses[2])
    with pytest.raises(DataError, match="0 or more"):
        TargetEncoder("regression", "poisson").fit(pd.Series([1.0, -2.0, 3.0]), "delta")


@pytest.mark.slow
def test_fit_table_with_the_poisson_transform_predicts_positive_means(tmp_path):
    frame = _counts_frame(400)
    result = kk.fit_table(frame, target="visits", target_transform="poisson", epochs=3,
                          units=(16,), members=2, seed=0)
    assert set(result.history.history) == {"loss", "val_loss"}  # deviance only
    rows = frame.head(30).drop(columns="visits")
    predicted = kk.predict_table(result.model, rows)
    assert (predicted > 0).all() and np.isfinite(result.report["test"]["r2"])
    path = kk.save_table_model(result.model, tmp_path / "visits.keras")
    np.testing.assert_allclose(kk.predict_table(kk.load_table_model(path), rows), predicted,
                               rtol=1e-5)
    csv = tmp_path / "visits.csv"
    frame.to_csv(csv, index=False)
    with pytest.raises(ConfigError, match="not available when streaming"):
        kk.fit_table(str(csv), target="visits", target_transform="poisson", streaming=True)


def test_kk_ensemble_stays_the_averaging_function_once_the_table_layers_load():
    import kerakit.layers  # noqa: F401  a module named kerakit.ensemble would shadow kk.ensemble

    assert callable(kk.ensemble) and not inspect.ismodule(kk.ensemble)


def test_auto_epochs_and_batches_follow_the_data_size():
    # A budget of rows seen: small tables keep every epoch, large ones train fewer, larger steps.
    sizes = (500, 5_000, 20_000, 50_000, 1_000_000)
    epochs = [TABLE_DEFAULTS.epochs_for(n) for n in sizes]
    assert epochs[:2] == [TABLE_DEFAULTS.epochs] * 2 and epochs == sorted(epochs, reverse=True)
    assert epochs[-1] == TABLE_DEFAULTS.min_epochs < epochs[2]
    batches = [TABLE_DEFAULTS.batch_size_for(n) for n in sizes]
    assert batches == sorted(batches) and batches[-1] == TABLE_DEFAULTS.max_batch_size == 1024
    assert TABLE_DEFAULTS.batch_size_for(20_000) == 256  # mid-sized tables as before


@pytest.mark.backends
def test_fit_table_plans_auto_epochs_from_the_row_budget(monkeypatch):
    import dataclasses

    from kerakit.data import fit

    monkeypatch.setattr(fit, "TABLE_DEFAULTS",
                        dataclasses.replace(TABLE_DEFAULTS, row_budget=120, min_epochs=2))
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=80), "y": rng.normal(size=80)})
    result = kk.fit_table(frame, target="y", units=(8,), members=2, patience=None)
    assert result.splits["train"] == 56 and len(result.history.epoch) == 3  # ceil(120 / 56)
    result = kk.fit_table(frame, target="y", units=(8,), members=2, patience=None, epochs=1)
    assert len(result.history.epoch) == 1  # explicit epochs win


@pytest.mark.backends
def test_few_values_gives_numbers_with_few_distinct_values_value_indicators():
    rng = np.random.default_rng(0)
    code = rng.integers(0, 20, 300).astype(float)  # 20 values: a number, not a category
    effect = rng.normal(0, 2, 20)
    frame = pd.DataFrame({"code": code, "x": rng.normal(size=300), "y": effect[code.astype(int)]})
    plain = kk.fit_table(frame, target="y", epochs=1, units=(8,), members=2, few_values=0)
    assert not [layer for layer in plain.model.layers if layer.name.endswith("_values")]  # off
    result = kk.fit_table(frame, target="y", epochs=1, units=(8,), members=2)  # on by default
    assert result.schema["code"].kind == "numeric"
    names = [layer.name for layer in result.model.layers]
    assert "code_values" in names and "x_values" not in names  # x has 300 distinct values
    indicators = result.model.get_layer("code_values")
    assert indicators.values == [float(v) for v in range(20)]  # the training rows' values
    x = np.array([[3.0], [3.5]], dtype="float32")
    assert np.asarray(indicators(x)).sum(axis=1).tolist() == [1.0, 0.0]  # unseen value: zeros
