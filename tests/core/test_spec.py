"""ProblemSpec, the head table and infer_spec (no TensorFlow needed)."""

import dataclasses

import numpy as np
import pytest

from kerakit import heads
from kerakit.errors import DataTypeError, KerakitError, LabelError, SpecError
from kerakit.inference import infer_spec
from kerakit.spec import ProblemSpec, validate_labels

# Backend-neutral: CI runs this file on TensorFlow and again on JAX (scripts/dev.py).
pytestmark = pytest.mark.backends


@pytest.mark.parametrize(
    "spec, activation, loss, metrics, outputs",
    [
        (ProblemSpec(task="binary"), "sigmoid", "binary_crossentropy",
         ("accuracy", "auc", "precision", "recall"), 1),
        (ProblemSpec(task="multilabel", num_labels=4), "sigmoid", "binary_crossentropy",
         ("binary_accuracy", "auc"), 4),
        (ProblemSpec(task="multiclass", num_classes=10), "softmax",
         "sparse_categorical_crossentropy", ("accuracy", "top_k_accuracy"), 10),
        (ProblemSpec(task="multiclass", num_classes=3, label_format="onehot"), "softmax",
         "categorical_crossentropy", ("accuracy", "top_k_accuracy"), 3),
        (ProblemSpec(task="multiclass", num_classes=3, label_format="soft"), "softmax",
         "kl_divergence", ("accuracy", "cosine_similarity"), 3),
        (ProblemSpec(task="regression"), "linear", "mean_squared_error", ("mae", "rmse"), 1),
        (ProblemSpec(task="regression", num_targets=3, robust=True), "linear", "huber",
         ("mae", "rmse"), 3),
    ],
)
def test_spec_resolves_head_from_the_table(spec, activation, loss, metrics, outputs):
    assert spec.activation == activation
    assert spec.loss == loss
    assert spec.metrics == metrics
    assert spec.monitor == "val_loss"
    assert spec.num_outputs == outputs


def test_every_table_row_is_reachable_and_complete():
    for key, row in heads.HEADS.items():
        assert {"activation", "loss", "metrics"} <= set(row), key
    reached = {
        ProblemSpec(task="binary").head,
        ProblemSpec(task="multilabel", num_labels=2).head,
        ProblemSpec(task="regression").head,
        *(ProblemSpec(task="multiclass", num_classes=3, label_format=f).head
          for f in ("sparse", "onehot", "soft")),
    }
    assert reached == set(heads.HEADS)


def test_spec_is_frozen():
    spec = ProblemSpec(task="binary")
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.task = "regression"


def test_unknown_task_suggests_closest():
    with pytest.raises(SpecError, match="Did you mean 'multiclass'"):
        ProblemSpec(task="multiclas", num_classes=3)


def test_label_format_aliases_and_unknown():
    assert ProblemSpec(task="multiclass", num_classes=3, label_format="one-hot").label_format == "onehot"
    with pytest.raises(SpecError, match="label_format"):
        ProblemSpec(task="multiclass", num_classes=3, label_format="dense")


@pytest.mark.parametrize(
    "kwargs, text",
    [
        (dict(task="multiclass"), "num_classes"),
        (dict(task="multiclass", num_classes=1), "at least 2"),
        (dict(task="multilabel"), "num_labels"),
        (dict(task="binary", robust=True), "robust"),
        (dict(task="binary", num_classes=5), "multiclass"),
        (dict(task="regression", num_classes=3), "does not apply"),
        (dict(task="multiclass", num_classes=3, class_names=("a", "b")), "class_names"),
    ],
)
def test_invalid_specs_are_refused_on_creation(kwargs, text):
    with pytest.raises(SpecError, match=text) as info:
        ProblemSpec(**kwargs)
    assert isinstance(info.value, ValueError) and isinstance(info.value, KerakitError)


# infer_spec -------------------------------------------------------------------


def test_infer_binary_from_ints_bools_and_float_01():
    assert infer_spec([0, 1, 1, 0]).task == "binary"
    assert infer_spec(np.array([True, False, True])).task == "binary"
    assert infer_spec(np.array([0.0, 1.0, 1.0])).task == "binary"
    assert infer_spec(np.array([[0], [1]])).task == "binary"


def test_infer_multiclass_sparse_from_ints():
    spec = infer_spec([0, 3, 1, 2, 3])
    assert (spec.task, spec.num_classes, spec.label_format) == ("multiclass", 4, "sparse")


def test_infer_onehot_rows():
    y = np.eye(3)[[0, 2, 1, 1]]
    spec = infer_spec(y)
    assert (spec.task, spec.num_classes, spec.label_format) == ("multiclass", 3, "onehot")


def test_infer_multilabel_from_several_ones():
    y = np.array([[1, 0, 1], [0, 0, 1], [1, 1, 0]])
    spec = infer_spec(y)
    assert (spec.task, spec.num_labels) == ("multilabel", 3)


def test_infer_soft_labels_from_probability_rows():
    y = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    spec = infer_spec(y)
    assert (spec.task, spec.label_format, spec.loss) == ("multiclass", "soft", "kl_divergence")


