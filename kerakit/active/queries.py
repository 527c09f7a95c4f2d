"""Query strategies: uncertainty measures and the strategy registry.

Built in: random, least confidence, margin, entropy, BALD (classification,
Monte-Carlo dropout or an ensemble), predictive standard deviation
(regression) and a diverse batch mode. Users register their own as
`query(model, x_pool, n) -> indices`.
"""

import inspect
from typing import NamedTuple

import numpy as np

from kerakit.active.sampling import predict_mean, predictive_samples
from kerakit.checks import check_count
from kerakit.errors import ConfigError, unknown_name

CLASSIFICATION = ("binary", "multiclass")
REGRESSION = ("regression",)


class QueryResult(NamedTuple):
    """What `query` returns: pool row indices, most informative first, and their scores.

    A strategy that only returns indices gets NaN scores. Unpack it:
    `indices, scores = learner.query(x_pool, n=10)`.
    """

    indices: np.ndarray
    scores: np.ndarray


# Uncertainty measures -----------------------------------------------------------


def _spec_task(model):
    from kerakit.metadata import spec_of

    spec = spec_of(model[0] if isinstance(model, (list, tuple)) else model)
    return spec.task if spec is not None else None


def _as_class_probabilities(p):
    """(n, 1) sigmoid outputs → (n, 2) class probabilities; softmax rows unchanged."""
    if p.shape[-1] == 1:
        p = np.concatenate([1.0 - p, p], axis=-1)
    return np.clip(p, 0.0, 1.0)


def _entropy(p):
    return -np.sum(p * np.log(np.clip(p, 1e-12, 1.0)), axis=-1)


def _least_confidence(model, x):
    return 1.0 - _as_class_probabilities(predict_mean(model, x)).max(axis=1)


def _margin(model, x):
    p = np.sort(_as_class_probabilities(predict_mean(model, x)), axis=1)
    return 1.0 - (p[:, -1] - p[:, -2])


def _entropy_score(model, x):
    return _entropy(_as_class_probabilities(predict_mean(model, x)))


def _bald(model, x, passes=20):
    samples = _as_class_probabilities(predictive_samples(model, x, passes))
    # Mutual information between the label and the weights: total entropy minus
    # the expected entropy of each sampled model (Houlsby et al. 2011; Gal et al. 2017).
    return _entropy(samples.mean(axis=0)) - _entropy(samples).mean(axis=0)


def _std(model, x, passes=20):
    samples = predictive_samples(model, x, passes)
    return samples.std(axis=0).mean(axis=-1)


class Measure(NamedTuple):
    score: callable
    tasks: tuple
    description: str


# name → how uncertain the model is about each pool row (higher = more informative)
MEASURES = {
    "least_confidence": Measure(_least_confidence, CLASSIFICATION, "1 - probability of the top class"),
    "margin": Measure(_margin, CLASSIFICATION, "1 - (top probability - runner-up probability)"),
    "entropy": Measure(_entropy_score, CLASSIFICATION, "entropy of the predicted distribution"),
    "bald": Measure(_bald, CLASSIFICATION, "mutual information under Monte-Carlo dropout or an ensemble"),
    "std": Measure(_std, REGRESSION, "predictive standard deviation (Monte-Carlo dropout or ensemble)"),
}


# Measures that need several predictions per row: Monte-Carlo dropout passes or ensemble members.
SAMPLING_MEASURES = ("bald", "std")


def _check_task(kind, name, tasks, task):
    if task is not None and tasks is not None and task not in tasks:
        raise ConfigError(
            f"The {kind} '{name}' applies to {', '.join(tasks)} problems, not task={task!r}. "
            f"Use 'random', 'diverse', or one of: "
            f"{', '.join(sorted(k for k, m in MEASURES.items() if task in m.tasks))}."
        )


def uncertainty(model, x, measure="entropy", **options):
    """Scores every row of `x`: how much labelling it should help (higher = more).

    Args:
        model: a trained `keras.Model` (its outputs are read as probabilities
            for classification), or a list of models (a deep ensemble).
        x: pool features.
        measure: one of `MEASURES`: "least_confidence", "margin", "entropy",
            "bald" (classification); "std" (regression). Defaults to "entropy".
        **options: e.g. `passes=20` for "bald" and "std".

    Example:

    ```python
    scores = uncertainty(model, x_pool, "margin")
    ```
    """
    if measure not in MEASURES:
        raise unknown_name("uncertainty measure", measure, MEASURES)
    entry = MEASURES[measure]
    _check_task("uncertainty measure", measure, entry.tasks, _spec_task(model))
    return np.asarray(entry.score(model, x, **options), dtype=np.float64)


