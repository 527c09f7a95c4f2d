"""Writes the reference pages of the docs at build time: the API from the docstrings, the CLI from its parsers.

Run by mkdocs-gen-files (mkdocs.yml, `plugins: gen-files`). Nothing is copied
by hand: each public package's `__all__` decides what is documented, each
object is rendered by mkdocstrings from its own docstring where it is
defined, and the `kerakit` command's sub-commands, flags, defaults and help
come from the argparse parsers the command itself builds. A renamed or moved
name therefore moves in the reference too, and a name that disappears from
`__all__` disappears from it.

    python scripts/docs_reference.py OUT_DIR   # write the pages to a folder, to read them
"""

import argparse
import importlib
import inspect
import sys
from pathlib import Path

# page file → (package, how users spell it, one line about it)
PACKAGES = {
    "sklearn.md": ("kerakit.sklearn", "kerakit.sklearn", "scikit-learn estimators around kerakit models."),
    "tuning.md": ("kerakit.tuning", "kerakit.tuning", "Keras Tuner search from a problem spec."),
    "active.md": ("kerakit.active", "kerakit.active", "Active learning: the model picks what to label next."),
    "analysis.md": ("kerakit.analysis", "kerakit.analysis",
                    "A/B comparison, permutation importance and ensembles."),
    "serving.md": ("kerakit.serving", "kerakit.serving",
                   "Export, serve and monitor models over TensorFlow Serving's REST API."),
    # last: names documented on a sub-package page are linked from here, not repeated
    "kerakit.md": ("kerakit", "kk", "The top-level names, `import kerakit as kk`."),
}


def _kind(obj):
    if inspect.isclass(obj):
        return "Classes"
    if callable(obj):
        return "Functions"
    return "Constants"


def _path(obj):
    """The dotted path mkdocstrings reads the object's docstring from: where it is defined."""
    module = getattr(obj, "__module__", None) or ""
    qualname = getattr(obj, "__qualname__", None)
    if qualname and module.split(".")[0] == "kerakit" and "<" not in qualname:
        return f"{module}.{qualname}"
    return None


def _short_repr(value, limit=70):
    text = repr(value)
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return text.replace("|", "\\|")


def _summary(obj):
    doc = inspect.getdoc(obj) or ""
    return doc.strip().split("\n\n")[0].replace("\n", " ")


def _public_names(package):
    """`__all__`, or for a module without one, the public classes and functions it defines."""
    names = getattr(package, "__all__", None)
    if names is None:
        names = [name for name, obj in vars(package).items()
                 if not name.startswith("_") and getattr(obj, "__module__", None) == package.__name__
                 and (inspect.isclass(obj) or inspect.isfunction(obj))]
    return sorted((n for n in names if not n.startswith("__")), key=str.lower)


def api_pages():
    """`{file name: markdown}` for each public package."""
    pages, documented = {}, {}
    for page, (package_name, spelled, about) in PACKAGES.items():
        package = importlib.import_module(package_name)
        lines = [f"# {package_name}", "", about, ""]
        if package_name != "kerakit":
            lines += [_summary(package), ""]
        groups = {"Classes": [], "Functions": [], "Constants": []}
        for name in _public_names(package):
            groups[_kind(getattr(package, name))].append(name)
        for kind, names in groups.items():
            if not names:
                continue
            lines += [f"## {kind}", ""]
            if kind == "Constants":
                lines += ["| name | value |", "|---|---|"]
                lines += [f"| `{spelled}.{name}` | `{_short_repr(getattr(package, name))}` |" for name in names]
                lines.append("")
                continue
            for name in names:
                obj = getattr(package, name)
                path = _path(obj)
                title = f"{spelled}.{name}"
                if path is None:
                    lines += [f"### `{title}`", "", _summary(obj) or "", ""]
                elif path in documented:
                    lines += [f"### `{title}`", "",
                              f"The same object as [`{documented[path]}`][{path}]: {_summary(obj)}", ""]
                else:
                    documented[path] = title
                    lines += [f"::: {path}", "    options:", f'      heading: "{title}"',
                              f'      toc_label: "{title}"', ""]
        pages[page] = "\n".join(lines)
    return pages


def _subparsers(parser):
    # argparse keeps its actions on `_actions`: the documented way to walk a parser
    # (sphinx-argparse and others read it too); no public accessor exists.
    return next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)


