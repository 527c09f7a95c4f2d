"""`tune`'s option groups: how candidates are scored, what is refit, where trials run.

Each group is a small dataclass with a shortcut on `tune` itself: `cv=5`
is `CrossValidation(folds=5)`, `refit=False` is `Refit(model=False)`, and
no `distribution` runs every trial in this process.
"""

import dataclasses
import os
from pathlib import Path

from kerakit.checks import check_count
from kerakit.errors import ConfigError
from kerakit.tuning.pruning import check_pruner

TUNERS = ("random", "grid", "bayesian", "hyperband", "tpe")
BUDGETED = ("random", "bayesian", "tpe")  # tuners that need max_trials (the others end by themselves)


@dataclasses.dataclass
class CrossValidation:
    """How each candidate is scored: the mean of k folds, or one validation split.

    Args:
        folds: number of stratified folds, or None for one validation split.
            Defaults to None.
        validation_data: `(x_val, y_val)` for the single split (`folds=None`).
        validation_split: fraction of `x` held out (stratified) when `folds`
            and `validation_data` are None; 0 trains without validation.
            Defaults to 0.2.

    Example:

    ```python
    kk.tune(spec, x, y, cv=CrossValidation(validation_data=(x_val, y_val)))
    kk.tune(spec, x, y, cv=5)  # the same as cv=CrossValidation(folds=5)
    ```
    """

    folds: int | None = None
    validation_data: tuple | None = None
    validation_split: float = 0.2


@dataclasses.dataclass
class Refit:
    """What the search returns trained, once the best candidate is known.

    Args:
        model: refit the best candidate on all rows (epochs from its early
            stopping). Defaults to True.
        ensemble: with k folds, also return the best candidate's fold models
            and their averaging ensemble. Defaults to False.

    Example:

    ```python
    result = kk.tune(spec, x, y, cv=5, refit=Refit(ensemble=True))
    result.ensemble.predict(x_test)
    ```
    """

    model: bool = True
    ensemble: bool = False


@dataclasses.dataclass
class Distribution:
    """Where the trials run: this process, a child process, or a distributed search.

    Args:
        isolate: run trials in a child process, replaced every
            `trials_per_process` trials, so memory stays flat. Defaults to False.
        trials_per_process: trials per child process with `isolate`. Defaults to 20.
        worker_timeout: seconds a Keras Tuner worker waits for the chief per
            call. Defaults to 60.
        chief_timeout: seconds a chief waits without hearing from any worker
            before giving up; None waits as long as trials are running.

    Example:

    ```python
    kk.tune(spec, x, y, distribution=Distribution(isolate=True, trials_per_process=10))
    ```
    """

    isolate: bool = False
    trials_per_process: int = 20
    worker_timeout: float = 60.0
    chief_timeout: float | None = None


def _group(name, value, cls, shortcut):
    if value is None:
        return cls()
    if isinstance(value, cls):
        return value
    if shortcut is not None and not isinstance(value, (dict, list, tuple)):
        return shortcut(value)
    raise ConfigError(f"`{name}` must be a kerakit.tuning.{cls.__name__}"
                      f"{' or its shortcut' if shortcut else ''}. Received: {name}={value!r}")


def _folds(value):
    if isinstance(value, bool):
        raise ConfigError(f"`cv` must be a number of folds (>= 2), a CrossValidation or None. "
                          f"Received: cv={value!r}")
    return CrossValidation(folds=value)


def _refit(value):
    if not isinstance(value, bool):
        raise ConfigError(f"`refit` must be True, False or a kerakit.tuning.Refit. Received: refit={value!r}")
    return Refit(model=value)


@dataclasses.dataclass
class Storage:
    """Where a shared search lives, and how fast a dead worker's trial is taken back.

    Args:
        url: an RDB URL (`sqlite:///search.db`, `postgresql://user:pw@host/db`,
            `mysql+pymysql://...`) or the path of a journal file.
        heartbeat_interval: seconds between a running trial's heartbeats.
            Defaults to 10.
        grace_period: seconds without a heartbeat after which a running trial
            is marked failed and run again. Defaults to 4 heartbeats.

    Example:

    ```python
    kk.tune(spec, x, y, storage=Storage("sqlite:///search.db", heartbeat_interval=5))
    kk.tune(spec, x, y, storage="sqlite:///search.db")  # the same, with the defaults
    ```
    """

    url: str
    heartbeat_interval: float = 10.0
    grace_period: float | None = None

    @property
    def grace(self):
        return self.grace_period if self.grace_period is not None else 4 * self.heartbeat_interval

    def check(self):
        if not isinstance(self.url, str) or not self.url.strip():
            raise ConfigError(f"`storage` must be an RDB URL (sqlite:///search.db, "
                              f"postgresql://...) or a journal file path. Received: storage={self.url!r}")
        if not self.heartbeat_interval > 0 or not self.grace > self.heartbeat_interval:
            raise ConfigError(
                f"A storage's heartbeat_interval must be positive and its grace_period longer. "
                f"Received: heartbeat_interval={self.heartbeat_interval!r}, "
                f"grace_period={self.grace_period!r}")

    def open(self):
        """The Optuna storage object: `RDBStorage` for a URL, `JournalStorage` for a path."""
        import time

        from kerakit.tuning.tpe import import_optuna

        optuna = import_optuna()
        if "://" in self.url:
            kwargs = {}
            if self.url.startswith("sqlite"):  # several processes write: wait for the lock
                kwargs["engine_kwargs"] = {"connect_args": {"timeout": 60}}
            for attempt in range(5):
                try:
                    return optuna.storages.RDBStorage(self.url, **kwargs)
                except Exception:  # noqa: BLE001 - workers starting together race to create the schema
                    if attempt == 4:
                        raise
                    time.sleep(0.5 + attempt)
        from optuna.storages.journal import JournalFileBackend

        return optuna.storages.JournalStorage(JournalFileBackend(self.url))


