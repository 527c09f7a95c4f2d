"""Draws the figures of the docs with kerakit itself, on tiny data, at docs build time.

Run by mkdocs-gen-files (mkdocs.yml, `plugins: gen-files`): each figure is a
`matplotlib.figure.Figure` returned by kerakit's own plotting functions, saved
as a PNG into the site under `figures/`, so the pictures in the guides are
what the current code draws; no image is kept in the repository. The data and
models are small on purpose (digits, a few epochs): the figures show what
each plot looks like, not a benchmark.

    python scripts/docs_figures.py OUT_DIR   # write the PNGs to a folder, to look at them
"""

import io
import sys
import tempfile
from pathlib import Path


def _digits():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x = (x / 16).astype("float32")
    return train_test_split(x, y, test_size=0.25, stratify=y, random_state=0)


def figures():
    """`{file name: Figure}`: learning curves, ROC, confusion matrix, importance, trials, active learning."""
    import kerakit as kk
    from kerakit import plots

    x_train, x_test, y_train, y_test = _digits()
    spec = kk.infer_spec(y_train)
    model = kk.build_model(spec, input_shape=(64,), units=(64,), dropout=0.1, seed=0)
    history = kk.fit(model, x_train, y_train, validation_split=0.2, epochs=15, seed=0, verbose=0)
    proba = kk.predict(model, x_test)
    out = {
        "learning_curves.png": plots.learning_curves(history),
        "confusion_matrix.png": plots.confusion_matrix(y_test, proba.argmax(axis=1)),
        "roc.png": plots.roc_curves(y_test, proba),
    }
    importance = kk.permutation_importance(model, x_test[:200], y_test[:200], n_repeats=2, seed=0)
    out["importance.png"] = kk.plot_importance(importance, top=12)

    from kerakit.tuning import CrossValidation

    with tempfile.TemporaryDirectory() as folder:
        result = kk.tune(spec, x_train[:600], y_train[:600], {"units": [16, 32, 64],
                                                               "learning_rate": (1e-3, 3e-2, "log")},
                         tuner="random", max_trials=6, epochs=4,
                         cv=CrossValidation(validation_split=0.25),
                         directory=folder, seed=0, verbose=0)
        out["trials.png"] = plots.plot_trials(result.trials, result.objective, result.direction)

    pool, rest_x, pool_y, rest_y = x_train[:700], x_train[700:], y_train[:700], y_train[700:]
    simulation = kk.simulate(spec, pool, pool_y, rest_x[:300], rest_y[:300], strategies=["margin"],
                             initial=20, budget=80, step=20, seeds=(0,), units=(32,), epochs=10,
                             teach_epochs=3)
    out["active_learning.png"] = simulation.plot()
    return out


def png(figure):
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80)
    return buffer.getvalue()


def main(argv):
    drawn = {name: png(fig) for name, fig in figures().items()}
    if argv:
        folder = Path(argv[0])
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in drawn.items():
            (folder / name).write_bytes(data)
        return 0
    import mkdocs_gen_files

    for name, data in drawn.items():
        with mkdocs_gen_files.open(f"figures/{name}", "wb") as handle:
            handle.write(data)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
elif __name__ == "<run_path>":  # mkdocs-gen-files runs the file with runpy.run_path
    import runpy

    reference = runpy.run_path(str(Path(__file__).with_name("docs_reference.py")), run_name="docs_reference")
    if reference["building"]():
        main([])
