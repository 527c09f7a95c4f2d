"""Reading run directories back: manifests (a damaged one refused by name), the listing, the model path.

Imports only the standard library at import time, so `kerakit runs` never
loads TensorFlow.
"""

import datetime
import json
from pathlib import Path

from kerakit.errors import RunError
from kerakit.runs._folders import (
    KEY_METRICS,
    MANIFEST,
    MODEL,
    RUN_ID_PATTERN,
    remove_stale_temp_files,
    run_state,
    runs_dir,
)

# Reading runs ---------------------------------------------------------------


# What a manifest's fields must be: name → (accepted types, what to say).
_TEXT = (str, type(None))
_MANIFEST_FIELDS = {
    "recipe": (_TEXT, "a recipe name"),
    "id": (_TEXT, "a run id"),
    "status": (_TEXT, "a status such as 'completed'"),
    "started": (_TEXT, "an ISO 8601 time"),
    "ended": (_TEXT, "an ISO 8601 time"),
    "metrics": ((dict, type(None)), "an object of metric names and numbers"),
    "spec": ((dict, type(None)), "a problem spec object"),
    "data": ((dict, type(None)), "an object describing the data"),
    "warnings": ((list, type(None)), "a list of messages"),
}
_DATA_FIELDS = {
    "source": (_TEXT, "a file name"),
    "target": (_TEXT, "a column name"),
    "feature_names": ((list, type(None)), "a list of column names"),
}


def manifest_problem(manifest):
    """What is wrong with a manifest's shape (a tampered or damaged file), or None when nothing is.

    Example:

    >>> manifest_problem({"status": 123})
    "'status' must be a status such as 'completed'. Received: status=123"
    """
    if not isinstance(manifest, dict):
        return f"it must be a JSON object. Received: {type(manifest).__name__}"
    checks = [(name, manifest.get(name), rule) for name, rule in _MANIFEST_FIELDS.items()]
    if isinstance(manifest.get("data"), dict):
        checks += [(f"data.{name}", manifest["data"].get(name), rule)
                   for name, rule in _DATA_FIELDS.items()]
    for name, value, (types, wanted) in checks:
        if not isinstance(value, types):
            return f"'{name}' must be {wanted}. Received: {name}={value!r}"
    for name, value in (manifest.get("metrics") or {}).items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            return f"metric '{name}' must be a number. Received: {name}={value!r}"
    names = (manifest.get("data") or {}).get("feature_names") or []
    if not all(isinstance(n, str) for n in names):
        return f"'data.feature_names' must be a list of column names. Received: {names!r}"[:300]
    return None


def read_manifest(run_dir):
    """Returns the manifest of a run directory as a dict; a damaged one is refused by name."""
    path = Path(run_dir) / MANIFEST
    if not path.is_file():
        raise RunError(
            f"{run_dir} is not a run directory: it has no {MANIFEST}. Pass a folder such as "
            f"runs/digits/<id>/, or a .keras model file."
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise RunError(f"{path} is not valid JSON ({error}).") from None
    problem = manifest_problem(manifest)
    if problem is not None:
        raise RunError(
            f"The run's manifest {path} is damaged: {problem}. kerakit will not use a run it "
            f"cannot read; rerun the recipe, or restore the manifest."
        )
    return manifest


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

    Each manifest gains `dir` (its run directory), and its `status` is what
    `run_state` says: a "running" run whose process is gone is "killed" (the
    recorded status is kept as `recorded_status`). Unreadable manifests are
    returned with status "unreadable", tampered ones (fields of the wrong
    type) with status "damaged" and the reason as `damage`, and run folders
    without a manifest (a
    run killed before its first write) with status "incomplete", rather than
    hidden. Stale temporary files are removed on the way.

    Example:

    ```python
    [m["recipe"] for m in list_runs("runs")]
    # ['digits', 'wine']
    ```
    """
    root = runs_dir(root)
    if not root.is_dir():
        return []
    remove_stale_temp_files(root)
    found = []
    for folder in sorted(root.glob(f"{recipe or '*'}/*/")):
        path = folder / MANIFEST
        if not path.is_file():
            if _looks_like_run_folder(folder):
                found.append(_incomplete(folder))
            continue
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            manifest = {"recipe": folder.parent.name, "id": folder.name, "status": "unreadable"}
        problem = manifest_problem(manifest)
        if problem is not None:
            manifest = {"recipe": folder.parent.name, "id": folder.name, "status": "damaged",
                        "damage": problem}
        state = run_state(manifest)
        if state != manifest.get("status", "?"):
            manifest["recorded_status"] = manifest.get("status")
            manifest["status"] = state
        manifest["dir"] = str(folder)
        found.append(manifest)
    return sorted(found, key=lambda m: (str(m.get("started", "")), m["dir"]))


def _looks_like_run_folder(folder):
    if RUN_ID_PATTERN.match(folder.name):
        return True
    return any(folder.glob(f".{MANIFEST}.*"))


def _incomplete(folder):
    try:
        started = datetime.datetime.fromtimestamp(folder.stat().st_mtime).astimezone()
    except OSError:
        started = None
    return {"recipe": folder.parent.name, "id": folder.name, "status": "incomplete",
            "started": started.isoformat(timespec="seconds") if started else "",
            "dir": str(folder)}


def data_label(manifest):
    """`"file.csv → target"` for a run trained on a data file, the target alone, or "" if neither."""
    data = manifest.get("data") or {}
    source, target = data.get("source"), data.get("target")
    name = Path(str(source)).name if source else ""
    if name and target:
        return f"{name} → {target}"
    return name or (str(target) if target else "")


def resolve_model_path(run_or_model):
    """Returns `(model_path, manifest or None)` for a run directory or a `.keras` file.

    The model file is found as `kerakit.saving.load_model` finds it (a
    `model.keras` linking out of its run directory is refused); a damaged
    manifest is refused by name.
    """
    from kerakit.saving import model_file

    path = Path(run_or_model)
    if path.is_dir():
        manifest = read_manifest(path)
        if not (path / MODEL).exists() and not (path / MODEL).is_symlink():
            raise RunError(
                f"Run directory {path} has no {MODEL} (status: {manifest.get('status', '?')}). "
                f"The recipe may not save a model; pick a run that does."
            )
        return model_file(path), manifest
    if not path.exists():
        raise RunError(
            f"No run directory or model file at {path}. List runs with `kerakit runs`."
        )
    model = model_file(path)
    manifest = read_manifest(path.parent) if (path.parent / MANIFEST).is_file() else None
    return model, manifest
