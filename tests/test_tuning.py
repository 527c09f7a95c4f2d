"""kerakit.tune: spaces, the four tuners, the k-fold objective, results, checks, the CLI."""

import json
import os

import numpy as np
import pytest

import kerakit as kk
from kerakit.errors import ConfigError
from kerakit.tuning import SearchSpace, plot_trials

# Backend-neutral: CI runs this file on TensorFlow and again on JAX (scripts/dev.py).
pytestmark = pytest.mark.backends

ISSUE_GRIDS = [{"units": [5, 8, 10], "dropout": [.4, .6, .8]},
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



# Search spaces (no training) ------------------------------------------------


def test_union_of_grids_has_fifteen_candidates_in_order():
    space = SearchSpace(VALID_GRIDS)
    assert space.size == 15
    decoded = [space.decode(c, "grid") for c in space.candidates()]
    assert decoded[0] == {"units": 5, "dropout": 0.4}
    assert decoded[-1] == {"units": 15, "dropout": 0.9}
    # (10, .6) and (10, .8) are in both grids: like scikit-learn, both grids run them.
    assert len({tuple(sorted(d.items())) for d in decoded}) == 13


def test_space_entries_map_to_keras_tuner_hyperparameters():
    import scipy.stats

    space = SearchSpace({"units": [(64,), (128, 64)], "depth": (1, 3), "learning_rate": (1e-4, 1e-1, "log"),
                         "dropout": scipy.stats.uniform(0.0, 0.5), "batch_size": 32})
    hp = space.hyperparameters("random")
    kinds = {p.name: type(p).__name__ for p in hp.space}
    assert kinds == {"units": "Choice", "depth": "Int", "learning_rate": "Float", "dropout": "Float",
                     "batch_size": "Fixed"}
    assert hp.space[2].sampling == "log"
    values = space.decode({"units": "(128, 64)", "depth": 2, "learning_rate": 0.01, "dropout": 0.5,
                           "batch_size": 32})
    assert values["units"] == (128, 64) and values["dropout"] == pytest.approx(0.25)
    assert space.size is None


def test_space_mistakes_are_refused_with_the_fix():
    with pytest.raises(ConfigError, match="only tuner='grid'"):
        SearchSpace(VALID_GRIDS).check_for("random")
    with pytest.raises(ConfigError, match=r"\['learning_rate'\] are continuous"):
        SearchSpace({"learning_rate": (1e-4, 1e-1, "log")}).check_for("grid")
    with pytest.raises(ConfigError, match="low < high"):
        SearchSpace({"dropout": (0.5, 0.1)})
    with pytest.raises(ConfigError, match="non-empty dict"):
        SearchSpace([])


# Searches -----------------------------------------------------------------


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


def test_the_issue_grid_with_dropout_1_is_refused_before_any_fit(three_digits, tmp_path):
    x, y = three_digits
    spec = kk.ProblemSpec(task="multiclass", num_classes=3)
    with pytest.raises(ConfigError, match=r"grid 2 of the search space, dropout=1\.0 cannot be used"):
        kk.tune(spec, x, y, ISSUE_GRIDS, tuner="grid", cv=3, directory=tmp_path, verbose=0)
    assert not list(tmp_path.glob("search/trial_*"))


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
    ("bayesian", dict(max_trials=2, ensemble=True, cv=2)),
    ("hyperband", dict(max_trials=4, cv=2, epochs=3)),
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
    if options.get("ensemble"):
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
        kk.tune(binary, x, y, objective="val_auc", validation_split=0, directory=tmp_path, verbose=0)
    with pytest.raises(ConfigError, match=r"'val_rmse' is not a metric.*Available: 'loss', 'accuracy'"):
        kk.tune(binary, x, y, objective="val_rmse", directory=tmp_path, verbose=0)
    with pytest.raises(ConfigError, match="Did you mean 'dropout'"):
        kk.tune(binary, x, y, {"dropuot": [0.1, 0.2]}, directory=tmp_path, verbose=0)
    with pytest.raises(kk.KerakitError, match="Unknown tuner 'gird'. Did you mean 'grid'"):
        kk.tune(binary, x, y, tuner="gird", directory=tmp_path, verbose=0)
    assert not list(tmp_path.rglob("trial_*"))


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
    # Issue 14, item 2: epochs=0 or batch_size=0 returned best_model=None, best_score=nan.
    x, y = cancer
    with pytest.raises(ConfigError, match=f"`{option}` must be"):
        kk.tune(kk.ProblemSpec(task="binary"), x, y, {"units": [4]}, tuner="grid",
                directory=tmp_path, verbose=0, **{option: value})
    assert not list(tmp_path.iterdir())


@pytest.mark.slow
def test_a_resumed_search_scores_its_trials_as_an_uninterrupted_one(cancer, tmp_path):
    # Issue 14, item 21: the second trial must not depend on how many trials ran before it
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


def test_plot_trials_returns_a_figure():
    import pandas as pd
    from matplotlib.figure import Figure

    table = pd.DataFrame({"status": ["COMPLETED"] * 3, "val_auc": [0.7, 0.9, 0.8],
                          "val_auc_std": [0.01, 0.02, 0.0]})
    fig = plot_trials(table, "val_auc", "max")
    assert isinstance(fig, Figure)
    best_line = fig.axes[0].lines[-1].get_ydata()
    assert list(best_line) == [0.7, 0.9, 0.8][:1] + [0.9, 0.9]


# The command line ---------------------------------------------------------

RECIPE = '''"""Tiny binary recipe for the tune command."""
import dataclasses

@dataclasses.dataclass
class Config:
    epochs: int = 3  # most epochs
    seed: int = 0  # seed
    smoke: bool = False  # tiny

def data(config):
    import numpy as np
    from sklearn.datasets import load_breast_cancer
    import kerakit as kk
    x, y = load_breast_cancer(return_X_y=True)
    idx = np.random.default_rng(config.seed).permutation(len(x))[:150]
    x, y = x[idx].astype("float32"), y[idx]
    return {"x_train": x[:90], "y_train": y[:90], "x_val": x[90:120], "y_val": y[90:120],
            "x_test": x[120:], "y_test": y[120:], "spec": kk.ProblemSpec(task="binary")}

def search_space(config):
    return {"units": [4, 8], "learning_rate": [1e-2]}

def run(config, data, run):
    return {}
'''


def test_tune_help_is_instant_and_lists_the_four_tuners():
    import subprocess
    import sys

    from kerakit.tuning import TUNERS

    code = ("import sys; from kerakit import cli\n"
            "try:\n    cli.main(['tune', '--help'])\nexcept SystemExit:\n    pass\n"
            "print('tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    assert out.strip().endswith("False") and "{random,grid,bayesian,hyperband,tpe}" in out
    assert TUNERS == ("random", "grid", "bayesian", "hyperband", "tpe")


@pytest.mark.parametrize("tuner", ["grid", "random", "bayesian", "hyperband"])
def test_kerakit_tune_command_on_a_recipe_file(tmp_path, capsys, tuner):
    from kerakit import cli

    recipe = tmp_path / "tiny_binary.py"
    recipe.write_text(RECIPE)
    code = cli.main(["tune", str(recipe), "--tuner", tuner, "--cv", "2", "--max-trials", "2",
                     "--directory", str(tmp_path / "tuning"), "--json", "--epochs", "2"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["plan"].endswith("2 candidates × 2 folds = " + ("up to " if tuner == "hyperband" else "")
                                   + "4 fits") and report["fits"] == 4
    assert report["best_hyperparameters"]["units"] in (4, 8)
    assert report["test_metrics"]["n"] == 30 and report["test_metrics"]["accuracy"] > 0.6
    folder = tmp_path / "tuning" / "tiny-binary"
    assert {"trials.csv", "trials.png", "best_model.keras", "oof_predictions.npy"} <= set(os.listdir(folder))
    if tuner != "grid":
        return
    # Flags tune does not know go to the recipe's parser, which names the valid ones.
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["tune", str(recipe), "--epoch", "2", "--directory", str(tmp_path)])
    assert exit_info.value.code == 2 and "Did you mean '--epochs'" in capsys.readouterr().err


def test_a_build_function_with_a_preprocessor_is_refused(cancer, tmp_path):
    x, y = cancer
    spec = kk.ProblemSpec(task="binary")

    def build(hp):
        return kk.build_model(spec, input_shape=(x.shape[1],), hp=hp)

    with pytest.raises(ConfigError, match="put the preprocessing layer inside it"):
        kk.tune(spec, x, y, build, max_trials=1, epochs=1, preprocessor=object,
                directory=tmp_path, verbose=0)


def test_cli_report_sorts_trials_by_the_objective_direction(capsys):
    import pandas as pd

    from kerakit.commands.tune import _print_report

    trials = pd.DataFrame({"trial": [0, 1, 2], "status": ["COMPLETED"] * 3,
                           "val_cosine_similarity": [0.2, 0.9, 0.5]})
    _print_report({"role": "chief", "objective": "val_cosine_similarity", "direction": "max",
                   "best_score": 0.9, "best_score_std": 0.0, "best_trial": 1,
                   "best_hyperparameters": {}, "directory": "d", "_trials": trials})
    table = capsys.readouterr().out.split("Best trials:")[1].splitlines()[2:5]
    assert [line.split()[0] for line in table] == ["1", "2", "0"]
