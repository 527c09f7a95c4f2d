"""kerakit.tune: the tuners, the k-fold objective, option groups, results, checks, resume."""


import numpy as np
import pytest

import kerakit as kk
from kerakit.errors import ConfigError
from kerakit.tuning import CrossValidation, Refit

# Backend-neutral: CI runs this file on TensorFlow and again on JAX (scripts/dev.py).
pytestmark = pytest.mark.backends

GRIDS_WITH_DROPOUT_1 = [{"units": [5, 8, 10], "dropout": [.4, .6, .8]},
               {"units": [10, 15], "dropout": [.6, .8, 1.0]}]
VALID_GRIDS = [{"units": [5, 8, 10], "dropout": [.4, .6, .8]},
               {"units": [10, 15], "dropout": [.6, .8, .9]}]


@pytest.fixture(scope="module")
def three_digits():
    """120 digit images of 0, 1 and 2, scaled to [0, 1]."""
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    keep = np.flatnonzero(y < 3)[:120]
    return (x[keep] / 16).astype(np.float32), y[keep]



# Searches -----------------------------------------------------------------


@pytest.mark.once
def test_union_of_grids_runs_exactly_45_fits_with_out_of_fold_predictions(three_digits, tmp_path, capsys):
    x, y = three_digits
    spec = kk.ProblemSpec(task="multiclass", num_classes=3)
    result = kk.tune(spec, x, y, VALID_GRIDS, tuner="grid", cv=3, epochs=1, patience=None,
                     directory=tmp_path, verbose=1)
    out = capsys.readouterr().out
    assert "15 candidates × 3 folds = 45 fits" in out
    assert result.fits == 45
    table = result.trials
    assert len(table) == 15 and set(table["status"]) == {"COMPLETED"}
    assert sorted(zip(table["grid"], table["units"], table["dropout"], strict=True)) == sorted(
        (g + 1, u, d) for g, grid in enumerate(VALID_GRIDS) for u in grid["units"] for d in grid["dropout"])
    assert {"val_loss", "val_loss_std", "fold_0", "fold_2", "epochs", "seconds"} <= set(table.columns)
    best = table.loc[table["val_loss"].idxmin()]
    assert result.best_trial_id == best["trial"] and result.best_score == pytest.approx(best["val_loss"])
    assert result.best_score_std == pytest.approx(np.std(best[["fold_0", "fold_1", "fold_2"]].to_numpy(float)))
    # Out-of-fold predictions of the best candidate: one probability row per training row.
    oof = result.oof_predictions
    assert oof.shape == (len(x), 3) and not np.isnan(oof).any()
    np.testing.assert_allclose(oof.sum(axis=1), 1.0, atol=1e-4)
    np.testing.assert_array_equal(np.load(result.directory / "oof_predictions.npy"), oof)
    saved = (result.directory / "trials.csv").read_text().splitlines()
    assert len(saved) == 16 and saved[0].startswith("trial,status,grid,units,dropout")
    assert (result.directory / "trials.png").stat().st_size > 1000
    assert result.best_model.predict(x[:4], verbose=0).shape == (4, 3)


def test_a_grid_with_dropout_1_is_refused_before_any_fit(three_digits, tmp_path):
    x, y = three_digits
    spec = kk.ProblemSpec(task="multiclass", num_classes=3)
    with pytest.raises(ConfigError, match=r"grid 2 of the search space, dropout=1\.0 cannot be used"):
        kk.tune(spec, x, y, GRIDS_WITH_DROPOUT_1, tuner="grid", cv=3, directory=tmp_path, verbose=0)
    assert not list(tmp_path.glob("search/trial_*"))


@pytest.mark.once
def test_scipy_distributions_are_sampled(cancer, tmp_path):
    import scipy.stats

    x, y = cancer
    space = {"dropout": scipy.stats.uniform(0.1, 0.3), "learning_rate": scipy.stats.loguniform(1e-3, 1e-1),
             "units": scipy.stats.randint(4, 9)}
    result = kk.tune(kk.ProblemSpec(task="binary"), x, y, space, max_trials=3, epochs=1,
                     directory=tmp_path, verbose=0)
    table = result.trials
    assert table["dropout"].between(0.1, 0.4).all() and table["units"].between(4, 8).all()
    assert table["learning_rate"].between(1e-3, 1e-1).all() and table["dropout"].nunique() == 3
    assert all(float(u).is_integer() for u in table["units"])


