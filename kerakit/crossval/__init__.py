"""K-fold cross-validation with out-of-fold predictions.

`make_folds` picks the splitter the task calls for (stratified k-fold for
classes, iterative stratification for multilabel, plain k-fold for
regression); `FoldRunner` trains one configuration on every fold with early
stopping, on input pipelines built once and reused; `cross_validate` is the
public entry point. `kerakit.tune` runs its k-fold objective through the same
`FoldRunner`.
"""

from kerakit.crossval._cross_validate import CrossValidationResult, cross_validate
from kerakit.crossval._folds import check_splits, iterative_stratification, make_folds
from kerakit.crossval._runner import (
    MAXIMIZED,
    MINIMIZED,
    SMALL_FIT_STEPS,
    FoldRunner,
    FoldsOutcome,
    average_ensemble,
    check_objective,
    logged_names,
    objective_direction,
)

__all__ = [
    "CrossValidationResult", "FoldRunner", "FoldsOutcome", "MAXIMIZED", "MINIMIZED", "SMALL_FIT_STEPS",
    "average_ensemble", "check_objective", "check_splits", "cross_validate", "iterative_stratification",
    "logged_names", "make_folds", "objective_direction",
]
