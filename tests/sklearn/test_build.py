"""The network of a fit: a `model=` build function or a prebuilt keras.Model, routed options."""


import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import (
    GridSearchCV,
)

from kerakit.errors import KerakitError
from kerakit.sklearn import KerasClassifier, KerasRegressor

# Backend-neutral: CI runs this file on TensorFlow and again on JAX (scripts/dev.py).
pytestmark = pytest.mark.backends


def test_model_build_function_gets_meta_and_its_routed_arguments(small, quick):
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

    model = KerasClassifier(model=get_model, model__hidden=8, **quick()).fit(x, three)
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
                            **quick()).fit(x, three)
    assert model.model_.loss == "categorical_crossentropy"
    assert isinstance(model.model_.optimizer, keras.optimizers.RMSprop)
    with pytest.raises(KerakitError, match="takes no argument 'width'"):
        KerasClassifier(uncompiled, model__width=3, **quick()).fit(x, three)


def test_a_prebuilt_keras_model_is_cloned_and_compiled_like_the_original_at_each_fit(small, quick):
    """SciKeras: KerasRegressor(model=my_compiled_model)."""
    import keras

    x, _, _, _ = small
    y = x[:, 0] - x[:, 1]
    prebuilt = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    prebuilt.compile(optimizer=keras.optimizers.SGD(learning_rate=0.05), loss="mae")
    before = [w.copy() for w in prebuilt.get_weights()]
    model = KerasRegressor(model=prebuilt, **quick()).fit(x, y)
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


@pytest.mark.once
def test_grid_search_tunes_routed_parameters_of_a_build_function(small, quick):
    """SciKeras: GridSearchCV(clf, {"optimizer__momentum": [...], "model__width": [...]})."""
    import keras

    x, binary, _, _ = small

    def build(meta, width=4):
        return keras.Sequential([keras.Input((meta["n_features_in_"],)),
                                 keras.layers.Dense(width, activation="relu"),
                                 keras.layers.Dense(1, activation="sigmoid")])

    search = GridSearchCV(
        KerasClassifier(build, optimizer="sgd", loss="binary_crossentropy", **quick(epochs=1)),
        {"optimizer__momentum": [0.0, 0.9], "model__width": [2, 6]}, cv=2, error_score="raise",
    ).fit(x, binary)
    assert len(search.cv_results_["params"]) == 4
    best = search.best_estimator_
    assert best.model_.layers[0].units == search.best_params_["model__width"]
    assert best.model_.optimizer.momentum == pytest.approx(search.best_params_["optimizer__momentum"])


def _dense_net(width):
    def build(meta):
        import keras

        return keras.Sequential([keras.Input((meta["n_features_in_"],)), keras.layers.Dense(width)])

    return build


def needs_hidden(meta, hidden):
    raise AssertionError("never called: `hidden` is missing")


def raises_inside(meta):
    raise KeyError("n_clases_")


def test_build_function_failures_name_the_function_and_the_meta_it_got(small, quick):
    x, _, three, _ = small
    cases = [
        (KerasClassifier(needs_hidden, **quick()), "'needs_hidden' needs the argument(s) ['hidden']"),
        (KerasClassifier(raises_inside, **quick()), "'raises_inside' raised KeyError: 'n_clases_'"),
        (KerasClassifier(_dense_net(1), **quick()), "1 output(s) for 3 classes"),
        (KerasRegressor(_dense_net(3), **quick()), "3 output(s) for 1 target column(s)"),
    ]
    for estimator, message in cases:
        target = three if isinstance(estimator, KerasClassifier) else x[:, 0]
        with pytest.raises(KerakitError) as info:
            estimator.fit(x, target)
        text = str(info.value)
        assert message in text, text
        assert "meta={'n_features_in_': 4" in text  # the meta the function received
        assert isinstance(info.value, ValueError)
        assert not hasattr(estimator, "model_")
    with pytest.raises(KerakitError) as info:
        KerasClassifier(raises_inside, **quick()).fit(x, three)
    assert isinstance(info.value.__cause__, KeyError)  # the user's own traceback is kept


def test_a_prebuilt_model_with_the_wrong_output_width_is_refused_before_training(small, quick):
    import keras

    x, _, three, _ = small
    prebuilt = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1, activation="sigmoid")])
    with pytest.raises(KerakitError, match="1 output\\(s\\) for 3 classes"):
        KerasClassifier(prebuilt, **quick()).fit(x, three)
    binary_softmax = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
    fitted = KerasClassifier(binary_softmax, loss="sparse_categorical_crossentropy",
                             **quick()).fit(x, three < 1)
    assert fitted.predict_proba(x).shape == (40, 2)  # two softmax outputs for two classes pass
