"""Running a recipe into a run directory, and the helpers recipes use."""

import contextlib
import dataclasses
import math
import os
import sys
import time

from kerakit import runs as runs_module
from kerakit.atomic import atomic_write_json, to_json
from kerakit.errors import ConfigError, KerakitError, RecipeError
from kerakit.metrics_registry import metric_notes
from kerakit.recipes.flags import parse_args, shell_message
from kerakit.recipes.names import module_recipe_name
from kerakit.recipes.registry import check, load, refuse_data_file

DATA_KEYS = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test", "spec")

# Below these, a test split measures little: the report says so, with the interval.
MIN_TEST_ROWS = 30
MIN_TEST_ROWS_PER_CLASS = 5


def _whole_number(minimum, none=False):
    def valid(value):
        if none and value is None:  # the recipe's automatic choice (csv: by row count)
            return True
        return isinstance(value, int) and not isinstance(value, bool) and value >= minimum

    return valid, f"a whole number of at least {minimum}" + (" (or none: automatic)" if none else "")


# Config fields many recipes share, and what they must hold. Checked before
# TensorFlow loads and before a run directory exists.
FIELD_RULES = {
    "epochs": _whole_number(1, none=True),
    "members": _whole_number(1, none=True),
    "batch_size": _whole_number(1, none=True),
    "patience": _whole_number(0),
}


def check_config(module, config):
    """Checks a recipe's config before anything heavy happens; raises a `ConfigError`.

    Runs the shared `FIELD_RULES`, then the recipe's own `check_config(config)`
    when it defines one (a cheap look at its arguments: files exist, columns
    are there). `execute` calls this before TensorFlow is imported and before
    the run directory is created, so a wrong argument costs no start-up time
    and leaves no run behind.
    """
    for field, (valid, expected) in FIELD_RULES.items():
        if hasattr(config, field) and not valid(getattr(config, field)):
            raise ConfigError(
                f"`{field}` must be {expected}. Received: {field}={getattr(config, field)!r}."
            )
    own = getattr(module, "check_config", None)
    if callable(own):
        own(config)


def check_data(data, name="recipe"):
    """Checks the dict a recipe's `data(config)` returned against the contract."""
    if not isinstance(data, dict):
        raise RecipeError(
            f"Recipe '{name}': data(config) must return a dict with keys {', '.join(DATA_KEYS)}. "
            f"Received: {type(data).__name__}."
        )
    missing = [k for k in DATA_KEYS if k not in data]
    if missing:
        raise RecipeError(
            f"Recipe '{name}': data(config) returned a dict without {', '.join(missing)}. "
            f"It needs {', '.join(DATA_KEYS)} (extra keys are fine)."
        )
    from kerakit.spec import ProblemSpec

    if not isinstance(data["spec"], ProblemSpec):
        raise RecipeError(
            f"Recipe '{name}': data['spec'] must be a kerakit.ProblemSpec. "
            f"Received: {type(data['spec']).__name__}."
        )
    return data


def _check_metrics(result, name):
    if not isinstance(result, dict):
        raise RecipeError(
            f"Recipe '{name}': run(config, data, run) must return a dict of test metrics "
            f"(name → float). Received: {type(result).__name__}."
        )
    metrics = {}
    for key, value in result.items():
        try:
            metrics[str(key)] = float(value)
        except (TypeError, ValueError):
            raise RecipeError(
                f"Recipe '{name}': metric {key!r} must be a number. Received: {value!r}."
            ) from None
    return metrics


def _data_summary(data):
    def rows(value):
        if value is None:
            return 0
        if isinstance(value, dict):
            return len(next(iter(value.values()))) if value else 0
        return len(value)

    spec = data["spec"]
    summary = {
        "fingerprint": runs_module.data_fingerprint(data),
        "rows": {split: rows(data.get(f"x_{split}")) for split in ("train", "val", "test")},
    }
    for key in ("feature_names", "class_names", "target", "source", "target_transform"):
        if data.get(key) is not None:
            value = data[key]
            summary[key] = list(value) if isinstance(value, (tuple, list)) else value
    return summary, {k: v for k, v in dataclasses.asdict(spec).items() if v is not None}


@contextlib.contextmanager
def _silenced(quiet):
    if not quiet:
        yield
        return
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        yield


