"""Folds: `make_folds` (stratified for classes, iterative stratification for multilabel,
plain k-fold for regression) and `check_splits` for folds given by hand."""

import numpy as np

from kerakit.checks import check_count
from kerakit.errors import ConfigError, DataError, DataTypeError
from kerakit.spec import ProblemSpec, class_indices, validate_labels  # noqa: F401  (ProblemSpec: doctest)

# Folds -------------------------------------------------------------------


def _check_folds(folds, rows):
    check_count("folds", folds, minimum=2)
    if folds > rows:
        raise DataError(f"{folds} folds need at least {folds} rows; there are {rows}. Use fewer folds.")


def iterative_stratification(y, folds, seed=0):
    """Splits multilabel rows into folds that keep each label's share (Sechidis et al., 2011).

    Rows are placed label by label, rarest label first, each into the fold
    that still wants most of that label. Returns `[(train_idx, val_idx), ...]`.

    Example:

    >>> y = np.random.default_rng(0).integers(0, 2, size=(60, 4))
    >>> [len(v) for _, v in iterative_stratification(y, 3)]
    [20, 20, 20]
    """
    y = np.asarray(y).astype(bool)
    rows = len(y)
    _check_folds(folds, rows)
    rng = np.random.default_rng(seed)
    wanted_rows = np.full(folds, rows / folds)
    wanted_labels = np.tile(y.sum(axis=0) / folds, (folds, 1))
    fold_of = np.full(rows, -1)
    remaining = np.ones(rows, dtype=bool)

    def place(row, label=None):
        wants = wanted_rows if label is None else wanted_labels[:, label]
        candidates = np.flatnonzero(wants == wants.max())
        if label is not None and len(candidates) > 1:  # ties: the fold wanting more rows
            candidates = candidates[wanted_rows[candidates] == wanted_rows[candidates].max()]
        fold = rng.choice(candidates)
        fold_of[row] = fold
        remaining[row] = False
        wanted_rows[fold] -= 1
        wanted_labels[fold] -= y[row]

    while remaining.any():
        counts = y[remaining].sum(axis=0)
        if counts.max() == 0:  # rows with no label at all
            for row in rng.permutation(np.flatnonzero(remaining)):
                place(row)
            break
        label = int(np.argmin(np.where(counts > 0, counts, np.inf)))
        for row in rng.permutation(np.flatnonzero(remaining & y[:, label])):
            place(row, label)
    return [(np.flatnonzero(fold_of != f), np.flatnonzero(fold_of == f)) for f in range(folds)]


def make_folds(spec, y, folds=5, *, seed=0):
    """Returns `[(train_idx, val_idx), ...]` for `folds`-fold cross-validation of `spec`.

    Binary and multiclass labels get `sklearn.model_selection.StratifiedKFold`
    (one-hot and soft labels are stratified on their most likely class),
    multilabel targets get `iterative_stratification`, regression targets get
    a shuffled `KFold`.

    Args:
        spec: the `ProblemSpec`.
        y: labels, as `validate_labels` accepts them.
        folds: number of folds (at least 2). Defaults to 5.
        seed: seeds the shuffle. Defaults to 0.

    Example:

    >>> spec = ProblemSpec(task="binary")
    >>> len(make_folds(spec, [0, 1] * 10, folds=4))
    4
    """
    y = validate_labels(spec, y)
    _check_folds(folds, len(y))
    from sklearn.model_selection import KFold, StratifiedKFold

    if spec.task == "multilabel":
        return iterative_stratification(y, folds, seed)
    if spec.task == "regression":
        splitter = KFold(n_splits=folds, shuffle=True, random_state=seed)
        return list(splitter.split(np.zeros(len(y))))
    classes = np.asarray(class_indices(spec, y)).astype(np.int64)
    values, counts = np.unique(classes, return_counts=True)
    if counts.min() < folds:
        few = {int(v): int(c) for v, c in zip(values, counts, strict=True) if c < folds}
        raise DataError(
            f"Stratified {folds}-fold cross-validation needs at least {folds} rows of every "
            f"class; class(es) {few} (class: rows) have fewer. Use folds={int(counts.min())} "
            f"or fewer, or collect more rows of those classes."
        )
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(len(y)), classes))


def check_splits(folds, rows):
    """Refuses `(train_idx, val_idx)` pairs that cannot cross-validate `rows` rows.

    Each pair needs training and validation rows, every index must lie in
    `range(rows)`, a fold may not validate on rows it trains on, and the
    validation parts together must cover every row once, so each row gets
    one out-of-fold prediction. Returns the pairs as integer arrays.
    """
    if len(folds) < 2:
        raise ConfigError(
            f"`folds` needs at least 2 (train_idx, val_idx) pairs; received {len(folds)}. "
            f"Pass folds=5, or more pairs."
        )
    splits, seen = [], np.zeros(rows, dtype=np.int64)
    for i, pair in enumerate(folds):
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise ConfigError(
                f"`folds[{i}]` must be a pair (train_idx, val_idx), as make_folds returns. "
                f"Received: {pair!r}"
            )
        parts = []
        for name, part in zip(("train", "validation"), pair, strict=True):
            part = np.asarray(part)
            if part.size == 0:
                raise DataError(f"`folds[{i}]` has no {name} rows. Every fold needs both.")
            if part.ndim != 1 or part.dtype.kind not in "iu":
                raise DataTypeError(
                    f"`folds[{i}]` {name} indices must be a 1-D list of row numbers. "
                    f"Received dtype {part.dtype}, shape {part.shape}."
                )
            outside = part[(part < 0) | (part >= rows)]
            if outside.size:
                raise DataError(
                    f"`folds[{i}]` {name} indices {outside[:5].tolist()} lie outside the "
                    f"{rows} rows (valid: 0 to {rows - 1})."
                )
            parts.append(part.astype(np.int64))
        if np.intersect1d(parts[0], parts[1]).size:
            raise DataError(
                f"`folds[{i}]` validates on rows it also trains on, e.g. "
                f"{np.intersect1d(parts[0], parts[1])[:5].tolist()}. Keep them apart."
            )
        np.add.at(seen, parts[1], 1)
        splits.append((parts[0], parts[1]))
    if (seen != 1).any():
        missing, twice = np.flatnonzero(seen == 0), np.flatnonzero(seen > 1)
        raise DataError(
            f"The validation parts of `folds` must cover every row exactly once, so each row "
            f"gets one out-of-fold prediction; {missing.size} row(s) are in none (e.g. "
            f"{missing[:5].tolist()}) and {twice.size} in several (e.g. {twice[:5].tolist()}). "
            f"Use make_folds(spec, y, folds=5)."
        )
    return splits
