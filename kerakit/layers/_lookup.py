"""Category columns on every backend: `TableInput`, `CategoryLookup` and `CrossHash`.

Keras's `StringLookup`, `IntegerLookup` and `HashedCrossing` run through
TensorFlow, and only TensorFlow has a string tensor. So a text column is
encoded where the backend allows it:

- on TensorFlow the model takes the text itself and `CategoryLookup` finds
  it in its vocabulary inside the graph (a SavedModel still serves raw text);
- on JAX and PyTorch the model takes each cell's position in that same
  vocabulary, found on the host by `CategoryLookup.codes` before the rows
  reach the compiled function (`kerakit.data.table_inputs` does it).

The vocabulary lives in the layer's config, and `TableInput` picks its dtype
from the backend the file is loaded on, so one `.keras` file loads and
predicts the same on every backend. Integer categories and number buckets
are compared and crossed with plain `keras.ops`, the same everywhere.
"""

import contextlib
import warnings

import keras
import numpy as np
from keras import ops

from kerakit.checks import check_count
from kerakit.errors import ConfigError
from kerakit.layers._base import PACKAGE

# The dtype of each column kind's model input; a text column's (and on JAX an integer's) depends on the backend.
INPUT_DTYPES = {"numeric": "float32", "boolean": "float32", "integer_categorical": "int64"}
CROSS_PRIME = 1_000_003
OOV_TOKEN = "[UNK]"  # index 0, as Keras's StringLookup names it


def text_in_graph():
    """True where the backend has a string tensor (TensorFlow): text columns are looked up in the graph."""
    return keras.backend.backend() == "tensorflow"


def input_dtype(kind):
    """The model-input dtype of a column kind on this backend (text: "string", or int32 codes)."""
    if kind == "string_categorical":
        return "string" if text_in_graph() else "int32"
    if kind == "integer_categorical" and keras.backend.backend() == "jax":
        return "int32"  # JAX computes in 32 bits unless x64 is enabled
    if kind not in INPUT_DTYPES:
        raise ConfigError(
            f"Unknown column kind {kind!r}. Kinds: {', '.join([*INPUT_DTYPES, 'string_categorical'])}."
        )
    return INPUT_DTYPES[kind]


@keras.saving.register_keras_serializable(package=PACKAGE)
class TableInput(keras.layers.InputLayer):
    """The input of one raw column, typed by its kind on the backend that builds or loads it.

    A "string_categorical" column is a string input on TensorFlow and an
    int32 input of vocabulary codes elsewhere (see `CategoryLookup.codes`);
    the other kinds have one dtype everywhere. Its config records the kind,
    not the dtype, so a file saved on one backend loads on any other.

    Args:
        kind: "numeric", "boolean", "integer_categorical" or "string_categorical".
        **kwargs: `keras.layers.InputLayer`'s (`shape`, `name`, ...); a
            `dtype` is replaced by the kind's.

    Example:

    ```python
    city = TableInput("string_categorical", shape=(1,), name="city").output
    ```
    """

    # kerakit.checks leaves these inputs to the model's own layers (missing
    # cells are filled, categories looked up inside the model)
    raw_column = True

    def __init__(self, kind="numeric", **kwargs):
        kwargs["dtype"] = input_dtype(kind)
        super().__init__(**kwargs)
        self.kind = kind

    def get_config(self):
        config = {**super().get_config(), "kind": self.kind}
        config.pop("dtype", None)
        return config


# Keras warns once per input when a dict of inputs is keyed by other names than its
# tensors': a table model is keyed by column name ("mean radius") and its inputs carry
# a name fit for a SavedModel signature ("mean_radius"). Keras matches by key either way.
INPUT_NAME_WARNING = "When providing `inputs` as a dict, all keys in the dict must match"


