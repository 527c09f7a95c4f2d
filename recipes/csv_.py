"""CSV: any table with a target column, from raw rows to a model that takes raw rows.

`kerakit run csv --path data.csv --target price` reads the file (separator
sniffed unless --sep is given; --encoding, --na-values for extra missing-cell
tokens, --drop-missing-target for rows without a target), infers each
column's kind (numbers, integer or string categories, booleans; override with
--types), splits train / validation / test (stratified for classification,
seeded), learns scaling and vocabularies from the training rows only, and
trains a model with that preprocessing inside it: missing cells are imputed
with a missing-indicator, unseen categories go to an out-of-vocabulary
bucket, a regression target is standardized (or log1p-transformed) and
mapped back (the learning curves and history.csv are in the transformed
units; the manifest records the transform). The saved model predicts from raw rows: `kerakit predict RUN
--csv new.csv --out predictions.csv`. Without --path, --smoke trains on a
small generated CSV. Files too large for memory: see `kerakit.fit_table`
with streaming=True.
"""

import dataclasses
from typing import Literal

from kerakit.data.bodies import TABLE_DEFAULTS


@dataclasses.dataclass
class Config:
    path: str = ""  # the CSV file (required, except with --smoke)
    target: str = ""  # the column to predict (required, except with --smoke)
    ignore: tuple[str, ...] = ()  # columns to leave out (IDs, leaks)
    types: tuple[str, ...] = ()  # kind overrides as COLUMN=KIND, e.g. zip=string_categorical
    sep: str = ""  # field separator, e.g. ';' or tab; default: sniffed from the file
    encoding: str = "utf-8"  # the file's text encoding, e.g. latin-1 or cp1252
    na_values: tuple[str, ...] = ()  # extra cell texts that mean missing, e.g. ? -
    drop_missing_target: bool = False  # drop rows whose target is missing instead of refusing
    task: Literal["auto", "classification", "regression"] = "auto"  # what the target is
    target_transform: Literal["auto", "standardize", "log1p", "poisson", "none"] = "auto"  # regression target scaling
    class_weight: Literal["none", "balanced"] = "none"  # re-weight classes for imbalanced targets
    # The model and training defaults are fit_table's (kerakit.data.bodies.TABLE_DEFAULTS).
    body: Literal["table", "mlp"] = TABLE_DEFAULTS.body  # table: TabM-style ensemble; mlp: the old one
    epochs: int | None = None  # upper bound; none: fit_table's plan (600,000 rows seen, 6 to 40 epochs)
    batch_size: int | None = None  # rows per step; none: about 64 steps per epoch, 32 to 1024
    units: tuple[int, ...] = TABLE_DEFAULTS.units  # width of each hidden layer
    members: int | None = None  # ensemble members (table body); none: 8, or 4 from 16,000 training rows
    dropout: float = TABLE_DEFAULTS.dropout  # dropout rate after each hidden layer
    l2: float | None = None  # L2 weight penalty, mlp body only (default 1e-4); the table body uses AdamW's weight decay
    learning_rate: float = TABLE_DEFAULTS.learning_rate  # peak step size (mlp: Adam's)
    patience: int = TABLE_DEFAULTS.patience  # epochs without validation improvement before stopping
    validation: float = 0.15  # fraction of rows for validation (early stopping)
    test: float = 0.15  # fraction of rows held out for the final test
    seed: int = 0  # seeds the split, the weights and the shuffles
    smoke: bool = False  # 2 epochs; without --path, a small generated CSV