def _flag_rows(parser):
    rows = []
    for action in parser._actions:
        if action.help == argparse.SUPPRESS or isinstance(action, (argparse._HelpAction,
                                                                    argparse._SubParsersAction)):
            continue
        value = f" {action.metavar or action.dest.upper()}" if action.nargs != 0 else ""
        names = ", ".join(f"`{s}{value}`" for s in action.option_strings) or f"`{action.metavar or action.dest}`"
        default = action.default
        shown = "" if default in (None, False, argparse.SUPPRESS) or action.nargs == 0 else f"`{default}`"
        choices = f" One of: {', '.join(map(str, action.choices))}." if action.choices else ""
        help_text = (action.help or "").replace("|", "\\|").replace("\n", " ")
        if "%(" in help_text:
            help_text = help_text % {"default": default, "prog": parser.prog}
        rows.append(f"| {names} | {shown} | {help_text}{choices} |")
    if not rows:
        return ["No flags of its own.", ""]
    return ["| argument | default | meaning |", "|---|---|---|", *rows, ""]


def _usage(parser):
    return ["```text", parser.format_usage().strip(), "```", ""]


def cli_page():
    from kerakit import cli, recipes

    top = cli.build_parser()
    lines = ["# The kerakit command", "",
             "Generated from the command's own argument parsers at docs build time, so it "
             "matches `kerakit COMMAND --help`. The guides show the commands at work: "
             "[recipes and the kerakit command](../guides/recipes.md).", "",
             *_usage(top), *_flag_rows(top)]
    commands = _subparsers(top).choices
    for name in commands:
        sub = _subparsers(cli.build_parser(name)).choices[name]
        lines += [f"## kerakit {name}", "", (sub.description or "").strip(), "", *_usage(sub)]
        lines += _flag_rows(sub)
        if sub.epilog:
            lines += [sub.epilog, ""]
    lines += ["## Recipe flags", "",
              "`kerakit run NAME` (and `python recipes/NAME.py`) accepts these options next to the "
              "recipe's own flags, which come from its `Config` fields.", ""]
    builtin = [info for info in recipes.available().values() if info.source == "builtin"]
    for info in sorted(builtin, key=lambda info: info.name):
        module = recipes.load(info.name)
        parser = recipes.build_parser(module, info.name, prog=f"kerakit run {info.name}")
        lines += [f"### kerakit run {info.name}", "", _summary(module), "", *_usage(parser), *_flag_rows(parser)]
    return "\n".join(lines)


ROOT = Path(__file__).resolve().parent.parent
FLOORS_MARK = "<!-- floors: generated from pyproject.toml at docs build time -->"


def floors_table():
    """The import-linter layers of pyproject.toml as a table, top floor first."""
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    contract = next(c for c in config["contracts"] if c.get("type") == "layers")
    container = contract.get("containers", [config["root_package"]])[0]
    lines = [f"Contract: *{contract['name']}*.", "", "| floor | modules (`kerakit.` ...) |", "|---:|---|"]
    for number, layer in enumerate(contract["layers"], start=1):
        modules = [m.strip() for part in layer.split("|") for m in part.split(":") if m.strip()]
        place = "top" if number == 1 else "bottom" if number == len(contract["layers"]) else ""
        lines.append(f"| {number} {place} | {', '.join(f'`{m}`' for m in modules)} |")
    return "\n".join(lines) + f"\n\nAll modules are inside `{container}`."


def architecture_page():
    text = (ROOT / "docs" / "architecture.md").read_text()
    return text.replace(FLOORS_MARK, floors_table())


def pages():
    out = {f"reference/{name}": text for name, text in api_pages().items()}
    out["reference/cli.md"] = cli_page()
    out["architecture.md"] = architecture_page()
    return out


def building():
    """Whether mkdocs-gen-files is building the site now (outside a build, its `open` writes into docs/)."""
    try:
        from mkdocs_gen_files.editor import FilesEditor
    except ImportError:
        return False
    return FilesEditor._current is not None  # no public accessor: current() creates an editor


def main(argv):
    if argv:
        folder = Path(argv[0])
        for name, text in pages().items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text(text)
        return 0
    import mkdocs_gen_files

    for name, text in pages().items():
        with mkdocs_gen_files.open(name, "w") as handle:
            handle.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
elif __name__ == "<run_path>" and building():  # mkdocs-gen-files runs the file with runpy.run_path
    main([])
