"""The network of one fit: optimizer, loss and callbacks from routed parameters, the build function."""

import copy
import inspect

import numpy as np

from kerakit.errors import ConfigError, unknown_name
from kerakit.sklearn._params import accepted_options, check_routed


def _class_of(module, name, kind):
    """The class in `module` (keras.losses, ...) whose name matches `name` ("binary_crossentropy")."""
    key = name.replace("_", "").lower()
    for attribute in dir(module):
        value = getattr(module, attribute)
        if attribute.lower() == key and inspect.isclass(value):
            return value
    names = [a for a in dir(module) if inspect.isclass(getattr(module, a)) and not a.startswith("_")]
    raise unknown_name(kind, name, names)


def _options_of(instance):
    """What a Keras object rebuilt `from_config` takes: its config keys and its constructor's."""
    return set(instance.get_config()) | accepted_options(type(instance))


def optimizer_for(optimizer, learning_rate, options):
    """A fresh optimizer object for one fit, with the `optimizer__` options checked and applied."""
    import keras

    from kerakit.optimizers import OPTIMIZERS, get_optimizer

    options = dict(options)
    rate = options.pop("learning_rate", learning_rate)
    if isinstance(optimizer, keras.optimizers.Optimizer):
        check_routed("optimizer", options, _options_of(optimizer), type(optimizer).__name__)
        config = optimizer.get_config()
        if rate not in ("auto", None):
            config["learning_rate"] = rate
        return type(optimizer).from_config({**config, **options})
    if inspect.isclass(optimizer):
        check_routed("optimizer", options, accepted_options(optimizer), optimizer.__name__)
        return optimizer(**options, **({} if rate in ("auto", None) else {"learning_rate": rate}))
    name = "adam" if optimizer in ("auto", None) else optimizer
    base = get_optimizer(name, rate)  # checks the name and the rate
    if not options:
        return base
    check_routed("optimizer", options, accepted_options(type(base)), type(base).__name__)
    fixed = OPTIMIZERS[str(name).lower()][2]
    return type(base)(learning_rate=float(base.learning_rate.numpy()), **{**fixed, **options})


def loss_for(loss, options):
    """`loss` (a name, class or object of keras.losses) built with the `loss__` options."""
    import keras

    if not options:
        return loss
    if isinstance(loss, str):
        loss = _class_of(keras.losses, loss, "loss")
    if inspect.isclass(loss):
        check_routed("loss", options, accepted_options(loss), loss.__name__)
        return loss(**options)
    if hasattr(loss, "get_config"):
        check_routed("loss", options, _options_of(loss), type(loss).__name__)
        return type(loss).from_config({**loss.get_config(), **options})
    raise ConfigError(
        f"loss__ options need a loss given by name, class or object with get_config. "
        f"Received: loss={loss!r} with {sorted(options)}"
    )


def loss_name(loss):
    if isinstance(loss, str):
        return loss.lower()
    return str(getattr(loss, "name", None) or getattr(loss, "__name__", "")).lower()


def _clone_callback(callback):
    """A fresh copy of a callback for one fit, without the model it last trained."""
    model = getattr(callback, "_model", None)
    memo = {} if model is None else {id(model): None}
    return copy.deepcopy(callback, memo)


def callbacks_for(given, routed):
    """The user's callbacks for one fit: instances copied, classes built with `callbacks__` options.

    Args:
        given: the `callbacks` parameter: None, a callback or class, a list
            of them, or a dict {name: callback or class}.
        routed: the `callbacks__` options, {option: value} for every
            callback or {"<index or name>__option": value} for one.
    """
    if given is None:
        return []
    if isinstance(given, dict):  # {"stop": EarlyStopping}: callbacks__stop__patience=3
        entries = [(str(key), value) for key, value in given.items()]
    else:
        entries = list(enumerate(given if isinstance(given, (list, tuple)) else [given]))
    keys = {str(index) for index, _ in entries}
    for name in routed:
        head, sep, _ = name.partition("__")
        if sep and head not in keys:
            listed = ", ".join(sorted(keys))
            raise ConfigError(
                f"Unknown parameter 'callbacks__{name}': {head!r} names no callback in "
                f"`callbacks` (their keys: {listed}). Write callbacks__<key>__option, or "
                f"callbacks__option for all of them."
            )
    shared = {k: v for k, v in routed.items() if "__" not in k}
    result = []
    for index, callback in entries:
        own = {k.split("__", 1)[1]: v for k, v in routed.items() if k.startswith(f"{index}__")}
        if inspect.isclass(callback):
            check_routed("callbacks", {**shared, **own}, accepted_options(callback), callback.__name__)
            result.append(callback(**{**shared, **own}))
        elif hasattr(callback, "set_model"):
            valid = accepted_options(type(callback)) | {k for k in vars(callback) if not k.startswith("_")}
            check_routed("callbacks", own, valid, type(callback).__name__)
            fresh = _clone_callback(callback)
            for name, value in own.items():
                setattr(fresh, name, value)
            result.append(fresh)
        else:
            raise ConfigError(
                f"`callbacks` must hold keras.callbacks.Callback instances or classes. "
                f"Received: {callback!r} at index {index}"
            )
    return result


