"""Input checks shared by every engine: features, labels, weights, splits, callbacks.

Core floor: imports only `errors` and `spec` (and NumPy / scikit-learn), so
any feature package may use it. Each check raises a kerakit error that says
what was found, what was expected and how to fix it, before training starts.
"""

import math

import numpy as np

from kerakit.errors import ConfigError, DataError, DataTypeError
from kerakit.spec import class_indices, validate_labels


def rows(x):
    """Number of examples in an array, a DataFrame or a dict of columns."""
    if isinstance(x, dict):
        return len(next(iter(x.values()))) if x else 0
    return len(x)


def validate_features(x, input_shape=None, what="x"):
    """Checks a feature array and returns it as float32.

    Refuses object or string dtypes, NaN or infinite cells (naming where the
    first ones are), empty data and a width that differs from the model's.
    """
    if hasattr(x, "to_numpy") and not isinstance(x, dict):
        x = x.to_numpy()
    x = as_array(x, what)
    if x.size == 0 or x.ndim == 0:
        raise DataError(f"`{what}` is empty (shape {x.shape}). Pass at least one example.")
    if x.dtype.kind not in "biuf":
        sample = x.ravel()[:3].tolist()
        raise DataTypeError(
            f"`{what}` must be numeric; received dtype {x.dtype} (values such as {sample!r}). "
            f"Encode text or categorical columns first (see kerakit.data for raw-column "
            f"models) or convert with x.astype('float32')."
        )
    if x.ndim == 1:
        x = x[:, None]
    x = x.astype(np.float32, copy=False)
    bad = ~np.isfinite(x)
    if bad.any():
        where = np.argwhere(bad)[:3].tolist()
        raise DataError(
            f"`{what}` has {int(bad.sum())} NaN or infinite cell(s) in "
            f"{int(bad.reshape(len(x), -1).any(axis=1).sum())} row(s); first at (row, column) "
            f"{where}. A single NaN turns the whole model into NaN. Impute or drop them "
            f"(e.g. sklearn.impute.SimpleImputer), or use a raw-column model from kerakit.data."
        )
    if input_shape is not None:
        expected = tuple(input_shape[1:])
        check_rank(expected, x, what)
        if len(expected) == x.ndim - 1 and any(
            e is not None and e != a for e, a in zip(expected, x.shape[1:], strict=True)
        ):
            raise DataError(
                f"The model expects {expected[-1] if len(expected) == 1 else expected} feature(s) "
                f"per row; `{what}` has {x.shape[1] if x.ndim == 2 else x.shape[1:]}. Use the "
                f"same columns as at build time."
            )
    return x


def _named_inputs(model):
    """{input name: symbolic input} of a model with several inputs, or {} when unknown."""
    try:
        structure = model.input
    except (AttributeError, ValueError):  # a subclassed model not yet called
        return {}
    if isinstance(structure, dict):
        return dict(structure)
    if not isinstance(structure, (list, tuple)):
        structure = [structure]
    return {t.name: t for t in structure if isinstance(getattr(t, "name", None), str)}


def _raw_column_inputs(model):
    """Names of a raw-column model's column inputs: its own layers fill and encode their cells.

    `kerakit.layers.TableInput` marks itself with `raw_column = True` (that
    package imports this module, so the class is not imported here).
    """
    return {layer.name for layer in getattr(model, "layers", ()) if getattr(layer, "raw_column", False)}


def validate_input_dict(model, x, what="x"):
    """Checks a dict of inputs as one array is checked: names, numbers, finite cells, equal rows.

    Each numeric input must hold finite numbers (string inputs, and the
    column inputs of a raw-column model, whose layers fill missing cells,
    are left to the model's own layers); every input must have the same
    number of rows. Returns the dict with pandas columns turned into arrays.
    """
    check_input_names(model, x, what)
    inputs = _named_inputs(model)
    raw_columns = _raw_column_inputs(model)
    out, counts = {}, {}
    for name, value in x.items():
        tensor = inputs.get(str(name))
        if hasattr(value, "to_numpy"):
            value = value.to_numpy()
        if str(name) in raw_columns or (tensor is not None and "string" in str(getattr(tensor, "dtype", ""))):
            out[name] = value
        else:
            shape = getattr(tensor, "shape", None)
            checked = validate_features(value, None if shape is None else tuple(shape),
                                        what=f"{what}[{name!r}]")
            out[name] = checked.reshape(np.shape(value)) if checked.size == np.size(value) else checked
        counts[name] = len(out[name])
    if len(set(counts.values())) > 1:
        raise DataError(
            f"The inputs of `{what}` have different numbers of rows: {counts}. Each input needs "
            f"one row per example; pass inputs of equal length."
        )
    return out


