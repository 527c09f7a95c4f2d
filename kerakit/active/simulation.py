"""`simulate`: replay active learning where every label is known, against random sampling."""

import numpy as np

from kerakit import metrics_registry
from kerakit.active.learner import ActiveLearner
from kerakit.active.queries import CLASSIFICATION, get_strategy
from kerakit.checks import check_count
from kerakit.errors import ConfigError, DataError, unknown_name


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
        self.higher_is_better = metrics_registry.direction(metric) != "min"
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
        from kerakit.plots.active import plot_active_learning

        return plot_active_learning(self, self._split(split), targets)

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
    from kerakit.training import validate_features

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
    initial = check_count("initial", initial, 1)
    step = check_count("step", step, 1)
    budget = check_count("budget", budget, initial + 1)
    if budget > len(x_pool):
        raise ConfigError(f"`budget`={budget} is larger than the pool ({len(x_pool)} rows). Lower it.")
    seeds = [check_count("seed", s, 0) for s in seeds]
    if not seeds:
        raise ConfigError("`seeds` is empty. Pass at least one seed, e.g. seeds=(0, 1, 2).")
    metric = metrics_registry.default_metric(spec.task) if metric == "auto" else metric
    reported = [m.name for m in metrics_registry.for_task(spec.task)]
    if metric not in reported:
        raise unknown_name("metric", metric, reported)
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
    """`score(predictions) -> float` for one held-out split, called after every round.

    One metric from the registry, not the whole report: ROC-AUC and log loss
    would cost more than a training round.
    """
    from kerakit.spec import validate_labels

    y = validate_labels(spec, y)
    return lambda p: metrics_registry.compute(metric, spec, y, p)
