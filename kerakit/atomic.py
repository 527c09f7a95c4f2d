"""Atomic files: written to a temporary name beside the target, then renamed.

Core floor, standard library only. `os.replace` is atomic, so a process
killed at any moment leaves either the previous complete file or none, never
half of one. The temporary name (`.NAME.<pid>.<random>.tmp.SUFFIX`) keeps the
suffix (Keras insists on `.keras`, matplotlib picks the format from it) and
carries the writer's pid, so a later run can remove what a dead writer left
(`kerakit.runs.remove_stale_temp_files`). Finished files get the mode the
umask gives (0644 under the usual 022), like any file the user creates.
Run directories, tuning folders, exports and plots all write through here.
"""

import contextlib
import json
import math
import os
import tempfile
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path, durable=True):
    """Yields a temporary path next to `path`; renames it onto `path` on success.

    The temporary name keeps the file's suffix (Keras insists on `.keras`,
    matplotlib picks the format from it). If the block raises, the temporary
    file is removed and `path` is left as it was. `durable=False` skips the
    fsync before the rename: a killed process still leaves the old file or
    the new one, whole, but a power cut may leave an empty one. It suits
    files rewritten often whose loss costs only time (a trial's checkpoint,
    where the fsync was most of the cost of each epoch's write).

    Example:

    ```python
    with atomic_path("runs/x/model.keras") as tmp:
        model.save(tmp)
    ```
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # The pid in the name lets a later run or listing remove it if this process dies.
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=f".tmp{path.suffix}",
                               dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        if durable:
            _fsync(tmp)
        # mkstemp creates 0600; the finished file gets the mode any new file would.
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _umask():
    """The process's umask, read without changing it where the system allows."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


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
