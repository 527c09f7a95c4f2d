"""scikit-learn's own estimator test-suite, run on KerasClassifier and KerasRegressor.

Every check scikit-learn 1.9 yields for a classifier and a regressor runs
(about 110 fits per estimator): on small networks in the fast loop, and on
the estimators with every default parameter as a slow test. Neither sets a
seed: the checks that compare two fits set `random_state=0` themselves, as
they do for scikit-learn's own estimators. The only expected failures are
those listed, with a reason each, in `kerakit.sklearn.EXPECTED_FAILED_CHECKS`;
`xfail_strict` turns an expected failure that starts passing into a test
failure, so the list cannot go stale.
"""

import inspect

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from kerakit.sklearn import (
    EXPECTED_FAILED_CHECKS,
    KerasClassifier,
    KerasRegressor,
    expected_failed_checks,
)

# Small networks. With no validation split each fit traces one training
# step, keeping the suite fast. Training quality is still checked:
# scikit-learn asks for > 0.83 accuracy and R² > 0.5 on its own data sets.
_SMALL = dict(units=(16,), learning_rate=0.05, epochs=15, validation_split=0.0, patience=None)
ESTIMATORS = [KerasClassifier(**_SMALL), KerasRegressor(**_SMALL)]


# An expected failure that passes fails the test (scikit-learn >= 1.8 takes the flag).
_STRICT = ({"xfail_strict": True}
           if "xfail_strict" in inspect.signature(parametrize_with_checks).parameters else {})


def _name(check):
    return getattr(check, "func", check).__name__


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=expected_failed_checks, **_STRICT)
def test_sklearn_estimator_checks(estimator, check, monkeypatch):
    if _name(check) == "check_array_api_input":
        # scikit-learn skips its array-API check unless SCIPY_ARRAY_API is set;
        # on NumPy inputs it needs nothing else, so it runs here too.
        monkeypatch.setenv("SCIPY_ARRAY_API", "1")
    check(estimator)


@pytest.mark.slow  # about 220 fits of the default (128, 64) network, up to 100 epochs each
@parametrize_with_checks([KerasClassifier(), KerasRegressor()],
                         expected_failed_checks=expected_failed_checks, **_STRICT)
def test_default_estimators_pass_sklearn_estimator_checks(estimator, check, monkeypatch):
    if _name(check) == "check_array_api_input":
        monkeypatch.setenv("SCIPY_ARRAY_API", "1")
    check(estimator)


def test_every_expected_failure_names_a_real_check_and_a_reason():
    from sklearn.utils.estimator_checks import estimator_checks_generator

    for estimator in ESTIMATORS:
        names = {_name(check) for _, check in estimator_checks_generator(estimator, mark="skip")}
        for name, reason in expected_failed_checks(estimator).items():
            assert name in names
            assert len(reason.split()) >= 5
    assert set(EXPECTED_FAILED_CHECKS) == {"check_sample_weight_equivalence_on_dense_data",
                                           "check_sample_weight_equivalence_on_sparse_data"}


def test_tags_describe_the_estimators():
    # Deterministic given a random_state, scikit-learn's meaning of the tag: its
    # checks set random_state=0, then compare fits (idempotence, pipelines, ...).
    assert KerasClassifier().__sklearn_tags__().non_deterministic is False
    assert KerasRegressor(seed=0).__sklearn_tags__().non_deterministic is False
    regressor_tags = KerasRegressor().__sklearn_tags__()
    assert regressor_tags.target_tags.multi_output is True
    assert regressor_tags.input_tags.allow_nan is False
    assert KerasClassifier().__sklearn_tags__().estimator_type == "classifier"
    # Truthful about 0/1 label matrices, SciPy sparse X and warm_start.
    classifier_tags = KerasClassifier().__sklearn_tags__()
    assert classifier_tags.classifier_tags.multi_label is True
    assert classifier_tags.target_tags.multi_output is False  # one label per row, or multilabel
    assert classifier_tags.input_tags.sparse is True and regressor_tags.input_tags.sparse is True
    for estimator in ESTIMATORS:
        # scikit-learn's checks set warm_start=False where a second fit must start afresh.
        assert estimator.get_params()["warm_start"] is False
        assert hasattr(estimator, "partial_fit")


def test_expected_failed_checks_refuses_other_estimators():
    from sklearn.linear_model import LinearRegression

    with pytest.raises(ValueError, match="KerasClassifier and KerasRegressor"):
        expected_failed_checks(LinearRegression())
