"""`kerakit run`: recipes by name or path, flags, argument errors before TensorFlow, the whole loop."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from kerakit import cli

ROOT = Path(__file__).resolve().parent.parent.parent


def test_unknown_flag_lists_valid_flags(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["run", "digits", "--epoch", "3"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "usage: kerakit run digits" in err
    assert "unknown flag '--epoch'. Did you mean '--epochs'?" in err and "--batch-size" in err


def test_recipe_that_fails_to_import_shows_its_own_traceback(tmp_path, capsys):
    path = tmp_path / "typo.py"
    path.write_text('"""Typo."""\nimport dataclasses\nimport numpyy\n')
    assert cli.main(["run", str(path), "--smoke"]) == 1
    err = capsys.readouterr().err
    assert "Recipe 'typo' failed to import" in err and "not in kerakit" in err
    assert f'File "{path}", line 3, in <module>' in err
    assert "ModuleNotFoundError: No module named 'numpyy'" in err


def test_run_json_then_runs_evaluate_and_predict(tmp_path, tiny_recipe_dir, capsys):
    """The whole loop from the shell, in process: run → runs → evaluate → predict."""
    folder = tiny_recipe_dir
    runs_dir = tmp_path / "runs"
    assert cli.main(["run", "tiny-cli", "--recipes-dir", str(folder), "--epochs", "2",
                     "--runs-dir", str(runs_dir), "--json"]) == 0
    out = capsys.readouterr().out
    result = json.loads(out)  # stdout holds the JSON and nothing else (no progress bar)
    run_dir = Path(result["run_dir"])
    assert result["config"] == {"epochs": 2, "seed": 0, "smoke": False}
    assert (run_dir / "model.keras").is_file()

    assert cli.main(["runs", "--runs-dir", str(runs_dir)]) == 0
    listing = capsys.readouterr().out
    assert f"tiny-cli/{result['run_id']}" in listing and "completed" in listing
    assert f"accuracy {result['metrics']['accuracy']:.4f}" in listing

    # The test split as a CSV: evaluate must reproduce the run's own test metrics.
    import pandas as pd

    sys.path.insert(0, str(folder))
    try:
        import tiny_cli
    finally:
        sys.path.remove(str(folder))
    data = tiny_cli.data(tiny_cli.Config())
    frame = pd.DataFrame(data["x_test"], columns=["a", "b", "c", "d"])
    frame.insert(0, "label", np.array(["lo", "mid", "hi"])[data["y_test"]])  # names, not indices
    frame.to_csv(tmp_path / "test.csv", index=False)
    assert cli.main(["evaluate", str(run_dir), "--csv", str(tmp_path / "test.csv"), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)["metrics"]
    for key in ("accuracy", "f1", "log_loss", "n"):
        assert metrics[key] == pytest.approx(result["metrics"][key], rel=1e-4)

    out_csv = tmp_path / "predictions.csv"
    assert cli.main(["predict", str(run_dir / "model.keras"), "--csv", str(tmp_path / "test.csv"),
                     "--out", str(out_csv)]) == 0
    predicted = pd.read_csv(out_csv)
    assert len(predicted) == len(frame)
    assert set(predicted["prediction"]) <= {"lo", "mid", "hi"}
    proba = predicted[["proba_lo", "proba_mid", "proba_hi"]].to_numpy()
    assert np.allclose(proba.sum(axis=1), 1, atol=1e-4)
    accuracy = (predicted["prediction"] == frame["label"]).mean()
    assert accuracy == pytest.approx(result["metrics"]["accuracy"])

    frame.drop(columns="label").rename(columns={"a": "alpha"}).to_csv(tmp_path / "bad.csv", index=False)
    assert cli.main(["evaluate", str(run_dir), "--csv", str(tmp_path / "bad.csv")]) == 1
    assert "no label column 'label'" in capsys.readouterr().err


def test_csv_recipe_from_the_shell_and_raw_row_predictions(tmp_path, capsys):
    import pandas as pd

    rng = np.random.default_rng(0)
    n = 160
    frame = pd.DataFrame({"size": rng.normal(50, 10, n).round(1),
                          "color": rng.choice(["red", "blue", "green"], n),
                          "count": rng.integers(0, 4, n)})
    frame["kind"] = np.where(frame["size"] + 10 * (frame["color"] == "red") > 55, "big", "small")
    frame.loc[:5, "size"] = np.nan
    frame.to_csv(tmp_path / "data.csv", index=False)
    assert cli.main(["run", "csv", "--path", str(tmp_path / "data.csv"), "--target", "kind",
                     "--epochs", "3", "--runs-dir", str(tmp_path / "runs"), "--quiet"]) == 0
    assert capsys.readouterr().out == ""
    run_dir = next((tmp_path / "runs" / "csv").iterdir())
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "completed" and manifest["data"]["target"] == "kind"
    assert manifest["spec"]["class_names"] == ["big", "small"]
    assert {"confusion_matrix.png", "roc.png", "schema.json"} <= set(manifest["files"])

    new = pd.DataFrame({"size": [70.0, None], "color": ["purple", "red"], "count": [1, 9]})
    new.to_csv(tmp_path / "new.csv", index=False)  # unseen category, unseen code, a missing cell
    assert cli.main(["predict", str(run_dir), "--csv", str(tmp_path / "new.csv"),
                     "--out", str(tmp_path / "out.csv")]) == 0
    out = pd.read_csv(tmp_path / "out.csv")
    assert list(out["color"]) == ["purple", "red"] and set(out["prediction"]) <= {"big", "small"}
    assert np.isfinite(out["proba_small"]).all()


def test_recipe_runs_as_a_script(tmp_path):
    """`python recipes/digits.py --smoke` is the same runner as `kerakit run digits --smoke`."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "recipes" / "digits.py"), "--smoke", "--json",
         "--runs-dir", str(tmp_path)], capture_output=True, text=True, timeout=300, cwd=tmp_path,
        env={**__import__("os").environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 0, result.stderr[-2000:]
    payload = json.loads(result.stdout)
    assert payload["recipe"] == "digits" and payload["config"]["smoke"] is True
    assert Path(payload["run_dir"]).parent == tmp_path / "digits"
    assert (Path(payload["run_dir"]) / "model.keras").is_file()


def test_a_data_file_given_as_recipe_points_to_the_csv_recipe(tmp_path, capsys):
    (tmp_path / "file.csv").write_text("a,y\n1,2\n")
    assert cli.main(["run", str(tmp_path / "file.csv"), "--target", "y"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "AttributeError" not in err
    assert f"kerakit run csv --path {tmp_path / 'file.csv'} --target y" in err
    assert cli.main(["run", "file.csv"]) == 1
    err = capsys.readouterr().err
    assert "Unknown recipe" not in err and "kerakit run csv --path file.csv --target COLUMN" in err


def test_argument_errors_come_before_tensorflow_and_leave_no_run(tmp_path):
    """`kerakit run csv` without --target: a clear error in well under a second of work."""
    (tmp_path / "semi.csv").write_text("species;island;mass\nA;x;1\nB;y;2\n")
    script = textwrap.dedent("""
        import contextlib, io, sys, time
        from kerakit.cli import main
        for argv in (["run", "csv"], ["run", "csv", "--path", "semi.csv"],
                     ["run", "csv", "--path", "semi.csv", "--target", "specis"],
                     ["run", "csv", "--path", "semi.csv", "--target", "species", "--epochs", "0"]):
            err = io.StringIO()
            start = time.time()
            with contextlib.redirect_stderr(err):
                code = main(argv + ["--runs-dir", "runs"])
            print(code, "|", round(time.time() - start, 2), "|", "tensorflow" in sys.modules, "|",
                  err.getvalue().strip())
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = [line.split(" | ") for line in result.stdout.strip().splitlines()]
    assert [(code, tf) for code, _, tf, _ in lines] == [("1", "False")] * 4
    assert all(float(seconds) < 5 for _, seconds, _, _ in lines)
    messages = [message for *_, message in lines]
    assert "Pass --path data.csv and --target COLUMN" in messages[0]
    assert "Pass --target COLUMN" in messages[1]
    # The separator was sniffed: the columns are the semicolon file's three.
    assert "(--target specis)" in messages[2] and "Did you mean 'species'?" in messages[2]
    assert "'species', 'island', 'mass'" in messages[2]
    assert "`--epochs` must be" in messages[3] and "Received: --epochs 0" in messages[3]
    assert not (tmp_path / "runs").exists()


def test_a_lone_csv_path_is_taken_as_the_path(tmp_path, capsys):
    """`kerakit run csv data.csv --target t` reads data.csv (refused here for its target, quickly)."""
    (tmp_path / "data.csv").write_text("a,t\n1,x\n2,y\n")
    assert cli.main(["run", "csv", str(tmp_path / "data.csv"), "--target", "tt",
                     "--runs-dir", str(tmp_path / "runs")]) == 1
    err = capsys.readouterr().err
    assert "unexpected argument" not in err and "usage:" not in err
    assert f"is not in {tmp_path / 'data.csv'}. Did you mean 't'?" in err


def test_a_stray_argument_suggests_the_path_flag(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["run", "csv", "--target", "t", "data.csv"])
    assert exit_.value.code == 2
    assert "unexpected argument 'data.csv'. Did you mean --path data.csv?" in capsys.readouterr().err


def test_help_shows_no_empty_default(capsys):
    with pytest.raises(SystemExit):
        cli.main(["run", "csv", "--help"])
    out = capsys.readouterr().out
    assert "(default: )" not in out and "--path" in out and "--target" in out and "--sep" in out


def test_missing_target_values_are_refused_before_tensorflow(tmp_path):
    (tmp_path / "gaps.csv").write_text("a,b,label\n1,2,x\n\n3,4,\n5,6,y\n7,8,NA\n")
    script = textwrap.dedent("""
        import contextlib, io, sys
        from kerakit.cli import main
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            code = main(["run", "csv", "--path", "gaps.csv", "--target", "label", "--runs-dir", "runs"])
        print(code, "tensorflow" in sys.modules, err.getvalue().strip(), sep=" | ")
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    code, tensorflow, message = result.stdout.strip().split(" | ")
    assert (code, tensorflow) == ("1", "False")
    # Line 3 is blank, not a row: the rows on lines 4 and 6 lack their target.
    assert "Target 'label' is missing in 2 of 4 rows (line(s) 4, 6)" in message
    assert "--drop-missing-target" in message
    assert not (tmp_path / "runs").exists()


def test_a_runs_dir_that_is_a_file_is_refused(tmp_path, tiny_recipe_dir, capsys):
    (tmp_path / "runs").write_text("a file")
    assert cli.main(["run", "tiny-cli", "--recipes-dir", str(tiny_recipe_dir),
                     "--runs-dir", str(tmp_path / "runs")]) == 1
    err = capsys.readouterr().err
    assert "is a file, not a folder" in err
    assert "Traceback" not in err and "NotADirectoryError" not in err
    assert (tmp_path / "runs").read_text() == "a file"


@pytest.mark.slow
def test_tracking_uri_logs_the_run_to_mlflow(tmp_path, tiny_recipe_dir, monkeypatch, capsys):
    """--tracking-uri: config as params, each epoch, test metrics, plots and model in MLflow."""
    mlflow = pytest.importorskip("mlflow")
    monkeypatch.chdir(tmp_path)  # MLflow puts the artifacts of a SQLite store in ./mlruns
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert cli.main(["run", "tiny-cli", "--recipes-dir", str(tiny_recipe_dir), "--epochs", "2",
                     "--runs-dir", str(tmp_path / "runs"), "--tracking-uri", uri, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)

    client = mlflow.MlflowClient(uri)
    (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert run.info.status == "FINISHED"
    assert run.info.run_name == f"tiny-cli {result['run_id']}"
    assert run.data.params == {"epochs": "2", "seed": "0", "smoke": "False"}
    for key in ("loss", "val_loss"):
        assert [m.step for m in client.get_metric_history(run.info.run_id, key)] == [0, 1]
    assert run.data.metrics["test_accuracy"] == pytest.approx(result["metrics"]["accuracy"])
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"model.keras", "manifest.json", "figures"} <= artifacts
    figures = {a.path for a in client.list_artifacts(run.info.run_id, "figures")}
    assert {"figures/learning_curves.png", "figures/confusion_matrix.png"} <= figures


@pytest.mark.slow
def test_a_failed_run_is_a_failed_mlflow_run(tmp_path, tiny_recipe_dir, monkeypatch):
    mlflow = pytest.importorskip("mlflow")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    source = (tiny_recipe_dir / "tiny_cli.py").read_text()
    (tiny_recipe_dir / "tiny_cli.py").write_text(
        source.replace("    run.save_history(history)", "    raise RuntimeError('boom')"))
    with pytest.raises(RuntimeError, match="boom"):
        from kerakit import recipes

        recipes.run_command("tiny-cli", ["--runs-dir", str(tmp_path / "runs"), "--quiet"],
                            recipes_dir=[str(tiny_recipe_dir)])
    client = mlflow.MlflowClient()
    (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert run.info.status == "FAILED" and run.data.tags["kerakit.status"] == "failed"
