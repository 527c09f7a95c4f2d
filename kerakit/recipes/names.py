"""Recipe names: the one rule that turns a file or a loaded module into a recipe's name.

Below `flags` and `registry`, which both need it.
"""

from pathlib import Path


def recipe_name(path):
    """The recipe name of a file: `recipes/active_digits.py` → "active-digits".

    A trailing underscore is dropped (`csv_.py` → "csv"): a file named like a
    standard-library module would shadow it when run as a script, because
    Python puts the script's folder first on `sys.path`.
    """
    return Path(path).stem.rstrip("_").replace("_", "-")


def module_recipe_name(module):
    """The name a loaded recipe module runs under."""
    info = getattr(module, "__kerakit_recipe__", None)
    if info is not None:
        return info.name
    return recipe_name(getattr(module, "__file__", None) or module.__name__.rsplit(".", 1)[-1])
