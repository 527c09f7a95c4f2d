"""`kerakit predict`: predictions for CSV rows, to a file or to standard output."""

import io

import pytest

from kerakit import cli


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    import kerakit as kk

    path = tmp_path_factory.mktemp("model") / "model.keras"
    spec = kk.ProblemSpec(task="binary", class_names=["no", "yes"])
    kk.build_model(spec, input_shape=(3,), units=(4,), seed=0).save(path)
    return path


@pytest.mark.backends
def test_out_dash_writes_the_csv_to_standard_output(model_file, tmp_path, capsys):
    import pandas as pd

    (tmp_path / "rows.csv").write_text("a,b,c\n1,2,3\n0,0,1\n-1,2,0\n")
    assert cli.main(["predict", str(model_file), "--csv", str(tmp_path / "rows.csv"), "--out", "-"]) == 0
    captured = capsys.readouterr()
    printed = pd.read_csv(io.StringIO(captured.out))  # stdout holds the CSV and nothing else
    assert list(printed.columns) == ["a", "b", "c", "prediction", "proba_yes"]
    assert len(printed) == 3 and set(printed["prediction"]) <= {"no", "yes"}
    assert "3 prediction(s) written to standard output" in captured.err
    assert not (tmp_path / "-").exists() and not (tmp_path.cwd() / "-").exists()


@pytest.mark.backends
def test_out_that_is_a_folder_is_refused_before_the_model_loads(tmp_path, capsys):
    (tmp_path / "rows.csv").write_text("a,b,c\n1,2,3\n")
    (tmp_path / "out").mkdir()
    assert cli.main(["predict", str(tmp_path / "no-such-run"), "--csv", str(tmp_path / "rows.csv"),
                     "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "kerakit predict: error: The output" in err and "is a folder" in err
    assert "Traceback" not in err and "IsADirectoryError" not in err


def test_a_csv_without_the_runs_feature_columns_is_refused_before_tensorflow(
        manifest_run, cli_in_subprocess, tmp_path):
    run_dir = manifest_run(feature_names=("mass", "height"))
    (tmp_path / "rows.csv").write_text("mass,heigth,colour\n1,2,red\n")
    code, tensorflow, message = cli_in_subprocess(
        ["predict", run_dir, "--csv", "rows.csv", "--out", "out.csv"])
    assert (code, tensorflow) == (1, False)
    assert "lacks 1 of the run's 2 feature column(s): height. Did you mean 'heigth'?" in message
    assert not (tmp_path / "out.csv").exists()
