"""`ProblemSpec` and label validation (`infer_spec` lives in `kerakit.inference`).

A problem spec says what is being predicted; the head table in `heads.py`
turns it into an output activation, a loss, metrics and a monitor. This
module needs only NumPy, so building a spec is instant.
"""

import dataclasses

import numpy as np

from kerakit import heads
from kerakit.errors import DataTypeError, LabelError, SpecError, closest

TASKS = ("binary", "multilabel", "multiclass", "regression")
LABEL_FORMATS = ("sparse", "onehot", "soft")
_LABEL_FORMAT_ALIASES = {"one-hot": "onehot", "one_hot": "onehot", "categorical": "onehot",
                         "int": "sparse", "integer": "sparse", "probabilities": "soft"}


def _choice_error(option, value, choices):
    hint = closest(value, choices)
    did_you_mean = f" Did you mean '{hint}'?" if hint else ""
    listed = ", ".join(f"'{c}'" for c in choices)
    return SpecError(f"`{option}` must be one of {listed}.{did_you_mean} Received: {option}={value!r}")


@dataclasses.dataclass(frozen=True)
class ProblemSpec:
    """What a model predicts: the task, its label format and its size.

    The spec is validated when it is created and never changes. Its resolved
    head (`activation`, `loss`, `metrics`, `monitor`) comes from one table,
    `kerakit.heads.HEADS`.

    Args:
        task: one of "binary", "multilabel", "multiclass", "regression".
        num_classes: number of classes for "multiclass" (at least 2).
        label_format: for "multiclass", how labels are written: "sparse"
            (integers in `[0, num_classes)`), "onehot" (rows of 0/1 summing to
            1) or "soft" (rows of probabilities; trained with KL divergence).
            Defaults to "sparse".
        num_labels: number of independent 0/1 labels for "multilabel".
        num_targets: number of real-valued outputs for "regression".
            Defaults to 1.
        robust: for "regression", train with the Huber loss instead of mean
            squared error, so outliers in the target do not dominate.
            Defaults to False.
        class_names: optional names of the classes (or labels), in the order
            of the model's outputs; labels given as these names are encoded.

    Example:

    >>> spec = ProblemSpec(task="multiclass", num_classes=10)
    >>> spec.activation, spec.loss
    ('softmax', 'sparse_categorical_crossentropy')
    """

    task: str
    num_classes: int | None = None
    label_format: str = "sparse"
    num_labels: int | None = None
    num_targets: int | None = None
    robust: bool = False
    class_names: tuple | None = None

    def __post_init__(self):
        if self.task not in TASKS:
            raise _choice_error("task", self.task, TASKS)
        fmt = _LABEL_FORMAT_ALIASES.get(self.label_format, self.label_format)
        if fmt not in LABEL_FORMATS:
            raise _choice_error("label_format", self.label_format, LABEL_FORMATS)
        object.__setattr__(self, "label_format", fmt)
        if self.class_names is not None:
            object.__setattr__(self, "class_names", tuple(self.class_names))
        _CHECKS[self.task](self)
        if self.robust and self.task != "regression":
            raise SpecError(
                f"`robust=True` applies to regression only (it selects the Huber loss). "
                f"Received: task={self.task!r}, robust=True. Remove `robust` or use "
                f"task='regression'."
            )

    # Resolved head -------------------------------------------------------

    @property
    def head(self):
        """The key of this spec's row in `kerakit.heads.HEADS`."""
        return heads.row_key(self.task, self.label_format)

    @property
    def activation(self):
        return heads.HEADS[self.head]["activation"]

    @property
    def loss(self):
        row = heads.HEADS[self.head]
        return row["robust_loss"] if self.robust else row["loss"]

    @property
    def metrics(self):
        """Names of the metrics compiled into the model, as Keras logs them."""
        return tuple(name for name, _, _ in heads.HEADS[self.head]["metrics"])

    @property
    def monitor(self):
        return heads.MONITOR

    @property
    def num_outputs(self):
        """Width of the output layer."""
        return {
            "binary": 1,
            "multilabel": self.num_labels,
            "multiclass": self.num_classes,
            "regression": self.num_targets,
        }[self.task]

    @property
    def top_k(self):
        """`k` of the top-k accuracy metric: 5, or fewer when there are few classes."""
        return max(1, min(5, (self.num_classes or 2) - 1))

    @property
    def is_classification(self):
        return self.task != "regression"

    # Serialization (Keras's get_config / from_config pair) -------------

    def to_config(self):
        """Returns the spec as a JSON-serializable dict; `from_config` rebuilds it.

        Example:

        >>> spec = ProblemSpec(task="multiclass", num_classes=3, class_names=("a", "b", "c"))
        >>> ProblemSpec.from_config(spec.to_config()) == spec
        True
        """
        config = dataclasses.asdict(self)
        if self.class_names is not None:
            # NumPy scalars (np.str_, np.int64) become plain Python values for JSON.
            config["class_names"] = [n.item() if isinstance(n, np.generic) else n for n in self.class_names]
        return config

    @classmethod
    def from_config(cls, config):
        """Rebuilds a spec from `to_config()`; keys of a newer kerakit are ignored."""
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in dict(config).items() if k in fields})


