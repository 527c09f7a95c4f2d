"""Export and serve models: SavedModel versions and a TensorFlow-Serving-compatible REST service.

`export` writes a SavedModel into a numbered version folder (`1/`, `2/`, ...)
the way TensorFlow Serving expects, with named inputs. `serve` puts a model
behind TensorFlow Serving's REST API, so existing clients work unchanged:

    GET  /v1/models/NAME[/versions/N]              status
    GET  /v1/models/NAME[/versions/N]/metadata     signature: input/output names, shapes, dtypes
    POST /v1/models/NAME[/versions/N]:predict      {"instances": ...} or {"inputs": ...}

Every request is validated (JSON, shape, dtype, finiteness, body size) before
the model sees it, and answered with `{"error": "..."}` and a 4xx status when
it is refused. Concurrent requests are micro-batched: they wait in a queue and
run as one model call on a worker thread, so the event loop keeps reading
requests while the model works. Starlette routes the requests and uvicorn
speaks HTTP.

`.keras` files are always loaded with `safe_mode=True`. A SavedModel is a
TensorFlow program: serve only exports you trust (TensorFlow's own advice).
"""

import asyncio
import collections
import concurrent.futures
import dataclasses
import json
import os
import re
import shutil
import tempfile
import threading
from pathlib import Path

import numpy as np

from kerakit.errors import ConfigError, DataTypeError, RequestError, RunError, closest

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8501
# Larger bodies are refused with 413 before they are parsed.
MAX_BODY_BYTES = 4 * 1024 * 1024
# Rows run in one model call at most (a single larger request still runs, alone).
MAX_BATCH_SIZE = 64
# How long the batcher waits for more requests once one has arrived.
BATCH_WAIT_MS = 1.0
SIGNATURE = "serving_default"
_VERSION_NAME = re.compile(r"^[0-9]+$")
_AUTO_INPUT_NAME = re.compile(r"^(keras_tensor|input_layer|input)(_[0-9]+)?$")


# Loading --------------------------------------------------------------------


def load_model(path):
    """Loads a `.keras` model file (or a run directory's `model.keras`) safely.

    Always `safe_mode=True`: a file cannot run Python code (a `Lambda` layer's
    code is refused). kerakit never calls
    `keras.config.enable_unsafe_deserialization()`, which would turn that
    protection off for the whole process.

    Args:
        path: a `.keras` file, or a run directory (`runs/<recipe>/<id>/`)
            holding `model.keras`. A `keras.Model` is returned as is.

    Example:

    >>> model = kerakit.serving.load_model("runs/digits/20250101-120000/model.keras")
    """
    import keras

    if isinstance(path, keras.Model):
        return path
    if not isinstance(path, (str, os.PathLike)):
        raise DataTypeError(
            f"Expected a keras.Model or the path of a .keras file. Received: {path!r}"
        )
    file = Path(path)
    if file.is_dir():
        if _is_saved_model(file) or _version_dirs(file):
            raise RunError(
                f"{file} is a SavedModel export, not a .keras file. Serve it with "
                f"`kerakit serve {file}` (or kerakit.serving.serve), or load the .keras file "
                f"it was exported from."
            )
        file = file / "model.keras"
    if not file.is_file() or file.suffix != ".keras":
        raise RunError(
            f"No .keras model file at {str(path)!r}. Pass a .keras file or a run directory "
            f"that holds model.keras."
        )
    _register_kerakit_layers()
    try:
        return keras.saving.load_model(file, safe_mode=True)
    except ValueError as error:
        if "safe_mode" not in str(error) and "unsafe" not in str(error):
            raise
        raise RunError(
            f"{file} contains Python code (such as a Lambda layer), which kerakit refuses to "
            f"load: loading runs it. Rebuild the model with registered layers "
            f"(keras.saving.register_keras_serializable) instead of Lambda. Keras said: {error}"
        ) from None


def _register_kerakit_layers():
    # Ensembles save kerakit's averaging layer; importing it registers the class
    # with Keras so safe-mode loading can rebuild it.
    try:
        from kerakit import analysis

        analysis._weighted_average_class()
    except (ImportError, AttributeError):
        pass


def _is_saved_model(path):
    return (Path(path) / "saved_model.pb").is_file()


def _version_dirs(base):
    """{version: folder} for the numbered SavedModel folders under `base`."""
    base = Path(base)
    if not base.is_dir():
        return {}
    return {
        int(d.name): d for d in base.iterdir()
        if d.is_dir() and _VERSION_NAME.match(d.name) and _is_saved_model(d)
    }


