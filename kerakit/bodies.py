"""The array bodies beside `mlp`: `cnn`, `sequence` and `table`, and raw-text inputs.

`kerakit.builders` registers these bodies on import, next to `mlp` (which
lives there). Like `mlp`, each reads its settings from Keras Tuner
`HyperParameters` with defaults, so the same builder serves `build_model`
and `tune`; the `pin_*` helpers fix the options a caller passes. Each body
checks the rank of the tensor it is given and refuses a wrong one with the
shapes it takes. `table` is the TabM-style ensemble of `fit_table`'s
default (see `kerakit.tabm`) for numeric feature arrays. Everything here runs
on every Keras backend except `text_inputs`, whose `TextVectorization` layer
is TensorFlow by nature.

Core floor, next to `builders` (which imports this module, never the reverse).
"""
import math

from kerakit.backend import require_tensorflow
from kerakit.checks import check_count, check_fraction, is_integer, validate_text
from kerakit.errors import ConfigError

_CNN_DEFAULT_FILTERS = (32, 64)
_SEQUENCE_DEFAULT_FILTERS = (64,)
_FLIPS = ["none", "horizontal", "vertical", "horizontal_and_vertical"]


def _shape_of(tensor):
    return tuple(getattr(tensor, "shape", ()) or ())


def _refuse_rank(body, tensor, takes, fix):
    shape = _shape_of(tensor)[1:]
    raise ConfigError(
        f"Body '{body}' takes {takes}; it was given inputs of shape {shape} per example "
        f"({len(shape)} dimension(s) after the batch). {fix}"
    )


def _pin_filters(hp, prefix, filters, allow_empty=False):
    filters = (filters,) if isinstance(filters, int) else tuple(filters)
    if (not filters and not allow_empty) or any(not is_integer(f) or f < 1 for f in filters):
        raise ConfigError(
            "`filters` must be a positive integer or a sequence of them, one per block. "
            f"Received: filters={filters!r}"
        )
    hp.Fixed(f"{prefix}_blocks", len(filters))
    for i, width in enumerate(filters):
        hp.Fixed(f"{prefix}_filters_{i}", width)


def _pin_scalars(hp, scalars):
    for key, value in scalars.items():
        if value is None:
            continue
        if key == "dropout":
            check_fraction("dropout", value, include_low=True, example="0.2 (a rate)")
        if key == "max_value":
            check_fraction("max_value", value, 0.0, math.inf, example="255 (the largest pixel value of uint8 images)")
        hp.Fixed(key, value)


# cnn ------------------------------------------------------------------------


def pin_cnn(hp, filters=None, **scalars):
    if filters is not None:
        _pin_filters(hp, "conv", filters)
    _pin_scalars(hp, scalars)


def _augmentation(hp):
    """Random flip / rotation / zoom / contrast layers (active only in training)."""
    import keras

    flip = hp.Choice("flip", _FLIPS, default="none")
    rotation = hp.Float("rotation", 0.0, 0.2, step=0.05, default=0.0)
    zoom = hp.Float("zoom", 0.0, 0.2, step=0.05, default=0.0)
    contrast = hp.Float("contrast", 0.0, 0.3, step=0.1, default=0.0)
    layers = []
    if flip != "none":
        layers.append(keras.layers.RandomFlip(flip, name="augment_flip"))
    if rotation:
        layers.append(keras.layers.RandomRotation(rotation, name="augment_rotation"))
    if zoom:
        layers.append(keras.layers.RandomZoom(zoom, name="augment_zoom"))
    if contrast:
        layers.append(keras.layers.RandomContrast(contrast, name="augment_contrast"))
    return layers