def test_infer_regression_from_floats_and_matrices():
    assert infer_spec([0.5, 1.7, -3.2]).task == "regression"
    spec = infer_spec(np.array([[1.5, -2.0], [0.3, 4.0]]), robust=True)
    assert (spec.task, spec.num_targets, spec.loss) == ("regression", 2, "huber")


def test_infer_string_labels_keeps_class_names():
    spec = infer_spec(["cat", "dog", "bird", "dog"])
    assert spec.task == "multiclass" and spec.class_names == ("bird", "cat", "dog")
    assert infer_spec(np.array(["yes", "no", "yes"], dtype=object)).class_names == ("no", "yes")
    encoded = validate_labels(spec, ["dog", "bird"])
    assert encoded.tolist() == [2, 0]


def test_infer_refuses_ambiguous_two_column_matrix_and_names_both_specs():
    y = np.array([[1, 0], [0, 1], [1, 0]])
    with pytest.raises(LabelError) as info:
        infer_spec(y)
    message = str(info.value)
    assert "label_format='onehot'" in message and "task='multilabel'" in message


def test_infer_refuses_single_class_and_negative_ints():
    with pytest.raises(LabelError, match="single class"):
        infer_spec([1, 1, 1])
    with pytest.raises(LabelError, match="LabelEncoder"):
        infer_spec([-1, 0, 2])


def test_infer_refuses_nan_labels():
    with pytest.raises(LabelError, match="NaN"):
        infer_spec([0.5, np.nan, 1.2])


def test_infer_refuses_mixed_label_types():
    with pytest.raises(DataTypeError, match="mixes"):
        infer_spec(np.array(["a", 1, "b"], dtype=object))


# Integer labels: classes or numbers --------------------------------------------


def _visit_counts():
    """20,000 visit counts 0-77: a long tail with gaps, like a real visits column."""
    rng = np.random.default_rng(0)
    counts = np.minimum(rng.negative_binomial(1, 0.12, 20_000), 60)
    counts[:5] = [63, 66, 70, 72, 77]
    return counts


def test_counts_with_a_spread_tail_are_refused_not_read_as_65_classes():
    # Poisson(3) counts with 5 % spread over 10-60: from 0, few holes, so they look
    # like class codes, but most rows sit on a few small values.
    rng = np.random.default_rng(0)
    y = rng.poisson(3, 5000)
    y[rng.choice(5000, 250, replace=False)] = rng.integers(10, 61, 250)
    with pytest.raises(LabelError, match="classes or numbers") as info:
        infer_spec(y)
    assert "task='regression'" in str(info.value) and "commonest" in str(info.value)
    # Balanced codes above the class limit are still classes (CIFAR-100's 0-99).
    assert infer_spec(np.repeat(np.arange(100), 30)).num_outputs == 100


def test_integer_counts_infer_regression_in_infer_spec_and_fit_table_alike():
    import pandas as pd

    from kerakit.data.targets import infer_target_task

    visits = _visit_counts()
    assert visits.max() == 77 and len(np.unique(visits)) > 20
    assert infer_spec(visits).task == "regression"
    assert infer_target_task(pd.Series(visits), "visits") == "regression"


def test_a_stray_label_is_refused_naming_the_value_in_both_paths():
    import pandas as pd

    from kerakit.data.targets import infer_target_task

    y = np.r_[np.arange(50) % 10, 10**9]
    with pytest.raises(LabelError, match="1000000000") as info:
        infer_spec(y)
    assert "ProblemSpec(task='regression')" in str(info.value)
    assert "0 to 9" in str(info.value)
    with pytest.raises(LabelError, match="1000000000") as info:
        infer_target_task(pd.Series(y), "label")
    assert "task='classification'" in str(info.value) and "task='regression'" in str(info.value)


def test_class_codes_stay_multiclass():
    rng = np.random.default_rng(1)
    cases = {10: rng.integers(0, 10, 300), 3: np.repeat([0, 1, 2], 50),
             20: np.arange(400) % 20, 100: np.arange(5000) % 100}
    for classes, y in cases.items():
        spec = infer_spec(y)
        assert (spec.task, spec.num_classes) == ("multiclass", classes)


def test_skewed_integer_codes_are_refused_naming_both_specs():
    # 30 values 0-29, none missing, each rarer than the one before: counts or skewed classes.
    y = np.repeat(np.arange(30), np.maximum(1, (300 * 0.8 ** np.arange(30)).astype(int)))
    with pytest.raises(LabelError, match="long tail") as info:
        infer_spec(y)
    message = str(info.value)
    assert f"ProblemSpec(task='multiclass', num_classes={y.max() + 1})" in message
    assert "ProblemSpec(task='regression')" in message


def test_few_labels_with_a_large_index_are_refused():
    with pytest.raises(LabelError, match="num_classes=51"):
        infer_spec([0, 1, 0, 1, 50, 50])


def test_a_negative_label_asks_for_relabelling_not_more_classes():
    spec = ProblemSpec(task="multiclass", num_classes=10)
    with pytest.raises(LabelError) as info:
        validate_labels(spec, [-1, 0, 3, 9])
    message = str(info.value)
    assert "num_classes to" not in message and "negative" in message
    with pytest.raises(LabelError, match="raise num_classes to 12"):
        validate_labels(spec, [0, 3, 11])
