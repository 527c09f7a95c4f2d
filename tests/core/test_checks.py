"""Bad input is refused before training, with a message that says what to change.

One test per case. Each goes through `kerakit.fit` (or
`build_model` for names) and checks that the error is a kerakit error, also a
ValueError/TypeError, and that no training step ran.
"""

import keras
import numpy as np
import pytest

import kerakit as kk
from kerakit.errors import (
    DataError,
    DataTypeError,
    KerakitError,
    LabelError,
    SpecError,
    UnknownNameError,
)

# Backend-neutral: CI runs this file on TensorFlow and again on JAX (scripts/dev.py).
pytestmark = pytest.mark.backends

RNG = np.random.default_rng(0)
X = RNG.normal(size=(24, 4)).astype("float32")


def _model(spec, width=4):
    return kk.build_model(spec, input_shape=(width,), units=(4,), dropout=0.0)


def _refused(model, x, y, error, match, **kwargs):
    weights = [w.copy() for w in model.get_weights()]
    with pytest.raises(error, match=match) as info:
        kk.fit(model, x, y, epochs=1, verbose=0, **kwargs)
    assert isinstance(info.value, KerakitError)
    assert isinstance(info.value, (ValueError, TypeError))
    # Nothing trained: the weights are untouched.
    assert all(np.array_equal(a, b) for a, b in zip(weights, model.get_weights(), strict=True))
    return str(info.value)


SPARSE = kk.ProblemSpec(task="multiclass", num_classes=3)
ONEHOT = kk.ProblemSpec(task="multiclass", num_classes=3, label_format="onehot")
BINARY = kk.ProblemSpec(task="binary")
REGRESSION = kk.ProblemSpec(task="regression")


@pytest.fixture(scope="module")
def sparse_model():
    return _model(SPARSE)


def test_onehot_labels_with_sparse_spec(sparse_model):
    y = np.eye(3)[RNG.integers(0, 3, 24)]
    message = _refused(sparse_model, X, y, LabelError, "one-hot")
    assert "label_format='onehot'" in message and "argmax" in message


def test_integer_labels_with_onehot_spec():
    message = _refused(_model(ONEHOT), X, RNG.integers(0, 3, 24), LabelError, "vector")
    assert "to_categorical" in message and "label_format='sparse'" in message


def test_label_outside_num_classes(sparse_model):
    y = np.array([0, 1, 2, 5] * 6)
    message = _refused(sparse_model, X, y, LabelError, r"\[0, 3\)")
    assert "{5}" in message and "num_classes" in message


def test_three_classes_for_binary():
    message = _refused(_model(BINARY), X, np.array([0, 1, 2] * 8), LabelError, "labels 0 and 1")
    assert "num_classes=3" in message


def test_nan_feature_cell(sparse_model):
    x = X.copy()
    x[5, 2] = np.nan
    message = _refused(sparse_model, x, RNG.integers(0, 3, 24), DataError, "NaN")
    assert "[[5, 2]]" in message


def test_inf_feature_cell(sparse_model):
    x = X.copy()
    x[1, 0] = np.inf
    _refused(sparse_model, x, RNG.integers(0, 3, 24), DataError, "infinite")


def test_nan_labels():
    y = RNG.normal(size=24)
    y[[3, 7]] = np.nan
    message = _refused(_model(REGRESSION), X, y, LabelError, "NaN")
    assert "2 row(s)" in message and "[3, 7]" in message


def test_string_labels_for_regression():
    y = np.array(["1.5", "2.0"] * 12)
    _refused(_model(REGRESSION), X, y, DataTypeError, "Regression targets must be numbers")


def test_object_dtype_features(sparse_model):
    x = np.array([["a", 1, 2, 3]] * 24, dtype=object)
    _refused(sparse_model, x, RNG.integers(0, 3, 24), DataTypeError, "must be numeric")


def test_row_count_mismatch(sparse_model):
    message = _refused(sparse_model, X, RNG.integers(0, 3, 20), DataError, "24 rows")
    assert "20" in message


