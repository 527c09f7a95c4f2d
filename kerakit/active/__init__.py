"""Active learning: the model picks what a person should label next.

A pool-based loop (`ActiveLearner`: `query` → a person labels → `teach`),
a registry of query strategies (random, least confidence, margin, entropy,
BALD and predictive standard deviation with Monte-Carlo dropout or a deep
ensemble, and a diverse batch mode), and `simulate`, which replays the loop
when every label is already known to compare strategies against random
sampling. Models come from `kerakit.build_model`, so specs, bodies and
callbacks work as everywhere else.
"""

from kerakit.active.learner import MIN_EPOCH_BATCHES, ActiveLearner
from kerakit.active.queries import (
    CLASSIFICATION,
    MEASURES,
    REGRESSION,
    STRATEGIES,
    Measure,
    QueryResult,
    Strategy,
    diverse,
    get_strategy,
    random_sampling,
    register_query_strategy,
    uncertainty,
)
from kerakit.active.sampling import MC_MAX_ROWS, predict_mean, predictive_samples
from kerakit.active.simulation import Simulation, simulate

__all__ = [
    "ActiveLearner", "CLASSIFICATION", "MC_MAX_ROWS", "MEASURES", "MIN_EPOCH_BATCHES", "Measure",
    "QueryResult", "REGRESSION", "STRATEGIES", "Simulation", "Strategy", "diverse", "get_strategy",
    "predict_mean", "predictive_samples", "random_sampling", "register_query_strategy", "simulate",
    "uncertainty",
]