def cnn(spec, hp):
    """Convolution blocks (conv, batch norm, ReLU, pooling, dropout), then global pooling.

    Takes images of shape (height, width) or (height, width, channels) per
    example. Pixels are divided by `max_value` inside the model when it is
    set (255 for uint8 images), so the saved model takes raw pixels.

    Settings (`build_model` options, or searched by `tune`): `filters` (one
    width per block; default (32, 64), two 3×3 convolutions each),
    `kernel_size` (3), `dropout` (0.25), `batchnorm` (True), `pooling`
    ("avg" or "max" at the end), `units` (a Dense layer after pooling, 0 for
    none; default 128), `max_value` (None), and augmentation: `flip`,
    `rotation`, `zoom`, `contrast` (all off by default).

    Example:

    >>> spec = kk.ProblemSpec(task="multiclass", num_classes=10)
    >>> model = kk.build_model(spec, input_shape=(28, 28), body="cnn", max_value=255)
    >>> model.output_shape
    (None, 10)
    """
    import keras

    blocks = hp.Int("conv_blocks", 1, 4, default=len(_CNN_DEFAULT_FILTERS))
    widths = []
    for i in range(blocks):
        default = _CNN_DEFAULT_FILTERS[i] if i < len(_CNN_DEFAULT_FILTERS) else 128
        widths.append(hp.Int(f"conv_filters_{i}", 16, 256, step=16, default=default))
    kernel_size = hp.Choice("kernel_size", [3, 5], default=3)
    dropout = hp.Float("dropout", 0.0, 0.5, step=0.05, default=0.25)
    batchnorm = hp.Boolean("batchnorm", default=True)
    pooling = hp.Choice("pooling", ["avg", "max"], default="avg")
    units = hp.Int("units", 0, 512, step=32, default=128)
    max_value = hp.values.get("max_value")  # only when pinned: a search cannot know the pixels
    augmentation = _augmentation(hp)

    def apply(inputs):
        shape = _shape_of(inputs)
        if len(shape) == 3:  # N×H×W: one channel
            x = keras.layers.Reshape((*shape[1:], 1), name="add_channel")(inputs)
        elif len(shape) == 4:
            x = inputs
        else:
            _refuse_rank(
                "cnn", inputs, "images: (height, width) or (height, width, channels) per example",
                "Pass images as an N×H×W or N×H×W×C array and input_shape=(H, W) or (H, W, C) "
                "(e.g. x.reshape(-1, 8, 8) for 64 pixels in rows), or use body='mlp' for "
                "flat rows.",
            )
        if max_value:
            x = keras.layers.Rescaling(1.0 / float(max_value), name="rescale")(x)
        for layer in augmentation:
            x = layer(x)
        for i, width in enumerate(widths):
            for j in range(2):
                x = keras.layers.Conv2D(width, kernel_size, padding="same", use_bias=not batchnorm,
                                        name=f"conv_{i}_{j}")(x)
                if batchnorm:
                    x = keras.layers.BatchNormalization(name=f"conv_batchnorm_{i}_{j}")(x)
                x = keras.layers.Activation("relu", name=f"conv_relu_{i}_{j}")(x)
            height, width_px = _shape_of(x)[1:3]
            if (height or 2) >= 2 and (width_px or 2) >= 2:
                x = keras.layers.MaxPooling2D(2, name=f"pool_{i}")(x)
            if dropout:
                x = keras.layers.Dropout(dropout, name=f"conv_dropout_{i}")(x)
        pool = keras.layers.GlobalAveragePooling2D if pooling == "avg" else keras.layers.GlobalMaxPooling2D
        x = pool(name="global_pool")(x)
        if units:
            x = keras.layers.Dense(units, activation="relu", name="dense")(x)
            if dropout:
                x = keras.layers.Dropout(dropout, name="dense_dropout")(x)
        return x

    return apply


CNN_OPTIONS = ("filters", "kernel_size", "dropout", "batchnorm", "pooling", "units", "max_value",
               "flip", "rotation", "zoom", "contrast")


# sequence -------------------------------------------------------------------


def pin_sequence(hp, filters=None, **scalars):
    if filters is not None:
        _pin_filters(hp, "sequence_conv", filters, allow_empty=True)
    _pin_scalars(hp, scalars)


