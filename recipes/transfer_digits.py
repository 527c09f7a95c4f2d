"""Transfer digits: fine-tune a digits-0–4 model on 5–9 with 50 labels, against training from scratch.

A model learns to read the digits 0–4 from every labelled example there is.
Then the digits 5–9 arrive with only 50 labels (10 per class). Fine-tuning
keeps the first model's body, puts a fresh 5-class head on it, trains the
head with the body frozen and then everything at a lower learning rate.
The baseline trains the same architecture from scratch on the same 50
labels for the same number of epochs. Both are scored on the same held-out
5–9 digits and compared with McNemar's exact test, so the report says
whether the transfer helped — or, honestly, that it did not.

Neither arm uses labels beyond the 50: there is no early stopping on the
target digits; their validation split is only drawn in the learning curves.
"""

import dataclasses


@dataclasses.dataclass
class Config:
    labels: int = 50  # labelled 5–9 examples both arms train on
    units: tuple[int, ...] = (128, 64)  # hidden layers of both models
    dropout: float = 0.2  # dropout rate after each hidden layer
    source_epochs: int = 200  # upper bound for the 0–4 model (early stopping)
    freeze: str = "body"  # phase 1 freezes the "body", or "none" to train every layer from the start
    head_epochs: int = 50  # phase 1: new head only, body frozen
    head_learning_rate: float = 1e-2  # phase 1 learning rate (a fresh head learns fast)
    unfreeze_epochs: int = 50  # phase 2: every layer trainable (0 skips it)
    unfreeze_learning_rate: float = 1e-3  # phase 2 learning rate, low to keep the body's features
    scratch_learning_rate: float = 1e-3  # the from-scratch baseline's learning rate
    seed: int = 0  # seeds the splits, the weights and the shuffles
    smoke: bool = False  # tiny data and 1–2 epochs: checks the recipe runs, in seconds


def data(config):
    """Digits 0–4 (source, all labels) and 5–9 (target: `labels` for training, the rest held out)."""
    import numpy as np
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    import kerakit as kk
    from kerakit.errors import ConfigError

    digits = load_digits()
    x, y = digits.data.astype("float32"), digits.target
    source, target = y < 5, y >= 5
    x_src, y_src = x[source], y[source]
    x_tgt, y_tgt = x[target], y[target] - 5  # classes 5..9 become outputs 0..4
    if config.smoke:
        x_src, _, y_src, _ = train_test_split(x_src, y_src, train_size=200,
                                              random_state=config.seed, stratify=y_src)
    if not 5 <= config.labels <= len(y_tgt) // 2:
        raise ConfigError(
            f"`labels` must be between 5 (one per class) and {len(y_tgt) // 2}. "
            f"Received: labels={config.labels}"
        )
    x_src_train, x_src_val, y_src_train, y_src_val = train_test_split(
        x_src, y_src, test_size=0.2, random_state=config.seed, stratify=y_src)
    x_train, x_rest, y_train, y_rest = train_test_split(
        x_tgt, y_tgt, train_size=config.labels, random_state=config.seed, stratify=y_tgt)
    x_val, x_test, y_val, y_test = train_test_split(
        x_rest, y_rest, train_size=150, random_state=config.seed, stratify=y_rest)
    spec = kk.ProblemSpec(task="multiclass", num_classes=5, class_names=[str(d) for d in range(5, 10)])
    source_spec = kk.ProblemSpec(task="multiclass", num_classes=5,
                                 class_names=[str(d) for d in range(5)])
    return {
        "x_train": x_train, "y_train": y_train, "x_val": x_val, "y_val": y_val,
        "x_test": x_test, "y_test": y_test, "spec": spec,
        "class_names": list(spec.class_names),
        "feature_names": [f"pixel_{i}" for i in range(64)],
        # Not "source": the runner records data["source"] as a description of where data came from.
        "source_digits": {"x_train": x_src_train, "y_train": y_src_train, "x_val": x_src_val,
                   "y_val": y_src_val, "spec": source_spec},
        "label_counts": np.bincount(y_train, minlength=5).tolist(),
    }


def _model(spec, config, learning_rate):
    import keras

    import kerakit as kk

    # Pixels are 0–16; scaling inside the model lets the saved model take raw rows.
    inputs = keras.Input(shape=(64,), name="features")
    return kk.build_model(spec, inputs=inputs, preprocessor=keras.layers.Rescaling(1 / 16),
                          units=config.units, dropout=config.dropout,
                          learning_rate=learning_rate, seed=config.seed)


