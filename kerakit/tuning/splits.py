"""`tune_splits`: a search on train/validation/test splits, reported once on the test split.

What `kerakit tune RECIPE` does, callable from Python. The splits are a
recipe's data dict. Numeric features are standardized inside the model
with statistics of the tuning rows, so the saved model takes raw rows.
Raw table columns (with the recipe's `schema` and `encoder`, as `kerakit
run csv` returns them) are encoded once by the body's preprocessing; the
best network is then joined to that preprocessing (and to the target's
inverse transform, smeared for a log target), so the saved model answers
raw rows in the target's own units.
"""

import dataclasses
import functools
from pathlib import Path

import numpy as np

from kerakit.atomic import atomic_path
from kerakit.errors import ConfigError, DataTypeError
from kerakit.tuning.options import CrossValidation
from kerakit.tuning.search import tune

SPLITS = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test", "spec")


@dataclasses.dataclass
class SplitsResult:
    """What `tune_splits` found and saved.

    Attributes:
        search: the `TuneResult` of the search itself.
        model: the refit best model as saved: on raw table columns, joined
            to their preprocessing (`table_model.keras`); else the search's
            `best_model`. None on a worker or with `refit=False`.
        test_metrics: `kk.evaluate` of `model` on the test split, or None.
        ensemble, ensemble_test_metrics: with `cv` and `Refit(ensemble=True)`,
            the fold models' average (`ensemble.keras`) and its test metrics.
        model_path, ensemble_path: where they were saved, or None.
    """

    search: object
    model: object = None
    test_metrics: dict | None = None
    ensemble: object = None
    ensemble_test_metrics: dict | None = None
    model_path: Path | None = None
    ensemble_path: Path | None = None


def _features(data, key):
    value = data[key]
    if isinstance(value, dict):
        raise DataTypeError(
            f"Tuning on splits needs numeric feature arrays, or raw columns with the recipe's "
            f"'schema' and 'encoder' (as `kerakit run csv` returns), but {key} is a dict of raw "
            f"columns without them. Return those from data(config), or call "
            f"kerakit.tune(..., space=build) with a build(hp) function that adds the column "
            f"preprocessing. Received: keys {sorted(data)}"
        )
    return np.asarray(value, dtype="float32")


class TableSplits:
    """Raw table columns, encoded once by the body's preprocessing for the search.

    Args:
        data: the splits, with the recipe's `schema` and fitted `encoder`.
        body: the body whose preprocessing encodes the columns.
    """

    def __init__(self, data, body):
        from kerakit.data import StatsAccumulator
        from kerakit.data.table import table_encoder
        from kerakit.data.train import encode_rows

        self.schema, self.encoder, self.body = data["schema"], data["encoder"], body
        stats = StatsAccumulator(self.schema).update(data["x_train"]).result()
        self.encode = table_encoder(self.schema, stats, body=body)
        self.x_test, self.y_test = data["x_test"], data["y_test"]
        # The network trains on class indices or the transformed target.
        forward = (lambda v: v) if self.encoder.task_ == "classification" else self.encoder.forward
        self.data = {**data, **{f"x_{k}": encode_rows(self.encode, data[f"x_{k}"])
                                for k in ("train", "val", "test")},
                     "y_train": forward(np.asarray(data["y_train"])),
                     "y_val": forward(np.asarray(data["y_val"]))}

    def join(self, network, x, y, validation):
        """The raw-column model: preprocessing → the searched network → answers in target units."""
        from kerakit.data.table import join_table_model
        from kerakit.data.train import set_smearing

        model = join_table_model(self.encode, network, self.schema, self.encoder, body=self.body)
        if self.encoder.transform_.get("log1p"):
            rows, targets = validation if validation is not None else (x, y)
            set_smearing(model, network, rows, targets, self.encoder)
        return model


def _is_build_function(space):
    import keras_tuner

    return space is not None and (callable(space) or isinstance(space, keras_tuner.HyperModel)) \
        and not isinstance(space, dict)


