"""`SpecOutput`: the identity layer whose config holds a model's `ProblemSpec`."""

import keras

from kerakit.errors import ConfigError
from kerakit.layers._base import PACKAGE
from kerakit.spec import ProblemSpec


def as_spec(spec):
    """A `ProblemSpec`, its config dict, or None → a `ProblemSpec` or None."""
    if spec is None or isinstance(spec, ProblemSpec):
        return spec
    if isinstance(spec, dict):
        return ProblemSpec.from_config(spec)
    raise ConfigError(f"`spec` must be a kerakit.ProblemSpec. Received: {spec!r}")


@keras.saving.register_keras_serializable(package=PACKAGE)
class SpecOutput(keras.layers.Identity):
    """Last layer of a kerakit model: passes the output through, holds the problem spec.

    It has no weights and never casts (`autocast=False`): predictions,
    parameter count and the output dtype (float32 under mixed precision)
    are those of the layer before it. Its config holds `spec.to_config()`,
    so the spec survives `model.save`; `kerakit.spec_of(model)` reads it.

    Args:
        spec: a `ProblemSpec`, or its config dict.

    Example:

    ```python
    outputs = SpecOutput(spec, name="kerakit_spec")(outputs)
    ```
    """

    def __init__(self, spec=None, **kwargs):
        kwargs.pop("autocast", None)
        super().__init__(autocast=False, **kwargs)
        self.problem_spec = as_spec(spec)

    def get_config(self):
        spec = self.problem_spec
        return {**super().get_config(), "spec": spec.to_config() if spec is not None else None}
