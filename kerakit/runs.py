"""Run directories: one folder per recipe run, written atomically.

A run lives in `runs/<recipe>/<id>/` and holds `manifest.json` (recipe, full
config, seed, data fingerprint, versions, start/end time, final metrics),
`model.keras`, `history.csv`, `metrics.json` and PNG plots. Every file is
written to a temporary name in the same folder and then renamed with
`os.replace`, which is atomic: a run killed at any moment leaves either the
previous complete file or none, never half of one.

This module imports only the standard library at import time, so listing runs
(`kerakit runs`) never loads TensorFlow.
"""

import contextlib
import csv
import datetime
import hashlib
import io
import json
import math
import os
import platform
import sys
import tempfile
from pathlib import Path

from kerakit.errors import ConfigError, RunError

MANIFEST = "manifest.json"
MODEL = "model.keras"
HISTORY = "history.csv"
METRICS = "metrics.json"
DEFAULT_RUNS_DIR = "runs"
RUNS_DIR_ENV = "KERAKIT_RUNS_DIR"

# The metric `kerakit runs` shows for each task, best first where several apply.
KEY_METRICS = {
    "binary": ("accuracy", "roc_auc"),
    "multiclass": ("accuracy",),
    "multilabel": ("f1", "subset_accuracy"),
    "regression": ("r2", "rmse"),
}


# Atomic writes --------------------------------------------------------------


@contextlib.contextmanager
def atomic_path(path):
    """Yields a temporary path next to `path`; renames it onto `path` on success.

    The temporary name keeps the file's suffix (Keras insists on `.keras`,
    matplotlib picks the format from it). If the block raises, the temporary
    file is removed and `path` is left as it was.

    Example:

    ```python
    with atomic_path("runs/x/model.keras") as tmp:
        model.save(tmp)
    ```
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _fsync(path):
    try:
        with open(path, "rb") as handle:
            os.fsync(handle.fileno())
    except OSError:  # some file systems refuse fsync; the rename is still atomic
        pass


def atomic_write_bytes(path, data):
    """Writes `data` to `path` atomically (temporary file + `os.replace`)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path, text):
    """Writes `text` (UTF-8) to `path` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def _json_default(value):
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:  # NumPy scalars
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _clean_floats(value):
    # JSON has no NaN/Infinity; write null so every JSON reader can load the file.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean_floats(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean_floats(v) for v in value]
    return value


def to_json(obj):
    """Serializes `obj` (dicts, lists, NumPy values, paths) to indented JSON text."""
    obj = json.loads(json.dumps(obj, default=_json_default))
    return json.dumps(_clean_floats(obj), indent=2, allow_nan=False) + "\n"


def atomic_write_json(path, obj):
    """Writes `obj` as JSON to `path` atomically; NaN becomes null."""
    return atomic_write_text(path, to_json(obj))


# Fingerprints and versions --------------------------------------------------


def _feed(digest, value):
    import numpy as np

    if isinstance(value, dict):
        for key in sorted(value, key=str):
            digest.update(str(key).encode())
            _feed(digest, value[key])
        return
    if hasattr(value, "to_numpy"):  # pandas
        if hasattr(value, "columns"):
            _feed(digest, {str(c): value[c] for c in value.columns})
            return
        value = value.to_numpy()
    array = np.asarray(value)
    digest.update(f"{array.dtype.str}{array.shape}".encode())
    if array.dtype.kind == "O":
        digest.update(repr(array.tolist()).encode())
    else:
        digest.update(np.ascontiguousarray(array).tobytes())


DATA_SPLITS = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")


def data_fingerprint(data):
    """Returns a SHA-256 hex digest of a recipe's splits (values, dtypes and shapes).

    Two runs with the same fingerprint trained and were tested on identical data.

    Example:

    >>> data_fingerprint({"x_train": [[1.0]], "y_train": [0]})[:12]
    '...'
    """
    digest = hashlib.sha256()
    for key in DATA_SPLITS:
        if data.get(key) is not None:
            digest.update(key.encode())
            _feed(digest, data[key])
    return digest.hexdigest()


def versions():
    """Returns the versions of Python and the stack that a run depends on."""
    from importlib import metadata

    from kerakit import __version__

    found = {"python": platform.python_version(), "kerakit": __version__}
    for name, dist in (("tensorflow", "tensorflow"), ("keras", "keras"), ("keras_tuner", "keras-tuner"),
                       ("numpy", "numpy"), ("scikit_learn", "scikit-learn")):
        try:
            found[name] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            found[name] = None
    found["platform"] = platform.platform()
    return found


def _now():
    return datetime.datetime.now(datetime.timezone.utc).astimezone().isoformat(timespec="seconds")


def runs_dir(path=None):
    """Returns the root of run directories: `path`, $KERAKIT_RUNS_DIR, or ./runs."""
    return Path(path or os.environ.get(RUNS_DIR_ENV) or DEFAULT_RUNS_DIR)


def new_run_id():
    """A sortable, unique id: local time plus a short random suffix."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{os.urandom(2).hex()}"


