"""Keras layers that kerakit's features share, defined lazily and registered with Keras.

`WeightedAverage` is the last layer of `kerakit.ensemble`'s models; the safe
loader (`kerakit.serving.load_model`) registers it before reading a file that
uses it. It lives on the core floor so that both can reach it without
importing each other.
"""

PACKAGE = "kerakit"
_LAYERS = {}


def weighted_average_class():
    """Defines and registers `kerakit>WeightedAverage` once (Keras is imported lazily)."""
    if "WeightedAverage" not in _LAYERS:
        _LAYERS["WeightedAverage"] = _define_weighted_average()
    return _LAYERS["WeightedAverage"]


def _define_weighted_average():
    import keras

    @keras.saving.register_keras_serializable(package=PACKAGE)
    class WeightedAverage(keras.layers.Layer):
        """Weighted mean of its inputs; the weights are fixed numbers in the config."""

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

    return WeightedAverage
