"""CI smoke-runs every recipe `kerakit recipes` lists (built-in and contributed) with --smoke.

All in one process, so TensorFlow is imported once. Each run must finish and
leave a complete run directory.
"""

import json
from pathlib import Path

import pytest

from kerakit import recipes

ALL = sorted(recipes.available())
# What every task's run directory holds when the recipe saves a model and its history.
PLOTS = {True: {"confusion_matrix.png", "roc.png"}, False: {"predicted_vs_actual.png", "residuals.png"}}
BUILTIN = {"digits", "breast-cancer", "wine", "soft-labels", "diabetes", "robust-regression",
           "multilabel", "csv"}


def test_every_builtin_recipe_is_smoke_tested():
    assert BUILTIN <= set(ALL)


@pytest.mark.parametrize("name", ALL)
def test_recipe_smoke_run(name, tmp_path):
    module = recipes.load(name)
    config = recipes.make_config(module, smoke=True)
    result = recipes.execute(module, config, runs_dir=tmp_path, quiet=True)
    run_dir = Path(result["run_dir"])
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "completed" and manifest["config"]["smoke"] is True
    assert manifest["metrics"] == result["metrics"] and result["metrics"]
    assert json.loads((run_dir / "metrics.json").read_text()) == result["metrics"]
    if name in BUILTIN:
        classification = manifest["spec"]["task"] != "regression"
        expected = {"model.keras", "history.csv", "learning_curves.png"} | PLOTS[classification]
        assert expected <= set(manifest["files"]), manifest.get("plots_skipped")
        assert result["key_metric"] in result["metrics"]
    if name == "csv":  # the table body: no L2 penalty claimed, only the options it was built with
        assert "l2" not in manifest["config"] and "l2" in manifest["config_unused"]
        assert "l2" not in manifest["model_options"] and manifest["model_options"]["members"] >= 1
