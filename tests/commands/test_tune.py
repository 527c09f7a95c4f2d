"""`kerakit tune`: the command on a recipe file, its checks, its report, resume after a kill."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# The command line ---------------------------------------------------------

RECIPE = '''"""Tiny binary recipe for the tune command."""
import dataclasses

@dataclasses.dataclass
class Config:
    epochs: int = 3  # most epochs
    seed: int = 0  # seed
    smoke: bool = False  # tiny

def data(config):
    import numpy as np
    from sklearn.datasets import load_breast_cancer
    import kerakit as kk
    x, y = load_breast_cancer(return_X_y=True)
    idx = np.random.default_rng(config.seed).permutation(len(x))[:150]
    x, y = x[idx].astype("float32"), y[idx]
    return {"x_train": x[:90], "y_train": y[:90], "x_val": x[90:120], "y_val": y[90:120],
            "x_test": x[120:], "y_test": y[120:], "spec": kk.ProblemSpec(task="binary")}

def search_space(config):
    return {"units": [4, 8], "learning_rate": [1e-2]}

def run(config, data, run):
    return {}
'''


def test_tune_help_is_instant_and_lists_the_four_tuners():
    import subprocess
    import sys

    from kerakit.tuning import TUNERS

    code = ("import sys; from kerakit import cli\n"
            "try:\n    cli.main(['tune', '--help'])\nexcept SystemExit:\n    pass\n"
            "print('tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    assert out.strip().endswith("False") and "{random,grid,bayesian,hyperband,tpe}" in out
    assert TUNERS == ("random", "grid", "bayesian", "hyperband", "tpe")


@pytest.mark.parametrize("tuner", ["grid", "random", "bayesian", "hyperband"])
def test_kerakit_tune_command_on_a_recipe_file(tmp_path, capsys, tuner):
    from kerakit import cli

    recipe = tmp_path / "tiny_binary.py"
    recipe.write_text(RECIPE)
    code = cli.main(["tune", str(recipe), "--tuner", tuner, "--cv", "2", "--max-trials", "2",
                     "--directory", str(tmp_path / "tuning"), "--json", "--epochs", "2"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["plan"].endswith("2 candidates × 2 folds = " + ("up to " if tuner == "hyperband" else "")
                                   + "4 fits") and report["fits"] == 4
    assert report["best_hyperparameters"]["units"] in (4, 8)
    assert report["test_metrics"]["n"] == 30 and report["test_metrics"]["accuracy"] > 0.6
    folder = tmp_path / "tuning" / "tiny-binary"
    assert {"trials.csv", "trials.png", "best_model.keras", "oof_predictions.npy"} <= set(os.listdir(folder))
    if tuner != "grid":
        return
    # Flags tune does not know go to the recipe's parser, which names the valid ones.
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["tune", str(recipe), "--epoch", "2", "--directory", str(tmp_path)])
    assert exit_info.value.code == 2 and "Did you mean '--epochs'" in capsys.readouterr().err


def test_cli_report_sorts_trials_by_the_objective_direction(capsys):
    import pandas as pd

    from kerakit.commands.tune import print_report

    trials = pd.DataFrame({"trial": [0, 1, 2], "status": ["COMPLETED"] * 3,
                           "val_cosine_similarity": [0.2, 0.9, 0.5]})
    print_report({"role": "chief", "objective": "val_cosine_similarity", "direction": "max",
                   "best_score": 0.9, "best_score_std": 0.0, "best_trial": 1,
                   "best_hyperparameters": {}, "directory": "d", "_trials": trials})
    table = capsys.readouterr().out.split("Best trials:")[1].splitlines()[2:5]
    assert [line.split()[0] for line in table] == ["1", "2", "0"]



def test_nonsense_counts_are_refused_by_their_flag(tmp_path, capsys):
    from kerakit import cli

    recipe = tmp_path / "tiny_binary.py"
    recipe.write_text(RECIPE)
    for flag, value in (("--max-trials", "0"), ("--epochs", "0"), ("--cv", "1"), ("--patience", "-1")):
        code = cli.main(["tune", str(recipe), flag, value, "--directory", str(tmp_path / "tuning")])
        assert code == 1
        assert f"`{flag}` must be >= " in capsys.readouterr().err
    assert not (tmp_path / "tuning").exists()


def test_a_directory_that_is_a_file_is_refused(tmp_path, capsys):
    from kerakit import cli

    recipe = tmp_path / "tiny_binary.py"
    recipe.write_text(RECIPE)
    (tmp_path / "taken").write_text("not a folder")
    code = cli.main(["tune", str(recipe), "--directory", str(tmp_path / "taken"), "--epochs", "1"])
    assert code == 1 and "is a file, not a folder" in capsys.readouterr().err
    assert (tmp_path / "taken").read_text() == "not a folder"


def _trial_states(project):
    states = {}
    for path in project.glob("trial_*/trial.json"):
        try:
            states[path.parent.name] = json.loads(path.read_text())["status"]
        except (ValueError, KeyError):
            pass
    return states


@pytest.mark.slow
def test_a_tpe_search_killed_mid_trial_resumes_from_the_command_line(tmp_path, capsys):
    from kerakit import cli

    recipe = tmp_path / "tiny_binary.py"
    # A range: more candidates than the budget, so the search runs all four trials.
    recipe.write_text(RECIPE.replace('"learning_rate": [1e-2]', '"learning_rate": (1e-3, 1e-1, "log")'))
    args = ["tune", str(recipe), "--tuner", "tpe", "--max-trials", "4", "--epochs", "1",
            "--directory", str(tmp_path / "tuning")]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3",
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    process = subprocess.Popen([sys.executable, "-m", "kerakit.cli", *args], env=env, cwd=tmp_path,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    project = tmp_path / "tuning" / "tiny-binary"
    try:
        deadline = time.monotonic() + 240
        while True:
            states = list(_trial_states(project).values())
            if states.count("COMPLETED") >= 2 and "RUNNING" in states:
                break
            assert process.poll() is None, process.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "the search never started its third trial"
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)
    done = sum(s == "COMPLETED" for s in _trial_states(project).values())
    assert cli.main(args + ["--json"]) == 0
    # Keras Tuner itself prints "Reloading Tuner from ..." first: the report is the last line.
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["trials"] == 4 and report["fits"] == 4 - done
    assert f"resuming: {done} done" in report["plan"] and report["best_hyperparameters"]["units"] in (4, 8)


@pytest.mark.slow
def test_kerakit_tune_with_storage_and_tracking_uri(tmp_path, capsys, monkeypatch):
    from kerakit import cli

    mlflow = pytest.importorskip("mlflow")
    recipe = tmp_path / "tiny_binary.py"
    recipe.write_text(RECIPE)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    args = ["tune", str(recipe), "--tuner", "grid", "--epochs", "1", "--directory", str(tmp_path / "tuning"),
            "--storage", str(tmp_path / "search.journal"), "--json"]
    assert cli.main(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["trials"] == 2 and report["fits"] == 2
    assert "shared through" in report["plan"] and (tmp_path / "search.journal").exists()
    # A second worker finds the budget spent: it trains nothing and reports the same trials.
    assert cli.main(args) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["fits"] == 0 and again["trials"] == 2 and again["best_trial"] == report["best_trial"]
    runs = mlflow.MlflowClient(uri).search_runs(
        [mlflow.MlflowClient(uri).get_experiment_by_name("kerakit").experiment_id])
    kinds = sorted(r.data.tags.get("kerakit.kind") for r in runs)
    assert kinds == ["search", "search", "trial", "trial"]  # one parent run per call
