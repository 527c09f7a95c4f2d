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

from kerakit.recipes.flags import (
    COMMON_OPTIONS,
    add_config_arguments,
    build_parser,
    make_config,
    parse_args,
    shell_message,
)
from kerakit.recipes.names import module_recipe_name
from kerakit.recipes.registry import (
    BUILTIN_PACKAGE,
    ENTRY_POINT_GROUP,
    PATH_ENV,
    REQUIRED_FIELDS,
    RecipeInfo,
    available,
    builtin_dir,
    check,
    data_file_command,
    find,
    load,
    recipe_dirs,
    recipe_name,
    refuse_data_file,
)
from kerakit.recipes.runner import (
    DATA_KEYS,
    FIELD_RULES,
    check_config,
    check_data,
    cli_message,
    execute,
    format_report,
    main,
    measurement_warnings,
    run_command,
    split_data,
    wilson_interval,
)

__all__ = [
    "BUILTIN_PACKAGE", "COMMON_OPTIONS", "DATA_KEYS", "ENTRY_POINT_GROUP", "PATH_ENV",
    "REQUIRED_FIELDS", "RecipeInfo", "add_config_arguments", "available", "build_parser",
    "builtin_dir", "check", "check_data", "execute", "find", "format_report", "load",
    "main", "make_config", "module_recipe_name", "parse_args", "recipe_dirs",
    "recipe_name", "run_command", "split_data",
    "FIELD_RULES", "check_config", "cli_message", "data_file_command", "measurement_warnings",
    "refuse_data_file", "shell_message", "wilson_interval",
]
