"""Active learning: the model picks what a person should label next.

A pool-based loop (`ActiveLearner`: `query` → a person labels → `teach`),
a registry of query strategies (random, least confidence, margin, entropy,
BALD and predictive standard deviation with Monte-Carlo dropout or a deep
ensemble, and a diverse batch mode), and `simulate`, which replays the loop
when every label is already known to compare strategies against random
sampling. Models come from `kerakit.build_model`, so specs, bodies and
callbacks work as everywhere else.
"""

import inspect
import weakref
from typing import NamedTuple

import numpy as np

from kerakit.errors import ConfigError, DataError, unknown_name

CLASSIFICATION = ("binary", "multiclass")
REGRESSION = ("regression",)
# With repeat="auto", the labelled rows are repeated until an epoch has at
# least this many batches: Keras spends ~10 ms per epoch outside the steps,
# which dominates when a few dozen labels make one batch.
MIN_EPOCH_BATCHES = 10
# Monte-Carlo passes are run as one batch of tiled rows; chunks of the pool
# keep that batch at most this many rows.
MC_MAX_ROWS = 65536


class QueryResult(NamedTuple):
    """What `query` returns: pool row indices, most informative first, and their scores.

    A strategy that only returns indices gets NaN scores. Unpack it:
    `indices, scores = learner.query(x_pool, n=10)`.
    """

    indices: np.ndarray
    scores: np.ndarray


# Forward passes ---------------------------------------------------------------

_FORWARD = weakref.WeakKeyDictionary()


def _forward_function(model):
    """One cached `tf.function` per model: deterministic or tiled Monte-Carlo passes."""
    fn = _FORWARD.get(model)
    if fn is None:
        import tensorflow as tf

        @tf.function(reduce_retracing=True)
        def fn(x, passes, training):
            if passes == 1:
                return model(x, training=training)[None]
            rows = tf.shape(x)[0]
            tiled = tf.reshape(tf.tile(x[None], [passes, 1, 1]), [passes * rows, -1])
            out = model(tiled, training=training)
            return tf.reshape(out, [passes, rows, -1])

        _FORWARD[model] = fn
    return fn


def _stochastic_layers(model):
    import keras

    layers = list(model._flatten_layers(include_self=False))
    dropout = [layer for layer in layers if isinstance(layer, (keras.layers.Dropout,
                                                                keras.layers.GaussianDropout,
                                                                keras.layers.AlphaDropout,
                                                                keras.layers.SpatialDropout1D))]
    batchnorm = [layer for layer in layers if isinstance(layer, keras.layers.BatchNormalization)]
    return dropout, batchnorm


def _validated_pool(model, x):
    from kerakit.training import _model_input_shape, validate_features

    return validate_features(x, _model_input_shape(model), what="x_pool")