def _manifest_config(module, config):
    """The config for the manifest, less the fields the recipe says its settings ignore.

    A recipe may define `unused_config(config)`, a dict of field name to why it
    has no effect (the csv recipe's `l2` with the table body); those go under
    `config_unused` instead, so the manifest claims no setting that did nothing.
    """
    fields = dataclasses.asdict(config)
    unused = getattr(module, "unused_config", None)
    unused = dict(unused(config)) if unused is not None else {}
    found = {"config": {k: v for k, v in fields.items() if k not in unused}}
    if unused:
        found["config_unused"] = {k: unused[k] for k in sorted(unused) if k in fields}
    return found


def execute(module, config, *, name=None, runs_dir=None, quiet=False, json_output=False,
            recipes_dir=None, out=None, argv=None, strategy=None, tracking_uri=None):
    """Runs a loaded recipe into a new run directory and returns the result dict.

    Seeds everything with `config.seed`, calls `data(config)` and
    `run(config, data, run)`, adds the standard plots the recipe did not save
    (learning curves; confusion matrix and ROC, or predicted-vs-actual and
    residuals, on the test split), and writes `metrics.json` and
    `manifest.json`. Under `quiet` or `json_output` nothing is printed
    (Keras's progress bar included). With a tracking URI the run is also an
    MLflow run (see `kerakit.tracking`): the config as params, the saved
    history's epochs (step = epoch), the test metrics as `test_<name>`, the
    plots under `figures/`, the model and the manifest.

    Args:
        module: a recipe module (see `load`).
        config: its `Config`.
        name: the recipe's name. Defaults to the one `load` recorded.
        runs_dir: root of run directories. Defaults to $KERAKIT_RUNS_DIR or "runs".
        quiet: print nothing. Defaults to False.
        json_output: print only the result as JSON. Defaults to False.
        recipes_dir: accepted for symmetry with the command line; unused here.
        out: the stream for the report. Defaults to sys.stdout.
        argv: the command line, recorded in the manifest.
        strategy: a `tf.distribute` strategy name for every model the recipe
            builds (see `kerakit.distribute.set_default_strategy`). Defaults to None.
        tracking_uri: an MLflow tracking URI to log the run to. Defaults to
            $MLFLOW_TRACKING_URI, else no tracking (`kerakit.tracking.resolve_tracking_uri`).

    Returns:
        A dict: recipe, run_id, run_dir, metrics, key_metric, config.

    Example:

    ```python
    recipe = load("digits")
    result = execute(recipe, make_config(recipe, smoke=True), runs_dir=tmp_path, quiet=True)
    result["metrics"]["accuracy"]
    ```
    """
    from kerakit.backend import import_tensorflow_quietly

    check_config(module, config)
    import_tensorflow_quietly()
    from kerakit import tracking

    tracking_uri = tracking.resolve_tracking_uri(tracking_uri)
    if tracking_uri is not None:
        tracking.import_mlflow()  # a missing extra is refused before the run directory exists
    name = name or module_recipe_name(module)
    out = out or sys.stdout
    quiet = quiet or json_output
    if strategy is not None:
        from kerakit.distribute import is_chief, use_strategy_for_run

        runs_dir, quiet = use_strategy_for_run(strategy, runs_dir, quiet)
        # Only the chief reports: the other workers print nothing, JSON included.
        json_output = json_output and is_chief()
        tracking_uri = tracking_uri if is_chief() else None
    run = runs_module.Run(name, root=runs_dir, quiet=quiet, out=out)
    started = time.time()
    run.write_manifest(
        recipe=name,
        recipe_file=str(getattr(module, "__file__", "") or ""),
        id=run.id,
        status="running",
        started=runs_module.timestamp(),
        **_manifest_config(module, config),
        seed=getattr(config, "seed", None),
        argv=list(argv) if argv is not None else None,
        versions=runs_module.versions(),
    )
    run.print(f"[kerakit] {name}: run directory {run.dir}")
    data_checked = False
    tracked = None
    try:
        with _silenced(quiet):
            from kerakit.training import set_seed

            set_seed(int(config.seed))
            data = check_data(module.data(config), name)
            data_checked = True
            summary, spec = _data_summary(data)
            run.write_manifest(data=summary, spec=spec)
            tracked = tracking.start_run(tracking_uri, f"{name} {run.id}", dataclasses.asdict(config),
                                         tags={"kerakit.recipe": name, "kerakit.run_dir": str(run.dir)})
            metrics = _check_metrics(module.run(config, data, run), name)
            skipped = _standard_plots(run, data)
    except BaseException as error:
        if isinstance(error, KerakitError) and not data_checked and run.discard():
            # The recipe refused its input before training: nothing ran, nothing to list.
            run.print(f"[kerakit] {name}: the input was refused before training; run directory "
                      f"removed")
            raise
        status = "interrupted" if isinstance(error, KeyboardInterrupt) else "failed"
        run.write_manifest(status=status, ended=runs_module.timestamp(),
                           duration_s=round(time.time() - started, 3),
                           error=f"{type(error).__name__}: {error}")
        if tracked is not None:
            tracked.end(status)
        raise
    warnings = measurement_warnings(data["spec"], data["y_test"], metrics)
    atomic_write_json(run.path(runs_module.METRICS), metrics)
    key = runs_module.key_metric({"metrics": metrics, "spec": spec})
    # Which class is positive, how classes are averaged: beside the metrics, whose keys stay.
    notes = metric_notes(data["spec"], metrics)
    run.write_manifest(status="completed", ended=runs_module.timestamp(),
                       duration_s=round(time.time() - started, 3), metrics=metrics,
                       key_metric=key[0], plots=list(run.figures),
                       **({"metric_notes": notes} if notes else {}),
                       **({"plots_skipped": skipped} if skipped else {}),
                       **({"warnings": warnings} if warnings else {}))
    if tracked is not None:
        _log_run(tracked, run, metrics)
    result = {"recipe": name, "run_id": run.id, "run_dir": str(run.dir), "metrics": metrics,
              "key_metric": key[0], "config": dataclasses.asdict(config)}
    if notes:
        result["metric_notes"] = notes
    if warnings:
        result["warnings"] = warnings
    if run.history_units:
        result["history_units"] = run.history_units
    if json_output:
        print(to_json(result), end="", file=out, flush=True)
        for warning in warnings:
            print(f"kerakit: warning: {warning}", file=sys.stderr, flush=True)
    elif not quiet:
        print(format_report(result, skipped), file=out, flush=True)
    return result


