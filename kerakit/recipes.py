"""Recipes: find them, turn their config into flags, and run them.

A recipe is a Python file shaped like a keras-io example: a header docstring,
a `Config` dataclass (every field becomes a `--flag`), `data(config)` and
`run(config, data, run)`. This module finds recipes by name (built-in,
folders, installed entry points) or by path, builds their command line, and
runs them into a run directory (see `kerakit.runs`).

Where recipes come from, first match wins:

1. folders given with `--recipes-dir DIR` (repeatable),
2. folders in the environment variable `KERAKIT_RECIPES_PATH`
   (separated like `PATH`),
3. the built-in recipes shipped with kerakit,
4. installed packages that declare an entry point in the group
   `kerakit.recipes` (`name = "package.module"`).

A path to a `.py` file always works. File `my_recipe.py` is recipe `my-recipe`
(`csv_.py` is `csv`: the trailing underscore keeps it from shadowing the
standard library's `csv` module when the file runs as a script).

Nothing here imports TensorFlow at import time: `kerakit recipes` and
`kerakit run NAME --help` stay instant. Recipes keep their heavy imports
inside functions for the same reason.
"""

import argparse
import ast
import contextlib
import dataclasses
import importlib
import importlib.util
import io
import os
import sys
import time
import tokenize
import traceback
import typing
from pathlib import Path

from kerakit import runs as runs_module
from kerakit.errors import KerakitError, RecipeError, RecipeImportError, closest

ENTRY_POINT_GROUP = "kerakit.recipes"
PATH_ENV = "KERAKIT_RECIPES_PATH"
BUILTIN_PACKAGE = "kerakit_recipes"  # the top-level recipes/ folder, as installed
REQUIRED_FIELDS = ("seed", "smoke")
DATA_KEYS = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test", "spec")

# Options every `kerakit run` / recipe script accepts, next to the recipe's own
# flags. One table, so a new common option is one entry; `execute` receives
# their values as keyword arguments (the key is argparse's `dest`).
COMMON_OPTIONS = {
    "--runs-dir": dict(
        metavar="DIR", default=None,
        help=f"where run directories go (default: ${runs_module.RUNS_DIR_ENV} or ./runs)",
    ),
    "--recipes-dir": dict(
        metavar="DIR", action="append", default=None,
        help=f"also look for recipes in DIR (repeatable; also ${PATH_ENV})",
    ),
    "--quiet": dict(action="store_true", help="print nothing but errors"),
    "--strategy": dict(
        metavar="NAME", default=None,
        help="tf.distribute strategy for every model the recipe builds: mirrored (all local "
        "GPUs), multiworker (several machines, from TF_CONFIG) or default",
    ),
    "--json": dict(
        action="store_true", dest="json_output",
        help="print only the result as JSON on stdout (implies --quiet)",
    ),
}


# Finding recipes ------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class RecipeInfo:
    """Where a recipe lives. `source` is "folder", "builtin", "entry point" or "path"."""

    name: str
    source: str
    path: Path | None = None
    entry_point: str | None = None

    @property
    def title(self):
        """The first line of the recipe's docstring, read without importing it."""
        path = self.path or _entry_point_file(self.entry_point)
        return _docstring_title(path) if path else ""


def recipe_name(path):
    """The recipe name of a file: `recipes/active_digits.py` → "active-digits".

    A trailing underscore is dropped (`csv_.py` → "csv"): a file named like a
    standard-library module would shadow it when run as a script, because
    Python puts the script's folder first on `sys.path`.
    """
    return Path(path).stem.rstrip("_").replace("_", "-")


def builtin_dir():
    """The folder of built-in recipes: installed package `kerakit_recipes`, else ./recipes."""
    spec = importlib.util.find_spec(BUILTIN_PACKAGE)
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    return Path(__file__).resolve().parent.parent / "recipes"


def recipe_dirs(recipes_dir=None):
    """Returns `[(folder, source)]` searched for recipes, in precedence order."""
    if isinstance(recipes_dir, (str, os.PathLike)):
        recipes_dir = [recipes_dir]
    found = [(Path(d), "folder (--recipes-dir)") for d in recipes_dir or ()]
    env = os.environ.get(PATH_ENV, "")
    found += [(Path(d), f"folder (${PATH_ENV})") for d in env.split(os.pathsep) if d]
    for folder, source in found:
        if not folder.is_dir():
            raise RecipeError(
                f"Recipe folder {folder} from {source} does not exist or is not a folder. "
                f"Fix the path or remove it."
            )
    found.append((builtin_dir(), "builtin"))
    return found


