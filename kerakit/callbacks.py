"""`default_callbacks` and the one callback Keras lacks.

Everything returned is a stock `keras.callbacks.Callback`, except
`TerminateOnNaN`, which raises instead of stopping quietly: Keras's own
`TerminateOnNaN` ends training normally, and `BackupAndRestore` then deletes
its backup in `on_train_end` — the one moment you would want it.
"""

import math

import keras

from kerakit.checks import check_count
from kerakit.errors import KerakitError


class TrainingDivergedError(KerakitError, FloatingPointError):
    """The training loss became NaN or infinite."""


class TerminateOnNaN(keras.callbacks.Callback):
    """Raises `TrainingDivergedError` as soon as the loss is NaN or infinite.

    Raising skips `on_train_end`, so a `BackupAndRestore` backup survives and
    the run can resume from the last good epoch after the cause is fixed.

    Example:

    ```python
    model.fit(x, y, callbacks=[kerakit.callbacks.TerminateOnNaN()])
    ```
    """

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            raise TrainingDivergedError(
                f"The training loss became {float(loss)} at batch {batch}. Training stopped. "
                f"Common fixes: a lower learning_rate, scaled features, or clipnorm on the "
                f"optimizer."
            )


def default_callbacks(
    spec=None,
    *,
    patience=10,
    monitor="auto",
    min_delta=0.0,
    reduce_lr_patience=None,
    backup_dir=None,
    csv_log=None,
    tensorboard_dir=None,
    terminate_on_nan=True,
):
    """Returns the callbacks most training runs want.

    EarlyStopping on the spec's monitor (`val_loss`) with
    `restore_best_weights=True`; optionally ReduceLROnPlateau, BackupAndRestore,
    CSVLogger and TensorBoard; and a `TerminateOnNaN` that raises.

    Args:
        spec: the `ProblemSpec`; its `monitor` is watched. Defaults to None
            ("val_loss").
        patience: epochs without improvement before stopping; None disables
            early stopping. Defaults to 10.
        monitor: the logged quantity to watch, or "auto" for the spec's.
        min_delta: smallest change that counts as an improvement. Defaults to 0.
        reduce_lr_patience: epochs without improvement before the learning
            rate is halved; None (default) leaves it alone.
        backup_dir: folder for `BackupAndRestore`, so an interrupted run resumes.
        csv_log: path of a CSV file for per-epoch logs.
        tensorboard_dir: folder for TensorBoard logs.
        terminate_on_nan: add the raising `TerminateOnNaN`. Defaults to True.

    Example:

    >>> [type(c).__name__ for c in default_callbacks(patience=5)]
    ['EarlyStopping', 'TerminateOnNaN']
    """
    if monitor == "auto":
        monitor = spec.monitor if spec is not None else "val_loss"
    callbacks = []
    if patience is not None:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor=monitor,
                patience=check_count("patience", patience, minimum=0),
                min_delta=min_delta,
                restore_best_weights=True,
            )
        )
    if reduce_lr_patience is not None:
        callbacks.append(
            keras.callbacks.ReduceLROnPlateau(monitor=monitor, factor=0.5, patience=check_count("reduce_lr_patience", reduce_lr_patience, minimum=0))
        )
    if terminate_on_nan:
        callbacks.append(TerminateOnNaN())
    if backup_dir is not None:
        callbacks.append(keras.callbacks.BackupAndRestore(str(backup_dir)))
    if csv_log is not None:
        callbacks.append(keras.callbacks.CSVLogger(str(csv_log)))
    if tensorboard_dir is not None:
        callbacks.append(keras.callbacks.TensorBoard(str(tensorboard_dir)))
    return callbacks
