"""Diabetes: regression with a linear output and a standardized target.

Ten baseline measurements (age, sex, BMI, blood pressure and six blood serum
values; scikit-learn's bundled set, unscaled) predict a measure of disease
progression one year later. The spec picks a linear output with mean squared
error and reports MAE, RMSE and R². Features are standardized by a
Normalization layer inside the model; the target is standardized for
training and the saved model maps predictions back to the original units,
so it takes raw rows and answers in the target's own scale. A linear
regression on the same split is printed as a baseline: with 442 patients a
neural network should match it, not expect to beat it by much.
"""

import dataclasses


@dataclasses.dataclass
class Config:
    epochs: int = 500  # upper bound; early stopping usually ends sooner
    batch_size: int = 32  # examples per step
    units: tuple[int, ...] = (32, 16)  # width of each hidden layer
    dropout: float = 0.1  # dropout rate after each hidden layer
    l2: float = 1e-3  # L2 weight penalty
    learning_rate: float = 1e-3  # Adam's step size
    patience: int = 30  # epochs without validation improvement before stopping
    test_size: float = 0.2  # fraction of rows held out for the final test
    val_size: float = 0.2  # fraction of rows for validation (early stopping)
    seed: int = 0  # seeds the split, the weights and the shuffles
    smoke: bool = False  # 2 epochs: checks the recipe runs, in seconds


def data(config):
    """Loads the unscaled data set and splits it (not stratified: the target is continuous)."""
    from sklearn.datasets import load_diabetes

    import kerakit as kk
    from kerakit.recipes import split_data

    bundle = load_diabetes(scaled=False)
    splits = split_data(bundle.data.astype("float32"), bundle.target.astype("float32"),
                        test_size=config.test_size, val_size=config.val_size, seed=config.seed,
                        stratify=False)
    return {**splits, "spec": kk.ProblemSpec(task="regression"),
            "feature_names": list(bundle.feature_names), "target": "progression"}


def run(config, data, run):
    """Trains on a standardized target, wraps the model to answer in original units, reports."""
    import keras
    import numpy as np
    from sklearn.linear_model import LinearRegression

    import kerakit as kk

    spec = data["spec"]
    mean, std = float(np.mean(data["y_train"])), float(np.std(data["y_train"]))
    inputs = keras.Input(shape=(data["x_train"].shape[1],), name="features")
    normalize = keras.layers.Normalization(name="standardize")
    normalize.adapt(data["x_train"])
    model = kk.build_model(spec, inputs=inputs, preprocessor=normalize, units=config.units,
                           dropout=config.dropout, l2=config.l2,
                           learning_rate=config.learning_rate, seed=config.seed)
    history = kk.fit(model, data["x_train"], (data["y_train"] - mean) / std,
                     validation_data=(data["x_val"], (data["y_val"] - mean) / std),
                     epochs=2 if config.smoke else config.epochs, batch_size=config.batch_size,
                     callbacks=kk.default_callbacks(spec, patience=config.patience),
                     seed=config.seed)
    # The saved model undoes the target scaling: prediction * std + mean.
    outputs = keras.layers.Rescaling(scale=std, offset=mean, name="target_units")(model.outputs[0])
    final = keras.Model(model.inputs, outputs, name="diabetes_regressor")
    run.save_history(history)
    run.save_model(final)

    baseline = LinearRegression().fit(data["x_train"], data["y_train"])
    baseline_r2 = float(baseline.score(data["x_test"], data["y_test"]))
    run.save_json("baseline", {"model": "sklearn LinearRegression", "test_r2": baseline_r2})
    run.print(f"baseline (linear regression, same split): test R² {baseline_r2:.4f}")
    return kk.evaluate(final, data["x_test"], data["y_test"], spec=spec)


if __name__ == "__main__":
    from kerakit.recipes import main

    main()
