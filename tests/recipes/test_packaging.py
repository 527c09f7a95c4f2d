"""Built-in recipes ship in the wheel (as package `kerakit_recipes`) and run by name from it."""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml needs Python 3.11+")

ROOT = Path(__file__).resolve().parent.parent.parent


def _config():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def test_package_list_covers_every_kerakit_subpackage():
    """The explicit list (needed for the recipes/ mapping) must name each package that exists."""
    listed = set(_config()["packages"])
    present = {".".join(p.parent.relative_to(ROOT).parts)
               for p in (ROOT / "kerakit").rglob("__init__.py") if "__pycache__" not in p.parts}
    assert present - listed == set(), "add these to [tool.setuptools] packages in pyproject.toml"
    assert listed - present == {"kerakit_recipes"}, "pyproject.toml lists packages that do not exist"
    assert _config()["package-dir"] == {"kerakit_recipes": "recipes"}


def test_wheel_ships_builtin_recipes_and_finds_them_by_name(tmp_path):
    source = tmp_path / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("kerakit", "recipes"):
        shutil.copytree(ROOT / name, source / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-build-isolation", "--no-deps", "-q",
         "--disable-pip-version-check", "-w", str(tmp_path / "dist"), str(source)],
        capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr[-2000:]
    wheel = next((tmp_path / "dist").glob("kerakit-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    recipe_files = {Path(n).name for n in names if n.startswith("kerakit_recipes/")}
    assert {"digits.py", "csv_.py", "wine.py", "__init__.py"} <= recipe_files
    assert not any(n.startswith("recipes/") for n in names)

    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    probe = ("import kerakit, kerakit.recipes as r; print(kerakit.__file__); "
             "print(r.builtin_dir()); print(' '.join(sorted(r.available()))); "
             "print(r.load('csv').__file__)")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            cwd=tmp_path, timeout=120, env={"PYTHONPATH": str(site), "PATH": ""})
    assert result.returncode == 0, result.stderr[-2000:]
    package, folder, listed, csv_file = result.stdout.strip().splitlines()
    assert Path(package).is_relative_to(site) and Path(folder) == site / "kerakit_recipes"
    assert {"digits", "csv", "wine", "diabetes"} <= set(listed.split())
    assert Path(csv_file) == site / "kerakit_recipes" / "csv_.py"
