"""Column kinds, schema inference and the checks that run before anything trains.

A column is one of four kinds (the `KINDS` table): "numeric",
"integer_categorical", "string_categorical" or "boolean". Each kind knows the
dtype of its model input and how to turn raw cells (text from a CSV, or a
pandas/NumPy column) into that input: NaN for a missing number or boolean,
-1 for a missing integer code, "" for a missing string.
"""

import dataclasses

import numpy as np

from kerakit.errors import ConfigError, DataError, DataTypeError, closest, unknown_name

# A raw-column model has one Keras input and a few layers per column, so its build,
# trace and save grow with the columns; past this many it is refused up front.
MAX_FEATURE_COLUMNS = 1_000
# An integer column with at most this many distinct values (and fewer distinct
# values than half its rows) is read as integer-coded categories.
INTEGER_CATEGORY_LIMIT = 10
MISSING_INTEGER = -1
TRUE_TOKENS = ("true",)
FALSE_TOKENS = ("false",)


def _plain(series):
    """A pandas categorical column as plain values (its categories' own types)."""
    import pandas as pd

    return series.astype(object) if isinstance(series.dtype, pd.CategoricalDtype) else series


def _is_missing(series):
    return series.isna().to_numpy()


def parse_numbers(series):
    """Parses a column as numbers; returns (float64 values, mask of unparsable cells)."""
    import pandas as pd

    values = pd.to_numeric(series, errors="coerce")
    if values.dtype.kind == "b":
        values = values.astype(np.float64)
    values = np.asarray(values, dtype=np.float64)
    return values, np.isnan(values) & ~_is_missing(series)


def bool_values(series):
    """Maps True/False cells (or their text) to 1.0/0.0, missing to NaN; None if not boolean."""
    if series.dtype.kind == "b":
        return series.to_numpy().astype(np.float32)
    present = series[~_is_missing(series)]
    if len(present) == 0:
        return None
    if present.dtype.kind in "iuf":
        return None
    tokens = present.map(lambda v: str(v).strip().lower())
    if not tokens.isin(TRUE_TOKENS + FALSE_TOKENS).all():
        return None
    out = np.full(len(series), np.nan, dtype=np.float32)
    lowered = series.map(lambda v: str(v).strip().lower(), na_action="ignore")
    out[lowered.isin(TRUE_TOKENS).to_numpy()] = 1.0
    out[lowered.isin(FALSE_TOKENS).to_numpy()] = 0.0
    return out


def row_labels(series, mask, limit=5):
    """The index labels (line numbers, row names) of the first `limit` masked rows, as text."""
    labels = series.index[mask][:limit].tolist()
    more = ", ..." if int(mask.sum()) > limit else ""
    return ", ".join(str(v) for v in labels) + more


# Conversions: raw column → model input array -----------------------------


def _to_numeric(series, name, where):
    values, bad = parse_numbers(series)
    if bad.any():
        sample = series[bad].head(3).tolist()
        raise DataTypeError(
            f"Column {name!r} is numeric but {int(bad.sum())} cell(s) are not numbers, such as "
            f"{sample!r}, at {where} {row_labels(series, bad)}. Fix those cells, pass "
            f"na_values={sample[:1]!r} if they mean 'missing', or declare the column "
            f"categorical with types={{{name!r}: 'string_categorical'}}."
        )
    out = values.astype(np.float32)
    infinite = np.isinf(out)  # 'inf', '-inf', and numbers beyond float32 such as 1e400
    if infinite.any():
        sample = series[infinite].head(3).tolist()
        raise DataError(
            f"Column {name!r} has {int(infinite.sum())} infinite cell(s) (or numbers too large "
            f"for float32), such as {sample!r}, at {where} {row_labels(series, infinite)}. A "
            f"model needs finite numbers: fix those cells, or pass na_values={sample[:1]!r} if "
            f"they mean 'missing'."
        )
    return out


