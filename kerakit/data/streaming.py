"""Training from a CSV too large to hold in memory: one checking pass, then `tf.data` from disk.

Pass 1 (`scan_csv`) reads the file in blocks of whole lines: column kinds
are inferred from the first block (a sample), then every block is checked
(encoding, ragged rows, mixed types, missing targets — all before training),
each row is assigned to train / validation / test, and the statistics the
preprocessing layers need (means, variances, vocabularies) are accumulated
from the training rows only. Only the per-line split assignment (one byte
per line) and the target classes stay in memory.

Training then reads lines with `tf.data.TextLineDataset`, keeps the lines of
one split, parses them with `tf.io.decode_csv` in batches and converts each
column in the graph exactly as `kerakit.data.schema` converts a DataFrame.

The split is stratified online: each class (one group for regression) walks
its own seeded, shuffled cycle of 100 slots holding the split fractions, so
every class is divided in the asked proportions (to a slot) and the same
seed gives the same split.
"""

import collections
import dataclasses
import os
import zlib

import numpy as np

from kerakit.data.csvfile import NA_TOKENS, CsvReader
from kerakit.data.preprocess import MAX_CATEGORIES, StatsAccumulator
from kerakit.data.schema import check_target, infer_schema, parse_numbers, row_labels, to_inputs
from kerakit.data.targets import LOG_LINK, TARGET_TRANSFORMS, TargetEncoder, class_value, resolve_task
from kerakit.errors import ConfigError, DataError, DataTypeError

TRAIN, VALIDATION, TEST, DROP = 0, 1, 2, 255
PART = {"train": TRAIN, "validation": VALIDATION, "test": TEST}
CYCLE = 100
WINDOW_LINES = 65_536
SHUFFLE_WINDOWS = 4
NUMERIC_KINDS = ("numeric", "integer_categorical")


def _cycle(seed, key, validation, test):
    slots = np.zeros(CYCLE, dtype=np.uint8)
    n_test, n_val = round(test * CYCLE), round(validation * CYCLE)
    slots[:n_test] = TEST
    slots[n_test:n_test + n_val] = VALIDATION
    rng = np.random.default_rng([int(seed), zlib.crc32(repr(key).encode())])
    return rng.permutation(slots)


@dataclasses.dataclass
class CsvScan:
    """What the checking pass learned: schema, target encoder, stats, split of every line."""

    path: str
    columns: list
    schema: object
    encoder: object
    stats: dict
    assignment: np.ndarray  # one byte per data line: TRAIN / VALIDATION / TEST / DROP
    skip_lines: int
    class_tokens: dict  # raw target text → class index (classification)
    counts: dict  # rows per split
    train_class_counts: list | None  # training rows per class index (classification)
    na_values: tuple = ()  # extra cell texts that mean "missing"


def _parse_block(reader, first_line, block, schema, target, na_values):
    dtypes = {c.name: ("float64" if c.kind in NUMERIC_KINDS else str) for c in schema.columns}
    dtypes[target] = str
    usecols = schema.names + [target]
    try:
        return reader.parse(first_line, block, dtype=dtypes, usecols=usecols, na_values=na_values)
    except ValueError:
        # A text cell in a numeric column: parse as text so the conversion names the lines.
        return reader.parse(first_line, block, dtype=str, usecols=usecols, na_values=na_values)


