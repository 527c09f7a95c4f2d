"""Predictions with uncertainty: Monte-Carlo dropout passes and deep-ensemble members.

The Monte-Carlo passes over a pool run as one batched call of the model on
the pool tiled `passes` times, not as `passes` Python calls of `predict`: on
TensorFlow inside one cached `tf.function` per model; on JAX and PyTorch as
one eager call (Keras's stateful dropout seed cannot be traced there, and
each op is already compiled once by the backend).
"""

import weakref

import numpy as np

from kerakit.checks import check_count
from kerakit.errors import ConfigError

# Monte-Carlo passes are run as one batch of tiled rows; chunks of the pool
# keep that batch at most this many rows.
MC_MAX_ROWS = 65536


# model → {(passes, training): tf.function}; entries go when the model does.
_FORWARD = weakref.WeakKeyDictionary()


def _forward_function(model, passes, training, feature_shape):
    """A cached `tf.function` for one model and mode, traced once for any number of rows.

    With `passes > 1` the rows are tiled `passes` times and run through the
    model in one call; the result has shape (passes, rows, ...outputs).
    """
    import keras

    if keras.backend.backend() != "tensorflow":
        return lambda x: _eager_forward(model, x, passes, training)
    functions = _FORWARD.setdefault(model, {})
    key = (int(passes), bool(training))
    if key not in functions:
        import tensorflow as tf

        def forward(x):
            if passes == 1:
                return model(x, training=training)[None]
            rows = tf.shape(x)[0]
            tiled = tf.repeat(x[None], passes, axis=0)  # (passes, rows, ...features)
            tiled = tf.reshape(tiled, tf.concat([[passes * rows], tf.shape(x)[1:]], axis=0))
            out = model(tiled, training=training)
            return tf.reshape(out, tf.concat([[passes, rows], tf.shape(out)[1:]], axis=0))

        signature = [tf.TensorSpec((None, *feature_shape), tf.float32)]
        functions[key] = tf.function(forward, input_signature=signature)
    return functions[key]


def _eager_forward(model, x, passes, training):
    import contextlib

    import keras

    rows = len(x)
    tiled = np.broadcast_to(x[None], (passes, *x.shape)).reshape(passes * rows, *x.shape[1:])
    no_grad = contextlib.nullcontext()
    if keras.backend.backend() == "torch":
        import torch

        no_grad = torch.no_grad()
    with no_grad:
        out = keras.ops.convert_to_numpy(model(tiled, training=training))
    return out.reshape(passes, rows, *out.shape[1:])


def _stochastic_layers(model):
    import keras

    layers = list(model._flatten_layers(include_self=False))
    dropout = [layer for layer in layers if isinstance(layer, (keras.layers.Dropout,
                                                                keras.layers.GaussianDropout,
                                                                keras.layers.AlphaDropout,
                                                                keras.layers.SpatialDropout1D))]
    batchnorm = [layer for layer in layers if isinstance(layer, keras.layers.BatchNormalization)]
    return dropout, batchnorm


def _validated_pool(model, x):
    from kerakit.checks import model_input_shape, validate_features

    return validate_features(x, model_input_shape(model), what="x_pool")


def _run(model, x, passes, training):
    fn = _forward_function(model, passes, training, x.shape[1:])
    chunk = max(1, MC_MAX_ROWS // passes)
    parts = [np.asarray(fn(x[i:i + chunk])) for i in range(0, len(x), chunk)]
    return np.concatenate(parts, axis=1).astype(np.float64)


def predictive_samples(model, x, passes=20):
    """Draws predictions with dropout on (Monte-Carlo dropout) or one per ensemble member.

    For a single model the pool is tiled `passes` times and run through the
    model once per chunk with `training=True`, inside one `tf.function` —
    not `passes` calls of `predict`. Batch-norm statistics are left as they
    were. For a list of models (a deep ensemble) each member predicts once,
    with dropout off.

    Args:
        model: a `keras.Model` with dropout layers, or a list of models.
        x: features, shape (n, ...).
        passes: number of Monte-Carlo passes for a single model. Defaults to 20.

    Returns:
        An array of shape (passes or members, n, outputs).

    Example:

    ```python
    samples = predictive_samples(model, x_pool, passes=20)
    mean, std = samples.mean(0), samples.std(0)
    ```
    """
    import keras

    if isinstance(model, (list, tuple)):
        if len(model) < 2:
            raise ConfigError(
                f"A deep ensemble needs at least 2 members. Received {len(model)}. Pass more "
                f"models, or one model with dropout for Monte-Carlo dropout."
            )
        x = _validated_pool(model[0], x)
        return np.concatenate([_run(member, x, 1, False) for member in model], axis=0)
    passes = check_count("passes", passes, minimum=2)
    dropout, batchnorm = _stochastic_layers(model)
    if not dropout:
        raise ConfigError(
            f"Monte-Carlo dropout needs dropout layers, and model '{model.name}' has none, so "
            f"every pass would give the same prediction. Build it with dropout (e.g. "
            f"build_model(..., dropout=0.2)) or use a deep ensemble (ensemble_size=5)."
        )
    x = _validated_pool(model, x)
    # training=True also makes batch norm update its moving statistics; put them back.
    saved = [(v, keras.ops.convert_to_numpy(v)) for layer in batchnorm for v in layer.non_trainable_variables]
    try:
        return _run(model, x, int(passes), True)
    finally:
        for variable, value in saved:
            variable.assign(value)


def predict_mean(model, x):
    """Plain predictions (dropout off) of a model, or the mean over a deep ensemble's members.

    Example:

    ```python
    proba = predict_mean(members, x_pool)
    ```
    """
    from kerakit.training import predict_in_chunks

    members = model if isinstance(model, (list, tuple)) else [model]
    x = _validated_pool(members[0], x)
    return np.mean([predict_in_chunks(member, x) for member in members], axis=0).astype(np.float64)
