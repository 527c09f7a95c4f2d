"""The Keras backend kerakit runs on, and what differs between backends.

Base floor: imports nothing from kerakit but `errors` and `_compat`, and never imports
TensorFlow unless the backend is TensorFlow (a JAX or PyTorch machine may
not have it, and importing it costs seconds and memory).
"""

import os
import random
import sys

from kerakit._compat import seed_keras_only
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

    seed_keras_only(seed)
    random.seed(seed)
    np.random.seed(seed)
    if name() == "torch":
        import torch

        torch.manual_seed(seed)


def configured_backend():
    """The Keras backend this process will use, read as Keras reads it, without importing Keras."""
    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"]
    import json

    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    try:
        with open(os.path.join(home, "keras.json")) as handle:
            return json.load(handle).get("backend", "tensorflow")
    except (OSError, ValueError):
        return "tensorflow"


def import_tensorflow_quietly():
    """Imports TensorFlow with its C++ start-up lines (absl, oneDNN, CUDA stub) held back.

    TensorFlow 2.21 writes them to file descriptor 2 before
    `TF_CPP_MIN_LOG_LEVEL` applies. They are shown if the import fails, or
    always with `KERAKIT_TF_LOGS=1`.
    """
    if configured_backend() != "tensorflow":
        return  # JAX and PyTorch runs never load TensorFlow
    if os.environ.get("KERAKIT_TF_LOGS") == "1" or "tensorflow" in sys.modules:
        import tensorflow  # noqa: F401

        return
    import tempfile

    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as log:
        os.dup2(log.fileno(), 2)
        try:
            import tensorflow  # noqa: F401
        except BaseException:
            os.dup2(saved, 2)
            log.seek(0)
            sys.stderr.write(log.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def quiet_tensorflow_logs():
    """Hides TensorFlow's C++ log lines in programs that use kerakit, before TensorFlow loads.

    TensorFlow 2.21 writes lines such as "E0000 ... NodeDef mentions attribute
    use_unbounded_threadpool" (a version mismatch inside `tf.data`, harmless)
    and "failed call to cuInit" on machines without a GPU, at error level, so
    scripts that train with kerakit fill their output with errors that are
    not. Sets `TF_CPP_MIN_LOG_LEVEL=3` unless the program set a level itself,
    or `KERAKIT_TF_LOGS=1` asks to see everything. Real failures still raise
    Python exceptions.
    """
    if "tensorflow" in sys.modules or os.environ.get("KERAKIT_TF_LOGS") == "1":
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
