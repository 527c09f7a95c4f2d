"""A/B comparison for `kerakit.analysis`: `compare`, `compare_predictions` and `Comparison`.

McNemar's exact test (SciPy's `binomtest`) for classification accuracy, a
paired bootstrap confidence interval for any metric in `METRICS`, and a plain
verdict. Only NumPy is imported with the module.
"""

import dataclasses

import numpy as np

from kerakit.analysis.loading import model_inputs, resolve_spec
from kerakit.analysis.metrics import correct, get_metric
from kerakit.checks import check_count, check_fraction
from kerakit.errors import DataError
from kerakit.saving import load_model
from kerakit.training import predict_in_chunks

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

    right_a = correct(spec, y, pred_a).astype(bool)
    right_b = correct(spec, y, pred_b).astype(bool)
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

    ```python
    result = compare_predictions(y_test, model_a.predict(x_test), model_b.predict(x_test), spec)
    print(result)
    # B is better: accuracy 91.0 → 93.1: +2.1 points, 95 % CI [0.8, 3.4], p = 0.003 (McNemar exact)
    ```
    """
    from kerakit.spec import validate_labels

    name, chosen = get_metric(metric, spec)
    check_fraction("confidence", confidence, example=0.95)
    check_count("resamples", resamples, minimum=100)
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

    ```python
    result = kerakit.compare(current, candidate, x_test, y_test, metric="auc")
    result.significant, result.p_value
    ```
    """
    model_a, model_b = load_model(model_a), load_model(model_b)
    spec = resolve_spec(spec, (model_a, model_b), y)
    pred_a = np.asarray(predict_in_chunks(model_a, model_inputs(model_a, x)), dtype=np.float64)
    pred_b = np.asarray(predict_in_chunks(model_b, model_inputs(model_b, x)), dtype=np.float64)
    return compare_predictions(y, pred_a, pred_b, spec, metric=metric, confidence=confidence,
                               resamples=resamples, seed=seed)
