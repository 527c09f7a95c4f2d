"""kerakit's errors.

Every error kerakit raises for bad input is a `KerakitError` and also the
matching builtin (`ValueError` or `TypeError`), so code that already catches
`ValueError` keeps working. Messages say what was found, what was expected and
how to fix it.
"""

import difflib


class KerakitError(Exception):
    """Base class of every error kerakit raises on purpose."""


class SpecError(KerakitError, ValueError):
    """A `ProblemSpec` that cannot be built, or that cannot work with a choice."""


class LabelError(KerakitError, ValueError):
    """Labels that do not match the problem spec."""


class DataError(KerakitError, ValueError):
    """Features or tabular data that cannot be trained on as given."""


class DataTypeError(KerakitError, TypeError):
    """Features or labels of a type kerakit cannot use."""


class ConfigError(KerakitError, ValueError):
    """An option with a value kerakit does not accept."""


class UnknownNameError(KerakitError, ValueError):
    """A name that is not in a registry (optimizer, body, loss, recipe...)."""


def closest(name, choices):
    """Returns the choice closest to `name`, or None when nothing is close."""
    matches = difflib.get_close_matches(str(name), [str(c) for c in choices], n=1, cutoff=0.5)
    return matches[0] if matches else None


def unknown_name(kind, name, choices):
    """Builds an `UnknownNameError` that lists the valid names and the closest one.

    Example:

    >>> str(unknown_name("optimizer", "adamm", ["adam", "sgd"]))
    "Unknown optimizer 'adamm'. Did you mean 'adam'? Valid names: 'adam', 'sgd'."
    """
    choices = sorted(choices)
    hint = closest(name, choices)
    did_you_mean = f" Did you mean '{hint}'?" if hint else ""
    listed = ", ".join(f"'{c}'" for c in choices)
    return UnknownNameError(f"Unknown {kind} '{name}'.{did_you_mean} Valid names: {listed}.")


class RecipeError(KerakitError, ValueError):
    """A recipe that cannot be found, loaded or run as the recipe contract asks."""


class RecipeImportError(RecipeError, ImportError):
    """A recipe file that raised while being imported; carries its own traceback."""


class RunError(KerakitError, ValueError):
    """A run directory or model file that cannot be used as given."""


class RequestError(KerakitError, ValueError):
    """A prediction request the HTTP service refuses; `status` is the 4xx code it answers with."""

    def __init__(self, message, status=400):
        super().__init__(message)
        self.status = status


class WorkerTimeoutError(KerakitError, TimeoutError):
    """Workers of a local multi-worker run that did not finish in time (they were killed)."""


class ChiefUnavailableError(KerakitError, TimeoutError):
    """A distributed-search worker got no answer from its chief in time."""


class ChiefIdleError(KerakitError, TimeoutError):
    """A distributed-search chief heard from no worker for too long."""


class MissingExtraError(KerakitError, ImportError):
    """An optional dependency that is not installed; the message names the pip extra."""
