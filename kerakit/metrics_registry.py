"""One table of metrics: name, direction, the tasks that report it, how to compute it.

Two families of names meet in kerakit. Held-out reports (`kerakit.evaluate`,
run manifests, `kerakit runs`, active-learning scores, `compare`) use
scikit-learn's names: `accuracy`, `roc_auc`, `r2`. Training logs, monitors
and tuning objectives use the names Keras logs: `val_auc`,
`sparse_categorical_accuracy`, `loss`. Both are rows of `METRICS`, so whether
a metric is maximized, and which metric stands for a task, is written once.

Nothing but the standard library is imported with the module; scikit-learn
loads when a metric is computed.

Example:

>>> default_metric("regression"), direction("val_rmse")
('r2', 'min')
"""

import dataclasses
import math

from kerakit.errors import ConfigError, unknown_name


@dataclasses.dataclass(frozen=True)
class MetricInfo:
    """A metric: its name, whether larger is better, and where it applies.

    Args:
        name: the name in reports (or in Keras's logs, for a log-only metric).
        direction: "max" or "min".
        tasks: tasks whose held-out report holds this metric; empty for a
            name that only appears in Keras's training logs.
        compute: `compute(spec, y, pred, threshold)` → float, from validated
            labels (`kerakit.validate_labels`) and the model's outputs; None
            for a log-only metric.
    """

    name: str
    direction: str
    tasks: tuple = ()
    compute: object = None

    @property
    def greater_is_better(self):
        return self.direction == "max"


# How report metrics are computed (scikit-learn, as `kerakit.evaluate` reports them) ------


def truth(spec, y):
    """Labels as the metrics compare them: class indices, 0/1 ints, or an (n, targets) matrix."""
    from kerakit.spec import class_indices

    if spec.task == "multiclass":
        return class_indices(spec, y)
    if spec.task == "binary":
        return y.reshape(-1).astype(int)
    if spec.task == "multilabel":
        return y.astype(int)
    return y.reshape(len(y), -1)


def decisions(spec, pred, threshold=0.5):
    """Predicted classes: argmax for softmax outputs, `>= threshold` for sigmoid ones."""
    if spec.task == "multiclass":
        return pred.argmax(axis=1)
    if spec.task == "binary":
        return (pred.reshape(-1) >= threshold).astype(int)
    return (pred >= threshold).astype(int)


# Averaging of precision / recall / F1 over classes (labels) per task.
_AVERAGE = {"binary": "binary", "multiclass": "macro", "multilabel": "micro"}


def _counting(function_name, average=None):
    def compute(spec, y, pred, threshold=0.5):
        import sklearn.metrics

        function = getattr(sklearn.metrics, function_name)
        return function(truth(spec, y), decisions(spec, pred, threshold),
                        average=average or _AVERAGE[spec.task], zero_division=0)

    return compute


def _sklearn(function_name, on="decisions"):
    def compute(spec, y, pred, threshold=0.5):
        import sklearn.metrics

        function = getattr(sklearn.metrics, function_name)
        if on == "decisions":
            return function(truth(spec, y), decisions(spec, pred, threshold))
        return function(truth(spec, y), pred.reshape(len(pred), -1))

    return compute


def _roc_auc(spec, y, pred, threshold=0.5):
    """ROC-AUC, or NaN where it is undefined (a class absent from the labels)."""
    import numpy as np
    from sklearn.metrics import roc_auc_score

    labels = truth(spec, y)
    if spec.task == "binary":
        return roc_auc_score(labels, pred.reshape(-1)) if len(np.unique(labels)) == 2 else math.nan
    if spec.task == "multiclass":
        if len(np.unique(labels)) != pred.shape[1]:
            return math.nan
        return roc_auc_score(labels, pred, multi_class="ovr", labels=np.arange(pred.shape[1]))
    usable = [j for j in range(labels.shape[1]) if len(np.unique(labels[:, j])) == 2]
    return roc_auc_score(labels[:, usable], pred[:, usable], average="macro") if usable else math.nan


