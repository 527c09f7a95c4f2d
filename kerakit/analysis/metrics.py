"""Metrics for `kerakit.analysis`: each computed on the whole set and on many bootstrap resamples.

Only NumPy is imported with the module; SciPy and scikit-learn load when a
metric needs them.
"""

import dataclasses

import numpy as np

from kerakit import metrics_registry
from kerakit.errors import ConfigError, unknown_name

# Metrics ----------------------------------------------------------------------
#
# Each metric is computed twice over: once on the whole set by kerakit.metrics_registry
# (the reported score, identical to `kerakit.evaluate`), and vectorised over a
# batch of bootstrap resamples (2000 scikit-learn calls per model would take
# tens of seconds). The tests check that both agree.


def _labels(spec, y):
    """The registry's labels (`metrics_registry.truth`), as int64 classes or float64 targets."""
    labels = metrics_registry.truth(spec, y)
    return labels.astype(np.float64 if spec.task == "regression" else np.int64)


def _decisions(spec, pred):
    return metrics_registry.decisions(spec, pred)


def correct(spec, y, pred):
    """Per-example 0/1 correctness (a multilabel row is correct when every label is)."""
    hit = _decisions(spec, pred) == _labels(spec, y)
    return hit.reshape(len(hit), -1).all(axis=1).astype(np.float64)


def _log_losses(spec, y, pred):
    """Per-example log loss, clipped as scikit-learn's `log_loss` after renormalising."""
    labels = _labels(spec, y)
    if spec.task == "multiclass":
        pred = np.clip(pred, 1e-7, 1)
        pred = pred / pred.sum(axis=1, keepdims=True)
        return -np.log(np.clip(pred[np.arange(len(labels)), labels], 1e-15, 1))
    p = np.clip(pred.reshape(-1), 1e-7, 1 - 1e-7)
    return -(labels * np.log(p) + (1 - labels) * np.log(1 - p))


def _squared_errors(spec, y, pred):
    return ((_labels(spec, y) - pred.reshape(len(pred), -1)) ** 2).mean(axis=1)


def _absolute_errors(spec, y, pred):
    return np.abs(_labels(spec, y) - pred.reshape(len(pred), -1)).mean(axis=1)


# Whole-set scores: the registry's own (kerakit.metrics_registry), as `kerakit.evaluate` reports them.


def _registry(name):
    return lambda spec, y, pred: metrics_registry.compute(name, spec, y, pred)


# Batched versions: `idx` is a (resamples, n) matrix of row indices.


def _columns(spec, y, pred):
    """(labels, scores) as (n, columns) 0/1 and score matrices: one column per class/label."""
    labels = _labels(spec, y)
    if spec.task == "multiclass":
        return (labels[:, None] == np.arange(pred.shape[1])).astype(np.int64), pred
    return labels.reshape(len(labels), -1), pred.reshape(len(pred), -1)


