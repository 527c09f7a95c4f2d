"""Active sine: a regression model asks for the points it is least sure about.

The source notes' regression example: 200 noisy samples of sin(x) on [0, 20]
are the unlabelled pool. The model starts from 5 random labels and asks for
one more at a time — the point where its predictive standard deviation is
highest — 20 times. The spread comes from a small deep ensemble (or from
Monte-Carlo dropout) of Gaussian radial-basis-function networks, a custom body
registered with `kerakit.register_body`. The recipe saves the fit with its
±2 std band before and after the queries, and labels 20 random points from
the same start to compare; it says so when the queries do not beat random.
"""

import dataclasses
from typing import Literal

DOMAIN = (0.0, 20.0)


@dataclasses.dataclass
class Config:
    points: int = 200  # noisy samples of sin(x) on [0, 20]: the unlabelled pool
    noise: float = 0.2  # standard deviation of the noise on y
    initial: int = 5  # random labels to start from
    queries: int = 20  # points queried, one at a time
    uncertainty: Literal["ensemble", "dropout"] = "ensemble"  # deep ensemble or Monte-Carlo dropout
    members: int = 3  # models in the ensemble
    dropout: float = 0.2  # dropout rate on the basis functions (uncertainty=dropout)
    passes: int = 20  # Monte-Carlo dropout passes (uncertainty=dropout)
    centers: int = 64  # radial basis functions
    length_scale: float = 1.0  # width of each basis function, in units of x
    learning_rate: float = 0.05  # AdamW's step size
    weight_decay: float = 0.3  # AdamW's weight decay: keeps the fit near 0 where there are no labels
    epochs: int = 60  # epochs of the first training (an epoch is at least 10 batches)
    teach_epochs: int = 10  # epochs after each new label (warm start)
    compare_random: bool = True  # also label random points from the same start and compare
    seed: int = 0  # seeds the data, the initial labels and the weights
    smoke: bool = False  # 40 points, 2 queries, short training: checks the recipe runs


def data(config):
    """Noisy pool and validation samples; the test split is the noise-free curve on a grid."""
    import numpy as np

    import kerakit as kk

    rng = np.random.default_rng(config.seed)

    def noisy(count):
        x = rng.uniform(*DOMAIN, count)
        return x.reshape(-1, 1).astype("float32"), (np.sin(x) + rng.normal(0, config.noise, count)).astype("float32")

    x_train, y_train = noisy(40 if config.smoke else config.points)
    x_val, y_val = noisy(100)
    grid = np.linspace(*DOMAIN, 400)
    return {"x_train": x_train, "y_train": y_train, "x_val": x_val, "y_val": y_val,
            "x_test": grid.reshape(-1, 1).astype("float32"), "y_test": np.sin(grid).astype("float32"),
            "spec": kk.ProblemSpec(task="regression"), "feature_names": ["x"], "target": "sin(x)"}


def rbf(spec, hp):
    """Gaussian bumps exp(-(x - c)² / 2w²) at random centres c over the domain, from stock layers."""
    import keras

    count = hp.Int("centers", 4, 1024, default=64)
    width = hp.Float("length_scale", 0.05, 10.0, default=1.0)
    dropout = hp.Float("dropout", 0.0, 0.9, default=0.0)
    low, high = DOMAIN[0] - width, DOMAIN[1] + width

    def body(inputs):
        z = keras.layers.Dense(  # z = (x - c) / w; fixed, so only the output layer learns
            count, trainable=False, name="rbf_offsets",
            kernel_initializer=keras.initializers.Constant(1.0 / width),
            bias_initializer=keras.initializers.RandomUniform(-high / width, -low / width))(inputs)
        squared = keras.layers.Rescaling(-0.5, name="rbf_scale")(keras.layers.Multiply(name="rbf_square")([z, z]))
        features = keras.layers.Activation("exponential", name="rbf")(squared)
        return keras.layers.Dropout(dropout, name="rbf_dropout")(features) if dropout else features

    return body


