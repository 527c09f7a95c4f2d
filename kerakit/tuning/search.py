"""`tune`: a Keras Tuner search built from the problem spec, with a k-fold objective.

Keras Tuner's oracles choose the candidates; kerakit's tuner runs each one:
on k stratified folds (or one validation split), each with early stopping,
on input pipelines rebuilt from the seed for each trial (so a resumed search
repeats an uninterrupted one), clearing the Keras session between models
without the full garbage collection Keras Tuner adds.
"""

import dataclasses
import hashlib
import pickle
from pathlib import Path

import numpy as np

from kerakit.atomic import atomic_write_json
from kerakit.crossval import FoldRunner, check_objective, logged_names, make_folds, objective_direction
from kerakit.errors import ConfigError, unknown_name
from kerakit.spec import ProblemSpec, class_indices, validate_labels
from kerakit.tuning import distributed
from kerakit.tuning.finish import finish_search
from kerakit.tuning.options import TuneOptions
from kerakit.tuning.pruning import SearchPruner
from kerakit.tuning.results import finished_curves, read_json
from kerakit.tuning.spaces import BODY_SPACES, DEFAULT_GRID, DEFAULT_SPACE, SearchSpace
from kerakit.tuning.trials import SpecBuilder, TrialPool, TrialRunner
from kerakit.tuning.tuner import tuner_class

SEARCH_FILE = "kerakit_search.json"


# tune -----------------------------------------------------------------------


def _holdout(spec, y, validation_split, seed):
    """A stratified (classification) random split of x/y into train and validation rows."""
    from sklearn.model_selection import train_test_split

    if not 0 < validation_split < 1:
        raise ConfigError(f"`validation_split` must be in (0, 1). Received: {validation_split!r}")
    stratify = None
    if spec.task in ("binary", "multiclass"):
        classes = np.asarray(class_indices(spec, y))
        if np.unique(classes, return_counts=True)[1].min() >= 2:
            stratify = classes
    idx_train, idx_val = train_test_split(np.arange(len(y)), test_size=validation_split,
                                          random_state=seed, stratify=stratify)
    return idx_train, idx_val


def _digest(*parts):
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.tobytes() if hasattr(part, "tobytes") else repr(part).encode())
    return digest.hexdigest()[:16]


def _check_same_search(project_dir, fingerprint, overwrite):
    """Refuses to resume a search over other data or settings in the same folder."""
    path = Path(project_dir) / SEARCH_FILE
    if not overwrite and path.exists():
        stored = read_json(path)
        changed = [k for k, v in fingerprint.items() if stored.get(k) not in (None, v)]
        if changed:
            raise ConfigError(
                f"The tuning folder {project_dir} holds a search with different "
                f"{', '.join(changed)}; resuming would mix two searches. Pass overwrite=True to "
                f"start over, or another directory / project_name."
            )


def _resolve_space(space, tuner, body="mlp"):
    import keras_tuner

    if isinstance(space, keras_tuner.HyperModel) or (callable(space) and not isinstance(space, dict)):
        return None
    if space is None and isinstance(body, str) and body in BODY_SPACES:
        space = BODY_SPACES[body][1 if tuner == "grid" else 0]
    if space is None:
        space = DEFAULT_GRID if tuner == "grid" else DEFAULT_SPACE
    space = space if isinstance(space, SearchSpace) else SearchSpace(space)
    space.check_for(tuner)
    return space


def _probe_metric_names(build, runner):
    """Logged metric names of a user's model: one eager test batch, nothing traced."""
    import keras
    import keras_tuner

    keras.backend.clear_session(free_memory=False)
    model = build(keras_tuner.HyperParameters())
    if not isinstance(model, keras.Model):
        raise ConfigError(
            f"The build function must return a compiled keras.Model. Received: {type(model).__name__}."
        )
    model.run_eagerly = True
    logs = model.test_on_batch(runner.x[:2], runner.y[:2], return_dict=True)
    return [name for name in logs if name != "loss"]