def _folder_recipes(folder):
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("*.py") if not p.name.startswith(("_", ".")))


def _entry_points():
    from importlib import metadata

    return metadata.entry_points(group=ENTRY_POINT_GROUP)


def available(recipes_dir=None):
    """Returns `{name: RecipeInfo}` for every recipe that can be run by name.

    Args:
        recipes_dir: a folder or a list of folders searched first.

    Example:

    >>> sorted(available())[:3]
    ['breast-cancer', 'csv', 'diabetes']
    """
    found = {}
    for folder, source in recipe_dirs(recipes_dir):
        for path in _folder_recipes(folder):
            found.setdefault(recipe_name(path), RecipeInfo(recipe_name(path), source.split(" ")[0], path))
    for entry in _entry_points():
        found.setdefault(entry.name, RecipeInfo(entry.name, "entry point", entry_point=entry.value))
    return found


def _looks_like_path(text):
    text = str(text)
    return text.endswith(".py") or os.sep in text or (os.altsep or os.sep) in text


def find(name_or_path, recipes_dir=None):
    """Returns the `RecipeInfo` of a recipe name or `.py` path; says "did you mean" if unknown."""
    if _looks_like_path(name_or_path):
        path = Path(name_or_path)
        if not path.is_file():
            raise RecipeError(
                f"Recipe file {path} does not exist. Pass an existing .py file or a recipe "
                f"name (list them with `kerakit recipes`)."
            )
        return RecipeInfo(recipe_name(path), "path", path.resolve())
    known = available(recipes_dir)
    name = str(name_or_path).replace("_", "-")
    if name in known:
        return known[name]
    hint = closest(name, known)
    did_you_mean = f" Did you mean '{hint}'?" if hint else ""
    listed = ", ".join(sorted(known))
    raise RecipeError(
        f"Unknown recipe '{name_or_path}'.{did_you_mean} Known recipes: {listed}. "
        f"A recipe file runs by path (kerakit run path/to/recipe.py); a folder of recipes "
        f"with --recipes-dir DIR or ${PATH_ENV}."
    )


def load(name_or_path, recipes_dir=None):
    """Imports a recipe by name or path and returns its module, checked against the contract.

    A recipe file that raises while importing gives a `RecipeImportError`
    whose message holds the recipe's own traceback.

    Args:
        name_or_path: a recipe name ("digits") or a path to a `.py` file.
        recipes_dir: a folder or list of folders searched first.

    Example:

    >>> recipe = kerakit.recipes.load("digits")
    >>> config = kerakit.recipes.make_config(recipe, smoke=True)
    >>> data = recipe.data(config)
    """
    info = find(name_or_path, recipes_dir)
    if info.entry_point is not None:
        module = _load_entry_point(info)
    else:
        module = _load_file(info.name, info.path)
    module.__kerakit_recipe__ = info
    check(module, info.name)
    return module


def _load_file(name, path):
    module_name = "kerakit_recipe_" + name.replace("-", "_")
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    # Dataclasses look their module up in sys.modules while the class is built.
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as error:
        sys.modules.pop(module_name, None)
        raise _import_error(name, path, error) from error
    return module


def _load_entry_point(info):
    module_name, _, attribute = info.entry_point.partition(":")
    try:
        module = importlib.import_module(module_name.strip())
        for part in filter(None, attribute.strip().split(".")):
            module = getattr(module, part)
    except Exception as error:
        raise _import_error(info.name, _entry_point_file(info.entry_point) or info.entry_point,
                            error) from error
    return module


def _import_error(name, path, error):
    """A `RecipeImportError` whose message is the recipe's traceback, not the loader's."""
    frames = traceback.extract_tb(error.__traceback__)
    # Drop importlib's and kerakit's frames: start where the recipe's code starts.
    ours = {str(Path(__file__).resolve())}
    first = next((i for i, f in enumerate(frames) if "importlib" not in f.filename
                  and str(Path(f.filename).resolve()) not in ours), 0)
    lines = traceback.format_list(frames[first:])
    lines += traceback.format_exception_only(type(error), error)
    return RecipeImportError(
        f"Recipe '{name}' failed to import: {path} raised {type(error).__name__}. This is an "
        f"error in the recipe file, not in kerakit. Its traceback:\n"
        f"Traceback (most recent call last):\n{''.join(lines).rstrip()}"
    )


def _entry_point_file(value):
    if not value:
        return None
    module_name = value.partition(":")[0].strip()
    try:
        spec = importlib.util.find_spec(module_name)
    except (ImportError, ValueError):
        return None
    return Path(spec.origin) if spec is not None and spec.origin not in (None, "built-in") else None


