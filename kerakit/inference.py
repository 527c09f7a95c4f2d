"""`infer_spec`: the `ProblemSpec` that labels call for, or a refusal that says what to pass.

`integer_labels_task` holds the rule for integer labels (classes or
numbers?), which `infer_spec` and `kerakit.data`'s tables share.
"""

import numpy as np

from kerakit.errors import DataTypeError, LabelError
from kerakit.spec import ProblemSpec, check_finite_labels, is_text, label_array, text_classes


def infer_spec(y, robust=False):
    """Infers the `ProblemSpec` that labels `y` call for.

    Integers or booleans → classification (2 values → binary, more →
    multiclass, sparse) when they read as class codes: up to 20 distinct
    values, or more from 0 with few holes and no long tail (CIFAR-100's
    0-99). Many integers with gaps, an offset or negatives (prices, years,
    counts with a long tail) → regression. `integer_labels_task` holds the
    rule, which `fit_table` shares; string labels → classification with `class_names`;
    one-hot rows → multiclass, one-hot; 0/1 matrices with several ones per
    row → multilabel; probability rows → multiclass, soft; other floats →
    regression (one output per column). Where the labels fit two specs equally
    well (counts 0-30 with a long tail could be classes or numbers), or one
    value lies far from the rest (0-9 plus 10**9), it refuses and names both.

    Args:
        y: labels, shape (n,) or (n, k).
        robust: for regression, use the Huber loss. Defaults to False.

    Example:

    >>> infer_spec([0, 2, 1, 2]).loss
    'sparse_categorical_crossentropy'
    """
    y = label_array(y)
    if is_text(y):
        if y.ndim != 1:
            raise DataTypeError(
                f"String labels must be one column, one label per row. Received shape {y.shape}."
            )
        names = text_classes(y)
        if len(names) < 2:
            raise LabelError(
                f"`y` has a single class ({names[0]!r}): a classifier needs at least two. "
                f"Check that the data was not filtered to one class."
            )
        if len(names) == 2:
            return ProblemSpec(task="binary", class_names=names)
        return ProblemSpec(task="multiclass", num_classes=len(names), class_names=names)
    if y.dtype.kind not in "biuf":
        raise DataTypeError(f"`y` must hold numbers, booleans or strings. Received dtype {y.dtype}.")
    check_finite_labels(y)
    if y.dtype.kind == "b":
        y = y.astype(np.int64)
    integral = y.dtype.kind in "iu" or bool(np.all(np.mod(y, 1) == 0))
    if y.ndim == 1:
        return _infer_vector(y, integral, robust)
    return _infer_matrix(y, robust)


def _infer_vector(y, integral, robust):
    values, counts = np.unique(y, return_counts=True)
    if y.dtype.kind == "f" and not set(values.tolist()) <= {0.0, 1.0}:
        return ProblemSpec(task="regression", robust=robust)
    if not integral:
        return ProblemSpec(task="regression", robust=robust)
    if len(values) == 1:
        raise LabelError(
            f"`y` has a single class ({values[0]}): a classifier needs at least two. "
            f"Check that the data was not filtered to one class."
        )
    if set(values.tolist()) <= {0, 1}:
        return ProblemSpec(task="binary")
    num_classes = int(values.max()) + 1
    task = integer_labels_task(
        values, counts, what="`y`", regression="ProblemSpec(task='regression')",
        classification=f"ProblemSpec(task='multiclass', num_classes={max(num_classes, 2)})")
    if task == "regression":
        return ProblemSpec(task="regression", robust=robust)
    if values.min() < 0:
        raise LabelError(
            f"Integer labels must be class indices from 0. Found {values.min()}. "
            f"For classification, map labels to 0..k-1 (e.g. with sklearn's LabelEncoder); "
            f"for regression, pass floats or ProblemSpec(task='regression')."
        )
    unused = num_classes - len(values)
    if unused > max(len(values), 10):
        raise LabelError(
            f"`y` has {len(values)} distinct integers but the largest is {num_classes - 1}: read "
            f"as class indices that is num_classes={num_classes}, with {unused} classes never "
            f"seen. Map the labels to 0..{len(values) - 1} (e.g. with sklearn's LabelEncoder), "
            f"or pass ProblemSpec(task='multiclass', num_classes={num_classes}) or "
            f"ProblemSpec(task='regression')."
        )
    return ProblemSpec(task="multiclass", num_classes=num_classes, label_format="sparse")


