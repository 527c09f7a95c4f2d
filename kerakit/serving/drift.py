"""Input drift: served features against the training features, as a population stability index.

A reference holds, per feature, the training distribution: quantile bin
edges and the share of training rows in each bin for numbers, category
shares (or just the vocabulary) for categories. The service counts served
rows into the same bins as they arrive (cheap: one `searchsorted` per
feature and request) and reports, per feature, the population stability
index (PSI) between the two, with a plain verdict.

Where the reference comes from, in order:

1. `Service(..., drift_reference=...)`: training rows (an array or a
   column dict / DataFrame) or a JSON file written by `save_reference`;
2. a `drift_reference.json` beside the model (a run directory, a `.keras`
   file's folder, or a SavedModel version folder's `assets.extra/`), written
   by `save_reference(x_train, path)`;
3. for a raw-column model (`kerakit.data`), its own preprocessing layers:
   each numeric column's piecewise-linear encoding edges (the training
   deciles), else its `Normalization` mean and variance (normal quantile
   bins), and each categorical column's vocabulary (the unseen-category
   rate).
"""

import json
from pathlib import Path

import numpy as np

from kerakit.checks import check_count
from kerakit.errors import ConfigError, DataTypeError

REFERENCE_FILE = "drift_reference.json"
# PSI thresholds (the usual reading): below 0.1 stable, 0.1-0.25 moderate, above: drifted.
MODERATE, DRIFTED = 0.1, 0.25
# A verdict needs this many served rows of a feature; fewer say "not enough data".
MIN_ROWS = 100
MAX_FEATURES = 512
# Distinct served values kept per category column beyond the reference's own; the rest
# are counted together as unseen, so memory stays bounded however many distinct strings arrive.
MAX_CATEGORIES = 1000
# The bucket those overflowing values are counted in (never a real category: JSON keys are strings).
OVERFLOW = None
# How far the shares of a reference may sum from 1.
_SHARE_TOLERANCE = 0.01
_EPSILON = 1e-4


def _number(values, bins):
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return None
    edges = np.unique(np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1]))
    counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=edges.size + 1)
    return {"kind": "number", "edges": edges.tolist(), "expected": (counts / counts.sum()).tolist(),
            "mean": float(values.mean()), "std": float(values.std())}


def _category(values):
    values = [str(v) for v in np.asarray(values, dtype=object).ravel()]
    kinds, counts = np.unique(values, return_counts=True)
    return {"kind": "category", "expected": {k: float(c / len(values)) for k, c in zip(kinds, counts, strict=True)}}


def reference_statistics(x, *, input_name="features", bins=10):
    """Training statistics for drift monitoring: `{"features": {name: stats}}`.

    Args:
        x: training features: a 2-D array (features named `input_name[j]`),
            or a dict / DataFrame of columns (named by column; text columns
            are categories).
        input_name: the model input a 2-D array feeds. Defaults to "features".
        bins: quantile bins per numeric feature. Defaults to 10.

    Example:

    ```python
    reference = reference_statistics(x_train)
    kerakit.serving.save_reference(x_train, "runs/digits")  # beside model.keras
    ```
    """
    features = {}
    if hasattr(x, "items") or hasattr(x, "columns"):
        columns = x.items() if hasattr(x, "items") and not hasattr(x, "columns") else \
            ((c, x[c]) for c in x.columns)
        for name, values in columns:
            values = np.asarray(values)
            stats = _number(values, bins) if values.dtype.kind in "biuf" else _category(values)
            if stats is not None:
                features[str(name)] = stats
    else:
        array = np.asarray(x)
        if array.ndim == 1:
            array = array[:, None]
        if array.ndim != 2 or array.dtype.kind not in "biuf":
            raise DataTypeError(
                f"Drift statistics need a 2-D numeric array (rows, features) or a dict/DataFrame "
                f"of columns. Received an array of shape {array.shape} and dtype {array.dtype}."
            )
        for j in range(min(array.shape[1], MAX_FEATURES)):
            stats = _number(array[:, j], bins)
            if stats is not None:
                features[f"{input_name}[{j}]"] = stats
    return {"features": features}


