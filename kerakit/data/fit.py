"""`fit_table`: a CSV (or DataFrame, or arrays) and a target column → a trained raw-column model."""

import os

from kerakit.checks import check_count
from kerakit.data.bodies import TABLE_DEFAULTS
from kerakit.data.preprocess import StatsAccumulator
from kerakit.data.schema import to_inputs
from kerakit.data.table import (
    STREAMING_BYTES,
    TableResult,
    _is_path,
    build_table_model,
    read_table,
    split_table,
)
from kerakit.data.targets import TargetEncoder
from kerakit.errors import ConfigError, DataError


def _check_counts(epochs, batch_size, patience):
    """Refuses counts that would train nothing, before any data is read."""
    check_count("epochs", epochs)
    if batch_size != "auto":
        check_count("batch_size", batch_size)
    if patience is not None:
        check_count("patience", patience, minimum=0)


def _auto_batch_size(rows):
    return TABLE_DEFAULTS.batch_size_for(rows)


def fit_table(
    data,
    target=None,
    *,
    y=None,
    types=None,
    ignore=None,
    task="auto",
    target_transform="auto",
    crosses=(),
    validation=0.15,
    test=0.15,
    seed=0,
    class_weight=None,
    epochs=TABLE_DEFAULTS.epochs,
    batch_size="auto",
    patience=TABLE_DEFAULTS.patience,
    callbacks=None,
    streaming="auto",
    drop_missing_target=False,
    na_values=(),
    encoding="utf-8",
    max_categories=100,
    cross_bins=64,
    verbose=0,
    **build_options,
):
    """Trains a model that takes raw rows, from a CSV, a DataFrame or arrays, in one call.

    Loads and checks the data (`read_table`), infers each column's kind,
    splits train / validation / test (stratified for classification, by
    `seed`), learns scaling and vocabularies from the training rows only,
    builds a model with that preprocessing inside (`build_table_model`),
    trains with early stopping on the validation split, and reports metrics
    on validation and — once, at the end — on test. A CSV larger than 256 MiB
    (or `streaming=True`) is streamed from disk through `tf.data`.

    Args:
        data: a CSV path, DataFrame, dict of columns or 2-D NumPy features.
        target: the target column. With NumPy features pass `y=` instead.
        y: labels for NumPy/dict features.
        types: `{column: kind}` overrides of inferred kinds.
        ignore: columns to leave out.
        task: "auto", "classification" or "regression".
        target_transform: regression only: "auto" (the default: "log1p"
            for a skewed target without negative values, else "standardize";
            the streaming path: "standardize"), "standardize", "log1p" (then
            standardized) or "none"; the model's last layer inverts it.
        crosses: column tuples to cross, e.g. `[("city", "rooms")]`.
        validation: validation fraction. Defaults to 0.15.
        test: test fraction (0 for none). Defaults to 0.15.
        seed: seeds the split, the weights and the shuffle. Defaults to 0.
        class_weight: "balanced" or `{class label: weight}`.
        epochs: maximum epochs (early stopping on `val_loss`). Defaults to
            `TABLE_DEFAULTS.epochs` (shared with `kerakit run csv`).
        batch_size: rows per step; "auto" is 32 below 10,000 rows, else 256
            (1024 when streaming).
            `epochs`, `batch_size` and `patience` are checked before any data
            is read.
        patience: early-stopping patience in epochs. Defaults to
            `TABLE_DEFAULTS.patience`.
        callbacks: extra Keras callbacks.
        streaming: True, False or "auto" (CSV paths over 256 MiB).
        drop_missing_target: drop rows without a target instead of refusing.
        na_values: extra cell texts meaning "missing".
        encoding: the CSV's encoding. Defaults to "utf-8".
        max_categories: vocabulary cap per categorical column. Defaults to 100.
        cross_bins: hash buckets per cross. Defaults to 64.
        verbose: 0 silent; 1 prints the schema, the Keras progress and the report.
        **build_options: `body` ("table", the default, see
            `kerakit.data.bodies`; or "mlp", the earlier default, or any
            registered body) and its options: for "table" members, units,
            dropout, learning_rate, weight_decay, warmup, bins; for the others
            those of `kerakit.build_model` (units, dropout, l2, optimizer, ...).
            The streaming path uses "mlp" unless `body` is given.

    Returns:
        a `TableResult` (`model`, `schema`, `spec`, `history`, `report`, `splits`).

    Example:

    ```python
    result = kk.fit_table("houses.csv", target="price", ignore=["id"])
    print(result.schema); result.report["test"]["r2"]
    kk.save_table_model(result.model, "houses.keras")
    kk.predict_table(result.model, [{"city": "Oslo", "rooms": 3, "area": 71.0}])
    ```
    """
    if streaming not in (True, False, "auto"):
        raise ConfigError(f"`streaming` must be True, False or 'auto'. Received: {streaming!r}")
    _check_counts(epochs, batch_size, patience)
    if _is_path(data) and not os.path.isfile(data):
        raise DataError(f"No CSV file at {os.fspath(data)!r}. Check the path.")
    if streaming == "auto":
        streaming = _is_path(data) and os.path.getsize(data) > STREAMING_BYTES
    common = dict(types=types, ignore=ignore, task=task, target_transform=target_transform,
                  crosses=crosses, validation=validation, test=test, seed=seed,
                  class_weight=class_weight, epochs=epochs, batch_size=batch_size,
                  patience=patience, callbacks=callbacks, drop_missing_target=drop_missing_target,
                  na_values=na_values, max_categories=max_categories, cross_bins=cross_bins,
                  verbose=verbose, **build_options)
    if streaming:
        if not _is_path(data):
            raise ConfigError("`streaming=True` reads a CSV file; pass its path as `data`.")
        if encoding.lower().replace("-", "") != "utf8":
            raise ConfigError("The streaming reader needs a UTF-8 file; re-save it as UTF-8.")
        from kerakit.data.streaming import fit_csv_streaming

        return fit_csv_streaming(data, target, **common)
    return _fit_in_memory(data, target, y=y, encoding=encoding, **common)