def tune_splits(data, space=None, *, cv=None, body="mlp", refit=True, **options):
    """Tunes on a recipe's splits, refits the best candidate and reports it on the test split.

    With `cv`, candidates are scored by k folds over the training and
    validation rows together; otherwise they train on `x_train` and are
    scored on `x_val`. The test split is touched once, by the refit model.

    Args:
        data: a dict with `x_train`, `y_train`, `x_val`, `y_val`, `x_test`,
            `y_test` and `spec` (a recipe's `data(config)`): numeric feature
            arrays, or dicts of raw columns together with the recipe's
            `schema` and `encoder`.
        space: as for `kerakit.tune`; a build(hp) function builds its whole
            model, scaling included.
        cv: number of folds over train + validation rows, or None to score
            on the validation split. Defaults to None.
        body: the body of spec-built models (and of the table preprocessing).
            Defaults to "mlp".
        refit: True, False or a `kerakit.tuning.Refit`. Defaults to True.
        **options: the other keywords of `kerakit.tune` (tuner, max_trials,
            epochs, directory, project_name, seed, distribution, ...).

    Returns:
        A `SplitsResult`; the models are saved in the search folder
        (`table_model.keras` for raw columns, `ensemble.keras`).

    Example:

    ```python
    data = recipe.data(config)  # x_train, y_train, x_val, y_val, x_test, y_test, spec
    found = kk.tuning.tune_splits(data, tuner="tpe", max_trials=20, directory="runs/tune")
    found.test_metrics, found.search.best_hyperparameters
    ```
    """
    missing = [key for key in SPLITS if key not in data]
    if missing:
        raise ConfigError(f"`data` must hold the splits {', '.join(SPLITS)}; missing "
                          f"{', '.join(missing)}. Received: keys {sorted(data)}")
    if isinstance(cv, bool) or not (cv is None or isinstance(cv, int)):
        raise ConfigError(f"`cv` must be a number of folds or None. Received: cv={cv!r}")
    if "preprocessor" in options or "validation_data" in options:
        raise ConfigError("tune_splits chooses the preprocessor and the validation rows from the "
                          "splits; call kerakit.tune to set them yourself.")
    spec = data["spec"]
    table = None
    if isinstance(data["x_train"], dict) and {"schema", "encoder"} <= set(data):
        table = TableSplits(data, body)
        data = table.data
    x_train, x_val = _features(data, "x_train"), _features(data, "x_val")
    y_train, y_val = np.asarray(data["y_train"]), np.asarray(data["y_val"])
    if cv:
        x, y, validation = np.concatenate([x_train, x_val]), np.concatenate([y_train, y_val]), None
    else:
        x, y, validation = x_train, y_train, (x_val, y_val)
    preprocessor = None
    if table is None and not _is_build_function(space):
        import keras

        # Standardize inside the model: the saved model takes the recipe's raw rows.
        preprocessor = functools.partial(keras.layers.Normalization, mean=x.mean(axis=0),
                                         variance=np.maximum(x.var(axis=0), 1e-12))
    search = tune(spec, x, y, space, cv=CrossValidation(folds=cv, validation_data=validation), body=body, refit=refit,
                  preprocessor=preprocessor, **options)
    found = SplitsResult(search=search)
    if search.role == "worker":
        return found
    _report(found, table, data, spec, (x, y, validation))
    return found


def _report(found, table, data, spec, rows):
    """Joins raw columns to the network, evaluates once on the test split and saves the models."""
    from kerakit.training import evaluate

    search = found.search
    if table is not None:
        x_test, y_test = table.x_test, table.y_test  # raw columns: the joined model's inputs
    else:
        x_test, y_test = _features(data, "x_test"), data["y_test"]
    if search.best_model is not None:
        found.model = search.best_model if table is None else table.join(search.best_model, *rows)
        found.test_metrics = evaluate(found.model, x_test, y_test, spec)
        if table is not None:
            found.model_path = search.directory / "table_model.keras"
            with atomic_path(found.model_path) as tmp:
                found.model.save(tmp)
        else:
            found.model_path = search.directory / "best_model.keras"
    if search.ensemble is not None:
        found.ensemble = search.ensemble if table is None else table.join(search.ensemble, *rows)
        found.ensemble_test_metrics = evaluate(found.ensemble, x_test, y_test, spec)
        found.ensemble_path = search.directory / "ensemble.keras"
        with atomic_path(found.ensemble_path) as tmp:
            found.ensemble.save(tmp)
