"""kerakit.tracking: MLflow runs for searches and trials, per-epoch metrics from every engine, models."""

import pickle
import shutil
import sys

import numpy as np
import pytest

from kerakit import tracking
from kerakit.errors import ConfigError, MissingExtraError

mlflow = pytest.importorskip("mlflow")


@pytest.fixture(scope="module")
def empty_store(tmp_path_factory):
    """An empty SQLite tracking store: MLflow's schema takes seconds to create, so once per module."""
    path = tmp_path_factory.mktemp("store") / "mlflow.db"
    mlflow.MlflowClient(f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def uri(empty_store, tmp_path, monkeypatch):
    """A fresh SQLite tracking store in a temporary folder (artifacts in ./mlruns there); no server."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(tracking.TRACKING_URI_ENV, raising=False)
    monkeypatch.delenv(tracking.EXPERIMENT_ENV, raising=False)
    shutil.copy(empty_store, tmp_path / "mlflow.db")
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


def _data(rows=48, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 4)).astype("float32")
    y = (x[:, 0] + x[:, 1] > 0).astype("int64")
    return x, y


def _model(units=8):
    import kerakit as kk

    return kk.build_model(kk.ProblemSpec(task="binary"), input_shape=(4,), units=(units,), seed=0)


def _steps(client, run_id, key):
    return [m.step for m in sorted(client.get_metric_history(run_id, key), key=lambda m: m.step)]


def test_tracking_uri_comes_from_the_argument_then_the_environment(monkeypatch):
    monkeypatch.delenv(tracking.TRACKING_URI_ENV, raising=False)
    assert tracking.resolve_tracking_uri(None) is None
    monkeypatch.setenv(tracking.TRACKING_URI_ENV, "sqlite:///env.db")
    assert tracking.resolve_tracking_uri(None) == "sqlite:///env.db"
    assert tracking.resolve_tracking_uri("sqlite:///arg.db") == "sqlite:///arg.db"
    assert tracking.resolve_tracking_uri(False) is None
    with pytest.raises(ConfigError, match="Received: tracking_uri=3"):
        tracking.resolve_tracking_uri(3)


def test_tracking_off_yields_nothing_and_a_trial_outside_a_search_is_not_tracked(monkeypatch):
    monkeypatch.delenv(tracking.TRACKING_URI_ENV, raising=False)
    with tracking.search_run(None, "search") as search:
        assert search is None
        with tracking.trial_run("0", {"units": 8}) as trial:
            assert trial is None


def test_missing_mlflow_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # what an uninstalled package looks like
    with pytest.raises(MissingExtraError, match=r"pip install 'kerakit\[mlflow\]'"):
        tracking.start_run("sqlite:///x.db", "run")


@pytest.mark.slow
@pytest.mark.backends
def test_search_is_a_parent_run_with_one_child_per_trial(uri):
    """Params, per-epoch metrics (step = epoch) from the backend's own engine, statuses, best model."""
    import kerakit as kk
    from kerakit.backend import name as backend
    from kerakit.engines import BACKEND_ENGINES, choose

    x, y = _data()
    epochs = 3
    with tracking.search_run(uri, "search", {"tuner": "random", "max_trials": 3}) as search:
        for trial_id, units in (("0", 4), ("1", 8)):
            with tracking.trial_run(trial_id, {"units": units}) as trial:
                model = _model(units)
                # The JAX and PyTorch engines train without model.fit; they call the callbacks.
                assert choose(model, x) == BACKEND_ENGINES[backend()]
                kk.fit(model, x, y, validation_data=(x[:16], y[:16]), epochs=epochs, verbose=0,
                       callbacks=[trial.callback()])
                if trial_id == "1":
                    trial.mark_pruned()
        with pytest.raises(RuntimeError), tracking.trial_run("2", {"units": 2}):
            raise RuntimeError("diverged")
        search.log_model(model, "best_model")

    client = mlflow.MlflowClient(uri)
    parent = client.get_run(search.run_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.params == {"tuner": "random", "max_trials": "3"}
    assert [a.path for a in client.list_artifacts(search.run_id)] == ["best_model.keras"]
    children = {run.data.tags["kerakit.trial_id"]: run for run in client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{search.run_id}'")}
    assert sorted(children) == ["0", "1", "2"]
    assert {k: (r.info.status, r.data.tags[tracking.STATUS_TAG]) for k, r in children.items()} == {
        "0": ("FINISHED", "completed"), "1": ("KILLED", "pruned"), "2": ("FAILED", "failed")}
    assert children["0"].data.params == {"units": "4"}
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert _steps(client, children["0"].info.run_id, key) == list(range(epochs))
    loaded = kk.load_model(mlflow.artifacts.download_artifacts(
        run_id=search.run_id, artifact_path="best_model.keras", tracking_uri=uri))
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)


@pytest.mark.backends
def test_callback_logs_to_mlflows_active_run_under_model_fit(uri):
    x, y = _data()
    mlflow.set_tracking_uri(uri)
    try:
        with mlflow.start_run() as active:
            _model().fit(x, y, epochs=2, verbose=0, callbacks=[tracking.MlflowCallback(prefix="a/")])
    finally:
        mlflow.set_tracking_uri(None)
    client = mlflow.MlflowClient(uri)
    assert _steps(client, active.info.run_id, "a/loss") == [0, 1]


def test_callback_without_a_run_says_how_to_start_one(uri):
    x, y = _data()
    with pytest.raises(ConfigError, match=r"mlflow.start_run\(\)"):
        _model().fit(x, y, epochs=1, verbose=0, callbacks=[tracking.MlflowCallback()])


def test_a_trial_in_another_process_nests_under_a_pickled_search(uri):
    """A TrackedRun is plain data: a trial pool's child process gets it as `parent=`."""
    with tracking.search_run(uri, "search") as search:
        parent = pickle.loads(pickle.dumps(search))
        with tracking.trial_run(7, {"lr": 0.01}, parent=parent) as trial:
            trial.log_metrics({"score": 0.5, "skipped": "not a number"}, step=0)
    run = mlflow.MlflowClient(uri).get_run(trial.run_id)
    assert run.data.tags["mlflow.parentRunId"] == search.run_id
    assert run.data.metrics == {"score": 0.5}
    assert run.data.tags["mlflow.runName"] == "trial 7"


def test_nested_config_is_flattened_and_long_values_cut(uri):
    with tracking.tracked_run(uri, "run", {"body": {"units": (8, 4)}, "note": "x" * 7000}) as run:
        pass
    params = mlflow.MlflowClient(uri).get_run(run.run_id).data.params
    assert params["body.units"] == "(8, 4)" and len(params["note"]) == 6000


def test_many_trials_keep_no_clients_or_runs_open(uri):
    """A long search must not grow: every trial's run ends and nothing is kept per trial."""
    with tracking.search_run(uri, "search") as search:
        for trial_id in range(5):
            with tracking.trial_run(trial_id, {"i": trial_id}) as trial:
                callback = trial.callback()
                callback.on_epoch_end(0, {"loss": 1.0})
    with tracking.trial_run(5, {"i": 5}) as after:
        assert after is None  # the search is closed: nothing left open to nest under
    client = mlflow.MlflowClient(uri)
    runs = client.search_runs([search.experiment_id])
    assert len(runs) == 6 and {r.info.status for r in runs} == {"FINISHED"}
    assert mlflow.active_run() is None


def test_a_sqlite_store_keeps_artifacts_beside_its_file(uri, tmp_path, monkeypatch):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # MLflow's own default would write ./mlruns here
    with tracking.tracked_run(uri, "artifacts") as run:
        note = tmp_path / "note.txt"
        note.write_text("hello")
        run.log_artifact(note)
    assert not (elsewhere / "mlruns").exists()
    assert list((tmp_path / "mlartifacts").rglob("note.txt"))
    assert tracking.artifact_location("http://localhost:5000") is None
