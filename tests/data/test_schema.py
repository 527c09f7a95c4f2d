"""kerakit.data without TensorFlow: reading, schema inference, every bad input, splits, targets.

Each bad input has its own test; each asserts the error type and that the
message names what was found and how to fix it.
"""

import numpy as np
import pandas as pd
import pytest

from kerakit.data import (
    TableSchema,
    TargetEncoder,
    csvfile,
    read_frame,
    read_table,
    split_table,
    to_inputs,
)
from kerakit.data.streaming import TEST, TRAIN, VALIDATION, scan_csv
from kerakit.errors import ConfigError, DataError, DataTypeError, KerakitError, LabelError


def write(path, text, mode="w"):
    if mode == "wb":
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


@pytest.fixture
def mixed_csv(tmp_path):
    """40 rows: numeric (with missing), text category (with missing), integer codes, booleans."""
    rng = np.random.default_rng(0)
    n = 40
    frame = pd.DataFrame({
        "area": np.where(rng.random(n) < 0.2, np.nan, rng.normal(80, 20, n).round(1)),
        "city": np.where(rng.random(n) < 0.2, None, rng.choice(["Oslo", "Bergen", "Bodo"], n)),
        "rooms": rng.integers(1, 4, n),
        "garden": rng.random(n) < 0.5,
        "price": rng.normal(300, 50, n).round(2),
    })
    path = tmp_path / "houses.csv"
    frame.to_csv(path, index=False)
    return path, frame


# Schema inference -----------------------------------------------------------------


def test_kinds_are_inferred_and_overridable(mixed_csv):
    path, frame = mixed_csv
    table = read_table(path, target="price")
    kinds = {c.name: c.kind for c in table.schema.columns}
    assert kinds == {"area": "numeric", "city": "string_categorical",
                     "rooms": "integer_categorical", "garden": "boolean"}
    assert table.schema["area"].missing == int(frame["area"].isna().sum()) > 0
    text = str(table.schema)
    assert "integer_categorical" in text and "target: 'price'" in text

    table = read_table(path, target="price", types={"rooms": "numeric", "city": "str"},
                       ignore=["garden"])
    assert table.schema["rooms"].kind == "numeric" and not table.schema["rooms"].inferred
    assert "garden" not in table.schema.names
    with pytest.raises(KerakitError, match="Did you mean 'integer_categorical'"):
        read_table(path, target="price", types={"rooms": "integer_categoricl"})
    with pytest.raises(ConfigError, match="Did you mean 'rooms'"):
        read_table(path, target="price", types={"room": "numeric"})


def test_same_schema_from_csv_dataframe_and_numpy(mixed_csv):
    path, frame = mixed_csv
    from_csv = read_table(path, target="price").schema
    from_frame = read_table(frame, target="price").schema
    assert [(c.name, c.kind) for c in from_csv.columns] == \
        [(c.name, c.kind) for c in from_frame.columns]
    x = np.random.default_rng(0).normal(size=(30, 3))
    table = read_table(x, y=np.arange(30) % 2, columns=["a", "b", "c"])
    assert table.schema.names == ["a", "b", "c"] and table.schema.target == "target"


def test_inputs_use_each_kinds_missing_code(mixed_csv):
    path, _ = mixed_csv
    table = read_table(path, target="price")
    inputs = to_inputs(table.frame, table.schema)
    assert inputs["area"].dtype == np.float32 and np.isnan(inputs["area"]).any()
    assert inputs["rooms"].dtype == np.int64
    assert "" in set(inputs["city"]) and inputs["city"].dtype == object
    assert set(np.unique(inputs["garden"])) <= {0.0, 1.0}
    schema = TableSchema.from_dict(table.schema.to_dict())
    assert schema.names == table.schema.names


