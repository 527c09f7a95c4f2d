"""The docs' generated pages: the API reference covers the public names, the CLI page every flag."""

import argparse
import runpy
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def reference():
    return runpy.run_path(str(ROOT / "scripts" / "docs_reference.py"), run_name="docs_reference")


@pytest.fixture(scope="module")
def griffe_extension():
    pytest.importorskip("griffe")
    return runpy.run_path(str(ROOT / "scripts" / "docs_griffe.py"), run_name="docs_griffe")


@pytest.mark.slow  # imports every public package, TensorFlow included
def test_api_reference_documents_every_public_name(reference):
    import kerakit

    pages = reference["api_pages"]()
    top = pages["kerakit.md"]
    for name in kerakit.__all__:
        if not name.startswith("__"):
            assert f"kk.{name}" in top, f"kk.{name} is missing from the API reference"
    import kerakit.serving

    for name in kerakit.serving.__all__:
        assert f"kerakit.serving.{name}" in pages["serving.md"]


@pytest.mark.slow  # imports every public package, TensorFlow included
def test_a_name_on_two_pages_is_rendered_once_and_linked(reference):
    pages = reference["api_pages"]()
    rendered = [line for text in pages.values() for line in text.splitlines() if line.startswith("::: ")]
    assert len(rendered) == len(set(rendered))
    assert "The same object as [`kerakit.sklearn.KerasClassifier`]" in pages["kerakit.md"]


def test_cli_reference_lists_every_command_and_flag_from_the_parsers(reference):
    from kerakit import cli

    page = reference["cli_page"]()
    top = cli.build_parser()
    commands = next(a for a in top._actions if isinstance(a, argparse._SubParsersAction)).choices
    for name in commands:
        assert f"## kerakit {name}\n" in page
        sub = next(a for a in cli.build_parser(name)._actions
                   if isinstance(a, argparse._SubParsersAction)).choices[name]
        for action in sub._actions:
            for flag in action.option_strings:
                if flag not in ("-h", "--help") and action.help != argparse.SUPPRESS:
                    assert f"`{flag}" in page, f"kerakit {name} {flag} is missing from the CLI reference"
    assert "### kerakit run digits" in page and "`--epochs" in page


def test_architecture_floors_come_from_pyproject(reference):
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    layers = next(c for c in config["contracts"] if c.get("type") == "layers")["layers"]
    page = reference["architecture_page"]()
    assert reference["FLOORS_MARK"] not in page
    for layer in layers:
        for module in layer.replace("|", ":").split(":"):
            assert f"`{module.strip()}`" in page


def test_doctest_lines_become_code_blocks(griffe_extension):
    fenced = griffe_extension["fence_doctests"]("Example:\n\n>>> f([1])\n['a']\n\nMore text.")
    assert fenced == "Example:\n\n```pycon\n>>> f([1])\n['a']\n```\n\nMore text."


def test_wrapped_parameter_names_are_joined(griffe_extension):
    text = ("Args:\n    model: a model.\n    batch_size, seed,\n        verbose: as in `fit`.\n"
            "    patience: epochs.\n")
    joined = griffe_extension["join_wrapped_names"](text)
    assert "    batch_size, seed, verbose: as in `fit`.\n" in joined
    assert "    model: a model.\n" in joined and "    patience: epochs.\n" in joined