def as_storage(value):
    """`storage=` as a `Storage` (a URL or path is `Storage(url)`), or None."""
    if value is None or isinstance(value, Storage):
        storage = value
    elif isinstance(value, (str, os.PathLike)):
        storage = Storage(str(value))
    else:
        raise ConfigError(f"`storage` must be a URL, a journal file path or a "
                          f"kerakit.tuning.Storage. Received: storage={value!r}")
    if storage is not None:
        storage.check()
    return storage


@dataclasses.dataclass
class TuneOptions:
    """`tune`'s options, grouped and checked, travelling from the plan to the finish (see `tune`)."""

    tuner: str = "random"
    max_trials: object = "auto"
    cross_validation: CrossValidation = dataclasses.field(default_factory=CrossValidation)
    objective: object = "auto"
    epochs: int = 50
    patience: int | None = 5
    batch_size: int = 32
    body: object = "mlp"
    preprocessor: object = None
    directory: object = "kerakit_tuning"
    project_name: str = "search"
    overwrite: bool = False
    seed: int = 0
    refit: Refit = dataclasses.field(default_factory=Refit)
    distribution: Distribution = dataclasses.field(default_factory=Distribution)
    factor: int = 3
    callbacks: list | None = None
    verbose: int = 1
    pruner: str | None = None
    storage: object = None  # a kerakit.tuning.Storage after `check`

    @classmethod
    def from_arguments(cls, *, cv=None, refit=True, distribution=None, **options):
        """Options from `tune`'s keywords, shortcuts expanded (`cv=5`, `refit=False`)."""
        return cls(cross_validation=_group("cv", cv, CrossValidation, _folds),
                   refit=_group("refit", refit, Refit, _refit),
                   distribution=_group("distribution", distribution, Distribution, None), **options)

    @property
    def folds(self):
        return self.cross_validation.folds

    def print(self, *args, **kwargs):
        if self.verbose:
            print(*args, **kwargs)

    def check(self):
        """Refuses a count that would leave the search empty, and a folder that cannot hold it."""
        if self.max_trials == "auto":
            self.max_trials = 10 if self.tuner in BUDGETED else None
        if self.max_trials is None and self.tuner in BUDGETED:
            raise ConfigError(f"tuner={self.tuner!r} needs a budget: pass max_trials=N.")
        if self.max_trials is not None:
            check_count("max_trials", self.max_trials)
        if self.folds is not None:
            check_count("cv", self.folds, minimum=2)
        check_count("epochs", self.epochs)
        check_count("batch_size", self.batch_size)
        if self.patience is not None:
            check_count("patience", self.patience, minimum=0)
        check_count("factor", self.factor, minimum=2)
        check_count("trials_per_process", self.distribution.trials_per_process)
        check_pruner(self.pruner)
        self.storage = as_storage(self.storage)
        if self.storage is not None and self.overwrite:
            raise ConfigError(
                "A search kept in `storage` is shared by its workers: overwrite=True would clear "
                "it under them. Use another project_name (a new study) instead. Received: "
                f"overwrite={self.overwrite!r}"
            )
        if self.pruner is not None and self.distribution.isolate:
            raise ConfigError(
                f"pruner={self.pruner!r} judges each epoch against the other trials in this "
                f"process, so it cannot prune trials run in a child process (isolate=True). Pass "
                f"one of them. Received: pruner={self.pruner!r}, isolate=True"
            )
        self._check_directory()

    def _check_directory(self):
        if not isinstance(self.directory, (str, Path)) or not str(self.directory):
            raise ConfigError(f"`directory` must be a folder path. Received: directory={self.directory!r}")
        if not isinstance(self.project_name, str) or not self.project_name.strip():
            raise ConfigError(f"`project_name` must be a non-empty folder name. "
                              f"Received: project_name={self.project_name!r}")
        project = Path(self.directory) / self.project_name
        # The nearest part of the path that exists must be a folder (a file
        # anywhere on the way would fail deep inside Keras Tuner).
        for path in (project, *project.parents):
            if not path.exists():
                continue
            if not path.is_dir():
                raise ConfigError(
                    f"{path} is a file, not a folder, so the search cannot be kept in {project}. "
                    f"Pass a folder (it is created if missing) as `directory`, or "
                    f"another `project_name`. Received: directory={str(self.directory)!r}"
                )
            break
