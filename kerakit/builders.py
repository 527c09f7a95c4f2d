"""Body registry and `build_model`: problem spec → compiled `keras.Model`.

A *body* maps the inputs to features; kerakit adds the head the spec calls
for and compiles. Bodies read every setting from Keras Tuner
`HyperParameters`, so one builder serves both `build_model` (a fresh
`HyperParameters` returns each default; options you pass are pinned with
`hp.Fixed`) and `tune` (the tuner chooses).
"""

import math

from kerakit import bodies, heads
from kerakit.backend import set_random_seed
from kerakit.checks import check_fraction, is_integer
from kerakit.errors import ConfigError, SpecError, unknown_name
from kerakit.metadata import spec_output
from kerakit.optimizers import OPTIMIZERS, default_learning_rate, get_optimizer
from kerakit.spec import ProblemSpec

BODIES = {}

# The widest output layer build_model makes (classes, labels or targets). A
# wider one is almost always a label typo (0-9 plus 10**9) and would hold
# millions of weights; raise it with `kerakit.builders.MAX_OUTPUTS = n`.
MAX_OUTPUTS = 100_000

# Optimizers in the default search space (AdamW stays available by name).
SEARCH_OPTIMIZERS = ("adam", "rmsprop", "sgd", "adagrad")


class Body:
    """A registered body: `build(spec, hp)` returns a callable on the input tensor.

    `options` names the keyword options `build_model` accepts for this body;
    `pin(hp, **options)` writes them into `hp` as fixed values.
    """

    def __init__(self, name, build, options=(), pin=None, ensemble=False):
        self.name = name
        self.build = build
        self.options = tuple(options)
        self._pin = pin
        self.ensemble = bool(ensemble)

    def pin(self, hp, **options):
        unknown = sorted(set(options) - set(self.options))
        if unknown and self.options:
            listed = ", ".join(self.options)
            raise ConfigError(
                f"Body '{self.name}' has no option(s) {unknown}. Its options are: {listed}."
            )
        if self._pin is not None:
            self._pin(hp, **options)
            return
        for key, value in options.items():
            hp.Fixed(key, value)


def register_body(name, build=None, *, options=(), pin=None, ensemble=False):
    """Registers a body builder under `name` (usable as a decorator).

    A builder is `build(spec, hp)` — a function or a class — that returns a
    callable mapping the input tensor to a feature tensor (a `keras.Sequential`,
    a layer, or a function). kerakit adds the output layer. Read settings from
    `hp` (`hp.Int`, `hp.Choice`, ...) with defaults, so the same builder works
    in `build_model` and in `tune`.

    Args:
        name: the name `build_model(body=...)` will accept.
        build: the builder; omit to use as a decorator.
        options: names of keyword options `build_model` may pass; each is
            pinned into `hp` with `hp.Fixed`. Empty means any scalar option.
        pin: optional `pin(hp, **options)` for options that are not scalars.
        ensemble: the body returns `(batch, members, features)` (an ensemble
            such as the "table" body); kerakit then gives each member its own
            output layer and averages their predictions.

    Example:

    ```python
    @kk.register_body("wide")
    def wide(spec, hp):
        return keras.layers.Dense(hp.Int("width", 64, 1024, default=512), activation="relu")

    model = kk.build_model(spec, input_shape=(8,), body="wide", width=256)
    ```
    """

    def decorator(builder):
        if not callable(builder):
            raise ConfigError(f"A body builder must be callable. Received: {builder!r}")
        BODIES[name] = Body(name, builder, options, pin, ensemble)
        return builder

    return decorator(build) if build is not None else decorator


def get_body(identifier):
    """Returns the registered `Body` for a name, or wraps a `build(spec, hp)` callable."""
    if isinstance(identifier, Body):
        return identifier
    if callable(identifier):
        return Body(getattr(identifier, "__name__", "custom"), identifier)
    if identifier not in BODIES:
        raise unknown_name("body", identifier, BODIES)
    return BODIES[identifier]


# The built-in MLP body ----------------------------------------------------

_MLP_DEFAULT_UNITS = (128, 64)


def _pin_mlp(hp, units=None, **scalars):
    if units is not None:
        bodies.pin_units(hp, units)
    for key, value in scalars.items():
        if value is None:
            continue
        if key == "dropout":
            check_fraction("dropout", value, include_low=True, example="0.2 (a rate)")
        elif key in ("l1", "l2"):
            check_fraction(key, value, 0.0, math.inf, include_low=True, example="1e-4")
        hp.Fixed(key, value)