class _Targets:
    """Accumulates the target over blocks: classes, split assignment, transform moments."""

    def __init__(self, name, task, transform, validation, test, seed):
        self.name, self.task = name, task
        self.kind = None
        if task == "regression":
            self.kind = "standardize" if transform == "auto" else transform
            TargetEncoder("regression", self.kind)._transform_kind()  # refuses unknown names
            if self.kind in LOG_LINK:
                raise ConfigError(
                    f"target_transform={self.kind!r} is not available when streaming a CSV; use "
                    f"'log1p' or 'standardize', or load the file in memory (streaming=False).")
        self.validation, self.test, self.seed = validation, test, seed
        self.tokens = {}  # raw text → class value
        self.seen = collections.Counter()  # group → rows assigned so far
        self.cycles = {}
        self.train_counts = collections.Counter()  # class value → training rows
        self.moments = np.zeros(3)  # count, sum, sum of squares of the (log1p) training target

    def _slots(self, group, count):
        if group not in self.cycles:
            self.cycles[group] = _cycle(self.seed, group, self.validation, self.test)
        slots = self.cycles[group][(self.seen[group] + np.arange(count)) % CYCLE]
        self.seen[group] += count
        return slots

    def update(self, series):
        """Returns the split of each row of a block (missing targets already removed)."""
        if self.task == "classification":
            for token in series.unique().tolist():
                if token not in self.tokens:
                    self.tokens[token] = class_value(token)
            keys = series.map(self.tokens).to_numpy(dtype=object)
            out = np.empty(len(keys), dtype=np.uint8)
            for key in dict.fromkeys(keys.tolist()):
                rows = np.flatnonzero(keys == key)
                out[rows] = self._slots(key, rows.size)
                self.train_counts[key] += int(np.sum(out[rows] == TRAIN))
            return out
        values, bad = parse_numbers(series)
        if bad.any():
            raise DataTypeError(
                f"A regression target must be numbers; {self.name!r} has text such as "
                f"{series[bad].head(3).tolist()!r} at line(s) {row_labels(series, bad)}. Fix those "
                f"cells or pass task='classification'."
            )
        out = self._slots("all", len(values))
        train = values[out == TRAIN]
        if TARGET_TRANSFORMS[self.kind][0]:
            low = values <= -1
            if low.any():
                raise DataError(
                    f"target_transform='log1p' needs target values above -1; {self.name!r} has "
                    f"values at or below -1 at line(s) {row_labels(series, low)}. Use "
                    f"target_transform='standardize'."
                )
            train = np.log1p(train)
        self.moments += (train.size, train.sum(), np.square(train).sum())
        return out

    def encoder(self, transform):
        encoder = TargetEncoder(self.task, transform)
        if self.task == "classification":
            return encoder.fit_classes(self.name, list(set(self.tokens.values())))
        count, total, squares = self.moments
        mean = total / max(count, 1)
        scale = float(np.sqrt(max(squares / max(count, 1) - mean**2, 0.0))) or 1.0
        if not TARGET_TRANSFORMS[self.kind][1]:
            mean, scale = 0.0, 1.0
        return encoder.fit_transform_stats(self.name, self.kind, mean, scale)