def _run(model, x, passes, training):
    fn = _forward_function(model)
    chunk = max(1, MC_MAX_ROWS // passes)
    parts = [fn(x[i:i + chunk], passes, training).numpy() for i in range(0, len(x), chunk)]
    return np.concatenate(parts, axis=1).astype(np.float64)


def predictive_samples(model, x, passes=20):
    """Draws predictions with dropout on (Monte-Carlo dropout) or one per ensemble member.

    For a single model the pool is tiled `passes` times and run through the
    model once per chunk with `training=True`, inside one `tf.function` —
    not `passes` calls of `predict`. Batch-norm statistics are left as they
    were. For a list of models (a deep ensemble) each member predicts once,
    with dropout off.

    Args:
        model: a `keras.Model` with dropout layers, or a list of models.
        x: features, shape (n, ...).
        passes: number of Monte-Carlo passes for a single model. Defaults to 20.

    Returns:
        An array of shape (passes or members, n, outputs).

    Example:

    >>> samples = predictive_samples(model, x_pool, passes=20)
    >>> mean, std = samples.mean(0), samples.std(0)
    """
    if isinstance(model, (list, tuple)):
        if len(model) < 2:
            raise ConfigError(
                f"A deep ensemble needs at least 2 members. Received {len(model)}. Pass more "
                f"models, or one model with dropout for Monte-Carlo dropout."
            )
        x = _validated_pool(model[0], x)
        return np.concatenate([_run(member, x, 1, False) for member in model], axis=0)
    if isinstance(passes, bool) or not isinstance(passes, (int, np.integer)) or passes < 2:
        raise ConfigError(f"`passes` must be an integer of at least 2. Received: passes={passes!r}")
    dropout, batchnorm = _stochastic_layers(model)
    if not dropout:
        raise ConfigError(
            f"Monte-Carlo dropout needs dropout layers, and model '{model.name}' has none, so "
            f"every pass would give the same prediction. Build it with dropout (e.g. "
            f"build_model(..., dropout=0.2)) or use a deep ensemble (ensemble_size=5)."
        )
    x = _validated_pool(model, x)
    # training=True also makes batch norm update its moving statistics; put them back.
    saved = [(v, v.numpy()) for layer in batchnorm for v in layer.non_trainable_variables]
    try:
        return _run(model, x, int(passes), True)
    finally:
        for variable, value in saved:
            variable.assign(value)


def _predict_mean(model, x):
    if isinstance(model, (list, tuple)):
        x = _validated_pool(model[0], x)
        return np.mean([_run(member, x, 1, False)[0] for member in model], axis=0)
    return _run(model, _validated_pool(model, x), 1, False)[0]


# Uncertainty measures -----------------------------------------------------------


def _spec_task(model):
    from kerakit.builders import spec_of

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
    return 1.0 - _as_class_probabilities(_predict_mean(model, x)).max(axis=1)


def _margin(model, x):
    p = np.sort(_as_class_probabilities(_predict_mean(model, x)), axis=1)
    return 1.0 - (p[:, -1] - p[:, -2])


def _entropy_score(model, x):
    return _entropy(_as_class_probabilities(_predict_mean(model, x)))


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

    >>> scores = uncertainty(model, x_pool, "margin")
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
    if measure in ("bald", "std"):
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
    if isinstance(candidates, bool) or not isinstance(candidates, (int, np.integer)) or candidates < 1:
        raise ConfigError(f"`candidates` must be a positive integer. Received: candidates={candidates!r}")
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

    def __call__(self, model, x_pool, n, **options):
        return _as_query_result(self.query(model, x_pool, n, **options), len(x_pool), n, self.name)

    def __repr__(self):
        return f"Strategy({self.name!r})"


STRATEGIES = {}


def register_strategy(name, query=None, *, tasks=None, description=""):
    """Registers a query strategy under `name` (usable as a decorator).

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
    @kk.register_strategy("farthest", tasks=("regression",))
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


register_strategy("random", random_sampling, description="uniform random sampling (the baseline)")
for _name, _measure in MEASURES.items():
    register_strategy(_name, _measure_strategy(_name), tasks=_measure.tasks,
                      description=f"top-n by {_measure.description}")
register_strategy("diverse", diverse, tasks=CLASSIFICATION + REGRESSION,
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



# The learner ----------------------------------------------------------------------


def _check_int(value, option, minimum):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"`{option}` must be an integer of at least {minimum}. Received: {option}={value!r}")
    return int(value)


class ActiveLearner:
    """Pool-based active learning with a Keras model: query, label, teach, repeat.

    The learner trains on the labelled rows, `query` ranks unlabelled pool
    rows with the strategy and returns the `n` most informative (indices and
    scores), a person labels them, and `teach` adds the labels and retrains —
    continuing from the current weights by default, or from scratch. Models
    come from `kerakit.build_model` (pass its options here) or from `build`.
    Arguments are checked when the learner is created; the first model is
    trained on the first `query`, `predict` or `fit`.

    Args:
        spec: a `ProblemSpec`.
        strategy: a registered strategy name ("random", "least_confidence",
            "margin", "entropy", "bald", "std", "diverse") or a
            `query(model, x_pool, n)` callable. Defaults to "margin".
        x_labeled, y_labeled: the labelled rows to start from.
        strategy_options: keyword options of the strategy, e.g.
            `{"passes": 20}` for "bald" or `{"base": "entropy"}` for "diverse".
        build: a no-argument callable returning a compiled `keras.Model`,
            instead of `build_model`; Keras is seeded before each call.
        ensemble_size: train this many models (seeds `seed`, `seed + 1`, ...)
            as a deep ensemble; strategies then receive the list. Defaults to 1.
        epochs: epochs of each training from scratch. Defaults to 30.
        teach_epochs: epochs of each warm-start retraining. Defaults to 5.
        repeat: how many times an epoch passes over the labelled rows.
            "auto" (default) repeats them until an epoch has at least
            `MIN_EPOCH_BATCHES` (10) batches, so a handful of labels still
            gets enough gradient steps without thousands of tiny epochs.
        warm_start: `teach` continues from the current weights. Defaults to True.
        batch_size: training batch size. Defaults to 32.
        callbacks: Keras callbacks for every training run.
        validation_data: `(x_val, y_val)` passed to `fit` (needed by callbacks
            that watch validation metrics); never used to choose queries.
        seed: seeds model building, training and random strategies. Defaults to 0.
        verbose: `fit` verbosity. Defaults to 0.
        **model_options: options of `build_model` (units, dropout, body,
            optimizer, learning_rate, ...).

    Example:

    ```python
    learner = kk.ActiveLearner(spec, strategy="margin", x_labeled=x0, y_labeled=y0)
    indices, scores = learner.query(x_pool, n=10)
    learner.teach(x_pool[indices], y_pool[indices])   # a person supplies y_pool[indices]
    learner.score(x_val, y_val)
    ```
    """

    def __init__(self, spec, strategy="margin", *, x_labeled, y_labeled, strategy_options=None,
                 build=None, ensemble_size=1, epochs=30, teach_epochs=5, repeat="auto", warm_start=True,
                 batch_size=32, callbacks=None, validation_data=None, seed=0, verbose=0,
                 **model_options):
        from kerakit.spec import ProblemSpec, validate_labels
        from kerakit.training import validate_features

        if not isinstance(spec, ProblemSpec):
            raise ConfigError(
                f"`spec` must be a kerakit.ProblemSpec (see kerakit.infer_spec). Received: {spec!r}"
            )
        self.spec = spec
        self.strategy = get_strategy(strategy)
        self.strategy_options = dict(strategy_options or {})
        self.strategy.check(spec.task, self.strategy_options)
        if build is not None and not callable(build):
            raise ConfigError(f"`build` must be a callable returning a compiled keras.Model. Received: {build!r}")
        if build is not None and model_options:
            raise ConfigError(
                f"Pass either `build` or build_model options, not both. Received build={build!r} "
                f"and options {sorted(model_options)}."
            )
        self.build = build
        self.model_options = model_options
        self.ensemble_size = _check_int(ensemble_size, "ensemble_size", 1)
        self.epochs = _check_int(epochs, "epochs", 1)
        self.teach_epochs = _check_int(teach_epochs, "teach_epochs", 1)
        self.batch_size = _check_int(batch_size, "batch_size", 1)
        self.repeat = repeat if repeat == "auto" else _check_int(repeat, "repeat", 1)
        self.warm_start = bool(warm_start)
        self.callbacks = callbacks
        self.validation_data = validation_data
        self.seed = _check_int(seed, "seed", 0)
        self.verbose = verbose
        self.x_labeled_ = validate_features(x_labeled, what="x_labeled")
        self.y_labeled_ = validate_labels(spec, y_labeled)
        if len(self.x_labeled_) != len(self.y_labeled_):
            raise DataError(
                f"`x_labeled` has {len(self.x_labeled_)} rows but `y_labeled` has "
                f"{len(self.y_labeled_)}. Each labelled example needs exactly one label row."
            )
        self.members_ = None
        self.rounds_ = 0
        self.queries_ = 0

    # Training -------------------------------------------------------------

    @property
    def model_(self):
        """The trained `keras.Model`, or the list of members of a deep ensemble."""
        if self.members_ is None:
            self.fit()
        return self.members_[0] if self.ensemble_size == 1 else list(self.members_)

    @property
    def n_labeled(self):
        """How many labelled rows the learner trains on."""
        return len(self.y_labeled_)

    def _build(self, index):
        import keras

        seed = self.seed + index
        if self.build is None:
            from kerakit.builders import build_model

            options = dict(self.model_options)
            optimizer = options.get("optimizer")
            if isinstance(optimizer, keras.optimizers.Optimizer):
                # An optimizer object is bound to the variables of its first model;
                # each member and each rebuild gets a fresh one from its config.
                options["optimizer"] = type(optimizer).from_config(optimizer.get_config())
            return build_model(self.spec, input_shape=self.x_labeled_.shape[1:], seed=seed, **options)
        keras.utils.set_random_seed(seed)
        model = self.build()
        if not isinstance(model, keras.Model) or model.optimizer is None:
            raise ConfigError(
                f"`build` must return a compiled keras.Model. Received: {type(model).__name__}, "
                f"{'not compiled' if isinstance(model, keras.Model) else 'not a keras.Model'}. "
                f"Call model.compile(...) inside build and return the model."
            )
        if getattr(model, "_kerakit_spec", None) is None:
            model._kerakit_spec = self.spec
        return model

    def _train(self, model, index, epochs, seed=None):
        from kerakit.training import fit

        x, y = self.x_labeled_, self.y_labeled_
        batches = -(-len(y) // self.batch_size)
        repeat = max(1, -(-MIN_EPOCH_BATCHES // batches)) if self.repeat == "auto" else self.repeat
        if repeat > 1:
            x, y = np.concatenate([x] * repeat), np.concatenate([y] * repeat)
        fit(model, x, y, epochs=epochs, batch_size=self.batch_size, callbacks=self.callbacks,
            validation_data=self.validation_data, verbose=self.verbose, seed=seed, spec=self.spec,
            # The labelled set grows every round; a constant value keeps Keras from
            # retracing the train function each time the step count changes.
            steps_per_execution=min(MIN_EPOCH_BATCHES, batches * repeat))

    def fit(self):
        """Builds fresh models and trains them on the labelled rows. Returns self."""
        self.members_ = [self._build(i) for i in range(self.ensemble_size)]
        for i, model in enumerate(self.members_):
            # Seeding clears TensorFlow's caches (seconds per call), so only fresh
            # models are seeded; later rounds follow deterministically from here.
            self._train(model, i, self.epochs, seed=self.seed + i + 1000 * self.rounds_)
        return self

    def teach(self, x, y, from_scratch=None):
        """Adds labelled rows and retrains.

        Args:
            x, y: the newly labelled rows.
            from_scratch: rebuild the models and train for `epochs` instead of
                continuing for `teach_epochs`. Defaults to `not warm_start`.

        Returns:
            self.
        """
        from kerakit.spec import validate_labels
        from kerakit.training import validate_features

        x = validate_features(x, (None,) + self.x_labeled_.shape[1:], what="x")
        y = validate_labels(self.spec, y) if self.spec.task != "binary" else _binary_labels(self.spec, y)
        if len(x) != len(y):
            raise DataError(f"`x` has {len(x)} rows but `y` has {len(y)}. Pass one label per row.")
        self.x_labeled_ = np.concatenate([self.x_labeled_, x])
        self.y_labeled_ = np.concatenate([self.y_labeled_, y.astype(self.y_labeled_.dtype)])
        self.rounds_ += 1
        fresh = (not self.warm_start) if from_scratch is None else bool(from_scratch)
        if self.members_ is None or fresh:
            return self.fit()
        for i, model in enumerate(self.members_):
            self._train(model, i, self.teach_epochs)
        return self

    # Querying and predicting -----------------------------------------------

    def query(self, x_pool, n=1):
        """Returns the `n` pool rows the strategy most wants labelled.

        Args:
            x_pool: unlabelled features.
            n: how many rows to pick. Defaults to 1.

        Returns:
            A `QueryResult(indices, scores)`: row indices into `x_pool`, most
            informative first, and the strategy's scores (NaN for random).
        """
        from kerakit.training import validate_features

        x_pool = validate_features(x_pool, (None,) + self.x_labeled_.shape[1:], what="x_pool")
        n = _check_int(n, "n", 1)
        if n > len(x_pool):
            raise ConfigError(f"Cannot pick n={n} rows from a pool of {len(x_pool)}. Ask for at most {len(x_pool)}.")
        options = dict(self.strategy_options)
        if "seed" in self.strategy.options and "seed" not in options:
            options["seed"] = self.seed * 100_003 + self.queries_
        result = self.strategy(self.model_, x_pool, n, **options)
        self.queries_ += 1
        return result

    def predict(self, x, return_std=False, passes=20):
        """Predicts (ensemble mean); with `return_std`, also the spread of the predictions.

        With `return_std=True`, returns `(mean, std)` over Monte-Carlo dropout
        passes (one model) or ensemble members.
        """
        if return_std:
            samples = predictive_samples(self.model_, x, passes)
            return samples.mean(axis=0), samples.std(axis=0)
        return _predict_mean(self.model_, x)

    def export_model(self):
        """Returns one plain `keras.Model` that predicts like the learner.

        The model itself, or for a deep ensemble a model that averages its
        members' outputs — built from stock layers, so it saves, loads and
        serves like any Keras model.
        """
        if self.ensemble_size == 1:
            return self.model_
        import keras

        inputs = keras.Input(shape=self.x_labeled_.shape[1:], name="features")
        for i, member in enumerate(self.model_):
            member.name = f"member_{i}"  # a functional model needs unique names inside
        outputs = keras.layers.Average(name="ensemble_mean")([member(inputs) for member in self.model_])
        model = keras.Model(inputs, outputs, name="ensemble")
        model._kerakit_spec = self.spec
        return model

    def evaluate(self, x, y):
        """Held-out metrics (`kerakit.training.metrics_report`) of the current model."""
        from kerakit.training import metrics_report

        return metrics_report(self.spec, y, self.predict(x))

    def score(self, x, y, metric="auto"):
        """One held-out metric: accuracy (classification) or R² (regression) by default."""
        report = self.evaluate(x, y)
        metric = _default_metric(self.spec) if metric == "auto" else metric
        if metric not in report:
            raise unknown_name("metric", metric, [k for k in report if k != "n"])
        return report[metric]


def _binary_labels(spec, y):
    from kerakit.spec import encode_labels

    # A batch of new labels may hold one class only; validate_labels refuses
    # that for a whole data set, not for a few additions.
    y = encode_labels(spec, y)
    values = set(np.unique(y).tolist())
    if y.ndim != 1 or not values <= {0, 1}:
        from kerakit.errors import LabelError

        raise LabelError(f"A binary spec expects labels 0 and 1. Found {sorted(values)[:8]}.")
    return y.astype(np.float32)


_DEFAULT_METRICS = {"binary": "accuracy", "multiclass": "accuracy", "multilabel": "subset_accuracy",
                    "regression": "r2"}
_LOWER_IS_BETTER = {"mse", "rmse", "mae", "log_loss", "hamming_loss"}


def _default_metric(spec):
    return _DEFAULT_METRICS[spec.task]


# Simulation ---------------------------------------------------------------------


class Simulation:
    """What `simulate` measured: labels → metric curves per strategy and seed.

    Attributes:
        labels: the label counts at which every curve was measured.
        curves: `{strategy: {"val": array (seeds, points), "test": array or None}}`.
        metric: the metric name; `higher_is_better` says which way is good.
        baseline: the strategy the others are compared with ("random").
        seeds: the seeds, one row of each curve per seed.
        seconds: wall time of each strategy, all seeds together.
    """

    def __init__(self, labels, curves, metric, baseline, seeds, seconds):
        self.labels = np.asarray(labels)
        self.curves = curves
        self.metric = metric
        self.higher_is_better = metric not in _LOWER_IS_BETTER
        self.baseline = baseline
        self.seeds = tuple(seeds)
        self.seconds = dict(seconds)

    @property
    def strategies(self):
        return list(self.curves)

    def _split(self, split):
        has_test = all(c.get("test") is not None for c in self.curves.values())
        if split == "auto":
            return "test" if has_test else "val"
        valid = ("val", "test", "auto") if has_test else ("val", "auto")
        if split not in valid:
            missing = "" if has_test else " There is no test curve: pass x_test/y_test to simulate."
            raise ConfigError(
                f"`split` must be one of {', '.join(valid)}. Received: split={split!r}.{missing}"
            )
        return split

    def mean_curve(self, strategy, split="auto"):
        """The curve averaged over seeds."""
        return self.curves[strategy][self._split(split)].mean(axis=0)

    def _reached(self, curve, target):
        return curve >= target if self.higher_is_better else curve <= target

    def labels_to_reach(self, target, split="auto"):
        """Labels each strategy needed to first reach `target`, per seed and on average.

        Returns:
            `{strategy: {"per_seed": [labels or None], "mean": float or None,
            "reached": seeds that reached it}}`; `mean` is over all seeds and
            is None unless every seed reached the target within the budget.
        """
        split = self._split(split)
        out = {}
        for name, curves in self.curves.items():
            per_seed = []
            for row in curves[split]:
                hits = np.nonzero(self._reached(row, target))[0]
                per_seed.append(int(self.labels[hits[0]]) if hits.size else None)
            reached = sum(v is not None for v in per_seed)
            mean = float(np.mean(per_seed)) if reached == len(per_seed) else None
            out[name] = {"per_seed": per_seed, "mean": mean, "reached": reached}
        return out

    def compare(self, targets=(), split="auto"):
        """Each strategy against the baseline: a list of rows (dicts) with a verdict.

        For every target: mean labels needed, the baseline's, their ratio and
        "beats", "ties", "does not beat" or "not reached". Without targets
        (and in addition), the label counts where the strategy's mean curve is
        worse than the baseline's.
        """
        split = self._split(split)
        rows = []
        base_curve = self.mean_curve(self.baseline, split)
        for target in targets:
            needed = self.labels_to_reach(target, split)
            base = needed[self.baseline]
            for name in self.strategies:
                if name == self.baseline:
                    continue
                mine = needed[name]
                rows.append({"strategy": name, "target": float(target), "labels": mine["mean"],
                             "baseline_labels": base["mean"], "reached": mine["reached"],
                             "baseline_reached": base["reached"], "seeds": len(self.seeds),
                             "ratio": (mine["mean"] / base["mean"] if mine["mean"] and base["mean"]
                                       else None),
                             "verdict": _verdict(mine, base)})
        for name in self.strategies:
            if name == self.baseline:
                continue
            curve = self.mean_curve(name, split)
            below = self.labels[(curve < base_curve) if self.higher_is_better else (curve > base_curve)]
            rows.append({"strategy": name, "target": None, "mean_metric": float(curve.mean()),
                         "baseline_mean_metric": float(base_curve.mean()),
                         "worse_than_baseline_at": [int(v) for v in below]})
        return rows

    def summary(self, targets=(), split="auto"):
        """The comparison as lines of text, saying plainly where a strategy does not beat the baseline."""
        split = self._split(split)
        lines = []
        for row in self.compare(targets, split):
            name, base = row["strategy"], self.baseline
            if row["target"] is not None:
                sign = ">=" if self.higher_is_better else "<="
                mine = _labels_text(row["labels"], row["reached"], row["seeds"])
                theirs = _labels_text(row["baseline_labels"], row["baseline_reached"], row["seeds"])
                ratio = f" ({row['ratio']:.2f}x {base}'s labels)" if row["ratio"] else ""
                lines.append(f"{name}: {split} {self.metric} {sign} {row['target']:g}: {mine} vs "
                             f"{base} {theirs}{ratio} -> {row['verdict']} {base}")
            else:
                below = row["worse_than_baseline_at"]
                where = (f"worse than {base} at {_ranges(below)} labels" if below
                         else f"never worse than {base}")
                lines.append(f"{name}: mean {split} {self.metric} over the curve {row['mean_metric']:.4f} vs "
                             f"{base} {row['baseline_mean_metric']:.4f}; {where}")
        return lines

    def plot(self, split="auto", targets=()):
        """Labels → metric, mean over seeds with the min–max band. Returns a `Figure`."""
        from matplotlib.figure import Figure

        split = self._split(split)
        fig = Figure(figsize=(7, 4.5), layout="constrained")
        ax = fig.add_subplot()
        for name, curves in self.curves.items():
            values = curves[split]
            style = {"color": "black", "linestyle": "--"} if name == self.baseline else {}
            line, = ax.plot(self.labels, values.mean(axis=0), label=name, linewidth=1.8, **style)
            ax.fill_between(self.labels, values.min(axis=0), values.max(axis=0), alpha=0.15,
                            color=line.get_color())
        for target in targets:
            ax.axhline(target, color="gray", linewidth=0.8, linestyle=":")
        ax.set_xlabel("labelled examples")
        ax.set_ylabel(f"{split} {self.metric}")
        ax.set_title(f"Active learning: mean of {len(self.seeds)} seed(s), band = min to max")
        ax.grid(alpha=0.3)
        ax.legend()
        return fig

    def to_dict(self):
        """Plain lists and numbers, ready for JSON."""
        return {
            "labels": self.labels.tolist(),
            "metric": self.metric,
            "baseline": self.baseline,
            "seeds": list(self.seeds),
            "seconds": self.seconds,
            "curves": {name: {split: (values.tolist() if values is not None else None)
                              for split, values in curves.items()}
                       for name, curves in self.curves.items()},
        }


def _labels_text(mean, reached, seeds):
    if mean is not None:
        return f"{mean:.0f} labels"
    if reached:
        return f"not reached on {seeds - reached} of {seeds} seeds"
    return "not reached within the budget"


def _verdict(mine, base):
    if mine["mean"] is not None and base["mean"] is not None:
        if np.isclose(mine["mean"], base["mean"]):
            return "ties"
        return "beats" if mine["mean"] < base["mean"] else "does not beat"
    # Not every seed got there: the one that got there on more seeds wins.
    if mine["reached"] != base["reached"]:
        return "beats" if mine["reached"] > base["reached"] else "does not beat"
    if mine["reached"] == 0:
        return "not reached: cannot compare with"
    return "cannot be told apart from"


def _ranges(values):
    """[30, 40, 50, 90] with step 10 → '30-50, 90'."""
    if not values:
        return ""
    groups, start, previous = [], values[0], values[0]
    steps = np.diff(values)
    step = int(steps.min()) if steps.size else 0
    for value in values[1:]:
        if value - previous != step:
            groups.append((start, previous))
            start = value
        previous = value
    groups.append((start, previous))
    return ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in groups)


def _initial_indices(rng, spec, y, count):
    from kerakit.spec import class_indices

    picks = rng.choice(len(y), size=count, replace=False)
    if spec.task in CLASSIFICATION and count >= 2:
        classes = class_indices(spec, y)
        if len(np.unique(classes[picks])) < 2:
            # A classifier cannot start from one class; swap one pick for another class.
            others = np.nonzero(classes != classes[picks[0]])[0]
            if others.size:
                picks[-1] = rng.choice(others)
    return picks


def simulate(spec, x_pool, y_pool, x_val, y_val, *, strategies=("margin", "entropy"),
             baseline="random", initial=20, budget=300, step=10, seeds=(0, 1, 2), x_test=None,
             y_test=None, metric="auto", strategy_options=None, progress=None, **learner_options):
    """Replays active learning where every label is known, to compare strategies with random.

    For each seed, one random initial labelled set is shared by every
    strategy; each strategy then queries `step` rows at a time from the rest
    of the pool until `budget` labels, and after every round the model is
    scored on the validation set (and the test set, if given). Queries see
    only the pool: the validation and test sets are used for the curves alone.

    Args:
        spec: a `ProblemSpec`.
        x_pool, y_pool: the pool, with all its labels (revealed as queried).
        x_val, y_val: held-out rows for the validation curve.
        strategies: strategy names or callables to compare. Defaults to
            ("margin", "entropy").
        baseline: the strategy to compare against. Defaults to "random".
        initial: labels to start from. Defaults to 20.
        budget: labels to stop at. Defaults to 300.
        step: rows queried per round (batch mode when above 1). Defaults to 10.
        seeds: one run per seed. Defaults to (0, 1, 2).
        x_test, y_test: optional held-out rows for a reported test curve.
        metric: the curve's metric from `metrics_report`; "auto" is accuracy
            (classification) or R² (regression).
        strategy_options: `{strategy name: {option: value}}`.
        progress: optional `progress(strategy, seed, labels, value)` called
            after each round.
        **learner_options: `ActiveLearner` options (epochs, teach_epochs,
            units, dropout, ...).

    Returns:
        A `Simulation`: curves, `labels_to_reach`, `compare`, `summary`, `plot`.

    Example:

    ```python
    result = kk.simulate(spec, x_pool, y_pool, x_val, y_val, strategies=["margin", "bald"],
                         initial=20, budget=300, step=10, x_test=x_test, y_test=y_test)
    print("\\n".join(result.summary(targets=[0.9, 0.95])))
    result.plot(targets=[0.9, 0.95]).savefig("curves.png")
    ```
    """
    import time

    from kerakit.spec import validate_labels
    from kerakit.training import metrics_report, validate_features

    x_pool = validate_features(x_pool, what="x_pool")
    y_pool = validate_labels(spec, y_pool)
    width = (None,) + x_pool.shape[1:]
    held_out = {"val": (validate_features(x_val, width, what="x_val"), y_val)}
    if (x_test is None) != (y_test is None):
        raise ConfigError("Pass both `x_test` and `y_test`, or neither.")
    if x_test is not None:
        held_out["test"] = (validate_features(x_test, width, what="x_test"), y_test)
    for split, (x, y) in held_out.items():
        if len(x) != len(y):
            raise DataError(f"`x_{split}` has {len(x)} rows but `y_{split}` has {len(y)}.")
    if len(x_pool) != len(y_pool):
        raise DataError(f"`x_pool` has {len(x_pool)} rows but `y_pool` has {len(y_pool)}.")
    initial = _check_int(initial, "initial", 1)
    step = _check_int(step, "step", 1)
    budget = _check_int(budget, "budget", initial + 1)
    if budget > len(x_pool):
        raise ConfigError(f"`budget`={budget} is larger than the pool ({len(x_pool)} rows). Lower it.")
    seeds = [_check_int(s, "seed", 0) for s in seeds]
    if not seeds:
        raise ConfigError("`seeds` is empty. Pass at least one seed, e.g. seeds=(0, 1, 2).")
    metric = _default_metric(spec) if metric == "auto" else metric
    probe = metrics_report(spec, held_out["val"][1], _dummy_predictions(spec, len(held_out["val"][1])))
    if metric not in probe:
        raise unknown_name("metric", metric, [k for k in probe if k != "n"])
    options = dict(strategy_options or {})
    named = {}
    for identifier in [baseline, *[s for s in strategies if s != baseline]]:
        strategy = get_strategy(identifier)
        if strategy.name in named:
            raise ConfigError(f"Strategy '{strategy.name}' is listed twice. List each once.")
        strategy.check(spec.task, options.get(strategy.name, {}))
        named[strategy.name] = strategy
    unknown = sorted(set(options) - set(named))
    if unknown:
        raise ConfigError(f"`strategy_options` names strategies {unknown} that are not compared: {sorted(named)}.")

    scorers = {split: (x, _curve_scorer(spec, metric, y)) for split, (x, y) in held_out.items()}
    labels = list(range(initial, budget, step)) + [budget]
    curves = {name: {split: np.zeros((len(seeds), len(labels))) for split in held_out} for name in named}
    seconds = dict.fromkeys(named, 0.0)
    for s, seed in enumerate(seeds):
        start_rows = _initial_indices(np.random.default_rng(seed), spec, y_pool, initial)
        for name, strategy in named.items():
            began = time.perf_counter()
            learner = ActiveLearner(spec, strategy, x_labeled=x_pool[start_rows],
                                    y_labeled=y_pool[start_rows], seed=seed,
                                    strategy_options=options.get(name), **learner_options)
            unlabeled = np.setdiff1d(np.arange(len(x_pool)), start_rows)
            for point, count in enumerate(labels):
                if point:
                    picks = unlabeled[learner.query(x_pool[unlabeled], count - labels[point - 1]).indices]
                    learner.teach(x_pool[picks], y_pool[picks])
                    unlabeled = np.setdiff1d(unlabeled, picks)
                for split, (x, score) in scorers.items():
                    curves[name][split][s, point] = score(learner.predict(x))
                if progress is not None:
                    progress(name, seed, count, curves[name]["val"][s, point])
            seconds[name] += time.perf_counter() - began
    for name in curves:
        curves[name].setdefault("test", None)
    return Simulation(labels, curves, metric, get_strategy(baseline).name, seeds, seconds)


def _curve_scorer(spec, metric, y):
    """`score(predictions) -> float` for one held-out split, called after every round."""
    from kerakit.spec import class_indices, validate_labels
    from kerakit.training import metrics_report

    y = validate_labels(spec, y)
    if metric == "accuracy" and spec.task in CLASSIFICATION:
        # The full report (ROC-AUC, log loss, ...) costs more than a training round.
        truth = class_indices(spec, y)
        if spec.task == "binary":
            return lambda p: float(np.mean((p.reshape(-1) >= 0.5) == truth))
        return lambda p: float(np.mean(p.argmax(axis=1) == truth))
    return lambda p: metrics_report(spec, y, p)[metric]


def _dummy_predictions(spec, rows):
    """Uniform predictions, only to learn which metric names a report has."""
    width = spec.num_outputs
    if spec.task == "multiclass":
        return np.full((rows, width), 1.0 / width)
    return np.full((rows, width), 0.5)
