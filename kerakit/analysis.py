"""Model analysis: A/B comparison, permutation importance and ensembles.

* `compare` / `compare_predictions`: is model B really better than model A on
  the same held-out rows? McNemar's exact test (SciPy's `binomtest`) for
  classification accuracy, a paired bootstrap confidence interval for any
  metric in `METRICS`, and a plain verdict.
* `permutation_importance`: scikit-learn's `permutation_importance` around a
  Keras model, with feature names, sorted; raw-column models take a
  DataFrame (or a dict of columns) and each column is one feature.
* `ensemble`: several members averaged into one saveable `keras.Model`.

Only NumPy is imported with the module; SciPy, scikit-learn and Keras load
when a function needs them.
"""

import dataclasses
import math
import os

import numpy as np

from kerakit.errors import ConfigError, DataError, DataTypeError, unknown_name

# Metrics ----------------------------------------------------------------------
#
# Each metric is computed twice over: once with scikit-learn on the whole set
# (the reported score, identical to `kerakit.evaluate`), and vectorised over a
# batch of bootstrap resamples (2000 scikit-learn calls per model would take
# tens of seconds). The tests check that both agree.


def _labels(spec, y):
    from kerakit.spec import class_indices

    if spec.task == "multiclass":
        return class_indices(spec, y).astype(np.int64)
    if spec.task in ("binary", "multilabel"):
        return y.astype(np.int64)
    return y.reshape(len(y), -1).astype(np.float64)


def _decisions(spec, pred, threshold=0.5):
    """Predicted classes: argmax for multiclass, `>= threshold` for sigmoid outputs."""
    if spec.task == "multiclass":
        return pred.argmax(axis=-1)
    if spec.task == "binary":
        return (pred.reshape(-1) >= threshold).astype(np.int64)
    return (pred >= threshold).astype(np.int64)


def _correct(spec, y, pred):
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


# Whole-set scores, with scikit-learn.


def _sklearn_auc(spec, y, pred):
    from sklearn.metrics import roc_auc_score

    labels = _labels(spec, y)
    if spec.task == "binary":
        return roc_auc_score(labels, pred.reshape(-1))
    if spec.task == "multiclass":
        return roc_auc_score(labels, pred, multi_class="ovr", labels=np.arange(pred.shape[1]))
    return roc_auc_score(labels, pred, average="macro")


_AVERAGE = {"binary": "binary", "multiclass": "macro", "multilabel": "micro"}


def _sklearn_counting(function_name):
    def score(spec, y, pred):
        import sklearn.metrics

        function = getattr(sklearn.metrics, function_name)
        return function(_labels(spec, y), _decisions(spec, pred), average=_AVERAGE[spec.task],
                        zero_division=0)

    return score


def _sklearn_r2(spec, y, pred):
    from sklearn.metrics import r2_score

    return r2_score(_labels(spec, y), pred.reshape(len(pred), -1))


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

METRICS = {
    "accuracy": Metric(_CLASSIFICATION, True, "points", per_example=_correct),
    "auc": Metric(_CLASSIFICATION, True, "points", score=_sklearn_auc, batched=_batched_auc),
    "f1": Metric(_CLASSIFICATION, True, "points", score=_sklearn_counting("f1_score"),
                 batched=_batched_counting(lambda tp, fp, fn: (2 * tp, 2 * tp + fp + fn))),
    "precision": Metric(_CLASSIFICATION, True, "points", score=_sklearn_counting("precision_score"),
                        batched=_batched_counting(lambda tp, fp, fn: (tp, tp + fp))),
    "recall": Metric(_CLASSIFICATION, True, "points", score=_sklearn_counting("recall_score"),
                     batched=_batched_counting(lambda tp, fp, fn: (tp, tp + fn))),
    "log_loss": Metric(("binary", "multiclass"), False, per_example=_log_losses),
    "mse": Metric(("regression",), False, per_example=_squared_errors),
    "rmse": Metric(("regression",), False, per_example=_squared_errors, finish=np.sqrt),
    "mae": Metric(("regression",), False, per_example=_absolute_errors),
    "r2": Metric(("regression",), True, score=_sklearn_r2, batched=_batched_r2),
}

