"""What printed metrics refer to: the positive class, how classes are averaged."""

import numpy as np
import pytest

from kerakit.metrics_registry import metric_note, metric_notes
from kerakit.spec import ProblemSpec


@pytest.mark.backends
def test_binary_precision_and_recall_name_the_positive_class():
    named = ProblemSpec(task="binary", class_names=["healthy", "sick"])
    assert metric_note("precision", named) == "positive class: 'sick'"
    assert metric_note("recall", named) == "positive class: 'sick'"
    assert metric_note("f1", ProblemSpec(task="binary")) == "positive class: 1"
    # Names read from data are NumPy strings; the note shows them as plain text.
    read = ProblemSpec(task="binary", class_names=list(np.array(["malignant", "benign"])))
    assert metric_note("precision", read) == "positive class: 'benign'"
    assert metric_note("accuracy", named) is None and metric_note("log_loss", named) is None


@pytest.mark.backends
def test_multiclass_and_multilabel_say_how_they_average():
    multiclass = ProblemSpec(task="multiclass", num_classes=3)
    assert metric_note("f1", multiclass) == "macro average over 3 classes"
    assert metric_note("roc_auc", multiclass) == "macro average over 3 classes"
    tags = ProblemSpec(task="multilabel", num_labels=2, class_names=["red", "round"])
    assert metric_note("precision", tags) == "micro average over 2 labels (red, round)"
    assert metric_note("f1_macro", tags) == "macro average over 2 labels (red, round)"
    assert metric_note("rmse", ProblemSpec(task="regression")) is None


@pytest.mark.backends
def test_metric_notes_leave_the_report_keys_alone():
    spec = ProblemSpec(task="binary", class_names=["no", "yes"])
    report = {"accuracy": 0.9, "precision": 0.8, "recall": 0.7, "f1": 0.75, "n": 12}
    assert metric_notes(spec, report) == {
        "precision": "positive class: 'yes'", "recall": "positive class: 'yes'",
        "f1": "positive class: 'yes'"}
    assert list(report) == ["accuracy", "precision", "recall", "f1", "n"]
