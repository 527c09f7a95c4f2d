"""scikit-learn estimators: kerakit models inside `Pipeline`, `GridSearchCV` and friends.

`KerasClassifier` and `KerasRegressor` wrap `build_model` + `fit` in the
scikit-learn estimator API, so a kerakit network can sit at the end of a
`Pipeline`, be tuned by `GridSearchCV` / `RandomizedSearchCV`, give
out-of-fold predictions with `cross_val_predict`, be `clone`d and pickled.
They pass scikit-learn's own estimator checks (see `tests/sklearn/test_checks.py`).

Every constructor argument is a plain value stored as given (scikit-learn's
rule): `build_model`'s options, the training options, and an optional
`ProblemSpec`. Learned state ends in `_`: `model_` (a plain `keras.Model`),
`history_`, `spec_`, `classes_`, `n_features_in_`, `feature_names_in_`.

What SciKeras users rely on is here too: `model=` (a `build(meta, ...)`
function or a prebuilt `keras.Model`), routed parameters with scikit-learn's
double-underscore convention (`model__`, `fit__`, `compile__`,
`optimizer__`, `loss__`, `callbacks__`, `predict__`; see `ROUTING_PREFIXES`),
`callbacks=`, per-call `fit(..., epochs=...)` overrides, `warm_start` and
`partial_fit`, `random_state`, SciPy sparse `X` and multilabel 0/1 label
matrices.
"""

from kerakit.sklearn._checks import EXPECTED_FAILED_CHECKS, expected_failed_checks
from kerakit.sklearn._classifier import KerasClassifier
from kerakit.sklearn._data import MAX_DENSE_BYTES, PREDICT_BATCH, densify
from kerakit.sklearn._params import ROUTING_PREFIXES
from kerakit.sklearn._regressor import KerasRegressor

__all__ = [
    "EXPECTED_FAILED_CHECKS",
    "KerasClassifier",
    "KerasRegressor",
    "MAX_DENSE_BYTES",
    "PREDICT_BATCH",
    "ROUTING_PREFIXES",
    "densify",
    "expected_failed_checks",
]
