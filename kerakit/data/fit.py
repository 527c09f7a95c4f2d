"""`fit_table`: a CSV (or DataFrame, or arrays) and a target column → a trained raw-column model."""

import dataclasses
import importlib.util
import os

from kerakit.checks import check_count
from kerakit.data.bodies import TABLE_DEFAULTS
from kerakit.data.preprocess import MAX_CATEGORIES, StatsAccumulator, check_cross_bins
from kerakit.data.schema import to_inputs
from kerakit.data.table import (
    STREAMING_BYTES,
    TableResult,
    build_table_model,
    is_path,
    read_table,
    split_table,
)
from kerakit.data.targets import TargetEncoder
from kerakit.errors import ConfigError, DataError


def _check_counts(epochs, batch_size, patience, max_categories, cross_bins):
    """Refuses counts that would train nothing, before any data is read."""
    if epochs != "auto":
        check_count("epochs", epochs)
    if batch_size != "auto":
        check_count("batch_size", batch_size)
    if patience is not None:
        check_count("patience", patience, minimum=0)
    check_count("max_categories", max_categories)
    check_cross_bins(cross_bins)


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
    epochs="auto",
    batch_size="auto",
    patience=TABLE_DEFAULTS.patience,
    callbacks=None,
    streaming="auto",
    drop_missing_target=False,
    na_values=(),
    encoding="utf-8",
    max_categories=MAX_CATEGORIES,
    cross_bins=64,
    verbose=0,
    tracking_uri=None,
    **build_options,
):
    """Trains a model that takes raw rows, from a CSV, a DataFrame or arrays, in one call.

    Loads and checks the data (`read_table`), infers each column's kind,
    splits train / validation / test (stratified for classification, by
    `seed`), learns scaling and vocabularies from the training rows only,
    builds a model with that preprocessing inside (`build_table_model`),
    trains with early stopping on the validation split, and reports metrics
    on validation and — once, at the end — on test. A CSV larger than 256 MiB
    (or `streaming=True`) is streamed from disk through `tf.data` (any
    backend, where TensorFlow is installed).

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
            standardized; answers are corrected to a mean with Duan's
            smearing factor from the validation rows), "poisson" (a log link
            trained on the Poisson deviance: the network predicts the log of
            the mean; for counts whose variance grows like their mean) or
            "none"; the model's last layer inverts it.
        crosses: column tuples to cross, e.g. `[("city", "rooms")]`.
        validation: validation fraction. Defaults to 0.15.
        test: test fraction (0 for none). Defaults to 0.15.
        seed: seeds the split, the weights and the shuffle. Defaults to 0.
        class_weight: "balanced" or `{class label: weight}`.
        epochs: maximum epochs (early stopping on `val_loss`); "auto" (the
            default) plans a budget of 600,000 training rows, from 6 epochs
            to `TABLE_DEFAULTS.epochs` (40; `TABLE_DEFAULTS.epochs_for`), so
            50,000 training rows train 12 epochs and 15,000 train 40.
        batch_size: rows per step; "auto" aims at about 64 steps per epoch,
            a power of two from 32 to 1024 (`TABLE_DEFAULTS.batch_size_for`;
            1024 when streaming).
            `epochs`, `batch_size` and `patience` are checked before any data
            is read.
        patience: early-stopping patience in epochs. Defaults to
            `TABLE_DEFAULTS.patience`.
        callbacks: extra Keras callbacks.
        streaming: True, False or "auto" (CSV paths over 256 MiB).
        drop_missing_target: drop rows without a target instead of refusing.
        na_values: extra cell texts meaning "missing".
        encoding: the CSV's encoding. Defaults to "utf-8".
        max_categories: vocabulary cap per categorical column: its most
            frequent training values are kept, the rest (and values seen in
            one training row only) share one out-of-vocabulary slot.
            Defaults to 1000.
        cross_bins: hash buckets per cross. Defaults to 64.
        verbose: 0 silent; 1 prints the schema, the Keras progress and the report.
        tracking_uri: an MLflow tracking URI (e.g. "sqlite:///mlflow.db"):
            the call becomes an MLflow run with these options as params, each
            epoch's metrics (step = epoch), the report as `validation_*` and
            `test_*` metrics, and the model (`model.keras`). Defaults to
            $MLFLOW_TRACKING_URI, else no tracking (`kerakit.tracking`).
        **build_options: `body` ("table", the default, see
            `kerakit.data.bodies`; or "mlp", the earlier default, or any
            registered body) and its options: for "table" members, units,
            dropout, learning_rate, weight_decay, warmup, bins, few_values (members: 8, and 4
            from 16,000 training rows on, `TABLE_DEFAULTS.members_for`); for the others
            those of `kerakit.build_model` (units, dropout, l2, optimizer, ...).
            The streaming path uses the same body ("table" unless `body` is given).

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
    _check_counts(epochs, batch_size, patience, max_categories, cross_bins)
    if is_path(data) and not os.path.isfile(data):
        raise DataError(f"No CSV file at {os.fspath(data)!r}. Check the path.")
    if streaming == "auto":
        streaming = is_path(data) and os.path.getsize(data) > STREAMING_BYTES
    options = TableOptions(
        reading=ReadOptions(types=types, ignore=ignore, drop_missing_target=drop_missing_target,
                            na_values=na_values, encoding=encoding, max_categories=max_categories),
        task=task, target_transform=target_transform, validation=validation, test=test, seed=seed,
        crosses=crosses, cross_bins=cross_bins, build_options=build_options,
        training=TrainOptions(class_weight=class_weight, epochs=epochs, batch_size=batch_size,
                              patience=patience, callbacks=callbacks, verbose=verbose))
    if streaming:
        if not is_path(data):
            raise ConfigError("`streaming=True` reads a CSV file; pass its path as `data`.")
        if encoding.lower().replace("-", "") != "utf8":
            raise ConfigError("The streaming reader needs a UTF-8 file; re-save it as UTF-8.")
        if importlib.util.find_spec("tensorflow") is None:
            # tf.data reads the file for any backend (Keras feeds a tf.data pipeline to
            # JAX and PyTorch models too); only its absence stops streaming.
            raise ConfigError(
                f"Streaming a CSV (streaming=True, or a file over {STREAMING_BYTES >> 20} MiB) "
                f"reads it with tf.data, and TensorFlow is not installed. Load it in memory "
                f"with streaming=False, or pip install tensorflow."
            )
        from kerakit.data.streaming import fit_csv_streaming

        return _tracked(tracking_uri, fit_csv_streaming, data, target, options)
    return _tracked(tracking_uri, _fit_in_memory, data, target, y, options)


def _tracked(tracking_uri, fit, *args):
    """Runs `fit(*args)`, as an MLflow run when a tracking URI is set (kerakit.tracking)."""
    from kerakit import tracking
    from kerakit.layers import quiet_input_names

    target, options = args[1], args[-1]
    params = {"target": target, **dataclasses.asdict(options.reading),
              **{k: v for k, v in vars(options).items() if k not in ("reading", "training")},
              **{k: v for k, v in vars(options.training).items() if k != "callbacks"}}
    with tracking.tracked_run(tracking_uri, "fit_table", params) as run, quiet_input_names():
        if run is None:
            return fit(*args)
        options.training.callbacks = [*(options.training.callbacks or []), run.callback()]
        result = fit(*args)
        run.log_metrics({f"{split}_{k}": v for split, m in result.report.items() for k, v in m.items()})
        run.log_model(result.model)
        return result


@dataclasses.dataclass
class ReadOptions:
    """How the table is read and its columns typed (see `read_table`)."""

    types: dict | None = None
    ignore: object = None
    drop_missing_target: bool = False
    na_values: object = ()
    encoding: str = "utf-8"
    max_categories: int = MAX_CATEGORIES


@dataclasses.dataclass
class TrainOptions:
    """How the model trains (see `kerakit.fit`); "auto" epochs and batch sizes follow TABLE_DEFAULTS."""

    class_weight: object = None
    epochs: object = "auto"
    batch_size: object = "auto"
    patience: int | None = TABLE_DEFAULTS.patience
    callbacks: list | None = None
    verbose: int = 0

    def callbacks_for(self, spec, has_validation):
        """Early stopping on the validation split (best weights restored), then the user's."""
        from kerakit.callbacks import default_callbacks

        extra = list(self.callbacks or [])
        if has_validation and self.patience is not None:
            return default_callbacks(spec, patience=self.patience) + extra
        return extra