def _generated_csv(folder, seed):
    """A small CSV with numeric, categorical and boolean columns and missing cells."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    n = 240
    frame = pd.DataFrame({
        "area": rng.normal(80, 25, n).round(1),
        "rooms": rng.integers(1, 6, n),
        "city": rng.choice(["Oslo", "Bergen", "Tromsø"], n),
        "garden": rng.choice(["yes", "no"], n),
    })
    frame["price"] = (frame.area * 3 + frame.rooms * 20 + (frame.city == "Oslo") * 60
                      + rng.normal(0, 15, n)).round(0)
    frame.loc[rng.choice(n, 12, replace=False), "area"] = np.nan
    path = f"{folder}/generated.csv"
    frame.to_csv(path, index=False)
    return path


# The mlp body's L2 weight penalty when --l2 is not given.
MLP_L2 = 1e-4


def unused_config(config):
    """The `Config` fields the chosen body ignores, with why; the manifest leaves them out."""
    if config.body == "table":
        return {"l2": "the table body has no L2 penalty; it uses AdamW's weight decay"}
    return {"members": "the mlp body is a single network, not an ensemble"}


# Names a shell user can type for separators that are awkward to quote.
SEPARATOR_NAMES = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}


def _types(config):
    pairs = [t.split("=", 1) for t in config.types]
    bad = [t for t, p in zip(config.types, pairs, strict=True) if len(p) != 2]
    if bad:
        from kerakit.errors import ConfigError

        raise ConfigError(f"`types` takes COLUMN=KIND pairs, e.g. types=('zip=string_categorical',). "
                          f"Received: {bad}.")
    return dict(pairs) or None


def _sep(config):
    """The separator to read with; None sniffs it from the file."""
    return SEPARATOR_NAMES.get(config.sep.lower(), config.sep) if config.sep else None


def _read_options(config):
    return dict(types=_types(config), ignore=list(config.ignore) or None, sep=_sep(config),
                encoding=config.encoding, na_values=tuple(config.na_values),
                drop_missing_target=config.drop_missing_target)


def check_config(config):
    """Checks the arguments before TensorFlow loads: file, target column, separator, fractions,
    and missing target values.

    Reads the header line and the target column; the other cells are checked by `data`.
    """
    from kerakit.data.csvfile import CsvReader
    from kerakit.errors import ConfigError, DataError, closest

    if not (0 < config.validation < 1 and 0 < config.test < 1
            and config.validation + config.test < 1):
        raise ConfigError(
            f"`validation` and `test` are fractions of the rows in (0, 1) that sum to less than "
            f"1. Received: validation={config.validation}, test={config.test}."
        )
    if config.body == "table" and config.l2 is not None:
        raise ConfigError(
            f"`l2` applies to the mlp body only; the table body has no L2 penalty (it uses "
            f"AdamW's weight decay), so the setting would have no effect. Leave l2 out, or "
            f"pass body='mlp'. Received: l2={config.l2}, body='table'."
        )
    types = _types(config)
    if not config.path:
        if config.smoke:
            return
        raise ConfigError(
            "The csv recipe needs the file and the column to predict. Pass path='data.csv' and "
            "target='COLUMN'."
        )
    if not config.target:
        raise ConfigError(
            f"The csv recipe needs the column to predict in {config.path}. Pass target='COLUMN'."
        )
    reader = CsvReader(config.path, encoding=config.encoding, sep=_sep(config))
    columns = reader.columns
    named = [("target", config.target)] + [("types", c) for c in types or {}] + [
        ("ignore", c) for c in config.ignore]
    for option, column in named:
        if column not in columns:
            hint = closest(column, columns)
            did_you_mean = f" Did you mean {hint!r}?" if hint else ""
            shown = ", ".join(repr(c) for c in columns[:20]) + (", ..." if len(columns) > 20 else "")
            raise DataError(
                f"Column {column!r} ({option}={column!r}) is not in {config.path}.{did_you_mean} "
                f"Columns (separator {reader.sep!r}): {shown}."
            )
    if not config.drop_missing_target:
        import pandas as pd

        from kerakit.data.targets import check_missing_target

        # Whole rows, block by block: a blank line is not a row with a missing target.
        blocks = [frame.loc[frame.notna().any(axis=1), config.target] for _, frame in reader.frames(
            dtype=str, na_values=tuple(config.na_values))]
        if blocks:
            check_missing_target(pd.concat(blocks), config.target, "line(s)", drop=False)


def data(config):
    """Reads and checks the CSV, infers the schema, encodes the target and splits the rows."""
    import tempfile

    from kerakit.data import TargetEncoder, read_table, split_table, to_inputs

    check_config(config)
    path, target = config.path, config.target
    options = _read_options(config)
    if not path and config.smoke:
        with tempfile.TemporaryDirectory(prefix="kerakit-csv-smoke-") as folder:
            target = target or "price"
            table = read_table(_generated_csv(folder, config.seed), target,
                               **{**options, "sep": ","})
            path = "generated.csv"
    else:
        table = read_table(path, target, **options)
    schema, frame, where = table.schema, table.frame, table.where
    encoder = TargetEncoder(config.task, config.target_transform)
    encoder.fit(frame[target], target, where)
    labels = encoder.labels(frame[target])
    classification = encoder.task_ == "classification"
    parts = split_table(labels if classification else len(frame), validation=config.validation,
                        test=config.test, seed=config.seed)
    if not classification:  # the target transform learns from training rows only
        encoder.fit(frame[target], target, where, fit_rows=parts["train"])
    inputs = to_inputs(frame, schema, where)
    splits = {}
    for name, key in (("train", "train"), ("val", "validation"), ("test", "test")):
        rows = parts[key]
        splits[f"x_{name}"] = {column: values[rows] for column, values in inputs.items()}
        splits[f"y_{name}"] = labels[rows]
    return {**splits, "spec": encoder.spec_, "schema": schema, "encoder": encoder,
            "feature_names": schema.names, "target": target, "source": str(path),
            "class_names": list(encoder.class_names_) if classification else None,
            "target_transform": None if classification else dict(encoder.transform_)}


def history_units(data):
    """What the training losses are measured in, when not the target's own units; else None."""
    transform = data.get("target_transform") or {}
    target = data["target"]
    if transform.get("kind", "none") == "none":
        return None
    if transform.get("link") == "log":
        return (f"Poisson deviance of {target} / {transform['scale']:.4g} against the "
                f"network's log of it")
    inner = f"log1p({target})" if transform.get("log1p") else target
    return (f"standardized {inner} units (({inner} - {transform['mean']:.4g}) / "
            f"{transform['scale']:.4g})")


