"""`WeightedAverage`: the last layer of `kerakit.ensemble`'s models."""

import keras

from kerakit.layers._base import PACKAGE


@keras.saving.register_keras_serializable(package=PACKAGE)
class WeightedAverage(keras.layers.Layer):
    """Weighted mean of its inputs; the weights are fixed numbers in the config.

    Args:
        weights: one weight per input (normalized to sum to one).

    Example:

    ```python
    averaged = WeightedAverage([0.2, 0.8], name="average")([first.output, second.output])
    ```
    """

    def __init__(self, weights, **kwargs):
        super().__init__(**kwargs)
        self.member_weights = [float(w) for w in weights]

    def call(self, inputs):
        total = sum(self.member_weights)
        return sum(t * (w / total) for t, w in zip(inputs, self.member_weights, strict=True))

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "weights": self.member_weights}
