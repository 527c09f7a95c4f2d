"""Figures, one package: every function returns a `matplotlib.figure.Figure`.

Drawn on the Agg canvas without pyplot's global state, never `show()`n, so
plots work on headless machines and inside servers; the caller saves them
(`run.save_figure(name, fig)` or `fig.savefig(path)`) or displays them.

- `evaluation`: learning curves, confusion matrices, ROC, regression fit,
  metric bars (the figures of a run directory);
- `analysis`: permutation importances;
- `tuning`: a search's trials and the best so far;
- `active`: active-learning curves.
"""

from kerakit.plots.active import plot_active_learning
from kerakit.plots.analysis import plot_importance
from kerakit.plots.evaluation import (
    confusion_matrix,
    evaluation_figures,
    learning_curves,
    metric_bars,
    multilabel_confusion,
    predicted_vs_actual,
    residuals,
    roc_curves,
)
from kerakit.plots.tuning import plot_trials

__all__ = [
    "confusion_matrix",
    "evaluation_figures",
    "learning_curves",
    "metric_bars",
    "multilabel_confusion",
    "plot_active_learning",
    "plot_importance",
    "plot_trials",
    "predicted_vs_actual",
    "residuals",
    "roc_curves",
]