def scan_csv(path, target, *, types=None, ignore=None, task="auto", target_transform="auto",
             validation=0.15, test=0.15, seed=0, drop_missing_target=False, na_values=(),
             max_categories=MAX_CATEGORIES):
    """The checking pass: schema from the first block, then stats and split from every block.

    Returns a `CsvScan`. Raises a kerakit error, before anything trains, for
    any bad input `read_table` refuses, naming line numbers.

    Example:

    ```python
    scan = scan_csv("big.csv", target="label")
    print(scan.schema); scan.counts
    ```
    """
    reader = CsvReader(path)
    if reader.file != reader.path:
        raise DataError(
            f"{os.fspath(path)!r} ends its lines with a lone '\\r' (old Mac files); the streaming "
            f"reader reads lines ending in '\\n'. Pass streaming=False to read it in memory, or "
            f"re-save it with '\\n' line ends."
        )
    check_target(reader.columns, target)
    blocks = reader.blocks()
    first_line, first = next(blocks)
    sample = reader.parse(first_line, first, dtype=str, na_values=na_values)
    sample = sample[sample.notna().any(axis=1)]
    schema = infer_schema(sample, target=target, types=types, ignore=ignore, where="line(s)")
    present = sample[target].dropna()
    task = resolve_task(task, target_transform, present, target, "line(s)")
    targets = _Targets(target, task, target_transform, validation, test, seed)
    stats = StatsAccumulator(schema, max_categories)
    assignment = []
    missing_lines = []

    def consume(line, block):
        frame = _parse_block(reader, line, block, schema, target, na_values)
        if reader.multiline:
            raise DataError(
                f"{path!r} has a quoted value that spans several lines (near line {line}). The "
                f"streaming reader reads one row per line: remove the line breaks inside values, "
                f"or pass streaming=False."
            )
        out = np.full(len(frame), DROP, dtype=np.uint8)
        blank = frame.isna().all(axis=1).to_numpy()
        no_target = frame[target].isna().to_numpy() & ~blank
        missing_lines.extend(frame.index[no_target][: 5 - len(missing_lines)].tolist())
        targets.missing += int(no_target.sum())
        keep = ~blank & ~no_target
        rows = frame[keep]
        if len(rows):
            inputs = to_inputs(rows, schema, "line(s)")
            part = targets.update(rows[target])
            stats.update({k: v[part == TRAIN] for k, v in inputs.items()})
            out[keep] = part
        assignment.append(out)

    targets.missing = 0
    consume(first_line, first)
    for line, block in blocks:
        consume(line, block)
    if targets.missing and not drop_missing_target:
        kept = sum(targets.seen.values())
        raise DataError(
            f"Target {target!r} is missing in {targets.missing} of {kept + targets.missing} rows "
            f"(line(s) {', '.join(map(str, missing_lines))}"
            f"{', ...' if targets.missing > len(missing_lines) else ''}). Drop those rows with "
            f"drop_missing_target=True (keeps {kept} rows), or fill them."
        )
    assignment = np.concatenate(assignment)
    encoder = targets.encoder(target_transform)
    class_tokens, train_counts = {}, None
    if task == "classification":
        index = {v: i for i, v in enumerate(encoder.class_names_)}
        class_tokens = {t: index[v] for t, v in targets.tokens.items()}
        train_counts = [targets.train_counts[v] for v in encoder.class_names_]
    counts = {name: int(np.sum(assignment == code)) for name, code in PART.items()}
    if counts["train"] == 0:
        raise DataError(f"{path!r} has no training rows after the split. Use more rows.")
    with open(path, "rb") as f:
        skip = f.read(reader._data_start).count(b"\n")
    schema.rows = int(sum(counts.values()))
    return CsvScan(os.fspath(path), reader.columns, schema, encoder, stats.result(), assignment,
                   skip, class_tokens, counts, train_counts, tuple(na_values))


# tf.data ----------------------------------------------------------------------


def _string_table(keys, values, default, value_dtype):
    import tensorflow as tf

    return tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(tf.constant(list(keys), tf.string),
                                            tf.constant(list(values), value_dtype)), default)


def _converters(na_values=()):
    """Column kind → graph conversion of a string tensor, matching `schema.KINDS`."""
    import tensorflow as tf

    tokens = list(dict.fromkeys(list(NA_TOKENS) + [str(v) for v in na_values]))
    na = _string_table(tokens, [1] * len(tokens), 0, tf.int64)

    def missing(s):
        return tf.equal(na.lookup(s), 1)

    def numeric(s):
        return tf.strings.to_number(tf.where(missing(s), "nan", tf.strings.strip(s)), tf.float32)

    def integer(s):
        values = tf.strings.to_number(tf.where(missing(s), "nan", tf.strings.strip(s)),
                                      tf.float64)
        return tf.cast(tf.where(tf.math.is_nan(values), tf.constant(-1.0, tf.float64), values),
                       tf.int64)

    def boolean(s):
        lowered = tf.strings.lower(tf.strings.strip(s))
        return tf.where(tf.equal(lowered, "true"), 1.0,
                        tf.where(tf.equal(lowered, "false"), 0.0, float("nan")))

    def string(s):
        return tf.where(missing(s), "", s)

    converters = {"numeric": numeric, "integer_categorical": integer, "boolean": boolean,
                  "string_categorical": string}
    return converters, numeric


