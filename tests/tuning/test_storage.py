"""A search kept in Optuna's storage: workers share one budget, a killed worker's trial is run again."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import kerakit as kk
from kerakit.errors import ConfigError
from kerakit.tuning import Storage

ROOT = Path(__file__).resolve().parents[2]
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1",
           PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
for name in ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT"):
    ENV.pop(name, None)

# One worker: the same call in every process. argv: storage url, directory, max_trials,
# marker file (touched when a fit starts; "-" for none), seconds to sleep per epoch, grace period.
WORKER = '''
import json, sys, time
import keras, numpy as np
from sklearn.datasets import load_breast_cancer
import kerakit as kk
from kerakit.tuning import Storage

url, directory, max_trials, marker, pause, grace = sys.argv[1:7]
x, y = load_breast_cancer(return_X_y=True)
x, y = x[:80].astype("float32"), y[:80]
x = (x - x.mean(0)) / (x.std(0) + 1e-6)

class Slow(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        if marker != "-":
            open(marker, "w").close()
        time.sleep(float(pause))

result = kk.tune(kk.ProblemSpec(task="binary"), x, y, space={"units": (2, 64), "dropout": (0.0, 0.5)},
                 tuner="random", max_trials=int(max_trials), epochs=2, directory=directory,
                 storage=Storage(url, heartbeat_interval=0.5, grace_period=float(grace)), refit=False,
                 callbacks=[Slow()], verbose=0)
rows = result.trials[["trial", "status", "units", "dropout"]].to_dict("records")
print("RESULT " + json.dumps({"run": result.trials_run, "rows": rows}))
'''

SPACE = {"units": (2, 64), "dropout": (0.0, 0.5)}


def _start(tmp_path, url, max_trials, marker="-", pause=0.0, grace=3.0):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    return subprocess.Popen([sys.executable, str(script), url, str(tmp_path / "search"), str(max_trials),
                             str(marker), str(pause), str(grace)], env=ENV, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _result(process, timeout=300):
    out, _ = process.communicate(timeout=timeout)
    assert process.returncode == 0, out[-3000:]
    line = [line for line in out.splitlines() if line.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


def _check_shared(results, max_trials):
    rows = results[0]["rows"]
    for result in results:  # every worker returns the whole table
        assert sorted(r["trial"] for r in result["rows"]) == sorted(r["trial"] for r in rows)
    completed = [r for r in rows if r["status"] == "COMPLETED"]
    assert len(completed) == max_trials
    ran = [t for result in results for t in result["run"]]
    assert len(ran) == len(set(ran))  # no trial ran twice
    assert sorted(ran) == sorted(r["trial"] for r in completed)
    values = {(r["units"], round(r["dropout"], 9)) for r in completed}
    assert len(values) == max_trials  # no candidate ran twice
    assert all(result["run"] for result in results)  # every worker did work


@pytest.mark.slow
def test_sqlite_workers_split_the_budget_and_a_late_call_trains_nothing(tmp_path):
    url = f"sqlite:///{tmp_path / 'search.db'}"
    workers = [_start(tmp_path, url, 6, pause=0.3) for _ in range(2)]
    results = [_result(w) for w in workers]
    _check_shared(results, 6)
    late = _result(_start(tmp_path, url, 6))
    assert late["run"] == []
    assert late["rows"] == results[0]["rows"]


@pytest.mark.slow
def test_a_killed_worker_s_trial_is_marked_failed_and_run_again(tmp_path):
    url = f"sqlite:///{tmp_path / 'search.db'}"
    marker = tmp_path / "fitting"
    doomed = _start(tmp_path, url, 3, marker=marker, pause=30)
    deadline = time.monotonic() + 180
    while not marker.exists():
        assert doomed.poll() is None and time.monotonic() < deadline, doomed.communicate()[0][-3000:]
        time.sleep(0.2)
    doomed.send_signal(signal.SIGKILL)  # mid-trial: its first epoch sleeps 30 s
    doomed.wait(timeout=30)
    # The survivor runs the two other trials, waits until the dead trial's heartbeat is
    # 10 s old (the budget counts it meanwhile), then marks it failed and runs it again.
    result = _result(_start(tmp_path, url, 3, grace=10))
    rows = {r["trial"]: r for r in result["rows"]}
    failed = [r for r in rows.values() if r["status"] == "FAILED"]
    assert len(failed) == 1 and failed[0]["trial"] == "0000"
    assert len(result["run"]) == 3
    completed = [r for r in rows.values() if r["status"] == "COMPLETED"]
    assert len(completed) == 3  # the budget is met in spite of the kill
    retried = [r for r in completed if (r["units"], r["dropout"]) == (failed[0]["units"], failed[0]["dropout"])]
    assert len(retried) == 1 and retried[0]["trial"] in result["run"]


@pytest.mark.slow
def test_postgresql_workers_split_the_budget(tmp_path):
    pgserver = pytest.importorskip("pgserver")
    pytest.importorskip("psycopg2")
    try:
        server = pgserver.get_server(tmp_path / "pg", cleanup_mode="stop")
    except Exception as error:  # noqa: BLE001 - any failure to start is the reason to skip
        pytest.skip(f"pgserver could not start PostgreSQL on this machine: {error}")
    try:
        server.psql("CREATE DATABASE search;")
        url = server.get_uri("search").replace("postgresql://", "postgresql+psycopg2://", 1)
        workers = [_start(tmp_path, url, 4, pause=0.3) for _ in range(2)]
        _check_shared([_result(w) for w in workers], 4)
    finally:
        server.cleanup()


@pytest.mark.slow
@pytest.mark.parametrize("tuner", ["grid", "bayesian", "hyperband", "tpe"])
def test_every_tuner_runs_on_a_journal_file(tuner, cancer, tmp_path):
    x, y = cancer
    space = {"units": [2, 4, 8]} if tuner == "grid" else SPACE
    journal = tmp_path / "search.journal"
    result = kk.tune(kk.ProblemSpec(task="binary"), x, y, space=space, tuner=tuner, max_trials=3,
                     epochs=2, directory=tmp_path / "search", storage=str(journal), refit=False, verbose=0)
    assert journal.exists()
    assert len(result.trials) == 3 and set(result.trials["status"]) <= {"COMPLETED", "PRUNED"}
    assert len(result.trials_run) == 3
    assert result.best_trial_id in result.trials_run
    if tuner == "grid":
        assert sorted(result.trials["units"]) == [2, 4, 8]


def test_storage_settings_are_checked(cancer, tmp_path):
    x, y = cancer
    spec = kk.ProblemSpec(task="binary")
    with pytest.raises(ConfigError, match="overwrite=True would clear it"):
        kk.tune(spec, x, y, storage=str(tmp_path / "j"), overwrite=True, directory=tmp_path, verbose=0)
    with pytest.raises(ConfigError, match="grace_period longer"):
        kk.tune(spec, x, y, storage=Storage("sqlite:///x.db", heartbeat_interval=5, grace_period=2),
                directory=tmp_path, verbose=0)
    with pytest.raises(ConfigError, match="must be a URL"):
        kk.tune(spec, x, y, storage=3, directory=tmp_path, verbose=0)


def _build(hp):
    import keras

    model = keras.Sequential([keras.Input((30,)), keras.layers.Dense(hp.Int("units", 2, 16), activation="relu"),
                              keras.layers.Dense(1, activation="sigmoid")])
    model.compile("adam", "binary_crossentropy")
    return model


@pytest.mark.slow
def test_a_build_function_searched_through_storage(cancer, tmp_path):
    x, y = cancer
    result = kk.tune(kk.ProblemSpec(task="binary"), x, y, space=_build, tuner="tpe", max_trials=2,
                     epochs=1, directory=tmp_path / "search", storage=str(tmp_path / "search.journal"),
                     refit=False, verbose=0)
    assert list(result.trials["status"]) == ["COMPLETED", "COMPLETED"]
    assert result.trials["units"].between(2, 16).all() and result.trials["units"].nunique() == 2


@pytest.mark.slow
def test_a_shared_search_runs_its_trials_in_renewed_processes(cancer, tmp_path):
    """storage + isolate=True: the worker keeps the study and its heartbeat, a child process trains."""
    from kerakit.tuning import Distribution

    x, y = cancer
    result = kk.tune(kk.ProblemSpec(task="binary"), x, y, space=SPACE, tuner="tpe", max_trials=3, epochs=1,
                     directory=tmp_path / "search", storage=str(tmp_path / "search.journal"), refit=False,
                     distribution=Distribution(isolate=True, trials_per_process=2), verbose=0)
    assert list(result.trials["status"]) == ["COMPLETED"] * 3
    infos = [json.loads(p.read_text()) for p in (tmp_path / "search").rglob("kerakit_trial.json")]
    pids = {info["pid"] for info in infos}
    assert len(infos) == 3 and os.getpid() not in pids and len(pids) == 2
