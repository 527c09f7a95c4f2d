"""The Keras backend kerakit runs on, and what differs between backends.

Base floor: imports nothing from kerakit but `errors`, and never imports
TensorFlow unless the backend is TensorFlow (a JAX or PyTorch machine may
not have it, and importing it costs seconds and memory).
"""

import random
import sys

from kerakit.errors import ConfigError

BACKENDS = ("tensorflow", "jax", "torch")


def name():
    """The Keras backend in use: "tensorflow", "jax" or "torch" (`KERAS_BACKEND`)."""
    import keras

    return keras.backend.backend()


def is_dataset(x):
    """True for a `tf.data.Dataset`, without importing TensorFlow when it is not loaded."""
    tf = sys.modules.get("tensorflow")
    return tf is not None and isinstance(x, tf.data.Dataset)


def require_tensorflow(feature, alternative):
    """Refuses a TensorFlow-only feature on another Keras backend, naming the alternative."""
    current = name()
    if current != "tensorflow":
        raise ConfigError(
            f"{feature} needs the TensorFlow backend; Keras is running on {current!r} "
            f"(KERAS_BACKEND={current}). {alternative}"
        )


def set_random_seed(seed):
    """`keras.utils.set_random_seed`, without importing TensorFlow on other backends.

    Keras's own function also seeds TensorFlow whenever it is installed, which
    imports it (seconds, and hundreds of MB) on a JAX or PyTorch machine. This
    does the same for the backend in use; on TensorFlow it is Keras's function.
    """
    import keras

    seed = int(seed)
    if name() == "tensorflow":
        keras.utils.set_random_seed(seed)
        return
    import numpy as np

    # No public API resets Keras's global seed generator without the
    # TensorFlow import above; these are the two lines Keras runs for it
    # (keras/src/utils/rng_utils.py).
    from keras.src.backend.common import global_state
    from keras.src.random import seed_generator

    global_state.set_global_attribute("global_random_seed", seed)
    global_state.set_global_attribute(seed_generator.GLOBAL_SEED_GENERATOR, None)
    random.seed(seed)
    np.random.seed(seed)
    if name() == "torch":
        import torch

        torch.manual_seed(seed)
