"""What both estimators share: scikit-learn's tools (search, CV, clone), training options, routing."""


import numpy as np
import pytest
from scipy.stats import loguniform, uniform
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_diabetes
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import (
    GridSearchCV,
    RandomizedSearchCV,
    StratifiedKFold,
    cross_val_predict,
    train_test_split,
)
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from kerakit.errors import KerakitError
from kerakit.sklearn import KerasClassifier, KerasRegressor
from kerakit.sklearn._base import BaseKerasEstimator
from kerakit.spec import ProblemSpec

# Backend-neutral: CI runs this file on TensorFlow and again on JAX (scripts/dev.py).
pytestmark = pytest.mark.backends


@pytest.fixture
def count_fits(monkeypatch):
    """Counts the networks trained (one per estimator fit) while a test runs."""
    calls = []
    original = BaseKerasEstimator._train

    def counted(self, *args, **kwargs):
        calls.append(type(self).__name__)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(BaseKerasEstimator, "_train", counted)
    return calls


@pytest.mark.once
@pytest.mark.slow
def test_source_notes_flow_pipeline_grid_search_15_candidates_45_fits(count_fits):
    """GridSearchCV(Pipeline([...]), param_grid, cv=3, scoring="neg_root_mean_squared_error")."""
    data = load_diabetes(as_frame=True)
    frame = data.frame.drop(columns="target")
    frame["sex"] = np.where(frame["sex"] > 0, "male", "female")  # a real categorical column
    x_train, x_test, y_train, y_test = train_test_split(
        frame.iloc[:240], data.target.to_numpy()[:240], test_size=60, random_state=0
    )
    mean, std = y_train.mean(), y_train.std()
    numeric = [c for c in frame.columns if c != "sex"]
    pipeline = Pipeline([
        ("prep", ColumnTransformer([("num", StandardScaler(), numeric),
                                    ("cat", OneHotEncoder(), ["sex"])])),
        ("model", KerasRegressor(epochs=20, validation_split=0.0, patience=None, seed=0)),
    ])
    # A grid of 3×3 plus one of 2×3: 15 candidates; 3-fold CV: 45 fits.
    param_grid = [
        {"model__units": [(8,), (16,), (32,)], "model__learning_rate": [0.003, 0.01, 0.03]},
        {"model__dropout": [0.0, 0.2], "model__optimizer": ["adam", "rmsprop", "sgd"]},
    ]
    search = GridSearchCV(pipeline, param_grid, cv=3, scoring="neg_root_mean_squared_error",
                          error_score="raise")
    search.fit(x_train, (y_train - mean) / std)

    assert len(search.cv_results_["params"]) == 15
    assert search.n_splits_ == 3
    assert len(count_fits) == 45 + 1  # every candidate on every fold, then the refit
    assert search.best_score_ == pytest.approx(np.max(search.cv_results_["mean_test_score"]))
    assert search.best_score_ < 0  # negated RMSE

    best = search.best_estimator_
    assert isinstance(best, Pipeline) and best.named_steps["model"].model_ is not None
    pred = best.predict(x_test) * std + mean
    assert pred.shape == (60,) and np.isfinite(pred).all()
    rmse = np.sqrt(np.mean((pred - y_test) ** 2))
    baseline = np.sqrt(np.mean((mean - y_test) ** 2))  # always predict the training mean
    assert rmse < 0.9 * baseline


@pytest.mark.once
@pytest.mark.slow
def test_randomized_search_samples_scipy_distributions(iris, count_fits):
    x_train, x_test, y_train, y_test = iris
    search = RandomizedSearchCV(
        KerasClassifier(epochs=30, validation_split=0.0, patience=None, seed=0),
        {"learning_rate": loguniform(3e-3, 3e-2), "dropout": uniform(0.0, 0.2),
         "units": [(8,), (16,)]},
        n_iter=3, cv=2, random_state=0, error_score="raise",
    )
    search.fit(x_train, y_train)

    rates = [p["learning_rate"] for p in search.cv_results_["params"]]
    assert len(rates) == 3 and len(set(rates)) == 3  # drawn from a continuous distribution
    assert all(3e-3 <= r <= 3e-2 for r in rates)
    assert len(count_fits) == 3 * 2 + 1
    assert search.best_estimator_.learning_rate == search.best_params_["learning_rate"]
    pred = search.best_estimator_.predict(x_test)
    assert set(pred) <= set(y_train)
    assert np.mean(pred == y_test) > 0.7


