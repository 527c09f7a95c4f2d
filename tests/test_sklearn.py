"""KerasClassifier / KerasRegressor in scikit-learn's tools: the source notes' flow and more."""

import copy
import pickle

import numpy as np
import pandas as pd
import pytest
from scipy.stats import loguniform, uniform
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_diabetes, load_iris
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

import kerakit.sklearn as kk_sklearn
from kerakit.errors import KerakitError
from kerakit.sklearn import KerasClassifier, KerasRegressor
from kerakit.spec import ProblemSpec

# Backend-neutral: CI runs this file on TensorFlow and again on JAX (scripts/dev.py).
pytestmark = pytest.mark.backends


@pytest.fixture
def count_fits(monkeypatch):
    """Counts the networks trained (one per estimator fit) while a test runs."""
    calls = []
    original = kk_sklearn._KerasEstimator._train

    def counted(self, *args, **kwargs):
        calls.append(type(self).__name__)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(kk_sklearn._KerasEstimator, "_train", counted)
    return calls


@pytest.fixture(scope="module")
def iris():
    """Iris as a DataFrame with string labels: (x_train, x_test, y_train, y_test)."""
    data = load_iris(as_frame=True)
    x = data.frame.drop(columns="target")
    y = np.asarray(data.target_names)[data.target]
    return train_test_split(x, y, test_size=0.3, random_state=0, stratify=y)


@pytest.fixture(scope="module")
def fitted(iris):
    """A classifier trained with a validation split and early stopping."""
    x_train, _, y_train, _ = iris
    model = KerasClassifier(units=(16,), learning_rate=0.02, epochs=60, validation_split=0.2,
                            patience=3, seed=0)
    return model.fit(x_train, y_train)


# The source notes' flow ------------------------------------------------------------------


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


# Fitted attributes, clone, pickle --------------------------------------------------------


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


def test_pickle_round_trip_keeps_the_trained_network(fitted, iris):
    _, x_test, _, _ = iris
    data = pickle.dumps(fitted)
    restored = pickle.loads(data)

    assert restored.model_ is not fitted.model_
    np.testing.assert_array_equal(restored.predict_proba(x_test), fitted.predict_proba(x_test))
    np.testing.assert_array_equal(restored.classes_, fitted.classes_)
    assert restored.history_ == fitted.history_
    assert restored.get_params() == fitted.get_params()
    assert "_model_keras_bytes" not in vars(fitted)  # pickling leaves the original alone
    deep = copy.deepcopy(fitted)  # deepcopy goes through the same state
    np.testing.assert_array_equal(deep.predict(x_test), fitted.predict(x_test))
    unfitted = pickle.loads(pickle.dumps(KerasRegressor(units=(8,))))
    assert unfitted.units == (8,) and not hasattr(unfitted, "model_")


def lambda_body(spec, hp):
    """A body with a Lambda layer: Python code that would run when the model loads."""
    import keras

    return keras.Sequential([keras.layers.Lambda(lambda t: t * 2.0), keras.layers.Dense(4)])


def test_unpickling_refuses_lambda_layers(iris):
    x_train, _, y_train, _ = iris
    model = KerasClassifier(body=lambda_body, epochs=1, validation_split=0.0, patience=None,
                            seed=0).fit(x_train, y_train)
    data = pickle.dumps(model)
    with pytest.raises(KerakitError, match="Lambda") as info:
        pickle.loads(data)
    assert isinstance(info.value, ValueError)


# Specs, regression, bad input --------------------------------------------------------------


def test_a_given_spec_fixes_the_classes_when_the_data_lacks_one():
    import keras

    rng = np.random.RandomState(0)
    x = rng.normal(size=(40, 3)).astype(np.float32)
    y = (x[:, 0] > 0).astype(int)  # classes 0 and 1 only; the spec says there are 3
    optimizer = keras.optimizers.SGD(learning_rate=0.05, momentum=0.9)
    model = KerasClassifier(spec=ProblemSpec(task="multiclass", num_classes=3), units=(8,),
                            optimizer=optimizer, epochs=2, validation_split=0.0, patience=None,
                            seed=0)
    first = model.fit(x, y).model_
    assert list(model.classes_) == [0, 1, 2]
    assert clone(model).spec == model.spec
    assert model.predict_proba(x).shape == (40, 3)
    assert model.model_.loss == "sparse_categorical_crossentropy"
    model.fit(x, y)  # an optimizer object trains one model only: each fit copies it
    assert model.model_.optimizer is not first.optimizer is not optimizer
    assert model.model_.optimizer.learning_rate.numpy() == pytest.approx(0.05)


