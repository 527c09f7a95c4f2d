"""The TabM-style ensemble layers (Gorishniy et al., ICLR 2025): k MLPs sharing their kernels.

`EnsembleDense` is a Dense layer shared by k members through BatchEnsemble
adapters, `EnsembleHead` gives each member its own output layer and
`EnsembleMean` averages their predictions. They make the "table" body of
`fit_table` (`kerakit.data.bodies`) and the "table" body of `build_model`
and `tune` (`kerakit.bodies`).
"""

import keras
from keras import ops

from kerakit.layers._base import PACKAGE


def _random_signs(shape, dtype=None):
    """±1 with equal odds (TabM's initialization of the first adapter)."""
    draw = keras.initializers.RandomUniform(-1.0, 1.0)(shape, dtype=dtype)
    return ops.where(draw < 0, -ops.ones_like(draw), ops.ones_like(draw))


@keras.saving.register_keras_serializable(package=PACKAGE)
class EnsembleDense(keras.layers.Layer):
    """A Dense layer shared by `members` ensemble members through BatchEnsemble adapters (TabM).

    Member i computes `((x * r_i) @ W) * s_i + b_i`: the kernel `W` is shared,
    the adapters `r_i`, `s_i` and the bias `b_i` are the member's own, so k
    members cost little more than one. Takes `(batch, features)` (the same
    input for every member) or `(batch, members, features)`; returns
    `(batch, members, units)`.

    Args:
        units: output width of every member.
        members: the ensemble size k. Defaults to 8.
        activation: applied after the bias. Defaults to None.
        random_signs: initialize `r` with random ±1 (TabM does this in the
            first layer so the members start apart). Defaults to False (ones).

    Example:

    >>> tuple(EnsembleDense(16, members=4)(np.ones((2, 3))).shape)
    (2, 4, 16)
    """

    def __init__(self, units, members=8, activation=None, random_signs=False, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)
        self.members = int(members)
        self.activation = keras.activations.get(activation)
        self.random_signs = bool(random_signs)

    def build(self, input_shape):
        features = int(input_shape[-1])
        self.kernel = self.add_weight(name="kernel", shape=(features, self.units),
                                      initializer="glorot_uniform")
        self.r = self.add_weight(name="r", shape=(self.members, features),
                                 initializer=_random_signs if self.random_signs else "ones")
        self.s = self.add_weight(name="s", shape=(self.members, self.units), initializer="ones")
        self.bias = self.add_weight(name="bias", shape=(self.members, self.units),
                                    initializer="zeros")

    def call(self, inputs):
        x = ops.cast(inputs, self.compute_dtype)
        if len(x.shape) == 2:
            x = ops.expand_dims(x, 1)  # every member reads the same row
        y = ops.matmul(x * self.r, self.kernel) * self.s + self.bias
        return self.activation(y) if self.activation is not None else y

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.members, self.units)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "members": self.members,
                "activation": keras.activations.serialize(self.activation),
                "random_signs": self.random_signs}


@keras.saving.register_keras_serializable(package=PACKAGE)
class EnsembleHead(keras.layers.Layer):
    """One linear output layer per ensemble member: `(batch, members, d)` → `(batch, members, units)`.

    Args:
        units: outputs per member (classes, or targets).
        activation: the spec's output activation, applied per member.

    Example:

    >>> tuple(EnsembleHead(3, activation="softmax")(np.ones((2, 4, 16))).shape)
    (2, 4, 3)
    """

    def __init__(self, units, activation=None, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)
        self.activation = keras.activations.get(activation)

    def build(self, input_shape):
        members, features = int(input_shape[1]), int(input_shape[2])
        self.kernel = self.add_weight(name="kernel", shape=(members, features, self.units),
                                      initializer="glorot_uniform")
        self.bias = self.add_weight(name="bias", shape=(members, self.units), initializer="zeros")

    def call(self, inputs):
        y = ops.einsum("bmf,mfu->bmu", ops.cast(inputs, self.compute_dtype), self.kernel)
        y = y + self.bias
        return self.activation(y) if self.activation is not None else y

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[1], self.units)

    def get_config(self):
        return {**super().get_config(), "units": self.units,
                "activation": keras.activations.serialize(self.activation)}


@keras.saving.register_keras_serializable(package=PACKAGE)
class EnsembleMean(keras.layers.Layer):
    """Averages the members' predictions: `(batch, members, units)` → `(batch, units)`.

    Example:

    >>> ops.convert_to_numpy(EnsembleMean()(np.array([[[1.0], [3.0]]])))
    array([[2.]], dtype=float32)
    """

    def call(self, inputs):
        return ops.mean(inputs, axis=1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *input_shape[2:])


def ensemble_stack(x, units, members, dropout):
    """`len(units)` EnsembleDense layers (ReLU, dropout after each): features → (batch, k, units[-1])."""
    for i, width in enumerate(units):
        x = EnsembleDense(width, members=members, activation="relu", random_signs=i == 0,
                          name=f"ensemble_dense_{i}")(x)
        if dropout:
            x = keras.layers.Dropout(dropout, name=f"dropout_{i}")(x)
    return x


def ensemble_output(spec, x):
    """One output layer per member (the spec's activation), then their average, named "output"."""
    members = EnsembleHead(spec.num_outputs, activation=spec.activation, dtype="float32",
                           name="ensemble_output")(x)
    return EnsembleMean(dtype="float32", name="output")(members)