def _batched_auc(spec, y, pred, idx):
    from scipy.stats import rankdata

    labels, scores = _columns(spec, y, pred)
    per_column = []
    for j in range(labels.shape[1]):
        positive = labels[idx, j]
        ranks = rankdata(scores[idx, j], axis=1)  # ties share the average rank, as in AUC
        n_pos = positive.sum(axis=1)
        n_neg = positive.shape[1] - n_pos
        with np.errstate(divide="ignore", invalid="ignore"):
            auc = ((ranks * positive).sum(axis=1) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
        per_column.append(np.where((n_pos > 0) & (n_neg > 0), auc, np.nan))
    # A class absent from a resample leaves its AUC undefined, and so the average
    # (scikit-learn refuses it too); such resamples are dropped by the caller.
    return np.mean(per_column, axis=0)


def _confusion_counts(spec, y, pred, idx):
    """True/false positives and false negatives per resample and column."""
    labels = _labels(spec, y)
    decided = _decisions(spec, pred)
    if spec.task == "multiclass":
        classes = np.arange(pred.shape[1])
        truth = labels[idx][..., None] == classes
        guess = decided[idx][..., None] == classes
    else:
        truth = labels.reshape(len(labels), -1)[idx].astype(bool)
        guess = decided.reshape(len(decided), -1)[idx].astype(bool)
    tp = (truth & guess).sum(axis=1)
    fp = (~truth & guess).sum(axis=1)
    fn = (truth & ~guess).sum(axis=1)
    if spec.task == "multilabel":  # micro average: pool every label
        return tp.sum(axis=1, keepdims=True), fp.sum(axis=1, keepdims=True), fn.sum(axis=1, keepdims=True)
    if spec.task == "binary":  # the positive class only
        return tp[:, -1:], fp[:, -1:], fn[:, -1:]
    return tp, fp, fn


def _batched_counting(ratio):
    def batched(spec, y, pred, idx):
        tp, fp, fn = _confusion_counts(spec, y, pred, idx)
        numerator, denominator = ratio(tp, fp, fn)
        with np.errstate(divide="ignore", invalid="ignore"):
            value = np.where(denominator > 0, numerator / np.maximum(denominator, 1), 0.0)
        # Macro average over the classes present in the truth or the predictions,
        # as scikit-learn does.
        present = (tp + fp + fn) > 0
        return (value * present).sum(axis=1) / np.maximum(present.sum(axis=1), 1)

    return batched


def _batched_r2(spec, y, pred, idx):
    truth = _labels(spec, y)[idx]
    guess = pred.reshape(len(pred), -1)[idx]
    residual = ((truth - guess) ** 2).sum(axis=1)
    total = ((truth - truth.mean(axis=1, keepdims=True)) ** 2).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = np.where(total > 0, 1 - residual / total, np.nan)
    return r2.mean(axis=1)


@dataclasses.dataclass(frozen=True)
class Metric:
    """A metric `compare` and `permutation_importance` can use.

    Either `per_example(spec, y, pred)` gives one value per row and the metric
    is `finish(mean)`, or `score(spec, y, pred)` computes it on the whole set
    with scikit-learn and `batched(spec, y, pred, idx)` on many resamples at
    once (`idx`: a (resamples, n) matrix of row indices).
    """

    tasks: tuple
    greater_is_better: bool
    # "points": shown ×100 (accuracy 0.912 → 91.2); "value": shown as is.
    unit: str = "value"
    per_example: object = None
    finish: object = None
    score: object = None
    batched: object = None

    def __call__(self, spec, y, pred):
        if self.per_example is not None:
            value = float(np.mean(self.per_example(spec, y, pred)))
            return float(self.finish(value)) if self.finish else value
        return float(self.score(spec, y, pred))

    def resampled(self, spec, y, pred, idx):
        """The metric on each resample `y[idx[i]]`, as a vector."""
        if self.per_example is not None:
            means = self.per_example(spec, y, pred)[idx].mean(axis=1)
            return self.finish(means) if self.finish else means
        return self.batched(spec, y, pred, idx)


_CLASSIFICATION = ("binary", "multiclass", "multilabel")

# Report name → this module's name: its "accuracy" is the share of rows fully
# right (for multilabel, subset accuracy), its "auc" is the report's ROC-AUC.
_NAMES = {"subset_accuracy": "accuracy", "roc_auc": "auc"}


def _better(name):
    """Direction from kerakit.metrics_registry, the one table."""
    return metrics_registry.get(name).greater_is_better


METRICS = {
    "accuracy": Metric(_CLASSIFICATION, _better("accuracy"), "points", per_example=correct),
    "auc": Metric(_CLASSIFICATION, _better("roc_auc"), "points", score=_registry("roc_auc"), batched=_batched_auc),
    "f1": Metric(_CLASSIFICATION, _better("f1"), "points", score=_registry("f1"),
                 batched=_batched_counting(lambda tp, fp, fn: (2 * tp, 2 * tp + fp + fn))),
    "precision": Metric(_CLASSIFICATION, _better("precision"), "points",
                        score=_registry("precision"),
                        batched=_batched_counting(lambda tp, fp, fn: (tp, tp + fp))),
    "recall": Metric(_CLASSIFICATION, _better("recall"), "points", score=_registry("recall"),
                     batched=_batched_counting(lambda tp, fp, fn: (tp, tp + fn))),
    "log_loss": Metric(("binary", "multiclass"), _better("log_loss"), per_example=_log_losses),
    "mse": Metric(("regression",), _better("mse"), per_example=_squared_errors),
    "rmse": Metric(("regression",), _better("rmse"), per_example=_squared_errors, finish=np.sqrt),
    "mae": Metric(("regression",), _better("mae"), per_example=_absolute_errors),
    "r2": Metric(("regression",), _better("r2"), score=_registry("r2"), batched=_batched_r2),
}

# The metric used when none is named: the task's default in kerakit.metrics_registry.
DEFAULT_METRIC = {task: _NAMES.get(names[0], names[0]) for task, names in metrics_registry.KEY_METRICS.items()}


def get_metric(name, spec):
    """Returns `(name, Metric)` for `name` ("auto" picks the task's usual one)."""
    if name in ("auto", None):
        name = DEFAULT_METRIC[spec.task]
    key = str(name).lower().replace("-", "_").replace("roc_auc", "auc")
    if key not in METRICS:
        raise unknown_name("metric", name, METRICS)
    metric = METRICS[key]
    if spec.task not in metric.tasks:
        valid = ", ".join(f"'{k}'" for k, m in METRICS.items() if spec.task in m.tasks)
        raise ConfigError(
            f"Metric '{key}' does not apply to task={spec.task!r}. Metrics for this task: {valid}."
        )
    return key, metric
