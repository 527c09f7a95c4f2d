"""`kerakit env`: versions, backend and devices."""

import json
import subprocess
import sys

import pytest

from kerakit import cli


def test_env_reports_versions_and_devices(capsys):
    assert cli.main(["env", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert {"kerakit", "python", "tensorflow", "keras", "devices"} <= set(info)
    assert any(d["type"] == "CPU" for d in info["devices"])


@pytest.mark.backends
def test_env_reports_the_backend_and_loads_only_it():
    import os

    code = ("import sys; from kerakit import cli; cli.main(['env', '--json']); "
            "print('tensorflow' in sys.modules)")
    for backend in ("jax",):
        env = dict(os.environ, KERAS_BACKEND=backend)
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                                timeout=120)
        assert result.returncode == 0, result.stderr
        info = json.loads(result.stdout[: result.stdout.rindex("}") + 1])
        assert info["keras_backend"] == backend and info["devices"]
        assert result.stdout.strip().endswith("False")  # TensorFlow was never imported