@contextlib.contextmanager
def quiet_input_names():
    """Builds or loads a table model without Keras's warning about column-keyed inputs.

    Only that message is hidden, and only inside the block.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=INPUT_NAME_WARNING, category=UserWarning)
        yield


def table_input(kind, name):
    """A `TableInput` of shape (1,) for one column: its symbolic tensor, as `keras.Input` returns."""
    return TableInput(kind, shape=(1,), name=name).output


@keras.saving.register_keras_serializable(package=PACKAGE)
class CategoryLookup(keras.layers.Layer):
    """One category per row → its one-hot vector (or index) over a fixed vocabulary.

    Index 0 is the out-of-vocabulary slot; `vocabulary[i]` is index `i + 1`,
    as Keras's lookup layers number them. A vocabulary of integers compares
    the cells themselves on every backend. A vocabulary of text takes the
    text on TensorFlow, and elsewhere the codes `codes()` computed on the
    host (the same indices), since only TensorFlow has a string tensor.

    Args:
        vocabulary: the known categories (text or integers, no repeats).
        output_mode: "one_hot" (width `len(vocabulary) + 1`) or "int"
            (the index, shape (batch, 1)). Defaults to "one_hot".

    Example:

    >>> layer = CategoryLookup([3, 7])
    >>> ops.convert_to_numpy(layer(np.array([[7], [5]])))
    array([[0., 0., 1.],
           [1., 0., 0.]], dtype=float32)
    >>> layer.codes(np.array([7, 5, 3])).ravel().tolist()
    [2, 0, 1]
    """

    def __init__(self, vocabulary=(), output_mode="one_hot", **kwargs):
        super().__init__(**kwargs)
        vocabulary = list(vocabulary)
        self.text = any(isinstance(v, str) for v in vocabulary)
        self.vocabulary = [str(v) for v in vocabulary] if self.text else [int(v) for v in vocabulary]
        if len(set(self.vocabulary)) != len(self.vocabulary):
            raise ConfigError(f"`vocabulary` must not repeat a value. Received: {vocabulary!r}")
        if output_mode not in ("one_hot", "int"):
            raise ConfigError(f"`output_mode` must be 'one_hot' or 'int'. Received: {output_mode!r}")
        self.output_mode = output_mode
        # XLA has no string ops: a model that looks text up in the graph runs without it
        # (Keras turns `jit_compile` off, also for a file compiled with XLA on JAX).
        self.supports_jit = not (self.text and text_in_graph())

    @property
    def size(self):
        """Width of the one-hot output: the vocabulary plus the out-of-vocabulary slot."""
        return len(self.vocabulary) + 1

    def get_vocabulary(self):
        """The categories in index order, as Keras's lookup layers list theirs: OOV token first."""
        return [OOV_TOKEN, *self.vocabulary]

    def codes(self, values):
        """Host-side indices of `values` (NumPy, any shape) as an int32 column; 0 if unknown.

        What the model takes for a text column on JAX and PyTorch.
        """
        import pandas as pd

        flat = np.asarray(values, dtype=object).reshape(-1)
        if self.text:
            flat = np.asarray([v if isinstance(v, str) else str(v) for v in flat], dtype=object)
        index = pd.Index(self.vocabulary, dtype=object).get_indexer(flat) + 1
        return index.astype(np.int32).reshape(-1, 1)

    def call(self, inputs):
        if ops.is_tensor(inputs) and "string" in str(inputs.dtype):
            index = self._text_index(inputs)
        elif self.text:  # codes from `codes()`: anything out of range counts as unknown
            index = ops.cast(inputs, "int32")
            index = ops.where((index < 0) | (index >= self.size), ops.zeros_like(index), index)
        else:
            vocabulary = ops.convert_to_tensor(np.asarray(self.vocabulary or [0]), dtype=inputs.dtype)
            match = ops.cast(ops.equal(inputs, ops.reshape(vocabulary, (1, -1))), "int32")
            if not self.vocabulary:
                match = match * 0
            positions = ops.arange(1, match.shape[-1] + 1, dtype="int32")
            index = ops.sum(match * positions, axis=-1, keepdims=True)
        if self.output_mode == "int":
            return index
        return ops.one_hot(ops.reshape(index, (-1,)), self.size, dtype=self.compute_dtype)

    def _text_index(self, inputs):
        # TensorFlow's string tensors, in the graph: a SavedModel keeps serving raw text.
        import tensorflow as tf

        if not self.vocabulary:
            return tf.zeros_like(inputs[..., :1], dtype=tf.int32)
        match = tf.cast(tf.equal(inputs, tf.constant(self.vocabulary)[tf.newaxis, :]), tf.int32)
        return tf.reduce_sum(match * tf.range(1, len(self.vocabulary) + 1), axis=-1, keepdims=True)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 1) if self.output_mode == "int" else (input_shape[0], self.size)

    def compute_output_spec(self, inputs):
        dtype = "int32" if self.output_mode == "int" else self.compute_dtype
        return keras.KerasTensor(self.compute_output_shape(inputs.shape), dtype=dtype)

    def get_config(self):
        return {**super().get_config(), "vocabulary": self.vocabulary, "output_mode": self.output_mode}


@keras.saving.register_keras_serializable(package=PACKAGE)
class CrossHash(keras.layers.Layer):
    """Crosses integer indices (categories, number buckets) into `num_bins` hashed one-hot buckets.

    The indices combine as `h = (h * 1000003 + index) mod num_bins`, member by
    member, in int32 `keras.ops` (wrapping the same way on every backend), so
    a row lands in the same bucket on every backend.

    Args:
        num_bins: the hash buckets (at least 2).

    Example:

    >>> out = CrossHash(8)([np.array([[1], [1]]), np.array([[2], [3]])])
    >>> ops.convert_to_numpy(out).argmax(axis=1).tolist()
    [5, 6]
    """

    def __init__(self, num_bins=64, **kwargs):
        super().__init__(**kwargs)
        self.num_bins = check_count("num_bins", num_bins, minimum=2)

    def call(self, inputs):
        factor = CROSS_PRIME % self.num_bins
        hashed = None
        for member in inputs:
            index = ops.mod(ops.cast(ops.reshape(member, (-1,)), "int32"), self.num_bins)
            hashed = index if hashed is None else ops.mod(hashed * factor + index, self.num_bins)
        return ops.one_hot(hashed, self.num_bins, dtype=self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], self.num_bins)

    def get_config(self):
        return {**super().get_config(), "num_bins": self.num_bins}
