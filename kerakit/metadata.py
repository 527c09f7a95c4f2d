"""The problem spec saved with the model: `spec_of`, `attach_spec` and the `SpecOutput` layer.

A model kerakit builds ends in `SpecOutput`, an identity layer whose config
holds the `ProblemSpec` (`ProblemSpec.to_config()`). Keras saves a layer's
config in the `.keras` file, so the spec survives `model.save` and comes back
with `keras.saving.load_model` — the way `kerakit.data`'s `TableOutput`
carries a table's metadata. `spec_of(model)` is the one reader.

Only the spec module is imported with this one; Keras loads when a layer is
made. The layer class lives in `kerakit.layers` (registered as
`kerakit>SpecOutput` when that package is imported).

Example:

```python
model = kk.build_model(spec, input_shape=(8,))
model.save("model.keras")
kk.spec_of(keras.saving.load_model("model.keras")) == spec  # True
```
"""

import sys
import weakref

from kerakit.errors import ConfigError
from kerakit.spec import ProblemSpec

SPEC_LAYER = "kerakit_spec"

# Specs of models kerakit did not build (a user's `build` function, an old
# file with no spec layer): kerakit does not rewire someone else's graph, so
# their spec stays with the model object in memory only (it is not saved).
# A weak mapping rather than an attribute on the model: the entry goes when
# the model goes, and the model's own state is untouched.
_ATTACHED = weakref.WeakKeyDictionary()


def spec_output(outputs, spec, name=SPEC_LAYER):
    """Appends a `SpecOutput` layer holding `spec` to a symbolic output tensor.

    Example:

    ```python
    outputs = spec_output(keras.layers.Dense(3, activation="softmax")(features), spec)
    model = keras.Model(inputs, outputs)
    ```
    """
    if not isinstance(spec, ProblemSpec):
        raise ConfigError(f"`spec` must be a kerakit.ProblemSpec. Received: {spec!r}")
    from kerakit.layers import SpecOutput

    return SpecOutput(spec, name=name)(outputs)


def _spec_layer(model):
    layers = sys.modules.get("kerakit.layers")
    if layers is None:  # never imported in this process, so no model holds a SpecOutput
        return None
    for layer in reversed(list(getattr(model, "layers", None) or ())):
        if isinstance(layer, layers.SpecOutput):
            return layer
    return None


def output_before_spec(model):
    """The model's (first) output tensor as its output layer gives it, before `SpecOutput`.

    Example:

    >>> model = kk.build_model(kk.ProblemSpec(task="binary"), input_shape=(4,))
    >>> output_before_spec(model) is model.get_layer("output").output
    True
    """
    output = model.outputs[0]
    layer = _spec_layer(model)
    if layer is not None and layer.output is output:
        return layer.input
    return output


def attach_spec(model, spec):
    """Records `spec` as the problem spec of `model`; returns the model.

    A kerakit model's `SpecOutput` layer takes the new spec, so it is saved
    with the model. A model without one (built outside kerakit) keeps it in
    memory only; `spec_of` returns it for as long as the model lives.

    Example:

    >>> model = kk.build_model(kk.ProblemSpec(task="binary"), input_shape=(4,))
    >>> attach_spec(model, kk.ProblemSpec(task="binary")) is model
    True
    """
    if not isinstance(spec, ProblemSpec):
        raise ConfigError(f"`spec` must be a kerakit.ProblemSpec. Received: {spec!r}")
    layer = _spec_layer(model)
    if layer is not None:
        layer.problem_spec = spec
    else:
        _ATTACHED[model] = spec
    return model


def spec_of(model):
    """Returns the `ProblemSpec` of a model, or None when nothing records one.

    Read, in order, from: the model's `SpecOutput` layer (models kerakit
    built, saved or not), and the spec `attach_spec` gave a model without
    that layer.

    Example:

    >>> spec_of(kk.build_model(kk.ProblemSpec(task="binary"), input_shape=(4,))).task
    'binary'
    """
    layer = _spec_layer(model)
    if layer is not None and layer.problem_spec is not None:
        return layer.problem_spec
    try:
        return _ATTACHED.get(model)
    except TypeError:  # not weak-referenceable, so never attached
        return None