def test_conversions_accept_what_clients_send():
    schema = TableSchema.from_dict({"columns": [
        {"name": "flag", "kind": "boolean"}, {"name": "size", "kind": "string_categorical"}]})
    frame = pd.DataFrame({"flag": [1, 0, np.nan],
                          "size": pd.Categorical(["S", None, "M"])})
    inputs = to_inputs(frame, schema)
    assert np.array_equal(inputs["flag"], [1.0, 0.0, np.nan], equal_nan=True)
    assert inputs["size"].tolist() == ["S", "", "M"]
    with pytest.raises(DataError, match=r"lack column\(s\) \['size'\]"):
        to_inputs(frame[["flag"]], schema)
    with pytest.raises(DataTypeError, match="holds values other than true/false"):
        to_inputs(pd.DataFrame({"flag": ["yes", "no", "no"], "size": ["S"] * 3}), schema)


def test_csv_reader_handles_quotes_bom_and_reports_line_numbers(tmp_path):
    path = write(tmp_path / "q.csv", b'\xef\xbb\xbfname,size\n"Smith, J",3\n\n"Lee",4\n', "wb")
    frame = read_frame(path)
    assert list(frame.columns) == ["name", "size"]
    assert frame.loc[2, "name"] == "Smith, J" and frame.loc[4, "name"] == "Lee"  # index = line


# Bad input: one test each ---------------------------------------------------------


def test_missing_target_column_lists_columns_and_suggests_closest(mixed_csv):
    path, _ = mixed_csv
    with pytest.raises(DataError) as info:
        read_table(path, target="prize")
    message = str(info.value)
    assert "Did you mean 'price'?" in message and "'area', 'city'" in message
    assert isinstance(info.value, ValueError)


def test_empty_file(tmp_path):
    with pytest.raises(DataError, match="is empty: it has no header and no rows"):
        read_table(write(tmp_path / "empty.csv", ""), target="y")


def test_header_only(tmp_path):
    with pytest.raises(DataError, match=r"has a header \(3 columns: a, b, y\) but no data rows"):
        read_table(write(tmp_path / "header.csv", "a,b,y\n"), target="y")


def test_entirely_empty_column(tmp_path):
    path = write(tmp_path / "e.csv", "a,notes,y\n1,,0\n2,,1\n3,,0\n4,,1\n")
    with pytest.raises(DataError, match=r"Column 'notes' is empty: all 4 cells are missing.*"
                                        r"ignore=\['notes'\]"):
        read_table(path, target="y")
    assert "notes" not in read_table(path, target="y", ignore=["notes"]).schema.names


def test_mixed_type_column_names_the_rows(tmp_path):
    rows = "".join(f"{i},{v},{i % 2}\n" for i, v in enumerate(["1.5", "2", "abc", "4", "x"] * 4))
    path = write(tmp_path / "m.csv", "id,size,y\n" + rows)
    with pytest.raises(DataTypeError) as info:
        read_table(path, target="y")
    message = str(info.value)
    # 'abc' is on data row 2 → line 4; 'x' on row 4 → line 6.
    assert "Column 'size' mixes numbers and text" in message
    assert "line(s) 4, 6, 9, 11, 14, ..." in message and "'abc'" in message
    assert "types={'size': 'string_categorical'}" in message
    frame = pd.DataFrame({"v": [1, "a", 2.5, 3], "y": [0, 1, 0, 1]})
    with pytest.raises(DataTypeError, match=r"1 cell\(s\) are text .* at row\(s\) 1"):
        read_table(frame, target="y")
    assert read_table(path, target="y", types={"size": "string"}).schema["size"].kind == \
        "string_categorical"


def test_target_with_a_single_class():
    frame = pd.DataFrame({"a": range(6), "label": ["spam"] * 6})
    with pytest.raises(LabelError, match=r"single class \('spam'\) in all 6 rows"):
        TargetEncoder(task="classification").fit(frame["label"], "label")


def test_target_with_missing_values_counts_rows_and_offers_to_drop(tmp_path):
    path = write(tmp_path / "t.csv", "a,y\n1,0\n2,\n3,1\n4,\n5,0\n6,1\n")
    with pytest.raises(DataError) as info:
        read_table(path, target="y")
    message = str(info.value)
    assert "missing in 2 of 6 rows (line(s) 3, 5)" in message
    assert "drop_missing_target=True (keeps 4 rows)" in message
    assert len(read_table(path, target="y", drop_missing_target=True).frame) == 4


