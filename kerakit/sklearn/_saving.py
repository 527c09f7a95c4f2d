"""The fitted network inside a pickle: the bytes of a `.keras` file, loaded safely."""

import os
import tempfile

from kerakit.saving import load_model


def model_to_bytes(model):
    """Serialises a model to the bytes of a `.keras` file."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.keras")
        model.save(path)
        with open(path, "rb") as handle:
            return handle.read()


def model_from_bytes(data):
    """Loads a model from `.keras` bytes through kerakit's one safe loader (`kerakit.saving`).

    A Lambda layer, a layer or function from an arbitrary Python module
    (`os.system`, `builtins.exec`) or any other file that would run code is
    refused with a kerakit `RunError` ("not a safe model file: ..."), bytes
    that are no `.keras` archive with "not a Keras model file".
    """
    return load_model(bytes(data))