def plan(config, rows):
    """(batch size, epochs, members) for `rows` training rows: the config's, or fit_table's plan.

    A setting left at None follows `TABLE_DEFAULTS`, as `kk.fit_table` does:
    large tables train fewer epochs of larger batches with fewer members.
    """
    batch_size = config.batch_size or TABLE_DEFAULTS.batch_size_for(rows)
    epochs = 2 if config.smoke else (config.epochs or TABLE_DEFAULTS.epochs_for(rows))
    return batch_size, epochs, config.members or TABLE_DEFAULTS.members_for(rows)


def run(config, data, run):
    """Builds the raw-column model, trains on the encoded target, reports on the test split."""
    import kerakit as kk
    from kerakit.data import StatsAccumulator, backend_inputs, build_table_model
    from kerakit.data.train import train_table_model

    spec, schema, encoder = data["spec"], data["schema"], data["encoder"]
    run.print(schema.summary(body=config.body))
    stats = StatsAccumulator(schema).update(data["x_train"]).result()
    rows = len(data["y_train"])
    batch_size, epochs, members = plan(config, rows)
    options = dict(units=config.units, dropout=config.dropout, learning_rate=config.learning_rate)
    if config.body == "table":
        options.update(members=members, steps=epochs * -(-rows // batch_size))
    else:
        options.update(l2=MLP_L2 if config.l2 is None else config.l2)
    # What the chosen body was built with: only the options it uses.
    run.write_manifest(body=config.body, table_defaults=TABLE_DEFAULTS.to_dict(),
                       batch_size=batch_size, model_options=options)
    model, train_model = build_table_model(schema, stats, encoder, body=config.body,
                                           seed=config.seed, **options)
    # The network trains on class indices or the transformed target; `model`
    # adds the layer that answers in the target's own units.
    encode = (lambda y: y) if spec.is_classification else encoder.forward
    history = train_table_model(
        model, train_model, data["x_train"], encode(data["y_train"]), spec=spec, encoder=encoder,
        validation_data=(data["x_val"], encode(data["y_val"])), epochs=epochs,
        batch_size=batch_size,
        class_weight=None if config.class_weight == "none" else config.class_weight,
        callbacks=kk.default_callbacks(spec, patience=config.patience), seed=config.seed)
    run.save_history(history, units=history_units(data))
    run.save_model(model)
    run.save_json("schema", schema.to_dict())
    # Text columns as this backend's model takes them (codes off TensorFlow), here and
    # in the run's standard plots, which predict `x_test` with the saved model.
    data["x_test"] = backend_inputs(model, data["x_test"])
    return kk.evaluate(model, data["x_test"], data["y_test"], spec)


if __name__ == "__main__":
    from kerakit.recipes import main

    main()