def takes_text(model):
    """True when the model's one input is a string tensor (text models, `kerakit.text_inputs`)."""
    try:
        dtype = model.input.dtype
    except (AttributeError, ValueError):
        return False
    return "string" in str(dtype)


def validate_text(x, what="x"):
    """Checks texts (a list or array of strings) and returns them as an N×1 object array of Python strings."""
    if hasattr(x, "to_numpy") and not isinstance(x, dict):
        x = x.to_numpy()
    x = np.asarray(x, dtype=object)
    if x.ndim == 2 and x.shape[1] == 1:
        x = x[:, 0]
    if x.ndim != 1 or x.size == 0:
        raise DataError(
            f"`{what}` must be a non-empty list or 1-D array of strings, one text per example. "
            f"Received shape {x.shape}."
        )
    bad = [i for i, t in enumerate(x) if not isinstance(t, str)]
    if bad:
        raise DataTypeError(
            f"`{what}` must hold strings; {len(bad)} item(s) are not, first at index {bad[0]} "
            f"({x[bad[0]]!r}). Convert them (e.g. fill missing texts with \"\") first."
        )
    undecodable = [i for i, t in enumerate(x) if not _encodes(t)]
    if undecodable:
        raise DataError(
            f"`{what}` holds {len(undecodable)} text(s) that are not valid Unicode, first at index "
            f"{undecodable[0]} ({x[undecodable[0]]!r}): bytes that were not UTF-8, kept as "
            f"surrogate escapes. Read the file with its real encoding (e.g. encoding='latin-1') "
            f"or errors='replace'."
        )
    if not any(t.strip() for t in x):
        raise DataError(
            f"`{what}` holds only empty strings ({len(x)} of them), so there is nothing to learn "
            f"from. Check the text column."
        )
    return np.asarray([str(t) for t in x], dtype=object)[:, None]


def _encodes(text):
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_same_rows(x, y, what="x"):
    """Refuses labels (or weights) whose row count differs from the features'."""
    if y is not None and rows(x) != len(y):
        raise DataError(
            f"`{what}` has {rows(x)} rows but the labels have {len(y)}. Each example needs "
            f"exactly one label row."
        )


def model_input_shape(model):
    """The model's input shape as a tuple, or None when it has several inputs or none yet."""
    try:
        shape = model.input_shape
    except (AttributeError, ValueError):
        return None
    return shape if isinstance(shape, tuple) else None


def prepare(model, x, y=None, spec=None, what="x"):
    """Validates features and labels for `model`; returns NumPy arrays ready to train on."""
    if isinstance(x, dict):
        x = validate_input_dict(model, x, what)
    elif takes_text(model):
        x = validate_text(x, what)
    else:
        x = validate_features(x, model_input_shape(model), what=what)
    if y is not None:
        y = validate_labels(spec, y) if spec is not None else np.asarray(y)
        check_same_rows(x, y, what)
    return x, y


def class_weights(spec, y, class_weight):
    """Returns per-example weights for `class_weight` ("balanced" or {class: weight})."""
    from sklearn.utils.class_weight import compute_class_weight

    if spec is None or spec.task not in ("binary", "multiclass"):
        raise ConfigError(
            "`class_weight` applies to binary and multiclass problems with a known spec. "
            f"Received task={getattr(spec, 'task', None)!r}."
        )
    labels = class_indices(spec, y).astype(np.int64)
    classes = np.arange(spec.num_outputs if spec.task == "multiclass" else 2)
    if class_weight == "balanced":
        present = np.unique(labels)
        table = dict(zip(present, compute_class_weight("balanced", classes=present, y=labels), strict=True))
    elif isinstance(class_weight, dict):
        names = list(spec.class_names or ())
        table, unknown = {}, []
        for key, value in class_weight.items():
            if key in names:
                table[names.index(key)] = float(value)
            elif isinstance(key, (int, np.integer)) and not isinstance(key, bool) and key in classes:
                table[int(key)] = float(value)
            else:
                unknown.append(key)
        if unknown:
            valid = names or classes.tolist()
            raise ConfigError(
                f"`class_weight` names classes {unknown!r} that the spec does not have. Valid "
                f"classes: {valid!r}."
            )
    else:
        raise ConfigError(
            f"`class_weight` must be 'balanced' or a dict {{class: weight}}. "
            f"Received: class_weight={class_weight!r}"
        )
    return np.array([table.get(c, 1.0) for c in labels], dtype=np.float32)


