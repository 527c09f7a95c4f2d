"""The layers of a raw-column model that Keras does not have.

Keras has normalization and discretization layers, but none that imputes a
missing number, flags it, scales it robustly, encodes it piecewise-linearly,
marks its exact values, or carries a table's metadata (class names, target transform, column kinds)
inside the saved model. Its lookup and crossing layers run on TensorFlow
only; `TableInput`, `CategoryLookup` and `CrossHash` do the same work on every
backend (see `kerakit.layers._lookup`).
"""

import json

import keras
from keras import ops

from kerakit.errors import ConfigError
from kerakit.layers._base import PACKAGE


@keras.saving.register_keras_serializable(package=PACKAGE)
class FillMissing(keras.layers.Layer):
    """Replaces NaN cells with a fixed value learned from the training rows.

    Args:
        value: the fill value (kerakit uses the training mean). Defaults to 0.

    Example:

    >>> ops.convert_to_numpy(FillMissing(2.5)(np.array([[1.0], [np.nan]])))
    array([[1. ],
           [2.5]], dtype=float32)
    """

    def __init__(self, value=0.0, **kwargs):
        super().__init__(**kwargs)
        self.value = float(value)

    def call(self, inputs):
        inputs = ops.cast(inputs, self.compute_dtype)
        return ops.where(ops.isnan(inputs), ops.full_like(inputs, self.value), inputs)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "value": self.value}


@keras.saving.register_keras_serializable(package=PACKAGE)
class MissingIndicator(keras.layers.Layer):
    """Returns 1.0 where a cell is NaN (missing) and 0.0 elsewhere.

    Example:

    >>> ops.convert_to_numpy(MissingIndicator()(np.array([[1.0], [np.nan]])))
    array([[0.],
           [1.]], dtype=float32)
    """

    def call(self, inputs):
        return ops.cast(ops.isnan(ops.cast(inputs, self.compute_dtype)), self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape


@keras.saving.register_keras_serializable(package=PACKAGE)
class TableOutput(keras.layers.Layer):
    """Last layer of a raw-column model: undoes the target transform, holds the metadata.

    For regression trained on a standardized (or `log1p`-then-standardized)
    target it maps the network's output back to the original units, so
    `model.predict` answers in the units of the CSV. For classification it
    passes the probabilities through. Its config holds the table metadata
    (target name, task, class names, target transform, column kinds), so the
    one `.keras` file is all a later process needs; read it with
    `kerakit.data.table_metadata(model)`.

    Args:
        metadata: a JSON-serializable dict (see `kerakit.data.table_metadata`).

    Example:

    ```python
    layer = TableOutput({"target_transform": {"kind": "standardize", "mean": 10.0,
                                              "scale": 2.0, "log1p": False}})
    layer(np.array([[1.0]]))  # [[12.0]]
    ```
    """

    def __init__(self, metadata=None, **kwargs):
        super().__init__(**kwargs)
        # A JSON round trip keeps the config plain (lists, not tuples or NumPy scalars).
        self.metadata = json.loads(json.dumps(metadata or {}))
        transform = self.metadata.get("target_transform") or {}
        self._scale = float(transform.get("scale", 1.0))
        self._offset = float(transform.get("mean", 0.0))
        self._log1p = bool(transform.get("log1p", False))
        # Duan's smearing factor: exp of a log-scale prediction estimates the
        # median; times the mean of exp(residual) it estimates the mean again.
        # Files saved before it existed read 1.0 (plain expm1).
        self._smearing = float(transform.get("smearing", 1.0))
        self._log_link = transform.get("link") == "log"

    def call(self, inputs):
        if self._log_link:  # the network predicts log(mean / scale)
            return ops.exp(ops.minimum(inputs, LOG_LINK_MAX)) * self._scale
        outputs = inputs * self._scale + self._offset
        if not self._log1p:
            return outputs
        if self._smearing == 1.0:
            return ops.expm1(outputs)
        return ops.exp(outputs) * self._smearing - 1.0

    def set_smearing(self, factor):
        """Sets the log1p transform's smearing factor (before the model first predicts)."""
        self._smearing = float(factor)
        self.metadata["target_transform"]["smearing"] = self._smearing

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "metadata": self.metadata}


# exp() of more than this overflows float32; a log-link output is clipped there.
LOG_LINK_MAX = 80.0


@keras.saving.register_keras_serializable(package=PACKAGE)
def log_poisson(y_true, y_pred):
    """The Poisson deviance (up to a constant) of a network that predicts the log of the mean.

    `exp(z) - y * z`, averaged over the last axis: minimized by
    `exp(z) = E[y | x]`, so a log-link model (`target_transform="poisson"`)
    estimates the conditional mean of any non-negative target. Keras's own
    "poisson" loss takes the mean itself; this one takes its log, which keeps
    the output layer linear and the gradient well scaled.

    >>> round(float(log_poisson(np.array([[2.0]]), np.array([[np.log(2.0)]]))[0]), 4)
    0.6137
    """
    y_true = ops.cast(y_true, y_pred.dtype)
    z = ops.minimum(y_pred, LOG_LINK_MAX)
    return ops.mean(ops.exp(z) - y_true * z, axis=-1)


