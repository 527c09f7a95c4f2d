"""The target column: task inference, class encoding and regression transforms.

Class labels (text, booleans, integer codes) are encoded as indices into
sorted class names; the names travel with the model (in its `TableOutput`
layer), so predictions come back as the original labels. A regression target
can be standardized, `log1p`-transformed (then standardized) or trained
through a log link on the Poisson deviance ("poisson"); the model's last
layer inverts the transform, so it predicts in the target's own units.
"""

import numpy as np

from kerakit.data.schema import bool_values, parse_numbers, row_labels
from kerakit.errors import ConfigError, DataError, DataTypeError, LabelError
from kerakit.inference import integer_labels_task
from kerakit.spec import ProblemSpec

# name → (apply log1p first, then standardize)
TARGET_TRANSFORMS = {
    "none": (False, False),
    "standardize": (False, True),
    "log1p": (True, True),
    "poisson": (False, False),  # a log link: see LOG_LINK
}
# Transforms whose network predicts the log of the mean: the target is only
# divided by its training mean, the network's output z answers exp(z) x mean,
# and it trains on the Poisson deviance (`log_poisson`), which estimates the
# conditional mean of any non-negative target (counts, amounts) directly.
LOG_LINK = ("poisson",)
TASKS = ("auto", "classification", "regression")
# target_transform="auto" takes log1p above this skewness (a target without negative values).
SKEWED = 2.0


def skewness(values):
    """The sample skewness (third standardized moment) of finite `values`; 0 when constant."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    spread = values.std() if values.size else 0.0
    if not spread > 0:
        return 0.0
    return float(np.mean(((values - values.mean()) / spread) ** 3))


def auto_target_transform(values):
    """Returns "log1p" for a long right tail without negative values, else "standardize".

    A long right tail: no value below 0, skewness above `SKEWED`, and log1p
    makes the values more symmetric. Counts and amounts (sales, claims,
    visits) usually have such tails; a network fitted to their log trains on
    errors of similar size at every scale instead of on a few huge rows, and
    Duan's smearing factor (`smearing_factor`) turns its answers back into
    means. Measured against the Poisson log link on kerakit's skewed tables
    (BENCHMARKS.md): the log link won on the RAND doctor visits but collapsed
    on two folds of an overdispersed count table (R² 0.02 where log1p had
    0.43), so "poisson" is for counts whose variance grows like their mean,
    asked for by name.

    Example:

    >>> auto_target_transform(np.random.default_rng(0).lognormal(0, 1.5, 1000))
    'log1p'
    """
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size < 3 or values.min() < 0:
        return "standardize"
    skew = skewness(values)
    if skew > SKEWED and abs(skewness(np.log1p(values))) < skew:
        return "log1p"
    return "standardize"


def check_missing_target(series, name, where, drop):
    """Returns a mask of rows to keep; refuses missing targets unless `drop`."""
    missing = series.isna().to_numpy()
    if missing.any() and not drop:
        raise DataError(
            f"Target {name!r} is missing in {int(missing.sum())} of {len(series)} rows "
            f"({where} {row_labels(series, missing)}). Drop those rows with "
            f"drop_missing_target=True (keeps {int((~missing).sum())} rows), or fill them."
        )
    if missing.all():
        raise DataError(f"Target {name!r} is missing in every row. Check the target column.")
    return ~missing


def class_value(value):
    """The label a class is reported as: int for integer codes, bool, or text."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    text = str(value).strip()
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    try:
        number = float(text)
    except ValueError:
        return text
    return int(number) if number.is_integer() else text


def infer_target_task(series, name, where="rows"):
    """Returns "classification" or "regression" for a (non-missing) target column."""
    if bool_values(series) is not None:
        return "classification"
    if series.dtype.kind in "iuf":
        values = series.to_numpy(dtype=np.float64)
    else:
        values, bad = parse_numbers(series)
        if bad.any() and not bad.all():
            raise DataTypeError(
                f"Target {name!r} mixes numbers and text ({where} {row_labels(series, bad)} hold "
                f"text). Fix those cells, or pass task='classification' to treat every value "
                f"as a class name."
            )
        if bad.any():
            return "classification"
    distinct, counts = np.unique(values[~np.isnan(values)], return_counts=True)
    if not np.all(np.mod(distinct, 1) == 0):
        return "regression"
    # Whole numbers: the same rule as kerakit.infer_spec (classes, numbers, or a refusal).
    return integer_labels_task(distinct, counts, what=f"Target {name!r}",
                               classification="task='classification'", regression="task='regression'")


