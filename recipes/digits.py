"""Digits: multiclass classification with sparse integer labels.

Handwritten digits (8×8 pixels of 0–16, scikit-learn's bundled copy of the
UCI set) into ten classes. The model rescales pixels to [0, 1] itself, so the
saved model takes raw rows. The labels are plain integers, so the spec picks a softmax
output with sparse categorical cross-entropy — the same result as one-hot
labels with categorical cross-entropy, without building the one-hot matrix.
An MLP with dropout and L2 trains with early stopping on the validation
split; the test split is used once, for the final report.
"""

import dataclasses


@dataclasses.dataclass
class Config:
    epochs: int = 200  # upper bound; early stopping usually ends sooner
    batch_size: int = 32  # examples per step
    units: tuple[int, ...] = (256, 128)  # width of each hidden layer
    dropout: float = 0.2  # dropout rate after each hidden layer
    l2: float = 1e-4  # L2 weight penalty
    learning_rate: float = 1e-3  # Adam's step size
    patience: int = 15  # epochs without validation improvement before stopping
    test_size: float = 0.2  # fraction of rows held out for the final test
    val_size: float = 0.2  # fraction of rows for validation (early stopping)
    seed: int = 0  # seeds the split, the weights and the shuffles
    smoke: bool = False  # tiny data and 2 epochs: checks the recipe runs, in seconds


def data(config):
    """Loads the digits and splits them, stratified by class (raw pixel values)."""
    from sklearn.datasets import load_digits

    import kerakit as kk
    from kerakit.recipes import split_data

    digits = load_digits()
    x = digits.data.astype("float32")
    y = digits.target
    splits = split_data(x, y, test_size=config.test_size, val_size=config.val_size,
                        seed=config.seed, limit=300 if config.smoke else None)
    spec = kk.ProblemSpec(task="multiclass", num_classes=10, label_format="sparse",
                          class_names=[str(d) for d in range(10)])
    return {**splits, "spec": spec, "feature_names": [f"pixel_{i}" for i in range(64)],
            "class_names": list(spec.class_names)}


def run(config, data, run):
    """Builds the model from the spec, trains with early stopping, reports on the test split."""
    import keras

    import kerakit as kk

    spec = data["spec"]
    # Scaling inside the model: the saved model predicts from raw pixel rows.
    inputs = keras.Input(shape=(data["x_train"].shape[1],), name="features")
    model = kk.build_model(spec, inputs=inputs, preprocessor=keras.layers.Rescaling(1 / 16),
                           units=config.units, dropout=config.dropout, l2=config.l2,
                           learning_rate=config.learning_rate, seed=config.seed)
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
