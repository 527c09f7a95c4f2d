"""A run's model on new rows: `RunModel` (evaluate / predict CSV rows) and CSV in and out.

`kerakit evaluate`, `predict`, `compare` and `explain` read a CSV, hand it to
a `RunModel` and write predictions back. Imports only the standard library at
import time; pandas and Keras load on use.
"""

from pathlib import Path

from kerakit.atomic import atomic_path
from kerakit.errors import RunError
from kerakit.runs._listing import resolve_model_path


def _spec_from_manifest(manifest):
    from kerakit.spec import ProblemSpec

    spec = dict((manifest or {}).get("spec") or {})
    return ProblemSpec(**spec) if spec else None


class RunModel:
    """A trained model with what a run knows about it, for `evaluate` / `predict` on CSV rows.

    Works with a run directory (spec, feature names and target come from its
    manifest), a raw-column model from `kerakit.data` (its own metadata), or
    a bare `.keras` file (features are every column but the target; the spec
    is inferred from the labels). Models are loaded by
    `kerakit.saving.load_model`, which refuses unsafe files.

    Args:
        run_or_model: a run directory, or a `.keras` file.

    Example:

    ```python
    run_model = RunModel("runs/digits/20250101-120000-ab12")
    frame = pandas.read_csv("test.csv")
    run_model.evaluate(frame)["accuracy"]
    ```
    """

    def __init__(self, run_or_model):
        from kerakit.metadata import spec_of
        from kerakit.saving import load_model

        self.path, self.manifest = resolve_model_path(run_or_model)
        self.model = load_model(self.path)
        self.table = self._table_metadata()

        # The manifest's spec serves files saved before models carried their own.
        self.spec = spec_of(self.model) or _spec_from_manifest(self.manifest)
        data = (self.manifest or {}).get("data") or {}
        self.feature_names = data.get("feature_names")
        self.target = (self.table or {}).get("target") or data.get("target")

    def _table_metadata(self):
        try:
            from kerakit.data.table import table_metadata

            return table_metadata(self.model)
        except (ImportError, ValueError):
            return None

    @property
    def class_names(self):
        names = self.spec.class_names if self.spec is not None else None
        return list(names) if names else None

    def target_columns(self, frame, target=None):
        """The label column(s) of `frame`: `target`, the run's target, or class-named columns."""
        columns = [str(c) for c in frame.columns]
        if target:
            wanted = [t.strip() for t in str(target).split(",") if t.strip()]
        elif self.target:
            wanted = [self.target]
        elif (self.spec is not None and self.spec.task == "multilabel" and self.class_names
              and all(str(n) in columns for n in self.class_names)):
            wanted = [str(n) for n in self.class_names]
        else:
            wanted = ["target"]
        _refuse_missing_labels(wanted, columns)
        return wanted

    def features(self, frame, exclude=()):
        """The model's input from a frame of raw rows (text cells are converted to numbers)."""
        if self.table is not None:
            from kerakit.data.table import table_inputs

            return table_inputs(self.model, frame)
        import numpy as np
        import pandas as pd

        columns = [str(c) for c in frame.columns]
        if self.feature_names and all(str(n) in columns for n in self.feature_names):
            names = [str(n) for n in self.feature_names]
        else:
            names = [c for c in columns if c not in set(exclude)]
        width = self.model.input_shape[-1] if isinstance(self.model.input_shape, tuple) else None
        if width is not None and len(names) != width:
            raise RunError(
                f"The model takes {width} feature column(s); the CSV has {len(names)} besides "
                f"the label ({', '.join(names[:8])}{', ...' if len(names) > 8 else ''}). Pass "
                f"a CSV with the training columns, and name the label with --target."
            )
        values = {}
        for name in names:
            numbers = pd.to_numeric(frame[name], errors="coerce")
            bad = numbers.isna() & frame[name].notna()
            if bad.any():
                raise RunError(
                    f"Column '{name}' must hold numbers; rows {list(frame.index[bad][:5])} hold "
                    f"{frame[name][bad].head(3).tolist()!r}. This model takes numeric features."
                )
            values[name] = numbers.to_numpy(dtype=np.float32)
        return np.stack([values[n] for n in names], axis=1)

    def labels(self, frame, columns):
        """Labels from the frame in the form the spec expects (class names → indices, one-hot rows)."""
        import numpy as np
        import pandas as pd

        from kerakit.inference import infer_spec

        if self.table is not None:
            from kerakit.data.targets import encoder_from_metadata

            return encoder_from_metadata(self.table).labels(frame[columns[0]])
        raw = frame[columns]
        numeric = raw.apply(pd.to_numeric, errors="coerce")
        if numeric.notna().to_numpy().all():
            y = numeric.to_numpy(dtype=np.float64)
        else:
            y = raw.to_numpy(dtype=object)
        y = y[:, 0] if y.shape[1] == 1 else y
        if self.spec is None:
            self.spec = infer_spec(y)
            outputs = self.model.output_shape[-1]
            if self.spec.num_outputs != outputs:
                raise RunError(
                    f"The labels look like {self.spec.task} with {self.spec.num_outputs} "
                    f"output(s) but the model has {outputs}. Evaluate a run directory (its "
                    f"manifest records the problem spec) instead of a bare .keras file."
                )
        spec = self.spec
        if y.ndim == 1 and spec.task == "multiclass" and spec.label_format != "sparse":
            index = y
            if y.dtype == object and spec.class_names:
                lookup = {str(n): i for i, n in enumerate(spec.class_names)}
                index = np.array([lookup.get(str(v), -1) for v in y])
            index = np.asarray(index, dtype=np.int64)
            if (index < 0).any() or (index >= spec.num_classes).any():
                raise RunError(
                    f"Labels in '{columns[0]}' must be class indices 0..{spec.num_classes - 1} "
                    f"or class names {self.class_names}."
                )
            return np.eye(spec.num_classes, dtype=np.float32)[index]
        if y.dtype == object and spec.class_names:
            lookup = {str(n): n for n in spec.class_names}
            y = np.array([lookup.get(str(v), v) for v in y], dtype=object)
        return y

    def outputs(self, frame, exclude=()):
        """The model's raw outputs: probabilities, or values in the target's units."""
        import numpy as np

        inputs = self.features(frame, exclude)
        return np.asarray(self.model.predict(inputs, batch_size=1024, verbose=0))

    def evaluate(self, frame, target=None, threshold=0.5):
        """Held-out metrics on a frame that includes the label column(s)."""
        from kerakit.training import metrics_report

        columns = self.target_columns(frame, target)
        y = self.labels(frame, columns)
        return metrics_report(self.spec, y, self.outputs(frame, exclude=columns), threshold)

    def predict_frame(self, frame, threshold=0.5, target=None):
        """Predictions as a DataFrame: `prediction` (class name or value) plus probabilities."""
        import numpy as np
        import pandas as pd

        columns = [str(c) for c in frame.columns]
        exclude = [c for c in ([self.target] if self.target else []) if c in columns]
        if target:
            exclude += [t.strip() for t in str(target).split(",") if t.strip() in columns]
        if self.spec is not None and self.spec.task == "multilabel" and self.class_names:
            exclude += [str(n) for n in self.class_names if str(n) in columns]
        output = self.outputs(frame, exclude=exclude)
        task = self.spec.task if self.spec is not None else _task_of_output(self.model, output)
        names = self.class_names
        result = pd.DataFrame(index=frame.index)
        if task == "regression":
            if output.shape[1] == 1:
                result["prediction"] = output[:, 0]
            for j in range(output.shape[1] if output.shape[1] > 1 else 0):
                result[f"prediction_{j}"] = output[:, j]
        elif task == "binary":
            labels = np.asarray(names or [0, 1], dtype=object)
            result["prediction"] = labels[(output[:, 0] >= threshold).astype(int)]
            result[f"proba_{labels[1]}"] = output[:, 0]
        elif task == "multilabel":
            labels = names or [f"label_{j}" for j in range(output.shape[1])]
            for j, name in enumerate(labels):
                result[f"{name}"] = (output[:, j] >= threshold).astype(int)
                result[f"proba_{name}"] = output[:, j]
        else:
            labels = np.asarray(names or list(range(output.shape[1])), dtype=object)
            result["prediction"] = labels[output.argmax(axis=1)]
            for j, name in enumerate(labels):
                result[f"proba_{name}"] = output[:, j]
        return result


