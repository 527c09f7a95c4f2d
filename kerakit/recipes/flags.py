"""A recipe's command line: config dataclass fields become typed `--flags`."""

import argparse
import ast
import dataclasses
import io
import re
import shlex
import sys
import textwrap
import tokenize
import typing
from pathlib import Path

from kerakit import runs as runs_module
from kerakit.errors import RecipeError, closest
from kerakit.recipes.names import module_recipe_name

PATH_ENV = "KERAKIT_RECIPES_PATH"

# Options every `kerakit run` / recipe script accepts, next to the recipe's own
# flags. One table, so a new common option is one entry; `execute` receives
# their values as keyword arguments (the key is argparse's `dest`).
COMMON_OPTIONS = {
    "--runs-dir": dict(
        metavar="DIR", default=None,
        help=f"where run directories go (default: ${runs_module.RUNS_DIR_ENV} or ./runs)",
    ),
    "--recipes-dir": dict(
        metavar="DIR", action="append", default=None,
        help=f"also look for recipes in DIR (repeatable; also ${PATH_ENV})",
    ),
    "--quiet": dict(action="store_true", help="print nothing but errors"),
    "--strategy": dict(
        metavar="NAME", default=None,
        help="distribute every model the recipe builds: mirrored (all local GPUs), "
        "multiworker (several machines, from TF_CONFIG) or default on TensorFlow; "
        "data_parallel (keras.distribution over every device and process) on JAX",
    ),
    "--tracking-uri": dict(
        metavar="URI", default=None,
        help="log the run to MLflow (config, per-epoch and test metrics, plots, model): "
        "e.g. sqlite:///mlflow.db (default: $MLFLOW_TRACKING_URI, else no tracking; "
        "needs pip install 'kerakit[mlflow]')",
    ),
    "--json": dict(
        action="store_true", dest="json_output",
        help="print only the result as JSON on stdout (implies --quiet)",
    ),
}



def dest_of(flag):
    """The attribute name argparse stores a common option under."""
    return COMMON_OPTIONS[flag].get("dest") or flag.lstrip("-").replace("-", "_")



# Config → flags ---------------------------------------------------------------


def _field_comments(config_class):
    """Returns `{field: trailing comment}` read from the class's source, if available."""
    try:
        import inspect

        source = inspect.getsource(config_class)
    except (OSError, TypeError):
        return {}
    comments, line_names = {}, {}
    try:
        tree = ast.parse(_dedent(source))
    except SyntaxError:
        return {}
    for node in ast.walk(tree):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            line_names[node.lineno] = node.target.id
    try:
        for tok in tokenize.generate_tokens(io.StringIO(_dedent(source)).readline):
            if tok.type == tokenize.COMMENT and tok.start[0] in line_names:
                comments[line_names[tok.start[0]]] = tok.string.lstrip("#").strip()
    except tokenize.TokenError:
        pass
    return comments


def _dedent(source):
    return textwrap.dedent(source)


def _optional(hint):
    args = typing.get_args(hint)
    if type(None) in args and len(args) == 2:
        return next(a for a in args if a is not type(None)), True
    return hint, False


def _parse_bool(text):
    table = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
    if str(text).lower() not in table:
        raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
    return table[str(text).lower()]


_SCALARS = {int: int, float: float, str: str, Path: Path, bool: _parse_bool}


def _none_or(convert):
    def parse(text):
        return None if str(text).lower() == "none" else convert(text)

    parse.__name__ = getattr(convert, "__name__", "value")
    return parse


def _flag_options(name, hint, default):
    """argparse options for one config field; raises for a type a flag cannot carry."""
    hint, optional = _optional(hint)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    options = {}
    if hint is bool:
        options["action"] = argparse.BooleanOptionalAction
    elif hint in _SCALARS:
        options["type"] = _SCALARS[hint]
    elif origin is typing.Literal:
        options["type"] = type(args[0])
        options["choices"] = args
    elif origin in (tuple, list) and args and args[0] in _SCALARS:
        options["type"] = _SCALARS[args[0]]
        options["nargs"] = "+"
    else:
        raise RecipeError(
            f"Config field `{name}` has type {hint!r}, which cannot become a flag. Use int, "
            f"float, str, bool, pathlib.Path, typing.Literal[...], or a tuple/list of one of "
            f"those (optionally `| None`)."
        )
    if optional and "type" in options:
        options["type"] = _none_or(options["type"])
    return options