def reference_path(model_path):
    """Where `save_reference` writes, and the service looks, for a model path."""
    path = Path(model_path)
    if path.is_file():
        return path.parent / REFERENCE_FILE
    if (path / "saved_model.pb").exists():
        return path / "assets.extra" / REFERENCE_FILE
    return path / REFERENCE_FILE


def save_reference(x, model_path, **options):
    """Writes `reference_statistics(x)` where the service finds it for `model_path`; returns the path."""
    target = reference_path(model_path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(reference_statistics(x, **options)))
    return target


def table_reference(model, table):
    """The reference a raw-column model carries in its preprocessing layers (see module doc)."""
    from scipy.stats import norm

    layers = {layer.name: layer for layer in model.layers}
    features, bins = {}, 10
    for column in table.get("columns", []):
        name, feed = column["name"], column.get("input", column["name"])
        for key in (feed, name):
            ple, scale = layers.get(f"{key}_ple"), layers.get(f"{key}_scale")
            lookup = layers.get(f"{key}_lookup")
            mean = None if scale is None else getattr(scale, "input_mean", getattr(scale, "mean", None))
            if ple is not None and len(getattr(ple, "edges", [])) > 2:
                # Piecewise-linear encoding edges are the training quantiles (min and max at the ends).
                edges = [float(e) for e in ple.edges]
                inner = edges[1:-1]
                features[feed] = {"kind": "number", "edges": inner,
                                  "expected": [1 / (len(inner) + 1)] * (len(inner) + 1),
                                  "center": getattr(scale, "center", None)}
                break
            if mean is not None and not callable(mean):
                variance = getattr(scale, "input_variance", getattr(scale, "variance", 1.0))
                mean = float(np.ravel(np.asarray(mean))[0])
                std = float(np.sqrt(np.ravel(np.asarray(variance))[0]))
                edges = (mean + std * norm.ppf(np.linspace(0, 1, bins + 1)[1:-1])).tolist()
                features[feed] = {"kind": "number", "edges": edges, "expected": [1 / bins] * bins,
                                  "mean": mean, "std": std}
                break
            if lookup is not None:
                # Keras's lookup layers list their vocabulary with get_vocabulary() (it
                # includes the OOV token, which served values never equal); kerakit's
                # backend-neutral lookup holds it as a plain list.
                listed = lookup.get_vocabulary() if hasattr(lookup, "get_vocabulary") else lookup.vocabulary
                vocabulary = [str(v) for v in listed]
                features[feed] = {"kind": "category", "vocabulary": vocabulary}
                break
    return {"features": features} if features else None


def load_reference(reference):
    """A validated reference from a dict, a JSON file or training data; None stays None.

    Raises:
        ConfigError: the file is missing or not JSON, or the reference is not
            of the shape `reference_statistics` returns (see `check_reference`).
    """
    if reference is None:
        return None
    if isinstance(reference, (str, Path)):
        path = Path(reference)
        if not path.is_file():
            raise ConfigError(
                f"The drift reference file {str(path)!r} does not exist{' (it is a folder)' if path.is_dir() else ''}. "
                f"Pass the JSON file written by kerakit.serving.save_reference(x_train, MODEL_PATH), "
                f"or leave the drift reference out. Received: drift_reference={str(reference)!r}"
            )
        try:
            loaded = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as error:
            raise ConfigError(
                f"The drift reference {str(path)!r} is not a readable JSON file ({error}). Write it "
                f"with kerakit.serving.save_reference(x_train, MODEL_PATH). "
                f"Received: drift_reference={str(reference)!r}"
            ) from None
        return check_reference(loaded, repr(str(path)))
    if isinstance(reference, dict) and "features" in reference:
        return check_reference(reference, "given as a dict")
    return reference_statistics(reference)


def _finite_numbers(values):
    return isinstance(values, list) and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) for v in values)


def _shares_problem(shares):
    """Why a list of shares is unusable, or None."""
    if any(v < 0 for v in shares):
        return "holds negative shares"
    if abs(sum(shares) - 1.0) > _SHARE_TOLERANCE:
        return f"sums to {sum(shares):.4g}, not 1"
    return None