def test_non_utf8_bytes_name_the_line(tmp_path):
    path = write(tmp_path / "latin.csv", "city,y\nOslo,1\nK\xf8benhavn,0\n".encode("latin-1"), "wb")
    with pytest.raises(DataError, match=r"not valid utf-8: line 3 holds the byte\(s\) b'\\xf8'"):
        read_table(path, target="y")
    table = read_table(path, target="y", encoding="latin-1", types={"city": "string"})
    assert "København" in set(table.frame["city"])


def test_ragged_row_names_lines_and_field_counts(tmp_path):
    path = write(tmp_path / "r.csv", "a,b,y\n1,2,0\n3,4,5,1\n6,7,0\n8,1\n")
    with pytest.raises(DataError, match=r"header has 3 columns .* at line\(s\) 3 \(4 fields\), "
                                        r"5 \(2 fields\)"):
        read_table(path, target="y")
    quoted = write(tmp_path / "rq.csv", 'a,b,y\n"x,1",2,0\n"y",3\n')
    with pytest.raises(DataError, match=r"line\(s\) 3 \(2 fields\)"):
        read_table(quoted, target="y")


# Splits and targets -----------------------------------------------------------------


def test_split_is_stratified_deterministic_and_disjoint():
    y = np.array([0] * 90 + [1] * 10)
    a = split_table(y, validation=0.2, test=0.2, seed=3)
    b = split_table(y, validation=0.2, test=0.2, seed=3)
    c = split_table(y, validation=0.2, test=0.2, seed=4)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["test"], c["test"])
    everything = np.concatenate([a["train"], a["validation"], a["test"]])
    assert np.array_equal(np.sort(everything), np.arange(100))
    assert [int(y[a[k]].sum()) for k in ("train", "validation", "test")] == [6, 2, 2]
    with pytest.raises(ConfigError, match="validation \\+ test must leave rows"):
        split_table(y, validation=0.5, test=0.5)


def test_target_encoder_classes_and_transforms():
    labels = pd.Series(["cat", "dog", "cat", "bird"])
    encoder = TargetEncoder().fit(labels, "animal")
    assert encoder.class_names_ == ("bird", "cat", "dog")
    assert encoder.encode(labels).tolist() == [1, 2, 1, 0]
    assert encoder.spec_.task == "multiclass" and encoder.spec_.class_names == ("bird", "cat", "dog")

    price = pd.Series([10.0, 100.0, 1000.0, 10000.0])
    log = TargetEncoder(transform="log1p").fit(price, "price")
    z = log.encode(price)
    assert abs(float(z.mean())) < 1e-5 and abs(float(z.std()) - 1) < 1e-5
    t = log.transform_
    assert np.allclose(np.expm1(z * t["scale"] + t["mean"]), price, rtol=1e-5)
    assert TargetEncoder().fit(pd.Series([0.5, 1.5, 2.25]), "y").task_ == "regression"
    with pytest.raises(DataError, match="above -1"):
        TargetEncoder(transform="log1p").fit(pd.Series([-3.0, 1.5, 2.25]), "y")
    with pytest.raises(ConfigError, match="applies to regression"):
        TargetEncoder(task="classification", transform="log1p").fit(labels, "animal")
    with pytest.raises(DataTypeError, match="regression target must be numbers"):
        TargetEncoder(transform="log1p").fit(labels, "animal")


# Streaming scan: same checks, one pass, nothing in memory but the split -------------


def test_streaming_scan_matches_in_memory_statistics(mixed_csv, monkeypatch):
    from kerakit.data import StatsAccumulator

    monkeypatch.setattr(csvfile, "BLOCK_BYTES", 256)  # many blocks
    path, _ = mixed_csv
    scan = scan_csv(path, "price", validation=0, test=0)
    table = read_table(path, target="price")
    stats = StatsAccumulator(table.schema).update(to_inputs(table.frame, table.schema)).result()
    assert scan.counts == {"train": 40, "validation": 0, "test": 0}
    assert np.isclose(scan.stats["area"]["mean"], stats["area"]["mean"])
    assert np.isclose(scan.stats["area"]["variance"], stats["area"]["variance"])
    assert scan.stats["city"]["vocabulary"] == stats["city"]["vocabulary"]
    assert scan.stats["rooms"]["vocabulary"] == stats["rooms"]["vocabulary"]


