"""Safe loading, SavedModel export into numbered versions, and the `Servable` the service calls."""

import dataclasses
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np

from kerakit.checks import check_count
from kerakit.errors import ConfigError, DataTypeError, RunError
from kerakit.saving import load_model

SIGNATURE = "serving_default"
# Extra files inside a SavedModel go in assets.extra/ (TensorFlow Serving ignores them).
KERAKIT_ASSET = Path("assets.extra") / "kerakit.json"
# A version is 1 to 18 digits (TensorFlow Serving's versions are int64). `fullmatch`
# only: "$" would also match before a trailing newline ("1\n").
MAX_VERSION_DIGITS = 18
VERSION_NAME = re.compile(rf"[0-9]{{1,{MAX_VERSION_DIGITS}}}")
_AUTO_INPUT_NAME = re.compile(r"^(keras_tensor|input_layer|input)(_[0-9]+)?$")


def is_saved_model(path):
    return (Path(path) / "saved_model.pb").is_file()


def is_run_directory(path):
    """A kerakit run directory (manifest.json or model.keras inside): only its model.keras is served.

    A SavedModel is a TensorFlow program, so one found inside a run directory
    (written there by anyone) is never loaded from it; a SavedModel is served
    only when the user names its export folder.
    """
    path = Path(path)
    return (path / "manifest.json").is_file() or (path / "model.keras").exists()


def require_tensorflow(what):
    """Refuses SavedModel work on a Keras backend other than TensorFlow, naming the alternative.

    Args:
        what: the subject of the sentence, e.g. "The SavedModel at models/x/1".
    """
    import keras

    backend = keras.backend.backend()
    if backend != "tensorflow":
        raise RunError(
            f"{what} needs TensorFlow: a SavedModel is a TensorFlow program, and the Keras "
            f"backend here is {backend!r} (KERAS_BACKEND={backend}). Serve the model's .keras "
            f"file instead (kerakit serve model.keras works on every backend), or set "
            f"KERAS_BACKEND=tensorflow."
        )


def version_dirs(base):
    """`{version: folder}` for the numbered SavedModel folders under `base`."""
    base = Path(base)
    if not base.is_dir():
        return {}
    return {
        int(d.name): d for d in base.iterdir()
        if d.is_dir() and VERSION_NAME.fullmatch(d.name) and is_saved_model(d)
    }