def test_multi_output_regression_with_a_robust_spec():
    rng = np.random.RandomState(0)
    x = rng.normal(size=(60, 4))
    y = np.column_stack([x[:, 0] + x[:, 1], x[:, 2] - x[:, 3]])
    spec = ProblemSpec(task="regression", num_targets=2, robust=True)
    model = KerasRegressor(spec=spec, units=(16,), learning_rate=0.02, epochs=40,
                           validation_split=0.0, patience=None, seed=0).fit(x, y)
    assert model.model_.loss == spec.loss  # Huber, from the spec
    pred = model.predict(x)
    assert pred.shape == (60, 2)
    assert model.score(x, y) > 0.5


def test_bad_settings_fail_before_training_with_kerakit_errors():
    x = np.random.RandomState(0).normal(size=(20, 3))
    y = np.arange(20) % 2
    cases = [
        (KerasClassifier(epochs=0), "`epochs` must be an integer >= 1"),
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


def test_string_labels_in_a_pipeline_with_a_dataframe(iris):
    x_train, x_test, y_train, _ = iris
    frame = pd.DataFrame(x_train)
    pipeline = Pipeline([("scale", StandardScaler()),
                         ("model", KerasClassifier(units=(8,), epochs=2, validation_split=0.0,
                                                   patience=None, seed=0))])
    pipeline.fit(frame, y_train)
    assert pipeline.predict(x_test).dtype.kind in "OU"
    assert pipeline.named_steps["model"].n_features_in_ == 4


# What SciKeras users rely on (issue 18) ----------------------------------------------------


@pytest.fixture(scope="module")
def small():
    """40 rows, 4 features; binary, 3-class and 3-label targets."""
    rng = np.random.RandomState(0)
    x = rng.normal(size=(40, 4)).astype(np.float32)
    binary = (x[:, 0] + x[:, 1] > 0).astype(int)
    three = np.digitize(x[:, 0], [-0.5, 0.5])
    labels = np.column_stack([binary, x[:, 2] > 0, x[:, 3] > 0.5]).astype(int)
    return x, binary, three, labels


def _quick(**options):
    return dict(dict(epochs=2, validation_split=0.0, patience=None, seed=0), **options)


def test_model_build_function_gets_meta_and_its_routed_arguments(small):
    """SciKeras: KerasClassifier(model=get_model, model__hidden=8) with get_model(meta, hidden)."""
    import keras

    x, _, three, _ = small
    seen = {}

    def get_model(meta, hidden):
        seen.update(meta)
        model = keras.Sequential([keras.Input((meta["n_features_in_"],)),
                                  keras.layers.Dense(hidden, activation="relu"),
                                  keras.layers.Dense(meta["n_classes_"], activation="softmax")])
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        return model

    model = KerasClassifier(model=get_model, model__hidden=8, **_quick()).fit(x, three)
    assert seen["n_features_in_"] == 4 and seen["n_classes_"] == 3
    assert list(seen["classes_"]) == [0, 1, 2] and seen["target_type_"] == "multiclass"
    assert seen["spec"].task == "multiclass"
    assert model.model_.layers[0].units == 8
    assert model.predict_proba(x).shape == (40, 3) and set(model.predict(x)) <= {0, 1, 2}

    # Left uncompiled, the network is compiled with the wrapper's optimizer and loss;
    # categorical cross-entropy gets one-hot rows.
    def uncompiled(meta):
        return keras.Sequential([keras.Input((meta["n_features_in_"],)),
                                 keras.layers.Dense(meta["n_classes_"], activation="softmax")])

    model = KerasClassifier(uncompiled, loss="categorical_crossentropy", optimizer="rmsprop",
                            **_quick()).fit(x, three)
    assert model.model_.loss == "categorical_crossentropy"
    assert isinstance(model.model_.optimizer, keras.optimizers.RMSprop)
    with pytest.raises(KerakitError, match="takes no argument 'width'"):
        KerasClassifier(uncompiled, model__width=3, **_quick()).fit(x, three)


def test_a_prebuilt_keras_model_is_cloned_and_compiled_like_the_original_at_each_fit(small):
    """SciKeras: KerasRegressor(model=my_compiled_model)."""
    import keras

    x, _, _, _ = small
    y = x[:, 0] - x[:, 1]
    prebuilt = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    prebuilt.compile(optimizer=keras.optimizers.SGD(learning_rate=0.05), loss="mae")
    before = [w.copy() for w in prebuilt.get_weights()]
    model = KerasRegressor(model=prebuilt, **_quick()).fit(x, y)
    first = model.model_
    assert first is not prebuilt and model.model_.loss == "mae"
    assert isinstance(model.model_.optimizer, keras.optimizers.SGD)
    assert model.model_.optimizer is not prebuilt.optimizer
    for old, new in zip(before, prebuilt.get_weights(), strict=True):
        np.testing.assert_array_equal(old, new)  # the original never trains
    assert model.fit(x, y).model_ is not first
    assert model.predict(x).shape == (40,)
    copy_ = clone(model)  # GridSearchCV's way: the prebuilt model is copied with the parameters
    assert isinstance(copy_.model, keras.Model) and copy_.fit(x, y).model_.loss == "mae"


def test_routed_parameters_reach_their_targets_and_survive_clone_and_set_params(small):
    """SciKeras: optimizer__momentum=..., loss__label_smoothing=..., fit__/compile__/predict__."""
    import keras

    x, binary, _, _ = small
    model = KerasClassifier(optimizer="sgd", optimizer__momentum=0.5, loss__label_smoothing=0.1,
                            model__units=(4,), compile__jit_compile=False, fit__shuffle=False,
                            predict__batch_size=7, **_quick())
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


def test_grid_search_tunes_routed_parameters_of_a_build_function(small):
    """SciKeras: GridSearchCV(clf, {"optimizer__momentum": [...], "model__width": [...]})."""
    import keras

    x, binary, _, _ = small

    def build(meta, width=4):
        return keras.Sequential([keras.Input((meta["n_features_in_"],)),
                                 keras.layers.Dense(width, activation="relu"),
                                 keras.layers.Dense(1, activation="sigmoid")])

    search = GridSearchCV(
        KerasClassifier(build, optimizer="sgd", loss="binary_crossentropy", **_quick(epochs=1)),
        {"optimizer__momentum": [0.0, 0.9], "model__width": [2, 6]}, cv=2, error_score="raise",
    ).fit(x, binary)
    assert len(search.cv_results_["params"]) == 4
    best = search.best_estimator_
    assert best.model_.layers[0].units == search.best_params_["model__width"]
    assert best.model_.optimizer.momentum == pytest.approx(search.best_params_["optimizer__momentum"])


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


def test_callbacks_are_fresh_each_fit_and_fit_takes_per_call_overrides(small):
    """SciKeras: callbacks=[...], callbacks__tag=..., fit(X, y, epochs=3) (a TypeError before)."""
    x, binary, _, _ = small
    recorder = _Recorder.make()
    given = recorder()
    model = KerasClassifier(units=(4,), callbacks=[given], **_quick())
    model.fit(x, binary, epochs=3, batch_size=8, verbose=0)
    assert len(model.history_["loss"]) == 3 and model.epochs == 2  # the override is this fit's only
    model.fit(x, binary)
    ids = [seen for seen, _ in recorder.seen]
    assert len(ids) == 5 and len(set(ids)) == 2 and id(given) not in ids  # one copy per fit

    recorder.seen.clear()
    KerasClassifier(units=(4,), callbacks=[recorder], callbacks__tag="routed", **_quick()).fit(x, binary)
    assert [tag for _, tag in recorder.seen] == ["routed", "routed"]
    recorder.seen.clear()
    KerasClassifier(units=(4,), callbacks={"rec": recorder, "other": recorder},
                    callbacks__rec__tag="named", **_quick()).fit(x, binary)
    assert sorted(tag for _, tag in recorder.seen) == ["instance"] * 2 + ["named"] * 2
    with pytest.raises(KerakitError, match="Unknown fit option 'epoch'"):
        model.fit(x, binary, epoch=3)


def test_warm_start_continues_training_the_fitted_network(small):
    """SciKeras: KerasRegressor(warm_start=True); a second fit keeps the weights."""
    x, _, _, _ = small
    y = x[:, 0] + 2 * x[:, 1]
    model = KerasRegressor(units=(8,), learning_rate=0.02, warm_start=True, **_quick()).fit(x, y)
    network, weights = model.model_, [w.copy() for w in model.model_.get_weights()]
    model.fit(x, y)
    assert model.model_ is network
    assert len(model.history_["loss"]) == 4
    assert model.history_["loss"][2] < model.history_["loss"][0]  # picked up where it left
    assert any(not np.array_equal(a, b) for a, b in zip(weights, network.get_weights(), strict=True))
    cold = KerasRegressor(units=(8,), learning_rate=0.02, **_quick()).fit(x, y)
    first = cold.model_
    assert cold.fit(x, y).model_ is not first and len(cold.history_["loss"]) == 2
    with pytest.raises(ValueError, match="features"):
        model.fit(x[:, :3], y)


def test_partial_fit_trains_one_epoch_per_call_with_classes_on_the_first(small):
    """SciKeras / scikit-learn: clf.partial_fit(X_batch, y_batch, classes=all_classes)."""
    x, _, three, _ = small
    with pytest.raises(KerakitError, match="needs `classes` on its first call"):
        KerasClassifier(units=(4,), seed=0).partial_fit(x, three)
    model = KerasClassifier(units=(4,), seed=0)
    first_batch = three < 2  # class 2 comes only in the second batch
    model.partial_fit(x[first_batch], three[first_batch], classes=[0, 1, 2])
    network = model.model_
    model.partial_fit(x[~first_batch], three[~first_batch])
    assert model.model_ is network and list(model.classes_) == [0, 1, 2]
    assert len(model.history_["loss"]) == 2
    assert model.predict_proba(x).shape == (40, 3)
    with pytest.raises(KerakitError, match="changed between partial_fit calls"):
        model.partial_fit(x, three, classes=[0, 1])
    regressor = KerasRegressor(units=(4,), seed=0).partial_fit(x, x[:, 0]).partial_fit(x, x[:, 0])
    assert len(regressor.history_["loss"]) == 2


def test_scipy_sparse_x_is_densified_in_blocks_with_a_memory_guard(small, monkeypatch):
    """SciKeras: clf.fit(scipy.sparse.csr_matrix(X), y) (refused before)."""
    from scipy import sparse

    x, binary, _, _ = small
    x = np.where(np.abs(x) > 1, x, 0).astype(np.float32)
    dense = KerasClassifier(units=(4,), **_quick()).fit(x, binary)
    for form in (sparse.csr_matrix, sparse.csc_array, sparse.coo_matrix):
        model = KerasClassifier(units=(4,), **_quick()).fit(form(x), binary)
        np.testing.assert_allclose(model.predict_proba(form(x)), dense.predict_proba(x), atol=1e-5)
    monkeypatch.setattr(kk_sklearn, "_DENSIFY_ROWS", 7)  # several blocks
    np.testing.assert_array_equal(kk_sklearn.densify(sparse.csr_matrix(x)), x)
    monkeypatch.setattr(kk_sklearn, "MAX_DENSE_BYTES", 100)
    with pytest.raises(KerakitError, match="MAX_DENSE_BYTES") as info:
        KerasRegressor(**_quick()).fit(sparse.csr_matrix(x), x[:, 0])
    assert isinstance(info.value, ValueError) and "TruncatedSVD" in str(info.value)


def test_multilabel_0_1_matrix_gives_per_label_probabilities(small):
    """SciKeras: KerasClassifier(...).fit(X, Y) with Y a 0/1 matrix (multilabel-indicator)."""
    x, _, _, labels = small
    model = KerasClassifier(units=(8,), learning_rate=0.05, **_quick(epochs=30)).fit(x, labels)
    assert model.spec_.task == "multilabel" and model.model_.loss == "binary_crossentropy"
    assert list(model.classes_) == [0, 1, 2]  # scikit-learn's multilabel convention (MLPClassifier)
    proba = model.predict_proba(x)
    assert proba.shape == (40, 3) and ((proba >= 0) & (proba <= 1)).all()
    assert not np.allclose(proba.sum(axis=1), 1.0)  # independent labels, not a softmax
    pred = model.predict(x)
    assert pred.shape == (40, 3) and set(np.unique(pred)) <= {0, 1}
    assert np.mean(pred == labels) > 0.7
    with pytest.raises(KerakitError, match="multiclass-multioutput"):
        KerasClassifier(**_quick()).fit(x, np.column_stack([labels[:, 0], np.arange(40) % 3]))
