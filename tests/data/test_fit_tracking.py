"""`fit_table(tracking_uri=...)`: the call as an MLflow run with its options, epochs, report and model."""

import numpy as np
import pandas as pd
import pytest

mlflow = pytest.importorskip("mlflow")


@pytest.mark.slow
def test_fit_table_logs_params_epochs_report_and_model(tmp_path, monkeypatch):
    import kerakit as kk

    monkeypatch.chdir(tmp_path)  # MLflow puts the artifacts of a SQLite store in ./mlruns
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"area": rng.uniform(20, 120, 80), "city": rng.choice(["a", "b"], 80)})
    frame["price"] = frame["area"] * 3 + (frame["city"] == "a") * 20 + rng.normal(0, 5, 80)
    result = kk.fit_table(frame, "price", epochs=2, patience=None, units=(8,), tracking_uri=uri)

    client = mlflow.MlflowClient(uri)
    (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert run.info.status == "FINISHED" and run.info.run_name == "fit_table"
    params = run.data.params
    assert params["target"] == "price" and params["epochs"] == "2"
    assert params["build_options.units"] == "(8,)"
    assert "callbacks" not in params
    assert [m.step for m in client.get_metric_history(run.info.run_id, "val_loss")] == [0, 1]
    assert run.data.metrics["test_r2"] == pytest.approx(result.report["test"]["r2"])
    assert "validation_rmse" in run.data.metrics
    assert [a.path for a in client.list_artifacts(run.info.run_id)] == ["model.keras"]