def example_weights(spec, y, class_weight=None, sample_weight=None):
    """Combines `class_weight` and `sample_weight` into one weight per example, or None."""
    weights = None
    if class_weight is not None:
        weights = class_weights(spec, y, class_weight)
    if sample_weight is not None:
        sample_weight = np.asarray(sample_weight, dtype=np.float32).reshape(-1)
        check_same_rows(sample_weight, y, "sample_weight")
        weights = sample_weight if weights is None else weights * sample_weight
    return weights


def split_validation(arrays, validation_split):
    """Keeps Keras's meaning: the last `validation_split` fraction, before shuffling."""
    check_fraction("validation_split", validation_split)
    n = rows(arrays[0])
    cut = int(math.floor(n * (1 - validation_split)))
    if cut == 0 or cut == n:
        raise DataError(
            f"validation_split={validation_split} leaves no rows for training or validation "
            f"with {n} rows. Pass more data or another fraction."
        )

    def take(a, sl):
        if a is None:
            return None
        if isinstance(a, dict):
            return {k: v[sl] for k, v in a.items()}
        return a[sl]

    return [take(a, slice(0, cut)) for a in arrays], [take(a, slice(cut, None)) for a in arrays]


def check_monitors(callbacks, has_validation):
    """Refuses a callback that watches `val_*` when there is no validation data."""
    if has_validation:
        return
    for callback in callbacks or ():
        monitor = getattr(callback, "monitor", None)
        if isinstance(monitor, str) and monitor.startswith("val_"):
            raise ConfigError(
                f"{type(callback).__name__} watches {monitor!r}, but there is no validation "
                f"data. Pass validation_data=(x_val, y_val) or validation_split=0.2, or watch "
                f"{monitor[4:]!r}."
            )


