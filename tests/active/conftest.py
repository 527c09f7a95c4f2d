"""Shared data for the active-learning tests."""

import pytest


@pytest.fixture(scope="module")
def digit_pool(digits):
    """(x_labeled, y_labeled, x_pool, y_pool, x_test, y_test): 30 labelled digits and a pool of 300."""
    x_train, x_test, y_train, y_test = digits
    return x_train[:30], y_train[:30], x_train[30:330], y_train[30:330], x_test, y_test
