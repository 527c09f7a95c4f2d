"""Preprocessing inside the model: statistics from the training rows → Keras layers.

`StatsAccumulator` learns what the layers need (means and variances,
vocabularies, quantile boundaries for crosses) from blocks of converted
inputs, so the same code learns from a DataFrame in one call or from a CSV
streamed block by block. `make_preprocessor` turns those statistics into
layers inside the model: Keras's Normalization and Discretization, and
kerakit's `CategoryLookup` (one-hot with an out-of-vocabulary slot),
`CrossHash`, `FillMissing` and `MissingIndicator`, which run on every
backend. `backend_inputs` gives a model its text columns as the backend
takes them (the text itself on TensorFlow, vocabulary codes elsewhere).
"""

import collections
import re

import numpy as np

from kerakit.checks import check_count
from kerakit.errors import ConfigError

QUANTILE_SAMPLE = 20_000
# Past this many distinct values a vocabulary counter keeps only its most common
# entries, so an ID-like column cannot grow without bound while streaming.
MAX_TRACKED = 50_000
# The vocabulary cap per category column: its most frequent training values,
# the rest share the out-of-vocabulary slot. 100 lost most of a 210-level
# country column (a 5-fold R² of 0.53 where 1,000 gives 0.997, BENCHMARKS.md);
# a one-hot of 1,000 into the first hidden layer costs little.
MAX_CATEGORIES = 1000
# A value needs this many training rows to get its own slot: a value seen once
# teaches its weight from one row, and an identifier column (every value once)
# would otherwise fill the vocabulary with noise. Rarer values share the
# out-of-vocabulary slot with unseen ones.
MIN_CATEGORY_ROWS = 2