def test_wrong_feature_width_names_both(sparse_model):
    x = RNG.normal(size=(24, 6))
    message = _refused(sparse_model, x, RNG.integers(0, 3, 24), DataError, "expects 4 feature")
    assert "has 6" in message


def test_empty_data(sparse_model):
    _refused(sparse_model, np.zeros((0, 4)), np.zeros((0,)), DataError, "empty")


def test_single_class_in_binary():
    _refused(_model(BINARY), X, np.ones(24), LabelError, "both classes")


def test_unknown_optimizer_suggests_closest():
    with pytest.raises(UnknownNameError, match="Did you mean 'adam'") as info:
        kk.build_model(SPARSE, input_shape=(4,), optimizer="adma")
    assert "'rmsprop'" in str(info.value)


def test_unknown_body_suggests_closest():
    with pytest.raises(UnknownNameError, match="Did you mean 'mlp'"):
        kk.build_model(SPARSE, input_shape=(4,), body="mpl")


def test_unknown_loss_suggests_closest():
    with pytest.raises(UnknownNameError, match="Did you mean 'huber'"):
        kk.build_model(REGRESSION, input_shape=(4,), loss="hubber")


def test_incompatible_loss_is_refused_before_building():
    with pytest.raises(SpecError, match="softmax"):
        kk.build_model(SPARSE, input_shape=(4,), loss="binary_crossentropy")
    with pytest.raises(SpecError, match="sparse_categorical_crossentropy"):
        kk.build_model(SPARSE, input_shape=(4,), loss="categorical_crossentropy")
    with pytest.raises(SpecError, match="categorical_crossentropy"):
        kk.build_model(ONEHOT, input_shape=(4,), loss="sparse_categorical_crossentropy")


def test_early_stopping_on_val_loss_without_validation_data(sparse_model):
    message = _refused(sparse_model, X, RNG.integers(0, 3, 24), KerakitError, "no validation",
                       callbacks=kk.default_callbacks(SPARSE))
    assert "validation_split" in message


def test_weights_or_split_with_a_dataset_are_refused(sparse_model):
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((X, RNG.integers(0, 3, 24))).batch(8)
    with pytest.raises(KerakitError, match="class_weight cannot be applied to a tf.data.Dataset"):
        kk.fit(sparse_model, ds, class_weight="balanced", verbose=0)
    with pytest.raises(KerakitError, match="validation_split"):
        kk.fit(sparse_model, ds, validation_split=0.2, verbose=0)


# Inputs that used to reach TensorFlow or NumPy raw -----------------------------


def test_ragged_lists_as_features(sparse_model):
    ragged = [[0.1, 0.2, 0.3, 0.4], [0.1, 0.2]] * 12
    message = _refused(sparse_model, ragged, np.arange(24) % 3, DataTypeError, "different lengths")
    assert "[2, 4]" in message


def test_three_dimensional_features_for_a_flat_model(sparse_model):
    x3 = RNG.normal(size=(24, 4, 2)).astype("float32")
    message = _refused(sparse_model, x3, np.arange(24) % 3, DataError, "rows of shape")
    assert "(4,)" in message and "(4, 2)" in message


def test_a_dict_with_a_wrong_key_for_a_dict_input_model():
    import keras

    inputs = {"age": keras.Input((1,), name="age"), "income": keras.Input((1,), name="income")}
    joined = keras.layers.Concatenate()(list(inputs.values()))
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(joined))
    model.compile(optimizer="adam", loss="binary_crossentropy")
    x = {"age": X[:, :1], "incme": X[:, 1:2]}
    message = _refused(model, x, (X[:, 0] > 0).astype(int), DataError, "Missing: \\['income'\\]")
    assert "Rename 'incme' to 'income'" in message


def test_a_negative_label_is_not_told_to_raise_num_classes(sparse_model):
    y = np.arange(24) % 3
    y[0] = -1
    message = _refused(sparse_model, X, y, LabelError, "negative")
    assert "num_classes to" not in message


# fit's options, checked once before anything trains ----------------------------


