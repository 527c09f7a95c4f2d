"""Crash-safe oracles: a search killed by SIGKILL at any moment resumes, for every tuner."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import kerakit as kk
from kerakit.tuning import Distribution

ROOT = Path(__file__).resolve().parents[2]
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1",
           PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
for name in ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT"):
    ENV.pop(name, None)

SPACE = {"units": [4, 8, 12, 16]}
SEARCH = dict(space=SPACE, tuner="grid", epochs=2, verbose=0)

SEARCH_SCRIPT = """
import sys
import numpy as np
import kerakit as kk
data = np.load(sys.argv[1])
kk.tune(kk.ProblemSpec(task="binary"), data["x"], data["y"], {"units": [4, 8, 12, 16]},
        tuner=sys.argv[3], max_trials=int(sys.argv[4]), epochs=2, verbose=0, refit=False,
        directory=sys.argv[2])
"""


def _trial_states(project):
    states = {}
    for path in project.glob("trial_*/trial.json"):
        try:
            states[path.parent.name] = json.loads(path.read_text())["status"]
        except (ValueError, KeyError):
            pass  # never happens with atomic writes; tolerated while polling
    return states


def _stop(process):
    if process.poll() is None:
        process.kill()
    process.wait(timeout=30)


def _kill_mid_search(tmp_path, x, y, tuner="grid", max_trials=4, completed=1):
    """Runs a search in a child process and SIGKILLs it once `completed` trials are done
    and the next one is running; returns the trial ids finished before the kill."""
    np.savez(tmp_path / "data.npz", x=x, y=y)
    script = tmp_path / "search.py"
    script.write_text(SEARCH_SCRIPT)
    project = tmp_path / "tuning" / "search"
    process = subprocess.Popen([sys.executable, str(script), str(tmp_path / "data.npz"),
                                str(tmp_path / "tuning"), tuner, str(max_trials)], env=ENV,
                               cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 240
        while True:
            states = list(_trial_states(project).values())
            if states.count("COMPLETED") >= completed and "RUNNING" in states:
                break
            assert process.poll() is None, process.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "the search never reached the trial to kill in"
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)  # a trial is running: it is retried on resume
        process.wait(timeout=30)
    finally:
        _stop(process)
    return project, {t for t, s in _trial_states(project).items() if s == "COMPLETED"}


@pytest.mark.slow
def test_a_killed_search_resumes_without_rerunning_finished_trials(cancer_first_100, tmp_path):
    x, y = cancer_first_100
    project, done = _kill_mid_search(tmp_path, x, y)
    assert 1 <= len(done) < 4
    before = {t: (project / t / "trial.json").read_bytes() for t in done}

    # Resume, with each trial in a child process (isolate=True).
    result = kk.tune(kk.ProblemSpec(task="binary"), x, y, directory=tmp_path / "tuning",
                     distribution=Distribution(isolate=True), refit=False, **SEARCH)
    table = result.trials
    assert len(table) == 4 and set(table["status"]) == {"COMPLETED"}
    assert sorted(table["units"]) == [4, 8, 12, 16]
    # Not re-run: even the trial's recorded duration is untouched.
    assert {t: (project / t / "trial.json").read_bytes() for t in done} == before
    assert result.fits == 4 - len(done)
    assert {f"trial_{t}" for t in result.trials_run}.isdisjoint(done)
    assert f"resuming: {len(done)} done" in result.plan
    pids = {json.loads((project / f"trial_{t}" / "kerakit_trial.json").read_text())["pid"]
            for t in result.trials_run}
    assert len(pids) == 1 and os.getpid() not in pids  # one child process ran them all




@pytest.mark.slow
@pytest.mark.parametrize("tuner, completed", [("tpe", 1), ("tpe", 0), ("random", 1), ("bayesian", 1),
                                              ("hyperband", 1), ("grid", 1)])
def test_every_tuner_resumes_after_a_sigkill_during_a_trial(cancer_first_100, tmp_path, tuner,
                                                            completed):
    # The killed trial is left RUNNING in its file: on resume it is retried first, before
    # the oracle has proposed anything in this process (TPE's study did not exist yet).
    x, y = cancer_first_100
    project, done = _kill_mid_search(tmp_path, x, y, tuner=tuner, max_trials=3, completed=completed)
    before = {t: (project / t / "trial.json").read_bytes() for t in done}
    result = kk.tune(kk.ProblemSpec(task="binary"), x, y, SPACE, tuner=tuner, max_trials=3, epochs=2,
                     verbose=0, refit=False, directory=tmp_path / "tuning")
    table = result.trials
    assert set(table["status"]) == {"COMPLETED"} and table["val_loss"].notna().all()
    expected = 2 if tuner == "hyperband" else 3  # hyperband's brackets for 2 epochs hold 2 trials
    assert len(table) == expected and result.fits == expected - len(done)
    assert {t: (project / t / "trial.json").read_bytes() for t in done} == before
    assert (f"resuming: {len(done)} done" in result.plan) == bool(done)
    if tuner == "tpe":
        import optuna

        complete = [t for t in result.tuner.oracle.study.trials
                    if t.state == optuna.trial.TrialState.COMPLETE]
        # The study learned every finished trial (a repeated proposal is told its known score).
        assert {round(t.value, 6) for t in complete} == {round(v, 6) for v in table["val_loss"]}