def build_name(build):
    return getattr(build, "__qualname__", None) or getattr(build, "__name__", None) or repr(build)


def describe_meta(meta):
    """A short, readable rendering of the `meta` dict a build function gets."""
    shown = []
    for key, value in meta.items():
        if key == "classes_":
            values = np.asarray(value).tolist()
            value = values if len(values) <= 10 else values[:10] + ["..."]
        elif key == "spec":
            value = f"ProblemSpec(task={value.task!r})"
            shown.append(f"{key!r}: {value}")
            continue
        shown.append(f"{key!r}: {value!r}")
    return "{" + ", ".join(shown) + "}"


def call_build_function(build, meta, compile_options, parameters):
    """Calls the user's `model=` build function; any failure is a kerakit error naming it and `meta`.

    Args:
        build: the build function.
        meta: the fitted facts it may take as `meta`.
        compile_options: a callable giving `compile_kwargs` when it takes them.
        parameters: {name: value} of its own (`model__` and unrouted) parameters.
    """
    import keras

    name = build_name(build)
    try:
        signature = inspect.signature(build).parameters
    except (TypeError, ValueError):
        signature = {}
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.values())
    arguments = {}
    if "meta" in signature:
        arguments["meta"] = meta
    if "compile_kwargs" in signature:
        arguments["compile_kwargs"] = compile_options()
    for option, value in parameters.items():
        if option not in signature and not takes_any:
            raise ConfigError(
                f"The build function {name!r} takes no argument {option!r} (its arguments: "
                f"{', '.join(signature) or 'none'}). Add it to the function, or drop the "
                f"parameter model__{option}."
            )
        arguments[option] = value
    missing = [p for p, spec in signature.items() if spec.default is inspect.Parameter.empty
               and spec.kind in (spec.POSITIONAL_OR_KEYWORD, spec.KEYWORD_ONLY) and p not in arguments]
    if missing:
        raise ConfigError(
            f"The build function {name!r} needs the argument(s) {missing}, which the estimator "
            f"does not pass. It passes `meta` and `compile_kwargs` when the function has those "
            f"arguments, and its own parameters: write model__{missing[0]}=... on the estimator, "
            f"or give the argument a default. Received: meta={describe_meta(meta)}"
        )
    try:
        model = build(**arguments)
    except Exception as error:  # the user's code: any failure is reported with what it got
        raise ConfigError(
            f"The build function {name!r} raised {type(error).__name__}: {str(error).rstrip('.')}. Fix the "
            f"function; it was called with meta={describe_meta(meta)} and the parameters "
            f"{sorted(parameters)}."
        ) from error
    if not isinstance(model, keras.Model):
        raise ConfigError(
            f"The build function {name!r} must return a keras.Model. "
            f"Received: {type(model).__name__} (meta={describe_meta(meta)})"
        )
    return model


def output_width(model):
    """The width of a network's single output, or None when it cannot be read before training."""
    outputs = getattr(model, "outputs", None)
    try:
        if not outputs or len(outputs) != 1:
            return None
        shape = tuple(outputs[0].shape)
    except (AttributeError, TypeError, ValueError):
        return None
    if not shape:
        return None
    return 1 if len(shape) == 1 else shape[-1]


def check_output_width(model, source, spec, meta):
    """Refuses a network whose output cannot fit the targets (one output for three classes)."""
    width = output_width(model)
    expected = spec.num_outputs
    if width is None or width == expected or (spec.task == "binary" and width == 2):
        return
    what = {"binary": "2 classes (one sigmoid output, or two softmax outputs)",
            "multiclass": f"{expected} classes (one softmax output per class)",
            "multilabel": f"{expected} labels (one sigmoid output per label)",
            "regression": f"{expected} target column(s) (one linear output per column)"}[spec.task]
    raise ConfigError(
        f"{source} returned a network with {width} output(s) for {what}. Size its last layer "
        f"from meta (meta['n_classes_'] or meta['n_outputs_']). "
        f"Received: meta={describe_meta(meta)}"
    )