def is_integer(value):
    """True for an `int` or NumPy integer, not a bool."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def check_count(name, value, minimum=1, spelled=None, *, maximum=None, allow_none=False):
    """The integer checker: refuses a value that is not a whole number in [`minimum`, `maximum`].

    Returns it as an `int` (or None when `allow_none` and it is None).
    `spelled` is how the caller writes the option (e.g. "--epochs" from the
    shell); defaults to `name`.

    Example:

    >>> check_count("epochs", 3)
    3
    """
    spelled = spelled or name
    if value is None and allow_none:
        return None
    bounds = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
    if not is_integer(value):
        hint = f" Pass {spelled}={int(value)}." if isinstance(value, float) and value.is_integer() else ""
        none = " (or None)" if allow_none else ""
        raise ConfigError(
            f"`{spelled}` must be a whole number {bounds}{none}. Received: {spelled}={value!r} "
            f"({type(value).__name__}).{hint}"
        )
    if value < minimum or (maximum is not None and value > maximum):
        raise ConfigError(f"`{spelled}` must be {bounds}. Received: {spelled}={value!r}.")
    return int(value)


def check_fraction(name, value, low=0.0, high=1.0, *, include_low=False, include_high=False,
                   example=None, spelled=None):
    """The float-range checker: refuses a value that is not a real number between `low` and `high`.

    The ends are excluded unless `include_low` / `include_high`. Returns the
    value as a `float`.

    Example:

    >>> check_fraction("threshold", 0.3)
    0.3
    """
    spelled = spelled or name
    interval = f"{'[' if include_low else '('}{low:g}, {high:g}{']' if include_high else ')'}"
    number = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
    inside = number and math.isfinite(value) and (
        (low <= value if include_low else low < value) and (value <= high if include_high else value < high)
    )
    if not inside:
        hint = f", e.g. {example}" if example is not None else ""
        raise ConfigError(
            f"`{spelled}` must be a number in {interval}{hint}. Received: {spelled}={value!r}."
        )
    return float(value)


def check_weights(weights, what="sample_weight"):
    """Refuses weights that are not finite non-negative numbers with at least one above zero."""
    if weights is None:
        return None
    array = np.asarray(weights)
    if array.dtype.kind not in "biuf":
        raise DataTypeError(
            f"`{what}` must be numbers, one per example; received dtype {array.dtype} (values "
            f"such as {array.ravel()[:3].tolist()!r}). Convert with np.asarray(w, dtype=float)."
        )
    array = array.astype(np.float32).reshape(-1)
    bad = ~np.isfinite(array)
    if bad.any():
        raise DataError(
            f"`{what}` has {int(bad.sum())} NaN or infinite value(s), first at row "
            f"{int(np.argmax(bad))}; the loss would be NaN. Give every example a finite weight."
        )
    if (array < 0).any():
        raise DataError(
            f"`{what}` has {int((array < 0).sum())} negative value(s), first at row "
            f"{int(np.argmax(array < 0))} ({float(array[np.argmax(array < 0)])}); a negative "
            f"weight rewards the loss for growing. Weights must be >= 0."
        )
    if array.size and not (array > 0).any():
        raise DataError(f"Every `{what}` value is 0, so nothing would be learned. Give some examples weight.")
    return array


def check_class_weight(class_weight):
    """Refuses a `class_weight` that is neither "balanced" nor a {class: finite weight >= 0} dict."""
    if class_weight is None or class_weight == "balanced":
        return
    if not isinstance(class_weight, dict):
        raise ConfigError(
            f"`class_weight` must be 'balanced' or a dict {{class: weight}}. "
            f"Received: class_weight={class_weight!r}"
        )
    for key, value in class_weight.items():
        if not isinstance(value, (int, float, np.integer, np.floating)) or not np.isfinite(value) or value < 0:
            raise ConfigError(
                f"`class_weight` values must be finite numbers >= 0. Received: "
                f"class_weight[{key!r}]={value!r}."
            )


# The largest float32 whose square is still finite: a feature beyond it
# overflows in the first matrix product or variance computed on it.
FEATURE_LIMIT = float(np.sqrt(np.finfo(np.float32).max))


def check_magnitude(x, what="x"):
    """Refuses finite features so large that float32 arithmetic on them overflows."""
    if isinstance(x, dict) or x.dtype.kind not in "biuf":  # raw text has no magnitude
        return
    big = np.abs(x) > FEATURE_LIMIT
    if big.any():
        where = np.argwhere(big)[:3].tolist()
        raise DataError(
            f"`{what}` has {int(big.sum())} value(s) larger than {FEATURE_LIMIT:.3g} in magnitude, "
            f"first at (row, column) {where}; their square overflows float32 and the loss becomes "
            f"NaN. Scale the features first (e.g. sklearn.preprocessing.StandardScaler or a log)."
        )


def check_validation_data(validation_data):
    """Refuses `validation_data` that is not `(x_val, y_val)` or `(x_val, y_val, weights)`."""
    if validation_data is None or hasattr(validation_data, "element_spec"):
        return validation_data
    if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
        got = f"a {type(validation_data).__name__}"
        if isinstance(validation_data, (tuple, list)):
            got += f" of {len(validation_data)} item(s)"
        raise ConfigError(
            f"`validation_data` must be a tuple (x_val, y_val) or (x_val, y_val, sample_weight). "
            f"Received {got}."
        )
    return validation_data


def check_model(model, what="model"):
    """Refuses anything but a compiled `keras.Model` (a path, say, or a model never compiled)."""
    import keras

    if isinstance(model, (str, bytes)) or hasattr(model, "__fspath__"):
        raise ConfigError(
            f"`{what}` must be a keras.Model, not a path. Load the file first with "
            f"kerakit.load_model(path). Received: {what}={model!r}"
        )
    if not isinstance(model, keras.Model):
        raise ConfigError(
            f"`{what}` must be a keras.Model (e.g. from kerakit.build_model). Received: "
            f"{what}={type(model).__name__}"
        )
    if getattr(model, "compiled", True) is False:
        raise ConfigError(
            f"Model '{model.name}' is not compiled, so it has no loss or optimizer to train "
            f"with. Call model.compile(optimizer=..., loss=...) first, or build it with "
            f"kerakit.build_model, which compiles it."
        )


def check_callbacks(callbacks, what="callbacks"):
    """Returns `callbacks` as a list of `keras.callbacks.Callback`, refusing anything else."""
    import keras

    if callbacks is None:
        return []
    if isinstance(callbacks, keras.callbacks.Callback):
        return [callbacks]
    if isinstance(callbacks, (str, bytes, dict)) or not hasattr(callbacks, "__iter__"):
        raise ConfigError(
            f"`{what}` must be a list of keras.callbacks.Callback objects (e.g. "
            f"kerakit.default_callbacks(spec)). Received: {what}={callbacks!r}"
        )
    callbacks = list(callbacks)
    bad = [c for c in callbacks if not isinstance(c, keras.callbacks.Callback)]
    if bad:
        raise ConfigError(
            f"Every item of `{what}` must be a keras.callbacks.Callback; {len(bad)} is/are not, "
            f"first {bad[0]!r}. Wrap custom code in a keras.callbacks.LambdaCallback. "
            f"Received: {what}={callbacks!r}"
        )
    return callbacks


def check_seed(seed):
    """Refuses a seed that is not None or a whole number >= 0."""
    return check_count("seed", seed, minimum=0, allow_none=True)


def check_steps_per_execution(steps):
    """Refuses `steps_per_execution` other than "auto" or a whole number >= 1."""
    if steps == "auto":
        return steps
    if not is_integer(steps):
        raise ConfigError(
            f"`steps_per_execution` must be 'auto' or a whole number >= 1. "
            f"Received: steps_per_execution={steps!r}"
        )
    return check_count("steps_per_execution", steps)


def check_fit_arguments(*, batch_size, epochs, validation_data=None, sample_weight=None,
                        class_weight=None, initial_epoch=0, validation_split=0.0, seed=None,
                        steps_per_execution="auto"):
    """Checks `fit`'s options in one place, before any data is touched or anything trains."""
    check_count("batch_size", batch_size)
    check_count("epochs", epochs)
    check_count("initial_epoch", initial_epoch, minimum=0)
    if initial_epoch >= epochs:
        raise ConfigError(
            f"`initial_epoch` ({initial_epoch}) must be smaller than `epochs` ({epochs}), or "
            f"nothing trains. Pass epochs={initial_epoch + 1} or more."
        )
    if validation_split not in (None, 0, 0.0):
        check_fraction("validation_split", validation_split, example=0.2)
    check_seed(seed)
    check_steps_per_execution(steps_per_execution)
    check_validation_data(validation_data)
    check_class_weight(class_weight)
    if sample_weight is not None:
        check_weights(sample_weight)