def _fit_refused(model, match, error=KerakitError, x=X, y=None, **options):
    y = RNG.integers(0, 3, len(x)) if y is None else y
    weights = [w.copy() for w in model.get_weights()]
    options = {"epochs": 1, "verbose": 0, **options}
    with pytest.raises(error, match=match) as info:
        kk.fit(model, x, y, **options)
    assert isinstance(info.value, KerakitError)
    assert all(np.array_equal(a, b) for a, b in zip(weights, model.get_weights(), strict=True))
    return str(info.value)


@pytest.mark.parametrize("epochs", [-1, 0, 2.5, "3", True])
def test_epochs_that_are_not_a_positive_whole_number(sparse_model, epochs):
    message = _fit_refused(sparse_model, "`epochs` must be", epochs=epochs)
    assert repr(epochs) in message
    if epochs == 2.5:
        assert "whole number" in message


@pytest.mark.parametrize("batch_size", [0, -8, 1.5])
def test_batch_sizes_that_are_not_a_positive_whole_number(sparse_model, batch_size):
    _fit_refused(sparse_model, "`batch_size` must be", batch_size=batch_size)


def test_class_weight_keys_and_values_are_checked(sparse_model):
    _fit_refused(sparse_model, "names classes", class_weight={"a": 2})
    _fit_refused(sparse_model, "finite numbers >= 0", class_weight={0: float("nan")})


def test_validation_data_must_be_a_pair_or_a_triple(sparse_model):
    message = _fit_refused(sparse_model, "validation_data", validation_data=(X,))
    assert "1 item" in message


@pytest.mark.parametrize("weights, match", [
    (np.array(["a"] * 24), "must be numbers"),
    (np.r_[np.ones(23), np.nan], "NaN or infinite"),
    (np.r_[np.ones(23), -1.0], "negative"),
    (np.zeros(24), "Every `sample_weight` value is 0"),
])
def test_sample_weights_that_would_train_nothing_or_nan(sparse_model, weights, match):
    _fit_refused(sparse_model, match, sample_weight=weights)


def test_a_feature_whose_square_overflows_float32(sparse_model):
    x = X.copy()
    x[3, 1] = 1e38
    message = _fit_refused(sparse_model, "overflows float32", x=x)
    assert "[[3, 1]]" in message


@pytest.mark.parametrize("options, match", [
    ({"callbacks": "early_stopping"}, "list of keras.callbacks.Callback"),
    ({"callbacks": [object()]}, "must be a keras.callbacks.Callback"),
    ({"validation_split": "0.2"}, "`validation_split` must be a number in"),
    ({"validation_split": 1.5}, "`validation_split` must be a number in"),
    ({"steps_per_execution": 0}, "`steps_per_execution` must be >= 1"),
    ({"steps_per_execution": "lots"}, "'auto' or a whole number"),
    ({"seed": -1}, "`seed` must be >= 0"),
    ({"seed": "abc"}, "`seed` must be a whole number"),
])
def test_fit_options_of_the_wrong_kind(sparse_model, options, match):
    _fit_refused(sparse_model, match, **options)


def test_fit_needs_a_compiled_keras_model(tmp_path):
    y = RNG.integers(0, 3, len(X))
    with pytest.raises(KerakitError, match="not a path. Load the file first"):
        kk.fit(str(tmp_path / "model.keras"), X, y, epochs=1, verbose=0)
    with pytest.raises(KerakitError, match="must be a keras.Model"):
        kk.fit(object(), X, y, epochs=1, verbose=0)
    inputs = keras.Input((4,))
    uncompiled = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(inputs))
    _fit_refused(uncompiled, "is not compiled", spec=SPARSE)


def test_evaluate_refuses_a_threshold_outside_zero_and_one():
    model = _model(BINARY)
    y = RNG.integers(0, 2, len(X))
    for threshold in (2.0, 0.0, -0.5, "0.5"):
        with pytest.raises(KerakitError, match=r"`threshold` must be a number in \(0, 1\)"):
            kk.evaluate(model, X, y, threshold=threshold)


# A model with several named inputs: each input is checked as one array is. -----------------


