"""`kerakit promote`: a candidate run replaces the current one only when it is not worse."""

import numpy as np
import pytest

# Backend-neutral: the SavedModel export is skipped off TensorFlow.
pytestmark = pytest.mark.backends


def _logistic(weights):
    import keras

    inputs = keras.Input((len(weights),), name="features")
    outputs = keras.layers.Dense(1, activation="sigmoid", name="output")(inputs)
    model = keras.Model(inputs, outputs)
    model.get_layer("output").set_weights([np.array(weights, dtype="float32")[:, None], np.zeros(1)])
    return model


@pytest.fixture(scope="module")
def good_and_bad_runs(tmp_path_factory):
    """Run directories of a good and a worse binary model (weights set by hand), a held-out CSV."""
    import pandas as pd

    from kerakit.runs import Run

    root = tmp_path_factory.mktemp("runs")
    rng = np.random.default_rng(5)
    x = rng.normal(size=(400, 3)).astype("float32")
    y = (2 * x[:, 0] + x[:, 1] > 0).astype(int)
    names = ["alpha", "beta", "gamma"]
    dirs = {}
    for label, weights in (("good", [2.0, 1.0, 0.0]), ("bad", [0.3, 0.0, 2.0])):
        run = Run("toy", root=root, run_id=f"run-{label}", quiet=True)
        run.save_model(_logistic(weights))
        run.write_manifest(spec={"task": "binary"}, data={"feature_names": names, "target": "label"})
        dirs[label] = run.dir
    frame = pd.DataFrame(x, columns=names)
    frame["label"] = y
    csv = root / "holdout.csv"
    frame.to_csv(csv, index=False)
    return dirs, csv


def test_promote_refuses_a_worse_candidate_and_exports_a_good_one(good_and_bad_runs, tmp_path, capsys):
    import keras

    from kerakit import cli

    if keras.backend.backend() != "tensorflow":
        pytest.skip("the export is a SavedModel, which needs the TensorFlow backend")
    dirs, csv = good_and_bad_runs
    export = tmp_path / "models" / "toy"
    code = cli.main(["promote", str(dirs["bad"]), "--current", str(dirs["good"]), "--csv", str(csv),
                     "--export", str(export), "--resamples", "200"])
    out = capsys.readouterr().out
    assert code == 3 and "REFUSED" in out and "A is better" in out
    assert not export.exists()

    code = cli.main(["promote", str(dirs["good"]), "--current", str(dirs["bad"]), "--csv", str(csv),
                     "--export", str(export), "--resamples", "200"])
    assert code == 0 and "PROMOTED" in capsys.readouterr().out
    assert sorted(p.name for p in export.iterdir()) == ["1"]
