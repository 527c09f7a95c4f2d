"""Tables in, raw-column models out: `read_table`, `split_table`, `fit_table`, `predict_table`.

A raw-column model is a plain `keras.Model` whose inputs are a dict of raw
columns (one `keras.Input` of shape (1,) per column) and whose preprocessing
layers live inside it, so a saved `.keras` file predicts from raw rows. Its
last layer (`TableOutput`) carries the metadata — target, task, class names,
target transform, column kinds — and undoes the target transform.
"""

import dataclasses
import os

import numpy as np

from kerakit.data.preprocess import backend_inputs, make_inputs, make_preprocessor
from kerakit.data.schema import TableSchema, check_target, infer_schema, to_inputs
from kerakit.data.targets import check_missing_target
from kerakit.errors import ConfigError, DataError, DataTypeError

# Above this size a CSV path trains through the streaming reader by default.
STREAMING_BYTES = 256 << 20
OUTPUT_LAYER = "table_output"


@dataclasses.dataclass
class Table:
    """A loaded table: the raw frame (target included), its schema and how rows are named."""

    frame: object
    schema: TableSchema
    where: str = "rows"
    source: str = "data"

    @property
    def target(self):
        return self.frame[self.schema.target]


def is_path(data):
    """True for a file path (`str` or `os.PathLike`): a CSV to read."""
    return isinstance(data, (str, os.PathLike))


def _as_frame(data, y, target, columns):
    """DataFrame, dict of columns or NumPy features (+ labels `y`) → (DataFrame, target name)."""
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        frame = data.copy()
        frame.columns = [str(c) for c in frame.columns]
    elif isinstance(data, dict):
        lengths = {str(k): len(v) if hasattr(v, "__len__") else None for k, v in data.items()}
        if len(set(lengths.values())) > 1:
            raise DataError(
                f"The columns of `data` must all have the same number of rows. Received: "
                f"{', '.join(f'{k!r}: {n}' for k, n in lengths.items())}. Fix the short or long "
                f"column(s)."
            )
        frame = pd.DataFrame({str(k): np.asarray(v).reshape(-1) if np.ndim(v) > 1 else v
                              for k, v in data.items()})
    elif isinstance(data, np.ndarray) or isinstance(data, (list, tuple)):
        x = np.asarray(data)
        if x.ndim != 2:
            raise DataTypeError(
                f"NumPy features must be a 2-D array (rows, columns). Received shape {x.shape}."
            )
        names = list(columns) if columns is not None else [f"x{i}" for i in range(x.shape[1])]
        if len(names) != x.shape[1]:
            raise ConfigError(f"`columns` names {len(names)} columns; the array has {x.shape[1]}.")
        frame = pd.DataFrame(x, columns=names)
    else:
        raise DataTypeError(
            f"`data` must be a CSV path, a pandas DataFrame, a dict of columns or a 2-D NumPy "
            f"array. Received: {type(data).__name__}."
        )
    repeated = sorted(set(frame.columns[frame.columns.duplicated()]))
    if repeated:
        raise DataError(
            f"The data has duplicate column names {repeated}. Rename them so each column has "
            f"its own name (e.g. frame.columns = [...], or columns=[...] for an array)."
        )
    if y is not None:
        target = target or "target"
        if target in frame.columns:
            raise ConfigError(f"`y` was given but the data already has a column {target!r}.")
        y = np.asarray(y)
        if len(y) != len(frame):
            raise DataError(f"The features have {len(frame)} rows but `y` has {len(y)}.")
        frame[target] = y
    return frame, target


