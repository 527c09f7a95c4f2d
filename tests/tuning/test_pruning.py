"""Pruning: trials report their objective every epoch; Optuna's pruners stop the ones that trail."""

import pytest

import kerakit as kk
from kerakit.errors import ConfigError
from kerakit.tuning import Distribution
from kerakit.tuning.pruning import Reporter, TrialPruned

optuna = pytest.importorskip("optuna")


class _Trial:
    """An Optuna trial's reporting side, recording what it is told."""

    def __init__(self, prune_at=None):
        self.reports, self.prune_at = [], prune_at

    def report(self, value, step):
        self.reports.append((step, value))

    def should_prune(self):
        return self.prune_at is not None and self.reports[-1][0] >= self.prune_at


def test_under_folds_each_step_is_the_mean_of_the_folds_trained_so_far():
    trial = _Trial()
    reporter = Reporter(trial, "val_loss", epochs=3)
    reporter.start_fold()
    for epoch, value in enumerate([0.9, 0.7, 0.6]):
        reporter.report(epoch, {"val_loss": value})
    reporter.start_fold()
    reporter.report(0, {"val_loss": 0.5})
    reporter.report(1, {"val_loss": 0.3})  # this fold stops early after epoch 1
    reporter.start_fold()
    reporter.report(0, {"val_loss": 0.2})
    reporter.report(1, {"val_loss": float("nan")})  # not a value: nothing is reported
    steps = dict(trial.reports)
    assert steps[0] == pytest.approx(0.9) and steps[2] == pytest.approx(0.6)
    assert steps[3] == pytest.approx(0.7) and steps[4] == pytest.approx(0.5)  # folds 0-1 at epochs 0, 1
    assert steps[6] == pytest.approx((0.9 + 0.5 + 0.2) / 3) and 7 not in steps
    assert reporter.last == steps[6] and not reporter.pruned


def test_a_pruned_report_raises_at_once():
    reporter = Reporter(_Trial(prune_at=1), "val_auc", epochs=5)
    reporter.start_fold()
    reporter.report(0, {"val_auc": 0.6})
    with pytest.raises(TrialPruned, match="pruned at step 1"):
        reporter.report(1, {"val_auc": 0.61})
    assert reporter.pruned and reporter.curve == {0: 0.6, 1: 0.61}


@pytest.mark.backends
def test_the_median_pruner_stops_trials_that_trail_and_never_picks_them(cancer, tmp_path):
    x, y = cancer
    # Three candidates that learn, then two that diverge: the median pruner
    # (3 finished trials, one warm-up epoch) stops the last two after their second epoch.
    space = {"learning_rate": [0.05, 0.04, 0.03, 5.0, 8.0]}
    result = kk.tune(kk.ProblemSpec(task="binary"), x, y, space, tuner="grid", cv=2, epochs=4,
                     patience=None, pruner="median", refit=False, directory=tmp_path, verbose=0)
    table = result.trials.set_index("learning_rate")
    assert list(table["status"]) == ["COMPLETED"] * 3 + ["PRUNED"] * 2
    assert (table.loc[[5.0, 8.0], "epochs"] == 2).all()  # stopped in the first fold
    assert table.loc[[5.0, 8.0], "val_loss"].min() > table.loc[[0.05, 0.04, 0.03], "val_loss"].max()
    assert result.best_hyperparameters["learning_rate"] in (0.05, 0.04, 0.03)
    # Fewer fits: a pruned trial ends its remaining folds too.
    assert result.fits == 3 * 2 + 2


def test_pruner_names_and_isolated_trials_are_checked(cancer, tmp_path):
    x, y = cancer
    spec = kk.ProblemSpec(task="binary")
    with pytest.raises(kk.KerakitError, match="Did you mean 'median'"):
        kk.tune(spec, x, y, {"units": [4]}, tuner="grid", pruner="medain", directory=tmp_path)
    with pytest.raises(ConfigError, match="cannot prune trials run in a child process"):
        kk.tune(spec, x, y, {"units": [4]}, tuner="grid", pruner="median",
                distribution=Distribution(isolate=True), directory=tmp_path)
    assert not list(tmp_path.iterdir())
