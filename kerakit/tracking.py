"""Experiment tracking with MLflow: runs, nested trial runs, per-epoch metrics and models.

Tracking is off unless a tracking URI is given (`tracking_uri=`) or set in
`MLFLOW_TRACKING_URI`; then MLflow (the optional extra `kerakit[mlflow]`)
is imported. Every call goes through an `MlflowClient` bound to an explicit
run id, never through MLflow's process-wide "active run" or autologging, so
the same code logs from any engine (TensorFlow, JAX, PyTorch: each calls
Keras callbacks' `on_epoch_end` with the epoch's logs), from threads, and
from a trial running in a child process (a `TrackedRun` pickles).

A search is a parent run and each trial a child run:

```python
with search_run(tracking_uri, "tune digits", {"tuner": "tpe", "max_trials": 20}) as search:
    for trial_id, values in candidates:
        with trial_run(trial_id, values) as trial:      # a child of `search`
            model.fit(x, y, epochs=10, callbacks=[trial.callback()])
            if pruned:
                trial.mark_pruned()
    search.log_model(best_model, "best_model")
```

Both context managers yield None when tracking is off, and `trial_run`
yields None outside a `search_run`, so callers guard with `if trial:`.
"""

import contextlib
import dataclasses
import math
import os
import re
import tempfile
import time
from pathlib import Path

import keras

from kerakit.errors import ConfigError, MissingExtraError

TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"
EXPERIMENT_ENV = "MLFLOW_EXPERIMENT_NAME"
# The experiment kerakit logs to when neither `experiment=` nor $MLFLOW_EXPERIMENT_NAME names one.
DEFAULT_EXPERIMENT = "kerakit"
# The tag holding a run's outcome in kerakit's words (a trials table's `status`).
STATUS_TAG = "kerakit.status"
# kerakit status → MLflow run status.
RUN_STATUSES = {"completed": "FINISHED", "pruned": "KILLED", "interrupted": "KILLED", "failed": "FAILED"}

# MLflow's limits per `log_batch` call and per param value.
_BATCH_PARAMS = 100
_BATCH_METRICS = 1000
_PARAM_CHARS = 6000
# Characters MLflow accepts in metric and param names; others become "_".
_NAME_INVALID = re.compile(r"[^\w.\-/ :]")


def resolve_tracking_uri(tracking_uri=None):
    """The tracking URI to log to, or None when tracking is off.

    Args:
        tracking_uri: an MLflow tracking URI (`sqlite:///mlflow.db`,
            `http://host:5000`, a folder, ...). None reads
            `$MLFLOW_TRACKING_URI`; False turns tracking off whatever the
            environment says. Defaults to None.

    Example:

    >>> resolve_tracking_uri("sqlite:///mlflow.db")
    'sqlite:///mlflow.db'
    """
    if tracking_uri is False:
        return None
    if tracking_uri is None:
        return os.environ.get(TRACKING_URI_ENV) or None
    if not isinstance(tracking_uri, (str, os.PathLike)) or not os.fspath(tracking_uri).strip():
        raise ConfigError(
            "`tracking_uri` must be an MLflow tracking URI such as 'sqlite:///mlflow.db' or "
            f"'http://localhost:5000', or None to read ${TRACKING_URI_ENV}. "
            f"Received: tracking_uri={tracking_uri!r}"
        )
    return os.fspath(tracking_uri)


def import_mlflow():
    """MLflow, or a kerakit error naming the extra that installs it."""
    try:
        import mlflow
    except ImportError:
        raise MissingExtraError(
            "Tracking to MLflow (tracking_uri=, --tracking-uri or $MLFLOW_TRACKING_URI) needs "
            "MLflow, which is not installed. Install the extra: pip install 'kerakit[mlflow]' "
            "(or pip install mlflow), or leave the tracking URI unset."
        ) from None
    return mlflow


def _client(tracking_uri):
    # MLflow keeps one store per URI; a client is a light handle on it, made per call
    # and dropped, so a long search holds no clients.
    return import_mlflow().MlflowClient(tracking_uri=tracking_uri)


def _name(key):
    return _NAME_INVALID.sub("_", str(key))[:250]


