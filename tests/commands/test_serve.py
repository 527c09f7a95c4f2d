"""`kerakit serve`: the command line around `kerakit.serving.serve`."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]

httpx = pytest.importorskip("httpx")


@pytest.fixture(scope="module")
def model():
    import kerakit as kk

    spec = kk.ProblemSpec(task="multiclass", num_classes=10)
    return kk.build_model(spec, input_shape=(64,), units=(32,), seed=0)



@pytest.mark.slow
def test_kerakit_serve_command_answers_a_curl_style_request(model, digits, tmp_path):
    run_dir = tmp_path / "runs" / "digits" / "20250101-000000"
    run_dir.mkdir(parents=True)
    model.save(run_dir / "model.keras")
    (run_dir / "manifest.json").write_text(json.dumps({"recipe": "digits"}))
    process = subprocess.Popen(
        [sys.executable, "-m", "kerakit.cli", "serve", str(run_dir), "--port", "0"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    try:
        line = process.stdout.readline()
        assert "model 'digits'" in line and "http://127.0.0.1:" in line, process.stderr.read()
        url = line.split(" at ", 1)[1].strip()
        x = digits[1][:2]
        answer = None
        for _ in range(100):  # the socket is bound; wait until the app answers
            try:
                answer = httpx.post(url + ":predict", content=json.dumps({"instances": x.tolist()}),
                                    timeout=10)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        assert answer is not None and answer.status_code == 200
        np.testing.assert_allclose(answer.json()["predictions"], model.predict(x, verbose=0), atol=1e-5)
    finally:
        process.terminate()
        process.wait(timeout=30)



def test_serve_help_is_instant_and_bad_paths_fail_cleanly(tmp_path, capsys):
    code = ("import sys\ntry:\n    from kerakit.cli import main\n    main(['serve', '--help'])\n"
            "except SystemExit:\n    pass\nprint('tensorflow loaded:', 'tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert "--max-body-bytes" in out.stdout and "tensorflow loaded: False" in out.stdout

    from kerakit.cli import main

    assert main(["serve", str(tmp_path / "nothing.keras"), "--port", "0"]) == 2
    assert "No run directory or model file" in capsys.readouterr().err



def test_serve_command_passes_the_server_limits(monkeypatch, tmp_path):
    """The timeouts and the connection cap can be set from the shell."""
    import kerakit.serving
    from kerakit import cli

    seen = {}
    monkeypatch.setattr(kerakit.serving, "serve", lambda model, **options: seen.update(options))
    assert cli.main(["serve", str(tmp_path / "m.keras"), "--request-timeout", "2.5",
                     "--keep-alive-timeout", "1", "--max-connections", "7"]) == 0
    assert (seen["request_timeout"], seen["keep_alive_timeout"], seen["max_connections"]) == (2.5, 1.0, 7)
    assert cli.main(["serve", str(tmp_path / "m.keras"), "--max-connections", "0"]) == 2


def test_a_missing_drift_reference_is_named_not_taken_for_a_port_problem(model, tmp_path, capsys):
    from kerakit.cli import main

    model.save(tmp_path / "m.keras")
    missing = tmp_path / "reference.json"
    assert main(["serve", str(tmp_path / "m.keras"), "--port", "0", "--drift-reference", str(missing)]) == 2
    err = capsys.readouterr().err
    assert "drift reference file" in err and str(missing) in err and "listen" not in err