def _clean_name(name):
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(name)).strip("._") or "model"


# Inputs and outputs ------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class TensorInfo:
    """A named input or output: shape without the batch dimension, dtype name."""

    name: str
    shape: tuple
    dtype: str

    def describe(self):
        dims = ", ".join("?" if d is None else str(d) for d in self.shape)
        return f"'{self.name}' ({self.dtype}, shape per instance [{dims}])"


def _dtype_name(dtype):
    name = getattr(dtype, "name", str(dtype))
    return "string" if name in ("string", "object") else name


def _input_names(model):
    """The names the model's inputs are served and exported under.

    Dict inputs keep their keys (raw-column models); Keras's automatic names
    ("keras_tensor_3") become "features" (one input) or "input_0", "input_1", ...
    """
    try:
        struct = model.input
    except (AttributeError, ValueError):
        raise ConfigError(
            f"Model {model.name!r} has no symbolic inputs (a subclassed model that was never "
            f"called?), so its input names and shapes are unknown. Build it from keras.Input "
            f"layers, or call it once on data before exporting or serving it."
        ) from None
    if isinstance(struct, dict):
        return list(struct), list(struct.values())
    tensors = list(struct) if isinstance(struct, (list, tuple)) else [struct]
    names = []
    for i, tensor in enumerate(tensors):
        name = getattr(tensor, "name", "") or ""
        if _AUTO_INPUT_NAME.match(name):
            name = "features" if len(tensors) == 1 else f"input_{i}"
        names.append(name)
    if len(set(names)) != len(names):
        names = [f"input_{i}" for i in range(len(tensors))]
    return names, tensors