def resolve_task(task, transform, series, name, where="rows"):
    """The task to train: as given, regression when a target transform is asked for, or inferred."""
    if task != "auto":
        return task
    if transform not in ("auto", "none"):
        return "regression"
    return infer_target_task(series, name, where)


class TargetEncoder:
    """Encodes a target column for training and records how to decode predictions.

    Follows scikit-learn's shape: `__init__` stores options, `fit` learns the
    task, class names and transform, learned state ends in `_`.

    Args:
        task: "auto", "classification" or "regression". Defaults to "auto".
        transform: regression target transform: "standardize", "log1p"
            (log1p, then standardize), "none", or "auto": "log1p" for a
            skewed target without negative values (`auto_target_transform`),
            else "standardize".

    Example:

    >>> import pandas as pd
    >>> frame = pd.DataFrame({"species": ["setosa", "virginica", "setosa", "versicolor"]})
    >>> encoder = TargetEncoder().fit(frame["species"])
    >>> encoder.class_names_, encoder.encode(frame["species"])[:3]
    (('setosa', 'versicolor', 'virginica'), array([0, 2, 0]))
    """

    def __init__(self, task="auto", transform="auto"):
        self.task = task
        self.transform = transform

    def fit(self, series, name="target", where="rows", fit_rows=None):
        """Learns task and class names from `series`; transform statistics from `fit_rows`."""
        if self.task not in TASKS:
            raise ConfigError(f"`task` must be one of {TASKS}. Received: task={self.task!r}")
        task = resolve_task(self.task, self.transform, series, name, where)
        self.name_ = name
        self.task_ = task
        if task == "classification":
            if self.transform not in ("auto", "none"):
                raise ConfigError(
                    f"`target_transform` applies to regression; target {name!r} is a "
                    f"classification target. Received: target_transform={self.transform!r}"
                )
            return self._fit_classes(series, name)
        values, bad = parse_numbers(series)
        if bad.any():
            raise DataTypeError(
                f"A regression target must be numbers; {name!r} has text such as "
                f"{series[bad].head(3).tolist()!r} ({where} {row_labels(series, bad)}). Fix those "
                f"cells or pass task='classification'."
            )
        rows = values if fit_rows is None else values[fit_rows]
        return self.fit_transform_stats(name, *_moments(self._transform_kind(rows), rows, name))

    def _fit_classes(self, series, name):
        labels = series.map(class_value).tolist()
        names = sorted(set(labels), key=lambda v: (str(type(v)), v))
        if len(names) < 2:
            raise LabelError(
                f"Target {name!r} has a single class ({names[0]!r}) in all {len(labels)} rows: "
                f"a classifier needs at least two. Check that the data was not filtered to one "
                f"class, or use a regression target."
            )
        self.class_names_ = tuple(names)
        self.transform_ = {"kind": "none", "log1p": False, "mean": 0.0, "scale": 1.0}
        return self

    def _transform_kind(self, values=None):
        if self.transform == "auto":
            return "standardize" if values is None else auto_target_transform(values)
        kind = self.transform
        if kind not in TARGET_TRANSFORMS:
            raise ConfigError(
                f"`target_transform` must be one of {sorted(TARGET_TRANSFORMS) + ['auto']}. "
                f"Received: target_transform={self.transform!r}"
            )
        return kind

    def fit_transform_stats(self, name, kind, mean, scale):
        """Sets a regression transform from precomputed statistics (the streaming path)."""
        self.name_ = name
        self.task_ = "regression"
        self.class_names_ = None
        log1p, _ = TARGET_TRANSFORMS[kind]
        self.transform_ = {"kind": kind, "log1p": log1p, "mean": float(mean), "scale": float(scale)}
        if kind in LOG_LINK:
            self.transform_["link"] = "log"
        return self

    def fit_classes(self, name, class_names):
        """Sets classes from precomputed names (the streaming path)."""
        self.name_ = name
        self.task_ = "classification"
        if len(class_names) < 2:
            raise LabelError(
                f"Target {name!r} has a single class ({class_names[0]!r}): a classifier needs at "
                f"least two. Check that the data was not filtered to one class."
            )
        self.class_names_ = tuple(sorted(class_names, key=lambda v: (str(type(v)), v)))
        self.transform_ = {"kind": "none", "log1p": False, "mean": 0.0, "scale": 1.0}
        return self

    @property
    def spec_(self):
        """The `ProblemSpec` the encoded target calls for."""
        if self.task_ == "regression":
            return ProblemSpec(task="regression")
        if len(self.class_names_) == 2:
            return ProblemSpec(task="binary", class_names=self.class_names_)
        return ProblemSpec(task="multiclass", num_classes=len(self.class_names_),
                           class_names=self.class_names_)

    def labels(self, series):
        """Targets in report form: class indices, or float values in original units."""
        if self.task_ == "regression":
            return parse_numbers(series)[0].astype(np.float32)
        index = {v: i for i, v in enumerate(self.class_names_)}
        labels = series.map(class_value)
        unknown = sorted({v for v in labels if v not in index}, key=str)
        if unknown:
            raise LabelError(
                f"Target {self.name_!r} has classes {unknown[:5]} that the model was not built "
                f"for. Its classes: {list(self.class_names_)}."
            )
        return np.array([index[v] for v in labels], dtype=np.int64)

    def encode(self, series):
        """Targets as the network trains on them (indices, or transformed values)."""
        y = self.labels(series)
        return y if self.task_ == "classification" else self.forward(y)

    def forward(self, y):
        t = self.transform_
        y = np.log1p(y) if t["log1p"] else y
        return ((y - t["mean"]) / t["scale"]).astype(np.float32)