def _log_run(tracked, run, metrics):
    """Logs a finished run's epochs, test metrics, plots, model and manifest to its MLflow run."""
    try:
        if run.history:
            tracked.log_history(run.history)
        tracked.log_metrics({f"test_{key}": value for key, value in metrics.items()})
        for png in sorted(run.dir.glob("*.png")):
            tracked.log_artifact(png, "figures")
        for file in (runs_module.MODEL, runs_module.MANIFEST):
            if run.path(file).is_file():
                tracked.log_artifact(run.path(file))
    except BaseException:
        tracked.end("failed")
        raise
    tracked.end("completed")


def wilson_interval(proportion, n, z=1.96):
    """The 95 % Wilson score interval `(low, high)` of a proportion measured on `n` rows."""
    if n <= 0:
        return 0.0, 1.0
    p = min(max(float(proportion), 0.0), 1.0)
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def _class_counts(spec, y):
    import numpy as np

    y = np.asarray(y)
    if spec.task == "multilabel":
        positives = y.reshape(len(y), -1).sum(axis=0)
        return {f"label {j}": int(min(c, len(y) - c)) for j, c in enumerate(positives)}
    index = y.argmax(axis=1) if y.ndim == 2 and y.shape[1] > 1 else y.reshape(-1).astype(np.int64)
    names = list(spec.class_names or [])
    classes = spec.num_classes or (2 if spec.task == "binary" else int(index.max()) + 1)
    counts = np.bincount(index[(index >= 0) & (index < classes)], minlength=classes)
    return {str(names[i]) if i < len(names) else str(i): int(c) for i, c in enumerate(counts)}