@pytest.mark.parametrize("tuner, options", [
    ("random", dict(max_trials=2)),
    pytest.param("bayesian", dict(max_trials=2, refit=Refit(ensemble=True), cv=2), marks=pytest.mark.once),
    pytest.param("hyperband", dict(max_trials=4, cv=2, epochs=3), marks=pytest.mark.once),
])
def test_each_tuner_searches_the_default_space(cancer, tmp_path, tuner, options):
    x, y = cancer
    spec = kk.ProblemSpec(task="binary")
    result = kk.tune(spec, x, y, tuner=tuner, objective="val_auc", directory=tmp_path,
                     epochs=options.pop("epochs", 2), verbose=0, **options)
    table = result.trials
    # "val_auc" is found in every trial: metric names do not drift to auc_1, auc_2...
    assert len(table) == options["max_trials"] and set(table["status"]) == {"COMPLETED"}
    assert result.direction == "max" and result.best_score == table["val_auc"].max()
    assert {"depth", "units_0", "dropout", "l2", "optimizer", "learning_rate", "batch_size"} <= set(table)
    assert set(table["optimizer"]) <= {"adam", "rmsprop", "sgd", "adagrad"}
    if tuner == "hyperband":  # later rounds continue earlier trials for more epochs
        assert result.plan.startswith("up to 4 candidates × 2 folds")
        assert (table["epochs"] > 1).any()
    if isinstance(options.get("refit"), Refit):
        assert len(result.fold_models) == 2
        both = np.mean([m.predict(x[:3], verbose=0) for m in result.fold_models], axis=0)
        np.testing.assert_allclose(result.ensemble.predict(x[:3], verbose=0), both, atol=1e-5)
    assert result.best_model.predict(x[:3], verbose=0).shape == (3, 1)


def test_a_build_function_and_its_own_metrics(cancer, tmp_path):
    import keras

    x, y = cancer

    def build(hp):
        model = keras.Sequential([keras.Input((x.shape[1],)),
                                  keras.layers.Dense(hp.Choice("width", [4, 8]), activation="relu"),
                                  keras.layers.Dense(1, activation="sigmoid")])
        # A fresh AUC() is named "auc_1", "auc_2"... unless the session is cleared per model.
        model.compile(optimizer="adam", loss="binary_crossentropy", metrics=[keras.metrics.AUC()])
        return model

    spec = kk.ProblemSpec(task="binary")
    with pytest.raises(ConfigError, match=r"'val_accuracy' is not a metric.*Available: 'loss', 'auc'"):
        kk.tune(spec, x, y, build, objective="val_accuracy", directory=tmp_path, verbose=0)
    result = kk.tune(spec, x, y, build, tuner="grid", objective="val_auc", epochs=2,
                     directory=tmp_path, project_name="own", verbose=0)
    table = result.trials
    assert sorted(table["width"]) == [4, 8] and set(table["status"]) == {"COMPLETED"}
    assert table["val_auc"].notna().all() and result.direction == "max"


def test_objectives_are_checked_before_the_first_trial(cancer, tmp_path):
    x, y = cancer
    binary = kk.ProblemSpec(task="binary")
    with pytest.raises(ConfigError, match="needs validation data"):
        kk.tune(binary, x, y, objective="val_auc", cv=CrossValidation(validation_split=0),
                directory=tmp_path, verbose=0)
    with pytest.raises(ConfigError, match=r"'val_rmse' is not a metric.*Available: 'loss', 'accuracy'"):
        kk.tune(binary, x, y, objective="val_rmse", directory=tmp_path, verbose=0)
    with pytest.raises(ConfigError, match="Did you mean 'dropout'"):
        kk.tune(binary, x, y, {"dropuot": [0.1, 0.2]}, directory=tmp_path, verbose=0)
    with pytest.raises(kk.KerakitError, match="Unknown tuner 'gird'. Did you mean 'grid'"):
        kk.tune(binary, x, y, tuner="gird", directory=tmp_path, verbose=0)
    assert not list(tmp_path.rglob("trial_*"))


@pytest.mark.once
def test_resuming_a_different_search_in_the_same_folder_is_refused(cancer, tmp_path):
    x, y = cancer
    spec = kk.ProblemSpec(task="binary")
    space = {"units": [4, 8]}
    kk.tune(spec, x, y, space, tuner="grid", max_trials=1, epochs=1, directory=tmp_path, verbose=0)
    with pytest.raises(ConfigError, match="different data"):
        kk.tune(spec, x[:90], y[:90], space, tuner="grid", epochs=1, directory=tmp_path, verbose=0)
    # Same search, larger budget: it resumes and runs only the candidate left.
    again = kk.tune(spec, x, y, space, tuner="grid", epochs=1, directory=tmp_path, verbose=0)
    assert again.fits == 1 and len(again.trials) == 2 and "resuming: 1 done" in again.plan


