"""Models and inputs for `kerakit.analysis`: `spec_from_model`, `model_inputs`,
`input_structure` and `resolve_spec` (models load through `kerakit.saving.load_model`;
predictions come from `kerakit.training.predict_in_chunks`).

Only NumPy is imported with the module; Keras and TensorFlow load when a
function needs them.
"""

import numpy as np

from kerakit.errors import DataError, DataTypeError
from kerakit.metadata import spec_of

# Models, inputs and predictions ---------------------------------------------------


def is_table_model(model):
    """True for a raw-column model from `kerakit.data` (it ends in `TableOutput`)."""
    from kerakit.data.table import OUTPUT_LAYER

    return any(layer.name == OUTPUT_LAYER for layer in getattr(model, "layers", ()))


def input_structure(model):
    """The model's symbolic inputs: a dict for raw-column models, else a tensor."""
    try:
        return model.input
    except (AttributeError, ValueError):
        return None


def model_inputs(model, x):
    """Converts `x` to what `model` takes.

    Raw-column models (a dict of named inputs) accept a DataFrame or a dict of
    columns; each column is shaped like its `keras.Input` and text columns
    become string tensors. Other models get validated float32 arrays.
    """
    from kerakit.training import validate_features

    if is_table_model(model):
        from kerakit.data import table_inputs

        return table_inputs(model, x)
    struct = input_structure(model)
    if isinstance(struct, dict):
        return _column_inputs(struct, x)
    if hasattr(x, "to_numpy") and not isinstance(x, dict):
        x = x.to_numpy()
    if isinstance(x, dict):
        raise DataTypeError(
            f"This model takes one feature array, but received a dict of columns "
            f"{sorted(x)[:5]}. Pass a numeric array with the training columns in order."
        )
    shape = None
    try:
        shape = tuple(model.input_shape)
    except (AttributeError, ValueError, TypeError):
        pass
    return validate_features(x, shape)


def _column_inputs(struct, x):
    if hasattr(x, "columns"):
        columns = {name: x[name].to_numpy() for name in x.columns}
    elif isinstance(x, dict):
        columns = {name: np.asarray(value) for name, value in x.items()}
    else:
        raise DataTypeError(
            f"This model takes named columns {sorted(struct)}; pass a pandas DataFrame or a "
            f"dict of columns. Received: {type(x).__name__}"
        )
    missing = sorted(set(struct) - set(columns))
    if missing:
        raise DataError(
            f"The model needs column(s) {missing}, which the data lacks. Columns received: "
            f"{sorted(columns)}."
        )
    rows = {len(v) for v in columns.values()}
    if len(rows) > 1:
        raise DataError(f"The columns have different lengths: {sorted(rows)}. Pass equal columns.")
    out = {}
    for name, tensor in struct.items():
        value = columns[name]
        shape = (len(value),) + tuple(1 if d is None else d for d in tensor.shape[1:])
        if tensor.dtype == "string":
            # NumPy strings: kerakit.training.predict_in_chunks makes them string tensors.
            value = np.array(["" if v is None else str(v) for v in value.ravel()], dtype=object)
            out[name] = value.reshape(shape)
        else:
            try:
                value = value.astype(tensor.dtype)
            except (TypeError, ValueError):
                raise DataTypeError(
                    f"Column {name!r} must be numeric ({tensor.dtype}); it holds values such as "
                    f"{value.ravel()[:3].tolist()!r}."
                ) from None
            out[name] = value.reshape(shape)
    return out


# Output activation → task, for models whose spec is recorded nowhere (built outside
# kerakit, or saved by an early kerakit without their run directory).
_TASK_OF_ACTIVATION = {"softmax": "multiclass", "sigmoid": "binary", "linear": "regression"}


def spec_from_model(model):
    """Returns the `ProblemSpec` of `model`: the one it carries (`kerakit.spec_of`), or one
    read off the output layer (softmax → multiclass, sigmoid → binary or multilabel,
    linear → regression). Returns None when the output layer says nothing.
    """
    from kerakit.spec import ProblemSpec

    spec = spec_of(model)
    if spec is not None:
        return spec
    layer = model.layers[-1] if model.layers else None
    activation = getattr(getattr(layer, "activation", None), "__name__", None)
    task = _TASK_OF_ACTIVATION.get(activation)
    width = model.output_shape[-1] if isinstance(model.output_shape, tuple) else None
    if task is None or width is None:
        return None
    if task == "multiclass":
        return ProblemSpec(task="multiclass", num_classes=int(width))
    if task == "binary":
        return ProblemSpec(task="binary") if width == 1 else ProblemSpec(task="multilabel", num_labels=int(width))
    return ProblemSpec(task="regression", num_targets=int(width))


def resolve_spec(spec, models, y):
    """`spec` when given, else the first one a model carries or shows, else `infer_spec(y)`."""
    from kerakit.inference import infer_spec

    if spec is not None:
        return spec
    for model in models:
        found = spec_from_model(model)
        if found is not None:
            return found
    return infer_spec(y)