def test_cross_val_predict_gives_out_of_fold_probabilities(iris, count_fits):
    x_train, _, y_train, _ = iris
    model = KerasClassifier(units=(16,), learning_rate=0.02, epochs=40, validation_split=0.0,
                            patience=None, seed=0)
    folds = StratifiedKFold(n_splits=3, shuffle=True, random_state=0)
    proba = cross_val_predict(model, x_train, y_train, cv=folds, method="predict_proba")

    assert proba.shape == (len(y_train), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    assert len(count_fits) == 3  # each row predicted by the fold model that never saw it
    oof_labels = np.unique(y_train)[proba.argmax(axis=1)]
    assert np.mean(oof_labels == y_train) > 0.8


def test_fitted_attributes(fitted, iris):
    x_train, x_test, y_train, y_test = iris
    import keras

    assert list(fitted.classes_) == ["setosa", "versicolor", "virginica"]
    assert fitted.n_features_in_ == 4
    assert list(fitted.feature_names_in_) == list(x_train.columns)
    assert isinstance(fitted.model_, keras.Model)
    assert fitted.spec_.task == "multiclass" and fitted.spec_.class_names == tuple(fitted.classes_)
    assert set(fitted.history_) == {"loss", "val_loss"}
    assert 1 <= len(fitted.history_["loss"]) <= 60
    pred = fitted.predict(x_test)
    assert pred.dtype.kind in "OU" and set(pred) <= set(fitted.classes_)
    assert fitted.score(x_test, y_test) > 0.8
    np.testing.assert_allclose(fitted.predict_proba(x_test).sum(axis=1), 1.0, atol=1e-6)


def test_early_stopping_stops_after_patience_epochs_without_improvement(iris):
    x_train, _, y_train, _ = iris
    model = KerasClassifier(units=(16,), learning_rate=0.05, epochs=300, validation_split=0.2,
                            patience=2, seed=0).fit(x_train, y_train)
    val_loss = model.history_["val_loss"]
    assert len(val_loss) < 300
    assert int(np.argmin(val_loss)) == len(val_loss) - 1 - 2  # the last `patience` epochs did not improve


def test_clone_gives_an_unfitted_copy_that_refits_identically(fitted, iris):
    x_train, x_test, y_train, _ = iris
    copy_ = clone(fitted)
    assert copy_.get_params() == fitted.get_params()
    assert not hasattr(copy_, "model_")
    with pytest.raises(NotFittedError):
        copy_.predict(x_test)
    copy_.fit(x_train, y_train)  # same seed → same network
    np.testing.assert_array_equal(copy_.predict_proba(x_test), fitted.predict_proba(x_test))


def test_bad_settings_fail_before_training_with_kerakit_errors():
    x = np.random.RandomState(0).normal(size=(20, 3))
    y = np.arange(20) % 2
    cases = [
        (KerasClassifier(epochs=0), "`epochs` must be >= 1"),
        (KerasClassifier(batch_size=2.5), "`batch_size` must be a whole number >= 1"),
        (KerasClassifier(validation_split=1.5), "`validation_split` must be a fraction"),
        (KerasClassifier(spec="binary"), "`spec` must be a kerakit.ProblemSpec"),
        (KerasClassifier(spec=ProblemSpec(task="regression")), "binary or a sparse multiclass spec"),
        (KerasRegressor(spec=ProblemSpec(task="binary")), "needs a regression spec"),
        (KerasClassifier(spec=ProblemSpec(task="binary", class_names=("a", "b"))),
         "not among the spec's classes"),
        (KerasClassifier(optimizer="adamm"), "Did you mean 'adam'"),
        (KerasClassifier(hidden=3), r"Unknown parameters \['hidden'\].*model__hidden"),
    ]
    for estimator, message in cases:
        with pytest.raises(KerakitError, match=message) as info:
            estimator.fit(x, y)
        assert isinstance(info.value, (ValueError, TypeError))
    with pytest.raises(KerakitError, match="n_samples=1"):
        KerasRegressor(validation_split=0.5).fit(x[:1], y[:1].astype(float))
    with pytest.raises(KerakitError, match="at least 2 classes"):
        KerasClassifier().fit(x, np.zeros(20))


def test_routed_parameters_reach_their_targets_and_survive_clone_and_set_params(small, quick):
    """SciKeras: optimizer__momentum=..., loss__label_smoothing=..., fit__/compile__/predict__."""
    import keras

    x, binary, _, _ = small
    model = KerasClassifier(optimizer="sgd", optimizer__momentum=0.5, loss__label_smoothing=0.1,
                            model__units=(4,), compile__jit_compile=False, fit__shuffle=False,
                            predict__batch_size=7, **quick())
    params = model.get_params()
    assert params["optimizer__momentum"] == 0.5 and params["model__units"] == (4,)
    copy_ = clone(model)
    assert copy_.get_params() == params and "optimizer__momentum" in repr(copy_)
    copy_.set_params(optimizer__momentum=0.9)
    assert copy_.optimizer__momentum == 0.9 and model.optimizer__momentum == 0.5

    copy_.fit(x, binary)
    assert copy_.model_.optimizer.momentum == pytest.approx(0.9)
    assert isinstance(copy_.model_.loss, keras.losses.BinaryCrossentropy)
    assert copy_.model_.loss.get_config()["label_smoothing"] == pytest.approx(0.1)
    assert copy_.model_.count_params() == 4 * 4 + 4 + 4 + 1  # model__units=(4,): one hidden layer of 4
    proba = copy_.predict_proba(x)
    assert proba.shape == (40, 2)
    np.testing.assert_allclose(proba, copy_.set_params(predict__batch_size=256).predict_proba(x),
                               atol=1e-5)
    with pytest.raises(KerakitError, match="Unknown fit option 'epoch'"):
        clone(model).set_params(fit__epoch=3).fit(x, binary)


class _Recorder:
    """Makes a Keras callback class that records which instance saw each epoch."""

    @staticmethod
    def make():
        import keras

        class Recorder(keras.callbacks.Callback):
            seen = []

            def __init__(self, tag="instance"):
                super().__init__()
                self.tag = tag

            def on_epoch_end(self, epoch, logs=None):
                Recorder.seen.append((id(self), self.tag))

        return Recorder


def test_callbacks_are_fresh_each_fit_and_fit_takes_per_call_overrides(small, quick):
    """SciKeras: callbacks=[...], callbacks__tag=..., fit(X, y, epochs=3) (a TypeError before)."""
    x, binary, _, _ = small
    recorder = _Recorder.make()
    given = recorder()
    model = KerasClassifier(units=(4,), callbacks=[given], **quick())
    model.fit(x, binary, epochs=3, batch_size=8, verbose=0)
    assert len(model.history_["loss"]) == 3 and model.epochs == 2  # the override is this fit's only
    model.fit(x, binary)
    ids = [seen for seen, _ in recorder.seen]
    assert len(ids) == 5 and len(set(ids)) == 2 and id(given) not in ids  # one copy per fit

    recorder.seen.clear()
    KerasClassifier(units=(4,), callbacks=[recorder], callbacks__tag="routed", **quick()).fit(x, binary)
    assert [tag for _, tag in recorder.seen] == ["routed", "routed"]
    recorder.seen.clear()
    KerasClassifier(units=(4,), callbacks={"rec": recorder, "other": recorder},
                    callbacks__rec__tag="named", **quick()).fit(x, binary)
    assert sorted(tag for _, tag in recorder.seen) == ["instance"] * 2 + ["named"] * 2
    with pytest.raises(KerakitError, match="Unknown fit option 'epoch'"):
        model.fit(x, binary, epoch=3)


def test_warm_start_continues_training_the_fitted_network(small, quick):
    """SciKeras: KerasRegressor(warm_start=True); a second fit keeps the weights."""
    x, _, _, _ = small
    y = x[:, 0] + 2 * x[:, 1]
    model = KerasRegressor(units=(8,), learning_rate=0.02, warm_start=True, **quick()).fit(x, y)
    network, weights = model.model_, [w.copy() for w in model.model_.get_weights()]
    model.fit(x, y)
    assert model.model_ is network
    assert len(model.history_["loss"]) == 4
    assert model.history_["loss"][2] < model.history_["loss"][0]  # picked up where it left
    assert any(not np.array_equal(a, b) for a, b in zip(weights, network.get_weights(), strict=True))
    cold = KerasRegressor(units=(8,), learning_rate=0.02, **quick()).fit(x, y)
    first = cold.model_
    assert cold.fit(x, y).model_ is not first and len(cold.history_["loss"]) == 2
    with pytest.raises(ValueError, match="features"):
        model.fit(x[:, :3], y)


# random_state, routed-option typos, scikit-learn's own errors ------------------------------


def test_random_state_seeds_the_fit_like_seed(small, quick):
    x, binary, _, _ = small
    options = {k: v for k, v in quick().items() if k != "seed"}
    by_name = KerasClassifier(units=(4,), random_state=0, **options).fit(x, binary)
    by_seed = KerasClassifier(units=(4,), seed=0, **options).fit(x, binary)
    np.testing.assert_array_equal(by_name.predict_proba(x), by_seed.predict_proba(x))
    other = KerasClassifier(units=(4,), random_state=1, **options).fit(x, binary)
    assert not np.array_equal(other.predict_proba(x), by_name.predict_proba(x))


@pytest.mark.parametrize(
    "options, message",
    [
        ({"optimizer": "sgd", "optimizer__momentun": 0.9}, "Did you mean 'optimizer__momentum'"),
        ({"loss__from_logit": True}, "Did you mean 'loss__from_logits'"),
        ({"callbacks": "EarlyStopping", "callbacks__patiense": 3}, "Did you mean 'callbacks__patience'"),
        ({"callbacks": "EarlyStopping", "callbacks__stop__patience": 3}, "'stop' names no callback"),
        ({"predict__batchsize": 8}, "Did you mean 'predict__batch_size'"),
        ({"compile__jit_compiled": False}, "Did you mean 'compile__jit_compile'"),
    ],
)
def test_routed_option_typos_are_refused_with_the_valid_parameters(small, options, message):
    import keras

    x, binary, _, _ = small
    if options.get("callbacks") == "EarlyStopping":
        options = {**options, "callbacks": [keras.callbacks.EarlyStopping]}
    estimator = KerasClassifier(units=(4,), epochs=1, **options)
    with pytest.raises(KerakitError, match=message) as info:
        estimator.fit(x, binary)
    assert isinstance(info.value, ValueError)
    assert not hasattr(estimator, "model_")  # refused before anything trained


def test_predict_batch_size_is_refused_at_fit_time(small, count_fits):
    x, binary, _, _ = small
    estimator = KerasClassifier(units=(4,), epochs=1, predict__batch_size=0)
    with pytest.raises(KerakitError, match="`predict__batch_size` must be >= 1"):
        estimator.fit(x, binary)
    assert count_fits == []  # nothing trained


def test_scikit_learn_keeps_its_own_value_errors(fitted, iris):
    """scikit-learn's conventions (and check_estimator) expect its own messages here."""
    x_train, x_test, y_train, _ = iris
    x, y = x_train.to_numpy(), y_train
    cases = [
        (lambda: fitted.predict(x_test.to_numpy()[:, :3]), "features"),
        (lambda: KerasClassifier().fit(np.where(x > 6, np.nan, x), y), "Input X contains NaN"),
        (lambda: KerasClassifier().fit(np.where(x > 6, np.inf, x), y), "Input X contains infinity"),
        (lambda: KerasRegressor().fit(x, np.full(len(x), np.nan)), "Input y contains NaN"),
        (lambda: KerasClassifier().fit(x, y, sample_weight=-np.ones(len(x))),
         "Negative values in data passed to `sample_weight`"),
        (lambda: KerasClassifier().fit(x, x[:, 0]), "Unknown label type"),
    ]
    for call, message in cases:
        with pytest.raises(ValueError, match=message) as info:
            call()
        assert not isinstance(info.value, KerakitError)
