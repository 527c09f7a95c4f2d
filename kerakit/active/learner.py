"""`ActiveLearner`: the pool-based loop — query, a person labels, teach, repeat."""

import numpy as np

from kerakit import metrics_registry
from kerakit.active.queries import get_strategy
from kerakit.active.sampling import predict_mean, predictive_samples
from kerakit.backend import set_random_seed
from kerakit.checks import check_callbacks, check_count
from kerakit.errors import ConfigError, DataError, unknown_name
from kerakit.metadata import attach_spec, spec_of, spec_output

# With repeat="auto", the labelled rows are repeated until an epoch has at
# least this many batches: Keras spends ~10 ms per epoch outside the steps,
# which dominates when a few dozen labels make one batch.
MIN_EPOCH_BATCHES = 10


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
        self.ensemble_size = check_count("ensemble_size", ensemble_size, 1)
        self._check_sampling()
        self.epochs = check_count("epochs", epochs, 1)
        self.teach_epochs = check_count("teach_epochs", teach_epochs, 1)
        self.batch_size = check_count("batch_size", batch_size, 1)
        self.repeat = repeat if repeat == "auto" else check_count("repeat", repeat, 1)
        self.warm_start = bool(warm_start)
        self.callbacks = check_callbacks(callbacks)
        self.validation_data = validation_data
        self.seed = check_count("seed", seed, 0)
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

    def _check_sampling(self):
        """Refuses MC dropout without dropout now, not at the first query after training."""
        measure = self.strategy.samples(self.spec.task, self.strategy_options)
        dropout = self.model_options.get("dropout")
        if measure is None or self.ensemble_size > 1 or self.build is not None or dropout is None:
            return
        try:
            rates = np.asarray(dropout, dtype=np.float64)
        except (TypeError, ValueError):
            return  # not a rate: build_model names the problem
        if rates.size == 0 or not np.any(rates > 0):
            raise ConfigError(
                f"Strategy '{self.strategy.name}' scores rows by {measure!r} over Monte-Carlo "
                f"dropout passes, but dropout={dropout!r} builds a model without dropout, so every "
                f"pass would give the same prediction. Pass dropout=0.2 (or more), or "
                f"ensemble_size=5 for a deep ensemble."
            )

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
        set_random_seed(seed)
        model = self.build()
        if not isinstance(model, keras.Model) or model.optimizer is None:
            raise ConfigError(
                f"`build` must return a compiled keras.Model. Received: {type(model).__name__}, "
                f"{'not compiled' if isinstance(model, keras.Model) else 'not a keras.Model'}. "
                f"Call model.compile(...) inside build and return the model."
            )
        if spec_of(model) is None:
            attach_spec(model, self.spec)
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
        n = check_count("n", n, 1)
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
        return predict_mean(self.model_, x)

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
        return keras.Model(inputs, spec_output(outputs, self.spec), name="ensemble")

    def evaluate(self, x, y):
        """Held-out metrics (`kerakit.training.metrics_report`) of the current model."""
        from kerakit.training import metrics_report, validate_features

        x = validate_features(x, (None,) + self.x_labeled_.shape[1:], what="x")
        if y is None or len(x) != len(y):
            raise DataError(
                f"`x` has {len(x)} rows but `y` has {None if y is None else len(y)}. Pass one "
                f"label per row."
            )
        return metrics_report(self.spec, y, self.predict(x))

    def score(self, x, y, metric="auto"):
        """One held-out metric: accuracy (classification) or R² (regression) by default."""
        report = self.evaluate(x, y)
        metric = metrics_registry.default_metric(self.spec.task) if metric == "auto" else metric
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