def as_array(x, what="x"):
    """`np.asarray(x)`, refusing ragged rows (lists of different lengths) with a kerakit error."""
    try:
        return np.asarray(x)
    except ValueError:
        lengths = sorted({len(row) for row in x if hasattr(row, "__len__")}) if isinstance(x, (list, tuple)) else []
        found = f" (row lengths {lengths[:5]})" if lengths else ""
        raise DataTypeError(
            f"`{what}` has rows of different lengths{found}, so it is not a table. Give every row "
            f"the same number of features (pad or drop), or pass a 2-D NumPy array."
        ) from None


def check_rank(expected, x, what="x"):
    """Refuses features with more or fewer dimensions per row than the model's input."""
    extra = x.ndim - 1 - len(expected)
    # Keras itself adds or drops a trailing axis of size 1, so those ranks work.
    trailing_one = (extra == 1 and x.shape[-1] == 1) or (extra == -1 and expected[-1] == 1)
    if expected and extra and not trailing_one:
        raise DataError(
            f"The model takes rows of shape {expected}; `{what}` has rows of shape "
            f"{tuple(x.shape[1:])} ({x.ndim} dimensions in all, the model {len(expected) + 1}). "
            f"Reshape the features (e.g. x.reshape(len(x), -1)) or build the model with "
            f"input_shape={tuple(x.shape[1:])}."
        )


def check_input_names(model, x, what="x"):
    """Refuses a dict of inputs whose keys differ from the model's input names."""
    try:
        structure = model.input
    except (AttributeError, ValueError):  # a subclassed model not yet called
        return
    if isinstance(structure, dict):
        names = list(structure)
    elif isinstance(structure, (list, tuple)):
        names = [getattr(t, "name", None) for t in structure]
    else:
        names = [getattr(structure, "name", None)]
    names = [n for n in names if isinstance(n, str)]
    if not names:
        return
    missing = sorted(set(names) - set(map(str, x)))
    unknown = sorted(set(map(str, x)) - set(names))
    if missing:
        hint = ""
        if len(missing) == 1 and len(unknown) == 1:
            hint = f" Rename {unknown[0]!r} to {missing[0]!r}."
        raise DataError(
            f"`{what}` must be a dict with the model's inputs {names}. Missing: {missing}; "
            f"not inputs of the model: {unknown}.{hint}"
        )