def input_signature(model):
    """The `input_signature` kerakit exports `model` with: one named `tf.TensorSpec` per input."""
    import tensorflow as tf

    names, tensors = _input_names(model)
    specs = [tf.TensorSpec(t.shape, tf.as_dtype(t.dtype), name=n) for n, t in zip(names, tensors)]
    if isinstance(model.input, dict):
        return [dict(zip(names, specs))]
    if isinstance(model.input, (list, tuple)):
        return [specs]
    return specs


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
    batched NumPy arrays keyed by input name.
    """

    def __init__(self, name, version, inputs, outputs, call, source, keep=None):
        self.name = name
        self.version = int(version)
        self.inputs = tuple(inputs)
        self.outputs = tuple(outputs)
        self.source = source
        self._call = call
        self._keep = keep  # a loaded SavedModel must outlive its signature function

    @classmethod
    def from_keras(cls, model, name, version=1, source="keras.Model"):
        import tensorflow as tf

        names, tensors = _input_names(model)
        struct = model.input

        def arrange(feeds):
            if isinstance(struct, dict):
                return feeds
            if isinstance(struct, (list, tuple)):
                return [feeds[n] for n in names]
            return feeds[names[0]]

        specs = {
            n: tf.TensorSpec(t.shape, tf.as_dtype(t.dtype), name=n) for n, t in zip(names, tensors)
        }
        # One concrete function with a free batch dimension: traced once, called
        # directly (no retracing, no `predict` set-up per request).
        function = tf.function(lambda feeds: _name_outputs(model(arrange(feeds), training=False)))
        concrete = function.get_concrete_function(specs)
        inputs = [TensorInfo(n, tuple(t.shape[1:]), _dtype_name(t.dtype)) for n, t in zip(names, tensors)]
        outputs = [
            TensorInfo(k, tuple(v.shape[1:]), _dtype_name(v.dtype))
            for k, v in concrete.structured_outputs.items()
        ]
        return cls(name, version, inputs, outputs, concrete, source, keep=model)

    @classmethod
    def from_saved_model(cls, path, name, version=1):
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
        outputs = [
            TensorInfo(n, tuple(s.shape[1:]), _dtype_name(s.dtype))
            for n, s in signature.structured_outputs.items()
        ]
        return cls(name, version, inputs, outputs, lambda feeds: signature(**feeds), str(path),
                   keep=loaded)

    def predict(self, feeds):
        """Runs the model on `{input name: batched array}`; returns `{output name: array}`."""
        return {k: np.asarray(v) for k, v in self._call(feeds).items()}


def load_servables(model, name=None, versions="latest"):
    """Loads what `serve` serves: `{version: Servable}` and the model's name.

    Args:
        model: a `keras.Model`, a `.keras` file, a run directory, a SavedModel
            folder, or an export base folder with numbered versions.
        name: the model name in the URLs. Defaults to the recipe name for a
            run, the folder name for an export, the file name for a `.keras` file.
        versions: "latest" (TensorFlow Serving's default) or "all", for an
            export base folder. Defaults to "latest".
    """
    if versions not in ("latest", "all"):
        raise ConfigError(f"`versions` must be 'latest' or 'all'. Received: versions={versions!r}")
    import keras

    if isinstance(model, keras.Model):
        name = _clean_name(name or model.name)
        return name, {1: Servable.from_keras(model, name)}
    if not isinstance(model, (str, os.PathLike)):
        raise DataTypeError(
            f"Expected a keras.Model, a .keras file, a run directory or a SavedModel folder. "
            f"Received: {model!r}"
        )
    path = Path(model)
    found = _version_dirs(path)
    if found:
        chosen = sorted(found) if versions == "all" else [max(found)]
        name = _clean_name(name or path.resolve().name)
        return name, {v: Servable.from_saved_model(found[v], name, v) for v in chosen}
    if _is_saved_model(path):
        numbered = bool(_VERSION_NAME.match(path.name))
        version = int(path.name) if numbered else 1
        name = _clean_name(name or (path.resolve().parent.name if numbered else path.resolve().name))
        return name, {version: Servable.from_saved_model(path, name, version)}
    keras_model = load_model(path)
    name = _clean_name(name or _keras_file_name(path))
    return name, {1: Servable.from_keras(keras_model, name, source=str(path))}


def _keras_file_name(path):
    run_dir = path if path.is_dir() else path.parent
    manifest = run_dir / "manifest.json"
    if manifest.is_file():
        try:
            return json.loads(manifest.read_text(encoding="utf-8")).get("recipe") or run_dir.parent.name
        except (OSError, json.JSONDecodeError, AttributeError):
            return run_dir.parent.name
    return path.stem if path.is_file() else path.resolve().name


# Export ---------------------------------------------------------------------


def export(model, directory, version=None, overwrite=False):
    """Exports a model as a SavedModel into `directory/<version>/`, as TensorFlow Serving expects.

    The version folder is written under a temporary name and renamed into
    place, so a server watching `directory` never sees half an export. Inputs
    are named: a raw-column model keeps its column names, a one-input model's
    input is called "features" unless its `keras.Input` was given a name.

    Args:
        model: a `keras.Model`, a `.keras` file or a run directory.
        directory: the model's base folder; versions go in numbered folders.
        version: a positive integer. Defaults to one more than the highest
            version already there (1 for a new folder).
        overwrite: replace an existing version folder. Defaults to False.

    Returns:
        The `Path` of the version folder.

    Example:

    >>> path = kerakit.export(model, "models/digits")       # models/digits/1
    >>> path = kerakit.export(model, "models/digits")       # models/digits/2
    """
    model = load_model(model)
    base = Path(directory)
    if base.exists() and not base.is_dir():
        raise ConfigError(f"`directory` must be a folder. Received a file: {base}")
    if _is_saved_model(base):
        raise ConfigError(
            f"{base} is itself a SavedModel. Pass its parent folder (the model's base folder); "
            f"versions are written into numbered subfolders."
        )
    base.mkdir(parents=True, exist_ok=True)
    existing = _version_dirs(base)
    if version is None:
        version = max(existing, default=0) + 1
    if isinstance(version, bool) or not isinstance(version, (int, np.integer)) or version < 1:
        raise ConfigError(f"`version` must be a positive integer. Received: version={version!r}")
    target = base / str(int(version))
    if target.exists() and not overwrite:
        raise ConfigError(
            f"Version {version} already exists at {target}. Pass another version, leave "
            f"version=None for the next one ({max(existing, default=0) + 1}), or overwrite=True."
        )
    staging = Path(tempfile.mkdtemp(prefix=f".export-{version}-", dir=base))
    try:
        model.export(str(staging / "saved_model"), format="tf_saved_model",
                     input_signature=input_signature(model), verbose=False)
        if target.exists():
            old = staging / "replaced"
            os.replace(target, old)
        os.replace(staging / "saved_model", target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


# Request parsing and validation ------------------------------------------------


def _fail(message, status=400):
    raise RequestError(message, status)


def _contains(value, kind):
    if isinstance(value, list):
        return any(_contains(v, kind) for v in value)
    return isinstance(value, kind)


def _to_array(value, info, where):
    try:
        array = np.asarray(value)
    except (ValueError, TypeError):
        _fail(f"Input '{info.name}' in {where} is ragged: its lists have different lengths. "
              f"Expected {info.describe()} for every instance.")
    return array


def _to_number(value, info, where, has_bool):
    array = _to_array(value, info, where)
    if array.dtype.kind not in "iuf" or (has_bool and _contains(value, bool)):
        _fail(f"Input '{info.name}' in {where} must hold numbers ({info.dtype}); "
              f"{_found(array, value)}. Send numbers as JSON numbers, e.g. 0.5 not \"0.5\".")
    with np.errstate(over="ignore", invalid="ignore"):
        array = array.astype(info.dtype)
    finite = np.isfinite(array)
    if not finite.all():
        first = np.argwhere(~finite)[0].tolist()
        _fail(f"Input '{info.name}' in {where} has {int((~finite).sum())} NaN or infinite "
              f"value(s) (first at index {first}), or numbers too large for {info.dtype}. "
              f"Send finite numbers.")
    return array


def _to_integer(value, info, where, has_bool):
    array = _to_array(value, info, where)
    integral = array.dtype.kind in "iu" or (
        array.dtype.kind == "f" and np.isfinite(array).all() and (np.mod(array, 1) == 0).all()
    )
    if not integral or (has_bool and _contains(value, bool)):
        _fail(f"Input '{info.name}' in {where} must hold whole numbers ({info.dtype}); "
              f"{_found(array, value)}.")
    limits = np.iinfo(info.dtype)
    if array.size and (array.min() < limits.min or array.max() > limits.max):
        _fail(f"Input '{info.name}' in {where} has values outside the range of {info.dtype} "
              f"[{limits.min}, {limits.max}].")
    return array.astype(info.dtype)


def _to_bool(value, info, where, has_bool):
    array = _to_array(value, info, where)
    if array.dtype.kind != "b":
        _fail(f"Input '{info.name}' in {where} must hold true/false; {_found(array, value)}.")
    return array


def _to_string(value, info, where, has_bool):
    array = np.array(value, dtype=object)
    for item in array.ravel():
        if not isinstance(item, str):
            hint = (" Base64 values ({\"b64\": ...}) are not supported; send text."
                    if isinstance(item, dict) and "b64" in item else "")
            _fail(f"Input '{info.name}' in {where} must hold strings (text); found "
                  f"{type(item).__name__} {_short(item)}.{hint}")
    return array


def _found(array, value):
    kinds = {"U": "strings", "b": "true/false values", "O": "null, objects or mixed values"}
    if array.dtype.kind in "iuf":
        return "found true/false mixed with numbers"
    return f"found {kinds.get(array.dtype.kind, array.dtype.name)} such as {_short(_first_leaf(value))}"


def _first_leaf(value):
    while isinstance(value, list) and value:
        value = value[0]
    return value


def _short(value, limit=40):
    text = json.dumps(value, default=str) if not isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


# dtype name → converter; anything else (complex, half-precision strings...) is refused.
_CONVERTERS = {
    **dict.fromkeys(("float16", "bfloat16", "float32", "float64"), _to_number),
    **dict.fromkeys(("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"),
                    _to_integer),
    "bool": _to_bool,
    "string": _to_string,
}


def _convert(info, value, where, has_bool):
    """Converts one input's batched JSON value to an array of the declared dtype and shape."""
    converter = _CONVERTERS.get(info.dtype)
    if converter is None:
        _fail(f"Input '{info.name}' has dtype {info.dtype}, which the REST service does not accept.")
    if not isinstance(value, list) or not value:
        _fail(f"Input '{info.name}' in {where} must be a non-empty list with one entry per "
              f"instance. Received: {_short(value)}")
    array = converter(value, info, where, has_bool)
    shape = info.shape
    # Raw columns are declared (1,) per row; a bare scalar per row means the same.
    if shape == (1,) and array.ndim == 1:
        array = array.reshape(-1, 1)
    got = array.shape[1:]
    if len(got) != len(shape) or any(e is not None and e != g for e, g in zip(shape, got)):
        _fail(f"Input '{info.name}' in {where}: each instance must have shape "
              f"[{', '.join('?' if d is None else str(d) for d in shape)}]; received "
              f"{list(got)}. Expected {info.describe()}.")
    return array


def parse_request(servable, body):
    """Validates a `:predict` body for `servable`; returns `(feeds, rows, columnar)`.

    Accepts TensorFlow Serving's row format `{"instances": [...]}` (each
    instance a value, or an object keyed by input name) and its columnar format
    `{"inputs": value or {name: value}}`. Raises `RequestError` (status 400)
    naming what is wrong before the model sees anything.
    """
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        _fail(f"The request body is not valid JSON ({str(error)[:120]}). Send "
              f'{{"instances": [...]}} or {{"inputs": ...}}.')
    if not isinstance(payload, dict):
        _fail(f'The request body must be a JSON object such as {{"instances": [...]}}. '
              f"Received a JSON {type(payload).__name__}.")
    unknown = sorted(set(payload) - {"instances", "inputs", "signature_name"})
    if unknown:
        _fail(f"Unknown key(s) {unknown} in the request. Valid keys: 'instances' or 'inputs', "
              f"and optionally 'signature_name'.")
    signature = payload.get("signature_name", SIGNATURE)
    if signature != SIGNATURE:
        _fail(f"Unknown signature_name {_short(signature)}. This model serves '{SIGNATURE}'.")
    if ("instances" in payload) == ("inputs" in payload):
        _fail('The request must have exactly one of "instances" (row format) or "inputs" '
              "(columnar format).")
    # Python's JSON parser turns true/false into numbers' cousins; only look for
    # them when the body contains one.
    has_bool = b"true" in body or b"false" in body
    if "instances" in payload:
        columns = _columns_from_rows(servable, payload["instances"])
        columnar = False
    else:
        columns = _columns_from_inputs(servable, payload["inputs"])
        columnar = True
    where = "'inputs'" if columnar else "'instances'"
    feeds = {info.name: _convert(info, columns[info.name], where, has_bool) for info in servable.inputs}
    rows = {len(a) for a in feeds.values()}
    if len(rows) > 1:
        _fail(f"The inputs have different numbers of rows: "
              f"{ {k: len(v) for k, v in feeds.items()} }. Send the same number for each.")
    return feeds, rows.pop(), columnar


def _check_keys(servable, keys, where):
    names = [info.name for info in servable.inputs]
    missing = [n for n in names if n not in keys]
    extra = sorted(set(keys) - set(names))
    if missing or extra:
        hint = closest(extra[0], names) if extra else None
        did_you_mean = f" Did you mean '{hint}' for '{extra[0]}'?" if hint else ""
        _fail(f"{where} must have exactly the model's inputs {names}. Missing: {missing}; "
              f"unknown: {extra}.{did_you_mean}")


def _columns_from_rows(servable, instances):
    if not isinstance(instances, list) or not instances:
        _fail(f'"instances" must be a non-empty list, one entry per example. '
              f"Received: {_short(instances)}")
    names = [info.name for info in servable.inputs]
    keyed = isinstance(instances[0], dict)
    if len(names) > 1 or keyed:
        for i, instance in enumerate(instances):
            if not isinstance(instance, dict):
                _fail(f"Instance {i} must be an object keyed by input name {names}, like the "
                      f"first instance. Received: {_short(instance)}")
            _check_keys(servable, instance, f"Instance {i}")
        return {n: [instance[n] for instance in instances] for n in names}
    return {names[0]: instances}


def _columns_from_inputs(servable, inputs):
    names = [info.name for info in servable.inputs]
    if isinstance(inputs, dict):
        _check_keys(servable, inputs, '"inputs"')
        return inputs
    if len(names) > 1:
        _fail(f'This model has several inputs {names}: "inputs" must be an object keyed by '
              f"input name.")
    return {names[0]: inputs}


def format_response(servable, outputs, columnar):
    """Shapes model outputs as TensorFlow Serving does: `predictions` rows or `outputs` columns."""
    if columnar:
        if len(outputs) == 1:
            return {"outputs": next(iter(outputs.values())).tolist()}
        return {"outputs": {k: v.tolist() for k, v in outputs.items()}}
    if len(outputs) == 1:
        return {"predictions": next(iter(outputs.values())).tolist()}
    lists = {k: v.tolist() for k, v in outputs.items()}
    rows = len(next(iter(lists.values())))
    return {"predictions": [{k: v[i] for k, v in lists.items()} for i in range(rows)]}


# Micro-batching -----------------------------------------------------------------


class _Batcher:
    """Queues requests for one servable and runs them together on the model thread.

    With batching on, the first waiting request opens a batch; requests that
    arrive within `wait` seconds (or are already queued) join it, up to
    `max_rows` rows; the batch runs as one model call and each request gets
    its slice back. With batching off, each request is its own model call.
    """

    def __init__(self, servable, executor, batching, max_rows, wait):
        self.servable = servable
        self.batching = batching
        self.max_rows = max_rows
        self.wait = wait
        self.calls = 0  # model calls made: a test can see that requests were batched
        self._executor = executor
        self._pending = collections.deque()
        self._ready = None
        self._task = None

    def start(self):
        self._ready = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self):
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        for _, _, future in self._pending:
            if not future.done():
                future.cancel()

    async def predict(self, feeds, rows):
        future = asyncio.get_running_loop().create_future()
        self._pending.append((feeds, rows, future))
        self._ready.set()
        return await future

    def _take(self):
        batch = [self._pending.popleft()]
        rows = batch[0][1]
        while self.batching and self._pending and rows + self._pending[0][1] <= self.max_rows:
            item = self._pending.popleft()
            batch.append(item)
            rows += item[1]
        return batch

    async def _run(self):
        loop = asyncio.get_running_loop()
        while True:
            await self._ready.wait()
            self._ready.clear()
            while self._pending:
                if self.batching and self.wait > 0 and sum(r for _, r, _ in self._pending) < self.max_rows:
                    await asyncio.sleep(self.wait)
                batch = [item for item in self._take() if not item[2].cancelled()]
                if not batch:
                    continue
                await self._execute(loop, batch)

    async def _execute(self, loop, batch):
        if len(batch) == 1:
            feeds = batch[0][0]
        else:
            feeds = {k: np.concatenate([item[0][k] for item in batch]) for k in batch[0][0]}
        self.calls += 1
        try:
            outputs = await loop.run_in_executor(self._executor, self.servable.predict, feeds)
        except Exception as error:  # the model failed: every request in the batch learns why
            for _, _, future in batch:
                if not future.done():
                    future.set_exception(error)
            return
        start = 0
        for _, rows, future in batch:
            if not future.done():
                future.set_result({k: v[start:start + rows] for k, v in outputs.items()})
            start += rows