# Layers of the "table" body (kerakit.data.bodies) -------------------------


@keras.saving.register_keras_serializable(package=PACKAGE)
class SmoothClip(keras.layers.Layer):
    """Robust scaling with smooth clipping: `z = (x - center) / scale`, then `z / sqrt(1 + (z / limit)**2)`.

    RealMLP's preprocessing (Holzmüller et al., 2024): the center and scale
    come from the median and interquartile range of the training rows, and
    the smooth clip keeps outliers from dominating while staying monotone.

    Args:
        center: subtracted first (kerakit uses the training median). Defaults to 0.
        scale: divided by next (kerakit uses a robust spread). Defaults to 1.
        limit: the soft bound, about where values saturate. Defaults to 3.

    Example:

    >>> ops.convert_to_numpy(SmoothClip(0.0, 1.0)(np.array([[0.0], [100.0]])))
    array([[0.       ],
           [2.998...]], dtype=float32)
    """

    def __init__(self, center=0.0, scale=1.0, limit=3.0, **kwargs):
        super().__init__(**kwargs)
        self.center = float(center)
        self.scale = float(scale) if scale else 1.0
        self.limit = float(limit)

    def call(self, inputs):
        z = (ops.cast(inputs, self.compute_dtype) - self.center) / self.scale
        return z / ops.sqrt(1.0 + ops.square(z / self.limit))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "center": self.center, "scale": self.scale,
                "limit": self.limit}


@keras.saving.register_keras_serializable(package=PACKAGE)
class PiecewiseLinearEncoding(keras.layers.Layer):
    """Piecewise-linear encoding of one number over fixed bin edges (Gorishniy et al., 2022).

    With edges `b_0 < ... < b_T` a value becomes T numbers: bin t holds
    `(x - b_t) / (b_{t+1} - b_t)` clipped to [0, 1] — except that the first
    bin is not clipped below and the last not above, so values outside the
    training range still move the encoding. kerakit takes the edges from
    quantiles of the training rows.

    Args:
        edges: the ascending bin edges (at least two).

    Example:

    >>> ops.convert_to_numpy(PiecewiseLinearEncoding([0.0, 1.0, 3.0])(np.array([[2.0]])))
    array([[1. , 0.5]], dtype=float32)
    """

    def __init__(self, edges=(0.0, 1.0), **kwargs):
        super().__init__(**kwargs)
        self.edges = [float(e) for e in edges]
        if len(self.edges) < 2 or any(b <= a for a, b in zip(self.edges, self.edges[1:], strict=False)):
            raise ConfigError(
                f"`edges` must be at least two strictly ascending numbers; drop repeated "
                f"edges. Received: edges={list(edges)!r}"
            )

    def call(self, inputs):
        import numpy as np

        edges = np.asarray(self.edges)
        left, width = edges[:-1], np.diff(edges)
        bins = len(width)
        lower = np.zeros(bins)
        upper = np.ones(bins)
        lower[0], upper[-1] = -np.inf, np.inf
        x = ops.cast(inputs, self.compute_dtype)  # (batch, 1)
        encoded = (x - ops.convert_to_tensor(left, self.compute_dtype)) / ops.convert_to_tensor(
            width, self.compute_dtype)
        encoded = ops.maximum(encoded, ops.convert_to_tensor(lower, self.compute_dtype))
        return ops.minimum(encoded, ops.convert_to_tensor(upper, self.compute_dtype))

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], len(self.edges) - 1)

    def get_config(self):
        return {**super().get_config(), "edges": self.edges}


@keras.saving.register_keras_serializable(package=PACKAGE)
class ValueIndicators(keras.layers.Layer):
    """One 0/1 indicator per known value of a number with few distinct values.

    A number such as a 20-level code, whose values each have their own
    effect, is hard to read from its scaled value and quantile bins; the
    indicators let the network look each value up, as a tree's splits do.
    A value not in `values` (or a missing one, once filled) gives all zeros.

    Args:
        values: the distinct training values (at least one).

    Example:

    >>> ops.convert_to_numpy(ValueIndicators([1.0, 2.0, 5.0])(np.array([[2.0], [3.0]])))
    array([[0., 1., 0.],
           [0., 0., 0.]], dtype=float32)
    """

    def __init__(self, values=(0.0,), **kwargs):
        super().__init__(**kwargs)
        self.values = [float(v) for v in values]
        if not self.values:
            raise ConfigError(f"`values` must hold at least one number. Received: "
                              f"values={list(values)!r}")

    def call(self, inputs):
        x = ops.cast(inputs, "float32")  # (batch, 1); the values compare in float32 too
        known = ops.convert_to_tensor([self.values], "float32")
        return ops.cast(ops.equal(x, known), self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], len(self.values))

    def get_config(self):
        return {**super().get_config(), "values": self.values}
