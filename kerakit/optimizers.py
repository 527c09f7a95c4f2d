"""Optimizer names → configured Keras optimizers with sane learning rates.

The optimizers the source notes compare (SGD with momentum, RMSprop, Adam,
Adagrad) plus AdamW, each with the learning rate it usually works at. The
optimizer itself always comes from `keras.optimizers`.
"""

from types import MappingProxyType

from kerakit.errors import ConfigError, unknown_name

# name → (keras.optimizers class, default learning rate, fixed options)
OPTIMIZERS = MappingProxyType(
    {
        "adam": ("Adam", 1e-3, {}),
        "adamw": ("AdamW", 1e-3, {}),
        "rmsprop": ("RMSprop", 1e-3, {}),
        # Plain SGD crawls; momentum 0.9 is the textbook setting.
        "sgd": ("SGD", 1e-2, {"momentum": 0.9}),
        "adagrad": ("Adagrad", 1e-2, {}),
    }
)


def default_learning_rate(name):
    """Returns the default learning rate of optimizer `name`."""
    return OPTIMIZERS[_check_name(name)][1]


def _check_name(name):
    key = str(name).lower()
    if key not in OPTIMIZERS:
        raise unknown_name("optimizer", name, OPTIMIZERS)
    return key


def get_optimizer(identifier="adam", learning_rate="auto"):
    """Returns a Keras optimizer for a name, or passes an optimizer object through.

    Args:
        identifier: "adam", "adamw", "rmsprop", "sgd" (with momentum 0.9) or
            "adagrad"; or a `keras.optimizers.Optimizer`, returned as is.
            Defaults to "adam".
        learning_rate: a float, or "auto" for the optimizer's usual rate
            (1e-3 for Adam/AdamW/RMSprop, 1e-2 for SGD/Adagrad).

    Example:

    >>> get_optimizer("sgd").momentum
    0.9
    """
    import keras

    if isinstance(identifier, keras.optimizers.Optimizer):
        if learning_rate != "auto":
            raise ConfigError(
                "`learning_rate` cannot be combined with an optimizer object: set it on the "
                f"optimizer instead. Received: learning_rate={learning_rate!r}"
            )
        return identifier
    if not isinstance(identifier, str):
        raise ConfigError(
            "`optimizer` must be a name or a keras.optimizers.Optimizer. "
            f"Received: optimizer={identifier!r}"
        )
    class_name, default_rate, options = OPTIMIZERS[_check_name(identifier)]
    rate = default_rate if learning_rate in ("auto", None) else learning_rate
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not rate > 0:
        raise ConfigError(f"`learning_rate` must be a positive number. Received: learning_rate={rate!r}")
    return getattr(keras.optimizers, class_name)(learning_rate=float(rate), **options)