def run(config, data, run):
    """Queries by predictive std (and at random), saves the fits before and after, compares."""
    import keras
    import numpy as np

    import kerakit as kk

    kk.register_body("rbf", rbf)
    spec, x_pool, y_pool = data["spec"], data["x_train"], data["y_train"]
    queries = 2 if config.smoke else config.queries
    options = dict(
        body="rbf", centers=config.centers, length_scale=config.length_scale, seed=config.seed,
        optimizer=keras.optimizers.AdamW(learning_rate=config.learning_rate, weight_decay=config.weight_decay),
        epochs=5 if config.smoke else config.epochs, teach_epochs=2 if config.smoke else config.teach_epochs,
    )
    if config.uncertainty == "ensemble":
        options["ensemble_size"] = 2 if config.smoke else config.members
    else:
        options["dropout"] = config.dropout
    start = np.random.default_rng(config.seed).choice(len(x_pool), config.initial, replace=False)
    grid = data["x_test"]

    def label(strategy):
        passes = {"passes": config.passes} if strategy == "std" and config.uncertainty == "dropout" else {}
        learner = kk.ActiveLearner(spec, strategy, x_labeled=x_pool[start], y_labeled=y_pool[start],
                                   strategy_options=passes, **options)
        before = (*learner.predict(grid, return_std=True), learner.evaluate(grid, data["y_test"]))
        unlabeled = np.setdiff1d(np.arange(len(x_pool)), start)
        picked = []
        for _ in range(queries):
            indices, scores = learner.query(x_pool[unlabeled], n=1)
            row = unlabeled[indices[0]]
            learner.teach(x_pool[[row]], y_pool[[row]])
            unlabeled = unlabeled[unlabeled != row]
            picked.append(row)
        after = (*learner.predict(grid, return_std=True), learner.evaluate(grid, data["y_test"]))
        return learner, before, after, np.array(picked)

    source = "a deep ensemble" if config.uncertainty == "ensemble" else "Monte-Carlo dropout"
    learner, before, after, picked = label("std")
    panels = [(f"{config.initial} random labels", before, []),
              (f"+{queries} queried by predictive std ({source})", after, picked)]
    lines = [f"predictive std: test RMSE against sin(x) {after[2]['rmse']:.3f} with "
             f"{config.initial + queries} labels ({before[2]['rmse']:.3f} with the first {config.initial})"]
    metrics = {**after[2], "rmse_before_queries": before[2]["rmse"]}
    if config.compare_random:
        _, _, random_after, random_picked = label("random")
        panels.append((f"+{queries} random labels (same start)", random_after, random_picked))
        better = after[2]["rmse"] < random_after[2]["rmse"]
        lines.append(f"random:         test RMSE against sin(x) {random_after[2]['rmse']:.3f} with "
                     f"{config.initial + queries} labels -> predictive std "
                     f"{'beats' if better else 'does not beat'} random here")
        metrics["random_rmse"] = random_after[2]["rmse"]
    for line in lines:
        run.print(line)
    run.save_figure("fit_before_after", _figure(data, start, panels))
    run.save_model(learner.export_model())
    run.save_json("active_sine", {"initial_x": x_pool[start, 0], "queried_x": x_pool[picked, 0],
                                  "uncertainty": config.uncertainty, "summary": lines})
    return metrics


def _figure(data, start, panels):
    from matplotlib.figure import Figure

    x_pool, y_pool, grid = data["x_train"][:, 0], data["y_train"], data["x_test"][:, 0]
    fig = Figure(figsize=(9, 3 * len(panels)), layout="constrained")
    axes = fig.subplots(len(panels), 1, sharex=True, sharey=True)
    for ax, (title, (mean, std, report), picked) in zip(axes, panels, strict=True):
        mean, std = mean[:, 0], std[:, 0]
        ax.scatter(x_pool, y_pool, s=8, color="0.75", label="pool (noisy, unlabelled)")
        ax.plot(grid, data["y_test"], color="black", linewidth=1, linestyle="--", label="sin(x)")
        ax.plot(grid, mean, color="C0", label="prediction")
        ax.fill_between(grid, mean - 2 * std, mean + 2 * std, color="C0", alpha=0.2, label="±2 std")
        ax.scatter(x_pool[start], y_pool[start], marker="s", color="black", zorder=3, label="initial labels")
        if len(picked):
            ax.scatter(x_pool[picked], y_pool[picked], color="C3", zorder=3, label="new labels")
        ax.set_title(f"{title}: RMSE against sin(x) {report['rmse']:.3f}")
        ax.set_ylim(-2.5, 2.5)
    axes[0].legend(loc="upper right", fontsize="small", ncols=3)
    axes[-1].set_xlabel("x")
    return fig


if __name__ == "__main__":
    from kerakit.recipes import main

    main()