def measurement_warnings(spec, y_test, metrics):
    """Warnings for a test split too small to measure, with how wide the uncertainty is.

    A split is too small below `MIN_TEST_ROWS` rows, or (classification) with
    fewer than `MIN_TEST_ROWS_PER_CLASS` rows of some class. The warning gives
    the 95 % Wilson interval of the accuracy measured on that many rows, or
    for regression the relative 95 % interval of an RMSE (±1.96/√(2n)).

    Example:

    >>> from kerakit.spec import ProblemSpec
    >>> measurement_warnings(ProblemSpec(task="binary"), [0, 1, 1, 0, 1], {"accuracy": 0.8})
    ["The test split has only 5 rows and fewer than 5 rows of some classes ('0': 2, '1': 3): too few to measure the model; ..."]
    """
    n = len(y_test) if y_test is not None else 0
    if n == 0:
        return []
    problems = []
    if n < MIN_TEST_ROWS:
        problems.append(f"only {n} rows")
    if spec.is_classification:
        counts = _class_counts(spec, y_test)
        thin = {k: c for k, c in counts.items() if c < MIN_TEST_ROWS_PER_CLASS}
        if thin:
            listed = ", ".join(f"{k!r}: {c}" for k, c in list(thin.items())[:5])
            problems.append(f"fewer than {MIN_TEST_ROWS_PER_CLASS} rows of some classes ({listed})")
    if not problems:
        return []
    fix = ("Use more rows, a larger test fraction, or cross-validation (kerakit.cross_validate) "
           "before trusting or comparing these numbers.")
    if spec.is_classification:
        name = next((k for k in ("accuracy", "subset_accuracy", "binary_accuracy") if k in metrics),
                    None)
        value = metrics.get(name, 0.5) if name else 0.5
        low, high = wilson_interval(value, n)
        measured = (f"{name} {value:.3f} on {n} rows has a 95 % interval of {low:.2f} to "
                    f"{high:.2f} (width {high - low:.2f})" if name else
                    f"a proportion measured on {n} rows has a 95 % interval up to "
                    f"{high - low:.2f} wide")
    else:
        spread = 1.96 / math.sqrt(2 * n)
        measured = (f"an RMSE measured on {n} rows is uncertain by about ±{spread:.0%} "
                    f"(95 % interval), and R² by more")
    return [f"The test split has {' and '.join(problems)}: too few to measure the model; "
            f"{measured}. {fix}"]


# Figures the runner adds when the recipe did not save them itself.
_EVALUATION_FIGURES = {
    "classification": ("confusion_matrix", "roc"),
    "regression": ("predicted_vs_actual", "residuals"),
}


def _standard_plots(run, data):
    """Saves learning curves and evaluation plots the recipe did not save; returns why any were skipped."""
    from kerakit import plots

    skipped = {}
    if run.history and "learning_curves" not in run.figures:
        figure = plots.learning_curves(run.history)
        if run.history_units:  # e.g. a standardized regression target: say so on the axes
            for ax in figure.axes:
                if ax.get_title():
                    ax.set_ylabel(run.history_units.split(" (")[0])
        run.save_figure("learning_curves", figure)
    kind = "classification" if data["spec"].is_classification else "regression"
    wanted = [f for f in _EVALUATION_FIGURES[kind] if f not in run.figures]
    if not wanted:
        return skipped
    if run.model is None:
        return {f: "the recipe saved no model (run.save_model)" for f in wanted}
    try:
        from kerakit.training import predict

        predictions = predict(run.model, data["x_test"])
        figures = plots.evaluation_figures(data["spec"], data["y_test"], predictions)
    except Exception as error:  # a plot must never lose a finished run's metrics
        return {f: f"{type(error).__name__}: {error}" for f in wanted}
    for figure_name in wanted:
        if figure_name in figures:
            run.save_figure(figure_name, figures[figure_name])
    return skipped


def format_report(result, skipped=None):
    """The end-of-run report: a metrics table and where the run directory is."""
    metrics = result["metrics"]
    width = max((len(k) for k in metrics), default=6)
    lines = ["", f"{result['recipe']} — held-out test metrics"]
    for key, value in metrics.items():
        text = str(int(value)) if key == "n" and float(value).is_integer() else f"{value:.4f}"
        marker = "  ← key metric" if key == result.get("key_metric") else ""
        note = (result.get("metric_notes") or {}).get(key)
        note = f"  ({note})" if note else ""
        lines.append(f"  {key:<{width}}  {text}{note}{marker}")
    for figure, reason in (skipped or {}).items():
        lines.append(f"  (no {figure} plot: {reason})")
    if result.get("history_units"):
        lines.append(f"  (learning curves and history.csv are in {result['history_units']}; "
                     f"the metrics above are in the target's own units)")
    for warning in result.get("warnings") or ():
        lines.append(f"Warning: {warning}")
    lines.append(f"Run directory: {result['run_dir']}")
    return "\n".join(lines)


