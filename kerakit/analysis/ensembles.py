"""Ensembles for `kerakit.analysis`: `ensemble` and `ensemble_from_tuner`.

Both average several trained models that take the same inputs into one
`keras.Model`, which saves and serves like any other. Keras is imported only
when a function needs it. The averaging layer, `WeightedAverage`, lives in
`kerakit.layers`, where the safe loader reaches it too.
"""

import math

from kerakit.analysis.loading import input_structure, spec_from_model
from kerakit.errors import ConfigError, DataTypeError
from kerakit.metadata import spec_output
from kerakit.saving import load_model

# Ensembles ---------------------------------------------------------------------


def _signature(model):
    struct = input_structure(model)
    if struct is None:
        return None
    if isinstance(struct, dict):
        return {k: (tuple(t.shape[1:]), str(t.dtype)) for k, t in struct.items()}
    if isinstance(struct, (list, tuple)):
        return [(tuple(t.shape[1:]), str(t.dtype)) for t in struct]
    return (tuple(struct.shape[1:]), str(struct.dtype))


def _members(models):
    if hasattr(models, "get_best_models"):
        raise DataTypeError(
            "Received a tuner: use kerakit.ensemble_from_tuner(tuner, top_k=5) to average its "
            "best models."
        )
    models = [load_model(m) for m in models]
    if len(models) < 2:
        raise ConfigError(f"An ensemble needs at least 2 models. Received {len(models)}.")
    return models


def ensemble(models, weights=None, *, spec=None, name="ensemble"):
    """Averages several models' outputs into one saveable `keras.Model`.

    Members must take the same inputs and produce outputs of the same shape.
    Classifiers average their probabilities, regressors their predictions.
    The result is a plain functional model: `save` it, `load_model` it with
    `safe_mode=True`, serve it. It is not compiled (it predicts; compile it
    yourself to train it further), and it shares the members' weights rather
    than copying them.

    Args:
        models: a list of `keras.Model`s or `.keras` paths (tuner top-k,
            cross-validation fold models, or any list).
        weights: optional non-negative weight per member; equal by default.
        spec: the `ProblemSpec`; defaults to the members'. It is attached for
            `kerakit.evaluate`.
        name: the model's name. Defaults to "ensemble".

    Example:

    ```python
    models = [kk.build_model(spec, input_shape=(64,), seed=s) for s in range(5)]
    for m in models: kk.fit(m, x_train, y_train, epochs=20)
    team = kk.ensemble(models)
    team.save("ensemble.keras")
    ```
    """
    import keras

    members = _members(models)
    signature = _signature(members[0])
    if signature is None:
        raise DataTypeError(
            "Ensemble members must be functional or Sequential models with known inputs. "
            "Call the model once on data (or build it with keras.Input) first."
        )
    for i, member in enumerate(members[1:], start=1):
        if _signature(member) != signature:
            raise ConfigError(
                f"Member {i} takes inputs {_signature(member)}, member 0 takes {signature}. "
                f"Every member must take the same inputs."
            )
        if tuple(member.output_shape) != tuple(members[0].output_shape):
            raise ConfigError(
                f"Member {i} outputs shape {member.output_shape}, member 0 outputs "
                f"{members[0].output_shape}. Every member must predict the same thing."
            )
    if weights is not None:
        weights = [float(w) for w in weights]
        if len(weights) != len(members) or any(not math.isfinite(w) or w < 0 for w in weights) \
                or sum(weights) <= 0:
            raise ConfigError(
                f"`weights` must be {len(members)} non-negative numbers, not all zero. "
                f"Received: weights={weights!r}"
            )
    struct = members[0].input
    if isinstance(struct, dict):
        inputs = {k: keras.Input(shape=t.shape[1:], dtype=t.dtype, name=k) for k, t in struct.items()}
    elif isinstance(struct, (list, tuple)):
        inputs = [keras.Input(shape=t.shape[1:], dtype=t.dtype, name=t.name) for t in struct]
    else:
        inputs = keras.Input(shape=struct.shape[1:], dtype=struct.dtype, name="features")
    # Re-wrapping each member under a unique name: models built by the same
    # factory share a name, and a functional model refuses duplicate names.
    outputs = [
        keras.Model(member.input, member.output, name=f"member_{i}")(inputs)
        for i, member in enumerate(members)
    ]
    if weights is None or len(set(weights)) == 1:
        averaged = keras.layers.Average(name="average")(outputs)
    else:
        from kerakit.layers import WeightedAverage

        averaged = WeightedAverage(weights, name="average")(outputs)
    spec = spec or spec_from_model(members[0])
    if spec is not None:  # saved with the ensemble, as build_model saves it
        averaged = spec_output(averaged, spec)
    return keras.Model(inputs, averaged, name=name)


def ensemble_from_tuner(tuner, top_k=5, *, weights=None, spec=None, name="ensemble"):
    """Averages the `top_k` best models of a plain Keras Tuner search.

    A kerakit `tune` search keeps fold weights rather than Keras Tuner's
    per-trial checkpoints; ask it for its fold ensemble instead:
    `kk.tune(..., cv=5, refit=kk.tuning.Refit(ensemble=True)).ensemble`.

    Example:

    ```python
    team = kk.ensemble_from_tuner(tuner, top_k=3)
    ```
    """
    if hasattr(tuner, "tuner") or type(tuner).__module__.startswith("kerakit."):
        raise ConfigError(
            "ensemble_from_tuner takes a plain keras_tuner tuner. For a kerakit.tune search, "
            "pass refit=kk.tuning.Refit(ensemble=True) with cv=k (kk.tune(..., cv=5, "
            "refit=kk.tuning.Refit(ensemble=True))) and use "
            "result.ensemble, or build members with kk.ensemble([...])."
        )
    if not hasattr(tuner, "get_best_models"):
        raise DataTypeError(
            f"Expected a keras_tuner tuner (or a result with a `.tuner`). Received: "
            f"{type(tuner).__name__}"
        )
    return ensemble(tuner.get_best_models(num_models=int(top_k)), weights=weights, spec=spec,
                    name=name)