@pytest.mark.parametrize("option, value", [("epochs", 0), ("batch_size", 0), ("max_trials", 0),
                                           ("cv", 1), ("epochs", 2.5), ("patience", -1)])
def test_counts_that_would_leave_the_search_empty_are_refused_before_searching(cancer, tmp_path,
                                                                                option, value):
    # epochs=0 or batch_size=0 would return best_model=None, best_score=nan.
    x, y = cancer
    with pytest.raises(ConfigError, match=f"`{option}` must be"):
        kk.tune(kk.ProblemSpec(task="binary"), x, y, {"units": [4]}, tuner="grid",
                directory=tmp_path, verbose=0, **{option: value})
    assert not list(tmp_path.iterdir())


@pytest.mark.slow
def test_a_resumed_search_scores_its_trials_as_an_uninterrupted_one(cancer, tmp_path):
    # The second trial must not depend on how many trials ran before it
    # in the same process (the reused input pipeline had reshuffled once per earlier epoch).
    x, y = cancer
    spec = kk.ProblemSpec(task="binary")
    options = dict(space={"units": [(4,), (6,)]}, tuner="grid", epochs=1, patience=None,
                   batch_size=16, refit=False, verbose=0, seed=0)
    whole = kk.tune(spec, x, y, max_trials=2, directory=tmp_path / "whole", **options)
    kk.tune(spec, x, y, max_trials=1, directory=tmp_path / "resumed", **options)
    resumed = kk.tune(spec, x, y, max_trials=2, directory=tmp_path / "resumed", overwrite=False,
                      **options)
    assert resumed.fits == 1 and "resuming: 1 done" in resumed.plan
    assert whole.trials["val_loss"].tolist() == resumed.trials["val_loss"].tolist()


def test_a_build_function_with_a_preprocessor_is_refused(cancer, tmp_path):
    x, y = cancer
    spec = kk.ProblemSpec(task="binary")

    def build(hp):
        return kk.build_model(spec, input_shape=(x.shape[1],), hp=hp)

    with pytest.raises(ConfigError, match="put the preprocessing layer inside it"):
        kk.tune(spec, x, y, build, max_trials=1, epochs=1, preprocessor=object,
                directory=tmp_path, verbose=0)


def test_a_search_folder_that_is_a_file_is_refused_before_anything_trains(cancer, tmp_path):
    x, y = cancer
    spec = kk.ProblemSpec(task="binary")
    taken = tmp_path / "taken"
    taken.write_text("mine")
    for directory, project_name in ((taken, "search"), (taken / "below", "search"), (tmp_path, "taken")):
        with pytest.raises(ConfigError, match=r"taken is a file, not a folder.*Received: directory="):
            kk.tune(spec, x, y, {"units": [4]}, tuner="grid", directory=directory,
                    project_name=project_name, verbose=0)
    assert taken.read_text() == "mine" and sorted(p.name for p in tmp_path.iterdir()) == ["taken"]


@pytest.mark.parametrize("keyword, value, message", [
    ("cv", True, "`cv` must be a number of folds"),
    ("refit", "yes", "`refit` must be True, False or a kerakit.tuning.Refit"),
    ("distribution", {"isolate": True}, "`distribution` must be a kerakit.tuning.Distribution"),
])
def test_option_groups_and_their_shortcuts_are_checked(cancer, tmp_path, keyword, value, message):
    x, y = cancer
    with pytest.raises(ConfigError, match=message):
        kk.tune(kk.ProblemSpec(task="binary"), x, y, {"units": [4]}, tuner="grid",
                directory=tmp_path, verbose=0, **{keyword: value})


def test_validation_data_and_no_refit_through_the_option_groups(cancer, tmp_path):
    x, y = cancer
    result = kk.tune(kk.ProblemSpec(task="binary"), x[:70], y[:70], {"units": [4]}, tuner="grid",
                     cv=CrossValidation(validation_data=(x[70:], y[70:])), refit=False, epochs=1,
                     directory=tmp_path, verbose=0)
    assert result.best_model is None and result.plan.endswith("1 validation split = 1 fits")
    assert np.isfinite(result.best_score)
