"""KerasClassifier: labels of any type, given specs, partial_fit, multilabel matrices."""


import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from kerakit.errors import KerakitError
from kerakit.sklearn import KerasClassifier, KerasRegressor
from kerakit.spec import ProblemSpec

# Backend-neutral: CI runs this file on TensorFlow and again on JAX (scripts/dev.py).
pytestmark = pytest.mark.backends


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


def test_string_labels_in_a_pipeline_with_a_dataframe(iris):
    x_train, x_test, y_train, _ = iris
    frame = pd.DataFrame(x_train)
    pipeline = Pipeline([("scale", StandardScaler()),
                         ("model", KerasClassifier(units=(8,), epochs=2, validation_split=0.0,
                                                   patience=None, seed=0))])
    pipeline.fit(frame, y_train)
    assert pipeline.predict(x_test).dtype.kind in "OU"
    assert pipeline.named_steps["model"].n_features_in_ == 4


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


def test_multilabel_0_1_matrix_gives_per_label_probabilities(small, quick):
    """SciKeras: KerasClassifier(...).fit(X, Y) with Y a 0/1 matrix (multilabel-indicator)."""
    x, _, _, labels = small
    model = KerasClassifier(units=(8,), learning_rate=0.05, **quick(epochs=30)).fit(x, labels)
    assert model.spec_.task == "multilabel" and model.model_.loss == "binary_crossentropy"
    assert list(model.classes_) == [0, 1, 2]  # scikit-learn's multilabel convention (MLPClassifier)
    proba = model.predict_proba(x)
    assert proba.shape == (40, 3) and ((proba >= 0) & (proba <= 1)).all()
    assert not np.allclose(proba.sum(axis=1), 1.0)  # independent labels, not a softmax
    pred = model.predict(x)
    assert pred.shape == (40, 3) and set(np.unique(pred)) <= {0, 1}
    assert np.mean(pred == labels) > 0.7
    with pytest.raises(KerakitError, match="multiclass-multioutput"):
        KerasClassifier(**quick()).fit(x, np.column_stack([labels[:, 0], np.arange(40) % 3]))


def test_none_among_string_labels_is_a_clear_label_error(small):
    x, _, three, _ = small
    y = np.array(["a", "b", "c"], dtype=object)[three]
    y[[3, 17]] = None
    with pytest.raises(KerakitError, match=r"y holds None \(a missing label\) in 2 row\(s\)") as info:
        KerasClassifier(epochs=1).fit(x, y)
    assert "first at rows [3, 17]" in str(info.value) and isinstance(info.value, ValueError)


def test_a_tiny_validation_split_holds_out_every_class_or_nothing(quick):
    from kerakit.sklearn._base import BaseKerasEstimator

    split = BaseKerasEstimator._split
    labels = np.array([0] * 5 + [1] * 5)
    train, val = split(10, labels, 0.1, 0)  # 10 % of 10 rows is one row: one class only
    assert sorted(labels[val]) == [0, 1] and len(train) == 8
    train, val = split(10, np.array([0] * 9 + [1]), 0.1, 0)  # class 1 cannot be on both sides
    assert val is None and len(train) == 10
    x = np.random.RandomState(0).normal(size=(10, 2)).astype(np.float32)
    options = {**quick(), "validation_split": 0.1, "patience": 2}
    model = KerasClassifier(units=(4,), **options).fit(x, labels)
    assert "val_loss" in model.history_


def test_the_validation_loss_is_weighted_like_the_training_loss(small, quick, monkeypatch):
    import kerakit

    x, binary, _, _ = small
    seen = []
    original = kerakit.fit

    def recording(*args, **kwargs):
        seen.append(kwargs["validation_data"])
        return original(*args, **kwargs)

    monkeypatch.setattr(kerakit, "fit", recording)
    options = {**quick(), "validation_split": 0.25, "patience": 2}
    KerasClassifier(units=(4,), class_weight={0: 1000, 1: 1e-4}, **options).fit(x, binary)
    x_val, y_val, weights = seen[-1]
    assert len(weights) == len(y_val) == 10
    np.testing.assert_allclose(weights, np.where(y_val == 0, 1000, 1e-4), rtol=1e-6)
    KerasClassifier(units=(4,), **options).fit(x, binary)
    assert len(seen[-1]) == 2  # no weights given: none invented
