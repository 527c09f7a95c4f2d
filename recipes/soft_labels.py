"""Soft labels: multiclass classification on probability targets with KL divergence.

When the target is a probability distribution rather than one class — an
annotators' vote split, a teacher model's output, or a posterior — the loss is
the KL divergence between the target rows and the softmax output. This recipe
generates a three-class Gaussian mixture in which every point's label is its
exact posterior probability of each class, so the best possible model is
known: the report compares the network's mean KL divergence to the true
posteriors, and its accuracy against the most probable class.
"""

import dataclasses


@dataclasses.dataclass
class Config:
    samples: int = 3000  # generated points
    features: int = 4  # dimensions of each point
    spread: float = 2.5  # standard deviation of each class's cloud (more = more overlap)
    epochs: int = 100  # upper bound; early stopping usually ends sooner
    batch_size: int = 64  # examples per step
    units: tuple[int, ...] = (64, 32)  # width of each hidden layer
    dropout: float = 0.1  # dropout rate after each hidden layer
    learning_rate: float = 1e-3  # Adam's step size
    patience: int = 15  # epochs without validation improvement before stopping
    seed: int = 0  # seeds the data, the split, the weights and the shuffles
    smoke: bool = False  # 300 points and 2 epochs: checks the recipe runs, in seconds


def _posteriors(x, centers, spread):
    """Exact class posteriors of an equal-weight Gaussian mixture with shared spherical spread."""
    import numpy as np

    logits = -((x[:, None, :] - centers[None]) ** 2).sum(axis=2) / (2 * spread**2)
    logits -= logits.max(axis=1, keepdims=True)
    weights = np.exp(logits)
    return weights / weights.sum(axis=1, keepdims=True)


def data(config):
    """Draws the mixture and labels every point with its exact class posterior."""
    import numpy as np

    import kerakit as kk
    from kerakit.recipes import split_data

    rng = np.random.default_rng(config.seed)
    samples = 300 if config.smoke else config.samples
    centers = rng.normal(0.0, 2.0, size=(3, config.features))
    classes = rng.integers(0, 3, size=samples)
    x = (centers[classes] + rng.normal(0.0, config.spread, size=(samples, config.features)))
    y = _posteriors(x, centers, config.spread).astype("float32")
    splits = split_data(x.astype("float32"), y, seed=config.seed)
    spec = kk.ProblemSpec(task="multiclass", num_classes=3, label_format="soft",
                          class_names=["a", "b", "c"])
    return {**splits, "spec": spec, "feature_names": [f"x{i}" for i in range(config.features)],
            "class_names": list(spec.class_names)}


def run(config, data, run):
    """Trains with KL divergence and reports how close the predicted distributions are."""
    import keras
    import numpy as np

    import kerakit as kk

    spec = data["spec"]
    inputs = keras.Input(shape=(data["x_train"].shape[1],), name="features")
    normalize = keras.layers.Normalization(name="standardize")
    normalize.adapt(data["x_train"])
    model = kk.build_model(spec, inputs=inputs, preprocessor=normalize, units=config.units,
                           dropout=config.dropout, learning_rate=config.learning_rate,
                           seed=config.seed)
    run.print(f"loss chosen for probability rows: {model.loss}")
    history = kk.fit(model, data["x_train"], data["y_train"],
                     validation_data=(data["x_val"], data["y_val"]),
                     epochs=2 if config.smoke else config.epochs, batch_size=config.batch_size,
                     callbacks=kk.default_callbacks(spec, patience=config.patience),
                     seed=config.seed)
    run.save_history(history)
    run.save_model(model)
    report = kk.evaluate(model, data["x_test"], data["y_test"])
    target = np.clip(data["y_test"], 1e-7, 1)
    predicted = np.clip(kk.predict(model, data["x_test"]), 1e-7, 1)
    report["kl_divergence"] = float(np.mean(np.sum(target * np.log(target / predicted), axis=1)))
    uniform = np.full_like(target, 1 / target.shape[1])
    baseline = float(np.mean(np.sum(target * np.log(target / uniform), axis=1)))
    run.print(f"mean KL to the true posteriors: {report['kl_divergence']:.4f} "
              f"(a uniform guess: {baseline:.4f}; a perfect model: 0)")
    return report


if __name__ == "__main__":
    from kerakit.recipes import main

    main()