# Strategies -----------------------------------------------------------------------


def _top(scores, n):
    order = np.argsort(-scores, kind="stable")[:n]
    return QueryResult(order, scores[order])


def random_sampling(model, x_pool, n, seed=None):
    """Picks `n` pool rows uniformly at random: the baseline every strategy must beat."""
    rows = len(x_pool)
    picks = np.random.default_rng(seed).choice(rows, size=n, replace=False)
    return QueryResult(picks, np.full(n, np.nan))


def _measure_strategy(measure):
    if measure in SAMPLING_MEASURES:
        def strategy(model, x_pool, n, passes=20):
            return _top(uncertainty(model, x_pool, measure, passes=passes), n)
    else:
        def strategy(model, x_pool, n):
            return _top(uncertainty(model, x_pool, measure), n)

    strategy.__name__ = measure
    return strategy


def diverse(model, x_pool, n, base="auto", candidates=10, seed=None, **options):
    """Batch mode: the most uncertain candidates, spread out by clustering.

    Takes the `n * candidates` highest-scoring rows under `base`, clusters
    them into `n` groups with k-means weighted by uncertainty (Zhdanov 2019,
    "Diverse mini-batch active learning"), and picks in each group the row
    nearest its centre, so one batch does not spend labels on near-duplicates.

    Args:
        base: the uncertainty measure; "auto" is "margin" for classification
            and "std" for regression.
        candidates: how many candidates per pick. Defaults to 10.
        seed: seeds k-means.
    """
    from sklearn.cluster import KMeans

    if base == "auto":
        base = "std" if _spec_task(model) == "regression" else "margin"
    candidates = check_count("candidates", candidates)
    scores = uncertainty(model, x_pool, base, **options)
    if n == 1:
        return _top(scores, 1)
    pool = np.asarray(x_pool, dtype=np.float64).reshape(len(scores), -1)
    top = np.argsort(-scores, kind="stable")[: min(len(scores), n * candidates)]
    unique_rows = len(np.unique(pool[top], axis=0))
    clusters = min(n, unique_rows)
    weights = scores[top] - scores[top].min() + 1e-6
    kmeans = KMeans(n_clusters=clusters, n_init=3, random_state=seed).fit(pool[top], sample_weight=weights)
    distance = np.linalg.norm(pool[top] - kmeans.cluster_centers_[kmeans.labels_], axis=1)
    picks = [top[kmeans.labels_ == c][np.argmin(distance[kmeans.labels_ == c])] for c in range(clusters)]
    if len(picks) < n:  # fewer distinct rows than picks: fill with the next most uncertain
        chosen = set(picks)
        picks += [i for i in top if i not in chosen][: n - len(picks)]
    picks = np.array(sorted(picks, key=lambda i: -scores[i]))
    return QueryResult(picks, scores[picks])


class Strategy:
    """A registered query strategy: `query(model, x_pool, n, **options)`.

    `tasks` lists the tasks it applies to (None: any); `options` are the
    keyword options its function accepts.
    """

    def __init__(self, name, query, tasks=None, description=""):
        self.name = name
        self.query = query
        self.tasks = tuple(tasks) if tasks is not None else None
        self.description = description or (inspect.getdoc(query) or "").split("\n")[0]
        parameters = list(inspect.signature(query).parameters.values())[3:]
        self.options = tuple(p.name for p in parameters if p.kind is p.KEYWORD_ONLY
                             or p.kind is p.POSITIONAL_OR_KEYWORD)
        self.open_options = any(p.kind is p.VAR_KEYWORD for p in parameters)

    def check(self, task, options):
        """Refuses a task or options this strategy cannot take, before any training."""
        _check_task("strategy", self.name, self.tasks, task)
        unknown = sorted(set(options) - set(self.options))
        if unknown and not self.open_options:
            listed = ", ".join(self.options) or "none"
            raise ConfigError(
                f"Strategy '{self.name}' has no option(s) {unknown}. Its options are: {listed}."
            )
        base = options.get("base")
        if self.name == "diverse" and base not in (None, "auto"):
            if base not in MEASURES:
                raise unknown_name("uncertainty measure", base, MEASURES)
            _check_task("uncertainty measure", base, MEASURES[base].tasks, task)

    def samples(self, task, options):
        """The measure, when this strategy draws predictive samples (MC dropout or an ensemble)."""
        measure = self.name
        if self.name == "diverse":
            measure = options.get("base", "auto")
            if measure == "auto":
                measure = "std" if task == "regression" else "margin"
        return measure if measure in SAMPLING_MEASURES else None

    def __call__(self, model, x_pool, n, **options):
        return _as_query_result(self.query(model, x_pool, n, **options), len(x_pool), n, self.name)

    def __repr__(self):
        return f"Strategy({self.name!r})"