def _docstring_title(path):
    try:
        tree = ast.parse(Path(path).read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
        return ""
    doc = ast.get_docstring(tree) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def check(module, name="recipe"):
    """Checks that a module follows the recipe contract; raises `RecipeError` naming what is missing."""
    problems = []
    config_class = getattr(module, "Config", None)
    if config_class is None or not dataclasses.is_dataclass(config_class):
        problems.append("a `Config` dataclass (@dataclasses.dataclass class Config: ...)")
    else:
        fields = {f.name for f in dataclasses.fields(config_class)}
        missing = [f for f in REQUIRED_FIELDS if f not in fields]
        if missing:
            problems.append(f"Config field(s) {', '.join(missing)} (seed: int = 0, smoke: bool = False)")
        clashes = sorted(fields & {_dest(flag) for flag in COMMON_OPTIONS} | fields & {"json"})
        if clashes:
            problems.append(f"Config fields without the names of common options ({', '.join(clashes)})")
    for function in ("data", "run"):
        if not callable(getattr(module, function, None)):
            problems.append(f"a function `{function}(...)`")
    if problems:
        where = getattr(module, "__file__", None) or getattr(module, "__name__", "?")
        raise RecipeError(
            f"Recipe '{name}' ({where}) does not follow the recipe contract. It needs: "
            + "; ".join(problems) + ". See the recipe template in the README."
        )


def _dest(flag):
    return COMMON_OPTIONS[flag].get("dest") or flag.lstrip("-").replace("-", "_")


# Config → flags ---------------------------------------------------------------


def _field_comments(config_class):
    """Returns `{field: trailing comment}` read from the class's source, if available."""
    try:
        import inspect

        source = inspect.getsource(config_class)
    except (OSError, TypeError):
        return {}
    comments, line_names = {}, {}
    try:
        tree = ast.parse(_dedent(source))
    except SyntaxError:
        return {}
    for node in ast.walk(tree):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            line_names[node.lineno] = node.target.id
    try:
        for tok in tokenize.generate_tokens(io.StringIO(_dedent(source)).readline):
            if tok.type == tokenize.COMMENT and tok.start[0] in line_names:
                comments[line_names[tok.start[0]]] = tok.string.lstrip("#").strip()
    except tokenize.TokenError:
        pass
    return comments


def _dedent(source):
    import textwrap

    return textwrap.dedent(source)


def _optional(hint):
    args = typing.get_args(hint)
    if type(None) in args and len(args) == 2:
        return next(a for a in args if a is not type(None)), True
    return hint, False


def _parse_bool(text):
    table = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
    if str(text).lower() not in table:
        raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
    return table[str(text).lower()]


_SCALARS = {int: int, float: float, str: str, Path: Path, bool: _parse_bool}


def _none_or(convert):
    def parse(text):
        return None if str(text).lower() == "none" else convert(text)

    parse.__name__ = getattr(convert, "__name__", "value")
    return parse


def _flag_options(name, hint, default):
    """argparse options for one config field; raises for a type a flag cannot carry."""
    hint, optional = _optional(hint)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    options = {}
    if hint is bool:
        options["action"] = argparse.BooleanOptionalAction
    elif hint in _SCALARS:
        options["type"] = _SCALARS[hint]
    elif origin is typing.Literal:
        options["type"] = type(args[0])
        options["choices"] = args
    elif origin in (tuple, list) and args and args[0] in _SCALARS:
        options["type"] = _SCALARS[args[0]]
        options["nargs"] = "+"
    else:
        raise RecipeError(
            f"Config field `{name}` has type {hint!r}, which cannot become a flag. Use int, "
            f"float, str, bool, pathlib.Path, typing.Literal[...], or a tuple/list of one of "
            f"those (optionally `| None`)."
        )
    if optional and "type" in options:
        options["type"] = _none_or(options["type"])
    return options


def _default_text(value):
    if isinstance(value, (tuple, list)):
        return " ".join(str(v) for v in value) if value else "(empty)"
    return "none" if value is None else str(value)


def add_config_arguments(parser, config_class):
    """Adds one `--flag` per field of a config dataclass to an argparse parser.

    Underscores become dashes; help is the field's `metadata["help"]` or the
    comment at the end of its line, followed by the default. A bool becomes
    `--flag` / `--no-flag`; a tuple or list takes several values; a
    `Literal` lists its choices; a field without a default is required.
    """
    hints = typing.get_type_hints(config_class)
    comments = _field_comments(config_class)
    group = parser.add_argument_group("recipe options")
    for field in dataclasses.fields(config_class):
        if not field.init:
            continue
        default = field.default
        if default is dataclasses.MISSING and field.default_factory is not dataclasses.MISSING:
            default = field.default_factory()
        options = _flag_options(field.name, hints.get(field.name, str), default)
        text = field.metadata.get("help") or comments.get(field.name, "")
        text = text.replace("%", "%%")
        if default is dataclasses.MISSING:
            options["required"] = True
            text = f"{text} (required)".strip()
        else:
            options["default"] = default
            text = f"{text} (default: {_default_text(default)})".strip().replace("%%(", "%(")
        group.add_argument(f"--{field.name.replace('_', '-')}", dest=field.name, help=text, **options)


class _RecipeParser(argparse.ArgumentParser):
    """An argparse parser whose unknown-flag error lists the valid flags."""

    def parse_args(self, args=None, namespace=None):
        namespace, extras = self.parse_known_args(args, namespace)
        if extras:
            self.error(self._unknown_message(extras))
        return namespace

    def _unknown_message(self, extras):
        valid = sorted({s for a in self._actions for s in a.option_strings if s.startswith("--")})
        flag = next((e for e in extras if e.startswith("-")), extras[0])
        hint = closest(flag.split("=")[0], valid)
        did_you_mean = f" Did you mean '{hint}'?" if hint else ""
        if not flag.startswith("-"):
            return f"unexpected argument '{flag}'. Flags take the form --name value. Valid flags: {', '.join(valid)}."
        return f"unknown flag '{flag}'.{did_you_mean} Valid flags: {', '.join(valid)}."

    def error(self, message):
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


def _description(module):
    doc = (module.__doc__ or "").strip()
    return doc or None


def build_parser(module, name, prog=None):
    """The argument parser of a recipe: its config flags plus `COMMON_OPTIONS`."""
    parser = _RecipeParser(
        prog=prog or f"kerakit run {name}",
        description=_description(module),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        # No prefixes: `--epoch` is a typo to report, not a silent `--epochs`.
        allow_abbrev=False,
    )
    add_config_arguments(parser, module.Config)
    common = parser.add_argument_group("run options")
    for flag, options in COMMON_OPTIONS.items():
        common.add_argument(flag, **options)
    return parser


def parse_args(module, argv, name=None, prog=None):
    """Parses a recipe's command line; returns `(config, options)`.

    `options` holds the common options (`runs_dir`, `quiet`, `json_output`, ...).
    """
    name = name or _module_recipe_name(module)
    args = vars(build_parser(module, name, prog).parse_args(argv))
    common = {_dest(flag): args.pop(_dest(flag)) for flag in COMMON_OPTIONS}
    return _build_config(module, args), common


def _build_config(module, values):
    hints = typing.get_type_hints(module.Config)
    for key, value in values.items():
        origin = typing.get_origin(_optional(hints.get(key, str))[0])
        if origin is tuple and isinstance(value, list):
            values[key] = tuple(value)
    return module.Config(**values)


def make_config(module, **overrides):
    """Returns a recipe's `Config` with defaults and `overrides` (keyword names as in the dataclass).

    Example:

    >>> config = make_config(load("digits"), epochs=5, smoke=True)
    """
    fields = {f.name for f in dataclasses.fields(module.Config)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        hint = closest(unknown[0], fields)
        did_you_mean = f" Did you mean '{hint}'?" if hint else ""
        raise RecipeError(
            f"Config has no field(s) {', '.join(unknown)}.{did_you_mean} "
            f"Fields: {', '.join(sorted(fields))}."
        )
    return module.Config(**overrides)


def _module_recipe_name(module):
    info = getattr(module, "__kerakit_recipe__", None)
    if info is not None:
        return info.name
    return recipe_name(getattr(module, "__file__", None) or module.__name__.rsplit(".", 1)[-1])


# Running ----------------------------------------------------------------------


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
    for key in ("feature_names", "class_names", "target", "source"):
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


def execute(module, config, *, name=None, runs_dir=None, quiet=False, json_output=False,
            recipes_dir=None, out=None, argv=None, strategy=None):
    """Runs a loaded recipe into a new run directory and returns the result dict.

    Seeds everything with `config.seed`, calls `data(config)` and
    `run(config, data, run)`, adds the standard plots the recipe did not save
    (learning curves; confusion matrix and ROC, or predicted-vs-actual and
    residuals, on the test split), and writes `metrics.json` and
    `manifest.json`. Under `quiet` or `json_output` nothing is printed
    (Keras's progress bar included).

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

    Returns:
        A dict: recipe, run_id, run_dir, metrics, key_metric, config.

    Example:

    >>> recipe = load("digits")
    >>> result = execute(recipe, make_config(recipe, smoke=True), runs_dir=tmp_path, quiet=True)
    >>> result["metrics"]["accuracy"]
    """
    name = name or _module_recipe_name(module)
    out = out or sys.stdout
    quiet = quiet or json_output
    if strategy is not None:
        from kerakit.distribute import use_strategy_for_run

        runs_dir, quiet = use_strategy_for_run(strategy, runs_dir, quiet)
    run = runs_module.Run(name, root=runs_dir, quiet=quiet)
    run._out = out
    started = time.time()
    run.write_manifest(
        recipe=name,
        recipe_file=str(getattr(module, "__file__", "") or ""),
        id=run.id,
        status="running",
        started=runs_module._now(),
        config=dataclasses.asdict(config),
        seed=getattr(config, "seed", None),
        argv=list(argv) if argv is not None else None,
        versions=runs_module.versions(),
    )
    run.print(f"[kerakit] {name}: run directory {run.dir}")
    try:
        with _silenced(quiet):
            from kerakit.training import set_seed

            set_seed(int(config.seed))
            data = check_data(module.data(config), name)
            summary, spec = _data_summary(data)
            run.write_manifest(data=summary, spec=spec)
            metrics = _check_metrics(module.run(config, data, run), name)
            skipped = _standard_plots(run, data)
    except BaseException as error:
        status = "interrupted" if isinstance(error, KeyboardInterrupt) else "failed"
        run.write_manifest(status=status, ended=runs_module._now(),
                           duration_s=round(time.time() - started, 3),
                           error=f"{type(error).__name__}: {error}")
        raise
    runs_module.atomic_write_json(run.path(runs_module.METRICS), metrics)
    key = runs_module.key_metric({"metrics": metrics, "spec": spec})
    run.write_manifest(status="completed", ended=runs_module._now(),
                       duration_s=round(time.time() - started, 3), metrics=metrics,
                       key_metric=key[0], plots=list(run.figures),
                       **({"plots_skipped": skipped} if skipped else {}))
    result = {"recipe": name, "run_id": run.id, "run_dir": str(run.dir), "metrics": metrics,
              "key_metric": key[0], "config": dataclasses.asdict(config)}
    if json_output:
        print(runs_module.to_json(result), end="", file=out, flush=True)
    elif not quiet:
        print(format_report(result, skipped), file=out, flush=True)
    return result


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
        run.save_figure("learning_curves", plots.learning_curves(run.history))
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
        lines.append(f"  {key:<{width}}  {text}{marker}")
    for figure, reason in (skipped or {}).items():
        lines.append(f"  (no {figure} plot: {reason})")
    lines.append(f"Run directory: {result['run_dir']}")
    return "\n".join(lines)


def run_command(module_or_name, argv=None, *, prog=None, recipes_dir=None):
    """Parses a command line for a recipe and runs it; returns the exit status.

    Used by `kerakit run` and by recipe scripts' `main()`. kerakit errors are
    printed as one clear message (exit status 1) instead of a traceback.
    """
    try:
        module = module_or_name
        if isinstance(module_or_name, (str, os.PathLike)):
            module = load(module_or_name, recipes_dir)
        name = _module_recipe_name(module)
        config, options = parse_args(module, argv, name=name, prog=prog)
        execute(module, config, name=name, argv=argv, **options)
    except KerakitError as error:
        print(f"kerakit: error: {error}", file=sys.stderr)
        return 1
    return 0


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
        check(module, _module_recipe_name(module))
    except RecipeError as error:
        print(f"kerakit: error: {error}", file=sys.stderr)
        sys.exit(1)
    path = getattr(module, "__file__", "recipe.py")
    sys.exit(run_command(module, sys.argv[1:] if argv is None else argv,
                         prog=f"python {os.path.relpath(path) if path else 'recipe.py'}"))


# Public aliases used by other commands (`kerakit tune RECIPE`, ...).
load_recipe = load
run_recipe = execute
__all__ = ["load", "load_recipe", "available", "find", "check", "make_config", "parse_args",
           "build_parser", "execute", "run_recipe", "run_command", "main", "COMMON_OPTIONS"]


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
        return labels.argmax(axis=1) if labels.ndim == 2 else labels

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