def read_table(data, target=None, *, y=None, columns=None, types=None, ignore=None,
               drop_missing_target=False, na_values=(), encoding="utf-8", sep=","):
    """Loads a CSV path, a DataFrame, a dict of columns or NumPy arrays, and infers the schema.

    Every check runs here, before any training: an empty file, a header
    without rows, bytes that are not valid in `encoding`, ragged rows, a
    missing target column (the closest name is suggested), an empty column, a
    column mixing numbers and text (the rows are named), missing targets.

    Args:
        data: a CSV path, a pandas DataFrame, a dict `{column: values}`, or a
            2-D NumPy array of features.
        target: the target column's name ("target" when `y` is given).
        y: labels, when `data` holds features only.
        columns: names of a NumPy array's columns. Defaults to x0, x1, ...
        types: `{column: kind}` overrides ("numeric", "integer_categorical",
            "string_categorical", "boolean", or aliases such as "int", "string").
        ignore: columns to leave out (IDs, leaks).
        drop_missing_target: drop rows whose target is missing instead of
            refusing them. Defaults to False.
        na_values: extra cell texts that mean "missing" (e.g. ["?", "-"]).
        encoding: the CSV's encoding. Defaults to "utf-8".
        sep: the CSV's separator. Defaults to ",".

    Returns:
        a `Table` (`.frame`, `.schema`; `print(table.schema)` shows the kinds).

    Example:

    ```python
    table = read_table("houses.csv", target="price", ignore=["id"])
    print(table.schema)
    ```
    """
    from kerakit.data.csvfile import read_frame

    if is_path(data):
        frame = read_frame(data, encoding=encoding, sep=sep, na_values=na_values)
        where, source = "line(s)", os.fspath(data)
    else:
        frame, target = _as_frame(data, y, target, columns)
        if na_values:
            frame = frame.replace(list(na_values), np.nan)
        where, source = "row(s)", type(data).__name__
    if len(frame) == 0:
        raise DataError(f"The data has no rows (columns: {list(frame.columns)}). Pass some rows.")
    if target is not None:
        check_target([str(c) for c in frame.columns], target)
        keep = check_missing_target(frame[target], target, where, drop_missing_target)
        frame = frame[keep]
    schema = infer_schema(frame, target=target, types=types, ignore=ignore, where=where)
    return Table(frame, schema, where, source)


def split_table(n_or_labels, validation=0.15, test=0.15, seed=0, stratify=True):
    """Deterministic train / validation / test row indices, stratified by label when asked.

    Uses scikit-learn's `train_test_split` twice: the test rows first, then
    the validation rows from the rest. The same seed gives the same split.

    Args:
        n_or_labels: the number of rows, or one label per row (for stratifying).
        validation: fraction of all rows for validation (0 for none).
        test: fraction of all rows for the final test (0 for none).
        seed: the random seed. Defaults to 0.
        stratify: keep class proportions in every split (needs labels).

    Example:

    >>> y = np.array([0, 1] * 50)
    >>> parts = split_table(y, validation=0.2, test=0.2, seed=0)
    >>> len(parts["train"]), len(parts["validation"]), len(parts["test"])
    (60, 20, 20)
    """
    from sklearn.model_selection import train_test_split

    labels = None if np.isscalar(n_or_labels) else np.asarray(n_or_labels)
    n = int(n_or_labels) if labels is None else len(labels)
    for option, value in (("validation", validation), ("test", test)):
        if not 0 <= value < 1:
            raise ConfigError(f"`{option}` must be a fraction in [0, 1). Received: {option}={value!r}")
    if validation + test >= 1:
        raise ConfigError(
            f"validation + test must leave rows for training; received validation={validation}, "
            f"test={test}."
        )
    rows = np.arange(n)
    parts = {}
    strata = labels if (stratify and labels is not None) else None
    try:
        if test:
            rows, parts["test"] = train_test_split(rows, test_size=test, random_state=seed,
                                                   stratify=strata)
            strata = strata[rows] if strata is not None else None
        if validation:
            rows, parts["validation"] = train_test_split(
                rows, test_size=validation / (1 - test), random_state=seed, stratify=strata)
    except ValueError as error:
        raise DataError(
            f"Cannot split {n} rows into train/validation/test (validation={validation}, "
            f"test={test}): {error} Use more rows, smaller fractions, or stratify=False."
        ) from None
    parts["train"] = rows
    return {k: np.sort(v) for k, v in parts.items()}


