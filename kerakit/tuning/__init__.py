"""Keras Tuner search from the problem spec: five tuners (TPE through Optuna), spaces, a k-fold objective.

`tune` is the entry point; `SearchSpace` reads scikit-learn-style spaces
(dicts, lists of dicts, ranges, scipy distributions); `kerakit.tuning.oracles`
holds the crash-safe oracles and `kerakit.tuning.distributed` Keras Tuner's
chief/worker mode with bounded waits. Importing this package does not import
TensorFlow.
"""

from kerakit.tuning.results import TuneResult, plot_trials
from kerakit.tuning.search import TUNERS, tune
from kerakit.tuning.spaces import DEFAULT_GRID, DEFAULT_SPACE, SearchSpace

__all__ = ["DEFAULT_GRID", "DEFAULT_SPACE", "SearchSpace", "TUNERS", "TuneResult", "plot_trials", "tune"]
