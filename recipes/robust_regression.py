"""Robust regression: MSE against Huber and MAE when the targets have outliers.

The seed lesson: squared error grows much faster than absolute error when a
few targets are wildly wrong, so a model trained with MSE bends towards the
outliers. This recipe generates a regression problem, corrupts a fraction of
the training and validation targets with large one-sided errors (say, data
entry mistakes), and trains three identical models on the same split with the
same seed — loss MSE, Huber (`ProblemSpec(robust=True)`) and MAE — then
scores them on a clean test split. It also shows the lesson directly: the
same predictions, scored against corrupted and clean targets, inflate RMSE
far more than MAE. The Huber model is the one saved.
"""

import dataclasses


@dataclasses.dataclass
class Config:
    samples: int = 1500  # generated points
    features: int = 5  # input dimensions
    noise: float = 1.0  # standard deviation of the ordinary target noise
    outlier_fraction: float = 0.1  # share of training/validation targets corrupted
    outlier_scale: float = 30.0  # size of a corruption, in noise units (one-sided)
    epochs: int = 200  # upper bound; early stopping usually ends sooner
    batch_size: int = 32  # examples per step
    units: tuple[int, ...] = (32, 16)  # width of each hidden layer
    learning_rate: float = 3e-3  # Adam's step size
    patience: int = 15  # epochs without validation improvement before stopping
    seed: int = 0  # seeds the data, the split, the weights and the shuffles
    smoke: bool = False  # 300 points and 2 epochs: checks the recipe runs, in seconds


# loss name in the report → what build_model gets; the spec's robust flag picks Huber.
LOSSES = {"mse": dict(robust=False, loss="auto"), "huber": dict(robust=True, loss="auto"),
          "mae": dict(robust=False, loss="mean_absolute_error")}


def data(config):
    """Generates a smooth target, splits, then corrupts training and validation targets only."""
    import numpy as np

    import kerakit as kk
    from kerakit.recipes import split_data

    rng = np.random.default_rng(config.seed)
    samples = 300 if config.smoke else config.samples
    x = rng.normal(size=(samples, config.features)).astype("float32")
    weights = rng.normal(size=config.features)
    y = x @ weights + np.sin(2 * x[:, 0]) + rng.normal(0, config.noise, samples)
    splits = split_data(x, y.astype("float32"), seed=config.seed, stratify=False)
    for split in ("train", "val"):
        clean = splits[f"y_{split}"]
        hit = rng.random(len(clean)) < config.outlier_fraction
        corrupted = clean.copy()
        corrupted[hit] += config.outlier_scale * config.noise * rng.uniform(0.5, 1.5, hit.sum())
        splits[f"y_{split}_clean"], splits[f"y_{split}"] = clean, corrupted.astype("float32")
    return {**splits, "spec": kk.ProblemSpec(task="regression"),
            "feature_names": [f"x{i}" for i in range(config.features)], "target": "y"}


def run(config, data, run):
    """Trains one model per loss on the same split and seed; compares them on clean test targets."""
    import keras
    import numpy as np

    import kerakit as kk
    from kerakit.plots import metric_bars

    results, models = {}, {}
    for name, options in LOSSES.items():
        spec = kk.ProblemSpec(task="regression", robust=options["robust"])
        inputs = keras.Input(shape=(data["x_train"].shape[1],), name="features")
        normalize = keras.layers.Normalization(name="standardize")
        normalize.adapt(data["x_train"])
        model = kk.build_model(spec, inputs=inputs, preprocessor=normalize, units=config.units,
                               dropout=0.0, loss=options["loss"],
                               learning_rate=config.learning_rate, seed=config.seed)
        history = kk.fit(model, data["x_train"], data["y_train"],
                         validation_data=(data["x_val"], data["y_val"]),
                         epochs=2 if config.smoke else config.epochs,
                         batch_size=config.batch_size,
                         callbacks=kk.default_callbacks(spec, patience=config.patience),
                         seed=config.seed, verbose=0)
        results[name] = kk.evaluate(model, data["x_test"], data["y_test"], spec=spec)
        models[name] = (model, history)
        run.print(f"{name:>5} loss ({model.loss}): test RMSE {results[name]['rmse']:.3f}, "
                  f"MAE {results[name]['mae']:.3f}, R² {results[name]['r2']:.3f} "
                  f"({len(history.epoch)} epochs)")

    # The lesson itself: one set of predictions, scored against corrupted and clean targets.
    predictions = kk.predict(models["huber"][0], data["x_val"]).reshape(-1)
    dirty = data["y_val"] - predictions
    clean = data["y_val_clean"] - predictions
    rmse_inflation = float(np.sqrt(np.mean(dirty**2)) / np.sqrt(np.mean(clean**2)))
    mae_inflation = float(np.mean(np.abs(dirty)) / np.mean(np.abs(clean)))
    run.print(f"outliers in {config.outlier_fraction:.0%} of validation targets inflate RMSE "
              f"×{rmse_inflation:.1f} but MAE ×{mae_inflation:.1f}")

    model, history = models["huber"]
    run.save_model(model)
    run.save_history(history)
    run.save_figure("loss_comparison", metric_bars(
        results, ["rmse", "mae"], title="clean test split, same data and seed"))
    run.save_json("loss_comparison", results)
    report = dict(results["huber"])
    for name, metrics in results.items():
        report.update({f"{name}_rmse": metrics["rmse"], f"{name}_mae": metrics["mae"],
                       f"{name}_r2": metrics["r2"]})
    report.update(rmse_inflation=rmse_inflation, mae_inflation=mae_inflation)
    return report


if __name__ == "__main__":
    from kerakit.recipes import main

    main()
