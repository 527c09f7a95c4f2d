"""Training a raw-column model: its rows encoded once, the layers after them trained on numbers.

A raw-column model's preprocessing layers (imputation, scaling,
piecewise-linear encodings, lookups, crossings) hold no trainable weights,
so `train_table_model` runs them once over the training and validation rows
and trains only the layers after the "features" layer, on a float matrix —
the pattern Keras's preprocessing guide recommends: preprocess once for
training, keep the preprocessing inside the model for inference. The two
views share every weight, so the saved model still takes raw rows. On a
float matrix every backend's engine trains (JAX's compiled epochs too) and
TensorFlow can XLA-compile the step. A model whose "features" layer is
missing (files from before), or whose preprocessing has trainable weights,
trains whole as before.

Regression on a log1p target then gets Duan's smearing factor from the
validation rows (`kerakit.data.targets.smearing_factor`), so the saved model
answers with a mean, not a median-like value.
"""

import numpy as np

from kerakit.data.preprocess import FEATURES_LAYER

ENCODE_BATCH = 8192


def split_at_features(train_model):
    """`(encode, core)`: raw rows → features, and features → training output; None, None if unsplittable.

    Both are uncompiled views sharing `train_model`'s layers and weights.

    Example:

    ```python
    encode, core = split_at_features(train_model)
    core.fit(encode.predict(x), y)  # trains train_model's weights
    ```
    """
    import keras

    try:
        features = train_model.get_layer(FEATURES_LAYER).output
    except ValueError:
        return None, None
    from kerakit.layers import quiet_input_names

    with quiet_input_names():
        encode = keras.Model(train_model.input, features, name="encode_rows")
    if encode.trainable_weights:
        return None, None
    return encode, keras.Model(features, train_model.outputs[0], name=f"{train_model.name}_core")


def encode_rows(encode, x):
    """Runs the preprocessing once over raw rows (a dict of columns) → a float32 matrix.

    On TensorFlow through `predict_padded` (a graph; text is looked up in it). On
    JAX and PyTorch eagerly, chunk by chunk, with text as host codes: the
    encoding runs once, and compiling it with XLA costs more than running it.
    """
    import keras

    from kerakit.backend import name as backend_name
    from kerakit.data.preprocess import backend_inputs
    from kerakit.training import predict_padded

    x = backend_inputs(encode, x)
    if backend_name() == "tensorflow":
        return np.asarray(predict_padded(encode, x, ENCODE_BATCH), dtype=np.float32)
    rows = len(next(iter(x.values())))
    chunks = [encode({k: v[i:i + ENCODE_BATCH] for k, v in x.items()}, training=False)
              for i in range(0, rows, ENCODE_BATCH)]
    return np.concatenate([keras.ops.convert_to_numpy(c) for c in chunks]).astype(np.float32)


def train_table_model(model, train_model, x, y, *, spec, encoder, validation_data=None,
                      **fit_options):
    """Trains a raw-column model (from `build_table_model`) on raw rows and encoded targets.

    Args:
        model, train_model: the pair `build_table_model` returns.
        x: the training rows, a dict of columns (`to_inputs`).
        y: targets as the network trains on them (`TargetEncoder.encode`).
        spec: the `ProblemSpec`.
        encoder: the fitted `TargetEncoder` (its transform sets the smearing).
        validation_data: `(x_val, y_val)` in the same forms, or None.
        **fit_options: passed to `kerakit.fit` (epochs, batch_size, callbacks, ...).

    Returns:
        the `History`.
    """
    from kerakit import heads
    from kerakit.data.preprocess import backend_inputs
    from kerakit.training import fit

    x = backend_inputs(train_model, x)
    if validation_data is not None:
        validation_data = (backend_inputs(train_model, validation_data[0]), *validation_data[1:])
    encode, core = split_at_features(train_model)
    if core is not None:  # the same optimizer object: the saved model keeps its state
        log_link = encoder.transform_.get("link") == "log"
        core.compile(optimizer=train_model.optimizer, loss=train_model.loss,
                     metrics=[] if log_link else heads.make_metrics(spec))
    if core is None:
        history = fit(train_model, x, y, spec=spec, validation_data=validation_data, **fit_options)
        trained, x_val = train_model, None if validation_data is None else validation_data[0]
    else:
        features = encode_rows(encode, x)
        if validation_data is not None:
            validation_data = (encode_rows(encode, validation_data[0]), *validation_data[1:])
        history = fit(core, features, y, spec=spec, validation_data=validation_data,
                      **fit_options)
        trained, x_val = core, None if validation_data is None else validation_data[0]
    if encoder.transform_.get("log1p"):
        rows, y_rows = (x_val, validation_data[1]) if validation_data is not None else (
            features if core is not None else x, y)
        set_smearing(model, trained, rows, y_rows, encoder)
    return history


def set_smearing(model, trained, x, y, encoder):
    """Sets the log1p smearing factor of `model`'s output layer from rows the network can predict."""
    from kerakit.data.targets import smearing_factor
    from kerakit.layers import TableOutput
    from kerakit.training import predict

    predicted = predict(trained, x)
    layer = next(layer for layer in model.layers if isinstance(layer, TableOutput))
    layer.set_smearing(smearing_factor(y, predicted, encoder.transform_["scale"]))