def mlp(spec, hp):
    """A stack of Dense layers with optional batch norm, dropout and L1/L2 penalties."""
    import keras

    depth = hp.Int("depth", 1, 4, default=len(_MLP_DEFAULT_UNITS))
    dropout = hp.Float("dropout", 0.0, 0.5, step=0.1, default=0.2)
    l1 = hp.Choice("l1", [0.0, 1e-5, 1e-4, 1e-3], default=0.0)
    l2 = hp.Choice("l2", [0.0, 1e-5, 1e-4, 1e-3, 1e-2], default=1e-4)
    batchnorm = hp.Boolean("batchnorm", default=False)
    activation = hp.Choice("activation", ["relu", "gelu", "tanh"], default="relu")
    regularizer = keras.regularizers.L1L2(l1=l1, l2=l2) if (l1 or l2) else None
    layers = []
    for i in range(depth):
        default = _MLP_DEFAULT_UNITS[i] if i < len(_MLP_DEFAULT_UNITS) else 32
        width = hp.Int(f"units_{i}", 16, 512, step=16, default=default)
        layers.append(keras.layers.Dense(width, kernel_regularizer=regularizer, name=f"dense_{i}"))
        if batchnorm:
            layers.append(keras.layers.BatchNormalization(name=f"batchnorm_{i}"))
        layers.append(keras.layers.Activation(activation, name=f"{activation}_{i}"))
        if dropout:
            layers.append(keras.layers.Dropout(dropout, name=f"dropout_{i}"))
    return keras.Sequential(layers, name="body")


register_body(
    "mlp", mlp, options=("units", "dropout", "l1", "l2", "batchnorm", "activation"), pin=_pin_mlp
)

# Images and sequences (kerakit/bodies.py; issue 16).
register_body("cnn", bodies.cnn, options=bodies.CNN_OPTIONS, pin=bodies.pin_cnn)
register_body("sequence", bodies.sequence, options=bodies.SEQUENCE_OPTIONS, pin=bodies.pin_sequence)


register_body("table", bodies.table, options=bodies.TABLE_BODY_OPTIONS, pin=bodies.pin_table,
              ensemble=True)


def _head(spec, features, ensemble=False):
    """The spec's output layer; an ensemble body's `(batch, members, d)` gets one per member, averaged."""
    import keras

    if ensemble:
        from kerakit.layers import ensemble_output

        return ensemble_output(spec, features)
    return keras.layers.Dense(
        spec.num_outputs, activation=spec.activation, dtype="float32", name="output"
    )(features)


# Losses -------------------------------------------------------------------


def _loss_name(loss):
    return heads.LOSS_ALIASES.get(loss, loss) if isinstance(loss, str) else None


def resolve_loss(spec, loss="auto"):
    """Returns the loss to compile with: the spec's, or an explicit one checked against it."""
    if loss in ("auto", None):
        return spec.loss
    name = _loss_name(loss)
    if name is None:
        return loss  # a loss object or function: used as given
    reason = heads.INCOMPATIBLE_LOSSES.get(spec.head, {}).get(name)
    if reason:
        raise SpecError(
            f"loss={loss!r} cannot work with this spec ({spec.head}, {spec.activation} output): "
            f"{reason}. Use loss='auto' (gives {spec.loss!r}) or change the spec."
        )
    import keras
    from keras.src import losses as keras_losses

    try:
        keras.losses.get(name)
    except ValueError:
        valid = [k for k in keras_losses.ALL_OBJECTS_DICT if k.islower()]
        raise unknown_name("loss", loss, valid) from None
    return name


# build_model --------------------------------------------------------------


def _input_tensor(input_shape, inputs):
    import keras

    if inputs is not None:
        return inputs
    if input_shape is None:
        raise ConfigError(
            "build_model needs `input_shape` (e.g. input_shape=(x.shape[1],)) or `inputs`. "
            "Received neither."
        )
    if isinstance(input_shape, int):
        input_shape = (input_shape,)
    shape = tuple(input_shape)
    if not shape or any(d is not None and (not is_integer(d) or d < 1) for d in shape):
        raise ConfigError(
            f"`input_shape` must be a tuple of positive integers, without the batch "
            f"dimension. Received: input_shape={input_shape!r}"
        )
    return keras.Input(shape=shape, name="features")


def _check_output_width(spec):
    width = spec.num_outputs
    if width > MAX_OUTPUTS:
        option = {"multiclass": "num_classes", "multilabel": "num_labels"}.get(spec.task, "num_targets")
        raise SpecError(
            f"The output layer would have {width:,} units ({option}={width}), more than "
            f"kerakit.builders.MAX_OUTPUTS ({MAX_OUTPUTS:,}). That is usually a stray label (one "
            f"typo such as 10**9 among classes 0-9): check the labels and {option}. If you do "
            f"need it, set kerakit.builders.MAX_OUTPUTS = {width} before building."
        )


