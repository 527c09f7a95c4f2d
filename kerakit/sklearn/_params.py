"""The estimators' parameters: routed-parameter prefixes, option names, and the checks on them."""

import inspect
import numbers
from types import MappingProxyType

import numpy as np

from kerakit.errors import ConfigError, UnknownNameError, closest

# build_model's options, in the order the estimators take them.
MODEL_OPTIONS = ("body", "units", "dropout", "l1", "l2", "batchnorm", "optimizer",
                 "learning_rate", "loss", "metrics")

# Parameter prefixes routed with scikit-learn's double-underscore convention
# (`optimizer__momentum=0.9`), SciKeras's names: where each group goes.
ROUTING_PREFIXES = MappingProxyType(
    {
        "model": "the build function's keyword arguments (build_model's options by default)",
        "fit": "kerakit.fit's options (epochs, batch_size, verbose, shuffle, ...)",
        "compile": "model.compile's options (jit_compile, metrics, ...)",
        "optimizer": "the optimizer's constructor (momentum, beta_1, ...)",
        "loss": "the loss's constructor (from_logits, delta, ...)",
        "callbacks": "the callback classes in `callbacks` (callbacks__0__patience for one)",
        "predict": "predict's options (batch_size)",
    }
)

# Training options a `fit(X, y, **overrides)` call (or `fit__`) may change for that call.
FIT_OVERRIDES = ("epochs", "batch_size", "verbose", "validation_split", "patience")
# Further kerakit.fit options that `fit(...)` / `fit__` pass through.
FIT_PASSTHROUGH = ("shuffle", "steps_per_execution", "engine")
# compile__ options a kerakit-built network takes (build_model's arguments).
DEFAULT_COMPILE_OPTIONS = ("jit_compile", "metrics")
# predict__ options.
PREDICT_OPTIONS = ("batch_size",)


def routing_prefix(name):
    """The routing prefix of a parameter name ("optimizer" for `optimizer__momentum`), or None."""
    head, sep, _ = name.partition("__")
    return head if sep and head in ROUTING_PREFIXES else None


def check_split(split):
    """Refuses a `validation_split` that is not a fraction in [0, 1)."""
    if isinstance(split, bool) or not isinstance(split, (int, float)) or not 0 <= split < 1:
        raise ConfigError(
            f"`validation_split` must be a fraction in [0, 1) (0 trains on every row). "
            f"Received: validation_split={split!r}"
        )


def resolve_seed(seed, random_state):
    """The integer seed of one fit from `seed` and `random_state` (scikit-learn's name), or None.

    `random_state` takes what scikit-learn's estimators take: None, an
    integer, or a `numpy.random.RandomState`, from which each fit draws a
    fresh seed (so refits differ, as with scikit-learn's own estimators).
    """
    for name, value in (("seed", seed), ("random_state", random_state)):
        if value is None or isinstance(value, np.random.RandomState):
            continue
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or value < 0:
            raise ConfigError(
                f"`{name}` must be None, an integer >= 0 or a numpy.random.RandomState. "
                f"Received: {name}={value!r}"
            )
    if seed is not None and random_state is not None:
        if isinstance(seed, np.random.RandomState) or isinstance(random_state, np.random.RandomState) \
                or int(seed) != int(random_state):
            raise ConfigError(
                f"`seed` and `random_state` are two names for the estimator's seed; pass one "
                f"of them. Received: seed={seed!r}, random_state={random_state!r}"
            )
    value = random_state if random_state is not None else seed
    if isinstance(value, np.random.RandomState):
        return int(value.randint(np.iinfo(np.int32).max))
    return None if value is None else int(value)


def accepted_options(cls):
    """The keyword arguments a class's constructor takes, following `**kwargs` up its bases."""
    names = set()
    for klass in inspect.getmro(cls):
        init = vars(klass).get("__init__")
        if init is None or klass is object:
            continue
        try:
            parameters = inspect.signature(init).parameters
        except (TypeError, ValueError):
            continue
        names |= {name for name, p in parameters.items() if name != "self"
                  and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        if not any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
            break
    return names


def check_routed(prefix, options, valid, target):
    """Refuses `prefix__name` parameters that `target` does not take, naming the closest valid one."""
    unknown = sorted(set(options) - set(valid))
    if not unknown:
        return
    name = unknown[0]
    choices = sorted(f"{prefix}__{option}" for option in valid)
    hint = closest(name, sorted(valid))  # the option alone: the shared prefix would match anything
    did_you_mean = f" Did you mean '{prefix}__{hint}'?" if hint else ""
    listed = ", ".join(f"'{choice}'" for choice in choices) or "none"
    raise UnknownNameError(
        f"Unknown parameter '{prefix}__{name}': {target} takes no option {name!r}.{did_you_mean} "
        f"Valid parameters: {listed}."
    )
