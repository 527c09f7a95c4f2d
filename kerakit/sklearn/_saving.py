"""The fitted network inside a pickle: the bytes of a `.keras` file, loaded safely."""

import os
import tempfile
import zipfile

from kerakit.errors import RunError


def model_to_bytes(model):
    """Serialises a model to the bytes of a `.keras` file."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.keras")
        model.save(path)
        with open(path, "rb") as handle:
            return handle.read()


def model_from_bytes(data):
    """Loads a model from `.keras` bytes with `safe_mode=True`; refuses anything that runs code.

    A Lambda layer, a layer or function from an arbitrary Python module
    (`os.system`, `builtins.exec`) or any other file Keras cannot load
    safely is refused with a kerakit `RunError`, never Keras's raw error.
    """
    import keras

    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.keras")
        with open(path, "wb") as handle:
            handle.write(data)
        if not zipfile.is_zipfile(path):
            raise RunError(
                "The pickled estimator's model is not a Keras model file (a .keras file is a "
                "zip archive). The pickle is damaged or was not written by kerakit.sklearn; "
                "refit the estimator and pickle it again."
            )
        try:
            return keras.saving.load_model(path, safe_mode=True)
        except (TypeError, ValueError, KeyError, AttributeError) as error:
            raise RunError(
                f"The pickled estimator's model is not a safe model file: {error} kerakit "
                f"loads it with safe_mode=True and refuses what would run Python code on "
                f"load (a Lambda layer, a function or class from an arbitrary module). Build "
                f"the body from layers registered with keras.saving.register_keras_serializable, "
                f"and only unpickle estimators from sources you trust."
            ) from None
