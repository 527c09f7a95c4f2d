"""Multilabel: several independent yes/no labels per example.

Each example can carry any number of five topics at once (scikit-learn's
generator of multilabel data: documents as bags of words). Labels are
independent, so the spec picks one sigmoid per label with binary
cross-entropy — not a softmax, which would force the labels to compete. The
report gives subset accuracy (all five right), Hamming loss, micro and macro
F1, and the mean ROC-AUC over labels.
"""

import dataclasses


@dataclasses.dataclass
class Config:
    samples: int = 2000  # generated examples
    features: int = 40  # vocabulary size of the generated documents
    labels: int = 5  # number of independent labels
    epochs: int = 200  # upper bound; early stopping usually ends sooner
    batch_size: int = 32  # examples per step
    units: tuple[int, ...] = (64,)  # width of each hidden layer
    dropout: float = 0.2  # dropout rate after each hidden layer
    l2: float = 1e-4  # L2 weight penalty
    learning_rate: float = 1e-3  # Adam's step size
    patience: int = 15  # epochs without validation improvement before stopping
    threshold: float = 0.5  # probability above which a label is predicted
    seed: int = 0  # seeds the data, the split, the weights and the shuffles
    smoke: bool = False  # 300 examples and 2 epochs: checks the recipe runs, in seconds


def data(config):
    """Generates the multilabel data set and splits it (not stratified: label sets are many)."""
    from sklearn.datasets import make_multilabel_classification

    import kerakit as kk
    from kerakit.recipes import split_data

    x, y = make_multilabel_classification(
        n_samples=300 if config.smoke else config.samples, n_features=config.features,
        n_classes=config.labels, n_labels=2, allow_unlabeled=True, random_state=config.seed)
    splits = split_data(x.astype("float32"), y.astype("float32"), seed=config.seed, stratify=False)
    names = [f"topic_{j}" for j in range(config.labels)]
    spec = kk.ProblemSpec(task="multilabel", num_labels=config.labels, class_names=names)
    return {**splits, "spec": spec, "feature_names": [f"word_{i}" for i in range(config.features)],
            "class_names": names}


def run(config, data, run):
    """Trains one sigmoid per label and reports multilabel metrics on the test split."""
    import keras

    import kerakit as kk

    spec = data["spec"]
    inputs = keras.Input(shape=(data["x_train"].shape[1],), name="features")
    normalize = keras.layers.Normalization(name="standardize")
    normalize.adapt(data["x_train"])
    model = kk.build_model(spec, inputs=inputs, preprocessor=normalize, units=config.units,
                           dropout=config.dropout, l2=config.l2,
                           learning_rate=config.learning_rate, seed=config.seed)
    history = kk.fit(model, data["x_train"], data["y_train"],
                     validation_data=(data["x_val"], data["y_val"]),
                     epochs=2 if config.smoke else config.epochs, batch_size=config.batch_size,
                     callbacks=kk.default_callbacks(spec, patience=config.patience),
                     seed=config.seed)
    run.save_history(history)
    run.save_model(model)
    return kk.evaluate(model, data["x_test"], data["y_test"], threshold=config.threshold)


if __name__ == "__main__":
    from kerakit.recipes import main

    main()
