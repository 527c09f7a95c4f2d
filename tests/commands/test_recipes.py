"""`kerakit recipes`: the recipes `kerakit run` finds."""

import json

from kerakit import cli


def test_recipes_command_lists_folder_recipes(tiny_recipe_dir, capsys):
    assert cli.main(["recipes", "--recipes-dir", str(tiny_recipe_dir)]) == 0
    out = capsys.readouterr().out
    assert "tiny-cli" in out and "Tiny CLI recipe.  [folder]" in out and "digits" in out
    assert cli.main(["recipes", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {"name": "wine", "source": "builtin"}.items() <= next(
        r for r in rows if r["name"] == "wine").items()
