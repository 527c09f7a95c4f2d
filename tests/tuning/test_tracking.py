"""A search logged to MLflow: a parent run, one child run per trial with params and per-epoch metrics."""

import pytest

import kerakit as kk
from kerakit.tuning import Distribution

mlflow = pytest.importorskip("mlflow")


def _runs(uri):
    client = mlflow.MlflowClient(uri)
    experiment = client.get_experiment_by_name("kerakit")
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if r.data.tags.get("kerakit.kind") == "search"]
    children = [r for r in runs if r.data.tags.get("kerakit.kind") == "trial"]
    return client, parents, children


def _check_trials(client, parent, children, trials, epochs):
    assert len(children) == len(trials)
    assert all(c.data.tags["mlflow.parentRunId"] == parent.info.run_id for c in children)
    for child in children:
        trial_id = child.data.tags["kerakit.trial_id"]
        row = trials[trials["trial"] == trial_id].iloc[0]
        assert int(child.data.params["units"]) == row["units"]
        history = client.get_metric_history(child.info.run_id, "val_loss")
        assert sorted({m.step for m in history}) == list(range(epochs))
        assert child.data.metrics["val_loss"] == pytest.approx(row["val_loss"])
        assert child.info.status == "FINISHED"
        assert child.data.tags["kerakit.status"] == "completed"


@pytest.mark.slow
def test_a_search_is_a_parent_run_with_a_child_run_per_trial_and_the_best_model(cancer, tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    x, y = cancer
    result = kk.tune(kk.ProblemSpec(task="binary"), x, y, space={"units": [2, 4]}, tuner="grid",
                     epochs=2, directory=tmp_path / "search", tracking_uri=uri, verbose=0)
    client, parents, children = _runs(uri)
    assert len(parents) == 1
    parent = parents[0]
    assert parent.data.params["tuner"] == "grid"
    assert parent.data.tags["kerakit.best_trial"] == result.best_trial_id
    assert parent.data.metrics["best_val_loss"] == pytest.approx(result.best_score)
    assert "best_model.keras" in [a.path for a in client.list_artifacts(parent.info.run_id)]
    _check_trials(client, parent, children, result.trials, epochs=2)


@pytest.mark.slow
def test_trials_in_a_child_process_nest_under_the_search(cancer, tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)  # honoured without tracking_uri=
    x, y = cancer
    result = kk.tune(kk.ProblemSpec(task="binary"), x, y, space={"units": [2, 4]}, tuner="grid",
                     epochs=2, directory=tmp_path / "search", refit=False,
                     distribution=Distribution(isolate=True), verbose=0)
    client, parents, children = _runs(uri)
    assert len(parents) == 1
    _check_trials(client, parents[0], children, result.trials, epochs=2)


def test_no_tracking_uri_logs_nothing(cancer, tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    x, y = cancer
    result = kk.tune(kk.ProblemSpec(task="binary"), x, y, space={"units": [2]}, tuner="grid", epochs=1,
                     directory=tmp_path / "search", refit=False, verbose=0)
    assert len(result.trials) == 1
    assert not (tmp_path / "mlruns").exists() and not (tmp_path / "mlflow.db").exists()


@pytest.mark.slow
def test_a_trial_pruned_in_a_shared_search_ends_its_child_run_pruned(cancer, tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    x, y = cancer
    # Three sound learning rates, then one that diverges: the median pruner stops it.
    space = {"learning_rate": [0.01, 0.011, 0.012, 30.0], "optimizer": ["sgd"]}
    result = kk.tune(kk.ProblemSpec(task="binary"), x, y, space=space, tuner="grid", epochs=4,
                     patience=None, pruner="median", storage=str(tmp_path / "search.journal"),
                     directory=tmp_path / "search", refit=False, tracking_uri=uri, verbose=0)
    statuses = dict(zip(result.trials["learning_rate"], result.trials["status"], strict=True))
    assert statuses == {0.01: "COMPLETED", 0.011: "COMPLETED", 0.012: "COMPLETED", 30.0: "PRUNED"}
    client, _, children = _runs(uri)
    ended = {float(c.data.params["learning_rate"]): (c.info.status, c.data.tags["kerakit.status"])
             for c in children}
    assert ended[30.0] == ("KILLED", "pruned")
    assert ended[0.01] == ("FINISHED", "completed")
