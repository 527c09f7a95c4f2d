"""Run directories: one folder per recipe run, written atomically.

A run lives in `runs/<recipe>/<id>/` and holds `manifest.json` (recipe, full
config, seed, data fingerprint, versions, start/end time, final metrics),
`model.keras`, `history.csv`, `metrics.json` and PNG plots. Every file is
written to a temporary name in the same folder and then renamed with
`os.replace`, which is atomic: a run killed at any moment leaves either the
previous complete file or none, never half of one. Files get the mode the
umask gives (0644 under the usual 022), like any file the user creates.

The manifest records the process (`pid`, `host`), so `list_runs` can tell a
run that is still going from one that was killed: a "running" run whose
process is gone on this host is shown as "killed", one from another host
that started long ago as "stale", and a run folder without a manifest (killed
before its first write) as "incomplete". Half-written temporary files of dead
writers are removed on the next run or listing.

This module imports only the standard library at import time, so listing runs
(`kerakit runs`) never loads TensorFlow.
"""

import contextlib
import csv
import datetime
import hashlib
import io
import os
import platform
import re
import socket
import sys
import time
from pathlib import Path

from kerakit import metrics_registry
from kerakit.atomic import atomic_path, atomic_write_json, atomic_write_text
from kerakit.errors import ConfigError, RunError

MANIFEST = "manifest.json"
MODEL = "model.keras"
HISTORY = "history.csv"
METRICS = "metrics.json"
DEFAULT_RUNS_DIR = "runs"
RUNS_DIR_ENV = "KERAKIT_RUNS_DIR"

# The metric `kerakit runs` shows for each task, best first where several apply.
KEY_METRICS = metrics_registry.KEY_METRICS

# A "running" run from another host is shown as "stale" once it is this old.
STALE_AFTER_SECONDS = 7 * 24 * 3600
# Temporary files (`.NAME.<pid>.<random>.tmp.SUFFIX`) older than this are
# removed whoever wrote them; those of a dead process on this host at once.
STALE_TEMP_SECONDS = 15 * 60
RUN_ID_PATTERN = re.compile(r"^\d{8}-\d{6}-[0-9a-f]{4}$")
_TEMP_NAME = re.compile(r"^\..+\.tmp(\.[^.]+)?$")
_TEMP_PID = re.compile(r"\.(\d+)\.[^.]+\.tmp(\.[^.]+)?$")


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
    if array.dtype.kind == "O":  # text columns: pandas hashes each cell, fast and stable
        import pandas as pd

        cells = pd.Series(array.ravel()).map(lambda v: None if v is None else str(v))
        digest.update(pd.util.hash_pandas_object(cells, index=False).to_numpy().tobytes())
    else:
        digest.update(np.ascontiguousarray(array).tobytes())


DATA_SPLITS = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")