def _default_text(value):
    """The default as help shows it, or None for an empty text (help shows no default then)."""
    if isinstance(value, (tuple, list)):
        return " ".join(str(v) for v in value) if value else "(empty)"
    if value == "":
        return None
    return "none" if value is None else str(value)


def add_config_arguments(parser, config_class):
    """Adds one `--flag` per field of a config dataclass to an argparse parser.

    Underscores become dashes; help is the field's `metadata["help"]` or the
    comment at the end of its line, followed by the default. A bool becomes
    `--flag` / `--no-flag`; a tuple or list takes several values; a
    `Literal` lists its choices; a field without a default is required.
    """
    hints = typing.get_type_hints(config_class)
    comments = _field_comments(config_class)
    group = parser.add_argument_group("recipe options")
    for field in dataclasses.fields(config_class):
        if not field.init:
            continue
        default = field.default
        if default is dataclasses.MISSING and field.default_factory is not dataclasses.MISSING:
            default = field.default_factory()
        options = _flag_options(field.name, hints.get(field.name, str), default)
        text = field.metadata.get("help") or comments.get(field.name, "")
        text = text.replace("%", "%%")
        if default is dataclasses.MISSING:
            options["required"] = True
            text = f"{text} (required)".strip()
        else:
            options["default"] = default
            shown = _default_text(default)
            if shown is not None:
                text = f"{text} (default: {shown})".strip().replace("%%(", "%(")
        group.add_argument(f"--{field.name.replace('_', '-')}", dest=field.name, help=text, **options)


class _RecipeParser(argparse.ArgumentParser):
    """An argparse parser whose unknown-flag error lists the valid flags.

    A recipe that reads a file (`--path`) takes a lone file name given first
    as that path: `kerakit run csv data.csv --target t`.
    """

    def parse_args(self, args=None, namespace=None):
        args = list(sys.argv[1:] if args is None else args)
        if args and not args[0].startswith("-") and self._takes_path() and "--path" not in args:
            args = ["--path", *args]
        namespace, extras = self.parse_known_args(args, namespace)
        if extras:
            self.error(self._unknown_message(extras))
        return namespace

    def _takes_path(self):
        return any("--path" in a.option_strings for a in self._actions)

    def _unknown_message(self, extras):
        valid = sorted({s for a in self._actions for s in a.option_strings if s.startswith("--")})
        flag = next((e for e in extras if e.startswith("-")), extras[0])
        hint = closest(flag.split("=")[0], valid)
        did_you_mean = f" Did you mean '{hint}'?" if hint else ""
        if not flag.startswith("-"):
            path_hint = f" Did you mean --path {flag}?" if self._takes_path() else ""
            return (f"unexpected argument '{flag}'.{path_hint} Flags take the form --name value. "
                    f"Valid flags: {', '.join(valid)}.")
        return f"unknown flag '{flag}'.{did_you_mean} Valid flags: {', '.join(valid)}."

    def error(self, message):
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


def _description(module):
    doc = (module.__doc__ or "").strip()
    return doc or None


def build_parser(module, name, prog=None):
    """The argument parser of a recipe: its config flags plus `COMMON_OPTIONS`."""
    parser = _RecipeParser(
        prog=prog or f"kerakit run {name}",
        description=_description(module),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        # No prefixes: `--epoch` is a typo to report, not a silent `--epochs`.
        allow_abbrev=False,
    )
    add_config_arguments(parser, module.Config)
    common = parser.add_argument_group("run options")
    for flag, options in COMMON_OPTIONS.items():
        common.add_argument(flag, **options)
    return parser


def parse_args(module, argv, name=None, prog=None):
    """Parses a recipe's command line; returns `(config, options)`.

    `options` holds the common options (`runs_dir`, `quiet`, `json_output`, ...).
    """
    if name is None:
        name = module_recipe_name(module)
    args = vars(build_parser(module, name, prog).parse_args(argv))
    common = {dest_of(flag): args.pop(dest_of(flag)) for flag in COMMON_OPTIONS}
    return _build_config(module, args), common


def _build_config(module, values):
    hints = typing.get_type_hints(module.Config)
    for key, value in values.items():
        origin = typing.get_origin(_optional(hints.get(key, str))[0])
        if origin is tuple and isinstance(value, list):
            values[key] = tuple(value)
    return module.Config(**values)