@dataclasses.dataclass
class TableOptions:
    """`fit_table`'s options as they travel together to the in-memory and streaming paths."""

    reading: ReadOptions = dataclasses.field(default_factory=ReadOptions)
    task: str = "auto"
    target_transform: str = "auto"
    validation: float = 0.15
    test: float = 0.15
    seed: int = 0
    crosses: tuple = ()
    cross_bins: int = 64
    build_options: dict = dataclasses.field(default_factory=dict)
    training: TrainOptions = dataclasses.field(default_factory=TrainOptions)


def _fit_in_memory(data, target, y, options):
    """Read → split and encode the target → build → train → report, each step one call."""
    if target is None and y is None:
        raise ConfigError("fit_table needs the target column: pass target='column_name'.")
    reading = options.reading
    table = read_table(data, target, y=y, types=reading.types, ignore=reading.ignore,
                       drop_missing_target=reading.drop_missing_target, na_values=reading.na_values,
                       encoding=reading.encoding)
    if options.training.verbose:
        print(table.schema.summary(body=options.build_options.get("body", TABLE_DEFAULTS.body)))
    encoder, labels, parts = _split_and_encode(table, options)
    inputs = to_inputs(table.frame, table.schema, table.where)
    take = {name: {k: v[idx] for k, v in inputs.items()} for name, idx in parts.items()}
    # Imported after the data checks, so a bad table is refused before TensorFlow loads.
    model, train_model, batch_size, epochs = _build(table.schema, take["train"], encoder, options)
    history = _train(model, train_model, take, encoder, parts, table, batch_size, epochs, options)
    report = _report(model, take, labels, parts, encoder.spec_, options.training.verbose)
    return TableResult(model, table.schema, encoder.spec_, history, report,
                       {k: int(len(v)) for k, v in parts.items()},
                       encoder.class_names_ if encoder.task_ == "classification" else None)


