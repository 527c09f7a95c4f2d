"""The one way kerakit loads and saves a model file: `load_model` (safe) and `save_model` (atomic).

Core floor. Every loading path of kerakit (`kk.load_model`, `RunModel`,
`kerakit evaluate` / `predict` / `compare` / `explain`, serving, exports)
comes through `load_model`, so each refuses an untrusted file the same way:

- a file that is not a `.keras` archive is "not a Keras model file";
- a file whose config names anything but Keras's own classes and functions
  and kerakit's registered layers (`os.system`, `builtins.exec`,
  `keras.utils.get_file`, `keras.config.enable_unsafe_deserialization`,
  a `Lambda` layer's code) is "not a safe model file", and nothing in it is
  built or called. Keras's own `safe_mode=True` stays on behind this check;
  kerakit never calls `keras.config.enable_unsafe_deserialization()`.

kerakit's own layers are registered here before a file is read, so no caller
has to import anything first. The problem spec a model carries is read with
`kerakit.metadata.spec_of`.
"""

import json
import os
import zipfile
from pathlib import Path

from kerakit.atomic import atomic_path
from kerakit.errors import ConfigError, DataTypeError, RunError
from kerakit.metadata import attach_spec, spec_of

MODEL_FILE = "model.keras"
MANIFEST_FILE = "manifest.json"

# Modules a `.keras` config may name: Keras's own building blocks. Anything
# else (os, builtins, keras.utils, keras.config, keras.saving...) is refused.
SAFE_KERAS_MODULES = (
    "keras", "keras.layers", "keras.initializers", "keras.regularizers", "keras.constraints",
    "keras.activations", "keras.losses", "keras.metrics", "keras.optimizers",
    "keras.optimizers.schedules", "keras.models", "keras.dtype_policies",
)
SAFE_KERAS_PRIVATE_PREFIXES = (
    "keras.src.models.", "keras.src.layers.", "keras.src.ops.", "keras.src.losses.",
    "keras.src.metrics.", "keras.src.optimizers.", "keras.src.initializers.",
    "keras.src.regularizers.", "keras.src.constraints.", "keras.src.activations.",
    "keras.src.dtype_policies.",
)
_ACTIVATION_KEYS = ("activation", "recurrent_activation")


def register_layers():
    """Registers every kerakit layer with Keras, so safe-mode loading can rebuild kerakit models."""
    import kerakit.layers  # noqa: F401  every kerakit layer registers on import


def model_file(path_or_run):
    """Returns the `.keras` file of a run directory or a model path, refusing what cannot be one.

    A run directory's `model.keras` that is a symbolic link leading out of
    the run directory is refused by name: a run folder holds its own files.

    Example:

    ```python
    model_file("runs/digits/20250101-120000-ab12")
    # PosixPath('runs/digits/20250101-120000-ab12/model.keras')
    ```
    """
    path = Path(path_or_run)
    if path.is_dir():
        if (path / "saved_model.pb").is_file() and not (path / MODEL_FILE).exists():
            raise RunError(
                f"{path} is a SavedModel export, not a .keras file. Serve it with "
                f"`kerakit serve {path}`, or load the .keras file it was exported from."
            )
        run_dir, file = path, path / MODEL_FILE
    else:
        run_dir, file = path.parent, path
    if (run_dir / MANIFEST_FILE).is_file() or path.is_dir():
        _refuse_link_out(file, run_dir)
    if file.is_dir() or not file.is_file():
        what = f"The run directory {path} has no {MODEL_FILE}" if path.is_dir() else (
            f"No run directory or model file at {path}")
        raise RunError(
            f"{what}. Pass a .keras file, or a run directory that holds {MODEL_FILE} (list "
            f"runs with `kerakit runs`)."
        )
    if file.suffix != ".keras":
        raise RunError(f"Expected a run directory or a .keras model file. Received: {path}.")
    return file


def _refuse_link_out(file, run_dir):
    if not file.is_symlink():
        return
    target = Path(os.path.realpath(file))
    inside = Path(os.path.realpath(run_dir))
    if inside not in target.parents:
        raise RunError(
            f"{file} is a symbolic link leading out of its run directory (to {target}). kerakit "
            f"loads only a run's own files. Copy the model into the run directory, or pass "
            f"the .keras file itself."
        )


def _walk(node):
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def _module_allowed(module, registered_name, custom_objects):
    if module in SAFE_KERAS_MODULES or module.startswith(SAFE_KERAS_PRIVATE_PREFIXES):
        return True
    # Registered with keras.saving.register_keras_serializable (kerakit's layers, the
    # user's own): Keras rebuilds the registered class, whatever module the file names.
    return registered_name in custom_objects


