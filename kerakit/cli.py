"""The `kerakit` command.

One small module per sub-command under `kerakit.commands`, imported only when
that command runs, so `kerakit --help` never loads TensorFlow. Each command
module defines `add_arguments(parser)` and `run(args) -> int`; neither may
import TensorFlow/Keras at module level (import them inside `run`).
"""

import argparse
import importlib
import os
import sys

from kerakit.backend import import_tensorflow_quietly
from kerakit.errors import KerakitError, closest

# name → (module, one-line help). Keep the help here so listing commands
# imports nothing.
COMMANDS = {
    "env": ("kerakit.commands.env", "versions and devices, for bug reports"),
    "recipes": ("kerakit.commands.recipes", "list the recipes `kerakit run` finds by name"),
    "run": ("kerakit.commands.run", "run a recipe (by name or path) into a run directory"),
    "runs": ("kerakit.commands.runs", "list past runs with their key metric"),
    "evaluate": ("kerakit.commands.evaluate", "metrics of a run's model (or a .keras file) on a CSV"),
    "predict": ("kerakit.commands.predict", "predictions of a run's model (or a .keras file) for a CSV"),
    "serve": ("kerakit.commands.serve", "serve a model over TensorFlow Serving's REST API"),
    "compare": ("kerakit.commands.compare", "A/B test two runs (or .keras files) on a CSV: difference, CI, p-value"),
    "promote": ("kerakit.commands.promote", "export a candidate as the next version unless it is significantly worse"),
    "explain": ("kerakit.commands.explain", "permutation feature importance of a run's model on a CSV"),
    "tune": ("kerakit.commands.tune", "search hyperparameters on a recipe's data (Keras Tuner, k-fold)"),
}


# Commands that never need TensorFlow, or that parse more flags of their own
# (a recipe's) or check their input first and import it themselves, so --help
# and refusals of bad input stay instant.
_NO_EARLY_IMPORT = frozenset({"recipes", "runs", "run", "tune", "evaluate", "predict", "compare", "explain"})


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


def _unknown_command(name):
    hint = closest(name, COMMANDS)
    did_you_mean = f" Did you mean '{hint}'?" if hint else ""
    listed = ", ".join(sorted(COMMANDS))
    return f"kerakit: unknown command '{name}'.{did_you_mean} Commands: {listed}."


def build_parser(command=None):
    parser = _Parser(
        prog="kerakit",
        description="Keras training toolkit: recipes, training, tuning, evaluation and serving.",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        sub_parser = sub.add_parser(name, help=help_text, description=help_text)
        if name == command:
            importlib.import_module(module).add_arguments(sub_parser)
    return parser


def main(argv=None):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    if command is not None and command not in COMMANDS:
        print(_unknown_command(command), file=sys.stderr)
        return 2
    args = build_parser(command).parse_args(argv)
    if args.version:
        from kerakit import __version__

        print(f"kerakit {__version__}")
        return 0
    if args.command is None:
        build_parser().print_help()
        return 0
    if args.command not in _NO_EARLY_IMPORT:
        import_tensorflow_quietly()
    try:
        return importlib.import_module(COMMANDS[args.command][0]).run(args) or 0
    except KerakitError as error:
        # Bad input is the user's to fix: one clear message, no traceback.
        print(f"kerakit {args.command}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        # A run's manifest already says "interrupted"; files on disk are whole.
        print(f"kerakit {args.command}: interrupted (a run's manifest says so; its files are whole)",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