def _check_positive_int(spec, option, minimum):
    value = getattr(spec, option)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise SpecError(
            f"`{option}` must be an integer of at least {minimum} for task={spec.task!r}. "
            f"Received: {option}={value!r}"
        )
    object.__setattr__(spec, option, int(value))


def _forbid(spec, *options):
    for option in options:
        if getattr(spec, option) is not None:
            raise SpecError(
                f"`{option}` does not apply to task={spec.task!r}. "
                f"Received: {option}={getattr(spec, option)!r}. Remove it."
            )


def _check_class_names(spec, count):
    names = spec.class_names
    if names is not None and len(names) != count:
        raise SpecError(
            f"`class_names` must have one name per output ({count}). "
            f"Received {len(names)} names: {names!r}"
        )


def _check_binary(spec):
    if spec.num_classes not in (None, 2):
        raise SpecError(
            f"A binary problem has exactly 2 classes. Received: num_classes={spec.num_classes!r}. "
            f"For more classes use ProblemSpec(task='multiclass', num_classes={spec.num_classes!r})."
        )
    object.__setattr__(spec, "num_classes", None)
    _forbid(spec, "num_labels", "num_targets")
    _check_class_names(spec, 2)


def _check_multilabel(spec):
    _check_positive_int(spec, "num_labels", 1)
    _forbid(spec, "num_classes", "num_targets")
    _check_class_names(spec, spec.num_labels)


def _check_multiclass(spec):
    if spec.num_classes is None and spec.class_names is not None:
        object.__setattr__(spec, "num_classes", len(spec.class_names))
    _check_positive_int(spec, "num_classes", 2)
    _forbid(spec, "num_labels", "num_targets")
    _check_class_names(spec, spec.num_classes)


def _check_regression(spec):
    if spec.num_targets is None:
        object.__setattr__(spec, "num_targets", 1)
    _check_positive_int(spec, "num_targets", 1)
    _forbid(spec, "num_classes", "num_labels", "class_names")


_CHECKS = {
    "binary": _check_binary,
    "multilabel": _check_multilabel,
    "multiclass": _check_multiclass,
    "regression": _check_regression,
}


# Label arrays ---------------------------------------------------------------


def label_array(y, what="y"):
    """Labels as a NumPy vector (n,) or matrix (n, k); an (n, 1) column becomes a vector."""
    if y is None:
        raise LabelError(f"`{what}` is None. Pass the labels as an array with one row per example.")
    if hasattr(y, "to_numpy"):  # pandas Series / DataFrame
        y = y.to_numpy()
    y = np.asarray(y)
    if y.size == 0:
        raise LabelError(f"`{what}` is empty (shape {y.shape}). Pass at least one labelled example.")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim > 2:
        raise LabelError(
            f"`{what}` must be a vector (n,) or a matrix (n, k). Received shape {y.shape}."
        )
    return y


def is_text(y):
    """True for string (or object) labels."""
    return y.dtype.kind in "OUS"