def flatten(mapping, prefix=""):
    """`{"a": {"b": 1}}` → `{"a.b": 1}`: nested config as MLflow's flat param names."""
    flat = {}
    for key, value in dict(mapping).items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def _number(value):
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


@dataclasses.dataclass
class TrackedRun:
    """An open MLflow run: where it lives and its id. Plain data, so it pickles to child processes.

    Attributes:
        tracking_uri: the resolved tracking URI.
        run_id: MLflow's run id.
        experiment_id: the run's experiment.
    """

    tracking_uri: str
    run_id: str
    experiment_id: str

    def log_params(self, params):
        """Logs a (possibly nested) dict as params; values become text, cut to MLflow's limit."""
        entities = import_mlflow().entities
        items = [entities.Param(_name(k), str(v)[:_PARAM_CHARS]) for k, v in flatten(params).items()]
        client = _client(self.tracking_uri)
        for start in range(0, len(items), _BATCH_PARAMS):
            client.log_batch(self.run_id, params=items[start:start + _BATCH_PARAMS])

    def log_metrics(self, metrics, step=0):
        """Logs numbers at `step` (a nested dict is flattened; non-numbers and NaN are left out)."""
        self._log_points([(step, flatten(metrics))])

    def log_history(self, history):
        """Logs a Keras `History` (or `{name: per-epoch list}`) with step = epoch, 0 first."""
        logs = getattr(history, "history", history) or {}
        epochs = max((len(values) for values in logs.values()), default=0)
        self._log_points([(epoch, {name: values[epoch] for name, values in logs.items()
                                   if epoch < len(values)}) for epoch in range(epochs)])

    def _log_points(self, points):
        entities = import_mlflow().entities
        now = int(time.time() * 1000)
        items = [entities.Metric(_name(name), number, now, int(step))
                 for step, metrics in points for name, value in metrics.items()
                 if (number := _number(value)) is not None]
        client = _client(self.tracking_uri)
        for start in range(0, len(items), _BATCH_METRICS):
            client.log_batch(self.run_id, metrics=items[start:start + _BATCH_METRICS])

    def set_tags(self, tags):
        """Sets tags (text values)."""
        entities = import_mlflow().entities
        items = [entities.RunTag(_name(k), str(v)[:_PARAM_CHARS]) for k, v in tags.items()]
        _client(self.tracking_uri).log_batch(self.run_id, tags=items)

    def log_artifact(self, path, folder=None):
        """Uploads a file (or a folder's files) to the run's artifacts, under `folder` if given."""
        _client(self.tracking_uri).log_artifact(self.run_id, os.fspath(path), artifact_path=folder)

    def log_model(self, model, name="model"):
        """Saves `model` as `<name>.keras` and logs it as an artifact; returns the artifact's path."""
        return log_model(model, name, run=self)

    def callback(self, prefix=""):
        """An `MlflowCallback` that logs each epoch's metrics to this run."""
        return MlflowCallback(self, prefix=prefix)

    def end(self, status="completed"):
        """Ends the run with a kerakit status: completed, pruned, interrupted or failed."""
        if status not in RUN_STATUSES:
            raise ConfigError(f"`status` must be one of {', '.join(RUN_STATUSES)}. "
                              f"Received: status={status!r}")
        self.set_tags({STATUS_TAG: status})
        _client(self.tracking_uri).set_terminated(self.run_id, status=RUN_STATUSES[status])


def artifact_location(tracking_uri):
    """Where a new experiment keeps its artifacts: beside a SQLite store's file, else MLflow's default.

    With a database store and no tracking server, MLflow puts artifacts in
    `./mlruns` of whatever folder the process runs in; next to the `.db` file
    they stay with the runs that name them.
    """
    if not str(tracking_uri).startswith("sqlite:///"):
        return None
    database = Path(str(tracking_uri)[len("sqlite:///"):])
    return (database.resolve().parent / "mlartifacts").as_uri()


def _experiment_id(client, experiment, tracking_uri=None):
    name = experiment or os.environ.get(EXPERIMENT_ENV) or DEFAULT_EXPERIMENT
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    try:
        return client.create_experiment(name, artifact_location=artifact_location(tracking_uri))
    except import_mlflow().exceptions.MlflowException:
        # Another worker created it between the look-up and the creation.
        found = client.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id