# The Run object -------------------------------------------------------------


class Run:
    """One run of a recipe and its directory.

    A recipe's `run(config, data, run)` receives this object and saves what it
    produces through it; every write is atomic. The runner writes
    `manifest.json` when the run starts (status "running") and again when it
    ends ("completed" or "failed"), plus `metrics.json`.

    Args:
        recipe: the recipe's name.
        root: the runs folder. Defaults to $KERAKIT_RUNS_DIR or "runs".
        run_id: the run's id. Defaults to a new time-based id.
        quiet: make `print` silent. Defaults to False.

    Attributes:
        dir: the run directory, a `pathlib.Path` (`<root>/<recipe>/<run_id>`).
        model: the last model passed to `save_model`, or None.
        history: the last history passed to `save_history`, or None.
        figures: names of the figures saved so far.

    Example:

    ```python
    run = Run("digits", root=tmp_path)
    run.save_json("notes", {"lesson": "scale your features"})
    run.print("saved to", run.dir)
    ```
    """

    def __init__(self, recipe, root=None, run_id=None, quiet=False):
        self.recipe = recipe
        self.id = run_id or new_run_id()
        self.dir = runs_dir(root) / recipe / self.id
        self.quiet = quiet
        self.model = None
        self.history = None
        self.figures = []
        self.manifest = {}
        self._out = sys.stdout
        try:
            self.dir.mkdir(parents=True, exist_ok=False)
        except FileExistsError:
            raise RunError(
                f"Run directory {self.dir} already exists. Pick another run id or remove it."
            ) from None

    def __repr__(self):
        return f"Run(recipe={self.recipe!r}, dir='{self.dir}')"

    def path(self, name):
        """Returns the path of `name` inside the run directory."""
        return self.dir / name

    def print(self, *args, **kwargs):
        """Prints like `print`, unless the run is quiet (`--quiet` / `--json`)."""
        if not self.quiet:
            kwargs.setdefault("file", self._out)
            kwargs.setdefault("flush", True)
            print(*args, **kwargs)

    def save_model(self, model, name=MODEL):
        """Saves a Keras model as `model.keras` (atomically) and remembers it."""
        if not hasattr(model, "save"):
            raise ConfigError(
                f"`save_model` expects a keras.Model. Received: {type(model).__name__}."
            )
        with atomic_path(self.path(name)) as tmp:
            model.save(tmp)
        self.model = model
        return self.path(name)

    def save_history(self, history, name=HISTORY):
        """Saves a Keras `History` (or a dict of per-epoch lists) as `history.csv`."""
        logs = getattr(history, "history", history)
        if not isinstance(logs, dict):
            raise ConfigError(
                f"`save_history` expects a keras History or a dict of per-epoch lists. "
                f"Received: {type(history).__name__}."
            )
        columns = list(logs)
        epochs = max((len(v) for v in logs.values()), default=0)
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["epoch", *columns])
        for i in range(epochs):
            writer.writerow([i + 1, *(_cell(logs[c], i) for c in columns)])
        atomic_write_text(self.path(name), buffer.getvalue())
        self.history = logs
        return self.path(name)

    def save_figure(self, name, figure):
        """Saves a matplotlib Figure as `<name>.png` and closes nothing else."""
        if not hasattr(figure, "savefig"):
            raise ConfigError(
                f"`save_figure` expects a matplotlib Figure. Received: {type(figure).__name__}."
            )
        name = name[:-4] if name.endswith(".png") else name
        with atomic_path(self.path(f"{name}.png")) as tmp:
            figure.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
        if name not in self.figures:
            self.figures.append(name)
        return self.path(f"{name}.png")

    def save_json(self, name, obj):
        """Saves `obj` as `<name>.json` (NumPy values allowed, NaN → null)."""
        name = name if name.endswith(".json") else f"{name}.json"
        return atomic_write_json(self.path(name), obj)

    def write_manifest(self, **fields):
        """Updates the manifest with `fields` and rewrites `manifest.json` atomically."""
        self.manifest.update(fields)
        self.manifest["files"] = sorted(
            p.name for p in self.dir.iterdir() if p.is_file() and not p.name.startswith(".")
        )
        if MANIFEST not in self.manifest["files"]:
            self.manifest["files"] = sorted([*self.manifest["files"], MANIFEST])
        atomic_write_json(self.path(MANIFEST), self.manifest)


