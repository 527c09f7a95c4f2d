"""SciPy sparse X densified in blocks with a memory guard; chunked predictions."""


import numpy as np
import pytest

from kerakit.errors import KerakitError
from kerakit.sklearn import KerasClassifier, KerasRegressor, densify
from kerakit.sklearn import _data as data

# Backend-neutral: CI runs this file on TensorFlow and again on JAX (scripts/dev.py).
pytestmark = pytest.mark.backends


@pytest.mark.once
def test_scipy_sparse_x_is_densified_in_blocks_with_a_memory_guard(small, monkeypatch, quick):
    """SciKeras: clf.fit(scipy.sparse.csr_matrix(X), y) (refused before)."""
    from scipy import sparse

    x, binary, _, _ = small
    x = np.where(np.abs(x) > 1, x, 0).astype(np.float32)
    dense = KerasClassifier(units=(4,), **quick()).fit(x, binary)
    for form in (sparse.csr_matrix, sparse.csc_array, sparse.coo_matrix):
        model = KerasClassifier(units=(4,), **quick()).fit(form(x), binary)
        np.testing.assert_allclose(model.predict_proba(form(x)), dense.predict_proba(x), atol=1e-5)
    monkeypatch.setattr(data, "DENSIFY_ROWS", 7)  # several blocks
    np.testing.assert_array_equal(densify(sparse.csr_matrix(x)), x)
    monkeypatch.setattr(data, "MAX_DENSE_BYTES", 100)
    with pytest.raises(KerakitError, match="MAX_DENSE_BYTES") as info:
        KerasRegressor(**quick()).fit(sparse.csr_matrix(x), x[:, 0])
    assert isinstance(info.value, ValueError) and "TruncatedSVD" in str(info.value)
    assert "densify(X, max_bytes=" in str(info.value)
    # The way out the message names: densify with a higher limit, then fit the dense copy.
    dense_copy = densify(sparse.csr_matrix(x), max_bytes=10**6)
    assert KerasRegressor(**quick()).fit(dense_copy, x[:, 0]).predict(x).shape == (40,)
