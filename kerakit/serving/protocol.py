"""TensorFlow Serving's REST request and response formats, and the checks run before the model.

Row format: `{"instances": [instance, ...]}` → `{"predictions": [...]}`; an
instance is a value (one-input models) or an object keyed by input name.
Columnar format: `{"inputs": value or {name: value}}` → `{"outputs": ...}`.
Raw-column models take rows keyed by *column* name, with `null` for a missing
cell, which the model imputes as it did in training.
"""

import json

import numpy as np

from kerakit.errors import RequestError, closest
from kerakit.serving.models import SIGNATURE


def fail(message, status=400):
    raise RequestError(message, status)


def short(value, limit=40):
    """A value as a request showed it, cut to `limit` characters."""
    text = repr(value) if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= limit else text[:limit] + "..."


def _contains(value, kind):
    if isinstance(value, list):
        return any(_contains(v, kind) for v in value)
    return isinstance(value, kind)


def _first_leaf(value):
    while isinstance(value, list) and value:
        value = value[0]
    return value


def _found(array, value):
    if array.dtype.kind in "iuf":
        return "found true/false mixed with numbers"
    kinds = {"U": "strings", "b": "true/false values", "O": "null, objects or mixed values"}
    return f"found {kinds.get(array.dtype.kind, array.dtype.name)} such as {short(_first_leaf(value))}"


# Converters: JSON value → array of the input's dtype ----------------------------


def _to_array(value, info, where):
    try:
        return np.asarray(value)
    except (ValueError, TypeError):
        fail(f"Input '{info.name}' in {where} is ragged: its lists have different lengths. "
             f"Expected {info.describe()} for every instance.")


def _to_number(value, info, where, has_bool):
    array = _to_array(value, info, where)
    if array.dtype.kind not in "iuf" or (has_bool and _contains(value, bool)):
        fail(f"Input '{info.name}' in {where} must hold numbers ({info.dtype}); "
             f"{_found(array, value)}. Send numbers as JSON numbers, e.g. 0.5 not \"0.5\".")
    with np.errstate(over="ignore", invalid="ignore"):
        array = array.astype(info.dtype)
    finite = np.isfinite(array)
    if not finite.all():
        first = np.argwhere(~finite)[0].tolist()
        fail(f"Input '{info.name}' in {where} has {int((~finite).sum())} NaN or infinite "
             f"value(s) (first at index {first}), or numbers too large for {info.dtype}. "
             f"Send finite numbers.")
    return array


def _to_integer(value, info, where, has_bool):
    array = _to_array(value, info, where)
    integral = array.dtype.kind in "iu" or (
        array.dtype.kind == "f" and np.isfinite(array).all() and (np.mod(array, 1) == 0).all()
    )
    if not integral or (has_bool and _contains(value, bool)):
        fail(f"Input '{info.name}' in {where} must hold whole numbers ({info.dtype}); "
             f"{_found(array, value)}.")
    limits = np.iinfo(info.dtype)
    if array.size and (array.min() < limits.min or array.max() > limits.max):
        fail(f"Input '{info.name}' in {where} has values outside the range of {info.dtype} "
             f"[{limits.min}, {limits.max}].")
    return array.astype(info.dtype)


def _to_bool(value, info, where, has_bool):
    array = _to_array(value, info, where)
    if array.dtype.kind != "b":
        fail(f"Input '{info.name}' in {where} must hold true/false; {_found(array, value)}.")
    return array


def _to_string(value, info, where, has_bool):
    array = np.array(value, dtype=object)
    for item in array.ravel():
        if not isinstance(item, str):
            hint = (' Base64 values ({"b64": ...}) are not supported; send text.'
                    if isinstance(item, dict) and "b64" in item else "")
            fail(f"Input '{info.name}' in {where} must hold strings (text); found "
                 f"{type(item).__name__} {short(item)}.{hint}")
    return array


# dtype name → converter; other dtypes (complex, ...) are refused.
CONVERTERS = {
    **dict.fromkeys(("float16", "bfloat16", "float32", "float64"), _to_number),
    **dict.fromkeys(("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"),
                    _to_integer),
    "bool": _to_bool,
    "string": _to_string,
}