def _plan(tuner_name, oracle, space, runner, max_trials, done):
    from kerakit.tuning.oracles import hyperband_trials

    folds = len(runner.splits)
    unit = f"{folds} folds" if runner.cross_validated else "1 validation split"
    prefix = ""
    if tuner_name == "grid":
        total = space.size if space is not None else len(oracle.enumerate_space())
        count = min(total, max_trials) if max_trials else total
    elif tuner_name == "hyperband":
        count = hyperband_trials(oracle)
        count = min(count, max_trials) if max_trials else count
        prefix = "up to "
    else:
        count = max_trials
    text = f"{prefix}{count} candidates × {unit} = {prefix}{count * folds} fits"
    if done:
        left = max(count - done, 0)
        text += f" (resuming: {done} done, {left * folds} fits left)"
    return text


def tune(spec, x, y, space=None, *, tuner="random", max_trials="auto", cv=None, objective="auto",
         epochs=50, patience=5, batch_size=32, body="mlp", preprocessor=None,
         directory="kerakit_tuning", project_name="search", overwrite=False, seed=0, refit=True,
         distribution=None, pruner=None, factor=3, callbacks=None, storage=None, tracking_uri=None,
         verbose=1):
    """Searches hyperparameters with Keras Tuner, scoring each candidate by k-fold cross-validation.

    Keras Tuner's oracle proposes candidates; each is trained on `cv`
    stratified folds (or one validation split) with early stopping, and
    scored by the mean of its folds. The best candidate is then refit on all
    rows. The search lives in `directory/project_name`: killed at any moment,
    it resumes there (`overwrite=False`) without re-running finished trials.
    Before anything trains, the plan is printed ("15 candidates × 3 folds =
    45 fits") and the objective, space names and values are checked.

    With Keras Tuner's variables set (`KERASTUNER_TUNER_ID`, `_ORACLE_IP`,
    `_ORACLE_PORT`), the same call is the chief or a worker of a distributed
    search (see `kerakit.tuning.distributed`).

    Args:
        spec: the `ProblemSpec`.
        x, y: training features and labels (the test split stays out).
        space: a dict `{name: values}` (a list is a choice, `(low, high)` or
            `(low, high, "log")` a range, a scipy distribution is sampled), a
            list of dicts (a union of grids, `tuner="grid"`), a `build(hp)`
            function returning a compiled model, or a `keras_tuner.HyperModel`.
            Names are `build_model` options (units, dropout, l1, l2,
            batchnorm, optimizer, learning_rate), names the body reads
            (depth, units_0, ...) or fit options (batch_size, epochs).
            Defaults to `DEFAULT_SPACE` (`DEFAULT_GRID` for grid search); for
            the "table", "cnn" and "sequence" bodies, their `BODY_SPACES` entry.
        tuner: "random", "grid", "bayesian", "hyperband" or "tpe" (Optuna's TPE,
            `pip install "kerakit[optuna]"`). Defaults to "random".
        max_trials: most candidates to try; "auto" is 10 for "random", "tpe" and
            "bayesian", every candidate for "grid" and the brackets' size for
            "hyperband". Defaults to "auto".
        cv: how candidates are scored: a number of folds, None for one
            validation split (20 % of `x`, stratified), or a
            `kerakit.tuning.CrossValidation` (`validation_data=(x_val,
            y_val)`, `validation_split`). Defaults to None.
        objective: a logged metric ("val_loss", "val_auc", ...), a
            `keras_tuner.Objective`, or "auto" (`spec.monitor`).
        epochs: most epochs per fit (Hyperband's `max_epochs`). Defaults to 50.
        patience: early-stopping patience per fit; None disables. Defaults to 5.
        batch_size: batch size when the space has no `batch_size`. Defaults to 32.
        body: the body of spec-built models: "mlp", "table" (the TabM-style
            ensemble of `fit_table`'s default: members, depth, units_i,
            dropout, trained with AdamW), "cnn", "sequence" or a registered
            name. Defaults to "mlp".
        preprocessor: optional zero-argument callable returning a layer applied
            to the inputs of every model, e.g.
            `functools.partial(keras.layers.Normalization, mean=m, variance=v)`.
        directory, project_name: where the search is kept.
        overwrite: start over instead of resuming. Defaults to False.
        seed: seeds folds, splits, weights, shuffles and the oracle. Defaults to 0.
        refit: refit the best candidate on all rows (True / False), or a
            `kerakit.tuning.Refit` (`ensemble=True` also returns, with `cv`,
            the best candidate's fold models and their averaging ensemble).
            Defaults to True.
        distribution: where trials run, a `kerakit.tuning.Distribution`
            (`isolate=True`: in a child process renewed every
            `trials_per_process` trials; the chief's and workers' timeouts).
            Defaults to None (this process).
        pruner: stop trials whose objective trails the others' epoch by
            epoch: "median", "halving" or "hyperband" (Optuna's pruners, `pip
            install "kerakit[optuna]"`), or None. Each trial reports its
            objective at every epoch (under `cv`, the mean over the folds
            trained so far); a pruned trial ends at once and is listed with
            status "PRUNED", never chosen as the best. Works with every
            tuner; not with `Distribution(isolate=True)`. Defaults to None.
        factor: Hyperband's reduction factor. Defaults to 3.
        callbacks: extra Keras callbacks for every fit (copied per fit).
        storage: share the search between any number of worker processes
            running this same call, through Optuna's storage: an RDB URL
            (`sqlite:///search.db` on one machine, `postgresql://...` for
            many), a journal file path, or a `kerakit.tuning.Storage`
            (heartbeat settings). The workers split `max_trials`, never run
            a trial twice, take back a killed worker's trial, and each
            returns the whole trials table (see `kerakit.tuning.storage`).
            Defaults to None (the search lives in `directory` alone).
        tracking_uri: log the search to MLflow: a parent run, one child run
            per trial (values, per-epoch metrics, status) and the best model
            (`pip install "kerakit[mlflow]"`). Defaults to None, which reads
            $MLFLOW_TRACKING_URI (unset: no tracking).
        verbose: 1 prints the plan and Keras Tuner's trial reports; 0 is silent.

    Returns:
        A `TuneResult`.

    Example:

    ```python
    result = kk.tune(spec, x, y, space=[{"units": [5, 8, 10], "dropout": [.4, .6, .8]},
                                        {"units": [10, 15], "dropout": [.6, .8, .9]}],
                     tuner="grid", cv=3, directory="runs/tune")
    # prints "15 candidates × 3 folds = 45 fits"
    result.best_hyperparameters, result.trials, result.oof_predictions.shape
    ```
    """
    options = TuneOptions.from_arguments(
        tuner=tuner, max_trials=max_trials, cv=cv, objective=objective, epochs=epochs,
        patience=patience, batch_size=batch_size, body=body, preprocessor=preprocessor,
        directory=directory, project_name=project_name, overwrite=overwrite, seed=seed, refit=refit,
        distribution=distribution, pruner=pruner, factor=factor, callbacks=callbacks, verbose=verbose,
        storage=storage)
    plan = plan_search(spec, x, y, space, options)
    from kerakit.tracking import search_run

    config = {"tuner": options.tuner, "max_trials": options.max_trials, "objective": plan.objective,
              "direction": plan.direction, "cv": options.folds, "epochs": options.epochs,
              "pruner": options.pruner, "seed": options.seed,
              "storage": None if options.storage is None else options.storage.url}
    with search_run(tracking_uri, f"tune {options.project_name}", config) as search:
        tuner_obj = run_search(plan, tracking=search)
        result = finish_search(plan, tuner_obj)
        if search is not None and result.best_trial_id is not None:
            search.log_metrics({f"best_{plan.objective}": result.best_score})
            search.set_tags({"kerakit.best_trial": result.best_trial_id})
            if result.best_model is not None:
                search.log_model(result.best_model, "best_model")
    return result