def _to_integer(series, name, where):
    values = _to_numeric(series, name, where).astype(np.float64)
    present = ~np.isnan(values)
    fractional = present & (np.mod(np.where(present, values, 0), 1) != 0)
    if fractional.any():
        raise DataTypeError(
            f"Column {name!r} holds integer category codes but has non-integer values such as "
            f"{series[fractional].head(3).tolist()!r} at {where} {row_labels(series, fractional)}. "
            f"Declare it numeric with types={{{name!r}: 'numeric'}}."
        )
    return np.where(present, values, MISSING_INTEGER).astype(np.int64)


def _to_string(series, name, where):
    missing = _is_missing(series)
    text = series.astype(object).where(~missing, "").map(_text)
    # Object arrays of str: what both tf.data and `keras.Model.predict` accept.
    return text.to_numpy(dtype=object)


def _text(value):
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _to_boolean(series, name, where):
    values = bool_values(series)
    if values is None and series.dtype.kind in "iuf":
        # 0/1 numbers (as a JSON client may send them) mean False/True.
        numbers = series.to_numpy(dtype=np.float64)
        if np.isin(numbers[~np.isnan(numbers)], (0.0, 1.0)).all():
            values = numbers.astype(np.float32)
    if values is None:
        present = series[~_is_missing(series)]
        raise DataTypeError(
            f"Column {name!r} is boolean but holds values other than true/false, such as "
            f"{present.drop_duplicates().head(3).tolist()!r}. Declare it "
            f"types={{{name!r}: 'string_categorical'}} or 'integer_categorical'."
        )
    return values


@dataclasses.dataclass(frozen=True)
class Kind:
    """One column kind: its raw-cell dtype and its raw → input conversion."""

    name: str
    dtype: str
    convert: object


KINDS = {
    "numeric": Kind("numeric", "float32", _to_numeric),
    "integer_categorical": Kind("integer_categorical", "int64", _to_integer),
    "string_categorical": Kind("string_categorical", "string", _to_string),
    "boolean": Kind("boolean", "float32", _to_boolean),
}
# What the model does with each kind, as the schema prints it: the "table" body
# (kerakit.data.bodies.table_preprocessor) and every other body (make_preprocessor).
_CATEGORIES = {
    "integer_categorical": "one-hot over the training values; missing → its own code; unseen → OOV slot",
    "string_categorical": "one-hot over the training values; missing → its own token; unseen → OOV slot",
    "boolean": "0/1; missing → training rate + indicator",
}
ENCODINGS = {
    "table": {"numeric": "missing → training median + indicator; SmoothClip (median, IQR); "
                         "piecewise-linear over quantile bins", **_CATEGORIES},
    "other": {"numeric": "missing → training mean + indicator; Normalization (mean, variance)",
              **_CATEGORIES},
}
KIND_ALIASES = {
    "number": "numeric", "float": "numeric", "continuous": "numeric", "num": "numeric",
    "int": "integer_categorical", "integer": "integer_categorical",
    "int_categorical": "integer_categorical",
    "string": "string_categorical", "str": "string_categorical", "categorical": "string_categorical",
    "category": "string_categorical", "text": "string_categorical",
    "bool": "boolean",
}


def get_kind(name):
    """Returns the `Kind` for a kind name or alias ("numeric", "int", "string", "bool", ...)."""
    key = KIND_ALIASES.get(str(name).lower(), str(name).lower())
    if key not in KINDS:
        raise unknown_name("column kind", name, list(KINDS) + list(KIND_ALIASES))
    return KINDS[key]


# Schema -------------------------------------------------------------------


@dataclasses.dataclass
class Column:
    """One feature column: its name, kind, and what was seen while inferring it."""

    name: str
    kind: str
    missing: int = 0
    distinct: int = 0
    inferred: bool = True

    @property
    def dtype(self):
        return KINDS[self.kind].dtype


