"""`kerakit promote`: a candidate run replaces the current one only when it is not worse."""

import pytest

# Backend-neutral: the SavedModel export is skipped off TensorFlow.
pytestmark = pytest.mark.backends


@pytest.fixture(scope="module")
def good_and_bad_runs(tmp_path_factory, binary_runs):
    """Run directories of a good and a worse binary model (weights set by hand), a held-out CSV."""
    dirs, csv, _, _ = binary_runs(tmp_path_factory.mktemp("runs"),
                                  {"good": [2.0, 1.0, 0.0], "bad": [0.3, 0.0, 2.0]}, "holdout.csv")
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