@dataclasses.dataclass
class SearchPlan:
    """Everything `run_search` needs, checked before anything trains (`plan_search`)."""

    spec: object
    options: TuneOptions
    space: object  # what the caller passed (a dict, a build(hp) function, a HyperModel)
    space_obj: object  # kerakit's SearchSpace, or None for a build function / HyperModel
    runner: FoldRunner
    refit_data: tuple
    build: object
    objective: str
    direction: str
    settings: dict
    trial_runner: TrialRunner
    pool: object
    pruner: object  # a SearchPruner, or None
    oracle: object
    fingerprint: dict
    role: str

    @property
    def project_dir(self):
        return Path(self.options.directory) / self.options.project_name


# Step 1: plan -------------------------------------------------------------------


def plan_search(spec, x, y, space, options):
    """Checks every option, the data, the space and the objective; builds the oracle.

    Nothing trains here, and a bad count is refused before TensorFlow and
    Keras Tuner load.
    """
    if not isinstance(spec, ProblemSpec):
        raise ConfigError(f"`spec` must be a kerakit.ProblemSpec (see kerakit.infer_spec). Received: {spec!r}")
    options.check()

    from kerakit.tuning.oracles import ORACLES

    if options.tuner not in ORACLES:
        raise unknown_name("tuner", options.tuner, ORACLES)
    runner, refit_data = _fold_runner(spec, x, y, options)
    space_obj, build, metric_names, hyperparameters, describe = _candidates(spec, space, runner, options)
    objective, direction = _objective(spec, options.objective, metric_names, runner)
    settings = {"objective": objective, "direction": direction, "epochs": int(options.epochs),
                "patience": options.patience, "batch_size": int(options.batch_size),
                "tuner": options.tuner, "save_weights": options.tuner == "hyperband"
                or bool(options.refit.ensemble and options.folds), "callbacks": list(options.callbacks or [])}
    trial_runner = TrialRunner(runner, build, space_obj, settings)
    fingerprint = {
        "spec": repr(spec), "data": _digest(runner.x, runner.y, runner.x_val, runner.y_val),
        "space": describe, "settings": repr({k: v for k, v in settings.items() if k != "callbacks"})
        + f" cv={options.folds} seed={options.seed}" + (f" pruner={options.pruner}" if options.pruner else "")}
    oracle = _oracle(objective, direction, space_obj, hyperparameters, options)
    max_steps = int(options.epochs) * len(runner.splits)
    pruner = None if options.pruner is None else SearchPruner(options.pruner, direction, objective, max_steps)
    role = distributed.role()
    if options.storage is not None:
        oracle, pruner = _storage_oracle(oracle, objective, direction, space_obj, hyperparameters,
                                         options, fingerprint, max_steps, role)
    return SearchPlan(
        spec=spec, options=options, space=space, space_obj=space_obj, runner=runner,
        refit_data=refit_data, build=build, objective=objective, direction=direction,
        settings=settings, trial_runner=trial_runner,
        pool=_trial_pool(spec, runner, build, space_obj, settings, options),
        pruner=pruner, oracle=oracle, fingerprint=fingerprint, role=role)