@dataclasses.dataclass
class TableSchema:
    """The columns a raw-column model takes, their kinds, and the target.

    `print(schema)` shows a table of columns, kinds, missing cells and how
    each is encoded. Pass `types={name: kind}` to `infer_schema` or
    `fit_table` to override an inferred kind.

    Example:

    >>> import pandas as pd
    >>> frame = pd.DataFrame({"rooms": [1, 2, 3, 4] * 10, "city": ["Oslo", "Bergen"] * 20,
    ...                       "area": np.linspace(30.0, 120.0, 40), "price": np.linspace(1e5, 5e5, 40)})
    >>> schema = infer_schema(frame, target="price")
    >>> print(schema)
    column  kind                 missing  distinct  encoding
    rooms   integer_categorical        0         4  one-hot over the training values; missing → its own code; unseen → OOV slot
    city    string_categorical         0         2  one-hot over the training values; missing → its own token; unseen → OOV slot
    area    numeric                    0        40  missing → training median + indicator; SmoothClip (median, IQR); piecewise-linear over quantile bins
    target: 'price'; 40 rows
    >>> schema["rooms"].kind
    'integer_categorical'
    """

    columns: list
    target: str | None = None
    rows: int = 0
    body: str = "table"  # the body whose preprocessing `summary` describes

    def __getitem__(self, name):
        for column in self.columns:
            if column.name == name:
                return column
        raise unknown_name("column", name, self.names)

    @property
    def names(self):
        return [column.name for column in self.columns]

    def to_dict(self):
        return {"target": self.target, "rows": self.rows,
                "columns": [dataclasses.asdict(c) for c in self.columns]}

    @classmethod
    def from_dict(cls, config):
        return cls([Column(**c) for c in config["columns"]], config.get("target"),
                   config.get("rows", 0))

    def summary(self, body=None):
        """Returns the schema as a text table (one line per column).

        Args:
            body: the model body whose preprocessing the "encoding" column
                describes ("table", or any other body, which shares one
                preprocessing). Defaults to the schema's `body` ("table").
        """
        encodings = ENCODINGS["table" if (body or self.body) == "table" else "other"]
        width = max([len(c.name) for c in self.columns] + [6])
        lines = [f"{'column':<{width}}  {'kind':<19}  {'missing':>7}  {'distinct':>8}  encoding"]
        for c in self.columns:
            source = "" if c.inferred else " (given)"
            lines.append(f"{c.name:<{width}}  {c.kind:<19}  {c.missing:>7}  {c.distinct:>8}  "
                         f"{encodings[c.kind]}{source}")
        if self.target is not None:
            lines.append(f"target: {self.target!r}; {self.rows} rows")
        return "\n".join(lines)

    def __str__(self):
        return self.summary()


def infer_kind(series, name, where="rows"):
    """Infers the kind of one column; refuses empty and mixed-type columns."""
    missing = _is_missing(series)
    if missing.all():
        raise DataError(
            f"Column {name!r} is empty: all {len(series)} cells are missing. Drop it with "
            f"ignore=[{name!r}], or fill it."
        )
    if bool_values(series) is not None:
        return "boolean"
    if series.dtype.kind in "iuf":
        values = series.to_numpy(dtype=np.float64)
    else:
        values, bad = parse_numbers(series)
        parsed = ~np.isnan(values)
        if bad.any() and parsed.any():
            minority, what = (bad, "text") if bad.sum() <= parsed.sum() else (parsed, "numbers")
            sample = series[minority].head(3).tolist()
            raise DataTypeError(
                f"Column {name!r} mixes numbers and text: {int(minority.sum())} cell(s) are "
                f"{what} (such as {sample!r}) at {where} {row_labels(series, minority)}, the "
                f"other {int((parsed | bad).sum() - minority.sum())} are not. Fix those cells, "
                f"pass na_values=[...] for tokens that mean 'missing', or say what the column "
                f"is with types={{{name!r}: 'string_categorical'}} (or 'numeric')."
            )
        if bad.any():
            return "string_categorical"
    present = values[~np.isnan(values)]
    distinct = np.unique(present)
    with np.errstate(invalid="ignore"):  # inf cells are refused later, by name
        integral = bool(np.all(np.mod(distinct, 1) == 0))
    if integral and len(distinct) <= INTEGER_CATEGORY_LIMIT and len(distinct) * 2 <= len(present):
        return "integer_categorical"
    return "numeric"


