"""`kerakit recipes`: list the recipes that `kerakit run` can find by name."""

import json


def add_arguments(parser):
    parser.add_argument("--recipes-dir", metavar="DIR", action="append", default=None,
                        help="also look for recipes in DIR (repeatable; also $KERAKIT_RECIPES_PATH)")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")


def run(args):
    from kerakit import recipes
    found = recipes.available(args.recipes_dir)
    rows = [
        {"name": info.name, "source": info.source, "title": info.title,
         "location": str(info.path) if info.path else info.entry_point}
        for info in sorted(found.values(), key=lambda i: i.name)
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    width = max((len(r["name"]) for r in rows), default=4)
    for row in rows:
        source = "" if row["source"] == "builtin" else f"  [{row['source']}]"
        print(f"{row['name']:<{width}}  {row['title']}{source}")
    print("\nRun one with `kerakit run NAME` (`--help` lists its flags), or a file with "
          "`kerakit run path/to/recipe.py`.")
    return 0