class StatsAccumulator:
    """Accumulates per-column statistics over blocks of model inputs.

    Args:
        schema: the `TableSchema`.
        max_categories: vocabulary size cap per categorical column (most
            frequent values kept; the rest fall in the OOV bucket).
            Values seen in fewer than `MIN_CATEGORY_ROWS` (2) rows fall in it too.

    Example:

    ```python
    stats = StatsAccumulator(schema)
    for block in blocks:
        stats.update(to_inputs(block, schema))
    stats.result()["price"]["mean"]
    ```
    """

    def __init__(self, schema, max_categories=MAX_CATEGORIES):
        self.schema = schema
        self.max_categories = check_count("max_categories", max_categories)
        self._moments = {c.name: np.zeros(3) for c in schema.columns}  # count, sum, sum of squares
        self._missing = collections.Counter()
        self._counts = {c.name: collections.Counter() for c in schema.columns}
        self._samples = {c.name: [] for c in schema.columns}
        self._sampled = collections.Counter()

    def update(self, inputs):
        for column in self.schema.columns:
            UPDATES[column.kind](self, column.name, np.asarray(inputs[column.name]).reshape(-1))
        return self

    def _update_numbers(self, name, values):
        values = values.astype(np.float64)
        present = values[~np.isnan(values)]
        self._missing[name] += values.size - present.size
        self._moments[name] += (present.size, present.sum(), np.square(present).sum())
        room = QUANTILE_SAMPLE - self._sampled[name]
        if room > 0 and present.size:
            self._samples[name].append(present[:room])
            self._sampled[name] += min(room, present.size)

    def _update_categories(self, name, values, missing_value):
        self._missing[name] += int(np.sum(values == missing_value))
        uniques, counts = np.unique(values, return_counts=True)
        counter = self._counts[name]
        counter.update(dict(zip(uniques.tolist(), counts.tolist(), strict=True)))
        if len(counter) > MAX_TRACKED:
            self._counts[name] = collections.Counter(dict(counter.most_common(MAX_TRACKED // 2)))

    def result(self):
        """Returns `{column: stats}`: mean/variance/missing/boundaries or vocabulary/missing."""
        out = {}
        for column in self.schema.columns:
            count, total, squares = self._moments[column.name]
            mean = total / count if count else 0.0
            stats = {"missing": int(self._missing[column.name]), "mean": float(mean),
                     "variance": float(max(squares / count - mean**2, 0.0)) if count else 1.0}
            if self._samples[column.name]:
                sample = np.concatenate(self._samples[column.name])
                stats["sample"] = sample
            counter = self._counts[column.name]
            if counter:
                ranked = sorted(counter.items(), key=lambda kv: (-kv[1], str(kv[0])))
                stats["vocabulary"] = [value for value, count in ranked[: self.max_categories]
                                       if count >= MIN_CATEGORY_ROWS]
            out[column.name] = stats
        return out


UPDATES = {
    "numeric": StatsAccumulator._update_numbers,
    "boolean": StatsAccumulator._update_numbers,
    "integer_categorical": lambda self, n, v: self._update_categories(n, v, -1),
    "string_categorical": lambda self, n, v: self._update_categories(n, v.astype(str), ""),
}


def check_cross_bins(cross_bins):
    """Refuses a cross with fewer than two hash buckets (0 would train a zero-width layer)."""
    return check_count("cross_bins", cross_bins, minimum=2)


def layer_names(schema):
    """Maps each column to a unique name that is safe for a Keras layer."""
    names, used = {}, set()
    for column in schema.columns:
        base = re.sub(r"[^0-9A-Za-z_.-]", "_", column.name) or "column"
        name, i = base, 1
        while name in used:
            i += 1
            name = f"{base}_{i}"
        used.add(name)
        names[column.name] = name
    return names


def make_inputs(schema):
    """One `TableInput` of shape (1,) per column, keyed by the column's name.

    A text column's input takes the text on TensorFlow and vocabulary codes
    elsewhere (`kerakit.layers.TableInput`); `backend_inputs` feeds it.
    """
    from kerakit.layers import table_input

    names = layer_names(schema)
    return {c.name: table_input(c.kind, names[c.name]) for c in schema.columns}


def backend_inputs(model, inputs):
    """Raw column arrays (`to_inputs`) → what `model` takes on this backend.

    A text column whose model input is not a string tensor (JAX, PyTorch)
    gets each cell's code in the vocabulary of the `CategoryLookup` layer
    that reads it, computed here on the host; every other column is passed
    as it is. Works for any model built on `make_inputs` (the raw-column
    model, its training view, or the encoder alone).
    """
    from kerakit.layers import CategoryLookup

    tensors = model.input if isinstance(model.input, dict) else {}
    lookups = {}
    for layer in model.layers:
        if isinstance(layer, CategoryLookup) and layer.text:
            lookups.setdefault(id(layer.input), layer)
    out = dict(inputs)
    for name, tensor in tensors.items():
        if name in out and "string" not in str(tensor.dtype) and id(tensor) in lookups \
                and np.asarray(out[name]).dtype.kind in "OUS":  # text, not codes already
            out[name] = lookups[id(tensor)].codes(out[name])
    return out


def _encode_numeric(column, stats, tensor, name):
    import keras

    from kerakit.layers import FillMissing, MissingIndicator

    filled = FillMissing(stats["mean"], name=f"{name}_fill")(tensor)
    parts = [keras.layers.Normalization(mean=stats["mean"], variance=stats["variance"],
                                        name=f"{name}_scale")(filled)]
    if stats["missing"]:
        parts.append(MissingIndicator(name=f"{name}_missing")(tensor))
    return parts


def _encode_boolean(column, stats, tensor, name):
    from kerakit.layers import FillMissing, MissingIndicator

    parts = [FillMissing(stats["mean"], name=f"{name}_fill")(tensor)]
    if stats["missing"]:
        parts.append(MissingIndicator(name=f"{name}_missing")(tensor))
    return parts


def _vocabulary(column, stats):
    convert = str if column.kind == "string_categorical" else int
    return [convert(v) for v in stats.get("vocabulary", ())]


def _encode_category(column, stats, tensor, name):
    from kerakit.layers import CategoryLookup

    return [CategoryLookup(_vocabulary(column, stats), name=f"{name}_lookup")(tensor)]


ENCODERS = {
    "numeric": _encode_numeric,
    "boolean": _encode_boolean,
    "integer_categorical": _encode_category,
    "string_categorical": _encode_category,
}


def _cross_member(column, stats, tensor, name, cross_bins):
    """Categories cross by their vocabulary index; numbers are bucketed into quantiles first."""
    import keras

    from kerakit.layers import CategoryLookup, FillMissing

    if column.kind in ("integer_categorical", "string_categorical"):
        return CategoryLookup(_vocabulary(column, stats), output_mode="int",
                              name=f"{name}_cross_index")(tensor)
    sample = stats.get("sample", np.zeros(1))
    bins = max(2, min(cross_bins, 10))
    edges = np.unique(np.quantile(sample, np.linspace(0, 1, bins + 1)[1:-1])).tolist()
    filled = FillMissing(stats["mean"], name=f"{name}_cross_fill")(tensor)
    return keras.layers.Discretization(bin_boundaries=edges or [0.5], output_mode="int",
                                       name=f"{name}_bucket")(filled)


def check_crosses(crosses, schema):
    """Validates `crosses`: pairs (or longer tuples) of feature column names."""
    crosses = [tuple(c) for c in (crosses or ())]
    for cross in crosses:
        if len(cross) < 2 or any(not isinstance(n, str) for n in cross):
            raise ConfigError(
                f"Each cross must be a tuple of two or more column names, e.g. "
                f"crosses=[('city', 'rooms')]. Received: {cross!r}"
            )
        for name in cross:
            schema[name]  # raises the unknown-name error with the closest column
    return crosses


def make_preprocessor(schema, stats, crosses=(), cross_bins=64):
    """Returns `preprocess(inputs) -> features`: the model's preprocessing layers.

    Args:
        schema: the `TableSchema`.
        stats: `StatsAccumulator.result()` learned from the training rows.
        crosses: column-name tuples to cross with `CrossHash`.
        cross_bins: hash buckets per cross. Defaults to 64.
    """
    check_cross_bins(cross_bins)
    names = layer_names(schema)
    crosses = check_crosses(crosses, schema)

    def preprocess(inputs):
        parts = []
        for column in schema.columns:
            parts.extend(ENCODERS[column.kind](column, stats[column.name], inputs[column.name],
                                               names[column.name]))
        return join_features(parts, crosses, schema, stats, inputs, names, cross_bins)

    return preprocess


# The layer every raw-column preprocessing ends in: the trainable layers start after it.
FEATURES_LAYER = "features"


def join_features(parts, crosses, schema, stats, inputs, names, cross_bins):
    """Adds one hashed one-hot crossing per column group to `parts`, then concatenates them."""
    import keras

    from kerakit.layers import CrossHash

    indices = {}  # one index per column, however many crosses it joins
    for cross in crosses:
        for n in cross:
            if n not in indices:
                indices[n] = _cross_member(schema[n], stats[n], inputs[n], names[n], cross_bins)
        members = tuple(indices[n] for n in cross)
        label = "_x_".join(names[n] for n in cross)
        parts.append(CrossHash(cross_bins, name=f"cross_{label}")(list(members)))
    if len(parts) == 1:
        return keras.layers.Identity(name=FEATURES_LAYER)(parts[0])
    return keras.layers.Concatenate(name=FEATURES_LAYER)(parts)
