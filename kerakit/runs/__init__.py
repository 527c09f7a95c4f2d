"""Run directories and the models in them.

A run lives in `runs/<recipe>/<id>/` (see `Run`); `list_runs` reads them back,
`RunModel` evaluates and predicts with a run's model on CSV rows. Importing
this package imports only the standard library, so `kerakit runs` never loads
TensorFlow.
"""

from kerakit.runs._folders import (
    DATA_SPLITS,
    DEFAULT_RUNS_DIR,
    HISTORY,
    KEY_METRICS,
    MANIFEST,
    METRICS,
    MODEL,
    RUN_ID_PATTERN,
    RUNS_DIR_ENV,
    STALE_AFTER_SECONDS,
    STALE_TEMP_SECONDS,
    Run,
    data_fingerprint,
    new_run_id,
    process_alive,
    process_identity,
    remove_stale_temp_files,
    run_state,
    runs_dir,
    timestamp,
    versions,
)
from kerakit.runs._listing import (
    data_label,
    key_metric,
    list_runs,
    manifest_problem,
    read_manifest,
    resolve_model_path,
)
from kerakit.runs._model import (
    RunModel,
    check_feature_columns,
    check_label_columns,
    check_output,
    read_csv,
    write_csv,
)

__all__ = [
    "DATA_SPLITS", "DEFAULT_RUNS_DIR", "HISTORY", "KEY_METRICS", "MANIFEST", "METRICS", "MODEL",
    "RUN_ID_PATTERN", "RUNS_DIR_ENV", "STALE_AFTER_SECONDS", "STALE_TEMP_SECONDS", "Run",
    "RunModel", "check_feature_columns", "check_label_columns", "check_output", "data_fingerprint",
    "data_label", "key_metric", "list_runs", "manifest_problem",
    "new_run_id", "process_alive", "process_identity", "read_csv", "read_manifest",
    "remove_stale_temp_files", "resolve_model_path", "run_state", "runs_dir", "timestamp",
    "versions", "write_csv",
]
