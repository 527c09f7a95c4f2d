"""Folds, objective checks and cross_validate with out-of-fold predictions."""

import keras
import numpy as np
import pytest

import kerakit as kk
from kerakit.crossval import (
    FoldRunner,
    check_objective,
    iterative_stratification,
    logged_names,
    make_folds,
    objective_direction,
)
from kerakit.errors import ConfigError, DataError

# Backend-neutral: CI runs this file on TensorFlow and again on JAX (scripts/dev.py).
pytestmark = pytest.mark.backends



def _partition(folds, n):
    vals = np.concatenate([v for _, v in folds])
    assert sorted(vals.tolist()) == list(range(n))  # every row held out exactly once
    for train, val in folds:
        assert not set(train) & set(val) and len(train) + len(val) == n


def test_multiclass_folds_are_stratified():
    y = np.repeat([0, 1, 2], [30, 15, 9])
    folds = make_folds(kk.ProblemSpec(task="multiclass", num_classes=3), y, 3, seed=1)
    _partition(folds, len(y))
    for _, val in folds:
        assert np.bincount(y[val], minlength=3).tolist() == [10, 5, 3]


def test_onehot_labels_are_stratified_on_their_class():
    y = np.eye(3)[np.repeat([0, 1, 2], [12, 6, 6])]
    folds = make_folds(kk.ProblemSpec(task="multiclass", num_classes=3, label_format="onehot"), y, 3)
    for _, val in folds:
        assert y[val].sum(axis=0).tolist() == [4, 2, 2]


def test_regression_folds_are_a_shuffled_partition():
    y = np.linspace(0, 1, 20)
    folds = make_folds(kk.ProblemSpec(task="regression"), y, 4, seed=0)
    _partition(folds, 20)
    assert folds[0][1].tolist() != list(range(5))  # shuffled, not the first five rows


def test_iterative_stratification_keeps_each_labels_share():
    rng = np.random.default_rng(0)
    y = (rng.random((90, 4)) < [0.5, 0.2, 0.1, 0.05]).astype(int)
    folds = iterative_stratification(y, 3, seed=0)
    _partition(folds, len(y))
    totals = y.sum(axis=0)
    for _, val in folds:
        share = y[val].sum(axis=0)
        assert np.all(np.abs(share - totals / 3) <= 1.0 + 1e-9), (share, totals)
    spec = kk.ProblemSpec(task="multilabel", num_labels=4)
    assert [v.tolist() for _, v in make_folds(spec, y, 3)] == [v.tolist() for _, v in folds]


def test_too_few_rows_of_a_class_is_refused_with_the_counts():
    y = np.array([0] * 10 + [1] * 2)
    with pytest.raises(DataError, match=r"at least 3 rows of every class.*\{1: 2\}.*folds=2"):
        make_folds(kk.ProblemSpec(task="binary"), y, 3)
    with pytest.raises(ConfigError, match="`folds` must be >= 2"):
        make_folds(kk.ProblemSpec(task="binary"), y, 1)


def test_objective_names_and_directions():
    names = logged_names(("accuracy", "auc"), has_validation=True)
    assert names == ["loss", "accuracy", "auc", "val_loss", "val_accuracy", "val_auc"]
    assert objective_direction("val_auc") == "max" and objective_direction("val_rmse") == "min"
    with pytest.raises(ConfigError, match="needs validation data"):
        check_objective("val_auc", logged_names(("auc",), False), False)
    with pytest.raises(ConfigError, match=r"Did you mean 'val_accuracy'.*Available: 'loss'"):
        check_objective("val_acuracy", names, True)


def test_cross_validate_gives_fold_scores_and_out_of_fold_predictions(cancer_120):
    x, y = cancer_120
    spec = kk.ProblemSpec(task="binary")
    result = kk.cross_validate(spec, x, y, folds=3, epochs=4, patience=2, units=(16,),
                               learning_rate=1e-2, return_models=True)
    assert len(result.scores) == 3 and len(result.best_epochs) == 3
    assert result.std == pytest.approx(np.std(result.scores))
    assert result.oof_predictions.shape == (len(x), 1)
    assert not np.isnan(result.oof_predictions).any()
    assert result.oof_report["n"] == len(x)
    assert result.oof_report["accuracy"] > 0.85  # well above the 0.63 majority rate
    assert set(result.fold_metrics) >= {"val_loss", "val_auc"} and "± " in result.summary()
    # Out-of-fold: each row's prediction comes from the one model that did not train on it.
    fold, (_, val) = 1, result.folds[1]
    own = keras.ops.convert_to_numpy(result.models[fold](x[val], training=False))
    np.testing.assert_allclose(result.oof_predictions[val], own, atol=1e-5)
    ensemble = result.ensemble()
    members = np.mean([keras.ops.convert_to_numpy(m(x[:5], training=False)) for m in result.models], axis=0)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(ensemble(x[:5], training=False)), members,
                               atol=1e-5)


def test_fold_runner_builds_each_pipeline_once(cancer_120):
    x, y = cancer_120
    spec = kk.ProblemSpec(task="binary")
    runner = FoldRunner(spec, x, y, make_folds(spec, y, 2), seed=0)
    first = runner.pipelines(0, 32)
    assert runner.pipelines(0, 32) is first and runner.pipelines(0, 16) is not first


@pytest.mark.parametrize("folds, error, match", [
    ([(np.arange(60), np.arange(60, 120)), ([], np.arange(60))], DataError, "has no train rows"),
    ([(np.arange(60), np.arange(60, 121)), (np.arange(60, 120), np.arange(60))], DataError,
     r"indices \[120\] lie outside the 120 rows"),
    ([(np.arange(60, 120), np.arange(50)), (np.arange(60), np.arange(60, 120))], DataError,
     r"exactly once.*10 row\(s\) are in none"),
    ([(np.arange(100), np.arange(60)), (np.arange(60, 120), np.arange(60, 120))], DataError,
     "validates on rows it also trains on"),
    ([(np.arange(60), np.arange(60, 120))], ConfigError, "at least 2"),
    ([np.arange(60), np.arange(60, 120)], ConfigError, "must be a pair"),
])
def test_cross_validate_refuses_folds_that_do_not_partition_the_rows(cancer_120, folds, error, match):
    x, y = cancer_120
    with pytest.raises(error, match=match):
        kk.cross_validate(kk.ProblemSpec(task="binary"), x, y, folds=folds, epochs=1)


def test_cross_validate_refuses_bad_options_before_training(cancer_120):
    x, y = cancer_120
    spec = kk.ProblemSpec(task="binary")
    with pytest.raises(ConfigError, match="val_accuracy"):
        kk.cross_validate(spec, x, y, folds=2, monitor="val_acc")
    with pytest.raises(ConfigError, match="dropout"):
        kk.cross_validate(spec, x, y, folds=2, dropout=1.5)
