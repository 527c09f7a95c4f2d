"""TensorFlow's retracing warning stays out of users' output."""

import logging
import os
import subprocess
import sys
import textwrap

import pytest

from kerakit.engines.keras_fit import RETRACING_MESSAGE, quiet_retracing_warning


def test_quiet_retracing_warning_drops_only_that_message(caplog):
    quiet_retracing_warning()
    quiet_retracing_warning()  # idempotent: one filter
    logger = logging.getLogger("tensorflow")
    with caplog.at_level(logging.WARNING, logger="tensorflow"):
        logger.warning("6 out of the last 6 calls to <function f> %s.", RETRACING_MESSAGE)
        logger.warning("another TensorFlow warning")
    messages = [r.getMessage() for r in caplog.records]
    assert messages == ["another TensorFlow warning"]
    assert sum(type(f).__name__ == "_RetracingFilter" for f in logger.filters) == 1


SCRIPT = textwrap.dedent("""
    import numpy as np
    import kerakit as kk

    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int64")
    for _ in range(6):
        model = kk.build_model(kk.ProblemSpec("binary"), (4,))
        kk.fit(model, x, y, epochs=1, verbose=0)
        kk.predict(model, x)
        kk.evaluate(model, x, y)
    print("fitted 6")
""")


@pytest.mark.slow
def test_six_fits_in_one_process_print_no_retracing_warning():
    env = {**os.environ, "KERAS_BACKEND": "tensorflow"}
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "fitted 6" in done.stdout
    assert RETRACING_MESSAGE not in done.stdout + done.stderr
