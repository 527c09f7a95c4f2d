"""Digits CNN: the 8×8 digits as images, through the `cnn` body.

The same handwritten digits and the same splits as the `digits` recipe, but
each row is reshaped to an 8×8 image and the body is convolutional: blocks of
two 3×3 convolutions with batch norm, max pooling and dropout, then global
average pooling. The model rescales pixels (0–16) itself, so the saved model
takes raw 8×8 images. Run both recipes with the same `--seed` to compare them
on identical splits; the run directory also holds a grid of the misclassified
test digits.
"""

import dataclasses


@dataclasses.dataclass
class Config:
    epochs: int = 200  # upper bound; early stopping usually ends sooner
    batch_size: int = 32  # examples per step
    filters: tuple[int, ...] = (32, 64)  # convolution filters of each block
    units: int = 128  # width of the Dense layer after pooling (0 for none)
    dropout: float = 0.25  # dropout rate after each block
    rotation: float = 0.0  # random rotation in training, as a fraction of a full turn
    zoom: float = 0.0  # random zoom in training, as a fraction
    learning_rate: float = 1e-3  # Adam's step size
    patience: int = 15  # epochs without validation improvement before stopping
    test_size: float = 0.2  # fraction of rows held out for the final test
    val_size: float = 0.2  # fraction of rows for validation (early stopping)
    seed: int = 0  # seeds the split, the weights and the shuffles
    smoke: bool = False  # tiny data and 2 epochs: checks the recipe runs, in seconds


def data(config):
    """Loads the digits as 8×8 images and splits them exactly as the `digits` recipe does."""
    from sklearn.datasets import load_digits

    import kerakit as kk
    from kerakit.recipes import split_data

    digits = load_digits()
    x = digits.data.astype("float32")
    splits = split_data(x, digits.target, test_size=config.test_size, val_size=config.val_size,
                        seed=config.seed, limit=300 if config.smoke else None)
    for key in ("x_train", "x_val", "x_test"):
        splits[key] = splits[key].reshape(-1, 8, 8)
    spec = kk.ProblemSpec(task="multiclass", num_classes=10, label_format="sparse",
                          class_names=[str(d) for d in range(10)])
    return {**splits, "spec": spec, "class_names": list(spec.class_names)}


def run(config, data, run):
    """Builds the CNN, trains with early stopping, reports on the test split."""
    import kerakit as kk
    from kerakit.data.images import misclassified_grid

    spec = data["spec"]
    model = kk.build_model(spec, input_shape=(8, 8), body="cnn", max_value=16,
                           filters=(8,) if config.smoke else config.filters,
                           units=16 if config.smoke else config.units, dropout=config.dropout,
                           rotation=config.rotation, zoom=config.zoom,
                           learning_rate=config.learning_rate, seed=config.seed)
    history = kk.fit(model, data["x_train"], data["y_train"],
                     validation_data=(data["x_val"], data["y_val"]),
                     epochs=2 if config.smoke else config.epochs, batch_size=config.batch_size,
                     callbacks=kk.default_callbacks(spec, patience=config.patience),
                     seed=config.seed)
    run.save_history(history)
    run.save_model(model)
    predicted = kk.predict(model, data["x_test"]).argmax(axis=1)
    run.save_figure("misclassified", misclassified_grid(
        data["x_test"], data["y_test"], predicted, class_names=data["class_names"]))
    return kk.evaluate(model, data["x_test"], data["y_test"])


if __name__ == "__main__":
    from kerakit.recipes import main

    main()
