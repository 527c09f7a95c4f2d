"""Wine: multiclass classification with one-hot labels.

Thirteen chemical measurements (scikit-learn's bundled UCI wine set) tell
three cultivars apart. The labels are written as one-hot rows here, so the
spec picks categorical cross-entropy; with integer labels it would pick the
sparse loss instead — the same result, shown by the digits recipe. The data
set is small (178 wines), so the model is small, regularized, and stopped
early on the validation split.
"""

import dataclasses


@dataclasses.dataclass
class Config:
    epochs: int = 300  # upper bound; early stopping usually ends sooner
    batch_size: int = 16  # examples per step
    units: tuple[int, ...] = (32,)  # width of each hidden layer
    dropout: float = 0.2  # dropout rate after each hidden layer
    l2: float = 1e-3  # L2 weight penalty
    learning_rate: float = 3e-3  # Adam's step size
    patience: int = 25  # epochs without validation improvement before stopping
    test_size: float = 0.2  # fraction of rows held out for the final test
    val_size: float = 0.2  # fraction of rows for validation (early stopping)
    seed: int = 0  # seeds the split, the weights and the shuffles
    smoke: bool = False  # 2 epochs: checks the recipe runs, in seconds


def data(config):
    """Loads the wines, one-hot encodes the cultivar and splits, stratified by class."""
    import numpy as np
    from sklearn.datasets import load_wine

    import kerakit as kk
    from kerakit.recipes import split_data

    bundle = load_wine()
    onehot = np.eye(3, dtype="float32")[bundle.target]
    splits = split_data(bundle.data.astype("float32"), onehot, test_size=config.test_size,
                        val_size=config.val_size, seed=config.seed)
    spec = kk.ProblemSpec(task="multiclass", num_classes=3, label_format="onehot",
                          class_names=list(bundle.target_names))
    return {**splits, "spec": spec, "feature_names": list(bundle.feature_names),
            "class_names": list(bundle.target_names)}


def run(config, data, run):
    """Standardizes inside the model, trains with early stopping, reports on the test split."""
    import keras

    import kerakit as kk

    spec = data["spec"]
    inputs = keras.Input(shape=(data["x_train"].shape[1],), name="features")
    normalize = keras.layers.Normalization(name="standardize")
    normalize.adapt(data["x_train"])
    model = kk.build_model(spec, inputs=inputs, preprocessor=normalize, units=config.units,
                           dropout=config.dropout, l2=config.l2,
                           learning_rate=config.learning_rate, seed=config.seed)
    run.print(f"loss chosen for one-hot labels: {model.loss}")
    history = kk.fit(model, data["x_train"], data["y_train"],
                     validation_data=(data["x_val"], data["y_val"]),
                     epochs=2 if config.smoke else config.epochs, batch_size=config.batch_size,
                     callbacks=kk.default_callbacks(spec, patience=config.patience),
                     seed=config.seed)
    run.save_history(history)
    run.save_model(model)
    return kk.evaluate(model, data["x_test"], data["y_test"])


if __name__ == "__main__":
    from kerakit.recipes import main

    main()
