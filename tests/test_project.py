"""Project-level checks: the public surface, message hygiene, lazy imports."""

import os
import re
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
    "Run", "RunModel", "list_runs",
    # tuning and cross-validation
    "tune", "TuneResult", "SearchSpace", "cross_validate", "make_folds", "CrossValidationResult",
    # active learning
    "ActiveLearner", "register_query_strategy", "simulate", "Simulation",
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


def _lint_imports():
    """The `lint-imports` command of this environment, or None (then the floor tests skip)."""
    import shutil

    beside = Path(sys.executable).parent / "lint-imports"
    return str(beside) if beside.exists() else shutil.which("lint-imports")


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


# Docstring examples ----------------------------------------------------------
# A `>>>` example runs as a doctest; an example that needs a trained model,
# files or a server is a fenced ```python block without prompts (Keras's style).

def _kerakit_modules():
    import pkgutil

    found = pkgutil.walk_packages(kerakit.__path__, "kerakit.")
    return ["kerakit"] + sorted(m.name for m in found if not m.name.endswith(".__main__"))  # scripts


def _module_doctests(name):
    import doctest
    import importlib

    import numpy as np

    module = importlib.import_module(name)
    extraglobs = {"kk": kerakit, "kerakit": kerakit, "np": np}
    return doctest.DocTestFinder(exclude_empty=True).find(module, name, extraglobs=extraglobs)


def _prompt_lines(name):
    """Lines of a module's source that start with `>>>` (docstrings and anything else)."""
    import importlib.util

    origin = importlib.util.find_spec(name).origin
    return sum(line.lstrip().startswith(">>>") for line in Path(origin).read_text().splitlines())


def test_docstring_examples_run(tmp_path, monkeypatch):
    import doctest
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    monkeypatch.chdir(tmp_path)  # an example that writes a file writes it here
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    failures, ran = [], {}
    for name in _kerakit_modules():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # kerakit.validation's own warning
            tests = _module_doctests(name)
        for test in sorted(tests, key=lambda t: t.name):
            runner.run(test, out=lambda text: failures.append(text))
        ran[name] = sum(len(t.examples) for t in tests)
    assert not failures, "\n".join(failures)
    assert sum(ran.values()) > 50  # the examples were found
    # Every `>>>` line in kerakit belongs to an example that just ran: none sits
    # in a module, or a place in one, that the run does not reach.
    unrun = {name: (_prompt_lines(name), count) for name, count in ran.items() if _prompt_lines(name) != count}
    assert not unrun, f"modules whose `>>>` lines did not all run (lines, examples run): {unrun}"



def _floors():
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    layers = config["tool"]["importlinter"]["contracts"][0]["layers"]
    return {name.strip(): depth for depth, line in enumerate(layers) for name in line.split(":")}


def _string_imports(path):
    """`kerakit.x...` names written as strings in a module: what importlib will import."""
    import ast

    tree = ast.parse(path.read_text())
    return {node.value for node in ast.walk(tree) if isinstance(node, ast.Constant)
            and isinstance(node.value, str) and re.fullmatch(r"kerakit(\.[a-z_]+)+", node.value)}


def test_string_imports_run_down_the_floors_too():
    # import-linter sees `import` statements only; a module named in a string
    # (importlib.import_module("kerakit.x"), a registry of modules) is an import as well.
    floors = _floors()
    upward = []
    for path in sorted((ROOT / "kerakit").rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if len(parts) < 2 or parts[1] == "__init__":
            continue  # the package's own __init__ exports every floor
        source = floors[parts[1].removesuffix(".py")]
        for name in _string_imports(path):
            target = floors.get(name.split(".")[1])
            if target is not None and target < source:
                upward.append(f"{'.'.join(parts)} -> {name}")
    assert not upward, upward
    assert _string_imports(ROOT / "kerakit" / "engines" / "__init__.py")  # the check sees strings