def make_config(module, **overrides):
    """Returns a recipe's `Config` with defaults and `overrides` (keyword names as in the dataclass).

    Example:

    >>> from kerakit.recipes import load
    >>> config = make_config(load("digits"), epochs=5, smoke=True)
    >>> config.epochs, config.smoke
    (5, True)
    """
    fields = {f.name for f in dataclasses.fields(module.Config)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        hint = closest(unknown[0], fields)
        did_you_mean = f" Did you mean '{hint}'?" if hint else ""
        raise RecipeError(
            f"Config has no field(s) {', '.join(unknown)}.{did_you_mean} "
            f"Fields: {', '.join(sorted(fields))}."
        )
    return module.Config(**overrides)



# Python argument spellings → flags ---------------------------------------------

# A Python literal after `name=`: a bracketed or quoted value, or one token.
_TOKEN = re.compile(r"[+-]?(?:\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|\w+)")
_CLOSE = {"[": "]", "{": "}", "(": ")"}


def _literal_end(text, start):
    """The end of the Python literal starting at `text[start]`, or None."""
    if start >= len(text):
        return None
    first = text[start]
    if first in "'\"":
        i = start + 1
        while i < len(text):
            if text[i] == "\\":
                i += 2
                continue
            if text[i] == first:
                return i + 1
            i += 1
        return None
    if first in _CLOSE:
        depth, quote, i = 0, None, start
        while i < len(text):
            char = text[i]
            if quote:
                if char == "\\":
                    i += 1
                elif char == quote:
                    quote = None
            elif char in "'\"":
                quote = char
            elif char in _CLOSE:
                depth += 1
            elif char in _CLOSE.values():
                depth -= 1
                if depth == 0:
                    return i + 1
            i += 1
        return None
    match = _TOKEN.match(text, start)
    return match.end() if match else None


def _flag_text(name, hint, value):
    """`--name value` as a shell user types it, or None when the value has no flag form."""
    flag = f"--{name.replace('_', '-')}"
    hint, optional = _optional(hint)
    if hint is bool:
        return {True: flag, False: f"--no-{name.replace('_', '-')}"}.get(value) \
            if isinstance(value, bool) else None
    if value is None:
        return f"{flag} none" if optional else None
    if typing.get_origin(hint) in (tuple, list):
        if isinstance(value, dict):
            items = [f"{k}={v}" for k, v in value.items()]
        elif isinstance(value, (list, tuple, set, frozenset)):
            items = ["..." if v is Ellipsis else str(v) for v in value]
        else:
            items = [str(value)]
        return " ".join([flag, *(shlex.quote(item) for item in items)]) if items else None
    if isinstance(value, (dict, list, tuple, set, frozenset)) or value is Ellipsis:
        return None
    return f"{flag} {shlex.quote(str(value))}"


def shell_message(message, config_class):
    """Rewrites a message's Python arguments (`na_values=['?']`) as the recipe's flags.

    kerakit's errors name options the way a Python caller spells them
    (`drop_missing_target=True`, `types={'zip': 'string_categorical'}`). On
    the command line the same options are flags; this is the one place that
    translates: every `field=value` whose field is a config field of the
    recipe becomes `--field value` (`--drop-missing-target`,
    `--types zip=string_categorical`), and a field named in backticks
    (`` `epochs` ``) its flag. Anything else is left as written.

    Example:

    >>> csv_recipe = kerakit.recipes.load("csv")
    >>> shell_message("pass na_values=['?'] if it means missing", csv_recipe.Config)
    "pass --na-values '?' if it means missing"
    """
    hints = typing.get_type_hints(config_class)
    names = sorted((f.name for f in dataclasses.fields(config_class) if f.init), key=len,
                   reverse=True)
    if not names:
        return message
    pattern = re.compile(r"(?<![\w.\-])(" + "|".join(map(re.escape, names)) + r")=")
    # A field named on its own, in backticks: `epochs` → `--epochs`.
    message = re.sub(r"`(" + "|".join(map(re.escape, names)) + r")`",
                     lambda m: f"`--{m.group(1).replace('_', '-')}`", message)
    parts, position = [], 0
    for match in pattern.finditer(message):
        if match.start() < position:
            continue
        end = _literal_end(message, match.end())
        if end is None:
            continue
        try:
            value = ast.literal_eval(message[match.end():end])
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue
        flag = _flag_text(match.group(1), hints.get(match.group(1), str), value)
        if flag is None:
            continue
        parts += [message[position:match.start()], flag]
        position = end
    return "".join(parts) + message[position:]