def _log_loss(spec, y, pred, threshold=0.5):
    import numpy as np
    from sklearn.metrics import log_loss

    labels = truth(spec, y)
    if spec.task == "binary":
        return log_loss(labels, np.clip(pred.reshape(-1), 1e-7, 1 - 1e-7), labels=[0, 1])
    # float32 softmax rows sum to 1 only up to rounding; scikit-learn warns on that.
    pred = np.clip(pred, 1e-7, 1)
    return log_loss(labels, pred / pred.sum(axis=1, keepdims=True), labels=np.arange(pred.shape[1]))


def _rmse(spec, y, pred, threshold=0.5):
    return math.sqrt(_sklearn("mean_squared_error", on="values")(spec, y, pred))


def _r2(spec, y, pred, threshold=0.5):
    return _sklearn("r2_score", on="values")(spec, y, pred) if len(y) > 1 else math.nan


_CLASSIFICATION = ("binary", "multiclass", "multilabel")

_REPORT = (
    MetricInfo("accuracy", "max", ("binary", "multiclass"), _sklearn("accuracy_score")),
    MetricInfo("subset_accuracy", "max", ("multilabel",), _sklearn("accuracy_score")),
    MetricInfo("hamming_loss", "min", ("multilabel",), _sklearn("hamming_loss")),
    MetricInfo("precision", "max", _CLASSIFICATION, _counting("precision_score")),
    MetricInfo("recall", "max", _CLASSIFICATION, _counting("recall_score")),
    MetricInfo("f1", "max", _CLASSIFICATION, _counting("f1_score")),
    MetricInfo("f1_macro", "max", ("multilabel",), _counting("f1_score", "macro")),
    MetricInfo("roc_auc", "max", _CLASSIFICATION, _roc_auc),
    MetricInfo("log_loss", "min", ("binary", "multiclass"), _log_loss),
    MetricInfo("mse", "min", ("regression",), _sklearn("mean_squared_error", on="values")),
    MetricInfo("rmse", "min", ("regression",), _rmse),
    MetricInfo("mae", "min", ("regression",), _sklearn("mean_absolute_error", on="values")),
    MetricInfo("r2", "max", ("regression",), _r2),
)

# Names Keras logs during training (monitors, tuning objectives), without "val_".
_KERAS_MAXIMIZED = (
    "acc", "binary_accuracy", "categorical_accuracy", "sparse_categorical_accuracy",
    "top_k_accuracy", "top_k_categorical_accuracy", "sparse_top_k_categorical_accuracy",
    "auc", "cosine_similarity", "f1_score", "fbeta_score", "r2_score",
)
_KERAS_MINIMIZED = (
    "loss", "mean_absolute_error", "mean_squared_error", "root_mean_squared_error",
    "mean_absolute_percentage_error", "huber", "log_cosh", "kl_divergence", "binary_crossentropy",
    "categorical_crossentropy", "sparse_categorical_crossentropy", "hinge", "squared_hinge",
)

METRICS = {
    **{m.name: m for m in _REPORT},
    **{n: MetricInfo(n, "max") for n in _KERAS_MAXIMIZED},
    **{n: MetricInfo(n, "min") for n in _KERAS_MINIMIZED},
}

# Each task's headline metric first (the default of `compare`, `permutation_importance`,
# `ActiveLearner.score` and the key metric of a run), then the one shown when a
# report lacks it (ROC-AUC when only one class was in the test rows, say).
KEY_METRICS = {
    "binary": ("accuracy", "roc_auc"),
    "multiclass": ("accuracy",),
    "multilabel": ("subset_accuracy", "f1"),
    "regression": ("r2", "rmse"),
}


def default_metric(task):
    """The metric that stands for `task` when none is named.

    Example:

    >>> default_metric("multilabel")
    'subset_accuracy'
    """
    if task not in KEY_METRICS:
        raise unknown_name("task", task, KEY_METRICS)
    return KEY_METRICS[task][0]


def get(name):
    """Returns the `MetricInfo` for a report or Keras log name ("val_" is ignored).

    Example:

    >>> get("val_auc").direction
    'max'
    """
    if isinstance(name, MetricInfo):
        return name
    base = name[4:] if isinstance(name, str) and name.startswith("val_") else name
    if base not in METRICS:
        raise unknown_name("metric", name, METRICS)
    return METRICS[base]