def _feature_problem(stats):
    """Why one feature's statistics are unusable, or None."""
    if not isinstance(stats, dict):
        return f"is a {type(stats).__name__}, not an object"
    kind = stats.get("kind")
    if kind == "number":
        edges, expected = stats.get("edges"), stats.get("expected")
        if not _finite_numbers(edges):
            return "has no list of finite numbers under 'edges'"
        if any(b < a for a, b in zip(edges[:-1], edges[1:], strict=True)):
            return "has 'edges' out of order (they must be sorted, ascending)"
        if not _finite_numbers(expected):
            return "has no list of finite numbers under 'expected'"
        if len(expected) != len(edges) + 1:
            return (f"has {len(edges)} edges and {len(expected)} shares; n edges make n + 1 bins, "
                    f"so 'expected' needs {len(edges) + 1} shares")
        problem = _shares_problem(expected)
        return None if problem is None else f"has 'expected' shares that {problem}"
    if kind == "category":
        expected, vocabulary = stats.get("expected"), stats.get("vocabulary")
        if expected is None and vocabulary is None:
            return "has neither 'expected' (category shares) nor 'vocabulary'"
        if vocabulary is not None and not isinstance(vocabulary, list):
            return "has a 'vocabulary' that is not a list"
        if expected is not None:
            if not isinstance(expected, dict) or not _finite_numbers(list(expected.values())):
                return "has 'expected' that is not an object of category: share"
            problem = _shares_problem(list(expected.values()))
            return None if problem is None else f"has 'expected' shares that {problem}"
        return None
    return f"has kind {kind!r}; expected 'number' or 'category'"


def check_reference(reference, source="given"):
    """Returns `reference` if the service can compare with it; else raises `ConfigError` naming why.

    A reference is `{"features": {name: stats}}`, where `stats` is
    `{"kind": "number", "edges": [ascending numbers], "expected": [len(edges) + 1
    non-negative shares summing to 1]}` or `{"kind": "category", "expected":
    {value: share}}` (or `"vocabulary": [values]`), as `reference_statistics` writes.

    Args:
        reference: the loaded reference.
        source: where it came from, for the message (a quoted path).

    Example:

    >>> check_reference({"features": {"x": {"kind": "number", "edges": [0.0], "expected": [0.5, 0.5]}}})["features"]["x"]["kind"]
    'number'
    """
    how = "Write it with kerakit.serving.save_reference(x_train, MODEL_PATH)."
    if not isinstance(reference, dict) or not isinstance(reference.get("features"), dict):
        shape = type(reference).__name__ if not isinstance(reference, dict) else \
            f"an object with keys {sorted(reference)[:10]}"
        raise ConfigError(
            f"The drift reference {source} is not of the expected shape: it must be an object "
            f"{{\"features\": {{name: statistics}}}}. {how} Received: {shape}"
        )
    for name, stats in reference["features"].items():
        problem = _feature_problem(stats)
        if problem is not None:
            raise ConfigError(
                f"The drift reference {source} cannot be used: feature {name!r} {problem}. "
                f"{how} Received: {name}={json.dumps(stats, default=str)[:300]}"
            )
    return reference


def psi(expected, actual):
    """Population stability index of two share vectors (zeros floored at 1e-4)."""
    expected = np.maximum(np.asarray(expected, dtype=np.float64), _EPSILON)
    actual = np.maximum(np.asarray(actual, dtype=np.float64), _EPSILON)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def verdict(score):
    if score >= DRIFTED:
        return "drift"
    return "moderate drift" if score >= MODERATE else "no drift"


