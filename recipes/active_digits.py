"""Active digits: uncertainty sampling against random labelling on handwritten digits.

Labels are expensive, so the model picks which digits a person should label
next. Starting from 20 random labels, each strategy asks for 10 more at a time
until 300 (least confidence, margin, entropy, BALD with Monte-Carlo dropout,
and a diverse batch mode), next to random sampling, over 3 seeds. Queries come
from the unlabelled pool only; the test split is used for the reported curve
alone. The recipe prints how many labels each strategy needed to reach 90 %
and 95 % test accuracy, says plainly where a strategy did not beat random,
and saves the curves.
"""

import dataclasses


@dataclasses.dataclass
class Config:
    initial: int = 20  # labels to start from, drawn at random (the same for every strategy)
    budget: int = 300  # labels to stop at
    step: int = 10  # labels queried per round (batch mode)
    seeds: int = 3  # repetitions, each with its own initial labels and weights
    strategies: tuple[str, ...] = ("least_confidence", "margin", "entropy", "bald", "diverse")  # compared with random
    targets: tuple[float, ...] = (0.9, 0.95)  # test accuracies whose label cost is reported
    units: tuple[int, ...] = (128, 64)  # width of each hidden layer
    dropout: float = 0.2  # dropout rate; also what BALD samples with
    epochs: int = 30  # epochs of the first training (an epoch is at least 10 batches)
    teach_epochs: int = 5  # epochs after each batch of new labels (warm start)
    passes: int = 20  # Monte-Carlo dropout passes for BALD
    seed: int = 0  # seeds the split; run k uses seed + k for labels and weights
    smoke: bool = False  # 180-row pool, the first 2 strategies, 3 rounds, 1 seed: checks the recipe runs


def data(config):
    """Digits scaled to [0, 1]; the training split is the unlabelled pool."""
    from sklearn.datasets import load_digits

    import kerakit as kk
    from kerakit.recipes import split_data

    digits = load_digits()
    x = (digits.data / 16.0).astype("float32")
    splits = split_data(x, digits.target, test_size=0.25, val_size=0.15, seed=config.seed,
                        limit=300 if config.smoke else None)
    spec = kk.ProblemSpec(task="multiclass", num_classes=10)
    return {**splits, "spec": spec, "class_names": [str(d) for d in range(10)]}


def run(config, data, run):
    """Replays active learning for each strategy and seed; reports labels needed per target."""
    import kerakit as kk

    strategies = list(config.strategies)
    initial, budget, step, seeds, epochs = config.initial, config.budget, config.step, config.seeds, config.epochs
    if config.smoke:
        strategies, initial, budget, step, seeds, epochs = strategies[:2], 10, 30, 10, 1, 5

    def progress(strategy, seed, labels, value):
        if labels == budget:
            run.print(f"  {strategy:<17} seed {seed}: validation accuracy {value:.3f} at {labels} labels")

    options = {"bald": {"passes": config.passes}} if "bald" in strategies else {}
    result = kk.simulate(
        data["spec"], data["x_train"], data["y_train"], data["x_val"], data["y_val"],
        x_test=data["x_test"], y_test=data["y_test"], strategies=strategies, initial=initial,
        budget=budget, step=step, seeds=[config.seed + k for k in range(seeds)],
        strategy_options=options, progress=progress, units=config.units, dropout=config.dropout,
        epochs=epochs, teach_epochs=config.teach_epochs,
    )
    run.print(f"\nLabels needed, test accuracy (mean of {seeds} seed(s); {step} labels per round):")
    for line in result.summary(targets=config.targets, split="test"):
        run.print("  " + line)
    run.save_figure("active_learning_curves", result.plot(split="test", targets=config.targets))
    run.save_json("active_learning", {
        **result.to_dict(),
        "labels_to_reach": {str(t): result.labels_to_reach(t, split="test") for t in config.targets},
        "comparison": result.compare(targets=config.targets, split="test"),
    })
    metrics = {}
    for name in result.strategies:
        metrics[f"{name}_accuracy"] = float(result.mean_curve(name, "test")[-1])
        for target in config.targets:
            needed = result.labels_to_reach(target, split="test")[name]["mean"]
            if needed is not None:  # not reached within the budget: printed above, left out here
                metrics[f"{name}_labels_to_{target * 100:g}pct"] = needed
    return metrics


if __name__ == "__main__":
    from kerakit.recipes import main

    main()