def _convert(info, value, where, has_bool):
    """Converts one input's batched JSON value to an array of its dtype and shape."""
    converter = CONVERTERS.get(info.dtype)
    if converter is None:
        fail(f"Input '{info.name}' has dtype {info.dtype}, which the REST service does not accept.")
    if not isinstance(value, list) or not value:
        fail(f"Input '{info.name}' in {where} must be a non-empty list with one entry per "
             f"instance. Received: {short(value)}")
    array = converter(value, info, where, has_bool)
    shape = info.shape
    # Columns are declared (1,) per row; a bare scalar per row means the same.
    if shape == (1,) and array.ndim == 1:
        array = array.reshape(-1, 1)
    got = array.shape[1:]
    if len(got) != len(shape) or any(e is not None and e != g for e, g in zip(shape, got, strict=True)):
        fail(f"Input '{info.name}' in {where}: each instance must have shape "
             f"[{', '.join('?' if d is None else str(d) for d in shape)}]; received "
             f"{list(got)}. Expected {info.describe()}.")
    return array


# Raw-column models -------------------------------------------------------------

# Column kind (kerakit.data) → the JSON types a cell may have (null is always allowed).
_CELL_TYPES = {
    "numeric": ((int, float), "a number"),
    # 5.0 is what pandas' to_dict and a CSV give for an integer code: accepted; 5.5 is not.
    "integer_categorical": ((int, float), "a whole number"),
    "string_categorical": ((str,), "a string"),
    "boolean": ((bool,), "true or false"),
}


def _check_cells(column, values, where):
    types, wanted = _CELL_TYPES.get(column["kind"], ((object,), "a value"))
    for i, cell in enumerate(values):
        if cell is None:
            continue
        bad = not isinstance(cell, types) or (isinstance(cell, bool) and bool not in types)
        if not bad and isinstance(cell, float) and not np.isfinite(cell):
            fail(f"Column '{column['name']}' in {where} {i} is {cell}. Send a finite number, "
                 f"or null for a missing value (the model fills it as in training).")
        if not bad and column["kind"] == "integer_categorical" and isinstance(cell, float):
            bad = not cell.is_integer() or abs(cell) > 2**53
        if bad:
            fail(f"Column '{column['name']}' ({column['kind']}) in {where} {i} must be {wanted} "
                 f"or null; received {short(cell)}.")


def _table_feeds(servable, columns, where):
    """Converts checked `{column: [cells]}` to the model's inputs with kerakit.data's rules."""
    import pandas as pd

    from kerakit.data.schema import TableSchema, to_inputs

    table = servable.table["columns"]
    for column in table:
        _check_cells(column, columns[column["name"]], where)
    schema = TableSchema.from_dict({"columns": [{"name": c["name"], "kind": c["kind"]} for c in table]})
    frame = pd.DataFrame({c["name"]: pd.Series(columns[c["name"]], dtype=object) for c in table})
    try:
        converted = to_inputs(frame, schema, where)
    except (TypeError, ValueError) as error:
        fail(str(error))
    shapes = {info.name: info for info in servable.inputs}
    feeds = {}
    for column in table:
        array = np.asarray(converted[column["name"]])
        info = shapes[column["input"]]
        feeds[info.name] = array.reshape((len(array),) + tuple(1 if d is None else d for d in info.shape))
        if info.dtype == "string":
            feeds[info.name] = feeds[info.name].astype(object)
    return feeds


def _table_columns(servable, payload):
    names = [c["name"] for c in servable.table["columns"]]
    if "instances" in payload:
        rows = payload["instances"]
        if not isinstance(rows, list) or not rows:
            fail(f'"instances" must be a non-empty list of rows. Received: {short(rows)}')
        for i, row in enumerate(rows):
            if not isinstance(row, dict):
                fail(f"Instance {i} must be an object keyed by column name, such as "
                     f"{ {n: '...' for n in names[:3]} }. Received: {short(row)}")
            _check_keys(names, row, f"Instance {i}", "column")
        return {n: [row[n] for row in rows] for n in names}, "instance"
    columns = payload["inputs"]
    if not isinstance(columns, dict):
        fail(f'"inputs" must be an object keyed by column name {names[:5]}. Received: {short(columns)}')
    _check_keys(names, columns, '"inputs"', "column")
    lengths = set()
    for n in names:
        if not isinstance(columns[n], list) or not columns[n]:
            fail(f'Column {n!r} in "inputs" must be a non-empty list, one cell per row. '
                 f"Received: {short(columns[n])}")
        lengths.add(len(columns[n]))
    if len(lengths) > 1:
        fail(f'The columns in "inputs" have different lengths {sorted(lengths)}. Send one cell '
             f"per row in every column.")
    return columns, "row"


# Requests and responses ----------------------------------------------------------


