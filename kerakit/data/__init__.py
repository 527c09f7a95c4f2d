"""Tabular data: CSV / pandas / NumPy in, raw-column Keras models out.

The one-call path is `fit_table("data.csv", target="price")`. The pieces are
public too: `read_table` (load, check, infer the schema), `split_table`
(train / validation / test, stratified, seeded), `build_table_model`
(preprocessing layers inside the model), `predict_table` (raw rows → original
labels or values), `save_table_model` / `load_table_model`.

Every backend trains and serves raw rows: text columns are looked up in the
graph on TensorFlow and encoded on the host elsewhere, from the same
vocabularies saved in the `.keras` file (`backend_inputs`). Importing this
package does not import TensorFlow. Loading a raw-column `.keras` file needs
kerakit's layers registered: use `load_table_model(path)`, or
`import kerakit.layers` before `keras.saving.load_model(path)`.
"""

from kerakit.data.csvfile import NA_TOKENS, CsvReader, read_frame
from kerakit.data.fit import TableResult, fit_table
from kerakit.data.preprocess import StatsAccumulator, backend_inputs, make_inputs, make_preprocessor
from kerakit.data.schema import KINDS, Column, TableSchema, get_kind, infer_schema, to_inputs
from kerakit.data.table import (
    Table,
    build_table_model,
    load_table_model,
    predict_table,
    read_table,
    save_table_model,
    split_table,
    table_inputs,
    table_metadata,
    training_model,
)
from kerakit.data.targets import TARGET_TRANSFORMS, TargetEncoder

__all__ = [
    "NA_TOKENS", "CsvReader", "read_frame", "TableResult", "fit_table", "StatsAccumulator",
    "backend_inputs", "make_inputs", "make_preprocessor", "KINDS", "Column", "TableSchema", "get_kind",
    "infer_schema", "to_inputs", "Table", "build_table_model", "load_table_model",
    "predict_table", "read_table", "save_table_model", "split_table",
    "table_inputs", "table_metadata", "training_model", "TARGET_TRANSFORMS", "TargetEncoder",
]