def run_command(module_or_name, argv=None, *, prog=None, recipes_dir=None):
    """Parses a command line for a recipe and runs it; returns `execute`'s result.

    Used by `kerakit run` and by recipe scripts' `main()`, which print a
    kerakit error as one message. The error's message spells Python arguments
    as the recipe's flags (`--target COLUMN`, not `target='COLUMN'`).
    """
    module = None
    try:
        module = module_or_name
        if isinstance(module_or_name, (str, os.PathLike)):
            module = None
            refuse_data_file(module_or_name, argv or ())
            module = load(module_or_name, recipes_dir)
        name = module_recipe_name(module)
        config, options = parse_args(module, argv, name=name, prog=prog)
        return execute(module, config, name=name, argv=argv, **options)
    except KerakitError as error:
        # Whoever prints it (kerakit.cli, a script's main) shows the command line's spelling.
        error.args = (cli_message(error, module), *error.args[1:])
        raise


def cli_message(error, module=None):
    """An error's message with Python arguments spelled as the recipe's flags (see `shell_message`)."""
    config_class = getattr(module, "Config", None)
    if config_class is None or not dataclasses.is_dataclass(config_class):
        return str(error)
    try:
        return shell_message(str(error), config_class)
    except Exception:  # a message must always reach the user, rewritten or not
        return str(error)


def main(argv=None):
    """Runs the calling recipe script from its command line (`if __name__ == "__main__": main()`).

    Example:

    ```python
    if __name__ == "__main__":
        from kerakit.recipes import main
        main()
    ```
    """
    module = sys.modules["__main__"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        check(module, module_recipe_name(module))
    except RecipeError as error:
        print(f"kerakit: error: {error}", file=sys.stderr)
        sys.exit(1)
    path = getattr(module, "__file__", "recipe.py")
    try:
        run_command(module, sys.argv[1:] if argv is None else argv,
                    prog=f"python {os.path.relpath(path) if path else 'recipe.py'}")
    except KerakitError as error:  # a recipe script is its own command line, beside kerakit.cli
        print(f"kerakit: error: {error}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("kerakit: interrupted (the run's manifest says so; its files are whole)",
              file=sys.stderr)
        sys.exit(130)
    sys.exit(0)



# Helpers for recipe authors ---------------------------------------------------


def split_data(x, y, *, test_size=0.2, val_size=0.2, seed=0, stratify=True, limit=None):
    """Splits arrays into the train / validation / test dict a recipe's `data()` returns.

    The test split is cut first, then the validation split from what remains,
    both deterministic by `seed` and stratified by class when `stratify` is
    true (class indices are taken from one-hot/soft rows by argmax).

    Args:
        x, y: features and labels (NumPy arrays or anything indexable by rows).
        test_size: fraction of all rows for the test split. Defaults to 0.2.
        val_size: fraction of all rows for the validation split. Defaults to 0.2.
        seed: seed of the shuffles. Defaults to 0.
        stratify: keep class proportions in every split. Defaults to True.
        limit: keep only this many rows (a stratified sample) first, e.g. for
            `--smoke`. Defaults to all rows.

    Returns:
        A dict with x_train, y_train, x_val, y_val, x_test, y_test.

    Example:

    >>> x, y = np.zeros((40, 3)), np.arange(40) % 2
    >>> splits = split_data(x, y, test_size=0.25, seed=0)
    >>> sorted(splits)
    ['x_test', 'x_train', 'x_val', 'y_test', 'y_train', 'y_val']
    """
    import numpy as np
    from sklearn.model_selection import train_test_split

    def strata(labels):
        if not stratify:
            return None
        labels = np.asarray(labels)
        if labels.ndim == 2:
            return labels.argmax(axis=1)
        if labels.dtype.kind == "f" and not np.all(np.mod(labels, 1) == 0):
            # Real-valued targets have no classes to keep in proportion.
            return None
        return labels

    if not (0 < test_size < 1 and 0 < val_size < 1 and test_size + val_size < 1):
        raise RecipeError(
            f"test_size and val_size must be fractions in (0, 1) that sum to less than 1. "
            f"Received: test_size={test_size}, val_size={val_size}."
        )
    if limit is not None and limit < len(y):
        x, _, y, _ = train_test_split(x, y, train_size=limit, random_state=seed, stratify=strata(y))
    x_rest, x_test, y_rest, y_test = train_test_split(
        x, y, test_size=test_size, random_state=seed, stratify=strata(y))
    x_train, x_val, y_train, y_val = train_test_split(
        x_rest, y_rest, test_size=val_size / (1 - test_size), random_state=seed,
        stratify=strata(y_rest))
    return {"x_train": x_train, "y_train": y_train, "x_val": x_val, "y_val": y_val,
            "x_test": x_test, "y_test": y_test}