def _check_keys(names, given, where, what="input"):
    missing = [n for n in names if n not in given]
    extra = sorted(str(k) for k in set(given) - set(names))
    if missing or extra:
        hint = closest(extra[0], names) if extra else None
        did_you_mean = f" Did you mean '{hint}' for '{extra[0]}'?" if hint else ""
        null = " Send null for a missing value." if what == "column" and missing else ""
        fail(f"{where} must have exactly the model's {what}s {names}. Missing: {missing}; "
             f"unknown: {extra}.{did_you_mean}{null}")


def _columns_from_rows(servable, instances):
    if not isinstance(instances, list) or not instances:
        fail(f'"instances" must be a non-empty list, one entry per example. Received: {short(instances)}')
    names = [info.name for info in servable.inputs]
    if len(names) > 1 or isinstance(instances[0], dict):
        for i, instance in enumerate(instances):
            if not isinstance(instance, dict):
                fail(f"Instance {i} must be an object keyed by input name {names}, like the "
                     f"first instance. Received: {short(instance)}")
            _check_keys(names, instance, f"Instance {i}")
        return {n: [instance[n] for instance in instances] for n in names}
    return {names[0]: instances}


def _columns_from_inputs(servable, inputs):
    names = [info.name for info in servable.inputs]
    if isinstance(inputs, dict):
        _check_keys(names, inputs, '"inputs"')
        return inputs
    if len(names) > 1:
        fail(f'This model has several inputs {names}: "inputs" must be an object keyed by input name.')
    return {names[0]: inputs}


def parse_request(servable, body):
    """Validates a `:predict` body for `servable`; returns `(feeds, rows, columnar)`.

    Accepts TensorFlow Serving's row format (`{"instances": [...]}`) and its
    columnar format (`{"inputs": ...}`). Checks JSON, keys, shapes, dtypes
    and finiteness, and raises `RequestError` (status 400) saying what is
    wrong before the model sees anything.

    Example:

    ```python
    feeds, rows, columnar = parse_request(servable, b'{"instances": [[0.1, 0.2]]}')
    feeds["features"].shape, rows, columnar
    # ((1, 2), 1, False)
    ```
    """
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        fail(f"The request body is not valid JSON ({str(error)[:120]}). Send "
             f'{{"instances": [...]}} or {{"inputs": ...}}.')
    if not isinstance(payload, dict):
        fail(f'The request body must be a JSON object such as {{"instances": [...]}}. '
             f"Received a JSON {type(payload).__name__}.")
    unknown = sorted(set(payload) - {"instances", "inputs", "signature_name"})
    if unknown:
        fail(f"Unknown key(s) {unknown} in the request. Valid keys: 'instances' or 'inputs', "
             f"and optionally 'signature_name'.")
    signature = payload.get("signature_name", SIGNATURE)
    if signature != SIGNATURE:
        fail(f"Unknown signature_name {short(signature)}. This model serves '{SIGNATURE}'.")
    if ("instances" in payload) == ("inputs" in payload):
        fail('The request must have exactly one of "instances" (row format) or "inputs" '
             "(columnar format).")
    columnar = "inputs" in payload
    if servable.table is not None:
        columns, where = _table_columns(servable, payload)
        feeds = _table_feeds(servable, columns, where)
    else:
        # JSON true/false parse to bools, which NumPy would quietly read as 1/0;
        # look for them only when the body has one.
        has_bool = b"true" in body or b"false" in body
        if columnar:
            columns = _columns_from_inputs(servable, payload["inputs"])
        else:
            columns = _columns_from_rows(servable, payload["instances"])
        where = "'inputs'" if columnar else "'instances'"
        feeds = {info.name: _convert(info, columns[info.name], where, has_bool)
                 for info in servable.inputs}
    rows = {len(a) for a in feeds.values()}
    if len(rows) > 1:
        fail(f"The inputs have different numbers of rows: "
             f"{ {k: len(v) for k, v in feeds.items()} }. Send the same number for each.")
    return feeds, rows.pop(), columnar


def format_response(outputs, columnar):
    """Shapes model outputs as TensorFlow Serving does: `predictions` rows or `outputs` columns."""
    if columnar:
        if len(outputs) == 1:
            return {"outputs": next(iter(outputs.values())).tolist()}
        return {"outputs": {k: v.tolist() for k, v in outputs.items()}}
    if len(outputs) == 1:
        return {"predictions": next(iter(outputs.values())).tolist()}
    lists = {k: v.tolist() for k, v in outputs.items()}
    rows = len(next(iter(lists.values())))
    return {"predictions": [{k: v[i] for k, v in lists.items()} for i in range(rows)]}
