"""Model analysis: A/B comparison, permutation importance and ensembles.

* `compare` / `compare_predictions`: is model B really better than model A on
  the same held-out rows? McNemar's exact test (SciPy's `binomtest`) for
  classification accuracy, a paired bootstrap confidence interval for any
  metric in `METRICS`, and a plain verdict.
* `permutation_importance`: scikit-learn's `permutation_importance` around a
  Keras model, with feature names, sorted; raw-column models take a
  DataFrame (or a dict of columns) and each column is one feature.
* `ensemble`: several members averaged into one saveable `keras.Model`.

Only NumPy is imported with the module; SciPy, scikit-learn and Keras load
when a function needs them.
"""

from kerakit.analysis.comparison import Comparison, compare, compare_predictions
from kerakit.analysis.ensembles import (
    ensemble,
    ensemble_from_tuner,
)
from kerakit.analysis.importance import Importance, permutation_importance
from kerakit.analysis.loading import is_table_model, model_inputs, spec_from_model
from kerakit.analysis.metrics import DEFAULT_METRIC, METRICS, Metric, get_metric

__all__ = [
    "DEFAULT_METRIC", "METRICS", "Comparison", "Importance", "Metric", "compare",
    "compare_predictions", "ensemble", "ensemble_from_tuner", "get_metric", "is_table_model",
    "model_inputs", "permutation_importance", "spec_from_model",
]