def _check_names(names, columns, option):
    for name in names:
        if name not in columns:
            hint = closest(name, columns)
            did_you_mean = f" Did you mean {hint!r}?" if hint else ""
            raise ConfigError(
                f"`{option}` names column {name!r}, which the data does not have.{did_you_mean} "
                f"Columns: {', '.join(map(repr, columns))}."
            )


def check_target(columns, target):
    """Refuses a target column that is not in the data, suggesting the closest name."""
    if target in columns:
        return
    hint = closest(target, columns)
    did_you_mean = f" Did you mean {hint!r}?" if hint else ""
    raise DataError(
        f"Target column {target!r} is not in the data.{did_you_mean} Columns: "
        f"{', '.join(map(repr, columns))}. Pass target= one of them."
    )


def infer_schema(frame, target=None, types=None, ignore=None, where="rows"):
    """Infers each feature column's kind from a DataFrame.

    Numbers → "numeric", except integer columns with few distinct values
    (at most 10, and at most half the rows), which are "integer_categorical";
    text → "string_categorical"; True/False → "boolean". A column with no
    values, or one mixing numbers and text, is refused with the rows that
    differ. `types` overrides any column's kind.

    Args:
        frame: a pandas DataFrame (the target column may be in it).
        target: the target column's name, left out of the features.
        types: `{column: kind}` overrides; kinds are the keys of `KINDS` or
            aliases ("numeric", "int", "string", "bool", ...).
        ignore: columns to leave out (IDs, free text, leaks).
        where: how error messages name rows ("rows" or "lines").

    Example:

    ```python
    schema = infer_schema(pd.read_csv("houses.csv"), target="price",
                          types={"zip": "string"}, ignore=["id"])
    print(schema)
    ```
    """
    columns = [str(c) for c in frame.columns]
    types = dict(types or {})
    ignore = list(ignore or [])
    _check_names(types, columns, "types")
    _check_names(ignore, columns, "ignore")
    if target is not None:
        check_target(columns, target)
        if target in types:
            raise ConfigError(f"`types` names the target {target!r}; it applies to feature columns.")
    features = [n for n in columns if n != target and n not in ignore]
    if len(features) > MAX_FEATURE_COLUMNS:
        raise ConfigError(
            f"The table has {len(features)} feature columns; a raw-column model takes at most "
            f"{MAX_FEATURE_COLUMNS} (one Keras input and a few layers each, so wider tables build "
            f"and save too slowly). Leave columns out with ignore=[...], or train on the numbers "
            f"as one matrix with kk.fit(kk.build_model(spec, input_shape=(columns,)), x, y)."
        )
    out = []
    for name in features:
        series = _plain(frame[name])
        given = name in types
        kind = get_kind(types[name]).name if given else infer_kind(series, name, where)
        present = series[~_is_missing(series)]
        out.append(Column(name, kind, missing=int(len(series) - len(present)),
                          distinct=int(present.nunique()), inferred=not given))
    if not out:
        raise DataError(
            f"No feature columns are left (columns: {columns}, target: {target!r}, "
            f"ignored: {ignore}). A model needs at least one input column."
        )
    return TableSchema(out, target, rows=len(frame))


def to_inputs(frame, schema, where="rows"):
    """Converts raw columns to the model's inputs: `{name: array}` in each kind's dtype.

    Missing numbers and booleans become NaN, missing integer codes -1 and
    missing strings "", which the model's own layers impute or encode.
    """
    missing = [c.name for c in schema.columns if c.name not in frame.columns]
    if missing:
        raise DataError(
            f"The rows lack column(s) {missing} that the model takes. Columns given: "
            f"{[str(c) for c in frame.columns]}."
        )
    return {c.name: KINDS[c.kind].convert(_plain(frame[c.name]), c.name, where)
            for c in schema.columns}
