"""Text: classify short texts from raw strings with `TextVectorization` and the `sequence` body.

Without a file it writes short generated texts on three topics (sport,
weather, cooking), each mixed with common filler words, so the topic is in a
few words of each text. With `--path data.csv` it reads your CSV: one text
column (`--text-column`) and one label column (`--label-column`). The
vocabulary is learned from the training texts by a `TextVectorization` layer
inside the model, followed by an embedding, a 1-D convolution and a small
transformer encoder, so the saved model takes raw strings. TensorFlow
backend only (`TextVectorization` is TensorFlow by nature).
"""

import dataclasses
from pathlib import Path


@dataclasses.dataclass
class Config:
    path: Path | None = None  # a CSV with a text and a label column; None generates texts
    text_column: str = "text"  # the CSV column holding the texts
    label_column: str = "label"  # the CSV column holding the classes
    per_class: int = 300  # generated texts per topic when no path is given
    max_tokens: int = 20000  # vocabulary size
    sequence_length: int = 64  # tokens kept per text
    embedding_dim: int = 32  # width of each token's embedding
    transformer_blocks: int = 1  # transformer encoder blocks (0 for convolutions only)
    epochs: int = 40  # upper bound; early stopping usually ends sooner
    batch_size: int = 32  # examples per step
    learning_rate: float = 1e-3  # Adam's step size
    patience: int = 5  # epochs without validation improvement before stopping
    seed: int = 0  # seeds the texts, the split, the weights and the shuffles
    smoke: bool = False  # few texts and 2 epochs: checks the recipe runs, in seconds


TOPICS = {
    "sport": "goal match team score coach league player ball win season referee stadium".split(),
    "weather": "rain sun cloud storm wind forecast snow cold warm temperature sky humid".split(),
    "cooking": "recipe oven salt pan bake flour sauce boil garlic onion dinner taste".split(),
}
FILLER = ("the a and of to in it was is on for with that this very today really we they "
          "some more after before".split())


def generate_texts(per_class=300, seed=0):
    """Short texts on three topics: a list of strings and their topic names."""
    import numpy as np

    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for topic, words in TOPICS.items():
        for _ in range(per_class):
            length = int(rng.integers(6, 16))
            topical = rng.random(length) < 0.3
            topical[rng.integers(length)] = True  # at least one topic word
            tokens = [str(rng.choice(words)) if t else str(rng.choice(FILLER)) for t in topical]
            texts.append(" ".join(tokens).capitalize() + ".")
            labels.append(topic)
    return texts, labels


def data(config):
    """Reads the CSV (or generates texts) and splits it, stratified by class."""
    import numpy as np

    import kerakit as kk
    from kerakit.errors import DataError
    from kerakit.recipes import split_data

    if config.path is None:
        texts, labels = generate_texts(20 if config.smoke else config.per_class, config.seed)
        source = "generated"
    else:
        import pandas as pd

        frame = pd.read_csv(config.path)
        missing = [c for c in (config.text_column, config.label_column) if c not in frame]
        if missing:
            raise DataError(
                f"{str(config.path)!r} has no column(s) {missing}; its columns are "
                f"{list(frame.columns)}. Pass --text-column and --label-column."
            )
        frame = frame.dropna(subset=[config.label_column])
        texts = frame[config.text_column].fillna("").astype(str).tolist()
        labels = frame[config.label_column].astype(str).tolist()
        source = str(config.path)
    class_names = sorted(set(labels))
    y = np.asarray([class_names.index(label) for label in labels])
    splits = split_data(np.asarray(texts, dtype=object), y, seed=config.seed,
                        limit=60 if config.smoke and config.path is not None else None)
    if len(class_names) == 2:
        spec = kk.ProblemSpec(task="binary", class_names=class_names)
    else:
        spec = kk.ProblemSpec(task="multiclass", num_classes=len(class_names),
                              class_names=class_names)
    return {**splits, "spec": spec, "class_names": class_names, "source": source}


def run(config, data, run):
    """Builds the text model (vectorizer inside), trains with early stopping, reports on test."""
    import kerakit as kk

    spec = data["spec"]
    text = kk.text_inputs(data["x_train"], max_tokens=config.max_tokens,
                          sequence_length=config.sequence_length,
                          embedding_dim=config.embedding_dim)
    model = kk.build_model(spec, **text, body="sequence",
                           transformer_blocks=config.transformer_blocks,
                           filters=(16,) if config.smoke else (64,),
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