def _fit_in_memory(data, target, *, y, types, ignore, task, target_transform, crosses, validation,
                   test, seed, class_weight, epochs, batch_size, patience, callbacks,
                   drop_missing_target, na_values, encoding, max_categories, cross_bins, verbose,
                   **build_options):
    if target is None and y is None:
        raise ConfigError("fit_table needs the target column: pass target='column_name'.")
    table = read_table(data, target, y=y, types=types, ignore=ignore,
                       drop_missing_target=drop_missing_target, na_values=na_values,
                       encoding=encoding)
    # Imported after the data checks, so a bad table is refused before TensorFlow loads.
    from kerakit.callbacks import default_callbacks
    from kerakit.training import evaluate, fit

    schema, frame, where = table.schema, table.frame, table.where
    target = schema.target
    encoder = TargetEncoder(task, target_transform)
    encoder.fit(frame[target], target, where)  # task and class names, from every row
    labels = encoder.labels(frame[target])
    parts = split_table(labels if encoder.task_ == "classification" else len(frame),
                          validation=validation, test=test, seed=seed)
    if encoder.task_ == "regression":
        encoder.fit(frame[target], target, where, fit_rows=parts["train"])  # transform: train only
    if verbose:
        print(schema)
    inputs = to_inputs(frame, schema, where)
    take = {name: {k: v[idx] for k, v in inputs.items()} for name, idx in parts.items()}
    stats = StatsAccumulator(schema, max_categories).update(take["train"]).result()
    if batch_size == "auto":
        batch_size = _auto_batch_size(len(parts["train"]))
    # The "table" body's learning-rate schedule spans every planned step.
    steps = epochs * -(-len(parts["train"]) // batch_size)
    build_options.setdefault("body", TABLE_DEFAULTS.body)
    model, train_model = build_table_model(schema, stats, encoder, crosses=crosses,
                                           cross_bins=cross_bins, na_values=na_values, seed=seed,
                                           steps=steps, **build_options)
    spec = encoder.spec_
    encoded = encoder.encode(frame[target])
    has_validation = "validation" in parts
    all_callbacks = list(callbacks or [])
    if has_validation and patience is not None:
        all_callbacks = default_callbacks(spec, patience=patience) + all_callbacks
    validation_data = ((take["validation"], encoded[parts["validation"]])
                       if has_validation else None)
    history = fit(train_model, take["train"], encoded[parts["train"]], spec=spec,
                  validation_data=validation_data, epochs=epochs, batch_size=batch_size,
                  class_weight=class_weight, callbacks=all_callbacks, seed=seed,
                  verbose=verbose and 2)
    report = {}
    for name in ("validation", "test"):
        if name in parts:
            report[name] = evaluate(model, take[name], labels[parts[name]], spec)
    if verbose:
        for name, metrics in report.items():
            shown = ", ".join(f"{k}={v:.4g}" for k, v in metrics.items())
            print(f"{name}: {shown}")
    return TableResult(model, schema, spec, history, report,
                       {k: int(len(v)) for k, v in parts.items()},
                       encoder.class_names_ if encoder.task_ == "classification" else None)