# The metric used when none is named: the one people quote for the task.
DEFAULT_METRIC = {"binary": "accuracy", "multiclass": "accuracy", "multilabel": "accuracy",
                  "regression": "rmse"}


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


# Models, inputs and predictions ---------------------------------------------------


def load_model(model_or_path):
    """Returns a `keras.Model`: the object itself, or one loaded from a `.keras` file or run.

    A run directory (holding `model.keras` and `manifest.json`) is accepted
    too. Files are loaded with `safe_mode=True`, so a model file cannot run
    code; kerakit's own layers (raw-column models, weighted ensembles) are
    registered first. The problem spec is attached when the run's manifest or
    a raw-column model's metadata records it.

    Example:

    >>> model = load_model("runs/digits/20250101-120000-ab12")
    """
    import keras

    from kerakit.runs import resolve_model_path

    if isinstance(model_or_path, keras.Model):
        return model_or_path
    if not isinstance(model_or_path, (str, os.PathLike)):
        raise DataTypeError(
            f"Expected a keras.Model, a .keras file or a run directory. Received: {model_or_path!r}"
        )
    from kerakit.serving.models import load_model as load_keras_file

    path, manifest = resolve_model_path(model_or_path)
    # One safe-mode loader for the whole project: it registers kerakit's own
    # layers and explains a refused Lambda layer.
    model = load_keras_file(path)
    spec = _table_spec(model) or _manifest_spec(manifest)
    if spec is not None and getattr(spec, "num_outputs", None) == _output_width(model):
        model._kerakit_spec = spec
    return model


def _output_width(model):
    shape = model.output_shape
    return shape[-1] if isinstance(shape, tuple) else None


def _table_spec(model):
    from kerakit.data.table import OUTPUT_LAYER, spec_from_metadata, table_metadata

    if OUTPUT_LAYER not in [layer.name for layer in model.layers]:
        return None
    return spec_from_metadata(table_metadata(model))


def _manifest_spec(manifest):
    from kerakit.spec import ProblemSpec

    fields = (manifest or {}).get("spec")
    if not isinstance(fields, dict):
        return None
    try:
        return ProblemSpec(**fields)
    except (TypeError, ValueError):
        return None


def is_table_model(model):
    """True for a raw-column model from `kerakit.data` (it ends in `TableOutput`)."""
    from kerakit.data.table import OUTPUT_LAYER

    return any(layer.name == OUTPUT_LAYER for layer in getattr(model, "layers", ()))


def _input_struct(model):
    """The model's symbolic inputs: a dict for raw-column models, else a tensor."""
    try:
        return model.input
    except (AttributeError, ValueError):
        return None


def model_inputs(model, x):
    """Converts `x` to what `model` takes.

    Raw-column models (a dict of named inputs) accept a DataFrame or a dict of
    columns; each column is shaped like its `keras.Input` and text columns
    become string tensors. Other models get validated float32 arrays.
    """
    from kerakit.training import validate_features

    if is_table_model(model):
        from kerakit.data import table_inputs

        return table_inputs(model, x)
    struct = _input_struct(model)
    if isinstance(struct, dict):
        return _column_inputs(struct, x)
    if hasattr(x, "to_numpy") and not isinstance(x, dict):
        x = x.to_numpy()
    if isinstance(x, dict):
        raise DataTypeError(
            f"This model takes one feature array, but received a dict of columns "
            f"{sorted(x)[:5]}. Pass a numeric array with the training columns in order."
        )
    shape = None
    try:
        shape = tuple(model.input_shape)
    except (AttributeError, ValueError, TypeError):
        pass
    return validate_features(x, shape)