def build_table_model(schema, stats, target_encoder, *, crosses=(), cross_bins=64,
                      na_values=(), body="mlp", seed=None, steps=None, **build_options):
    """Builds the raw-column model: dict of raw columns → preprocessing layers → body → head.

    Returns `(model, train_model)`: `model` ends in `TableOutput` (original
    units, metadata inside; save and serve this one), `train_model` shares
    every layer but stops before it (what the network trains on: class
    probabilities, or the transformed regression target). Both are compiled.

    Args:
        schema: the `TableSchema`.
        stats: per-column statistics from the training rows
            (`StatsAccumulator(schema).update(to_inputs(train, schema)).result()`).
        target_encoder: a fitted `TargetEncoder`.
        crosses: column-name tuples crossed with `kerakit.layers.CrossHash`.
        cross_bins: hash buckets per cross. Defaults to 64.
        na_values: extra cell texts that mean "missing", kept in the metadata
            so `predict_table` reads new rows the same way.
        body: "table" (robust scaling, piecewise-linear encodings, a TabM-style
            ensemble, AdamW with warm-up + cosine; see `kerakit.data.bodies`;
            the default of `fit_table`), or any `kerakit.build_model` body
            ("mlp", kerakit's earlier default). Defaults to "mlp".
        seed: seeds the weights.
        steps: the planned training steps (epochs × batches per epoch); the
            "table" body's learning-rate schedule spans them. None: a constant rate.
        **build_options: the "table" body's options (`kerakit.data.bodies.TABLE_OPTIONS`),
            or options of `kerakit.build_model` for other bodies.
    """
    import keras

    from kerakit.heads import make_metrics
    from kerakit.layers import TableOutput, quiet_input_names

    spec = target_encoder.spec_
    inputs = make_inputs(schema)
    # A log-link target trains on the Poisson deviance of the log-mean; metrics
    # in that space mean nothing (the report measures in the target's units).
    objective = {}
    if target_encoder.transform_.get("link") == "log":
        from kerakit.layers import log_poisson

        objective = {"loss": log_poisson, "metrics": []}
    if body == "table":
        from kerakit.data.bodies import TABLE_DEFAULTS, build_table_network, table_preprocessor

        bins = build_options.pop("bins", None)  # 0 turns the piecewise-linear encoding off
        bins = TABLE_DEFAULTS.bins if bins is None else bins
        few_values = build_options.pop("few_values", None)
        few_values = TABLE_DEFAULTS.few_values if few_values is None else int(few_values)
        train_model = build_table_network(
            spec, inputs, table_preprocessor(schema, stats, crosses, cross_bins, bins=bins,
                                             few_values=few_values),
            steps=steps, seed=seed, **objective, **build_options)
    else:
        from kerakit.builders import build_model

        train_model = build_model(spec, inputs=inputs, preprocessor=make_preprocessor(
            schema, stats, crosses, cross_bins), body=body, seed=seed, **objective,
            **build_options)
    metadata = _metadata(schema, target_encoder, na_values, body)
    outputs = TableOutput(metadata, name=OUTPUT_LAYER)(train_model.outputs[0])
    with quiet_input_names():
        model = keras.Model(inputs, outputs, name=f"kerakit_table_{spec.task}")
    # One optimizer for both views: they hold the same variables, so the saved
    # file keeps the optimizer state that training built (for fine-tuning).
    model.compile(optimizer=train_model.optimizer, loss=train_model.loss,
                  metrics=make_metrics(spec))
    # The spec travels in build_model's SpecOutput layer, inside both views.
    return model, train_model


