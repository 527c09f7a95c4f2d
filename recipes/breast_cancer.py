"""Breast cancer: binary classification with a sigmoid output.

Thirty measurements of cell nuclei (scikit-learn's bundled Wisconsin
diagnostic set) decide malignant (0) or benign (1). Two classes give a single
sigmoid output trained with binary cross-entropy; the features span several
orders of magnitude, so a Normalization layer adapted on the training split
standardizes them inside the model (the saved model takes raw rows). Early
stopping watches the validation loss; the report adds precision, recall, F1
and ROC-AUC on the untouched test split.
"""

import dataclasses


@dataclasses.dataclass
class Config:
    epochs: int = 200  # upper bound; early stopping usually ends sooner
    batch_size: int = 32  # examples per step
    units: tuple[int, ...] = (32, 16)  # width of each hidden layer
    dropout: float = 0.2  # dropout rate after each hidden layer
    l2: float = 1e-3  # L2 weight penalty
    learning_rate: float = 1e-3  # Adam's step size
    patience: int = 20  # epochs without validation improvement before stopping
    threshold: float = 0.5  # probability above which a tumour is called benign
    test_size: float = 0.2  # fraction of rows held out for the final test
    val_size: float = 0.2  # fraction of rows for validation (early stopping)
    seed: int = 0  # seeds the split, the weights and the shuffles
    smoke: bool = False  # tiny data and 2 epochs: checks the recipe runs, in seconds


def data(config):
    """Loads the data set and splits it, stratified by class."""
    from sklearn.datasets import load_breast_cancer

    import kerakit as kk
    from kerakit.recipes import split_data

    bundle = load_breast_cancer()
    splits = split_data(bundle.data.astype("float32"), bundle.target, test_size=config.test_size,
                        val_size=config.val_size, seed=config.seed,
                        limit=150 if config.smoke else None)
    spec = kk.ProblemSpec(task="binary", class_names=list(bundle.target_names))
    return {**splits, "spec": spec, "feature_names": list(bundle.feature_names),
            "class_names": list(bundle.target_names)}


def run(config, data, run):
    """Standardizes inside the model, trains with early stopping, reports on the test split."""
    import keras

    import kerakit as kk

    spec = data["spec"]
    inputs = keras.Input(shape=(data["x_train"].shape[1],), name="features")
    normalize = keras.layers.Normalization(name="standardize")
    normalize.adapt(data["x_train"])  # statistics of the training split only
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