def data_fingerprint(data):
    """Returns a SHA-256 hex digest of a recipe's splits (values, dtypes and shapes).

    Two runs with the same fingerprint trained and were tested on identical data.

    Example:

    >>> a = data_fingerprint({"x_train": [[1.0]], "y_train": [0]})
    >>> b = data_fingerprint({"x_train": [[1.0]], "y_train": [1]})
    >>> len(a), a == b
    (64, False)
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


def timestamp():
    """The current local time, ISO 8601 with the UTC offset, to the second."""
    return datetime.datetime.now(datetime.timezone.utc).astimezone().isoformat(timespec="seconds")


def runs_dir(path=None):
    """Returns the root of run directories: `path`, $KERAKIT_RUNS_DIR, or ./runs.

    Raises `RunError` when that path exists and is not a folder.
    """
    root = Path(path or os.environ.get(RUNS_DIR_ENV) or DEFAULT_RUNS_DIR)
    if root.exists() and not root.is_dir():
        raise RunError(
            f"The runs folder {root} is a file, not a folder. Pass a folder with --runs-dir "
            f"(or $KERAKIT_RUNS_DIR), or remove the file. Received: runs_dir='{root}'."
        )
    return root


def _inside(path, root):
    """Whether `path`, its symbolic links followed, stays inside `root`."""
    target, base = os.path.realpath(path), os.path.realpath(root)
    return target == base or target.startswith(base.rstrip(os.sep) + os.sep)


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
        out: the stream `print` writes to. Defaults to sys.stdout at creation.

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

    def __init__(self, recipe, root=None, run_id=None, quiet=False, out=None):
        self.recipe = recipe
        self.id = run_id or new_run_id()
        root = runs_dir(root)
        self.dir = root / recipe / self.id
        self.quiet = quiet
        self.model = None
        self.history = None
        self.figures = []
        self.history_units = None
        # Who writes this run: `list_runs` shows it "killed" once that process is gone.
        self.manifest = process_identity()
        self._out = out or sys.stdout
        remove_stale_temp_files(root)
        if (root / recipe).exists() and not _inside(root / recipe, root):
            raise RunError(
                f"{root / recipe} is a symbolic link leading out of the runs folder {root}; "
                f"kerakit writes runs only inside it. Remove the link or pick another --runs-dir."
            )
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
        from kerakit.saving import save_model

        save_model(model, self.path(name))
        self.model = model
        return self.path(name)

    def save_history(self, history, name=HISTORY, units=None):
        """Saves a Keras `History` (or a dict of per-epoch lists) as `history.csv`.

        Args:
            history: a Keras `History` or a dict of per-epoch lists.
            name: the file name. Defaults to "history.csv".
            units: what the losses and metrics are measured in, when that is
                not the target's own units (e.g. a standardized regression
                target). Recorded in the manifest as `history_units` and on
                the learning-curve axes. Defaults to None (the target's units).
        """
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
        if units is not None:
            self.history_units = str(units)
            self.manifest["history_units"] = self.history_units
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

    def discard(self):
        """Removes the run directory if it holds nothing but the manifest; returns whether it did.

        For a run that refused its input before training: it leaves no run to list.
        """
        try:
            names = [p.name for p in self.dir.iterdir()]
        except OSError:
            return False
        if any(n != MANIFEST and not _TEMP_NAME.match(n) for n in names):
            return False
        for name in names:
            with contextlib.suppress(OSError):
                (self.dir / name).unlink()
        try:
            self.dir.rmdir()
        except OSError:
            return False
        with contextlib.suppress(OSError):
            self.dir.parent.rmdir()  # only if no other run of this recipe is there
        return True

    def write_manifest(self, **fields):
        """Updates the manifest with `fields` and rewrites `manifest.json` atomically."""
        self.manifest.update(fields)
        self.manifest["files"] = sorted(
            p.name for p in self.dir.iterdir() if p.is_file() and not p.name.startswith(".")
        )
        if MANIFEST not in self.manifest["files"]:
            self.manifest["files"] = sorted([*self.manifest["files"], MANIFEST])
        atomic_write_json(self.path(MANIFEST), self.manifest)


def _process_start(pid):
    """The start time of a process in clock ticks since boot (Linux), or None."""
    try:
        with open(f"/proc/{int(pid)}/stat", encoding="ascii") as stat:
            return int(stat.read().rpartition(")")[2].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def process_identity():
    """`{"pid", "host"}` of this process (plus its start time where known), for a manifest."""
    found = {"pid": os.getpid(), "host": socket.gethostname()}
    start = _process_start(os.getpid())
    if start is not None:
        found["process_start"] = start
    return found


def process_alive(pid, start=None):
    """Whether process `pid` on this host still runs (False once it exited or was killed).

    `start`, the start time recorded with the pid, tells a reused pid from the
    original process. Returns None where the system cannot tell.
    """
    if os.name == "nt":  # os.kill(pid, 0) would terminate the process there
        return None
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        pass
    except (OSError, ValueError, TypeError, OverflowError):
        return None
    if start is not None:
        now = _process_start(pid)
        if now is not None and now != start:
            return False
    return True


def run_state(manifest, now=None):
    """The status `kerakit runs` shows: the recorded one, or "killed"/"stale" for a dead "running" run.

    A "running" run whose process (manifest `pid` on `host`) no longer exists
    was killed (SIGKILL, power loss) before it could record its end. A
    "running" run of another host cannot be checked; it is "stale" once it
    started more than `STALE_AFTER_SECONDS` ago.
    """
    status = manifest.get("status", "?")
    if status != "running" or manifest.get("pid") is None:
        return status
    if manifest.get("host") == socket.gethostname():
        alive = process_alive(manifest["pid"], manifest.get("process_start"))
        return "killed" if alive is False else status
    try:
        started = datetime.datetime.fromisoformat(str(manifest.get("started"))).timestamp()
    except (TypeError, ValueError):
        return status
    return "stale" if (now or time.time()) - started > STALE_AFTER_SECONDS else status


def remove_stale_temp_files(root=None, now=None):
    """Removes half-written temporary files that no process will finish; returns their paths.

    A temporary file (`.model.keras.<pid>.<random>.tmp.keras`) in a run
    directory is stale when the process named in it is gone, or when it is
    older than `STALE_TEMP_SECONDS` (files of older versions carry no pid).
    Symbolic links are never followed: a recipe or run folder that is a link
    is skipped, so nothing outside the runs folder is ever deleted.
    """
    root = runs_dir(root)
    removed = []
    if not root.is_dir():
        return removed
    now = now or time.time()
    for run_dir in _run_folders(root):
        try:
            entries = list(os.scandir(run_dir))
        except OSError:
            continue
        for entry in entries:
            if not (entry.name.startswith(".") and _TEMP_NAME.match(entry.name)):
                continue
            try:
                age = now - entry.stat(follow_symlinks=False).st_mtime
                if not entry.is_file(follow_symlinks=False):
                    continue
            except OSError:
                continue
            owner = _TEMP_PID.search(entry.name)
            dead = owner is not None and process_alive(int(owner.group(1))) is False
            if dead or age > STALE_TEMP_SECONDS:
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
                    removed.append(Path(entry.path))
    return removed


def _real_folders(folder):
    """The sub-folders of `folder` that are folders themselves, not symbolic links."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return []
    return [Path(e.path) for e in entries if e.is_dir(follow_symlinks=False)]


def _run_folders(root):
    return [run for recipe in _real_folders(root) for run in _real_folders(recipe)]


def _cell(values, i):
    if i >= len(values):
        return ""
    value = values[i]
    return repr(float(value)) if isinstance(value, (int, float)) or hasattr(value, "item") else value
