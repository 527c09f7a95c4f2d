"""Keras Tuner's chief/worker mode: bounded waits, a chief and two workers sharing a search."""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import kerakit as kk
from kerakit.errors import ChiefUnavailableError
from kerakit.tuning import Distribution

ROOT = Path(__file__).resolve().parents[2]
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1",
           PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
for name in ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT"):
    ENV.pop(name, None)

SEARCH = dict(space={"units": [4, 8, 12, 16]}, tuner="grid", epochs=2, verbose=0)

def _stop(process):
    if process.poll() is None:
        process.kill()
    process.wait(timeout=30)


def test_a_worker_without_a_chief_gives_up_with_a_clear_message(cancer_first_100, tmp_path, monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # free, and nobody listens on it
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "w9")
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", str(port))
    x, y = cancer_first_100
    start = time.monotonic()
    with pytest.raises(ChiefUnavailableError, match=r"Worker 'w9' got no answer from the chief at "
                                                    r"127\.0\.0\.1:\d+ within 1 s"):
        kk.tune(kk.ProblemSpec(task="binary"), x, y, directory=tmp_path,
                distribution=Distribution(worker_timeout=1), **SEARCH)
    assert time.monotonic() - start < 30


RECIPE = '''"""Tiny binary recipe for a distributed search."""
import dataclasses

@dataclasses.dataclass
class Config:
    seed: int = 0  # seed
    smoke: bool = False  # tiny

def data(config):
    import numpy as np
    from sklearn.datasets import load_breast_cancer
    import kerakit as kk
    x, y = load_breast_cancer(return_X_y=True)
    x, y = x[:160].astype("float32"), y[:160]
    return {"x_train": x[:100], "y_train": y[:100], "x_val": x[100:130], "y_val": y[100:130],
            "x_test": x[130:], "y_test": y[130:], "spec": kk.ProblemSpec(task="binary")}

def search_space(config):
    return {"units": [4, 8, 12, 16]}

def run(config, data, run):
    return {}
'''


def _tune_process(recipe, directory, port, *role):
    command = [sys.executable, "-m", "kerakit.cli", "tune", str(recipe), "--tuner", "grid",
               "--epochs", "2", "--directory", str(directory), "--oracle-port", str(port),
               "--worker-timeout", "120", *role]
    return subprocess.Popen(command, env=ENV, cwd=directory.parent, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def _read_until(process, text, deadline):
    lines = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            break
        lines.append(line)
        if text in line:
            return lines
    raise AssertionError(f"never printed {text!r}:\n{''.join(lines)[-3000:]}")


def test_chief_and_two_workers_share_a_search(tmp_path):
    recipe = tmp_path / "tiny_binary.py"
    recipe.write_text(RECIPE)
    directory = tmp_path / "tuning"
    directory.mkdir()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    deadline = time.monotonic() + 300
    workers = [_tune_process(recipe, directory, port, "--worker", name) for name in ("w1", "w2")]
    chief = None
    try:
        for worker in workers:  # both are loaded and about to ask the chief for trials
            _read_until(worker, "Tuning (grid", deadline)
        chief = _tune_process(recipe, directory, port, "--chief", "--json")
        chief_out, _ = chief.communicate(timeout=max(1, deadline - time.monotonic()))
        assert chief.returncode == 0, chief_out[-3000:]
        outputs = [w.communicate(timeout=max(1, deadline - time.monotonic()))[0] for w in workers]
    finally:
        for process in workers + ([chief] if chief else []):
            _stop(process)
    assert all(w.returncode == 0 for w in workers), outputs
    report = json.loads(chief_out.strip().splitlines()[-1])
    assert report["role"] == "chief" and report["trials"] == 4 and "test_metrics" in report
    import pandas as pd

    table = pd.read_csv(directory / "tiny-binary" / "trials.csv")
    assert set(table["status"]) == {"COMPLETED"} and sorted(table["units"]) == [4, 8, 12, 16]
    # Every trial ran on a worker and each worker's own count matches the table. Which
    # worker gets how many is up to gRPC timing: on a loaded machine one worker can
    # take all four trials before the other's first request arrives.
    assert set(table["worker"]) <= {"w1", "w2"} and len(table) == 4
    for name, output in zip(("w1", "w2"), outputs, strict=True):
        ran = (table["worker"] == name).sum()
        assert "Worker done: ran trials" in output and f"({ran} fits)" in output