def test_streaming_split_is_stratified_and_seeded(tmp_path):
    y = np.array(["a"] * 900 + ["b"] * 100)
    np.random.default_rng(0).shuffle(y)
    path = tmp_path / "s.csv"
    pd.DataFrame({"x": np.arange(1000) % 7 * 1.5, "y": y}).to_csv(path, index=False)
    first = scan_csv(path, "y", validation=0.1, test=0.2, seed=1)
    again = scan_csv(path, "y", validation=0.1, test=0.2, seed=1)
    other = scan_csv(path, "y", validation=0.1, test=0.2, seed=2)
    assert np.array_equal(first.assignment, again.assignment)
    assert not np.array_equal(first.assignment, other.assignment)
    for label, total in (("a", 900), ("b", 100)):
        rows = first.assignment[y == label]
        assert [int(np.sum(rows == part)) for part in (TRAIN, VALIDATION, TEST)] == \
            [total * 7 // 10, total // 10, total // 5]
    assert first.train_class_counts == [630, 70]


def test_streaming_scan_refuses_bad_rows_far_into_the_file(tmp_path, monkeypatch):
    monkeypatch.setattr(csvfile, "BLOCK_BYTES", 512)
    lines = [f"{i * 0.5},{i % 2}" for i in range(400)]
    lines[350] = "oops,1"  # data row 350 → line 352, long after the sample block
    path = write(tmp_path / "late.csv", "x,y\n" + "\n".join(lines) + "\n")
    with pytest.raises(DataTypeError, match=r"'x' is numeric but 1 cell\(s\) .* line\(s\) 352"):
        scan_csv(path, "y")
    lines[350] = "3.0,"
    lines[10] = "1.0,"
    path = write(tmp_path / "late.csv", "x,y\n" + "\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"missing in 2 of 400 rows \(line\(s\) 12, 352\)"):
        scan_csv(path, "y")
    assert scan_csv(path, "y", drop_missing_target=True).schema.rows == 398


# fit_table's arguments and inputs ---------------------------------------------------------


@pytest.mark.parametrize("option, value", [("epochs", -1), ("epochs", 2.5), ("batch_size", 0),
                                           ("patience", -1)])
def test_fit_table_refuses_bad_counts_before_reading_the_data(tmp_path, option, value):
    from kerakit.data import fit_table

    # The path does not exist: the count is refused before the file is even looked at.
    with pytest.raises(ConfigError, match=f"`{option}`"):
        fit_table(str(tmp_path / "missing.csv"), target="y", **{option: value})


def test_fit_table_names_a_missing_csv_path(tmp_path):
    from kerakit.data import fit_table

    path = tmp_path / "nowhere" / "houses.csv"
    with pytest.raises(DataError, match="No CSV file at") as info:
        fit_table(path, target="price")
    assert str(path) in str(info.value)


def test_fit_table_refuses_columns_of_unequal_length():
    from kerakit.data import fit_table

    with pytest.raises(DataError, match="same number of rows") as info:
        fit_table({"a": [1.0, 2.0, 3.0], "b": ["u", "v"], "y": [0, 1, 0]}, target="y")
    assert "'b': 2" in str(info.value) and "'a': 3" in str(info.value)


def test_table_target_with_a_stray_value_is_refused_before_training():
    frame = pd.DataFrame({"x": np.arange(41.0), "label": np.r_[np.arange(40) % 4, 10**9]})
    with pytest.raises(LabelError, match="1000000000") as info:
        TargetEncoder().fit(frame["label"], "label")
    assert "task='classification'" in str(info.value)
    # Said explicitly, it is a class like the others.
    encoder = TargetEncoder(task="classification").fit(frame["label"], "label")
    assert len(encoder.class_names_) == 5


def test_printed_schema_says_what_each_body_does_with_numbers(mixed_csv):
    schema = read_table(str(mixed_csv[0]), target="price").schema
    table = schema.summary()
    assert "SmoothClip" in table and "piecewise-linear" in table and "median" in table
    assert "Normalization" not in table
    mlp = schema.summary(body="mlp")
    assert "Normalization" in mlp and "mean" in mlp and "SmoothClip" not in mlp
    assert str(schema) == table