def start_run(tracking_uri, name, params=None, *, parent=None, experiment=None, tags=None):
    """Starts an MLflow run and returns it as a `TrackedRun`, or None when tracking is off.

    End it with `TrackedRun.end`, or use `tracked_run`, which does.

    Args:
        tracking_uri: see `resolve_tracking_uri` (None reads $MLFLOW_TRACKING_URI).
        name: the run's name in the MLflow UI.
        params: a dict (nested allowed) logged as params. Defaults to none.
        parent: a `TrackedRun` this run is nested under (MLflow's
            `mlflow.parentRunId` tag); it also gives the URI and experiment.
            Defaults to None (a top-level run).
        experiment: the experiment's name, created when missing. Defaults
            to $MLFLOW_EXPERIMENT_NAME, else "kerakit".
        tags: extra tags. Defaults to none.

    Example:

    ```python
    run = start_run("sqlite:///mlflow.db", "digits", {"epochs": 3})
    model.fit(x, y, epochs=3, callbacks=[run.callback()])
    run.end()
    ```
    """
    if parent is not None:
        uri, experiment_id = parent.tracking_uri, parent.experiment_id
    else:
        uri = resolve_tracking_uri(tracking_uri)
        if uri is None:
            return None
    client = _client(uri)
    if parent is None:
        experiment_id = _experiment_id(client, experiment, uri)
    run_tags = {"mlflow.runName": str(name), **(tags or {})}
    if parent is not None:
        run_tags["mlflow.parentRunId"] = parent.run_id
    info = client.create_run(experiment_id, tags={k: str(v) for k, v in run_tags.items()}).info
    run = TrackedRun(uri, info.run_id, info.experiment_id)
    if params:
        run.log_params(params)
    return run


@contextlib.contextmanager
def tracked_run(tracking_uri, name, params=None, *, parent=None, experiment=None, tags=None):
    """A context manager around `start_run`: yields the `TrackedRun` (None when tracking is off).

    The run ends "completed" (MLflow FINISHED) when the block ends,
    "interrupted" (KILLED) on Ctrl-C, "failed" (FAILED) on any other error,
    which is raised on.

    Example:

    ```python
    with tracked_run(None, "fit", {"epochs": 3}) as run:   # $MLFLOW_TRACKING_URI, or off
        model.fit(x, y, epochs=3, callbacks=[run.callback()] if run else [])
    ```
    """
    run = start_run(tracking_uri, name, params, parent=parent, experiment=experiment, tags=tags)
    if run is None:
        yield None
        return
    with _ending(run):
        yield run


@contextlib.contextmanager
def _ending(run, status=None):
    """Ends `run` when the block ends: `status()` on success, else interrupted or failed."""
    try:
        yield
    except KeyboardInterrupt:
        run.end("interrupted")
        raise
    except BaseException:
        run.end("failed")
        raise
    run.end(status() if status else "completed")


# The searches open in this process, innermost last: `trial_run`'s default parent.
_SEARCHES = []


@contextlib.contextmanager
def search_run(tracking_uri, name, config=None, *, experiment=None):
    """The parent run of a search: yields its `TrackedRun`, or None when tracking is off.

    Inside the block, `trial_run` nests each trial under it. Log the best
    model with `search.log_model(model, "best_model")` before the block ends.

    Args:
        tracking_uri: see `resolve_tracking_uri` (None reads $MLFLOW_TRACKING_URI).
        name: the search's run name.
        config: the search's settings (tuner, budget, objective, ...),
            logged as params. Defaults to none.
        experiment: see `start_run`.

    Example:

    ```python
    with search_run("sqlite:///mlflow.db", "tune digits", {"tuner": "random"}) as search:
        ...
    ```
    """
    with tracked_run(tracking_uri, name, config, experiment=experiment,
                     tags={"kerakit.kind": "search"}) as search:
        if search is None:
            yield None
            return
        _SEARCHES.append(search)
        try:
            yield search
        finally:
            _SEARCHES.remove(search)


@dataclasses.dataclass
class TrialRun(TrackedRun):
    """The child run of one trial (see `trial_run`); `mark_pruned` records an early stop."""

    pruned: bool = False

    def mark_pruned(self):
        """Records that the trial was pruned: it ends "pruned" (MLflow KILLED), not "completed"."""
        self.pruned = True