def _moments(kind, values, name):
    log1p, standardize = TARGET_TRANSFORMS[kind]
    if kind in LOG_LINK:
        low = values < 0
        if low.any():
            raise DataError(
                f"target_transform={kind!r} needs target values of 0 or more; {name!r} has "
                f"{int(low.sum())} negative value(s) (smallest {values.min():g}). Use "
                f"target_transform='standardize'."
            )
        mean = float(np.mean(values)) if len(values) else 0.0
        return kind, 0.0, mean if mean > 0 else 1.0
    if log1p:
        low = values <= -1
        if low.any():
            raise DataError(
                f"target_transform='log1p' needs target values above -1; {name!r} has "
                f"{int(low.sum())} value(s) at or below -1 (smallest {values.min():g}). Use "
                f"target_transform='standardize'."
            )
        values = np.log1p(values)
    if not standardize:
        return kind, 0.0, 1.0
    scale = float(np.std(values))
    return kind, float(np.mean(values)), scale if scale > 0 else 1.0


def smearing_factor(scaled_true, scaled_predicted, scale):
    """Duan's smearing estimate for a log1p target: the mean of exp(log-scale residual).

    `exp(prediction)` on the log scale estimates a median-like value; times
    this factor it estimates the conditional mean again (what R² and squared
    error reward). Residuals are in the standardized units the network
    trains in; `scale` is the transform's standard deviation. Returns 1.0
    when there is nothing to measure.

    >>> round(smearing_factor(np.array([0.5, -0.5]), np.zeros(2), scale=1.0), 4)
    1.1276
    """
    residuals = (np.ravel(np.asarray(scaled_true, dtype=np.float64))
                 - np.ravel(np.asarray(scaled_predicted, dtype=np.float64))) * float(scale)
    residuals = residuals[np.isfinite(residuals)]
    if not len(residuals):
        return 1.0
    factor = float(np.mean(np.exp(np.clip(residuals, -50.0, 50.0))))
    return factor if np.isfinite(factor) and factor > 0 else 1.0


def spec_from_metadata(metadata):
    """The `ProblemSpec` a raw-column model's metadata (`TableOutput`) records."""
    return encoder_from_metadata(metadata).spec_


def encoder_from_metadata(metadata):
    """Rebuilds the fitted `TargetEncoder` from a raw-column model's metadata."""
    encoder = TargetEncoder()
    if metadata["task"] == "regression":
        t = metadata["target_transform"]
        return encoder.fit_transform_stats(metadata["target"], t["kind"], t["mean"], t["scale"])
    return encoder.fit_classes(metadata["target"], metadata["class_names"])
