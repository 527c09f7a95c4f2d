"""The active-digits and active-sine recipes: their data, their report and their artifacts.

Every recipe is also smoke-run by tests/recipes/test_smoke.py; these tests check
what is particular to the active-learning recipes.
"""

import io
import json
from pathlib import Path

import numpy as np
import pytest

from kerakit import recipes


def test_active_digits_data_is_a_pool_and_two_held_out_splits():
    module = recipes.load("active-digits")
    data = module.data(recipes.make_config(module))
    assert (len(data["x_train"]), len(data["x_val"]), len(data["x_test"])) == (1077, 270, 450)
    assert data["x_train"].min() >= 0 and data["x_train"].max() <= 1
    assert data["spec"].task == "multiclass" and data["spec"].num_classes == 10


def test_active_sine_data_is_the_noisy_pool_and_the_true_curve():
    module = recipes.load("active-sine")
    data = module.data(recipes.make_config(module))
    x, y = data["x_train"][:, 0], data["y_train"]
    assert len(x) == 200 and x.min() >= 0 and x.max() <= 20
    assert 0.15 < np.std(y - np.sin(x)) < 0.25  # noise of 0.2 around sin(x)
    np.testing.assert_allclose(data["y_test"], np.sin(data["x_test"][:, 0]), atol=1e-6)


def run_smoke(name, tmp_path, **overrides):
    module = recipes.load(name)
    out = io.StringIO()
    config = recipes.make_config(module, smoke=True, **overrides)
    result = recipes.execute(module, config, runs_dir=tmp_path, out=out)
    return result, Path(result["run_dir"]), out.getvalue()


def test_active_digits_reports_each_strategy_against_random(tmp_path):
    result, run_dir, printed = run_smoke("active-digits", tmp_path)
    assert set(result["metrics"]) >= {"random_accuracy", "least_confidence_accuracy", "margin_accuracy"}
    assert all(0 <= v <= 1 for k, v in result["metrics"].items() if k.endswith("_accuracy"))
    for name in ("least_confidence", "margin"):
        assert f"{name}: test accuracy >= 0.9:" in printed and f"{name}: mean test accuracy" in printed
    assert printed.count(" random") >= 4  # every line names the baseline and its verdict
    saved = json.loads((run_dir / "active_learning.json").read_text())
    assert saved["labels"] == [10, 20, 30] and set(saved["labels_to_reach"]) == {"0.9", "0.95"}
    assert {row["verdict"] for row in saved["comparison"] if row["target"]} <= {
        "beats", "ties", "does not beat", "not reached: cannot compare with", "cannot be told apart from"}
    assert (run_dir / "active_learning_curves.png").stat().st_size > 1000


@pytest.mark.parametrize("uncertainty", ["ensemble", "dropout"])
def test_active_sine_queries_new_points_and_compares_with_random(tmp_path, uncertainty):
    result, run_dir, printed = run_smoke("active-sine", tmp_path, uncertainty=uncertainty)
    saved = json.loads((run_dir / "active_sine.json").read_text())
    assert saved["uncertainty"] == uncertainty
    assert len(saved["initial_x"]) == 5 and len(saved["queried_x"]) == 2
    assert not set(saved["queried_x"]) & set(saved["initial_x"])
    assert "predictive std: test RMSE against sin(x)" in printed
    assert "beats random here" in printed or "does not beat random here" in printed
    assert {"rmse", "r2", "rmse_before_queries", "random_rmse"} <= set(result["metrics"])
    assert {"fit_before_after.png", "model.keras", "predicted_vs_actual.png"} <= {p.name for p in run_dir.iterdir()}