def unsafe_reason(config):
    """Why a `.keras` model config is unsafe to build, or None when it names only safe classes.

    Safe: Keras's own layers, initializers, regularizers, constraints,
    activations, losses, metrics and optimizers, and classes registered with
    `keras.saving.register_keras_serializable` (kerakit's layers, your own).
    Everything else (another module, a Keras utility, a `Lambda`
    layer's code, an activation that is not one) is unsafe.

    Example:

    >>> unsafe_reason({"module": "os", "class_name": "system", "config": {}})
    "it names 'os.system', which is not a Keras or kerakit layer, function or object"
    """
    import keras

    custom_objects = keras.saving.get_custom_objects()
    for node in _walk(config):
        class_name = node.get("class_name")
        if class_name == "__lambda__" or (class_name == "Lambda" and "module" in node):
            return "it holds Python code (a Lambda layer), which loading would run"
        module = node.get("module")
        if "module" in node or "registered_name" in node:
            # A registered function (a custom loss such as kerakit>log_poisson) is written as
            # {"module": "builtins", "class_name": "function", "config": "<registered name>"}:
            # only a name in Keras's registry passes, never a builtin such as exec.
            registered = node.get("config") if class_name == "function" else node.get("registered_name")
            if not isinstance(module, str) or not _module_allowed(module, registered, custom_objects):
                inner = node.get("config") if class_name == "function" else class_name
                return (f"it names '{module}.{inner}', which is not a Keras or kerakit layer, "
                        f"function or object")
        for key in _ACTIVATION_KEYS:
            value = node.get(key)
            if isinstance(value, str) and not _is_activation(value):
                return f"its {key} '{value}' is not a Keras activation"
    return None


def _is_activation(name):
    import keras

    try:
        keras.activations.get(name)
    except (ValueError, TypeError):
        return False
    return True


def _read_config(file, label):
    try:
        with zipfile.ZipFile(file) as archive:
            raw = archive.read("config.json")
        return json.loads(raw)
    except (OSError, KeyError, zipfile.BadZipFile, ValueError, UnicodeDecodeError) as error:
        raise RunError(
            f"{label} is not a Keras model file: it is not a .keras archive holding a readable "
            f"config.json ({type(error).__name__}). Pass a file saved with `model.save(path)`."
        ) from None


def load_model(path_or_run):
    """Loads a `.keras` file, or a run directory's model, safely; a `keras.Model` is returned as is.

    The file's config is checked before anything in it is built (see
    `unsafe_reason`) and Keras loads it with `safe_mode=True`, so a model file
    cannot run code. kerakit's layers are registered first. A file saved
    before models carried their problem spec gets the one its run's
    `manifest.json` records.

    Args:
        path_or_run: a `.keras` file, a run directory (`runs/<recipe>/<id>/`)
            holding `model.keras`, the bytes of a `.keras` file (a pickled
            estimator's model), or a `keras.Model`.

    Returns:
        The `keras.Model`.

    Raises:
        RunError: no model file there, "not a Keras model file", or "not a
            safe model file: <why>".

    Example:

    ```python
    model = kerakit.saving.load_model("runs/digits/20250101-120000-ab12")
    ```
    """
    import keras

    if isinstance(path_or_run, keras.Model):
        return path_or_run
    if isinstance(path_or_run, (bytes, bytearray)):
        import tempfile

        with tempfile.TemporaryDirectory() as folder:
            file = Path(folder) / MODEL_FILE
            file.write_bytes(path_or_run)
            return _load_file(file, "The model's bytes")
    if not isinstance(path_or_run, (str, os.PathLike)):
        raise DataTypeError(
            f"Expected a keras.Model, a .keras file or a run directory. Received: {path_or_run!r}"
        )
    file = model_file(path_or_run)
    model = _load_file(file, str(file))
    if spec_of(model) is None:
        spec = _manifest_spec(file.parent / MANIFEST_FILE)
        if spec is not None and getattr(spec, "num_outputs", None) == _output_width(model):
            attach_spec(model, spec)
    return model


def _load_file(file, label):
    import keras

    from kerakit.layers import quiet_input_names

    config = _read_config(file, label)
    register_layers()
    reason = unsafe_reason(config)
    if reason is not None:
        raise RunError(
            f"{label} is not a safe model file: {reason}. kerakit builds models only from "
            f"Keras's and registered layers; rebuild the model from those "
            f"(keras.saving.register_keras_serializable for your own) and save it again."
        )
    try:
        with quiet_input_names():
            return keras.saving.load_model(file, safe_mode=True)
    except (TypeError, ValueError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise RunError(
            f"{label} could not be loaded as a Keras model: Keras refused to rebuild it "
            f"({first_line[:200]}). Load files saved by kerakit or Keras from registered layers."
        ) from None


def _output_width(model):
    shape = model.output_shape
    return shape[-1] if isinstance(shape, tuple) else None


def _manifest_spec(path):
    from kerakit.spec import ProblemSpec

    try:
        fields = json.loads(path.read_text(encoding="utf-8")).get("spec")
        return ProblemSpec(**fields) if isinstance(fields, dict) else None
    except (OSError, ValueError, TypeError, AttributeError):
        return None


def save_model(model, path):
    """Saves a `keras.Model` to a `.keras` file atomically; returns the path.

    The file is written under a temporary name beside `path` and renamed into
    place, so a process killed at any moment leaves the previous file or none.

    Example:

    ```python
    save_model(model, "models/digits.keras")
    ```
    """
    if not hasattr(model, "save"):
        raise ConfigError(f"`save_model` expects a keras.Model. Received: {type(model).__name__}.")
    path = Path(path)
    if path.suffix != ".keras":
        raise RunError(f"A model file's name must end in .keras. Received: {path}.")
    with atomic_path(path) as tmp:
        model.save(tmp)
    return path