@pytest.fixture(scope="module")
def two_input_model():
    a, b = keras.Input((3,), name="a"), keras.Input((2,), name="b")
    hidden = keras.layers.Dense(4, activation="relu")(keras.layers.Concatenate()([a, b]))
    model = keras.Model({"a": a, "b": b}, keras.layers.Dense(1, activation="sigmoid")(hidden))
    model.compile(optimizer="adam", loss="binary_crossentropy")
    return model


def _inputs(rows_a=24, rows_b=24):
    return {"a": RNG.normal(size=(rows_a, 3)).astype("float32"),
            "b": RNG.normal(size=(rows_b, 2)).astype("float32")}


def test_a_nan_cell_in_one_input_of_a_dict(two_input_model):
    x = _inputs()
    x["b"][5, 1] = np.nan
    message = _fit_refused(two_input_model, "NaN or infinite", error=DataError, x=x,
                           y=RNG.integers(0, 2, 24), spec=BINARY)
    assert "x['b']" in message and "[[5, 1]]" in message


def test_inputs_of_a_dict_with_different_row_counts(two_input_model):
    message = _fit_refused(two_input_model, "different numbers of rows", error=DataError,
                           x=_inputs(24, 16), y=RNG.integers(0, 2, 24), spec=BINARY)
    assert "'a': 24" in message and "'b': 16" in message


def test_strings_in_a_numeric_input_of_a_dict(two_input_model):
    x = _inputs()
    x["a"] = np.array([["1", "x", "2"]] * 24)
    message = _fit_refused(two_input_model, "must be numeric", error=DataTypeError, x=x,
                           y=RNG.integers(0, 2, 24), spec=BINARY)
    assert "x['a']" in message


def test_a_valid_dict_still_trains_and_predicts(two_input_model):
    x = _inputs()
    kk.fit(two_input_model, x, RNG.integers(0, 2, 24), spec=BINARY, epochs=1, verbose=0)
    assert kk.predict(two_input_model, x).shape == (24, 1)


# Texts ------------------------------------------------------------------------------------


def test_texts_that_are_not_valid_unicode_are_refused():
    from kerakit.checks import validate_text

    broken = b"caf\xe9 au lait".decode("utf-8", "surrogateescape")
    with pytest.raises(DataError, match="not valid Unicode, first at index 1") as info:
        validate_text(["fine", broken, "also fine"])
    assert "encoding=" in str(info.value)


@pytest.mark.parametrize("options, match", [
    ({"max_tokens": 0}, "`max_tokens` must be >= 3"),
    ({"sequence_length": -1}, "`sequence_length` must be >= 1"),
    ({"embedding_dim": 2.5}, "`embedding_dim` must be a whole number"),
])
def test_text_input_sizes_are_checked(options, match):
    with pytest.raises(KerakitError, match=match):
        kk.text_inputs(["a cat", "a dog"], **options)


# The scalar checkers ------------------------------------------------------------------------


def test_check_count_and_check_fraction_name_the_option_and_the_range():
    from kerakit.checks import check_count, check_fraction

    assert check_count("n", np.int64(3)) == 3 and check_count("n", None, allow_none=True) is None
    for value in (True, 2.0, "2", 0):
        with pytest.raises(KerakitError, match="`n` must be"):
            check_count("n", value)
    with pytest.raises(KerakitError, match=r"must be in \[1, 5\]. Received: n=6"):
        check_count("n", 6, maximum=5)
    assert check_fraction("p", 0.25) == 0.25
    assert check_fraction("p", 0.0, include_low=True) == 0.0
    for value in (0.0, 1.0, float("nan"), True, "0.5", None):
        with pytest.raises(KerakitError, match=r"`p` must be a number in \(0, 1\)"):
            check_fraction("p", value)


@pytest.mark.parametrize("options, match", [
    ({"patience": "abc"}, "`patience` must be a whole number"),
    ({"patience": -1}, "`patience` must be >= 0"),
    ({"reduce_lr_patience": 2.5}, "`reduce_lr_patience` must be a whole number"),
])
def test_default_callbacks_check_their_counts(options, match):
    with pytest.raises(KerakitError, match=match):
        kk.default_callbacks(**options)