def sequence(spec, hp):
    """1-D convolutions and/or a small transformer encoder, then global pooling.

    Takes sequences of shape (steps,) (one number per step) or (steps,
    features) per example, e.g. the embedded tokens `text_inputs` makes.

    Settings: `filters` (one width per Conv1D block, () for none; default
    (64,)), `kernel_size` (5), `transformer_blocks` (1; 0 for none), `heads`
    (2), `key_dim` (32), `feedforward` (128), `dropout` (0.1), `pooling`
    ("avg" or "max"), `units` (a Dense layer after pooling, 0 for none;
    default 64).

    Example:

    >>> spec = kk.ProblemSpec(task="regression")
    >>> model = kk.build_model(spec, input_shape=(100, 3), body="sequence", transformer_blocks=0)
    >>> model.output_shape
    (None, 1)
    """
    import keras

    blocks = hp.Int("sequence_conv_blocks", 0, 3, default=len(_SEQUENCE_DEFAULT_FILTERS))
    widths = []
    for i in range(blocks):
        default = _SEQUENCE_DEFAULT_FILTERS[i] if i < len(_SEQUENCE_DEFAULT_FILTERS) else 64
        widths.append(hp.Int(f"sequence_conv_filters_{i}", 16, 256, step=16, default=default))
    kernel_size = hp.Choice("kernel_size", [3, 5, 7], default=5)
    transformer_blocks = hp.Int("transformer_blocks", 0, 2, default=1)
    heads = hp.Int("heads", 1, 8, default=2)
    key_dim = hp.Int("key_dim", 8, 64, step=8, default=32)
    feedforward = hp.Int("feedforward", 32, 512, step=32, default=128)
    dropout = hp.Float("dropout", 0.0, 0.5, step=0.05, default=0.1)
    pooling = hp.Choice("pooling", ["avg", "max"], default="avg")
    units = hp.Int("units", 0, 512, step=32, default=64)

    def apply(inputs):
        shape = _shape_of(inputs)
        if len(shape) == 2:  # N×T: one number per step
            x = keras.layers.Reshape((-1, 1), name="add_feature_axis")(inputs)
        elif len(shape) == 3:
            x = inputs
        else:
            _refuse_rank(
                "sequence", inputs, "sequences: (steps,) or (steps, features) per example",
                "Pass an N×T or N×T×F array and input_shape=(T,) or (T, F); for images use "
                "body='cnn', for raw text build with **kk.text_inputs(texts).",
            )
        for i, width in enumerate(widths):
            x = keras.layers.Conv1D(width, kernel_size, padding="same", activation="relu",
                                    name=f"sequence_conv_{i}")(x)
        if transformer_blocks and not widths and (_shape_of(x)[-1] or 0) < 8:
            # Attention over one or two numbers per step has nothing to mix: widen first.
            x = keras.layers.Dense(key_dim, name="sequence_project")(x)
        for i in range(transformer_blocks):
            x = _encoder_block(x, i, heads, key_dim, feedforward, dropout)
        pool = keras.layers.GlobalAveragePooling1D if pooling == "avg" else keras.layers.GlobalMaxPooling1D
        x = pool(name="sequence_pool")(x)
        if dropout:
            x = keras.layers.Dropout(dropout, name="sequence_dropout")(x)
        if units:
            x = keras.layers.Dense(units, activation="relu", name="dense")(x)
        return x

    return apply


def _encoder_block(x, i, heads, key_dim, feedforward, dropout):
    """One post-norm transformer encoder block (attention, then a feed-forward layer)."""
    import keras

    width = _shape_of(x)[-1]
    attended = keras.layers.MultiHeadAttention(heads, key_dim, dropout=dropout,
                                               name=f"attention_{i}")(x, x)
    x = keras.layers.LayerNormalization(name=f"attention_norm_{i}")(
        keras.layers.Add(name=f"attention_residual_{i}")([x, attended]))
    hidden = keras.layers.Dense(feedforward, activation="relu", name=f"feedforward_{i}")(x)
    hidden = keras.layers.Dense(width, name=f"feedforward_out_{i}")(hidden)
    if dropout:
        hidden = keras.layers.Dropout(dropout, name=f"feedforward_dropout_{i}")(hidden)
    return keras.layers.LayerNormalization(name=f"feedforward_norm_{i}")(
        keras.layers.Add(name=f"feedforward_residual_{i}")([x, hidden]))


SEQUENCE_OPTIONS = ("filters", "kernel_size", "transformer_blocks", "heads", "key_dim",
                    "feedforward", "dropout", "pooling", "units")


# text -----------------------------------------------------------------------