@contextlib.contextmanager
def trial_run(trial_id, hyperparameters, *, parent=None):
    """The child run of one trial: yields a `TrialRun`, or None when no search is tracked.

    Its params are the trial's hyperparameters; its status is "completed"
    (FINISHED), "pruned" (KILLED, after `trial.mark_pruned()`) or "failed"
    (FAILED, when the block raises). Log the epochs with
    `callbacks=[trial.callback()]`.

    Args:
        trial_id: the trial's id (the run is named "trial <id>").
        hyperparameters: `{name: value}` (a Keras Tuner `HyperParameters`
            is read through its `values`).
        parent: the search's `TrackedRun`. Defaults to the innermost
            `search_run` open in this process; pass it explicitly to a trial
            that runs in another process.

    Example:

    ```python
    with trial_run(trial.trial_id, trial.hyperparameters.values, parent=search) as run:
        model.fit(x, y, epochs=5, callbacks=[run.callback()] if run else [])
    ```
    """
    parent = parent if parent is not None else (_SEARCHES[-1] if _SEARCHES else None)
    if parent is None:
        yield None
        return
    if not isinstance(hyperparameters, dict):  # a Keras Tuner HyperParameters
        hyperparameters = hyperparameters.values
    values = dict(hyperparameters or {})
    run = start_run(None, f"trial {trial_id}", values, parent=parent,
                    tags={"kerakit.trial_id": trial_id, "kerakit.kind": "trial"})
    trial = TrialRun(run.tracking_uri, run.run_id, run.experiment_id)
    with _ending(trial, lambda: "pruned" if trial.pruned else "completed"):
        yield trial


def log_model(model, name="model", *, run=None):
    """Saves a Keras model as `<name>.keras` and logs the file as an artifact of `run`.

    Args:
        model: a `keras.Model`.
        name: the artifact's file name without `.keras`. Defaults to "model".
        run: a `TrackedRun`. Defaults to MLflow's active run
            (`mlflow.start_run()`).

    Returns:
        the artifact's path inside the run, e.g. "model.keras".

    Example:

    ```python
    with tracked_run("sqlite:///mlflow.db", "digits") as run:
        log_model(model, "digits", run=run)
    ```
    """
    from kerakit.saving import save_model

    run = run if run is not None else _active_run()
    with tempfile.TemporaryDirectory(prefix="kerakit-mlflow-") as folder:
        path = save_model(model, os.path.join(folder, f"{name}.keras"))
        run.log_artifact(path)
    return f"{name}.keras"


def _active_run():
    mlflow = import_mlflow()
    active = mlflow.active_run()
    if active is None:
        raise ConfigError(
            "There is no MLflow run to log to: pass run= (a kerakit.tracking.TrackedRun) or "
            "start one with mlflow.start_run(). Received: run=None"
        )
    return TrackedRun(mlflow.get_tracking_uri(), active.info.run_id, active.info.experiment_id)


class MlflowCallback(keras.callbacks.Callback):
    """Logs each epoch's logs (`loss`, metrics, `val_*`) to an MLflow run, step = epoch.

    Works wherever Keras callbacks run: `model.fit`, and kerakit's JAX and
    PyTorch engines, which call `on_epoch_end` with the same logs. Values
    that are not finite numbers are left out. No autologging is involved.

    Args:
        run: a `TrackedRun` (from `start_run`, `search_run`, `trial_run`).
            Defaults to MLflow's active run when training begins.
        prefix: put before every metric name (e.g. "fold_0/"). Defaults to "".

    Example:

    ```python
    import mlflow
    mlflow.set_tracking_uri("sqlite:///mlflow.db")
    with mlflow.start_run():
        model.fit(x, y, epochs=5, callbacks=[MlflowCallback()])
    ```
    """

    def __init__(self, run=None, prefix=""):
        super().__init__()
        self.run, self.prefix = run, prefix
        self._target = run

    def on_train_begin(self, logs=None):
        self._target = self.run if self.run is not None else _active_run()

    def on_epoch_end(self, epoch, logs=None):
        if self._target is None:
            self.on_train_begin()
        self._target.log_metrics({f"{self.prefix}{k}": v for k, v in (logs or {}).items()},
                                 step=epoch)