def clean_name(name):
    """A model name usable in a URL path segment."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(name)).strip("._") or "model"


# Inputs and outputs -------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class TensorInfo:
    """A named input or output: shape without the batch dimension, and dtype name."""

    name: str
    shape: tuple
    dtype: str

    def describe(self):
        dims = ", ".join("?" if d is None else str(d) for d in self.shape)
        return f"'{self.name}' ({self.dtype}, shape per instance [{dims}])"


def _dtype_name(dtype):
    name = getattr(dtype, "name", str(dtype))
    return "string" if name in ("string", "object") else name


def _layout(model):
    """How the model takes its inputs: `(kind, keys, names, tensors)`.

    `kind` is "dict" (raw-column models), "list" or "single"; `keys` are the
    dict keys the model is called with; `names` are the served and exported
    input names: each `keras.Input`'s name, except Keras's automatic ones
    ("keras_tensor_3"), which become "features" (one input) or "input_0", ...
    """
    try:
        struct = model.input
    except (AttributeError, ValueError):
        struct = None
    if struct is None:  # a Sequential model exposes only `inputs`
        try:
            struct = list(model.inputs or ())
        except (AttributeError, ValueError):
            struct = []
        struct = struct[0] if len(struct) == 1 else struct or None
    if struct is None:
        raise ConfigError(
            f"Model {model.name!r} has no symbolic inputs (a subclassed model that was never "
            f"called?), so its input names and shapes are unknown. Build it from keras.Input "
            f"layers, or call it once on data before exporting or serving it."
        )
    if isinstance(struct, dict):
        kind, keys, tensors = "dict", list(struct), list(struct.values())
    elif isinstance(struct, (list, tuple)):
        kind, keys, tensors = "list", None, list(struct)
    else:
        kind, keys, tensors = "single", None, [struct]
    names = []
    for i, tensor in enumerate(tensors):
        name = getattr(tensor, "name", "") or ""
        if _AUTO_INPUT_NAME.match(name):
            name = clean_name(keys[i]) if keys else "features" if len(tensors) == 1 else f"input_{i}"
        names.append(name)
    if len(set(names)) != len(names):
        names = [f"input_{i}" for i in range(len(tensors))]
    return kind, keys, names, tensors


def input_signature(model):
    """The `input_signature` kerakit exports `model` with: one named `tf.TensorSpec` per input."""
    import tensorflow as tf

    kind, keys, names, tensors = _layout(model)
    specs = [tf.TensorSpec(t.shape, tf.as_dtype(t.dtype), name=n) for n, t in zip(names, tensors, strict=True)]
    if kind == "dict":
        return [dict(zip(keys, specs, strict=True))]
    return [specs] if kind == "list" else specs


def table_metadata(model):
    """A raw-column model's metadata (from `kerakit.data`) plus each column's input name; else None."""
    try:
        from kerakit.data.table import OUTPUT_LAYER
        from kerakit.data.table import table_metadata as read_metadata
    except ImportError:
        return None
    if OUTPUT_LAYER not in [layer.name for layer in model.layers]:
        return None
    metadata = json.loads(json.dumps(read_metadata(model)))
    _, keys, names, _ = _layout(model)
    feed = dict(zip(keys, names, strict=True)) if keys else {}
    metadata["columns"] = [{**c, "input": feed.get(c["name"], c["name"])} for c in metadata["columns"]]
    return metadata


def _name_outputs(outputs):
    if isinstance(outputs, dict):
        return dict(outputs)
    if isinstance(outputs, (list, tuple)):
        return {f"output_{i}": o for i, o in enumerate(outputs)}
    return {"output_0": outputs}


class Servable:
    """One model version behind the service: named inputs and outputs, one compiled call.

    Built from a `keras.Model` (`from_keras`) or a SavedModel folder
    (`from_saved_model`); both are called the same way, with a dict of
    batched NumPy arrays keyed by input name. `table` holds a raw-column
    model's metadata (columns, kinds, class names), or None; `spec` the
    model's `ProblemSpec` (task, class names in output order), or None.
    """

    def __init__(self, name, version, inputs, outputs, call, source, table=None, keep=None, spec=None):
        self.name = name
        self.version = int(version)
        self.inputs = tuple(inputs)
        self.outputs = tuple(outputs)
        self.source = source
        self.table = table
        self.spec = spec
        self._call = call
        self._keep = keep  # a loaded SavedModel must outlive its signature function

    @classmethod
    def from_keras(cls, model, name, version=1, source="keras.Model"):
        import keras

        kind, keys, names, tensors = _layout(model)

        def arrange(feeds):
            if kind == "dict":
                return {k: feeds[n] for k, n in zip(keys, names, strict=True)}
            return [feeds[n] for n in names] if kind == "list" else feeds[names[0]]

        backend = keras.backend.backend()
        if backend == "tensorflow":
            call, outputs = _tensorflow_call(model, arrange, names, tensors)
        else:
            text = [n for n, t in zip(names, tensors, strict=True) if _dtype_name(t.dtype) == "string"]
            if text:
                raise RunError(
                    f"Model {model.name!r} takes text inputs {text} (string lookup layers, as a "
                    f"raw-column model's text columns use), which run only on TensorFlow; the "
                    f"Keras backend here is {backend!r}. Serve it with KERAS_BACKEND=tensorflow."
                )
            if table_metadata(model) is not None:  # text columns as codes in the saved vocabularies
                from kerakit.data import backend_inputs

                by_name = arrange

                def arrange(feeds):
                    return backend_inputs(model, by_name(feeds))
            call, outputs = _padded_call(model, arrange), _name_outputs(model.output)
        inputs = [TensorInfo(n, tuple(t.shape[1:]), _dtype_name(t.dtype)) for n, t in zip(names, tensors, strict=True)]
        outputs = [TensorInfo(k, tuple(v.shape[1:]), _dtype_name(v.dtype)) for k, v in outputs.items()]
        from kerakit.metadata import spec_of

        return cls(name, version, inputs, outputs, call, source, table_metadata(model), model,
                   spec=spec_of(model))

    @classmethod
    def from_saved_model(cls, path, name, version=1):
        require_tensorflow(f"Serving the SavedModel at {path}")
        import tensorflow as tf

        loaded = tf.saved_model.load(str(path))
        signatures = dict(loaded.signatures)
        if SIGNATURE not in signatures:
            raise RunError(
                f"The SavedModel at {path} has no '{SIGNATURE}' signature (it has "
                f"{sorted(signatures)}). Export it with kerakit.export or model.export."
            )
        signature = signatures[SIGNATURE]
        specs = signature.structured_input_signature[1]
        inputs = [TensorInfo(n, tuple(s.shape[1:]), _dtype_name(s.dtype)) for n, s in specs.items()]
        outputs = [TensorInfo(n, tuple(s.shape[1:]), _dtype_name(s.dtype))
                   for n, s in signature.structured_outputs.items()]
        extra = Path(path) / KERAKIT_ASSET
        asset = json.loads(extra.read_text(encoding="utf-8")) if extra.is_file() else {}
        spec = None
        if asset.get("spec"):
            from kerakit.spec import ProblemSpec

            spec = ProblemSpec.from_config(asset["spec"])
        return cls(name, version, inputs, outputs, lambda feeds: signature(**feeds), str(path),
                   asset.get("table"), loaded, spec=spec)

    def predict(self, feeds):
        """Runs the model on `{input name: batched array}`; returns `{output name: array}`."""
        return {k: np.asarray(v) for k, v in self._call(feeds).items()}


def _tensorflow_call(model, arrange, names, tensors):
    """One concrete function with a free batch dimension: traced once, then called directly."""
    import tensorflow as tf

    specs = {n: tf.TensorSpec(t.shape, tf.as_dtype(t.dtype), name=n) for n, t in zip(names, tensors, strict=True)}
    function = tf.function(lambda feeds: _name_outputs(model(arrange(feeds), training=False)))
    concrete = function.get_concrete_function(specs)
    return concrete, concrete.structured_outputs


def _padded_call(model, arrange):
    """`predict_on_batch` with the rows padded to a power of two (JAX, PyTorch).

    JAX compiles once per input shape; padding (with copies of the last row)
    bounds the shapes micro-batching produces to a handful.
    """

    import types

    from kerakit.training import predict_padded

    by_name = types.SimpleNamespace(predict_on_batch=lambda feeds: _name_outputs(
        model.predict_on_batch(arrange(feeds))))

    def call(feeds):
        rows = len(next(iter(feeds.values())))
        return predict_padded(by_name, feeds, batch_size=1 << max(rows - 1, 0).bit_length())

    return call


def load_servables(model, name=None, versions="latest"):
    """Loads what the service serves; returns `(name, {version: Servable})`.

    Args:
        model: a `keras.Model`, a `.keras` file, a run directory (its
            `model.keras`, never a SavedModel inside it), a SavedModel folder,
            or an export base folder with numbered versions.
        name: the model name in the URLs. Defaults to the recipe name for a
            run, the folder name for an export, the file name for a `.keras` file.
        versions: "latest" (TensorFlow Serving's default) or "all", for an
            export base folder. Defaults to "latest".

    Example:

    ```python
    name, servables = load_servables("models/digits", versions="all")
    name, sorted(servables)
    # ('digits', [1, 2])
    ```
    """
    if versions not in ("latest", "all"):
        raise ConfigError(f"`versions` must be 'latest' or 'all'. Received: versions={versions!r}")
    import keras

    if isinstance(model, keras.Model):
        name = clean_name(name or model.name)
        return name, {1: Servable.from_keras(model, name)}
    if not isinstance(model, (str, os.PathLike)):
        raise DataTypeError(
            f"Expected a keras.Model, a .keras file, a run directory or a SavedModel folder. "
            f"Received: {model!r}"
        )
    path = Path(model)
    found = {} if is_run_directory(path) else version_dirs(path)
    if found:
        chosen = sorted(found) if versions == "all" else [max(found)]
        name = clean_name(name or path.resolve().name)
        return name, {v: Servable.from_saved_model(found[v], name, v) for v in chosen}
    if is_saved_model(path) and not is_run_directory(path):
        numbered = bool(VERSION_NAME.fullmatch(path.name))
        version = int(path.name) if numbered else 1
        name = clean_name(name or (path.resolve().parent.name if numbered else path.resolve().name))
        return name, {version: Servable.from_saved_model(path, name, version)}
    keras_model = load_model(path)  # kerakit.saving: the one safe loader
    name = clean_name(name or _keras_file_name(path))
    return name, {1: Servable.from_keras(keras_model, name, source=str(path))}


def _keras_file_name(path):
    """A run's name (its data file's stem, else its recipe), else the file or folder name."""
    run_dir = path if path.is_dir() else path.parent
    manifest = run_dir / "manifest.json"
    if manifest.is_file():
        try:
            return served_model_name(json.loads(manifest.read_text(encoding="utf-8")),
                                     run_dir.parent.name)
        except (OSError, ValueError, AttributeError):
            return run_dir.parent.name
    return path.stem if path.is_file() else path.resolve().name


def served_model_name(manifest, default=None):
    """The name a run's model is served under: its data file's stem, else its recipe.

    A run of the csv recipe on `penguins.csv` serves as "penguins", not
    "csv"; other recipes serve under their own name.

    Example:

    >>> served_model_name({"recipe": "csv", "data": {"source": "data/penguins.csv"}})
    'penguins'
    """
    source = (manifest.get("data") or {}).get("source")
    if source:
        stem = Path(str(source)).name.split(".")[0]
        if stem:
            return stem
    return manifest.get("recipe") or default


# Export ---------------------------------------------------------------------------


def export(model, directory, version=None, overwrite=False):
    """Exports a model as a SavedModel in `directory/<version>/`, as TensorFlow Serving expects.

    The version folder is written under a temporary name and renamed into
    place, so a server watching `directory` never sees half an export. Inputs
    are named: each `keras.Input`'s name, or "features" for a single unnamed
    input. A model with a problem spec keeps it (task, class names in output
    order) in `assets.extra/kerakit.json`, and a raw-column model (from
    `kerakit.data`) its columns and kinds too, so `kerakit serve` names the
    classes and accepts rows keyed by column name for the export as well.

    Args:
        model: a `keras.Model`, a `.keras` file or a run directory.
        directory: the model's base folder; versions go in numbered folders.
        version: a positive integer. Defaults to one more than the highest
            version already there (1 for a new folder).
        overwrite: replace an existing version folder. Defaults to False.

    Returns:
        The `Path` of the version folder.

    Example:

    ```python
    kerakit.export(model, "models/digits")
    # PosixPath('models/digits/1')
    kerakit.export(model, "models/digits")
    # PosixPath('models/digits/2')
    ```
    """
    model = load_model(model)
    base = Path(directory)
    require_tensorflow(f"Exporting to {base}")
    if base.exists() and not base.is_dir():
        raise ConfigError(f"`directory` must be a folder. Received a file: {base}")
    if is_saved_model(base):
        raise ConfigError(
            f"{base} is itself a SavedModel. Pass its parent folder (the model's base folder); "
            f"versions are written into numbered subfolders."
        )
    existing = version_dirs(base)
    if version is None:
        version = max(existing, default=0) + 1
    version = check_count("version", version)
    target = base / str(int(version))
    if target.exists() and not overwrite:
        raise ConfigError(
            f"Version {version} already exists at {target}. Pass another version, leave "
            f"version=None for the next one ({max(existing, default=0) + 1}), or overwrite=True."
        )
    from kerakit.metadata import spec_of

    signature = input_signature(model)
    table = table_metadata(model)
    spec = spec_of(model)
    base.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".export-{version}-", dir=base))
    try:
        saved = staging / "saved_model"
        model.export(str(saved), format="tf_saved_model", input_signature=signature, verbose=False)
        if table is not None or spec is not None:
            asset = {"format": 1, "table": table, "spec": None if spec is None else spec.to_config()}
            (saved / KERAKIT_ASSET).parent.mkdir(parents=True, exist_ok=True)
            (saved / KERAKIT_ASSET).write_text(json.dumps(asset, indent=2), encoding="utf-8")
        if target.exists():
            os.replace(target, staging / "replaced")
        os.replace(saved, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
