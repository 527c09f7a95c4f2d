"""Deprecated name of kerakit.crossval (cross-validation).

The module was renamed because "validation" reads as input validation; this
re-export keeps `from kerakit.validation import ...` working for one release.
Import `kerakit.crossval` instead.
"""

import warnings

from kerakit.crossval import (
    MAXIMIZED,
    MINIMIZED,
    PREDICT_CHUNK,
    SMALL_FIT_STEPS,
    CrossValidationResult,
    FoldRunner,
    FoldsOutcome,
    average_ensemble,
    check_objective,
    cross_validate,
    iterative_stratification,
    logged_names,
    make_folds,
    objective_direction,
    predict_eager,
)

__all__ = [
    "CrossValidationResult", "FoldRunner", "FoldsOutcome", "MAXIMIZED", "MINIMIZED", "PREDICT_CHUNK",
    "SMALL_FIT_STEPS", "average_ensemble", "check_objective", "cross_validate",
    "iterative_stratification", "logged_names", "make_folds", "objective_direction", "predict_eager",
]

warnings.warn("kerakit.validation is deprecated and will be removed in the next release; "
              "import kerakit.crossval instead.", DeprecationWarning, stacklevel=2)
