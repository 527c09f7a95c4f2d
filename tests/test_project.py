"""Project-level checks: the public surface, message hygiene, lazy imports."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

import kerakit

ROOT = Path(__file__).resolve().parent.parent

PUBLIC_NAMES = {
    # core
    "ProblemSpec", "infer_spec", "validate_labels", "build_model", "register_body",
    "get_optimizer", "default_callbacks", "TerminateOnNaN", "fit", "evaluate", "predict",
    "set_seed", "KerakitError",
    # tabular data
    "fit_table", "read_table", "split_table", "infer_schema", "build_table_model", "predict_table",
    "table_inputs", "table_metadata", "save_table_model", "load_table_model", "TableSchema",
    "TableResult",
    # images and text
    "read_images", "text_inputs",
    # recipes and runs
    "load_recipe", "run_recipe", "Run", "RunModel", "list_runs",
    # tuning and cross-validation
    "tune", "TuneResult", "SearchSpace", "cross_validate", "make_folds", "CrossValidationResult",
    # active learning
    "ActiveLearner", "register_query_strategy", "register_strategy", "simulate",
    "simulate_active_learning", "Simulation",
    # analysis, fine-tuning, export and serving
    "load_model", "compare", "compare_predictions", "Comparison", "permutation_importance",
    "Importance", "plot_importance", "ensemble", "ensemble_from_tuner", "finetune", "FineTuned",
    "export", "serve",
    # scikit-learn estimators
    "KerasClassifier", "KerasRegressor",
    # scaling out
    "get_strategy", "split_cpu", "set_default_strategy", "is_chief", "save_on_chief", "launch_local",
}


def test_public_surface_is_pinned():
    assert set(kerakit.__all__) == PUBLIC_NAMES | {"__version__"}
    for name in kerakit.__all__:
        assert getattr(kerakit, name) is not None


def test_no_glued_words_in_wrapped_messages():
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "check_messages.py"), "kerakit", "recipes", "scripts"],
        cwd=ROOT, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stdout


def test_message_checker_catches_a_glued_message(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text('raise ValueError("you must" "specify a value")\n')
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "check_messages.py"), str(bad)],
                            capture_output=True, text=True)
    assert result.returncode == 1 and "bad.py:1" in result.stdout


def test_import_kerakit_and_spec_do_not_load_tensorflow():
    code = ("import sys, kerakit; spec = kerakit.infer_spec([0, 1, 1]); "
            "print('tensorflow' in sys.modules, 'keras' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert out.stdout.split() == ["False", "False"], out.stderr


def test_ruff_is_clean():
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "kerakit", "recipes", "scripts", "tests"],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:]


def _lint_imports():
    """The `lint-imports` command of this environment, or None (then the floor tests skip)."""
    import shutil

    beside = Path(sys.executable).parent / "lint-imports"
    return str(beside) if beside.exists() else shutil.which("lint-imports")


def test_imports_run_down_the_floors_without_cycles():
    # pyproject.toml's [tool.importlinter]: the layers contract (apps > features >
    # engines > core > base) and no import cycle between sibling modules.
    command = _lint_imports()
    if command is None:
        pytest.skip("import-linter is not installed (pip install -e '.[dev]')")
    result = subprocess.run([command, "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "2 kept, 0 broken" in result.stdout


def test_import_linter_refuses_an_upward_import(tmp_path):
    # The contract is not vacuous: base importing an app breaks it.
    import shutil

    command = _lint_imports()
    if command is None:
        pytest.skip("import-linter is not installed (pip install -e '.[dev]')")
    shutil.copytree(ROOT / "kerakit", tmp_path / "kerakit", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    errors = tmp_path / "kerakit" / "errors.py"
    errors.write_text(errors.read_text() + "\n\ndef _upward():\n    import kerakit.cli  # noqa: F401\n")
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    result = subprocess.run([command, "--no-cache"], cwd=tmp_path, capture_output=True, text=True, env=env)
    assert result.returncode != 0
    assert "kerakit.errors is not allowed to import kerakit.cli" in result.stdout