def build_model(
    spec,
    input_shape=None,
    *,
    body="mlp",
    hp=None,
    inputs=None,
    preprocessor=None,
    units=None,
    dropout=None,
    l1=None,
    l2=None,
    batchnorm=None,
    optimizer="auto",
    learning_rate="auto",
    loss="auto",
    metrics="auto",
    seed=None,
    jit_compile="auto",
    name=None,
    strategy=None,
    mixed_precision=None,
    **body_options,
):
    """Builds and compiles a plain `keras.Model` for a problem spec.

    The output layer, loss and metrics come from the spec (see
    `kerakit.heads`); a loss or metrics you pass are used as given, and a loss
    that cannot work with the spec is refused before anything is built.

    Args:
        spec: a `ProblemSpec`.
        input_shape: shape of one example without the batch dimension, e.g.
            `(64,)`. Not needed when `inputs` is given.
        body: a registered body name (default "mlp"), a `Body`, or a
            `build(spec, hp)` callable.
        hp: Keras Tuner `HyperParameters` to read settings from. Defaults to a
            fresh one, which yields each default.
        inputs: Keras input tensor(s) to use instead of `input_shape` (e.g. a
            dict of raw columns); `preprocessor` then maps them to one tensor.
        preprocessor: callable applied to `inputs` before the body.
        units, dropout, l1, l2, batchnorm: options of the "mlp" body.
            Defaults to units=(128, 64), dropout=0.2, l1=0, l2=1e-4, no batch norm.
        optimizer: "adam", "adamw", "rmsprop", "sgd" (momentum 0.9),
            "adagrad", or an optimizer object. "auto" is "adam" (or the tuner's
            choice).
        learning_rate: a float, or "auto" for the optimizer's usual rate.
        loss: "auto" for the spec's loss, or a Keras loss name/object.
        metrics: "auto" for the spec's metrics, or a list used as given.
        seed: seeds Keras's global generators before weights are created.
        jit_compile: passed to `compile` (True compiles each step with XLA).
            Defaults to "auto".
        name: the model's name.
        strategy: a `tf.distribute.Strategy` or a name ("mirrored",
            "multiworker", "default"; see `kerakit.get_strategy`): the model is
            created and compiled inside its scope. Train it with
            `fit(..., strategy=<the same>)`. Defaults to None (no strategy).
        mixed_precision: a Keras dtype policy for the body, e.g.
            "mixed_float16" (GPUs) or "mixed_bfloat16"; the output layer stays
            float32. Defaults to None (float32).
        **body_options: options of a custom body.

    Example:

    >>> spec = ProblemSpec(task="multiclass", num_classes=10)
    >>> model = build_model(spec, input_shape=(64,), units=(64,), dropout=0.1)
    >>> model.loss
    'sparse_categorical_crossentropy'
    """
    if not isinstance(spec, ProblemSpec):
        raise ConfigError(
            f"`spec` must be a kerakit.ProblemSpec (see kerakit.infer_spec). Received: {spec!r}"
        )
    _check_output_width(spec)
    body = get_body(body)
    compiled_loss = resolve_loss(spec, loss)

    import keras
    import keras_tuner

    if seed is not None:
        set_random_seed(int(seed))
    hp = keras_tuner.HyperParameters() if hp is None else hp
    options = dict(units=units, dropout=dropout, l1=l1, l2=l2, batchnorm=batchnorm)
    options = {k: v for k, v in options.items() if v is not None}
    body.pin(hp, **options, **body_options)
    from kerakit.strategies import model_scope

    # Variables (weights, optimizer slots, metrics) belong to the strategy
    # they are created under, so everything from the optimizer on is built here.
    with model_scope(strategy, mixed_precision):
        optimizer_object = _resolve_optimizer(hp, optimizer, learning_rate)

        tensor_in = _input_tensor(input_shape, inputs)
        features = preprocessor(tensor_in) if preprocessor is not None else tensor_in
        builder = body.build
        features = builder(spec, hp)(features)
        outputs = _head(spec, features, ensemble=body.ensemble)
        # The spec rides in the saved file as the config of a last, identity layer.
        outputs = spec_output(outputs, spec)
        model = keras.Model(tensor_in, outputs, name=name or f"kerakit_{spec.task}")
        model.compile(
            optimizer=optimizer_object,
            loss=compiled_loss,
            metrics=heads.make_metrics(spec) if metrics == "auto" else metrics,
            jit_compile=jit_compile,
        )
    return model


def _resolve_optimizer(hp, optimizer, learning_rate):
    import keras

    if isinstance(optimizer, keras.optimizers.Optimizer):
        return get_optimizer(optimizer, learning_rate)
    if optimizer in ("auto", None):
        name = hp.Choice("optimizer", list(SEARCH_OPTIMIZERS), default="adam")
    else:
        if not isinstance(optimizer, str) or optimizer.lower() not in OPTIMIZERS:
            get_optimizer(optimizer)  # raises the helpful error
        name = hp.Fixed("optimizer", optimizer.lower())
    if learning_rate in ("auto", None):
        rate = hp.Float("learning_rate", 1e-4, 1e-1, sampling="log", default=default_learning_rate(name))
    else:
        get_optimizer(name, learning_rate)  # validates the value
        rate = hp.Fixed("learning_rate", float(learning_rate))
    return get_optimizer(name, rate)

