"""`ActiveLearner`: settings checked up front, query, teach, predict, score."""


import numpy as np
import pytest

import kerakit as kk
from kerakit.errors import ConfigError, DataError

# Backend-neutral: CI runs this file on TensorFlow and again on JAX (scripts/dev.py).
pytestmark = pytest.mark.backends

# The learner ------------------------------------------------------------------------


def test_learner_refuses_bad_settings_before_training(digit_pool):
    x0, y0, pool, _, _, _ = digit_pool
    multiclass = kk.ProblemSpec(task="multiclass", num_classes=10)
    with pytest.raises(ConfigError, match="'std' applies to regression"):
        kk.ActiveLearner(multiclass, "std", x_labeled=x0, y_labeled=y0)
    with pytest.raises(ConfigError, match="no option.*'pases'.*passes"):
        kk.ActiveLearner(multiclass, "bald", x_labeled=x0, y_labeled=y0, strategy_options={"pases": 5})
    with pytest.raises(ConfigError, match="'bald' applies to binary, multiclass"):
        kk.ActiveLearner(kk.ProblemSpec(task="regression"), "diverse", x_labeled=x0,
                         y_labeled=x0[:, 0], strategy_options={"base": "bald"})
    with pytest.raises(ConfigError, match="`callbacks` must be a list of keras.callbacks.Callback"):
        kk.ActiveLearner(multiclass, x_labeled=x0, y_labeled=y0, callbacks="stop")
    with pytest.raises(DataError, match="30 rows but `y_labeled` has 29"):
        kk.ActiveLearner(multiclass, x_labeled=x0, y_labeled=y0[:29])
    with pytest.raises(kk.KerakitError, match=r"Labels must be in \[0, 3\)"):
        kk.ActiveLearner(kk.ProblemSpec(task="multiclass", num_classes=3), x_labeled=x0, y_labeled=y0)
    learner = kk.ActiveLearner(multiclass, x_labeled=x0, y_labeled=y0)
    with pytest.raises(ConfigError, match="n=400 rows from a pool of 300"):
        learner.query(pool, 400)
    with pytest.raises(ConfigError, match="`n` must be >= 1"):
        learner.query(pool, 0)
    with pytest.raises(DataError, match="expects 64 feature"):
        learner.teach(pool[:2, :10], [0, 1])
    assert learner.members_ is None  # nothing was trained


def test_learner_queries_teaches_warm_and_from_scratch(digit_pool):
    x0, y0, pool, y_pool, x_test, y_test = digit_pool
    spec = kk.ProblemSpec(task="multiclass", num_classes=10)
    learner = kk.ActiveLearner(spec, "margin", x_labeled=x0, y_labeled=y0, units=(32,),
                               epochs=20, teach_epochs=3, seed=0)
    indices, scores = learner.query(pool, n=10)
    assert len(set(indices.tolist())) == 10 and indices.max() < len(pool)
    assert np.all(np.diff(scores) <= 0)  # most informative first
    model = learner.model_
    kernel = model.get_layer("output").get_weights()[0].copy()
    learner.teach(pool[indices], y_pool[indices])
    assert learner.n_labeled == 40
    assert learner.model_ is model  # warm start: same model, trained further
    assert not np.allclose(model.get_layer("output").get_weights()[0], kernel)
    proba = learner.predict(x_test)
    assert proba.shape == (len(x_test), 10)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-4)
    assert learner.score(x_test, y_test) > 0.3  # 40 labels, 10 classes: far above chance
    with pytest.raises(DataError, match=f"`x` has {len(x_test)} rows but `y` has {len(x_test) - 1}"):
        learner.score(x_test, y_test[:-1])
    learner.teach(pool[indices[:1]], y_pool[indices[:1]], from_scratch=True)
    assert learner.model_ is not model and learner.n_labeled == 41


def test_ensemble_learner_for_regression_queries_by_predictive_std():
    import keras

    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (60, 1)).astype("float32")
    y = np.sin(3 * x[:, 0])
    spec = kk.ProblemSpec(task="regression")
    learner = kk.ActiveLearner(spec, "std", x_labeled=x[:8], y_labeled=y[:8], ensemble_size=2,
                               units=(16,), dropout=0.0, epochs=3, teach_epochs=1,
                               # one optimizer object: each member needs its own copy
                               optimizer=keras.optimizers.Adam(learning_rate=0.01))
    assert isinstance(learner.model_, list) and len(learner.model_) == 2
    indices, scores = learner.query(x[8:], n=3)
    mean, std = learner.predict(x[8:], return_std=True)
    np.testing.assert_allclose(scores, std[indices, 0], rtol=1e-4)
    assert scores[0] == pytest.approx(std.max(), rel=1e-4)
    assert mean.shape == (52, 1) and np.isfinite(learner.score(x[8:], y[8:]))
    learner.teach(x[8:9], y[8:9], from_scratch=True)
    assert learner.model_[0].optimizer is not learner.model_[1].optimizer


def test_monte_carlo_strategies_without_dropout_are_refused_at_construction():
    # Refused when the learner is made, not at the first query after training.
    x0 = np.random.default_rng(0).normal(size=(12, 3)).astype("float32")
    multiclass = kk.ProblemSpec(task="multiclass", num_classes=3)
    regression = kk.ProblemSpec(task="regression")
    with pytest.raises(ConfigError, match="dropout=0 builds a model without dropout") as info:
        kk.ActiveLearner(multiclass, "bald", x_labeled=x0, y_labeled=np.arange(12) % 3, dropout=0)
    assert "ensemble_size=5" in str(info.value)
    with pytest.raises(ConfigError, match="'std'"):
        kk.ActiveLearner(regression, "diverse", x_labeled=x0, y_labeled=x0[:, 0], dropout=0.0)
    # Dropout, or an ensemble, makes the passes differ: both are accepted.
    kk.ActiveLearner(multiclass, "bald", x_labeled=x0, y_labeled=np.arange(12) % 3, dropout=0.3)
    kk.ActiveLearner(multiclass, "bald", x_labeled=x0, y_labeled=np.arange(12) % 3, dropout=0,
                     ensemble_size=3)