def _storage_oracle(oracle, objective, direction, space_obj, hyperparameters, options, fingerprint,
                    max_steps, role):
    """The `StorageOracle` (and its pruning) of a search kept in Optuna's storage."""
    import keras_tuner

    from kerakit.tuning.oracles import hyperband_trials
    from kerakit.tuning.pruning import optuna_pruner
    from kerakit.tuning.storage import StorageOracle, StoragePruning

    if role != "local":
        raise ConfigError(
            "A search kept in `storage` is shared through the database; it does not run under "
            "Keras Tuner's chief/worker mode. Unset KERASTUNER_TUNER_ID, KERASTUNER_ORACLE_IP "
            f"and KERASTUNER_ORACLE_PORT, or pass storage=None. Received: role={role!r}")
    tuner, candidates = options.tuner, None
    if tuner == "grid":
        if space_obj is None:
            raise ConfigError("A grid search kept in `storage` needs a search-space dict (or list "
                              "of dicts), not a build(hp) function. Received: a build function")
        candidates = space_obj.candidates()
        budget = min(len(candidates), options.max_trials or len(candidates))
    elif tuner == "hyperband":
        budget = options.max_trials or hyperband_trials(oracle)
    else:
        budget = options.max_trials
    name = options.pruner or ("hyperband" if tuner == "hyperband" else None)
    storage_oracle = StorageOracle(
        options.storage, f"{options.project_name}-{_digest(sorted(fingerprint.items()))}", tuner,
        budget, candidates=candidates, pruner=None if name is None else optuna_pruner(name, max_steps),
        objective=keras_tuner.Objective(objective, direction), max_trials=budget,
        seed=options.seed + 1, hyperparameters=hyperparameters, tune_new_entries=hyperparameters is None)
    if hyperparameters is not None:
        storage_oracle.declared_names = set(hyperparameters.values) | {"grid"}
    pruning = None if name is None else StoragePruning(storage_oracle, objective)
    return storage_oracle, pruning