STRATEGIES = {}


def register_query_strategy(name, query=None, *, tasks=None, description=""):
    """Registers an active-learning query strategy under `name` (usable as a decorator).

    A strategy is `query(model, x_pool, n, **options)` returning the indices
    of the `n` pool rows to label — a sequence of integers — or a
    `QueryResult(indices, scores)` / `(indices, scores)` pair of sequences.
    A plain sequence is always read as indices, even when it has two
    elements. `model` is the learner's `keras.Model`, or a list of models
    for a deep ensemble.

    Args:
        name: the name `ActiveLearner(strategy=...)` will accept.
        query: the function; omit to use as a decorator.
        tasks: the tasks it applies to, e.g. ("regression",); None for any.
        description: one line for listings; defaults to the docstring's first line.

    Example:

    ```python
    @kk.register_query_strategy("farthest", tasks=("regression",))
    def farthest(model, x_pool, n):
        return np.argsort(-np.abs(x_pool[:, 0]))[:n]
    ```
    """

    def decorator(fn):
        if not callable(fn):
            raise ConfigError(f"A strategy must be callable. Received: {fn!r}")
        STRATEGIES[name] = Strategy(name, fn, tasks, description)
        return fn

    return decorator(query) if query is not None else decorator


def get_strategy(identifier):
    """Returns the `Strategy` for a registered name, or wraps a callable."""
    if isinstance(identifier, Strategy):
        return identifier
    if callable(identifier):
        return Strategy(getattr(identifier, "__name__", "custom"), identifier)
    if identifier not in STRATEGIES:
        raise unknown_name("strategy", identifier, STRATEGIES)
    return STRATEGIES[identifier]


register_query_strategy("random", random_sampling, description="uniform random sampling (the baseline)")
for _name, _measure in MEASURES.items():
    register_query_strategy(_name, _measure_strategy(_name), tasks=_measure.tasks,
                      description=f"top-n by {_measure.description}")
register_query_strategy("diverse", diverse, tasks=CLASSIFICATION + REGRESSION,
                  description="top uncertain candidates, one per k-means cluster (batch mode)")


def _is_sequence(value):
    return isinstance(value, (list, tuple, np.ndarray)) and np.ndim(value) == 1


def _as_query_result(result, pool_size, n, name):
    # modAL read any 2-element return as (indices, instances); here only a pair
    # of sequences is (indices, scores) — two integers are two indices.
    if isinstance(result, tuple) and len(result) == 2 and all(_is_sequence(r) for r in result):
        indices, scores = result
    else:
        indices, scores = result, None
    indices = np.asarray(indices)
    if indices.ndim != 1 or (indices.size and indices.dtype.kind not in "iu"):
        raise ConfigError(
            f"Strategy '{name}' must return a 1-D sequence of integer pool indices (or "
            f"(indices, scores)). Received {type(result).__name__} with shape {indices.shape} "
            f"and dtype {indices.dtype}."
        )
    if len(indices) != n or len(np.unique(indices)) != n:
        raise ConfigError(
            f"Strategy '{name}' must return {n} distinct indices. Received {len(indices)} with "
            f"{len(np.unique(indices))} distinct: {indices[:10].tolist()}."
        )
    if indices.size and (indices.min() < 0 or indices.max() >= pool_size):
        raise ConfigError(
            f"Strategy '{name}' returned indices outside the pool [0, {pool_size}): "
            f"{indices[(indices < 0) | (indices >= pool_size)][:5].tolist()}."
        )
    scores = np.full(n, np.nan) if scores is None else np.asarray(scores, dtype=np.float64)
    if scores.shape != (n,):
        raise ConfigError(
            f"Strategy '{name}' returned {scores.shape[0]} scores for {n} indices; return one "
            f"score per index."
        )
    return QueryResult(indices.astype(np.int64), scores)
