"""scikit-learn's estimator checks that a network trained by minibatch gradient descent cannot pass."""

from types import MappingProxyType

from kerakit.errors import ConfigError
from kerakit.sklearn._base import BaseKerasEstimator

_WEIGHTS_VS_REPEATS = (
    "minibatch training on rows repeated k times takes other gradient steps "
    "(more batches per epoch, another shuffle, a loss averaged over more rows) "
    "than on the same rows weighted k, so the two networks differ"
)

# Each check with the reason (see `expected_failed_checks`).
EXPECTED_FAILED_CHECKS = MappingProxyType(
    {
        "check_sample_weight_equivalence_on_dense_data": _WEIGHTS_VS_REPEATS,
        # Sparse X is densified, then trained like dense X: the same reason.
        "check_sample_weight_equivalence_on_sparse_data": _WEIGHTS_VS_REPEATS,
    }
)


def expected_failed_checks(estimator):
    """Returns {check name: reason} for the scikit-learn checks `estimator` cannot pass.

    Pass it to scikit-learn's own runners, which then mark those checks as
    expected failures instead of skipping anything else.

    Example:

    ```python
    from sklearn.utils.estimator_checks import parametrize_with_checks

    @parametrize_with_checks([KerasClassifier(), KerasRegressor()],
                             expected_failed_checks=expected_failed_checks)
    def test_sklearn_compatible(estimator, check):
        check(estimator)
    ```
    """
    if not isinstance(estimator, BaseKerasEstimator):
        raise ConfigError(
            f"expected_failed_checks describes KerasClassifier and KerasRegressor. "
            f"Received: {type(estimator).__name__}"
        )
    return dict(EXPECTED_FAILED_CHECKS)