def _metadata(schema, target_encoder, na_values, body):
    """What a raw-column model's `TableOutput` layer carries."""
    spec = target_encoder.spec_
    return {
        "format": 1,
        "target": target_encoder.name_,
        "task": spec.task,
        "class_names": list(target_encoder.class_names_) if target_encoder.class_names_ else None,
        "target_transform": target_encoder.transform_,
        "columns": [{"name": c.name, "kind": c.kind} for c in schema.columns],
        "na_values": [str(v) for v in na_values],
        "body": body if isinstance(body, str) else getattr(body, "__name__", "custom"),
    }


def table_encoder(schema, stats, *, body="table", crosses=(), cross_bins=64):
    """The preprocessing of a raw-column model alone: a `keras.Model` from raw columns to features.

    The "table" body's (robust scaling, piecewise-linear encodings) or, for
    any other body, `make_preprocessor`'s. Encode rows once with it
    (`kerakit.data.train.encode_rows`), search or train a network on the
    features, then join the two with `join_table_model`; `kerakit tune`
    does this for recipes of raw columns.
    """
    import keras

    from kerakit.layers import quiet_input_names

    inputs = make_inputs(schema)
    if body == "table":
        from kerakit.data.bodies import table_preprocessor

        preprocess = table_preprocessor(schema, stats, crosses, cross_bins)
    else:
        preprocess = make_preprocessor(schema, stats, crosses, cross_bins)
    with quiet_input_names():
        return keras.Model(inputs, preprocess(inputs), name="encode_rows")


def join_table_model(encoder_model, network, schema, target_encoder, *, na_values=(), body="table"):
    """Raw columns → `encoder_model` → `network` → `TableOutput`: a model that serves raw rows.

    `network` maps the features to what it was trained on (class
    probabilities, or the transformed regression target); the last layer
    answers in the target's units and carries the metadata, as
    `build_table_model`'s does.
    """
    import keras

    from kerakit.layers import TableOutput, quiet_input_names

    outputs = TableOutput(_metadata(schema, target_encoder, na_values, body),
                          name=OUTPUT_LAYER)(network(encoder_model.outputs[0]))
    with quiet_input_names():
        return keras.Model(encoder_model.input, outputs,
                           name=f"kerakit_table_{target_encoder.spec_.task}")


def table_metadata(model):
    """Returns a raw-column model's metadata: target, task, class names, transform, columns.

    Example:

    ```python
    table_metadata(model)["class_names"]
    # ['setosa', 'versicolor', 'virginica']
    ```
    """
    try:
        layer = model.get_layer(OUTPUT_LAYER)
    except ValueError:
        raise ConfigError(
            f"{model.name!r} is not a raw-column model from kerakit.data (it has no "
            f"{OUTPUT_LAYER!r} layer). Build one with kerakit.fit_table."
        ) from None
    return layer.metadata


def training_model(model):
    """The trainable view of a raw-column model: same layers, output before `TableOutput`."""
    import keras

    from kerakit.layers import quiet_input_names

    layer = model.get_layer(OUTPUT_LAYER)
    with quiet_input_names():
        return keras.Model(model.input, layer.input)


def _rows_frame(rows, na_values=()):
    import pandas as pd

    if isinstance(rows, pd.DataFrame):
        return rows, "row(s)"
    if is_path(rows):
        from kerakit.data.csvfile import read_frame

        return read_frame(rows, na_values=na_values), "line(s)"
    if isinstance(rows, dict):
        return pd.DataFrame({k: np.asarray(v).reshape(-1) for k, v in rows.items()}), "row(s)"
    if isinstance(rows, (list, tuple)) and rows and isinstance(rows[0], dict):
        return pd.DataFrame(list(rows)), "row(s)"
    raise DataTypeError(
        f"Rows must be a DataFrame, a CSV path, a dict of columns or a list of row dicts. "
        f"Received: {type(rows).__name__}."
    )


