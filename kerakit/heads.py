"""The one table: problem spec → output activation, loss, metrics and monitor.

Every decision kerakit makes about a model's head lives here, so it can be
read in one place (see DESIGN.md, "Problem spec → compile choices"). This
module imports Keras only inside `make_metrics`, so specs stay cheap to build.
"""

from types import MappingProxyType

# Each row: activation, loss, robust loss (regression only), metrics.
# A metric is (logged name, keras.metrics class name, constructor options);
# options that depend on the spec are filled in by `make_metrics`.
HEADS = MappingProxyType(
    {
        "binary": {
            "activation": "sigmoid",
            "loss": "binary_crossentropy",
            "metrics": (
                ("accuracy", "BinaryAccuracy", {}),
                ("auc", "AUC", {}),
                ("precision", "Precision", {}),
                ("recall", "Recall", {}),
            ),
        },
        "multilabel": {
            "activation": "sigmoid",
            "loss": "binary_crossentropy",
            "metrics": (
                ("binary_accuracy", "BinaryAccuracy", {}),
                ("auc", "AUC", {"multi_label": True, "num_labels": "num_outputs"}),
            ),
        },
        "multiclass/sparse": {
            "activation": "softmax",
            "loss": "sparse_categorical_crossentropy",
            "metrics": (
                ("accuracy", "SparseCategoricalAccuracy", {}),
                ("top_k_accuracy", "SparseTopKCategoricalAccuracy", {"k": "top_k"}),
            ),
        },
        "multiclass/onehot": {
            "activation": "softmax",
            "loss": "categorical_crossentropy",
            "metrics": (
                ("accuracy", "CategoricalAccuracy", {}),
                ("top_k_accuracy", "TopKCategoricalAccuracy", {"k": "top_k"}),
            ),
        },
        "multiclass/soft": {
            "activation": "softmax",
            "loss": "kl_divergence",
            "metrics": (
                ("accuracy", "CategoricalAccuracy", {}),
                ("cosine_similarity", "CosineSimilarity", {}),
            ),
        },
        "regression": {
            "activation": "linear",
            "loss": "mean_squared_error",
            # The seed lesson: squared error grows fastest with outliers.
            "robust_loss": "huber",
            "metrics": (
                ("mae", "MeanAbsoluteError", {}),
                ("rmse", "RootMeanSquaredError", {}),
            ),
        },
    }
)

# Every head watches the validation loss: it exists for every task and is
# the quantity training minimizes.
MONITOR = "val_loss"

# Explicit losses that cannot work with a head, and what to use instead.
# Keys are head rows; values map a loss name to the reason it is refused.
INCOMPATIBLE_LOSSES = MappingProxyType(
    {
        "multiclass/sparse": {
            "binary_crossentropy": "a softmax output over classes needs a categorical loss",
            "categorical_crossentropy": "integer labels need 'sparse_categorical_crossentropy'; "
            "categorical_crossentropy expects one-hot rows",
        },
        "multiclass/onehot": {
            "binary_crossentropy": "a softmax output over classes needs a categorical loss",
            "sparse_categorical_crossentropy": "one-hot rows need 'categorical_crossentropy'; "
            "the sparse loss expects integer labels",
        },
        "multiclass/soft": {
            "binary_crossentropy": "a softmax output over classes needs a categorical loss",
            "sparse_categorical_crossentropy": "probability rows need 'kl_divergence' or "
            "'categorical_crossentropy'; the sparse loss expects integer labels",
        },
        "binary": {
            "categorical_crossentropy": "a single sigmoid output needs 'binary_crossentropy'",
            "sparse_categorical_crossentropy": "a single sigmoid output needs 'binary_crossentropy'",
        },
        "multilabel": {
            "categorical_crossentropy": "independent sigmoid outputs need 'binary_crossentropy'",
            "sparse_categorical_crossentropy": "independent sigmoid outputs need "
            "'binary_crossentropy'",
        },
        "regression": {
            "binary_crossentropy": "a linear output with real-valued targets needs a regression "
            "loss such as 'mse', 'mae' or 'huber'",
            "categorical_crossentropy": "a linear output with real-valued targets needs a "
            "regression loss such as 'mse', 'mae' or 'huber'",
            "sparse_categorical_crossentropy": "a linear output with real-valued targets needs "
            "a regression loss such as 'mse', 'mae' or 'huber'",
        },
    }
)

# Short names Keras accepts for the losses above.
LOSS_ALIASES = MappingProxyType(
    {
        "bce": "binary_crossentropy",
        "cce": "categorical_crossentropy",
        "scce": "sparse_categorical_crossentropy",
        "mse": "mean_squared_error",
        "mae": "mean_absolute_error",
        "kld": "kl_divergence",
        "kullback_leibler_divergence": "kl_divergence",
    }
)


def row_key(task, label_format=None):
    """Returns the `HEADS` key of a task (and, for multiclass, its label format)."""
    return f"{task}/{label_format}" if task == "multiclass" else task


def make_metrics(spec):
    """Returns fresh Keras metric objects for `spec`, named as in `spec.metrics`.

    Metric objects hold state, so each model needs its own; this builds them
    from the table.

    Example:

    >>> from kerakit.spec import ProblemSpec
    >>> [m.name for m in make_metrics(ProblemSpec(task="binary"))]
    ['accuracy', 'auc', 'precision', 'recall']
    """
    import keras

    metrics = []
    for name, class_name, options in HEADS[spec.head]["metrics"]:
        resolved = {
            key: getattr(spec, value) if isinstance(value, str) else value
            for key, value in options.items()
        }
        metrics.append(getattr(keras.metrics, class_name)(name=name, **resolved))
    return metrics