def direction(name):
    """Returns "max" or "min" for a known metric name, or None for an unknown one.

    Example:

    >>> direction("val_accuracy"), direction("val_loss"), direction("my_metric")
    ('max', 'min', None)
    """
    base = name[4:] if name.startswith("val_") else name
    info = METRICS.get(base)
    return info.direction if info is not None else None


def greater_is_better(name):
    """True when larger values of metric `name` are better (see `direction`)."""
    return get(name).greater_is_better


def for_task(task):
    """The report metrics of `task`, in report order."""
    return tuple(m for m in _REPORT if task in m.tasks)


def compute(name, spec, y, pred, threshold=0.5):
    """Computes report metric `name` from validated labels and predictions.

    Args:
        name: a report metric of `spec.task` (see `for_task`).
        spec: the `ProblemSpec`.
        y: labels as `kerakit.validate_labels(spec, y)` returns them.
        pred: the model's outputs (probabilities or values).
        threshold: decision threshold for sigmoid outputs. Defaults to 0.5.

    Example:

    >>> from kerakit.spec import ProblemSpec
    >>> y, proba = [0, 1, 1, 0], [0.2, 0.9, 0.4, 0.3]
    >>> compute("accuracy", ProblemSpec(task="binary"), y, proba)
    0.75
    """
    import numpy as np

    info = get(name)
    if spec.task not in info.tasks:
        valid = ", ".join(f"'{m.name}'" for m in for_task(spec.task))
        raise ConfigError(
            f"Metric '{info.name}' is not reported for task={spec.task!r}. "
            f"Metrics for this task: {valid}."
        )
    return float(info.compute(spec, np.asarray(y), np.asarray(pred, dtype=np.float64), threshold))


# What a printed metric means: the positive class, how classes are averaged ------

# The metrics whose value depends on which class is positive or how classes are averaged.
_PER_CLASS = ("precision", "recall", "f1", "f1_macro", "roc_auc")


def _positive_class(spec):
    names = spec.class_names
    return f"positive class: {str(names[1])!r}" if names else "positive class: 1"


def _averaged(average, spec):
    if spec.task == "multiclass":
        return f"{average} average over {spec.num_classes} classes"
    names = spec.class_names
    what = f"{spec.num_labels} labels" + (f" ({', '.join(map(str, names))})" if names else "")
    return f"{average} average over {what}"


def metric_note(name, spec):
    """What a held-out metric's value refers to, or None where it needs no words.

    Binary precision, recall and F1 count the positive class (the model's
    output, the second of `spec.class_names`); multiclass ones are the
    unweighted mean over classes (macro), multilabel ones pool every label's
    decisions (micro; `f1_macro` averages per label); ROC-AUC is macro
    averaged over classes or labels.

    Example:

    >>> from kerakit.spec import ProblemSpec
    >>> metric_note("precision", ProblemSpec(task="binary", class_names=["healthy", "sick"]))
    "positive class: 'sick'"
    >>> metric_note("f1", ProblemSpec(task="multiclass", num_classes=3))
    'macro average over 3 classes'
    """
    base = get(name).name
    if base not in _PER_CLASS or spec.task not in get(base).tasks:
        return None
    if spec.task == "binary":
        return _positive_class(spec)
    if base in ("f1_macro", "roc_auc"):
        return _averaged("macro", spec)
    return _averaged(_AVERAGE[spec.task], spec)


def metric_notes(spec, names):
    """`{name: note}` for the report metrics among `names` that need one (see `metric_note`).

    Example:

    >>> from kerakit.spec import ProblemSpec
    >>> metric_notes(ProblemSpec(task="multiclass", num_classes=3), ["accuracy", "recall", "n"])
    {'recall': 'macro average over 3 classes'}
    """
    found = {}
    for name in names:
        if name in METRICS:
            note = metric_note(name, spec)
            if note is not None:
                found[name] = note
    return found
