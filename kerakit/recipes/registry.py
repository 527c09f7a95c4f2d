"""Finding and loading recipes: built-in, folders, entry points and paths."""

import ast
import dataclasses
import importlib
import importlib.util
import os
import sys
import traceback
from pathlib import Path

from kerakit.errors import RecipeError, RecipeImportError, closest
from kerakit.recipes.flags import COMMON_OPTIONS, PATH_ENV, dest_of
from kerakit.recipes.names import recipe_name

ENTRY_POINT_GROUP = "kerakit.recipes"
BUILTIN_PACKAGE = "kerakit_recipes"  # the top-level recipes/ folder, as installed
REQUIRED_FIELDS = ("seed", "smoke")

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


def builtin_dir():
    """The folder of built-in recipes: installed package `kerakit_recipes`, else ./recipes."""
    spec = importlib.util.find_spec(BUILTIN_PACKAGE)
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    return Path(__file__).resolve().parents[2] / "recipes"  # the checkout: kerakit/recipes/registry.py


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
    ['active-digits', 'active-sine', 'breast-cancer']
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


# Files people pass to `kerakit run` hoping to train on them.
DATA_SUFFIXES = frozenset({".csv", ".tsv", ".txt", ".data", ".dat", ".json", ".jsonl",
                           ".parquet", ".xls", ".xlsx", ".gz", ".zip"})


def data_file_command(path, argv=()):
    """The `kerakit run csv` command line that trains on a data file given as a recipe."""
    import shlex

    rest = list(argv)
    target = "COLUMN"
    for i, arg in enumerate(rest):
        if arg == "--target" and i + 1 < len(rest):
            target = rest.pop(i + 1)
            rest.pop(i)
            break
        if arg.startswith("--target="):
            target = rest.pop(i).split("=", 1)[1]
            break
    words = ["kerakit", "run", "csv", "--path", str(path), "--target", target, *rest]
    return " ".join(w if w == "COLUMN" else shlex.quote(w) for w in words)


def refuse_data_file(name_or_path, argv=()):
    """Raises a `RecipeError` naming `kerakit run csv ...` when `name_or_path` is a data file.

    `argv`, the rest of the command line, is carried into the suggested
    command (`--target y` included), so it can be pasted as it is.
    """
    path = Path(str(name_or_path))
    suffix = path.suffix.lower()
    if not suffix or suffix == ".py" or (suffix not in DATA_SUFFIXES and not path.is_file()):
        return
    state = "" if path.is_file() else " (and no such file exists)"
    raise RecipeError(
        f"'{path}' is a data file{state}, not a recipe: `kerakit run` takes a recipe name or a "
        f"recipe .py file. To train on a table, run the csv recipe on it: "
        f"{data_file_command(path, argv)}"
    )


def find(name_or_path, recipes_dir=None):
    """Returns the `RecipeInfo` of a recipe name or `.py` path; says "did you mean" if unknown.

    A data file (`data.csv`) is refused with the `kerakit run csv` command
    that trains on it.
    """
    refuse_data_file(name_or_path)
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
        clashes = sorted(fields & {dest_of(flag) for flag in COMMON_OPTIONS} | fields & {"json"})
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