def _cell(values, i):
    if i >= len(values):
        return ""
    value = values[i]
    return repr(float(value)) if isinstance(value, (int, float)) or hasattr(value, "item") else value


# Reading runs ---------------------------------------------------------------


def read_manifest(run_dir):
    """Returns the manifest of a run directory as a dict."""
    path = Path(run_dir) / MANIFEST
    if not path.is_file():
        raise RunError(
            f"{run_dir} is not a run directory: it has no {MANIFEST}. Pass a folder such as "
            f"runs/digits/<id>/, or a .keras model file."
        )
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise RunError(f"{path} is not valid JSON ({error}).") from None


def key_metric(manifest):
    """Returns `(name, value)` of the run's headline metric, or `(None, None)`."""
    metrics = manifest.get("metrics") or {}
    task = (manifest.get("spec") or {}).get("task")
    for name in KEY_METRICS.get(task, ()):
        if isinstance(metrics.get(name), (int, float)):
            return name, metrics[name]
    for name, value in metrics.items():
        if isinstance(value, (int, float)) and name != "n":
            return name, value
    return None, None


def list_runs(root=None, recipe=None):
    """Returns the manifests of past runs under `root`, oldest first.

    Each manifest gains `dir` (its run directory). Unreadable manifests are
    returned with status "unreadable" rather than hidden.

    Example:

    >>> [m["recipe"] for m in list_runs("runs")]
    ['digits', 'wine']
    """
    root = runs_dir(root)
    if not root.is_dir():
        return []
    found = []
    for path in root.glob(f"{recipe or '*'}/*/{MANIFEST}"):
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            manifest = {"recipe": path.parent.parent.name, "id": path.parent.name,
                        "status": "unreadable"}
        manifest["dir"] = str(path.parent)
        found.append(manifest)
    return sorted(found, key=lambda m: (str(m.get("started", "")), m["dir"]))


def resolve_model_path(run_or_model):
    """Returns `(model_path, manifest or None)` for a run directory or a `.keras` file."""
    path = Path(run_or_model)
    if path.is_dir():
        manifest = read_manifest(path)
        model = path / MODEL
        if not model.is_file():
            raise RunError(
                f"Run directory {path} has no {MODEL} (status: {manifest.get('status', '?')}). "
                f"The recipe may not save a model; pick a run that does."
            )
        return model, manifest
    if path.is_file():
        if path.suffix != ".keras":
            raise RunError(
                f"Expected a run directory or a .keras model file. Received: {path}."
            )
        manifest_path = path.parent / MANIFEST
        manifest = read_manifest(path.parent) if manifest_path.is_file() else None
        return path, manifest
    raise RunError(
        f"No run directory or model file at {path}. List runs with `kerakit runs`."
    )