def text_inputs(texts, *, max_tokens=20_000, sequence_length=128, embedding_dim=64):
    """A raw-string input and the layers that turn it into embedded tokens.

    Adapts a `TextVectorization` layer on `texts` (lower-cased, punctuation
    stripped, split on whitespace) and follows it with an `Embedding`; both
    live inside the model, so the saved model takes raw strings. Pass the
    result to `build_model` with `body="sequence"`. TensorFlow backend only.

    Args:
        texts: the training texts (a list or array of strings).
        max_tokens: the vocabulary size, out-of-vocabulary token included.
            Defaults to 20000.
        sequence_length: tokens kept per text (padded or cut). Defaults to 128.
        embedding_dim: the width of each token's embedding. Defaults to 64.

    Returns:
        `{"inputs": keras.Input, "preprocessor": layer}` for `build_model`.

    Example:

    ```python
    model = kk.build_model(spec, **kk.text_inputs(x_train), body="sequence")
    kk.fit(model, x_train, y_train, epochs=5)
    ```
    """
    # The vocabulary holds the padding and out-of-vocabulary tokens too: 3 leaves one word.
    max_tokens = check_count("max_tokens", max_tokens, minimum=3)
    sequence_length = check_count("sequence_length", sequence_length)
    embedding_dim = check_count("embedding_dim", embedding_dim)
    require_tensorflow(
        "Text models (TextVectorization inside the model)",
        "Run with KERAS_BACKEND=tensorflow, or turn the text into numeric sequences yourself "
        "(N×T×F) and use body='sequence' on them.",
    )
    texts = validate_text(texts, "texts")
    import keras

    vectorizer = keras.layers.TextVectorization(
        max_tokens=int(max_tokens), output_sequence_length=int(sequence_length), name="vectorize"
    )
    vectorizer.adapt(texts.reshape(-1))
    vocabulary = len(vectorizer.get_vocabulary())
    preprocessor = keras.Sequential(
        [vectorizer, keras.layers.Embedding(vocabulary, int(embedding_dim), name="embedding")],
        name="tokens",
    )
    inputs = keras.Input(shape=(1,), dtype="string", name="text")
    return {"inputs": inputs, "preprocessor": preprocessor}


# table ----------------------------------------------------------------------

# The TabM-style ensemble of `fit_table`'s default (kerakit.data.bodies), as a
# body of build_model and tune on numeric feature arrays: k members share each
# kernel through BatchEnsemble adapters; build_model gives each member its own
# output layer and averages them.
TABLE_BODY_OPTIONS = ("units", "members", "dropout")
_TABLE_UNITS = (192, 192)  # fit_table's (kerakit.data.bodies.TABLE_DEFAULTS; a test keeps them equal)


def pin_units(hp, units):
    """Pins `units` (an int or one width per hidden layer) as `depth` and `units_i`."""
    units = (units,) if isinstance(units, int) else tuple(units)
    if not units or any(not is_integer(u) or u < 1 for u in units):
        raise ConfigError(
            "`units` must be a positive integer or a sequence of them, one per hidden "
            f"layer. Received: units={units!r}"
        )
    hp.Fixed("depth", len(units))
    for i, width in enumerate(units):
        hp.Fixed(f"units_{i}", width)


def pin_table(hp, units=None, **scalars):
    if units is not None:
        pin_units(hp, units)
    members = scalars.get("members")
    if members is not None:
        check_count("members", members)
    _pin_scalars(hp, scalars)


def table(spec, hp):
    """k MLPs sharing kernels through BatchEnsemble adapters (TabM); features → (batch, k, units).

    Reads `members` (default 8), `depth` (hidden layers, default 2),
    `units_i` (their widths, default 192) and `dropout` (default 0.1), the
    same names as the "mlp" body where they mean the same.
    `build_model` puts one output layer per member after it and averages.
    """
    from kerakit.layers import ensemble_stack

    members = hp.Int("members", 1, 32, default=8)
    depth = hp.Int("depth", 1, 4, default=len(_TABLE_UNITS))
    widths = [hp.Int(f"units_{i}", 16, 1024, step=16, default=_TABLE_UNITS[min(i, len(_TABLE_UNITS) - 1)])
              for i in range(depth)]
    dropout = hp.Float("dropout", 0.0, 0.5, step=0.05, default=0.1)

    def apply(x):
        if len(x.shape) != 2:
            _refuse_rank("table", x, "(batch, features) rows of numbers",
                         "flatten the examples first, or use the 'cnn' or 'sequence' body")
        return ensemble_stack(x, widths, members, dropout)

    return apply