def check_finite_labels(y, what="y"):
    """Refuses NaN or infinite float labels, naming the first rows."""
    if y.dtype.kind == "f":
        bad = ~np.isfinite(y)
        if bad.any():
            rows = np.unique(np.nonzero(bad)[0] if bad.ndim == 1 else np.nonzero(bad.any(axis=1))[0])
            raise LabelError(
                f"`{what}` has {rows.size} row(s) with NaN or infinite labels "
                f"(first rows: {rows[:5].tolist()}). Drop those rows or fill the labels "
                f"before training."
            )


def text_classes(y):
    """The sorted distinct string labels, refusing missing ones and mixed types."""
    values = [v for v in y.ravel()]
    missing = [i for i, v in enumerate(values) if v is None or (isinstance(v, float) and np.isnan(v))]
    if missing:
        raise LabelError(
            f"`y` has {len(missing)} missing label(s) (first rows: {missing[:5]}). "
            f"Drop those rows or fill the labels before training."
        )
    kinds = {type(v).__name__ for v in values}
    if len(kinds) > 1 and not kinds <= {"str", "str_"}:
        raise DataTypeError(
            f"`y` mixes label types {sorted(kinds)}. Use one type for every label, "
            f"for example all strings."
        )
    return tuple(sorted(set(values), key=str))


# Validation --------------------------------------------------------------


def encode_labels(spec, y):
    """Maps string labels to class indices using `spec.class_names`."""
    y = label_array(y)
    if not is_text(y):
        return y
    if spec.task == "regression":
        sample = [v for v in y.ravel()[:3]]
        raise DataTypeError(
            f"Regression targets must be numbers. Received strings such as {sample!r}. "
            f"Convert them to floats, or use a classification spec if they are classes."
        )
    if spec.class_names is None:
        raise LabelError(
            f"Labels are strings ({text_classes(y)[:5]!r}...) but the spec has no `class_names`. "
            f"Build the spec with kerakit.infer_spec(y) or pass class_names=... ."
        )
    index = {name: i for i, name in enumerate(spec.class_names)}
    unknown = sorted({v for v in y.tolist() if v not in index}, key=str)
    if unknown:
        raise LabelError(
            f"Labels {unknown[:5]!r} are not among the spec's class_names {list(spec.class_names)!r}."
        )
    return np.array([index[v] for v in y.tolist()], dtype=np.int64)


def validate_labels(spec, y):
    """Checks labels against `spec` and returns them as a training-ready array.

    Raises a `LabelError` (a `ValueError`) naming what was found, what the spec
    expects and how to fix it: one-hot rows for a sparse spec, integers for a
    one-hot spec, a label outside `[0, num_classes)`, NaN labels, a single class
    in a binary problem, and so on.

    Example:

    >>> validate_labels(ProblemSpec(task="binary"), [0, 1, 1]).dtype
    dtype('float32')
    """
    y = encode_labels(spec, y)
    if y.dtype.kind == "b":
        y = y.astype(np.int64)
    if y.dtype.kind not in "iuf":
        raise DataTypeError(f"Labels must be numbers. Received dtype {y.dtype}.")
    check_finite_labels(y)
    return _VALIDATORS[spec.head](spec, y)


def _values_text(values, limit=8):
    values = np.unique(values)
    text = ", ".join(str(v) for v in values[:limit].tolist())
    return "{" + text + (", ..." if len(values) > limit else "") + "}"


def _validate_binary(spec, y):
    if y.ndim != 1:
        raise LabelError(
            f"A binary spec expects one 0/1 label per row, shape (n,) or (n, 1). Received shape "
            f"{y.shape}. For {y.shape[1]} independent labels use "
            f"ProblemSpec(task='multilabel', num_labels={y.shape[1]})."
        )
    values = np.unique(y)
    if not set(values.tolist()) <= {0, 1}:
        k = int(values.max()) + 1 if np.all(np.mod(values, 1) == 0) and values.min() >= 0 else None
        fix = (f"use ProblemSpec(task='multiclass', num_classes={k})" if k
               else "map the labels to 0 and 1")
        raise LabelError(
            f"A binary spec expects labels 0 and 1. Found {_values_text(values)}. "
            f"For more than two classes {fix}."
        )
    if len(values) < 2:
        raise LabelError(
            f"A binary problem needs both classes, but every label is {values[0]:g}. "
            f"Check that the data was not filtered to one class."
        )
    return y.astype(np.float32)


