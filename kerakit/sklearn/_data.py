"""Features in and predictions out: SciPy sparse X densified in blocks, chunked forward passes."""

import numpy as np
from scipy import sparse

from kerakit.errors import DataError

# Densifying a sparse X makes float32 rows; more bytes than this are refused
# before anything is allocated (reduce the features, or densify X yourself
# with `densify(X, max_bytes=...)`).
MAX_DENSE_BYTES = 2 * 1024**3
# Rows densified at a time, so the float64 / int copies SciPy makes stay small.
DENSIFY_ROWS = 4096
# The sparse formats validate_data converts to (any other SciPy format becomes CSR).
SPARSE_FORMATS = ("csr", "csc", "coo")

# Rows per direct model call in predict. Calling the model eagerly skips
# tracing a predict function for every fitted model, which is most of the
# cost on the small inputs that cross-validation and scoring pass. Every call
# gets exactly this many rows (the last chunk is padded): float32 matrix
# products round differently for different batch sizes, and a fixed shape
# makes each row's prediction independent of what it is predicted with.
PREDICT_BATCH = 256


def densify(X, max_bytes=None):
    """Returns a dense float32 copy of a SciPy sparse matrix, built a block of rows at a time.

    Dense arrays pass through. The dense size is checked first, so a matrix
    too large for memory fails at once with the numbers instead of after
    minutes of swapping.

    Args:
        X: a SciPy sparse matrix or array, or a dense array.
        max_bytes: the largest dense result allowed; None (default) uses
            `MAX_DENSE_BYTES` (2 GiB).

    Example:

    >>> from scipy import sparse
    >>> densify(sparse.eye(3, format="csr"))
    array([[1., 0., 0.],
           [0., 1., 0.],
           [0., 0., 1.]], dtype=float32)
    """
    if not sparse.issparse(X):
        return X
    limit = MAX_DENSE_BYTES if max_bytes is None else max_bytes
    rows, columns = X.shape
    needed = rows * columns * 4
    if needed > limit:
        raise DataError(
            f"The sparse X of shape {X.shape} would take {needed / 2**30:.2f} GiB as dense "
            f"float32, over the limit of {limit / 2**30:.2f} GiB (kerakit.sklearn.MAX_DENSE_BYTES). "
            f"Reduce the features first (sklearn.decomposition.TruncatedSVD, "
            f"sklearn.feature_selection.SelectKBest), or, if the memory is there, densify X "
            f"yourself with a higher limit: kerakit.sklearn.densify(X, max_bytes=...)."
        )
    X = X.tocsr()
    out = np.empty((rows, columns), dtype=np.float32)
    for start in range(0, rows, DENSIFY_ROWS):
        out[start:start + DENSIFY_ROWS] = X[start:start + DENSIFY_ROWS].toarray()
    return out


def forward(model, X, batch_size=PREDICT_BATCH):
    """The model's outputs for X (dense or sparse), as float64, `batch_size` rows per call.

    Sparse X is densified a block at a time; each block goes through
    `kerakit.training.predict_in_chunks`, which gives every call exactly
    `batch_size` rows (see PREDICT_BATCH).
    """
    from kerakit.training import predict_in_chunks

    if not sparse.issparse(X):
        return predict_in_chunks(model, np.asarray(X, np.float32), batch_size).astype(np.float64)
    X = X.tocsr()
    blocks = [predict_in_chunks(model, densify(X[start:start + DENSIFY_ROWS]), batch_size)
              for start in range(0, X.shape[0], DENSIFY_ROWS)]
    return np.concatenate(blocks).astype(np.float64)