def _column_inputs(struct, x):
    import tensorflow as tf

    if hasattr(x, "columns"):
        columns = {name: x[name].to_numpy() for name in x.columns}
    elif isinstance(x, dict):
        columns = {name: np.asarray(value) for name, value in x.items()}
    else:
        raise DataTypeError(
            f"This model takes named columns {sorted(struct)}; pass a pandas DataFrame or a "
            f"dict of columns. Received: {type(x).__name__}"
        )
    missing = sorted(set(struct) - set(columns))
    if missing:
        raise DataError(
            f"The model needs column(s) {missing}, which the data lacks. Columns received: "
            f"{sorted(columns)}."
        )
    rows = {len(v) for v in columns.values()}
    if len(rows) > 1:
        raise DataError(f"The columns have different lengths: {sorted(rows)}. Pass equal columns.")
    out = {}
    for name, tensor in struct.items():
        value = columns[name]
        shape = (len(value),) + tuple(1 if d is None else d for d in tensor.shape[1:])
        if tensor.dtype == "string":
            value = np.array(["" if v is None else str(v) for v in value.ravel()], dtype=object)
            out[name] = tf.constant(value.reshape(shape), dtype=tf.string)
        else:
            try:
                value = value.astype(tensor.dtype)
            except (TypeError, ValueError):
                raise DataTypeError(
                    f"Column {name!r} must be numeric ({tensor.dtype}); it holds values such as "
                    f"{value.ravel()[:3].tolist()!r}."
                ) from None
            out[name] = value.reshape(shape)
    return out


def _num_rows(x):
    return len(next(iter(x.values()))) if isinstance(x, dict) else len(x)


def _predict(model, x, batch_size=4096):
    """Predictions for inputs already converted by `model_inputs`.

    Calls the model eagerly in chunks: permutation importance makes hundreds
    of calls, and `model.predict` would trace a new function for each new
    batch shape (TensorFlow then warns about retracing).
    """
    n = _num_rows(x)
    parts = []
    for start in range(0, n, batch_size):
        chunk = (
            {k: v[start:start + batch_size] for k, v in x.items()}
            if isinstance(x, dict) else x[start:start + batch_size]
        )
        parts.append(np.asarray(model(chunk, training=False), dtype=np.float64))
    return np.concatenate(parts) if parts else np.zeros((0,))


# Output activation → task, for models loaded from a file (their spec is not saved).
_TASK_OF_ACTIVATION = {"softmax": "multiclass", "sigmoid": "binary", "linear": "regression"}


def spec_from_model(model):
    """Returns the `ProblemSpec` of `model`: the one `build_model` attached, or one
    read off the output layer (softmax → multiclass, sigmoid → binary or multilabel,
    linear → regression). Returns None when the output layer says nothing.
    """
    from kerakit.builders import spec_of
    from kerakit.spec import ProblemSpec

    spec = spec_of(model)
    if spec is not None:
        return spec
    layer = model.layers[-1] if model.layers else None
    activation = getattr(getattr(layer, "activation", None), "__name__", None)
    task = _TASK_OF_ACTIVATION.get(activation)
    width = model.output_shape[-1] if isinstance(model.output_shape, tuple) else None
    if task is None or width is None:
        return None
    if task == "multiclass":
        return ProblemSpec(task="multiclass", num_classes=int(width))
    if task == "binary":
        return ProblemSpec(task="binary") if width == 1 else ProblemSpec(task="multilabel", num_labels=int(width))
    return ProblemSpec(task="regression", num_targets=int(width))


def _resolve_spec(spec, models, y):
    from kerakit.spec import infer_spec

    if spec is not None:
        return spec
    for model in models:
        found = spec_from_model(model)
        if found is not None:
            return found
    return infer_spec(y)


# A/B comparison ----------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Comparison:
    """The result of comparing model A (current) with model B (candidate).

    `difference` is B − A in the metric's own units; for a metric where lower
    is better (RMSE, MAE, log loss) a negative difference favours B.
    `discordant` is `(A right & B wrong, A wrong & B right)` for McNemar's
    test, else None. `str(comparison)` is the verdict.
    """

    metric: str
    score_a: float
    score_b: float
    difference: float
    ci_low: float
    ci_high: float
    p_value: float
    test: str
    significant: bool
    better: str | None
    confidence: float
    n: int
    greater_is_better: bool
    discordant: tuple | None
    verdict: str

    def to_dict(self):
        return dataclasses.asdict(self)

    def __str__(self):
        return self.verdict