def make_csv_dataset(scan, part, batch_size=1024, shuffle=False, seed=None, class_weight=None,
                     labels="encoded"):
    """A `tf.data.Dataset` of `(columns, target[, weight])` batches of one split, read from disk.

    Args:
        scan: the `CsvScan` from `scan_csv`.
        part: "train", "validation" or "test".
        batch_size: rows per batch. Defaults to 1024.
        shuffle: shuffle the rows, anew each epoch: windows of 65,536 lines are
            read in a shuffled order (buffer of 4) and shuffled within.
        seed: the shuffle's seed.
        class_weight: per-class weights (a sequence by class index), or None.
        labels: "encoded" (what the network trains on) or "report" (class
            indices, or regression values in original units).
    """
    import tensorflow as tf

    from kerakit.layers import text_in_graph

    converters, numeric = _converters(scan.na_values)
    used = [c.name for c in scan.schema.columns] + [scan.schema.target]
    select = sorted(scan.columns.index(n) for n in used)
    order = [scan.columns[i] for i in select]
    kinds = {c.name: c.kind for c in scan.schema.columns}
    encoder = scan.encoder
    classes = None
    if scan.class_tokens:
        classes = _string_table(scan.class_tokens.keys(), scan.class_tokens.values(), -1, tf.int64)
    transform = encoder.transform_
    weights = None if class_weight is None else tf.constant(np.asarray(class_weight, np.float32))
    codes = {}
    if not text_in_graph():  # a JAX or PyTorch model takes text as codes in its vocabulary
        for name, kind in kinds.items():
            if kind == "string_categorical":
                vocabulary = [str(v) for v in scan.stats[name].get("vocabulary", ())] or [""]
                codes[name] = _string_table(vocabulary, range(1, len(vocabulary) + 1), 0, tf.int32)

    def parse(lines):
        fields = tf.io.decode_csv(lines, record_defaults=[""] * len(select), select_cols=select)
        cells = dict(zip(order, fields, strict=True))
        features = {name: converters[kind](cells[name]) for name, kind in kinds.items()}
        features.update({name: table.lookup(features[name]) for name, table in codes.items()})
        raw = cells[scan.schema.target]
        if classes is not None:
            y = classes.lookup(raw)
        else:
            y = numeric(raw)
            if labels == "encoded":
                y = tf.math.log1p(y) if transform["log1p"] else y
                y = (y - transform["mean"]) / transform["scale"]
        if weights is not None:
            return features, y, tf.gather(weights, y)
        return features, y

    code = PART[part]
    # Work a window of lines at a time: every per-row step (split filter, shuffle,
    # parse) is one vectorized op per window instead of a tf.data step per row.
    windows = -(-len(scan.assignment) // WINDOW_LINES)
    assignment = np.full(windows * WINDOW_LINES, DROP, dtype=np.uint8)
    assignment[: len(scan.assignment)] = scan.assignment
    lines = tf.data.TextLineDataset(scan.path).skip(scan.skip_lines).batch(WINDOW_LINES)
    splits = tf.data.Dataset.from_tensor_slices(assignment.reshape(windows, WINDOW_LINES))
    if shuffle:
        # A seed pair per window, different every epoch but fixed by `seed`.
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
        ds = tf.data.Dataset.zip(lines, splits, seeds)
        ds = ds.shuffle(SHUFFLE_WINDOWS, seed=seed, reshuffle_each_iteration=True)
    else:
        ds = tf.data.Dataset.zip(lines, splits)

    def select_rows(window, split, pair=None):
        rows = tf.boolean_mask(window, tf.equal(split[: tf.shape(window)[0]], code))
        if pair is not None:
            rows = tf.random.experimental.stateless_shuffle(rows, seed=pair)
        return parse(rows)

    ds = ds.map(select_rows, num_parallel_calls=tf.data.AUTOTUNE).rebatch(batch_size)
    # The scan counted the rows, so Keras can show progress and knows where an epoch ends.
    steps = -(-scan.counts[part] // batch_size)
    return ds.apply(tf.data.experimental.assert_cardinality(steps)).prefetch(tf.data.AUTOTUNE)


def fit_csv_streaming(path, target, options):
    """`fit_table` for a CSV streamed from disk; `options` is fit_table's `TableOptions`."""
    from kerakit.data.bodies import TABLE_DEFAULTS
    from kerakit.data.table import TableResult, build_table_model
    from kerakit.engines.keras_fit import MAX_STEPS_PER_EXECUTION
    from kerakit.training import fit, metrics_report

    if target is None:
        raise ConfigError("fit_table needs the target column: pass target='column_name'.")
    reading, training, seed = options.reading, options.training, options.seed
    types, ignore, na_values = reading.types, reading.ignore, reading.na_values
    task, target_transform = options.task, options.target_transform
    validation, test, drop_missing_target = options.validation, options.test, reading.drop_missing_target
    max_categories, crosses, cross_bins = reading.max_categories, options.crosses, options.cross_bins
    build_options, verbose = options.build_options, training.verbose
    class_weight, epochs, batch_size = training.class_weight, training.epochs, training.batch_size
    scan = scan_csv(path, target, types=types, ignore=ignore, task=task,
                    target_transform=target_transform, validation=validation, test=test,
                    seed=seed, drop_missing_target=drop_missing_target, na_values=na_values,
                    max_categories=max_categories)
    if verbose:
        print(scan.schema.summary(body=build_options.get("body", TABLE_DEFAULTS.body)))
    batch_size = 1024 if batch_size == "auto" else int(batch_size)
    if epochs == "auto":
        epochs = TABLE_DEFAULTS.epochs_for(scan.counts["train"])
    # The same default body as in memory; its learning-rate schedule spans every planned step.
    build_options = {"body": TABLE_DEFAULTS.body, **build_options}
    if build_options["body"] == "table" and build_options.get("members") is None:
        build_options["members"] = TABLE_DEFAULTS.members_for(scan.counts["train"])
    steps = epochs * -(-scan.counts["train"] // batch_size)
    model, train_model = build_table_model(scan.schema, scan.stats, scan.encoder, crosses=crosses,
                                           cross_bins=cross_bins, na_values=na_values, seed=seed,
                                           steps=steps, **build_options)
    spec = scan.encoder.spec_
    weights = _class_weight_vector(scan, class_weight)
    train = make_csv_dataset(scan, "train", batch_size, shuffle=True, seed=seed,
                             class_weight=weights)
    has_validation = scan.counts["validation"] > 0
    val = make_csv_dataset(scan, "validation", max(batch_size, 4096)) if has_validation else None
    all_callbacks = training.callbacks_for(spec, has_validation)
    # Several steps per call into TensorFlow, as kerakit.fit does for arrays.
    history = fit(train_model, train, validation_data=val, epochs=epochs, callbacks=all_callbacks,
                  seed=seed, verbose=verbose and 2, spec=spec,
                  steps_per_execution=max(1, min(len(train), MAX_STEPS_PER_EXECUTION)))
    report = {}
    for name in ("validation", "test"):
        if scan.counts[name]:
            report[name] = _report(model, scan, name, spec, metrics_report)
    return TableResult(model, scan.schema, spec, history, report, dict(scan.counts),
                       scan.encoder.class_names_ if spec.task != "regression" else None)


def _class_weight_vector(scan, class_weight):
    """`class_weight` ("balanced" or {label: weight}) → one weight per class index."""
    if class_weight is None:
        return None
    names = scan.encoder.class_names_
    if names is None:
        raise ConfigError("`class_weight` applies to classification targets, not regression.")
    counts = np.asarray(scan.train_class_counts, dtype=np.float64)
    if class_weight == "balanced":
        present = counts > 0
        weights = np.ones(len(names))
        weights[present] = counts.sum() / (present.sum() * counts[present])
        return weights
    if isinstance(class_weight, dict):
        weights = np.ones(len(names))
        for label, weight in class_weight.items():
            if label not in names:
                raise ConfigError(f"`class_weight` names class {label!r}; the classes are {list(names)}.")
            weights[names.index(label)] = float(weight)
        return weights
    raise ConfigError(
        f"`class_weight` must be 'balanced' or a dict {{class: weight}}. Received: {class_weight!r}"
    )


def _report(model, scan, part, spec, metrics_report):
    ys, predictions = [], []
    for features, y in make_csv_dataset(scan, part, 4096, labels="report"):
        # An eager call per large batch: no retracing for the short last batch.
        features = {k: v.numpy() for k, v in features.items()}  # any backend's model takes NumPy
        predictions.append(np.asarray(model(features, training=False)))
        ys.append(y.numpy())
    return metrics_report(spec, np.concatenate(ys), np.concatenate(predictions))