class DriftMonitor:
    """Running counts of served features in the reference's bins, and their PSI.

    Memory is bounded: a category column keeps a count for each value of its
    reference and for at most `max_categories` other distinct served values;
    further unseen values are counted together, as unseen (the report's
    `overflow_rows` says how many rows went there).

    Args:
        reference: `{"features": {name: stats}}` (see `reference_statistics`).
        min_rows: served rows a feature needs before it gets a verdict.
            Defaults to 100.
        max_categories: distinct unseen values kept per category column.
            Defaults to 1000.
    """

    def __init__(self, reference, min_rows=MIN_ROWS, max_categories=MAX_CATEGORIES):
        check_count("max_categories", max_categories, minimum=0)
        self.reference = check_reference(reference)["features"]
        self.min_rows = min_rows
        self.max_categories = max_categories
        self._known = {name: set(stats.get("vocabulary") or ()) | set(stats.get("expected") or ())
                       for name, stats in self.reference.items() if stats["kind"] == "category"}
        self._unseen_kept = dict.fromkeys(self._known, 0)  # distinct unseen values counted by name
        self.counts = {}
        for name, stats in self.reference.items():
            if stats["kind"] == "number":
                self.counts[name] = np.zeros(len(stats["edges"]) + 1, dtype=np.int64)
            else:
                self.counts[name] = {}
        self.rows = 0

    def _columns(self, feeds):
        for input_name, array in feeds.items():
            if input_name in self.counts:
                yield input_name, np.asarray(array).reshape(len(array), -1)[:, 0]
                continue
            array = np.asarray(array)
            if array.ndim == 1:
                array = array[:, None]
            flat = array.reshape(len(array), -1)
            for j in range(min(flat.shape[1], MAX_FEATURES)):
                name = f"{input_name}[{j}]"
                if name in self.counts:
                    yield name, flat[:, j]

    def observe(self, feeds):
        """Counts one request's rows (`{input name: batched array}`)."""
        rows = 0
        for name, values in self._columns(feeds):
            stats = self.reference[name]
            rows = max(rows, len(values))
            if stats["kind"] == "number":
                values = np.asarray(values, dtype=np.float64)
                values = values[np.isfinite(values)]
                self.counts[name] += np.bincount(np.searchsorted(stats["edges"], values, side="right"),
                                                 minlength=len(stats["edges"]) + 1)
            else:
                seen, known = self.counts[name], self._known[name]
                for value in values:
                    key = value.decode(errors="replace") if isinstance(value, bytes) else str(value)
                    if key not in seen and key not in known:
                        if self._unseen_kept[name] >= self.max_categories:
                            key = OVERFLOW  # one bucket for the unseen values past the cap
                        else:
                            self._unseen_kept[name] += 1
                    seen[key] = seen.get(key, 0) + 1
        self.rows += rows

    def _feature(self, name):
        stats, counts = self.reference[name], self.counts[name]
        if stats["kind"] == "number":
            total = int(counts.sum())
            out = {"kind": "number", "rows": total, "training_mean": stats.get("mean")}
            if total:
                out["psi"] = psi(stats["expected"], counts / total)
            return out
        total = sum(counts.values())
        out = {"kind": "category", "rows": total}
        known = self._known[name]
        overflow = counts.get(OVERFLOW, 0)
        if overflow:
            out["overflow_rows"] = overflow
            out["note"] = (f"More than {self.max_categories} distinct unseen values were served; "
                           f"{overflow} row(s) with further new values are counted together as unseen.")
        if total:
            out["unseen_rate"] = sum(c for k, c in counts.items() if k not in known) / total
            if "expected" in stats:
                # The overflow bucket sorts first under a key no category string can take.
                keys = sorted(set(stats["expected"]) | set(counts), key=lambda k: (k is not None, k or ""))
                out["psi"] = psi([stats["expected"].get(k, 0.0) for k in keys],
                                 [counts.get(k, 0) / total for k in keys])
        return out

    def report(self):
        """`{"rows", "verdict", "features": {name: {psi, verdict, ...}}}`: the drift so far."""
        features = {}
        for name in self.reference:
            item = self._feature(name)
            if item["rows"] < self.min_rows:
                item["verdict"] = "not enough data"
            elif "psi" in item:
                item["verdict"] = verdict(item["psi"])
            else:  # a vocabulary only: unseen categories are the signal
                rate = item["unseen_rate"]
                item["verdict"] = "drift" if rate > 0.05 else "moderate drift" if rate > 0.01 else "no drift"
            features[name] = item
        verdicts = [f["verdict"] for f in features.values()]
        drifted = sorted(n for n, f in features.items() if f["verdict"] == "drift")
        if drifted:
            overall = "drift"
        elif "moderate drift" in verdicts:
            overall = "moderate drift"
        elif verdicts and all(v == "not enough data" for v in verdicts):
            overall = "not enough data"
        else:
            overall = "no drift"
        return {"rows": self.rows, "verdict": overall, "drifted_features": drifted,
                "thresholds": {"moderate": MODERATE, "drift": DRIFTED, "min_rows": self.min_rows},
                "features": features}
