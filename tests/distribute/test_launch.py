"""The local launcher: N processes on 127.0.0.1, TensorFlow workers or JAX processes."""

import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import kerakit as kk
from kerakit import distribute
from kerakit.errors import WorkerTimeoutError

ROOT = Path(__file__).resolve().parents[2]


# The local launcher ----------------------------------------------------------------


def test_launch_local_gives_each_worker_its_own_tf_config():
    code = "import os; print(os.environ['TF_CONFIG'])"
    results = kk.launch_local([sys.executable, "-c", code], 2, timeout=60, capture=True)
    assert [r.returncode for r in results] == [0, 0]
    configs = [json.loads(r.output) for r in results]
    assert [c["task"] for c in configs] == [{"type": "worker", "index": 0}, {"type": "worker", "index": 1}]
    workers = configs[0]["cluster"]["worker"]
    assert configs[1]["cluster"]["worker"] == workers
    assert len(set(workers)) == 2 and all(w.startswith("127.0.0.1:") for w in workers)


def test_launch_local_kills_the_others_when_one_fails():
    code = "import os, sys, time; sys.exit(3) if os.environ['KERAKIT_WORKER_INDEX'] == '0' else time.sleep(60)"
    start = time.monotonic()
    results = kk.launch_local([sys.executable, "-c", code], 2, timeout=60, capture=True)
    assert time.monotonic() - start < 30
    assert results[0].returncode == 3
    assert results[1].returncode != 0  # killed, not left waiting on worker 0


def test_launch_local_timeout_kills_every_worker(tmp_path):
    code = (
        "import os, sys, time; "
        "open(os.path.join(sys.argv[1], os.environ['KERAKIT_WORKER_INDEX']), 'w').write(str(os.getpid())); "
        "time.sleep(60)"
    )
    with pytest.raises(WorkerTimeoutError, match="were killed"):
        kk.launch_local([sys.executable, "-c", code, str(tmp_path)], 2, timeout=3, capture=True)
    pids = [int(p.read_text()) for p in tmp_path.iterdir()]
    assert len(pids) == 2
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_module_command_runs_a_script_as_workers(tmp_path, capfd):
    script = tmp_path / "w.py"
    # One write per line (an f-string, not print's separate pieces): the two
    # workers share stdout, and unbuffered pieces would interleave.
    script.write_text("import json, os\nprint(f\"task {json.loads(os.environ['TF_CONFIG'])['task']['index']}\")\n")
    assert distribute.main(["--workers", "2", "--timeout", "60", str(script)]) == 0
    out = capfd.readouterr().out
    assert "task 0" in out and "task 1" in out
    code = "import os; print(f\"worker {os.environ['KERAKIT_WORKER_INDEX']}\")"
    assert distribute.main(["--workers", "2", "--", sys.executable, "-c", code]) == 0
    out = capfd.readouterr().out
    assert "worker 0" in out and "worker 1" in out
    assert distribute.main(["--workers", "2", "--timeout", "60", str(tmp_path / "missing.py")]) == 1



def test_launch_local_gives_each_process_the_keras_distribution_variables():
    code = "import json, os; print(json.dumps({k: v for k, v in os.environ.items() if 'DISTRIBUTION' in k or 'COLLECTIVES' in k}))"
    results = kk.launch_local([sys.executable, "-c", code], 2, timeout=60, capture=True)
    first, second = (json.loads(r.output) for r in results)
    assert [first["KERAS_DISTRIBUTION_PROCESS_ID"], second["KERAS_DISTRIBUTION_PROCESS_ID"]] == ["0", "1"]
    assert first["KERAS_DISTRIBUTION_NUM_PROCESSES"] == second["KERAS_DISTRIBUTION_NUM_PROCESSES"] == "2"
    coordinator = first["KERAS_DISTRIBUTION_JOB_ADDRESSES"]
    assert coordinator == second["KERAS_DISTRIBUTION_JOB_ADDRESSES"] and coordinator.startswith("127.0.0.1:")
    assert first["JAX_CPU_COLLECTIVES_IMPLEMENTATION"] == "gloo"


# Two JAX processes on loopback (gloo) train one model ---------------------------------

JAX_PROCESS = """
import json, os, sys
import numpy as np
import kerakit as kk
from kerakit.distribute import use_data_parallel

use_data_parallel()  # keras.distribution.initialize() first, then DataParallel over both processes
import jax

index = jax.process_index()
rng = np.random.default_rng(0)
x = rng.normal(size=(60, 5)).astype("float32")
y = (x[:, 0] > 0).astype(int)
mine = slice(index * 30, (index + 1) * 30)  # each process feeds its own rows
model = kk.build_model(kk.infer_spec(y), input_shape=(5,), units=(8,), learning_rate=0.05, seed=0,
                       dropout=0.0)
history = kk.fit(model, x[mine], y[mine], validation_data=(x[mine][:10], y[mine][:10]), batch_size=8,
                 epochs=3, verbose=0)
np.savez(os.path.join(sys.argv[1], f"weights_{index}.npz"), *model.get_weights())
proba = kk.predict(model, x[:7], batch_size=4)  # each process predicts its own rows, alone
print("RESULT " + json.dumps({"processes": jax.process_count(), "chief": kk.is_chief(),
                              "history": history.history, "proba": proba.tolist()}), flush=True)
"""


@pytest.mark.slow
def test_two_jax_processes_on_loopback_finish_with_identical_weights(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(JAX_PROCESS)
    env = {"KERAS_BACKEND": "jax", "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3", "XLA_FLAGS": ""}
    results = kk.launch_local([sys.executable, str(script), str(tmp_path)], 2, timeout=300, capture=True,
                              env=env, cwd=str(ROOT))
    assert [r.returncode for r in results] == [0, 0], [r.output[-3000:] for r in results]
    reports = [json.loads(next(line for line in r.output.splitlines() if line.startswith("RESULT "))[7:])
               for r in results]
    assert [r["processes"] for r in reports] == [2, 2]
    assert [r["chief"] for r in reports] == [True, False]
    assert reports[0]["history"] == reports[1]["history"]  # metrics reduced over both processes
    assert reports[0]["history"]["loss"][-1] < reports[0]["history"]["loss"][0]
    assert np.shape(reports[0]["proba"]) == (7, 1) and reports[0]["proba"] == reports[1]["proba"]
    first, second = (np.load(tmp_path / f"weights_{i}.npz") for i in (0, 1))
    for name in first:
        np.testing.assert_array_equal(first[name], second[name])


@pytest.mark.slow
def test_a_recipe_runs_data_parallel_over_two_jax_processes_into_one_run_directory(tmp_path):
    # Every process trains, evaluates (kk.predict on its own rows) and plots; only the chief keeps a run.
    env = {"KERAS_BACKEND": "jax", "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3", "XLA_FLAGS": ""}
    command = [sys.executable, "-m", "kerakit.cli", "run", "breast-cancer", "--smoke", "--strategy",
               "data_parallel", "--runs-dir", str(tmp_path / "runs"), "--json"]
    results = kk.launch_local(command, 2, timeout=400, capture=True, env=env, cwd=str(ROOT))
    assert [r.returncode for r in results] == [0, 0], [r.output[-3000:] for r in results]
    runs = list((tmp_path / "runs" / "breast-cancer").iterdir())
    assert len(runs) == 1
    manifest = json.loads((runs[0] / "manifest.json").read_text())
    assert manifest["status"] == "completed" and manifest["metrics"]["accuracy"] > 0.5