def _fold_runner(spec, x, y, options):
    """Data, folds and input pipelines, validated and built once; and the rows a refit uses."""
    seed, validation = options.seed, options.cross_validation
    y = validate_labels(spec, y)
    if validation.folds is not None:
        runner = FoldRunner(spec, x, y, make_folds(spec, y, validation.folds, seed=seed), seed=seed)
        return runner, (runner.x, runner.y)
    if validation.validation_data is not None:
        runner = FoldRunner(spec, x, y, validation_data=validation.validation_data, seed=seed)
        return runner, (runner.x, runner.y)
    if validation.validation_split:
        full = FoldRunner(spec, x, y, seed=seed)
        idx_train, idx_val = _holdout(spec, full.y, validation.validation_split, seed)
        runner = FoldRunner(spec, full.x[idx_train], full.y[idx_train],
                            validation_data=(full.x[idx_val], full.y[idx_val]), seed=seed)
        return runner, (full.x, full.y)
    runner = FoldRunner(spec, x, y, seed=seed)
    return runner, (runner.x, runner.y)


def _candidates(spec, space, runner, options):
    """What is searched and how each candidate is built.

    Returns `(space_obj, build, metric_names, hyperparameters, describe)`.
    """
    import keras_tuner

    space_obj = _resolve_space(space, options.tuner, options.body)
    if space_obj is not None:
        build = SpecBuilder(spec, runner.input_shape, options.body, space_obj, options.tuner,
                            options.preprocessor)
        build.check()
        return space_obj, build, spec.metrics, space_obj.hyperparameters(options.tuner), space_obj.describe()
    if options.preprocessor is not None:
        raise ConfigError(
            "`preprocessor` applies to kerakit's own search spaces; a build(hp) function or "
            "HyperModel builds its whole model, so put the preprocessing layer inside it."
        )
    build = space.build if isinstance(space, keras_tuner.HyperModel) else space
    describe = f"{getattr(space, '__module__', '')}.{getattr(space, '__qualname__', type(space).__name__)}"
    return None, build, _probe_metric_names(build, runner), None, describe


def _objective(spec, objective, metric_names, runner):
    """The objective's name and direction, checked against what the models will log."""
    import keras_tuner

    if isinstance(objective, keras_tuner.Objective):
        name, direction = objective.name, objective.direction
    else:
        name = (spec.monitor if runner.has_validation else "loss") if objective == "auto" else objective
        if not isinstance(name, str):
            raise ConfigError(f"`objective` must be a metric name, a keras_tuner.Objective or 'auto'. "
                              f"Received: {objective!r}")
        direction = None
    check_objective(name, logged_names(metric_names, runner.has_validation), runner.has_validation)
    return name, direction or objective_direction(name)


def _trial_pool(spec, runner, build, space_obj, settings, options):
    """With `isolate=True`, the child processes that run the trials; else None."""
    if not options.distribution.isolate:
        return None
    try:
        pickle.dumps((build, options.callbacks))
    except Exception as error:  # noqa: BLE001 - any pickling failure means the same fix
        raise ConfigError(
            f"isolate=True runs trials in a child process, so the build function and callbacks "
            f"must be picklable (defined at module level, not a lambda or closure): {error}"
        ) from None
    return TrialPool({"spec": spec, "x": runner.x, "y": runner.y,
                      "splits": runner.splits if runner.cross_validated else None,
                      "validation_data": None if runner.cross_validated or runner.x_val is None
                      else (runner.x_val, runner.y_val),
                      "seed": options.seed, "build": build, "space": space_obj, "settings": settings},
                     options.distribution.trials_per_process)