def _curves(tuned, scratch, phase_one):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4), layout="constrained")
    ax = fig.add_subplot()
    for label, logs, style in (("fine-tuned", tuned, "-"), ("from scratch", scratch, "--")):
        values = logs.get("val_accuracy", [])
        ax.plot(range(1, len(values) + 1), values, style, label=label)
    ax.axvline(phase_one + 0.5, color="0.6", linewidth=0.8)
    ax.text(phase_one + 0.5, 0.02, " body unfrozen", color="0.4", fontsize=8,
            transform=ax.get_xaxis_transform())
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy on the 5–9 validation split")
    ax.set_title("Digits 5–9 from 50 labels: fine-tuned vs from scratch")
    ax.legend()
    return fig


def _report(model, x, y, spec):
    import keras

    from kerakit.training import metrics_report

    # An eager call: `model.predict` would trace one more TensorFlow function per model.
    return metrics_report(spec, y, keras.ops.convert_to_numpy(model(x, training=False)))


def run(config, data, run):
    """Trains the 0–4 model, fine-tunes it on 50 labels of 5–9, trains a scratch baseline, compares."""
    import kerakit as kk

    spec, source = data["spec"], data["source_digits"]
    head_epochs = 1 if config.smoke else config.head_epochs
    unfreeze_epochs = min(1, config.unfreeze_epochs) if config.smoke else config.unfreeze_epochs

    # 1. The source model: digits 0–4, every label, early stopping on its own validation split.
    source_model = _model(source["spec"], config, 1e-3)
    kk.fit(source_model, source["x_train"], source["y_train"],
           validation_data=(source["x_val"], source["y_val"]),
           epochs=2 if config.smoke else config.source_epochs,
           callbacks=kk.default_callbacks(source["spec"], patience=10), seed=config.seed)
    source_report = _report(source_model, source["x_val"], source["y_val"], source["spec"])
    run.print(f"source model (digits 0–4): validation accuracy {source_report['accuracy']:.3f}")
    run.save_model(source_model, name="source_model.keras")

    # 2. Fine-tuning on the 50 labels: new head, body frozen, then unfrozen at a low rate.
    tuned = kk.finetune(source_model, data["x_train"], data["y_train"], spec, new_head=True,
                        freeze=config.freeze, learning_rate=config.head_learning_rate,
                        epochs=head_epochs, unfreeze_epochs=unfreeze_epochs,
                        unfreeze_learning_rate=config.unfreeze_learning_rate,
                        validation_data=(data["x_val"], data["y_val"]), seed=config.seed)

    # 3. The baseline: same architecture, same 50 labels, same number of epochs.
    scratch = _model(spec, config, config.scratch_learning_rate)
    scratch_history = kk.fit(scratch, data["x_train"], data["y_train"],
                             validation_data=(data["x_val"], data["y_val"]),
                             epochs=head_epochs + unfreeze_epochs, seed=config.seed)

    # 4. Held-out comparison: A = from scratch, B = fine-tuned.
    comparison = kk.compare(scratch, tuned.model, data["x_test"], data["y_test"], spec)
    run.print(f"A = from scratch, B = fine-tuned, {comparison.n} held-out digits 5–9:")
    run.print(f"  {comparison.verdict}")
    run.save_json("comparison", comparison.to_dict())

    logs = {k: list(v) for k, v in tuned.history.history.items()}
    if tuned.unfrozen_history is not None:
        for key, values in tuned.unfrozen_history.history.items():
            logs.setdefault(key, []).extend(values)
    run.save_figure("transfer_vs_scratch", _curves(logs, scratch_history.history, head_epochs))
    run.save_history(logs)
    run.save_model(tuned.model)

    report = _report(tuned.model, data["x_test"], data["y_test"], spec)
    scratch_report = _report(scratch, data["x_test"], data["y_test"], spec)
    return {
        **report,
        "scratch_accuracy": scratch_report["accuracy"],
        "scratch_f1": scratch_report["f1"],
        "accuracy_gain": comparison.difference,
        "p_value": comparison.p_value,
        "source_val_accuracy": source_report["accuracy"],
    }


if __name__ == "__main__":
    from kerakit.recipes import main

    main()
