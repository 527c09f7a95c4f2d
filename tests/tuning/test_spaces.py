"""SearchSpace: scikit-learn-style spaces read into Keras Tuner hyperparameters (no training)."""

import pytest

from kerakit.errors import ConfigError
from kerakit.tuning import SearchSpace

VALID_GRIDS = [{"units": [5, 8, 10], "dropout": [.4, .6, .8]},
               {"units": [10, 15], "dropout": [.6, .8, .9]}]


def test_union_of_grids_has_fifteen_candidates_in_order():
    space = SearchSpace(VALID_GRIDS)
    assert space.size == 15
    decoded = [space.decode(c, "grid") for c in space.candidates()]
    assert decoded[0] == {"units": 5, "dropout": 0.4}
    assert decoded[-1] == {"units": 15, "dropout": 0.9}
    # (10, .6) and (10, .8) are in both grids: like scikit-learn, both grids run them.
    assert len({tuple(sorted(d.items())) for d in decoded}) == 13


def test_space_entries_map_to_keras_tuner_hyperparameters():
    import scipy.stats

    space = SearchSpace({"units": [(64,), (128, 64)], "depth": (1, 3), "learning_rate": (1e-4, 1e-1, "log"),
                         "dropout": scipy.stats.uniform(0.0, 0.5), "batch_size": 32})
    hp = space.hyperparameters("random")
    kinds = {p.name: type(p).__name__ for p in hp.space}
    assert kinds == {"units": "Choice", "depth": "Int", "learning_rate": "Float", "dropout": "Float",
                     "batch_size": "Fixed"}
    assert hp.space[2].sampling == "log"
    values = space.decode({"units": "(128, 64)", "depth": 2, "learning_rate": 0.01, "dropout": 0.5,
                           "batch_size": 32})
    assert values["units"] == (128, 64) and values["dropout"] == pytest.approx(0.25)
    assert space.size is None


def test_space_mistakes_are_refused_with_the_fix():
    with pytest.raises(ConfigError, match="only tuner='grid'"):
        SearchSpace(VALID_GRIDS).check_for("random")
    with pytest.raises(ConfigError, match=r"\['learning_rate'\] are continuous"):
        SearchSpace({"learning_rate": (1e-4, 1e-1, "log")}).check_for("grid")
    with pytest.raises(ConfigError, match="low < high"):
        SearchSpace({"dropout": (0.5, 0.1)})
    with pytest.raises(ConfigError, match="non-empty dict"):
        SearchSpace([])