def table_inputs(model, rows):
    """Converts raw rows to the model's input dict (the dtype each column's input expects).

    Accepts a DataFrame, a CSV path, a dict of columns or a list of row dicts
    (as a JSON request would carry). Extra columns (the target, say) are ignored.
    Text columns stay text on TensorFlow; on JAX and PyTorch they become codes
    in the model's saved vocabularies (`kerakit.data.backend_inputs`).

    Example:

    ```python
    model.predict(table_inputs(model, [{"city": "Oslo", "rooms": 3, "area": None}]))
    ```
    """
    metadata = table_metadata(model)
    schema = TableSchema.from_dict({"columns": metadata["columns"]})
    na_values = metadata.get("na_values") or []
    frame, where = _rows_frame(rows, na_values)
    if na_values:
        frame = frame.replace(na_values, np.nan)
    return backend_inputs(model, to_inputs(frame, schema, where))


@dataclasses.dataclass
class TableResult:
    """What `fit_table` returns (built by both `data.fit` and `data.streaming`).

    Attributes:
        model: the trained raw-column `keras.Model` (dict of raw columns in;
            probabilities or target values in original units out).
        schema: the `TableSchema` (`print(result.schema)`).
        spec: the `ProblemSpec` of the target.
        history: the Keras `History` of training.
        report: `{"validation": metrics, "test": metrics}` computed with
            scikit-learn; the test split is used only here, after training.
        splits: rows per split, `{"train": n, "validation": n, "test": n}`.
        class_names: the classes in output order (None for regression).
    """

    model: object
    schema: object
    spec: object
    history: object
    report: dict
    splits: dict
    class_names: tuple | None = None

    def predict(self, rows, **options):
        """Same as `predict_table(self.model, rows, ...)`."""
        return predict_table(self.model, rows, **options)


def predict_table(model, rows, *, proba=False, threshold=0.5, batch_size=1024):
    """Predicts from raw rows; returns original class labels or target values.

    Args:
        model: a raw-column model (from `fit_table` or `load_table_model`).
        rows: a DataFrame, CSV path, dict of columns or list of row dicts.
        proba: for classification, return class probabilities
            (n, classes) instead of labels. Defaults to False.
        threshold: binary decision threshold. Defaults to 0.5.
        batch_size: the most rows per predict call (`kerakit.training.predict_padded`). Defaults to 1024.

    Returns:
        a NumPy array: labels as the target column wrote them (text, integers
        or booleans), probabilities, or regression values in the target's units.

    Example:

    ```python
    predict_table(model, "new_houses.csv")[:3]
    # array([312000.5, 198500.1, 455020.0], dtype=float32)
    ```
    """
    from kerakit.training import predict_padded

    metadata = table_metadata(model)
    inputs = table_inputs(model, rows)
    output = predict_padded(model, inputs, batch_size)
    if metadata["task"] == "regression":
        return output[:, 0] if output.shape[1] == 1 else output
    names = np.asarray(metadata["class_names"], dtype=object)
    if metadata["task"] == "binary":
        probabilities = np.concatenate([1 - output, output], axis=1)
        return probabilities if proba else names[(output[:, 0] >= threshold).astype(int)]
    return output if proba else names[output.argmax(axis=1)]


def save_table_model(model, path):
    """Saves a model to a `.keras` file atomically (temp file, then `os.replace`).

    Example:

    ```python
    save_table_model(result.model, "runs/houses/model.keras")
    ```
    """
    path = os.fspath(path)
    if not path.endswith(".keras"):
        raise ConfigError(f"The model file must end in '.keras'. Received: {path!r}")
    from kerakit.atomic import atomic_path

    with atomic_path(path) as temp:
        model.save(temp)
    return path


def load_table_model(path):
    """Loads a raw-column model through kerakit's one safe loader, `kerakit.saving.load_model`.

    Example:

    ```python
    model = load_table_model("model.keras")
    predict_table(model, [{"city": "Oslo", "rooms": 3}])
    ```
    """
    from kerakit.saving import load_model

    return load_model(os.fspath(path))
