"""Keras Tuner search from the problem spec: five tuners (TPE through Optuna), spaces, a k-fold objective.

`tune` is the entry point, its option groups `CrossValidation`, `Refit` and
`Distribution`; `tune_splits` tunes on a recipe's train/validation/test
splits (numeric arrays or raw table columns) and reports on the test split;
`SearchSpace` reads scikit-learn-style spaces (dicts, lists of dicts,
ranges, scipy distributions); `kerakit.tuning.oracles` holds the crash-safe
oracles and `kerakit.tuning.distributed` Keras Tuner's chief/worker mode
with bounded waits. Importing this package does not import TensorFlow.
"""

from kerakit.tuning.options import TUNERS, CrossValidation, Distribution, Refit, Storage
from kerakit.tuning.results import TuneResult
from kerakit.tuning.search import tune
from kerakit.tuning.spaces import DEFAULT_GRID, DEFAULT_SPACE, SearchSpace
from kerakit.tuning.splits import SplitsResult, tune_splits

__all__ = ["DEFAULT_GRID", "DEFAULT_SPACE", "TUNERS", "CrossValidation", "Distribution", "Refit",
           "SearchSpace", "SplitsResult", "Storage", "TuneResult", "tune", "tune_splits"]
