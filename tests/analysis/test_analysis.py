"""kerakit.analysis: A/B comparison, permutation importance, ensembles."""

import keras
import numpy as np
import pytest
from scipy.stats import binomtest

import kerakit as kk
from kerakit import analysis
from kerakit.errors import ConfigError, DataError, UnknownNameError

# Backend-neutral: CI runs this file on TensorFlow and again on JAX (scripts/dev.py).
pytestmark = pytest.mark.backends

# Synthetic predictions (no Keras) --------------------------------------------------


def _multiclass_case(n=300, k=4, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k))
    logits[np.arange(n), y] += 1.0
    weak = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    logits[np.arange(n), y] += 2.0
    strong = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return y, weak, strong


def _binary(rng):
    y = rng.integers(0, 2, 200)
    return kk.ProblemSpec(task="binary"), y, np.clip(0.3 * y + 0.35 + rng.normal(0, 0.2, 200), 0.01, 0.99)[:, None]


def _multiclass(rng):
    y, weak, _ = _multiclass_case()
    return kk.ProblemSpec(task="multiclass", num_classes=4), y, weak


def _multilabel(rng):
    y = rng.integers(0, 2, (200, 3))
    return (kk.ProblemSpec(task="multilabel", num_labels=3), y,
            np.clip(0.4 * y + 0.3 + rng.normal(0, 0.2, (200, 3)), 0.01, 0.99))


def _regression(rng):
    y = rng.normal(size=150)
    return kk.ProblemSpec(task="regression"), y, (y + rng.normal(0, 0.5, 150))[:, None]


CASES = {"binary": _binary, "multiclass": _multiclass, "multilabel": _multilabel,
         "regression": _regression}


@pytest.mark.parametrize("task", sorted(CASES))
def test_vectorised_bootstrap_metrics_match_scikit_learn(task):
    # The bootstrap scores thousands of resamples with vectorised code; on the
    # identity "resample" it must give exactly what scikit-learn gives.
    spec, y, pred = CASES[task](np.random.default_rng(1))
    y = kk.validate_labels(spec, y)
    rows = np.arange(len(y))
    names = [name for name, metric in analysis.METRICS.items() if task in metric.tasks]
    assert len(names) >= 4
    for name in names:
        metric = analysis.METRICS[name]
        whole = metric(spec, y, pred)
        resampled = metric.resampled(spec, y, pred, rows[None, :])
        assert resampled.shape == (1,)
        assert resampled[0] == pytest.approx(whole, rel=1e-9, abs=1e-12), name
        # And on a real resample, against scikit-learn on the resampled rows.
        idx = np.random.default_rng(2).integers(0, len(y), (3, len(y)))
        expected = [metric(spec, y[i], pred[i]) for i in idx]
        np.testing.assert_allclose(metric.resampled(spec, y, pred, idx), expected, rtol=1e-9,
                                   atol=1e-12, err_msg=name)


def test_mcnemar_p_value_is_the_exact_binomial_test_on_discordant_rows():
    y, weak, strong = _multiclass_case()
    spec = kk.ProblemSpec(task="multiclass", num_classes=4)
    result = kk.compare_predictions(y, weak, strong, spec, resamples=500)
    right_a, right_b = weak.argmax(1) == y, strong.argmax(1) == y
    only_a, only_b = int(np.sum(right_a & ~right_b)), int(np.sum(~right_a & right_b))
    assert result.test == "McNemar exact"
    assert result.discordant == (only_a, only_b)
    assert result.p_value == pytest.approx(binomtest(only_b, only_a + only_b, 0.5).pvalue)
    assert result.score_b - result.score_a == pytest.approx(right_b.mean() - right_a.mean())
    assert result.significant and result.better == "B"
    assert result.ci_low > 0 and result.ci_low < result.difference < result.ci_high
    assert str(result).startswith("B is better: accuracy")
    assert "95 % CI [" in str(result) and "McNemar exact" in str(result)


def test_swapping_models_flips_the_verdict():
    y, weak, strong = _multiclass_case()
    spec = kk.ProblemSpec(task="multiclass", num_classes=4)
    forward = kk.compare_predictions(y, weak, strong, spec, metric="auc", resamples=500)
    backward = kk.compare_predictions(y, strong, weak, spec, metric="auc", resamples=500)
    assert forward.test == "paired bootstrap"
    # Every resample favours B, so the p-value sits at the bootstrap's floor, 2 / 501.
    assert forward.p_value == pytest.approx(2 / 501) and "p ≤ 0.004" in forward.verdict
    assert forward.better == "B" and backward.better == "A"
    assert forward.difference == pytest.approx(-backward.difference)
    assert forward.ci_low == pytest.approx(-backward.ci_high)


