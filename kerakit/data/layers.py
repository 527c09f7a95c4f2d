"""The three small layers a raw-column model needs beyond Keras's own.

Keras has lookup, normalization, discretization and crossing layers, but no
layer that imputes a missing number, flags it, or carries a table's metadata
(class names, target transform, column kinds) inside the saved model. These
are registered with `keras.saving.register_keras_serializable`, so a `.keras`
file loads with `safe_mode=True` once this module is imported (importing
`kerakit.data` does that; `kerakit.data.load_table_model` too).
"""

import json

import keras
from keras import ops

from kerakit.metadata import spec_layer_class

PACKAGE = "kerakit"

# A raw-column model holds build_model's SpecOutput layer too: registered with these.
spec_layer_class()


@keras.saving.register_keras_serializable(package=PACKAGE)
class FillMissing(keras.layers.Layer):
    """Replaces NaN cells with a fixed value learned from the training rows.

    Args:
        value: the fill value (kerakit uses the training mean). Defaults to 0.

    Example:

    >>> FillMissing(2.5)(np.array([[1.0], [np.nan]]))  # [[1.0], [2.5]]
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

    >>> MissingIndicator()(np.array([[1.0], [np.nan]]))  # [[0.0], [1.0]]
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

    def call(self, inputs):
        outputs = inputs * self._scale + self._offset
        return ops.expm1(outputs) if self._log1p else outputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "metadata": self.metadata}

    @property
    def problem_spec(self):
        """The `ProblemSpec` the metadata records (`kerakit.metadata.spec_of` reads it
        for files saved before models carried a `SpecOutput` layer)."""
        from kerakit.data.targets import spec_from_metadata

        return spec_from_metadata(self.metadata) if self.metadata.get("task") else None