def _oracle(objective, direction, space_obj, hyperparameters, options):
    import keras_tuner

    from kerakit.tuning.oracles import ORACLES

    tuner = options.tuner
    candidates = space_obj.candidates() if (space_obj is not None and tuner == "grid") else None
    # Keras Tuner reads seed=0 as "no seed"; shift it so 0 is a seed too.
    oracle = ORACLES[tuner](objective=keras_tuner.Objective(objective, direction),
                            max_trials=options.max_trials, seed=options.seed + 1,
                            hyperparameters=hyperparameters, tune_new_entries=hyperparameters is None,
                            max_epochs=int(options.epochs), factor=options.factor, candidates=candidates)
    if hyperparameters is not None:
        oracle.declared_names = set(hyperparameters.values) | {"grid"}
    return oracle


# Step 2: search -----------------------------------------------------------------


def run_search(plan, tracking=None):
    """Creates (or resumes) the Keras Tuner search in its folder, prints the plan and runs it.

    With `tracking` (the search's MLflow `TrackedRun`), each trial is logged as its child run.
    """
    options = plan.options
    overwrite = options.overwrite
    if plan.role == "worker":
        overwrite = False  # only the chief may clear the shared folder
    else:
        _check_same_search(plan.project_dir, plan.fingerprint, overwrite)
    tuner_obj = tuner_class()(
        plan.oracle, plan.trial_runner, pool=plan.pool,
        worker_timeout=options.distribution.worker_timeout,
        chief_timeout=options.distribution.chief_timeout, print_fn=options.print, pruner=plan.pruner,
        tracking=tracking,
        hypermodel=None if plan.space_obj is not None else plan.space,
        directory=str(options.directory), project_name=options.project_name, overwrite=overwrite)
    if plan.role != "worker":  # after the tuner: overwrite=True has cleared the folder by now
        atomic_write_json(plan.project_dir / SEARCH_FILE, plan.fingerprint)
    if plan.options.storage is not None:
        return _run_shared(plan, tuner_obj)
    if plan.pruner is not None and plan.role == "local":  # judged against the trials already run
        plan.pruner.load(finished_curves(tuner_obj))
    done = 0 if plan.role == "worker" else sum(
        t.status in ("COMPLETED", "FAILED") for t in tuner_obj.oracle.trials.values())
    tuner_obj.plan_text = _plan(options.tuner, tuner_obj.oracle if plan.role != "worker" else plan.oracle,
                                plan.space_obj, plan.runner, options.max_trials, done)
    pruning = f", {options.pruner} pruner" if options.pruner else ""
    options.print(f"Tuning ({options.tuner}, objective {plan.objective}, {plan.direction}{pruning}): "
                  f"{tuner_obj.plan_text}")
    try:
        tuner_obj.search(verbose=options.verbose)
    finally:
        if plan.pool is not None:
            plan.pool.close()
    return tuner_obj


def _run_shared(plan, tuner_obj):
    """Runs this worker's share of a search kept in Optuna's storage; reads back every trial."""
    options = plan.options
    done, budget = plan.oracle.count()
    folds = len(plan.runner.splits)
    unit = f"{folds} folds" if plan.runner.cross_validated else "1 validation split"
    tuner_obj.plan_text = (f"{budget} candidates × {unit} = {budget * folds} fits, shared through "
                           f"{options.storage.url} (study {plan.oracle.study_name}, {done} done)")
    pruning = f", {plan.oracle.optuna_pruner.__class__.__name__}" if plan.oracle.optuna_pruner else ""
    options.print(f"Tuning ({options.tuner}, objective {plan.objective}, {plan.direction}{pruning}): "
                  f"{tuner_obj.plan_text}")
    tuner_obj.search(verbose=options.verbose)
    plan.oracle.sync()
    return tuner_obj