def test_identical_models_are_not_significantly_different():
    y, weak, _ = _multiclass_case()
    spec = kk.ProblemSpec(task="multiclass", num_classes=4)
    for metric in ("accuracy", "f1", "log_loss"):
        result = kk.compare_predictions(y, weak, weak, spec, metric=metric, resamples=300)
        assert not result.significant and result.better is None
        assert result.p_value == 1.0 and result.difference == 0
        assert str(result).startswith("No significant difference")


def test_noise_alone_is_usually_not_significant():
    # Two equally good, independent models: at the 5 % level a difference should
    # be declared in roughly 1 case in 20, not routinely.
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 120)
    spec = kk.ProblemSpec(task="binary")
    significant = 0
    for _ in range(20):
        a = np.where(rng.random(120) < 0.8, y, 1 - y)[:, None].astype(float)
        b = np.where(rng.random(120) < 0.8, y, 1 - y)[:, None].astype(float)
        significant += kk.compare_predictions(y, a, b, spec, resamples=200).significant
    assert significant <= 4


def test_lower_is_better_metric_picks_the_smaller_error():
    rng = np.random.default_rng(4)
    y = rng.normal(size=200)
    spec = kk.ProblemSpec(task="regression")
    close, far = y + rng.normal(0, 0.2, 200), y + rng.normal(0, 1.0, 200)
    result = kk.compare_predictions(y, far, close, spec, metric="rmse", resamples=500)
    assert result.metric == "rmse" and not result.greater_is_better
    assert result.difference < 0 and result.ci_high < 0
    assert result.better == "B" and result.verdict.startswith("B is better: rmse")
    assert analysis.METRICS["rmse"](spec, y, close) == pytest.approx(np.sqrt(np.mean((y - close) ** 2)))


def test_compare_refuses_bad_input_with_helpful_messages():
    y, weak, strong = _multiclass_case()
    spec = kk.ProblemSpec(task="multiclass", num_classes=4)
    with pytest.raises(UnknownNameError, match="Did you mean 'accuracy'"):
        kk.compare_predictions(y, weak, strong, spec, metric="acuracy")
    with pytest.raises(ConfigError, match="does not apply to task='multiclass'.*'accuracy'"):
        kk.compare_predictions(y, weak, strong, spec, metric="rmse")
    with pytest.raises(DataError, match="Model B has 299 prediction rows for 300 labels"):
        kk.compare_predictions(y, weak, strong[:-1], spec)
    nan = strong.copy()
    nan[0, 0] = np.nan
    with pytest.raises(DataError, match="NaN"):
        kk.compare_predictions(y, weak, nan, spec)
    with pytest.raises(DataError, match=r"shape \(300, 3\)"):
        kk.compare_predictions(y, weak[:, :3], strong, spec)
    with pytest.raises(ConfigError, match="confidence"):
        kk.compare_predictions(y, weak, strong, spec, confidence=95)


# Real Keras models -------------------------------------------------------------


@pytest.fixture(scope="module")
def members(digits):
    """Five small digits MLPs, different seeds, briefly trained (shared by the tests below)."""
    x_train, x_test, y_train, y_test = digits
    spec = kk.ProblemSpec(task="multiclass", num_classes=10)
    models = []
    for seed in range(5):
        model = kk.build_model(spec, input_shape=(64,), units=(24,), dropout=0.0, seed=seed)
        kk.fit(model, x_train, y_train, epochs=3, batch_size=64, seed=seed, verbose=0)
        models.append(model)
    return spec, models


def _proba(model, x):
    # An eager call: `model.predict` would trace a function per model, seconds each.
    return keras.ops.convert_to_numpy(model(x, training=False))


def test_ensemble_of_five_is_at_least_as_good_as_its_mean_member(digits, members):
    from kerakit.training import metrics_report

    _, x_test, _, y_test = digits
    spec, models = members
    scores = [metrics_report(spec, y_test, _proba(m, x_test)) for m in models]
    team = kk.ensemble(models)
    team_score = metrics_report(spec, y_test, _proba(team, x_test))
    assert team_score["accuracy"] >= np.mean([s["accuracy"] for s in scores])
    # Averaging probabilities can never raise the mean log loss (it is convex).
    assert team_score["log_loss"] <= np.mean([s["log_loss"] for s in scores]) + 1e-9
    expected = np.mean([_proba(m, x_test) for m in models], axis=0)
    np.testing.assert_allclose(_proba(team, x_test), expected, atol=1e-6)


def test_ensemble_saves_and_loads_in_safe_mode(digits, members, tmp_path):
    _, x_test, _, _ = digits
    _, models = members
    x = x_test[:50]
    for weights in (None, [1, 0, 0, 0, 3]):
        team = kk.ensemble(models, weights=weights)
        path = tmp_path / f"team_{weights is None}.keras"
        team.save(path)
        loaded = kk.load_model(path)
        np.testing.assert_allclose(_proba(loaded, x), _proba(team, x), atol=1e-6)
    weighted = (_proba(models[0], x) + 3 * _proba(models[4], x)) / 4
    np.testing.assert_allclose(_proba(loaded, x), weighted, atol=1e-6)


