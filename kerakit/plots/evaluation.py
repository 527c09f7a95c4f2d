"""Figures for a training run: learning curves, confusion matrix, ROC, regression fit.

Every function returns a `matplotlib.figure.Figure` drawn on the Agg canvas
and never calls `show()` or touches pyplot's global state, so plots work on
headless machines and inside servers, and the caller decides whether to save
(`run.save_figure(name, fig)` or `fig.savefig(path)`) or display them.
"""

import numpy as np

from kerakit.errors import ConfigError


def _figure(width=6.4, height=4.8, columns=1, rows=1):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(rows, columns, squeeze=False)
    return figure, axes


def _logs(history):
    logs = getattr(history, "history", history)
    if not isinstance(logs, dict) or not logs:
        raise ConfigError(
            "`history` must be a keras History or a non-empty dict of per-epoch lists "
            f"(e.g. {{'loss': [...], 'val_loss': [...]}}). Received: {type(history).__name__}."
        )
    return logs


def learning_curves(history, metrics=None):
    """Plots training and validation curves, one panel per metric.

    Args:
        history: a Keras `History` or a dict such as `{"loss": [...], "val_loss": [...]}`.
        metrics: names to plot (without the `val_` prefix). Defaults to every
            logged metric except the learning rate.

    Returns:
        A matplotlib `Figure`.

    Example:

    >>> history = {"loss": [1.0, 0.5, 0.3], "val_loss": [1.1, 0.7, 0.6]}
    >>> fig = learning_curves(history)
    >>> [ax.get_title() for ax in fig.axes]
    ['loss']
    """
    logs = _logs(history)
    names = metrics or [k for k in logs if not k.startswith("val_") and k not in ("learning_rate", "lr")]
    names = names or [k[4:] for k in logs if k.startswith("val_")]
    columns = min(3, len(names))
    rows = -(-len(names) // columns)
    figure, axes = _figure(4.2 * columns, 3.2 * rows, columns, rows)
    for ax, name in zip(axes.ravel(), names, strict=False):
        for key, label, style in ((name, "train", "-"), (f"val_{name}", "validation", "--")):
            if key in logs:
                values = np.asarray(logs[key], dtype=float)
                ax.plot(np.arange(1, len(values) + 1), values, style, label=label)
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend()
    for ax in axes.ravel()[len(names):]:
        ax.set_visible(False)
    return figure


def confusion_matrix(y_true, y_pred, class_names=None, normalize=False):
    """Plots the confusion matrix of class indices (rows: true class, columns: predicted).

    Args:
        y_true: true class indices, shape (n,).
        y_pred: predicted class indices, shape (n,).
        class_names: names of the classes, in index order. Defaults to the indices.
        normalize: show row fractions (recall per class) instead of counts.
            Defaults to False.

    Example:

    >>> fig = confusion_matrix([0, 1, 1, 2], [0, 1, 2, 2], class_names=["a", "b", "c"])
    """
    from sklearn import metrics

    y_true = np.asarray(y_true).reshape(-1)
    y_pred = np.asarray(y_pred).reshape(-1)
    count = int(max(y_true.max(initial=0), y_pred.max(initial=0))) + 1
    if class_names is not None:
        count = max(count, len(class_names))
    labels = list(range(count))
    names = [str(n) for n in class_names] if class_names is not None else [str(i) for i in labels]
    matrix = metrics.confusion_matrix(y_true, y_pred, labels=labels)
    shown = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1) if normalize else matrix
    size = max(4.0, 0.45 * count + 2.5)
    figure, axes = _figure(size, size * 0.9)
    ax = axes[0, 0]
    image = ax.imshow(shown, cmap="Blues", vmin=0)
    figure.colorbar(image, ax=ax, shrink=0.8)
    threshold = shown.max() / 2 if shown.size else 0
    for i in range(count):
        for j in range(count):
            text = f"{shown[i, j]:.2f}" if normalize else str(matrix[i, j])
            ax.text(j, i, text, ha="center", va="center", fontsize=8 if count > 8 else 10,
                    color="white" if shown[i, j] > threshold else "black")
    ax.set_xticks(labels, names, rotation=45 if max(map(len, names)) > 3 else 0)
    ax.set_yticks(labels, names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    accuracy = np.trace(matrix) / max(matrix.sum(), 1)
    ax.set_title(f"confusion matrix (accuracy {accuracy:.3f}, n={int(matrix.sum())})")
    return figure


def multilabel_confusion(y_true, y_pred, label_names=None):
    """Plots one 2×2 confusion matrix per label of a multilabel problem."""
    from sklearn import metrics

    y_true = np.asarray(y_true).astype(int)
    y_pred = np.asarray(y_pred).astype(int)
    matrices = metrics.multilabel_confusion_matrix(y_true, y_pred)
    k = len(matrices)
    names = [str(n) for n in label_names] if label_names is not None else [f"label {j}" for j in range(k)]
    columns = min(4, k)
    rows = -(-k // columns)
    figure, axes = _figure(2.6 * columns, 2.6 * rows, columns, rows)
    for ax, matrix, name in zip(axes.ravel(), matrices, names, strict=False):
        ax.imshow(matrix, cmap="Blues", vmin=0)
        for i in range(2):
            for j in range(2):
                ax.text(j, i, str(matrix[i, j]), ha="center", va="center",
                        color="white" if matrix[i, j] > matrix.max() / 2 else "black")
        ax.set_xticks([0, 1], ["0", "1"])
        ax.set_yticks([0, 1], ["0", "1"])
        ax.set_title(name)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
    for ax in axes.ravel()[k:]:
        ax.set_visible(False)
    return figure


def roc_curves(y_true, scores, class_names=None):
    """Plots ROC curves with their AUC: one curve for binary, one per class (one-vs-rest) otherwise.

    Args:
        y_true: binary labels (n,), class indices (n,) for multiclass, or a
            0/1 matrix (n, k) for multilabel.
        scores: predicted probabilities, (n,) or (n, 1) for binary, (n, k) otherwise.
        class_names: names of the classes or labels. Defaults to the indices.

    Example:

    >>> fig = roc_curves([0, 1, 1, 0], [0.2, 0.9, 0.6, 0.4])
    """
    from sklearn import metrics

    y_true = np.asarray(y_true)
    scores = np.asarray(scores, dtype=float)
    if scores.ndim == 1 or scores.shape[1] == 1:
        curves = [("positive class", y_true.reshape(-1).astype(int), scores.reshape(-1))]
    else:
        k = scores.shape[1]
        indicator = y_true.astype(int) if y_true.ndim == 2 else np.eye(k, dtype=int)[y_true.astype(int)]
        names = [str(n) for n in class_names] if class_names is not None else [str(j) for j in range(k)]
        curves = [(names[j], indicator[:, j], scores[:, j]) for j in range(k)]
    figure, axes = _figure(6.0, 5.0)
    ax = axes[0, 0]
    areas = []
    for name, truth, score in curves:
        if len(np.unique(truth)) < 2:
            continue  # ROC is undefined when the test split holds one class only
        fpr, tpr, _ = metrics.roc_curve(truth, score)
        area = metrics.auc(fpr, tpr)
        areas.append(area)
        ax.plot(fpr, tpr, linewidth=1.5 if len(curves) == 1 else 1.0, label=f"{name} (AUC {area:.3f})")
    ax.plot([0, 1], [0, 1], ":", color="gray", label="chance")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    title = "ROC" if len(curves) == 1 else "ROC, one-vs-rest"
    if areas:
        title += f" (mean AUC {np.mean(areas):.3f})" if len(curves) > 1 else f" (AUC {areas[0]:.3f})"
    ax.set_title(title)
    ax.legend(fontsize=7 if len(curves) > 5 else 9, loc="lower right")
    ax.grid(alpha=0.3)
    return figure


def _regression_pair(y_true, y_pred):
    y_true = np.asarray(y_true, dtype=float).reshape(len(y_true), -1)
    y_pred = np.asarray(y_pred, dtype=float).reshape(len(y_pred), -1)
    if y_true.shape != y_pred.shape:
        raise ConfigError(
            f"`y_true` and `y_pred` must have the same shape. Received {y_true.shape} and "
            f"{y_pred.shape}."
        )
    return y_true, y_pred


def predicted_vs_actual(y_true, y_pred, target_names=None):
    """Scatter of predicted against actual values with the ideal diagonal and R².

    Example:

    >>> fig = predicted_vs_actual([1.0, 2.0, 3.0], [1.1, 1.9, 3.2])
    """
    from sklearn import metrics

    y_true, y_pred = _regression_pair(y_true, y_pred)
    k = y_true.shape[1]
    names = list(target_names) if target_names is not None else [f"target {j}" for j in range(k)]
    figure, axes = _figure(4.8 * min(k, 3), 4.5 * -(-k // 3), min(k, 3), -(-k // 3))
    for j, ax in enumerate(axes.ravel()[:k]):
        low = min(y_true[:, j].min(), y_pred[:, j].min())
        high = max(y_true[:, j].max(), y_pred[:, j].max())
        ax.scatter(y_true[:, j], y_pred[:, j], s=14, alpha=0.7)
        ax.plot([low, high], [low, high], "--", color="gray", label="ideal")
        r2 = metrics.r2_score(y_true[:, j], y_pred[:, j]) if len(y_true) > 1 else float("nan")
        ax.set_title(f"{names[j] if k > 1 else 'predicted vs actual'} (R² {r2:.3f})")
        ax.set_xlabel("actual")
        ax.set_ylabel("predicted")
        ax.grid(alpha=0.3)
        ax.legend()
    for ax in axes.ravel()[k:]:
        ax.set_visible(False)
    return figure


def residuals(y_true, y_pred):
    """Residuals (actual − predicted) against the prediction, and their histogram.

    Example:

    >>> fig = residuals([1.0, 2.0, 3.0], [1.1, 1.9, 3.2])
    """
    y_true, y_pred = _regression_pair(y_true, y_pred)
    error = (y_true - y_pred).ravel()
    figure, axes = _figure(10.0, 4.0, 2, 1)
    left, right = axes[0]
    left.scatter(y_pred.ravel(), error, s=14, alpha=0.7)
    left.axhline(0, linestyle="--", color="gray")
    left.set_xlabel("predicted")
    left.set_ylabel("residual (actual − predicted)")
    left.set_title("residuals")
    left.grid(alpha=0.3)
    right.hist(error, bins=min(30, max(5, len(error) // 5)))
    right.set_xlabel("residual")
    right.set_ylabel("count")
    right.set_title(f"residual spread (MAE {np.abs(error).mean():.3g}, RMSE {np.sqrt((error ** 2).mean()):.3g})")
    return figure


def evaluation_figures(spec, y_true, predictions, threshold=0.5):
    """The standard held-out plots for a problem spec, as `{name: Figure}`.

    Classification: "confusion_matrix" and "roc"; regression:
    "predicted_vs_actual" and "residuals". Labels may be in any format the
    spec accepts (sparse, one-hot, soft, class names).

    Example:

    ```python
    figures = evaluation_figures(spec, y_test, kerakit.predict(model, x_test))
    sorted(figures)
    # ['confusion_matrix', 'roc']
    ```
    """
    from kerakit.spec import class_indices, validate_labels

    y = validate_labels(spec, y_true)
    predictions = np.asarray(predictions, dtype=float)
    if spec.task == "regression":
        return {"predicted_vs_actual": predicted_vs_actual(y, predictions),
                "residuals": residuals(y, predictions)}
    names = spec.class_names
    if spec.task == "multilabel":
        return {"confusion_matrix": multilabel_confusion(y, predictions >= threshold, names),
                "roc": roc_curves(y, predictions, names)}
    truth = class_indices(spec, y)
    if spec.task == "binary":
        predicted = (predictions.reshape(-1) >= threshold).astype(int)
        return {"confusion_matrix": confusion_matrix(truth, predicted, names or ("0", "1")),
                "roc": roc_curves(truth, predictions.reshape(-1))}
    return {"confusion_matrix": confusion_matrix(truth, predictions.argmax(axis=1), names),
            "roc": roc_curves(truth, predictions, names)}


def metric_bars(results, metrics=None, title=None):
    """Grouped bars comparing models on a few metrics, e.g. one model per loss.

    Args:
        results: `{model name: {metric: value}}`.
        metrics: which metrics to show. Defaults to those every model has.
        title: the figure's title.

    Example:

    >>> fig = metric_bars({"mse": {"rmse": 2.1, "mae": 1.2}, "huber": {"rmse": 1.4, "mae": 0.9}})
    """
    if not results:
        raise ConfigError("`results` must map at least one model name to its metrics.")
    names = list(results)
    metrics = metrics or [m for m in next(iter(results.values())) if all(m in r for r in results.values())]
    figure, axes = _figure(max(5.0, 1.2 * len(names) * len(metrics)), 4.0)
    ax = axes[0, 0]
    width = 0.8 / len(names)
    positions = np.arange(len(metrics))
    for i, name in enumerate(names):
        values = [float(results[name][m]) for m in metrics]
        bars = ax.bar(positions + (i - (len(names) - 1) / 2) * width, values, width, label=name)
        ax.bar_label(bars, fmt="%.3g", fontsize=8)
    ax.set_xticks(positions, metrics)
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    if title:
        ax.set_title(title)
    return figure