def _infer_matrix(y, robust):
    n, k = y.shape
    binary_cells = bool(np.isin(y, (0, 1)).all())
    row_sums = y.sum(axis=1)
    if binary_cells and np.all(row_sums == 1):
        if k == 2:
            raise LabelError(
                "Cannot tell from a 2-column 0/1 matrix with one 1 per row whether it is one-hot "
                "(2 exclusive classes) or multilabel (2 independent labels). Say which: "
                "ProblemSpec(task='multiclass', num_classes=2, label_format='onehot') or "
                "ProblemSpec(task='multilabel', num_labels=2)."
            )
        return ProblemSpec(task="multiclass", num_classes=k, label_format="onehot")
    if binary_cells:
        return ProblemSpec(task="multilabel", num_labels=k)
    if np.all(y >= 0) and np.allclose(row_sums, 1.0, atol=1e-4):
        return ProblemSpec(task="multiclass", num_classes=k, label_format="soft")
    return ProblemSpec(task="regression", num_targets=k, robust=robust)


# Integer labels: classes or numbers? ------------------------------------------

# Integer labels with at most this many distinct values are read as classes
# (digits 0-9, iris 0-2, 20 contiguous codes). Above it, only codes from 0 or 1
# with few holes and no long tail are; numbers with gaps, an offset or negative
# values are a measurement (regression); the rest is ambiguous and refused.
CLASS_LIMIT = 20
# Above CLASS_LIMIT, codes may leave at most this fraction of 0..max unused...
CODE_HOLES = 0.1
# ...and the rarest class must have at least this fraction of the median class's rows.
CODE_BALANCE = 0.1
# A value further from the others than OUTLIER_FACTOR times their spread (and at
# least OUTLIER_GAP) is a stray value, e.g. a typo: 0-9 plus 10**9.
OUTLIER_FACTOR = 10
OUTLIER_GAP = 100


def _outlier(values, counts):
    """(value, rows, low, high of the others) of a value far from all others, or None."""
    if len(values) < 3:
        return None
    v = values.astype(np.float64)
    if v[-1] - v[-2] > max(OUTLIER_FACTOR * (v[-2] - v[0] + 1), OUTLIER_GAP):
        return values[-1], counts[-1], values[0], values[-2]
    if v[1] - v[0] > max(OUTLIER_FACTOR * (v[-1] - v[1] + 1), OUTLIER_GAP):
        return values[0], counts[0], values[1], values[-1]
    return None


def _number(value):
    value = float(value)
    return int(value) if value.is_integer() else value


def integer_labels_task(values, counts, *, what, classification, regression):
    """Reads integer labels as classes or as numbers: the one rule `infer_spec` and tables share.

    Up to `CLASS_LIMIT` (20) distinct values are classes. More are classes
    only when they look like codes: from 0 or 1, at most 10% of the range
    unused, the rarest value at least a tenth as common as the median one, and
    the median one at least a tenth as common as the commonest (CIFAR-100's
    0-99). Values with gaps, an offset or negatives (counts with
    a long tail, prices, years) are numbers. Codes with a long tail could be
    either (visit counts 0-30, or 30 skewed classes), so they are refused, as
    is a value far from all others (0-9 plus 10**9).

    Args:
        values: the sorted distinct label values (whole numbers).
        counts: rows per value.
        what: how messages name the labels, e.g. "`y`" or "Target 'visits'".
        classification, regression: how the caller says each choice explicitly,
            e.g. "ProblemSpec(task='regression')" or "task='regression'".

    Returns:
        "classification" or "regression".

    Example:

    >>> integer_labels_task(np.arange(10), np.full(10, 50), what="`y`",
    ...                     classification="task='classification'", regression="task='regression'")
    'classification'
    """
    values, counts = np.asarray(values), np.asarray(counts)
    stray = _outlier(values, counts)
    if stray is not None:
        value, rows, low, high = (_number(v) for v in stray)
        raise LabelError(
            f"{what} has the value {value} in {rows} row(s), far outside the other values "
            f"({low} to {high}): a typo or a missing-value code? Read as classes, it would "
            f"stretch the classes to {value}. Fix or drop those rows. If the labels are numbers, "
            f"pass {regression}; if {value} is a real class, pass {classification}."
        )
    k = len(values)
    if k <= CLASS_LIMIT:
        return "classification"
    low, high = _number(values[0]), _number(values[-1])
    span = float(values[-1]) - float(values[0]) + 1
    codes = low in (0, 1) and span - k <= CODE_HOLES * span
    rarest, median, commonest = int(counts.min()), float(np.median(counts)), int(counts.max())
    if not codes:
        return "regression"
    # A long tail shows at either end: a few values far rarer than the median one, or
    # (counts such as visits: most rows on a few small values) a median value far rarer
    # than the commonest.
    if rarest >= CODE_BALANCE * median and median >= CODE_BALANCE * commonest:
        return "classification"
    raise LabelError(
        f"Cannot tell whether {what} holds classes or numbers (counts, ratings): {k} distinct "
        f"integers from {low} to {high}, with a long tail (the rarest value has {rarest} row(s), "
        f"the median one {median:g}, the commonest {commonest}). Say which: {classification} "
        f"or {regression}."
    )