def test_ensemble_from_a_tuner_takes_the_top_k_and_points_tune_results_elsewhere(members):
    class Tuner:  # the one method of keras_tuner.Tuner that ensemble_from_tuner uses
        def get_best_models(self, num_models):
            return models[:num_models]

    class Result:  # kerakit.tune's result carries its tuner as `.tuner`
        tuner = Tuner()

    _, models = members
    team = kk.ensemble_from_tuner(Tuner(), top_k=3)
    assert [layer.name for layer in team.layers if layer.name.startswith("member_")] == [
        "member_0", "member_1", "member_2"]
    # kerakit's search keeps fold weights, not Keras Tuner checkpoints: say what to use.
    with pytest.raises(ConfigError, match="ensemble=True"):
        kk.ensemble_from_tuner(Result())
    with pytest.raises(TypeError, match="ensemble_from_tuner"):
        kk.ensemble(Tuner())


def test_ensemble_refuses_members_that_do_not_fit_together(members):
    spec, models = members
    other = kk.build_model(kk.ProblemSpec(task="multiclass", num_classes=3), input_shape=(64,),
                           units=(8,))
    with pytest.raises(ConfigError, match="Member 1 outputs shape"):
        kk.ensemble([models[0], other])
    wider = kk.build_model(spec, input_shape=(65,), units=(8,))
    with pytest.raises(ConfigError, match="Member 1 takes inputs"):
        kk.ensemble([models[0], wider])
    with pytest.raises(ConfigError, match="at least 2 models"):
        kk.ensemble(models[:1])
    with pytest.raises(ConfigError, match="non-negative"):
        kk.ensemble(models[:2], weights=[1, -1])


def test_compare_on_models_matches_compare_on_their_predictions(digits, members, tmp_path):
    _, x_test, _, y_test = digits
    spec, models = members
    team = kk.ensemble(models)
    path = tmp_path / "team.keras"
    team.save(path)
    result = kk.compare(models[0], str(path), x_test, y_test, resamples=300)
    direct = kk.compare_predictions(y_test, _proba(models[0], x_test), _proba(team, x_test), spec,
                                    resamples=300)
    assert result.score_a == pytest.approx(direct.score_a)
    assert result.score_b == pytest.approx(direct.score_b)
    assert result.p_value == pytest.approx(direct.p_value)


# Permutation importance ------------------------------------------------------------


def _known_model():
    """A logistic model whose weights are set by hand: only features 0 and 2 matter."""
    import keras

    inputs = keras.Input((4,), name="features")
    outputs = keras.layers.Dense(1, activation="sigmoid", name="output")(inputs)
    model = keras.Model(inputs, outputs)
    model.get_layer("output").set_weights([np.array([[4.0], [0.0], [-1.5], [0.0]]), np.zeros(1)])
    return model


def test_permutation_importance_ranks_the_features_that_matter():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 4)).astype("float32")
    y = (4 * x[:, 0] - 1.5 * x[:, 2] > 0).astype(int)
    result = kk.permutation_importance(_known_model(), x, y, feature_names=["a", "b", "c", "d"],
                                       metric="auc", n_repeats=4)
    assert result.features[:2] == ("a", "c")
    assert result.mean[0] > result.mean[1] > 0.01
    assert result.baseline == pytest.approx(1.0)
    # A feature the model ignores changes nothing when shuffled.
    assert set(result.features[2:]) == {"b", "d"}
    np.testing.assert_array_equal(result.scores[2:], 0.0)
    assert result.scores.shape == (4, 4)
    assert [r["feature"] for r in result.rows()] == list(result.features)

    fig = kk.plot_importance(result, top=3)
    assert type(fig).__name__ == "Figure"
    bars = fig.axes[0].patches
    assert len(bars) == 3
    # Largest on top: barh draws the first name at the bottom.
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["b", "c", "a"]


def test_permutation_importance_refuses_mismatched_names():
    x = np.zeros((10, 4), dtype="float32")
    with pytest.raises(ConfigError, match="3 names for 4 feature columns"):
        kk.permutation_importance(_known_model(), x, np.r_[np.zeros(5), np.ones(5)],
                                  feature_names=["a", "b", "c"])


# Raw-column models hold string lookups, which only the TensorFlow backend runs.
tensorflow_only = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="raw-column (string lookup) models need the TensorFlow backend")