# The HTTP service -----------------------------------------------------------------


def _model_convertor():
    from starlette.convertors import Convertor, register_url_convertor

    class ModelName(Convertor):
        # No "/" and no ":", so "NAME:predict" is never read as a model name.
        regex = "[^/:]+"

        def convert(self, value):
            return value

        def to_string(self, value):
            return value

    register_url_convertor("kk_segment", ModelName())


class Service:
    """The TensorFlow-Serving-style REST service around one model's versions.

    `service.app` is a Starlette application (ASGI); `serve` runs it with
    uvicorn. Use this class directly to mount the service in another ASGI app.

    Args:
        model: what `load_servables` accepts, or a `{version: Servable}` dict.
        name: the model name in the URLs (see `load_servables`).
        batching: micro-batch concurrent requests into one model call.
            Defaults to True.
        max_batch_size: most rows per model call. Defaults to 64.
        batch_wait_ms: how long a batch waits for more requests. Defaults to 1.
        max_body_bytes: larger request bodies are refused with 413.
            Defaults to 4 MiB.
        versions: "latest" or "all" (for an export folder). Defaults to "latest".
    """

    def __init__(self, model, name=None, *, batching=True, max_batch_size=MAX_BATCH_SIZE,
                 batch_wait_ms=BATCH_WAIT_MS, max_body_bytes=MAX_BODY_BYTES, versions="latest"):
        for option, value, minimum in (("max_batch_size", max_batch_size, 1),
                                       ("max_body_bytes", max_body_bytes, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ConfigError(f"`{option}` must be an integer >= {minimum}. Received: {value!r}")
        if not isinstance(batch_wait_ms, (int, float)) or not 0 <= batch_wait_ms <= 1000:
            raise ConfigError(
                f"`batch_wait_ms` must be a number of milliseconds in [0, 1000]. "
                f"Received: {batch_wait_ms!r}"
            )
        if isinstance(model, dict):
            self.servables = dict(model)
            self.name = _clean_name(name or next(iter(model.values())).name)
        else:
            self.name, self.servables = load_servables(model, name, versions)
        self.batching = bool(batching)
        self.max_batch_size = max_batch_size
        self.batch_wait = batch_wait_ms / 1000.0
        self.max_body_bytes = max_body_bytes
        self.batchers = {}
        self._executor = None
        self.app = self._build_app()

    # Lifecycle: the batchers live on the server's event loop.
    async def _startup(self):
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="kerakit-model")
        for version, servable in self.servables.items():
            batcher = _Batcher(servable, self._executor, self.batching, self.max_batch_size,
                               self.batch_wait)
            batcher.start()
            self.batchers[version] = batcher

    async def _shutdown(self):
        for batcher in self.batchers.values():
            await batcher.stop()
        if self._executor is not None:
            self._executor.shutdown(wait=True)

    def _build_app(self):
        import contextlib

        from starlette.applications import Starlette
        from starlette.exceptions import HTTPException
        from starlette.routing import Route

        _model_convertor()
        base = "/v1/models/{name:kk_segment}"
        versioned = base + "/versions/{version:kk_segment}"
        routes = []
        for prefix in (base, versioned):
            routes += [
                Route(prefix, self._status, methods=["GET"]),
                Route(prefix + "/metadata", self._metadata, methods=["GET"]),
                Route(prefix + ":{verb:kk_segment}", self._predict, methods=["POST"]),
            ]

        @contextlib.asynccontextmanager
        async def lifespan(app):
            await self._startup()
            try:
                yield
            finally:
                await self._shutdown()

        handlers = {HTTPException: self._http_error, Exception: self._internal_error}
        return Starlette(routes=routes, lifespan=lifespan, exception_handlers=handlers)

    # Responses
    @staticmethod
    def _json(payload, status=200, headers=None):
        from starlette.responses import Response

        return Response(json.dumps(payload), status_code=status, headers=headers,
                        media_type="application/json")

    async def _http_error(self, request, exc):
        messages = {
            404: f"No such endpoint: {request.method} {request.url.path}. This service answers "
                 f"GET /v1/models/{self.name}[/versions/N][/metadata] and "
                 f"POST /v1/models/{self.name}[/versions/N]:predict.",
            405: f"Method {request.method} is not allowed on {request.url.path}. "
                 f"Allowed: {(exc.headers or {}).get('Allow', 'GET, POST')}.",
        }
        message = messages.get(exc.status_code, str(exc.detail))
        return self._json({"error": message}, exc.status_code, exc.headers)

    async def _internal_error(self, request, exc):
        return self._json({"error": f"Internal error while serving the request: "
                                    f"{type(exc).__name__}: {exc}"}, 500)

    def _servable(self, request):
        name = request.path_params["name"]
        if name != self.name:
            _fail(f"Model '{name}' is not served here. This service serves '{self.name}'.", 404)
        version = request.path_params.get("version")
        if version is None:
            return self.servables[max(self.servables)]
        loaded = ", ".join(str(v) for v in sorted(self.servables))
        if not _VERSION_NAME.match(version) or int(version) not in self.servables:
            _fail(f"Version {_short(version)} of model '{self.name}' is not loaded. Loaded "
                  f"version(s): {loaded}.", 404)
        return self.servables[int(version)]

    async def _guard(self, handler, request):
        try:
            return await handler(request)
        except RequestError as error:
            return self._json({"error": str(error)}, error.status)

    async def _status(self, request):
        return await self._guard(self._status_body, request)

    async def _status_body(self, request):
        chosen = self._servable(request)
        versions = [chosen.version] if "version" in request.path_params else sorted(self.servables, reverse=True)
        return self._json({"model_version_status": [
            {"version": str(v), "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
            for v in versions
        ]})

    async def _metadata(self, request):
        return await self._guard(self._metadata_body, request)

    async def _metadata_body(self, request):
        servable = self._servable(request)

        def tensor(info, role):
            dims = [{"size": "-1", "name": ""}] + [
                {"size": str(-1 if d is None else d), "name": ""} for d in info.shape
            ]
            return {"dtype": _TF_DTYPES.get(info.dtype, info.dtype.upper()),
                    "tensor_shape": {"dim": dims, "unknown_rank": False},
                    "name": f"{role}_{info.name}:0"}

        signature = {
            "inputs": {i.name: tensor(i, SIGNATURE) for i in servable.inputs},
            "outputs": {o.name: tensor(o, "StatefulPartitionedCall") for o in servable.outputs},
            "method_name": "tensorflow/serving/predict",
        }
        return self._json({
            "model_spec": {"name": self.name, "signature_name": "", "version": str(servable.version)},
            "metadata": {"signature_def": {"signature_def": {SIGNATURE: signature}}},
        })

    async def _predict(self, request):
        return await self._guard(self._predict_body, request)

    async def _predict_body(self, request):
        verb = request.path_params["verb"]
        if verb != "predict":
            status = 400 if verb in ("classify", "regress") else 404
            _fail(f"Unsupported method ':{verb}'. This service answers ':predict' "
                  f"(classify/regress need tf.Example signatures).", status)
        servable = self._servable(request)
        body = await self._read_body(request)
        feeds, rows, columnar = parse_request(servable, body)
        outputs = await self.batchers[servable.version].predict(feeds, rows)
        return self._json(format_response(servable, outputs, columnar))

    async def _read_body(self, request):
        limit = self.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None:
            if not declared.isdigit():
                _fail(f"Invalid Content-Length header {_short(declared)}.")
            if int(declared) > limit:
                _fail(f"The request body is {int(declared)} bytes; this service accepts at most "
                      f"{limit}. Send fewer instances per request.", 413)
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                _fail(f"The request body is over {limit} bytes, the most this service accepts. "
                      f"Send fewer instances per request.", 413)
            chunks.append(chunk)
        return b"".join(chunks)


_TF_DTYPES = {
    "float16": "DT_HALF", "bfloat16": "DT_BFLOAT16", "float32": "DT_FLOAT", "float64": "DT_DOUBLE",
    "int8": "DT_INT8", "int16": "DT_INT16", "int32": "DT_INT32", "int64": "DT_INT64",
    "uint8": "DT_UINT8", "uint16": "DT_UINT16", "uint32": "DT_UINT32", "uint64": "DT_UINT64",
    "bool": "DT_BOOL", "string": "DT_STRING",
}


# Running it -------------------------------------------------------------------------


class RunningServer:
    """A service running on a background thread; stop it with `stop()` or a `with` block."""

    def __init__(self, service, server, thread, host, port):
        self.service = service
        self.host = host
        self.port = port
        self._server = server
        self._thread = thread

    @property
    def url(self):
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def model_url(self):
        return f"{self.url}/v1/models/{self.service.name}"

    def stop(self, timeout=10):
        self._server.should_exit = True
        self._thread.join(timeout)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def serve(model, *, host=DEFAULT_HOST, port=DEFAULT_PORT, name=None, batching=True,
          max_batch_size=MAX_BATCH_SIZE, batch_wait_ms=BATCH_WAIT_MS, max_body_bytes=MAX_BODY_BYTES,
          versions="latest", block=True, ready=None):
    """Serves a model over TensorFlow Serving's REST API with uvicorn.

    Binds 127.0.0.1 unless `host` says otherwise. With `block=True` (the
    command line) it runs until interrupted; with `block=False` it runs on a
    background thread and returns a `RunningServer` (use it in a `with` block).

    Args:
        model: a `keras.Model`, a `.keras` file, a run directory, a SavedModel
            folder or an export base folder with numbered versions.
        host: address to bind. Defaults to "127.0.0.1" (this machine only).
        port: TCP port; 0 picks a free one. Defaults to 8501 (TF Serving's REST port).
        name, batching, max_batch_size, batch_wait_ms, max_body_bytes, versions:
            see `Service`.
        block: run in this thread until stopped. Defaults to True.
        ready: called with the `RunningServer` once the socket listens (for
            printing the address when `port=0`).

    Example:

    ```python
    with kerakit.serve(model, port=0, block=False) as server:
        httpx.post(server.model_url + ":predict", json={"instances": x[:2].tolist()})
    ```
    """
    import uvicorn

    service = Service(model, name, batching=batching, max_batch_size=max_batch_size,
                      batch_wait_ms=batch_wait_ms, max_body_bytes=max_body_bytes, versions=versions)
    config = uvicorn.Config(service.app, host=host, port=port, log_level="warning",
                            access_log=False, lifespan="on", http="h11", loop="asyncio",
                            timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    sock = config.bind_socket()
    bound_port = sock.getsockname()[1]
    if block:
        handle = RunningServer(service, server, threading.current_thread(), host, bound_port)
        if ready is not None:
            ready(handle)
        server.run(sockets=[sock])
        return handle
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]},
                              name="kerakit-serve", daemon=True)
    thread.start()
    handle = RunningServer(service, server, thread, host, bound_port)
    for _ in range(600):
        if server.started or not thread.is_alive():
            break
        threading.Event().wait(0.05)
    if not server.started:
        server.should_exit = True
        raise RunError(f"The server did not start on {host}:{bound_port}.")
    if ready is not None:
        ready(handle)
    return handle