def _split_and_encode(table, options):
    """The target's task and classes (every row), the split, and a transform fit on train rows."""
    frame, target = table.frame, table.schema.target
    encoder = TargetEncoder(options.task, options.target_transform)
    encoder.fit(frame[target], target, table.where)
    labels = encoder.labels(frame[target])
    parts = split_table(labels if encoder.task_ == "classification" else len(frame),
                        validation=options.validation, test=options.test, seed=options.seed)
    if encoder.task_ == "regression":
        encoder.fit(frame[target], target, table.where, fit_rows=parts["train"])  # train only
    return encoder, labels, parts


def _build(schema, train_inputs, encoder, options):
    """The model (raw rows in, answers in the target's units) and the one that trains."""
    stats = StatsAccumulator(schema, options.reading.max_categories).update(train_inputs).result()
    rows = len(next(iter(train_inputs.values())))
    batch_size = options.training.batch_size
    if batch_size == "auto":
        batch_size = TABLE_DEFAULTS.batch_size_for(rows)
    epochs = options.training.epochs
    if epochs == "auto":
        epochs = TABLE_DEFAULTS.epochs_for(rows)
    # The "table" body's learning-rate schedule spans every planned step.
    steps = epochs * -(-rows // batch_size)
    build_options = {"body": TABLE_DEFAULTS.body, **options.build_options}
    if build_options["body"] == "table" and build_options.get("members") is None:
        build_options["members"] = TABLE_DEFAULTS.members_for(rows)
    model, train_model = build_table_model(schema, stats, encoder, crosses=options.crosses,
                                           cross_bins=options.cross_bins,
                                           na_values=options.reading.na_values, seed=options.seed,
                                           steps=steps, **build_options)
    return model, train_model, batch_size, epochs


def _train(model, train_model, take, encoder, parts, table, batch_size, epochs, options):
    from kerakit.data.train import train_table_model

    spec, training = encoder.spec_, options.training
    encoded = encoder.encode(table.frame[table.schema.target])
    has_validation = "validation" in parts
    validation_data = (take["validation"], encoded[parts["validation"]]) if has_validation else None
    return train_table_model(
        model, train_model, take["train"], encoded[parts["train"]], spec=spec, encoder=encoder,
        validation_data=validation_data, epochs=epochs, batch_size=batch_size,
        class_weight=training.class_weight, callbacks=training.callbacks_for(spec, has_validation),
        seed=options.seed, verbose=training.verbose and 2)


def _report(model, take, labels, parts, spec, verbose):
    """Held-out metrics on the validation and test splits (the test split is used only here)."""
    from kerakit.data.preprocess import backend_inputs
    from kerakit.training import metrics_report, predict_padded

    # Chunks padded to a power of two rows: the splits share one compiled predict
    # function with each other and with later `predict_table` calls (one XLA compile on JAX).
    report = {name: metrics_report(spec, labels[parts[name]],
                                   predict_padded(model, backend_inputs(model, take[name]), 1024))
              for name in ("validation", "test") if name in parts}
    if verbose:
        for name, metrics in report.items():
            print(f"{name}: " + ", ".join(f"{k}={v:.4g}" for k, v in metrics.items()))
    return report
