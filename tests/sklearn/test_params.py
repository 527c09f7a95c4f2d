"""The estimators' parameters: `random_state` as the seed, and the checks on routed options."""

import numpy as np
import pytest
from sklearn.base import clone

# scikit-learn's estimator checks call this helper; it has no public name.
from sklearn.utils._testing import set_random_state

from kerakit.errors import ConfigError, KerakitError
from kerakit.sklearn import KerasClassifier, KerasRegressor
from kerakit.sklearn._params import check_routed, resolve_seed

pytestmark = pytest.mark.backends


def test_random_state_is_a_parameter_scikit_learn_can_set():
    for estimator in (KerasClassifier(random_state=3), KerasRegressor(random_state=3)):
        assert estimator.get_params()["random_state"] == 3
        assert clone(estimator).random_state == 3
    estimator = KerasClassifier()
    set_random_state(estimator)  # what scikit-learn's estimator checks do before comparing fits
    assert estimator.random_state == 0


def test_resolve_seed_takes_either_name_and_random_state_instances():
    assert resolve_seed(None, None) is None
    assert resolve_seed(5, None) == 5
    assert resolve_seed(None, np.int64(7)) == 7
    assert resolve_seed(4, 4) == 4  # the same value under both names is one seed
    # A RandomState gives each fit a fresh seed, as scikit-learn's own estimators do.
    generator = np.random.RandomState(0)
    first, second = resolve_seed(None, generator), resolve_seed(None, generator)
    assert first != second
    assert first == resolve_seed(None, np.random.RandomState(0))


@pytest.mark.parametrize(
    "seed, random_state, message",
    [
        (1, 2, "two names for the estimator's seed"),
        (None, -1, "`random_state` must be None, an integer >= 0"),
        ("abc", None, "`seed` must be None, an integer >= 0"),
        (None, 0.5, "Received: random_state=0.5"),
        (True, None, "Received: seed=True"),
    ],
)
def test_resolve_seed_refuses_bad_or_conflicting_seeds(seed, random_state, message):
    with pytest.raises(ConfigError, match=message):
        resolve_seed(seed, random_state)


def test_bad_random_state_fails_fit_before_training():
    x, y = np.zeros((10, 2)), np.arange(10) % 2
    with pytest.raises(KerakitError, match="random_state"):
        KerasClassifier(random_state="zero").fit(x, y)
    with pytest.raises(KerakitError, match="pass one of them"):
        KerasRegressor(seed=0, random_state=1).fit(x, y.astype(float))


def test_check_routed_names_the_closest_valid_parameter():
    with pytest.raises(KerakitError, match="Did you mean 'optimizer__momentum'") as info:
        check_routed("optimizer", {"momentun": 0.9}, {"momentum", "nesterov"}, "SGD")
    message = str(info.value)
    assert "Unknown parameter 'optimizer__momentun'" in message
    assert "'optimizer__momentum', 'optimizer__nesterov'" in message  # every valid one, listed
    assert isinstance(info.value, ValueError)
    with pytest.raises(KerakitError) as info:
        check_routed("loss", {"bogus": 1}, {"from_logits", "axis"}, "BinaryCrossentropy")
    assert "Did you mean" not in str(info.value)  # nothing close: no guess
    check_routed("loss", {"axis": 1}, {"from_logits", "axis"}, "BinaryCrossentropy")  # valid: passes
