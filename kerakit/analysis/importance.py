"""Permutation importance for `kerakit.analysis`: `permutation_importance` and `Importance`.

scikit-learn's `permutation_importance` around a Keras model, with feature
names, sorted. Only NumPy is imported with the module.
"""

import dataclasses

import numpy as np

from kerakit.analysis.loading import input_structure, model_inputs, resolve_spec
from kerakit.analysis.metrics import get_metric
from kerakit.checks import check_count
from kerakit.errors import ConfigError, DataError, DataTypeError
from kerakit.saving import load_model
from kerakit.training import predict_in_chunks

# Permutation importance ---------------------------------------------------------


class _KerasScorer:
    """Lets scikit-learn's `permutation_importance` score a Keras model.

    scikit-learn shuffles the columns of an array or DataFrame; this turns each
    shuffled copy into the model's inputs, predicts, and scores with a kerakit
    metric, signed so that larger is always better (as scikit-learn expects).
    """

    def __init__(self, model, spec, metric, to_inputs):
        self.model = model
        self.spec = spec
        self.metric = metric
        self.to_inputs = to_inputs

    def fit(self, x, y):
        # scikit-learn checks that the estimator has `fit`; permutation
        # importance only scores an already trained model, so this is never
        # called by it.
        raise ConfigError(
            "This wrapper only scores a trained Keras model. Train with kerakit.fit first."
        )

    def __call__(self, estimator, x, y):
        value = self.metric(self.spec, y, np.asarray(predict_in_chunks(self.model, self.to_inputs(x)), dtype=np.float64))
        return value if self.metric.greater_is_better else -value


@dataclasses.dataclass(frozen=True)
class Importance:
    """Permutation importances, most important feature first.

    `mean[i]` is how much the metric drops (gets worse) when feature
    `features[i]` is shuffled, averaged over `repeats`; `std[i]` its standard
    deviation; `scores[i]` the drop for each repeat. `baseline` is the
    unshuffled metric.
    """

    features: tuple
    mean: np.ndarray
    std: np.ndarray
    scores: np.ndarray
    metric: str
    baseline: float

    def rows(self):
        """Returns `[{"feature", "importance", "std"}, ...]`, most important first."""
        return [
            {"feature": f, "importance": float(m), "std": float(s)}
            for f, m, s in zip(self.features, self.mean, self.std, strict=True)
        ]

    def to_dict(self):
        return {"metric": self.metric, "baseline": self.baseline, "features": self.rows()}


def _feature_table(model, x, feature_names):
    """Returns (table, feature names, converter) for scikit-learn's column shuffling."""
    import pandas as pd

    struct = input_structure(model)
    if isinstance(struct, dict):
        if isinstance(x, dict):
            # One column per input: (n, 1) arrays become plain columns.
            x = pd.DataFrame({k: np.asarray(v).reshape(len(v), -1)[:, 0] for k, v in x.items()})
        if not hasattr(x, "columns"):
            raise DataTypeError(
                f"This raw-column model takes named columns {sorted(struct)}; pass a DataFrame "
                f"or a dict of columns. Received: {type(x).__name__}"
            )
        # Only the model's own columns are features (a target column is left out).
        table = x[[c for c in x.columns if c in struct]].reset_index(drop=True)
        return table, tuple(str(c) for c in table.columns), lambda t: model_inputs(model, t)
    if hasattr(x, "columns"):
        names = tuple(str(c) for c in x.columns)
        x = x.to_numpy()
    else:
        names = None
    table = model_inputs(model, x)
    if table.ndim != 2:
        raise DataError(
            f"Permutation importance shuffles one column at a time, so it needs a table of "
            f"features (n, k). Received shape {table.shape}."
        )
    if feature_names is not None:
        names = tuple(str(n) for n in feature_names)
    if names is None:
        names = tuple(f"feature_{i}" for i in range(table.shape[1]))
    if len(names) != table.shape[1]:
        raise ConfigError(
            f"`feature_names` has {len(names)} names for {table.shape[1]} feature columns. Pass "
            f"one name per column."
        )
    return table, names, lambda t: t


def permutation_importance(model, x, y, spec=None, *, metric="auto", feature_names=None,
                           n_repeats=5, seed=0, max_samples=1.0):
    """Ranks features by how much shuffling each one hurts the model.

    A thin layer over `sklearn.inspection.permutation_importance`: it shuffles
    one column at a time, `n_repeats` times, and records how much the metric
    gets worse. Use held-out data: on training rows it measures memorisation.

    Args:
        model: a trained `keras.Model` or the path of a `.keras` file. A
            raw-column model (a dict of named inputs, see `kerakit.data`)
            takes `x` as a DataFrame or dict of columns; each column is one
            feature.
        x, y: held-out features and labels.
        spec: the `ProblemSpec`; defaults to the model's.
        metric: a name in `METRICS`, or "auto" (accuracy / RMSE).
        feature_names: names of the columns of an array `x`. Defaults to the
            DataFrame's columns, or "feature_0", "feature_1", ...
        n_repeats: shuffles per feature. Defaults to 5.
        seed: seed of the shuffles. Defaults to 0.
        max_samples: rows (fraction or count) drawn for each repeat.
            Defaults to 1.0 (all rows).

    Example:

    ```python
    result = kerakit.permutation_importance(model, x_test, y_test,
                                            feature_names=data.feature_names)
    result.features[:3]            # most important first
    fig = kerakit.plot_importance(result)
    ```
    """
    from sklearn.inspection import permutation_importance as sklearn_permutation_importance

    from kerakit.spec import validate_labels

    model = load_model(model)
    spec = resolve_spec(spec, (model,), y)
    name, chosen = get_metric(metric, spec)
    check_count("n_repeats", n_repeats)
    table, names, to_inputs = _feature_table(model, x, feature_names)
    y = validate_labels(spec, y)
    if len(y) != len(table):
        raise DataError(f"`x` has {len(table)} rows but `y` has {len(y)}. Pass one label per row.")
    scorer = _KerasScorer(model, spec, chosen, to_inputs)
    result = sklearn_permutation_importance(
        scorer, table, y, scoring=scorer, n_repeats=n_repeats, random_state=seed,
        max_samples=max_samples,
    )
    order = np.argsort(-result.importances_mean, kind="stable")
    baseline = scorer(None, table, y)
    return Importance(
        features=tuple(names[i] for i in order),
        mean=result.importances_mean[order],
        std=result.importances_std[order],
        scores=result.importances[order],
        metric=name,
        baseline=float(baseline if chosen.greater_is_better else -baseline),
    )
