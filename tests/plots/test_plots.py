"""Plots return Figures (Agg canvas), never touch pyplot, and show the right numbers."""

import sys

import numpy as np
import pytest
from matplotlib.figure import Figure
from sklearn import metrics

from kerakit import plots
from kerakit.errors import ConfigError
from kerakit.spec import ProblemSpec


def _png(figure, tmp_path, name="f.png"):
    path = tmp_path / name
    figure.savefig(path)
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_learning_curves_one_panel_per_metric_with_validation(tmp_path):
    history = {"loss": [1.0, 0.6, 0.4], "val_loss": [1.1, 0.8, 0.7],
               "accuracy": [0.5, 0.7, 0.8], "val_accuracy": [0.4, 0.6, 0.7], "learning_rate": [1e-3] * 3}
    figure = plots.learning_curves(history)
    assert isinstance(figure, Figure)
    titles = [ax.get_title() for ax in figure.axes if ax.get_visible()]
    assert titles == ["loss", "accuracy"]
    lines = figure.axes[0].get_lines()
    assert [line.get_label() for line in lines] == ["train", "validation"]
    assert list(lines[1].get_ydata()) == [1.1, 0.8, 0.7]
    assert _png(figure, tmp_path)
    with pytest.raises(ConfigError, match="History"):
        plots.learning_curves([])


def test_confusion_matrix_counts_and_accuracy():
    figure = plots.confusion_matrix([0, 1, 1, 2, 2, 2], [0, 1, 2, 2, 2, 0], class_names=["a", "b", "c"])
    ax = figure.axes[0]
    cells = [t.get_text() for t in ax.texts]
    assert cells == ["1", "0", "0", "0", "1", "1", "1", "0", "2"]
    assert "accuracy 0.667" in ax.get_title()
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c"]


def test_roc_auc_matches_scikit_learn_binary_and_multiclass():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 60)
    scores = np.clip(y * 0.3 + rng.random(60) * 0.7, 0, 1)
    figure = plots.roc_curves(y, scores)
    assert f"AUC {metrics.roc_auc_score(y, scores):.3f}" in figure.axes[0].get_title()

    y3 = rng.integers(0, 3, 90)
    proba = rng.dirichlet(np.ones(3), 90)
    proba[np.arange(90), y3] += 0.5
    proba /= proba.sum(axis=1, keepdims=True)
    figure = plots.roc_curves(y3, proba, class_names=["x", "y", "z"])
    labels = [line.get_label() for line in figure.axes[0].get_lines()]
    for j, name in enumerate("xyz"):
        area = metrics.roc_auc_score(y3 == j, proba[:, j])
        assert f"{name} (AUC {area:.3f})" in labels


def test_regression_figures(tmp_path):
    y = np.linspace(0, 10, 40)
    pred = y + np.sin(y)
    figure = plots.predicted_vs_actual(y, pred)
    assert f"R² {metrics.r2_score(y, pred):.3f}" in figure.axes[0].get_title()
    figure = plots.residuals(y, pred)
    assert f"MAE {np.abs(y - pred).mean():.3g}" in figure.axes[1].get_title()
    assert _png(figure, tmp_path)
    with pytest.raises(ConfigError, match="same shape"):
        plots.residuals(y, np.ones((40, 2)))


@pytest.mark.parametrize("spec, y, predictions, names", [
    (ProblemSpec(task="binary"), [0, 1, 1, 0], [[0.2], [0.8], [0.4], [0.1]], ["confusion_matrix", "roc"]),
    (ProblemSpec(task="multiclass", num_classes=3, label_format="onehot"),
     np.eye(3)[[0, 1, 2, 1]], np.eye(3)[[0, 1, 1, 1]] * 0.8 + 0.066, ["confusion_matrix", "roc"]),
    (ProblemSpec(task="multilabel", num_labels=2), [[1, 0], [0, 1], [1, 1], [0, 0]],
     [[0.9, 0.1], [0.2, 0.7], [0.6, 0.4], [0.1, 0.2]], ["confusion_matrix", "roc"]),
    (ProblemSpec(task="regression"), [1.0, 2.0, 3.0], [[1.1], [2.2], [2.7]],
     ["predicted_vs_actual", "residuals"]),
])
def test_evaluation_figures_per_task(spec, y, predictions, names):
    figures = plots.evaluation_figures(spec, np.asarray(y), np.asarray(predictions))
    assert sorted(figures) == sorted(names)
    assert all(isinstance(f, Figure) for f in figures.values())


def test_binary_confusion_uses_threshold():
    figures = plots.evaluation_figures(ProblemSpec(task="binary"), np.array([0, 1, 1]),
                                       np.array([0.2, 0.6, 0.4]), threshold=0.5)
    assert [t.get_text() for t in figures["confusion_matrix"].axes[0].texts] == ["1", "0", "1", "1"]


def test_metric_bars_and_no_pyplot_state():
    figure = plots.metric_bars({"mse": {"rmse": 3.0, "mae": 2.0}, "huber": {"rmse": 1.2, "mae": 0.9}})
    heights = [p.get_height() for p in figure.axes[0].patches]
    assert heights == [3.0, 2.0, 1.2, 0.9]
    if "matplotlib.pyplot" in sys.modules:  # plots never register figures with pyplot
        assert sys.modules["matplotlib.pyplot"].get_fignums() == []
