"""`kerakit run NAME|PATH [flags]`: run a recipe into a run directory."""

import argparse
import sys


def add_arguments(parser):
    parser.description = (
        "Run a recipe by name (see `kerakit recipes`) or by path to a .py file. Its config "
        "fields are flags: `kerakit run NAME --help` lists them with their defaults. "
        "`--tracking-uri URI` (or $MLFLOW_TRACKING_URI) also logs the run to MLflow."
    )
    parser.add_argument("recipe", nargs="?", help="recipe name, or path to a recipe .py file")
    parser.add_argument("--recipes-dir", metavar="DIR", action="append", default=None,
                        help="also look for recipes in DIR (repeatable; also $KERAKIT_RECIPES_PATH)")
    parser.add_argument("recipe_args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)


def _recipes_dirs(args):
    # --recipes-dir may come before or after the recipe name; find needs it first.
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--recipes-dir", action="append", default=None)
    known, _ = pre.parse_known_args(args.recipe_args)
    return (args.recipes_dir or []) + (known.recipes_dir or [])


def run(args):
    from kerakit import recipes

    if args.recipe is None:
        print("kerakit run: error: name a recipe (list them with `kerakit recipes`), e.g. "
              "`kerakit run digits`.", file=sys.stderr)
        return 2
    rest = list(args.recipe_args)
    for folder in args.recipes_dir or ():
        rest += ["--recipes-dir", folder]
    recipes.run_command(args.recipe, rest, recipes_dir=_recipes_dirs(args),
                        prog=f"kerakit run {args.recipe}")
    return 0