def _validate_sparse(spec, y):
    if y.ndim == 2:
        raise LabelError(
            f"The spec expects sparse integer labels, shape (n,), but the labels are a "
            f"matrix of shape {y.shape} (one-hot rows?). Use "
            f"ProblemSpec(task='multiclass', num_classes={y.shape[1]}, label_format='onehot'), "
            f"or pass y.argmax(axis=1)."
        )
    if not np.all(np.mod(y, 1) == 0):
        raise LabelError(
            f"Sparse labels must be integer class indices. Found non-integers such as "
            f"{y[np.mod(y, 1) != 0][:3].tolist()}. For probability rows use label_format='soft'."
        )
    bad = (y < 0) | (y >= spec.num_classes)
    if bad.any():
        fixes = []
        if (y < 0).any():  # more classes cannot hold a negative index
            fixes.append("map negative labels to class indices 0..k-1 (e.g. with sklearn's "
                         "LabelEncoder), or drop those rows")
        if (y >= spec.num_classes).any():
            fixes.append(f"raise num_classes to {int(y.max()) + 1}")
        raise LabelError(
            f"Labels must be in [0, {spec.num_classes}) for num_classes={spec.num_classes}. "
            f"Found {_values_text(y[bad])} in {int(bad.sum())} row(s). To fix it, "
            f"{' and '.join(fixes)}, or fix the labels."
        )
    return y.astype(np.int32)


def _validate_matrix(spec, y, what):
    if y.ndim != 2:
        raise LabelError(
            f"The spec expects {what} of shape (n, {spec.num_outputs}), but the labels are a "
            f"vector of shape {y.shape} (integer class indices?). Use label_format='sparse' "
            f"with integer labels, or convert with keras.utils.to_categorical(y, {spec.num_outputs})."
        )
    if y.shape[1] != spec.num_outputs:
        raise LabelError(
            f"The spec expects {spec.num_outputs} columns of {what}; the labels have "
            f"{y.shape[1]}. Fix the spec's size or the labels."
        )


def _validate_onehot(spec, y):
    _validate_matrix(spec, y, "one-hot rows")
    if not (np.isin(y, (0, 1)).all() and np.all(y.sum(axis=1) == 1)):
        raise LabelError(
            "One-hot labels must be rows of 0/1 with exactly one 1. Some rows are not. For "
            "probability rows use label_format='soft'; for several labels per row use "
            "task='multilabel'."
        )
    return y.astype(np.float32)


def _validate_soft(spec, y):
    _validate_matrix(spec, y, "probability rows")
    sums = y.sum(axis=1)
    if np.any(y < 0) or not np.allclose(sums, 1.0, atol=1e-3):
        raise LabelError(
            f"Soft labels must be non-negative rows summing to 1. Row sums range from "
            f"{sums.min():.3g} to {sums.max():.3g}. Normalize each row (y / y.sum(1, keepdims=True))."
        )
    return y.astype(np.float32)


def _validate_multilabel(spec, y):
    if y.ndim == 1:
        y = y[:, None]
    _validate_matrix(spec, y, "0/1 labels")
    if not np.isin(y, (0, 1)).all():
        raise LabelError(
            f"Multilabel targets must be 0 or 1. Found {_values_text(y[~np.isin(y, (0, 1))])}."
        )
    return y.astype(np.float32)


def _validate_regression(spec, y):
    width = 1 if y.ndim == 1 else y.shape[1]
    if width != spec.num_targets:
        raise LabelError(
            f"The spec has num_targets={spec.num_targets}; the targets have {width} column(s). "
            f"Use ProblemSpec(task='regression', num_targets={width})."
        )
    return y.astype(np.float32)


_VALIDATORS = {
    "binary": _validate_binary,
    "multilabel": _validate_multilabel,
    "multiclass/sparse": _validate_sparse,
    "multiclass/onehot": _validate_onehot,
    "multiclass/soft": _validate_soft,
    "regression": _validate_regression,
}


def class_indices(spec, y):
    """Returns class indices (n,) for classification labels in any format."""
    y = np.asarray(y)
    if spec.task == "multiclass" and spec.label_format != "sparse":
        return y.argmax(axis=1)
    return y.astype(np.int64).reshape(len(y), -1)[:, 0] if spec.task == "binary" else y