def _refuse_missing_labels(wanted, columns):
    missing = [w for w in wanted if w not in columns]
    if missing:
        from kerakit.errors import closest

        hint = closest(missing[0], columns)
        did_you_mean = f" Did you mean '{hint}'?" if hint else ""
        raise RunError(
            f"The CSV has no label column '{missing[0]}'.{did_you_mean} Its columns: "
            f"{', '.join(columns)}. Name the label column with --target COLUMN."
        )


def check_label_columns(frame, run_or_model, target=None):
    """Refuses a CSV without the label column(s) `target` or the run's manifest names.

    Reads only the manifest, so a wrong CSV is refused before the model (and
    TensorFlow) loads. A bare `.keras` file names its label only inside the
    model; `RunModel.target_columns` checks that one. Returns the label
    columns checked (an empty list when nothing names them).
    """
    _, manifest = resolve_model_path(run_or_model)
    wanted = [t.strip() for t in str(target).split(",") if t.strip()] if target else []
    recorded = ((manifest or {}).get("data") or {}).get("target")
    wanted = wanted or ([recorded] if recorded else [])
    if wanted:
        _refuse_missing_labels(wanted, [str(c) for c in frame.columns])
    return wanted


def check_feature_columns(frame, run_or_model, target=None):
    """Refuses a CSV that lacks the run's feature columns, reading only the manifest.

    A wrong CSV is refused before the model (and TensorFlow) loads. The
    model takes the columns its run recorded (`data.feature_names`); a CSV
    without them is refused unless it has the same number of other columns
    besides the labels (an array model then reads them by position, as
    `RunModel.features` does). Nothing is checked for a bare `.keras` file.
    """
    _, manifest = resolve_model_path(run_or_model)
    data = (manifest or {}).get("data") or {}
    names = [str(n) for n in data.get("feature_names") or []]
    columns = [str(c) for c in frame.columns]
    missing = [n for n in names if n not in columns]
    if not missing:
        return
    labels = [t.strip() for t in str(target).split(",") if t.strip()] if target else []
    labels += [data["target"]] if data.get("target") else []
    spec = (manifest or {}).get("spec") or {}
    if spec.get("task") == "multilabel":
        labels += [str(n) for n in spec.get("class_names") or []]
    others = [c for c in columns if c not in set(labels)]
    if len(others) == len(names):
        return
    from kerakit.errors import closest

    hint = closest(missing[0], others)
    did_you_mean = f" Did you mean '{hint}'?" if hint else ""
    shown = ", ".join(missing[:8]) + (", ..." if len(missing) > 8 else "")
    raise RunError(
        f"The CSV lacks {len(missing)} of the run's {len(names)} feature column(s): {shown}."
        f"{did_you_mean} Its columns besides the label: {', '.join(others[:12])}"
        f"{', ...' if len(others) > 12 else ''}. Pass a CSV with the columns the model was "
        f"trained on."
    )


def _task_of_output(model, output):
    # Only for a bare file with no spec anywhere (so no SpecOutput layer either).
    activation = getattr(model.layers[-1], "activation", None)
    name = getattr(activation, "__name__", "")
    if name == "softmax":
        return "multiclass"
    if name == "sigmoid":
        return "binary" if output.shape[1] == 1 else "multilabel"
    return "regression"


def read_csv(path):
    """Reads a CSV of raw rows (cells as text, as `kerakit.data` reads them)."""
    from kerakit.data.csvfile import read_frame

    if not Path(path).is_file():
        raise RunError(f"No CSV file at {path}.")
    return read_frame(path)


def check_output(path):
    """Refuses an output path that cannot take a CSV (a folder); "-" is standard output."""
    if str(path) != "-" and Path(path).is_dir():
        raise RunError(
            f"The output {path} is a folder. Pass a CSV file name, such as "
            f"{Path(path) / 'predictions.csv'}, or - for standard output. Received: out='{path}'."
        )


def write_csv(frame, path):
    """Writes a DataFrame to CSV atomically; `path` "-" writes it to standard output."""
    check_output(path)
    if str(path) == "-":
        import sys

        frame.to_csv(sys.stdout, index=False)
        return None
    path = Path(path)
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)
    return path