def _format_p(p, resamples=None):
    # A bootstrap p-value cannot go below 2 / (resamples + 1): at that floor, say so.
    floor = 2.0 / (resamples + 1) if resamples else 0.0
    if p <= floor * (1 + 1e-9) and floor >= 0.001:
        return f"p ≤ {floor:.2g}"
    if p < 0.001:
        return "p < 0.001"
    return f"p = {p:.3f}" if p < 0.1 else f"p = {p:.2f}"


def _verdict(metric, unit, score_a, score_b, low, high, p_value, test, significant, better,
             confidence, resamples):
    scale, suffix, digits = (100.0, " points", 1) if unit == "points" else (1.0, "", 3)
    diff = (score_b - score_a) * scale
    interval = (
        f"{confidence * 100:g} % CI [{low * scale:.{digits}f}, {high * scale:.{digits}f}]"
    )
    p_text = _format_p(p_value, resamples if test == "paired bootstrap" else None)  # valid resamples
    detail = (
        f"{metric} {score_a * scale:.{digits}f} → {score_b * scale:.{digits}f}: "
        f"{diff:+.{digits}f}{suffix}, {interval}, {p_text} ({test})"
    )
    if significant:
        return f"{better} is better: {detail}"
    return f"No significant difference: {detail}"


def _bootstrap(spec, metric, y, pred_a, pred_b, resamples, seed):
    """Paired bootstrap: both models scored on the same resampled rows; B − A per resample."""
    rng = np.random.default_rng(seed)
    n = len(y)
    diffs = np.empty(resamples)
    # Chunks keep the (resamples, n) index matrix small for large test sets.
    chunk = max(1, 1_000_000 // max(n, 1))
    for start in range(0, resamples, chunk):
        idx = rng.integers(0, n, size=(min(chunk, resamples - start), n))
        diffs[start:start + len(idx)] = (
            metric.resampled(spec, y, pred_b, idx) - metric.resampled(spec, y, pred_a, idx)
        )
    return diffs


def _mcnemar(spec, y, pred_a, pred_b):
    """McNemar's exact test: a binomial test on the rows exactly one model gets right."""
    from scipy.stats import binomtest

    right_a = _correct(spec, y, pred_a).astype(bool)
    right_b = _correct(spec, y, pred_b).astype(bool)
    only_a = int(np.sum(right_a & ~right_b))
    only_b = int(np.sum(~right_a & right_b))
    if only_a + only_b == 0:
        return 1.0, (only_a, only_b)
    return float(binomtest(only_b, only_a + only_b, 0.5).pvalue), (only_a, only_b)


def compare_predictions(y, predictions_a, predictions_b, spec, *, metric="auto", confidence=0.95,
                        resamples=2000, seed=0):
    """Compares two models' predictions on the same rows: difference, CI, p-value, verdict.

    For accuracy the p-value comes from McNemar's exact test on the rows where
    exactly one model is right (`scipy.stats.binomtest`); for every other
    metric it comes from the paired bootstrap. The confidence interval of
    B − A is always the paired bootstrap's percentile interval: both models
    are scored on the same resampled rows, so the noise they share cancels.

    Args:
        y: the true labels.
        predictions_a: model A's outputs (probabilities or values), one row per label.
        predictions_b: model B's outputs.
        spec: the `ProblemSpec`.
        metric: a name in `METRICS` ("accuracy", "auc", "f1", "precision",
            "recall", "log_loss", "mse", "rmse", "mae", "r2"), or "auto":
            accuracy for classification, RMSE for regression.
        confidence: confidence level of the interval; the test's level is
            `1 - confidence`. Defaults to 0.95.
        resamples: bootstrap resamples. Defaults to 2000.
        seed: seed of the bootstrap. Defaults to 0.

    Example:

    >>> result = compare_predictions(y_test, model_a.predict(x_test), model_b.predict(x_test), spec)
    >>> print(result)
    B is better: accuracy 91.0 → 93.1: +2.1 points, 95 % CI [0.8, 3.4], p = 0.003 (McNemar exact)
    """
    from kerakit.spec import validate_labels

    name, chosen = get_metric(metric, spec)
    if not 0 < confidence < 1:
        raise ConfigError(f"`confidence` must be in (0, 1), e.g. 0.95. Received: confidence={confidence!r}")
    if isinstance(resamples, bool) or not isinstance(resamples, int) or resamples < 100:
        raise ConfigError(f"`resamples` must be an integer of at least 100. Received: resamples={resamples!r}")
    y = validate_labels(spec, y)
    preds = []
    for label, pred in (("A", predictions_a), ("B", predictions_b)):
        pred = np.asarray(pred, dtype=np.float64)
        if len(pred) != len(y):
            raise DataError(
                f"Model {label} has {len(pred)} prediction rows for {len(y)} labels. Predict on "
                f"the same rows as the labels."
            )
        if not np.all(np.isfinite(pred)):
            raise DataError(f"Model {label}'s predictions contain NaN or infinite values.")
        if spec.task == "multiclass" and (pred.ndim != 2 or pred.shape[1] != spec.num_classes):
            raise DataError(
                f"Model {label}'s predictions have shape {pred.shape}; a {spec.num_classes}-class "
                f"spec needs (n, {spec.num_classes}) probability rows."
            )
        preds.append(pred)
    pred_a, pred_b = preds
    score_a, score_b = chosen(spec, y, pred_a), chosen(spec, y, pred_b)
    diffs = _bootstrap(spec, chosen, y, pred_a, pred_b, resamples, seed)
    diffs = diffs[np.isfinite(diffs)]
    if len(diffs) < resamples // 2:
        raise DataError(
            f"Metric '{name}' is undefined on most bootstrap resamples of these {len(y)} rows "
            f"(too few examples of some class). Use more rows or another metric."
        )
    alpha = 1 - confidence
    low, high = (float(v) for v in np.quantile(diffs, [alpha / 2, 1 - alpha / 2]))
    discordant = None
    if name == "accuracy":
        p_value, discordant = _mcnemar(spec, y, pred_a, pred_b)
        test = "McNemar exact"
    else:
        # Two-sided bootstrap p-value; +1 so it is never reported as exactly 0.
        tail = min(np.sum(diffs <= 0), np.sum(diffs >= 0))
        p_value = min(1.0, 2 * (tail + 1) / (len(diffs) + 1))
        test = "paired bootstrap"
    difference = score_b - score_a
    significant = bool(p_value < alpha and difference != 0)
    better = None
    if significant:
        better = "B" if (difference > 0) == chosen.greater_is_better else "A"
    verdict = _verdict(name, chosen.unit, score_a, score_b, low, high, p_value, test, significant,
                       better, confidence, len(diffs))
    return Comparison(
        metric=name, score_a=score_a, score_b=score_b, difference=difference, ci_low=low,
        ci_high=high, p_value=float(p_value), test=test, significant=significant, better=better,
        confidence=confidence, n=int(len(y)), greater_is_better=chosen.greater_is_better,
        discordant=discordant, verdict=verdict,
    )


def compare(model_a, model_b, x, y, spec=None, *, metric="auto", confidence=0.95, resamples=2000,
            seed=0):
    """Compares model A (current) with model B (candidate) on held-out `(x, y)`.

    Both models predict the same rows; the difference B − A gets a paired
    test (McNemar's exact test for accuracy, a paired bootstrap for other
    metrics), a bootstrap confidence interval and a plain verdict. See
    `compare_predictions` for the details.

    Args:
        model_a, model_b: `keras.Model`s or paths of `.keras` files (loaded
            with `safe_mode=True`). Raw-column models take `x` as a DataFrame
            or dict of columns.
        x, y: held-out features and labels, never seen in training.
        spec: the `ProblemSpec`; defaults to the one `build_model` attached,
            or one read off the models' output layer.
        metric, confidence, resamples, seed: as in `compare_predictions`.

    Example:

    >>> result = kerakit.compare(current, candidate, x_test, y_test, metric="auc")
    >>> result.significant, result.p_value
    """
    model_a, model_b = load_model(model_a), load_model(model_b)
    spec = _resolve_spec(spec, (model_a, model_b), y)
    pred_a = _predict(model_a, model_inputs(model_a, x))
    pred_b = _predict(model_b, model_inputs(model_b, x))
    return compare_predictions(y, pred_a, pred_b, spec, metric=metric, confidence=confidence,
                               resamples=resamples, seed=seed)


# Permutation importance ---------------------------------------------------------


class _KerasScorer:
    """Lets scikit-learn's `permutation_importance` score a Keras model.

    scikit-learn shuffles the columns of an array or DataFrame; this turns each
    shuffled copy into the model's inputs, predicts, and scores with a kerakit
    metric, signed so that larger is always better (as scikit-learn expects).
    """

    def __init__(self, model, spec, metric, to_inputs):
        self.model = model
        self.spec = spec
        self.metric = metric
        self.to_inputs = to_inputs

    def fit(self, x, y):
        # scikit-learn checks that the estimator has `fit`; permutation
        # importance only scores an already trained model, so this is never
        # called by it.
        raise ConfigError(
            "This wrapper only scores a trained Keras model. Train with kerakit.fit first."
        )

    def __call__(self, estimator, x, y):
        value = self.metric(self.spec, y, _predict(self.model, self.to_inputs(x)))
        return value if self.metric.greater_is_better else -value


@dataclasses.dataclass(frozen=True)
class Importance:
    """Permutation importances, most important feature first.

    `mean[i]` is how much the metric drops (gets worse) when feature
    `features[i]` is shuffled, averaged over `repeats`; `std[i]` its standard
    deviation; `scores[i]` the drop for each repeat. `baseline` is the
    unshuffled metric.
    """

    features: tuple
    mean: np.ndarray
    std: np.ndarray
    scores: np.ndarray
    metric: str
    baseline: float

    def rows(self):
        """Returns `[{"feature", "importance", "std"}, ...]`, most important first."""
        return [
            {"feature": f, "importance": float(m), "std": float(s)}
            for f, m, s in zip(self.features, self.mean, self.std, strict=True)
        ]

    def to_dict(self):
        return {"metric": self.metric, "baseline": self.baseline, "features": self.rows()}


def _feature_table(model, x, feature_names):
    """Returns (table, feature names, converter) for scikit-learn's column shuffling."""
    import pandas as pd

    struct = _input_struct(model)
    if isinstance(struct, dict):
        if isinstance(x, dict):
            # One column per input: (n, 1) arrays become plain columns.
            x = pd.DataFrame({k: np.asarray(v).reshape(len(v), -1)[:, 0] for k, v in x.items()})
        if not hasattr(x, "columns"):
            raise DataTypeError(
                f"This raw-column model takes named columns {sorted(struct)}; pass a DataFrame "
                f"or a dict of columns. Received: {type(x).__name__}"
            )
        # Only the model's own columns are features (a target column is left out).
        table = x[[c for c in x.columns if c in struct]].reset_index(drop=True)
        return table, tuple(str(c) for c in table.columns), lambda t: model_inputs(model, t)
    if hasattr(x, "columns"):
        names = tuple(str(c) for c in x.columns)
        x = x.to_numpy()
    else:
        names = None
    table = model_inputs(model, x)
    if table.ndim != 2:
        raise DataError(
            f"Permutation importance shuffles one column at a time, so it needs a table of "
            f"features (n, k). Received shape {table.shape}."
        )
    if feature_names is not None:
        names = tuple(str(n) for n in feature_names)
    if names is None:
        names = tuple(f"feature_{i}" for i in range(table.shape[1]))
    if len(names) != table.shape[1]:
        raise ConfigError(
            f"`feature_names` has {len(names)} names for {table.shape[1]} feature columns. Pass "
            f"one name per column."
        )
    return table, names, lambda t: t


def permutation_importance(model, x, y, spec=None, *, metric="auto", feature_names=None,
                           n_repeats=5, seed=0, max_samples=1.0):
    """Ranks features by how much shuffling each one hurts the model.

    A thin layer over `sklearn.inspection.permutation_importance`: it shuffles
    one column at a time, `n_repeats` times, and records how much the metric
    gets worse. Use held-out data: on training rows it measures memorisation.

    Args:
        model: a trained `keras.Model` or the path of a `.keras` file. A
            raw-column model (a dict of named inputs, see `kerakit.data`)
            takes `x` as a DataFrame or dict of columns; each column is one
            feature.
        x, y: held-out features and labels.
        spec: the `ProblemSpec`; defaults to the model's.
        metric: a name in `METRICS`, or "auto" (accuracy / RMSE).
        feature_names: names of the columns of an array `x`. Defaults to the
            DataFrame's columns, or "feature_0", "feature_1", ...
        n_repeats: shuffles per feature. Defaults to 5.
        seed: seed of the shuffles. Defaults to 0.
        max_samples: rows (fraction or count) drawn for each repeat.
            Defaults to 1.0 (all rows).

    Example:

    >>> result = kerakit.permutation_importance(model, x_test, y_test,
    ...                                         feature_names=data.feature_names)
    >>> result.features[:3]            # most important first
    >>> fig = kerakit.plot_importance(result)
    """
    from sklearn.inspection import permutation_importance as sklearn_permutation_importance

    from kerakit.spec import validate_labels

    model = load_model(model)
    spec = _resolve_spec(spec, (model,), y)
    name, chosen = get_metric(metric, spec)
    if isinstance(n_repeats, bool) or not isinstance(n_repeats, int) or n_repeats < 1:
        raise ConfigError(f"`n_repeats` must be a positive integer. Received: n_repeats={n_repeats!r}")
    table, names, to_inputs = _feature_table(model, x, feature_names)
    y = validate_labels(spec, y)
    if len(y) != len(table):
        raise DataError(f"`x` has {len(table)} rows but `y` has {len(y)}. Pass one label per row.")
    scorer = _KerasScorer(model, spec, chosen, to_inputs)
    result = sklearn_permutation_importance(
        scorer, table, y, scoring=scorer, n_repeats=n_repeats, random_state=seed,
        max_samples=max_samples,
    )
    order = np.argsort(-result.importances_mean, kind="stable")
    baseline = scorer(None, table, y)
    return Importance(
        features=tuple(names[i] for i in order),
        mean=result.importances_mean[order],
        std=result.importances_std[order],
        scores=result.importances[order],
        metric=name,
        baseline=float(baseline if chosen.greater_is_better else -baseline),
    )


# Ensembles ---------------------------------------------------------------------


def _weighted_average_layer():
    import keras

    @keras.saving.register_keras_serializable(package="kerakit")
    class WeightedAverage(keras.layers.Layer):
        """Weighted mean of its inputs; the weights are fixed numbers in the config."""

        def __init__(self, weights, **kwargs):
            super().__init__(**kwargs)
            self.member_weights = [float(w) for w in weights]

        def call(self, inputs):
            total = sum(self.member_weights)
            return sum(t * (w / total) for t, w in zip(inputs, self.member_weights, strict=True))

        def compute_output_shape(self, input_shape):
            return input_shape[0]

        def get_config(self):
            return {**super().get_config(), "weights": self.member_weights}

    return WeightedAverage


_LAYERS = {}


def _weighted_average_class():
    """Defines and registers `kerakit>WeightedAverage` once (Keras is imported lazily)."""
    if "WeightedAverage" not in _LAYERS:
        _LAYERS["WeightedAverage"] = _weighted_average_layer()
    return _LAYERS["WeightedAverage"]


def _signature(model):
    struct = _input_struct(model)
    if struct is None:
        return None
    if isinstance(struct, dict):
        return {k: (tuple(t.shape[1:]), str(t.dtype)) for k, t in struct.items()}
    if isinstance(struct, (list, tuple)):
        return [(tuple(t.shape[1:]), str(t.dtype)) for t in struct]
    return (tuple(struct.shape[1:]), str(struct.dtype))


def _members(models):
    if hasattr(models, "get_best_models"):
        raise DataTypeError(
            "Received a tuner: use kerakit.ensemble_from_tuner(tuner, top_k=5) to average its "
            "best models."
        )
    models = [load_model(m) for m in models]
    if len(models) < 2:
        raise ConfigError(f"An ensemble needs at least 2 models. Received {len(models)}.")
    return models


def ensemble(models, weights=None, *, spec=None, name="ensemble"):
    """Averages several models' outputs into one saveable `keras.Model`.

    Members must take the same inputs and produce outputs of the same shape.
    Classifiers average their probabilities, regressors their predictions.
    The result is a plain functional model: `save` it, `load_model` it with
    `safe_mode=True`, serve it. It is not compiled (it predicts; compile it
    yourself to train it further), and it shares the members' weights rather
    than copying them.

    Args:
        models: a list of `keras.Model`s or `.keras` paths (tuner top-k,
            cross-validation fold models, or any list).
        weights: optional non-negative weight per member; equal by default.
        spec: the `ProblemSpec`; defaults to the members'. It is attached for
            `kerakit.evaluate`.
        name: the model's name. Defaults to "ensemble".

    Example:

    >>> models = [kk.build_model(spec, input_shape=(64,), seed=s) for s in range(5)]
    >>> for m in models: kk.fit(m, x_train, y_train, epochs=20)
    >>> team = kk.ensemble(models)
    >>> team.save("ensemble.keras")
    """
    import keras

    members = _members(models)
    signature = _signature(members[0])
    if signature is None:
        raise DataTypeError(
            "Ensemble members must be functional or Sequential models with known inputs. "
            "Call the model once on data (or build it with keras.Input) first."
        )
    for i, member in enumerate(members[1:], start=1):
        if _signature(member) != signature:
            raise ConfigError(
                f"Member {i} takes inputs {_signature(member)}, member 0 takes {signature}. "
                f"Every member must take the same inputs."
            )
        if tuple(member.output_shape) != tuple(members[0].output_shape):
            raise ConfigError(
                f"Member {i} outputs shape {member.output_shape}, member 0 outputs "
                f"{members[0].output_shape}. Every member must predict the same thing."
            )
    if weights is not None:
        weights = [float(w) for w in weights]
        if len(weights) != len(members) or any(not math.isfinite(w) or w < 0 for w in weights) \
                or sum(weights) <= 0:
            raise ConfigError(
                f"`weights` must be {len(members)} non-negative numbers, not all zero. "
                f"Received: weights={weights!r}"
            )
    struct = members[0].input
    if isinstance(struct, dict):
        inputs = {k: keras.Input(shape=t.shape[1:], dtype=t.dtype, name=k) for k, t in struct.items()}
    elif isinstance(struct, (list, tuple)):
        inputs = [keras.Input(shape=t.shape[1:], dtype=t.dtype, name=t.name) for t in struct]
    else:
        inputs = keras.Input(shape=struct.shape[1:], dtype=struct.dtype, name="features")
    # Re-wrapping each member under a unique name: models built by the same
    # factory share a name, and a functional model refuses duplicate names.
    outputs = [
        keras.Model(member.input, member.output, name=f"member_{i}")(inputs)
        for i, member in enumerate(members)
    ]
    if weights is None or len(set(weights)) == 1:
        averaged = keras.layers.Average(name="average")(outputs)
    else:
        averaged = _weighted_average_class()(weights, name="average")(outputs)
    model = keras.Model(inputs, averaged, name=name)
    spec = spec or spec_from_model(members[0])
    if spec is not None:
        model._kerakit_spec = spec
    return model


def ensemble_from_tuner(tuner, top_k=5, *, weights=None, spec=None, name="ensemble"):
    """Averages the `top_k` best models of a Keras Tuner search (or of a kerakit tune result).

    Example:

    >>> team = kk.ensemble_from_tuner(tuner, top_k=3)
    """
    tuner = getattr(tuner, "tuner", tuner)
    if not hasattr(tuner, "get_best_models"):
        raise DataTypeError(
            f"Expected a keras_tuner tuner (or a result with a `.tuner`). Received: "
            f"{type(tuner).__name__}"
        )
    return ensemble(tuner.get_best_models(num_models=int(top_k)), weights=weights, spec=spec,
                    name=name)