@pytest.fixture(scope="module")
def table_model():
    """A raw-column model from kerakit.data: the label depends on `signal` and `color` only."""
    import pandas as pd

    rng = np.random.default_rng(0)
    n = 300
    frame = pd.DataFrame({"signal": rng.normal(size=n), "noise": rng.normal(size=n),
                          "color": rng.choice(["red", "green", "blue"], size=n)})
    frame["label"] = np.where(frame.signal + 2.0 * (frame.color == "red") > 0.7, "yes", "no")
    result = kk.fit_table(frame, target="label", epochs=8, units=(16,), dropout=0.0,
                          learning_rate=0.02, patience=None, validation=0.2, test=0.0, seed=0)
    return result, frame


@tensorflow_only
def test_permutation_importance_on_a_raw_column_model(table_model):
    result, frame = table_model
    importance = kk.permutation_importance(result.model, frame, frame["label"], n_repeats=3)
    assert importance.metric == "accuracy"
    assert set(importance.features) == {"signal", "noise", "color"}  # the target is not a feature
    assert importance.features[-1] == "noise"
    assert importance.mean[0] > 0.05
    assert importance.mean[-1] < importance.mean[0] / 3


# The `kerakit compare` and `kerakit explain` commands ----------------------------------


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory, binary_runs):
    """Run directories of two binary models (weights set by hand) and a held-out CSV.

    A ignores beta; B has the true weights. Both run directories record their spec.
    """
    return binary_runs(tmp_path_factory.mktemp("runs"), {"a": [2.0, 0.0, 0.3], "b": [2.0, 1.0, 0.0]})


def test_compare_command_on_two_run_directories(two_runs, capsys):
    import json

    from kerakit import cli

    dirs, csv, x, y = two_runs
    code = cli.main(["compare", str(dirs["a"]), str(dirs["b"]), "--csv", str(csv),
                     "--metric", "accuracy", "--metric", "auc", "--resamples", "500", "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    accuracy, auc = report["comparisons"]
    assert report["rows"] == 400
    assert accuracy["metric"] == "accuracy" and auc["metric"] == "auc"
    expected = kk.compare_predictions(y, _proba(kk.load_model(dirs["a"]), x),
                                      _proba(kk.load_model(dirs["b"]), x),
                                      kk.ProblemSpec(task="binary"), resamples=500)
    assert accuracy["score_a"] == pytest.approx(expected.score_a)
    assert accuracy["p_value"] == pytest.approx(expected.p_value)
    assert accuracy["better"] == "B" and auc["better"] == "B"

    assert cli.main(["compare", str(dirs["a"]), str(dirs["b"]), "--csv", str(csv),
                     "--resamples", "200"]) == 0
    text = capsys.readouterr().out
    assert "B is better: accuracy" in text and "McNemar exact" in text


def test_compare_command_reports_errors_without_a_traceback(two_runs, tmp_path, capsys):
    from kerakit import cli

    dirs, csv, _, _ = two_runs
    assert cli.main(["compare", str(dirs["a"]), str(dirs["b"]), "--csv", str(csv),
                     "--target", "lable"]) == 1
    err = capsys.readouterr().err
    assert "kerakit compare: error:" in err and "Did you mean 'label'" in err
    assert cli.main(["compare", str(dirs["a"]), str(tmp_path / "nothing"), "--csv", str(csv)]) == 1
    assert "No run directory or model file" in capsys.readouterr().err


def test_explain_command_on_a_run_directory(two_runs, tmp_path, capsys):
    import json

    from kerakit import cli

    dirs, csv, _, _ = two_runs
    plot = tmp_path / "importance.png"
    assert cli.main(["explain", str(dirs["b"]), "--csv", str(csv), "--repeats", "3",
                     "--plot", str(plot), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [f["feature"] for f in report["features"]] == ["alpha", "beta", "gamma"]
    assert report["features"][-1]["importance"] == 0.0  # B's weight on gamma is 0
    assert plot.read_bytes()[:4] == b"\x89PNG"


@tensorflow_only
def test_explain_command_on_a_raw_column_model(table_model, tmp_path, capsys):
    from kerakit import cli
    from kerakit.data import save_table_model

    result, frame = table_model
    model_path = save_table_model(result.model, tmp_path / "table.keras")
    frame.to_csv(tmp_path / "rows.csv", index=False)
    assert cli.main(["explain", str(model_path), "--csv", str(tmp_path / "rows.csv"),
                     "--repeats", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "drop in accuracy" in lines[0]
    ranked = [line.split()[0] for line in lines[2:5]]
    assert sorted(ranked) == ["color", "noise", "signal"] and ranked[-1] == "noise"


def test_command_help_does_not_import_tensorflow():
    import subprocess
    import sys

    code = ("import sys; from kerakit.cli import build_parser; "
            "[build_parser(c).format_help() for c in ('compare', 'explain')]; "
            "print('tensorflow' in sys.modules, 'keras' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.split() == ["False", "False"], out.stderr
